//! Hand-overs: a requested switchover or failover, a roll, a scale-in
//! that removes the primary. The operator never promotes here: it asks
//! the Sentinels (`SENTINEL FAILOVER … COORDINATED`, so the primary
//! pauses writes until the chosen replica has caught up) and waits until
//! they confirm; the switch itself is journaled from what they report.
//!
//! A hand-over needs a quorum of Sentinels that agree on the primary:
//! without it Sentinel could start the failover and not finish it, so
//! the hand-over waits and the status says why.

use logbook_journal::{Intent, PodPhase, ReasonCode, Role};

use super::view::{answering_sentinels, discovered, quiet, quorum_reachable};
use crate::decide::Decision;
use crate::decide::replication::{SWITCHOVER_AUTO, process_dead};
use crate::decide::view::{ClusterView, Roll, best, describe};

/// `SentinelFailover` from the healthy primary, if the Sentinels can do it.
pub fn ask_sentinel(
    view: &ClusterView<'_>,
    to: Option<&str>,
    code: ReasonCode,
    why: &str,
) -> Vec<Decision> {
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    if !quiet(view) || !quorum_reachable(view) || !discovered(view) {
        return Vec::new();
    }
    let candidates = view.rank_candidates(Some(primary.name), true);
    if best(&candidates).is_none() {
        return Vec::new();
    }
    vec![Decision::new(
        Intent::SentinelFailover {
            from: primary.name.to_owned(),
            to: to.map(str::to_owned),
        },
        code,
        format!("{why}; Sentinel chooses among: {}", describe(&candidates)),
    )]
}

/// The believed primary answers as a replica of nobody: its process
/// restarted in place and booted fenced, or the operator fenced it for its
/// pod's deletion. Sentinel would see that only
/// after `down-after-milliseconds` plus two `INFO` periods (20 s) and
/// then fail it over anyway; it is asked to now. Nothing is lost by it:
/// the fenced process takes no write and feeds no replica.
pub fn decide_fenced_primary(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.primary().and_then(|p| view.pod(p)) else {
        return Vec::new();
    };
    // Being deleted counts too: the operator fenced it for its deletion
    // ([`decide_leaving_primary`]).
    let fenced = primary.answers_as(Role::Replica) && primary.view.replicates.is_none();
    if !fenced {
        return Vec::new();
    }
    let what = if primary.view.terminating {
        "is being deleted and was fenced"
    } else {
        "restarted and booted fenced"
    };
    ask_to_fail_over(
        view,
        primary.name,
        |_| ReasonCode::PrimaryRestartedFenced,
        &format!("primary {} {what}", primary.name),
    )
}

/// The believed primary's process is dead: its port refused two probes in
/// a row (nothing listens: the process exited and was not yet restarted),
/// its pod has no address, or its pod ended. Left to the Sentinels, its
/// successor would come after `down-after-milliseconds` plus their
/// election (6 s at 5000 ms), or once the restarted process, booted
/// fenced, is seen ([`decide_fenced_primary`]); they are asked now. A
/// dead process takes no write, so nothing is lost by a forced failover:
/// the Sentinels still choose the replica and promote it.
pub fn decide_dead_primary(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.primary().and_then(|p| view.pod(p)) else {
        return Vec::new();
    };
    if !process_dead(primary.view) {
        return Vec::new();
    }
    let failures = primary.view.consecutive_failures;
    let what = if matches!(
        primary.view.phase,
        Some(PodPhase::Failed | PodPhase::Succeeded)
    ) {
        "ended".to_owned()
    } else {
        format!("refused {failures} probes in a row")
    };
    ask_to_fail_over(
        view,
        primary.name,
        |candidates| ReasonCode::PrimaryFailed {
            death: true,
            consecutive_failures: failures,
            candidates,
        },
        &format!("primary {} {what}: its process is dead", primary.name),
    )
}

