//! The harness of the operator's end-to-end tests: an in-process localkube
//! with workloads (API, controllers, Service proxy, process kubelet running
//! real `valkey-server` pods), the project's CRDs installed, and the
//! operator running in-process on a sled journal in a temporary directory.
//!
//! The operator runs on its own thread with its own tokio runtime and its
//! own tracing subscriber, so its logs are captured per test (and dumped
//! when a wait fails) and it can be stopped (gracefully, or abruptly like a
//! crash) and started again on the same journal while the local cluster
//! keeps running. Every process the kubelet started is killed when the
//! harness is dropped, even when a test fails.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use logbook::valkey::Password;
use logbook_crds::ValkeyCluster;
use logbook_journal::{JournalStore, SledStore, StreamId};
use logbook_localkube::kubelet::{Faults, kill_leftovers, leftover_processes};
use logbook_localkube::{Config, LocalKube, RunningServer, WorkloadsConfig};
use redis::aio::MultiplexedConnection;

/// Every test works in this namespace.
pub const NS: &str = "default";
/// Lines of operator log kept for failure messages.
const LOG_LINES: usize = 4000;
/// The Valkey port of every pod and Service.
pub const PORT: u16 = 6379;

/// The operator's captured log lines (a ring buffer).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<VecDeque<String>>>);

impl Logs {
    fn push(&self, text: &str) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines() {
            if lines.len() >= LOG_LINES {
                lines.pop_front();
            }
            lines.push_back(line.to_owned());
        }
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Every kept line containing `needle`.
    pub fn grep(&self, needle: &str) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

/// A `MakeWriter` appending to [`Logs`] (and echoing to stderr when
/// `LOGBOOK_TEST_LOG` is set).
#[derive(Clone)]
struct LogWriter {
    logs: Logs,
    echo: bool,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.logs.push(&text);
        if self.echo {
            eprint!("{text}");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// How the operator is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Its shutdown future completes: in-flight reconciles finish,
    /// `OperatorStopped` is journaled and the journal flushed.
    Graceful,
    /// Its runtime is dropped mid-flight, like a killed process (what was
    /// appended is durable: the store flushes every append).
    Crash,
}

/// The operator running on its own thread and runtime.
struct Operator {
    stop: Option<tokio::sync::oneshot::Sender<Stop>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Operator {
    fn start(url: String, journal_dir: PathBuf, instance: String, logs: Logs) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<Stop>();
        let thread = std::thread::Builder::new()
            .name(format!("operator-{instance}"))
            .spawn(move || {
                let filter = std::env::var("LOGBOOK_TEST_LOG")
                    .ok()
                    .filter(|f| !f.is_empty() && f != "1")
                    .unwrap_or_else(|| "info,logbook=debug,kube=warn".to_owned());
                let subscriber = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(LogWriter {
                        logs,
                        echo: std::env::var_os("LOGBOOK_TEST_LOG").is_some(),
                    })
                    .finish();
                let dispatch = tracing::Dispatch::new(subscriber);
                let for_workers = dispatch.clone();
                // Each worker thread of this runtime logs into this test's
                // buffer: the default dispatcher is per thread.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .on_thread_start(move || {
                        std::mem::forget(tracing::dispatcher::set_default(&for_workers));
                    })
                    .build()
                    .map_err(|e| e.to_string())?;
                let _guard = tracing::dispatcher::set_default(&dispatch);
                runtime.block_on(async move {
                    let client =
                        kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
                    let config = logbook::operator::OperatorConfig {
                        namespace: None,
                        journal_dir,
                        instance,
                        features: BTreeMap::new(),
                    };
                    let (graceful_tx, graceful_rx) = tokio::sync::oneshot::channel::<()>();
                    let run = logbook::operator::run(client, config, async move {
                        let _ = graceful_rx.await;
                    });
                    tokio::pin!(run);
                    tokio::select! {
                        result = &mut run => result.map_err(|e| e.to_string()),
                        how = stopped => match how.unwrap_or(Stop::Graceful) {
                            Stop::Graceful => {
                                let _ = graceful_tx.send(());
                                run.await.map_err(|e| e.to_string())
                            }
                            // Dropping the future and the runtime cancels
                            // everything mid-flight.
                            Stop::Crash => Ok(()),
                        },
                    }
                })
            })
            .unwrap();
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops it and waits for its thread (the runtime, hence every handle
    /// on the sled journal, is gone when this returns).
    async fn stop(mut self, how: Stop) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .map_err(|_| "the operator thread panicked".to_owned())?
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Crash);
        }
    }
}

