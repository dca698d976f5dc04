//! `logbook-bench soak`: a seeded, randomized fault-injection run of one
//! topology, with invariants checked all along and at the end.
//!
//! An in-process localkube with its process kubelet runs real
//! `valkey-server` pods; the operator is a real `logbook operator`
//! process (sled journal) that the soak kills and starts again. A client
//! writes all along (`SET`, then `WAIT` where there are replicas)
//! through the cluster's Service, its Sentinels, or as a cluster-aware
//! client. The faults come from [`schedule::schedule`] of the seed.
//!
//! # Invariants
//! * **No acknowledged write lost**: every write acknowledged (`OK`, and
//!   `WAIT 1` ≥ 1 where there are replicas, every replica under Sentinel,
//!   which promotes by stale offsets; Standalone writes with
//!   `appendfsync always`) is read back at the end.
//! * **Never two primaries of one shard at once**, as the servers answer
//!   (sampled every 250 ms, [`invariants`]) and as the journal records
//!   (the audit's two-primaries check).
//! * **Every slot owned exactly once** once converged (Cluster).
//! * **Convergence**: Ready, the spec's generation observed, every data
//!   pod answering and every replica linked, within `converge` of the
//!   last fault; then a write acknowledged.
//! * **The journal verifies and its audit is clean**: `logbook journal
//!   verify` and `logbook replay audit` (which also checks that every
//!   failover has a cause, that no wiped node was promoted, that no
//!   action outlived its leadership).
//!
//! A failure prints the seed and the command that runs the same schedule
//! again, and keeps the work directory: the journal, the operator's log,
//! every pod's log and the list of faults injected.

mod field_oracles;
pub mod history;
pub mod invariants;
mod journal_checks;
mod operator;
mod report;
pub mod schedule;
mod servers;
mod state;
mod trial_cluster;
mod trial_report;
pub mod trials;
mod user_trials;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use logbook_crds::ValkeyCluster;
use parking_lot::Mutex;

use self::operator::Operator;
pub use self::report::render;
use self::report::{count_failovers, writes_log};
use self::schedule::{FaultKind, SoakTopology, Step, schedule};
use self::servers::{
    Shared, back_to_full, converged, current, fault_gate, password, read_back, refresh_addrs,
    sample, service_addr, slot_check, status_line,
};
use super::resolve::Target;
use super::writer::{WriteProbe, WriteProbeConfig};
use logbook::local::pod_faults::PodFaults;

use super::{BenchError, harness};

const NS: &str = "default";
const NAME: &str = "soak";
/// Pod annotation a config roll changes.
const ROLL_ANNOTATION: &str = "soak.logbook.dev/roll";
const FAILOVER_REQUESTED: &str = "valkey.logbook.dev/failover-requested";
/// Data pods of the Sentinel soak (fixed: its writes wait for every
/// replica).
const SENTINEL_REPLICAS: i64 = 3;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The topology.
    pub topology: SoakTopology,
    /// The schedule's seed.
    pub seed: u64,
    /// How long faults are injected.
    pub duration: Duration,
    /// Mean time between faults.
    pub interval: Duration,
    /// The `logbook` binary run as the operator.
    pub binary: PathBuf,
    /// How long the cluster has to converge after the last fault.
    pub converge: Duration,
    /// Keep the work directory even when every invariant held.
    pub keep: bool,
    /// What the cluster runs on.
    pub control_plane: ControlPlane,
    /// The recorded history's client load (`clients` 0: none).
    pub history: history::HistoryLoad,
}

/// What a soak's cluster runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ControlPlane {
    /// localkube, in process, with its process kubelet.
    #[default]
    Local,
    /// etcd, kube-apiserver, kube-controller-manager and kube-scheduler
    /// (built by `make controlplane`), with localkube's kubelet and proxy
    /// as the node.
    Kubernetes,
    /// The same control plane with the real node: kubelet, containerd
    /// and runc running `make images`' images (`make node`;
    /// docs/node.md). The operator still runs on the host.
    Containers,
}

