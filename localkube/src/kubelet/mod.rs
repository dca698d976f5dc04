//! The process kubelet: runs the pods bound to the one local node,
//! `localkube-node`, as local processes, and reports them as a real kubelet
//! does (Node object and Lease, pod status with conditions and container
//! states, logs).
//!
//! # Pod network: the "equivalent" of a per-pod network namespace
//! Every pod gets its own address in the instance's loopback block
//! ([`Instance::pod_ip`]) but its processes run in the host network
//! namespace. A pod namespace with its own interface cannot carry a
//! `127.0.0.0/8` address that the host and the other pods reach: the kernel
//! treats the whole block as local to each namespace's `lo`, so routing it
//! between namespaces would mean changing the host's local routes. Instead
//! a small `LD_PRELOAD` shim (`localkube/shim/podnet.c`, compiled at start
//! into the state dir) makes the pod's sockets carry its address: binds to
//! the any-address or 127.0.0.1 bind the pod address, connects to
//! 127.0.0.1 go to the pod itself, and outgoing TCP connections are bound
//! to the pod address first, so a Valkey replica is seen by its primary at
//! its pod IP (the issue allows "an equivalent" of a namespace; this is it).
//!
//! # Service names
//! No cluster DNS answers here: the kubelet keeps a hosts file of the
//! Services' names and ClusterIPs, which the same shim answers a pod's
//! lookups of `*.svc` and `*.svc.cluster.local` from ([`dns`]).
//!
//! # Mounts
//! Each container runs in its own mount namespace (`unshare --mount`), in
//! which every volumeMount is bind-mounted at its mountPath, so the pod
//! spec built for a real cluster works unchanged. This needs root.
//!
//! # Processes
//! Every process is started under `setpriv --pdeathsig KILL`, in its own
//! process group, with `LOCALKUBE_KUBELET=<state dir>` in its environment:
//! the group is what faults and termination signal; the death signal ends
//! the process with the kubelet's thread; the marker lets
//! [`kill_leftovers`] find survivors of a crashed run.
//!
//! Must not: write the pod's spec (except binding `spec.nodeName`), or
//! touch PVC data except through [`Faults::wipe_pvc_data`] and
//! [`Faults::corrupt_pvc_data`].

mod container;
mod dns;
mod env;
mod faults;
mod images;
mod logs;
mod node;
mod pod;
mod probe;
mod procs;
mod server;
mod shim;
mod status;
mod volumes;
mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Store;
use crate::instance::Instance;
use crate::node_api::NodeApi;

pub use faults::{FaultError, Faults};
pub use images::{ImageRule, ImageTable};
pub use procs::{kill_leftovers, leftover_processes};
pub use server::KubeletTls;
pub use volumes::{corrupt_files, pvc_dir};

/// The node every pod runs on.
pub const NODE_NAME: &str = "localkube-node";

/// Why the kubelet cannot start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// Not running as root: mount namespaces and bind mounts need it.
    #[error(
        "the localkube kubelet needs root (mount namespaces and bind mounts); run as root or without the kubelet"
    )]
    NotRoot,
    /// The state directory cannot be prepared.
    #[error("cannot prepare the kubelet state directory {dir}: {source}")]
    StateDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The network shim did not compile.
    #[error("cannot compile the pod network shim: {0}")]
    Shim(String),
    /// The kubelet API could not be served.
    #[error("cannot serve the kubelet API: {0}")]
    Api(String),
    /// The Node or its Lease could not be written.
    #[error("cannot register node {node}: {source}")]
    Node {
        /// The node name.
        node: String,
        /// The API error.
        #[source]
        source: crate::ApiError,
    },
}

/// How the kubelet runs.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The node's name (`localkube-node`).
    pub node_name: String,
    /// Where pods' volumes, logs and PVC data live.
    pub state_dir: PathBuf,
    /// Images and commands to local executables.
    pub images: ImageTable,
    /// Where executables are looked up first (then `PATH`).
    pub bin_path: Vec<PathBuf>,
    /// Serve the kubelet API (pod logs) with these certificates: a node
    /// of a real control plane, whose API server asks its kubelet for logs.
    pub tls: Option<KubeletTls>,
}

impl KubeletConfig {
    /// Runs each of `images` as its local executable, ahead of the
    /// default table: its file name becomes a command mapped to itself,
    /// found first in its own directory.
    pub fn add_local_images(&mut self, images: &[crate::config::LocalImage]) {
        for image in images.iter().rev() {
            let Some(name) = image.binary.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            self.images.images.insert(
                0,
                images::ImageRule {
                    pattern: image.pattern.clone(),
                    entrypoint: vec![name.to_owned()],
                    lacks: Vec::new(),
                    binaries: BTreeMap::new(),
                },
            );
            self.images
                .commands
                .insert(name.to_owned(), name.to_owned());
            if let Some(dir) = image.binary.parent() {
                self.bin_path.insert(0, dir.to_path_buf());
            }
        }
    }

    /// The defaults around `state_dir`: `$LOCALKUBE_BIN_PATH`, then the
    /// project's `.tools/bin` when present, as the executable path.
    pub fn new(state_dir: PathBuf) -> Self {
        let mut bin_path: Vec<PathBuf> = std::env::var_os("LOCALKUBE_BIN_PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin");
        if tools.is_dir() {
            bin_path.push(tools);
        }
        Self {
            node_name: NODE_NAME.to_owned(),
            state_dir,
            images: ImageTable::default(),
            bin_path,
            tls: None,
        }
    }
}

