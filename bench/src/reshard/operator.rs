//! The operator's reshard: localkube in-process with the operator beside
//! it (as the Cluster failover bench runs them), a 3-shard `topology:
//! Cluster` ValkeyCluster with the raw clusters' node timeout and no
//! persistence, N keys loaded through the pods, then `spec.shards`
//! patched 3 → 4.
//!
//! The time runs from the patch to the first poll at which every pod of
//! the four shards answers, every node's `CLUSTER NODES` states the same
//! even split over four primaries with no slot open, and no primary lists
//! a slot migration in progress. The bench watches the slot map through
//! the Valkey nodes themselves, not through the status, so the figure is
//! what clients see; the status is read for one thing while it waits: a
//! `SpecValid=False` for the patched generation, which ends the run with
//! the operator's own message (this operator version refuses a change of
//! `shards` until resharding is built). Once balanced, the time until the
//! status says Ready with every shard is recorded beside it.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use logbook::valkey::Password;
use logbook_crds::ValkeyCluster;
use logbook_crds::v1alpha1::CONDITION_SPEC_VALID;

use super::nodes::Nodes;
use super::plan::{Balance, Owners, Want, balance, owners_of};
use crate::operator::start_local;
use crate::operator_cluster::ready_with;
use crate::{BenchError, harness};

const NS: &str = "default";
const NAME: &str = "reshard";
const PORT: u16 = 6379;

/// How long the cluster may take to be Ready at first.
const READY_LIMIT: Duration = Duration::from_secs(180);

/// How long the reshard may take before the run fails.
const LIMIT: Duration = Duration::from_secs(900);

/// How long the status may take to say Ready once the slots are balanced.
const READY_AFTER_LIMIT: Duration = Duration::from_secs(120);

/// How often the nodes and the status are polled.
const POLL: Duration = Duration::from_millis(10);

