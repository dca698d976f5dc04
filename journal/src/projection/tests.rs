//! Projection tests: given events, then state; totality on arbitrary
//! input; snapshot + tail equals a full fold.

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::codec;
use crate::envelope::Envelope;
use crate::event::Event;
use crate::ids::StreamId;
use crate::intent::{Intent, Reason, ReasonCode};
use crate::store::Head;
use crate::writer::{NewEvent, encode_batch};

fn pod() -> impl Strategy<Value = String> {
    (0u8..4).prop_map(|i| format!("demo-{i}"))
}

fn intent_id() -> impl Strategy<Value = Uuid> {
    (0u64..6).prop_map(|i| Uuid::from_u64_pair(7, i))
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Primary),
        Just(Role::Replica),
        Just(Role::Sentinel)
    ]
}

fn reachability() -> impl Strategy<Value = Reachability> {
    prop_oneof![
        Just(Reachability::Reachable),
        Just(Reachability::Refused),
        Just(Reachability::TimedOut),
        Just(Reachability::NoAddress)
    ]
}

/// Events biased towards the interesting ones (roles, promotions, intents).
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0i64..5).prop_map(|g| Event::SpecChanged {
            generation: g,
            spec_json: format!("{{\"g\":{g}}}"),
            fingerprint: SpecFingerprint([u8::try_from(g).unwrap_or(0); 32])
        }),
        (0i64..5).prop_map(|g| Event::SpecRejected {
            generation: g,
            errors: vec![SpecProblem {
                path: "spec".into(),
                message: "bad".into()
            }]
        }),
        Just(Event::ClusterDeleted),
        (pod(), 0u8..2, any::<bool>()).prop_map(|(pod, uid, ready)| Event::PodObserved {
            pod,
            uid: format!("uid-{uid}"),
            ip: Some("10.0.0.1".into()),
            phase: PodPhase::Running,
            ready,
            node: None,
            revision: None
        }),
        pod().prop_map(|pod| Event::PodDeleted { pod }),
        (pod(), reachability())
            .prop_map(|(pod, reachability)| Event::PodReachabilityObserved { pod, reachability }),
        (pod(), role(), proptest::option::of(pod()))
            .prop_map(|(pod, role, primary)| Event::NodeRoleObserved { pod, role, primary }),
        (pod(), any::<u64>()).prop_map(|(pod, offset)| Event::ReplicationObserved {
            pod,
            link: LinkStatus::Up,
            offset,
            replid: ReplId([1; 20])
        }),
        (pod(), any::<u32>()).prop_map(|(pod, n)| Event::PrimaryUnreachable {
            pod,
            consecutive_failures: n
        }),
        (pod(), proptest::option::of(pod()), any::<u64>())
            .prop_map(|(pod, from, offset)| Event::ReplicaPromoted { pod, from, offset }),
        proptest::collection::vec(intent_id(), 0..3).prop_map(|ids| Event::Decided {
            intents: ids
                .into_iter()
                .map(|intent_id| PlannedIntent {
                    intent_id,
                    intent: Intent::UpdateStatus,
                    reason: Reason {
                        code: ReasonCode::StatusStale,
                        detail: String::new()
                    }
                })
                .collect()
        }),
        intent_id().prop_map(|intent_id| Event::IntentSucceeded {
            intent_id,
            detail: "ok".into()
        }),
        (intent_id(), any::<bool>()).prop_map(|(intent_id, retryable)| Event::IntentFailed {
            intent_id,
            error: "e".into(),
            retryable
        }),
        intent_id().prop_map(|intent_id| Event::IntentAbandoned {
            intent_id,
            reason: "r".into()
        }),
        (0u64..3).prop_map(|e| Event::LeadershipAcquired {
            epoch: e,
            holder: "op".into()
        }),
        (0u64..3).prop_map(|e| Event::LeadershipLost {
            epoch: e,
            reason: "expired".into()
        }),
        (0u64..50).prop_map(|seq| Event::SnapshotTaken {
            seq,
            hash: ChainHash::GENESIS
        }),
    ]
}

/// Properly chained envelopes for `bodies`, as a writer would produce.
fn chained(bodies: Vec<Event>) -> Vec<Envelope> {
    let news = bodies.into_iter().enumerate().map(|(i, body)| NewEvent {
        id: Uuid::from_u64_pair(1, i as u64),
        at: crate::time::Timestamp(1_000_000 * i as i64),
        cause: None,
        body,
    });
    encode_batch(&StreamId::new("t").unwrap(), Head::EMPTY, 1, news.collect())
        .unwrap()
        .0
}

