//! A Valkey Cluster's part of the status: its shards, whether each is
//! served and redundant, the reshard under way.

use super::*;

/// What the status says of a Valkey Cluster.
pub(super) struct ClusterHealth {
    /// Every slot owned by a primary that answers.
    pub(super) served: bool,
    /// Every shard the spec asks for, each with its replicas in sync.
    pub(super) redundant: bool,
    /// Replicas in sync with their shard's primary.
    pub(super) in_sync: usize,
    /// The shards, for `status.shards`.
    pub(super) shards: Vec<logbook_crds::v1alpha1::ShardStatus>,
    /// One line for the conditions.
    pub(super) summary: String,
    /// A majority of shard primaries silent: what it means and what a
    /// person can do.
    pub(super) quorum_lost: Option<String>,
    /// A reshard under way or stopped, for `status.reshard`.
    pub(super) reshard: Option<logbook_crds::v1alpha1::ReshardStatus>,
    /// A move given up: what fails and what a person can do.
    pub(super) reshard_failing: Option<String>,
}

/// The Degraded reason of a Cluster whose reshard cannot go on: a move
/// keeps failing with the same error (the shell also raises it as a
/// Warning Event).
pub const REASON_RESHARD_FAILING: &str = "ReshardFailing";

/// Where the reshard stands, `None` when the slots are where the spec
/// wants them and nothing is half-moved.
pub(super) fn reshard_status(
    view: &ClusterView<'_>,
) -> (
    Option<logbook_crds::v1alpha1::ReshardStatus>,
    Option<String>,
) {
    use crate::decide::cluster::resharding;
    let state = view.state;
    if state.cluster.formed_at.is_none() {
        return (None, None);
    }
    let plan = resharding::plan(view);
    let running = state
        .reshard
        .migrations
        .values()
        .filter(|m| m.job.side == logbook_journal::MigrationSide::Export)
        .count();
    let stuck = state.reshard.slot_states.values().any(|s| {
        s.migrating
            .iter()
            .chain(s.importing.iter())
            .next()
            .is_some()
    });
    let given_up = resharding::given_up(view);
    let want = view.spec.effective_shards();
    let shards = state.cluster.shards();
    let have = shards.len();
    let base = u32::try_from(want)
        .ok()
        .filter(|w| *w > 0)
        .map_or(0, |w| 16_384 / w);
    let unbalanced = usize::try_from(want).is_ok_and(|w| w != have)
        || shards.iter().any(|s| {
            let n = logbook_journal::cluster::slot_count(&s.slots);
            n < base || n > base.saturating_add(1)
        });
    if plan.is_none() && running == 0 && !stuck && given_up.is_empty() && !unbalanced {
        return (None, None);
    }
    let remaining = plan.as_ref().map_or(0, resharding::Plan::slots_to_move);
    let run = state
        .reshard
        .run
        .as_ref()
        .filter(|r| r.generation == view.generation);
    let failing = (!given_up.is_empty()).then(|| {
        let what: Vec<String> = given_up
            .iter()
            .map(|(key, f)| {
                let (from, to) = key.split_once('>').unwrap_or((key.as_str(), ""));
                let pod = |id: &str| {
                    state
                        .cluster
                        .pod_of(id)
                        .map_or_else(|| id.get(..8).unwrap_or(id).to_owned(), str::to_owned)
                };
                format!(
                    "moving slots from {} to {} failed {} times in a row with: {}",
                    pod(from),
                    pod(to),
                    f.same_error,
                    f.last_error
                )
            })
            .collect();
        format!(
            "reshard stopped: {}; the cluster is consistent (every slot has one owner) but not balanced; fix the cause and change the spec (any new generation tries again)",
            what.join("; ")
        )
    });
    let phase = if failing.is_some() {
        "Failing"
    } else if running > 0 || plan.is_some() {
        "Moving"
    } else if stuck {
        "Settling"
    } else {
        "Waiting"
    };
    let message = failing.clone().unwrap_or_else(|| match &plan {
        Some(p) => format!(
            "{remaining} slots to move in {} migration(s){}{}",
            p.moves.len(),
            if p.new_primaries.is_empty() {
                String::new()
            } else {
                format!("; new shard primaries {}", p.new_primaries.join(", "))
            },
            if p.leaving.is_empty() {
                String::new()
            } else {
                format!("; shards leaving {}", p.leaving.join(", "))
            }
        ),
        None if running > 0 => format!("{running} migration(s) under way"),
        None if stuck => "slots left half-moved are being settled".to_owned(),
        None => format!(
            "{have} shards serve slots, the spec wants {want}: waiting until {}",
            resharding::unsettled(view).map_or_else(
                || "a new shard's primary and its replicas have joined".to_owned(),
                |why| format!("the cluster settles ({why})")
            )
        ),
    });
    let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    (
        Some(logbook_crds::v1alpha1::ReshardStatus {
            phase: phase.to_owned(),
            generation: view.generation,
            shards: want,
            slots_moved: to_i32(run.map_or(0, |r| r.moved)),
            slots_remaining: to_i32(remaining),
            migrations_running: i32::try_from(running).unwrap_or(i32::MAX),
            message,
        }),
        failing,
    )
}

