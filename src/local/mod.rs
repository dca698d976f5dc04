//! `logbook local`: runs Logbook's local Kubernetes (localkube) on this
//! machine — the API server, the workload controllers, the Service proxy
//! and the process kubelet running real `valkey-server` pods — installs
//! the project's CRDs and writes a kubeconfig for it. `--api-only` runs the
//! API server alone (with the CRDs).
//!
//! `fault` is its child: `logbook local fault` acts on a running one.
//!
//! With `local_cluster` (what it shares with the benches), this is where
//! the binary touches localkube: the operator's own code never depends on
//! it.

mod cluster_dns;
pub mod containers;
mod fault;
pub mod kubernetes;
pub mod pod_faults;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

use crate::cli_error::{Error, Result};
use crate::local_cluster::{install_crds, start_operator};

/// The node `logbook local --kubernetes` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeKind {
    /// localkube's process kubelet and proxy.
    Process,
    /// A real node: kubelet, kube-proxy, containerd, runc, CNI.
    Containers,
}

/// `logbook local` options.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LocalArgs {
    /// Act on a running `logbook local` instead of starting one.
    #[command(subcommand)]
    pub command: Option<LocalCommand>,
    /// Run only the API server, the CRDs installed (no kubelet, no
    /// controllers, no operator).
    #[arg(long, conflicts_with = "kubernetes")]
    pub api_only: bool,
    /// Run the real Kubernetes control plane (etcd, kube-apiserver,
    /// kube-controller-manager, kube-scheduler; built by `make
    /// controlplane`) with localkube's kubelet and proxy as its node,
    /// instead of localkube's API server and controllers.
    #[arg(long)]
    pub kubernetes: bool,
    /// The node of `--kubernetes`: `process` (localkube's kubelet, pods
    /// as local processes: the fast default) or `containers` (the real
    /// kubelet, kube-proxy, containerd and runc running Logbook's own
    /// images: `make node images` first, as root; docs/node.md).
    #[arg(long, value_enum, default_value_t = NodeKind::Process, requires = "kubernetes")]
    pub node: NodeKind,
    /// How many real nodes with `--node containers` (1 to 8; default 1):
    /// each its own kubelet, kube-proxy and containerd, labelled with a
    /// zone (`zone-a`, `zone-b`, `zone-c`, round again), linked by a pod
    /// network of their own (docs/node.md says what each costs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub nodes: u8,
    /// Run the local cluster without the operator (start `logbook
    /// operator --kubeconfig .logbook/kubeconfig` beside it).
    #[arg(long)]
    pub no_operator: bool,
    /// Where the operator journals: `sled` (a local directory, the
    /// default here), `configmap` (in the local cluster, as in-cluster) or
    /// `both`.
    #[arg(long, default_value = "sled")]
    pub journal: crate::journal_store::JournalBackend,
    /// The operator's journal directory (default: `<state-dir>/journal`
    /// with `--state-dir`, else `.logbook/journal`).
    #[arg(long)]
    pub journal_dir: Option<PathBuf>,
    /// Keep the API objects and PVC data here, so a restart comes back with
    /// them (default: objects in memory, pod data under a temporary
    /// directory removed on exit).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = ".logbook/kubeconfig")]
    pub kubeconfig: PathBuf,
    /// Port on 127.0.0.1 (default: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Require this bearer token from clients (it is written into the
    /// kubeconfig; never logged).
    #[arg(long)]
    pub token: Option<String>,
    /// Serve the web UI on 127.0.0.1 at this port (0: any free port;
    /// the address is printed), from the operator beside the cluster.
    #[arg(long, default_value_t = 8900)]
    pub ui_port: u16,
    /// Do not serve the web UI.
    #[arg(long)]
    pub no_ui: bool,
    /// How many changes a watch can resume across; a watch from an older
    /// resourceVersion gets 410 Gone and relists.
    #[arg(long, default_value_t = 10_000)]
    pub watch_history: usize,
}

/// What `logbook local` can do besides running.
#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Inject a fault into a pod of a running `logbook local`.
    Fault(fault::FaultArgs),
}

