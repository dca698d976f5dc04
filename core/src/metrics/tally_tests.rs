//! The failover tallies' tests: given journaled events, then the notes
//! and projection the tracker folds.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use logbook_journal::{ChainHash, Reason, ReasonCode};

use super::*;

/// Folds `events`, one second apart from t=100 s, and returns the notes.
fn fold_all(tracker: &mut Tracker, state: &mut ClusterState, events: Vec<Event>) -> Vec<Note> {
    let mut notes = Vec::new();
    for body in events {
        let seq = state.last_seq + 1;
        let e = Envelope {
            seq,
            id: Uuid::now_v7(),
            at: Timestamp(i64::try_from(seq).unwrap() * 1_000_000 + 99_000_000),
            cause: None,
            epoch: 1,
            body,
            prev: state.last_hash,
            hash: ChainHash::GENESIS,
        };
        notes.extend(tracker.fold(state, &e));
    }
    notes
}

fn planned(id: Uuid, intent: Intent, code: ReasonCode) -> PlannedIntent {
    PlannedIntent {
        intent_id: id,
        intent,
        reason: Reason {
            code,
            detail: String::new(),
        },
    }
}

fn pod(name: &str) -> Event {
    Event::PodObserved {
        pod: name.to_owned(),
        uid: format!("uid-{name}"),
        ip: None,
        phase: logbook_journal::PodPhase::Running,
        ready: true,
        node: None,
        revision: None,
    }
}

fn role(name: &str, role: Role) -> Event {
    Event::NodeRoleObserved {
        pod: name.to_owned(),
        role,
        primary: None,
    }
}

/// Three pods, `demo-0` primary.
fn running() -> (Tracker, ClusterState) {
    let mut state = ClusterState::default();
    let mut tracker = Tracker::new(&state);
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![
            pod("demo-0"),
            pod("demo-1"),
            pod("demo-2"),
            role("demo-0", Role::Primary),
        ],
    );
    assert!(notes.is_empty(), "{notes:?}");
    (tracker, state)
}

#[test]
fn decisions_and_outcomes_are_named_after_intent_and_reason() {
    let mut state = ClusterState::default();
    let mut tracker = Tracker::new(&state);
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![
            Event::Decided {
                intents: vec![
                    planned(
                        a,
                        Intent::ApplyResources { generation: 1 },
                        ReasonCode::SpecChanged { generation: 1 },
                    ),
                    planned(b, Intent::UpdateStatus, ReasonCode::StatusStale),
                ],
            },
            Event::IntentSucceeded {
                intent_id: a,
                detail: String::new(),
            },
            Event::IntentAbandoned {
                intent_id: b,
                reason: String::new(),
            },
            Event::IntentFailed {
                intent_id: Uuid::now_v7(),
                error: String::new(),
                retryable: true,
            },
        ],
    );
    assert_eq!(
        notes,
        vec![
            Note::Decision {
                intent: "ApplyResources",
                reason: "SpecChanged"
            },
            Note::Decision {
                intent: "UpdateStatus",
                reason: "StatusStale"
            },
            Note::Outcome {
                intent: "ApplyResources",
                outcome: Outcome::Succeeded
            },
            Note::Outcome {
                intent: "UpdateStatus",
                outcome: Outcome::Abandoned
            },
            Note::Outcome {
                intent: "Unknown",
                outcome: Outcome::Failed
            },
        ]
    );
}

#[test]
fn the_first_primary_of_a_new_cluster_is_no_failover() {
    let mut state = ClusterState::default();
    let mut tracker = Tracker::new(&state);
    let id = Uuid::now_v7();
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![
            pod("demo-0"),
            Event::Decided {
                intents: vec![planned(
                    id,
                    Intent::PromoteReplica {
                        pod: "demo-0".to_owned(),
                        from: None,
                    },
                    ReasonCode::Bootstrap { candidates: vec![] },
                )],
            },
            Event::ReplicaPromoted {
                pod: "demo-0".to_owned(),
                from: None,
                offset: 0,
            },
            Event::IntentSucceeded {
                intent_id: id,
                detail: String::new(),
            },
        ],
    );
    assert!(
        !notes.iter().any(|n| matches!(n, Note::Failover { .. })),
        "{notes:?}"
    );
}

#[test]
fn an_automatic_failover_is_timed_from_the_first_sign_of_failure_to_its_success() {
    let (mut tracker, mut state) = running();
    let id = Uuid::now_v7();
    // The old primary died and came back fenced (the projection forgot
    // it: `from` is none), then the operator decided and promoted.
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![
            Event::PodReachabilityObserved {
                pod: "demo-0".to_owned(),
                reachability: Reachability::Refused,
            },
            role("demo-0", Role::Replica),
            Event::Decided {
                intents: vec![planned(
                    id,
                    Intent::PromoteReplica {
                        pod: "demo-1".to_owned(),
                        from: None,
                    },
                    ReasonCode::NoPrimary,
                )],
            },
            Event::ReplicaPromoted {
                pod: "demo-1".to_owned(),
                from: None,
                offset: 10,
            },
            role("demo-1", Role::Primary),
            Event::IntentSucceeded {
                intent_id: id,
                detail: String::new(),
            },
        ],
    );
    let failovers: Vec<&Note> = notes
        .iter()
        .filter(|n| matches!(n, Note::Failover { .. }))
        .collect();
    // Refused at event 5, decided at event 7, succeeded at event 10:
    // five seconds, the clients' window (not the decision's three).
    assert_eq!(
        failovers,
        vec![&Note::Failover {
            kind: FailoverKind::Automatic,
            seconds: Some(5.0)
        }]
    );
}

