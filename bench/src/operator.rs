//! The operator's side of `logbook-bench failover`: a 3-pod Replication
//! cluster in an in-process localkube (real `valkey-server` pods, the real
//! kube-rs client over HTTP), the operator running beside it, and a writer
//! through the client Service every 10 ms while faults are injected.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use logbook::valkey::Password;
use logbook_crds::{ClusterPhase, ValkeyCluster};
use tokio::time::Instant;

use super::{BenchError, RunResult, WriteProbe, WriteProbeConfig, harness, missing_keys};

/// The namespace and name of the benchmarked cluster.
const NS: &str = "default";
const NAME: &str = "bench";

/// An unplanned or planned event the operator must handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// SIGKILL to the primary's process (the kubelet restarts it at once).
    Kill,
    /// The primary's pod deleted.
    DeletePod,
    /// SIGSTOP to the primary (SIGCONT once writes resumed elsewhere).
    Freeze,
    /// `DEBUG SLEEP 1` on the primary: must not fail over.
    DebugSleep,
    /// A `SORT` keeping the primary busy about a second
    /// ([`crate::slow_command`]): must not fail over.
    SlowCommand,
    /// `valkey.logbook.dev/switchover-to: auto`.
    Switchover,
    /// The primary's node partitioned (its links dropped; its pods run
    /// on), on three real nodes ([`BenchNode::Nodes`]), the cluster with
    /// `fenceIsolatedPrimarySeconds` [`FENCE_SECONDS`].
    PartitionNode,
}

/// The fence of the clusters on [`BenchNode::Nodes`].
pub const FENCE_SECONDS: u32 = 2;

impl Scenario {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "operator: primary process killed",
            Scenario::DeletePod => "operator: primary pod deleted",
            Scenario::Freeze => "operator: primary frozen (SIGSTOP)",
            Scenario::DebugSleep => "operator: DEBUG SLEEP 1 on primary",
            Scenario::SlowCommand => "operator: a 1 s SORT on the primary",
            Scenario::Switchover => "operator: planned switchover",
            Scenario::PartitionNode => "operator: primary's node partitioned (fence 2 s)",
        }
    }
}

/// localkube (API, kubelet, proxy) in-process in a new work directory, its
/// kubeconfig and CRDs, the operator (sled journal) and a client: what
/// every operator bench runs on.
pub(crate) async fn start_local() -> Result<
    (
        logbook_localkube::RunningServer,
        logbook::local_cluster::OperatorTask,
        kube::Client,
        tempfile::TempDir,
    ),
    BenchError,
> {
    let (dir, server) = super::start_local_kube("logbook-bench-").await?;
    logbook::local_cluster::install_crds(&server).map_err(|e| harness("CRDs")(e.to_string()))?;
    let kubeconfig: PathBuf = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| harness("kubeconfig")(e.to_string()))?;
    let operator = logbook::local_cluster::start_operator(
        &kubeconfig,
        logbook::journal_store::JournalBackend::Sled,
        &dir.path().join("journal"),
        None,
    )
    .await
    .map_err(|e| harness("operator")(e.to_string()))?;
    let client = logbook::kube_client::client(Some(&kubeconfig))
        .await
        .map_err(|e| harness("client")(e.to_string()))?;
    Ok((server, operator, client, dir))
}

/// Where an operator bench's pods run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchNode {
    /// localkube's kubelet: pods are host processes.
    Process,
    /// The real control plane and node (kubelet, containerd, runc; `make
    /// controlplane node images`): pods are containers of `make images`.
    Containers,
    /// Three real nodes in three zones (`logbook local --nodes 3`): the
    /// rows that need several nodes ([`Scenario::PartitionNode`]).
    Nodes,
}

impl BenchNode {
    /// How a table names the rows of this node.
    pub fn label(self) -> &'static str {
        match self {
            BenchNode::Process => "operator:",
            BenchNode::Containers => "operator, containers:",
            BenchNode::Nodes => "operator, 3 nodes:",
        }
    }
}

/// What an operator bench's cluster runs on.
enum Backend {
    Local(Box<logbook_localkube::RunningServer>),
    Containers(Box<logbook::local::containers::LocalContainers>),
}

/// The real control plane and node in a new work directory, the operator
/// beside them on the host (sled journal) and a client.
async fn start_containers(
    count: usize,
) -> Result<
    (
        Backend,
        logbook::local_cluster::OperatorTask,
        kube::Client,
        tempfile::TempDir,
    ),
    BenchError,
