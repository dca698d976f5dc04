//! Several real nodes (`LOGBOOK_E2E_NODE=containers`): which node a pod
//! is on, a node drained, cut off or killed, and a watch that no two pods
//! answer as primary at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use logbook::local::containers::NodeEntry;

use super::{Backend, Env, NS, try_role};

impl Env {
    /// Starts the control plane with `nodes` real nodes and the operator.
    pub async fn start_on_nodes(name: &str, nodes: usize) -> Env {
        let mut env = Self::start_without_operator_on(name, nodes).await;
        env.start_operator();
        env
    }

    /// The real nodes (empty off containers).
    pub fn nodes(&self) -> Vec<NodeEntry> {
        match &self.server {
            Some(Backend::Containers(c)) => c.nodes().to_vec(),
            _ => Vec::new(),
        }
    }

    fn containers(&self) -> &logbook::local::containers::LocalContainers {
        match &self.server {
            Some(Backend::Containers(c)) => c,
            _ => panic!("this test needs the real nodes (LOGBOOK_E2E_NODE=containers)"),
        }
    }

    /// The node `pod` is scheduled on.
    pub async fn node_of(&self, pod: &str) -> String {
        self.api::<Pod>()
            .get(pod)
            .await
            .unwrap()
            .spec
            .and_then(|s| s.node_name)
            .unwrap_or_else(|| panic!("{pod} is not scheduled"))
    }

    /// The zone label of the node `node`.
    pub async fn zone_of(&self, node: &str) -> Option<String> {
        kube::Api::<Node>::all(self.client.clone())
            .get(node)
            .await
            .unwrap()
            .metadata
            .labels
            .unwrap_or_default()
            .get("topology.kubernetes.io/zone")
            .cloned()
    }

    /// Cuts the node off (`cut`) or heals it.
    pub async fn partition_node(&self, node: &str, cut: bool) {
        self.containers()
            .faults()
            .partition_node(node, cut)
            .await
            .unwrap();
    }

    /// Kills the node whole.
    pub async fn stop_node(&self, node: &str) {
        self.containers().faults().stop_node(node).await.unwrap();
    }

    /// `kubectl <args>` with the real kubectl, run without blocking the
    /// test's runtime (a drain waits for its evictions): (success, stdout
    /// and stderr).
    pub async fn kubectl_async(&self, args: &[&str]) -> (bool, String) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = tokio::process::Command::new(root.join(".tools/bin/kubectl"))
            .arg("--kubeconfig")
            .arg(self.write_kubeconfig())
            .args(["--namespace", NS])
            .args(args)
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// Asks each of `addrs` for its role every 20 ms until `stop`: every
/// sample where more than one answered `master`, as "a and b".
pub fn sample_roles(
    addrs: Vec<String>,
    password: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut doubles = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let mut masters = Vec::new();
            for addr in &addrs {
                if let Some((kind, _)) = try_role(addr, &password).await
                    && kind == "master"
                {
                    masters.push(addr.clone());
                }
            }
            if masters.len() > 1 {
                doubles.push(masters.join(" and "));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        doubles
    })
}
