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

/// The shards `pods` should replicate, in order (`None` where there is
/// no seat): each picked as [`seat_index`] picks, then pairs of picks
/// swapped while that seats fewer replicas on a node their shard already
/// has a member on. The greedy row alone can leave its last pod only the
/// seat beside its own primary (three shards on three nodes: the last
/// shard without a replica is the one on the last pod's node), which
/// losing that node would cost the whole shard. A swap keeps every
/// shard's count; ties keep the greedy pick, so a replay decides the same.
pub fn seat_replicas<'a>(
    seats: &mut [ShardSeat<'a>],
    pods: &[&PodState<'a>],
) -> Vec<Option<usize>> {
    let before: Vec<Vec<&'a str>> = seats.iter().map(|s| s.kube_nodes.clone()).collect();
    let mut picks: Vec<Option<usize>> = pods.iter().map(|p| seat_index(seats, p)).collect();
    let beside = |pod: usize, seat: usize| -> usize {
        let node = pods.get(pod).map_or("", |p| kube_node(p));
        before
            .get(seat)
            .map_or(0, |nodes| nodes.iter().filter(|n| **n == node).count())
    };
    // Each swap lowers the total, which is finite: this ends.
    let mut improved = true;
    while improved {
        improved = false;
        for a in 0..picks.len() {
            for b in (a + 1)..picks.len() {
                let (Some(Some(sa)), Some(Some(sb))) =
                    (picks.get(a).copied(), picks.get(b).copied())
                else {
                    continue;
                };
                if beside(a, sb) + beside(b, sa) < beside(a, sa) + beside(b, sb) {
                    if let Some(x) = picks.get_mut(a) {
                        *x = Some(sb);
                    }
                    if let Some(x) = picks.get_mut(b) {
                        *x = Some(sa);
                    }
                    improved = true;
                }
            }
        }
    }
    // The seats' members as they end up.
    for seat in seats.iter_mut().zip(before) {
        seat.0.kube_nodes = seat.1;
    }
    for (pod, pick) in pods.iter().zip(&picks) {
        if let Some(seat) = pick.and_then(|i| seats.get_mut(i)) {
            seat.kube_nodes.push(kube_node(pod));
        }
    }
    picks
}

/// The seat `pod` should take: the one with the fewest replicas, then the
/// fewest members on `pod`'s Kubernetes node, then the lowest primary
/// ordinal. Counts the seat taken, so several pods placed in a row spread
/// out.
fn seat_index<'a>(seats: &mut [ShardSeat<'a>], pod: &PodState<'a>) -> Option<usize> {
    let node = kube_node(pod);
    let (i, seat) = seats.iter_mut().enumerate().min_by_key(|(_, s)| {
        (
            s.replicas,
            s.kube_nodes.iter().filter(|n| **n == node).count(),
            crate::decide::ordinal(s.primary),
        )
    })?;
    seat.replicas = seat.replicas.saturating_add(1);
    seat.kube_nodes.push(node);
    Some(i)
}

/// The Kubernetes node of `pod`, for seats.
pub fn node_of<'a>(pod: &PodState<'a>) -> &'a str {
    kube_node(pod)
}
