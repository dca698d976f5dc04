//! Binding: the ownership annotation on the data StatefulSet says whether
//! the operator manages the cluster. Its user removes it to take the
//! cluster over (unbound): the other objects are released (their
//! annotations removed) and nothing else is decided. Put back, the cluster
//! is bound again and taken over as it now is: a primary its user chose
//! while it was unbound is adopted, not undone, and the objects are
//! applied again with their annotations (`provisioning.rs`), which changes
//! nothing else in them.

use logbook_crds::Topology;
use logbook_journal::projection::BindingView;
use logbook_journal::{Intent, ReasonCode, Role};

use super::Decision;
use super::replication::after_new_primary;
use super::view::ClusterView;

/// Releases an unbound cluster's objects.
pub fn release(binding: &BindingView) -> Decision {
    Decision::new(
        Intent::ReleaseObjects,
        ReasonCode::Unbound {
            by: binding.by.clone(),
        },
        format!(
            "the ownership annotation was removed from the StatefulSet{}: the cluster is unbound, \
             its pods and data are left as they are",
            binding
                .by
                .as_ref()
                .map_or_else(String::new, |by| format!(" by {by}"))
        ),
    )
}

/// A cluster bound again whose one observed primary is not the one the
/// journal decided (its user failed it over while it was unbound): that
/// primary becomes the decided one, with the labels, boot config and
/// replicas following it. Nothing is fenced: no pod is believed dead.
/// Standalone and Replication only: a Cluster's and the Sentinels' roles
/// are theirs to decide, and observed as they are.
pub fn adopt(view: &ClusterView<'_>) -> Option<Vec<Decision>> {
    if !view.state.binding.as_ref().is_some_and(|b| b.rebound) {
        return None;
    }
    if !matches!(
        view.topology(),
        Topology::Standalone | Topology::Replication
    ) {
        return None;
    }
    let primaries: Vec<&str> = view
        .pods()
        .into_iter()
        .filter(|p| p.usable_as(Role::Primary))
        .map(|p| p.name)
        .collect();
    let [observed] = primaries.as_slice() else {
        return None;
    };
    let decided = view.primary();
    if decided == Some(*observed) {
        return None;
    }
    let detail = format!(
        "bound again with {observed} primary (the journal had {}): adopted as it is",
        decided.unwrap_or("none")
    );
    let mut out = vec![Decision::new(
        Intent::PromoteReplica {
            pod: (*observed).to_owned(),
            from: decided.map(str::to_owned),
        },
        ReasonCode::Rebound,
        detail.clone(),
    )];
    out.extend(after_new_primary(
        view,
        observed,
        &ReasonCode::Rebound,
        &detail,
    ));
    Some(out)
}
