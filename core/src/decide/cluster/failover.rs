//! Cluster failover on confirmed death. Valkey's election stays the
//! authority; the operator only starts it early, on its best replica,
//! when the primary is known dead rather than slow:
//!
//! - its pod is gone or failed, or its process refused two probes in a
//!   row: `CLUSTER FAILOVER FORCE` (no hand-shake with a dead primary;
//!   still elected by a majority of primaries);
//! - its pod came back as another node (its volume was lost): `CLUSTER
//!   FAILOVER TAKEOVER` (the node is gone for good, so no side of a
//!   partition can serve on; and its replica, restarted while it was
//!   gone, may refuse to stand in an election at all);
//! - its pod is being deleted but still answers: a coordinated `CLUSTER
//!   FAILOVER` (the primary holds writes until the replica caught up, so
//!   no acknowledged write is lost).
//!
//! - it is hung (`ClusterState::primary_hung`): its probes timed out for
//!   the span a slow command cannot reach (`failureThreshold` probes, at
//!   least 1.2 s from the first one's send) while every answering replica
//!   holds its link and hears nothing through it (silent: a ping missed,
//!   the offset still): `CLUSTER FAILOVER FORCE`, as for death, well
//!   before `cluster-node-timeout`. A restarted primary resets its
//!   replicas' links and is never taken for a hung one.
//!
//! With `fenceIsolatedPrimarySeconds` set, a hung primary's shard is
//! failed over only once that primary certainly refuses writes
//! (`decide/fence.rs`); Valkey's own election, after
//! `cluster-node-timeout`, comes later still (validation sees to it).
//!
//! A timeout alone is never death: one a replica still hears through is
//! left to Valkey's own detection (`cluster-node-timeout`). Once
//! a replica of the shard flags a dead or hung primary `fail`, Valkey's
//! election is under way and the operator does not race it (a primary
//! that restarted behind its replica is handed over whatever the flags
//! say: [`decide_behind`]); and nothing is decided
//! while an intent is in flight, so a shard never gets two failovers at
//! once.

use std::cmp::Reverse;

use logbook_journal::projection::cluster::Shard;
use logbook_journal::{
    Candidate, ClusterFailoverMode, Intent, LinkStatus, PeerHealth, PodPhase, Policy, Reachability,
    ReasonCode, Role, Timestamp,
};

use super::quorum::{decide_takeover, quorum};
use super::short;
use crate::decide::view::{ClusterView, PodState, best, describe};
use crate::decide::{DEATH_CONFIRMATIONS, Decision, fence};

/// How a shard's primary is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Answering, or only slow: nothing for the operator to do.
    Alive,
    /// Known dead: force the failover.
    Dead { failures: u32 },
    /// Its pod came back as another node (its volume lost): the node is
    /// gone for good and nothing serves its slots, while its replica may
    /// never stand in Valkey's election (restarted with its primary gone,
    /// it counts its data as too old) and waits for a full resync from
    /// the emptied node at its primary's address. Take over, no election.
    Retired,
    /// Frozen or hung past the span, its replicas hearing nothing: force
    /// the failover.
    Unreachable { failures: u32 },
    /// Being deleted but still answering: hand over, coordinated.
    Leaving,
}

fn judge(view: &ClusterView<'_>, shard: &Shard<'_>, policy: &Policy) -> (Verdict, String) {
    let name = shard.primary;
    if shard.retired {
        return (
            Verdict::Retired,
            format!(
                "{name} came back as another node: primary node {} lost its data",
                short(shard.node_id)
            ),
        );
    }
    let Some(pod) = view.pod(name) else {
        return (Verdict::Dead { failures: 0 }, format!("pod {name} is gone"));
    };
    let failures = pod.view.consecutive_failures;
    let answering = pod.view.reachability == Some(Reachability::Reachable)
        && pod.view.role == Some(Role::Primary);
    if pod.view.terminating {
        return if answering {
            (
                Verdict::Leaving,
                format!("pod {name} is being deleted and still answers"),
            )
        } else {
            (
                Verdict::Dead { failures },
                format!("pod {name} is being deleted and no longer answers"),
            )
        };
    }
    if matches!(pod.view.phase, Some(PodPhase::Failed | PodPhase::Succeeded)) {
        return (
            Verdict::Dead { failures },
            format!("pod {name} has terminated"),
        );
    }
    match pod.view.reachability {
        Some(Reachability::Refused | Reachability::NoAddress)
            if failures >= DEATH_CONFIRMATIONS =>
        {
            (
                Verdict::Dead { failures },
                format!("{name} refused {failures} probes in a row: its process is dead"),
            )
        }
        Some(Reachability::TimedOut) => match view.state.primary_hung(name, policy) {
            Ok(failures) => (
                Verdict::Unreachable { failures },
                format!(
                    "{name} left {failures} probes in a row unanswered and each of its answering replicas holds its link but hears nothing through it: frozen or hung"
                ),
            ),
            Err(_) => (Verdict::Alive, String::new()),
        },
        _ => (Verdict::Alive, String::new()),
    }
}

