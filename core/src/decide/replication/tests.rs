//! Given events, when `decide` runs, then exactly these intents.

use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::{
    Event, Intent, LinkStatus, PodPhase, Reachability, ReasonCode, Role, SpecFingerprint,
};
use uuid::Uuid;

use crate::decide::Decision;
use crate::decide::given::Given;

impl Given {
    /// A replication cluster of `n` pods, objects applied, StatefulSet at
    /// revision r1.
    fn replication(n: u32) -> Self {
        let mut g = Given::new();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.replicas = Some(i32::try_from(n).unwrap());
        g.spec(&spec);
        g.applied(1);
        g.event(Event::StatefulSetObserved {
            replicas: n,
            update_revision: Some("r1".into()),
        });
        for i in 0..n {
            g.pod(i, "r1");
        }
        g
    }

    /// Every pod reachable and fenced (a replica of nowhere), as they boot.
    fn all_fenced(&mut self, n: u32) -> &mut Self {
        for i in 0..n {
            self.reach(i, Reachability::Reachable);
            self.role(i, Role::Replica, None);
        }
        self
    }

    /// A converged cluster: demo-0 primary, the rest in sync.
    fn converged(n: u32) -> Self {
        let mut g = Given::replication(n);
        g.reach(0, Reachability::Reachable)
            .role(0, Role::Primary, None)
            .repl(0, LinkStatus::NotReplica, 100, 7)
            .label(0, Role::Primary);
        for i in 1..n {
            g.reach(i, Reachability::Reachable)
                .role(i, Role::Replica, Some(0))
                .repl(i, LinkStatus::Up, 100, 7)
                .label(i, Role::Replica);
        }
        g.succeed(Intent::PublishBootConfig {
            primary: Some("demo-0".into()),
            ip: Some("10.0.0.0".into()),
        });
        g
    }
}

fn pod(i: u32) -> String {
    format!("demo-{i}")
}

#[test]
fn a_new_spec_is_applied_once() {
    let mut g = Given::new();
    g.spec(&ValkeyClusterSpec::default());
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 1 }]);
    g.applied(1);
    assert!(g.intents().is_empty());
}

#[test]
fn bootstrap_waits_for_every_running_pod_then_picks_the_lowest_ordinal() {
    let mut g = Given::replication(3);
    g.reach(1, Reachability::Reachable)
        .role(1, Role::Replica, None)
        .reach(2, Reachability::Reachable)
        .role(2, Role::Replica, None);
    assert!(g.intents().is_empty(), "demo-0 runs but has not answered");
    g.reach(0, Reachability::Reachable)
        .role(0, Role::Replica, None);
    assert_eq!(
        g.intents(),
        vec![
            Intent::PromoteReplica {
                pod: pod(0),
                from: None
            },
            Intent::SetRoleLabels {
                primary: Some(pod(0))
            },
            Intent::PublishBootConfig {
                primary: Some(pod(0)),
                ip: Some("10.0.0.0".into())
            },
            Intent::RepointReplica {
                pod: pod(1),
                to: pod(0)
            },
            Intent::RepointReplica {
                pod: pod(2),
                to: pod(0)
            },
        ]
    );
    assert!(matches!(
        g.decide()[0].reason.code,
        ReasonCode::Bootstrap { .. }
    ));
}

#[test]
fn bootstrap_prefers_the_pod_with_data() {
    let mut g = Given::replication(3);
    g.all_fenced(3).repl(2, LinkStatus::Down, 5000, 3);
    assert_eq!(
        g.intents()[0],
        Intent::PromoteReplica {
            pod: pod(2),
            from: None
        }
    );
}

#[test]
fn a_converged_cluster_decides_nothing() {
    assert!(Given::converged(3).intents().is_empty());
}

