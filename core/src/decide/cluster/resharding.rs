//! Resharding: the slots follow `shards`. With more shards, new empty
//! primaries (picked by the layout, their replicas seated first) take
//! slots from every shard; with fewer, the shards chosen to leave give all
//! theirs away before provisioning may remove a pod. Every primary ends
//! with 16384 / `shards` slots (the first 16384 % `shards` one more).
//!
//! Observed ownership is the plan's only input, so the same cluster gives
//! the same plan on every replay, and a plan cut short by a crash is
//! planned again from where the slots are. In order:
//!
//! 1. A migration job seen under way is waited for under a `MoveSlots`
//!    naming exactly its slots: the executor adopts it, never issues it
//!    twice (a move found in flight after a restart is abandoned and its
//!    job adopted by this one).
//! 2. A slot left half-moved (`IMPORTING`/`MIGRATING`) with no job under
//!    way is settled: finished towards the node it was going to, or its
//!    markers cleared.
//! 3. Otherwise each source sends each target all the ranges it owes it
//!    in one `MoveSlots` (one job: one snapshot, one write pause); every
//!    source works at once.
//!
//! A move between two nodes that failed is tried again after the
//! runtime's back-off (doubling, up to 30 s); after [`MAX_SAME_FAILURES`] failures in a
//! row with the same error it is not tried again under this spec
//! generation: the status says so and an alert fires.

use std::collections::BTreeMap;

use logbook_journal::cluster::{SLOTS, describe_slots, merge_slots, slot_count};
use logbook_journal::projection::cluster::Shard;
use logbook_journal::projection::reshard::{MoveFailures, move_key};
use logbook_journal::{Intent, MigrationSide, ReasonCode, SlotRange};

use super::layout::plan_primaries;
use super::{Member, desired_shards, members, short};
use crate::decide::Decision;
use crate::decide::view::{ClusterView, ordinal};

/// Failures in a row, with the same error, after which a move is not
/// tried again under the same spec generation.
pub const MAX_SAME_FAILURES: u32 = 5;

/// One move of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move<'a> {
    /// Source primary pod and node.
    pub from: (&'a str, &'a str),
    /// Target primary pod and node.
    pub to: (&'a str, &'a str),
    /// The slots.
    pub slots: Vec<SlotRange>,
}

/// The layout the spec wants and the moves that reach it.
#[derive(Debug, Clone, Default)]
pub struct Plan<'a> {
    /// Empty primaries that become shards (scale out).
    pub new_primaries: Vec<&'a str>,
    /// Shard primaries whose slots all go (scale in).
    pub leaving: Vec<&'a str>,
    /// The moves, in order.
    pub moves: Vec<Move<'a>>,
}

impl Plan<'_> {
    /// Slots the moves carry.
    pub fn slots_to_move(&self) -> u32 {
        self.moves.iter().map(|m| slot_count(&m.slots)).sum()
    }
}

/// What resharding wants now.
pub fn decide_resharding(view: &ClusterView<'_>) -> Vec<Decision> {
    if view.state.cluster.formed_at.is_none() {
        return Vec::new();
    }
    let plan = plan(view);
    let code = ReasonCode::Reshard {
        generation: view.generation,
        shards: desired_shards(view),
        slots_to_move: plan.as_ref().map_or(0, Plan::slots_to_move),
    };
    let running = running_jobs(view, &code);
    if !running.is_empty() {
        return running;
    }
    let stuck = super::settling::decide_settling(view);
    if !stuck.is_empty() {
        return stuck;
    }
    let spares = reset_spares(view);
    if !spares.is_empty() {
        return spares;
    }
    let Some(plan) = plan else {
        return Vec::new();
    };
    let failures = &view.state.reshard.failures;
    plan.moves
        .iter()
        .filter(|m| {
            failures
                .get(&move_key(m.from.1, m.to.1))
                .is_none_or(may_retry)
        })
        .map(|m| {
            let count = slot_count(&m.slots);
            let tried = failures
                .get(&move_key(m.from.1, m.to.1))
                .map_or_else(String::new, |f| {
                    format!(
                        "; try {} after {} failure(s), the last: {}",
                        f.count.saturating_add(1),
                        f.count,
                        f.last_error
                    )
                });
            Decision::new(
                Intent::MoveSlots {
                    from: m.from.0.to_owned(),
                    from_node: m.from.1.to_owned(),
                    to: m.to.0.to_owned(),
                    to_node: m.to.1.to_owned(),
                    slots: m.slots.clone(),
                },
                code.clone(),
                format!(
                    "{}; {} (node {}) gives {count} slots ({}) to {} (node {}){tried}",
                    summary(view, &plan),
                    m.from.0,
                    short(m.from.1),
                    describe_slots(&m.slots),
                    m.to.0,
                    short(m.to.1),
                ),
            )
        })
        .collect()
}