/// Runs `logbook local` until Ctrl-C.
///
/// # Errors
/// [`Error::Local`] when the server cannot start, the CRDs cannot be
/// installed or the kubeconfig cannot be written.
pub fn run(mut args: LocalArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(LocalCommand::Fault(fault)) = args.command.take() {
        return fault::run(fault, out);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(crate::operator::THREAD_STACK_BYTES)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve(args, out))
}

/// The operator's journal directory for `args`.
fn journal_dir(args: &LocalArgs) -> PathBuf {
    match (&args.journal_dir, &args.state_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(state)) => state.join("journal"),
        (None, None) => PathBuf::from(".logbook/journal"),
    }
}

/// The UI's address for `args` (None with `--no-ui`), said to the user.
/// A port of 0 is chosen here, so the address printed is the one served.
fn ui_addr(args: &LocalArgs, out: &mut dyn Write) -> Result<Option<SocketAddr>> {
    if args.no_ui {
        return Ok(None);
    }
    let mut addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.ui_port));
    if args.ui_port == 0 {
        let probe = std::net::TcpListener::bind(addr)
            .map_err(|e| Error::Local(format!("cannot find a port for the UI: {e}")))?;
        addr = probe
            .local_addr()
            .map_err(|e| Error::Local(format!("cannot find a port for the UI: {e}")))?;
    }
    writeln!(out, "Logbook UI at http://{addr}/")?;
    Ok(Some(addr))
}

/// Creates the directory `path` goes in (the kubeconfig's), if it names one.
/// The work directory of `--kubernetes`: the state dir, else a temporary
/// one (returned too: it goes away when dropped).
fn work_dir(args: &LocalArgs) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    if let Some(dir) = &args.state_dir {
        return Ok((None, dir.clone()));
    }
    let tmp = tempfile::Builder::new()
        .prefix("logbook-local-")
        .tempdir()
        .map_err(|e| Error::Local(format!("cannot create a work directory: {e}")))?;
    let path = tmp.path().to_path_buf();
    Ok((Some(tmp), path))
}

/// The API server's version, for the banner of `--kubernetes` (unknown,
/// with why, when it cannot be read).
async fn api_version(client: Result<kube::Client>) -> String {
    match client {
        Ok(c) => c
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_else(|e| format!("(version unknown: {e})")),
        Err(e) => format!("(version unknown: {e})"),
    }
}

/// The operator beside a `--kubernetes` cluster, unless `--no-operator`.
async fn operator_beside(
    args: &LocalArgs,
    kubeconfig: &std::path::Path,
    out: &mut dyn Write,
) -> Result<Option<crate::local_cluster::OperatorTask>> {
    if args.no_operator {
        return Ok(None);
    }
    let journal_dir = journal_dir(args);
    say_journal(args, &journal_dir, out)?;
    start_operator(kubeconfig, args.journal, &journal_dir, ui_addr(args, out)?)
        .await
        .map(Some)
}

fn create_parent(path: &std::path::Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Local(format!("cannot create {}: {e}", parent.display())))?;
    }
    Ok(())
}

/// Says where the operator journals.
fn say_journal(args: &LocalArgs, journal_dir: &std::path::Path, out: &mut dyn Write) -> Result<()> {
    match args.journal {
        crate::journal_store::JournalBackend::ConfigMap => {
            writeln!(out, "operator journal in ConfigMaps")?
        }
        _ => writeln!(
            out,
            "operator journal ({}) at {}",
            args.journal,
            journal_dir.display()
        )?,
    }
    Ok(())
}

/// Says how to reach the cluster, waits for Ctrl-C (or SIGTERM), then
/// stops the operator, saying how it ended.
async fn run_until_stopped(
    kubeconfig: &std::path::Path,
    operator: Option<crate::local_cluster::OperatorTask>,
    out: &mut dyn Write,
) -> Result<()> {
    writeln!(out, "export KUBECONFIG={}", kubeconfig.display())?;
    writeln!(out, "Ctrl-C stops it.")?;
    out.flush()?;
    crate::signals::stop_signal().await;
    if let Some((stop, task)) = operator {
        let _ = stop.send(());
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => writeln!(out, "operator: {err}")?,
            Err(err) => writeln!(out, "operator task: {err}")?,
        }
    }
    Ok(())
}

