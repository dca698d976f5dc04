//! `logbook local --kubernetes`: the real Kubernetes control plane
//! (`controlplane up`: etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler, built from their Go modules by `make controlplane`)
//! with localkube's kubelet, Service proxy and volume provisioner as its
//! one node, each a client of the API server over HTTPS with its own
//! credentials. The same kubeconfig, faults and operator as on localkube.
//!
//! The API server is not localkube's, so the fault API is served beside
//! it: its address and token go in `<kubeconfig>.faults` (mode 0600),
//! where `logbook local fault` finds them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli_error::{Error, Result};

/// The node's name (the kubelet's client certificate says the same).
const NODE: &str = "localkube-node";

/// The `controlplane` binary: `$LOGBOOK_CONTROLPLANE`, else the project's
/// `.tools/bin/controlplane` (what `make controlplane` builds), else on
/// `PATH`.
fn binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LOGBOOK_CONTROLPLANE") {
        return Ok(PathBuf::from(p));
    }
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/controlplane");
    if tools.is_file() {
        return Ok(tools);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("controlplane"))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| {
        Error::Local(
            "no control plane binary: run `make controlplane` first (it builds kube-apiserver, \
             kube-controller-manager, kube-scheduler and etcd from their Go modules into \
             .tools/bin/controlplane), or set LOGBOOK_CONTROLPLANE"
                .to_owned(),
        )
    })
}

/// A running `controlplane up`.
pub struct ControlPlane {
    child: tokio::process::Child,
    /// The admin's kubeconfig.
    pub admin: PathBuf,
    /// Where the certificates are.
    pub pki: PathBuf,
}

