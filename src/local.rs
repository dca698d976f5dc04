//! `logbook local`: runs Logbook's local Kubernetes (localkube) on this
//! machine and writes a kubeconfig for it.
//!
//! Today only the API server exists (`--api-only`); the process kubelet,
//! StatefulSet controller and the operator join it in later parts. This is
//! the one place the binary touches localkube: the operator's own code never
//! depends on it.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

use crate::cli::{Error, Result};

/// `logbook local` options.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Run only the API server (no kubelet, no controllers, no operator).
    #[arg(long)]
    pub api_only: bool,
    /// Keep the API objects here, so a restart comes back with them
    /// (default: in memory only).
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
    /// How many changes a watch can resume across; a watch from an older
    /// resourceVersion gets 410 Gone and relists.
    #[arg(long, default_value_t = 10_000)]
    pub watch_history: usize,
}

/// Runs `logbook local` until Ctrl-C.
///
/// # Errors
/// [`Error::Local`] when the server cannot start or the kubeconfig cannot be
/// written; [`Error::NotYet`] without `--api-only`.
pub fn run(args: LocalArgs, out: &mut dyn Write) -> Result<()> {
    if !args.api_only {
        return Err(Error::NotYet(
            "`logbook local` without --api-only needs the process kubelet and the operator, \
             which are not built yet; run `logbook local --api-only` for the API server alone",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve_api_only(args, out))
}

async fn serve_api_only(args: LocalArgs, out: &mut dyn Write) -> Result<()> {
    let config = logbook_localkube::Config {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        token: args.token.clone(),
        state_dir: args.state_dir.clone(),
        watch_history: args.watch_history,
        ..logbook_localkube::Config::default()
    };
    let server = logbook_localkube::LocalKube::start(config)
        .await
        .map_err(|e| Error::Local(format!("cannot start the API server: {e}")))?;
    if let Some(parent) = args
        .kubeconfig
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Local(format!("cannot create {}: {e}", parent.display())))?;
    }
    server
        .write_kubeconfig(&args.kubeconfig)
        .map_err(|e| Error::Local(format!("cannot write {}: {e}", args.kubeconfig.display())))?;
    let kubeconfig = std::fs::canonicalize(&args.kubeconfig).unwrap_or(args.kubeconfig.clone());
    writeln!(out, "localkube API server listening on {}", server.url())?;
    writeln!(out, "export KUBECONFIG={}", kubeconfig.display())?;
    writeln!(out, "Ctrl-C stops it.")?;
    out.flush()?;
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::Local(format!("cannot wait for Ctrl-C: {e}")))?;
    server.shutdown().await;
    writeln!(out, "stopped")?;
    Ok(())
}
