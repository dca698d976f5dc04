//! The Valkey Cluster reference: how long one shard's writes stop, and how
//! many acknowledged writes are lost, when Valkey's own failure detection
//! and election replace a killed primary, with no operator.
//!
//! Each run forms a fresh cluster of `valkey-server` processes started by
//! the bench (S primaries, R replicas each, with the directives the
//! operator renders for a cluster node: `cluster-node-timeout`,
//! `cluster-allow-replica-migration no`, `repl-ping-replica-period 1`),
//! with the CLUSTER commands only (`ADDSLOTSRANGE`, `MEET`, `REPLICATE`),
//! so no run inherits an epoch or a failure report from the one before.
//! The killed primary is not restarted: nobody here would restart it.
//! The writes go through the same per-shard probe as the operator's rows
//! ([`ShardProbe`]), so both measure the same thing.

use std::time::{Duration, Instant};

use redis::Value;

use logbook_journal::Timestamp;

use super::cluster_client::slot_map;
use super::cluster_writer::ClusterProbeConfig;
use super::conn::query_once;
use super::process::{Mode, ValkeyProcess};
use super::readiness::replicas_online;
use super::shard_probe::{ShardProbe, lost_writes, others_gap, recovery};
use super::slots::SLOTS;
use super::{BenchError, ClusterRun};

/// Acknowledged writes to the victim shard before the fault, so the window
/// has a start.
pub(crate) const WARM_UP_SHARD_ACKED: usize = 20;

/// How long the probe keeps writing once the shard is served again, so
/// writes accepted after the failover are read back too.
const TAIL: Duration = Duration::from_millis(300);

/// How long a run waits, once the new primary accepts writes, for one it
/// acknowledges.
const ACK_GRACE: Duration = super::operator_cluster::ACK_GRACE;

/// A cluster of `valkey-server` processes on 127.0.0.1, formed by the
/// bench; every process is killed when it is dropped.
pub struct ReferenceCluster {
    /// Primaries first (shard order), then each shard's replicas.
    nodes: Vec<Option<ValkeyProcess>>,
    shards: usize,
}

/// A short timeout for the harness's own commands.
const ADMIN: Duration = Duration::from_secs(2);

async fn admin<T: redis::FromRedisValue>(
    addr: &str,
    args: &[&str],
    command: &'static str,
) -> Result<T, BenchError> {
    let mut cmd = redis::cmd(args.first().copied().unwrap_or("PING"));
    for arg in args.iter().skip(1) {
        cmd.arg(*arg);
    }
    query_once(addr, None, &cmd, command, ADMIN).await
}

impl ReferenceCluster {
    /// Starts `shards` × (1 + `replicas`) cluster-enabled servers, splits
    /// the slots evenly over the primaries, meets them, attaches the
    /// replicas, and waits until every node says `cluster_state:ok`, knows
    /// every replica as one, and each primary has its replicas online.
    ///
    /// # Errors
    /// [`BenchError`] when a process does not start or the cluster does not
    /// form in 30 s.
    pub async fn start(
        shards: usize,
        replicas: usize,
        node_timeout_ms: u64,
    ) -> Result<ReferenceCluster, BenchError> {
        let args = cluster_server_args(node_timeout_ms);
        let total = shards.saturating_mul(replicas.saturating_add(1));
        let mut nodes = Vec::with_capacity(total);
        for i in 0..total {
            let name = format!("cluster-node-{i}");
            nodes.push(Some(
                ValkeyProcess::start(&name, &Mode::Server(args.clone())).await?,
            ));
        }
        let cluster = ReferenceCluster { nodes, shards };
        cluster.form(replicas).await?;
        Ok(cluster)
    }

