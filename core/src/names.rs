//! The names of the objects the operator makes for a cluster, and the
//! ones clients and Sentinels know it by, where the decisions need them.

/// Name of the StatefulSet of the data pods: the cluster's name.
pub fn statefulset_name(cluster: &str) -> String {
    cluster.to_owned()
}

/// Name of the Sentinel client Service (ClusterIP, every ready Sentinel),
/// for Sentinel-aware clients: `<cluster>-sentinel`.
pub fn sentinel_service_name(cluster: &str) -> String {
    format!("{cluster}-sentinel")
}

/// The name the Sentinels monitor the primary under, which clients ask
/// Sentinel for (`SENTINEL GET-PRIMARY-ADDR-BY-NAME`): the cluster's name.
pub fn sentinel_master_name(cluster: &str) -> String {
    cluster.to_owned()
}

/// The port every Sentinel listens on (Sentinel's own default).
pub const SENTINEL_PORT: u16 = 26379;

/// Annotation on every object the operator makes for a cluster, naming
/// the ValkeyCluster (beside its controller owner reference). Removed from
/// the data StatefulSet by its user, it unbinds the cluster: the operator
/// removes it from the other objects and manages nothing until it is back.
pub const OWNED_BY: &str = "valkey.logbook.dev/cr";
