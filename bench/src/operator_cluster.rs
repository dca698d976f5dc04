//! The operator's Cluster rows of `logbook-bench failover`: a 3-shard
//! `topology: Cluster` ValkeyCluster (`cluster-node-timeout` 5000,
//! persistence off like the reference's servers) in an in-process
//! localkube with the operator beside it, one writer per shard
//! ([`ShardProbe`]), and a shard primary killed (SIGKILL; the kubelet
//! restarts the process in place) or its pod deleted.
//!
//! A run lasts until the victim shard's new primary acknowledged a write
//! (or, with no replica left to acknowledge, accepted one and
//! [`ACK_GRACE`] passed) *and* at least the node timeout plus two seconds
//! passed since the fault *and* the status is Ready: a restarted process
//! that answers at once could still lose its shard to Valkey's own
//! election later, and that second gap must be inside the log.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use logbook::valkey::Password;
use logbook_crds::{ClusterPhase, ValkeyCluster};
use logbook_journal::Timestamp;

use super::cluster_client::slot_map;
use super::cluster_journal::{JournalTimes, journal_times};
use super::cluster_writer::ClusterProbeConfig;
use super::operator::start_local;
use super::shard_probe::{ShardProbe, lost_writes, others_gap, recovery};
use super::writer::WriteLog;
use super::{BenchError, ClusterRun, harness};

const NS: &str = "default";
const NAME: &str = "bench-cluster";
const PORT: u16 = 6379;

/// Shards of the benchmarked cluster.
pub const SHARDS: usize = 3;

/// How long a run waits, once the new primary accepts writes, for one it
/// acknowledges: with one replica per shard, the replacement must sync
/// first (after the cluster's 5 s full-sync delay).
pub const ACK_GRACE: Duration = Duration::from_secs(20);

/// What happens to a shard primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterScenario {
    /// SIGKILL to its process (the kubelet restarts it in place at once).
    Kill,
    /// Its pod deleted.
    DeletePod,
    /// SIGSTOP to its processes (SIGCONT once the shard is served again).
    Freeze,
    /// `DEBUG SLEEP 1` on it: must not fail over.
    DebugSleep,
    /// A `SORT` keeping it busy about a second ([`crate::slow_command`]):
    /// must not fail over.
    SlowCommand,
}

impl ClusterScenario {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            ClusterScenario::Kill => "cluster, operator: shard primary process killed (SIGKILL)",
            ClusterScenario::DeletePod => "cluster, operator: shard primary pod deleted",
            ClusterScenario::Freeze => "cluster, operator: shard primary frozen (SIGSTOP)",
            ClusterScenario::DebugSleep => "cluster, operator: DEBUG SLEEP 1 on a shard primary",
            ClusterScenario::SlowCommand => "cluster, operator: a 1 s SORT on a shard primary",
        }
    }
}

/// localkube, the operator and a Ready 3 × (1 + R) cluster.
pub struct OperatorClusterBench {
    server: logbook_localkube::RunningServer,
    operator: Option<logbook::local_cluster::OperatorTask>,
    client: kube::Client,
    password: Option<Password>,
    node_timeout_ms: u64,
    replicas: usize,
    /// localkube's and the operator's work directory; the journal is in
    /// `journal/`.
    dir: tempfile::TempDir,
    /// `--trace`: each run's victim-shard attempts around the fault go to
    /// stderr.
    trace: bool,
}

impl OperatorClusterBench {
    /// Starts localkube and the operator, creates the cluster (3 shards of
    /// a primary and `replicas` replicas) and waits until it is Ready with
    /// every slot served.
    ///
    /// # Errors
    /// When anything fails to start or the cluster is not Ready in 120 s.
    pub async fn start(node_timeout_ms: u64, replicas: usize) -> Result<Self, BenchError> {
        let (server, operator, client, dir) = start_local().await?;
        let mut bench = OperatorClusterBench {
            server,
            operator: Some(operator),
            client,
            password: None,
            node_timeout_ms,
            replicas,
            dir,
            trace: false,
        };
        bench.create().await?;
        Ok(bench)
    }

