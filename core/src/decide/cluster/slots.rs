//! Forming the cluster: once, when no slot has an owner yet and every pod
//! the spec asks for is a member that knows every other, the 16384 slots
//! are split evenly over `shards` primaries spread across Kubernetes
//! nodes. A cluster that was ever formed (all slots owned once, as
//! journaled) is never assigned slots again: a formed cluster found on
//! the pods is adopted, not re-created.

use logbook_journal::cluster::{SLOTS, even_split, slot_count};
use logbook_journal::{Intent, ReasonCode};

use super::layout::plan_primaries;
use super::{desired_shards, members, short};
use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// `AssignSlots` for every planned primary whose share no node owns yet.
pub fn decide_slots(view: &ClusterView<'_>) -> Vec<Decision> {
    let cluster = &view.state.cluster;
    if cluster.formed_at.is_some() {
        return Vec::new();
    }
    let members = members(view);
    let wanted = usize::try_from(view.desired_pods()).unwrap_or(usize::MAX);
    if members.len() < wanted || view.pods().len() != members.len() {
        // Every pod first, so the layout can spread them.
        return Vec::new();
    }
    let meshed = members.iter().all(|m| {
        members
            .iter()
            .filter(|o| o.node_id() != m.node_id())
            .all(|o| m.report.peer(o.node_id()).is_some())
    });
    if !meshed {
        return Vec::new();
    }
    let owners = cluster.slot_owners();
    let unassigned = u32::try_from(owners.iter().filter(|o| o.is_none()).count()).unwrap_or(SLOTS);
    if unassigned == 0 {
        return Vec::new();
    }
    if let Some(plan) = view.state.backups.restore.pending() {
        return restore_slots(view, plan, &owners, unassigned);
    }
    let shards = desired_shards(view);
    let pods: Vec<_> = members.iter().map(|m| m.pod).collect();
    let primaries = plan_primaries(&pods, shards);
    let plan: Vec<String> = primaries
        .iter()
        .zip(even_split(shards))
        .map(|(pod, range)| {
            format!(
                "{pod}: {}",
                logbook_journal::cluster::describe_slots(std::slice::from_ref(&range))
            )
        })
        .collect();
    let mut out = Vec::new();
    for (pod, range) in primaries.iter().zip(even_split(shards)) {
        let free = (range.start..=range.end)
            .all(|slot| owners.get(usize::from(slot)).is_some_and(Option::is_none));
        let node = cluster.node_id(pod).unwrap_or("?");
        // A primary holding a replica role (a half-formed cluster) or a
        // share someone else took is left as it is; the rest proceeds.
        let empty_primary = cluster
            .report(pod)
            .is_some_and(|r| r.is_primary() && r.slots.is_empty());
        if !free || !empty_primary {
            continue;
        }
        out.push(Decision::new(
            Intent::AssignSlots {
                pod: (*pod).to_owned(),
                slots: vec![range],
            },
            ReasonCode::SlotsUnassigned { unassigned },
            format!(
                "forming the cluster: {unassigned} of {SLOTS} slots have no owner; {} slots to {pod} (node {}); plan: {}",
                slot_count(std::slice::from_ref(&range)),
                short(node),
                plan.join("; ")
            ),
        ));
    }
    out
}

/// Before the pods of a point-in-time restore meet: each restored
/// shard's pod claims every slot it loaded keys of (as a node does with
/// data no cluster assigned), and the stream up to the time may hold keys
/// of slots another shard owned then (moved away after the chain's base,
/// or being imported at the time). `DropForeignSlots` for each such pod;
/// `Some(empty)` (wait, no meeting yet) while a restored shard's pod has
/// not reported; `None` once every pod claims only its own.
pub fn decide_foreign_slots(view: &ClusterView<'_>) -> Option<Vec<Decision>> {
    let restore = &view.state.backups.restore;
    let plan = restore.pending()?;
    restore.point.as_ref()?;
    let cluster = &view.state.cluster;
    if cluster.formed_at.is_some() {
        return None;
    }
    let mut out = Vec::new();
    let mut waiting = false;
    for shard in &plan.shards {
        let Some(pod) = view.pods().into_iter().find(|p| p.ordinal() == shard.shard) else {
            waiting = true;
            continue;
        };
        let Some(report) = cluster.report(pod.name).filter(|_| pod.usable()) else {
            waiting = true;
            continue;
        };
        let own = |slot: u16| shard.slots.iter().any(|r| r.start <= slot && slot <= r.end);
        let foreign: Vec<u16> = report
            .slots
            .iter()
            .flat_map(|r| r.start..=r.end)
            .filter(|s| !own(*s))
            .collect();
        if foreign.is_empty() {
            continue;
        }
        let slots = logbook_journal::cluster::merge_slots(foreign);
        out.push(Decision::new(
            Intent::DropForeignSlots {
                pod: pod.name.to_owned(),
                slots: slots.clone(),
            },
            ReasonCode::ForeignSlotsClaimed,
            format!(
                "restoring {}: {} claims {} ({} slots) it holds keys of, which shard {} did not own at the time restored to",
                plan.source,
                pod.name,
                logbook_journal::cluster::describe_slots(&slots),
                slot_count(&slots),
                shard.shard
            ),
        ));
    }
    (!out.is_empty() || waiting).then_some(out)
}

/// Forming a restored cluster: each shard's slots, as the backup's
/// manifest lists them, go to the pod of the shard's ordinal, which loaded
/// its RDB (and already claimed the slots it holds keys of, as a node
/// does when it loads data no cluster assigned).
fn restore_slots(
    view: &ClusterView<'_>,
    plan: &logbook_journal::RestorePlan,
    owners: &[Option<&str>],
    unassigned: u32,
) -> Vec<Decision> {
    let cluster = &view.state.cluster;
    let mut out = Vec::new();
    for shard in &plan.shards {
        let Some(pod) = view.pods().into_iter().find(|p| p.ordinal() == shard.shard) else {
            continue;
        };
        let Some(report) = cluster.report(pod.name) else {
            continue;
        };
        if !report.is_primary() {
            continue;
        }
        let free: Vec<u16> = shard
            .slots
            .iter()
            .flat_map(|r| r.start..=r.end)
            .filter(|slot| owners.get(usize::from(*slot)).is_some_and(Option::is_none))
            .collect();
        if free.is_empty() {
            continue;
        }
        let slots = logbook_journal::cluster::merge_slots(free);
        out.push(Decision::new(
            Intent::AssignSlots {
                pod: pod.name.to_owned(),
                slots: slots.clone(),
            },
            ReasonCode::SlotsUnassigned { unassigned },
            format!(
                "restoring {}: shard {}'s slots without owner ({} slots: {}) to {}, which loaded its RDB (node {})",
                plan.source,
                shard.shard,
                slot_count(&slots),
                logbook_journal::cluster::describe_slots(&slots),
                pod.name,
                short(cluster.node_id(pod.name).unwrap_or("?"))
            ),
        ));
    }
    out
}
