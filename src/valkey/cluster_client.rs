//! The Valkey Cluster commands of [`ValkeyClient`]: the probe of a cluster
//! node and the admin commands the operator forms and repairs a cluster
//! with (no `valkey-cli --cluster`). Same connections, timeouts and
//! failure classification as every other command.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::{ClusterFailoverMode, SlotRange};

use super::client::{Resend, ValkeyClient, expect_ok, text_reply};
use super::cluster_parse::{ClusterInfo, ClusterNodeLine, parse_cluster_info, parse_cluster_nodes};
use super::error::ProbeError;
use super::parse::{ReplicationInfo, parse_info_replication};

/// One probe of a cluster node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterProbe {
    /// `CLUSTER NODES`.
    pub nodes: Vec<ClusterNodeLine>,
    /// `CLUSTER INFO`.
    pub info: ClusterInfo,
    /// `INFO replication`.
    pub replication: ReplicationInfo,
}

impl ValkeyClient {
    async fn text(
        &self,
        addr: SocketAddr,
        cmd: &redis::Cmd,
        name: &'static str,
    ) -> Result<String, ProbeError> {
        let (reply, _) = self
            .run(addr, cmd, name, Duration::ZERO, Resend::Safe)
            .await?;
        text_reply(addr, reply)
    }

    async fn ok(
        &self,
        addr: SocketAddr,
        cmd: &redis::Cmd,
        name: &'static str,
        resend: Resend,
    ) -> Result<(), ProbeError> {
        let (reply, _) = self.run(addr, cmd, name, Duration::ZERO, resend).await?;
        expect_ok(addr, reply)
    }

    /// `CLUSTER NODES`, `CLUSTER INFO` and `INFO replication`, sent at once
    /// on one connection (one round trip).
    ///
    /// # Errors
    /// Any [`ProbeError`]; [`ProbeError::Malformed`] for a reply that does
    /// not parse.
    pub async fn cluster_probe(&self, addr: SocketAddr) -> Result<ClusterProbe, ProbeError> {
        let mut nodes_cmd = redis::cmd("CLUSTER");
        nodes_cmd.arg("NODES");
        let mut info_cmd = redis::cmd("CLUSTER");
        info_cmd.arg("INFO");
        let mut repl_cmd = redis::cmd("INFO");
        repl_cmd.arg("replication");
        let (nodes, info, replication) = tokio::join!(
            self.text(addr, &nodes_cmd, "CLUSTER NODES"),
            self.text(addr, &info_cmd, "CLUSTER INFO"),
            self.text(addr, &repl_cmd, "INFO"),
        );
        let malformed = |source| ProbeError::Malformed { addr, source };
        Ok(ClusterProbe {
            nodes: parse_cluster_nodes(&nodes?).map_err(malformed)?,
            info: parse_cluster_info(&info?).map_err(malformed)?,
            replication: parse_info_replication(&replication?).map_err(malformed)?,
        })
    }

    /// `CLUSTER MYID`: the node id of the server at `addr`.
    ///
    /// # Errors
    /// Any [`ProbeError`].
    pub async fn cluster_myid(&self, addr: SocketAddr) -> Result<String, ProbeError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("MYID");
        Ok(self
            .text(addr, &cmd, "CLUSTER MYID")
            .await?
            .trim()
            .to_ascii_lowercase())
    }

    /// `CLUSTER MEET ip port`: the server at `addr` starts a hand-shake
    /// with the node at `ip:port`. Idempotent: a node already known there,
    /// or a hand-shake already running, is answered OK.
    ///
    /// # Errors
    /// Any [`ProbeError`].
    pub async fn cluster_meet(
        &self,
        addr: SocketAddr,
        ip: &str,
        port: u16,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("MEET").arg(ip).arg(port);
        self.ok(addr, &cmd, "CLUSTER MEET", Resend::Safe).await
    }

    /// `CLUSTER ADDSLOTSRANGE start end ...`: the server at `addr` takes
    /// these unowned slots.
    ///
    /// # Errors
    /// [`ProbeError::Rejected`] when a slot is already owned (by it or
    /// another node); any other [`ProbeError`].
    pub async fn cluster_addslotsrange(
        &self,
        addr: SocketAddr,
        ranges: &[SlotRange],
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("ADDSLOTSRANGE");
        for r in ranges {
            cmd.arg(r.start).arg(r.end);
        }
        self.ok(addr, &cmd, "CLUSTER ADDSLOTSRANGE", Resend::Never)
            .await
    }

    /// `CLUSTER REPLICATE node_id`: the server at `addr` becomes a replica
    /// of that node (it must know it, hold no slot, and be empty if a
    /// primary). Repeating it for the same primary is harmless.
    ///
    /// # Errors
    /// Any [`ProbeError`].
    pub async fn cluster_replicate(
        &self,
        addr: SocketAddr,
        node_id: &str,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("REPLICATE").arg(node_id);
        self.ok(addr, &cmd, "CLUSTER REPLICATE", Resend::Safe).await
    }

    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on the replica at `addr`. The
    /// reply comes when the failover has started; the caller confirms the
    /// outcome by probing. Never resent after a dropped connection.
    ///
    /// # Errors
    /// [`ProbeError::Rejected`] (not a replica, a failover already
    /// running); any other [`ProbeError`].
    pub async fn cluster_failover(
        &self,
        addr: SocketAddr,
        mode: ClusterFailoverMode,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("FAILOVER");
        if !mode.word().is_empty() {
            cmd.arg(mode.word());
        }
        self.ok(addr, &cmd, "CLUSTER FAILOVER", Resend::Never).await
    }

    /// `CLUSTER FORGET node_id` on the server at `addr`: the node leaves
    /// its table and is banned from it for a minute. A node it does not
    /// know is already forgotten: answered as success.
    ///
    /// # Errors
    /// [`ProbeError::Rejected`] for its own id or its own primary; any
    /// other [`ProbeError`].
    pub async fn cluster_forget(&self, addr: SocketAddr, node_id: &str) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("FORGET").arg(node_id);
        match self.ok(addr, &cmd, "CLUSTER FORGET", Resend::Safe).await {
            Err(ProbeError::Rejected { message, .. }) if message.contains("Unknown node") => Ok(()),
            other => other,
        }
    }
}
