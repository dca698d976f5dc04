//! The cluster the bench reshards itself (raw ASM and legacy): `shards`
//! shards of a primary and `replicas` replicas, fresh `valkey-server`
//! processes on 127.0.0.1 with the directives the operator renders for a
//! cluster node, formed with the CLUSTER commands only (`ADDSLOTSRANGE`
//! even split, `MEET`, `REPLICATE`); then one more shard, empty, met and
//! known by every node — the start of a reshard. Every process is killed
//! when the cluster is dropped.

use std::time::{Duration, Instant};

use logbook::valkey::ClusterNodeLine;
use redis::Value;

use super::nodes::Nodes;
use crate::BenchError;
use crate::cluster_reference::{cluster_server_args, even_range};
use crate::process::{Mode, ValkeyProcess};
use crate::readiness::replicas_online;

/// How long forming (or growing) may take.
const FORM_LIMIT: Duration = Duration::from_secs(60);

/// How often [`RawCluster::grow_shard`] polls.
const GROW_POLL: Duration = Duration::from_millis(5);

/// `cluster-node-timeout` of the bench's nodes, as the operator's default.
pub(crate) const NODE_TIMEOUT_MS: u64 = 5000;

/// A formed cluster; its processes die with it.
pub(crate) struct RawCluster {
    /// Per shard: its primary, then its replicas.
    shards: Vec<Vec<ValkeyProcess>>,
    replicas: usize,
    nodes: Nodes,
}

impl RawCluster {
    /// Starts and forms `shards` × (1 + `replicas`) nodes, the slots split
    /// evenly over the primaries, and waits until every node knows every
    /// other in its role, says `cluster_state:ok`, and each primary has its
    /// replicas online.
    ///
    /// # Errors
    /// [`BenchError`] when a process does not start or the cluster does not
    /// form in [`FORM_LIMIT`].
    pub(crate) async fn start(shards: usize, replicas: usize) -> Result<RawCluster, BenchError> {
        let mut cluster = RawCluster {
            shards: Vec::with_capacity(shards.saturating_add(1)),
            replicas,
            nodes: Nodes::new(None),
        };
        for shard in 0..shards {
            let processes = start_shard(shard, replicas).await?;
            cluster.shards.push(processes);
        }
        let count = u32::try_from(shards.max(1)).unwrap_or(1);
        for (shard, primary) in (0..count).zip(cluster.primaries()) {
            let (start, end) = even_range(shard, count);
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("ADDSLOTSRANGE").arg(start).arg(end);
            let _: Value = cluster
                .nodes
                .command(&primary, &cmd, "CLUSTER ADDSLOTSRANGE")
                .await?;
        }
        cluster.join(0).await?;
        Ok(cluster)
    }

    /// Starts one more shard, owning no slot, and waits until every node
    /// knows its nodes in their roles and its primary has its replicas
    /// online. Returns the new primary's address and node id.
    ///
    /// # Errors
    /// As [`RawCluster::start`].
    pub(crate) async fn add_empty_shard(&mut self) -> Result<(String, String), BenchError> {
        let index = self.shards.len();
        let processes = start_shard(index, self.replicas).await?;
        self.shards.push(processes);
        self.join(index).await?;
        let addr = self
            .primaries()
            .get(index)
            .cloned()
            .ok_or_else(|| crate::harness("the new shard")(format!("no shard {index}")))?;
        let id = self.node_id(&addr).await?;
        Ok((addr, id))
    }