fn fold(envelopes: &[Envelope]) -> ClusterState {
    let mut state = ClusterState::new();
    for e in envelopes {
        state.apply(e);
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Folding everything equals restoring an encoded snapshot of any
    /// prefix and folding the rest.
    #[test]
    fn snapshot_of_a_prefix_plus_the_rest_equals_the_full_fold(
        bodies in proptest::collection::vec(event(), 0..80),
        cut in any::<prop::sample::Index>(),
    ) {
        let envelopes = chained(bodies);
        let full = fold(&envelopes);
        let cut = cut.index(envelopes.len() + 1);
        let prefix = fold(&envelopes[..cut]);
        let (snapshot, _) = crate::snapshot::encode(&prefix).unwrap();
        let mut restored = crate::snapshot::decode(&snapshot).unwrap().state;
        prop_assert_eq!(&restored, &prefix);
        for e in &envelopes[cut..] {
            restored.apply(e);
        }
        prop_assert_eq!(restored, full);
    }

    /// Any sequence of envelopes — gaps, repeats, stale epochs, broken
    /// links — folds without panicking, and stays bounded.
    #[test]
    fn apply_is_total(
        items in proptest::collection::vec((event(), 0u64..40, 0u64..4, any::<[u8; 2]>()), 0..120),
    ) {
        let mut state = ClusterState::new();
        for (body, seq, epoch, h) in items {
            let hash = ChainHash([h[0]; 32]);
            let prev = ChainHash([h[1]; 32]);
            state.apply(&Envelope { seq, id: Uuid::nil(), at: crate::time::Timestamp(i64::MIN), cause: None, epoch, body, prev, hash });
            prop_assert!(state.history.len() <= HISTORY_LIMIT);
            prop_assert!(state.anomalies.len() <= ANOMALY_LIMIT);
            prop_assert!(!state.anomalies.back().is_some_and(misrouted), "{:?}", state.anomalies.back());
        }
        // And the result is always encodable as a snapshot.
        prop_assert!(crate::snapshot::encode(&state).is_ok());
    }
}

/// Whether an anomaly says an event reached a family fold that does not
/// know it: `apply_body`'s route and the family files disagree.
fn misrouted(anomaly: &Anomaly) -> bool {
    anomaly.description.contains("was routed to the")
}

/// One event of each variant in the codec's sample reaches a fold that
/// folds it.
#[test]
fn every_sampled_variant_is_folded_by_the_family_it_is_routed_to() {
    let state = fold(&chained(crate::codec::tests::every_variant()));
    assert!(
        !state.anomalies.iter().any(misrouted),
        "{:?}",
        state.anomalies
    );
}

fn env(seq: u64, body: Event) -> Envelope {
    chained(vec![body])
        .pop()
        .map(|mut e| {
            e.seq = seq;
            e
        })
        .unwrap()
}

#[test]
fn a_failover_story() {
    let bodies = vec![
        Event::SpecChanged {
            generation: 1,
            spec_json: "{}".into(),
            fingerprint: SpecFingerprint([1; 32]),
        },
        Event::PodObserved {
            pod: "demo-0".into(),
            uid: "a".into(),
            ip: Some("10.0.0.1".into()),
            phase: PodPhase::Running,
            ready: true,
            node: None,
            revision: None,
        },
        Event::PodObserved {
            pod: "demo-1".into(),
            uid: "b".into(),
            ip: Some("10.0.0.2".into()),
            phase: PodPhase::Running,
            ready: true,
            node: None,
            revision: None,
        },
        Event::NodeRoleObserved {
            pod: "demo-0".into(),
            role: Role::Primary,
            primary: None,
        },
        Event::NodeRoleObserved {
            pod: "demo-1".into(),
            role: Role::Replica,
            primary: Some("demo-0".into()),
        },
        Event::PodReachabilityObserved {
            pod: "demo-0".into(),
            reachability: Reachability::TimedOut,
        },
        Event::PodReachabilityObserved {
            pod: "demo-0".into(),
            reachability: Reachability::TimedOut,
        },
        Event::PrimaryUnreachable {
            pod: "demo-0".into(),
            consecutive_failures: 3,
        },
        Event::Decided {
            intents: vec![PlannedIntent {
                intent_id: Uuid::from_u64_pair(9, 9),
                intent: Intent::PromoteReplica {
                    pod: "demo-1".into(),
                    from: Some("demo-0".into()),
                },
                reason: Reason {
                    code: ReasonCode::PrimaryUnreachable {
                        consecutive_failures: 3,
                    },
                    detail: "3 timeouts".into(),
                },
            }],
        },
        Event::ReplicaPromoted {
            pod: "demo-1".into(),
            from: Some("demo-0".into()),
            offset: 42,
        },
        Event::IntentSucceeded {
            intent_id: Uuid::from_u64_pair(9, 9),
            detail: "promoted".into(),
        },
    ];
    let state = fold(&chained(bodies));
    assert_eq!(state.replication.primary.as_deref(), Some("demo-1"));
    assert_eq!(state.pods["demo-0"].role, None);
    assert_eq!(state.pods["demo-0"].consecutive_failures, 3);
    assert_eq!(state.pods["demo-1"].role, Some(Role::Primary));
    assert!(state.in_flight.is_empty());
    assert_eq!(state.counters.failovers, 1);
    assert_eq!(state.counters.anomalies, 0, "{:?}", state.anomalies);
    assert_eq!(state.last_seq, 11);
    let kinds: Vec<&str> = state.history.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "SpecChanged",
            "NodeRoleObserved",
            "PrimaryUnreachable",
            "ReplicaPromoted"
        ]
    );
}