/// Why the operator's run ended without a time.
#[derive(Debug, thiserror::Error)]
pub enum OperatorReshardError {
    /// The operator refused the new `spec.shards`: its `SpecValid`
    /// condition's message.
    #[error("the operator refused spec.shards {from} → {to}: {message}")]
    Refused {
        /// Shards before.
        from: usize,
        /// Shards asked for.
        to: usize,
        /// The condition's message.
        message: String,
    },
    /// The harness failed (localkube, the cluster, a timeout).
    #[error(transparent)]
    Bench(#[from] BenchError),
}

/// localkube, the operator and a Ready cluster of `shards` shards.
pub(crate) struct OperatorCluster {
    server: logbook_localkube::RunningServer,
    operator: Option<logbook::local_cluster::OperatorTask>,
    client: kube::Client,
    password: Option<Password>,
    replicas: usize,
    shards: usize,
    /// localkube's and the operator's work directory.
    _dir: tempfile::TempDir,
}

/// What one operator reshard measured.
pub(crate) struct OperatorReshard {
    /// From the patch to balanced and agreed.
    pub elapsed: Duration,
    /// When the patch was sent.
    pub started: Instant,
    /// From the patch to the status Ready with every shard, if it came.
    pub ready_after: Option<Duration>,
    /// The ownership before.
    pub before: Owners,
    /// The ownership after.
    pub after: Owners,
}

impl OperatorCluster {
    /// Starts localkube and the operator and creates the cluster; waits
    /// until it is Ready with every shard and slot.
    ///
    /// # Errors
    /// When anything fails to start or the cluster is not Ready in
    /// [`READY_LIMIT`].
    pub(crate) async fn start(shards: usize, replicas: usize) -> Result<Self, BenchError> {
        let (server, operator, client, dir) = start_local().await?;
        let mut cluster = OperatorCluster {
            server,
            operator: Some(operator),
            client,
            password: None,
            replicas,
            shards,
            _dir: dir,
        };
        let vkc: ValkeyCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "valkey.logbook.dev/v1alpha1",
            "kind": "ValkeyCluster",
            "metadata": {"name": NAME, "namespace": NS},
            "spec": {
                "topology": "Cluster",
                "shards": shards,
                "replicasPerShard": replicas,
                "clusterNodeTimeoutMilliseconds": super::cluster::NODE_TIMEOUT_MS,
                "storage": {"persistence": "None"}
            }
        }))
        .map_err(|e| harness("the ValkeyCluster")(e.to_string()))?;
        cluster
            .api()
            .create(&PostParams::default(), &vkc)
            .await
            .map_err(|e| harness("creating the ValkeyCluster")(e.to_string()))?;
        let started = Instant::now();
        loop {
            let vkc = cluster.get().await?;
            if ready_with(&vkc, shards, replicas) {
                break;
            }
            if started.elapsed() > READY_LIMIT {
                return Err(harness("waiting for the cluster to be Ready")(format!(
                    "status: {:?}",
                    vkc.status
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let secret = Api::<Secret>::namespaced(cluster.client.clone(), NS)
            .get(&format!("{NAME}-password"))
            .await
            .map_err(|e| harness("the password Secret")(e.to_string()))?;
        let password = secret
            .data
            .and_then(|d| d.get("password").cloned())
            .and_then(|b| String::from_utf8(b.0).ok())
            .ok_or_else(|| harness("the password")("missing".into()))?;
        cluster.password = Some(Password::new(password));
        Ok(cluster)
    }

    fn api(&self) -> Api<ValkeyCluster> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn get(&self) -> Result<ValkeyCluster, BenchError> {
        self.api()
            .get(NAME)
            .await
            .map_err(|e| harness("reading the ValkeyCluster")(e.to_string()))
    }

    /// The password of the cluster's nodes.
    pub(crate) fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }

    /// `ip:6379` of every running pod of the cluster.
    pub(crate) async fn addrs(&self) -> Result<Vec<String>, BenchError> {
        let selector = logbook::resources::labels::selector_string(NAME);
        let pods = Api::<Pod>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| harness("listing the cluster's pods")(e.to_string()))?;
        let mut addrs: Vec<String> = pods
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.status)
            .filter(|s| s.phase.as_deref() == Some("Running"))
            .filter_map(|s| s.pod_ip)
            .map(|ip| crate::conn::join_addr(&ip, PORT))
            .collect();
        addrs.sort();
        Ok(addrs)
    }

    /// Patches `spec.shards` to `to` and waits until the nodes state an
    /// even split over `to` primaries, agreed, with nothing migrating;
    /// then for the status to say Ready (untimed beyond the record).
    ///
    /// # Errors
    /// [`OperatorReshardError::Refused`] when the status refuses the
    /// patched generation; harness failures and [`LIMIT`] otherwise.
    pub(crate) async fn reshard(&self, to: usize) -> Result<OperatorReshard, OperatorReshardError> {
        let mut nodes = Nodes::new(self.password.clone());
        let seeds = self.addrs().await?;
        let first = seeds.first().cloned().unwrap_or_default();
        let before = owners_of(&nodes.cluster_nodes(&first).await?);
        let want_pods = to.saturating_mul(self.replicas.saturating_add(1));
        // v1beta1's place of v1alpha1's `spec.shards`.
        let patch = serde_json::json!({"spec": {"cluster": {"shards": to}}});

        let started = Instant::now();
        let patched = self
            .api()
            .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| harness("patching spec.shards")(e.to_string()))?;
        let generation = patched.metadata.generation.unwrap_or(0);
        let (elapsed, after) = loop {
            let vkc = self.get().await?;
            if let Some(message) = refusal(&vkc, generation) {
                return Err(OperatorReshardError::Refused {
                    from: self.shards,
                    to,
                    message,
                });
            }
            let addrs = self.addrs().await?;
            let why = if addrs.len() == want_pods {
                match balanced(&mut nodes, &addrs, to).await {
                    Ok(after) => break (started.elapsed(), after),
                    Err(reason) => reason,
                }
            } else {
                format!("{} of {want_pods} pods running", addrs.len())
            };
            if started.elapsed() > LIMIT {
                return Err(BenchError::TimedOut {
                    what: format!("the operator's reshard to {to} shards"),
                    after_ms: LIMIT.as_millis(),
                    detail: format!("\n  {why}\n  status: {:?}", vkc.status),
                }
                .into());
            }
            tokio::time::sleep(POLL).await;
        };
        let mut ready_after = None;
        while started.elapsed() < elapsed.saturating_add(READY_AFTER_LIMIT) {
            let vkc = self.get().await?;
            if vkc
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .is_some_and(|g| g >= generation)
                && ready_with(&vkc, to, self.replicas)
            {
                ready_after = Some(started.elapsed());
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(OperatorReshard {
            elapsed,
            started,
            ready_after,
            before,
            after,
        })
    }

    /// Stops the operator, then localkube (which stops the pods).
    pub(crate) async fn stop(mut self) {
        if let Some((stop, task)) = self.operator.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.server.shutdown().await;
    }
}

/// The ownership when the nodes of `addrs` state an even split over
/// `primaries` primaries, agreed, and no primary lists a migration in
/// progress; else why not.
async fn balanced(nodes: &mut Nodes, addrs: &[String], primaries: usize) -> Result<Owners, String> {
    let views = nodes.views(addrs).await.map_err(|e| e.to_string())?;
    let owners = match balance(&views, Want::EvenOver(primaries)) {
        Balance::Balanced(owners) => owners,
        Balance::NotYet(why) => return Err(why),
    };
    if let Some(why) = nodes.not_serving(addrs).await.map_err(|e| e.to_string())? {
        return Err(why);
    }
    for (addr, lines) in &views {
        let primary = lines.iter().any(|l| l.myself && l.primary);
        if !primary {
            continue;
        }
        let jobs = nodes
            .slot_migrations(addr)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(job) = jobs.iter().find(|j| !j.state.is_terminal()) {
            return Err(format!(
                "{addr}: migration {} of {:?} still {:?}",
                job.name, job.slot_ranges, job.state
            ));
        }
    }
    Ok(owners)
}

/// The message of the `SpecValid=False` condition when the status has
/// seen generation `generation` (or a later one) and refused it.
pub(crate) fn refusal(vkc: &ValkeyCluster, generation: i64) -> Option<String> {
    let status = vkc.status.as_ref()?;
    if status.observed_generation? < generation {
        return None;
    }
    status
        .condition(CONDITION_SPEC_VALID)
        .filter(|c| c.status == "False")
        .map(|c| c.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(generation: i64, observed: i64, valid: &str, message: &str) -> ValkeyCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "valkey.logbook.dev/v1alpha1",
            "kind": "ValkeyCluster",
            "metadata": {"name": "r", "namespace": "default", "generation": generation},
            "spec": {"topology": "Cluster", "shards": 4},
            "status": {
                "phase": "Ready",
                "observedGeneration": observed,
                "conditions": [{
                    "type": "SpecValid",
                    "status": valid,
                    "reason": "SpecRejected",
                    "message": message,
                    "lastTransitionTime": "2025-01-01T00:00:00Z"
                }]
            }
        }))
        .unwrap_or_else(|_| ValkeyCluster::new("bad", logbook_crds::ValkeyClusterSpec::default()))
    }

    #[test]
    fn a_refusal_of_the_patched_generation_is_reported_with_its_message() {
        let why =
            "spec.shards: changing the shards of a running Cluster (3 → 4) is not supported yet";
        assert_eq!(
            refusal(&cluster(2, 2, "False", why), 2),
            Some(why.to_owned())
        );
        // An older generation's verdict says nothing about the patch.
        assert_eq!(refusal(&cluster(2, 1, "False", why), 2), None);
        assert_eq!(refusal(&cluster(2, 2, "True", "ok"), 2), None);
        assert_eq!(
            refusal(
                &ValkeyCluster::new("x", logbook_crds::ValkeyClusterSpec::default()),
                2
            ),
            None
        );
    }
}