    /// Starts one more shard and joins it as a careful direct driver
    /// would before moving slots to it, as fast as it can: every node
    /// meets the new ones; the new replicas meet their primary, which gets
    /// `repl-diskless-sync-delay 0` (it holds nothing, so its replicas'
    /// first sync need not wait for others), and follow it; done once the
    /// replicas' links are up and every primary knows the new primary (a
    /// source refuses a target it does not know). It does not wait for the
    /// rest of the gossip. Returns the new primary's address and node id
    /// and when it started, for the time of the whole reshard.
    ///
    /// # Errors
    /// As [`RawCluster::start`].
    pub(crate) async fn grow_shard(&mut self) -> Result<(String, String, Instant), BenchError> {
        let started = Instant::now();
        let old = self.addrs();
        let old_primaries = self.primaries();
        let index = self.shards.len();
        let processes = start_shard(index, self.replicas).await?;
        let new: Vec<String> = processes.iter().map(ValkeyProcess::addr).collect();
        let ports: Vec<u16> = processes.iter().map(ValkeyProcess::port).collect();
        self.shards.push(processes);
        let Some(primary) = new.first().cloned() else {
            return Err(crate::harness("the new shard")("no process".to_owned()));
        };
        let id = self.node_id(&primary).await?;
        let step = |what: &str| {
            tracing::info!(ms = started.elapsed().as_millis(), "raw growth: {what}");
        };
        step("processes answer");
        for addr in &old {
            for port in &ports {
                let mut meet = redis::cmd("CLUSTER");
                meet.arg("MEET").arg("127.0.0.1").arg(*port);
                let _: Value = self.nodes.command(addr, &meet, "CLUSTER MEET").await?;
            }
        }
        let replicas: Vec<String> = new.iter().skip(1).cloned().collect();
        if !replicas.is_empty() {
            let mut delay = redis::cmd("CONFIG");
            delay.arg("SET").arg("repl-diskless-sync-delay").arg(0);
            let _: Value = self.nodes.command(&primary, &delay, "CONFIG SET").await?;
        }
        let port = ports.first().copied().unwrap_or_default();
        for replica in &replicas {
            let mut meet = redis::cmd("CLUSTER");
            meet.arg("MEET").arg("127.0.0.1").arg(port);
            let _: Value = self.nodes.command(replica, &meet, "CLUSTER MEET").await?;
        }
        step("met");
        for replica in &replicas {
            self.wait_knows(replica, &id).await?;
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("REPLICATE").arg(&id);
            let _: Value = self
                .nodes
                .command(replica, &cmd, "CLUSTER REPLICATE")
                .await?;
        }
        step("replicas follow");
        for source in &old_primaries {
            self.wait_knows(source, &id).await?;
        }
        step("primaries know it");
        self.wait_serving(&primary).await?;
        step("it says cluster_state:ok");
        for replica in &replicas {
            self.wait_link_up(replica).await?;
        }
        step("replicas in sync");
        Ok((primary, id, started))
    }

    /// Polls `addr`'s `CLUSTER NODES` until it lists `id` out of handshake.
    async fn wait_knows(&mut self, addr: &str, id: &str) -> Result<(), BenchError> {
        let started = Instant::now();
        loop {
            let lines = self.nodes.cluster_nodes(addr).await?;
            if lines.iter().any(|l| l.id == id && !l.handshake) {
                return Ok(());
            }
            if started.elapsed() > FORM_LIMIT {
                return Err(BenchError::TimedOut {
                    what: format!("{addr} to know {id}"),
                    after_ms: FORM_LIMIT.as_millis(),
                    detail: self.log_tails(),
                });
            }
            tokio::time::sleep(GROW_POLL).await;
        }
    }

    /// Polls `addr`'s `CLUSTER INFO` until it says `cluster_state:ok`.
    async fn wait_serving(&mut self, addr: &str) -> Result<(), BenchError> {
        let started = Instant::now();
        let one = [addr.to_owned()];
        while let Some(why) = self.nodes.not_serving(&one).await? {
            if started.elapsed() > FORM_LIMIT {
                return Err(BenchError::TimedOut {
                    what: format!("{addr} to serve"),
                    after_ms: FORM_LIMIT.as_millis(),
                    detail: why,
                });
            }
            tokio::time::sleep(GROW_POLL).await;
        }
        Ok(())
    }

    /// Polls `replica`'s `INFO replication` until its link is up.
    async fn wait_link_up(&mut self, replica: &str) -> Result<(), BenchError> {
        let started = Instant::now();
        loop {
            let mut cmd = redis::cmd("INFO");
            cmd.arg("replication");
            let info: String = self.nodes.command(replica, &cmd, "INFO").await?;
            if info.contains("master_link_status:up") {
                return Ok(());
            }
            if started.elapsed() > FORM_LIMIT {
                return Err(BenchError::TimedOut {
                    what: format!("{replica}'s link to its primary"),
                    after_ms: FORM_LIMIT.as_millis(),
                    detail: format!("\n{info}"),
                });
            }
            tokio::time::sleep(GROW_POLL).await;
        }
    }

