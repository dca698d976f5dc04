//! `logbook local --kubernetes --node containers`: the real control plane
//! with a real node (`scripts/node.sh`: the kubelet and kube-proxy of
//! Kubernetes v1.36.3, containerd, runc and the CNI plugins, in network
//! and mount namespaces of their own) running Logbook's images (`make
//! images`) in containers; the local-path provisioner gives its claims
//! volumes, and a cluster DNS (`cluster_dns`) resolves Service names. See
//! docs/node.md.
//!
//! The faults act on containers as a node's operator would: a container's
//! processes killed or frozen through its cgroup (the freezer), its
//! network cut with iptables in its own network namespace, a claim's
//! directory emptied. The node's index, directory and cgroup go in
//! `<kubeconfig>.node`, where `logbook local fault` finds them.
//!
//! With several nodes (`--nodes N`), each is a node of its own (its own
//! index, network namespace, containerd, kubelet and kube-proxy, its own
//! certificates as `system:node:<name>`), labelled with a zone, linked to
//! the others by a bridge of their own (`scripts/node.sh fabric`); volumes
//! wait for the scheduler and are pinned to the chosen node's zone. A
//! node can be cut off (its links dropped) or killed whole. A client
//! outside the cluster ([`LocalContainers::outside`]) is a namespace on
//! the nodes' link that reaches the nodes and nothing else.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::kubernetes::{ControlPlane, install_crds};
use crate::cli_error::{Error, Result};

mod outside;
pub use outside::{OutsideClient, OutsideNode};

/// `scripts/node.sh`: `$LOGBOOK_NODE_SCRIPT`, else the project's.
fn script() -> PathBuf {
    std::env::var_os("LOGBOOK_NODE_SCRIPT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/node.sh"),
        PathBuf::from,
    )
}

