//! Resharding: given node reports and a change of `shards`, then these
//! moves.

use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::cluster::{SLOTS, even_split, slot_count};
use logbook_journal::{
    Event, Intent, LinkStatus, MigrationPhase, MigrationSide, PeerHealth, Role, SlotMigrationJob,
    SlotPeer, SlotRange,
};

use super::{Node, node, pod};
use crate::decide::given::Given;

/// A formed cluster on `pods` pods: each shard is `(primary, replicas,
/// slots)`; every other pod is an empty primary that knows everyone.
/// Then the spec asks for `shards` shards × `replicas` (generation 2),
/// its objects applied.
fn laid_out(
    pods: u32,
    shards: &[(u32, &[u32], Vec<SlotRange>)],
    want: i32,
    replicas: i32,
) -> Given {
    let mut g = Given::cluster(i32::try_from(shards.len()).unwrap(), replicas);
    for i in 0..pods {
        g.pod(i, "r1");
        g.reach(i, logbook_journal::Reachability::Reachable);
    }
    let everyone: Vec<(u32, u32, PeerHealth)> = (0..pods).map(|i| (i, 0, PeerHealth::Ok)).collect();
    let mut placed: Vec<u32> = Vec::new();
    for (epoch, (primary, reps, slots)) in (1_u64..).zip(shards) {
        g.report(
            &Node {
                i: *primary,
                g: 0,
                primary_of: None,
                slots: slots.clone(),
                epoch,
            },
            &everyone,
            &[],
        );
        g.repl(*primary, LinkStatus::NotReplica, 100, 7);
        g.label(*primary, Role::Primary);
        placed.push(*primary);
        for r in *reps {
            g.report(
                &Node {
                    i: *r,
                    g: 0,
                    primary_of: Some((*primary, 0)),
                    slots: Vec::new(),
                    epoch,
                },
                &everyone,
                &[],
            );
            g.repl(*r, LinkStatus::Up, 100, 7);
            g.label(*r, Role::Replica);
            placed.push(*r);
        }
    }
    for i in (0..pods).filter(|i| !placed.contains(i)) {
        g.report(
            &Node {
                i,
                g: 0,
                primary_of: None,
                slots: Vec::new(),
                epoch: 0,
            },
            &everyone,
            &[],
        );
        g.repl(i, LinkStatus::NotReplica, 0, 9);
        g.label(i, Role::Replica);
    }
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.shards = Some(want);
    spec.replicas_per_shard = Some(replicas);
    g.spec_at(2, &spec);
    g.applied(2);
    g.event(Event::StatefulSetObserved {
        replicas: pods,
        update_revision: Some("r1".into()),
    });
    g
}

/// The moves decided, as (from, to, slot count).
fn moves(g: &Given) -> Vec<(String, String, u32)> {
    g.intents()
        .into_iter()
        .map(|i| match i {
            Intent::MoveSlots {
                from, to, slots, ..
            } => (from, to, slot_count(&slots)),
            other => panic!("expected only moves, got {other:?}"),
        })
        .collect()
}

fn three() -> Vec<(u32, &'static [u32], Vec<SlotRange>)> {
    let split = even_split(3);
    vec![
        (0, &[3][..], vec![split[0]]),
        (1, &[4][..], vec![split[1]]),
        (2, &[5][..], vec![split[2]]),
    ]
}

/// Three shards without replicas on demo-0..2.
fn three_bare() -> Vec<(u32, &'static [u32], Vec<SlotRange>)> {
    let split = even_split(3);
    vec![
        (0, &[][..], vec![split[0]]),
        (1, &[][..], vec![split[1]]),
        (2, &[][..], vec![split[2]]),
    ]
}

#[test]
fn more_shards_seat_the_new_primary_s_replica_first_then_every_source_gives_its_share_at_once() {
    let g = laid_out(8, &three(), 4, 1);
    // demo-6 is picked as the new shard's primary: demo-7 becomes its
    // replica, not a third replica of an old shard.
    assert_eq!(
        g.intents(),
        vec![Intent::ReplicateShard {
            pod: pod(7),
            primary: pod(6),
            node_id: node(6, 0),
        }]
    );
    let mut g = g;
    g.report(
        &Node {
            i: 7,
            g: 0,
            primary_of: Some((6, 0)),
            slots: Vec::new(),
            epoch: 0,
        },
        &(0..8).map(|i| (i, 0, PeerHealth::Ok)).collect::<Vec<_>>(),
        &[],
    );
    g.repl(7, LinkStatus::Up, 100, 7);
    let planned = moves(&g);
    assert_eq!(planned.len(), 3, "{planned:?}");
    assert!(
        planned.iter().all(|(_, to, _)| to == "demo-6"),
        "{planned:?}"
    );
    let total: u32 = planned.iter().map(|m| m.2).sum();
    assert_eq!(total, SLOTS / 4);
    // Each old shard keeps 4096: 5462 - 1366, 5461 - 1365, 5461 - 1365.
    let given: Vec<u32> = planned.iter().map(|m| m.2).collect();
    assert_eq!(given, vec![1366, 1365, 1365]);
    let reason = &g.decide()[0].reason;
    assert!(
        matches!(
            reason.code,
            logbook_journal::ReasonCode::Reshard {
                generation: 2,
                shards: 4,
                slots_to_move: 4096
            }
        ),
        "{reason:?}"
    );
}

