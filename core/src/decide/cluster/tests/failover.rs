//! Failover in a Valkey Cluster: given node reports, when a primary
//! dies, restarts in place behind its replica or a quorum is lost, then
//! exactly these intents.

use super::*;

#[test]
fn a_primary_whose_process_refuses_twice_is_failed_over_by_force() {
    let mut g = Given::formed();
    g.reach(1, Reachability::Refused);
    assert_eq!(
        g.intents(),
        Vec::<Intent>::new(),
        "one refusal is not yet death"
    );
    g.reach(1, Reachability::Refused);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Force
        }]
    );
    match &decisions[0].reason.code {
        ReasonCode::PrimaryFailed {
            death: true,
            consecutive_failures: 2,
            candidates,
        } => {
            assert_eq!(candidates.len(), 1);
            assert_eq!(candidates[0].pod, pod(4));
            assert_eq!(candidates[0].offset, Some(100));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_primary_that_only_times_out_is_left_to_valkey() {
    // Its replica still hears from it (a slow command on a loaded node):
    // however long, the operator does not act; Valkey's node timeout may.
    let mut g = Given::formed();
    for _ in 0..20 {
        g.reach(1, Reachability::TimedOut);
    }
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn a_hung_primary_its_replica_hearing_nothing_is_failed_over_by_force() {
    let mut g = Given::formed();
    g.policy.probe_interval_ms = 400;
    g.every_ms(1).repl(4, LinkStatus::Silent, 100, 7);
    g.every_ms(400)
        .reach(1, Reachability::TimedOut)
        .reach(1, Reachability::TimedOut);
    // Unanswered for 0.8 s from the first probe's send: a one-second
    // command could do that.
    assert_eq!(g.intents(), Vec::<Intent>::new());
    g.reach(1, Reachability::TimedOut);
    let decisions = g.decide();
    assert_eq!(
        decisions.first().map(|d| d.intent.clone()),
        Some(Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Force
        })
    );
    assert!(matches!(
        decisions[0].reason.code,
        ReasonCode::PrimaryFailed {
            death: false,
            consecutive_failures: 3,
            ..
        }
    ));
}

#[test]
fn a_primary_restarted_in_place_is_never_taken_for_a_hung_one() {
    // Killed and restarted by the kubelet: its replica's link was reset
    // (down, then a resync), and the new process, loading or slow under
    // load, errs or times out for as long as a hung one would. Forcing an
    // election then could outlast the replica's resync from the emptied
    // primary; the primary-behind rule hands its slots over instead.
    for link in [LinkStatus::Down, LinkStatus::Syncing, LinkStatus::Up] {
        for answer in [Reachability::TimedOut, Reachability::ProtocolError] {
            let mut g = Given::formed();
            g.policy.probe_interval_ms = 400;
            g.every_ms(1).repl(4, link, 100, 7);
            g.every_ms(400);
            for _ in 0..6 {
                g.reach(1, answer);
            }
            assert_eq!(g.intents(), Vec::<Intent>::new(), "{link:?} {answer:?}");
        }
    }
    // An error reply is an answer, even with the replica silent.
    let mut g = Given::formed();
    g.policy.probe_interval_ms = 400;
    g.every_ms(1).repl(4, LinkStatus::Silent, 100, 7);
    g.every_ms(400);
    for _ in 0..6 {
        g.reach(1, Reachability::ProtocolError);
    }
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn a_deleted_primary_that_still_answers_hands_over_coordinated() {
    let mut g = Given::formed();
    g.event(Event::PodTerminating { pod: pod(2) });
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(5),
            from: Some(pod(2)),
            mode: ClusterFailoverMode::Coordinated
        }]
    );
}

#[test]
fn a_deleted_primary_pod_is_death_at_once() {
    let mut g = Given::formed();
    g.event(Event::PodDeleted { pod: pod(0) });
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(3),
            from: Some(pod(0)),
            mode: ClusterFailoverMode::Force
        }]
    );
}

/// demo-4, replica of demo-1, reports demo-1 `fail`.
fn flags_its_primary_failed(g: &mut Given) {
    let mut peers: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    peers[1].2 = PeerHealth::Failed;
    g.report(
        &Node {
            i: 4,
            g: 0,
            primary_of: Some((1, 0)),
            slots: Vec::new(),
            epoch: 5,
        },
        &peers,
        &[],
    );
}