/// A local cluster with the operator.
pub struct Env {
    server: Option<RunningServer>,
    /// A client of the local API server.
    pub client: kube::Client,
    faults: Faults,
    /// The operator's sled journal.
    pub journal_dir: PathBuf,
    state_dir: PathBuf,
    operator: Option<Operator>,
    starts: usize,
    /// The operator's log lines, across restarts.
    pub logs: Logs,
    name: String,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        // Reached with the server still set only when a test failed: no
        // valkey-server may outlive the test.
        if self.server.is_some() {
            drop(self.operator.take());
            kill_leftovers(&self.state_dir);
        }
    }
}

impl Env {
    /// Starts localkube with workloads, installs the CRDs and starts the
    /// operator. `name` tells this test's operator apart in logs.
    pub async fn start(name: &str) -> Env {
        let env = Self::start_without_operator(name).await;
        let mut env = env;
        env.start_operator();
        env
    }

    /// Like [`Env::start`], without starting the operator.
    pub async fn start_without_operator(name: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("logbook-e2e-")
            .tempdir()
            .unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let state_dir = root.join("workloads");
        std::fs::create_dir_all(&state_dir).unwrap();
        let server = LocalKube::start(Config {
            workloads: Some(WorkloadsConfig {
                state_dir: state_dir.clone(),
                kubelet: true,
                proxy: true,
            }),
            ..Config::default()
        })
        .await
        .unwrap();
        install_crds(&server);
        let client =
            kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
        let faults = server.faults().expect("the kubelet runs");
        let env = Env {
            server: Some(server),
            client,
            faults,
            journal_dir: root.join("journal"),
            state_dir,
            operator: None,
            starts: 0,
            logs: Logs::default(),
            name: name.to_owned(),
            _dir: dir,
        };
        let vkcs = env.vkcs();
        env.eventually(Duration::from_secs(10), "the CRD is served", || {
            let vkcs = vkcs.clone();
            async move { vkcs.list(&ListParams::default()).await.is_ok() }
        })
        .await;
        env
    }

    /// Starts the operator on the journal directory (again, after a stop).
    pub fn start_operator(&mut self) {
        assert!(self.operator.is_none(), "the operator already runs");
        self.starts += 1;
        let url = self.server.as_ref().unwrap().url();
        self.logs
            .push(&format!("==== operator start #{} ====", self.starts));
        self.operator = Some(Operator::start(
            url,
            self.journal_dir.clone(),
            format!("{}-{}", self.name, self.starts),
            self.logs.clone(),
        ));
    }

    /// Stops the operator; the local cluster keeps running.
    pub async fn stop_operator(&mut self, how: Stop) {
        let operator = self.operator.take().expect("the operator runs");
        let result = operator.stop(how).await;
        self.logs
            .push(&format!("==== operator stopped ({how:?}) ===="));
        if let Err(err) = result {
            panic!(
                "the operator stopped with an error: {err}\n{}",
                self.logs.tail(60).join("\n")
            );
        }
    }