#[test]
fn one_refusal_is_confirmed_before_acting_then_the_highest_offset_wins() {
    let mut g = Given::converged(3);
    g.repl(1, LinkStatus::Down, 900, 7)
        .repl(2, LinkStatus::Down, 950, 7);
    g.reach(0, Reachability::Refused);
    assert!(g.intents().is_empty(), "one refusal is not yet proof");
    g.reach(0, Reachability::Refused);
    let decisions = g.decide();
    let intents: Vec<_> = decisions.iter().map(|d| d.intent.clone()).collect();
    assert_eq!(
        intents,
        vec![
            Intent::FenceNode { pod: pod(0) },
            Intent::PromoteReplica {
                pod: pod(2),
                from: Some(pod(0))
            },
            Intent::SetRoleLabels {
                primary: Some(pod(2))
            },
            Intent::PublishBootConfig {
                primary: Some(pod(2)),
                ip: Some("10.0.0.2".into())
            },
            Intent::RepointReplica {
                pod: pod(1),
                to: pod(2)
            },
        ]
    );
    let ReasonCode::PrimaryFailed {
        death, candidates, ..
    } = &decisions[1].reason.code
    else {
        panic!("{:?}", decisions[1].reason)
    };
    assert!(death);
    let offsets: Vec<_> = candidates
        .iter()
        .map(|c| (c.pod.as_str(), c.offset))
        .collect();
    assert_eq!(offsets, vec![("demo-2", Some(950)), ("demo-1", Some(900))]);
    assert!(decisions[1].reason.detail.contains("demo-2 offset 950"));
}

#[test]
fn a_replica_on_another_history_loses_to_one_on_the_primarys() {
    let mut g = Given::converged(3);
    g.repl(1, LinkStatus::Down, 90, 7)
        .repl(2, LinkStatus::Down, 5000, 9);
    g.reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused);
    assert_eq!(
        g.intents()[1],
        Intent::PromoteReplica {
            pod: pod(1),
            from: Some(pod(0))
        }
    );
}

#[test]
fn a_deleted_primary_pod_is_death_at_once() {
    let mut g = Given::converged(3);
    g.event(Event::PodDeleted { pod: pod(0) });
    let intents = g.intents();
    assert_eq!(
        intents[0],
        Intent::PromoteReplica {
            pod: pod(1),
            from: Some(pod(0))
        },
        "no fence for a pod that is gone: {intents:?}"
    );
}

#[test]
fn a_slow_primary_is_never_failed_over_without_the_threshold_and_its_replicas() {
    let mut g = Given::converged(3);
    // Two timeouts (a one-second DEBUG SLEEP at most causes this): nothing.
    g.reach(0, Reachability::TimedOut)
        .reach(0, Reachability::TimedOut);
    assert!(g.intents().is_empty());
    // Three timeouts but the replicas still hear from it: nothing.
    g.reach(0, Reachability::TimedOut);
    assert!(g.intents().is_empty());
    // One replica silent, the other still up: nothing.
    g.repl(1, LinkStatus::Silent, 100, 7);
    assert!(g.intents().is_empty());
    // Both lost it: fail over.
    g.repl(2, LinkStatus::Down, 100, 7);
    let decisions = g.decide();
    assert_eq!(decisions[0].intent, Intent::FenceNode { pod: pod(0) });
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
fn nothing_is_decided_while_intents_are_in_flight_or_when_paused() {
    let mut g = Given::converged(3);
    g.event(Event::Decided {
        intents: vec![logbook_journal::PlannedIntent {
            intent_id: Uuid::from_u128(42),
            intent: Intent::UpdateStatus,
            reason: logbook_journal::Reason {
                code: ReasonCode::StatusStale,
                detail: String::new(),
            },
        }],
    });
    g.reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused);
    assert!(g.intents().is_empty());

    let mut p = Given::converged(3);
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.paused = true;
    p.event(Event::SpecChanged {
        generation: 2,
        spec_json: serde_json::to_string(&spec).unwrap(),
        fingerprint: SpecFingerprint([1; 32]),
    });
    p.reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused);
    assert!(p.intents().is_empty());
}

