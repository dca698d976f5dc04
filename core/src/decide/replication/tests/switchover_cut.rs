//! A switchover cut short between its promotion and the old primary
//! following the promoted pod (the operator killed there): the old
//! primary's writes are held by a pause that expires on its own, after
//! which it takes writes again, through the Services that still select
//! it, acknowledged by the replicas that still follow it. The next
//! instance finds the switchover done (the promoted pod reports itself
//! primary); repointing the old primary at the promoted pod would then
//! discard those acknowledged writes.

use logbook_journal::{Event, Intent, LinkStatus, ReasonCode, Role};

use super::*;

/// demo-0 primary, demo-1 promoted from it at offset 100 by a switchover
/// cut short: demo-0's role unknown until it is probed again, demo-2
/// still following demo-0.
fn cut_after_the_promotion() -> Given {
    let mut g = Given::converged(3);
    g.event(Event::ReplicaPromoted {
        pod: pod(1),
        from: Some(pod(0)),
        offset: 100,
    });
    g
}

#[test]
fn the_old_primary_is_not_repointed_before_it_is_seen_again() {
    let g = cut_after_the_promotion();
    assert!(
        !g.intents().iter().any(|i| matches!(
            i,
            Intent::RepointReplica { pod, .. } if *pod == super::pod(0)
        )),
        "{:?}",
        g.intents()
    );
}

#[test]
fn an_old_primary_that_took_writes_since_gets_the_role_back() {
    let mut g = cut_after_the_promotion();
    g.role(0, Role::Primary, None);
    g.repl(0, LinkStatus::NotReplica, 400, 1);
    g.repl(1, LinkStatus::NotReplica, 100, 9);
    let d = g.decide();
    let intents: Vec<Intent> = d.iter().map(|d| d.intent.clone()).collect();
    assert_eq!(
        intents[..2],
        [
            Intent::FenceNode { pod: pod(1) },
            Intent::PromoteReplica {
                pod: pod(0),
                from: Some(pod(1)),
            },
        ],
        "{intents:?}"
    );
    assert!(
        intents.contains(&Intent::RepointReplica {
            pod: pod(1),
            to: pod(0),
        }),
        "{intents:?}"
    );
    assert!(
        matches!(
            d[0].reason.code,
            ReasonCode::PrimaryBehindReplica {
                primary_offset: 100,
                ..
            }
        ),
        "{:?}",
        d[0].reason
    );
}

#[test]
fn an_old_primary_still_paused_follows_the_promoted_pod() {
    let mut g = cut_after_the_promotion();
    g.role(0, Role::Primary, None);
    g.repl(0, LinkStatus::NotReplica, 100, 1);
    g.repl(1, LinkStatus::NotReplica, 100, 9);
    let intents = g.intents();
    assert!(
        intents.contains(&Intent::RepointReplica {
            pod: pod(0),
            to: pod(1),
        }),
        "{intents:?}"
    );
    assert!(
        !intents
            .iter()
            .any(|i| matches!(i, Intent::FenceNode { .. } | Intent::PromoteReplica { .. })),
        "{intents:?}"
    );
}
