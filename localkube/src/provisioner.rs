//! A local-path volume provisioner, for localkube's kubelet as the node of
//! a real control plane (localkube itself needs none: its kubelet mounts a
//! claim's directory directly). It installs the default StorageClass
//! `local-path` (provisioner `logbook.io/local-path`, binding
//! `Immediate`), and for every pending claim of that class creates a
//! PersistentVolume pre-bound to it (`claimRef`), a `hostPath` at the
//! directory the kubelet mounts for the claim, pinned to the node; the real
//! PV controller binds the two. A released volume of its own (its claim
//! deleted, reclaim policy `Delete`) is deleted with its data, as the
//! external provisioners do.
//!
//! With several nodes ([`VolumePlacement::SelectedNodeZone`]) the class
//! binds `WaitForFirstConsumer`: a claim is provisioned once the scheduler
//! has picked its pod's node (the claim's `volume.kubernetes.io/selected-node`),
//! and its volume is pinned to that node's zone, as a cloud's zonal block
//! device is (the directories are on this machine's disk, which every node
//! mounts).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::ApiError;
use crate::kubelet::pvc_dir;
use crate::node_api::NodeApi;
use crate::obj;

/// The provisioner's name, in the StorageClass and on its volumes.
pub const PROVISIONER: &str = "logbook.io/local-path";
/// The StorageClass it serves (the default one).
pub const STORAGE_CLASS: &str = "local-path";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The scheduler's choice of node for a `WaitForFirstConsumer` claim.
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The well-known zone label of a node.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Where a volume may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumePlacement {
    /// Bound at once and pinned to this one node.
    Node(String),
    /// Bound once the scheduler picks the pod's node, and pinned to that
    /// node's zone (its hostname when it has no zone label).
    SelectedNodeZone,
}

/// The running provisioner.
pub struct Provisioner {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Provisioner {
    /// Installs the StorageClass and starts provisioning for the node
    /// `node`, whose kubelet keeps claims under `state_dir`.
    ///
    /// # Errors
    /// The StorageClass cannot be written.
    pub async fn spawn(api: NodeApi, state_dir: PathBuf, node: String) -> Result<Self, ApiError> {
        Self::spawn_with(api, state_dir, VolumePlacement::Node(node)).await
    }

    /// Installs the StorageClass and starts provisioning volumes placed
    /// as `placement` says, their directories under `state_dir`.
    ///
    /// # Errors
    /// The StorageClass cannot be written.
    pub async fn spawn_with(
        api: NodeApi,
        state_dir: PathBuf,
        placement: VolumePlacement,
    ) -> Result<Self, ApiError> {
        let binding = match placement {
            VolumePlacement::Node(_) => "Immediate",
            VolumePlacement::SelectedNodeZone => "WaitForFirstConsumer",
        };
        let class = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": binding,
        });
        match api
            .create("storage.k8s.io/v1", "storageclasses", None, class)
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
        let (stop, _) = watch::channel(false);
        let changed = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        for plural in ["persistentvolumeclaims", "persistentvolumes"] {
            tasks.spawn(crate::node_api::follow(
                api.clone(),
                "v1",
                plural,
                changed.clone(),
                stop.subscribe(),
            ));
        }
        let state = Arc::new((api, state_dir, placement));
        let mut stopped = stop.subscribe();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = changed.notified() => {}
                    _ = stopped.changed() => return,
                }
                let (api, dir, placement) = &*state;
                if let Err(e) = reconcile(api, dir, placement).await {
                    tracing::warn!(error = %e, "local-path provisioner");
                }
            }
        });
        Ok(Self { stop, tasks })
    }

    /// Stops it (volumes and data stay).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The volume for `claim`, pre-bound to it, usable where the node
/// selector term `term` matches.
fn volume_for(claim: &Value, dir: &std::path::Path, term: &Value) -> Value {
    let ns = obj::namespace(claim);
    let name = obj::name(claim);
    let size = claim
        .pointer("/spec/resources/requests/storage")
        .cloned()
        .unwrap_or_else(|| json!("1Gi"));
    let modes = claim
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or_else(|| json!(["ReadWriteOnce"]));
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {
            "name": format!("pvc-{}", s(claim, "/metadata/uid").unwrap_or_default()),
            "annotations": {PROVISIONED_BY: PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": modes,
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": ns, "name": name,
                "uid": s(claim, "/metadata/uid").unwrap_or_default(),
            },
            "hostPath": {"path": dir.to_string_lossy(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}},
        },
    })
}

/// A node selector term matching `key` = `value`.
fn term(key: &str, value: &str) -> Value {
    json!({"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]})
}

/// Where `claim`'s volume may be used: `None` while the scheduler has not
/// picked a node for a `WaitForFirstConsumer` claim.
fn placement_term(claim: &Value, placement: &VolumePlacement, nodes: &[Value]) -> Option<Value> {
    match placement {
        VolumePlacement::Node(node) => Some(term("kubernetes.io/hostname", node)),
        VolumePlacement::SelectedNodeZone => {
            let selected = claim
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SELECTED_NODE))
                .and_then(Value::as_str)?;
            let zone = nodes
                .iter()
                .find(|n| obj::name(n) == selected)
                .and_then(|n| n.pointer("/metadata/labels"))
                .and_then(|l| l.get(ZONE_LABEL))
                .and_then(Value::as_str);
            Some(match zone {
                Some(zone) => term(ZONE_LABEL, zone),
                None => term("kubernetes.io/hostname", selected),
            })
        }
    }
}

