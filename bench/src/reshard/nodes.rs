//! The harness's own connections to the nodes of a cluster under reshard:
//! one kept open per node, so polling `CLUSTER NODES` and
//! `CLUSTER GETSLOTMIGRATIONS` every few milliseconds costs a round trip,
//! not a connection, and a poll's delay stays out of the measured time.
//!
//! It only reads, except [`Nodes::command`], which the drivers use for
//! the commands they issue.

use std::collections::HashMap;
use std::time::Duration;

use logbook::valkey::{ClusterNodeLine, Password, parse_cluster_nodes};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, Value};

use super::migrations::{MigrationJob, parse_slot_migrations};
use crate::BenchError;
use crate::conn::{connect, query};

/// Deadline of the harness's commands.
const ADMIN: Duration = Duration::from_secs(5);

/// One open connection per node, opened on first use and dropped on any
/// error, so the next use reconnects.
pub(crate) struct Nodes {
    password: Option<Password>,
    connections: HashMap<String, MultiplexedConnection>,
}

impl Nodes {
    /// No connection yet; `password` is sent with `AUTH` on each.
    pub(crate) fn new(password: Option<Password>) -> Nodes {
        Nodes {
            password,
            connections: HashMap::new(),
        }
    }

    /// Sends `cmd` to `addr`.
    ///
    /// # Errors
    /// [`BenchError`] when the node cannot be reached, does not answer in
    /// time or answers with an error.
    pub(crate) async fn command<T: FromRedisValue>(
        &mut self,
        addr: &str,
        cmd: &Cmd,
        name: &'static str,
    ) -> Result<T, BenchError> {
        if !self.connections.contains_key(addr) {
            let opened = connect(addr, self.password.as_ref(), ADMIN).await?;
            self.connections.insert(addr.to_owned(), opened);
        }
        let Some(connection) = self.connections.get_mut(addr) else {
            return Err(crate::harness("a connection")(format!("{addr} vanished")));
        };
        let reply = query(connection, cmd, addr, name, ADMIN).await;
        if reply.is_err() {
            self.connections.remove(addr);
        }
        reply
    }

    /// `CLUSTER NODES` of `addr`, parsed.
    ///
    /// # Errors
    /// As [`Nodes::command`]; [`BenchError::Protocol`] when the reply does
    /// not parse.
    pub(crate) async fn cluster_nodes(
        &mut self,
        addr: &str,
    ) -> Result<Vec<ClusterNodeLine>, BenchError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let text: String = self.command(addr, &cmd, "CLUSTER NODES").await?;
        parse_cluster_nodes(&text).map_err(|e| BenchError::Protocol {
            addr: addr.to_owned(),
            command: "CLUSTER NODES",
            detail: e.to_string(),
        })
    }

    /// `CLUSTER NODES` of every one of `addrs`, in order.
    ///
    /// # Errors
    /// The first node's error.
    pub(crate) async fn views(
        &mut self,
        addrs: &[String],
    ) -> Result<Vec<(String, Vec<ClusterNodeLine>)>, BenchError> {
        let mut views = Vec::with_capacity(addrs.len());
        for addr in addrs {
            views.push((addr.clone(), self.cluster_nodes(addr).await?));
        }
        Ok(views)
    }

    /// The first of `addrs` whose `CLUSTER INFO` does not say
    /// `cluster_state:ok`, with what it says: such a node answers
    /// `CLUSTERDOWN` for every key. (Valkey keeps a new primary at `fail`
    /// for its first two seconds, `CLUSTER_WRITABLE_DELAY`.) `None` when
    /// every one serves.
    ///
    /// # Errors
    /// As [`Nodes::command`].
    pub(crate) async fn not_serving(
        &mut self,
        addrs: &[String],
    ) -> Result<Option<String>, BenchError> {
        for addr in addrs {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("INFO");
            let info: String = self.command(addr, &cmd, "CLUSTER INFO").await?;
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                let state = info
                    .lines()
                    .find(|l| l.starts_with("cluster_state:"))
                    .unwrap_or("no cluster_state")
                    .trim()
                    .to_owned();
                return Ok(Some(format!("{addr} says {state}")));
            }
        }
        Ok(None)
    }

    /// `CLUSTER GETSLOTMIGRATIONS` of `addr`, parsed.
    ///
    /// # Errors
    /// As [`Nodes::command`] (a server older than 9.0 answers with an
    /// error); [`BenchError::Protocol`] when the reply does not parse.
    pub(crate) async fn slot_migrations(
        &mut self,
        addr: &str,
    ) -> Result<Vec<MigrationJob>, BenchError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("GETSLOTMIGRATIONS");
        let reply: Value = self
            .command(addr, &cmd, "CLUSTER GETSLOTMIGRATIONS")
            .await?;
        parse_slot_migrations(&reply).map_err(|e| BenchError::Protocol {
            addr: addr.to_owned(),
            command: "CLUSTER GETSLOTMIGRATIONS",
            detail: e.to_string(),
        })
    }
}