    /// Stops the operator and the local cluster, and checks that no
    /// process is left behind.
    pub async fn finish(mut self) {
        if let Some(op) = self.operator.take() {
            let _ = op.stop(Stop::Graceful).await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let left = leftover_processes(&self.state_dir);
        assert!(left.is_empty(), "processes left behind: {left:?}");
    }

    /// The fault injector of the kubelet.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The ValkeyClusters of [`NS`].
    pub fn vkcs(&self) -> Api<ValkeyCluster> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// An API of `K` in [`NS`].
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates a ValkeyCluster from YAML.
    pub async fn apply_yaml(&self, yaml: &str) -> ValkeyCluster {
        let vkc: ValkeyCluster = serde_yaml::from_str(yaml).unwrap();
        self.create(&vkc).await
    }

    /// Creates a ValkeyCluster.
    pub async fn create(&self, vkc: &ValkeyCluster) -> ValkeyCluster {
        self.vkcs()
            .create(&PostParams::default(), vkc)
            .await
            .unwrap_or_else(|e| panic!("creating ValkeyCluster {}: {e}", vkc.name_any()))
    }

    /// Merge-patches a ValkeyCluster.
    pub async fn patch(&self, name: &str, patch: serde_json::Value) -> ValkeyCluster {
        self.vkcs()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patching ValkeyCluster {name} with {patch}: {e}"))
    }

    /// The ValkeyCluster.
    pub async fn vkc(&self, name: &str) -> ValkeyCluster {
        self.vkcs().get(name).await.unwrap()
    }

    /// Waits until `check` holds, polling every 100 ms; panics with `what`
    /// after `timeout`.
    pub async fn eventually<F, Fut>(&self, timeout: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if check().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}\n--- operator log ---\n{}",
                self.logs.tail(60).join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `probe` has an acknowledged write that started after
    /// `after` (writes resumed on the new primary).
    pub async fn wait_acked_after(
        &self,
        probe: &logbook::bench::WriteProbe,
        after: std::time::Instant,
        what: &str,
    ) {
        self.eventually(Duration::from_secs(10), what, || {
            let ok = probe
                .snapshot()
                .attempts
                .iter()
                .any(|a| a.acked && a.started > after);
            async move { ok }
        })
        .await;
    }

    /// Waits until the cluster's status satisfies `pred`; on timeout panics
    /// with `what` and [`Env::dump`].
    pub async fn wait_status(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&ValkeyCluster) -> bool,
    ) -> ValkeyCluster {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(vkc)) = self.vkcs().get_opt(name).await
                && pred(&vkc)
            {
                return vkc;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {name}: {what}\n{}",
                    self.dump(name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for phase Ready on the current generation with `pods` pods
    /// ready, whose role labels match `status.primary`.
    pub async fn wait_ready(&self, name: &str, pods: usize, timeout: Duration) -> ValkeyCluster {
        let deadline = Instant::now() + timeout;
        loop {
            let vkc = self
                .wait_status(
                    name,
                    deadline.saturating_duration_since(Instant::now()),
                    &format!("phase Ready with {pods} pods"),
                    |vkc| is_ready(vkc, pods),
                )
                .await;
            let primary = vkc.status.as_ref().unwrap().primary.clone();
            let roles = self.role_labels(name).await;
            let labelled: Vec<&String> = roles
                .iter()
                .filter(|(_, role)| role.as_deref() == Some("primary"))
                .map(|(pod, _)| pod)
                .collect();
            if roles.len() == pods && labelled.len() == 1 && Some(labelled[0]) == primary.as_ref() {
                return vkc;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{name} is Ready but its pods' role labels {roles:?} do not match primary {primary:?}\n{}",
                    self.dump(name).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The cluster's pods, by ordinal.
    pub async fn pods(&self, name: &str) -> Vec<Pod> {
        let mut pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!("valkey.logbook.dev/cluster={name}")))
            .await
            .unwrap()
            .items;
        pods.sort_by_key(|p| ordinal(&p.name_any()));
        pods
    }

    /// Each pod's role label.
    pub async fn role_labels(&self, name: &str) -> BTreeMap<String, Option<String>> {
        self.pods(name)
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                let role = p.labels().get("valkey.logbook.dev/role").cloned();
                (p.name_any(), role)
            })
            .collect()
    }

    /// `ip:6379` of a pod.
    pub async fn pod_addr(&self, pod: &str) -> String {
        let pod = self.api::<Pod>().get(pod).await.unwrap();
        let ip = pod
            .status
            .and_then(|s| s.pod_ip)
            .expect("the pod has an address");
        format!("{ip}:{PORT}")
    }

    /// `clusterIP:6379` of the client Service (it selects the primary).
    pub async fn service_addr(&self, name: &str) -> String {
        let svc = self.api::<Service>().get(name).await.unwrap();
        let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
        format!("{ip}:{PORT}")
    }

    /// The data-plane password, from the `<name>-password` Secret.
    pub async fn password(&self, name: &str) -> String {
        let secret = self
            .api::<Secret>()
            .get(&format!("{name}-password"))
            .await
            .unwrap();
        let bytes = secret.data.unwrap()["password"].0.clone();
        String::from_utf8(bytes).unwrap()
    }

    /// SIGKILLs every container of the pod (the kubelet restarts it).
    pub async fn kill(&self, pod: &str) {
        self.faults.kill(NS, pod, None).await.unwrap();
    }

    /// Deletes the pod (the StatefulSet recreates it).
    pub async fn delete_pod(&self, pod: &str) {
        self.api::<Pod>()
            .delete(pod, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// The cluster's journal stream id (its UID).
    pub async fn stream(&self, name: &str) -> StreamId {
        StreamId::new(self.vkc(name).await.uid().unwrap()).unwrap()
    }

    /// The head seq of `stream` in the journal; the operator must be
    /// stopped (sled locks its directory).
    pub async fn journal_head(&self, stream: &StreamId) -> u64 {
        let store = SledStore::open(&self.journal_dir, logbook_journal::Durability::Flush).unwrap();
        store.head(stream).await.unwrap().seq
    }

    /// Verifies every stream of the journal (the operator must be stopped)
    /// and returns the number of events checked per stream.
    pub async fn verify_journal(&self) -> Vec<(String, u64)> {
        let store = SledStore::open(&self.journal_dir, logbook_journal::Durability::Flush).unwrap();
        let reports = logbook_journal::verify::verify_all(&store).await.unwrap();
        assert!(!reports.is_empty(), "the journal has no stream");
        for report in &reports {
            assert!(
                report.is_ok(),
                "journal stream {} is broken: {:?}",
                report.stream,
                report.problem
            );
        }
        reports
            .iter()
            .map(|r| (r.stream.to_string(), r.events_checked))
            .collect()
    }

    /// The projection folded from the journal (the operator must be stopped).
    pub async fn journal_state(&self, stream: &StreamId) -> logbook_journal::ClusterState {
        let store = SledStore::open(&self.journal_dir, logbook_journal::Durability::Flush).unwrap();
        logbook_journal::reader::load_state(&store, stream)
            .await
            .unwrap()
            .state
    }

    /// Every event of `stream` (the operator must be stopped).
    pub async fn journal_events(&self, stream: &StreamId) -> Vec<logbook_journal::Envelope> {
        let store = SledStore::open(&self.journal_dir, logbook_journal::Durability::Flush).unwrap();
        let head = store.head(stream).await.unwrap().seq;
        logbook_journal::reader::read_envelopes(
            &store,
            stream,
            1,
            logbook_journal::ChainHash::GENESIS,
            head,
        )
        .await
        .unwrap()
    }

    /// For failure messages: the cluster's status, its pods with their
    /// labels, the Kubernetes Events about it and the operator's last log
    /// lines.
    pub async fn dump(&self, name: &str) -> String {
        let mut out = String::new();
        match self.vkcs().get_opt(name).await {
            Ok(Some(vkc)) => {
                out.push_str(&format!(
                    "--- ValkeyCluster {name} (generation {:?}, annotations {:?}) status:\n{}\n",
                    vkc.metadata.generation,
                    vkc.metadata.annotations,
                    serde_yaml::to_string(&vkc.status).unwrap_or_default()
                ));
            }
            other => out.push_str(&format!("--- ValkeyCluster {name}: {other:?}\n")),
        }
        out.push_str("--- pods:\n");
        for pod in self.pods(name).await {
            let status = pod.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let restarts: i32 = status
                .container_statuses
                .unwrap_or_default()
                .iter()
                .map(|c| c.restart_count)
                .sum();
            out.push_str(&format!(
                "{} phase={:?} ip={:?} ready={ready} restarts={restarts} deleting={} labels={:?}\n",
                pod.name_any(),
                status.phase,
                status.pod_ip,
                pod.metadata.deletion_timestamp.is_some(),
                pod.labels()
                    .iter()
                    .filter(|(k, _)| k.starts_with("valkey.logbook.dev/")
                        || k.as_str() == "controller-revision-hash")
                    .collect::<BTreeMap<_, _>>(),
            ));
        }
        let events: Api<k8s_openapi::api::events::v1::Event> = self.api();
        if let Ok(list) = events.list(&ListParams::default()).await {
            out.push_str("--- Kubernetes Events (last 15):\n");
            let items = list.items;
            for e in items.iter().skip(items.len().saturating_sub(15)) {
                out.push_str(&format!(
                    "{} {}: {}\n",
                    e.reason.clone().unwrap_or_default(),
                    e.action.clone().unwrap_or_default(),
                    e.note.clone().unwrap_or_default()
                ));
            }
        }
        out.push_str("--- operator log (last 80 lines):\n");
        out.push_str(&self.logs.tail(80).join("\n"));
        out
    }
}

/// Installs every CRD of the project, as `logbook local` does.
fn install_crds(server: &RunningServer) {
    logbook::local::install_crds(server).unwrap();
}

/// The ordinal of `demo-2`.
pub fn ordinal(pod: &str) -> u32 {
    pod.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Phase Ready, on the object's current generation, with `pods` pods ready.
pub fn is_ready(vkc: &ValkeyCluster, pods: usize) -> bool {
    let Some(status) = &vkc.status else {
        return false;
    };
    status.phase == Some(logbook_crds::v1alpha1::ClusterPhase::Ready)
        && status.observed_generation == vkc.metadata.generation
        && status.ready_replicas == i32::try_from(pods).ok()
}

/// `status.primary`.
pub fn primary(vkc: &ValkeyCluster) -> String {
    vkc.status
        .as_ref()
        .and_then(|s| s.primary.clone())
        .expect("status.primary is set")
}

/// `status.journal.seq`.
pub fn journal_seq(vkc: &ValkeyCluster) -> i64 {
    vkc.status
        .as_ref()
        .and_then(|s| s.journal.as_ref())
        .map_or(0, |j| j.seq)
}

// ---- Valkey ----

/// A connection to `addr` authenticated with `password` (5 s deadlines).
pub async fn connect(addr: &str, password: &str) -> MultiplexedConnection {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let client = redis::Client::open(redis::ConnectionAddr::Tcp(
        host.to_owned(),
        port.parse().unwrap(),
    ))
    .unwrap();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    let () = redis::cmd("AUTH")
        .arg(password)
        .query_async(&mut con)
        .await
        .unwrap_or_else(|e| panic!("AUTH on {addr}: {e}"));
    con
}

/// Writes `<prefix>:<n> = n` for n in 0..count through `addr`, pipelined
/// in batches of 1000, then `WAIT 1` so a replica has them all.
pub async fn write_keys(addr: &str, password: &str, prefix: &str, count: u64) {
    let mut con = connect(addr, password).await;
    let mut n = 0;
    while n < count {
        let end = (n + 1000).min(count);
        let mut pipe = redis::pipe();
        for k in n..end {
            pipe.cmd("SET").arg(format!("{prefix}:{k}")).arg(k).ignore();
        }
        let () = pipe.query_async(&mut con).await.unwrap();
        n = end;
    }
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(acked >= 1, "no replica acknowledged the {count} keys");
}

/// How many of `<prefix>:0..count` `addr` is missing.
pub async fn count_missing(addr: &str, password: &str, prefix: &str, count: u64) -> usize {
    let keys: Vec<u64> = (0..count).collect();
    logbook::bench::missing_keys(addr, Some(&Password::new(password)), prefix, &keys)
        .await
        .unwrap_or_else(|e| panic!("reading back {prefix} from {addr}: {e}"))
        .len()
}

/// `ROLE` of `addr`: ("master", None) or ("slave", Some(primary ip)).
pub async fn role(addr: &str, password: &str) -> (String, Option<String>) {
    let mut con = connect(addr, password).await;
    let reply: redis::Value = redis::cmd("ROLE").query_async(&mut con).await.unwrap();
    let redis::Value::Array(items) = reply else {
        panic!("ROLE of {addr}: {reply:?}");
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let kind = text(&items[0]);
    let primary = (kind == "slave").then(|| text(&items[1]));
    (kind, primary)
}

/// `ROLE` of `addr`, or `None` when it does not answer within a second
/// (down, restarting, loading).
pub async fn try_role(addr: &str, password: &str) -> Option<(String, Option<String>)> {
    let (host, port) = addr.rsplit_once(':')?;
    let client = redis::Client::open(redis::ConnectionAddr::Tcp(
        host.to_owned(),
        port.parse().ok()?,
    ))
    .ok()?;
    let limit = Duration::from_secs(1);
    let mut con = tokio::time::timeout(limit, client.get_multiplexed_async_connection())
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(
        limit,
        redis::cmd("AUTH").arg(password).query_async::<()>(&mut con),
    )
    .await
    .ok()?
    .ok()?;
    let reply = tokio::time::timeout(
        limit,
        redis::cmd("ROLE").query_async::<redis::Value>(&mut con),
    )
    .await
    .ok()?
    .ok()?;
    let redis::Value::Array(items) = reply else {
        return None;
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let kind = text(items.first()?);
    let primary = if kind == "slave" {
        items.get(1).map(text)
    } else {
        None
    };
    Some((kind, primary))
}

/// `INFO replication` field `field` of `addr`.
pub async fn info_field(addr: &str, password: &str, field: &str) -> Option<String> {
    let mut con = connect(addr, password).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut con)
        .await
        .unwrap();
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_owned())
    })
}

/// A write probe through `addr` (SET then `WAIT 1 1000` every 10 ms).
pub fn write_probe(addr: &str, password: &str, prefix: &str) -> logbook::bench::WriteProbe {
    let mut config = logbook::bench::WriteProbeConfig::fixed(addr, prefix);
    config.password = Some(Password::new(password));
    config.wait_replicas = true;
    logbook::bench::WriteProbe::start(config)
}

/// Checks a probe's log after a fault at `fault`: it wrote before and
/// after, and every acknowledged key is on `addr`. Returns (acked, failed).
pub async fn check_no_acked_write_lost(
    log: &logbook::bench::WriteLog,
    fault: Instant,
    addr: &str,
    password: &str,
) -> (usize, usize) {
    let acked = log.acked_keys();
    assert!(
        log.attempts.iter().any(|a| a.acked && a.started < fault),
        "no acknowledged write before the fault"
    );
    assert!(
        log.attempts
            .iter()
            .any(|a| a.succeeded() && a.started > fault),
        "no successful write after the fault ({} attempts, {} failed)",
        log.attempts.len(),
        log.failed_writes()
    );
    let missing =
        logbook::bench::missing_keys(addr, Some(&Password::new(password)), &log.prefix, &acked)
            .await
            .unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost on {addr}: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)]
    );
    (acked.len(), log.failed_writes())
}