#[test]
fn the_operator_never_races_an_election_valkey_started() {
    let mut g = Given::formed();
    g.reach(1, Reachability::Refused)
        .reach(1, Reachability::Refused);
    flags_its_primary_failed(&mut g);
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn without_automatic_failover_the_operator_only_observes() {
    let mut g = Given::formed();
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.shards = Some(3);
    spec.replicas_per_shard = Some(1);
    spec.failover.automatic = false;
    g.spec(&spec);
    g.applied(1);
    g.event(Event::PodDeleted { pod: pod(0) });
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// The formed cluster after demo-1's process restarted in place faster
/// than a probe saw it die: it answers as the same primary node, on a new
/// history (`replid` 9) at offset 12, while its replica demo-4 still
/// holds the old one (`replid` 7) up to 5000, its link in `link`.
fn restarted_in_place(link: LinkStatus) -> Given {
    let mut g = Given::formed();
    g.repl(4, LinkStatus::Up, 5_000, 7);
    g.repl(1, LinkStatus::NotReplica, 5_000, 7);
    g.event(Event::PrimaryHistoryReset {
        pod: pod(1),
        node_id: node(1, 0),
        previous_replid: logbook_journal::ReplId([7; 20]),
        previous_offset: Some(5_000),
        replid: logbook_journal::ReplId([9; 20]),
        offset: 12,
    });
    g.repl(1, LinkStatus::NotReplica, 12, 9);
    g.repl(4, link, 5_000, 7);
    g
}

#[test]
fn a_primary_restarted_in_place_behind_its_replica_hands_the_shard_to_it_by_force() {
    for link in [LinkStatus::Down, LinkStatus::Syncing] {
        let g = restarted_in_place(link);
        let decisions = g.decide();
        assert_eq!(
            decisions
                .iter()
                .map(|d| d.intent.clone())
                .collect::<Vec<_>>(),
            vec![Intent::ClusterFailover {
                pod: pod(4),
                from: Some(pod(1)),
                mode: ClusterFailoverMode::Takeover
            }],
            "{link:?}"
        );
        match &decisions[0].reason.code {
            ReasonCode::PrimaryBehindReplica {
                primary_offset: 12,
                candidates,
            } => {
                assert_eq!(candidates.len(), 1);
                assert!(candidates[0].eligible && candidates[0].same_history);
                assert_eq!(candidates[0].offset, Some(5_000));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            decisions[0].reason.detail.contains("restarted in place"),
            "{}",
            decisions[0].reason.detail
        );
    }
}

#[test]
fn a_primary_restored_from_a_snapshot_behind_its_replica_is_failed_over_too() {
    // Same history id (restored from an RDB), a lower offset than the
    // replica waiting on its broken link: the writes between are only on
    // the replica.
    let takeover = vec![Intent::ClusterFailover {
        pod: pod(4),
        from: Some(pod(1)),
        mode: ClusterFailoverMode::Takeover,
    }];
    let mut g = Given::formed();
    g.repl(1, LinkStatus::NotReplica, 3_000, 7);
    g.repl(4, LinkStatus::Syncing, 5_000, 7);
    assert_eq!(g.intents(), takeover);
    // The same while the replica still flags the primary `fail`. Seen in
    // a crash sweep under load: no election won (the restarted primary
    // does not vote; the others saw it answer again); an operator that
    // waited on Valkey let the 30 s boot fence run out, and the replica
    // resynced from the restarted primary, losing 84 acknowledged writes.
    let mut g = Given::formed();
    g.repl(1, LinkStatus::NotReplica, 3_000, 7);
    flags_its_primary_failed(&mut g);
    g.repl(4, LinkStatus::Syncing, 5_000, 7);
    assert_eq!(g.intents(), takeover);
}

#[test]
fn a_replica_that_already_resynced_or_never_was_ahead_changes_nothing() {
    // Too late: the replica took the primary's new history.
    let mut g = restarted_in_place(LinkStatus::Syncing);
    g.repl(4, LinkStatus::Up, 12, 9);
    assert_eq!(g.intents(), Vec::<Intent>::new());
    // A replica in sync ahead of a stale primary offset is no sign: its
    // link is up, so the primary has what it has.
    let mut g = Given::formed();
    g.repl(4, LinkStatus::Up, 9_000, 7);
    assert_eq!(g.intents(), Vec::<Intent>::new());
    // A broken link on the primary's own history, behind it: nothing lost.
    let mut g = Given::formed();
    g.repl(1, LinkStatus::NotReplica, 9_000, 7);
    g.repl(4, LinkStatus::Down, 5_000, 7);
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn an_old_primary_back_as_a_replica_of_its_successor_is_never_handed_back_the_shard() {
    // demo-4 took demo-1's shard over (history 8 at 4000); demo-1 comes
    // back following it, still on the history it had (7, at 5000): it is
    // ahead on *another* history, which was abandoned, not lost.
    let mut g = Given::formed();
    let split = even_split(3);
    g.report(
        &Node {
            i: 4,
            g: 0,
            primary_of: None,
            slots: vec![split[1]],
            epoch: 9,
        },
        &(0..6).map(|i| (i, 0, PeerHealth::Ok)).collect::<Vec<_>>(),
        &[],
    );
    g.repl(4, LinkStatus::NotReplica, 4_000, 8);
    g.report(
        &Node {
            i: 1,
            g: 0,
            primary_of: Some((4, 0)),
            slots: Vec::new(),
            epoch: 2,
        },
        &(0..6).map(|i| (i, 0, PeerHealth::Ok)).collect::<Vec<_>>(),
        &[],
    );
    g.repl(1, LinkStatus::Syncing, 5_000, 7);
    // Only the labels follow the failover Valkey made.
    assert_eq!(
        g.intents(),
        vec![Intent::SetShardRoleLabels {
            primaries: vec![pod(0), pod(2), pod(4)]
        }]
    );
}

/// A formed 3 × 1 cluster whose spec allows (or not) a takeover on
/// quorum loss, node timeout 5 s.
fn formed_with_takeover(allowed: bool) -> Given {
    let mut g = Given::formed();
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.shards = Some(3);
    spec.replicas_per_shard = Some(1);
    spec.cluster_node_timeout_milliseconds = Some(5_000);
    spec.failover.takeover_on_quorum_loss = allowed;
    g.spec(&spec);
    g.applied(1);
    g
}

#[test]
fn one_dead_primary_of_three_leaves_a_quorum_and_is_forced_over() {
    let mut g = formed_with_takeover(true);
    g.reach(1, Reachability::Refused)
        .reach(1, Reachability::Refused);
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Force
        }]
    );
}

#[test]
fn without_a_quorum_no_force_is_tried_and_nothing_is_taken_over_unless_allowed() {
    let mut g = formed_with_takeover(false);
    g.every_ms(500);
    for _ in 0..30 {
        g.reach(0, Reachability::Refused)
            .reach(1, Reachability::Refused);
    }
    // 15 s of refusals from two of three primaries: a FORCE cannot win
    // (one vote of two needed) and the spec does not allow a takeover.
    assert_eq!(g.intents(), Vec::<Intent>::new());
    let status = g.status();
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "QuorumLost");
    assert!(
        degraded
            .message
            .contains("2 of 3 shard primaries silent (demo-0, demo-1)")
            && degraded.message.contains("takeoverOnQuorumLoss: true"),
        "{}",
        degraded.message
    );
}