/// A pod the kubelet runs, as faults and logs find it.
#[derive(Debug, Clone)]
pub(crate) struct PodEntry {
    pub namespace: String,
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    /// The containers' names.
    pub containers: Vec<String>,
    /// Container name to the process id of its running instance.
    pub pids: Arc<Mutex<HashMap<String, u32>>>,
    pub updates: tokio::sync::mpsc::UnboundedSender<worker::PodEvent>,
}

/// What every task of the kubelet shares.
pub(crate) struct Shared {
    pub api: NodeApi,
    pub instance: Arc<Instance>,
    pub config: KubeletConfig,
    pub shim: PathBuf,
    pub bin_dir: PathBuf,
    /// Pods by uid.
    pub pods: Mutex<HashMap<String, PodEntry>>,
    pub used_ips: Mutex<BTreeSet<u32>>,
    pub partitioned: Mutex<HashSet<Ipv4Addr>>,
    pub shutdown: watch::Receiver<bool>,
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// The lowest free pod address.
    pub fn allocate_ip(&self) -> Option<(u32, Ipv4Addr)> {
        let mut used = self.used_ips.lock();
        let index = (0..crate::instance::POD_ADDRESSES).find(|i| !used.contains(i))?;
        let ip = self.instance.pod_ip(index)?;
        used.insert(index);
        Some((index, ip))
    }

    /// Gives a pod address back.
    pub fn release_ip(&self, index: u32) {
        self.used_ips.lock().remove(&index);
    }

    /// The iptables comment tagging this instance's rules.
    pub fn rule_tag(&self) -> String {
        format!("localkube-{}", self.instance.number())
    }
}

/// Starts kubelets.
pub struct Kubelet;

impl Kubelet {
    /// Registers the node in localkube's `store` and starts running the
    /// pods bound to it (binding them first: localkube has no scheduler).
    ///
    /// # Errors
    /// As [`Kubelet::spawn_on`].
    pub async fn spawn(
        store: Store,
        instance: Arc<Instance>,
        config: KubeletConfig,
    ) -> Result<KubeletHandle, KubeletError> {
        Self::spawn_on(NodeApi::Local(store), instance, config).await
    }

    /// Registers the node through `api` and starts running the pods bound
    /// to it: on a real control plane ([`NodeApi::Remote`]) with the
    /// node's credentials, watching only its own pods.
    ///
    /// # Errors
    /// [`KubeletError`] when not root, the state dir is unusable, the shim
    /// does not compile or the Node cannot be written.
    pub async fn spawn_on(
        api: NodeApi,
        instance: Arc<Instance>,
        config: KubeletConfig,
    ) -> Result<KubeletHandle, KubeletError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(KubeletError::NotRoot);
        }
        let dir = config.state_dir.clone();
        let io = |source| KubeletError::StateDir {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let dir = std::fs::canonicalize(&dir).map_err(io)?;
        let mut config = config;
        config.state_dir = dir.clone();
        // A previous run that died without shutting down leaves processes.
        kill_leftovers(&dir);
        let shim = shim::compile(&dir).await?;
        let bin_dir = dir.join("bin");
        images::link_commands(&config, &bin_dir).map_err(io)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            api,
            instance,
            config,
            shim,
            bin_dir,
            pods: Mutex::new(HashMap::new()),
            used_ips: Mutex::new(BTreeSet::new()),
            partitioned: Mutex::new(HashSet::new()),
            shutdown: stop_rx,
            tasks: Mutex::new(Vec::new()),
        });
        let mut tasks = Vec::new();
        let mut port = 0;
        if let Some(tls) = &shared.config.tls {
            let logs: Arc<dyn crate::PodLogs> = Arc::new(logs::FileLogs::new(shared.clone()));
            let (p, task) = server::serve(logs, tls, shared.shutdown.clone())
                .await
                .map_err(KubeletError::Api)?;
            port = p;
            tasks.push(task);
        }
        if let Err(e) =
            node::register(&shared.api, &shared.config, shared.instance.node_ip(), port).await
        {
            let _ = stop_tx.send(true);
            for t in tasks {
                let _ = t.await;
            }
            return Err(e);
        }
        tasks.push(tokio::spawn(node::heartbeat(shared.clone())));
        tasks.push(tokio::spawn(dns::keep_hosts_file(shared.clone())));
        tasks.push(tokio::spawn(worker::run(shared.clone())));
        Ok(KubeletHandle {
            shared,
            stop: stop_tx,
            tasks,
        })
    }
}

/// A running kubelet.
pub struct KubeletHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl KubeletHandle {
    /// Stops every process it started (SIGTERM, grace, SIGKILL) and removes
    /// its iptables rules; PVC data stays.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        // Pod workers see the same signal and stop their containers.
        let workers: Vec<JoinHandle<()>> = std::mem::take(&mut *self.shared.tasks.lock());
        for w in workers {
            let _ = w.await;
        }
        faults::heal_all(&self.shared).await;
        kill_leftovers(&self.shared.config.state_dir);
    }

    /// Fault injection into the pods of this kubelet.
    pub fn faults(&self) -> Faults {
        Faults::new(self.shared.clone())
    }

    /// Serves the `log` subresource from the container log files.
    pub fn logs(&self) -> Arc<dyn crate::PodLogs> {
        Arc::new(logs::FileLogs::new(self.shared.clone()))
    }

    /// The state directory (canonical).
    pub fn state_dir(&self) -> PathBuf {
        self.shared.config.state_dir.clone()
    }
}
