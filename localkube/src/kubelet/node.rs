//! The node: the `localkube-node` Node object (Ready, addresses, capacity
//! from this machine, nodeInfo), written only when it differs, and its
//! heartbeat as a coordination.k8s.io Lease in `kube-node-lease` renewed
//! every 10 s, as the real kubelet does it (the Node itself is not
//! rewritten for a heartbeat).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{KubeletConfig, KubeletError, Shared};
use crate::node_api::NodeApi;
use crate::{ApiError, names};

const LEASE_SECONDS: u64 = 40;
const RENEW: Duration = Duration::from_secs(10);

fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb.saturating_mul(1024))
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The Node's addresses: its own address ([`crate::instance::Instance::node_ip`])
/// as InternalIP; but when the kubelet API is served (`port` ≠ 0, a real
/// control plane, which reaches it at the InternalIP with a certificate
/// for `127.0.0.1`) InternalIP stays `127.0.0.1` and the node's address is
/// the ExternalIP, as a cloud node's address for outside clients is.
fn addresses(node: &str, node_ip: Ipv4Addr, port: u16) -> Value {
    if port == 0 {
        json!([
            {"type": "InternalIP", "address": node_ip.to_string()},
            {"type": "Hostname", "address": node},
        ])
    } else {
        json!([
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "ExternalIP", "address": node_ip.to_string()},
            {"type": "Hostname", "address": node},
        ])
    }
}

fn desired_status(previous: Option<&Value>, node: &str, node_ip: Ipv4Addr, port: u16) -> Value {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem = format!("{}Ki", memory_bytes() / 1024);
    let capacity =
        json!({"cpu": cpus.to_string(), "memory": mem, "pods": "110", "ephemeral-storage": "0"});
    let since = previous
        .and_then(|s| s.pointer("/conditions/0/lastTransitionTime"))
        .cloned()
        .unwrap_or_else(|| json!(names::now()));
    let heartbeat = previous
        .and_then(|s| s.pointer("/conditions/0/lastHeartbeatTime"))
        .cloned()
        .unwrap_or_else(|| since.clone());
    json!({
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "localkube process kubelet is posting ready status",
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": since,
        }],
        "addresses": addresses(node, node_ip, port),
        "capacity": capacity,
        "allocatable": capacity,
        "nodeInfo": {
            "architecture": std::env::consts::ARCH, "operatingSystem": std::env::consts::OS,
            "kernelVersion": kernel(), "osImage": "localkube", "containerRuntimeVersion": "localkube://process",
            "kubeletVersion": "v1.35.0-localkube", "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": "",
        },
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    })
}

/// Creates or updates the Node (its address `node_ip`, its kubelet API on
/// `port`, 0 for none); writes nothing when it already matches.
pub(crate) async fn register(
    api: &NodeApi,
    config: &KubeletConfig,
    node_ip: Ipv4Addr,
    port: u16,
) -> Result<(), KubeletError> {
    let err = |source| KubeletError::Node {
        node: config.node_name.clone(),
        source,
    };
    let node = match api.get("v1", "nodes", None, &config.node_name).await {
        Ok(n) => n,
        Err(ApiError::NotFound(_)) => {
            let mut labels = json!({
                "kubernetes.io/hostname": config.node_name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": std::env::consts::ARCH,
            });
            // A real API server's NodeRestriction forbids a kubelet to set
            // a node-role label; localkube's one node is its control plane.
            if api.is_local()
                && let Some(l) = labels.as_object_mut()
            {
                l.insert("node-role.kubernetes.io/control-plane".into(), json!(""));
            }
            let body = json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": config.node_name, "labels": labels},
                "spec": {},
            });
            api.create("v1", "nodes", None, body).await.map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    let want = desired_status(node.get("status"), &config.node_name, node_ip, port);
    if node.get("status") != Some(&want) {
        let mut n = node.clone();
        if let Some(o) = n.as_object_mut() {
            o.insert("status".into(), want);
        }
        api.update("v1", "nodes", None, n, true)
            .await
            .map_err(err)?;
    }
    renew_lease(api, &config.node_name).await.map_err(err)?;
    Ok(())
}

async fn renew_lease(api: &NodeApi, node: &str) -> Result<(), ApiError> {
    let av = "coordination.k8s.io/v1";
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    match api.get(av, "leases", Some("kube-node-lease"), node).await {
        Ok(mut l) => {
            if let Some(spec) = l.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("renewTime".into(), json!(now));
            }
            api.update(av, "leases", Some("kube-node-lease"), l, false)
                .await?;
        }
        Err(ApiError::NotFound(_)) => {
            if api
                .get("v1", "namespaces", None, "kube-node-lease")
                .await
                .is_err()
            {
                let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-node-lease"}});
                let _ = api.create("v1", "namespaces", None, ns).await;
            }
            let body = json!({
                "apiVersion": av, "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now},
            });
            api.create(av, "leases", Some("kube-node-lease"), body)
                .await?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Renews the Lease every 10 s until shutdown.
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(RENEW) => {
                if let Err(e) = renew_lease(&shared.api, &shared.config.node_name).await {
                    tracing::warn!(error = %e, "kubelet: lease renewal failed");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