    /// `--trace`: each run's attempts on the victim's shard around the
    /// fault are printed to stderr with the fault's wall-clock time (the
    /// operator's journal and log use the same clock).
    #[must_use]
    pub fn traced(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    async fn create(&mut self) -> Result<(), BenchError> {
        let vkc: ValkeyCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "valkey.logbook.dev/v1alpha1",
            "kind": "ValkeyCluster",
            "metadata": {"name": NAME, "namespace": NS},
            "spec": {
                "topology": "Cluster",
                "shards": SHARDS,
                "replicasPerShard": self.replicas,
                "clusterNodeTimeoutMilliseconds": self.node_timeout_ms,
                "storage": {"persistence": "None"},
                // DEBUG SLEEP from the host (a local connection here).
                "config": {"enable-debug-command": "local"}
            }
        }))
        .map_err(|e| harness("the ValkeyCluster")(e.to_string()))?;
        Api::<ValkeyCluster>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &vkc)
            .await
            .map_err(|e| harness("creating the ValkeyCluster")(e.to_string()))?;
        self.wait_ready(Duration::from_secs(120)).await?;
        let secret = Api::<Secret>::namespaced(self.client.clone(), NS)
            .get(&format!("{NAME}-password"))
            .await
            .map_err(|e| harness("the password Secret")(e.to_string()))?;
        let password = secret
            .data
            .and_then(|d| d.get("password").cloned())
            .and_then(|b| String::from_utf8(b.0).ok())
            .ok_or_else(|| harness("the password")("missing".into()))?;
        self.password = Some(Password::new(password));
        Ok(())
    }

    async fn cluster(&self) -> Result<ValkeyCluster, BenchError> {
        Api::<ValkeyCluster>::namespaced(self.client.clone(), NS)
            .get(NAME)
            .await
            .map_err(|e| harness("reading the ValkeyCluster")(e.to_string()))
    }

    /// Ready, every shard with its primary and replicas, all slots served.
    async fn wait_ready(&self, limit: Duration) -> Result<ValkeyCluster, BenchError> {
        let started = Instant::now();
        loop {
            let vkc = self.cluster().await?;
            if cluster_ready(&vkc, self.replicas) {
                return Ok(vkc);
            }
            if started.elapsed() > limit {
                return Err(harness("waiting for the cluster to be Ready")(format!(
                    "status: {:?}",
                    vkc.status
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn pod_addr(&self, pod: &str) -> Result<String, BenchError> {
        let pod = Api::<Pod>::namespaced(self.client.clone(), NS)
            .get(pod)
            .await
            .map_err(|e| harness("a cluster pod")(e.to_string()))?;
        let ip = pod
            .status
            .and_then(|s| s.pod_ip)
            .ok_or_else(|| harness("a cluster pod's IP")("none".into()))?;
        Ok(format!("{ip}:{PORT}"))
    }

    /// Every pod's `ip:6379`, the probe's seeds.
    async fn seeds(&self, vkc: &ValkeyCluster) -> Result<Vec<String>, BenchError> {
        let mut seeds = Vec::new();
        for shard in vkc.status.iter().flat_map(|s| s.shards.iter()) {
            for pod in shard.primary.iter().chain(shard.replicas.iter()) {
                seeds.push(self.pod_addr(pod).await?);
            }
        }
        Ok(seeds)
    }

    /// One run: the primary of shard `run % 3` killed or deleted.
    ///
    /// # Errors
    /// Harness failures (the cluster not Ready again in 90 s included).
    pub async fn run(
        &self,
        scenario: ClusterScenario,
        run: usize,
    ) -> Result<ClusterRun, BenchError> {
        let vkc = self.wait_ready(Duration::from_secs(60)).await?;
        let shard_index = run % SHARDS;
        let victim = vkc
            .status
            .as_ref()
            .and_then(|s| s.shards.get(shard_index))
            .and_then(|s| s.primary.clone())
            .ok_or_else(|| harness("the victim")(format!("shard {shard_index} has no primary")))?;
        let victim_addr = self.pod_addr(&victim).await?;
        let seeds = self.seeds(&vkc).await?;
        let ranges = slot_map(&seeds, self.password.as_ref())
            .await?
            .ranges_of(&victim_addr);
        if ranges.is_empty() {
            return Err(harness("the victim's slots")(format!(
                "{victim} ({victim_addr}) serves none"
            )));
        }
        let before = last_failover(&vkc);
        // The slow command's list lives in one of the victim's slots;
        // sized (one SORT of it) before the writers start.
        let slow_list = if scenario == ClusterScenario::SlowCommand {
            let list = crate::slow_command::list_in(&ranges)
                .ok_or_else(|| harness("the slow command's list")(format!("{ranges:?}")))?;
            crate::slow_command::prepare(&victim_addr, self.password.as_ref(), &list).await?;
            self.wait_ready(Duration::from_secs(120)).await?;
            Some(list)
        } else {
            None
        };
        let mut config =
            ClusterProbeConfig::new(seeds.clone(), format!("bench:cluster:{scenario:?}:{run}"));
        config.password = self.password.clone();
        let probe = ShardProbe::start(config).await?;
        probe
            .warm_up(&victim_addr, super::cluster_reference::WARM_UP_SHARD_ACKED)
            .await?;
        let writer = probe
            .of(&victim_addr)
            .ok_or_else(|| harness("the victim's writer")(victim_addr.clone()))?;

        let fault_at = Instant::now();
        let fault_wall = Timestamp::now();
        match scenario {
            ClusterScenario::Kill => self
                .server
                .faults()
                .ok_or_else(|| harness("faults")("no kubelet".into()))?
                .kill(NS, &victim, None)
                .await
                .map_err(|e| harness("kill")(e.to_string()))?,
            ClusterScenario::DeletePod => {
                Api::<Pod>::namespaced(self.client.clone(), NS)
                    .delete(&victim, &DeleteParams::default())
                    .await
                    .map_err(|e| harness("deleting the primary pod")(e.to_string()))?;
            }
            ClusterScenario::Freeze => self
                .server
                .faults()
                .ok_or_else(|| harness("faults")("no kubelet".into()))?
                .freeze(NS, &victim)
                .await
                .map_err(|e| harness("freeze")(e.to_string()))?,
            ClusterScenario::DebugSleep => {
                crate::slow_command::debug_sleep(&victim_addr, self.password.as_ref()).await?;
            }
            ClusterScenario::SlowCommand => {
                let list = slow_list.as_deref().unwrap_or(crate::slow_command::LIST);
                crate::slow_command::run(&victim_addr, self.password.as_ref(), list).await?;
            }
        }
        let mut frozen = scenario == ClusterScenario::Freeze;
        let settle =
            Duration::from_millis(self.node_timeout_ms).saturating_add(Duration::from_secs(2));
        let limit = Duration::from_secs(90);
        let vkc = loop {
            let elapsed = fault_at.elapsed();
            let log = writer.snapshot();
            // The node the writer's client now routes the shard to.
            let served = owner_now(&log).is_some_and(|owner| {
                let r = recovery(&log, fault_at, owner);
                r.acknowledged.is_some()
                    || (r.accepted.is_some() && elapsed >= settle.saturating_add(ACK_GRACE))
            });
            // A frozen primary is let go once its shard is served elsewhere:
            // it must rejoin (as a replica) before the cluster is Ready.
            if frozen && served {
                self.server
                    .faults()
                    .ok_or_else(|| harness("faults")("no kubelet".into()))?
                    .thaw(NS, &victim)
                    .await
                    .map_err(|e| harness("thaw")(e.to_string()))?;
                frozen = false;
            }
            if elapsed >= settle
                && served
                && let Ok(now) = self.cluster().await
                && cluster_ready(&now, self.replicas)
            {
                break now;
            }
            if elapsed > limit {
                return Err(harness("waiting for the shard to be served and Ready")(
                    format!(
                        "{scenario:?} run {run}: {victim} ({victim_addr}), slots {ranges:?}; last attempt {:?}",
                        log.attempts.last()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let logs = probe.stop().await;
        let seeds = self.seeds(&vkc).await?;
        // The shard's primary now, as the cluster states it.
        let map = slot_map(&seeds, self.password.as_ref()).await?;
        let new_primary = ranges
            .first()
            .and_then(|(slot, _)| map.owner(*slot))
            .map(|a| a.to_string())
            .unwrap_or_default();
        let (lost_acked, acked) = lost_writes(&logs, &seeds, self.password.as_ref()).await?;
        let moved = vkc
            .status
            .as_ref()
            .and_then(|s| s.shards.get(shard_index))
            .and_then(|s| s.primary.as_deref())
            != Some(victim.as_str());
        let failovers = usize::from(last_failover(&vkc) != before || moved);
        if scenario == ClusterScenario::Kill {
            // Harness reset, after the read-back: a pod whose process was
            // killed several times is in the kubelet's crash-loop backoff
            // (10 s doubling, as on a real node); a fresh pod starts at once.
            let _ = Api::<Pod>::namespaced(self.client.clone(), NS)
                .delete(&victim, &DeleteParams::default())
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.wait_ready(Duration::from_secs(90)).await?;
        }
        let victim_log = logs
            .iter()
            .find(|s| s.primary == victim_addr)
            .map(|s| &s.log);
        if self.trace
            && let Some(log) = victim_log
        {
            eprintln!(
                "trace: {scenario:?} run {}: {victim} ({victim_addr}) faulted at {}; now {new_primary}\n{}",
                run + 1,
                fault_wall,
                log.describe_around(fault_at, Duration::from_millis(30))
            );
        }
        Ok(ClusterRun {
            recovery: victim_log
                .map(|log| recovery(log, fault_at, &new_primary))
                .unwrap_or_default(),
            lost_acked,
            acked,
            failovers,
            others_gap: others_gap(&logs, &victim_addr, fault_at),
            fault_wall,
            new_primary,
            journal: None,
        })
    }

    /// Stops the operator, reads its journal's account of each fault at
    /// `faults` (wall clock, in time order), and stops localkube.
    ///
    /// # Errors
    /// When the journal cannot be read (localkube is stopped all the same).
    pub async fn stop(mut self, faults: &[Timestamp]) -> Result<Vec<JournalTimes>, BenchError> {
        if let Some((stop, task)) = self.operator.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        let journal: PathBuf = self.dir.path().join("journal");
        let times = journal_times(&journal, faults).await;
        self.server.shutdown().await;
        times
    }
}

/// The node the writer's client sends the shard's writes to now: the one
/// that accepted its latest successful write.
fn owner_now(log: &WriteLog) -> Option<&str> {
    log.attempts
        .iter()
        .rev()
        .find(|a| a.succeeded())
        .and_then(|a| a.server.as_deref())
}

/// The status's record of the last primary change (its journal seq and
/// the pod it moved from).
fn last_failover(vkc: &ValkeyCluster) -> Option<(Option<i64>, Option<String>)> {
    vkc.status
        .as_ref()
        .and_then(|s| s.last_failover.as_ref())
        .map(|f| (f.seq, f.from.clone()))
}

/// Ready, the spec's generation observed, 3 shards each with a primary and
/// its `replicas` replicas, and all 16384 slots served.
fn cluster_ready(vkc: &ValkeyCluster, replicas: usize) -> bool {
    ready_with(vkc, SHARDS, replicas)
}

/// Ready, the spec's generation observed, `shards` shards each with a
/// primary and its `replicas` replicas, and all 16384 slots served.
pub(crate) fn ready_with(vkc: &ValkeyCluster, shards: usize, replicas: usize) -> bool {
    let Some(status) = &vkc.status else {
        return false;
    };
    let slots: i64 = status
        .shards
        .iter()
        .flat_map(|s| s.slots.iter())
        .map(|r| i64::from(r.end) - i64::from(r.start) + 1)
        .sum();
    status.phase == Some(ClusterPhase::Ready)
        && status.observed_generation == vkc.metadata.generation
        && status.shards.len() == shards
        && status
            .shards
            .iter()
            .all(|s| s.primary.is_some() && s.replicas.len() == replicas)
        && slots == 16_384
}
