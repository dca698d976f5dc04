//! `placement: Preferred` on a Replication cluster: after a failover the
//! primary role goes back to `demo-0` by a switchover, once it is back
//! and in sync and the hold-down has passed; never while it is not.

use logbook_crds::Placement;
use logbook_journal::{Event, Intent, LinkStatus, Reachability, ReasonCode, Role};

use super::*;

/// Three pods, `demo-1` primary after a failover from `demo-0`, which is
/// back (a new pod) and in sync as its replica.
fn failed_over() -> Given {
    let mut g = Given::converged(3);
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.placement = Some(Placement::Preferred);
    g.spec_at(2, &spec);
    g.applied(2);
    g.event(Event::ReplicaPromoted {
        pod: pod(1),
        from: Some(pod(0)),
        offset: 100,
    });
    g.role(1, Role::Primary, None)
        .repl(1, LinkStatus::NotReplica, 100, 8)
        .label(1, Role::Primary);
    g.role(2, Role::Replica, Some(1))
        .repl(2, LinkStatus::Up, 100, 8)
        .label(2, Role::Replica);
    g.succeed(Intent::PublishBootConfig {
        primary: Some(pod(1)),
        ip: Some("10.0.0.1".into()),
    });
    g.pod(0, "r1")
        .reach(0, Reachability::Reachable)
        .role(0, Role::Replica, Some(1))
        .repl(0, LinkStatus::Up, 100, 8)
        .label(0, Role::Replica);
    g.event(Event::ServerVersionObserved {
        pod: pod(0),
        uid: "uid-0-r1".into(),
        image: "valkey/valkey:9.1".into(),
        version: "9.1.2".into(),
    });
    g
}

#[test]
fn the_primary_role_goes_back_to_the_preferred_pod_after_the_hold_down() {
    let mut g = failed_over();
    assert!(g.intents().is_empty(), "at once: {:?}", g.intents());
    let deadline = crate::decide::next_deadline(&g.state).expect("the hold-down's end");
    g.every_ms(31_000);
    g.event(Event::DeadlinePassed { deadline });
    let decided = g.decide();
    let first = decided.first().expect("a fail-back");
    assert_eq!(
        first.intent,
        Intent::Switchover {
            from: pod(1),
            to: pod(0)
        }
    );
    assert_eq!(first.reason.code, ReasonCode::FailBack { pod: pod(0) });
}

/// A preferred pod whose server crashed and was restarted in place (same
/// pod, same image: no new version read) holds the role back for the
/// hold-down from that restart, not from when it first answered.
#[test]
fn an_in_place_restart_of_the_preferred_pod_starts_its_hold_down_again() {
    let mut g = failed_over();
    g.every_ms(25_000);
    g.reach(2, Reachability::Reachable);
    g.event(Event::ContainerRestartObserved {
        pod: pod(0),
        uid: "uid-0-r1".into(),
        restarts: 1,
    });
    let deadline = crate::decide::next_deadline(&g.state).expect("the hold-down's end");
    // Past the hold-down from its first answer, within the one from its
    // restart: it stays a replica.
    g.every_ms(10_000);
    g.reach(2, Reachability::Reachable);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.every_ms(25_000);
    g.event(Event::DeadlinePassed { deadline });
    assert_eq!(
        g.intents().first(),
        Some(&Intent::Switchover {
            from: pod(1),
            to: pod(0)
        })
    );
}

#[test]
fn no_fail_back_while_the_preferred_pod_is_not_in_sync_or_with_placement_any() {
    let mut g = failed_over();
    g.repl(0, LinkStatus::Down, 90, 8);
    g.every_ms(60_000);
    g.reach(2, Reachability::Reachable);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // In sync again, but the policy is Any: where the failover left it.
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    g.spec_at(3, &spec);
    g.applied(3);
    g.repl(0, LinkStatus::Up, 100, 8);
    g.every_ms(60_000);
    g.reach(2, Reachability::Reachable);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
}

/// `failed_over`, with placement Any (where the failover left it).
fn failed_over_any() -> Given {
    let mut g = failed_over();
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    g.spec_at(3, &spec);
    g.applied(3);
    g
}

#[test]
fn a_rebalance_request_moves_the_primary_back_at_once_whatever_the_placement() {
    let mut g = failed_over_any();
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.event(Event::RebalanceRequestObserved {
        request: Some("now".into()),
    });
    // No hold-down: at once.
    let decided = g.decide();
    let first = decided.first().expect("a move back");
    assert_eq!(
        first.intent,
        Intent::Switchover {
            from: pod(1),
            to: pod(0)
        }
    );
    assert_eq!(first.reason.code, ReasonCode::Rebalance { pod: pod(0) });
    // Once demo-0 is primary, the request is served: removed.
    g.event(Event::ReplicaPromoted {
        pod: pod(0),
        from: Some(pod(1)),
        offset: 100,
    });
    g.role(0, Role::Primary, None)
        .repl(0, LinkStatus::NotReplica, 100, 9)
        .label(0, Role::Primary);
    g.role(1, Role::Replica, Some(0))
        .repl(1, LinkStatus::Up, 100, 9)
        .label(1, Role::Replica);
    g.role(2, Role::Replica, Some(0))
        .repl(2, LinkStatus::Up, 100, 9);
    g.succeed(Intent::PublishBootConfig {
        primary: Some(pod(0)),
        ip: Some("10.0.0.0".into()),
    });
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::ClearRebalanceRequest],
        "{decided:?}"
    );
    assert!(
        decided[0]
            .reason
            .detail
            .contains("on its preferred pod demo-0"),
        "{}",
        decided[0].reason.detail
    );
}

#[test]
fn a_rebalance_that_cannot_move_says_why_and_is_removed() {
    let mut g = failed_over_any();
    g.repl(0, LinkStatus::Down, 90, 8);
    g.event(Event::RebalanceRequestObserved {
        request: Some("now".into()),
    });
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::ClearRebalanceRequest],
        "{decided:?}"
    );
    assert!(
        decided[0]
            .reason
            .detail
            .contains("demo-0 cannot take the role now"),
        "{}",
        decided[0].reason.detail
    );
}
