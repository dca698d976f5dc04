//! Rolling change: pods whose revision differs from the StatefulSet's
//! update revision are deleted one at a time (the StatefulSet uses
//! `OnDelete`), replicas first (highest ordinal first), each only when
//! every pod is back, ready and in sync; the primary hands over to an
//! updated in-sync replica before it is rolled. Never two pods down at
//! once, never the primary without a completed switchover.

use logbook_crds::Topology;
use logbook_journal::{Intent, Reachability, ReasonCode};

use super::roles::after_new_primary;
use crate::decide::Decision;
use crate::decide::view::{ClusterView, PodState, Roll, best, describe};

/// With pods down: `Some` of the roll of one that is down on an outdated
/// revision (a crash loop after a change that has been set right since)
/// when every pod down is such a pod and none is the primary (deleting
/// it takes nothing further down, and waiting for it to come back on the
/// revision it fails on would wait for ever), else `Some` of nothing (the
/// roll waits: a pod only slow to answer, or a canary not passed yet).
/// `None` when no pod is down. Shared by the Replication and Sentinel
/// rolls.
pub(crate) fn roll_down_outdated(
    view: &ClusterView<'_>,
    pods: &[PodState<'_>],
    outdated: &[PodState<'_>],
    revision: &str,
) -> Option<Vec<Decision>> {
    let primary = view.healthy_primary();
    // An outdated replica that cannot follow the primary (a downgrade
    // whose full copy the primary cannot send, set back since) is down as
    // far as the roll goes: it holds no redundancy to keep.
    let out_of_sync = |p: &PodState<'_>| {
        outdated.iter().any(|o| o.name == p.name)
            && primary
                .as_ref()
                .is_some_and(|pr| pr.name != p.name && !p.in_sync_with(pr.name))
    };
    let down: Vec<&PodState<'_>> = pods
        .iter()
        .filter(|p| !(p.view.ready && p.usable()) || out_of_sync(p))
        .collect();
    if down.is_empty() {
        return None;
    }
    // A pod still ready whose last probe only timed out may be slow (a
    // loaded node), not down: deleting it could delete an in-sync copy.
    // And no pod is put on an image under trial before its canary
    // passed: one down on the old image waits for it too (a failed
    // canary holds the roll until the image is set back, and then the
    // canary is the pod outdated and down).
    let unsure = down.iter().any(|p| {
        p.view.ready && p.view.reachability == Some(Reachability::TimedOut) && !out_of_sync(p)
    });
    if unsure || crate::decide::upgrade::canary_hold(view, pods, outdated).is_some() {
        return Some(Vec::new());
    }
    let standalone = view.topology() == Topology::Standalone;
    let only_outdated_replicas = down.iter().all(|d| {
        outdated.iter().any(|o| o.name == d.name)
            && primary.as_ref().is_none_or(|p| p.name != d.name)
    });
    if !only_outdated_replicas || (primary.is_none() && !standalone) {
        return Some(Vec::new());
    }
    Some(
        down.iter()
            .rev()
            .find(|p| !p.view.terminating)
            .map_or_else(Vec::new, |p| {
                vec![Decision::new(
                    Intent::RollPod {
                        pod: p.name.to_owned(),
                        revision: revision.to_owned(),
                    },
                    ReasonCode::RevisionOutdated,
                    format!(
                        "{} is down on an outdated revision ({} of {} pods outdated): rolling it takes nothing further down",
                        p.name,
                        outdated.len(),
                        pods.len()
                    ),
                )]
            }),
    )
}

/// Rolls the next outdated pod, if the cluster is whole and in sync.
pub fn decide_rolling(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(Roll {
        revision,
        replicas,
        pods,
        outdated,
    }) = view.roll()
    else {
        return Vec::new();
    };
    let roll = |pod: &str, detail: String| {
        vec![Decision::new(
            Intent::RollPod {
                pod: pod.to_owned(),
                revision: revision.clone(),
            },
            ReasonCode::RevisionOutdated,
            detail,
        )]
    };
    let all_there = u32::try_from(pods.len()).unwrap_or(u32::MAX) == replicas;
    if !all_there {
        return Vec::new();
    }
    if let Some(down) = roll_down_outdated(view, &pods, &outdated, &revision) {
        return down;
    }
    // A change of version goes on past its canary once it passed.
    if crate::decide::upgrade::canary_hold(view, &pods, &outdated).is_some() {
        return Vec::new();
    }
    if view.topology() == Topology::Standalone {
        return outdated.first().map_or_else(Vec::new, |p| {
            roll(p.name, format!("{} runs an outdated revision", p.name))
        });
    }
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    let in_sync = pods
        .iter()
        .filter(|p| p.name != primary.name)
        .all(|p| p.in_sync_with(primary.name));
    if !in_sync {
        return Vec::new();
    }
    if let Some(replica) = outdated.iter().rev().find(|p| p.name != primary.name) {
        return roll(
            replica.name,
            format!(
                "{} runs an outdated revision ({} of {} pods outdated)",
                replica.name,
                outdated.len(),
                pods.len()
            ),
        );
    }
    // Only the primary is outdated: hand over to an updated replica.
    let candidates = view.rank_candidates(Some(primary.name), true);
    let Some(target) = best(&candidates) else {
        return Vec::new();
    };
    let detail = format!(
        "primary {} runs an outdated revision; handing over to {} before rolling it; candidates: {}",
        primary.name,
        target.pod,
        describe(&candidates)
    );
    let mut out = vec![Decision::new(
        Intent::Switchover {
            from: primary.name.to_owned(),
            to: target.pod.clone(),
        },
        ReasonCode::PrimaryOutdated,
        detail.clone(),
    )];
    out.extend(after_new_primary(
        view,
        &target.pod,
        &ReasonCode::PrimaryOutdated,
        &detail,
    ));
    out
}
