//! The audit's invariants and the `failovers` kinds on small journals
//! written for the purpose: each rule broken once gives exactly its
//! finding at its seq, and a journal that keeps them gives none.
//!
//! The decider here is a stand-in that asks for nothing (the operator's
//! `decide` lives in the crate that depends on this one; the golden tests
//! in `tests/replay_golden.rs` audit with it): journals without `Decided`
//! events check the invariants alone; where a decision is needed, its
//! determinism finding is expected and told apart by its check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use logbook_journal::writer::encode_batch;
use logbook_journal::{
    ClusterState, Event, Head, Intent, JournalStore, MemoryStore, NewEvent, PlannedIntent,
    PodPhase, Policy, Reachability, Reason, ReasonCode, Role, SpecFingerprint, StreamId, Timestamp,
};
use logbook_replay::audit::{AuditReport, Check, audit};
use logbook_replay::failovers::{Failovers, Kind};
use logbook_replay::{Decider, Input};
use uuid::Uuid;

struct Nothing;

impl Decider for Nothing {
    fn decide(&self, _: &ClusterState, _: Timestamp, _: &Policy) -> Vec<(Intent, Reason)> {
        Vec::new()
    }
    fn build(&self) -> String {
        "nothing".to_owned()
    }
    fn already_done(&self, _: &ClusterState, _: &Intent) -> Option<String> {
        None
    }
}

/// A journal under construction: events with their writer epochs.
struct Journal {
    events: Vec<(u64, Event)>,
}

impl Journal {
    fn new() -> Self {
        let mut j = Self { events: Vec::new() };
        j.push(Event::SpecChanged {
            generation: 1,
            spec_json: r#"{"topology":"Replication","replicas":3}"#.to_owned(),
            fingerprint: SpecFingerprint([1; 32]),
        });
        for pod in ["p-0", "p-1", "p-2"] {
            j.push(Event::PodObserved {
                pod: pod.to_owned(),
                uid: format!("uid-{pod}"),
                ip: Some("10.0.0.1".to_owned()),
                phase: PodPhase::Running,
                ready: true,
                node: None,
                revision: None,
            });
        }
        j.role("p-0", Role::Primary, None);
        j.role("p-1", Role::Replica, Some("p-0"));
        j.role("p-2", Role::Replica, Some("p-0"));
        j
    }

    fn push(&mut self, body: Event) -> u64 {
        self.push_at(1, body)
    }

    fn push_at(&mut self, epoch: u64, body: Event) -> u64 {
        self.events.push((epoch, body));
        self.events.len() as u64
    }

    fn role(&mut self, pod: &str, role: Role, primary: Option<&str>) -> u64 {
        self.push(Event::NodeRoleObserved {
            pod: pod.to_owned(),
            role,
            primary: primary.map(str::to_owned),
        })
    }

    fn decide(&mut self, epoch: u64, intent: Intent, code: ReasonCode) -> (u64, Uuid) {
        let id = Uuid::now_v7();
        let seq = self.push_at(
            epoch,
            Event::Decided {
                intents: vec![PlannedIntent {
                    intent_id: id,
                    intent,
                    reason: Reason {
                        code,
                        detail: "test".to_owned(),
                    },
                }],
            },
        );
        (seq, id)
    }

    async fn input(&self) -> Input<MemoryStore> {
        let store = MemoryStore::new();
        let stream = StreamId::new("s").unwrap();
        let mut head = Head::EMPTY;
        for (i, (epoch, body)) in self.events.iter().enumerate() {
            let event = NewEvent {
                id: Uuid::now_v7(),
                at: Timestamp(1_700_000_000_000_000 + i as i64 * 1000),
                cause: None,
                body: body.clone(),
            };
            let (envs, encoded) = encode_batch(&stream, head, *epoch, vec![event]).unwrap();
            head = store
                .append(&stream, head.next_seq(), &encoded)
                .await
                .unwrap();
            assert_eq!(head.seq, envs[0].seq);
        }
        Input::Store {
            store,
            stream,
            cluster: None,
            place: "test".to_owned(),
        }
    }