/// A Replication cluster of `replicas` pods with fast probes and no PVC
/// size worth mentioning.
pub fn replication_yaml(name: &str, replicas: i32) -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {name}
spec:
  topology: Replication
  replicas: {replicas}
  failover:
    probeIntervalMilliseconds: 200
    failureThreshold: 3
  storage:
    size: 1Gi
"#
    )
}

/// The path of the test binary's target dir `logbook` binary.
pub fn logbook_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_logbook"))
}

// ---- A retrying client ----

/// What a [`RetryingWriter`] did.
#[derive(Debug, Default, Clone)]
pub struct RetryLog {
    /// Keys written and acknowledged (`WAIT 1` ≥ 1), in order.
    pub acked: Vec<u64>,
    /// Keys given up on after [`RetryingWriter`]'s deadline.
    pub given_up: Vec<u64>,
    /// Failed attempts (each one retried).
    pub retries: usize,
    /// The longest time one key took from its first attempt to its
    /// acknowledgement.
    pub longest: Duration,
    /// The last few errors, for failure messages.
    pub errors: VecDeque<String>,
}

/// A client writing `<prefix>:<n>` through one address as an application
/// would with a retry policy: each key is retried (reconnecting) until a
/// `SET` and `WAIT 1 1000` acknowledge it, for at most `give_up` per key.
pub struct RetryingWriter {
    log: Arc<Mutex<RetryLog>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RetryingWriter {
    /// Starts writing a key every 10 ms.
    pub fn start(addr: &str, password: &str, prefix: &str, give_up: Duration) -> Self {
        let log = Arc::new(Mutex::new(RetryLog::default()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (addr, password, prefix) = (addr.to_owned(), password.to_owned(), prefix.to_owned());
        let shared = log.clone();
        let task = tokio::spawn(async move {
            let mut con: Option<MultiplexedConnection> = None;
            let mut key = 0u64;
            loop {
                if *stopped.borrow() {
                    return;
                }
                let first = Instant::now();
                loop {
                    match write_once(&mut con, &addr, &password, &format!("{prefix}:{key}"), key)
                        .await
                    {
                        Ok(()) => {
                            let mut log = shared.lock().unwrap();
                            log.acked.push(key);
                            log.longest = log.longest.max(first.elapsed());
                            break;
                        }
                        Err(err) => {
                            con = None;
                            let mut log = shared.lock().unwrap();
                            log.retries += 1;
                            if log.errors.len() >= 20 {
                                log.errors.pop_front();
                            }
                            log.errors.push_back(format!("key {key}: {err}"));
                            if first.elapsed() > give_up {
                                log.given_up.push(key);
                                break;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                key += 1;
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        });
        Self { log, stop, task }
    }

    /// Keys acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.log.lock().unwrap().acked.len()
    }

    /// Stops after the key in flight and returns the log.
    pub async fn stop(self) -> RetryLog {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        self.log.lock().unwrap().clone()
    }
}

async fn write_once(
    con: &mut Option<MultiplexedConnection>,
    addr: &str,
    password: &str,
    key: &str,
    value: u64,
) -> Result<(), String> {
    let limit = Duration::from_millis(1500);
    if con.is_none() {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let client = redis::Client::open(redis::ConnectionAddr::Tcp(
            host.to_owned(),
            port.parse().unwrap(),
        ))
        .unwrap();
        let mut c = tokio::time::timeout(limit, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        tokio::time::timeout(
            limit,
            redis::cmd("AUTH").arg(password).query_async::<()>(&mut c),
        )
        .await
        .map_err(|_| "AUTH timed out".to_owned())?
        .map_err(|e| format!("AUTH: {e}"))?;
        *con = Some(c);
    }
    let c = con.as_mut().unwrap();
    tokio::time::timeout(
        limit,
        redis::cmd("SET").arg(key).arg(value).query_async::<()>(c),
    )
    .await
    .map_err(|_| "SET timed out".to_owned())?
    .map_err(|e| format!("SET: {e}"))?;
    let replicas: i64 =
        tokio::time::timeout(limit, redis::cmd("WAIT").arg(1).arg(1000).query_async(c))
            .await
            .map_err(|_| "WAIT timed out".to_owned())?
            .map_err(|e| format!("WAIT: {e}"))?;
    if replicas < 1 {
        return Err("WAIT: no replica acknowledged".to_owned());
    }
    Ok(())
}

/// Sets the switchover annotation on the cluster.
pub async fn request_switchover(env: &Env, name: &str, to: &str) {
    env.patch(
        name,
        serde_json::json!({"metadata": {"annotations": {"valkey.logbook.dev/switchover-to": to}}}),
    )
    .await;
}

/// Whether the switchover annotation is gone.
pub fn switchover_cleared(vkc: &ValkeyCluster) -> bool {
    !vkc.annotations()
        .contains_key("valkey.logbook.dev/switchover-to")
}

// ---- Watching pods during a change ----

/// What a [`PodMonitor`] saw.
#[derive(Debug, Default, Clone)]
pub struct PodHistory {
    /// The most pods missing, terminating or not Ready at one moment.
    pub max_down: usize,
    /// Pods seen terminating (or gone) while labelled primary.
    pub deleted_while_primary: Vec<String>,
    /// Pods in the order they were replaced (a new uid appeared).
    pub replaced: Vec<String>,
    /// Polls made.
    pub polls: usize,
}

/// Polls a cluster's pods every 50 ms while a change runs.
pub struct PodMonitor {
    history: Arc<Mutex<PodHistory>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodMonitor {
    /// Watches the pods of `name` expecting `want` of them.
    pub fn start(env: &Env, name: &str, want: usize) -> Self {
        let history = Arc::new(Mutex::new(PodHistory::default()));
        let shared = history.clone();
        let api: Api<Pod> = env.api();
        let selector = format!("valkey.logbook.dev/cluster={name}");
        let task = tokio::spawn(async move {
            let mut uids: BTreeMap<String, String> = BTreeMap::new();
            let mut primary_labelled: BTreeMap<String, bool> = BTreeMap::new();
            loop {
                if let Ok(list) = api.list(&ListParams::default().labels(&selector)).await {
                    let mut h = shared.lock().unwrap();
                    h.polls += 1;
                    let mut up = 0;
                    let mut seen = Vec::new();
                    for pod in &list.items {
                        let pod_name = pod.name_any();
                        seen.push(pod_name.clone());
                        let terminating = pod.metadata.deletion_timestamp.is_some();
                        let ready = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            });
                        if ready && !terminating {
                            up += 1;
                        }
                        let is_primary = pod
                            .labels()
                            .get("valkey.logbook.dev/role")
                            .map(String::as_str)
                            == Some("primary");
                        let uid = pod.metadata.uid.clone().unwrap_or_default();
                        if let Some(old) = uids.insert(pod_name.clone(), uid.clone())
                            && old != uid
                        {
                            h.replaced.push(pod_name.clone());
                        }
                        if terminating && is_primary && !h.deleted_while_primary.contains(&pod_name)
                        {
                            h.deleted_while_primary.push(pod_name.clone());
                        }
                        primary_labelled.insert(pod_name, is_primary && !terminating);
                    }
                    // A pod that vanished between two polls while labelled
                    // primary counts too.
                    for (pod_name, was_primary) in &primary_labelled {
                        if *was_primary
                            && !seen.contains(pod_name)
                            && !h.deleted_while_primary.contains(pod_name)
                        {
                            h.deleted_while_primary.push(pod_name.clone());
                        }
                    }
                    primary_labelled.retain(|k, _| seen.contains(k));
                    h.max_down = h.max_down.max(want.saturating_sub(up));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { history, task }
    }

    /// Stops and returns what was seen.
    pub fn stop(self) -> PodHistory {
        self.task.abort();
        self.history.lock().unwrap().clone()
    }
}