#[test]
fn without_a_quorum_an_allowed_takeover_waits_out_the_node_timeout() {
    let mut g = formed_with_takeover(true);
    g.every_ms(500);
    // Both silent from the same probe round on.
    g.reach(0, Reachability::Refused)
        .reach(1, Reachability::Refused);
    // A round is two events, 1 s; demo-1's first refusal came 0.5 s
    // after demo-0's: five rounds are 4.5 s of demo-0's silence.
    for _ in 0..4 {
        g.reach(0, Reachability::Refused)
            .reach(1, Reachability::Refused);
        assert_eq!(
            g.intents(),
            Vec::<Intent>::new(),
            "before the node timeout: a restart in place comes back sooner"
        );
    }
    g.reach(0, Reachability::Refused)
        .reach(1, Reachability::Refused);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![
            Intent::ClusterFailover {
                pod: pod(3),
                from: Some(pod(0)),
                mode: ClusterFailoverMode::Takeover
            },
            Intent::ClusterFailover {
                pod: pod(4),
                from: Some(pod(1)),
                mode: ClusterFailoverMode::Takeover
            }
        ]
    );
    match &decisions[0].reason.code {
        ReasonCode::QuorumLost {
            primaries_lost: 2,
            shards: 3,
            candidates,
        } => assert_eq!(candidates[0].pod, pod(3)),
        other => panic!("{other:?}"),
    }
    assert!(
        decisions[1]
            .reason
            .detail
            .contains("demo-1 has not answered for 5000 ms (node timeout 5000 ms)"),
        "{}",
        decisions[1].reason.detail
    );
}

#[test]
fn a_primary_back_before_the_node_timeout_ends_the_quorum_loss() {
    let mut g = formed_with_takeover(true);
    g.every_ms(500);
    for _ in 0..4 {
        g.reach(0, Reachability::Refused)
            .reach(1, Reachability::Refused);
    }
    g.reach(0, Reachability::Reachable);
    for _ in 0..12 {
        g.reach(1, Reachability::Refused);
    }
    // Two of three answer again: the quorum is back, and demo-1 is dead
    // by two refusals: a FORCE, elected by demo-0 and demo-2.
    assert_eq!(
        g.intents(),
        vec![Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Force
        }]
    );
}

#[test]
fn a_one_shard_cluster_has_no_quorum_without_its_primary() {
    let mut g = Given::cluster(1, 1);
    let everyone = [(0, 0, PeerHealth::Ok), (1, 0, PeerHealth::Ok)];
    g.report(
        &Node {
            i: 0,
            g: 0,
            primary_of: None,
            slots: vec![SlotRange {
                start: 0,
                end: 16_383,
            }],
            epoch: 1,
        },
        &everyone,
        &[],
    );
    g.report(
        &Node {
            i: 1,
            g: 0,
            primary_of: Some((0, 0)),
            slots: Vec::new(),
            epoch: 1,
        },
        &everyone,
        &[],
    );
    g.repl(0, LinkStatus::NotReplica, 100, 7)
        .repl(1, LinkStatus::Up, 100, 7)
        .label(0, Role::Primary)
        .label(1, Role::Replica);
    g.reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused);
    // Its own vote is the only one: a FORCE would wait for nothing.
    assert_eq!(g.intents(), Vec::<Intent>::new());
}
