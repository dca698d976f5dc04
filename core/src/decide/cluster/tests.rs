//! Given node reports, when `decide` runs, then exactly these intents.

use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::cluster::even_split;
use logbook_journal::{
    ClusterFailoverMode, ClusterNodeReport, ClusterPeer, Event, Intent, LinkStatus, PeerHealth,
    PodPhase, Reachability, ReasonCode, Role, SlotRange,
};

use crate::decide::given::Given;

mod external;
mod failover;
mod fencing;
mod reshard;

/// The node id of pod `i`'s node, generation `g` (a new one after its
/// volume is lost).
fn node(i: u32, g: u32) -> String {
    format!("{:08x}{:032x}", g, i)
}

fn pod(i: u32) -> String {
    format!("demo-{i}")
}

/// What a node reports: `primary_of` for a replica, `slots` for a
/// primary, and the peers it knows (pod index, generation, address
/// suffix, health).
struct Node {
    i: u32,
    g: u32,
    primary_of: Option<(u32, u32)>,
    slots: Vec<SlotRange>,
    epoch: u64,
}

/// Primary `i` of the formed three-shard cluster (`Given::formed`): its
/// third of the slots, at config epoch `i + 1`.
fn formed_primary(i: u32) -> Node {
    Node {
        i,
        g: 0,
        primary_of: None,
        slots: vec![even_split(3)[i as usize]],
        epoch: u64::from(i) + 1,
    }
}

impl Given {
    /// A Cluster of `shards` × (1 + `replicas`) pods, objects applied,
    /// every pod running and answering, no report yet.
    fn cluster(shards: i32, replicas: i32) -> Self {
        let mut g = Given::new();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
        spec.shards = Some(shards);
        spec.replicas_per_shard = Some(replicas);
        g.spec(&spec);
        g.applied(1);
        let n = u32::try_from(shards * (1 + replicas)).unwrap();
        g.event(Event::StatefulSetObserved {
            replicas: n,
            update_revision: Some("r1".into()),
        });
        for i in 0..n {
            g.pod(i, "r1");
            g.reach(i, Reachability::Reachable);
        }
        g
    }

    /// `node` reports itself with `peers` (pod, generation, health),
    /// each at its pod's address unless `stale` names it.
    fn report(&mut self, n: &Node, peers: &[(u32, u32, PeerHealth)], stale: &[u32]) -> &mut Self {
        self.report_state(n, peers, stale, true)
    }

    /// As [`Self::report`], the node saying `cluster_state:ok` or not.
    fn report_state(
        &mut self,
        n: &Node,
        peers: &[(u32, u32, PeerHealth)],
        stale: &[u32],
        state_ok: bool,
    ) -> &mut Self {
        let peers = peers
            .iter()
            .filter(|(p, g, _)| (*p, *g) != (n.i, n.g))
            .map(|(p, g, health)| ClusterPeer {
                node_id: node(*p, *g),
                ip: Some(if stale.contains(p) {
                    format!("10.9.9.{p}")
                } else {
                    format!("10.0.0.{p}")
                }),
                primary: true,
                primary_id: None,
                health: *health,
            })
            .collect();
        self.event(Event::ClusterNodeObserved {
            pod: pod(n.i),
            report: ClusterNodeReport {
                node_id: node(n.i, n.g),
                primary_id: n.primary_of.map(|(p, g)| node(p, g)),
                slots: n.slots.clone(),
                config_epoch: n.epoch,
                current_epoch: 6,
                state_ok,
                peers,
            },
        });
        self.role(
            n.i,
            if n.primary_of.is_some() {
                Role::Replica
            } else {
                Role::Primary
            },
            n.primary_of.map(|(p, _)| p),
        )
    }

