//! `logbook ui`: the web UI on this machine, with the user's kubeconfig.
//! Every object, journal included, is read with the user's credentials,
//! so the UI shows exactly what that user may read. Journals are read from
//! the ConfigMaps of each cluster's namespace (`--journal configmap`, the
//! in-cluster default); an operator journaling to a local directory serves
//! its UI itself (`logbook operator --ui-addr`, `logbook local`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::cli_error::{Error, Result};

/// `logbook ui` options.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The kubeconfig to use (default: `KUBECONFIG`, `~/.kube/config`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Only this namespace's clusters (default: every namespace the user
    /// may list).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Where to serve it. Keep it on the loopback: the UI reads with your
    /// credentials and asks nobody for theirs.
    #[arg(long, default_value = "127.0.0.1:8900")]
    pub addr: SocketAddr,
}

/// Runs `logbook ui` until Ctrl-C.
///
/// # Errors
/// [`Error::Local`] when the address cannot be bound or the kubeconfig
/// not read; [`Error::Runtime`].
pub fn run(args: UiArgs, out: &mut dyn Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve(args, out))
}

async fn serve(args: UiArgs, out: &mut dyn Write) -> Result<()> {
    let client = crate::kube_client::client(args.kubeconfig.as_ref()).await?;
    let listener = crate::ui::bind(args.addr).await.map_err(Error::Local)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Local(format!("the UI's address: {e}")))?;
    let ui = Arc::new(crate::ui::Ui {
        journals: crate::ui::Journals::ConfigMaps(client.clone()),
        client,
        namespace: args.namespace,
        // Every object is read with the user's own credentials.
        reviews: None,
    });
    writeln!(out, "Logbook UI at http://{addr}/ (Ctrl-C stops it)")?;
    out.flush()?;
    crate::ui::serve(listener, ui, crate::signals::stop_signal())
        .await
        .map_err(|e| Error::Local(format!("the UI stopped: {e}")))
}