pub(super) fn cluster_health(view: &ClusterView<'_>) -> ClusterHealth {
    let cluster = &view.state.cluster;
    let shards = cluster.shards();
    let unassigned = cluster.unassigned();
    let answering = |pod: &str| view.pod(pod).is_some_and(|p| p.usable());
    let serving = shards
        .iter()
        .filter(|s| !s.retired && answering(s.primary))
        .count();
    let in_sync_of = |s: &logbook_journal::projection::cluster::Shard<'_>| {
        s.replicas
            .iter()
            .filter(|r| {
                view.pod(r).is_some_and(|p| {
                    p.usable() && p.view.link == Some(logbook_journal::LinkStatus::Up)
                })
            })
            .count()
    };
    let in_sync: usize = shards.iter().map(in_sync_of).sum();
    let votes = crate::decide::cluster::quorum::quorum(view, &shards);
    let quorum_lost = (cluster.formed_at.is_some() && votes.lost()).then(|| {
        if view.spec.failover.takeover_on_quorum_loss {
            format!(
                "quorum lost: {}; spec.failover.takeoverOnQuorumLoss is on: the best replica of each shard whose primary stays silent for the node timeout takes it over without a vote",
                votes.describe()
            )
        } else {
            format!(
                "quorum lost: {}: no replica can be elected and the operator does not take over; bring the primaries back, or set spec.failover.takeoverOnQuorumLoss: true to let their replicas take over without a vote (losing what they had not received)",
                votes.describe()
            )
        }
    });
    let want_shards = usize::try_from(view.spec.effective_shards()).unwrap_or(0);
    let want_replicas = usize::try_from(view.spec.effective_replicas_per_shard()).unwrap_or(0);
    // Every member sees every other as it sees itself (role, primary, no
    // failure flag): gossip has converged.
    let members: Vec<_> = view
        .pods()
        .into_iter()
        .filter(|p| p.usable())
        .filter_map(|p| cluster.report(p.name))
        .collect();
    let agreed = members.iter().all(|m| {
        m.state_ok
            && members.iter().filter(|o| o.node_id != m.node_id).all(|o| {
                m.peer(&o.node_id).is_some_and(|p| {
                    p.health == logbook_journal::PeerHealth::Ok
                        && p.primary == o.is_primary()
                        && p.primary_id == o.primary_id
                })
            })
    });
    let served = cluster.formed_at.is_some() && unassigned == 0 && serving == shards.len();
    let redundant = served
        && agreed
        && shards.len() == want_shards
        && shards.iter().all(|s| in_sync_of(s) >= want_replicas);
    let to_i32 = |v: u16| i32::from(v);
    let statuses = shards
        .iter()
        .zip(0_i32..)
        .map(|(s, index)| logbook_crds::v1alpha1::ShardStatus {
            index,
            name: format!("shard-{index}"),
            primary: Some(s.primary.to_owned()),
            replicas: s.replicas.iter().map(|r| (*r).to_owned()).collect(),
            slots: s
                .slots
                .iter()
                .map(|r| logbook_crds::v1alpha1::SlotRange {
                    start: to_i32(r.start),
                    end: to_i32(r.end),
                })
                .collect(),
        })
        .collect();
    let summary = if cluster.formed_at.is_none() {
        format!("forming: {unassigned} of 16384 slots without owner")
    } else {
        format!(
            "{serving}/{want_shards} shards served, {in_sync} replicas in sync, {} of 16384 slots owned{}{}",
            16_384_u32.saturating_sub(unassigned),
            if agreed {
                ""
            } else {
                ", nodes not yet agreeing"
            },
            quorum_lost
                .as_deref()
                .map(|q| format!("; {q}"))
                .unwrap_or_default()
        )
    };
    let (reshard, reshard_failing) = reshard_status(view);
    let summary = match (&reshard, &reshard_failing) {
        (_, Some(failing)) => format!("{summary}; {failing}"),
        (Some(r), None) => format!("{summary}; reshard: {}", r.message),
        (None, None) => summary,
    };
    ClusterHealth {
        served,
        redundant,
        in_sync,
        shards: statuses,
        summary,
        quorum_lost,
        reshard,
        reshard_failing,
    }
}