impl ControlPlane {
    /// The cluster CA's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.pki.join("ca.crt")
    }

    /// Writes to `path` a kubeconfig (mode 0600) that signs in with the
    /// bearer `token` (a ServiceAccount's) at the API server, trusting the
    /// CA at `ca` (a copy of [`ControlPlane::ca_file`] a pod can read).
    ///
    /// # Errors
    /// The admin's kubeconfig cannot be read or `path` written.
    pub fn write_token_kubeconfig(&self, path: &Path, token: &str, ca: &Path) -> Result<()> {
        let admin = kube::config::Kubeconfig::read_from(&self.admin)
            .map_err(|e| Error::Local(format!("cannot read the admin kubeconfig: {e}")))?;
        let server = admin
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .ok_or_else(|| Error::Local("the admin kubeconfig names no server".to_owned()))?;
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: logbook-local\n  cluster:\n    server: {server}\n    certificate-authority: {}\nusers:\n- name: token\n  user:\n    token: {token}\ncontexts:\n- name: logbook-local\n  context: {{cluster: logbook-local, user: token}}\ncurrent-context: logbook-local\n",
            ca.display()
        );
        write_private(path, &text)
            .map_err(|e| Error::Local(format!("cannot write {}: {e}", path.display())))
    }

    /// Starts it under `dir` with Services in `service_cidr`; returns once
    /// the API server is ready.
    ///
    /// # Errors
    /// [`Error::Local`] naming what failed, with the end of its log.
    ///
    /// `address`: where the API server listens and what it advertises
    /// (127.0.0.1 when None: its `kubernetes` Service then has no
    /// endpoint, which the API server refuses for a loopback address).
    pub async fn start(
        dir: &Path,
        service_cidr: &str,
        address: Option<std::net::Ipv4Addr>,
    ) -> Result<Self> {
        Self::start_for(dir, service_cidr, address, NODE, None).await
    }

    /// [`ControlPlane::start`] for the node `node`, whose kubelet serves
    /// its API at `node_ip` (in its serving certificate).
    ///
    /// # Errors
    /// As [`ControlPlane::start`].
    pub async fn start_for(
        dir: &Path,
        service_cidr: &str,
        address: Option<std::net::Ipv4Addr>,
        node: &str,
        node_ip: Option<std::net::Ipv4Addr>,
    ) -> Result<Self> {
        let bin = binary()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Local(format!("cannot create {}: {e}", dir.display())))?;
        let log_path = dir.join("up.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::Local(format!("cannot create {}: {e}", log_path.display())))?;
        let mut child = tokio::process::Command::new(&bin)
            .arg("up")
            .arg("--dir")
            .arg(dir)
            .args(["--service-cidr", service_cidr, "--node", node])
            .arg("--address")
            .arg(address.unwrap_or(std::net::Ipv4Addr::LOCALHOST).to_string())
            .args(node_ip.map(|ip| format!("--node-ip={ip}")))
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Local(format!("cannot run {}: {e}", bin.display())))?;
        let tail = || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines
                .get(lines.len().saturating_sub(10)..)
                .unwrap_or_default()
                .join("\n")
        };
        let Some(stdout) = child.stdout.take() else {
            return Err(Error::Local("no output from the control plane".to_owned()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut admin = None;
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(p) = line.strip_prefix("kubeconfig ") {
                    admin = Some(PathBuf::from(p));
                } else if line == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        match (ready, admin) {
            (Ok(true), Some(admin)) => {
                let pki = admin.parent().map(Path::to_path_buf).unwrap_or_default();
                Ok(Self { child, admin, pki })
            }
            (Err(_), _) => Err(Error::Local(format!(
                "the control plane was not ready in 120 s:\n{}",
                tail()
            ))),
            _ => Err(Error::Local(format!(
                "the control plane did not start:\n{}",
                tail()
            ))),
        }
    }

    /// A client with the credentials of `<pki>/<who>.kubeconfig`.
    ///
    /// # Errors
    /// [`Error::Local`] when the kubeconfig is unusable.
    pub async fn client(&self, who: &str) -> Result<kube::Client> {
        crate::kube_client::client(Some(&self.pki.join(format!("{who}.kubeconfig")))).await
    }

    /// Stops it (SIGTERM: it stops its components), waiting up to 15 s.
    pub async fn stop(mut self) {
        terminate(&mut self.child, Duration::from_secs(15)).await;
    }
}

/// SIGTERMs `child` (which stops what it started) and waits up to
/// `grace` for it to end, then kills it.
pub(super) async fn terminate(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(nix::unistd::Pid::from_raw)
    {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// Installs (or updates) every CRD of `logbook crds` with server-side
/// apply and waits until each is Established.
///
/// # Errors
/// [`Error::Local`] naming the CRD refused or not established in 60 s.
pub async fn install_crds(client: &kube::Client) -> Result<()> {
    // The CRDs as the chart ships them: the ValkeyCluster's conversion at
    // the chart's webhook Service, as on any cluster (v1beta1 needs none;
    // v1alpha1 is converted once an operator serving its webhook behind
    // that Service runs, and `helm install` of the chart later applies
    // the same CRD without a second client configuration beside it).
    apply_crds(client, logbook_crds::crds()).await
}

/// Installs the CRDs converting through this process's own conversion
/// webhook (`crate::webhook::local`), which the real API server, on this
/// machine, reaches at `127.0.0.1`: what `logbook local --kubernetes`
/// does once the control plane is up, so that v1alpha1 manifests work
/// whichever operator runs beside it (its own, or `logbook operator`
/// started by hand, neither serving a webhook). An operator of the chart
/// installed later points the conversion at its own Service.
///
/// # Errors
/// As [`install_crds`], or why the conversion webhook could not start.
pub async fn install_crds_converting_locally(client: &kube::Client) -> Result<()> {
    let conversion = crate::webhook::local::local_conversion().map_err(|e| {
        Error::Local(format!(
            "the ValkeyCluster CRD's conversion webhook (v1alpha1 to v1beta1) cannot start: {e}"
        ))
    })?;
    apply_crds(
        client,
        logbook_crds::crdgen::crds_converting_at(conversion.client_config()),
    )
    .await
}

async fn apply_crds(
    client: &kube::Client,
    crds: Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>,
) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let pp = kube::api::PatchParams::apply("logbook-local").force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &pp, &kube::api::Patch::Apply(&crd))
            .await
            .map_err(|e| Error::Local(format!("cannot install CRD {name}: {e}")))?;
        let established = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Ok(c) = api.get(&name).await
                    && c.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        if established.is_err() {
            return Err(Error::Local(format!(
                "CRD {name} was not Established in 60 s"
            )));
        }
    }
    Ok(())
}

