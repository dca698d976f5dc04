//! Membership: who is in the cluster. Node ids no pod runs any more (the
//! pod lost its volume and came back as a new node; the pod was removed)
//! or that never belonged to this cluster are forgotten on every member;
//! a pod not in the cluster, or known at an address it no longer has, is
//! met — only ever at a current pod address of this cluster, by node id,
//! so a node of another cluster that inherited an old address is never
//! merged in.

use std::collections::BTreeSet;

use logbook_journal::{Intent, PeerHealth, ReasonCode};

use super::{Member, members, short};
use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// Forgets what must go, else meets what must come.
pub fn decide_membership(view: &ClusterView<'_>) -> Vec<Decision> {
    if let Some(first) = super::slots::decide_foreign_slots(view) {
        // A point-in-time restore's pods give up what is not theirs
        // before any of them meets another.
        return first;
    }
    let members = members(view);
    let forget = decide_forget(view, &members);
    if !forget.is_empty() {
        return forget;
    }
    let joining = !super::resharding::picked_primaries(view).is_empty();
    decide_meet(view, &members, joining)
}

/// `ForgetNode` for every node id that must go: retired nodes and nodes
/// of removed pods (once they own no slot: a shard primary is failed over
/// first), whether or not a member still lists them (a forget cut short
/// leaves a node no member lists that the journal still holds, and only a
/// `ForgetNode` that succeeds drops it there), and ids some member lists
/// that belong to no pod of this cluster (only once every pod's node is
/// known, so a node the journal has not met yet is never taken for a
/// stranger).
fn decide_forget(view: &ClusterView<'_>, members: &[Member<'_>]) -> Vec<Decision> {
    let cluster = &view.state.cluster;
    let owners: BTreeSet<&str> = cluster.slot_owners().into_iter().flatten().collect();
    // Valkey refuses to forget a node's own primary ("Can't forget my
    // master"): such a node is forgotten once its replicas follow
    // another, never asked again and again meanwhile.
    let followed = |id: &str| {
        members
            .iter()
            .any(|m| m.report.primary_id.as_deref() == Some(id))
    };
    let keep = view.desired_pods();
    let mut out = Vec::new();
    let mut gone: Vec<(&str, &str, String)> = cluster
        .retired()
        .map(|(id, pod)| {
            (
                id,
                pod,
                format!(
                    "{pod} runs node {} now; its old node {} lost its data and is gone",
                    cluster.node_id(pod).map_or("?", short),
                    short(id)
                ),
            )
        })
        .collect();
    for (pod, id) in &cluster.pods {
        let removed = view.pod(pod).is_none() && crate::decide::ordinal(pod) >= keep;
        if removed {
            gone.push((
                id,
                pod,
                format!("{pod} was removed (the spec keeps {keep} pods)"),
            ));
        }
    }
    for (id, pod, why) in gone {
        if owners.contains(id) || followed(id) {
            continue;
        }
        out.push(Decision::new(
            Intent::ForgetNode {
                pod: pod.to_owned(),
                node_id: id.to_owned(),
            },
            ReasonCode::NodeRetired {
                node_id: id.to_owned(),
            },
            format!("{why}; every member forgets {id}"),
        ));
    }
    let all_known = view
        .pods()
        .iter()
        .all(|p| cluster.node_id(p.name).is_some());
    if !all_known {
        return out;
    }
    // Pod addresses, what the nodes announce and where clients outside
    // reach them: a peer at any of them may be one of ours.
    let external = &view.state.external;
    let ours: BTreeSet<&str> = view
        .pods()
        .iter()
        .filter_map(|p| p.view.ip.as_deref())
        .chain(
            external
                .announced
                .keys()
                .filter_map(|p| external.announced_ip(p)),
        )
        .chain(external.pods.values().map(|e| e.host.as_str()))
        .collect();
    let mut strangers: BTreeSet<(&str, Option<&str>)> = BTreeSet::new();
    for m in members {
        for peer in &m.report.peers {
            let stranger = peer.health != PeerHealth::Handshake
                && !cluster.nodes.contains_key(&peer.node_id)
                && peer.ip.as_deref().is_none_or(|ip| !ours.contains(ip));
            if stranger && !followed(&peer.node_id) {
                strangers.insert((peer.node_id.as_str(), peer.ip.as_deref()));
            }
        }
    }
    for (id, ip) in strangers {
        out.push(Decision::new(
            Intent::ForgetNode {
                pod: String::new(),
                node_id: id.to_owned(),
            },
            ReasonCode::NodeRetired {
                node_id: id.to_owned(),
            },
            format!(
                "node {id} (at {}) belongs to no pod of this cluster; every member forgets it",
                ip.unwrap_or("no address")
            ),
        ));
    }
    out
}

