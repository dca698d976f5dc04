//! Placement (`spec.placement: Preferred`): after a failover, the primary
//! role moves back to its preferred pod once that pod is back — ready,
//! answering, in sync — and both the last failover and its return are at
//! least [`FAIL_BACK_AFTER_SECONDS`] old (a pod that keeps failing is not
//! handed the role back every time it answers). A Replication's preferred
//! pod is its first (`<name>-0`, where bootstrap puts the primary); a
//! Cluster shard's is the pod of the lowest ordinal among its members
//! below `shards` (where slots are first assigned, and which the default
//! anti-affinity spreads over nodes, so that primaries sit on distinct
//! nodes again). Moves are planned hand-overs — a switchover, a
//! coordinated `CLUSTER FAILOVER` — one at a time, with the reason
//! `FailBack`, only while nothing else is under way.
//!
//! A rebalance request (`kubectl valkey rebalance`, the annotation
//! `valkey.logbook.dev/rebalance-requested`) asks for the same moves now,
//! whatever the placement policy and with no hold-down, with the reason
//! `Rebalance`; once no primary can move back (all are on their preferred
//! pods, or those that are not cannot take the role now: the reason says
//! which, and why), `ClearRebalanceRequest` removes it.

use logbook_crds::v1alpha1::FAIL_BACK_AFTER_SECONDS;
use logbook_crds::{Placement, Topology};
use logbook_journal::{ClusterFailoverMode, Intent, LinkStatus, ReasonCode, Role, Timestamp};

use super::Decision;
use super::view::{ClusterView, PodState, ordinal};

/// The hold-down, in microseconds.
const HOLD_US: i64 = FAIL_BACK_AFTER_SECONDS * 1_000_000;

fn preferred(view: &ClusterView<'_>) -> bool {
    view.spec.placement == Some(Placement::Preferred)
}

/// Whether a rebalance is requested.
fn requested(view: &ClusterView<'_>) -> bool {
    view.state.rebalance_request.is_some()
}

/// The reason of a move back to `pod`: a rebalance requested, or the
/// placement policy.
fn move_code(view: &ClusterView<'_>, pod: &str) -> ReasonCode {
    if requested(view) {
        ReasonCode::Rebalance {
            pod: pod.to_owned(),
        }
    } else {
        ReasonCode::FailBack {
            pod: pod.to_owned(),
        }
    }
}

/// The rebalance request served as far as it can be: removed, saying why
/// nothing more moves.
fn clear(why: String) -> Vec<Decision> {
    vec![Decision::new(
        Intent::ClearRebalanceRequest,
        ReasonCode::Requested,
        format!("rebalance: {why}"),
    )]
}

/// Topologies whose primary the operator does not place: a rebalance
/// request is removed, saying so.
pub(super) fn decide_unplaced_rebalance(view: &ClusterView<'_>) -> Vec<Decision> {
    if !requested(view) {
        return Vec::new();
    }
    match view.topology() {
        Topology::Standalone => clear("a Standalone cluster has one pod: nothing to move".to_owned()),
        Topology::Sentinel => clear(
            "Sentinel chooses where the primary goes: ask for a switchover (kubectl valkey switchover) instead".to_owned(),
        ),
        Topology::Replication | Topology::Cluster => Vec::new(),
    }
}

/// Nothing else under way that a hand-over would disturb: no operation
/// a hibernation would wait for either (a roll, a reshard, a backup or
/// restore, a requested switchover or failover), no hibernation, and the
/// spec's objects applied.
fn quiet(view: &ClusterView<'_>) -> bool {
    super::hibernation::busy(view).is_none()
        && view.state.hibernation.is_none()
        && view.state.applied_generation == Some(view.generation)
}

/// When `pod` may take the role back: the hold-down after the last
/// failover and after its current process began (its server first
/// answered, or its container was last restarted in place: a preferred
/// pod that crash-loops is not handed the role each time it answers).
fn ready_at(view: &ClusterView<'_>, pod: &str) -> Option<Timestamp> {
    let back = view.state.process_since(pod)?;
    let failed_over = view.state.last_failover.as_ref().map_or(back, |f| f.at);
    Some(Timestamp(back.0.max(failed_over.0).saturating_add(HOLD_US)))
}

/// Whether `pod`'s Kubernetes node is known not ready.
fn node_down(view: &ClusterView<'_>, pod: &PodState<'_>) -> bool {
    pod.view
        .node
        .as_ref()
        .and_then(|n| view.state.kube_nodes.get(n))
        .is_some_and(|ready| !ready)
}

/// A Replication's fail-back: `Some((preferred pod, primary))` when the
/// role should move back now, or the moment it may (`Err`).
fn replication_target<'a>(
    view: &ClusterView<'a>,
    hold: bool,
) -> Option<Result<(PodState<'a>, PodState<'a>), Timestamp>> {
    let primary = view.healthy_primary()?;
    let want = view.pods().into_iter().find(|p| ordinal(p.name) == 0)?;
    if want.name == primary.name
        || !want.view.ready
        || !want.in_sync_with(primary.name)
        || node_down(view, &want)
        || view.pods().iter().any(|p| !p.view.ready)
    {
        return None;
    }
    if !hold {
        return Some(Ok((want, primary)));
    }
    let at = ready_at(view, want.name)?;
    Some(if view.state.last_at < at {
        Err(at)
    } else {
        Ok((want, primary))
    })
}

