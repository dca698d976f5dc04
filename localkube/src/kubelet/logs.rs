//! The `log` subresource from the container log files
//! (`<state>/pods/<uid>/logs/<container>.log`, restarts appended).

use std::sync::Arc;

use serde_json::Value;

use super::{Shared, volumes};

/// Serves pod logs from files.
pub(crate) struct FileLogs {
    shared: Arc<Shared>,
}

impl FileLogs {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// The names of the pod's containers.
pub(crate) fn container_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

impl crate::PodLogs for FileLogs {
    fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        tail_lines: Option<i64>,
    ) -> Result<String, String> {
        let not_found = || format!("pods \"{pod}\" not found");
        // On localkube the store says which pod and containers; a kubelet
        // of a real control plane knows the pods it runs.
        let (uid, names): (String, Vec<String>) = match &self.shared.api {
            crate::node_api::NodeApi::Local(store) => {
                let p = store
                    .get("v1", "pods", Some(namespace), pod)
                    .map_err(|_| not_found())?;
                let uid = p
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                (uid, container_names(&p))
            }
            crate::node_api::NodeApi::Remote(_) => {
                let pods = self.shared.pods.lock();
                let (uid, e) = pods
                    .iter()
                    .find(|(_, e)| e.namespace == namespace && e.name == pod)
                    .ok_or_else(not_found)?;
                (uid.clone(), e.containers.clone())
            }
        };
        let uid = uid.as_str();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let name = match container {
            Some(c) => c,
            None if names.len() == 1 => names.first().copied().unwrap_or_default(),
            None => {
                return Err(format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    names.join(" ")
                ));
            }
        };
        let file = volumes::pod_dir(&self.shared.config.state_dir, uid)
            .join("logs")
            .join(format!("{name}.log"));
        let text = std::fs::read_to_string(&file).map_err(|_| {
            format!("container \"{name}\" in pod \"{pod}\" is waiting to start: ContainerCreating")
        })?;
        Ok(match tail_lines.and_then(|n| usize::try_from(n).ok()) {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                let from = lines.len().saturating_sub(n);
                let mut out = lines.get(from..).unwrap_or_default().join("\n");
                if !out.is_empty() {
                    out.push('\n');
                }
                out
            }
            None => text,
        })
    }
}