/// `ResetReplica` for as many replicas as the new shards lack empty
/// primaries: more shards are wanted than there are empty primaries to
/// start them, and shards have more replicas than the spec asks for (pods
/// back on volumes kept from before a scale-in rejoin as the replicas
/// they were, and nothing else would ever free one). Each spare is the
/// highest ordinal of the shard with the most replicas over the spec's,
/// so every shard keeps the replicas the spec asks for; before any slot
/// moves, so that the plan spreads the slots over every new shard at
/// once.
fn reset_spares(view: &ClusterView<'_>) -> Vec<Decision> {
    if unsettled(view).is_some() {
        return Vec::new();
    }
    let want = desired_shards(view);
    let shards = view.state.cluster.shards();
    let current = u32::try_from(shards.len()).unwrap_or(u32::MAX);
    if want <= current {
        return Vec::new();
    }
    let need = want - current;
    let have = u32::try_from(new_primaries(view, need).len()).unwrap_or(u32::MAX);
    let mut lacking = need.saturating_sub(have);
    let per_shard = usize::try_from(super::desired_replicas(view)).unwrap_or(usize::MAX);
    let members = members(view);
    let mut by_shard: Vec<(&str, Vec<&Member<'_>>)> = shards
        .iter()
        .filter(|s| !s.retired)
        .map(|s| {
            let mut replicas: Vec<&Member<'_>> = members
                .iter()
                .filter(|m| {
                    m.report.primary_id.as_deref() == Some(s.node_id) && stays(view, m.name())
                })
                .collect();
            replicas.sort_by_key(|m| m.pod.ordinal());
            (s.primary, replicas)
        })
        .collect();
    let mut out = Vec::new();
    while lacking > 0 {
        let Some((primary, replicas)) = by_shard
            .iter_mut()
            .filter(|(_, r)| r.len() > per_shard)
            .max_by_key(|(p, r)| (r.len(), std::cmp::Reverse(ordinal(p))))
        else {
            break;
        };
        let Some(spare) = replicas.pop() else {
            break;
        };
        out.push(Decision::new(
            Intent::ResetReplica {
                pod: spare.name().to_owned(),
                node_id: spare.node_id().to_owned(),
            },
            ReasonCode::Reshard {
                generation: view.generation,
                shards: want,
                slots_to_move: 0,
            },
            format!(
                "the spec wants {want} shards, {current} serve slots and only {have} empty primaries can start new ones; {primary}'s shard has {} replicas where the spec asks for {per_shard}: {} (node {}) is reset into an empty primary to start one",
                replicas.len().saturating_add(1),
                spare.name(),
                short(spare.node_id())
            ),
        ));
        lacking = lacking.saturating_sub(1);
    }
    out
}

/// Whether a move that failed as `f` may be tried again. (The wait
/// between tries is the runtime's back-off after a failed decision:
/// `decide` sees time only as far as the last event, and a failed move
/// appends none until it is tried again.)
fn may_retry(f: &MoveFailures) -> bool {
    f.same_error < MAX_SAME_FAILURES
}

/// The moves that keep failing with the same error and are no longer
/// tried under this spec generation.
pub fn given_up<'a>(view: &ClusterView<'a>) -> Vec<(String, &'a MoveFailures)> {
    view.state
        .reshard
        .failures
        .iter()
        .filter(|(_, f)| f.same_error >= MAX_SAME_FAILURES)
        .map(|(k, f)| (k.clone(), f))
        .collect()
}

