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
    /// Cut a node off (containers nodes): every packet across its links
    /// dropped; its pods keep running and reach each other.
    PartitionNode {
        /// The Node's name.
        node: String,
    },
    /// Undo `partition-node`.
    HealNode {
        /// The Node's name.
        node: String,
    },
    /// Kill a node whole (containers nodes): its kubelet, containerd and
    /// every container, as a machine losing power.
    StopNode {
        /// The Node's name.
        node: String,
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
            Self::PartitionNode { node } => ("partition-node", serde_json::json!({"node": node})),
            Self::HealNode { node } => ("heal-node", serde_json::json!({"node": node})),
            Self::StopNode { node } => ("stop-node", serde_json::json!({"node": node})),
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
    let node = super::containers::node_file(&args.kubeconfig);
    if node.is_file() {
        let reply = runtime.block_on(on_containers(&args, &node))?;
        writeln!(out, "{}", reply.trim_end())?;
        return Ok(());
    }
    let (action, body) = args.action.path_and_body(&args.namespace);
    let beside = super::kubernetes::faults_file(&args.kubeconfig);
    if beside.is_file() {
        let reply = runtime.block_on(send_beside(&beside, action, &body))?;
        writeln!(out, "{}", reply.trim_end())?;
        return Ok(());
    }
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

/// Carries the fault out on a containers node (`logbook local --kubernetes
/// --node containers`), from this host, as its operator would.
async fn on_containers(args: &FaultArgs, node: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(node)
        .map_err(|e| Error::Local(format!("cannot read {}: {e}", node.display())))?;
    let file: super::containers::NodeFile = serde_json::from_str(&text)
        .map_err(|e| Error::Local(format!("{} is not a node's file: {e}", node.display())))?;
    let faults = super::containers::ContainerFaults::from_file(file);
    let client = crate::kube_client::client(Some(&args.kubeconfig)).await?;
    let ns = args.namespace.as_str();
    match &args.action {
        FaultAction::Kill { pod, container } => {
            faults.kill(&client, ns, pod, container.as_deref()).await
        }
        FaultAction::Freeze { pod } => faults.freeze(&client, ns, pod).await,
        FaultAction::Thaw { pod } => faults.thaw(&client, ns, pod).await,
        FaultAction::Partition { pod } => faults.partition(&client, ns, pod, true).await,
        FaultAction::Heal { pod } => faults.partition(&client, ns, pod, false).await,
        FaultAction::WipePvc { pvc } => faults.wipe_pvc(ns, pvc),
        FaultAction::PartitionNode { node } => faults.partition_node(node, true).await,
        FaultAction::HealNode { node } => faults.partition_node(node, false).await,
        FaultAction::StopNode { node } => faults.stop_node(node).await,
    }
}

/// Sends the fault to the fault API a `logbook local --kubernetes` serves
/// beside the real API server (address and token in `file`).
async fn send_beside(
    file: &std::path::Path,
    action: &str,
    body: &serde_json::Value,
) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::Local(format!("cannot read {}: {e}", file.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Local(format!(
            "{} is not the fault API's address: {e}",
            file.display()
        ))
    })?;
    let (Some(url), Some(token)) = (
        v.get("url").and_then(serde_json::Value::as_str),
        v.get("token").and_then(serde_json::Value::as_str),
    ) else {
        return Err(Error::Local(format!(
            "{} lacks url or token",
            file.display()
        )));
    };
    let addr = url.trim_start_matches("http://").to_owned();
    let payload = body.to_string();
    let request = format!(
        "POST /localkube/v1/faults/{action} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&addr).await.map_err(|e| {
        Error::Local(format!(
            "the fault API at {url} does not answer (is `logbook local --kubernetes` running?): {e}"
        ))
    })?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Error::Local(format!("fault {action}: {e}")))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .await
        .map_err(|e| Error::Local(format!("fault {action}: {e}")))?;
    let (head, text) = reply.split_once("\r\n\r\n").unwrap_or((reply.as_str(), ""));
    let ok = head.split_whitespace().nth(1) == Some("200");
    if ok {
        Ok(text.to_owned())
    } else {
        Err(Error::Local(format!(
            "fault {action} refused: {}",
            text.trim()
        )))
    }
}