#[test]
fn a_balanced_cluster_moves_nothing() {
    let g = laid_out(6, &three(), 3, 1);
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn fewer_shards_drain_the_leaving_shard_before_any_pod_goes() {
    let split = even_split(4);
    let shards = vec![
        (0, &[4][..], vec![split[0]]),
        (1, &[5][..], vec![split[1]]),
        (2, &[7][..], vec![split[2]]),
        (6, &[3][..], vec![split[3]]),
    ];
    // The spec keeps demo-0..5: the shard of demo-6 (and its replica
    // demo-3) has the most on pods removed... demo-2's replica demo-7
    // too, but demo-6 is a removed primary: it is drained.
    let g = laid_out(8, &shards, 3, 1);
    let planned = moves(&g);
    assert!(
        planned.iter().all(|(from, _, _)| from == "demo-6"),
        "{planned:?}"
    );
    let total: u32 = planned.iter().map(|m| m.2).sum();
    assert_eq!(total, 4096);
    assert!(
        !g.intents()
            .iter()
            .any(|i| matches!(i, Intent::ApplyResources { .. })),
        "no pod removed before the drain"
    );
}

fn job(state: &str) -> SlotMigrationJob {
    SlotMigrationJob {
        name: "f".repeat(40),
        side: MigrationSide::Export,
        source: node(0, 0),
        target: node(3, 0),
        slots: vec![SlotRange {
            start: 4096,
            end: 5461,
        }],
        phase: MigrationPhase::from_valkey(state),
        message: String::new(),
        remaining_repl_size: 0,
    }
}

#[test]
fn a_migration_seen_under_way_is_waited_for_under_its_own_slots_and_nothing_else_moves() {
    let mut g = laid_out(4, &three_bare(), 4, 0);
    g.event(Event::SlotMigrationObserved {
        pod: pod(0),
        job: job("replicating"),
        elapsed_ms: None,
    });
    assert_eq!(
        g.intents(),
        vec![Intent::MoveSlots {
            from: pod(0),
            from_node: node(0, 0),
            to: pod(3),
            to_node: node(3, 0),
            slots: vec![SlotRange {
                start: 4096,
                end: 5461
            }],
        }]
    );
    // Over: planning resumes from ownership.
    g.event(Event::SlotMigrationObserved {
        pod: pod(0),
        job: job("failed"),
        elapsed_ms: None,
    });
    assert!(g.state.reshard.migrations.is_empty());
}

/// A new leader finds the reshard's moves in flight, the job of one still
/// under way on its source (its probe round saw it): nothing shows the
/// moves done, so they are abandoned, and the decision afresh waits for
/// that job under exactly its slots (the executor adopts it), starting
/// nothing else and never the same slots twice.
#[test]
fn a_move_found_in_flight_with_its_job_under_way_is_decided_afresh_as_that_job() {
    let mut g = laid_out(4, &three_bare(), 4, 0);
    let planned = g.decide();
    assert_eq!(planned.len(), 3, "{planned:?}");
    let ids: Vec<uuid::Uuid> = (0..3).map(|n| uuid::Uuid::from_u128(7_000 + n)).collect();
    g.event(Event::Decided {
        intents: planned
            .iter()
            .zip(&ids)
            .map(|(d, id)| logbook_journal::PlannedIntent {
                intent_id: *id,
                intent: d.intent.clone(),
                reason: d.reason.clone(),
            })
            .collect(),
    });
    g.event(Event::OperatorStarted {
        version: "t".to_owned(),
        instance: "op-2".to_owned(),
        epoch: 2,
        gap_ms: Some(3_000),
    });
    g.event(Event::SlotMigrationObserved {
        pod: pod(0),
        job: job("replicating"),
        elapsed_ms: None,
    });
    for (d, id) in planned.iter().zip(&ids) {
        assert_eq!(crate::decide::already_done(&g.state, &d.intent), None);
        g.event(Event::IntentAbandoned {
            intent_id: *id,
            reason: "found without an outcome when the journal was taken over".to_owned(),
        });
    }
    assert_eq!(
        g.intents(),
        vec![Intent::MoveSlots {
            from: pod(0),
            from_node: node(0, 0),
            to: pod(3),
            to_node: node(3, 0),
            slots: vec![SlotRange {
                start: 4096,
                end: 5461
            }],
        }]
    );
}

#[test]
fn a_half_moved_slot_is_finished_towards_its_target_or_its_lone_marker_cleared() {
    let mut g = laid_out(6, &three(), 3, 1);
    g.event(Event::SlotStatesObserved {
        pod: pod(0),
        node_id: node(0, 0),
        migrating: vec![SlotPeer {
            slot: 7,
            node_id: node(1, 0),
        }],
        importing: Vec::new(),
    });
    g.event(Event::SlotStatesObserved {
        pod: pod(2),
        node_id: node(2, 0),
        migrating: Vec::new(),
        importing: vec![SlotPeer {
            slot: 9,
            node_id: node(4, 0),
        }],
    });
    assert_eq!(
        g.intents(),
        vec![
            Intent::SettleSlot {
                slot: 7,
                owner: pod(0),
                owner_node: node(0, 0),
                to: Some(pod(1)),
                to_node: Some(node(1, 0)),
            },
            Intent::SettleSlot {
                slot: 9,
                owner: pod(0),
                owner_node: node(0, 0),
                to: None,
                to_node: None,
            },
        ]
    );
}

/// The first intent `decide` plans, decided under id `id`, then failed
/// with `error`.
fn first_fails(g: &mut Given, id: u128, error: &str) -> usize {
    let planned = g.decide();
    let id = uuid::Uuid::from_u128(id);
    g.event(Event::Decided {
        intents: vec![logbook_journal::PlannedIntent {
            intent_id: id,
            intent: planned[0].intent.clone(),
            reason: planned[0].reason.clone(),
        }],
    });
    g.event(Event::IntentFailed {
        intent_id: id,
        error: error.to_owned(),
        retryable: true,
    });
    planned.len()
}

#[test]
fn a_move_failing_with_the_same_error_is_given_up_and_the_status_says_so() {
    let mut g = laid_out(4, &three_bare(), 4, 0);
    for n in 0..super::super::resharding::MAX_SAME_FAILURES {
        let planned = first_fails(&mut g, 9_000 + u128::from(n), "Slot migration failed: OOM");
        assert_eq!(planned, 3, "try {n}");
    }
    // The first source's move is given up; the other two still go.
    assert_eq!(g.decide().len(), 2);
    let status = g.status();
    let reshard = status.reshard.clone().expect("a reshard in the status");
    assert_eq!(reshard.phase, "Failing");
    assert!(reshard.message.contains("OOM"), "{}", reshard.message);
    let degraded = status.condition("Degraded").unwrap();
    assert_eq!(degraded.reason, "ReshardFailing");
    // A new generation tries again.
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.shards = Some(4);
    spec.replicas_per_shard = Some(0);
    g.spec_at(3, &spec);
    g.applied(3);
    assert_eq!(g.decide().len(), 3);
}

#[test]
fn a_move_that_hands_back_while_its_job_runs_is_not_a_failure_and_is_never_given_up() {
    let mut g = laid_out(4, &three_bare(), 4, 0);
    g.event(Event::SlotMigrationObserved {
        pod: pod(0),
        job: job("replicating"),
        elapsed_ms: None,
    });
    for n in 0..super::super::resharding::MAX_SAME_FAILURES + 2 {
        let planned = first_fails(
            &mut g,
            9_100 + u128::from(n),
            "slot migration job f from demo-0 to demo-3 is still replicating after 2 s (the operator stopped waiting to act on: demo-1 does not answer (Refused)); left running, to be followed again",
        );
        assert_eq!(planned, 1, "try {n}");
    }
    assert!(
        g.state.reshard.failures.is_empty(),
        "{:?}",
        g.state.reshard.failures
    );
    // The same error once the job is over counts.
    g.event(Event::SlotMigrationObserved {
        pod: pod(0),
        job: job("failed"),
        elapsed_ms: None,
    });
    first_fails(
        &mut g,
        9_200,
        "slot migration job f moving 1366 slots failed: OOM",
    );
    assert_eq!(g.state.reshard.failures.len(), 1);
}

/// `ranges` without the slots of `gone`.
fn without(ranges: &[SlotRange], gone: SlotRange) -> Vec<SlotRange> {
    let mut out = Vec::new();
    for r in ranges {
        if gone.end < r.start || gone.start > r.end {
            out.push(*r);
            continue;
        }
        if r.start < gone.start {
            out.push(SlotRange {
                start: r.start,
                end: gone.start - 1,
            });
        }
        if r.end > gone.end {
            out.push(SlotRange {
                start: gone.end + 1,
                end: r.end,
            });
        }
    }
    out
}

#[test]
fn a_classic_move_that_hands_back_after_carrying_slots_is_progress_not_a_failure() {
    let mut g = laid_out(4, &three_bare(), 4, 0);
    let everyone: Vec<(u32, u32, PeerHealth)> = (0..4).map(|i| (i, 0, PeerHealth::Ok)).collect();
    let mut source = vec![even_split(3)[0]];
    let mut taken: Vec<SlotRange> = Vec::new();
    let handback = "moved 10 slots (4096-4105) of 1366 slots (4096-5461) from demo-0 to demo-3 by the classic pipeline, then stopped so the operator can act on: demo-3 does not answer (TimedOut); the rest is decided again";
    for n in 0..super::super::resharding::MAX_SAME_FAILURES + 2 {
        let planned = g.decide();
        let p = planned
            .iter()
            .find(|p| matches!(&p.intent, Intent::MoveSlots { from, .. } if *from == pod(0)))
            .unwrap_or_else(|| panic!("try {n}: no move from demo-0 in {planned:?}"));
        let Intent::MoveSlots { slots, .. } = &p.intent else {
            unreachable!()
        };
        let (id, first) = (uuid::Uuid::from_u128(9_300 + u128::from(n)), slots[0].start);
        g.event(Event::Decided {
            intents: vec![logbook_journal::PlannedIntent {
                intent_id: id,
                intent: p.intent.clone(),
                reason: p.reason.clone(),
            }],
        });
        // Ten slots carried, then the hand-back: the ends' reports come
        // before the outcome.
        let carried = SlotRange {
            start: first,
            end: first + 9,
        };
        source = without(&source, carried);
        taken.push(carried);
        let epoch = 10 + u64::from(n);
        g.report(
            &Node {
                i: 0,
                g: 0,
                primary_of: None,
                slots: source.clone(),
                epoch: 1,
            },
            &everyone,
            &[],
        );
        g.report(
            &Node {
                i: 3,
                g: 0,
                primary_of: None,
                slots: taken.clone(),
                epoch,
            },
            &everyone,
            &[],
        );
        g.event(Event::IntentFailed {
            intent_id: id,
            error: handback.to_owned(),
            retryable: true,
        });
        assert!(
            g.state.reshard.failures.is_empty(),
            "try {n}: {:?}",
            g.state.reshard.failures
        );
    }
    // Never given up: the source still gives.
    assert!(
        g.decide()
            .iter()
            .any(|p| matches!(&p.intent, Intent::MoveSlots { from, .. } if *from == pod(0)))
    );
    // A hand-back that carried nothing is a failure like any other.
    first_fails(&mut g, 9_400, handback);
    assert_eq!(
        g.state.reshard.failures.len(),
        1,
        "{:?}",
        g.state.reshard.failures
    );
}

#[test]
fn a_drained_primary_takes_the_seat_a_removed_replica_leaves() {
    // 4 × 1 → 3 × 1: demo-3's shard was drained; demo-2's only replica,
    // demo-6, is on a pod the spec removes, as is demo-7.
    let split = even_split(3);
    let shards = vec![
        (0, &[4][..], vec![split[0]]),
        (1, &[5][..], vec![split[1]]),
        (2, &[6][..], vec![split[2]]),
        (3, &[7][..], Vec::new()),
    ];
    let g = laid_out(8, &shards, 3, 1);
    let seated: Vec<(String, String)> = g
        .intents()
        .into_iter()
        .filter_map(|i| match i {
            Intent::ReplicateShard { pod, primary, .. } => Some((pod, primary)),
            _ => None,
        })
        .collect();
    assert_eq!(seated, vec![(pod(3), pod(2))], "{:?}", g.intents());
}

/// 3 × 1 scaled to 4 × 1: demo-6 and demo-7 joined as an empty primary
/// and its replica, in sync; every node knows every other.
fn scaled_out_with_replica_in_sync() -> (Given, Vec<(u32, u32, PeerHealth)>) {
    let mut g = laid_out(8, &three(), 4, 1);
    let everyone: Vec<_> = (0..8).map(|i| (i, 0, PeerHealth::Ok)).collect();
    g.report(
        &Node {
            i: 7,
            g: 0,
            primary_of: Some((6, 0)),
            slots: Vec::new(),
            epoch: 0,
        },
        &everyone,
        &[],
    );
    g.repl(7, LinkStatus::Up, 100, 7);
    (g, everyone)
}

#[test]
fn slots_move_once_the_primaries_know_the_new_one_and_a_node_that_does_not_meets_it() {
    let (mut g, everyone) = scaled_out_with_replica_in_sync();
    // demo-1, a primary, has not heard of demo-6 yet: met from it.
    let split = even_split(3);
    let without_6: Vec<_> = everyone.iter().copied().filter(|p| p.0 != 6).collect();
    g.report(
        &Node {
            i: 1,
            g: 0,
            primary_of: None,
            slots: vec![split[1]],
            epoch: 2,
        },
        &without_6,
        &[],
    );
    assert_eq!(
        g.intents(),
        vec![Intent::MeetNode {
            pod: pod(6),
            from: vec![pod(1)],
        }]
    );
    g.report(
        &Node {
            i: 1,
            g: 0,
            primary_of: None,
            slots: vec![split[1]],
            epoch: 2,
        },
        &everyone,
        &[],
    );
    // demo-4, a replica, has not: it meets it too (it would learn the
    // new owner of the moved slots from demo-6 alone)...
    let replica = |peers: &[(u32, u32, PeerHealth)]| {
        (
            Node {
                i: 4,
                g: 0,
                primary_of: Some((1, 0)),
                slots: Vec::new(),
                epoch: 2,
            },
            peers.to_vec(),
        )
    };
    let (node, peers) = replica(&without_6);
    g.report(&node, &peers, &[]);
    assert_eq!(
        g.intents(),
        vec![Intent::MeetNode {
            pod: pod(6),
            from: vec![pod(4)],
        }]
    );
    // ... and once it is in hand-shake with it, the moves go, but only
    // while the new shard's replica is in sync with it.
    let mut shaking = without_6.clone();
    shaking.push((6, 0, PeerHealth::Handshake));
    let (node, peers) = replica(&shaking);
    g.report(&node, &peers, &[]);
    g.repl(7, LinkStatus::Syncing, 0, 7);
    assert_eq!(moves(&g), Vec::new());
    g.repl(7, LinkStatus::Up, 100, 7);
    assert_eq!(moves(&g).len(), 3);
}

#[test]
fn a_new_primary_takes_slots_only_once_it_says_cluster_state_ok() {
    let (mut g, everyone) = scaled_out_with_replica_in_sync();
    let new_primary = Node {
        i: 6,
        g: 0,
        primary_of: None,
        slots: Vec::new(),
        epoch: 0,
    };
    // Valkey keeps a new primary at cluster_state:fail for its first two
    // seconds: slots moved to it would answer CLUSTERDOWN.
    g.report_state(&new_primary, &everyone, &[], false);
    assert_eq!(moves(&g), Vec::new());
    g.report_state(&new_primary, &everyone, &[], true);
    assert_eq!(moves(&g).len(), 3);
}

#[test]
fn more_shards_than_empty_primaries_reset_spare_replicas_of_the_fullest_shard_first() {
    // Pods back on volumes kept from before a scale-in rejoined as the
    // replicas they were: one shard with five replicas, no empty primary.
    let full = vec![SlotRange {
        start: 0,
        end: u16::try_from(SLOTS - 1).unwrap(),
    }];
    let g = laid_out(6, &[(0, &[1, 2, 3, 4, 5][..], full)], 3, 1);
    assert_eq!(
        g.intents(),
        vec![
            Intent::ResetReplica {
                pod: pod(5),
                node_id: node(5, 0),
            },
            Intent::ResetReplica {
                pod: pod(4),
                node_id: node(4, 0),
            },
        ]
    );
    // Once they are empty primaries, they are the new shards: no more
    // resets, and the spec's replica stays with demo-0.
    let mut g = g;
    for i in [4, 5] {
        g.report(
            &Node {
                i,
                g: 0,
                primary_of: None,
                slots: Vec::new(),
                epoch: 0,
            },
            &(0..6).map(|p| (p, 0, PeerHealth::Ok)).collect::<Vec<_>>(),
            &[],
        );
        g.repl(i, LinkStatus::NotReplica, 0, 9);
    }
    assert!(
        !g.intents()
            .iter()
            .any(|i| matches!(i, Intent::ResetReplica { .. })),
        "{:?}",
        g.intents()
    );
}
