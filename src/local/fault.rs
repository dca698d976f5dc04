//! `logbook local fault ...`: injects a fault into a pod of a running
//! `logbook local`, for tests and demonstrations of failover.
//!
//! The request goes to the running localkube over its API address (the
//! kubeconfig's server and credentials) at `POST /localkube/v1/faults/...`,
//! a path no real cluster serves: against a real cluster the command fails
//! with a clear message instead of doing anything.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli_error::{Error, Result};

/// `logbook local fault` options.
#[derive(Debug, Args)]
pub struct FaultArgs {
    /// The kubeconfig `logbook local` wrote.
    #[arg(long, default_value = ".logbook/kubeconfig", global = true)]
    pub kubeconfig: PathBuf,
    /// Namespace of the pod or claim.
    #[arg(long, short = 'n', default_value = "default", global = true)]
    pub namespace: String,
    /// The fault.
    #[command(subcommand)]
    pub action: FaultAction,
}

/// The faults localkube's kubelet can inject.
#[derive(Debug, Subcommand)]
pub enum FaultAction {
    /// SIGKILL a container's process (the kubelet restarts it per restartPolicy).
    Kill {
        /// The pod.
        pod: String,
        /// The container (default: the first).
        #[arg(long, short = 'c')]
        container: Option<String>,
    },
    /// SIGSTOP every process of the pod: it stops answering without dying.
    Freeze {
        /// The pod.
        pod: String,
    },
    /// SIGCONT a frozen pod.
    Thaw {
        /// The pod.
        pod: String,
    },
    /// Drop every packet to and from the pod's address: connections time out.
    Partition {
        /// The pod.
        pod: String,
    },
    /// Undo `partition`.
    Heal {
        /// The pod.
        pod: String,
    },
    /// Delete the contents of a PersistentVolumeClaim's data directory.
    WipePvc {
        /// The claim.
        pvc: String,
    },
}

impl FaultAction {
    fn path_and_body(&self, namespace: &str) -> (&'static str, serde_json::Value) {
        let pod = |name: &str| serde_json::json!({"namespace": namespace, "pod": name});
        match self {
            Self::Kill {
                pod: name,
                container,
            } => (
                "kill",
                serde_json::json!({"namespace": namespace, "pod": name, "container": container}),
            ),
            Self::Freeze { pod: name } => ("freeze", pod(name)),
            Self::Thaw { pod: name } => ("thaw", pod(name)),
            Self::Partition { pod: name } => ("partition", pod(name)),
            Self::Heal { pod: name } => ("heal", pod(name)),
            Self::WipePvc { pvc } => (
                "wipe-pvc",
                serde_json::json!({"namespace": namespace, "pvc": pvc}),
            ),
        }
    }
}

/// Sends the fault to the running localkube.
///
/// # Errors
/// [`Error::Local`] when the kubeconfig is unusable, the server is not a
/// localkube, or the fault is refused (unknown pod, no kubelet).
pub fn run(args: FaultArgs, out: &mut dyn Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let (action, body) = args.action.path_and_body(&args.namespace);
    let reply = runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig).map_err(|e| {
            Error::Local(format!("cannot read {}: {e}", args.kubeconfig.display()))
        })?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| Error::Local(format!("unusable kubeconfig: {e}")))?;
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::Local(format!("cannot build a client: {e}")))?;
        let request = http::Request::post(format!("/localkube/v1/faults/{action}"))
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .map_err(|e| Error::Local(format!("cannot build the request: {e}")))?;
        client.request_text(request).await.map_err(|e| match e {
            kube::Error::Api(status) if status.code == 404 && status.message.contains("could not find") => {
                Error::Local("the server is not a localkube (no fault API): faults only work on `logbook local`".to_owned())
            }
            other => Error::Local(format!("fault {action} refused: {other}")),
        })
    })?;
    writeln!(out, "{}", reply.trim_end())?;
    Ok(())
}
