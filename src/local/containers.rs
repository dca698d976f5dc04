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

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::kubernetes::{ControlPlane, install_crds};
use crate::cli_error::{Error, Result};

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
    /// The node's index (its addresses are 198.18.<index>.x).
    pub index: u8,
    /// Its cgroup path, the same in every v1 hierarchy.
    pub cgroup: String,
    /// Where claims' directories are.
    pub volumes: PathBuf,
}

/// Where `logbook local fault` finds a containers node's [`NodeFile`].
pub fn node_file(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig.as_os_str().to_owned();
    name.push(".node");
    PathBuf::from(name)
}

/// The real control plane and the real node, the CRDs installed.
pub struct LocalContainers {
    control_plane: ControlPlane,
    node: tokio::process::Child,
    provisioner: logbook_localkube::provisioner::Provisioner,
    /// The cluster DNS the node's pods resolve Service names with.
    _dns: super::cluster_dns::ClusterDns,
    faults: ContainerFaults,
    /// The host's end of the node's link: what a pod reaches the host at.
    host_ip: Ipv4Addr,
    /// Takes the node down if it is dropped without [`Self::shutdown`].
    /// Declared before the index's lock: fields drop in order, and the
    /// index must stay held until the node is down.
    guard: NodeGuard,
    /// Holds the index (a lock file) for as long as the node runs.
    _instance: logbook_localkube::instance::Instance,
}

impl LocalContainers {
    /// Starts them under `work` (`controlplane/`, `node/`, `volumes/`).
    ///
    /// # Errors
    /// [`Error::Local`] naming what did not start (the node's logs are in
    /// `work/node`); nothing is left running.
    pub async fn start(work: &Path) -> Result<Self> {
        let instance = logbook_localkube::instance::Instance::acquire(
            &logbook_localkube::instance::Instance::default_lock_dir(),
        )
        .map_err(|e| Error::Local(format!("no node index: {e}")))?;
        let index = instance.number();
        let n = index.to_string();
        let host_ip: Ipv4Addr = node_sh(&["net", &n])
            .await?
            .parse()
            .map_err(|e| Error::Local(format!("scripts/node.sh net {n}: not an address: {e}")))?;
        let node_name = format!("logbook-node-{index}");
        let node_ip = Ipv4Addr::new(198, 18, index, 254);
        let control_plane = match ControlPlane::start_for(
            &work.join("controlplane"),
            &format!("198.19.{index}.0/24"),
            Some(host_ip),
            &node_name,
            Some(node_ip),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                let _ = node_sh(&["down", &n]).await;
                return Err(e);
            }
        };
        let node_dir = work.join("node");
        let started = Self::start_node(&n, &node_dir, &control_plane.pki).await;
        let node = match started {
            Ok(child) => child,
            Err(e) => {
                control_plane.stop().await;
                let _ = node_sh(&["down", &n]).await;
                return Err(e);
            }
        };
        let cgroup = node_sh(&["cgroup", &n]).await.unwrap_or_default();
        let volumes = work.join("volumes");
        let admin = control_plane.client("admin").await;
        let provisioner = match admin {
            Ok(admin) => logbook_localkube::provisioner::Provisioner::spawn(
                logbook_localkube::node_api::NodeApi::Remote(admin),
                volumes.clone(),
                node_name.clone(),
            )
            .await
            .map_err(|e| Error::Local(format!("the volume provisioner: {e}"))),
            Err(e) => Err(e),
        };
        // The cluster DNS the kubelet names to every pod (`clusterDNS`,
        // scripts/node.sh): on the host's end of the node's link.
        let dns = match (provisioner, control_plane.client("admin").await) {
            (Ok(provisioner), Ok(admin)) => {
                super::cluster_dns::ClusterDns::spawn(admin, (host_ip, 53).into())
                    .await
                    .map(|dns| (provisioner, dns))
                    .map_err(|e| Error::Local(format!("the cluster DNS on {host_ip}:53: {e}")))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let me = match dns {
            Ok((provisioner, dns)) => Self {
                _dns: dns,
                control_plane,
                node,
                provisioner,
                host_ip,
                guard: NodeGuard { index, armed: true },
                _instance: instance,
                faults: ContainerFaults {
                    file: NodeFile {
                        index,
                        cgroup,
                        volumes,
                    },
                },
            },
            Err(e) => {
                let mut node = node;
                let _ = node.kill().await;
                control_plane.stop().await;
                let _ = node_sh(&["down", &n]).await;
                return Err(e);
            }
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

    async fn start_node(n: &str, dir: &Path, pki: &Path) -> Result<tokio::process::Child> {
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

    /// The node's name.
    pub fn node_name(&self) -> String {
        format!("logbook-node-{}", self.faults.file.index)
    }

    /// Stops the node (its containers with it), then the control plane.
    pub async fn shutdown(mut self) {
        self.provisioner.shutdown().await;
        super::kubernetes::terminate(&mut self.node, Duration::from_secs(20)).await;
        let _ = node_sh(&["down", &self.faults.file.index.to_string()]).await;
        self.guard.armed = false;
        self.control_plane.stop().await;
    }
}

/// Takes the node down when dropped armed: a [`LocalContainers`] never
/// shut down (a test that panicked, a caller that returned early) would
/// otherwise leave its containers, containerd and the shims running, as
/// they live in the node's own cgroups, not under this process.
struct NodeGuard {
    index: u8,
    armed: bool,
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::process::Command::new("bash")
                .arg(script())
                .args(["down", &self.index.to_string()])
                .stdin(Stdio::null())
                .output();
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
        // The cgroupfs driver names a pod's cgroup `pod<uid>`.
        let uid = p.metadata.uid.clone().unwrap_or_default();
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
        let kubepods = format!("{}/kubepods", self.file.cgroup);
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
    let cluster = LocalContainers::start(&work).await?;
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
    writeln!(
        out,
        "Kubernetes {version} with the real node {} (Logbook's images in containers)",
        cluster.node_name()
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