#[test]
fn automatic_false_means_no_failover() {
    let mut g = Given::converged(3);
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.failover.automatic = false;
    g.spec(&spec);
    g.reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused);
    assert!(
        !g.intents()
            .iter()
            .any(|i| matches!(i, Intent::PromoteReplica { .. }))
    );
}

#[test]
fn a_restarted_primary_that_came_back_fenced_is_replaced_not_trusted() {
    let mut g = Given::converged(3);
    g.repl(1, LinkStatus::Down, 500, 7)
        .repl(2, LinkStatus::Down, 400, 7);
    // Its container restarted in place: it booted fenced, empty.
    g.role(0, Role::Replica, None)
        .repl(0, LinkStatus::Down, 0, 8);
    let decisions = g.decide();
    assert_eq!(
        decisions[0].intent,
        Intent::PromoteReplica {
            pod: pod(1),
            from: Some(pod(0))
        }
    );
    assert!(matches!(
        decisions[0].reason.code,
        ReasonCode::PrimaryFailed { death: true, .. }
    ));
    // The old primary is repointed at the new one.
    assert!(decisions.iter().any(|d| d.intent
        == Intent::RepointReplica {
            pod: pod(0),
            to: pod(1)
        }));
}

#[test]
fn a_recreated_primary_pod_with_as_much_data_still_comes_back_as_a_replica() {
    let mut g = Given::converged(3);
    g.repl(1, LinkStatus::Down, 500, 7)
        .repl(2, LinkStatus::Down, 500, 7);
    // Its pod was deleted and recreated before two refusals were seen; it
    // reloaded a snapshot holding everything its replicas have.
    g.pod(0, "r1-new")
        .reach(0, Reachability::Reachable)
        .role(0, Role::Replica, None)
        .repl(0, LinkStatus::Down, 500, 7);
    let decisions = g.decide();
    assert_eq!(
        decisions[0].intent,
        Intent::PromoteReplica {
            pod: pod(1),
            from: Some(pod(0))
        }
    );
    assert!(decisions.iter().any(|d| d.intent
        == Intent::RepointReplica {
            pod: pod(0),
            to: pod(1)
        }));
}

#[test]
fn roles_follow_the_primary() {
    let mut g = Given::converged(3);
    g.label(2, Role::Primary).role(1, Role::Replica, None);
    assert_eq!(
        g.intents(),
        vec![
            Intent::SetRoleLabels {
                primary: Some(pod(0))
            },
            Intent::RepointReplica {
                pod: pod(1),
                to: pod(0)
            },
        ]
    );
}

#[test]
fn a_switchover_request_is_served_then_cleared() {
    let mut g = Given::converged(3);
    g.event(Event::SwitchoverRequestObserved {
        target: Some("demo-2".into()),
    });
    let intents = g.intents();
    assert_eq!(
        intents[0],
        Intent::Switchover {
            from: pod(0),
            to: pod(2)
        }
    );
    assert_eq!(intents.last(), Some(&Intent::ClearSwitchoverRequest));

    let mut bad = Given::converged(3);
    bad.event(Event::SwitchoverRequestObserved {
        target: Some("demo-9".into()),
    });
    assert_eq!(bad.intents(), vec![Intent::ClearSwitchoverRequest]);
}

#[test]
fn scaling_in_hands_the_primary_over_before_removing_its_pod() {
    let mut g = Given::converged(5);
    // The primary is demo-4.
    let mut g2 = Given::replication(5);
    g2.reach(4, Reachability::Reachable)
        .role(4, Role::Primary, None)
        .repl(4, LinkStatus::NotReplica, 100, 7);
    for i in 0..4 {
        g2.reach(i, Reachability::Reachable)
            .role(i, Role::Replica, Some(4))
            .repl(i, LinkStatus::Up, 100, 7);
    }
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(2);
    g2.event(Event::SpecChanged {
        generation: 2,
        spec_json: serde_json::to_string(&spec).unwrap(),
        fingerprint: SpecFingerprint([2; 32]),
    });
    assert_eq!(
        g2.intents()[0],
        Intent::Switchover {
            from: pod(4),
            to: pod(0)
        }
    );
    // With the primary kept, scale-in is plain provisioning.
    g.event(Event::SpecChanged {
        generation: 2,
        spec_json: serde_json::to_string(&spec).unwrap(),
        fingerprint: SpecFingerprint([2; 32]),
    });
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 2 }]);
}