#[test]
fn a_failed_promotion_is_no_failover_and_a_switchover_is_planned() {
    let (mut tracker, mut state) = running();
    let (failed, switch) = (Uuid::now_v7(), Uuid::now_v7());
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![
            Event::Decided {
                intents: vec![planned(
                    failed,
                    Intent::PromoteReplica {
                        pod: "demo-1".to_owned(),
                        from: Some("demo-0".to_owned()),
                    },
                    ReasonCode::PrimaryDead,
                )],
            },
            Event::IntentFailed {
                intent_id: failed,
                error: "refused".to_owned(),
                retryable: true,
            },
            Event::Decided {
                intents: vec![planned(
                    switch,
                    Intent::Switchover {
                        from: "demo-0".to_owned(),
                        to: "demo-2".to_owned(),
                    },
                    ReasonCode::Requested,
                )],
            },
            Event::ReplicaPromoted {
                pod: "demo-2".to_owned(),
                from: Some("demo-0".to_owned()),
                offset: 5,
            },
            Event::IntentSucceeded {
                intent_id: switch,
                detail: String::new(),
            },
        ],
    );
    let failovers: Vec<&Note> = notes
        .iter()
        .filter(|n| matches!(n, Note::Failover { .. }))
        .collect();
    assert_eq!(
        failovers,
        vec![&Note::Failover {
            kind: FailoverKind::Planned,
            seconds: Some(2.0)
        }]
    );
}

#[test]
fn a_promotion_a_person_requested_is_a_requested_failover() {
    let (mut tracker, mut state) = running();
    let id = Uuid::now_v7();
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![
            Event::Decided {
                intents: vec![planned(
                    id,
                    Intent::PromoteReplica {
                        pod: "demo-2".to_owned(),
                        from: Some("demo-0".to_owned()),
                    },
                    ReasonCode::Requested,
                )],
            },
            Event::ReplicaPromoted {
                pod: "demo-2".to_owned(),
                from: Some("demo-0".to_owned()),
                offset: 5,
            },
            Event::IntentSucceeded {
                intent_id: id,
                detail: String::new(),
            },
        ],
    );
    assert!(
        notes.contains(&Note::Failover {
            kind: FailoverKind::Requested,
            seconds: Some(2.0)
        }),
        "{notes:?}"
    );
}

#[test]
fn a_primary_nobody_decided_is_an_observed_failover_timed_from_the_failure() {
    let (mut tracker, mut state) = running();
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![
            // First sign of failure at event 5; healthy answers before
            // it do not count, later failures do not move it.
            Event::PodReachabilityObserved {
                pod: "demo-0".to_owned(),
                reachability: Reachability::TimedOut,
            },
            Event::PrimaryUnreachable {
                pod: "demo-0".to_owned(),
                consecutive_failures: 3,
            },
            role("demo-0", Role::Replica),
            role("demo-2", Role::Primary),
        ],
    );
    assert_eq!(
        notes,
        vec![Note::Failover {
            kind: FailoverKind::Observed,
            seconds: Some(3.0)
        }]
    );
    // A promotion nobody here decided, without any journaled failure
    // of the primary it replaced: counted, untimed.
    let notes = fold_all(
        &mut tracker,
        &mut state,
        vec![Event::ReplicaPromoted {
            pod: "demo-1".to_owned(),
            from: Some("demo-2".to_owned()),
            offset: 9,
        }],
    );
    assert_eq!(
        notes,
        vec![Note::Failover {
            kind: FailoverKind::Observed,
            seconds: None
        }]
    );
}

#[test]
fn a_takeover_resumes_the_promotions_in_flight() {
    let (mut tracker, mut state) = running();
    let id = Uuid::now_v7();
    fold_all(
        &mut tracker,
        &mut state,
        vec![Event::Decided {
            intents: vec![planned(
                id,
                Intent::PromoteReplica {
                    pod: "demo-1".to_owned(),
                    from: Some("demo-0".to_owned()),
                },
                ReasonCode::PrimaryDead,
            )],
        }],
    );
    // A new leader: a fresh tracker on the loaded projection.
    let mut fresh = Tracker::new(&state);
    let notes = fold_all(
        &mut fresh,
        &mut state,
        vec![
            Event::ReplicaPromoted {
                pod: "demo-1".to_owned(),
                from: Some("demo-0".to_owned()),
                offset: 1,
            },
            Event::IntentSucceeded {
                intent_id: id,
                detail: String::new(),
            },
        ],
    );
    assert!(notes.contains(&Note::Failover {
        kind: FailoverKind::Automatic,
        seconds: Some(2.0)
    }));
    assert!(
        !notes.iter().any(|n| matches!(
            n,
            Note::Failover {
                kind: FailoverKind::Observed,
                ..
            }
        )),
        "{notes:?}"
    );
}

#[test]
fn folding_changes_the_projection_as_apply_does() {
    let (mut tracker, mut state) = running();
    let mut plain = state.clone();
    let e = Envelope {
        seq: state.last_seq + 1,
        id: Uuid::now_v7(),
        at: Timestamp(1),
        cause: None,
        epoch: 1,
        body: role("demo-1", Role::Replica),
        prev: state.last_hash,
        hash: ChainHash::GENESIS,
    };
    tracker.fold(&mut state, &e);
    plain.apply(&e);
    assert_eq!(state, plain);
}
