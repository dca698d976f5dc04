//! Scaling: a scale-in that removes the primary's pod asks Sentinel to
//! hand the primary over first; the objects are applied once it is not
//! among the pods removed.

use logbook_journal::ReasonCode;

use super::handover::ask_sentinel;
use crate::decide::Decision;
use crate::decide::view::{ClusterView, ordinal};

/// `Some` (possibly empty: waiting) while a scale-in must first move the
/// primary; `None` to provision as usual.
pub fn decide_scaling(view: &ClusterView<'_>) -> Option<Vec<Decision>> {
    if view.state.applied_generation == Some(view.generation) {
        return None;
    }
    let current = view.state.statefulset.as_ref()?.replicas;
    let wanted = view.desired_pods();
    let primary = view.primary()?;
    if wanted >= current || ordinal(primary) < wanted {
        return None;
    }
    Some(ask_sentinel(
        view,
        None,
        ReasonCode::ScaleIn {
            from: current,
            to: wanted,
        },
        &format!("scaling {current} -> {wanted} pods removes primary {primary}"),
    ))
}