#[test]
fn a_new_template_whose_revision_the_controller_has_not_computed_is_not_ready() {
    let mut g = Given::converged(3);
    let phase = |g: &Given| g.status().phase;
    assert_eq!(phase(&g), Some(logbook_crds::ClusterPhase::Ready));
    // A new template applied; the StatefulSet's controller lags it, so the
    // revision pods must run is not known: every pod may be outdated.
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: None,
    });
    assert_eq!(phase(&g), Some(logbook_crds::ClusterPhase::Updating));
    assert!(g.intents().is_empty(), "no roll to an unknown revision");
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    assert_eq!(phase(&g), Some(logbook_crds::ClusterPhase::Updating));
}

#[test]
fn rolling_goes_replica_by_replica_then_hands_over_then_rolls_the_old_primary() {
    let mut g = Given::converged(3);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    assert_eq!(
        g.intents(),
        vec![Intent::RollPod {
            pod: pod(2),
            revision: "r2".into()
        }]
    );
    // demo-2 comes back updated but not yet in sync: wait.
    g.pod(2, "r2")
        .reach(2, Reachability::Reachable)
        .role(2, Role::Replica, Some(0))
        .repl(2, LinkStatus::Syncing, 0, 7);
    // The new pod has no role label yet: that comes first.
    assert_eq!(
        g.intents(),
        vec![Intent::SetRoleLabels {
            primary: Some(pod(0))
        }]
    );
    g.label(2, Role::Replica);
    assert!(g.intents().is_empty(), "waits for demo-2 to be in sync");
    g.repl(2, LinkStatus::Up, 100, 7);
    assert_eq!(
        g.intents(),
        vec![Intent::RollPod {
            pod: pod(1),
            revision: "r2".into()
        }]
    );
    g.pod(1, "r2")
        .reach(1, Reachability::Reachable)
        .role(1, Role::Replica, Some(0))
        .repl(1, LinkStatus::Up, 100, 7)
        .label(1, Role::Replica);
    let intents = g.intents();
    assert_eq!(
        intents[0],
        Intent::Switchover {
            from: pod(0),
            to: pod(1)
        }
    );
}

#[test]
fn a_primary_being_deleted_is_fenced_first_then_replaced_by_fresh_offsets() {
    let mut g = Given::converged(3);
    g.event(Event::PodTerminating { pod: pod(0) });
    assert_eq!(g.intents(), vec![Intent::FenceNode { pod: pod(0) }]);
    // The fence's facts: it follows nobody now; the replicas' offsets after it.
    g.role(0, Role::Replica, None)
        .repl(1, LinkStatus::Down, 120, 7)
        .repl(2, LinkStatus::Down, 130, 7);
    let intents = g.intents();
    assert_eq!(
        intents[0],
        Intent::PromoteReplica {
            pod: pod(2),
            from: Some(pod(0))
        }
    );
    assert!(
        !intents
            .iter()
            .any(|i| matches!(i, Intent::RepointReplica { pod: p, .. } if *p == pod(0))),
        "a pod being deleted is not repointed: {intents:?}"
    );
}

#[test]
fn a_lone_primary_being_deleted_is_not_fenced() {
    // A one-pod cluster rolled: no pod could take over, so a fence would
    // only leave it, back from its restart, fenced with no primary.
    let mut g = Given::converged(1);
    g.event(Event::PodTerminating { pod: pod(0) });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // With a replica to take over, the same primary is fenced first.
    let mut h = Given::converged(2);
    h.event(Event::PodTerminating { pod: pod(0) });
    assert_eq!(h.intents(), vec![Intent::FenceNode { pod: pod(0) }]);
}