/// Where `logbook local fault` finds the fault API of a node of a real
/// control plane.
pub fn faults_file(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig.as_os_str().to_owned();
    name.push(".faults");
    PathBuf::from(name)
}

/// The real control plane with localkube's node agents as its node, the
/// project's CRDs installed: what `logbook local --kubernetes` runs, and
/// what the end-to-end tests run on the real control plane.
pub struct LocalKubernetes {
    control_plane: ControlPlane,
    node: logbook_localkube::remote_node::RemoteNode,
    /// The node's instance: its addresses.
    instance: Arc<logbook_localkube::instance::Instance>,
}

impl LocalKubernetes {
    /// The address prefixes of the node's pods and ClusterIPs
    /// ([`logbook_localkube::instance::Instance::host_prefixes`]).
    pub fn host_prefixes(&self) -> Vec<String> {
        self.instance.host_prefixes()
    }

    /// Starts it under `work` (`controlplane/` and `node/`).
    ///
    /// # Errors
    /// [`Error::Local`] naming what did not start; nothing is left running.
    pub async fn start(work: &Path) -> Result<Self> {
        Self::start_with(work, Vec::new()).await
    }

    /// [`LocalKubernetes::start`], running `images` as the given local
    /// executables (as localkube's `WorkloadsConfig::local_images`).
    ///
    /// # Errors
    /// As [`LocalKubernetes::start`].
    pub async fn start_with(
        work: &Path,
        images: Vec<logbook_localkube::LocalImage>,
    ) -> Result<Self> {
        let instance = logbook_localkube::instance::Instance::acquire(
            &logbook_localkube::instance::Instance::default_lock_dir(),
        )
        // A real API server refuses loopback endpoint addresses.
        .map(|i| Arc::new(i.with_network(logbook_localkube::instance::Network::Benchmark)))
        .map_err(|e| Error::Local(format!("no localkube instance number: {e}")))?;
        // The node's addresses first: the API server listens on one.
        instance.add_addresses().map_err(Error::Local)?;
        let control_plane = match ControlPlane::start(
            &work.join("controlplane"),
            &instance.service_cidr(),
            instance.api_address(),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                instance.remove_addresses();
                return Err(e);
            }
        };
        let admin = match control_plane.client("admin").await {
            Ok(c) => c,
            Err(e) => {
                control_plane.stop().await;
                instance.remove_addresses();
                return Err(e);
            }
        };
        let clients = async {
            Ok::<_, Error>((
                control_plane.client("node").await?,
                control_plane.client("proxy").await?,
            ))
        };
        let (kubelet, proxy) = match clients.await {
            Ok(c) => c,
            Err(e) => {
                control_plane.stop().await;
                instance.remove_addresses();
                return Err(e);
            }
        };
        let config = logbook_localkube::remote_node::RemoteNodeConfig {
            kubelet,
            proxy,
            provisioner: admin.clone(),
            node_name: NODE.to_owned(),
            state_dir: work.join("node"),
            local_images: images,
            tls: Some(logbook_localkube::kubelet::KubeletTls {
                cert: control_plane.pki.join("kubelet.crt"),
                key: control_plane.pki.join("kubelet.key"),
                client_ca: control_plane.pki.join("ca.crt"),
            }),
        };
        let node = match logbook_localkube::remote_node::RemoteNode::join(instance.clone(), config)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                control_plane.stop().await;
                return Err(Error::Local(format!("the node could not join: {e}")));
            }
        };
        let me = Self {
            control_plane,
            node,
            instance,
        };
        if let Err(e) = install_crds(&admin).await {
            me.shutdown().await;
            return Err(e);
        }
        Ok(me)
    }

    /// A client with the credentials of `<pki>/<who>.kubeconfig` (`admin`,
    /// `node`, `proxy`, `controller-manager`, `scheduler`).
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

    /// Fault injection into the node's pods.
    pub fn faults(&self) -> logbook_localkube::kubelet::Faults {
        self.node.faults()
    }

    /// Where the node keeps pod data and logs.
    pub fn node_dir(&self) -> PathBuf {
        self.node.state_dir()
    }

    /// Stops the node's pods and agents, then the control plane.
    pub async fn shutdown(self) {
        self.node.shutdown().await;
        self.control_plane.stop().await;
    }
}

