//! The PodDisruptionBudget over the data pods, when the spec asks for one.
//!
//! One budget over every data pod of the cluster. For topology Cluster the
//! spec promises a budget per shard; that needs per-shard labels on pods,
//! which the Cluster bootstrap will add together with per-shard budgets.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logbook_crds::ValkeyClusterSpec;

use super::{ClusterMeta, labels, pdb_name};

/// The PodDisruptionBudget `<name>` with `maxUnavailable` from the spec;
/// `None` when `spec.podDisruptionBudget.enabled` is false.
pub fn build_pdb(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Option<PodDisruptionBudget> {
    let budget = &spec.pod_disruption_budget;
    if !budget.enabled {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: meta.object_meta(pdb_name(&meta.name), spec),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(budget.max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&meta.name)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::test_support::meta;
    use super::*;

    #[test]
    fn pdb_follows_the_spec() {
        let mut spec = ValkeyClusterSpec::default();
        spec.pod_disruption_budget.max_unavailable = 2;
        let pdb = build_pdb(&meta(), &spec).unwrap();
        assert_eq!(pdb.metadata.name.as_deref(), Some("cache"));
        let s = pdb.spec.unwrap();
        assert_eq!(s.max_unavailable, Some(IntOrString::Int(2)));
        assert_eq!(s.min_available, None);
        assert_eq!(
            s.selector.unwrap().match_labels.unwrap(),
            labels::selector("cache")
        );
        spec.pod_disruption_budget.enabled = false;
        assert!(build_pdb(&meta(), &spec).is_none());
    }
}