/// `SentinelFailover` of `primary`, for the reason `code` makes of the
/// candidates, when the Sentinels can be asked now
/// ([`sentinels_can_fail_over`]); `why` says what became of it.
fn ask_to_fail_over(
    view: &ClusterView<'_>,
    primary: &str,
    code: impl FnOnce(Vec<logbook_journal::Candidate>) -> ReasonCode,
    why: &str,
) -> Vec<Decision> {
    let Some(candidates) = sentinels_can_fail_over(view, primary) else {
        return Vec::new();
    };
    let detail = format!(
        "{why}; asking Sentinel to fail it over rather than wait for it to notice; candidates: {}",
        describe(&candidates)
    );
    vec![Decision::new(
        Intent::SentinelFailover {
            from: primary.to_owned(),
            to: None,
        },
        code(candidates),
        detail,
    )]
}

/// The replicas that could succeed `primary` (best first), when the
/// Sentinels can be asked to fail it over now: a quorum of them answers
/// and names it, none is failing over already nor names another primary
/// (a switch the journal has not caught up with: asking again would start
/// a second failover), and one of the replicas can be promoted.
fn sentinels_can_fail_over(
    view: &ClusterView<'_>,
    primary: &str,
) -> Option<Vec<logbook_journal::Candidate>> {
    if !quorum_reachable(view) {
        return None;
    }
    let busy_or_elsewhere = answering_sentinels(view).iter().any(|(_, m)| {
        m.is_some_and(|m| {
            m.failover_state.is_some() || m.primary_pod.as_deref().is_some_and(|p| p != primary)
        })
    });
    if busy_or_elsewhere {
        return None;
    }
    let candidates = view.rank_candidates(Some(primary), false);
    best(&candidates).is_some().then_some(candidates)
}

/// The believed primary's pod is being deleted (a drain, an eviction, a
/// `kubectl delete`) and still answers as primary. Left to the Sentinels,
/// its successor would come after `down-after-milliseconds` plus their
/// election once it exits (7 s at 5000 ms), unless its replacement came
/// back fenced first. It is fenced now (`REPLICAOF` of nobody, as a
/// process restarted in place boots), so that it takes no write its
/// successor will not have, and then handed to the Sentinels as such a
/// restarted one is ([`decide_fenced_primary`]): they promote the replica
/// with the most of its history. Not asked of the Sentinels while it is
/// still primary: a forced failover would let it take writes the chosen
/// replica never gets, and a coordinated one needs a primary that may
/// already be shutting down. The operator only fences: the Sentinels still
/// choose and promote.
pub fn decide_leaving_primary(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.primary().and_then(|p| view.pod(p)) else {
        return Vec::new();
    };
    let leaving = primary.view.terminating && primary.answers_as(Role::Primary);
    if !leaving {
        return Vec::new();
    }
    let Some(candidates) = sentinels_can_fail_over(view, primary.name) else {
        return Vec::new();
    };
    vec![Decision::new(
        Intent::FenceNode {
            pod: primary.name.to_owned(),
        },
        ReasonCode::PrimaryFailed {
            death: true,
            consecutive_failures: 0,
            candidates: candidates.clone(),
        },
        format!(
            "primary {} is being deleted; fencing it, then asking Sentinel to fail it over rather than wait for it to notice; candidates: {}",
            primary.name,
            describe(&candidates)
        ),
    )]
}

/// A requested switchover (annotation) or failover, then the roll of an
/// outdated primary.
pub fn decide_handover(view: &ClusterView<'_>) -> Vec<Decision> {
    if let Some(request) = view.state.switchover_request.as_deref() {
        return switchover(view, request);
    }
    if let Some(request) = view.state.failover_request.as_ref() {
        if view
            .state
            .last_failover
            .as_ref()
            .is_some_and(|f| f.seq > request.seq)
        {
            return vec![Decision::new(
                Intent::ClearFailoverRequest,
                ReasonCode::Requested,
                "failover requested: served by Sentinel's switch",
            )];
        }
        let mut out = ask_sentinel(
            view,
            None,
            ReasonCode::Requested,
            "failover requested: asking Sentinel",
        );
        if !out.is_empty() {
            out.push(Decision::new(
                Intent::ClearFailoverRequest,
                ReasonCode::Requested,
                "failover requested: served once Sentinel confirms the switch",
            ));
        }
        return out;
    }
    roll_primary(view)
}