    async fn audit(&self) -> AuditReport {
        audit(&self.input().await, &Nothing).await.unwrap()
    }
}

fn only(report: &AuditReport, check: Check) -> Vec<(u64, String)> {
    report
        .findings
        .iter()
        .filter(|f| f.check == check)
        .map(|f| (f.seq, f.detail.clone()))
        .collect()
}

#[test]
fn a_journal_that_keeps_the_rules_is_clean() {
    futures::executor::block_on(async {
        let j = Journal::new();
        let report = j.audit().await;
        assert!(report.is_clean(), "{report:#?}");
        assert_eq!(report.events, 7);
    });
}

#[test]
fn two_pods_serving_as_primary_is_one_finding_per_episode() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        let second = j.role("p-1", Role::Primary, None);
        j.role("p-2", Role::Primary, None); // still the same episode
        // Begun by an observation, it outlives the next decision.
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.role("p-1", Role::Replica, Some("p-0"));
        j.role("p-2", Role::Replica, Some("p-0"));
        // A primary known dead does not count: p-0 refused, p-2 promoted.
        j.push(Event::PodReachabilityObserved {
            pod: "p-0".to_owned(),
            reachability: Reachability::Refused,
        });
        j.role("p-2", Role::Primary, None);
        let report = j.audit().await;
        let found = only(&report, Check::TwoPrimaries);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, second);
        assert!(found[0].1.contains("p-0 and p-1"), "{}", found[0].1);
    });
}

#[test]
fn a_stale_primary_seen_again_and_ended_by_the_next_decision_is_no_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        // p-1 comes back claiming primary (nobody could have prevented
        // it); the next decision's outcome repoints it.
        j.role("p-1", Role::Primary, None);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.role("p-1", Role::Replica, Some("p-0"));
        let report = j.audit().await;
        assert!(only(&report, Check::TwoPrimaries).is_empty(), "{report:#?}");
    });
}

#[test]
fn a_primary_fenced_by_its_label_with_no_replica_is_a_stale_claim() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        for (pod, label) in [("p-0", Role::Replica), ("p-1", Role::Primary)] {
            j.push(Event::RoleLabelObserved {
                pod: pod.to_owned(),
                label: Some(label),
            });
        }
        j.role("p-2", Role::Replica, Some("p-1"));
        j.push(Event::ReplicationObserved {
            pod: "p-2".to_owned(),
            link: logbook_journal::LinkStatus::Up,
            offset: 10,
            replid: logbook_journal::ReplId([3; 20]),
        });
        // p-0, labelled replica and followed by nobody, still says primary.
        let second = j.role("p-1", Role::Primary, None);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        let report = j.audit().await;
        assert!(only(&report, Check::TwoPrimaries).is_empty(), "{report:#?}");
        // Once a replica follows it again, it could acknowledge writes.
        j.role("p-2", Role::Replica, Some("p-0"));
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        let report = j.audit().await;
        let found = only(&report, Check::TwoPrimaries);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert!(found[0].0 > second, "{found:?}");
    });
}

/// A cluster node's report: primary of `slots`, knowing nobody.
fn shard_primary(j: &mut Journal, pod: &str, id: char, start: u16, end: u16, epoch: u64) {
    j.push(Event::ClusterNodeObserved {
        pod: pod.to_owned(),
        report: logbook_journal::ClusterNodeReport {
            node_id: id.to_string().repeat(40),
            primary_id: None,
            slots: vec![logbook_journal::SlotRange { start, end }],
            config_epoch: epoch,
            current_epoch: epoch,
            state_ok: true,
            peers: Vec::new(),
        },
    });
    j.role(pod, Role::Primary, None);
}