impl ControlPlane {
    /// `local` or `kubernetes`, in any case.
    pub fn parse(s: &str) -> Option<ControlPlane> {
        match s.to_ascii_lowercase().as_str() {
            "local" => Some(ControlPlane::Local),
            "kubernetes" => Some(ControlPlane::Kubernetes),
            "containers" => Some(ControlPlane::Containers),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ControlPlane::Local => "local",
            ControlPlane::Kubernetes => "kubernetes",
            ControlPlane::Containers => "containers",
        }
    }
}

impl SoakConfig {
    /// The command that runs this soak again.
    pub fn command(&self) -> String {
        format!(
            "logbook-bench soak --topology {} --seed {} --duration-seconds {} --interval-seconds {} --control-plane {} --history-clients {} --history-pace-milliseconds {} --operator-binary {}",
            self.topology.name(),
            self.seed,
            self.duration.as_secs(),
            self.interval.as_secs(),
            self.control_plane.name(),
            self.history.clients,
            self.history.pace.as_millis(),
            self.binary.display()
        )
    }
}

/// What one soak found.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The topology.
    pub topology: SoakTopology,
    /// The seed.
    pub seed: u64,
    /// The command that runs it again.
    pub command: String,
    /// Faults injected, by kind (the operator kills that followed another
    /// fault included).
    pub injected: BTreeMap<FaultKind, u32>,
    /// Node faults not injected: the cluster was not Ready within 20 s,
    /// or another node fault held.
    pub skipped: u32,
    /// Write attempts, and those acknowledged (each read back).
    pub attempts: usize,
    /// Acknowledged writes.
    pub acknowledged: usize,
    /// Rounds of `ROLE` sampling.
    pub role_rounds: u64,
    /// Of those, rounds in which a primary had a replica following it.
    pub acknowledging_rounds: u64,
    /// From the last fault to converged.
    pub converged_after: Option<Duration>,
    /// Failovers the journal records (`replay failovers`).
    pub journal_failovers: Option<usize>,
    /// What the recorded history showed (none without a history client).
    pub history: Option<history::HistoryFindings>,
    /// Each broken invariant, in words.
    pub violations: Vec<String>,
    /// The work directory, when kept.
    pub kept: Option<PathBuf>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl SoakReport {
    /// No invariant broken.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs one soak. Broken invariants are in the report; `Err` is the
/// harness failing (localkube not starting, the cluster never Ready at
/// the start).
///
/// # Errors
/// [`BenchError`] when the soak cannot be set up.
pub async fn run_soak(config: &SoakConfig) -> Result<SoakReport, BenchError> {
    let started = Instant::now();
    let prefix = format!(
        "logbook-soak-{}-{}-",
        config.topology.name().to_lowercase(),
        config.seed
    );
    let (dir, result) = match config.control_plane {
        ControlPlane::Local => {
            let (dir, server) = super::start_local_kube(&prefix).await?;
            let result = async {
                let (kubeconfig, client) = super::api_client(&server, dir.path()).await?;
                let faults = server
                    .faults()
                    .ok_or_else(|| harness("faults")("no kubelet".into()))?;
                soak(
                    dir.path(),
                    kubeconfig,
                    client,
                    PodFaults::Local(faults),
                    config,
                )
                .await
            }
            .await;
            super::stop_local_kube(dir.path(), server).await;
            (dir, result)
        }
        ControlPlane::Kubernetes => {
            let dir = super::work_dir(&prefix)?;
            let k = logbook::local::kubernetes::LocalKubernetes::start(dir.path())
                .await
                .map_err(|e| harness("the real control plane")(e.to_string()))?;
            let kubeconfig = k.admin_kubeconfig().to_path_buf();
            let result = async {
                let client = logbook::kube_client::client(Some(&kubeconfig))
                    .await
                    .map_err(|e| harness("client")(e.to_string()))?;
                let faults = PodFaults::Local(k.faults());
                soak(dir.path(), kubeconfig.clone(), client, faults, config).await
            }
            .await;
            k.shutdown().await;
            (dir, result)
        }
        ControlPlane::Containers => {
            let (dir, root, c) = super::start_containers(&prefix).await?;
            let kubeconfig = c.admin_kubeconfig().to_path_buf();
            let result = async {
                let client = c
                    .client("admin")
                    .await
                    .map_err(|e| harness("client")(e.to_string()))?;
                let faults = PodFaults::Containers(c.faults(), client.clone());
                soak(&root, kubeconfig.clone(), client, faults, config).await
            }
            .await;
            c.shutdown().await;
            (dir, result)
        }
    };
    let mut report = result?;
    report.elapsed = started.elapsed();
    if config.keep || !report.passed() {
        report.kept = Some(dir.keep());
    }
    Ok(report)
}

fn spec_of(topology: SoakTopology) -> serde_json::Value {
    match topology {
        SoakTopology::Standalone => serde_json::json!({
            "topology": "Standalone",
            "storage": {"size": "1Gi", "persistence": "Aof"},
            "config": {"appendfsync": "always"}
        }),
        SoakTopology::Replication => serde_json::json!({
            "topology": "Replication",
            "replicas": 3,
            "storage": {"size": "1Gi", "persistence": "Rdb"}
        }),
        SoakTopology::Sentinel => serde_json::json!({
            "topology": "Sentinel",
            "replicas": SENTINEL_REPLICAS,
            "storage": {"size": "1Gi", "persistence": "Rdb"},
            "sentinel": {"replicas": 3, "quorum": 2, "downAfterMilliseconds": 5000,
                         "failoverTimeoutMilliseconds": 10000}
        }),
        SoakTopology::Cluster => serde_json::json!({
            "topology": "Cluster",
            "shards": 3,
            "replicasPerShard": 1,
            "storage": {"size": "1Gi", "persistence": "Rdb"}
        }),
    }
}

#[allow(clippy::too_many_lines)] // one soak, read top to bottom
async fn soak(
    dir: &Path,
    kubeconfig: PathBuf,
    client: kube::Client,
    faults: PodFaults,
    config: &SoakConfig,
) -> Result<SoakReport, BenchError> {
    let mut operator = Operator {
        binary: config.binary.clone(),
        kubeconfig: kubeconfig.clone(),
        journal: dir.join("journal"),
        log: dir.join("operator.log"),
        child: None,
        starts: 0,
        crashes: Vec::new(),
    };
    operator.start()?;
    let vkcs: Api<ValkeyCluster> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let vkc: ValkeyCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "valkey.logbook.dev/v1alpha1",
        "kind": "ValkeyCluster",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": spec_of(config.topology),
    }))
    .map_err(|e| harness("the ValkeyCluster")(e.to_string()))?;
    vkcs.create(&PostParams::default(), &vkc)
        .await
        .map_err(|e| harness("creating the ValkeyCluster")(e.to_string()))?;
    if converged(&vkcs, Duration::from_secs(180)).await.is_none() {
        return Err(harness("the first Ready")(format!(
            "not Ready in 180 s: {}",
            status_line(&vkcs).await
        )));
    }
    let password = password(&client).await?;
    let shared = Arc::new(Shared {
        roles: Mutex::new(Vec::new()),
        addrs: Mutex::new(BTreeMap::new()),
    });
    refresh_addrs(&pods, &shared).await;

    // The writer.
    let cluster = config.topology == SoakTopology::Cluster;
    let service = service_addr(&client, NAME, 6379).await?;
    let prefix = format!("soak{}", config.seed);
    // Read once, for the writer and the history client alike.
    let sentinel = if config.topology == SoakTopology::Sentinel {
        Some(service_addr(&client, &format!("{NAME}-sentinel"), 26379).await?)
    } else {
        None
    };
    let mut seeds = vec![service.clone()];
    seeds.extend(shared.addrs.lock().values().cloned());
    let probe = if cluster {
        let mut c = super::cluster_writer::ClusterProbeConfig::new(seeds.clone(), prefix.clone());
        c.password = Some(password.clone());
        super::cluster_writer::start_cluster_probe(c)
    } else {
        let target = match &sentinel {
            Some(sentinel) => Target::Sentinel {
                sentinels: vec![sentinel.clone()],
                master: NAME.to_owned(),
            },
            None => Target::Fixed(service.clone()),
        };
        let mut c = WriteProbeConfig::new(target, prefix.clone());
        c.password = Some(password.clone());
        c.wait_replicas = config.topology != SoakTopology::Standalone;
        // Sentinel picks the replica to promote by the offsets it last
        // read (up to 10 s old), so it can promote one that lacks writes
        // another replica acknowledged: only a write every replica has is
        // safe there (docs/robustness.md).
        if config.topology == SoakTopology::Sentinel {
            c.wait_for = SENTINEL_REPLICAS - 1;
        }
        WriteProbe::start(c)
    };
    // The recorded history, beside the writer.
    let way = history::Way {
        service: service.clone(),
        sentinel,
        seeds,
    };
    let recorder = history::start(
        config.topology,
        way,
        &password,
        &format!("hist{}", config.seed),
        config.seed,
        config.history,
    )
    .await?;

    // The sampler.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample(
        pods.clone(),
        shared.clone(),
        password.clone(),
        cluster,
        stop.clone(),
        Instant::now(),
    ));

    // The faults.
    let steps = schedule(
        config.seed,
        config.topology,
        config.duration,
        config.interval,
    );
    let mut fault_log = Vec::new();
    let mut injected: BTreeMap<FaultKind, u32> = BTreeMap::new();
    let mut skipped = 0u32;
    let mut held_until = Instant::now();
    let mut heals: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let begin = Instant::now();
    let mut last_fault = begin;
    let mut last_node_fault = begin;
    let mut violations = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        tokio::time::sleep_until((begin + step.at).into()).await;
        let due = begin.elapsed().as_secs_f64();
        if step.kind.on_a_node() {
            let gate = if Instant::now() < held_until {
                Err("a freeze or partition holds".to_owned())
            } else {
                fault_gate(&vkcs, &pods, &shared, &password, last_node_fault).await
            };
            if let Err(why) = gate {
                skipped += 1;
                fault_log.push(format!("{due:7.1} s  skipped {} ({why})", step.kind.name()));
                continue;
            }
        }
        // The moment of injection, and when the gate held it back, the
        // moment the schedule wanted.
        let now = begin.elapsed().as_secs_f64();
        let at = if now - due >= 0.5 {
            format!("{now:7.1} s  (due {due:.1} s)")
        } else {
            format!("{now:7.1} s ")
        };
        refresh_addrs(&pods, &shared).await;
        match inject(
            step,
            n,
            config,
            &shared,
            &faults,
            &pods,
            &vkcs,
            &mut operator,
        )
        .await
        {
            Ok(Some(what)) => {
                // A freeze or a partition ends when it is undone.
                last_fault = Instant::now() + step.hold;
                if step.kind.on_a_node() {
                    last_node_fault = last_fault;
                }
                *injected.entry(step.kind).or_default() += 1;
                fault_log.push(format!("{at} {} {what}", step.kind.name()));
                if matches!(step.kind, FaultKind::Freeze | FaultKind::Partition) {
                    held_until = Instant::now() + step.hold;
                    let (faults, kind, pod, hold) = (faults.clone(), step.kind, what, step.hold);
                    heals.push(tokio::spawn(async move {
                        tokio::time::sleep(hold).await;
                        let _ = if kind == FaultKind::Freeze {
                            faults.thaw(NS, &pod).await
                        } else {
                            faults.heal(NS, &pod).await
                        };
                    }));
                }
            }
            Ok(None) => {
                skipped += 1;
                fault_log.push(format!("{at} skipped {} (no target)", step.kind.name()));
            }
            Err(e) => {
                // A fault the harness could not inject is not the
                // operator's failure, but is recorded.
                fault_log.push(format!("{at} {} failed: {e}", step.kind.name()));
            }
        }
        if let Some(after) = step.then_kill_operator {
            tokio::time::sleep(after).await;
            operator.kill();
            last_fault = Instant::now();
            *injected.entry(FaultKind::KillOperator).or_default() += 1;
            fault_log.push(format!(
                "{:7.1} s  kill operator (after {})",
                begin.elapsed().as_secs_f64(),
                step.kind.name()
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
            operator.start()?;
        }
    }
    for heal in heals {
        let _ = heal.await;
    }
    operator.start()?;
    // Converged as the status says and as the servers answer: the status
    // alone can still show a cluster whose pod died a moment ago.
    let settled = back_to_full(&vkcs, &pods, &shared, &password, config.converge).await;
    if let Err(why) = &settled {
        violations.push(format!(
            "did not converge within {} s of the last fault: {why}",
            config.converge.as_secs(),
        ));
    }
    let converged_after = settled.is_ok().then(|| last_fault.elapsed());
    // Writes resume on the converged cluster before the writer stops.
    let settled_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = probe.stop().await;
    let history = history::finish(recorder, dir, &mut violations).await;
    if converged_after.is_some()
        && !log
            .attempts
            .iter()
            .any(|a| a.acked && a.started >= settled_at)
    {
        violations.push("no write acknowledged in the 3 s after the cluster converged".into());
    }
    stop.store(true, Ordering::Relaxed);
    let tracker = sampler
        .await
        .map_err(|e| harness("the ROLE sampler")(e.to_string()))?;
    if config.topology != SoakTopology::Standalone && tracker.acknowledging_rounds == 0 {
        violations.push("no ROLE round saw a primary with a replica following it: the two-primaries check checked nothing".into());
    }
    violations.extend(
        tracker
            .findings
            .iter()
            .map(|f| format!("two primaries of one shard: {f}")),
    );

    // Every acknowledged write.
    refresh_addrs(&pods, &shared).await;
    let acked = log.acked_keys();
    match read_back(
        config.topology,
        &log,
        &acked,
        &vkcs,
        &shared,
        &service,
        &password,
    )
    .await
    {
        Ok(missing) if missing.is_empty() => {}
        Ok(missing) => violations.push(format!(
            "{} of {} acknowledged writes missing, first {:?}",
            missing.len(),
            acked.len(),
            missing.iter().take(10).collect::<Vec<_>>()
        )),
        Err(e) => violations.push(format!("acknowledged writes could not be read back: {e}")),
    }
    if cluster && let Err(e) = slot_check(&shared, &password).await {
        violations.push(format!("slots once converged: {e}"));
    }

    // The journal.
    operator.stop().await;
    let journal = operator.journal.display().to_string();
    let binary = config.binary.clone();
    violations.extend(journal_checks::journal_checks(&config.binary, &operator.journal).await);
    violations.extend(operator.failures());
    let failovers = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&binary)
            .args(["replay", "failovers", "--json", "--dir", &journal])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    })
    .await
    .map_err(|e| harness("the journal checks")(e.to_string()))?;
    let journal_failovers = failovers.as_deref().and_then(count_failovers);

    std::fs::write(dir.join("faults.log"), fault_log.join("\n") + "\n").map_err(|source| {
        BenchError::Io {
            what: "faults.log".into(),
            source,
        }
    })?;
    std::fs::write(dir.join("writes.log"), writes_log(&log, begin, cluster)).map_err(|source| {
        BenchError::Io {
            what: "writes.log".into(),
            source,
        }
    })?;
    tracing::info!(starts = operator.starts, "operator starts");
    Ok(SoakReport {
        topology: config.topology,
        seed: config.seed,
        command: config.command(),
        injected,
        skipped,
        attempts: log.attempts.len(),
        acknowledged: acked.len(),
        role_rounds: tracker.rounds,
        acknowledging_rounds: tracker.acknowledging_rounds,
        converged_after,
        journal_failovers,
        history,
        violations,
        kept: None,
        elapsed: Duration::ZERO,
    })
}