> {
    let (dir, root, node) = super::start_nodes("logbook-bench-node-", count).await?;
    let kubeconfig = node.admin_kubeconfig().to_path_buf();
    let started = async {
        let operator = logbook::local_cluster::start_operator(
            &kubeconfig,
            logbook::journal_store::JournalBackend::Sled,
            &root.join("journal"),
            None,
        )
        .await
        .map_err(|e| harness("operator")(e.to_string()))?;
        let client = node
            .client("admin")
            .await
            .map_err(|e| harness("client")(e.to_string()))?;
        Ok::<_, BenchError>((operator, client))
    }
    .await;
    match started {
        Ok((operator, client)) => Ok((Backend::Containers(Box::new(node)), operator, client, dir)),
        Err(e) => {
            node.shutdown().await;
            Err(e)
        }
    }
}

/// A local cluster with the operator, torn down on drop of its parts.
pub struct OperatorBench {
    server: Backend,
    faults: logbook::local::pod_faults::PodFaults,
    /// From the ValkeyCluster's creation to its first Ready.
    ready_in: Duration,
    operator: Option<logbook::local_cluster::OperatorTask>,
    client: kube::Client,
    password: Option<Password>,
    /// Topology Sentinel: the Sentinels fail over, and the probe is a
    /// Sentinel-aware client of the Sentinel Service.
    sentinel: bool,
    /// The slow command's list as sized, and how long each run's `SORT`
    /// kept the primary busy.
    slow: std::sync::Mutex<(Option<crate::slow_command::Sized>, Vec<Duration>)>,
    /// `--trace`: each run's client attempts around the fault go to
    /// stderr, and the operator's journal is kept.
    trace: bool,
    _dir: tempfile::TempDir,
}

/// `downAfterMilliseconds` of the Sentinel-topology rows: the raw
/// Sentinel reference's second setting, so the rows compare. (At 1000 ms
/// a Sentinel can take a just-promoted primary, which it reconnects to
/// once a second, for down and fail it straight back.)
pub const SENTINEL_DOWN_AFTER_MS: u64 = 5000;

impl OperatorBench {
    /// Starts localkube, the operator and a 3-pod Replication cluster with
    /// persistence off (like the references' servers), and waits for Ready.
    ///
    /// # Errors
    /// When anything fails to start or the cluster is not Ready in 120 s.
    pub async fn start() -> Result<Self, BenchError> {
        Self::start_topology(false).await
    }

    /// As [`OperatorBench::start`], of topology Sentinel (three Sentinels,
    /// quorum 2, `down-after` [`SENTINEL_DOWN_AFTER_MS`], `failover-timeout`
    /// 10 s as the reference's) when `sentinel`.
    ///
    /// # Errors
    /// As [`OperatorBench::start`].
    pub async fn start_topology(sentinel: bool) -> Result<Self, BenchError> {
        Self::start_on(BenchNode::Process, sentinel).await
    }

    /// As [`OperatorBench::start_topology`], its pods on `node`.
    ///
    /// # Errors
    /// As [`OperatorBench::start`].
    pub async fn start_on(node: BenchNode, sentinel: bool) -> Result<Self, BenchError> {
        let (server, operator, client, dir) = match node {
            BenchNode::Process => {
                let (server, operator, client, dir) = start_local().await?;
                (Backend::Local(Box::new(server)), operator, client, dir)
            }
            BenchNode::Containers => start_containers(1).await?,
            BenchNode::Nodes => start_containers(3).await?,
        };
        let faults = match &server {
            Backend::Local(s) => logbook::local::pod_faults::PodFaults::Local(
                s.faults()
                    .ok_or_else(|| harness("faults")("no kubelet".into()))?,
            ),
            Backend::Containers(c) => {
                logbook::local::pod_faults::PodFaults::Containers(c.faults(), client.clone())
            }
        };
        let mut bench = OperatorBench {
            server,
            faults,
            ready_in: Duration::ZERO,
            operator: Some(operator),
            client,
            password: None,
            sentinel,
            slow: std::sync::Mutex::new((None, Vec::new())),
            trace: false,
            _dir: dir,
        };
        bench.create().await?;
        Ok(bench)
    }