    /// A formed 3 × 1 cluster: demo-0..2 primaries of the even split,
    /// demo-3..5 their replicas, all in sync and labelled.
    fn formed() -> Self {
        let mut g = Given::cluster(3, 1);
        let everyone: Vec<(u32, u32, PeerHealth)> =
            (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
        for i in 0..6 {
            let n = if i < 3 {
                formed_primary(i)
            } else {
                Node {
                    i,
                    g: 0,
                    primary_of: Some((i - 3, 0)),
                    slots: Vec::new(),
                    epoch: u64::from(i) + 1,
                }
            };
            g.report(&n, &everyone, &[]);
            g.repl(
                i,
                if i < 3 {
                    LinkStatus::NotReplica
                } else {
                    LinkStatus::Up
                },
                100,
                7,
            );
            g.label(i, if i < 3 { Role::Primary } else { Role::Replica });
        }
        g
    }
}

fn lone(i: u32) -> Node {
    Node {
        i,
        g: 0,
        primary_of: None,
        slots: Vec::new(),
        epoch: 0,
    }
}

#[test]
fn a_new_cluster_meets_every_pod_from_the_first() {
    let mut g = Given::cluster(3, 1);
    for i in 0..6 {
        g.report(&lone(i), &[], &[]);
    }
    let intents = g.intents();
    let want: Vec<Intent> = (1..6)
        .map(|i| Intent::MeetNode {
            pod: pod(i),
            from: vec![pod(0)],
        })
        .collect();
    assert_eq!(intents, want);
}

#[test]
fn once_meshed_the_slots_are_split_evenly_over_the_first_pods() {
    let mut g = Given::cluster(3, 1);
    let everyone: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    for i in 0..6 {
        g.report(&lone(i), &everyone, &[]);
    }
    let decisions = g.decide();
    let split = even_split(3);
    let intents: Vec<Intent> = decisions.iter().map(|d| d.intent.clone()).collect();
    assert_eq!(
        intents,
        (0..3)
            .map(|i| Intent::AssignSlots {
                pod: pod(i),
                slots: vec![split[i as usize]]
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        decisions[0].reason.code,
        ReasonCode::SlotsUnassigned { unassigned: 16_384 }
    );
}

#[test]
fn two_islands_met_from_different_anchors_are_joined_from_the_anchor() {
    // demo-0 was not a member yet when demo-1 met demo-2 and demo-3;
    // then demo-0 met demo-4 and demo-5. Each island knows all its own.
    let mut g = Given::cluster(3, 1);
    for island in [[0, 4, 5], [1, 2, 3]] {
        let peers: Vec<_> = island.iter().map(|i| (*i, 0, PeerHealth::Ok)).collect();
        for i in island {
            g.report(&lone(i), &peers, &[]);
        }
    }
    let want: Vec<Intent> = [1, 2, 3]
        .into_iter()
        .map(|i| Intent::MeetNode {
            pod: pod(i),
            from: vec![pod(0)],
        })
        .collect();
    assert_eq!(g.intents(), want);
}

#[test]
fn slots_wait_for_every_pod_to_know_every_other() {
    let mut g = Given::cluster(3, 1);
    let everyone: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    for i in 0..5 {
        g.report(&lone(i), &everyone, &[]);
    }
    g.report(&lone(5), &[(0, 0, PeerHealth::Ok)], &[]);
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn empty_nodes_become_replicas_of_the_shards_with_fewest() {
    let mut g = Given::cluster(3, 1);
    let everyone: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    let split = even_split(3);
    for i in 0..6 {
        let mut n = lone(i);
        if i < 3 {
            n.slots = vec![split[i as usize]];
        }
        g.report(&n, &everyone, &[]);
    }
    assert_eq!(
        g.intents(),
        (3..6)
            .map(|i| Intent::ReplicateShard {
                pod: pod(i),
                primary: pod(i - 3),
                node_id: node(i - 3, 0)
            })
            .collect::<Vec<_>>()
    );
}

#[test]
fn no_replica_is_seated_beside_its_primary_when_another_seat_is_free() {
    // As the real scheduler placed them on three nodes: each node holds a
    // primary and one empty pod. Seated greedily in ordinal order, demo-5
    // would be left only the shard of demo-2, on its own node.
    let mut g = Given::cluster(3, 1);
    for (i, on) in [
        (0, "n17"),
        (1, "n18"),
        (2, "n16"),
        (3, "n18"),
        (4, "n17"),
        (5, "n16"),
    ] {
        g.event(Event::PodObserved {
            pod: pod(i),
            uid: format!("uid-{i}-r1"),
            ip: Some(format!("10.0.0.{i}")),
            phase: PodPhase::Running,
            ready: true,
            node: Some(on.into()),
            revision: Some("r1".into()),
        });
    }
    let everyone: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    let split = even_split(3);
    for i in 0..6 {
        let mut n = lone(i);
        if i < 3 {
            n.slots = vec![split[i as usize]];
        }
        g.report(&n, &everyone, &[]);
    }
    let on = |i: u32| ["n17", "n18", "n16", "n18", "n17", "n16"][i as usize];
    let mut followed = Vec::new();
    for intent in g.intents() {
        let Intent::ReplicateShard {
            pod: p, primary, ..
        } = intent
        else {
            continue;
        };
        let num = |name: &str| -> u32 { name.trim_start_matches("demo-").parse().unwrap() };
        let (r, q) = (num(&p), num(&primary));
        assert_ne!(on(r), on(q), "{p} replicates {primary} on its own node");
        followed.push(q);
    }
    followed.sort_unstable();
    assert_eq!(followed, vec![0, 1, 2], "each shard gets one replica");
}

#[test]
fn a_replica_too_many_in_one_shard_moves_to_a_shard_without_one() {
    // demo-5 followed demo-2 and now follows demo-1 (seated there while
    // demo-4 was cut off, which came back): demo-1's shard has two in
    // sync, demo-2's none.
    let mut g = Given::formed();
    let everyone: Vec<(u32, u32, PeerHealth)> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    g.report(
        &Node {
            i: 5,
            g: 0,
            primary_of: Some((1, 0)),
            slots: Vec::new(),
            epoch: 6,
        },
        &everyone,
        &[],
    );
    g.repl(5, LinkStatus::Up, 100, 7);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::ReplicateShard {
            pod: pod(5),
            primary: pod(2),
            node_id: node(2, 0),
        }]
    );
    let detail = &decisions.first().unwrap().reason.detail;
    assert!(
        detail.contains("demo-1's shard has more replicas in sync than the spec's 1")
            && detail.contains("demo-5 moves from demo-1"),
        "{detail}"
    );
    // While the second one is not in sync, it is not a spare: nothing
    // moves (the shard may be about to lose the other).
    g.repl(5, LinkStatus::Down, 100, 7);
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn a_formed_cluster_decides_nothing() {
    let g = Given::formed();
    assert_eq!(g.intents(), Vec::<Intent>::new());
    assert!(g.state.cluster.formed_at.is_some());
    assert_eq!(g.state.cluster.shards().len(), 3);
}

#[test]
fn a_replica_that_lost_its_volume_is_forgotten_met_and_attached_again() {
    let mut g = Given::formed();
    // demo-3 comes back as a new node that knows nobody.
    g.report(
        &Node {
            i: 3,
            g: 1,
            primary_of: None,
            slots: Vec::new(),
            epoch: 0,
        },
        &[],
        &[],
    );
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::ForgetNode {
            pod: pod(3),
            node_id: node(3, 0)
        }]
    );
    g.succeed(Intent::ForgetNode {
        pod: pod(3),
        node_id: node(3, 0),
    });
    // The others no longer list the old node.
    let others: Vec<_> = [0, 1, 2, 4, 5]
        .iter()
        .map(|i| (*i, 0, PeerHealth::Ok))
        .collect();
    for i in [0_u32, 1, 2] {
        g.report(&formed_primary(i), &others, &[]);
    }
    for i in [4_u32, 5] {
        g.report(
            &Node {
                i,
                g: 0,
                primary_of: Some((i - 3, 0)),
                slots: Vec::new(),
                epoch: 9,
            },
            &others,
            &[],
        );
    }
    assert_eq!(
        g.intents(),
        vec![Intent::MeetNode {
            pod: pod(3),
            from: vec![pod(0)]
        }]
    );
    let mut with_new = others.clone();
    with_new.push((3, 1, PeerHealth::Ok));
    g.report(&formed_primary(0), &with_new, &[]);
    g.report(
        &Node {
            i: 3,
            g: 1,
            primary_of: None,
            slots: Vec::new(),
            epoch: 0,
        },
        &with_new,
        &[],
    );
    assert_eq!(
        g.intents(),
        vec![Intent::ReplicateShard {
            pod: pod(3),
            primary: pod(0),
            node_id: node(0, 0)
        }]
    );
}

#[test]
fn a_primary_that_lost_its_volume_is_taken_over_before_anything_else() {
    let mut g = Given::formed();
    g.report(
        &Node {
            i: 1,
            g: 1,
            primary_of: None,
            slots: Vec::new(),
            epoch: 0,
        },
        &[],
        &[],
    );
    let shards = g.state.cluster.shards();
    let lost = shards.iter().find(|s| s.node_id == node(1, 0)).unwrap();
    assert!(
        lost.retired,
        "the old node still owns its slots until a replica takes them"
    );
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Takeover
        }]
    );
    // Its replica flagging the lost node `fail` changes nothing: it may
    // never stand in Valkey's election (a replica back from a restart with
    // its primary gone counts its data too old), while the node at its
    // primary's address holds its full resync back only so long.
    let everyone: Vec<(u32, u32, PeerHealth)> = (0..6)
        .map(|i| {
            let health = if i == 1 {
                PeerHealth::Failed
            } else {
                PeerHealth::Ok
            };
            (i, 0, health)
        })
        .collect();
    g.report(
        &Node {
            i: 4,
            g: 0,
            primary_of: Some((1, 0)),
            slots: Vec::new(),
            epoch: 5,
        },
        &everyone,
        &[],
    );
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Takeover
        }]
    );
}