/// One line on what the reshard is for.
fn summary(view: &ClusterView<'_>, plan: &Plan<'_>) -> String {
    let shards = desired_shards(view);
    let mut what = format!(
        "the spec wants {shards} shards of {}{} slots; {} slots to move",
        SLOTS / shards.max(1),
        if SLOTS.is_multiple_of(shards.max(1)) {
            String::new()
        } else {
            format!(" or {}", SLOTS / shards.max(1) + 1)
        },
        plan.slots_to_move()
    );
    if !plan.new_primaries.is_empty() {
        what.push_str(&format!(
            "; new shard primaries: {}",
            plan.new_primaries.join(", ")
        ));
    }
    if !plan.leaving.is_empty() {
        what.push_str(&format!("; shards leaving: {}", plan.leaving.join(", ")));
    }
    what
}

/// A `MoveSlots` for every export job seen under way whose two ends are
/// known pods: waited for, never issued again.
fn running_jobs(view: &ClusterView<'_>, code: &ReasonCode) -> Vec<Decision> {
    let cluster = &view.state.cluster;
    view.state
        .reshard
        .migrations
        .values()
        .filter(|m| m.job.side == MigrationSide::Export)
        .filter_map(|m| {
            let from = cluster.pod_of(&m.job.source)?;
            let to = cluster.pod_of(&m.job.target)?;
            Some(Decision::new(
                Intent::MoveSlots {
                    from: from.to_owned(),
                    from_node: m.job.source.clone(),
                    to: to.to_owned(),
                    to_node: m.job.target.clone(),
                    slots: m.job.slots.clone(),
                },
                code.clone(),
                format!(
                    "slot migration {} of {} slots ({}) from {from} to {to} is under way ({}): waiting for it",
                    short(&m.job.name),
                    slot_count(&m.job.slots),
                    describe_slots(&m.job.slots),
                    m.job.phase.name()
                ),
            ))
        })
        .collect()
}

/// Why the cluster is not whole enough to move slots, if it is not:
/// formed, every slot owned by an answering primary, every pod the spec
/// wants a member, the primaries that give or take slots knowing each
/// other, a new shard's primary serving and its replicas in sync. (A primary restarted in place
/// behind its replicas is failover's, which goes first; one that is not
/// behind moves its slots as any other.)
pub fn unsettled(view: &ClusterView<'_>) -> Option<String> {
    let cluster = &view.state.cluster;
    if cluster.formed_at.is_none() {
        return Some("the cluster is not formed yet".to_owned());
    }
    let unassigned = cluster.unassigned();
    if unassigned > 0 {
        return Some(format!("{unassigned} slots have no owner"));
    }
    let members = members(view);
    let wanted = usize::try_from(view.desired_pods()).unwrap_or(usize::MAX);
    if members.len() < wanted {
        return Some(format!(
            "{} of the {wanted} pods the spec wants are answering cluster members",
            members.len()
        ));
    }
    // A source refuses a target it does not know yet: the primaries that
    // give or take slots (those serving slots, and the empty ones picked
    // as new shards) must know each other. Replicas need not: gossip
    // reaches them in its own time, and waiting for it held every
    // scale-out for seconds.
    let picked = picked_primaries(view);
    let movers: Vec<_> = members
        .iter()
        .filter(|m| m.report.serves_slots() || picked.contains(&m.name()))
        .collect();
    for m in &movers {
        let unknown = movers.iter().find(|o| {
            o.node_id() != m.node_id()
                && m.report
                    .peer(o.node_id())
                    .is_none_or(|p| p.health == logbook_journal::PeerHealth::Handshake)
        });
        if let Some(o) = unknown {
            return Some(format!("{} does not know {} yet", m.name(), o.name()));
        }
    }
    // A new primary takes slots only once it serves: Valkey keeps a
    // primary at cluster_state:fail for its first two seconds
    // (CLUSTER_WRITABLE_DELAY) and until it knows an owner for every slot,
    // and answers CLUSTERDOWN for every key meanwhile, the slots moved to
    // it included.
    if let Some(m) = members
        .iter()
        .find(|m| picked.contains(&m.name()) && !m.report.state_ok)
    {
        return Some(format!(
            "the new shard's primary {} does not say cluster_state:ok yet",
            m.name()
        ));
    }
    // A new shard takes slots only once its replicas are in sync: a
    // migration does not wait for the target's replicas, and one whose
    // first full sync is still pending would leave the moved keys (and
    // every write to them) on the new primary alone.
    for p in &picked {
        let Some(id) = cluster.node_id(p) else {
            continue;
        };
        let behind = members.iter().find(|r| {
            r.report.primary_id.as_deref() == Some(id)
                && view
                    .pod(r.name())
                    .is_none_or(|v| v.view.link != Some(logbook_journal::LinkStatus::Up))
        });
        if let Some(r) = behind {
            return Some(format!(
                "{}, the replica of the new shard {p}, is not in sync with it yet",
                r.name()
            ));
        }
    }
    cluster
        .shards()
        .iter()
        .find(|s| s.retired || view.pod(s.primary).is_none_or(|p| !p.usable()))
        .map(|s| format!("the primary of {}'s shard does not answer", s.primary))
}