/// Writes the kubeconfig and the fault API's address for `cluster`;
/// returns the fault API's task.
async fn publish(
    args: &super::LocalArgs,
    cluster: &LocalKubernetes,
) -> Result<tokio::task::JoinHandle<()>> {
    super::create_parent(&args.kubeconfig)?;
    std::fs::copy(cluster.admin_kubeconfig(), &args.kubeconfig)
        .map_err(|e| Error::Local(format!("cannot write {}: {e}", args.kubeconfig.display())))?;
    let token = crate::resources::generate_password()
        .map_err(|e| Error::Local(format!("cannot read /dev/urandom: {e}")))?;
    let (addr, task) = logbook_localkube::http::faults::serve(
        cluster.faults(),
        token.clone(),
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .map_err(|e| Error::Local(format!("cannot serve the fault API: {e}")))?;
    let file = faults_file(&args.kubeconfig);
    let body = serde_json::json!({"url": format!("http://{addr}"), "token": token});
    if let Err(e) = write_private(&file, &body.to_string()) {
        task.abort();
        return Err(Error::Local(format!(
            "cannot write {}: {e}",
            file.display()
        )));
    }
    Ok(task)
}

pub(super) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Runs `logbook local --kubernetes` until Ctrl-C.
///
/// # Errors
/// [`Error::Local`] when the control plane, the node, the CRDs or the
/// operator cannot start.
pub(crate) async fn serve(args: super::LocalArgs, out: &mut dyn Write) -> Result<()> {
    let (_scratch, work) = super::work_dir(&args)?;
    writeln!(
        out,
        "starting the Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) under {}",
        work.join("controlplane").display()
    )?;
    out.flush()?;
    let cluster = LocalKubernetes::start(&work).await?;
    let faults = match publish(&args, &cluster).await {
        Ok(t) => t,
        Err(e) => {
            cluster.shutdown().await;
            return Err(e);
        }
    };
    let admin = match cluster.client("admin").await {
        Ok(admin) => admin,
        Err(e) => {
            faults.abort();
            cluster.shutdown().await;
            return Err(e);
        }
    };
    if let Err(e) = install_crds_converting_locally(&admin).await {
        faults.abort();
        cluster.shutdown().await;
        return Err(e);
    }
    let kubeconfig = std::fs::canonicalize(&args.kubeconfig).unwrap_or(args.kubeconfig.clone());
    let version = super::api_version(cluster.client("admin").await).await;
    writeln!(
        out,
        "Kubernetes {version} (API, controllers, scheduler) with localkube's kubelet and proxy as node {NODE}"
    )?;
    let operator = match super::operator_beside(&args, &kubeconfig, out).await {
        Ok(o) => o,
        Err(e) => {
            faults.abort();
            cluster.shutdown().await;
            return Err(e);
        }
    };
    let ran = super::run_until_stopped(&kubeconfig, operator, out).await;
    faults.abort();
    let _ = std::fs::remove_file(faults_file(&args.kubeconfig));
    cluster.shutdown().await;
    ran?;
    writeln!(out, "stopped")?;
    Ok(())
}
