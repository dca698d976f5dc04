//! Codec tests: every variant round-trips, a golden frame pins the format,
//! frame damage is classified, and nothing panics on garbage.

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::event::{LinkStatus, PodPhase, Reachability, Role, SpecProblem};
use crate::ids::{ReplId, SpecFingerprint};
use crate::intent::{Intent, PlannedIntent, Reason, ReasonCode, SlotRange};
use crate::policy::Policy;

/// One instance of every event variant, in catalog order.
pub(crate) fn every_variant() -> Vec<Event> {
    let id = Uuid::from_u128(0x0190_1234_5678_7abc_8def_0123_4567_89ab);
    let planned = |intent| PlannedIntent {
        intent_id: id,
        intent,
        reason: Reason {
            code: ReasonCode::PrimaryUnreachable {
                consecutive_failures: 3,
            },
            detail: "3 timeouts".into(),
        },
    };
    vec![
        Event::SpecChanged {
            generation: 7,
            spec_json: r#"{"replicas":3}"#.into(),
            fingerprint: SpecFingerprint([9; 32]),
        },
        Event::SpecRejected {
            generation: 8,
            errors: vec![SpecProblem {
                path: "spec.replicas".into(),
                message: "must be >= 1".into(),
            }],
        },
        Event::ClusterDeleted,
        Event::PodObserved {
            pod: "demo-0".into(),
            uid: "6f1c".into(),
            ip: Some("10.0.0.4".into()),
            phase: PodPhase::Running,
            ready: true,
            node: Some("node-a".into()),
            revision: Some("demo-7d9f".into()),
        },
        Event::PodDeleted {
            pod: "demo-1".into(),
        },
        Event::KubeNodeObserved {
            node: "node-a".into(),
            ready: false,
        },
        Event::PodReachabilityObserved {
            pod: "demo-2".into(),
            reachability: Reachability::TimedOut,
        },
        Event::NodeRoleObserved {
            pod: "demo-1".into(),
            role: Role::Replica,
            primary: Some("demo-0".into()),
        },
        Event::ReplicationObserved {
            pod: "demo-1".into(),
            link: LinkStatus::Up,
            offset: 123_456_789,
            replid: ReplId([0xab; 20]),
        },
        Event::PrimaryUnreachable {
            pod: "demo-0".into(),
            consecutive_failures: 3,
        },
        Event::ReplicaPromoted {
            pod: "demo-1".into(),
            from: Some("demo-0".into()),
            offset: 123_456_789,
        },
        Event::Decided {
            intents: vec![
                planned(Intent::ApplyResources { generation: 7 }),
                planned(Intent::PromoteReplica {
                    pod: "demo-1".into(),
                    from: Some("demo-0".into()),
                }),
                planned(Intent::RepointReplica {
                    pod: "demo-2".into(),
                    to: "demo-1".into(),
                }),
                planned(Intent::RollPod {
                    pod: "demo-2".into(),
                    revision: "demo-7d9f".into(),
                }),
                planned(Intent::FenceNode {
                    pod: "demo-0".into(),
                }),
                planned(Intent::AddNode {
                    pod: "demo-3".into(),
                }),
                planned(Intent::ForgetNode {
                    pod: "demo-3".into(),
                    node_id: "e7d1".into(),
                }),
                planned(Intent::MigrateSlots {
                    from: "demo-0".into(),
                    to: "demo-3".into(),
                    slots: vec![SlotRange {
                        start: 0,
                        end: 5460,
                    }],
                }),
                planned(Intent::UpdateStatus),
            ],
        },
        Event::IntentSucceeded {
            intent_id: id,
            detail: "promoted".into(),
        },
        Event::IntentFailed {
            intent_id: id,
            error: "connection refused".into(),
            retryable: true,
        },
        Event::IntentAbandoned {
            intent_id: id,
            reason: "superseded".into(),
        },
        Event::PolicyRecorded {
            policy: Policy::default(),
        },
        Event::OperatorStarted {
            version: "0.1.0".into(),
            instance: "logbook-0".into(),
            epoch: 3,
            gap_ms: Some(86_400_000),
        },
        Event::OperatorStopped {
            instance: "logbook-0".into(),
        },
        Event::LeadershipAcquired {
            epoch: 4,
            holder: "logbook-0".into(),
        },
        Event::LeadershipLost {
            epoch: 4,
            reason: "lease expired".into(),
        },
        Event::SnapshotTaken {
            seq: 1000,
            hash: ChainHash([7; 32]),
        },
    ]
}