#[test]
fn a_primary_being_deleted_that_times_out_once_is_not_replaced_unfenced() {
    // Shutting down, a primary waits for its replicas while still their
    // primary: one slow probe is no exit.
    let mut g = Given::converged(3);
    g.event(Event::PodTerminating { pod: pod(0) });
    g.reach(0, Reachability::TimedOut);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // It answers again: fenced first, as any primary being deleted.
    g.reach(0, Reachability::Reachable);
    assert_eq!(g.intents(), vec![Intent::FenceNode { pod: pod(0) }]);
    // Gone (the connection refused): replaced at once.
    let mut h = Given::converged(3);
    h.event(Event::PodTerminating { pod: pod(0) });
    h.reach(0, Reachability::Refused);
    assert!(
        h.intents()
            .iter()
            .any(|i| matches!(i, Intent::PromoteReplica { .. })),
        "{:?}",
        h.intents()
    );
}

#[test]
fn timeouts_shorter_than_a_long_command_never_fail_over_whatever_corroborates_them() {
    // Fast probes: four timeouts, the first sent 0.8 s before the last was
    // recorded, and both replicas "silent" — what one `DEBUG SLEEP 1` can
    // look like.
    let mut g = Given::converged(3);
    g.policy.probe_interval_ms = 200;
    g.every_ms(200);
    for _ in 0..4 {
        g.reach(0, Reachability::TimedOut);
    }
    g.repl(1, LinkStatus::Silent, 100, 7)
        .repl(2, LinkStatus::Silent, 100, 7);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // Still failing 1.2 s after the first timeout (1.4 s after it was
    // sent): now it is unreachable.
    g.every_ms(600).reach(0, Reachability::TimedOut);
    assert_eq!(g.intents()[0], Intent::FenceNode { pod: pod(0) });
}

#[test]
fn a_frozen_primary_is_failed_over_once_unanswered_for_the_span_counted_from_the_first_send() {
    // The default probes: every 400 ms, each waiting 400 ms, three in a
    // row: a failure recorded at t proves no answer since t - 400 ms.
    let mut g = Given::converged(3);
    g.policy.probe_interval_ms = 400;
    g.policy.failure_threshold = 3;
    g.every_ms(1)
        .repl(1, LinkStatus::Silent, 100, 7)
        .repl(2, LinkStatus::Silent, 100, 7);
    g.every_ms(400)
        .reach(0, Reachability::TimedOut)
        .reach(0, Reachability::TimedOut);
    // Unanswered for 0.8 s: a one-second block of the server (which can
    // cause no more than these two timeouts) is not a failure.
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.reach(0, Reachability::TimedOut);
    // Unanswered since 1.2 s before the third failure: unreachable.
    assert_eq!(g.intents()[0], Intent::FenceNode { pod: pod(0) });
    // The same two timeouts, then an answer: nothing, ever.
    let mut h = Given::converged(3);
    h.policy.probe_interval_ms = 400;
    h.every_ms(1)
        .repl(1, LinkStatus::Silent, 100, 7)
        .repl(2, LinkStatus::Silent, 100, 7);
    h.every_ms(400)
        .reach(0, Reachability::TimedOut)
        .reach(0, Reachability::TimedOut)
        .reach(0, Reachability::Reachable)
        .reach(0, Reachability::TimedOut);
    assert!(h.intents().is_empty(), "{:?}", h.intents());
}

#[test]
fn a_replica_stuck_in_a_sync_does_not_vouch_for_a_frozen_primary() {
    let mut g = Given::converged(3);
    g.repl(2, LinkStatus::Syncing, 50, 7);
    for _ in 0..3 {
        g.reach(0, Reachability::TimedOut);
    }
    g.repl(1, LinkStatus::Silent, 100, 7);
    assert_eq!(g.intents()[0], Intent::FenceNode { pod: pod(0) });
    // But one replica still hearing from it is enough to wait.
    let mut h = Given::converged(3);
    for _ in 0..3 {
        h.reach(0, Reachability::TimedOut);
    }
    h.repl(1, LinkStatus::Silent, 100, 7);
    assert!(h.intents().is_empty());
}

