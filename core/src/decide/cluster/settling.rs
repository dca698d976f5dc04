//! Half-moved slots: a slot some node marks `MIGRATING` or `IMPORTING`
//! (the classic pipeline's markers) while no migration job is under way
//! was left so by a crash, by another tool, or before the cluster was
//! adopted. Writes to it bounce between nodes (`ASK`) and tools refuse to
//! touch the cluster until it is settled. The move is finished towards
//! the node it was going to when that node is an answering primary (its
//! keys may already be split between the two: finishing forward loses
//! none); otherwise the markers are cleared where they stand.

use std::collections::BTreeMap;

use logbook_journal::{Intent, ReasonCode};

use super::short;
use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// Slots settled in one decision at most (the rest in the next).
const BATCH: usize = 64;

/// A `SettleSlot` for every half-moved slot, lowest first.
pub fn decide_settling(view: &ClusterView<'_>) -> Vec<Decision> {
    let cluster = &view.state.cluster;
    let states = &view.state.reshard.slot_states;
    if states.is_empty() || !view.state.reshard.migrations.is_empty() {
        return Vec::new();
    }
    // Every marked slot, with what each node says of it.
    let mut slots: BTreeMap<u16, Vec<(&str, &str, bool)>> = BTreeMap::new();
    for (pod, s) in states {
        for p in &s.migrating {
            slots
                .entry(p.slot)
                .or_default()
                .push((pod.as_str(), p.node_id.as_str(), true));
        }
        for p in &s.importing {
            slots
                .entry(p.slot)
                .or_default()
                .push((pod.as_str(), p.node_id.as_str(), false));
        }
    }
    let owners = cluster.slot_owners();
    let primary_pod = |node: &str| {
        let pod = cluster.pod_of(node)?;
        let usable = view.pod(pod).is_some_and(|p| p.usable());
        let primary = cluster
            .report(pod)
            .is_some_and(|r| r.node_id == node && r.is_primary());
        (usable && primary).then_some(pod)
    };
    let mut out = Vec::new();
    for (slot, marks) in slots.into_iter().take(BATCH) {
        let Some(owner_node) = owners.get(usize::from(slot)).copied().flatten() else {
            continue;
        };
        let Some(owner) = cluster.pod_of(owner_node) else {
            continue;
        };
        let owner_says = marks.iter().find_map(|(pod, peer, migrating)| {
            (*migrating && cluster.node_id(pod) == Some(owner_node)).then_some(*peer)
        });
        let importer = marks.iter().find_map(|(pod, peer, migrating)| {
            (!*migrating && *peer == owner_node)
                .then(|| cluster.node_id(pod))
                .flatten()
        });
        let to = owner_says
            .and_then(|n| primary_pod(n).map(|p| (p, n)))
            .or_else(|| importer.and_then(|n| primary_pod(n).map(|p| (p, n))));
        let seen: Vec<String> = marks
            .iter()
            .map(|(pod, peer, migrating)| {
                format!(
                    "{pod} {} {}",
                    if *migrating {
                        "migrating to"
                    } else {
                        "importing from"
                    },
                    short(peer)
                )
            })
            .collect();
        let detail = match to {
            Some((pod, node)) => format!(
                "slot {slot} is left half-moved with no migration under way ({}); it is owned by {owner} (node {}): the move to {pod} (node {}) is finished",
                seen.join(", "),
                short(owner_node),
                short(node)
            ),
            None => format!(
                "slot {slot} is left half-moved with no migration under way ({}); it is owned by {owner} (node {}) and the other end is no answering primary: the markers are cleared",
                seen.join(", "),
                short(owner_node)
            ),
        };
        out.push(Decision::new(
            Intent::SettleSlot {
                slot,
                owner: owner.to_owned(),
                owner_node: owner_node.to_owned(),
                to: to.map(|(p, _)| p.to_owned()),
                to_node: to.map(|(_, n)| n.to_owned()),
            },
            ReasonCode::SlotStuck { slot },
            detail,
        ));
    }
    out
}