fn envelope(seq: u64, body: Event) -> Envelope {
    Envelope {
        seq,
        id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        at: Timestamp(1_750_000_000_000_000),
        cause: None,
        epoch: 1,
        body,
        prev: ChainHash::GENESIS,
        hash: ChainHash::GENESIS,
    }
}

#[test]
fn every_variant_round_trips_with_its_catalog_index() {
    let variants = every_variant();
    assert_eq!(
        variants.len(),
        21,
        "a variant was added: extend this test and docs/journal-format.md"
    );
    for (index, body) in variants.into_iter().enumerate() {
        let env = envelope(1, body);
        let encoded = encode_event(&env).unwrap();
        let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
        assert_eq!(decoded.body, env.body);
        assert_eq!(decoded.hash, encoded.hash);
        // seq(1) id(17) at(9) cause(1) epoch(1) then the variant tag: the
        // tag byte is the catalog index documented in journal-format.md.
        assert_eq!(
            encoded.frame.get(FRAME_HEADER_LEN + 29).copied(),
            u8::try_from(index).ok(),
            "{}",
            env.body.kind()
        );
    }
}

fn golden_envelope() -> Envelope {
    let mut env = envelope(
        300,
        Event::ReplicationObserved {
            pod: "demo-2".into(),
            link: LinkStatus::Up,
            offset: 5_000_000,
            replid: ReplId([0x11; 20]),
        },
    );
    env.prev = ChainHash([0x22; 32]);
    env
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The exact bytes of one typical observation. If this fails, the on-disk
/// format changed: that needs a new format version and an upcast, not a
/// new golden value.
#[test]
fn golden_frame() {
    let encoded = encode_event(&golden_envelope()).unwrap();
    assert_eq!(hex(&encoded.frame), GOLDEN_HEX_V2);
    assert_eq!(
        encoded.frame.len(),
        106,
        "bytes per typical observation (budget: 120)"
    );
}

/// A frame written by format version 1 still reads, to the same envelope.
#[test]
fn golden_version_1_frame_still_reads() {
    let env = golden_envelope();
    let decoded = decode_event(&unhex(GOLDEN_HEX_V1), 300, &env.prev).unwrap();
    assert_eq!(decoded.body, env.body);
    assert_eq!(decoded.hash, encode_event(&env).unwrap().hash);
}

/// Version 1's `OperatorStarted` (version and instance only) is upcast with
/// the envelope's epoch and no gap; its chain hash still verifies.
#[test]
fn version_1_operator_started_is_upcast() {
    let id = Uuid::from_u128(7);
    let at = Timestamp(1_700_000_000_000_000);
    let core = (
        5u64,
        id,
        at,
        Option::<Uuid>::None,
        4u64,
        (16u32, "0.1.0".to_owned(), "logbook-0".to_owned()),
    );
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    bincode::serde::encode_into_std_write(&core, &mut frame, EVENT_CONFIG).unwrap();
    let prev = ChainHash([3; 32]);
    let hash = chain::link(&prev, 5, &frame[FRAME_HEADER_LEN..]);
    frame.extend_from_slice(&hash.0);
    seal_frame(&mut frame, 1, MAX_EVENT_PAYLOAD).unwrap();
    let decoded = decode_event(&frame, 5, &prev).unwrap();
    assert_eq!(decoded.epoch, 4);
    assert_eq!(decoded.hash, hash);
    assert_eq!(
        decoded.body,
        Event::OperatorStarted {
            version: "0.1.0".into(),
            instance: "logbook-0".into(),
            epoch: 4,
            gap_ms: None,
        }
    );
    // The same bytes claiming version 2 are not misread as the new shape.
    seal_frame(&mut frame, 2, MAX_EVENT_PAYLOAD).unwrap();
    assert!(decode_event(&frame, 5, &prev).is_err());
}

const GOLDEN_HEX_V1: &str = concat!(
    "61000000", // len = 97 bytes of payload, u32 LE
    "273895e7", // crc32c(version ‖ payload), u32 LE
    "01",       // format version 1
    "fb2c01",   // seq 300: varint u16 marker 251 + LE
    "10",
    "01900000000070008000000000000001", // id: bytes, varint len 16 + 16 bytes
    "fd00c0b6403b6f0c00",               // at: i64 zig-zag 3.5e15 → marker 253 + u64 LE
    "00",                               // cause: None
    "01",                               // epoch 1
    "08",                               // body: variant 8 = ReplicationObserved
    "06",
    "64656d6f2d32",                                                     // pod "demo-2"
    "01",                                       // link: LinkStatus::Up (variant 1)
    "fc404b4c00",                               // offset 5,000,000: marker 252 + u32 LE
    "1111111111111111111111111111111111111111", // replid: 20 raw bytes
    "0a2954b58d525bd82661488b747bd37db76043b62eb19fcc06082b33621e81c5", // chain hash
);

/// Version 2: the same payload; only the version byte and the CRC differ.
const GOLDEN_HEX_V2: &str = concat!(
    "61000000",
    "1a55d2cc", // crc32c over version 2 ‖ the same payload
    "02",
    "fb2c01",
    "10",
    "01900000000070008000000000000001",
    "fd00c0b6403b6f0c00",
    "00",
    "01",
    "08",
    "06",
    "64656d6f2d32",
    "01",
    "fc404b4c00",
    "1111111111111111111111111111111111111111",
    "0a2954b58d525bd82661488b747bd37db76043b62eb19fcc06082b33621e81c5",
);

#[test]
fn damage_is_classified() {
    let env = envelope(1, Event::ClusterDeleted);
    let frame = encode_event(&env).unwrap().frame;
    let g = ChainHash::GENESIS;
    let short = frame.get(..frame.len() - 1).unwrap();
    assert!(matches!(
        decode_event(short, 1, &g),
        Err(CodecError::Truncated { .. })
    ));
    assert!(matches!(
        decode_event(&frame[..4], 1, &g),
        Err(CodecError::Truncated { needed: 9, .. })
    ));
    let mut long = frame.clone();
    long.push(0);
    assert!(matches!(
        decode_event(&long, 1, &g),
        Err(CodecError::TrailingBytes { extra: 1 })
    ));
    let mut flipped = frame.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(matches!(
        decode_event(&flipped, 1, &g),
        Err(CodecError::BadCrc { .. })
    ));
    assert!(matches!(
        decode_event(&frame, 2, &g),
        Err(CodecError::SeqMismatch {
            expected: 2,
            found: 1
        })
    ));
    assert!(matches!(
        decode_event(&frame, 1, &ChainHash([1; 32])),
        Err(CodecError::HashMismatch { .. })
    ));
    let mut huge = frame.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_event(&huge, 1, &g),
        Err(CodecError::TooLong { .. })
    ));
}