    /// Meets the nodes of shards `from..` with the cluster, makes their
    /// replicas follow their primaries, and waits for all of it.
    async fn join(&mut self, from: usize) -> Result<(), BenchError> {
        let all = self.addrs();
        let Some(first) = all.first().cloned() else {
            return Ok(());
        };
        let newcomers: Vec<u16> = self
            .shards
            .iter()
            .skip(from)
            .flatten()
            .map(ValkeyProcess::port)
            .collect();
        for port in newcomers {
            let mut meet = redis::cmd("CLUSTER");
            meet.arg("MEET").arg("127.0.0.1").arg(port);
            let _: Value = self.nodes.command(&first, &meet, "CLUSTER MEET").await?;
        }
        let total = all.len();
        self.wait_views("every node to know every other", |lines| {
            lines.len() == total && !lines.iter().any(|l| l.handshake)
        })
        .await?;
        for shard in self.shards.iter().skip(from) {
            let Some(primary) = shard.first().map(ValkeyProcess::addr) else {
                continue;
            };
            if shard.len() < 2 {
                continue;
            }
            let mut myid = redis::cmd("CLUSTER");
            myid.arg("MYID");
            let id: String = self.nodes.command(&primary, &myid, "CLUSTER MYID").await?;
            for replica in shard.iter().skip(1).map(ValkeyProcess::addr) {
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg("REPLICATE").arg(&id);
                let _: Value = self
                    .nodes
                    .command(&replica, &cmd, "CLUSTER REPLICATE")
                    .await?;
            }
        }
        let want_replicas = self.shards.len().saturating_mul(self.replicas);
        self.wait_views("every node to know every replica as one", |lines| {
            lines.len() == total
                && lines.iter().filter(|l| l.replica).count() == want_replicas
                && !lines.iter().any(|l| l.failed || l.suspected || l.handshake)
        })
        .await?;
        for primary in self.primaries() {
            replicas_online(&primary, self.replicas, FORM_LIMIT).await?;
        }
        self.wait_state_ok().await
    }

    /// Polls every node's `CLUSTER NODES` until `ok` holds for each.
    async fn wait_views(
        &mut self,
        what: &str,
        ok: impl Fn(&[ClusterNodeLine]) -> bool,
    ) -> Result<(), BenchError> {
        let started = Instant::now();
        for addr in self.addrs() {
            loop {
                let lines = self.nodes.cluster_nodes(&addr).await?;
                if ok(&lines) {
                    break;
                }
                if started.elapsed() > FORM_LIMIT {
                    return Err(BenchError::TimedOut {
                        what: format!("{what} ({addr})"),
                        after_ms: FORM_LIMIT.as_millis(),
                        detail: self.log_tails(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    async fn wait_state_ok(&mut self) -> Result<(), BenchError> {
        let started = Instant::now();
        for addr in self.addrs() {
            loop {
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg("INFO");
                let info: String = self.nodes.command(&addr, &cmd, "CLUSTER INFO").await?;
                if info.contains("cluster_state:ok") {
                    break;
                }
                if started.elapsed() > FORM_LIMIT {
                    return Err(BenchError::TimedOut {
                        what: format!("cluster_state:ok on {addr}"),
                        after_ms: FORM_LIMIT.as_millis(),
                        detail: format!("\n{info}"),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    async fn node_id(&mut self, addr: &str) -> Result<String, BenchError> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("MYID");
        self.nodes.command(addr, &cmd, "CLUSTER MYID").await
    }

    /// Every node's `host:port`, shard by shard, primary first.
    pub(crate) fn addrs(&self) -> Vec<String> {
        self.shards
            .iter()
            .flatten()
            .map(ValkeyProcess::addr)
            .collect()
    }

    /// Each shard's primary as formed (nothing here fails over).
    pub(crate) fn primaries(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter_map(|s| s.first().map(ValkeyProcess::addr))
            .collect()
    }

    /// How many replicas each shard has.
    pub(crate) fn replicas(&self) -> usize {
        self.replicas
    }

    /// The tails of every node's log, for a timeout's message.
    pub(crate) fn log_tails(&self) -> String {
        self.shards
            .iter()
            .flatten()
            .map(|n| n.log_tail(4))
            .collect()
    }
}

async fn start_shard(shard: usize, replicas: usize) -> Result<Vec<ValkeyProcess>, BenchError> {
    let args = cluster_server_args(NODE_TIMEOUT_MS);
    let mut processes = Vec::with_capacity(replicas.saturating_add(1));
    for node in 0..=replicas {
        let name = format!("reshard-{shard}-{node}");
        processes.push(ValkeyProcess::start(&name, &Mode::Server(args.clone())).await?);
    }
    Ok(processes)
}