/// Runs `scripts/node.sh args...` to its end; its output.
async fn node_sh(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::Local(format!("cannot run {}: {e}", script().display())))?;
    if !out.status.success() {
        return Err(Error::Local(format!(
            "scripts/node.sh {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// What `logbook local fault` needs of a running node.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeFile {
    /// The node's index (its addresses are 198.18.<index>.x); with
    /// several nodes, the first's.
    pub index: u8,
    /// Its cgroup path, the same in every v1 hierarchy.
    pub cgroup: String,
    /// Where claims' directories are.
    pub volumes: PathBuf,
    /// Every node, the first included (empty in a file of one node
    /// written before there could be several).
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
}

/// One node of a containers cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeEntry {
    /// Its index (addresses 198.18.<index>.x).
    pub index: u8,
    /// Its Node's name, `logbook-node-<index>`.
    pub name: String,
    /// Its `topology.kubernetes.io/zone`, if labelled.
    pub zone: Option<String>,
    /// Its cgroup path, the same in every v1 hierarchy.
    pub cgroup: String,
}

/// The zone of the `k`th node (from 0) of `count`: `zone-a`, `zone-b`,
/// `zone-c`, then round again; `None` for a single node.
pub fn zone_of(k: usize, count: usize) -> Option<String> {
    const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];
    (count > 1).then(|| {
        ZONES
            .get(k % ZONES.len())
            .copied()
            .unwrap_or("zone-a")
            .to_owned()
    })
}

/// Where `logbook local fault` finds a containers node's [`NodeFile`].
pub fn node_file(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig.as_os_str().to_owned();
    name.push(".node");
    PathBuf::from(name)
}

/// The real control plane and the real nodes, the CRDs installed.
pub struct LocalContainers {
    control_plane: ControlPlane,
    /// Each node's `scripts/node.sh up`, in the order of the node file.
    nodes: Vec<tokio::process::Child>,
    provisioner: logbook_localkube::provisioner::Provisioner,
    /// The cluster DNS the node's pods resolve Service names with.
    _dns: super::cluster_dns::ClusterDns,
    faults: ContainerFaults,
    /// The host's end of the node's link: what a pod reaches the host at.
    host_ip: Ipv4Addr,
    /// Takes the nodes down if dropped without [`Self::shutdown`].
    /// Declared before the indexes' locks: fields drop in order, and the
    /// indexes must stay held until the nodes are down.
    guard: NodeGuard,
    /// Hold the indexes (lock files) for as long as the nodes run.
    _instances: Vec<logbook_localkube::instance::Instance>,
}

impl LocalContainers {
    /// Starts them under `work` (`controlplane/`, `node/`, `volumes/`):
    /// one node.
    ///
    /// # Errors
    /// As [`Self::start_nodes`].
    pub async fn start(work: &Path) -> Result<Self> {
        Self::start_nodes(work, 1).await
    }

    /// Starts the control plane and `count` nodes under `work`
    /// (`controlplane/`, `node/` for the first, `node-<index>/` for the
    /// others, `volumes/`). With several, each node is labelled with a
    /// zone ([`zone_of`]) and volumes are pinned to a zone.
    ///
    /// # Errors
    /// [`Error::Local`] naming what did not start (each node's logs are in
    /// its directory); nothing is left running.
    pub async fn start_nodes(work: &Path, count: usize) -> Result<Self> {
        if !(1..=8).contains(&count) {
            return Err(Error::Local(format!(
                "{count} nodes: from 1 to 8 can run on one machine"
            )));
        }
        let lock_dir = logbook_localkube::instance::Instance::default_lock_dir();
        let mut instances = Vec::with_capacity(count);
        for _ in 0..count {
            instances.push(
                logbook_localkube::instance::Instance::acquire(&lock_dir)
                    .map_err(|e| Error::Local(format!("no node index: {e}")))?,
            );
        }
        let indexes: Vec<u8> = instances.iter().map(|i| i.number()).collect();
        let mut guard = NodeGuard {
            indexes: indexes.clone(),
            armed: true,
        };
        let mut host_ips = Vec::with_capacity(count);
        for i in &indexes {
            let n = i.to_string();
            let ip: Ipv4Addr = node_sh(&["net", &n]).await?.parse().map_err(|e| {
                Error::Local(format!("scripts/node.sh net {n}: not an address: {e}"))
            })?;
            host_ips.push(ip);
        }
        let (Some(&index), Some(&host_ip)) = (indexes.first(), host_ips.first()) else {
            return Err(Error::Local("no node".to_owned()));
        };
        if count > 1 {
            let mut args = vec!["fabric".to_owned(), index.to_string()];
            args.extend(indexes.iter().map(u8::to_string));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            node_sh(&args).await?;
        }
        let node_name = format!("logbook-node-{index}");
        let node_ip = Ipv4Addr::new(198, 18, index, 254);
        let control_plane = ControlPlane::start_for(
            &work.join("controlplane"),
            &format!("198.19.{index}.0/24"),
            Some(host_ip),
            &node_name,
            Some(node_ip),
        )
        .await?;
        let started = Self::start_all(work, &indexes, &control_plane, host_ip).await;
        let (nodes, entries) = match started {
            Ok(started) => started,
            Err(e) => {
                control_plane.stop().await;
                return Err(e);
            }
        };
        let volumes = work.join("volumes");
        let placement = if count > 1 {
            logbook_localkube::provisioner::VolumePlacement::SelectedNodeZone
        } else {
            logbook_localkube::provisioner::VolumePlacement::Node(node_name.clone())
        };
        let services = async {
            let admin = control_plane.client("admin").await?;
            let provisioner = logbook_localkube::provisioner::Provisioner::spawn_with(
                logbook_localkube::node_api::NodeApi::Remote(admin.clone()),
                volumes.clone(),
                placement,
            )
            .await
            .map_err(|e| Error::Local(format!("the volume provisioner: {e}")))?;
            // The cluster DNS every kubelet names to its pods (`clusterDNS`,
            // scripts/node.sh): on the host's end of the first node's link.
            match super::cluster_dns::ClusterDns::spawn(admin, (host_ip, 53).into()).await {
                Ok(dns) => Ok((provisioner, dns)),
                Err(e) => {
                    provisioner.shutdown().await;
                    Err(Error::Local(format!(
                        "the cluster DNS on {host_ip}:53: {e}"
                    )))
                }
            }
        }
        .await;
        let (provisioner, dns) = match services {
            Ok(s) => s,
            Err(e) => {
                let mut nodes = nodes;
                for node in &mut nodes {
                    let _ = node.kill().await;
                }
                down_all(&indexes).await;
                guard.armed = false;
                control_plane.stop().await;
                return Err(e);
            }
        };
        let cgroup = entries
            .first()
            .map(|e| e.cgroup.clone())
            .unwrap_or_default();
        let me = Self {
            _dns: dns,
            control_plane,
            nodes,
            provisioner,
            host_ip,
            guard,
            _instances: instances,
            faults: ContainerFaults {
                file: NodeFile {
                    index,
                    cgroup,
                    volumes,
                    nodes: entries,
                },
            },
        };
        let crds = match me.client("admin").await {
            Ok(c) => install_crds(&c).await,
            Err(e) => Err(e),
        };
        if let Err(e) = crds {
            me.shutdown().await;
            return Err(e);
        }
        Ok(me)
    }

    /// Starts every node of `indexes` (the first with the control plane's
    /// own certificates, the others with their own), all at once: each
    /// imports the images before its kubelet starts.
    async fn start_all(
        work: &Path,
        indexes: &[u8],
        control_plane: &ControlPlane,
        dns: Ipv4Addr,
    ) -> Result<(Vec<tokio::process::Child>, Vec<NodeEntry>)> {
        let count = indexes.len();
        let mut plans = Vec::with_capacity(count);
        for (k, i) in indexes.iter().enumerate() {
            let n = i.to_string();
            let (dir, pki) = if k == 0 {
                (work.join("node"), control_plane.pki.clone())
            } else {
                let dir = work.join(format!("node-{i}"));
                let pki = dir.join("pki");
                node_sh(&[
                    "certs",
                    &n,
                    &control_plane.pki.to_string_lossy(),
                    &pki.to_string_lossy(),
                ])
                .await?;
                (dir, pki)
            };
            plans.push((n, dir, pki, zone_of(k, count)));
        }
        let started = futures::future::join_all(
            plans
                .iter()
                .map(|(n, dir, pki, zone)| Self::start_node(n, dir, pki, zone.as_deref(), dns)),
        )
        .await;
        let mut children = Vec::with_capacity(count);
        let mut failed = None;
        for r in started {
            match r {
                Ok(child) => children.push(child),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            for child in &mut children {
                let _ = child.kill().await;
            }
            return Err(e);
        }
        let mut entries = Vec::with_capacity(count);
        for (n, _, _, zone) in plans {
            entries.push(NodeEntry {
                cgroup: node_sh(&["cgroup", &n]).await.unwrap_or_default(),
                name: format!("logbook-node-{n}"),
                index: n.parse().unwrap_or_default(),
                zone,
            });
        }
        Ok((children, entries))
    }

    async fn start_node(
        n: &str,
        dir: &Path,
        pki: &Path,
        zone: Option<&str>,
        dns: Ipv4Addr,
    ) -> Result<tokio::process::Child> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Local(format!("cannot create {}: {e}", dir.display())))?;
        let log_path = dir.join("up.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::Local(format!("cannot create {}: {e}", log_path.display())))?;
        let mut child = tokio::process::Command::new("bash")
            .arg(script())
            .arg("up")
            .arg(n)
            .arg(dir)
            .arg(pki)
            .env("LOGBOOK_NODE_DNS", dns.to_string())
            .envs(zone.map(|z| ("LOGBOOK_NODE_ZONE", z)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Local(format!("cannot run {}: {e}", script().display())))?;
        let Some(stdout) = child.stdout.take() else {
            return Err(Error::Local("no output from scripts/node.sh up".to_owned()));
        };
        let mut lines = BufReader::new(stdout).lines();
        // The images are imported before the kubelet starts: a minute or
        // two on a loaded machine.
        let ready = tokio::time::timeout(Duration::from_secs(300), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        if ready == Ok(true) {
            return Ok(child);
        }
        let _ = child.kill().await;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines
            .get(lines.len().saturating_sub(15)..)
            .unwrap_or_default()
            .join("\n");
        Err(Error::Local(format!(
            "the node did not become ready (logs in {}):\n{tail}",
            dir.display()
        )))
    }

    /// A client with the credentials of `<pki>/<who>.kubeconfig`.
    ///
    /// # Errors
    /// [`Error::Local`] when the kubeconfig is unusable.
    pub async fn client(&self, who: &str) -> Result<kube::Client> {
        self.control_plane.client(who).await
    }

    /// The admin's kubeconfig.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.control_plane.admin
    }

    /// The control plane: its CA, and kubeconfigs for tokens.
    pub fn control_plane(&self) -> &ControlPlane {
        &self.control_plane
    }

    /// Faults on the node's containers.
    pub fn faults(&self) -> ContainerFaults {
        self.faults.clone()
    }

    /// The address prefixes (up to a dot) of its pods and ClusterIPs
    /// (`scripts/node.sh net`), as a client tells its hosts.
    pub fn host_prefixes(&self) -> Vec<String> {
        let n = self.faults.file.index;
        vec![format!("198.18.{n}."), format!("198.19.{n}.")]
    }

    /// The host's address as the node's pods reach it (the host's end of
    /// the node's link): where a server on the host listens for them.
    pub fn host_address(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// The (first) node's name.
    pub fn node_name(&self) -> String {
        format!("logbook-node-{}", self.faults.file.index)
    }

    /// Every node, the first included.
    pub fn nodes(&self) -> &[NodeEntry] {
        &self.faults.file.nodes
    }

    /// A client outside the cluster, `name` (lower-case letters, digits,
    /// dashes): a network namespace on the nodes' link that reaches each
    /// node (its fabric address and its `InternalIP`) and nothing else, as
    /// a machine beyond the cluster does (see [`OutsideClient`]). With one
    /// node, its link is made for it.
    ///
    /// # Errors
    /// [`Error::Local`] when `scripts/node.sh outside` fails.
    pub async fn outside(&self, name: &str) -> Result<OutsideClient> {
        OutsideClient::create(self.faults.file.index, name, None).await
    }

    /// Like [`Self::outside`], with the load-balancer addresses of `block`
    /// (a CIDR) routed through the node `via`, whose kube-proxy takes
    /// them in for a Service's `status.loadBalancer.ingress`, as MetalLB's
    /// L2 mode delivers them.
    ///
    /// # Errors
    /// [`Error::Local`] when there is no node `via` or the script fails.
    pub async fn outside_with_load_balancer(
        &self,
        name: &str,
        block: &str,
        via: &str,
    ) -> Result<OutsideClient> {
        let via = self.faults.node(via)?.index;
        OutsideClient::create(self.faults.file.index, name, Some((block, via))).await
    }

    /// Stops the nodes (their containers with them), then the control plane.
    pub async fn shutdown(mut self) {
        self.provisioner.shutdown().await;
        for node in &mut self.nodes {
            super::kubernetes::terminate(node, Duration::from_secs(20)).await;
        }
        down_all(&self.guard.indexes).await;
        self.guard.armed = false;
        self.control_plane.stop().await;
    }
}

/// Takes every node of `indexes` down, then their fabric.
async fn down_all(indexes: &[u8]) {
    for i in indexes {
        let _ = node_sh(&["down", &i.to_string()]).await;
    }
    if indexes.len() > 1
        && let Some(first) = indexes.first()
    {
        let _ = node_sh(&["fabric-down", &first.to_string()]).await;
    }
}

/// Takes the node down when dropped armed: a [`LocalContainers`] never
/// shut down (a test that panicked, a caller that returned early) would
/// otherwise leave its containers, containerd and the shims running, as
/// they live in the node's own cgroups, not under this process.
struct NodeGuard {
    indexes: Vec<u8>,
    armed: bool,
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let run = |args: &[&str]| {
            let _ = std::process::Command::new("bash")
                .arg(script())
                .args(args)
                .stdin(Stdio::null())
                .output();
        };
        for i in &self.indexes {
            run(&["down", &i.to_string()]);
        }
        if self.indexes.len() > 1
            && let Some(first) = self.indexes.first()
        {
            run(&["fabric-down", &first.to_string()]);
        }
    }
}

/// Faults on a containers node's pods, acting as the node's own operator
/// would, from the host: no API call, no help from the kubelet.
#[derive(Debug, Clone)]
pub struct ContainerFaults {
    file: NodeFile,
}

/// The cgroup hierarchies of this machine (v1).
const HIERARCHIES: &str = "/sys/fs/cgroup";

impl ContainerFaults {
    /// The faults of the node described by `file`.
    pub fn from_file(file: NodeFile) -> Self {
        Self { file }
    }

    /// What `logbook local fault` needs.
    pub fn node_file(&self) -> &NodeFile {
        &self.file
    }

    /// The cgroup directories (in the `pids` hierarchy, relative to it) of
    /// `pod`'s containers, or of the one named `container`.
    async fn container_cgroups(
        &self,
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<Vec<String>> {
        use k8s_openapi::api::core::v1::Pod;
        let p = kube::Api::<Pod>::namespaced(client.clone(), namespace)
            .get(pod)
            .await
            .map_err(|e| Error::Local(format!("pod {namespace}/{pod}: {e}")))?;
        // The cgroupfs driver names a pod's cgroup `pod<uid>`, under the
        // cgroup root of the node it runs on.
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let on = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let node_cgroup = self
            .file
            .nodes
            .iter()
            .find(|n| Some(&n.name) == on.as_ref())
            .map_or(self.file.cgroup.as_str(), |n| n.cgroup.as_str());
        let ids: Vec<String> = p
            .status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| container.is_none_or(|want| c.name == want))
            .filter_map(|c| c.container_id)
            .filter_map(|id| id.split_once("://").map(|(_, id)| id.to_owned()))
            .collect();
        if ids.is_empty() {
            return Err(Error::Local(format!(
                "pod {namespace}/{pod} has no running container{}",
                container.map(|c| format!(" {c}")).unwrap_or_default()
            )));
        }
        let kubepods = format!("{node_cgroup}/kubepods");
        let base = Path::new(HIERARCHIES).join("pids");
        let mut found = Vec::new();
        for qos in ["", "/burstable", "/besteffort"] {
            let pod_dir = format!("{kubepods}{qos}/pod{uid}");
            for id in &ids {
                let rel = format!("{pod_dir}/{id}");
                if base.join(rel.trim_start_matches('/')).is_dir() {
                    found.push(rel);
                }
            }
        }
        if found.is_empty() {
            return Err(Error::Local(format!(
                "no cgroup of pod {namespace}/{pod}'s containers under {kubepods}"
            )));
        }
        Ok(found)
    }

    fn procs(rel: &str) -> Vec<i32> {
        let path = Path::new(HIERARCHIES)
            .join("pids")
            .join(rel.trim_start_matches('/'))
            .join("cgroup.procs");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// SIGKILLs every process of the container (the kubelet restarts it).
    /// A frozen container is thawed after: the freezer holds even SIGKILL
    /// until then (a stopped process dies at once), and the thawed
    /// processes die before running another instruction.
    ///
    /// # Errors
    /// [`Error::Local`] when the pod or its cgroup is not found.
    pub async fn kill(
        &self,
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<String> {
        let mut killed = 0;
        for rel in self
            .container_cgroups(client, namespace, pod, container)
            .await?
        {
            for pid in Self::procs(&rel) {
                if nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .is_ok()
                {
                    killed += 1;
                }
            }
            if Self::frozen(&rel) {
                self.freezer(&rel, "THAWED")?;
            }
        }
        Ok(format!("killed {killed} process(es) of {namespace}/{pod}"))
    }

    /// The container's `freezer.state` (`rel` as [`Self::container_cgroups`]
    /// gives it).
    fn freezer_state(rel: &str) -> PathBuf {
        Path::new(HIERARCHIES)
            .join("freezer")
            .join(rel.trim_start_matches('/'))
            .join("freezer.state")
    }

    /// Whether the container's cgroup is frozen (or freezing).
    fn frozen(rel: &str) -> bool {
        std::fs::read_to_string(Self::freezer_state(rel)).is_ok_and(|s| s.trim() != "THAWED")
    }

    fn freezer(&self, rel: &str, state: &str) -> Result<()> {
        let path = Self::freezer_state(rel);
        std::fs::write(&path, state)
            .map_err(|e| Error::Local(format!("cannot write {}: {e}", path.display())))
    }

    /// Freezes the pod's containers with the cgroup freezer: they stop
    /// answering without dying (the kubelet sees them running).
    ///
    /// # Errors
    /// [`Error::Local`] when the pod or its cgroup is not found.
    pub async fn freeze(
        &self,
        client: &kube::Client,
        namespace: &str,
        pod: &str,
    ) -> Result<String> {
        for rel in self.container_cgroups(client, namespace, pod, None).await? {
            self.freezer(&rel, "FROZEN")?;
        }
        Ok(format!("froze {namespace}/{pod}"))
    }

    /// Thaws a frozen pod.
    ///
    /// # Errors
    /// As [`ContainerFaults::freeze`].
    pub async fn thaw(&self, client: &kube::Client, namespace: &str, pod: &str) -> Result<String> {
        for rel in self.container_cgroups(client, namespace, pod, None).await? {
            self.freezer(&rel, "THAWED")?;
        }
        Ok(format!("thawed {namespace}/{pod}"))
    }

    /// Drops every packet to and from the pod (but its own loopback), with
    /// iptables in the pod's network namespace; `heal` undoes it.
    ///
    /// # Errors
    /// As [`ContainerFaults::freeze`], or iptables failing.
    pub async fn partition(
        &self,
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        cut: bool,
    ) -> Result<String> {
        let rels = self.container_cgroups(client, namespace, pod, None).await?;
        let Some(pid) = rels.iter().flat_map(|r| Self::procs(r)).next() else {
            return Err(Error::Local(format!(
                "pod {namespace}/{pod} has no process"
            )));
        };
        let op = if cut { "-I" } else { "-D" };
        for chain in ["INPUT", "OUTPUT"] {
            let dev = if chain == "INPUT" { "-i" } else { "-o" };
            let out = tokio::process::Command::new("nsenter")
                .arg(format!("--net=/proc/{pid}/ns/net"))
                .args(["iptables", "-w", op, chain, "!", dev, "lo", "-j", "DROP"])
                .output()
                .await
                .map_err(|e| Error::Local(format!("cannot run nsenter iptables: {e}")))?;
            if !out.status.success() && cut {
                return Err(Error::Local(format!(
                    "iptables in {namespace}/{pod}'s network namespace: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(format!(
            "{} {namespace}/{pod}",
            if cut { "partitioned" } else { "healed" }
        ))
    }

    /// The node named `name`.
    ///
    /// # Errors
    /// [`Error::Local`] when no node of this cluster has that name.
    pub fn node(&self, name: &str) -> Result<&NodeEntry> {
        self.file
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.file.nodes.iter().map(|n| n.name.as_str()).collect();
                Error::Local(format!(
                    "no node {name} in this cluster (its nodes: {})",
                    names.join(", ")
                ))
            })
    }

    /// Cuts the node `name` off (`cut`) or heals it: every packet across
    /// its links to the host and the other nodes dropped, silently, while
    /// its kubelet, containers and pods go on running and reach each other.
    ///
    /// # Errors
    /// [`Error::Local`] when there is no such node or iptables fails.
    pub async fn partition_node(&self, name: &str, cut: bool) -> Result<String> {
        let n = self.node(name)?.index.to_string();
        node_sh(&[if cut { "cut" } else { "heal" }, &n]).await?;
        Ok(format!(
            "{} node {name}",
            if cut { "partitioned" } else { "healed" }
        ))
    }

    /// Kills the node `name`: every process in its cgroups (the kubelet,
    /// kube-proxy, containerd, the shims, every container), as a machine
    /// that loses power. Its network and files stay; it does not return.
    ///
    /// # Errors
    /// [`Error::Local`] when there is no such node.
    pub async fn stop_node(&self, name: &str) -> Result<String> {
        let n = self.node(name)?.index.to_string();
        node_sh(&["stop", &n]).await?;
        Ok(format!("stopped node {name}"))
    }

    /// Empties a claim's directory.
    ///
    /// # Errors
    /// [`Error::Local`] when it cannot be read or emptied.
    pub fn wipe_pvc(&self, namespace: &str, claim: &str) -> Result<String> {
        let dir = logbook_localkube::kubelet::pvc_dir(&self.file.volumes, namespace, claim);
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            Error::Local(format!(
                "claim {namespace}/{claim} ({}): {e}",
                dir.display()
            ))
        })?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let gone = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            gone.map_err(|e| Error::Local(format!("cannot remove {}: {e}", path.display())))?;
            removed += 1;
        }
        Ok(format!(
            "wiped {removed} entries of claim {namespace}/{claim}"
        ))
    }

    /// Writes garbage over every file of a claim's directory.
    ///
    /// # Errors
    /// [`Error::Local`] when it cannot be read or a file written.
    pub fn corrupt_pvc(&self, namespace: &str, claim: &str) -> Result<String> {
        let dir = logbook_localkube::kubelet::pvc_dir(&self.file.volumes, namespace, claim);
        let written = logbook_localkube::kubelet::corrupt_files(&dir).map_err(|e| {
            Error::Local(format!(
                "claim {namespace}/{claim} ({}): {e}",
                dir.display()
            ))
        })?;
        Ok(format!(
            "corrupted {written} files of claim {namespace}/{claim}"
        ))
    }
}

/// Runs `logbook local --kubernetes --node containers` until Ctrl-C.
///
/// # Errors
/// [`Error::Local`] when the control plane, the node, the CRDs or the
/// operator cannot start.
pub(crate) async fn serve(args: super::LocalArgs, out: &mut dyn std::io::Write) -> Result<()> {
    let (_scratch, work) = super::work_dir(&args)?;
    writeln!(
        out,
        "starting the Kubernetes control plane and a real node (kubelet, kube-proxy, containerd, runc) under {}",
        work.display()
    )?;
    out.flush()?;
    let cluster = LocalContainers::start_nodes(&work, usize::from(args.nodes)).await?;
    let published = super::create_parent(&args.kubeconfig).and_then(|()| {
        std::fs::copy(cluster.admin_kubeconfig(), &args.kubeconfig).map_err(|e| {
            Error::Local(format!("cannot write {}: {e}", args.kubeconfig.display()))
        })?;
        let file = node_file(&args.kubeconfig);
        let body = serde_json::to_string(cluster.faults().node_file())
            .map_err(|e| Error::Local(format!("cannot encode the node's file: {e}")))?;
        super::kubernetes::write_private(&file, &body)
            .map_err(|e| Error::Local(format!("cannot write {}: {e}", file.display())))
    });
    if let Err(e) = published {
        cluster.shutdown().await;
        return Err(e);
    }
    let kubeconfig = std::fs::canonicalize(&args.kubeconfig).unwrap_or(args.kubeconfig.clone());
    let version = super::api_version(cluster.client("admin").await).await;
    let nodes: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| match &n.zone {
            Some(zone) => format!("{} ({zone})", n.name),
            None => n.name.clone(),
        })
        .collect();
    writeln!(
        out,
        "Kubernetes {version} with the real node{} {} (Logbook's images in containers)",
        if nodes.len() > 1 { "s" } else { "" },
        nodes.join(", ")
    )?;
    let operator = match super::operator_beside(&args, &kubeconfig, out).await {
        Ok(o) => o,
        Err(e) => {
            cluster.shutdown().await;
            return Err(e);
        }
    };
    let ran = super::run_until_stopped(&kubeconfig, operator, out).await;
    let _ = std::fs::remove_file(node_file(&args.kubeconfig));
    cluster.shutdown().await;
    ran?;
    writeln!(out, "stopped")?;
    Ok(())
}