fn switchover(view: &ClusterView<'_>, request: &str) -> Vec<Decision> {
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
        return clear(format!("{request} is the primary"));
    }
    let to = if request == SWITCHOVER_AUTO {
        None
    } else {
        match view.pod(request) {
            None => return clear(format!("{request} is not a data pod of this cluster")),
            Some(p) if !p.in_sync_with(primary.name) => return Vec::new(),
            Some(p) => Some(p.name),
        }
    };
    let mut out = ask_sentinel(
        view,
        to,
        ReasonCode::Requested,
        &format!("switchover from {} requested ({request})", primary.name),
    );
    if !out.is_empty() {
        // After the switch is confirmed (a failed ask abandons this).
        out.push(Decision::new(
            Intent::ClearSwitchoverRequest,
            ReasonCode::Requested,
            format!("switchover ({request}) served once Sentinel confirms the switch"),
        ));
    }
    out
}

/// The primary runs an outdated revision and every replica is current:
/// Sentinel hands it over, then it is a replica and rolls.
fn roll_primary(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(Roll { outdated, pods, .. }) = view.roll() else {
        return Vec::new();
    };
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    let only_primary = outdated.iter().all(|p| p.name == primary.name);
    if outdated.is_empty() || !only_primary || !whole(view) {
        return Vec::new();
    }
    if crate::decide::upgrade::canary_hold(view, &pods, &outdated).is_some() {
        return Vec::new();
    }
    ask_sentinel(
        view,
        None,
        ReasonCode::PrimaryOutdated,
        &format!(
            "primary {} runs an outdated revision; Sentinel hands it over before it rolls",
            primary.name
        ),
    )
}

/// Every pod of the StatefulSet is there, ready, and in sync.
fn whole(view: &ClusterView<'_>) -> bool {
    let Some(roll) = view.roll() else {
        return false;
    };
    let Some(primary) = view.healthy_primary() else {
        return false;
    };
    u32::try_from(roll.pods.len()).unwrap_or(u32::MAX) == roll.replicas
        && roll.pods.iter().all(|p| p.view.ready && p.usable())
        && roll
            .pods
            .iter()
            .filter(|p| p.name != primary.name)
            .all(|p| p.in_sync_with(primary.name))
}

/// Replicas of an outdated revision, highest ordinal first, one at a time
/// while the rest are whole and the Sentinels quiet.
pub fn decide_rolling_replicas(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(Roll {
        revision,
        replicas,
        pods,
        outdated,
    }) = view.roll()
    else {
        return Vec::new();
    };
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    // A replica crash-looping on an outdated revision is rolled at once,
    // as on Replication: waiting for the cluster to be whole would wait
    // for it for ever (after an image the data could not load is set
    // back, say).
    let all_there = u32::try_from(pods.len()).unwrap_or(u32::MAX) == replicas;
    if all_there
        && quiet(view)
        && let Some(down) = crate::decide::replication::rolling::roll_down_outdated(
            view, &pods, &outdated, &revision,
        )
    {
        return down;
    }
    if !whole(view) || !quiet(view) {
        return Vec::new();
    }
    if crate::decide::upgrade::canary_hold(view, &pods, &outdated).is_some() {
        return Vec::new();
    }
    let Some(replica) = outdated
        .iter()
        .rev()
        .find(|p| p.name != primary.name && p.view.role == Some(Role::Replica))
    else {
        return Vec::new();
    };
    vec![Decision::new(
        Intent::RollPod {
            pod: replica.name.to_owned(),
            revision,
        },
        ReasonCode::RevisionOutdated,
        format!(
            "{} runs an outdated revision ({} outdated)",
            replica.name,
            outdated.len()
        ),
    )]
}
