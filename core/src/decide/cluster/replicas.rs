//! Replicas: a member that holds no slot and follows nobody (a new pod, a
//! pod that came back as a new node after losing its volume, a pod added
//! by raising `replicasPerShard`), or follows a primary left without
//! slots (a drained shard), becomes a replica of the shard that needs one
//! most — the fewest replicas, then the fewest members on its
//! Kubernetes node. A node with empty data is never made a primary here.

use logbook_journal::{Intent, ReasonCode};

use super::layout::{ShardSeat, node_of, seat_replicas};
use super::{desired_replicas, members, short};
use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// `ReplicateShard` for every empty primary, once every slot has an owner.
pub fn decide_replicas(view: &ClusterView<'_>) -> Vec<Decision> {
    let cluster = &view.state.cluster;
    if cluster.unassigned() > 0 {
        // Slots first (forming), or a shard is lost: attaching now could
        // take a node the layout still needs as a primary.
        return Vec::new();
    }
    let members = members(view);
    let shards = cluster.shards();
    // A shard whose primary is gone but which has a replica is about to
    // be failed over (by the failover concern, or by Valkey's election):
    // its replica becomes its primary and leaves it with none. Counting
    // seats now would give the new node to a shard that keeps its
    // replica and leave that one without: wait until it has settled.
    let settling = shards.iter().any(|s| {
        let gone = s.retired || view.pod(s.primary).is_none_or(|p| !p.usable());
        gone && !s.replicas.is_empty()
    });
    if settling {
        return Vec::new();
    }
    // Only replicas on pods the spec keeps count: one a scale-in removes
    // leaves its shard without, and the seat it leaves is the one to fill.
    let keeps = view.desired_pods();
    let staying = |pod: &str| view.pod(pod).is_some_and(|p| p.ordinal() < keeps);
    let mut seats: Vec<ShardSeat<'_>> = shards
        .iter()
        .filter(|s| !s.retired)
        .map(|s| {
            let mut kube_nodes: Vec<&str> = Vec::new();
            let mut replicas = 0_u32;
            for pod in std::iter::once(s.primary).chain(s.replicas.iter().copied()) {
                if let Some(p) = view.pod(pod)
                    && (pod == s.primary || staying(pod))
                {
                    kube_nodes.push(node_of(&p));
                    if pod != s.primary {
                        replicas = replicas.saturating_add(1);
                    }
                }
            }
            ShardSeat {
                primary: s.primary,
                node_id: s.node_id,
                kube_nodes,
                replicas,
            }
        })
        .collect();
    // The empty primaries resharding picked as new shards are seats.
    let picked = super::resharding::picked_primaries(view);
    for pod in &picked {
        let Some(m) = members.iter().find(|m| m.name() == *pod) else {
            continue;
        };
        let mut kube_nodes = vec![node_of(&m.pod)];
        let mut replicas = 0_u32;
        for other in &members {
            if other.report.primary_id.as_deref() == Some(m.node_id()) && staying(other.name()) {
                kube_nodes.push(node_of(&other.pod));
                replicas = replicas.saturating_add(1);
            }
        }
        seats.push(ShardSeat {
            primary: m.name(),
            node_id: m.node_id(),
            kube_nodes,
            replicas,
        });
    }
    // A primary left without slots (a drained shard) is a seat for
    // nobody: its replicas are seated again.
    let seat_ids: Vec<&str> = seats.iter().map(|s| s.node_id).collect();
    let want = desired_replicas(view);
    let mut out = Vec::new();
    let mut seated = Vec::new();
    for m in &members {
        let empty = m.report.is_primary() && m.report.slots.is_empty();
        let orphan = m.report.primary_id.as_deref().is_some_and(|p| {
            !seat_ids.contains(&p)
                && cluster
                    .nodes
                    .get(p)
                    .is_some_and(|n| n.report.is_primary() && n.report.slots.is_empty())
        });
        // A pod the spec removes is not given a seat it would leave.
        let leaving = m.pod.ordinal() >= keeps;
        if !(empty || orphan) || picked.contains(&m.name()) || leaving {
            continue;
        }
        seated.push(m);
    }
    let pods: Vec<_> = seated.iter().map(|m| &m.pod).collect();
    let picks = seat_replicas(&mut seats, &pods);
    for (m, pick) in seated.into_iter().zip(picks) {
        let Some(seat) = pick.and_then(|i| seats.get(i)) else {
            continue;
        };
        let (primary, node_id) = (seat.primary, seat.node_id);
        out.push(Decision::new(
            Intent::ReplicateShard {
                pod: m.name().to_owned(),
                primary: primary.to_owned(),
                node_id: node_id.to_owned(),
            },
            ReasonCode::ShardNeedsReplica,
            format!(
                "{} (node {}) holds no slot and follows nobody; it replicates {primary} (node {}), the shard with the fewest replicas (the spec asks for {want} each)",
                m.name(),
                short(m.node_id()),
                short(node_id)
            ),
        ));
    }
    if out.is_empty() && view.state.reshard.migrations.is_empty() {
        out.extend(rebalance(view, &shards, &seats, want, &staying));
    }
    out
}

/// One replica moved from a shard that has more than the spec asks for to
/// one that has fewer: a replica seated with a shard whose own replica
/// was cut off at that moment (and came back) leaves another shard
/// without one, and nothing else would ever move it. Only replicas in
/// sync count for the giver, and it keeps at least `want` of them, so a
/// replica cut off for a while is not taken for a spare; the one moved is
/// the giver's in-sync replica of highest ordinal.
fn rebalance<'a>(
    view: &ClusterView<'a>,
    shards: &[logbook_journal::projection::cluster::Shard<'a>],
    seats: &[ShardSeat<'a>],
    want: u32,
    staying: &dyn Fn(&str) -> bool,
) -> Option<Decision> {
    let needy = seats
        .iter()
        .filter(|s| s.replicas < want)
        .min_by_key(|s| (s.replicas, crate::decide::ordinal(s.primary)))?;
    let (giver, spare) = shards
        .iter()
        .filter(|s| !s.retired && s.primary != needy.primary)
        .find_map(|s| {
            let in_sync: Vec<&str> = s
                .replicas
                .iter()
                .copied()
                .filter(|r| staying(r) && view.pod(r).is_some_and(|p| p.in_sync_with(s.primary)))
                .collect();
            let count = u32::try_from(in_sync.len()).unwrap_or(u32::MAX);
            let spare = in_sync
                .into_iter()
                .max_by_key(|r| crate::decide::ordinal(r))?;
            (count > want).then_some((s, spare))
        })?;
    Some(Decision::new(
        Intent::ReplicateShard {
            pod: spare.to_owned(),
            primary: needy.primary.to_owned(),
            node_id: needy.node_id.to_owned(),
        },
        ReasonCode::ShardNeedsReplica,
        format!(
            "{}'s shard has more replicas in sync than the spec's {want} while {} (node {}) has {}: {spare} moves from {} to it",
            giver.primary,
            needy.primary,
            short(needy.node_id),
            needy.replicas,
            giver.primary
        ),
    ))
}
