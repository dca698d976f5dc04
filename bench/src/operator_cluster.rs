//! The operator's Cluster rows of `logbook-bench failover`: a 3 × 1
//! `topology: Cluster` ValkeyCluster (`cluster-node-timeout` 5000,
//! persistence off like the reference's servers) in an in-process
//! localkube with the operator beside it, a cluster-aware probe writing to
//! every shard, and a shard primary killed (SIGKILL; the kubelet restarts
//! the process in place) or its pod deleted.
//!
//! A run lasts until the victim's slots took a write again *and* at least
//! the node timeout plus two seconds passed since the fault *and* the
//! status is Ready: a restarted process that answers at once could still
//! lose its shard to Valkey's own election later, and that second gap
//! must be inside the log.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use logbook::valkey::Password;
use logbook_crds::{ClusterPhase, ValkeyCluster};

use super::cluster_client::{missing_in_cluster, slot_map};
use super::cluster_writer::{
    ClusterProbeConfig, shard_acked, shard_log, shard_success_after, start_cluster_probe,
};
use super::operator::start_local;
use super::{BenchError, ClusterRun, RunResult, harness};

const NS: &str = "default";
const NAME: &str = "bench-cluster";
const PORT: u16 = 6379;

/// Shards and replicas of the benchmarked cluster.
pub const SHARDS: usize = 3;
/// Replicas per shard.
pub const REPLICAS_PER_SHARD: usize = 1;

/// What happens to a shard primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterScenario {
    /// SIGKILL to its process (the kubelet restarts it in place at once).
    Kill,
    /// Its pod deleted.
    DeletePod,
}

impl ClusterScenario {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            ClusterScenario::Kill => "cluster, operator: shard primary process killed (SIGKILL)",
            ClusterScenario::DeletePod => "cluster, operator: shard primary pod deleted",
        }
    }
}

/// localkube, the operator and a Ready 3 × 1 cluster.
pub struct OperatorClusterBench {
    server: logbook_localkube::RunningServer,
    operator: Option<logbook::local_cluster::OperatorTask>,
    client: kube::Client,
    password: Option<Password>,
    node_timeout_ms: u64,
    _dir: tempfile::TempDir,
}

impl OperatorClusterBench {
    /// Starts localkube and the operator, creates the cluster and waits
    /// until it is Ready with every slot served.
    ///
    /// # Errors
    /// When anything fails to start or the cluster is not Ready in 120 s.
    pub async fn start(node_timeout_ms: u64) -> Result<Self, BenchError> {
        let (server, operator, client, dir) = start_local().await?;
        let mut bench = OperatorClusterBench {
            server,
            operator: Some(operator),
            client,
            password: None,
            node_timeout_ms,
            _dir: dir,
        };
        bench.create().await?;
        Ok(bench)
    }

    async fn create(&mut self) -> Result<(), BenchError> {
        let vkc: ValkeyCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "valkey.logbook.dev/v1alpha1",
            "kind": "ValkeyCluster",
            "metadata": {"name": NAME, "namespace": NS},
            "spec": {
                "topology": "Cluster",
                "shards": SHARDS,
                "replicasPerShard": REPLICAS_PER_SHARD,
                "clusterNodeTimeoutMilliseconds": self.node_timeout_ms,
                "storage": {"persistence": "None"}
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
            if cluster_ready(&vkc) {
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
        let mut config =
            ClusterProbeConfig::new(seeds.clone(), format!("bench:cluster:{scenario:?}:{run}"));
        config.password = self.password.clone();
        let probe = start_cluster_probe(config);
        shard_acked(
            &probe,
            &ranges,
            super::cluster_reference::WARM_UP_SHARD_ACKED,
        )
        .await?;

        let fault_at = Instant::now();
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
        }
        let settle =
            Duration::from_millis(self.node_timeout_ms).saturating_add(Duration::from_secs(2));
        let limit = Duration::from_secs(90);
        let vkc = loop {
            let elapsed = fault_at.elapsed();
            if elapsed >= settle
                && shard_success_after(&probe, &ranges, fault_at).is_some()
                && let Ok(now) = self.cluster().await
                && cluster_ready(&now)
            {
                break now;
            }
            if elapsed > limit {
                return Err(harness("waiting for the shard to be served and Ready")(
                    format!("{scenario:?} run {run}: {victim} ({victim_addr}), slots {ranges:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = probe.stop().await;
        let acked = log.acked_keys();
        let seeds = self.seeds(&vkc).await?;
        let missing =
            missing_in_cluster(&seeds, self.password.as_ref(), &log.prefix, &acked).await?;
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
        let shard = shard_log(&log, &ranges, true);
        let others = shard_log(&log, &ranges, false);
        Ok(ClusterRun {
            result: RunResult {
                window: shard.longest_gap_from(fault_at).unwrap_or_default(),
                lost_acked: missing.len(),
                acked: acked.len(),
                failovers,
            },
            others_gap: others.longest_gap_from(fault_at),
        })
    }

    /// Stops the operator and localkube.
    pub async fn stop(mut self) {
        if let Some((stop, task)) = self.operator.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.server.shutdown().await;
    }
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
/// its replicas, and all 16384 slots served.
fn cluster_ready(vkc: &ValkeyCluster) -> bool {
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
        && status.shards.len() == SHARDS
        && status
            .shards
            .iter()
            .all(|s| s.primary.is_some() && s.replicas.len() == REPLICAS_PER_SHARD)
        && slots == 16_384
}