/// The node ids of the members linked to `anchor`, directly or not: two
/// members are linked when either lists the other (gossip then tells
/// each what the other knows).
fn island<'a>(members: &[Member<'a>], anchor: &Member<'a>) -> BTreeSet<&'a str> {
    let linked = |a: &Member<'_>, b: &Member<'_>| {
        a.report.peer(b.node_id()).is_some() || b.report.peer(a.node_id()).is_some()
    };
    let mut island: BTreeSet<&'a str> = BTreeSet::from([anchor.node_id()]);
    loop {
        let before = island.len();
        for m in members {
            if !island.contains(m.node_id())
                && members
                    .iter()
                    .any(|o| island.contains(o.node_id()) && linked(m, o))
            {
                island.insert(m.node_id());
            }
        }
        if island.len() == before {
            return island;
        }
    }
}

/// `MeetNode` for each member the cluster does not know at its address:
/// met from every member holding a stale address for it, and from the
/// anchor (the first member owning slots, else the first member) when it
/// is not linked to the anchor at all — no member knows it, or only
/// members of another island do (two meets decided from different
/// anchors, each before the other's pod was a member, leave two islands
/// that each know all their own: gossip never joins them). While new
/// shards join (`joining`: resharding has picked their primaries), every member is
/// also met from every member that does not list it yet, in the same
/// decision as its first meet, rather than left to gossip: slots move
/// only between primaries that know each other, and a node learns a
/// slot's new owner from the owner alone (so one that has not met the
/// new primary yet disagrees on the slot map after the moves).
fn decide_meet(view: &ClusterView<'_>, members: &[Member<'_>], joining: bool) -> Vec<Decision> {
    let anchor = members
        .iter()
        .find(|m| m.report.serves_slots())
        .or_else(|| members.first());
    let Some(anchor) = anchor else {
        return Vec::new();
    };
    let island = island(members, anchor);
    let mut out = Vec::new();
    for m in members {
        let Some(ip) = m.ip() else {
            continue;
        };
        let others = members.iter().filter(|o| o.node_id() != m.node_id());
        let listed_at = super::announce::listed_at(view, m);
        let mut stale: Vec<&str> = Vec::new();
        for o in others {
            if let Some(peer) = o.report.peer(m.node_id())
                && (peer.ip.as_deref().is_none_or(|at| !listed_at.contains(&at))
                    || peer.health == PeerHealth::NoAddress)
            {
                stale.push(o.name());
            }
        }
        let mut from = stale.clone();
        if !island.contains(m.node_id()) && !from.contains(&anchor.name()) {
            from.push(anchor.name());
        }
        if joining {
            for o in members {
                if o.node_id() != m.node_id()
                    && o.report.peer(m.node_id()).is_none()
                    && !from.contains(&o.name())
                {
                    from.push(o.name());
                }
            }
        }
        if from.is_empty() {
            continue;
        }
        let why = if stale.is_empty() && !island.contains(m.node_id()) {
            format!(
                "{} (node {}) is not in the cluster",
                m.name(),
                short(m.node_id())
            )
        } else if stale.is_empty() {
            format!(
                "{} (node {}) is in the cluster, but {} do not know it yet while new shards join (met rather than left to gossip: slots move only between primaries that know each other, and a node learns a slot's new owner from the owner alone)",
                m.name(),
                short(m.node_id()),
                from.join(", ")
            )
        } else {
            format!(
                "{} (node {}) is at {ip}, but {} know it at another address or none",
                m.name(),
                short(m.node_id()),
                stale.join(", ")
            )
        };
        out.push(Decision::new(
            Intent::MeetNode {
                pod: m.name().to_owned(),
                from: from.into_iter().map(str::to_owned).collect(),
            },
            ReasonCode::NodeNotJoined,
            why,
        ));
    }
    out
}
