//! Scaling: growing is provisioning (new pods boot as replicas of the
//! decided primary). Shrinking removes the highest ordinals, so when the
//! primary is among them it hands over first to an in-sync replica that
//! stays; `ApplyResources` waits until then.

use logbook_journal::{Intent, ReasonCode};

use super::roles::after_new_primary;
use crate::decide::Decision;
use crate::decide::view::{ClusterView, best, describe, ordinal};

/// `Some(decisions)` when a scale-in must hand the primary over first
/// (possibly empty: waiting for a replica to be in sync); `None` when
/// provisioning may go ahead.
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
    let code = ReasonCode::ScaleIn {
        from: current,
        to: wanted,
    };
    let Some(healthy) = view.healthy_primary() else {
        // The primary is not answering: failover handles it first.
        return Some(Vec::new());
    };
    let candidates = view.rank_candidates(Some(healthy.name), true);
    let Some(target) = best(&candidates) else {
        return Some(Vec::new());
    };
    let detail = format!(
        "scaling {current} -> {wanted} pods removes primary {primary}; handing over to {} first; candidates: {}",
        target.pod,
        describe(&candidates)
    );
    let mut out = vec![Decision::new(
        Intent::Switchover {
            from: primary.to_owned(),
            to: target.pod.clone(),
        },
        code.clone(),
        detail.clone(),
    )];
    out.extend(after_new_primary(view, &target.pod, &code, &detail));
    Some(out)
}