#[test]
fn gaps_repeats_and_orphans_become_anomalies() {
    let mut state = ClusterState::new();
    state.apply(&env(1, Event::ClusterDeleted));
    state.apply(&env(1, Event::ClusterDeleted)); // repeat: ignored
    assert!(state.deleted);
    assert_eq!(state.counters.anomalies, 1, "{:?}", state.anomalies); // the repeat
    state.apply(&env(
        5,
        Event::IntentSucceeded {
            intent_id: Uuid::nil(),
            detail: String::new(),
        },
    ));
    assert_eq!(state.last_seq, 5);
    let texts: Vec<&str> = state
        .anomalies
        .iter()
        .map(|a| a.description.as_str())
        .collect();
    assert!(texts.iter().any(|t| t.contains("seq gap")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("not in flight")),
        "{texts:?}"
    );
}

#[test]
fn a_rejected_spec_keeps_the_last_valid_one() {
    let state = fold(&chained(vec![
        Event::SpecChanged {
            generation: 2,
            spec_json: "{\"replicas\":3}".into(),
            fingerprint: SpecFingerprint([2; 32]),
        },
        Event::SpecRejected {
            generation: 3,
            errors: vec![SpecProblem {
                path: "spec.replicas".into(),
                message: "must be >= 1".into(),
            }],
        },
    ]));
    assert_eq!(state.desired.as_ref().map(|d| d.generation), Some(2));
    assert!(matches!(
        state.spec_status,
        SpecStatus::Rejected { generation: 3, .. }
    ));
    assert_eq!(state.counters.rejections, 1);
}

#[test]
fn snapshot_bytes_round_trip_through_the_codec() {
    let state = fold(&chained(crate::codec::tests::every_variant()));
    let (snapshot, digest) = crate::snapshot::encode(&state).unwrap();
    let (seq, hash, read_digest, decoded): (u64, ChainHash, _, ClusterState) =
        codec::decode_snapshot(&snapshot.frame).unwrap();
    assert_eq!((seq, hash), (state.last_seq, state.last_hash));
    assert_eq!(decoded, state);
    assert_eq!(read_digest, digest);
    assert_eq!(codec::state_digest(&state).unwrap(), digest);
}

/// The state is stored with named fields: a field a newer build added,
/// missing from an older snapshot, reads as its default (no copy of the
/// older layout is needed), and one the reader does not know is ignored.
#[test]
fn a_snapshot_missing_a_field_reads_it_as_its_default() {
    let state = fold(&chained(crate::codec::tests::every_variant()));
    let mut json = serde_json::to_value(&state).unwrap();
    let object = json.as_object_mut().unwrap();
    assert!(object.remove("backups").is_some());
    object.insert("from_a_later_build".into(), serde_json::json!({"x": 1}));
    let pods = object.get_mut("pods").unwrap().as_object_mut().unwrap();
    for pod in pods.values_mut() {
        pod.as_object_mut().unwrap().remove("terminating");
    }
    let read: ClusterState = serde_json::from_value(json).unwrap();
    let mut expected = state.clone();
    expected.backups = Default::default();
    for pod in expected.pods.values_mut() {
        pod.terminating = false;
    }
    assert_eq!(read, expected);
}

