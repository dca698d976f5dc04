//! `logbook operator`: runs the operator against the ambient kubeconfig
//! (or `--kubeconfig`, or in-cluster config) until Ctrl-C or SIGTERM.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::cli::{Error, Result};
use crate::operator::{self, OperatorConfig};

/// `logbook operator` options.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The kubeconfig to use (default: `KUBECONFIG`, `~/.kube/config`, or
    /// the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: every namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Where the sled journal lives.
    #[arg(long, default_value = ".logbook/journal")]
    pub journal_dir: PathBuf,
    /// This instance's name in the journal (default: `$POD_NAME`, else the
    /// host name).
    #[arg(long)]
    pub instance: Option<String>,
}

/// Builds a client from `kubeconfig`, or from the environment.
///
/// # Errors
/// [`Error::Local`] when no configuration can be read.
pub async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                Error::Local(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Local(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Local(format!("no Kubernetes configuration found: {e}")))?,
    };
    kube::Client::try_from(config).map_err(|e| Error::Local(format!("cannot build a client: {e}")))
}

/// This process's identity.
pub fn instance_name(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "logbook".to_owned())
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs `logbook operator` until stopped.
///
/// # Errors
/// Configuration, journal or runtime errors.
pub fn run(args: OperatorArgs, out: &mut dyn Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        let config = OperatorConfig {
            namespace: args.namespace.clone(),
            journal_dir: args.journal_dir.clone(),
            instance: instance_name(args.instance.clone()),
            features: Default::default(),
        };
        writeln!(
            out,
            "logbook operator: watching {}, journal at {}",
            args.namespace.as_deref().unwrap_or("every namespace"),
            args.journal_dir.display()
        )?;
        out.flush()?;
        operator::run(client, config, stop_signal())
            .await
            .map_err(|e| Error::Local(format!("operator: {e}")))
    })
}