#[test]
fn in_a_valkey_cluster_two_primaries_means_two_claims_on_one_slot() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        // One primary per shard is how a Valkey Cluster serves.
        shard_primary(&mut j, "c-0", 'a', 0, 8191, 1);
        shard_primary(&mut j, "c-1", 'b', 8192, 16_383, 2);
        let report = j.audit().await;
        assert!(only(&report, Check::TwoPrimaries).is_empty(), "{report:#?}");
        // A third node claiming c-0's slots at a higher epoch: a handover
        // Valkey settles by the epoch (c-0 steps down at its next gossip).
        shard_primary(&mut j, "c-2", 'c', 0, 100, 3);
        let report = j.audit().await;
        assert!(only(&report, Check::TwoPrimaries).is_empty(), "{report:#?}");
        // A fourth claiming them at c-0's own epoch: nothing settles it.
        shard_primary(&mut j, "c-3", 'd', 0, 100, 1);
        // (Begun by an observation: a finding once it outlives the next
        // decision.)
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        let report = j.audit().await;
        let found = only(&report, Check::TwoPrimaries);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert!(found[0].1.contains("c-0 and c-3"), "{}", found[0].1);
    });
}

#[test]
fn a_decision_from_a_superseded_epoch_is_a_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        j.push_at(
            2,
            Event::OperatorStarted {
                version: "t".into(),
                instance: "b".into(),
                epoch: 2,
                gap_ms: Some(10),
            },
        );
        let (stale, _) = j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        let report = j.audit().await;
        let found = only(&report, Check::StaleEpoch);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, stale);
        assert!(
            found[0].1.contains("epoch 1 after epoch 2"),
            "{}",
            found[0].1
        );
    });
}

#[test]
fn a_decision_while_paused_is_a_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        j.push(Event::SpecChanged {
            generation: 2,
            spec_json: r#"{"topology":"Replication","replicas":3,"paused":true}"#.to_owned(),
            fingerprint: SpecFingerprint([2; 32]),
        });
        let (paused, id) = j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.push(Event::IntentSucceeded {
            intent_id: id,
            detail: "done".into(),
        });
        let report = j.audit().await;
        assert_eq!(
            only(&report, Check::ActionWhilePaused)[0].0,
            paused,
            "{report:#?}"
        );
        // The stand-in decider asks for nothing, so the decision is also
        // one determinism finding — and nothing else is.
        assert_eq!(report.findings.len(), 2, "{report:#?}");
        assert_eq!(only(&report, Check::Determinism)[0].0, paused);
    });
}

#[test]
fn intents_left_at_a_takeover_must_settle_before_the_next_decision() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        let (_, left) = j.decide(
            1,
            Intent::RollPod {
                pod: "p-1".into(),
                revision: "r2".into(),
            },
            ReasonCode::RevisionOutdated,
        );
        j.push_at(
            2,
            Event::OperatorStarted {
                version: "t".into(),
                instance: "b".into(),
                epoch: 2,
                gap_ms: Some(3000),
            },
        );
        let (next, _) = j.decide(2, Intent::UpdateStatus, ReasonCode::StatusStale);
        // And an outcome for an intent never decided.
        let stray = j.push_at(
            2,
            Event::IntentSucceeded {
                intent_id: Uuid::now_v7(),
                detail: "?".into(),
            },
        );
        let report = j.audit().await;
        let unresolved = only(&report, Check::IntentWithoutOutcome);
        assert_eq!(unresolved.len(), 1, "{report:#?}");
        assert_eq!(unresolved[0].0, next);
        assert!(
            unresolved[0].1.contains(&left.to_string()),
            "{}",
            unresolved[0].1
        );
        assert_eq!(only(&report, Check::OutcomeWithoutIntent)[0].0, stray);
        // The second decision is still open at the head: listed, not a finding.
        assert_eq!(report.open_intents.len(), 2, "{report:#?}");
    });
}