#[test]
fn pods_at_new_addresses_are_met_again_by_those_that_knew_the_old() {
    let mut g = Given::formed();
    let everyone: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    // Every other node still has demo-2 at its old address.
    for i in [0_u32, 1] {
        g.report(&formed_primary(i), &everyone, &[2]);
    }
    assert_eq!(
        g.intents(),
        vec![Intent::MeetNode {
            pod: pod(2),
            from: vec![pod(0), pod(1)]
        }]
    );
}

#[test]
fn a_node_of_no_pod_of_this_cluster_is_forgotten() {
    let mut g = Given::formed();
    let mut peers: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    peers.push((77, 0, PeerHealth::Ok));
    g.report(
        &Node {
            i: 0,
            g: 0,
            primary_of: None,
            slots: vec![even_split(3)[0]],
            epoch: 1,
        },
        &peers,
        &[],
    );
    assert_eq!(
        g.intents(),
        vec![Intent::ForgetNode {
            pod: String::new(),
            node_id: node(77, 0)
        }]
    );
}

#[test]
fn labels_follow_a_failover_valkey_made() {
    let mut g = Given::formed();
    // demo-3 took over demo-0's slots at a higher epoch.
    let everyone: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    g.report(
        &Node {
            i: 3,
            g: 0,
            primary_of: None,
            slots: vec![even_split(3)[0]],
            epoch: 7,
        },
        &everyone,
        &[],
    );
    g.report(
        &Node {
            i: 0,
            g: 0,
            primary_of: Some((3, 0)),
            slots: Vec::new(),
            epoch: 7,
        },
        &everyone,
        &[],
    );
    assert_eq!(
        g.intents(),
        vec![Intent::SetShardRoleLabels {
            primaries: vec![pod(1), pod(2), pod(3)]
        }]
    );
}