/// The reshard the spec asks for, `None` while the cluster is not
/// settled enough to plan one (or nothing is to move).
pub fn plan<'a>(view: &ClusterView<'a>) -> Option<Plan<'a>> {
    if unsettled(view).is_some() {
        return None;
    }
    let want = desired_shards(view);
    if want == 0 {
        return None;
    }
    let cluster = &view.state.cluster;
    let shards = cluster.shards();
    let current = u32::try_from(shards.len()).unwrap_or(u32::MAX);
    let new_primaries = if want > current {
        new_primaries(view, want.saturating_sub(current))
    } else {
        Vec::new()
    };
    let leaving: Vec<&Shard<'a>> = if want < current {
        leaving(view, &shards, current.saturating_sub(want))
    } else {
        Vec::new()
    };
    // Targets: the shards that stay, then the new primaries, each with
    // the slots it owns now.
    let mut owned: Vec<(&'a str, &'a str, Vec<u16>)> = shards
        .iter()
        .filter(|s| !leaving.iter().any(|l| l.node_id == s.node_id))
        .map(|s| (s.primary, s.node_id, expand(&s.slots)))
        .collect();
    for pod in &new_primaries {
        if let Some(id) = cluster.node_id(pod) {
            owned.push((pod, id, Vec::new()));
        }
    }
    if owned.is_empty() {
        return None;
    }
    let targets = u32::try_from(owned.len()).unwrap_or(u32::MAX);
    let base = SLOTS / targets;
    let extra = SLOTS % targets;
    // The extra slots go to the shards holding the most now: the fewest
    // moves.
    let mut by_size: Vec<usize> = (0..owned.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(owned.get(i).map_or(0, |o| o.2.len())));
    let mut quota: BTreeMap<usize, u32> = BTreeMap::new();
    for (rank, i) in by_size.iter().enumerate() {
        let more = u32::try_from(rank).unwrap_or(u32::MAX) < extra;
        quota.insert(*i, base + u32::from(more));
    }
    // Sources: leaving shards give everything, the rest their excess
    // (their highest slots).
    let mut give: Vec<(&'a str, &'a str, Vec<u16>)> = Vec::new();
    for s in &leaving {
        give.push((s.primary, s.node_id, expand(&s.slots)));
    }
    let mut need: Vec<(usize, u32)> = Vec::new();
    for (i, (pod, id, slots)) in owned.iter().enumerate() {
        let q = quota.get(&i).copied().unwrap_or(base);
        let have = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        if have > q {
            let keep = usize::try_from(q).unwrap_or(usize::MAX);
            give.push((pod, id, slots.get(keep..).unwrap_or_default().to_vec()));
        } else if have < q {
            need.push((i, q - have));
        }
    }
    let mut moves: Vec<Move<'a>> = Vec::new();
    let mut need = need.into_iter().peekable();
    let mut current_need: Option<(usize, u32)> = need.next();
    for (pod, id, slots) in give {
        let mut rest: &[u16] = &slots;
        while !rest.is_empty() {
            let Some((i, n)) = current_need else {
                break;
            };
            let take = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
            let (now, later) = rest.split_at(take);
            rest = later;
            if let Some((tpod, tid, _)) = owned.get(i) {
                push_move(&mut moves, (pod, id), (tpod, tid), now);
            }
            let left = n - u32::try_from(take).unwrap_or(n);
            current_need = if left == 0 {
                need.next()
            } else {
                Some((i, left))
            };
        }
    }
    let plan = Plan {
        new_primaries,
        leaving: leaving.iter().map(|s| s.primary).collect(),
        moves,
    };
    (!plan.moves.is_empty()).then_some(plan)
}

