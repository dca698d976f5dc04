//! The isolated-primary fence: with `fenceIsolatedPrimarySeconds` set, a
//! primary lost to a partition is replaced only once it certainly refuses
//! writes, at the moment `decide/fence.rs` computes, woken by a deadline.

use logbook_journal::Timestamp;

use super::*;
use crate::decide::next_deadline;

/// A converged cluster of three whose spec (generation 2) fences an
/// isolated primary after `seconds`.
fn fenced(seconds: i32) -> Given {
    let mut g = Given::converged(3);
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.failover.fence_isolated_primary_seconds = Some(seconds);
    g.spec_at(2, &spec).applied(2);
    g
}

/// demo-0 stops answering and both replicas lose it: an unreachable
/// primary, corroborated. The time of the last replica event.
fn partition_primary(g: &mut Given) -> Timestamp {
    g.reach(0, Reachability::TimedOut)
        .reach(0, Reachability::TimedOut)
        .reach(0, Reachability::TimedOut)
        .repl(1, LinkStatus::Silent, 100, 7)
        .repl(2, LinkStatus::Down, 100, 7);
    g.state.last_at
}

#[test]
fn an_unreachable_primary_is_replaced_only_once_its_fence_is_certain() {
    let mut g = fenced(2);
    let linked_at = partition_primary(&mut g);
    assert!(
        g.intents().is_empty(),
        "corroborated, but its fence is 4 s away"
    );
    // 2 s of lag, plus Valkey's whole-second clock and 1 Hz recount.
    let fenced_by = Timestamp(linked_at.0 + 4_000_000);
    assert_eq!(next_deadline(&g.state), Some(fenced_by));
    // Probes failing on journal nothing new about the replicas: 1 ms
    // before the fence, still nothing.
    g.every_ms(3_999).reach(0, Reachability::TimedOut);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.every_ms(1).event(Event::DeadlinePassed {
        deadline: fenced_by,
    });
    let decisions = g.decide();
    assert_eq!(decisions[0].intent, Intent::FenceNode { pod: pod(0) });
    assert_eq!(
        decisions[1].intent,
        Intent::PromoteReplica {
            pod: pod(1),
            from: Some(pod(0))
        }
    );
    assert!(matches!(
        decisions[1].reason.code,
        ReasonCode::PrimaryFailed { death: false, .. }
    ));
    let detail = &decisions[1].reason.detail;
    assert!(detail.contains("waited for its fence"), "{detail}");
    assert!(detail.contains("4000 ms later at worst"), "{detail}");
    assert_eq!(next_deadline(&g.state), None, "the fence is passed");
}

#[test]
fn a_replica_heard_later_moves_the_fence_later() {
    let mut g = fenced(1);
    let first = partition_primary(&mut g);
    assert_eq!(
        next_deadline(&g.state),
        Some(Timestamp(first.0 + 3_000_000))
    );
    // demo-1's link, silent, is now seen down: its last event is later,
    // and so is the last moment it may have acknowledged demo-0.
    g.repl(1, LinkStatus::Down, 100, 7);
    let later = g.state.last_at;
    assert_eq!(
        next_deadline(&g.state),
        Some(Timestamp(later.0 + 3_000_000))
    );
    g.every_ms(3_000).event(Event::DeadlinePassed {
        deadline: Timestamp(later.0 + 3_000_000),
    });
    assert!(
        g.intents()
            .iter()
            .any(|i| matches!(i, Intent::PromoteReplica { .. }))
    );
}

#[test]
fn without_the_fence_the_same_partition_is_failed_over_at_once() {
    let mut g = Given::converged(3);
    partition_primary(&mut g);
    assert_eq!(g.intents()[0], Intent::FenceNode { pod: pod(0) });
    assert_eq!(next_deadline(&g.state), None);
}

#[test]
fn a_dead_primary_takes_no_write_and_waits_for_no_fence() {
    let mut g = fenced(5);
    g.reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused);
    assert!(
        g.intents().contains(&Intent::PromoteReplica {
            pod: pod(1),
            from: Some(pod(0))
        }),
        "{:?}",
        g.intents()
    );
}

#[test]
fn a_slow_primary_its_replicas_still_hear_sets_no_fence_deadline() {
    let mut g = fenced(2);
    g.reach(0, Reachability::TimedOut)
        .reach(0, Reachability::TimedOut)
        .reach(0, Reachability::TimedOut);
    assert_eq!(next_deadline(&g.state), None, "both replicas are up");
    g.repl(1, LinkStatus::Silent, 100, 7);
    assert_eq!(next_deadline(&g.state), None, "demo-2 still hears it");
    g.repl(2, LinkStatus::Silent, 100, 7);
    assert_eq!(
        next_deadline(&g.state),
        Some(Timestamp(g.state.last_at.0 + 4_000_000))
    );
}