#[test]
fn a_roll_takes_replicas_first_then_hands_each_primary_over() {
    let mut g = Given::formed();
    g.event(Event::StatefulSetObserved {
        replicas: 6,
        update_revision: Some("r2".into()),
    });
    assert_eq!(
        g.intents(),
        vec![Intent::RollPod {
            pod: pod(5),
            revision: "r2".into()
        }]
    );
    for i in 3..6 {
        g.event(Event::PodObserved {
            pod: pod(i),
            uid: format!("uid-{i}-r2"),
            ip: Some(format!("10.0.0.{i}")),
            phase: PodPhase::Running,
            ready: true,
            node: None,
            revision: Some("r2".into()),
        });
        g.label(i, Role::Replica)
            .reach(i, Reachability::Reachable)
            .role(i, Role::Replica, Some(i - 3))
            .repl(i, LinkStatus::Up, 100, 7);
    }
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(3),
            from: Some(pod(0)),
            mode: ClusterFailoverMode::Coordinated
        }]
    );
}

#[test]
fn a_replica_down_on_an_outdated_revision_is_rolled_without_waiting_for_it() {
    // demo-5 crashed on r2 (a config Valkey refuses); the spec was set
    // right (r3): the cluster is not whole, and would never be.
    let mut g = Given::formed();
    g.event(Event::StatefulSetObserved {
        replicas: 6,
        update_revision: Some("r2".into()),
    });
    g.event(Event::PodObserved {
        pod: pod(5),
        uid: "uid-5-r2".into(),
        ip: Some("10.0.0.5".into()),
        phase: PodPhase::Running,
        ready: false,
        node: None,
        revision: Some("r2".into()),
    });
    g.reach(5, Reachability::Refused).label(5, Role::Replica);
    g.event(Event::StatefulSetObserved {
        replicas: 6,
        update_revision: Some("r3".into()),
    });
    let rolls: Vec<Intent> = g
        .intents()
        .into_iter()
        .filter(|i| matches!(i, Intent::RollPod { .. }))
        .collect();
    assert_eq!(
        rolls,
        vec![Intent::RollPod {
            pod: pod(5),
            revision: "r3".into()
        }]
    );
    // A primary down is a failover's, never a roll's.
    let mut g = Given::formed();
    g.event(Event::PodObserved {
        pod: pod(0),
        uid: "uid-0-r1".into(),
        ip: Some("10.0.0.0".into()),
        phase: PodPhase::Running,
        ready: false,
        node: None,
        revision: Some("r1".into()),
    });
    g.label(0, Role::Primary);
    g.event(Event::StatefulSetObserved {
        replicas: 6,
        update_revision: Some("r3".into()),
    });
    assert!(
        !g.intents()
            .iter()
            .any(|i| matches!(i, Intent::RollPod { pod, .. } if *pod == self::pod(0))),
        "{:?}",
        g.intents()
    );
}