/// The shard's replicas ranked for taking over: eligible (answering, not
/// being deleted, still following the primary) first, then the highest
/// replication offset, then the lowest ordinal.
pub(super) fn rank(view: &ClusterView<'_>, shard: &Shard<'_>) -> Vec<Candidate> {
    rank_by(view, shard, |_| (true, true))
}

/// The shard's replicas ranked: eligible first, then the highest
/// offset, then the lowest ordinal. A replica is eligible when it is
/// usable, follows the shard's primary node and passes `check`, which
/// also says whether it holds the history wanted: `(same_history, ok)`.
fn rank_by(
    view: &ClusterView<'_>,
    shard: &Shard<'_>,
    check: impl Fn(&PodState<'_>) -> (bool, bool),
) -> Vec<Candidate> {
    let mut ranked: Vec<(Candidate, u32)> = shard
        .replicas
        .iter()
        .filter_map(|pod| view.pod(pod))
        .map(|p| {
            let follows = view
                .state
                .cluster
                .report(p.name)
                .is_some_and(|r| r.primary_id.as_deref() == Some(shard.node_id));
            let (same_history, ok) = check(&p);
            (
                Candidate {
                    pod: p.name.to_owned(),
                    offset: p.view.offset,
                    reachable: p.view.reachability == Some(Reachability::Reachable),
                    same_history,
                    eligible: p.usable() && follows && ok,
                },
                p.ordinal(),
            )
        })
        .collect();
    ranked.sort_by_key(|(c, ordinal)| {
        (
            Reverse(c.eligible),
            Reverse(c.offset.unwrap_or(0)),
            *ordinal,
        )
    });
    ranked.into_iter().map(|(c, _)| c).collect()
}

/// Whether a replica of the shard already flags its primary `fail`:
/// Valkey's own election is then under way.
fn valkey_electing(view: &ClusterView<'_>, shard: &Shard<'_>) -> bool {
    shard.replicas.iter().any(|pod| {
        view.state
            .cluster
            .report(pod)
            .and_then(|r| r.peer(shard.node_id))
            .is_some_and(|p| p.health == PeerHealth::Failed)
    })
}

/// The shard's primary answers but a replica holds more of the shard's
/// history than it does: the primary restarted in place (from what it
/// had persisted, or empty) and the replica, its link down or waiting
/// for a full resync, still has the writes the primary lost. Both offsets
/// come from the same probe round (the prober journals offsets every
/// round while a replica's link is broken). `(primary offset, ranked
/// candidates)` when so: only replicas on the history the primary had
/// are eligible, the highest offset first.
fn behind(view: &ClusterView<'_>, shard: &Shard<'_>) -> Option<(u64, Vec<Candidate>)> {
    let primary = view.pod(shard.primary)?;
    if primary.view.reachability != Some(Reachability::Reachable)
        || primary.view.role != Some(Role::Primary)
    {
        return None;
    }
    let primary_offset = primary.view.offset?;
    let reset = view
        .state
        .cluster
        .history_resets
        .get(shard.primary)
        .filter(|r| r.node_id == shard.node_id);
    // The history the replicas should hold: the one the primary had
    // before its restart, or (restored from a snapshot) the one it has.
    let history = reset.map(|r| r.previous_replid).or(primary.view.replid)?;
    let ranked = rank_by(view, shard, |p| {
        let waiting = matches!(p.view.link, Some(LinkStatus::Down | LinkStatus::Syncing));
        let same_history = p.view.replid == Some(history);
        let ahead = p.view.offset.is_some_and(|o| o > primary_offset);
        (same_history, waiting && same_history && ahead)
    });
    if !ranked.iter().any(|c| c.eligible) {
        return None;
    }
    Some((primary_offset, ranked))
}

/// `ClusterFailover` for every shard whose primary is known dead or
/// leaving, on its best replica. With the quorum lost no election can
/// win: then only a takeover, if the spec allows one ([`quorum`]).
///
/// [`quorum`]: super::quorum
pub fn decide_failover(view: &ClusterView<'_>, now: Timestamp, policy: &Policy) -> Vec<Decision> {
    if !view.spec.failover.automatic {
        return Vec::new();
    }
    let shards = view.state.cluster.shards();
    let votes = quorum(view, &shards);
    if votes.lost() {
        return decide_takeover(view, &shards, &votes, now);
    }
    let mut out = Vec::new();
    for shard in shards {
        let (verdict, why) = judge(view, &shard, policy);
        let (mode, failures, death) = match verdict {
            // Not gated on Valkey's election: a replica may still flag a
            // primary that restarted in place `fail` while no election
            // can win (the restarted primary does not vote, and the
            // others refuse once they see it answer again), and waiting
            // on it let the boot fence run out and the replica resync
            // from the emptied primary (docs/robustness.md). The primary
            // answers, so no partitioned side serves on; an election that
            // does win promotes the same best replica.
            Verdict::Alive => {
                out.extend(decide_behind(view, &shard));
                continue;
            }
            Verdict::Dead { failures } => (ClusterFailoverMode::Force, failures, true),
            // Not gated on Valkey's election either: a replica may flag the
            // lost node `fail` and still never stand (its data too old), and
            // the boot fence of the node now at that address runs out.
            Verdict::Retired => (ClusterFailoverMode::Takeover, 0, true),
            Verdict::Unreachable { failures } => (ClusterFailoverMode::Force, failures, false),
            Verdict::Leaving => (ClusterFailoverMode::Coordinated, 0, true),
        };
        if mode == ClusterFailoverMode::Force && valkey_electing(view, &shard) {
            continue;
        }
        // A hung primary may be one cut off with clients on its side:
        // with the fence on, no replica takes its slots before it
        // certainly refuses writes (`decide/fence.rs`).
        let fence = if death {
            None
        } else {
            fence::fence_of(view, shard.primary)
        };
        if fence.is_some_and(|f| now < f.fenced_by) {
            continue;
        }
        let why = match fence {
            Some(f) => format!(
                "{why}; waited for its fence: {}, and the journal is at {now}",
                f.describe(shard.primary)
            ),
            None => why,
        };
        let candidates = rank(view, &shard);
        let Some(chosen) = best(&candidates) else {
            continue;
        };
        let how = match mode {
            ClusterFailoverMode::Coordinated => {
                "a coordinated CLUSTER FAILOVER (no acknowledged write lost)"
            }
            ClusterFailoverMode::Force => "CLUSTER FAILOVER FORCE",
            ClusterFailoverMode::Takeover => "CLUSTER FAILOVER TAKEOVER",
        };
        out.push(Decision::new(
            Intent::ClusterFailover {
                pod: chosen.pod.clone(),
                from: Some(shard.primary.to_owned()),
                mode,
            },
            ReasonCode::PrimaryFailed {
                death,
                consecutive_failures: failures,
                candidates: candidates.clone(),
            },
            format!(
                "{why}; {} takes over its {} slots by {how}; candidates: {}",
                chosen.pod,
                logbook_journal::cluster::slot_count(&shard.slots),
                describe(&candidates)
            ),
        ));
    }
    out
}

/// `ClusterFailover TAKEOVER` to the replica holding the most of the
/// history a restarted primary lost, if [`behind`] finds one. Not an
/// election (`FORCE`): the restarted primary itself refuses to vote for
/// a while ("not safe to vote"), so with it and one more primary not
/// voting (a new shard's, mid-import) the election misses its majority
/// and times out, while the replica's full resync from the emptied
/// primary comes due. A takeover needs no vote, and is safe here: the
/// old primary answers (it is no partitioned side that could go on
/// serving), and it follows the higher config epoch.
fn decide_behind(view: &ClusterView<'_>, shard: &Shard<'_>) -> Option<Decision> {
    let (primary_offset, candidates) = behind(view, shard)?;
    let chosen = best(&candidates)?;
    Some(Decision::new(
        Intent::ClusterFailover {
            pod: chosen.pod.clone(),
            from: Some(shard.primary.to_owned()),
            mode: ClusterFailoverMode::Takeover,
        },
        ReasonCode::PrimaryBehindReplica {
            primary_offset,
            candidates: candidates.clone(),
        },
        format!(
            "{} restarted in place and answers at offset {primary_offset}, behind its replica {} at {}: \
             {} takes over its {} slots by CLUSTER FAILOVER TAKEOVER (no election: a restarted primary does not vote) before it resyncs from a primary that lost those writes; candidates: {}",
            shard.primary,
            chosen.pod,
            chosen.offset.unwrap_or(0),
            chosen.pod,
            logbook_journal::cluster::slot_count(&shard.slots),
            describe(&candidates)
        ),
    ))
}
