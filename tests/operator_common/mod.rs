//! The harness of the operator's end-to-end tests: an in-process localkube
//! with workloads (API, controllers, Service proxy, process kubelet running
//! real `valkey-server` pods), the project's CRDs installed, and the
//! operator running in-process on a sled journal in a temporary directory
//! (or on ConfigMap journals, when a test sets [`Env::journal`]).
//!
//! Each operator runs on its own thread with its own tokio runtime and its
//! own tracing subscriber, so its logs are captured per test (and dumped
//! when a wait fails) and it can be stopped (gracefully, or abruptly like a
//! crash) and started again on the same journal while the local cluster
//! keeps running. Several operators may run at once under different
//! instance names ([`Env::start_operator_as`]), as replicas of one
//! Deployment would, competing for the Lease. Every process the kubelet
//! started is killed when the harness is dropped, even when a test fails.
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
use logbook::journal_store::{AnyStore, ConfigMapStore, JournalBackend};
use logbook::valkey::Password;
use logbook_crds::ValkeyCluster;
use logbook_journal::{JournalStore, SledStore, StreamId};
use logbook_localkube::kubelet::{kill_leftovers, leftover_processes};
use logbook_localkube::{Config, LocalKube, RunningServer, WorkloadsConfig};
use redis::aio::MultiplexedConnection;

mod cluster;
mod configmaps;
mod disruption;
pub mod external;
mod faults;
mod monitor;
mod nodes;
mod process;
mod rbac;
mod retry;
mod valkey;
mod web;

#[allow(unused_imports)]
pub use cluster::*;

/// The `CertificateReady` condition: (status True?, message).
pub fn certificate_condition(vkc: &ValkeyCluster) -> Option<(bool, String)> {
    vkc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "CertificateReady")
        .map(|c| (c.status == "True", c.message.clone()))
}

/// The notes of the Warning Events `events` lists (a namespace's).
pub async fn warning_notes(events: &Api<k8s_openapi::api::events::v1::Event>) -> Vec<String> {
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.note)
        .collect()
}
#[allow(unused_imports)]
pub use configmaps::*;
#[allow(unused_imports)]
pub use disruption::*;
#[allow(unused_imports)]
pub use faults::*;
#[allow(unused_imports)]
pub use monitor::*;
#[allow(unused_imports)]
pub use nodes::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use rbac::*;
#[allow(unused_imports)]
pub use retry::*;
#[allow(unused_imports)]
pub use valkey::*;
#[allow(unused_imports)]
pub use web::*;

/// Every test works in this namespace.
pub const NS: &str = "default";
/// The Lease term of the tests' operators.
pub const LEASE: Duration = Duration::from_secs(3);
/// Their renew period.
pub const RENEW: Duration = Duration::from_secs(1);
/// Lines of operator log kept for failure messages.
const LOG_LINES: usize = 4000;
/// The Valkey port of every pod and Service.
pub const PORT: u16 = 6379;

/// The log filter of the operators the tests start.
fn log_filter() -> String {
    std::env::var("LOGBOOK_TEST_LOG")
        .ok()
        .filter(|f| !f.is_empty() && f != "1")
        .unwrap_or_else(|| "info,logbook=debug,kube=warn".to_owned())
}

/// A global default subscriber with the operators' filter that drops what
/// it is given. tracing caches, per callsite, whether any registered
/// subscriber wants it; a line first reached on a thread with no
/// subscriber of its own (a test calling the library directly, as the
/// storage migration's tests do) while another test's operator
/// registers its subscriber can be cached as wanted by nobody, and that
/// operator's captured log then misses it for the rest of the process.
/// With this one always registered and interested, no line the operators
/// log is ever cached so.
fn quiet_global_subscriber() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let quiet = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter()))
            .with_writer(std::io::sink)
            .finish();
        let _ = tracing::subscriber::set_global_default(quiet);
    });
}

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

