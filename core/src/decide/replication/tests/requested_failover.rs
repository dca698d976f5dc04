//! Given a failover request, when `decide` runs, then exactly these
//! intents: fence a healthy primary alone, promote on the offsets the fence
//! read, clear the request once; refuse (and clear) when nothing can be
//! promoted.

use super::*;

const ASKED: &str = "2026-11-22T10:00:00Z";

fn request(g: &mut Given, value: Option<&str>) {
    g.event(Event::FailoverRequestObserved {
        request: value.map(str::to_owned),
    });
}

fn codes(decisions: &[Decision]) -> Vec<ReasonCode> {
    decisions.iter().map(|d| d.reason.code.clone()).collect()
}

#[test]
fn a_healthy_primary_is_fenced_first_then_the_replica_with_the_most_history_is_promoted() {
    let mut g = Given::converged(3);
    request(&mut g, Some(ASKED));
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::FenceNode { pod: pod(0) }],
        "a primary that answers is fenced alone: {decisions:?}"
    );
    assert_eq!(codes(&decisions), vec![ReasonCode::Requested]);
    assert!(decisions[0].reason.detail.contains(ASKED));

    // The fence's facts: demo-0 follows nobody; the replicas' offsets
    // after it (demo-2 got further).
    g.role(0, Role::Replica, None)
        .repl(1, LinkStatus::Down, 120, 7)
        .repl(2, LinkStatus::Down, 130, 7);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![
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
                pod: pod(0),
                to: pod(2)
            },
            Intent::RepointReplica {
                pod: pod(1),
                to: pod(2)
            },
            Intent::ClearFailoverRequest,
        ]
    );
    assert!(
        codes(&decisions)
            .iter()
            .all(|c| *c == ReasonCode::Requested),
        "{decisions:?}"
    );
    assert!(
        decisions[0].reason.detail.contains("demo-2 offset 130"),
        "{}",
        decisions[0].reason.detail
    );

    // The promotion is journaled but the clearing failed: the request is
    // served, so only its clearing is decided again — never a second
    // failover.
    g.event(Event::ReplicaPromoted {
        pod: pod(2),
        from: Some(pod(0)),
        offset: 130,
    })
    .role(2, Role::Primary, None)
    .repl(2, LinkStatus::NotReplica, 130, 8);
    let decisions = g.decide();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].intent, Intent::ClearFailoverRequest);
    assert!(
        decisions[0]
            .reason
            .detail
            .contains("served by the promotion of demo-2")
    );

    // Cleared: nothing about failing over is left.
    request(&mut g, None);
    assert!(
        !g.intents().iter().any(|i| matches!(
            i,
            Intent::PromoteReplica { .. } | Intent::FenceNode { .. } | Intent::ClearFailoverRequest
        )),
        "{:?}",
        g.intents()
    );
}

#[test]
fn with_no_eligible_replica_the_request_is_refused_and_cleared_without_a_fence() {
    let mut g = Given::converged(2);
    g.reach(1, Reachability::Refused);
    request(&mut g, Some(ASKED));
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::ClearFailoverRequest]
    );
    assert!(
        decisions[0].reason.detail.contains("refused"),
        "{}",
        decisions[0].reason.detail
    );
    assert!(
        decisions[0]
            .reason
            .detail
            .contains("demo-1 offset 100 (ineligible)")
    );
}

#[test]
fn a_primary_that_does_not_answer_is_fenced_and_replaced_at_once_even_without_automatic_failover() {
    let mut g = Given::converged(3);
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.failover.automatic = false;
    g.spec(&spec);
    g.reach(0, Reachability::TimedOut)
        .repl(1, LinkStatus::Up, 200, 7)
        .repl(2, LinkStatus::Up, 150, 7);
    assert!(
        g.intents().is_empty(),
        "no automatic failover: {:?}",
        g.intents()
    );
    request(&mut g, Some(""));
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![
            Intent::FenceNode { pod: pod(0) },
            Intent::PromoteReplica {
                pod: pod(1),
                from: Some(pod(0))
            },
            Intent::SetRoleLabels {
                primary: Some(pod(1))
            },
            Intent::PublishBootConfig {
                primary: Some(pod(1)),
                ip: Some("10.0.0.1".into())
            },
            Intent::RepointReplica {
                pod: pod(2),
                to: pod(1)
            },
            Intent::ClearFailoverRequest,
        ]
    );
    assert!(
        decisions[0]
            .reason
            .detail
            .starts_with("failover requested: primary demo-0 does not answer"),
        "{}",
        decisions[0].reason.detail
    );
}

#[test]
fn a_replica_lost_after_the_fence_restores_the_fenced_primary_rather_than_leave_none() {
    let mut g = Given::converged(2);
    request(&mut g, Some(ASKED));
    assert_eq!(g.intents(), vec![Intent::FenceNode { pod: pod(0) }]);
    g.role(0, Role::Replica, None)
        .reach(1, Reachability::Refused);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
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
            Intent::ClearFailoverRequest,
        ]
    );
    assert!(
        decisions[0]
            .reason
            .detail
            .contains("refused after fencing demo-0")
    );
}

#[test]
fn topologies_the_operator_does_not_fail_over_refuse_the_request() {
    let mut g = Given::new();
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Standalone);
    spec.replicas = Some(1);
    g.spec(&spec);
    g.applied(1);
    g.event(Event::StatefulSetObserved {
        replicas: 1,
        update_revision: Some("r1".into()),
    });
    request(&mut g, Some(ASKED));
    let decisions = g.decide();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].intent, Intent::ClearFailoverRequest);
    assert!(decisions[0].reason.detail.contains("Standalone"));
}

#[test]
fn a_paused_cluster_keeps_the_request_for_later() {
    let mut g = Given::converged(3);
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.paused = true;
    g.spec(&spec);
    request(&mut g, Some(ASKED));
    assert!(g.intents().is_empty());
    assert!(g.state.failover_request.is_some());
}

#[test]
fn a_clearing_found_in_flight_after_a_restart_is_done_once_no_request_stands() {
    let mut g = Given::converged(3);
    request(&mut g, Some(ASKED));
    assert_eq!(
        crate::decide::already_done(&g.state, &Intent::ClearFailoverRequest),
        None
    );
    request(&mut g, None);
    assert!(crate::decide::already_done(&g.state, &Intent::ClearFailoverRequest).is_some());
}