/// A snapshot whose state was altered after it was taken is refused:
/// its digest no longer matches.
#[test]
fn a_snapshot_whose_state_was_altered_is_refused() {
    let state = fold(&chained(crate::codec::tests::every_variant()));
    let (snapshot, _) = crate::snapshot::encode(&state).unwrap();
    let mut frame = snapshot.frame.clone();
    // Rewrite one digit of the JSON and reseal the frame, as a forger
    // who knows the frame layout (but not the journal) would.
    let at = frame.len() - 2;
    frame[at] = if frame[at] == b'0' { b'1' } else { b'0' };
    let payload_crc = crc32c::crc32c(&frame[8..]);
    frame[4..8].copy_from_slice(&payload_crc.to_le_bytes());
    let err = codec::decode_snapshot::<ClusterState>(&frame).unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
}

#[test]
fn desired_spec_parses_the_stored_json_or_reports_why_not() {
    assert!(ClusterState::new().desired_spec().is_none());
    let state = fold(&chained(vec![Event::SpecChanged {
        generation: 1,
        spec_json: "not json".into(),
        fingerprint: SpecFingerprint([0; 32]),
    }]));
    assert!(matches!(state.desired_spec(), Some(Err(_))));
}

/// `FingerprintsRekeyed` renames each fingerprint and digest it names
/// wherever the users part holds it, and nothing else.
#[test]
fn rekeyed_fingerprints_are_renamed_everywhere_and_nothing_else() {
    use std::collections::BTreeMap;

    use super::users::{AppliedUser, FailedSync};
    use crate::users::{Rotation, UserWant};

    let want = |password: &str, previous: Option<&str>| UserWant {
        rules: vec!["on".into()],
        password: password.into(),
        previous: previous.map(str::to_owned),
    };
    let mut state = ClusterState::new();
    let users = &mut state.users;
    let mut record = crate::users::UserRecord {
        object: "app".into(),
        username: "app".into(),
        generation: 1,
        rules: vec!["on".into()],
        secret: "s/password".into(),
        password: Some("0000000a".into()),
        problem: None,
        deleting: false,
        rotation_window_ms: 1000,
    };
    users.records.insert("app".into(), record.clone());
    users.nodes.insert(
        "demo-0".into(),
        BTreeMap::from([("app".into(), "d000000a".into())]),
    );
    users.applied.insert(
        "demo-0".into(),
        BTreeMap::from([(
            "app".into(),
            AppliedUser {
                want: want("0000000a", Some("0000000b")),
                digest: Some("d000000a".into()),
            },
        )]),
    );
    users.failed.insert(
        "demo-1".into(),
        FailedSync {
            wants: BTreeMap::from([("app".into(), Some(want("0000000a", None)))]),
            error: "refused".into(),
        },
    );
    users.rotations.insert(
        "app".into(),
        Rotation {
            from: "0000000b".into(),
            to: "0000000a".into(),
            since: Timestamp(1),
            until: Timestamp(2),
        },
    );
    assert!(users.fingerprints().contains("0000000b"));
    assert!(users.digests().contains("d000000a"));
    state.apply(&env(
        1,
        Event::FingerprintsRekeyed {
            passwords: BTreeMap::from([("0000000a".into(), "aaaaaaaaaaaaaaaa".into())]),
            digests: BTreeMap::from([("d000000a".into(), "dddddddddddddddd".into())]),
        },
    ));
    let users = &state.users;
    record.password = Some("aaaaaaaaaaaaaaaa".into());
    assert_eq!(users.records["app"], record);
    assert_eq!(users.nodes["demo-0"]["app"], "dddddddddddddddd");
    let applied = &users.applied["demo-0"]["app"];
    assert_eq!(applied.want, want("aaaaaaaaaaaaaaaa", Some("0000000b")));
    assert_eq!(applied.digest.as_deref(), Some("dddddddddddddddd"));
    assert_eq!(
        users.failed["demo-1"].wants["app"],
        Some(want("aaaaaaaaaaaaaaaa", None))
    );
    let rotation = &users.rotations["app"];
    assert_eq!(
        (rotation.from.as_str(), rotation.to.as_str()),
        ("0000000b", "aaaaaaaaaaaaaaaa")
    );
    // What the nodes were given is what the record wants: held, as before.
    assert!(users.holds("demo-0", &users.records["app"]));
}