    async fn create(&mut self) -> Result<(), BenchError> {
        let debug = match self.server {
            Backend::Local(_) => "local",
            Backend::Containers(_) => "yes",
        };
        let several = matches!(&self.server, Backend::Containers(c) if c.nodes().len() > 1);
        let mut spec = if self.sentinel {
            serde_json::json!({
                "topology": "Sentinel",
                "replicas": 3,
                "storage": {"persistence": "None"},
                "config": {"enable-debug-command": debug},
                "sentinel": {
                    "replicas": 3,
                    "quorum": 2,
                    "downAfterMilliseconds": SENTINEL_DOWN_AFTER_MS,
                    "failoverTimeoutMilliseconds": 10000
                }
            })
        } else {
            serde_json::json!({
                "topology": "Replication",
                "replicas": 3,
                "storage": {"persistence": "None"},
                // DEBUG SLEEP from the host: a local connection on
                // localkube, the node's link into a container.
                "config": {"enable-debug-command": debug}
            })
        };
        if several && let Some(spec) = spec.as_object_mut() {
            spec.insert(
                "failover".to_owned(),
                serde_json::json!({"fenceIsolatedPrimarySeconds": FENCE_SECONDS}),
            );
        }
        let vkc: ValkeyCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "valkey.logbook.dev/v1alpha1",
            "kind": "ValkeyCluster",
            "metadata": {"name": NAME, "namespace": NS},
            "spec": spec
        }))
        .map_err(|e| harness("the ValkeyCluster")(e.to_string()))?;
        let api: Api<ValkeyCluster> = Api::namespaced(self.client.clone(), NS);
        let created = Instant::now();
        api.create(&PostParams::default(), &vkc)
            .await
            .map_err(|e| harness("creating the ValkeyCluster")(e.to_string()))?;
        self.wait_ready(Duration::from_secs(120)).await?;
        self.ready_in = created.elapsed();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        let secret = secrets
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

    /// Waits until the status says Ready (primary, every pod ready and in
    /// sync, nothing in progress).
    async fn wait_ready(&self, timeout: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            let vkc = self.cluster().await?;
            if vkc.status.as_ref().and_then(|s| s.phase) == Some(ClusterPhase::Ready) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(harness("waiting for Ready")(format!(
                    "status: {:?}",
                    vkc.status
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn primary(&self) -> Result<(String, String), BenchError> {
        let vkc = self.cluster().await?;
        let primary = vkc
            .status
            .and_then(|s| s.primary)
            .ok_or_else(|| harness("the primary")("status has none".into()))?;
        let pod = Api::<Pod>::namespaced(self.client.clone(), NS)
            .get(&primary)
            .await
            .map_err(|e| harness("the primary pod")(e.to_string()))?;
        let ip = pod
            .status
            .and_then(|s| s.pod_ip)
            .ok_or_else(|| harness("the primary's IP")("none".into()))?;
        Ok((primary, ip))
    }

    async fn failovers(&self) -> Result<Option<i64>, BenchError> {
        Ok(self
            .cluster()
            .await?
            .status
            .and_then(|s| s.last_failover)
            .and_then(|f| f.seq))
    }

    async fn service_addr(&self) -> Result<String, BenchError> {
        self.service_of(NAME, 6379).await
    }

    /// `clusterIP:port` of the Service `name`.
    async fn service_of(&self, name: &str, port: u16) -> Result<String, BenchError> {
        let svc = Api::<k8s_openapi::api::core::v1::Service>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .map_err(|e| harness("the client Service")(e.to_string()))?;
        let ip = svc
            .spec
            .and_then(|s| s.cluster_ip)
            .ok_or_else(|| harness("the client Service IP")("none".into()))?;
        Ok(format!("{ip}:{port}"))
    }

    /// Sizes the slow command's list on the primary (once; it is
    /// replicated) before the runs of [`Scenario::SlowCommand`].
    ///
    /// # Errors
    /// The primary refusing or not answering.
    pub async fn prepare_slow_command(&self) -> Result<crate::slow_command::Sized, BenchError> {
        let (_, ip) = self.primary().await?;
        let sized = crate::slow_command::prepare(
            &format!("{ip}:6379"),
            self.password.as_ref(),
            crate::slow_command::LIST,
        )
        .await?;
        // Its replicas take the list in before the first run: a run must
        // not start while they still catch up.
        self.wait_ready(Duration::from_secs(120)).await?;
        if let Ok(mut slow) = self.slow.lock() {
            slow.0 = Some(sized);
        }
        Ok(sized)
    }

    /// What the slow command's runs did: the list's length and each
    /// run's `SORT` time.
    pub fn slow_command_runs(&self) -> (Option<crate::slow_command::Sized>, Vec<Duration>) {
        self.slow
            .lock()
            .map(|slow| (slow.0, slow.1.clone()))
            .unwrap_or_default()
    }

    /// One run of `scenario`.
    ///
    /// # Errors
    /// Harness failures (the cluster not recovering in 60 s included).
    pub async fn run(&self, scenario: Scenario, run: usize) -> Result<RunResult, BenchError> {
        let cut = if scenario == Scenario::PartitionNode {
            Some(self.primary_off_the_first_node().await?)
        } else {
            None
        };
        let (primary, primary_ip) = self.primary().await?;
        let before = self.failovers().await?;
        let prefix = format!("{scenario:?}-{run}");
        let mut config = if self.sentinel {
            WriteProbeConfig::new(
                crate::resolve::Target::Sentinel {
                    sentinels: vec![self.service_of(&format!("{NAME}-sentinel"), 26379).await?],
                    master: NAME.to_owned(),
                },
                prefix,
            )
        } else {
            WriteProbeConfig::fixed(self.service_addr().await?, prefix)
        };
        config.password = self.password.clone();
        config.wait_replicas = true;
        config.interval = crate::FAILOVER_PROBE_INTERVAL;
        let probe = WriteProbe::start(config);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let faults = &self.faults;
        let fault_at = std::time::Instant::now();
        let fault_wall = chrono::Utc::now();
        match scenario {
            Scenario::Kill => faults
                .kill(NS, &primary, None)
                .await
                .map_err(harness("kill"))?,
            Scenario::DeletePod => {
                Api::<Pod>::namespaced(self.client.clone(), NS)
                    .delete(&primary, &DeleteParams::default())
                    .await
                    .map_err(|e| harness("deleting the primary pod")(e.to_string()))?;
            }
            Scenario::Freeze => faults
                .freeze(NS, &primary)
                .await
                .map_err(harness("freeze"))?,
            Scenario::DebugSleep => {
                crate::slow_command::debug_sleep(
                    &format!("{primary_ip}:6379"),
                    self.password.as_ref(),
                )
                .await?;
            }
            Scenario::SlowCommand => {
                let addr = format!("{primary_ip}:6379");
                let took = crate::slow_command::run(
                    &addr,
                    self.password.as_ref(),
                    crate::slow_command::LIST,
                )
                .await?;
                if let Ok(mut slow) = self.slow.lock() {
                    slow.1.push(took);
                }
            }
            Scenario::PartitionNode => {
                let (Backend::Containers(c), Some(node)) = (&self.server, &cut) else {
                    return Err(harness("partition")("needs several real nodes".into()));
                };
                c.faults()
                    .partition_node(node, true)
                    .await
                    .map_err(|e| harness("partition")(e.to_string()))?;
            }
            Scenario::Switchover => {
                let patch = serde_json::json!({"metadata": {"annotations": {"valkey.logbook.dev/switchover-to": "auto"}}});
                Api::<ValkeyCluster>::namespaced(self.client.clone(), NS)
                    .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| harness("requesting a switchover")(e.to_string()))?;
            }
        }
        // The primary moves (except under DEBUG SLEEP) and writes resume on
        // the new one: only then is the log complete.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut moved_at = fault_at;
        if !matches!(scenario, Scenario::DebugSleep | Scenario::SlowCommand) {
            loop {
                if self.primary().await.is_ok_and(|(p, _)| p != primary) {
                    moved_at = std::time::Instant::now();
                    break;
                }
                if Instant::now() > deadline {
                    return Err(harness("waiting for a new primary")(format!(
                        "{scenario:?} run {run}"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while probe.first_success_after(moved_at, None).is_none() {
            if Instant::now() > deadline {
                return Err(harness("waiting for writes to resume")(format!(
                    "{scenario:?} run {run}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if scenario == Scenario::Freeze {
            faults.thaw(NS, &primary).await.map_err(harness("thaw"))?;
        }
        if let (Backend::Containers(c), Some(node)) = (&self.server, &cut) {
            c.faults()
                .partition_node(node, false)
                .await
                .map_err(|e| harness("heal")(e.to_string()))?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = probe.stop().await;
        if self.trace {
            eprintln!(
                "trace: {scenario:?} run {}: fault at {}\n{}",
                run + 1,
                fault_wall.format("%H:%M:%S%.6f"),
                log.describe_around(fault_at, Duration::from_millis(30))
            );
        }
        if scenario == Scenario::Kill {
            // Harness reset, outside the measured window: a pod whose process
            // was killed several times is in the kubelet's crash-loop backoff
            // (10 s doubling, as on a real node); a fresh pod starts at once.
            let _ = Api::<Pod>::namespaced(self.client.clone(), NS)
                .delete(&primary, &DeleteParams::default())
                .await;
        }
        // ... and the cluster converges again before anything is read back
        // (a healed node's pod rejoins as a replica).
        self.wait_ready(Duration::from_secs(if cut.is_some() { 180 } else { 60 }))
            .await?;
        let (_, new_ip) = self.primary().await?;
        let acked = log.acked_keys();
        let missing = missing_keys(
            &format!("{new_ip}:6379"),
            self.password.as_ref(),
            &log.prefix,
            &acked,
        )
        .await?;
        let after = self.failovers().await?;
        Ok(RunResult {
            window: log.longest_gap_from(fault_at).unwrap_or_default(),
            lost_acked: missing.len(),
            acked: acked.len(),
            failovers: usize::from(after != before),
        })
    }

    /// The node of the primary, moved off the first node first if it is
    /// there (the host reaches Services through the first node: cutting it
    /// would cut the writer too), by a switchover to a pod elsewhere.
    async fn primary_off_the_first_node(&self) -> Result<String, BenchError> {
        let Backend::Containers(c) = &self.server else {
            return Err(harness("partition")("needs several real nodes".into()));
        };
        let first = c
            .nodes()
            .first()
            .map(|n| n.name.clone())
            .unwrap_or_default();
        let pods = Api::<Pod>::namespaced(self.client.clone(), NS);
        let node_of = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
        let (primary, _) = self.primary().await?;
        let on = pods
            .get(&primary)
            .await
            .map_err(|e| harness("the primary pod")(e.to_string()))?;
        if node_of(&on).is_some_and(|n| n != first) {
            return node_of(&on).ok_or_else(|| harness("the primary's node")("none".into()));
        }
        let listed = pods
            .list(&kube::api::ListParams::default().labels(&format!(
                "app.kubernetes.io/name=valkey,valkey.logbook.dev/cluster={NAME}"
            )))
            .await
            .map_err(|e| harness("the pods")(e.to_string()))?;
        let target = listed
            .items
            .iter()
            .find(|p| node_of(p).is_some_and(|n| n != first))
            .and_then(|p| p.metadata.name.clone())
            .ok_or_else(|| harness("partition")("no pod off the first node".into()))?;
        let patch = serde_json::json!({"metadata": {"annotations": {"valkey.logbook.dev/switchover-to": target}}});
        Api::<ValkeyCluster>::namespaced(self.client.clone(), NS)
            .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| harness("requesting a switchover")(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.primary().await.map(|(p, _)| p).ok().as_deref() != Some(target.as_str()) {
            if Instant::now() > deadline {
                return Err(harness("moving the primary off the first node")(target));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.wait_ready(Duration::from_secs(60)).await?;
        // The Service follows the role labels a moment after the status.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let moved = pods
            .get(&target)
            .await
            .map_err(|e| harness("the new primary pod")(e.to_string()))?;
        node_of(&moved).ok_or_else(|| harness("the primary's node")("none".into()))
    }

    /// From the ValkeyCluster's creation to its first Ready (every pod
    /// started, ready and in sync).
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// `--trace`: each run's client attempts around the fault are
    /// printed to stderr with the fault's wall-clock time (the operator's
    /// journal and log use the same clock), and the journal is kept when
    /// the bench stops, for `logbook replay timeline`.
    pub fn traced(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    /// Stops the operator and localkube.
    pub async fn stop(mut self) {
        if let Some((stop, task)) = self.operator.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        match self.server {
            Backend::Local(server) => (*server).shutdown().await,
            Backend::Containers(node) => (*node).shutdown().await,
        }
        if self.trace {
            let kept = self._dir.keep();
            eprintln!(
                "trace: the operator's journal is kept: logbook replay timeline --dir {}",
                kept.join("journal").display()
            );
        }
    }
}