    async fn form(&self, replicas: usize) -> Result<(), BenchError> {
        let addrs = self.seeds();
        let mut ids = Vec::with_capacity(addrs.len());
        for addr in &addrs {
            ids.push(admin::<String>(addr, &["CLUSTER", "MYID"], "CLUSTER MYID").await?);
        }
        let shards = u32::try_from(self.shards.max(1)).unwrap_or(1);
        for (shard, addr) in (0..shards).zip(&addrs) {
            let (start, end) = even_range(shard, shards);
            let (start, end) = (start.to_string(), end.to_string());
            let _: Value = admin(
                addr,
                &["CLUSTER", "ADDSLOTSRANGE", &start, &end],
                "CLUSTER ADDSLOTSRANGE",
            )
            .await?;
        }
        let first = addrs.first().cloned().unwrap_or_default();
        for node in self.nodes.iter().flatten().skip(1) {
            let port = node.port().to_string();
            let _: Value = admin(
                &first,
                &["CLUSTER", "MEET", "127.0.0.1", &port],
                "CLUSTER MEET",
            )
            .await?;
        }
        let everyone = addrs.len();
        self.wait_nodes("every node to know every other", |nodes| {
            nodes.lines().count() == everyone && !nodes.contains("handshake")
        })
        .await?;
        for (index, addr) in addrs.iter().enumerate().skip(self.shards) {
            let shard = index.saturating_sub(self.shards) / replicas.max(1);
            let Some(primary_id) = ids.get(shard) else {
                continue;
            };
            let _: Value = admin(
                addr,
                &["CLUSTER", "REPLICATE", primary_id],
                "CLUSTER REPLICATE",
            )
            .await?;
        }
        let want_replicas = self.shards.saturating_mul(replicas);
        self.wait_nodes("every node to know every replica", |nodes| {
            nodes.lines().filter(|l| l.contains("slave")).count() == want_replicas
                && !nodes.contains("fail")
        })
        .await?;
        for addr in addrs.iter().take(self.shards) {
            replicas_online(addr, replicas, Duration::from_secs(30)).await?;
        }
        let started = Instant::now();
        for addr in &addrs {
            loop {
                let info: String = admin(addr, &["CLUSTER", "INFO"], "CLUSTER INFO").await?;
                if info.contains("cluster_state:ok") {
                    break;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    return Err(BenchError::TimedOut {
                        what: format!("cluster_state:ok on {addr}"),
                        after_ms: 30_000,
                        detail: format!("\n{info}"),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Polls `CLUSTER NODES` of every live node until `ok` holds for each.
    async fn wait_nodes(&self, what: &str, ok: impl Fn(&str) -> bool) -> Result<(), BenchError> {
        let limit = Duration::from_secs(30);
        let started = Instant::now();
        for addr in self.seeds() {
            loop {
                let nodes: String = admin(&addr, &["CLUSTER", "NODES"], "CLUSTER NODES").await?;
                if ok(&nodes) {
                    break;
                }
                if started.elapsed() > limit {
                    return Err(BenchError::TimedOut {
                        what: format!("{what} ({addr})"),
                        after_ms: limit.as_millis(),
                        detail: format!("\n{nodes}"),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Every live node's `host:port`.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flatten()
            .map(ValkeyProcess::addr)
            .collect()
    }

    /// The primary of `shard` as formed (before any failover).
    pub fn primary(&self, shard: usize) -> Option<String> {
        self.nodes
            .get(shard)
            .and_then(Option::as_ref)
            .map(ValkeyProcess::addr)
    }

    /// SIGKILLs node `index` (primaries are `0..shards`) and forgets it.
    ///
    /// # Errors
    /// [`BenchError::Signal`] when the process cannot be killed.
    pub fn kill(&mut self, index: usize) -> Result<(), BenchError> {
        if let Some(mut node) = self.nodes.get_mut(index).and_then(Option::take) {
            node.kill()?;
        }
        Ok(())
    }

    fn log_tails(&self) -> String {
        self.nodes.iter().flatten().map(|n| n.log_tail(6)).collect()
    }
}

/// The arguments of a cluster node as the operator renders its
/// directives: `cluster-node-timeout`, no replica migration behind the
/// operator's back, a ping to replicas every second.
pub(crate) fn cluster_server_args(node_timeout_ms: u64) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        &node_timeout_ms.to_string(),
        "--cluster-allow-replica-migration",
        "no",
        "--repl-ping-replica-period",
        "1",
        "--repl-timeout",
        "10",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The `shard`-th of `shards` even slot ranges, inclusive.
pub fn even_range(shard: u32, shards: u32) -> (u32, u32) {
    let slots = u32::from(SLOTS);
    let shards = shards.max(1);
    let start = slots.saturating_mul(shard) / shards;
    let end = (slots.saturating_mul(shard.saturating_add(1)) / shards).saturating_sub(1);
    (start, end)
}

/// Runs the reference `runs` times: a fresh `shards` × (1 + `replicas`)
/// cluster each time, the primary of shard `run % shards` killed.
///
/// # Guarantees
/// Every process a run starts is killed when the run ends.
///
/// # Errors
/// [`BenchError`] when a cluster does not form, no replica takes the shard
/// over within the node timeout + 30 s, or the keys cannot be read back.
pub async fn run_cluster_reference(
    shards: usize,
    replicas: usize,
    node_timeout_ms: u64,
    runs: usize,
    progress: &mut dyn FnMut(usize, &ClusterRun),
) -> Result<Vec<ClusterRun>, BenchError> {
    let mut results = Vec::with_capacity(runs);
    for run in 0..runs {
        let result = reference_run(shards, replicas, node_timeout_ms, run).await?;
        progress(run, &result);
        results.push(result);
    }
    Ok(results)
}

async fn reference_run(
    shards: usize,
    replicas: usize,
    node_timeout_ms: u64,
    run: usize,
) -> Result<ClusterRun, BenchError> {
    let mut cluster = ReferenceCluster::start(shards, replicas, node_timeout_ms).await?;
    let victim_index = run % shards.max(1);
    let victim = cluster
        .primary(victim_index)
        .ok_or_else(|| super::harness("the victim")(format!("no shard {victim_index}")))?;
    let seeds = cluster.seeds();
    let ranges = slot_map(&seeds, None).await?.ranges_of(&victim);
    let prefix = format!("bench:cluster:valkey:{run}");
    let probe = ShardProbe::start(ClusterProbeConfig::new(seeds, prefix)).await?;
    probe.warm_up(&victim, WARM_UP_SHARD_ACKED).await?;
    let writer = probe
        .of(&victim)
        .ok_or_else(|| super::harness("the victim's writer")(victim.clone()))?;

    let fault_at = Instant::now();
    let fault_wall = Timestamp::now();
    cluster.kill(victim_index)?;
    let live = cluster.seeds();
    let limit = Duration::from_millis(node_timeout_ms).saturating_add(Duration::from_secs(30));
    // Nobody restarts the killed primary: with one replica per shard, the
    // new primary has none left and can acknowledge nothing.
    let expect_ack = replicas >= 2;
    let started = Instant::now();
    let mut accepted_at: Option<Instant> = None;
    // Served again: a live node names another primary for the shard, and
    // that primary acknowledged a write (accepted one, without replicas).
    let new_primary = loop {
        let owner = match slot_map(&live, None).await {
            Ok(map) => ranges
                .first()
                .and_then(|(slot, _)| map.owner(*slot))
                .filter(|owner| ***owner != *victim)
                .map(|owner| owner.to_string()),
            Err(_) => None,
        };
        if let Some(owner) = owner {
            let r = recovery(&writer.snapshot(), fault_at, &owner);
            if r.accepted.is_some() {
                let since = *accepted_at.get_or_insert_with(Instant::now);
                if r.acknowledged.is_some() || !expect_ack || since.elapsed() > ACK_GRACE {
                    break owner;
                }
            }
        }
        if started.elapsed() > limit.saturating_add(ACK_GRACE) {
            return Err(BenchError::TimedOut {
                what: format!("a replica to take over {victim}'s slots and take writes"),
                after_ms: limit.saturating_add(ACK_GRACE).as_millis(),
                detail: cluster.log_tails(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(TAIL).await;
    let logs = probe.stop().await;
    let (lost_acked, acked) = lost_writes(&logs, &live, None).await?;
    let victim_log = logs.iter().find(|s| s.primary == victim).map(|s| &s.log);
    Ok(ClusterRun {
        recovery: victim_log
            .map(|log| recovery(log, fault_at, &new_primary))
            .unwrap_or_default(),
        lost_acked,
        acked,
        failovers: 1,
        others_gap: others_gap(&logs, &victim, fault_at),
        fault_wall,
        new_primary,
        journal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ranges_cover_every_slot_once() {
        assert_eq!(even_range(0, 3), (0, 5460));
        assert_eq!(even_range(1, 3), (5461, 10921));
        assert_eq!(even_range(2, 3), (10922, 16383));
        assert_eq!(even_range(0, 1), (0, 16383));
        let mut next = 0;
        for shard in 0..7 {
            let (start, end) = even_range(shard, 7);
            assert_eq!(start, next);
            next = end + 1;
        }
        assert_eq!(next, 16384);
    }
}