/// A takeover whose instance died (or lost the lead) before it resolved
/// what it found in flight hands it to the next takeover: only a decision
/// made while it is unresolved is a finding.
#[test]
fn a_takeover_that_dies_before_resolving_hands_its_intents_to_the_next() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        let (_, left) = j.decide(
            1,
            Intent::RollPod {
                pod: "p-1".into(),
                revision: "r2".into(),
            },
            ReasonCode::RevisionOutdated,
        );
        for (epoch, instance) in [(2, "b"), (3, "c")] {
            j.push_at(
                epoch,
                Event::OperatorStarted {
                    version: "t".into(),
                    instance: instance.into(),
                    epoch,
                    gap_ms: Some(3000),
                },
            );
        }
        j.push_at(
            3,
            Event::IntentAbandoned {
                intent_id: left,
                reason: "found without an outcome".into(),
            },
        );
        let report = j.audit().await;
        assert!(
            only(&report, Check::IntentWithoutOutcome).is_empty(),
            "{report:#?}"
        );
    });
}

#[test]
fn a_damaged_event_is_a_chain_finding_and_what_precedes_it_is_audited() {
    futures::executor::block_on(async {
        let j = Journal::new();
        let input = j.input().await;
        let Input::Store { store, stream, .. } = &input else {
            unreachable!()
        };
        let mut frame = store.raw_get(stream, 5).unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        store.raw_overwrite(stream, 5, Some(frame));
        let report = audit(&input, &Nothing).await.unwrap();
        let chain = only(&report, Check::Chain);
        assert_eq!(chain.len(), 1, "{report:#?}");
        assert_eq!(chain[0].0, 5);
        assert_eq!(report.last_seq, 4);
    });
}

#[test]
fn a_primary_nobody_here_decided_is_an_observed_failover() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        j.push(Event::ReplicationObserved {
            pod: "p-0".into(),
            link: logbook_journal::LinkStatus::NotReplica,
            offset: 500,
            replid: logbook_journal::ReplId([3; 20]),
        });
        j.push(Event::PodReachabilityObserved {
            pod: "p-0".into(),
            reachability: Reachability::TimedOut,
        });
        j.push(Event::ReplicationObserved {
            pod: "p-2".into(),
            link: logbook_journal::LinkStatus::Down,
            offset: 480,
            replid: logbook_journal::ReplId([3; 20]),
        });
        // Sentinel (or a person) promoted p-2; the operator only saw it.
        let seen = j.role("p-2", Role::Primary, None);
        j.role("p-0", Role::Replica, Some("p-2"));
        let input = j.input().await;
        let mut failovers = Failovers::new();
        input.scan(None, &mut failovers).await.unwrap();
        let [r] = failovers.records.as_slice() else {
            panic!("{:#?}", failovers.records);
        };
        assert_eq!(r.kind, Kind::Observed);
        assert_eq!(r.old_primary.as_deref(), Some("p-0"));
        assert_eq!(r.new_primary, "p-2");
        assert!(r.decided.is_none());
        assert_eq!(r.confirmed.as_ref().unwrap().seq, seen);
        assert_eq!(r.failure_observed.as_ref().unwrap().seq, seen - 2);
        assert_eq!(r.lost_bytes_bound, Some(20));
        assert_eq!(r.old_returned.as_ref().unwrap().seq, seen + 1);
        // The bound says when the old primary's offset was journaled: it
        // knows nothing of what that primary took afterwards.
        assert!(r.old_offset_at.is_some());
        let mut text = Vec::new();
        logbook_replay::failovers::write_text(&mut text, &failovers.records).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("20 bytes the old primary had are missing on the new one (old primary at offset 500 as journaled ")
                && text.contains(" before its failure, promoted at 480); writes it took after that offset are not in the journal"),
            "{text}"
        );
    });
}