#[test]
fn a_pod_observed_serving_as_primary_is_adopted_never_joined_by_another() {
    // The projection lost track of a promotion (its record went with the
    // operator that made it): demo-2 is seen serving while demo-0 is still
    // believed primary, then demo-0 is seen demoted — the projection now
    // believes in no primary.
    let mut g = Given::converged(3);
    g.role(2, Role::Primary, None)
        .role(0, Role::Replica, Some(2))
        .repl(1, LinkStatus::Up, 900, 7)
        .repl(0, LinkStatus::Up, 900, 7);
    let decisions = g.decide();
    assert_eq!(
        decisions[0].intent,
        Intent::PromoteReplica {
            pod: pod(2),
            from: None
        },
        "{decisions:?}"
    );
    assert!(matches!(
        decisions[0].reason.code,
        ReasonCode::Bootstrap { .. }
    ));
    // No other pod is promoted.
    assert_eq!(
        decisions
            .iter()
            .filter(|d| matches!(d.intent, Intent::PromoteReplica { .. }))
            .count(),
        1
    );
}

mod fencing;
mod hibernation;
mod placement;
mod requested_failover;
mod standby;
mod switchover_cut;
mod upgrade;

#[test]
fn a_replica_down_on_an_outdated_revision_is_rolled_without_waiting_for_it() {
    // A change made demo-2 crash on revision r2; the change was set right
    // (revision r3): demo-2 will never be ready on r2, so the roll must
    // not wait for it.
    let mut g = Given::converged(3);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    g.event(Event::PodObserved {
        pod: pod(2),
        uid: "uid-2-r2".into(),
        ip: Some("10.0.0.2".into()),
        phase: logbook_journal::PodPhase::Running,
        ready: false,
        node: None,
        revision: Some("r2".into()),
    });
    g.reach(2, Reachability::Refused).label(2, Role::Replica);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r3".into()),
    });
    assert_eq!(
        g.intents(),
        vec![Intent::RollPod {
            pod: pod(2),
            revision: "r3".into()
        }]
    );
    // Down on the current revision, it is waited for: the roll stops at
    // a revision that fails.
    g.event(Event::PodObserved {
        pod: pod(2),
        uid: "uid-2-r3".into(),
        ip: Some("10.0.0.2".into()),
        phase: logbook_journal::PodPhase::Running,
        ready: false,
        node: None,
        revision: Some("r3".into()),
    });
    g.label(2, Role::Replica);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // A primary down is a failover's, never a roll's.
    let mut g = Given::converged(3);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    g.event(Event::PodObserved {
        pod: pod(0),
        uid: "uid-0-r1".into(),
        ip: Some("10.0.0.0".into()),
        phase: logbook_journal::PodPhase::Running,
        ready: false,
        node: None,
        revision: Some("r1".into()),
    });
    assert!(
        !g.intents()
            .iter()
            .any(|i| matches!(i, Intent::RollPod { .. })),
        "{:?}",
        g.intents()
    );
}

fn binding(annotated: bool) -> Event {
    Event::BindingObserved {
        annotated,
        by: None,
    }
}

#[test]
fn an_unbound_cluster_releases_its_objects_once_then_decides_nothing() {
    let mut g = Given::converged(3);
    g.event(binding(true));
    assert!(g.intents().is_empty());
    g.event(binding(false));
    let d = g.decide();
    assert_eq!(
        d.iter().map(|d| d.intent.clone()).collect::<Vec<_>>(),
        vec![Intent::ReleaseObjects]
    );
    assert!(matches!(d[0].reason.code, ReasonCode::Unbound { .. }));
    assert_eq!(
        g.status().phase,
        Some(logbook_crds::v1alpha1::ClusterPhase::Unbound)
    );
    g.succeed(Intent::ReleaseObjects);
    assert!(g.intents().is_empty());
    // Its primary dies: the user's to handle, unbound.
    g.reach(0, Reachability::Refused);
    g.reach(0, Reachability::Refused);
    g.reach(0, Reachability::Refused);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // A new generation is not applied either.
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(4);
    g.spec_at(2, &spec);
    assert!(g.intents().is_empty());
}