/// Injects one fault; `Ok(Some(target))` names what it hit.
#[allow(clippy::too_many_arguments)]
async fn inject(
    step: &Step,
    n: usize,
    config: &SoakConfig,
    shared: &Shared,
    faults: &PodFaults,
    pods: &Api<Pod>,
    vkcs: &Api<ValkeyCluster>,
    operator: &mut Operator,
) -> Result<Option<String>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let patch = |spec: serde_json::Value| async move {
        // Written as v1alpha1 says a spec, sent at v1beta1 (the stored version).
        let spec = logbook_crds::hub::merge_patch_to_stored(&spec).map_err(|e| e.to_string())?;
        vkcs.patch(NAME, &PatchParams::default(), &Patch::Merge(&spec))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    if !step.kind.on_a_node() {
        return match step.kind {
            FaultKind::KillOperator => {
                operator.kill();
                tokio::time::sleep(step.hold).await;
                operator.start().map_err(|e| err(&e))?;
                Ok(Some(format!("(down {} ms)", step.hold.as_millis())))
            }
            FaultKind::Scale => {
                let now = current(vkcs, |v| v.spec.replicas).await.unwrap_or(3);
                let to = if now == 3 { 4 } else { 3 };
                patch(serde_json::json!({"spec": {"replicas": to}})).await?;
                Ok(Some(format!("replicas {now} -> {to}")))
            }
            FaultKind::Reshard => {
                let now = current(vkcs, |v| v.spec.shards).await.unwrap_or(3);
                let to = if now == 3 { 4 } else { 3 };
                patch(serde_json::json!({"spec": {"shards": to}})).await?;
                Ok(Some(format!("shards {now} -> {to}")))
            }
            FaultKind::ConfigRoll => {
                patch(
                    serde_json::json!({"spec": {"annotations": {ROLL_ANNOTATION: n.to_string()}}}),
                )
                .await?;
                Ok(Some(format!("pod annotation {ROLL_ANNOTATION}={n}")))
            }
            FaultKind::Switchover => {
                let stamp = format!("soak-{}-{n}", config.seed);
                vkcs.patch(
                    NAME,
                    &PatchParams::default(),
                    &Patch::Merge(&serde_json::json!({"metadata": {"annotations": {FAILOVER_REQUESTED: stamp}}})),
                )
                .await
                .map_err(|e| err(&e))?;
                Ok(Some("requested".into()))
            }
            _ => Ok(None),
        };
    }
    // A node fault: a primary (even pick) or a replica (odd), among the
    // pods that answered the last round; a wiped volume is a replica's.
    let want_primary = step.pick.is_multiple_of(2) && step.kind != FaultKind::WipePvc;
    let candidates: Vec<String> = {
        let roles = shared.roles.lock();
        let mut c: Vec<String> = roles
            .iter()
            .filter(|v| v.primary == want_primary)
            .map(|v| v.pod.clone())
            .collect();
        if c.is_empty() && step.kind != FaultKind::WipePvc {
            c = roles.iter().map(|v| v.pod.clone()).collect();
        }
        c
    };
    let Some(pod) = usize::try_from(step.pick / 2)
        .ok()
        .and_then(|p| candidates.get(p % candidates.len().max(1)).cloned())
    else {
        return Ok(None);
    };
    match step.kind {
        FaultKind::KillProcess => faults.kill(NS, &pod, None).await.map_err(|e| err(&e))?,
        FaultKind::DeletePod => {
            pods.delete(&pod, &DeleteParams::default())
                .await
                .map_err(|e| err(&e))?;
        }
        FaultKind::Freeze => faults.freeze(NS, &pod).await.map_err(|e| err(&e))?,
        FaultKind::Partition => faults.partition(NS, &pod).await.map_err(|e| err(&e))?,
        FaultKind::WipePvc => {
            faults
                .wipe_pvc_data(NS, &format!("data-{pod}"))
                .await
                .map_err(|e| err(&e))?;
            faults.kill(NS, &pod, None).await.map_err(|e| err(&e))?;
        }
        _ => return Ok(None),
    }
    Ok(Some(pod))
}