/// Why a Replication's primary cannot move back to `<name>-0` now.
fn replication_stays(view: &ClusterView<'_>) -> String {
    let Some(primary) = view.healthy_primary() else {
        return "no healthy primary to move".to_owned();
    };
    let Some(want) = view.pods().into_iter().find(|p| ordinal(p.name) == 0) else {
        return "no pod of ordinal 0".to_owned();
    };
    if want.name == primary.name {
        return format!("the primary is on its preferred pod {}", want.name);
    }
    let not_ready: Vec<&str> = view
        .pods()
        .iter()
        .filter(|p| !p.view.ready)
        .map(|p| p.name)
        .collect();
    if !not_ready.is_empty() {
        return format!(
            "{} cannot take the role now: {} not ready; ask again once it is",
            want.name,
            not_ready.join(", ")
        );
    }
    format!(
        "{} cannot take the role now (not in sync with {}, or its node not ready); ask again once it is",
        want.name, primary.name
    )
}

/// Replication: the switchover back to `<name>-0`.
pub(super) fn decide_replication_fail_back(view: &ClusterView<'_>) -> Vec<Decision> {
    if view.topology() != Topology::Replication {
        return decide_unplaced_rebalance(view);
    }
    let asked = requested(view);
    if !(preferred(view) || asked) || !quiet(view) {
        return Vec::new();
    }
    let Some(Ok((want, primary))) = replication_target(view, !asked) else {
        return if asked {
            clear(replication_stays(view))
        } else {
            Vec::new()
        };
    };
    let code = move_code(view, want.name);
    let detail = if asked {
        format!(
            "rebalance requested: {} is in sync; the primary role moves back to it from {}",
            want.name, primary.name
        )
    } else {
        format!(
            "placement Preferred: {} is back and in sync (the last failover {} s ago or more); the primary role moves back from {}",
            want.name, FAIL_BACK_AFTER_SECONDS, primary.name
        )
    };
    let mut out = vec![Decision::new(
        Intent::Switchover {
            from: primary.name.to_owned(),
            to: want.name.to_owned(),
        },
        code.clone(),
        detail.clone(),
    )];
    out.extend(super::replication::after_new_primary(
        view, want.name, &code, &detail,
    ));
    out
}

/// A Cluster's next fail-back: the shard whose primary is not its
/// preferred pod, and that pod, a replica of it, back and in sync.
fn cluster_target<'a>(
    view: &ClusterView<'a>,
    hold: bool,
) -> Option<Result<(String, PodState<'a>), Timestamp>> {
    let shards = view.state.cluster.shards();
    let wanted = u32::try_from(view.spec.effective_shards()).unwrap_or(0);
    let mut earliest: Option<Timestamp> = None;
    for shard in &shards {
        if ordinal(shard.primary) < wanted {
            continue;
        }
        let Some(want) = shard
            .replicas
            .iter()
            .filter(|r| ordinal(r) < wanted)
            .filter_map(|r| view.pod(r))
            .min_by_key(|p| ordinal(p.name))
        else {
            continue;
        };
        let in_sync = want.view.ready
            && want.usable_as(Role::Replica)
            && want.view.link == Some(LinkStatus::Up)
            && !node_down(view, &want);
        if !in_sync {
            continue;
        }
        if !hold {
            return Some(Ok((shard.primary.to_owned(), want)));
        }
        let Some(at) = ready_at(view, want.name) else {
            continue;
        };
        if view.state.last_at < at {
            earliest = Some(earliest.map_or(at, |e| Timestamp(e.0.min(at.0))));
            continue;
        }
        return Some(Ok((shard.primary.to_owned(), want)));
    }
    earliest.map(Err)
}

/// Cluster: a coordinated failover of one shard back to its preferred pod.
pub(super) fn decide_cluster_fail_back(view: &ClusterView<'_>) -> Vec<Decision> {
    let asked = requested(view);
    if !(preferred(view) || asked) || view.topology() != Topology::Cluster || !quiet(view) {
        return Vec::new();
    }
    let whole = view.pods().iter().all(|p| p.view.ready && p.usable())
        && view.state.cluster.unassigned() == 0;
    if !whole {
        return if asked {
            clear("not every pod is ready, or a slot has no owner: ask again once the cluster is whole".to_owned())
        } else {
            Vec::new()
        };
    }
    let Some(Ok((primary, want))) = cluster_target(view, !asked) else {
        return if asked {
            clear(cluster_stays(view))
        } else {
            Vec::new()
        };
    };
    let why = if asked {
        "rebalance requested"
    } else {
        "placement Preferred"
    };
    vec![Decision::new(
        Intent::ClusterFailover {
            pod: want.name.to_owned(),
            from: Some(primary.clone()),
            mode: ClusterFailoverMode::Coordinated,
        },
        move_code(view, want.name),
        format!(
            "{why}: {} is back and in sync as a replica of {primary}; its shard moves back to it by a coordinated failover",
            want.name
        ),
    )]
}

/// Why no shard of a Cluster moves back now: every primary on its
/// preferred pod, or those that are not, with no replica of them able to
/// take the role.
fn cluster_stays(view: &ClusterView<'_>) -> String {
    let wanted = u32::try_from(view.spec.effective_shards()).unwrap_or(0);
    let away: Vec<String> = view
        .state
        .cluster
        .shards()
        .iter()
        .filter(|s| ordinal(s.primary) >= wanted)
        .map(|s| s.primary.to_owned())
        .collect();
    if away.is_empty() {
        "every shard's primary is on its preferred pod".to_owned()
    } else {
        format!(
            "the shards of {} have no preferred replica in sync to move back to; ask again once they have",
            away.join(", ")
        )
    }
}

/// When a fail-back waiting for its hold-down may be decided.
pub(super) fn fail_back_deadline(view: &ClusterView<'_>) -> Option<Timestamp> {
    if !preferred(view) {
        return None;
    }
    match view.topology() {
        Topology::Replication => replication_target(view, true)?.err(),
        Topology::Cluster => cluster_target(view, true)?.err(),
        Topology::Standalone | Topology::Sentinel => None,
    }
}