/// Adds `slots` to the move from `from` to `to`, one per pair.
fn push_move<'a>(
    moves: &mut Vec<Move<'a>>,
    from: (&'a str, &'a str),
    to: (&'a str, &'a str),
    slots: &[u16],
) {
    if let Some(m) = moves.iter_mut().find(|m| m.from == from && m.to == to) {
        let mut all = expand(&m.slots);
        all.extend_from_slice(slots);
        m.slots = merge_slots(all);
    } else {
        moves.push(Move {
            from,
            to,
            slots: merge_slots(slots.to_vec()),
        });
    }
}

fn expand(ranges: &[SlotRange]) -> Vec<u16> {
    ranges.iter().flat_map(|r| r.start..=r.end).collect()
}

/// Pods the spec keeps (the StatefulSet removes the highest ordinals).
fn stays(view: &ClusterView<'_>, pod: &str) -> bool {
    ordinal(pod) < view.desired_pods()
}

/// The empty primaries that become the `count` new shards: members that
/// stay, own no slot and follow nobody, spread across Kubernetes nodes
/// (see [`plan_primaries`]). Deterministic, so replicas are seated with
/// the same pick (see [`super::replicas`]).
pub fn new_primaries<'a>(view: &ClusterView<'a>, count: u32) -> Vec<&'a str> {
    let candidates: Vec<_> = members(view)
        .into_iter()
        .filter(|m| m.report.is_primary() && m.report.slots.is_empty() && stays(view, m.name()))
        .map(|m| m.pod)
        .collect();
    plan_primaries(&candidates, count)
}

/// The empty primaries resharding has picked as new shards now (none
/// while no more shards are wanted).
pub fn picked_primaries<'a>(view: &ClusterView<'a>) -> Vec<&'a str> {
    let want = desired_shards(view);
    let current = u32::try_from(view.state.cluster.shards().len()).unwrap_or(u32::MAX);
    if view.state.cluster.formed_at.is_none() || want <= current {
        return Vec::new();
    }
    new_primaries(view, want - current)
}

/// The `count` shards to drain: most members on pods the spec removes,
/// then a removed primary, then the highest primary ordinal.
fn leaving<'s, 'a>(
    view: &ClusterView<'a>,
    shards: &'s [Shard<'a>],
    count: u32,
) -> Vec<&'s Shard<'a>> {
    let mut ranked: Vec<&Shard<'a>> = shards.iter().collect();
    ranked.sort_by_key(|s| {
        let removed = std::iter::once(s.primary)
            .chain(s.replicas.iter().copied())
            .filter(|p| !stays(view, p))
            .count();
        (
            std::cmp::Reverse(removed),
            stays(view, s.primary),
            std::cmp::Reverse(ordinal(s.primary)),
        )
    });
    ranked
        .into_iter()
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .collect()
}

/// Whether shards must still be drained before pods may be removed.
pub fn draining(view: &ClusterView<'_>) -> bool {
    let want = desired_shards(view);
    let current = u32::try_from(view.state.cluster.shards().len()).unwrap_or(u32::MAX);
    view.state.cluster.formed_at.is_some() && want < current
}
