//! Label and annotation keys the operator puts on, and selects by, and the
//! label sets of a cluster's objects.
//!
//! The selector labels are stable for the life of a cluster (they are in the
//! StatefulSet's immutable selector), so they depend on the cluster's name
//! only. The role label is the operator's to move on pods; no builder sets
//! it, so applying a StatefulSet never fights a failover.
//!
//! The Sentinel pods of topology Sentinel carry their own selector
//! ([`sentinel_selector`]): a different [`NAME`] and a [`COMPONENT`], so
//! that neither selector matches the other's pods. A data selector that
//! matched Sentinels would put them behind the data Services and PDB and
//! make the operator count them as Valkey pods.

pub use crate::names::OWNED_BY;

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
/// `app.kubernetes.io/component`: [`COMPONENT_SENTINEL`] on the Sentinel
/// objects; the data objects carry none.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// The value of [`COMPONENT`] on the Sentinel objects.
pub const COMPONENT_SENTINEL: &str = "sentinel";
/// The value of [`COMPONENT`] on the metrics Service (`<name>-metrics`),
/// which a ServiceMonitor selects it by.
pub const COMPONENT_METRICS: &str = "metrics";
/// The value of [`NAME`] on the Sentinel objects: not [`NAME_VALUE`], so
/// the data [`selector`] never matches a Sentinel pod.
pub const SENTINEL_NAME_VALUE: &str = "valkey-sentinel";
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
/// Annotation on the ValkeyCluster asking for the primaries to move back
/// to their preferred pods now (`kubectl valkey rebalance`); its value (a
/// time, or any nonce) tells one request from the next. The operator
/// removes it once nothing more can move.
pub const REBALANCE_REQUESTED: &str = "valkey.logbook.dev/rebalance-requested";
/// Annotation on the ValkeyCluster asking for every pod to be restarted
/// once (`kubectl valkey restart`); its value (an RFC 3339 time, or any
/// nonce) tells one request from the next. It stays: the same value again
/// asks for nothing.
pub const RESTART_REQUESTED: &str = "valkey.logbook.dev/restart-requested";
/// Pod template annotation: the last restart request carried out (the
/// value of [`RESTART_REQUESTED`]). A new value is a new template
/// revision, so the usual roll replaces every pod once.
pub const RESTARTED_AT: &str = "valkey.logbook.dev/restarted-at";
/// Annotation on the ValkeyCluster: `"true"` asks the finalizer to delete the
/// data PVCs when the cluster is deleted (they are kept otherwise).
pub const DELETE_PVCS: &str = "valkey.logbook.dev/delete-pvcs-on-delete";

/// Whether `meta` carries the ownership annotation naming `cluster`.
pub fn owned_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    cluster: &str,
) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(OWNED_BY))
        .is_some_and(|v| v == cluster)
}

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
    to_selector_string(&selector(cluster))
}

/// The labels every Sentinel object of `cluster` carries and the Sentinel
/// StatefulSet, Services and PDB select on: [`NAME`]
/// ([`SENTINEL_NAME_VALUE`]), [`INSTANCE`], [`CLUSTER`] and [`COMPONENT`]
/// ([`COMPONENT_SENTINEL`]). It and the data [`selector`] match disjoint
/// pods: they differ in [`NAME`], and this one also asks for [`COMPONENT`].
pub fn sentinel_selector(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), SENTINEL_NAME_VALUE.to_owned()),
        (INSTANCE.to_owned(), cluster.to_owned()),
        (CLUSTER.to_owned(), cluster.to_owned()),
        (COMPONENT.to_owned(), COMPONENT_SENTINEL.to_owned()),
    ])
}

/// The [`sentinel_selector`] as a label selector string for list calls.
pub fn sentinel_selector_string(cluster: &str) -> String {
    to_selector_string(&sentinel_selector(cluster))
}

/// The labels of every Sentinel object of `cluster`: as [`common`], with
/// the [`sentinel_selector`] labels in place of the data ones.
pub fn sentinel_common(cluster: &str, spec: &ValkeyClusterSpec) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone();
    labels.extend(sentinel_selector(cluster));
    labels.insert(MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
    labels
}

fn to_selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
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

    /// Whether `selector` (match labels) selects a pod labelled `labels`.
    fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
        selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    #[test]
    fn sentinel_and_data_selectors_match_disjoint_pods() {
        let spec = ValkeyClusterSpec::default();
        let data_pod = common("cache", &spec);
        let sentinel_pod = sentinel_common("cache", &spec);
        assert!(selects(&selector("cache"), &data_pod));
        assert!(selects(&sentinel_selector("cache"), &sentinel_pod));
        assert!(!selects(&selector("cache"), &sentinel_pod));
        assert!(!selects(&sentinel_selector("cache"), &data_pod));
        // A data pod that somehow carried the component label is still
        // not a Sentinel: the names differ.
        let mut odd = data_pod.clone();
        odd.insert(COMPONENT.into(), COMPONENT_SENTINEL.into());
        assert!(!selects(&sentinel_selector("cache"), &odd));
        // Nor does another cluster's Sentinel match.
        assert!(!selects(&sentinel_selector("other"), &sentinel_pod));
    }

    #[test]
    fn sentinel_labels_keep_ours_over_the_specs() {
        let mut spec = ValkeyClusterSpec::default();
        spec.labels.insert("team".into(), "payments".into());
        spec.labels.insert(COMPONENT.into(), "evil".into());
        spec.labels.insert(NAME.into(), "valkey".into());
        let l = sentinel_common("cache", &spec);
        assert_eq!(l["team"], "payments");
        assert_eq!(l[COMPONENT], "sentinel");
        assert_eq!(l[NAME], "valkey-sentinel");
        assert_eq!(l[MANAGED_BY], "logbook");
        assert!(!l.contains_key(ROLE));
        assert_eq!(
            sentinel_selector_string("cache"),
            "app.kubernetes.io/component=sentinel,app.kubernetes.io/instance=cache,app.kubernetes.io/name=valkey-sentinel,valkey.logbook.dev/cluster=cache"
        );
    }

    #[test]
    fn selector_string_is_sorted_pairs() {
        assert_eq!(
            selector_string("cache"),
            "app.kubernetes.io/instance=cache,app.kubernetes.io/name=valkey,valkey.logbook.dev/cluster=cache"
        );
    }
}