/// A `MakeWriter` appending to the test's [`Logs`] and to the instance's
/// own (and echoing to stderr when `LOGBOOK_TEST_LOG` is set). With
/// several operators at once, the test's lines carry the instance name.
#[derive(Clone)]
struct LogWriter {
    logs: Logs,
    own: Logs,
    prefix: Option<String>,
    echo: bool,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.own.push(&text);
        let text = match &self.prefix {
            Some(prefix) => text
                .lines()
                .map(|l| format!("[{prefix}] {l}\n"))
                .collect::<String>(),
            None => text.into_owned(),
        };
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

/// An operator running on its own thread and runtime.
struct Operator {
    stop: Option<tokio::sync::oneshot::Sender<Stop>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    /// This instance's log lines alone.
    logs: Logs,
}

impl Operator {
    fn start(
        conn: kube::Config,
        token: String,
        (journal, journal_dir): (JournalBackend, PathBuf),
        instance: String,
        logs: Logs,
        prefixed: bool,
        (ui_addr, webhook): (
            Option<std::net::SocketAddr>,
            Option<logbook::webhook::WebhookConfig>,
        ),
    ) -> Self {
        let own = Logs::default();
        let writer = LogWriter {
            logs,
            own: own.clone(),
            prefix: prefixed.then(|| instance.clone()),
            echo: std::env::var_os("LOGBOOK_TEST_LOG").is_some(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<Stop>();
        let thread = std::thread::Builder::new()
            .name(format!("operator-{instance}"))
            .stack_size(logbook::operator::THREAD_STACK_BYTES)
            .spawn(move || {
                let filter = log_filter();
                let subscriber = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(writer)
                    .finish();
                let dispatch = tracing::Dispatch::new(subscriber);
                let for_workers = dispatch.clone();
                // Each worker thread of this runtime logs into this test's
                // buffer: the default dispatcher is per thread.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_stack_size(logbook::operator::THREAD_STACK_BYTES)
                    .enable_all()
                    .on_thread_start(move || {
                        std::mem::forget(tracing::dispatcher::set_default(&for_workers));
                    })
                    .build()
                    .map_err(|e| e.to_string())?;
                let _guard = tracing::dispatcher::set_default(&dispatch);
                runtime.block_on(async move {
                    // As the chart's ServiceAccount, under the chart's RBAC.
                    let mut kube_config = conn;
                    kube_config.auth_info.token = Some(token.into());
                    let client = kube::Client::try_from(kube_config).unwrap();
                    let mut config =
                        logbook::operator::OperatorConfig::new(journal, journal_dir, instance, NS);
                    // Short terms, so that a successor of a crashed
                    // instance takes over in seconds.
                    config.lease.lease_duration = LEASE;
                    config.lease.renew_every = RENEW;
                    // As the chart's `ui.enabled` serves it: each reader
                    // checked by the API server.
                    config.ui_addr = ui_addr;
                    config.webhook = webhook;
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
            logs: own,
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

/// `kubectl apply -f config/samples/<name>`, with the real kubectl, as a
/// user would.
pub fn apply_sample(env: &Env, name: &str) {
    apply_sample_edited(env, name, |text| text);
}

/// `kubectl apply -f -` of `config/samples/<name>` as `edit` leaves it: a
/// sample a user adapts to where they run it (an endpoint, say).
pub fn apply_sample_edited(env: &Env, name: &str, edit: impl FnOnce(String) -> String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("config/samples").join(name))
        .unwrap_or_else(|e| panic!("config/samples/{name}: {e}"));
    kubectl_apply(env, NS, &edit(text), &format!("config/samples/{name}"));
}

/// `kubectl apply -f -` of `text` in `namespace`, with the real kubectl,
/// as a user would (only the fields written are sent); `what` names it
/// in a failure.
pub fn kubectl_apply(env: &Env, namespace: &str, text: &str, what: &str) {
    let out = kubectl_apply_output(env, namespace, text);
    assert!(
        out.status.success(),
        "kubectl apply -f {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`kubectl_apply`]'s run, whatever it ends with (a refusal to check).
pub fn kubectl_apply_output(env: &Env, namespace: &str, text: &str) -> std::process::Output {
    kubectl_fed(env, namespace, &["apply", "-f", "-"], text)
}

/// `kubectl <args>` in `namespace` with the real kubectl, `stdin` as its
/// input; its run, whatever it ends with.
pub fn kubectl_fed(env: &Env, namespace: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kubectl = root.join(".tools/bin/kubectl");
    assert!(kubectl.exists(), "kubectl not found: run `make setup`");
    let mut child = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(env.write_kubeconfig())
        .args(["--namespace", namespace])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `kubectl <args>` in `namespace`, with the real kubectl, as a user
/// would; its standard output. Panics with its error when it fails.
pub fn kubectl(env: &Env, namespace: &str, args: &[&str]) -> String {
    kubectl_with(env, namespace, args, &[])
}

/// [`kubectl`] with `vars` in its environment (`KUBE_EDITOR` for a
/// `kubectl edit` that a script makes).
pub fn kubectl_with(env: &Env, namespace: &str, args: &[&str], vars: &[(&str, &str)]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kubectl = root.join(".tools/bin/kubectl");
    assert!(kubectl.exists(), "kubectl not found: run `make setup`");
    let out = std::process::Command::new(kubectl)
        .envs(vars.iter().copied())
        .arg("--kubeconfig")
        .arg(env.write_kubeconfig())
        .args(["--namespace", namespace])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl valkey <args>` through the real kubectl, this build's plugin
/// on its PATH: (exit code, stdout, stderr), failing or not.
pub async fn kubectl_valkey_ran(env: &Env, args: &[&str]) -> (i32, String, String) {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_kubectl-valkey"),
        bin.path().join("kubectl-valkey"),
    )
    .unwrap();
    let mut path = std::ffi::OsString::from(bin.path());
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    let kubectl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl");
    let kubeconfig = env.write_kubeconfig();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(kubectl)
            .arg("valkey")
            .args(&args)
            .env("PATH", path)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl valkey <args>` as [`kubectl_valkey_ran`]; its output. Panics
/// with its error when it fails.
pub async fn kubectl_valkey(env: &Env, args: &[&str]) -> String {
    let (code, stdout, stderr) = kubectl_valkey_ran(env, args).await;
    assert_eq!(code, 0, "kubectl valkey: {stderr}");
    stdout
}

/// The operator's image as this build's `logbook`, linked into
/// `<root>/bin` as `logbook-operator`.
fn operator_image(root: &std::path::Path) -> Vec<logbook_localkube::LocalImage> {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_logbook"));
    vec![logbook::local::operator_image(binary, &root.join("bin")).unwrap()]
}

pub fn on_kubernetes() -> bool {
    std::env::var("LOGBOOK_E2E_CONTROL_PLANE").as_deref() == Ok("kubernetes") || on_containers()
}

/// Whether the end-to-end tests run on the real control plane with the
/// real node (`LOGBOOK_E2E_NODE=containers`: the kubelet, containerd and
/// runc running Logbook's images, `make node images`; docs/node.md)
/// rather than localkube's kubelet. Implies [`on_kubernetes`].
pub fn on_containers() -> bool {
    std::env::var("LOGBOOK_E2E_NODE").as_deref() == Ok("containers")
}

/// The control plane a test runs on.
pub(crate) enum Backend {
    /// localkube, in process.
    Local(RunningServer),
    /// etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
    /// with localkube's kubelet and proxy as the node.
    Kubernetes(logbook::local::kubernetes::LocalKubernetes),
    /// The same control plane with the real node: containers.
    Containers(logbook::local::containers::LocalContainers),
}

impl Backend {
    /// The address prefixes of the pods and ClusterIPs.
    pub(crate) fn host_prefixes(&self) -> Vec<String> {
        match self {
            Self::Local(s) => s.instance().map(|i| i.host_prefixes()).unwrap_or_default(),
            Self::Kubernetes(k) => k.host_prefixes(),
            Self::Containers(c) => c.host_prefixes(),
        }
    }

    /// localkube's server; a test that needs it on the real control plane
    /// fails saying so.
    pub(crate) fn local(&self) -> &RunningServer {
        match self {
            Self::Local(s) => s,
            Self::Kubernetes(_) | Self::Containers(_) => panic!(
                "this check reads localkube's own records; it cannot run on the real control plane"
            ),
        }
    }

    /// The real control plane (its admin kubeconfig, its CA), or `None`
    /// on localkube.
    pub(crate) fn control_plane(&self) -> Option<&logbook::local::kubernetes::ControlPlane> {
        match self {
            Self::Local(_) => None,
            Self::Kubernetes(k) => Some(k.control_plane()),
            Self::Containers(c) => Some(c.control_plane()),
        }
    }

    async fn shutdown(self) {
        match self {
            Self::Local(s) => s.shutdown().await,
            Self::Kubernetes(k) => k.shutdown().await,
            Self::Containers(c) => c.shutdown().await,
        }
    }
}

/// A local cluster with the operator (or several).
pub struct Env {
    pub(crate) server: Option<Backend>,
    /// How an operator reaches the API server (address, CA), before its
    /// credentials.
    pub(crate) conn: kube::Config,
    /// A client of the local API server.
    pub client: kube::Client,
    faults: PodFaults,
    /// The operator's sled journal.
    pub journal_dir: PathBuf,
    state_dir: PathBuf,
    /// The running operators by instance name.
    operators: BTreeMap<String, Operator>,
    starts: usize,
    /// Where the next operator start journals (sled unless a test says).
    pub journal: JournalBackend,
    /// Every operator's log lines, across restarts.
    pub logs: Logs,
    /// Where the next operator start serves the web UI, if anywhere.
    pub ui_addr: Option<std::net::SocketAddr>,
    /// The validating webhook the next operator start serves, if any.
    pub webhook: Option<logbook::webhook::WebhookConfig>,
    /// The chart's ServiceAccount's token, which every operator uses.
    pub(crate) operator_token: String,
    name: String,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        // Reached with the server still set only when a test failed: no
        // valkey-server may outlive the test.
        if self.server.is_some() {
            self.operators.clear();
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
        Self::start_without_operator_on(name, 1).await
    }

    /// Like [`Env::start_without_operator`], with `nodes` real nodes
    /// (several only on containers: `LOGBOOK_E2E_NODE=containers`).
    pub async fn start_without_operator_on(name: &str, nodes: usize) -> Env {
        assert!(
            nodes == 1 || on_containers(),
            "{nodes} nodes need the real node (LOGBOOK_E2E_NODE=containers)"
        );
        quiet_global_subscriber();
        let dir = tempfile::Builder::new()
            .prefix("logbook-e2e-")
            .tempdir()
            .unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let state_dir = root.join("workloads");
        std::fs::create_dir_all(&state_dir).unwrap();
        // The operator's image (a restore's init container) runs this
        // build's `logbook`.
        let images = operator_image(&root);
        let (server, client, conn, faults, state_dir, operator_token) = if on_kubernetes() {
            // The operator's image on the real node is the one `make
            // images` built and the node imported, not this build's binary.
            let (k, client, admin_kubeconfig, faults, state_dir) = if on_containers() {
                let c = logbook::local::containers::LocalContainers::start_nodes(&root, nodes)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("the real control plane and node did not start: {e}")
                    });
                let client = c.client("admin").await.unwrap();
                let admin = c.admin_kubeconfig().to_owned();
                let faults = PodFaults::Containers(c.faults(), client.clone());
                (Backend::Containers(c), client, admin, faults, state_dir)
            } else {
                let k = logbook::local::kubernetes::LocalKubernetes::start_with(&root, images)
                    .await
                    .unwrap_or_else(|e| panic!("the real control plane did not start: {e}"));
                let client = k.client("admin").await.unwrap();
                let admin = k.admin_kubeconfig().to_owned();
                let (faults, node_dir) = (PodFaults::Local(k.faults()), k.node_dir());
                (Backend::Kubernetes(k), client, admin, faults, node_dir)
            };
            let mut conn = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&admin_kubeconfig).unwrap(),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            conn.auth_info = kube::config::AuthInfo::default();
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
            match namespaces
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap(),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => panic!("creating namespace {NS}: {e}"),
            }
            rbac::install(&client, NS).await;
            let token = rbac::token_request(&client, NS).await;
            (k, client, conn, faults, state_dir, token)
        } else {
            let server = LocalKube::start(Config {
                workloads: Some(WorkloadsConfig {
                    state_dir: state_dir.clone(),
                    kubelet: true,
                    proxy: true,
                    local_images: images,
                }),
                rbac: true,
                ..Config::default()
            })
            .await
            .unwrap();
            install_crds(&server);
            let conn = kube::Config::new(server.url().parse().unwrap());
            let client = kube::Client::try_from(conn.clone()).unwrap();
            rbac::install(&client, NS).await;
            let token = server
                .service_account_token(NS, rbac::RELEASE, Duration::from_secs(24 * 3600))
                .unwrap();
            let faults = PodFaults::Local(server.faults().expect("the kubelet runs"));
            (
                Backend::Local(server),
                client,
                conn,
                faults,
                state_dir,
                token,
            )
        };
        let env = Env {
            server: Some(server),
            conn,
            client,
            faults,
            journal_dir: root.join("journal"),
            state_dir,
            operators: BTreeMap::new(),
            starts: 0,
            journal: JournalBackend::Sled,
            logs: Logs::default(),
            ui_addr: None,
            webhook: None,
            operator_token,
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

    /// Starts the operator on the journal directory (again, after a stop)
    /// as a new instance `<test name>-<n>`, and returns that name. No
    /// other operator may be running.
    pub fn start_operator(&mut self) -> String {
        assert!(
            self.operators.is_empty(),
            "an operator already runs: {:?}",
            self.operators.keys().collect::<Vec<_>>()
        );
        let instance = format!("{}-{}", self.name, self.starts + 1);
        self.launch(&instance, false);
        instance
    }

    /// Starts one more operator as `instance`, beside those running (they
    /// compete for the Lease; only its holder acts). Its log lines carry
    /// the instance name in [`Env::logs`]. Two operators cannot share a
    /// sled directory: this needs [`Env::journal`] without sled.
    pub fn start_operator_as(&mut self, instance: &str) {
        assert!(
            !self.operators.contains_key(instance),
            "operator {instance} already runs"
        );
        assert!(
            self.operators.is_empty() || !self.journal.uses_sled(),
            "two operators cannot share the sled journal in {}",
            self.journal_dir.display()
        );
        self.launch(instance, true);
    }

    fn launch(&mut self, instance: &str, prefixed: bool) {
        self.starts += 1;
        let conn = self.conn.clone();
        self.logs.push(&format!(
            "==== operator start #{} ({instance}) ====",
            self.starts
        ));
        let operator = Operator::start(
            conn,
            self.operator_token.clone(),
            (self.journal, self.journal_dir.clone()),
            instance.to_owned(),
            self.logs.clone(),
            prefixed,
            (self.ui_addr, self.webhook.clone()),
        );
        self.operators.insert(instance.to_owned(), operator);
    }

    /// The instance names of the running operators.
    pub fn operators(&self) -> Vec<String> {
        self.operators.keys().cloned().collect()
    }

    /// The log lines of one running operator alone.
    pub fn operator_logs(&self, instance: &str) -> Logs {
        self.operators
            .get(instance)
            .unwrap_or_else(|| panic!("operator {instance} does not run"))
            .logs
            .clone()
    }

    /// Stops the operator (the only one running); the local cluster keeps
    /// running.
    pub async fn stop_operator(&mut self, how: Stop) {
        let running = self.operators();
        assert!(
            running.len() == 1,
            "stop_operator needs exactly one operator running: {running:?}"
        );
        self.stop_operator_as(&running[0], how).await;
    }

    /// Stops operator `instance`; the local cluster and the other
    /// operators keep running.
    pub async fn stop_operator_as(&mut self, instance: &str, how: Stop) {
        let operator = self
            .operators
            .remove(instance)
            .unwrap_or_else(|| panic!("operator {instance} does not run"));
        let result = operator.stop(how).await;
        self.logs
            .push(&format!("==== operator {instance} stopped ({how:?}) ===="));
        if let Err(err) = result {
            panic!(
                "operator {instance} stopped with an error: {err}\n{}",
                self.logs.tail(60).join("\n")
            );
        }
    }

    /// Stops the operator and the local cluster, and checks that no
    /// process is left behind.
    pub async fn finish(mut self) {
        let operators = std::mem::take(&mut self.operators);
        for (_, op) in operators {
            let _ = op.stop(Stop::Graceful).await;
        }
        // localkube records every refusal; on the real control plane a
        // refusal shows as the operator failing to do its work.
        if let Some(Backend::Local(server)) = self.server.as_ref() {
            rbac::check(server, NS, &self.name);
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let left = leftover_processes(&self.state_dir);
        assert!(left.is_empty(), "processes left behind: {left:?}");
    }

    /// While held, the harness's connections to this environment's pods
    /// and Services speak TLS ([`logbook_bench::speak_tls_to`]): for
    /// clusters with `spec.tls`, which serve no plaintext port.
    pub fn speak_tls(&self) -> Vec<logbook_bench::TlsHosts> {
        self.server
            .as_ref()
            .map(Backend::host_prefixes)
            .unwrap_or_default()
            .into_iter()
            .map(logbook_bench::speak_tls_to)
            .collect()
    }

    /// An address of the host that this environment's pods reach: where
    /// a server for them (an S3 endpoint) listens. localkube's pods are
    /// host processes whose own 127.0.0.1 is the host's, but a server there
    /// is the host's too: they use 127.0.0.3; a container reaches the host
    /// at its end of the node's link.
    pub fn host_for_pods(&self) -> [u8; 4] {
        match self.server.as_ref() {
            Some(Backend::Containers(c)) => c.host_address().octets(),
            _ => [127, 0, 0, 3],
        }
    }

    /// The fault injector of the node.
    pub fn faults(&self) -> &PodFaults {
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

    /// Merge-patches a ValkeyCluster; a spec in `patch` is written as
    /// v1alpha1 says it, and sent as v1beta1 (the version stored).
    pub async fn patch(&self, name: &str, patch: serde_json::Value) -> ValkeyCluster {
        let stored = logbook_crds::hub::merge_patch_to_stored(&patch).unwrap();
        self.vkcs()
            .patch(name, &PatchParams::default(), &Patch::Merge(&stored))
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
        probe: &logbook_bench::WriteProbe,
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

    /// Waits until `status.primary` names a pod other than `old` (a
    /// failover or switchover has completed) and returns the cluster.
    pub async fn wait_primary_moved(
        &self,
        name: &str,
        old: &str,
        timeout: Duration,
    ) -> ValkeyCluster {
        self.wait_status(name, timeout, &format!("a primary other than {old}"), |v| {
            v.status
                .as_ref()
                .and_then(|s| s.primary.as_deref())
                .is_some_and(|p| p != old)
        })
        .await
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

    /// The cluster's data pods (not its Sentinels), by ordinal.
    pub async fn pods(&self, name: &str) -> Vec<Pod> {
        let mut pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!(
                "app.kubernetes.io/name=valkey,valkey.logbook.dev/cluster={name}"
            )))
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

    /// The log of the requests the local API server answered.
    pub fn api_requests(&self) -> logbook_localkube::http::requests::RequestLog {
        self.server.as_ref().unwrap().local().requests()
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

    /// The journal store the operators write to: the sled directory (the
    /// operator must be stopped: sled locks it), or the ConfigMaps of
    /// [`NS`], which can be read while operators run (with `both`, the
    /// ConfigMaps are authoritative).
    pub fn journal_store(&self) -> AnyStore {
        match self.journal {
            JournalBackend::Sled => AnyStore::Sled(
                SledStore::open(&self.journal_dir, logbook_journal::Durability::Flush).unwrap(),
            ),
            JournalBackend::ConfigMap | JournalBackend::Both => {
                AnyStore::ConfigMap(ConfigMapStore::new(self.client.clone(), NS))
            }
        }
    }

    /// The head seq of `stream` in the journal (see [`Env::journal_store`]).
    pub async fn journal_head(&self, stream: &StreamId) -> u64 {
        self.journal_store().head(stream).await.unwrap().seq
    }

    /// Verifies every stream of the journal (see [`Env::journal_store`];
    /// each ConfigMap stream as of one read of its head, so an operator
    /// appending meanwhile is not taken for damage) and returns the number
    /// of events checked per stream.
    pub async fn verify_journal(&self) -> Vec<(String, u64)> {
        let store = self.journal_store();
        let mut reports = Vec::new();
        for stream in store.list_streams().await.unwrap() {
            let report = match &store {
                AnyStore::ConfigMap(maps) => {
                    let pinned = maps.pin(&stream).await.unwrap();
                    logbook_journal::verify::verify(&pinned, &stream).await
                }
                other => logbook_journal::verify::verify(other, &stream).await,
            };
            reports.push(report.unwrap());
        }
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

    /// The projection folded from the journal (see [`Env::journal_store`]).
    pub async fn journal_state(&self, stream: &StreamId) -> logbook_journal::ClusterState {
        let loaded = match self.journal_store() {
            AnyStore::ConfigMap(maps) => {
                let pinned = maps.pin(stream).await.unwrap();
                logbook_journal::reader::load_state(&pinned, stream).await
            }
            other => logbook_journal::reader::load_state(&other, stream).await,
        };
        loaded.unwrap().state
    }

    /// Every event of `stream`, each checked against its CRC and the hash
    /// chain from the first (see [`Env::journal_store`]).
    pub async fn journal_events(&self, stream: &StreamId) -> Vec<logbook_journal::Envelope> {
        match self.journal_store() {
            AnyStore::ConfigMap(maps) => {
                read_all_events(&maps.pin(stream).await.unwrap(), stream).await
            }
            other => read_all_events(&other, stream).await,
        }
    }

    /// Writes a kubeconfig for the local API server (for the `logbook`
    /// binary) and returns its path.
    pub fn write_kubeconfig(&self) -> PathBuf {
        let path = self.state_dir.with_file_name("kubeconfig");
        let server = self.server.as_ref().unwrap();
        match server.control_plane() {
            Some(cp) => {
                std::fs::copy(&cp.admin, &path).unwrap();
            }
            None => server.local().write_kubeconfig(&path).unwrap(),
        }
        path
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
            // A container that is not ready: how it last ended.
            for c in pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default()
                .iter()
                .filter(|c| !c.ready)
            {
                let last = c
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| format!("exit {} {:?}", t.exit_code, t.message))
                    .unwrap_or_default();
                out.push_str(&format!("  container {} not ready: {last}\n", c.name));
            }
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

/// Every event of `stream` in `store`, from seq 1 to its head.
async fn read_all_events<S: JournalStore>(
    store: &S,
    stream: &StreamId,
) -> Vec<logbook_journal::Envelope> {
    let head = store.head(stream).await.unwrap().seq;
    logbook_journal::reader::read_envelopes(
        store,
        stream,
        1,
        logbook_journal::ChainHash::GENESIS,
        head,
    )
    .await
    .unwrap()
}

/// Installs every CRD of the project, as `logbook local` does.
fn install_crds(server: &RunningServer) {
    logbook::local_cluster::install_crds(server).unwrap();
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

/// The password `config/samples/user.yaml` puts in its Secret.
pub const SAMPLE_USER_PASSWORD: &str = "change-me-app-password";

/// Creates the Secret and the ValkeyUser of `config/samples/user.yaml`, as
/// the file has them.
pub async fn create_user_sample(env: &Env) {
    use k8s_openapi::api::core::v1::Secret;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples/user.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = serde_yaml::Deserializer::from_str(&text);
    let secret: Secret = serde::Deserialize::deserialize(docs.next().unwrap()).unwrap();
    let user: logbook_crds::ValkeyUser =
        serde::Deserialize::deserialize(docs.next().unwrap()).unwrap();
    let secrets: Api<Secret> = env.api();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let users: Api<logbook_crds::ValkeyUser> = env.api();
    users.create(&PostParams::default(), &user).await.unwrap();
}

/// Each Sentinel pod's `ip:26379` of `cluster`.
pub async fn sentinel_addrs(env: &Env, cluster: &str) -> Vec<String> {
    let pods: Api<Pod> = env.api();
    pods.list(&ListParams::default().labels(&format!(
        "valkey.logbook.dev/cluster={cluster},app.kubernetes.io/component=sentinel"
    )))
    .await
    .unwrap()
    .items
    .iter()
    .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
    .map(|ip| format!("{ip}:26379"))
    .collect()
}