#[test]
fn objects_made_before_the_annotation_are_applied_again_once() {
    let mut g = Given::converged(3);
    // An older operator made them: the annotation was never seen.
    g.event(binding(false));
    let d = g.decide();
    assert_eq!(
        d.iter().map(|d| d.intent.clone()).collect::<Vec<_>>(),
        vec![Intent::ApplyResources { generation: 1 }]
    );
    assert_eq!(d[0].reason.code, ReasonCode::ObjectsUnmarked);
    assert_ne!(
        g.status().phase,
        Some(logbook_crds::v1alpha1::ClusterPhase::Unbound)
    );
    g.applied(1);
    assert!(g.intents().is_empty());
    g.event(binding(true));
    assert!(g.intents().is_empty());
}

#[test]
fn a_cluster_bound_again_adopts_the_primary_its_user_chose() {
    let mut g = Given::converged(3);
    g.event(binding(true)).event(binding(false));
    g.succeed(Intent::ReleaseObjects);
    // By hand, unbound: demo-1 made primary, the others follow it.
    g.role(1, Role::Primary, None)
        .role(0, Role::Replica, Some(1))
        .role(2, Role::Replica, Some(1));
    assert!(g.intents().is_empty());
    g.event(binding(true));
    let d = g.decide();
    assert_eq!(
        d[0].intent,
        Intent::PromoteReplica {
            pod: pod(1),
            from: None
        },
        "{d:?}"
    );
    assert!(d.iter().all(|d| d.reason.code == ReasonCode::Rebound));
    assert!(
        !d.iter()
            .any(|d| matches!(d.intent, Intent::FenceNode { .. } | Intent::RollPod { .. })),
        "{d:?}"
    );
    for d in d {
        g.succeed(d.intent);
    }
    g.event(Event::ReplicaPromoted {
        pod: pod(1),
        from: None,
        offset: 100,
    });
    // Then its objects marked again, and nothing more.
    let d = g.decide();
    assert_eq!(
        d.iter().map(|d| d.intent.clone()).collect::<Vec<_>>(),
        vec![Intent::ApplyResources { generation: 1 }]
    );
    assert_eq!(d[0].reason.code, ReasonCode::Rebound);
    g.applied(1);
    g.label(1, Role::Primary).label(0, Role::Replica);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
}

#[test]
fn a_pod_being_deleted_that_stopped_answering_is_said_with_what_to_do() {
    let mut g = Given::converged(3);
    let degraded = |g: &Given| {
        g.status()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Degraded")
            .unwrap()
    };
    // Its node died: the pod is evicted, never confirmed gone.
    g.event(Event::PodObserved {
        pod: pod(2),
        uid: "uid-2-r1".into(),
        ip: Some("10.0.0.2".into()),
        phase: PodPhase::Running,
        ready: false,
        node: Some("node-b".into()),
        revision: Some("r1".into()),
    });
    assert_eq!(degraded(&g).reason, "ReducedRedundancy");
    g.event(Event::PodTerminating { pod: pod(2) });
    g.reach(2, Reachability::TimedOut);
    let d = degraded(&g);
    assert_eq!(d.status, "True");
    assert_eq!(d.reason, "PodNotExiting");
    assert!(
        d.message.contains("demo-2 is being deleted"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains(
            "kubectl taint nodes node-b node.kubernetes.io/out-of-service=nodeshutdown:NoExecute"
        ),
        "{}",
        d.message
    );
    // Gone (a person declared the node, or it came back): said no more.
    g.event(Event::PodDeleted { pod: pod(2) });
    assert_ne!(degraded(&g).reason, "PodNotExiting");
}
