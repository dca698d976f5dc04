//! Logbook's local cluster, as `logbook local` and the benches set it up:
//! the project's CRDs installed into an in-process localkube, and the
//! operator started in-process against it through a kubeconfig (real HTTP,
//! as against any cluster).
//!
//! Starting localkube itself, and what to do until Ctrl-C, is the caller's
//! (`local`, the `logbook-bench` crate). The operator never imports this
//! module.

use crate::cli_error::{Error, Result};

/// The operator's task and the sender that stops it.
pub type OperatorTask = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::result::Result<(), crate::operator::OperatorError>>,
);

/// Starts the operator against the local cluster, through its kubeconfig
/// (real HTTP, as against any cluster), as instance `logbook-local` with
/// its Lease in `default`, serving the web UI at `ui_addr` if given. Send
/// on the returned sender to stop it, then await the task.
///
/// # Errors
/// [`Error::Local`] when the kubeconfig cannot be read or no client built.
pub async fn start_operator(
    kubeconfig: &std::path::Path,
    journal: crate::journal_store::JournalBackend,
    journal_dir: &std::path::Path,
    ui_addr: Option<std::net::SocketAddr>,
) -> Result<OperatorTask> {
    let client = crate::kube_client::client(Some(&kubeconfig.to_path_buf())).await?;
    let mut config = crate::operator::OperatorConfig::new(
        journal,
        journal_dir.to_path_buf(),
        "logbook-local".to_owned(),
        "default",
    );
    config.ui_addr = ui_addr;
    // Bound to 127.0.0.1 for the machine's user, who is the admin.
    config.ui_auth = crate::ui::UiAuth::None;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::operator::run(client, config, async move {
        let _ = stopped.await;
    }));
    Ok((stop, task))
}

/// Installs (or updates) every CRD of `logbook crds` with server-side apply,
/// so a restart with `--state-dir` picks up a newer API; the ValkeyCluster
/// CRD converts between its versions through this process's own
/// conversion webhook (`crate::webhook::local`), as the chart's operator
/// serves it in a cluster.
///
/// # Errors
/// [`Error::Local`] naming the CRD that could not be encoded or stored, or
/// why the conversion webhook could not start.
pub fn install_crds(server: &logbook_localkube::RunningServer) -> Result<()> {
    let ctx = logbook_localkube::WriteCtx::internal("logbook-local");
    let conversion = crate::webhook::local::local_conversion().map_err(|e| {
        Error::Local(format!(
            "the ValkeyCluster CRD's conversion webhook (v1alpha1 to v1beta1) cannot start: {e}"
        ))
    })?;
    for crd in logbook_crds::crdgen::crds_converting_at(conversion.client_config()) {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_value(&crd)
            .map_err(|e| Error::Local(format!("cannot encode CRD {name}: {e}")))?;
        server
            .store()
            .patch(
                "apiextensions.k8s.io/v1",
                "customresourcedefinitions",
                None,
                &name,
                logbook_localkube::PatchKind::Apply { force: true },
                &body,
                false,
                &ctx,
            )
            .map_err(|e| Error::Local(format!("cannot install CRD {name}: {e}")))?;
    }
    Ok(())
}