#[test]
fn a_node_some_member_follows_is_not_asked_to_be_forgotten() {
    // demo-3 replicates a node of no pod of this cluster: Valkey would
    // refuse "Can't forget my master", so nobody is asked until demo-3
    // follows another primary.
    let mut g = Given::formed();
    let mut peers: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    peers.push((77, 0, PeerHealth::Ok));
    g.report(
        &Node {
            i: 3,
            g: 0,
            primary_of: Some((77, 0)),
            slots: Vec::new(),
            epoch: 4,
        },
        &peers,
        &[],
    );
    assert!(
        !g.intents()
            .iter()
            .any(|i| matches!(i, Intent::ForgetNode { .. })),
        "{:?}",
        g.intents()
    );
}

/// A formed cluster of 3 shards × 2 replicas on 9 pods: `layout` gives
/// each shard's primary then its replicas (pod indexes), every replica in
/// sync; then the spec lowers replicasPerShard to 1 (generation 2).
fn shrinking(layout: [[u32; 3]; 3]) -> Given {
    let mut g = Given::cluster(3, 2);
    let everyone: Vec<(u32, u32, PeerHealth)> = (0..9).map(|i| (i, 0, PeerHealth::Ok)).collect();
    let split = even_split(3);
    for (shard, pods) in layout.iter().enumerate() {
        let primary = pods[0];
        g.report(
            &Node {
                i: primary,
                g: 0,
                primary_of: None,
                slots: vec![split[shard]],
                epoch: u64::try_from(shard).unwrap() + 1,
            },
            &everyone,
            &[],
        );
        g.repl(primary, LinkStatus::NotReplica, 100, 7);
        g.label(primary, Role::Primary);
        for &r in &pods[1..] {
            g.report(
                &Node {
                    i: r,
                    g: 0,
                    primary_of: Some((primary, 0)),
                    slots: Vec::new(),
                    epoch: 1,
                },
                &everyone,
                &[],
            );
            g.repl(r, LinkStatus::Up, 100, 7);
            g.label(r, Role::Replica);
        }
    }
    assert_eq!(g.intents(), Vec::<Intent>::new(), "formed and settled");
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.shards = Some(3);
    spec.replicas_per_shard = Some(1);
    g.spec_at(2, &spec);
    g
}

