//! Label and annotation keys the operator puts on, and selects by, and the
//! label sets of a cluster's objects.
//!
//! The selector labels are stable for the life of a cluster (they are in the
//! StatefulSet's immutable selector), so they depend on the cluster's name
//! only. The role label is the operator's to move on pods; no builder sets
//! it, so applying a StatefulSet never fights a failover.

use std::collections::BTreeMap;

use logbook_crds::ValkeyClusterSpec;

/// `app.kubernetes.io/name`, always [`NAME_VALUE`].
pub const NAME: &str = "app.kubernetes.io/name";
/// The value of [`NAME`].
pub const NAME_VALUE: &str = "valkey";
/// `app.kubernetes.io/instance`: the cluster's name.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/managed-by`, always [`MANAGED_BY_VALUE`].
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "logbook";
/// The cluster's name.
pub const CLUSTER: &str = "valkey.logbook.dev/cluster";
/// A data pod's role, [`ROLE_PRIMARY`] or [`ROLE_REPLICA`]: moved by the
/// operator after it decides, never set by a builder. The client and read
/// Services select on it.
pub const ROLE: &str = "valkey.logbook.dev/role";
/// [`ROLE`] of the primary.
pub const ROLE_PRIMARY: &str = "primary";
/// [`ROLE`] of a replica.
pub const ROLE_REPLICA: &str = "replica";
/// Pod template annotation: hash of `valkey.conf` and `start.sh`, so a pod
/// running an older configuration is told apart from a current one.
pub const CONFIG_HASH: &str = "valkey.logbook.dev/config-hash";
/// Annotation on the ValkeyCluster asking for a switchover to the named pod.
pub const SWITCHOVER_TO: &str = "valkey.logbook.dev/switchover-to";
/// Annotation on the ValkeyCluster asking for an operator-driven failover
/// now, healthy primary or not; its value (an RFC 3339 time, or any nonce)
/// tells one request from the next. The operator removes it once served.
pub const FAILOVER_REQUESTED: &str = "valkey.logbook.dev/failover-requested";
/// Annotation on the ValkeyCluster: `"true"` asks the finalizer to delete the
/// data PVCs when the cluster is deleted (they are kept otherwise).
pub const DELETE_PVCS: &str = "valkey.logbook.dev/delete-pvcs-on-delete";

/// The labels every object of `cluster` carries and every selector of its
/// pods matches: [`NAME`], [`INSTANCE`] and [`CLUSTER`].
pub fn selector(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), NAME_VALUE.to_owned()),
        (INSTANCE.to_owned(), cluster.to_owned()),
        (CLUSTER.to_owned(), cluster.to_owned()),
    ])
}

/// The labels of every object of `cluster`: the spec's extra labels, then
/// the [`selector`] labels and [`MANAGED_BY`], which win over the spec's
/// (validation refuses those keys in the spec; this keeps selection right
/// even on a spec that slipped past it).
pub fn common(cluster: &str, spec: &ValkeyClusterSpec) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone();
    labels.extend(selector(cluster));
    labels.insert(MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
    labels
}

/// The [`selector`] as a label selector string (`k=v,k=v`) for list calls.
pub fn selector_string(cluster: &str) -> String {
    selector(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn selector_names_the_cluster() {
        let s = selector("cache");
        assert_eq!(s.len(), 3);
        assert_eq!(s[NAME], "valkey");
        assert_eq!(s[INSTANCE], "cache");
        assert_eq!(s[CLUSTER], "cache");
        assert!(!s.contains_key(ROLE));
    }

    #[test]
    fn common_labels_keep_ours_over_the_specs() {
        let mut spec = ValkeyClusterSpec::default();
        spec.labels.insert("team".into(), "payments".into());
        spec.labels.insert(INSTANCE.into(), "evil".into());
        spec.labels.insert(MANAGED_BY.into(), "helm".into());
        let l = common("cache", &spec);
        assert_eq!(l["team"], "payments");
        assert_eq!(l[INSTANCE], "cache");
        assert_eq!(l[MANAGED_BY], "logbook");
        assert!(!l.contains_key(ROLE));
    }

    #[test]
    fn selector_string_is_sorted_pairs() {
        assert_eq!(
            selector_string("cache"),
            "app.kubernetes.io/instance=cache,app.kubernetes.io/name=valkey,valkey.logbook.dev/cluster=cache"
        );
    }
}