async fn serve(args: LocalArgs, out: &mut dyn Write) -> Result<()> {
    if args.nodes > 1 && !(args.kubernetes && args.node == NodeKind::Containers) {
        return Err(Error::Local(format!(
            "--nodes {}: several nodes need the real node (--kubernetes --node containers); localkube's node is one",
            args.nodes
        )));
    }
    if args.kubernetes && args.node == NodeKind::Containers {
        return containers::serve(args, out).await;
    }
    if args.kubernetes {
        return kubernetes::serve(args, out).await;
    }
    // Pod data lives under the state dir when there is one; otherwise in a
    // temporary directory that goes away with this process.
    let scratch = match (&args.state_dir, args.api_only) {
        (None, false) => Some(
            tempfile::Builder::new()
                .prefix("logbook-local-")
                .tempdir()
                .map_err(|e| Error::Local(format!("cannot create a work directory: {e}")))?,
        ),
        _ => None,
    };
    let workloads = if args.api_only {
        None
    } else {
        let state_dir = match (&args.state_dir, &scratch) {
            (Some(dir), _) => dir.join("workloads"),
            (None, Some(tmp)) => tmp.path().to_path_buf(),
            (None, None) => return Err(Error::Local("no directory for pod data".to_owned())),
        };
        // The operator's image (a restore's init container) is this
        // executable.
        let binary = std::env::current_exe()
            .map_err(|e| Error::Local(format!("cannot find this executable: {e}")))?;
        let image = operator_image(&binary, &state_dir.join("operator-image")).map_err(|e| {
            Error::Local(format!(
                "cannot link {} as the operator's image: {e}",
                binary.display()
            ))
        })?;
        Some(logbook_localkube::WorkloadsConfig {
            state_dir,
            kubelet: true,
            proxy: true,
            local_images: vec![image],
        })
    };
    let config = logbook_localkube::Config {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        token: args.token.clone(),
        state_dir: args.state_dir.as_ref().map(|d| d.join("api")),
        watch_history: args.watch_history,
        workloads,
        ..logbook_localkube::Config::default()
    };
    let server = logbook_localkube::LocalKube::start(config)
        .await
        .map_err(|e| Error::Local(format!("cannot start localkube: {e}")))?;
    // The CRDs in every mode, the API server alone included: its clients
    // apply manifests at either version, converted by this process.
    install_crds(&server)?;
    create_parent(&args.kubeconfig)?;
    server
        .write_kubeconfig(&args.kubeconfig)
        .map_err(|e| Error::Local(format!("cannot write {}: {e}", args.kubeconfig.display())))?;
    let kubeconfig = std::fs::canonicalize(&args.kubeconfig).unwrap_or(args.kubeconfig.clone());
    let what = if args.api_only {
        "API server"
    } else {
        "cluster (API, controllers, kubelet, proxy)"
    };
    writeln!(out, "localkube {what} listening on {}", server.url())?;
    let operator = if args.api_only || args.no_operator {
        None
    } else {
        let journal_dir = journal_dir(&args);
        say_journal(&args, &journal_dir, out)?;
        let ui = ui_addr(&args, out)?;
        Some(start_operator(&kubeconfig, args.journal, &journal_dir, ui).await?)
    };
    run_until_stopped(&kubeconfig, operator, out).await?;
    server.shutdown().await;
    writeln!(out, "stopped")?;
    Ok(())
}

/// The operator's image run here as `binary`, a `logbook`: linked into
/// `dir` as `logbook-operator`, the name of the image's one executable,
/// whose command lines (`operator ...`, `restore-fetch ...`) `logbook`
/// takes as well.
pub fn operator_image(
    binary: &std::path::Path,
    dir: &std::path::Path,
) -> std::io::Result<logbook_localkube::LocalImage> {
    std::fs::create_dir_all(dir)?;
    let link = dir.join("logbook-operator");
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(binary, &link)?;
    Ok(logbook_localkube::LocalImage {
        pattern: format!("{}:*", crate::resources::restore::DEFAULT_IMAGE_REPOSITORY),
        binary: link,
    })
}