#[test]
fn a_decision_while_unbound_other_than_the_release_is_a_finding() {
    futures::executor::block_on(async {
        let mut j = Journal::new();
        j.push(Event::SpecChanged {
            generation: 1,
            spec_json: r#"{"topology":"Replication","replicas":3}"#.to_owned(),
            fingerprint: SpecFingerprint([1; 32]),
        });
        j.push(Event::BindingObserved {
            annotated: true,
            by: None,
        });
        j.push(Event::BindingObserved {
            annotated: false,
            by: None,
        });
        let (release, id) = j.decide(1, Intent::ReleaseObjects, ReasonCode::Unbound { by: None });
        j.push(Event::IntentSucceeded {
            intent_id: id,
            detail: "done".into(),
        });
        let (acted, id) = j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.push(Event::IntentSucceeded {
            intent_id: id,
            detail: "done".into(),
        });
        let report = j.audit().await;
        let found = only(&report, Check::ActionWhilePaused);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, acted);
        assert_ne!(found[0].0, release);
    });
}

/// A Sentinel's report: it monitors `primary`, failing it over in
/// `failover` (a state such as `reconf_slaves`) or not.
fn sentinel_sees(j: &mut Journal, sentinel: &str, primary: &str, failover: Option<&str>) {
    j.push(Event::SentinelObserved {
        pod: sentinel.to_owned(),
        reachability: Reachability::Reachable,
        report: Some(logbook_journal::SentinelReport {
            myid: format!("id-{sentinel}"),
            monitoring: Some(logbook_journal::SentinelMonitorReport {
                primary_ip: "10.0.0.1".to_owned(),
                primary_port: 6379,
                primary_pod: Some(primary.to_owned()),
                config_epoch: 1,
                flags: Vec::new(),
                failover_state: failover.map(str::to_owned),
                settings: logbook_journal::SentinelSettings {
                    quorum: 2,
                    down_after_ms: 5000,
                    failover_timeout_ms: 10_000,
                    parallel_syncs: 1,
                },
                replicas: Vec::new(),
                sentinels: Vec::new(),
            }),
        }),
    });
}

/// [`Journal::new`] turned topology Sentinel, with one Sentinel pod.
fn sentinel_journal() -> Journal {
    let mut j = Journal::new();
    j.push(Event::SpecChanged {
        generation: 2,
        spec_json: r#"{"topology":"Sentinel","replicas":3}"#.to_owned(),
        fingerprint: SpecFingerprint([2; 32]),
    });
    j.push(Event::SentinelPodObserved {
        pod: "p-sentinel-0".to_owned(),
        uid: "s0".to_owned(),
        ip: Some("10.0.1.1".to_owned()),
        phase: PodPhase::Running,
        ready: true,
    });
    j
}

/// Two primaries while a Sentinel fails the old one over (it promoted a
/// replica and has yet to make the old primary follow it, as when the
/// old one's writes were paused): the Sentinels' to settle, and the
/// operator leaves it to them by design. Decisions taken meanwhile do
/// not count; once no Sentinel fails over, the next decision must end
/// it, as anywhere.
#[test]
fn two_primaries_while_a_sentinel_fails_over_are_the_sentinels_to_settle() {
    futures::executor::block_on(async {
        let mut j = sentinel_journal();
        sentinel_sees(&mut j, "p-sentinel-0", "p-0", Some("reconf_slaves"));
        j.role("p-2", Role::Primary, None);
        j.role("p-1", Role::Replica, Some("p-2"));
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        sentinel_sees(&mut j, "p-sentinel-0", "p-2", None);
        j.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        j.role("p-0", Role::Replica, Some("p-2"));
        let report = j.audit().await;
        assert!(only(&report, Check::TwoPrimaries).is_empty(), "{report:#?}");

        // The same, but two decisions after the failover ended leave it.
        let mut late = sentinel_journal();
        sentinel_sees(&mut late, "p-sentinel-0", "p-0", Some("reconf_slaves"));
        let second = late.role("p-2", Role::Primary, None);
        late.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        sentinel_sees(&mut late, "p-sentinel-0", "p-2", None);
        late.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        late.decide(1, Intent::UpdateStatus, ReasonCode::StatusStale);
        let report = late.audit().await;
        let found = only(&report, Check::TwoPrimaries);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, second);
    });
}
