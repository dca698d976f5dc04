//! Faults on the pods of the node a test, a sweep or a soak runs on:
//! localkube's kubelet (pods are host processes) or the real node (pods
//! are containers: their cgroups, their network namespaces). One type, so
//! the end-to-end suites and `logbook-bench soak` inject the same faults
//! on either.

use logbook_localkube::kubelet::Faults;

use super::containers::ContainerFaults;

/// Faults on the pods of one node.
#[derive(Clone)]
pub enum PodFaults {
    /// localkube's kubelet: pods are host processes.
    Local(Faults),
    /// The real node: pods are containers; the client finds their
    /// containers.
    Containers(ContainerFaults, kube::Client),
}

impl std::fmt::Debug for PodFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local(_) => "PodFaults::Local",
            Self::Containers(..) => "PodFaults::Containers",
        })
    }
}

impl PodFaults {
    /// SIGKILLs the pod's processes (of one container, if named).
    ///
    /// # Errors
    /// What the node says: the pod or its processes not found.
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
    ///
    /// # Errors
    /// As [`PodFaults::kill`].
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
    ///
    /// # Errors
    /// As [`PodFaults::kill`].
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

    /// Drops every packet to and from the pod (iptables on the host for
    /// localkube's addresses, in the pod's own network namespace on the
    /// node).
    ///
    /// # Errors
    /// As [`PodFaults::kill`], or iptables failing.
    pub async fn partition(&self, ns: &str, pod: &str) -> Result<(), String> {
        match self {
            Self::Local(f) => f.partition(ns, pod).await.map_err(|e| e.to_string()),
            Self::Containers(f, c) => f
                .partition(c, ns, pod, true)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Undoes [`PodFaults::partition`].
    ///
    /// # Errors
    /// As [`PodFaults::kill`].
    pub async fn heal(&self, ns: &str, pod: &str) -> Result<(), String> {
        match self {
            Self::Local(f) => f.heal(ns, pod).await.map_err(|e| e.to_string()),
            Self::Containers(f, c) => f
                .partition(c, ns, pod, false)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Empties the claim's volume under its running pod.
    ///
    /// # Errors
    /// When the claim's directory cannot be read or emptied.
    pub async fn wipe_pvc_data(&self, ns: &str, claim: &str) -> Result<(), String> {
        match self {
            Self::Local(f) => f.wipe_pvc_data(ns, claim).await.map_err(|e| e.to_string()),
            Self::Containers(f, _) => f.wipe_pvc(ns, claim).map(drop).map_err(|e| e.to_string()),
        }
    }

    /// Writes garbage over every file of claim `ns/claim`'s data: its
    /// server can no longer load it.
    ///
    /// # Errors
    /// When the claim's directory cannot be read or a file written.
    pub async fn corrupt_pvc_data(&self, ns: &str, claim: &str) -> Result<(), String> {
        match self {
            Self::Local(f) => f
                .corrupt_pvc_data(ns, claim)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Self::Containers(f, _) => f
                .corrupt_pvc(ns, claim)
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}
