//! The Kubernetes client of the command line: built from `--kubeconfig`
//! when given, else from the environment (`KUBECONFIG`, `~/.kube/config`,
//! the in-cluster service account). Shared by `logbook operator`, the
//! journal and replay commands, `logbook local` and the benches.
//!
//! It only builds a client; it never talks to the API server. The operator
//! itself is handed its client and does not import this module.

use std::path::PathBuf;

use crate::cli_error::{Error, Result};

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
    // Every write passes the effect gate (armed only by the fault sweeps).
    crate::effects::client_with(config, &crate::effects::Effects::from_env())
        .map_err(|e| Error::Local(format!("cannot build a client: {e}")))
}
