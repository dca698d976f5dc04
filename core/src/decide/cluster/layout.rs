//! Where nodes go: which pods start as primaries, which shard a new
//! replica joins. Spread first (a shard's primary and replicas on
//! different Kubernetes nodes where there are enough), then the lowest
//! ordinal, so the same pods give the same layout on every replay.

use std::collections::BTreeMap;

use crate::decide::view::PodState;

/// The Kubernetes node of a pod (`""` when unknown: all such pods count
/// as sharing one node, the cautious guess).
fn kube_node<'a>(pod: &PodState<'a>) -> &'a str {
    pod.view.node.as_deref().unwrap_or("")
}

/// `shards` pods to start as primaries, from `pods` in ordinal order: each
/// pick is the first pod on a Kubernetes node holding the fewest primaries
/// picked so far. With one node this is the first `shards` pods.
pub fn plan_primaries<'a>(pods: &[PodState<'a>], shards: u32) -> Vec<&'a str> {
    let mut load: BTreeMap<&str, u32> = BTreeMap::new();
    let mut chosen: Vec<&'a str> = Vec::new();
    for _ in 0..shards {
        let pick = pods
            .iter()
            .filter(|p| !chosen.contains(&p.name))
            .min_by_key(|p| (load.get(kube_node(p)).copied().unwrap_or(0), p.ordinal()));
        let Some(pick) = pick else {
            break;
        };
        *load.entry(kube_node(pick)).or_insert(0) += 1;
        chosen.push(pick.name);
    }
    chosen
}

/// A shard as placement sees it: its members' Kubernetes nodes.
#[derive(Debug, Clone)]
pub struct ShardSeat<'a> {
    /// The primary's pod.
    pub primary: &'a str,
    /// The primary's node id.
    pub node_id: &'a str,
    /// Kubernetes nodes of its primary and replicas.
    pub kube_nodes: Vec<&'a str>,
    /// Replicas it has.
    pub replicas: u32,
}

/// The shard `pod` should replicate: the one with the fewest replicas,
/// then the fewest members on `pod`'s Kubernetes node, then the lowest
/// primary ordinal. Counts the seat taken, so several pods placed in a
/// row spread out.
pub fn seat_replica<'a>(
    seats: &mut [ShardSeat<'a>],
    pod: &PodState<'a>,
) -> Option<(&'a str, &'a str)> {
    let node = kube_node(pod);
    let seat = seats.iter_mut().min_by_key(|s| {
        (
            s.replicas,
            s.kube_nodes.iter().filter(|n| **n == node).count(),
            crate::decide::ordinal(s.primary),
        )
    })?;
    seat.replicas = seat.replicas.saturating_add(1);
    seat.kube_nodes.push(node);
    Some((seat.primary, seat.node_id))
}

/// The Kubernetes node of `pod`, for seats.
pub fn node_of<'a>(pod: &PodState<'a>) -> &'a str {
    kube_node(pod)
}
