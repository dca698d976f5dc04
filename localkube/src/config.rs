//! How a localkube is started: the options of [`crate::LocalKube::start`]
//! the hook through which part 2's kubelet serves pod logs, and the
//! workloads (controllers, proxy, kubelet) to run beside the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Serves `GET .../pods/{name}/log`; part 2's kubelet implements it.
pub trait PodLogs: Send + Sync {
    /// The log text of `container` (the pod's only or first when `None`),
    /// the last `tail_lines` when given.
    ///
    /// # Errors
    /// A message answered as 400 BadRequest (e.g. the container is not
    /// running), as the real server does.
    fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        tail_lines: Option<i64>,
    ) -> Result<String, String>;
}

/// Options of a localkube server.
#[derive(Clone)]
pub struct Config {
    /// Where to listen; `127.0.0.1:0` picks a free port.
    pub bind: SocketAddr,
    /// The cluster admin's bearer token: every request but health and
    /// version must carry it or a live ServiceAccount token. `None`: a
    /// request without credentials is the cluster admin.
    pub token: Option<String>,
    /// Authorize ServiceAccount requests against the stored Roles,
    /// ClusterRoles and their bindings, as a real server's RBAC does
    /// (the admin is never checked). Off: a ServiceAccount may do
    /// everything.
    pub rbac: bool,
    /// Keep the objects in sled here so a restart comes back with them.
    pub state_dir: Option<PathBuf>,
    /// How many changes a watch can resume from (older: 410 Gone).
    pub watch_history: usize,
    /// The largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// The source of pod logs; without it a log request is a 400.
    pub pod_logs: Option<Arc<dyn PodLogs>>,
    /// Deleting a scheduled pod only marks it (a kubelet finishes it).
    pub graceful_pod_deletion: bool,
    /// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK
    /// (the real server: about a minute).
    pub bookmark_interval: Duration,
    /// Run workloads (controllers, Service proxy, optionally the process
    /// kubelet); None serves the API only.
    pub workloads: Option<WorkloadsConfig>,
}

/// What runs beside the API server when workloads are on. Starting them
/// takes a localkube instance number (see [`crate::instance`]), whose
/// loopback block the ClusterIPs and pod addresses come from.
#[derive(Debug, Clone)]
pub struct WorkloadsConfig {
    /// Where the kubelet keeps pod state (PVC data, logs).
    pub state_dir: PathBuf,
    /// Run the process kubelet (needs root).
    pub kubelet: bool,
    /// Run the Service ClusterIP proxy.
    pub proxy: bool,
    /// Images the kubelet runs as a given local executable, besides its
    /// own table (Valkey, Redis, busybox): e.g. an operator's image as the
    /// binary just built, so a chart's Deployment runs here unchanged.
    pub local_images: Vec<LocalImage>,
}

/// An image the kubelet runs as a local executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    /// The image reference; a trailing `*` matches any suffix (any tag).
    pub pattern: String,
    /// The executable its containers run: the entrypoint when a container
    /// names no command, and what a command of the same file name runs.
    pub binary: PathBuf,
}

impl WorkloadsConfig {
    /// Controllers and proxy, no kubelet: pods stay as tests write them.
    pub fn without_kubelet(state_dir: PathBuf) -> Self {
        Self {
            state_dir,
            kubelet: false,
            proxy: true,
            local_images: Vec::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            rbac: false,
            state_dir: None,
            watch_history: 10_000,
            max_body_bytes: 3 * 1024 * 1024,
            pod_logs: None,
            graceful_pod_deletion: false,
            bookmark_interval: Duration::from_secs(10),
            workloads: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("rbac", &self.rbac)
            .field("state_dir", &self.state_dir)
            .field("watch_history", &self.watch_history)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("pod_logs", &self.pod_logs.is_some())
            .field("graceful_pod_deletion", &self.graceful_pod_deletion)
            .field("bookmark_interval", &self.bookmark_interval)
            .field("workloads", &self.workloads)
            .finish()
    }
}
