//! Operator-driven failover on request (`valkey.logbook.dev/failover-requested`,
//! which `kubectl valkey failover` sets): promote the replica holding the
//! most of the primary's history even though the primary may be healthy,
//! then clear the request.
//!
//! Unlike a switchover it waits for no in-sync replica and holds no writes:
//! writes the old primary acknowledged but had not replicated yet are lost,
//! which is why the plugin asks for confirmation. To lose as little as
//! possible, a primary that still answers is fenced first, alone — the
//! fence records every replica's offset once the primary has stopped
//! taking writes — and the promotion is chosen on those offsets, as for a
//! primary being deleted (`failover.rs`). A primary that does not answer
//! is fenced and replaced in one decision, as an automatic failover does
//! (after its isolated-primary fence, when one is set and it is not dead).
//!
//! A request is served once: a promotion journaled after it (this one, or
//! an automatic failover meanwhile) serves it, and only its clearing is
//! left. One that cannot be served (no eligible replica, a topology the
//! operator does not fail over, no primary ever chosen) is cleared with the
//! reason, which the journal keeps.

use logbook_crds::Topology;
use logbook_journal::projection::FailoverRequestView;
use logbook_journal::{Intent, ReasonCode, Role};

use super::failover::process_dead;
use super::roles::{after_new_primary, replace_primary};
use crate::decide::view::{ClusterView, best, describe};
use crate::decide::{Decision, fence};

/// Serves a standing failover request.
pub fn decide_requested_failover(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(request) = view.state.failover_request.as_ref() else {
        return Vec::new();
    };
    let asked = asked(request);
    match view.topology() {
        Topology::Replication | Topology::Sentinel => {}
        Topology::Standalone => {
            return clear(format!(
                "{asked}: refused: a Standalone cluster has no replica to promote"
            ));
        }
        Topology::Cluster => {
            return clear(format!(
                "{asked}: refused: a Cluster's shards fail over by Valkey's own election, not by the operator"
            ));
        }
    }
    if let Some(served) = view
        .state
        .last_failover
        .as_ref()
        .filter(|f| f.seq > request.seq)
    {
        return clear(format!(
            "{asked}: served by the promotion of {} at seq {}",
            served.to, served.seq
        ));
    }
    match view.primary() {
        Some(primary) => replace(view, primary, &asked),
        None => after_fence(view, &asked),
    }
}

/// How the request is named in reasons.
fn asked(request: &FailoverRequestView) -> String {
    if request.request.is_empty() {
        "failover requested".to_owned()
    } else {
        format!("failover requested ({})", request.request)
    }
}

fn clear(detail: String) -> Vec<Decision> {
    vec![Decision::new(
        Intent::ClearFailoverRequest,
        ReasonCode::Requested,
        detail,
    )]
}

/// The believed primary is still believed: fence it alone when it answers
/// (the promotion follows on fresh offsets), or fence and replace it at
/// once when it does not.
fn replace(view: &ClusterView<'_>, primary: &str, asked: &str) -> Vec<Decision> {
    let candidates = view.rank_candidates(Some(primary), false);
    let Some(chosen) = best(&candidates) else {
        return clear(format!(
            "{asked}: refused: no replica of {primary} can be promoted (none running, answering and kept by the spec); candidates: {}",
            or_none(&describe(&candidates))
        ));
    };
    let answering = view
        .pod(primary)
        .is_some_and(|p| p.usable_as(Role::Primary));
    if answering {
        return vec![Decision::new(
            Intent::FenceNode {
                pod: primary.to_owned(),
            },
            ReasonCode::Requested,
            format!(
                "{asked}: fencing primary {primary} first, so no write lands after the replicas' offsets are read; then the replica with the most of its history is promoted; candidates so far: {}",
                describe(&candidates)
            ),
        )];
    }
    // One that does not answer may be serving clients on the far side of
    // a partition: with the fence on, it is replaced only once it
    // certainly refuses writes, as by an automatic failover.
    let dead = view.pod(primary).is_none_or(|p| process_dead(p.view));
    let fence = if dead {
        None
    } else {
        fence::fence_of(view, primary)
    };
    if fence.is_some_and(|f| view.state.last_at < f.fenced_by) {
        return Vec::new();
    }
    let waited = fence.map_or_else(String::new, |f| {
        format!("; waited for its fence: {}", f.describe(primary))
    });
    let chosen = chosen.pod.clone();
    let detail = format!(
        "{asked}: primary {primary} does not answer{waited}; promoting {chosen} (highest offset on its history); candidates: {}",
        describe(&candidates)
    );
    let mut out = replace_primary(view, primary, &chosen, &ReasonCode::Requested, &detail);
    out.push(Decision::new(
        Intent::ClearFailoverRequest,
        ReasonCode::Requested,
        detail,
    ));
    out
}

/// No primary is believed: the request's fence has run (or the primary
/// was lost meanwhile). The primary last decided is replaced by the
/// replica with the most of its history, on the offsets the fence read.
fn after_fence(view: &ClusterView<'_>, asked: &str) -> Vec<Decision> {
    let Some(old) = view
        .state
        .replication
        .boot_primary
        .as_ref()
        .and_then(|(pod, _)| pod.as_deref())
    else {
        return clear(format!(
            "{asked}: refused: no primary has been chosen yet, so there is none to fail over from"
        ));
    };
    let candidates = view.rank_candidates(Some(old), false);
    if let Some(chosen) = best(&candidates) {
        let chosen = chosen.pod.clone();
        let detail = format!(
            "{asked}: {old} is fenced; promoting {chosen} (highest offset on its history); candidates: {}",
            describe(&candidates)
        );
        return promote(view, &chosen, Some(old), &detail);
    }
    // A replica was lost between the fence and now: rather than leave the
    // cluster without a primary (bootstrap does not replace a lost primary
    // when automatic failover is off), the fenced primary is restored.
    let detail = format!(
        "{asked}: refused after fencing {old}: no replica can be promoted now; candidates: {}",
        or_none(&describe(&candidates))
    );
    match view.pod(old).filter(|p| p.usable()) {
        Some(_) => promote(view, old, None, &format!("{detail}; {old} is restored")),
        None => clear(detail),
    }
}

/// Promote `chosen` (replacing `from`), move labels, boot config and the
/// other replicas to it, then clear the request.
fn promote(
    view: &ClusterView<'_>,
    chosen: &str,
    from: Option<&str>,
    detail: &str,
) -> Vec<Decision> {
    let mut out = vec![Decision::new(
        Intent::PromoteReplica {
            pod: chosen.to_owned(),
            from: from.map(str::to_owned),
        },
        ReasonCode::Requested,
        detail,
    )];
    out.extend(after_new_primary(
        view,
        chosen,
        &ReasonCode::Requested,
        detail,
    ));
    out.push(Decision::new(
        Intent::ClearFailoverRequest,
        ReasonCode::Requested,
        detail,
    ));
    out
}

fn or_none(described: &str) -> &str {
    if described.is_empty() {
        "none"
    } else {
        described
    }
}