#[test]
fn fewer_replicas_hand_a_leaving_primary_s_shard_to_a_staying_replica_first() {
    // demo-6, demo-7 (leaving: the spec keeps demo-0..5) are primaries.
    let mut g = shrinking([[6, 0, 8], [7, 2, 3], [1, 4, 5]]);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::ClusterFailover {
            pod: pod(0),
            from: Some(pod(6)),
            mode: ClusterFailoverMode::Coordinated
        }]
    );
    assert_eq!(
        decisions[0].reason.code,
        ReasonCode::ScaleIn { from: 9, to: 6 }
    );
    // Done: demo-0 primary of the first shard, demo-6 and demo-8 its
    // replicas.
    let everyone: Vec<(u32, u32, PeerHealth)> = (0..9).map(|i| (i, 0, PeerHealth::Ok)).collect();
    g.succeed(Intent::ClusterFailover {
        pod: pod(0),
        from: Some(pod(6)),
        mode: ClusterFailoverMode::Coordinated,
    });
    g.report(
        &Node {
            i: 0,
            g: 0,
            primary_of: None,
            slots: vec![even_split(3)[0]],
            epoch: 7,
        },
        &everyone,
        &[],
    );
    for r in [6, 8] {
        g.report(
            &Node {
                i: r,
                g: 0,
                primary_of: Some((0, 0)),
                slots: Vec::new(),
                epoch: 7,
            },
            &everyone,
            &[],
        );
    }
    g.repl(0, LinkStatus::NotReplica, 100, 7);
    // The next leaving primary, demo-7, to its staying in-sync replica.
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(2),
            from: Some(pod(7)),
            mode: ClusterFailoverMode::Coordinated
        }]
    );
}

#[test]
fn fewer_replicas_move_a_staying_replica_to_a_shard_left_without_one() {
    // demo-0's replicas demo-6 and demo-7 both leave; demo-1's shard
    // keeps two (demo-3, demo-4) and needs one.
    let g = shrinking([[0, 6, 7], [1, 3, 4], [2, 5, 8]]);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::ReplicateShard {
            pod: pod(4),
            primary: pod(0),
            node_id: node(0, 0),
        }]
    );
    assert!(
        decisions[0]
            .reason
            .detail
            .contains("demo-0's shard keeps 0 of the 1 it needs"),
        "{}",
        decisions[0].reason.detail
    );
}

#[test]
fn fewer_replicas_wait_for_the_moved_replica_then_shrink_the_statefulset() {
    let mut g = shrinking([[0, 6, 7], [1, 3, 4], [2, 5, 8]]);
    let everyone: Vec<(u32, u32, PeerHealth)> = (0..9).map(|i| (i, 0, PeerHealth::Ok)).collect();
    g.succeed(Intent::ReplicateShard {
        pod: pod(4),
        primary: pod(0),
        node_id: node(0, 0),
    });
    g.report(
        &Node {
            i: 4,
            g: 0,
            primary_of: Some((0, 0)),
            slots: Vec::new(),
            epoch: 1,
        },
        &everyone,
        &[],
    );
    g.repl(4, LinkStatus::Syncing, 0, 7);
    assert_eq!(g.intents(), Vec::<Intent>::new(), "demo-4 is syncing");
    g.repl(4, LinkStatus::Up, 100, 7);
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 2 }]);
}

/// The spec of `Given::formed()` scaled in to no replica.
fn three_shards_without_replicas() -> ValkeyClusterSpec {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.shards = Some(3);
    spec.replicas_per_shard = Some(0);
    spec
}

#[test]
fn fewer_replicas_that_remove_only_replicas_shrink_at_once() {
    let mut g = Given::formed();
    g.spec_at(2, &three_shards_without_replicas());
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 2 }]);
}