#[test]
fn unknown_version_is_refused_not_misread() {
    let mut frame = encode_event(&envelope(1, Event::ClusterDeleted))
        .unwrap()
        .frame;
    frame[8] = 3;
    let crc = crc32c::crc32c(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        decode_event(&frame, 1, &ChainHash::GENESIS).unwrap_err(),
        CodecError::UnsupportedVersion(3)
    );
}

#[test]
fn a_huge_declared_string_is_an_error_not_an_allocation() {
    // A CRC-valid frame whose payload claims a 2^60-byte string.
    let mut payload = vec![1u8, 16];
    payload.extend_from_slice(&[0; 16]);
    payload.extend_from_slice(&[0, 0, 1, 4, 253]);
    payload.extend_from_slice(&(1u64 << 60).to_le_bytes());
    payload.extend_from_slice(&[0; 32]);
    let mut frame = Vec::new();
    frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&[1]), &payload).to_le_bytes());
    frame.push(1);
    frame.extend_from_slice(&payload);
    assert!(matches!(
        decode_event(&frame, 1, &ChainHash::GENESIS),
        Err(CodecError::Undecodable(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), seq in 0u64..5) {
        let _ = decode_event(&bytes, seq, &ChainHash::GENESIS);
        let _ = decode_snapshot::<crate::ClusterState>(&bytes);
        let _ = stored_hash(&bytes);
    }

    #[test]
    fn any_single_corruption_of_a_frame_is_detected(
        index in 0usize..21,
        pos in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let body = every_variant().into_iter().nth(index).unwrap();
        let frame = encode_event(&envelope(1, body)).unwrap().frame;
        let mut damaged = frame.clone();
        let at = pos.index(damaged.len());
        damaged[at] ^= xor;
        prop_assert!(decode_event(&damaged, 1, &ChainHash::GENESIS).is_err());
    }

    #[test]
    fn random_multi_byte_corruption_and_truncation_is_detected(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let body = every_variant().into_iter().nth(11).unwrap();
        let frame = encode_event(&envelope(1, body)).unwrap().frame;
        let mut damaged = frame.clone();
        for (pos, xor) in flips {
            let at = pos.index(damaged.len());
            damaged[at] ^= xor;
        }
        if let Some(cut) = cut {
            damaged.truncate(cut.index(damaged.len()));
        }
        if damaged != frame {
            prop_assert!(decode_event(&damaged, 1, &ChainHash::GENESIS).is_err());
        }
    }
}

/// The fingerprint key's events, intent and reason keep their catalog
/// indexes (docs/journal-format.md): events 58 and 59, intent 34, reason
/// code 37.
#[test]
fn the_fingerprint_key_variants_keep_their_catalog_indexes() {
    let events = [
        (58, Event::FingerprintKeyObserved { present: true }),
        (
            59,
            Event::FingerprintsRekeyed {
                passwords: std::collections::BTreeMap::from([(
                    "1a2b3c4d".to_owned(),
                    "00112233aabbccdd".to_owned(),
                )]),
                digests: std::collections::BTreeMap::new(),
            },
        ),
    ];
    for (index, body) in events {
        let env = envelope(1, body);
        let encoded = encode_event(&env).unwrap();
        let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
        assert_eq!(decoded.body, env.body);
        assert_eq!(
            encoded.frame.get(FRAME_HEADER_LEN + 29).copied(),
            Some(index),
            "{}",
            env.body.kind()
        );
    }
    assert_eq!(tag(&Intent::CreateFingerprintKey), 34);
    assert_eq!(tag(&ReasonCode::FingerprintKeyMissing), 37);
}

/// The Sentinel timing's event, intent and reason are appended after
/// every older variant (docs/journal-format.md): event 62, intent 35,
/// reason code 38. (Found by this file's test above, when the intent and
/// reason were first put beside the other Sentinel ones: every journal
/// written before would have read as other intents.)
#[test]
fn the_sentinel_timing_variants_keep_their_catalog_indexes() {
    let env = envelope(
        1,
        Event::SentinelTimingObserved {
            pod: "demo-sentinel-0".to_owned(),
            info_period_ms: 10_000,
        },
    );
    let encoded = encode_event(&env).unwrap();
    let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
    assert_eq!(decoded.body, env.body);
    assert_eq!(encoded.frame.get(FRAME_HEADER_LEN + 29).copied(), Some(62));
    let tune = Intent::SentinelTune {
        sentinel: "demo-sentinel-0".to_owned(),
        info_period_ms: 1_000,
    };
    assert_eq!(tag(&tune), 35);
    assert_eq!(
        tag(&ReasonCode::SentinelInfoPeriod {
            reported_ms: 10_000
        }),
        38
    );
}

/// A Valkey container's failure is event 63, after every older variant;
/// the reset of a spare Cluster replica intent 36.
#[test]
fn the_container_failure_event_keeps_its_catalog_index() {
    let env = envelope(
        1,
        Event::ContainerFailureObserved {
            pod: "demo-2".to_owned(),
            failure: Some("Error, exit code 1: >>> 'maxmemory-policy nonsense'".to_owned()),
        },
    );
    let encoded = encode_event(&env).unwrap();
    let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
    assert_eq!(decoded.body, env.body);
    assert_eq!(encoded.frame.get(FRAME_HEADER_LEN + 29).copied(), Some(63));
    // And the Cluster's spare-replica reset is intent 36.
    assert_eq!(
        tag(&Intent::ResetReplica {
            pod: "demo-5".to_owned(),
            node_id: "a".repeat(40),
        }),
        36
    );
}

/// The layers a spec was built from are event 64, after every older
/// variant, and round-trip.
#[test]
fn the_spec_layers_event_keeps_its_catalog_index() {
    let env = envelope(
        1,
        Event::SpecLayersObserved {
            generation: 3,
            layers: Some(crate::SpecFingerprint([7; 32])),
            fingerprint: None,
            sources: vec![("/storage/size".to_owned(), "plan pro".to_owned())],
            from_defaults: true,
        },
    );
    let encoded = encode_event(&env).unwrap();
    let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
    assert_eq!(decoded.body, env.body);
    assert_eq!(encoded.frame.get(FRAME_HEADER_LEN + 29).copied(), Some(64));
}

/// The binding's event is 65, its release intent 37, its reasons 39 to
/// 41, after every older variant, and round-trip.
#[test]
fn the_binding_variants_keep_their_catalog_indexes() {
    let env = envelope(
        1,
        Event::BindingObserved {
            annotated: false,
            by: Some("kubectl-annotate".to_owned()),
        },
    );
    let encoded = encode_event(&env).unwrap();
    let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
    assert_eq!(decoded.body, env.body);
    assert_eq!(encoded.frame.get(FRAME_HEADER_LEN + 29).copied(), Some(65));
    assert_eq!(tag(&Intent::ReleaseObjects), 37);
    assert_eq!(tag(&ReasonCode::ObjectsUnmarked), 39);
    assert_eq!(tag(&ReasonCode::Unbound { by: None }), 40);
    assert_eq!(tag(&ReasonCode::Rebound), 41);
}

/// Drift is event 66 and reason 42, after every older variant.
#[test]
fn the_drift_variants_keep_their_catalog_indexes() {
    let env = envelope(
        1,
        Event::DriftObserved {
            object: "StatefulSet demo".to_owned(),
            by: "kubectl-edit".to_owned(),
            at: "2026-11-27T19:00:00Z".to_owned(),
            fields: vec!["spec.updateStrategy".to_owned()],
        },
    );
    let encoded = encode_event(&env).unwrap();
    let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
    assert_eq!(decoded.body, env.body);
    assert_eq!(encoded.frame.get(FRAME_HEADER_LEN + 29).copied(), Some(66));
    assert_eq!(tag(&ReasonCode::Drift { objects: vec![] }), 42);
}

/// Hibernation's intents are 38 and 39, its reasons 43 and 44, after
/// every older variant, and round-trip in a decision.
#[test]
fn the_hibernation_variants_keep_their_catalog_indexes() {
    let persist = Intent::PersistForHibernation {
        primaries: vec!["demo-0".to_owned()],
        pods: vec!["demo-0".to_owned(), "demo-1".to_owned()],
    };
    let wake = Intent::Wake {
        primary: Some("demo-0".to_owned()),
        pods: vec!["demo-0".to_owned(), "demo-1".to_owned()],
    };
    assert_eq!(tag(&persist), 38);
    assert_eq!(tag(&wake), 39);
    assert_eq!(tag(&ReasonCode::Hibernate), 43);
    assert_eq!(tag(&ReasonCode::Wake), 44);
    for intent in [persist, wake] {
        assert_intent_round_trips(intent);
    }
}

/// The first byte of `value`'s bincode: a variant's index, below 251.
fn tag<T: serde::Serialize>(value: &T) -> u8 {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .unwrap()
        .first()
        .copied()
        .unwrap()
}

/// The upgrade's intents are 40 and 41, its reason 45, its events 67
/// and 68, after every older variant, and round-trip.
#[test]
fn the_upgrade_variants_keep_their_catalog_indexes() {
    let preflight = Intent::PreflightImage {
        image: "valkey/valkey:9.1".to_owned(),
        generation: 2,
    };
    let remove = Intent::RemovePreflight {
        image: "valkey/valkey:9.1".to_owned(),
    };
    assert_eq!(tag(&preflight), 40);
    assert_eq!(tag(&remove), 41);
    assert_eq!(tag(&ReasonCode::Upgrade), 45);
    assert_eq!(
        tag(&ReasonCode::FailBack {
            pod: "demo-0".to_owned()
        }),
        46
    );
    for intent in [preflight, remove] {
        assert_intent_round_trips(intent);
    }
    for (body, index) in [
        (
            Event::ServerVersionObserved {
                pod: "demo-2".to_owned(),
                uid: "u".to_owned(),
                image: "valkey/valkey:9.1".to_owned(),
                version: "9.1.2".to_owned(),
            },
            67,
        ),
        (
            Event::ImagePreflighted {
                image: "valkey/valkey:8.0".to_owned(),
                generation: 3,
                version: None,
                refused: Some("Bad directive".to_owned()),
            },
            68,
        ),
    ] {
        assert_event_index(body, index);
    }
}

/// The standby's intents are 42 and 43, its reasons 47 and 48, its
/// events 69 to 71, after every older variant, and round-trip.
#[test]
fn the_standby_variants_keep_their_catalog_indexes() {
    let follow = Intent::FollowSource {
        pod: "dr-0".to_owned(),
        host: "10.96.0.7".to_owned(),
        port: 6379,
        secret: "prod/shop-internal".to_owned(),
    };
    let promote = Intent::PromoteStandby {
        pod: "dr-0".to_owned(),
        host: "10.96.0.7".to_owned(),
        port: 6379,
        secret: "prod/shop-internal".to_owned(),
    };
    assert_eq!(tag(&follow), 42);
    assert_eq!(tag(&promote), 43);
    assert_eq!(
        tag(&ReasonCode::Standby {
            source: "prod/shop".to_owned()
        }),
        47
    );
    assert_eq!(tag(&ReasonCode::Promotion { lag: Some(12) }), 48);
    for intent in [follow, promote] {
        assert_intent_round_trips(intent);
    }
    for (body, index) in [
        (
            Event::SourceFollowed {
                pod: "dr-0".to_owned(),
                host: "10.96.0.7".to_owned(),
                port: 6379,
            },
            69,
        ),
        (
            Event::StandbyObserved {
                host: Some("10.96.0.7".to_owned()),
                port: 6379,
                secret: "prod/shop-internal".to_owned(),
                offset: Some(100),
                source_offset: Some(2_000_000),
                source_replid: None,
                lag: Some(1_999_900),
                behind: true,
                error: None,
            },
            70,
        ),
        (
            Event::StandbyPromoted {
                pod: "dr-0".to_owned(),
                offset: 5,
                source_before: Some(5),
                source_after: None,
                error: Some("refused".to_owned()),
            },
            71,
        ),
    ] {
        assert_event_index(body, index);
    }
}

/// The rebalance's intent is 44, its reason 49, its event 72.
#[test]
fn the_rebalance_variants_keep_their_catalog_indexes() {
    assert_eq!(tag(&Intent::ClearRebalanceRequest), 44);
    assert_eq!(
        tag(&ReasonCode::Rebalance {
            pod: "demo-0".to_owned()
        }),
        49
    );
    assert_event_index(
        Event::RebalanceRequestObserved {
            request: Some("2026-11-28T12:00:00Z".to_owned()),
        },
        72,
    );
}

/// The restart's intent is 45, its reason 50, its event 75.
#[test]
fn the_restart_variants_keep_their_catalog_indexes() {
    assert_eq!(
        tag(&Intent::RestartPods {
            requested: "2026-11-30T12:00:00Z".to_owned(),
            generation: 3,
        }),
        45
    );
    assert_eq!(
        tag(&ReasonCode::RestartRequested {
            requested: "2026-11-30T12:00:00Z".to_owned()
        }),
        50
    );
    assert_event_index(
        Event::RestartRequestObserved {
            request: Some("2026-11-30T12:00:00Z".to_owned()),
        },
        75,
    );
}

/// A ValkeyUser's connection Secret: intent 46, reason 51, event 76.
#[test]
fn the_user_connection_variants_keep_their_catalog_indexes() {
    assert_eq!(
        tag(&Intent::ApplyUserConnection {
            object: "app".to_owned()
        }),
        46
    );
    assert_eq!(tag(&ReasonCode::UserConnectionStale), 51);
    assert_event_index(
        Event::UserConnectionObserved {
            object: "app".to_owned(),
            connection: Some(crate::users::UserConnection {
                secret: "app-valkey".to_owned(),
                state: crate::users::ConnectionState::Refused("not ours".to_owned()),
            }),
        },
        76,
    );
}

/// What a pod held at hibernation and wake is event 73.
#[test]
fn pod_data_observed_keeps_its_catalog_index() {
    assert_event_index(
        Event::PodDataObserved {
            pod: "demo-0".to_owned(),
            replid: ReplId::from_hex("262e2ee9a6f76cedf6b3632d223795e180aa4cb9").unwrap(),
            offset: 2972,
            keys: 101,
            persisted: true,
        },
        73,
    );
    assert_event_index(
        Event::ContainerRestartObserved {
            pod: "demo-0".to_owned(),
            uid: "uid-0".to_owned(),
            restarts: 3,
        },
        74,
    );
}

/// `intent` reads back as itself from its bincode.
fn assert_intent_round_trips(intent: Intent) {
    let value = bincode::serde::encode_to_vec(&intent, bincode::config::standard()).unwrap();
    let (back, _): (Intent, usize) =
        bincode::serde::decode_from_slice(&value, bincode::config::standard()).unwrap();
    assert_eq!(back, intent);
}

/// `body` round-trips, and its frame's variant byte is `index`.
fn assert_event_index(body: Event, index: u8) {
    let env = envelope(1, body);
    let encoded = encode_event(&env).unwrap();
    let decoded = decode_event(&encoded.frame, 1, &ChainHash::GENESIS).unwrap();
    assert_eq!(decoded.body, env.body);
    assert_eq!(
        encoded.frame.get(FRAME_HEADER_LEN + 29).copied(),
        Some(index)
    );
}

/// A snapshot of a positional format of a build before the first release
/// is refused by its version, not misread: the operator then folds the
/// journal again.
#[test]
fn a_snapshot_of_a_pre_release_format_is_refused_by_its_version() {
    let state = crate::ClusterState::new();
    let (mut snapshot, _) = encode_snapshot(0, ChainHash::GENESIS, &state).unwrap();
    seal_frame(&mut snapshot.frame, 12, MAX_SNAPSHOT_PAYLOAD).unwrap();
    assert_eq!(snapshot_version(&snapshot.frame).unwrap(), 12);
    assert!(matches!(
        crate::snapshot::decode(&snapshot),
        Err(CodecError::UnsupportedVersion(12))
    ));
    seal_frame(
        &mut snapshot.frame,
        SNAPSHOT_FORMAT_VERSION,
        MAX_SNAPSHOT_PAYLOAD,
    )
    .unwrap();
    assert_eq!(crate::snapshot::decode(&snapshot).unwrap().state, state);
}

/// The continuous archive and point-in-time restore: events 77 to 82,
/// intents 47 to 50, reasons 52 to 55.
#[test]
fn the_archive_variants_keep_their_catalog_indexes() {
    let target = crate::backup::BackupTarget {
        bucket: "b".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: None,
        path_style: None,
        secret: "s3".to_owned(),
        dir: "ns/shop/_archive/".to_owned(),
        cluster_dir: "ns/shop/".to_owned(),
    };
    assert_eq!(
        tag(&Intent::Archive {
            target: target.clone()
        }),
        47
    );
    assert_eq!(tag(&Intent::StopArchive), 48);
    assert_eq!(
        tag(&Intent::DeleteArchiveChain {
            chain: "c".to_owned(),
            dir: "d/".to_owned()
        }),
        49
    );
    assert_eq!(
        tag(&Intent::DropForeignSlots {
            pod: "shop-0".to_owned(),
            slots: vec![]
        }),
        50
    );
    assert_eq!(
        tag(&Intent::Announce {
            pod: "shop-0".to_owned(),
            pod_ip: "10.0.0.1".to_owned(),
            endpoint: None
        }),
        51
    );
    assert_eq!(
        tag(&ReasonCode::AnnouncedAddressStale {
            announced: "a".to_owned(),
            wanted: "b".to_owned()
        }),
        56
    );
    assert_eq!(
        tag(&ReasonCode::ExternalEndpointsChanged { hosts: vec![] }),
        57
    );
    assert_eq!(tag(&ReasonCode::ArchiveRequested), 52);
    assert_eq!(tag(&ReasonCode::ArchiveNotRequested), 53);
    assert_eq!(
        tag(&ReasonCode::ArchiveExpired {
            ended: Timestamp::EPOCH
        }),
        54
    );
    assert_eq!(tag(&ReasonCode::ForeignSlotsClaimed), 55);
    let chain = crate::backup::ArchiveChain {
        chain: "c".to_owned(),
        dir: "ns/shop/_archive/".to_owned(),
        source: "shop-1".to_owned(),
        primary: "shop-0".to_owned(),
        replid: "r".to_owned(),
        offset: 1,
        base_at: Timestamp::EPOCH,
        base_bytes: 9,
        slots: vec![],
    };
    assert_event_index(Event::ArchiveChainStarted { chain }, 77);
    assert_event_index(
        Event::ArchiveFollowed {
            chain: "c".to_owned(),
            source: "shop-2".to_owned(),
            primary: "shop-1".to_owned(),
            replid: "r2".to_owned(),
            offset: 5,
        },
        78,
    );
    assert_event_index(
        Event::ArchiveChainEnded {
            chain: "c".to_owned(),
            end: 9,
            reason: "why".to_owned(),
        },
        79,
    );
    assert_event_index(
        Event::ArchiveChainDeleted {
            chain: "c".to_owned(),
            objects: 3,
        },
        80,
    );
    assert_event_index(
        Event::ArchiveTargetObserved {
            target: Some(target),
        },
        82,
    );
    assert_event_index(
        Event::ExternalEndpointsObserved {
            enabled: true,
            pods: std::collections::BTreeMap::from([(
                "shop-0".to_owned(),
                crate::ExternalEndpoint {
                    host: "192.0.2.1".to_owned(),
                    port: 30001,
                    bus_port: Some(30002),
                },
            )]),
            primary: None,
            waiting: std::collections::BTreeMap::new(),
        },
        83,
    );
    assert_event_index(
        Event::AnnouncedAddressObserved {
            pod: "shop-0".to_owned(),
            announced: "192.0.2.1:30001@30002".to_owned(),
        },
        84,
    );
    assert_event_index(
        Event::ExternalSentinelsObserved {
            sentinels: vec![crate::external::ExternalEndpoint {
                host: "192.0.2.1".to_owned(),
                port: 30_010,
                bus_port: None,
            }],
        },
        85,
    );
}
