//! Faults on the pods of the node a test runs on: localkube's kubelet
//! (host processes) or the real node (containers).

use logbook_localkube::kubelet::Faults;

/// Faults on the pods of the node a test runs on.
pub enum PodFaults {
    /// localkube's kubelet: pods are host processes.
    Local(Faults),
    /// The real node: pods are containers (their cgroups, their network
    /// namespaces); the client finds their containers.
    Containers(logbook::local::containers::ContainerFaults, kube::Client),
}

impl PodFaults {
    /// SIGKILLs the pod's processes (of one container, if named).
    pub async fn kill(&self, ns: &str, pod: &str, container: Option<&str>) -> Result<(), String> {
        match self {
            Self::Local(f) => f.kill(ns, pod, container).await.map_err(|e| e.to_string()),
            Self::Containers(f, c) => f
                .kill(c, ns, pod, container)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Stops the pod's processes without killing them (SIGSTOP on
    /// localkube, the cgroup freezer on the node).
    pub async fn freeze(&self, ns: &str, pod: &str) -> Result<(), String> {
        match self {
            Self::Local(f) => f.freeze(ns, pod).await.map_err(|e| e.to_string()),
            Self::Containers(f, c) => f
                .freeze(c, ns, pod)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Lets a frozen pod run again.
    pub async fn thaw(&self, ns: &str, pod: &str) -> Result<(), String> {
        match self {
            Self::Local(f) => f.thaw(ns, pod).await.map_err(|e| e.to_string()),
            Self::Containers(f, c) => f
                .thaw(c, ns, pod)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Empties the claim's volume under its running pod.
    pub async fn wipe_pvc_data(&self, ns: &str, claim: &str) -> Result<(), String> {
        match self {
            Self::Local(f) => f.wipe_pvc_data(ns, claim).await.map_err(|e| e.to_string()),
            Self::Containers(f, _) => f.wipe_pvc(ns, claim).map(drop).map_err(|e| e.to_string()),
        }
    }
}