#[test]
fn a_removed_pods_node_no_member_lists_is_still_forgotten_in_the_journal() {
    // Scaled in to no replica: a forget cut short (one member's process
    // gone mid-intent) left demo-3's node forgotten by every member but
    // still held by the journal, which would name demo-3 as a replica in
    // the status for ever. A `ForgetNode` is decided for it all the same
    // (it succeeds with no member to ask and drops the node).
    let mut g = Given::formed();
    g.spec_at(2, &three_shards_without_replicas());
    g.applied(2);
    for i in 3..6 {
        g.event(Event::PodDeleted { pod: pod(i) });
    }
    let members: Vec<_> = (0..3).map(|i| (i, 0, PeerHealth::Ok)).collect();
    for i in [0_u32, 1, 2] {
        g.report(&formed_primary(i), &members, &[]);
    }
    let forgets: Vec<Intent> = g
        .intents()
        .into_iter()
        .filter(|i| matches!(i, Intent::ForgetNode { .. }))
        .collect();
    assert_eq!(
        forgets,
        (3..6)
            .map(|i| Intent::ForgetNode {
                pod: pod(i),
                node_id: node(i, 0)
            })
            .collect::<Vec<_>>()
    );
    for forget in forgets {
        g.succeed(forget);
    }
    assert!(g.status().shards.iter().all(|s| s.replicas.is_empty()));
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// A 2-shard cluster restored to a moment: shard 0 owned 0-8191 then,
/// shard 1 8192-16383 (slots 8000-8191 had moved to shard 0 after shard
/// 1's base), each pod loaded its shard.
fn restored_to_a_moment() -> Given {
    let mut g = Given::cluster(2, 0);
    let target = logbook_journal::BackupTarget {
        bucket: "b".into(),
        region: "us-east-1".into(),
        endpoint: None,
        path_style: None,
        secret: "s3".into(),
        dir: "ns/shop/_archive/".into(),
        cluster_dir: String::new(),
    };
    let range = |start, end| SlotRange { start, end };
    let shard = |i: u32, slots: Vec<SlotRange>| logbook_journal::RestoreShard {
        shard: i,
        key: format!("ns/shop/_archive/c{i}/base.rdb"),
        bytes: 10,
        sha256: "x".into(),
        slots,
    };
    let stream = |i: u32, slots: Vec<SlotRange>| logbook_journal::PointInTimeShard {
        shard: i,
        chain_dir: format!("ns/shop/_archive/c{i}/"),
        segments: 3,
        end: 99,
        digest: "d".into(),
        slots,
    };
    g.event(Event::RestoreToTimeVerified {
        plan: logbook_journal::RestorePlan {
            source: "the archive of ValkeyCluster shop at 12:00".into(),
            target,
            topology: "Cluster".into(),
            server_version: None,
            journal_seq: 0,
            shards: vec![
                shard(0, vec![range(0, 8191)]),
                shard(1, vec![range(8192, 16383)]),
            ],
        },
        point: logbook_journal::PointInTimePlan {
            until: logbook_journal::Timestamp::EPOCH,
            shards: vec![
                stream(0, vec![range(0, 8191)]),
                stream(1, vec![range(8192, 16383)]),
            ],
            notes: vec![],
        },
    });
    g
}

#[test]
fn a_pod_restored_to_a_moment_gives_up_slots_it_did_not_own_then_before_meeting() {
    let mut g = restored_to_a_moment();
    // Shard 1's base still held keys of 8000-8191 (moved away later);
    // pod 1 claimed them when it loaded. Pod 0 has not reported yet:
    // nobody meets anybody.
    let mut one = lone(1);
    one.slots = vec![
        SlotRange {
            start: 8000,
            end: 8191,
        },
        SlotRange {
            start: 8192,
            end: 16000,
        },
    ];
    g.report(&one, &[], &[]);
    assert_eq!(
        g.intents(),
        vec![Intent::DropForeignSlots {
            pod: pod(1),
            slots: vec![SlotRange {
                start: 8000,
                end: 8191
            }],
        }]
    );
    let mut zero = lone(0);
    zero.slots = vec![SlotRange {
        start: 0,
        end: 8191,
    }];
    g.report(&zero, &[], &[]);
    one.slots = vec![SlotRange {
        start: 8192,
        end: 16000,
    }];
    g.report(&one, &[], &[]);
    // Each claims only its own: now they meet.
    let intents = g.intents();
    assert!(
        intents.iter().all(|i| matches!(i, Intent::MeetNode { .. })) && !intents.is_empty(),
        "{intents:?}"
    );
}

#[test]
fn a_restore_to_a_moment_waits_for_every_restored_pod_before_meeting() {
    let mut g = restored_to_a_moment();
    let mut zero = lone(0);
    zero.slots = vec![SlotRange {
        start: 0,
        end: 8191,
    }];
    g.report(&zero, &[], &[]);
    assert_eq!(g.intents(), vec![], "pod 1 has not reported");
}
