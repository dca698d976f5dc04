//! Planned switchover on request (`valkey.logbook.dev/switchover-to` set
//! to a pod or `auto`): hand the primary role to an in-sync replica with
//! no acknowledged write lost, then clear the request. A request that
//! cannot be served (unknown pod, the primary itself) is cleared with the
//! reason; one whose target is catching up waits.

use logbook_journal::{Intent, ReasonCode};

use super::roles::after_new_primary;
use crate::decide::Decision;
use crate::decide::view::{ClusterView, best, describe};

/// The word that lets the operator choose the target.
pub const AUTO: &str = "auto";

/// Serves a standing switchover request.
pub fn decide_switchover(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(request) = view.state.switchover_request.as_deref() else {
        return Vec::new();
    };
    let clear = |detail: String| {
        vec![Decision::new(
            Intent::ClearSwitchoverRequest,
            ReasonCode::Requested,
            detail,
        )]
    };
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    if request == primary.name {
        return clear(format!("{request} is already the primary"));
    }
    let candidates = view.rank_candidates(Some(primary.name), true);
    let target = if request == AUTO {
        match best(&candidates) {
            Some(c) => c.pod.clone(),
            None => return Vec::new(),
        }
    } else {
        match candidates.iter().find(|c| c.pod == request) {
            None => return clear(format!("{request} is not a data pod of this cluster")),
            Some(c) if !c.eligible => return Vec::new(),
            Some(c) => c.pod.clone(),
        }
    };
    let detail = format!(
        "switchover from {} to {target} requested ({request}); candidates: {}",
        primary.name,
        describe(&candidates)
    );
    let mut out = vec![Decision::new(
        Intent::Switchover {
            from: primary.name.to_owned(),
            to: target.clone(),
        },
        ReasonCode::Requested,
        detail.clone(),
    )];
    out.extend(after_new_primary(
        view,
        &target,
        &ReasonCode::Requested,
        &detail,
    ));
    out.push(Decision::new(
        Intent::ClearSwitchoverRequest,
        ReasonCode::Requested,
        detail,
    ));
    out
}