async fn reconcile(
    api: &NodeApi,
    state: &std::path::Path,
    placement: &VolumePlacement,
) -> Result<(), ApiError> {
    let claims = api.list("v1", "persistentvolumeclaims", None, None).await?;
    let volumes = api.list("v1", "persistentvolumes", None, None).await?;
    let nodes = match placement {
        VolumePlacement::Node(_) => Vec::new(),
        VolumePlacement::SelectedNodeZone => api.list("v1", "nodes", None, None).await?,
    };
    let exists = |name: &str| volumes.iter().any(|v| obj::name(v) == name);
    for c in &claims {
        let pending = s(c, "/status/phase").is_none_or(|p| p == "Pending");
        let unbound = s(c, "/spec/volumeName").is_none_or(str::is_empty);
        let ours = s(c, "/spec/storageClassName") == Some(STORAGE_CLASS);
        if !(pending && unbound && ours) || obj::is_deleting(c) {
            continue;
        }
        let Some(term) = placement_term(c, placement, &nodes) else {
            continue;
        };
        let dir = pvc_dir(state, obj::namespace(c), obj::name(c));
        let pv = volume_for(c, &dir, &term);
        if exists(obj::name(&pv)) {
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "local-path provisioner: cannot create the volume's directory");
            continue;
        }
        match api.create("v1", "persistentvolumes", None, pv).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    for v in &volumes {
        let mine = v
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(PROVISIONED_BY))
            .and_then(Value::as_str)
            == Some(PROVISIONER);
        let released = s(v, "/status/phase") == Some("Released");
        let delete = s(v, "/spec/persistentVolumeReclaimPolicy") == Some("Delete");
        if !(mine && released && delete) {
            continue;
        }
        if let Some(path) = s(v, "/spec/hostPath/path") {
            let path = std::path::Path::new(path);
            // Only ever a directory this node made for a claim.
            if path.starts_with(state.join("pvc"))
                && let Err(e) = std::fs::remove_dir_all(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %path.display(), error = %e, "local-path provisioner: cannot remove a released volume's data");
                continue;
            }
        }
        match api
            .delete(
                "v1",
                "persistentvolumes",
                None,
                obj::name(v),
                &Default::default(),
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_pre_bound_to_its_claim_at_the_kubelets_directory() {
        let claim = json!({"metadata": {"namespace": "shop", "name": "data-a-0", "uid": "u1"},
            "spec": {"resources": {"requests": {"storage": "2Gi"}}, "accessModes": ["ReadWriteOnce"]}});
        let dir = pvc_dir(std::path::Path::new("/s"), "shop", "data-a-0");
        let pv = volume_for(&claim, &dir, &term("kubernetes.io/hostname", "n1"));
        assert_eq!(obj::name(&pv), "pvc-u1");
        assert_eq!(s(&pv, "/spec/claimRef/uid"), Some("u1"));
        assert_eq!(s(&pv, "/spec/hostPath/path"), Some("/s/pvc/shop/data-a-0"));
        assert_eq!(s(&pv, "/spec/capacity/storage"), Some("2Gi"));
        assert_eq!(
            s(
                &pv,
                "/spec/nodeAffinity/required/nodeSelectorTerms/0/matchExpressions/0/values/0"
            ),
            Some("n1")
        );
    }

    #[test]
    fn a_waiting_claim_is_placed_in_the_zone_of_the_node_the_scheduler_picked() {
        let nodes = [
            json!({"metadata": {"name": "n1", "labels": {ZONE_LABEL: "zone-a"}}}),
            json!({"metadata": {"name": "n2"}}),
        ];
        let waiting = json!({"metadata": {"name": "c"}});
        assert_eq!(
            placement_term(&waiting, &VolumePlacement::SelectedNodeZone, &nodes),
            None,
            "no volume before the scheduler picks a node"
        );
        let on =
            |node: &str| json!({"metadata": {"name": "c", "annotations": {SELECTED_NODE: node}}});
        assert_eq!(
            placement_term(&on("n1"), &VolumePlacement::SelectedNodeZone, &nodes),
            Some(term(ZONE_LABEL, "zone-a"))
        );
        assert_eq!(
            placement_term(&on("n2"), &VolumePlacement::SelectedNodeZone, &nodes),
            Some(term("kubernetes.io/hostname", "n2")),
            "a node with no zone pins the volume to itself"
        );
        assert_eq!(
            placement_term(&waiting, &VolumePlacement::Node("n9".into()), &nodes),
            Some(term("kubernetes.io/hostname", "n9"))
        );
    }
}
