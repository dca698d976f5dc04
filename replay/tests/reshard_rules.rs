//! Valkey Cluster reshards in journals written for the purpose: what
//! `reshards` reports of them (a record per generation, a migration per
//! `MoveSlots` with its job's phases, write pause, outcome and retries;
//! settled slots; jobs nobody here decided), the reshard rules of the
//! audit (each broken once gives its finding at its seq; a clean reshard
//! gives none), `state --at` in the middle of one, and the HTML report's
//! section and lane.
//!
//! The model: two shards formed — c-0 (node a, slots 0-8191, epoch 1),
//! c-1 (node b, 8192-16383, epoch 2) — and c-2 (node c), an empty
//! primary the spec's third shard gets. Events are 1 ms apart unless a
//! test waits. The decider is a stand-in that asks for nothing, so a
//! journal with a decision has determinism findings; they are told apart
//! by check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use logbook_journal::writer::encode_batch;
use logbook_journal::{
    ClusterNodeReport, ClusterPeer, ClusterState, Event, Head, Intent, JournalStore, MemoryStore,
    MigrationPhase, MigrationSide, NewEvent, PeerHealth, PlannedIntent, PodPhase, Policy, Reason,
    ReasonCode, SlotMigrationJob, SlotPeer, SlotRange, SpecFingerprint, StreamId, Timestamp,
};
use logbook_replay::audit::{AuditReport, Check, audit};
use logbook_replay::reshards::{Mechanism, MoveOutcome, ReshardOutcome, Reshards};
use logbook_replay::{Decider, Input};
use uuid::Uuid;

struct Nothing;

impl Decider for Nothing {
    fn decide(
        &self,
        _: &ClusterState,
        _: Timestamp,
        _: &Policy,
    ) -> Vec<(Intent, logbook_journal::Reason)> {
        Vec::new()
    }
    fn build(&self) -> String {
        "nothing".to_owned()
    }
    fn already_done(&self, _: &ClusterState, _: &Intent) -> Option<String> {
        None
    }
}

const AMBIGUOUS: &str =
    "Unpaused before migration completed (migration may have succeeded with lost writes)";

#[derive(Clone)]
struct Node {
    id: String,
    slots: Vec<SlotRange>,
    epoch: u64,
}

struct Journal {
    /// (ms since the start, event).
    events: Vec<(i64, Event)>,
    nodes: BTreeMap<String, Node>,
    ms: i64,
}

fn id(c: char) -> String {
    c.to_string().repeat(40)
}

fn range(start: u16, end: u16) -> Vec<SlotRange> {
    vec![SlotRange { start, end }]
}

/// A move: (from pod, from node, to pod, to node, slots).
type Move<'a> = (&'a str, char, &'a str, char, Vec<SlotRange>);

impl Journal {
    fn formed() -> Self {
        let mut j = Self {
            events: Vec::new(),
            nodes: BTreeMap::new(),
            ms: 0,
        };
        j.spec(1, 2);
        for pod in ["c-0", "c-1", "c-2"] {
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
        j.set("c-0", 'a', range(0, 8191), 1);
        j.set("c-1", 'b', range(8192, 16_383), 2);
        j.set("c-2", 'c', Vec::new(), 0);
        for pod in ["c-0", "c-1", "c-2"] {
            j.report(pod);
        }
        j
    }

    fn spec(&mut self, generation: i64, shards: u32) -> u64 {
        self.push(Event::SpecChanged {
            generation,
            spec_json: format!(
                r#"{{"topology":"Cluster","shards":{shards},"replicasPerShard":0}}"#
            ),
            fingerprint: SpecFingerprint([u8::try_from(generation).unwrap(); 32]),
        })
    }

    fn push(&mut self, body: Event) -> u64 {
        self.ms += 1;
        self.events.push((self.ms, body));
        self.events.len() as u64
    }

    fn wait(&mut self, ms: i64) {
        self.ms += ms;
    }

    fn set(&mut self, pod: &str, node: char, slots: Vec<SlotRange>, epoch: u64) {
        self.nodes.insert(
            pod.to_owned(),
            Node {
                id: id(node),
                slots,
                epoch,
            },
        );
    }

    /// `pod`'s own report as the model has it.
    fn report(&mut self, pod: &str) -> u64 {
        let me = self.nodes[pod].clone();
        let peers: Vec<ClusterPeer> = self
            .nodes
            .values()
            .filter(|n| n.id != me.id)
            .map(|n| ClusterPeer {
                node_id: n.id.clone(),
                ip: Some("10.0.0.1".to_owned()),
                primary: true,
                primary_id: None,
                health: PeerHealth::Ok,
            })
            .collect();
        self.push(Event::ClusterNodeObserved {
            pod: pod.to_owned(),
            report: ClusterNodeReport {
                node_id: me.id,
                primary_id: None,
                slots: me.slots,
                config_epoch: me.epoch,
                current_epoch: 9,
                state_ok: true,
                peers,
            },
        })
    }

    /// One decision of `moves` for generation `generation`.
    fn decide(&mut self, generation: i64, shards: u32, moves: &[Move<'_>]) -> (u64, Vec<Uuid>) {
        let planned: u32 = moves
            .iter()
            .map(|m| logbook_journal::cluster::slot_count(&m.4))
            .sum();
        let intents: Vec<PlannedIntent> = moves
            .iter()
            .map(|(from, f, to, t, slots)| PlannedIntent {
                intent_id: Uuid::now_v7(),
                intent: Intent::MoveSlots {
                    from: (*from).to_owned(),
                    from_node: id(*f),
                    to: (*to).to_owned(),
                    to_node: id(*t),
                    slots: slots.clone(),
                },
                reason: Reason {
                    code: ReasonCode::Reshard {
                        generation,
                        shards,
                        slots_to_move: planned,
                    },
                    detail: format!("the spec wants {shards} shards"),
                },
            })
            .collect();
        let ids = intents.iter().map(|p| p.intent_id).collect();
        (self.push(Event::Decided { intents }), ids)
    }

    /// The source's export job `name` for a move, in `state`.
    #[allow(clippy::too_many_arguments)]
    fn job(
        &mut self,
        pod: &str,
        name: char,
        (from, to): (char, char),
        slots: &[SlotRange],
        state: &str,
        elapsed_ms: Option<u64>,
        message: &str,
    ) -> u64 {
        self.push(Event::SlotMigrationObserved {
            pod: pod.to_owned(),
            job: SlotMigrationJob {
                name: id(name),
                side: MigrationSide::Export,
                source: id(from),
                target: id(to),
                slots: slots.to_vec(),
                phase: MigrationPhase::from_valkey(state),
                message: message.to_owned(),
                remaining_repl_size: 0,
            },
            elapsed_ms,
        })
    }

    fn outcome(&mut self, body: Event) -> u64 {
        self.push(body)
    }

    fn succeeded(&mut self, intent_id: Uuid, detail: &str) -> u64 {
        self.outcome(Event::IntentSucceeded {
            intent_id,
            detail: detail.to_owned(),
        })
    }

    fn failed(&mut self, intent_id: Uuid, error: &str) -> u64 {
        self.outcome(Event::IntentFailed {
            intent_id,
            error: error.to_owned(),
            retryable: true,
        })
    }

    /// A decision of something else (what follows a round).
    fn status(&mut self) -> u64 {
        self.push(Event::Decided {
            intents: vec![PlannedIntent {
                intent_id: Uuid::now_v7(),
                intent: Intent::UpdateStatus,
                reason: Reason {
                    code: ReasonCode::StatusStale,
                    detail: "status".to_owned(),
                },
            }],
        })
    }

    async fn input(&self) -> Input<MemoryStore> {
        let store = MemoryStore::new();
        let stream = StreamId::new("s").unwrap();
        let mut head = Head::EMPTY;
        for (ms, body) in &self.events {
            let event = NewEvent {
                id: Uuid::now_v7(),
                at: Timestamp(1_700_000_000_000_000 + ms * 1000),
                cause: None,
                body: body.clone(),
            };
            let (_, encoded) = encode_batch(&stream, head, 1, vec![event]).unwrap();
            head = store
                .append(&stream, head.next_seq(), &encoded)
                .await
                .unwrap();
        }
        Input::Store {
            store,
            stream,
            cluster: None,
            place: "test".to_owned(),
        }
    }

    async fn reshards(&self, reshards: Reshards) -> Reshards {
        let mut reshards = reshards;
        self.input().await.scan(None, &mut reshards).await.unwrap();
        reshards
    }

    async fn audit(&self) -> AuditReport {
        audit(&self.input().await, &Nothing).await.unwrap()
    }
}

/// The findings of `check`, as (seq, detail).
fn only(report: &AuditReport, check: Check) -> Vec<(u64, String)> {
    report
        .findings
        .iter()
        .filter(|f| f.check == check)
        .map(|f| (f.seq, f.detail.clone()))
        .collect()
}

/// No finding but the stand-in decider's.
fn clean_but_determinism(report: &AuditReport) {
    let other: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.check != Check::Determinism)
        .collect();
    assert!(other.is_empty(), "{other:#?}");
}

fn summary(report: &AuditReport, check: Check) -> &logbook_replay::audit::CheckSummary {
    report
        .checks
        .iter()
        .find(|c| c.check == check.name())
        .unwrap()
}

/// The two moves of the 2 → 3 reshard: a and b each give c its share.
fn moves() -> Vec<Move<'static>> {
    vec![
        ("c-0", 'a', "c-2", 'c', range(5462, 8191)),
        ("c-1", 'b', "c-2", 'c', range(8192, 10_922)),
    ]
}

/// The 2 → 3 reshard carried out: both moves succeed, the first with its
/// pause caught by a poll, the second between two polls. Returns the seq
/// of the report that balanced it, and the moves' intent ids.
fn reshard_to_three(j: &mut Journal) -> (u64, Vec<Uuid>) {
    j.spec(2, 3);
    let (_, ids) = j.decide(2, 3, &moves());
    let first = range(5462, 8191);
    for (state, ms) in [
        ("snapshotting", 3),
        ("replicating", 120),
        ("failover-paused", 900),
        ("success", 950),
    ] {
        j.job("c-0", '1', ('a', 'c'), &first, state, Some(ms), "");
    }
    // The executor reports the target, then the source.
    j.set("c-2", 'c', first, 7);
    j.report("c-2");
    j.set("c-0", 'a', range(0, 5461), 1);
    j.report("c-0");
    j.succeeded(ids[0], "moved 2730 slots by atomic slot migration");
    let second = range(8192, 10_922);
    j.job("c-1", '2', ('b', 'c'), &second, "replicating", Some(40), "");
    j.job("c-1", '2', ('b', 'c'), &second, "success", Some(75), "");
    // c-2's claim at epoch 8 outranks b's at 2: balanced already.
    j.set("c-2", 'c', range(5462, 10_922), 8);
    let balanced = j.report("c-2");
    j.set("c-1", 'b', range(10_923, 16_383), 2);
    j.report("c-1");
    j.succeeded(ids[1], "moved 2731 slots by atomic slot migration");
    (balanced, ids)
}

#[test]
fn a_reshard_is_one_record_with_a_migration_per_move_and_balances() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        let (balanced, ids) = reshard_to_three(&mut j);
        let reshards = j.reshards(Reshards::new()).await;
        let [r] = reshards.records.as_slice() else {
            panic!("{:#?}", reshards.records)
        };
        assert_eq!((r.generation, r.shards), (2, 3));
        assert_eq!((r.slots_planned, r.slots_moved), (5461, 5461));
        assert!(
            matches!(r.outcome, ReshardOutcome::Balanced { seq, .. } if seq == balanced),
            "{:?}",
            r.outcome
        );
        assert_eq!(r.ended.as_ref().map(|m| m.seq), Some(j.events.len() as u64));
        let [m1, m2] = r.migrations.as_slice() else {
            panic!("{:#?}", r.migrations)
        };
        assert_eq!(m1.intent_id, ids[0]);
        assert_eq!(m1.source.pod.as_deref(), Some("c-0"));
        assert_eq!(m1.target.node_id, Some(id('c')));
        assert_eq!((m1.slot_count, m1.retries, m1.adopted), (2730, 0, false));
        assert_eq!(m1.mechanism, Mechanism::AtomicSlotMigration);
        let phases: Vec<(&str, Option<u64>)> = m1.jobs[0]
            .phases
            .iter()
            .map(|p| (p.state.as_str(), p.elapsed_ms))
            .collect();
        assert_eq!(
            phases,
            vec![
                ("snapshotting", Some(3)),
                ("replicating", Some(120)),
                ("failover-paused", Some(900)),
                ("success", Some(950))
            ]
        );
        let pause = m1.pause.as_ref().unwrap();
        assert!(pause.observed);
        assert_eq!(pause.bound_ms, Some(830));
        assert!(
            matches!(&m1.outcome, MoveOutcome::Succeeded { detail } if detail.contains("atomic")),
            "{:?}",
            m1.outcome
        );
        assert_eq!(m1.target_owned_after, Some(2730));
        let pause = m2.pause.as_ref().unwrap();
        assert!(!pause.observed);
        assert_eq!(pause.bound_ms, Some(35));

        let mut text = Vec::new();
        logbook_replay::reshards::write_text(&mut text, &reshards).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with(
                "reshard of generation 2: 3 shards wanted, 5461 slots planned, 5461 moved;"
            ),
            "{text}"
        );
        assert!(text.contains(&format!("balanced at #{balanced}")), "{text}");
        assert!(
            text.contains(
                "  migration 1: slots 5462-8191 (2730 slots) c-0 (aaaaaaaa) -> c-2 (cccccccc)"
            ),
            "{text}"
        );
        assert!(
            text.contains("    write pause: ≤ 830 ms between observations"),
            "{text}"
        );
        assert!(
            text.contains(
                "    write pause: not observed (the job finished between two polls): ≤ 35 ms"
            ),
            "{text}"
        );
        assert!(text.contains("+900 ms"), "{text}");
        assert!(text.contains("    retries:     none"), "{text}");

        let json = serde_json::to_value(reshards.rows()).unwrap();
        assert_eq!(json[0]["kind"], "reshard");
        assert_eq!(json[0]["outcome"]["state"], "balanced");
        assert_eq!(json[0]["migrations"][0]["outcome"]["state"], "succeeded");
        assert_eq!(json[0]["migrations"][0]["pause"]["clock"], "since-issued");
        assert_eq!(json[0]["migrations"][1]["pause"]["observed"], false);

        // Audited: every rule examined it, none broken.
        let report = j.audit().await;
        clean_but_determinism(&report);
        assert_eq!(summary(&report, Check::MoveOutcome).examined, 2);
        assert_eq!(summary(&report, Check::MoveIssuedTwice).examined, 2);
        assert!(summary(&report, Check::SlotClaims).examined >= 7);
        assert_eq!(summary(&report, Check::SlotClaims).note, None);
    });
}

#[test]
fn moves_that_keep_failing_are_retried_then_failing_and_given_up_as_the_build_says() {
    futures::executor::block_on(async {
        let one = vec![("c-0", 'a', "c-2", 'c', range(5462, 8191))];
        let mut j = Journal::formed();
        j.spec(2, 3);
        for _ in 0..2 {
            let (_, ids) = j.decide(2, 3, &one);
            j.failed(ids[0], "ERR target c-2 refused the connection");
        }
        let reshards = j.reshards(Reshards::new()).await;
        let r = &reshards.records[0];
        let ReshardOutcome::Failing { given_up, pairs } = &r.outcome else {
            panic!("{:?}", r.outcome)
        };
        assert_eq!(*given_up, None);
        assert_eq!((pairs[0].failures, pairs[0].same_error), (2, 2));
        assert_eq!(pairs[0].from.pod.as_deref(), Some("c-0"));
        assert_eq!(
            r.migrations.iter().map(|m| m.retries).collect::<Vec<_>>(),
            vec![0, 1]
        );
        // The build says whether it gave up: its status's word.
        let given = j.reshards(Reshards::with_given_up(Some(|_| true))).await;
        assert!(matches!(
            given.records[0].outcome,
            ReshardOutcome::Failing {
                given_up: Some(true),
                ..
            }
        ));
        let mut text = Vec::new();
        logbook_replay::reshards::write_text(&mut text, &given).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("failing, given up under this generation: c-0 (aaaaaaaa) -> c-2 (cccccccc) failed 2 time(s) in a row"),
            "{text}"
        );
        // A third try succeeds: two retries before it, in progress again.
        let (_, ids) = j.decide(2, 3, &one);
        j.set("c-2", 'c', range(5462, 8191), 7);
        j.report("c-2");
        j.set("c-0", 'a', range(0, 5461), 1);
        j.report("c-0");
        j.succeeded(ids[0], "moved 2730 slots by the classic pipeline");
        let reshards = j.reshards(Reshards::new()).await;
        let r = &reshards.records[0];
        assert_eq!(r.outcome, ReshardOutcome::InProgress);
        let last = r.migrations.last().unwrap();
        assert_eq!(last.retries, 2);
        assert_eq!(last.mechanism, Mechanism::NotObserved);
        assert_eq!(r.slots_moved, 2730);
        clean_but_determinism(&j.audit().await);
    });
}

#[test]
fn an_ambiguous_job_is_resolved_by_ownership_and_a_plain_success_for_it_is_a_finding() {
    futures::executor::block_on(async {
        let slots = range(5462, 8191);
        let build = |detail: &str| {
            let mut j = Journal::formed();
            j.spec(2, 3);
            let (_, ids) = j.decide(2, 3, &[("c-0", 'a', "c-2", 'c', slots.clone())]);
            j.job("c-0", '1', ('a', 'c'), &slots, "replicating", Some(100), "");
            j.job(
                "c-0",
                '1',
                ('a', 'c'),
                &slots,
                "failover-granted",
                Some(400),
                "",
            );
            j.job(
                "c-0",
                '1',
                ('a', 'c'),
                &slots,
                "failed",
                Some(6000),
                AMBIGUOUS,
            );
            j.set("c-2", 'c', slots.clone(), 7);
            j.report("c-2");
            j.set("c-0", 'a', range(0, 5461), 1);
            j.report("c-0");
            let seq = j.succeeded(ids[0], detail);
            (j, seq)
        };
        let (j, _) = build(
            "the job failed ambiguously (may have succeeded with lost writes): c-2 owns the slots, resolved by ownership",
        );
        let reshards = j.reshards(Reshards::new()).await;
        let m = &reshards.records[0].migrations[0];
        assert!(
            matches!(
                &m.outcome,
                MoveOutcome::Ambiguous {
                    resolved: "moved",
                    outcome: "succeeded",
                    ..
                }
            ),
            "{:?}",
            m.outcome
        );
        assert_eq!(m.pause.as_ref().unwrap().bound_ms, Some(5900));
        clean_but_determinism(&j.audit().await);

        let (j, seq) = build("moved 2730 slots by atomic slot migration");
        let report = j.audit().await;
        let found = only(&report, Check::MoveOutcome);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, seq);
        assert!(found[0].1.contains("plain success"), "{}", found[0].1);
        assert!(found[0].1.contains("failed ambiguously"), "{}", found[0].1);
    });
}

#[test]
fn a_success_the_journal_never_shows_done_is_a_finding_or_said_unjudged_at_the_end() {
    futures::executor::block_on(async {
        let slots = range(5462, 8191);
        let start = || {
            let mut j = Journal::formed();
            j.spec(2, 3);
            let (_, ids) = j.decide(2, 3, &[("c-0", 'a', "c-2", 'c', slots.clone())]);
            let seq = j.succeeded(ids[0], "moved 2730 slots");
            (j, seq)
        };
        // The next decision comes and c-2 owns none of them.
        let (mut j, seq) = start();
        let next = j.status();
        let report = j.audit().await;
        let found = only(&report, Check::MoveOutcome);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, seq);
        assert!(
            found[0].1.contains(&format!(
                "c-2 owning 0 of them by the next decision (seq {next})"
            )),
            "{}",
            found[0].1
        );
        // c-2's own report, without them.
        let (mut j, _) = start();
        let own = j.report("c-2");
        let found = only(&j.audit().await, Check::MoveOutcome);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .1
                .contains(&format!("c-2's own report at seq {own}")),
            "{}",
            found[0].1
        );
        // The journal ends: not judged, and said so.
        let (j, seq) = start();
        let report = j.audit().await;
        assert!(only(&report, Check::MoveOutcome).is_empty());
        let note = summary(&report, Check::MoveOutcome).note.clone().unwrap();
        assert!(
            note.contains(&format!("reported succeeded at seq {seq}")),
            "{note}"
        );
    });
}

#[test]
fn a_move_decided_beside_a_job_or_move_of_overlapping_slots_is_issued_twice() {
    futures::executor::block_on(async {
        // A probe sees a job of 5000-8191 under way.
        let running = range(5000, 8191);
        let seen = |j: &mut Journal| {
            j.spec(2, 3);
            j.job("c-0", '9', ('a', 'c'), &running, "replicating", None, "");
        };
        let mut j = Journal::formed();
        seen(&mut j);
        let (decided, _) = j.decide(2, 3, &[("c-0", 'a', "c-2", 'c', range(5462, 8191))]);
        let report = j.audit().await;
        let found = only(&report, Check::MoveIssuedTwice);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, decided);
        assert!(found[0].1.contains("job 99999999"), "{}", found[0].1);
        assert!(found[0].1.contains("5000-8191"), "{}", found[0].1);

        // Waited for under its own slots: adopted, not issued twice; the
        // probe's phase is the migration's first.
        let mut j = Journal::formed();
        seen(&mut j);
        let (_, ids) = j.decide(2, 3, &[("c-0", 'a', "c-2", 'c', running.clone())]);
        j.job("c-0", '9', ('a', 'c'), &running, "success", None, "");
        j.set("c-2", 'c', running.clone(), 7);
        j.report("c-2");
        j.set("c-0", 'a', range(0, 4999), 1);
        j.report("c-0");
        j.succeeded(ids[0], "the job under way succeeded");
        let report = j.audit().await;
        clean_but_determinism(&report);
        let reshards = j.reshards(Reshards::new()).await;
        let m = &reshards.records[0].migrations[0];
        assert!(m.adopted);
        assert_eq!(m.jobs[0].phases.len(), 2);
        assert!(reshards.unplanned().is_empty());
        // Two probes' polls bound the pause on the journal's clock.
        let pause = m.pause.as_ref().unwrap();
        assert_eq!(
            pause.clock,
            Some(logbook_replay::reshards::pause::Clock::Journal)
        );

        // Two moves of one decision sharing slots.
        let mut j = Journal::formed();
        j.spec(2, 3);
        let (decided, _) = j.decide(
            2,
            3,
            &[
                ("c-0", 'a', "c-2", 'c', range(5462, 8191)),
                ("c-0", 'a', "c-2", 'c', range(8000, 8100)),
            ],
        );
        let found = only(&j.audit().await, Check::MoveIssuedTwice);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, decided);
        assert!(
            found[0].1.contains("in the same decision"),
            "{}",
            found[0].1
        );
    });
}

#[test]
fn two_primaries_claiming_a_slot_at_its_highest_epoch_is_a_slot_claims_finding_once() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        // c-2 claims 8000-8191 at epoch 1, as a does.
        j.set("c-2", 'c', range(8000, 8191), 1);
        let tied = j.report("c-2");
        j.report("c-2");
        let report = j.audit().await;
        let found = only(&report, Check::SlotClaims);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, tied);
        assert!(
            found[0].1.contains(
                "slots 8000-8191 (192 slots) are claimed by c-0 (node aaaaaaaa) and c-2 (node cccccccc) all at config epoch 1"
            ),
            "{}",
            found[0].1
        );
        // At a higher epoch the claim decides: no finding.
        let mut j = Journal::formed();
        j.set("c-2", 'c', range(8000, 8191), 5);
        j.report("c-2");
        assert!(only(&j.audit().await, Check::SlotClaims).is_empty());
    });
}

#[test]
fn a_slot_that_loses_its_owner_is_a_finding_once_nobody_claims_it_for_ten_probe_intervals() {
    futures::executor::block_on(async {
        let drop_first = |j: &mut Journal| {
            j.set("c-0", 'a', range(0, 5461), 1);
            j.report("c-0")
        };
        // Claimed again a moment later (two nodes probed a moment apart).
        let mut j = Journal::formed();
        drop_first(&mut j);
        j.set("c-2", 'c', range(5462, 8191), 7);
        j.report("c-2");
        j.wait(60_000);
        j.status();
        let report = j.audit().await;
        assert!(only(&report, Check::SlotClaims).is_empty(), "{report:#?}");

        // Nobody claims them for 11 s: a finding where they lost it.
        let mut j = Journal::formed();
        let dropped = drop_first(&mut j);
        j.wait(11_000);
        let later = j.status();
        let report = j.audit().await;
        let found = only(&report, Check::SlotClaims);
        assert_eq!(found.len(), 1, "{report:#?}");
        assert_eq!(found[0].0, dropped);
        assert!(
            found[0].1.contains(&format!(
                "slots 5462-8191 (2730 slots) had an owner, c-0 (node aaaaaaaa), until seq {dropped} and no node claims them at seq {later}"
            )),
            "{}",
            found[0].1
        );

        // The journal ends 2 s after: too soon to judge, and said so.
        let mut j = Journal::formed();
        let dropped = drop_first(&mut j);
        j.wait(2_000);
        j.status();
        let report = j.audit().await;
        assert!(only(&report, Check::SlotClaims).is_empty());
        let note = summary(&report, Check::SlotClaims).note.clone().unwrap();
        assert_eq!(
            note,
            format!(
                "slots 5462-8191 lost their owner from seq {dropped} on, too close to the journal's end to judge"
            )
        );

        // Nobody watched for a minute (the operator was away): the clock
        // starts again at the takeover, and the first round claims them.
        let mut j = Journal::formed();
        drop_first(&mut j);
        j.wait(60_000);
        j.push(Event::OperatorStarted {
            version: "test".to_owned(),
            instance: "op-b".to_owned(),
            epoch: 1,
            gap_ms: Some(60_000),
        });
        j.wait(300);
        j.set("c-2", 'c', range(5462, 8191), 7);
        j.report("c-2");
        assert!(only(&j.audit().await, Check::SlotClaims).is_empty());
    });
}

#[test]
fn settled_slots_superseded_reshards_and_jobs_nobody_decided_are_listed() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        // Slot 77 left half-moved from a to c, settled forward.
        j.push(Event::SlotStatesObserved {
            pod: "c-0".to_owned(),
            node_id: id('a'),
            migrating: vec![SlotPeer {
                slot: 77,
                node_id: id('c'),
            }],
            importing: Vec::new(),
        });
        let settle = Uuid::now_v7();
        j.push(Event::Decided {
            intents: vec![PlannedIntent {
                intent_id: settle,
                intent: Intent::SettleSlot {
                    slot: 77,
                    owner: "c-0".to_owned(),
                    owner_node: id('a'),
                    to: Some("c-2".to_owned()),
                    to_node: Some(id('c')),
                },
                reason: Reason {
                    code: ReasonCode::SlotStuck { slot: 77 },
                    detail: "slot 77 is left half-moved".to_owned(),
                },
            }],
        });
        j.set("c-2", 'c', range(77, 77), 7);
        j.report("c-2");
        j.set(
            "c-0",
            'a',
            vec![
                SlotRange { start: 0, end: 76 },
                SlotRange {
                    start: 78,
                    end: 8191,
                },
            ],
            1,
        );
        j.report("c-0");
        j.succeeded(settle, "slot 77 finished to c-2");
        // A job nobody here decided.
        j.job(
            "c-1",
            '5',
            ('b', 'c'),
            &range(9000, 9001),
            "snapshotting",
            None,
            "",
        );
        // Generation 2 begins a reshard; generation 3 supersedes it.
        j.spec(2, 3);
        j.decide(2, 3, &[("c-1", 'b', "c-2", 'c', range(8192, 10_922))]);
        j.spec(3, 4);
        let (superseded, _) = j.decide(3, 4, &[("c-0", 'a', "c-2", 'c', range(4000, 4095))]);
        let reshards = j.reshards(Reshards::new()).await;

        let [s] = reshards.settles.as_slice() else {
            panic!("{:#?}", reshards.settles)
        };
        assert_eq!(s.slot, 77);
        assert_eq!(s.markers, vec!["c-0 migrating -> cccccccc".to_owned()]);
        assert!(s.action.starts_with("finish the move"), "{}", s.action);
        assert_eq!(s.owner_after.as_deref(), Some("c-2"));
        assert_eq!(s.outcome, logbook_replay::failovers::Outcome::Completed);

        assert_eq!(reshards.records.len(), 2);
        assert_eq!(
            reshards.records[0].outcome,
            ReshardOutcome::Superseded {
                generation: 3,
                seq: superseded
            }
        );
        assert_eq!(reshards.records[1].outcome, ReshardOutcome::InProgress);

        let unplanned = reshards.unplanned();
        let [job] = unplanned.as_slice() else {
            panic!("{unplanned:#?}")
        };
        assert_eq!(job.source.pod.as_deref(), Some("c-1"));
        let json = serde_json::to_value(reshards.rows()).unwrap();
        let kinds: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, vec!["reshard", "reshard", "settle", "migration-job"]);
        let mut text = Vec::new();
        logbook_replay::reshards::write_text(&mut text, &reshards).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("settled slots (left half-moved):\n  slot 77: finish the move"),
            "{text}"
        );
        assert!(
            text.contains("[marked: c-0 migrating -> cccccccc]"),
            "{text}"
        );
        assert!(
            text.contains("migration jobs no decision in this journal names"),
            "{text}"
        );
        assert!(text.contains("superseded by generation 3"), "{text}");
    });
}

#[test]
fn no_reshard_says_so() {
    futures::executor::block_on(async {
        let j = Journal::formed();
        let reshards = j.reshards(Reshards::new()).await;
        let mut text = Vec::new();
        logbook_replay::reshards::write_text(&mut text, &reshards).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "no reshards: the journal holds no slot move decided by the operator\n"
        );
        assert_eq!(
            serde_json::to_value(reshards.rows()).unwrap(),
            serde_json::json!([])
        );
    });
}

/// The page's text of the element that opens at `open`, up to `close`.
fn element<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in the page"));
    let len = html[start..]
        .find(close)
        .unwrap_or_else(|| panic!("{open} is not closed by {close}"));
    &html[start..start + len]
}

#[test]
fn the_html_report_lists_each_migration_and_draws_it_on_its_own_lane() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        let (balanced, _) = reshard_to_three(&mut j);
        // A third move, decided and never settled.
        j.spec(3, 4);
        j.decide(3, 4, &[("c-0", 'a', "c-2", 'c', range(0, 99))]);
        let mut html = Vec::new();
        logbook_replay::export::html::export(&j.input().await, &Nothing, &mut html)
            .await
            .unwrap();
        let html = String::from_utf8(html).unwrap();
        std::fs::write(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reshard_report.html"),
            &html,
        )
        .unwrap();
        let section = element(&html, "<section id=\"reshards\"", "</section>");
        assert!(
            section.contains("<h2>Reshards <span class=\"count\">2</span></h2>"),
            "{section}"
        );
        assert!(
            section.contains("<h3 id=\"reshard-1\">Reshard 1: generation 2, 3 shards wanted</h3>")
        );
        assert!(
            section.contains(&format!("balanced at #{balanced}")),
            "{section}"
        );
        assert!(section.contains("superseded") || section.contains("in progress"));
        let row = element(section, "<tr id=\"migration-1-1\"", "</tr>");
        for text in [
            "5462-8191",
            "2730 slots",
            "<b>c-0</b> <code>aaaaaaaa</code>",
            "<b>c-2</b> <code>cccccccc</code>",
            "failover-paused",
            "≤ 830 ms between observations",
            "succeeded: moved 2730 slots by atomic slot migration",
        ] {
            assert!(row.contains(text), "migration row lacks {text}: {row}");
        }
        let row = element(section, "<tr id=\"migration-1-2\"", "</tr>");
        assert!(
            row.contains("not observed (the job finished between two polls)"),
            "{row}"
        );
        // On the chart: a bar per migration, linked to its row, coloured by
        // its outcome; the one with no outcome runs to the journal's end.
        let lane = element(&html, "<g class=\"migrations-lane\">", "</g>\n");
        assert!(lane.contains(">migrations</text>"), "{lane}");
        assert!(html.contains(
            "<a href=\"#migration-1-1\" class=\"marker-link\"><g class=\"marker-migration outcome-succeeded\" id=\"marker-migration-1-1\"><title>migration 1.1 (generation 2): slots 5462-8191 (2730 slots) c-0 (aaaaaaaa) → c-2 (cccccccc); decided at #"
        ));
        assert!(html.contains(
            "<g class=\"marker-migration outcome-pending\" id=\"marker-migration-2-1\">"
        ));
        let bar = element(&html, "id=\"marker-migration-2-1\"", "</g>");
        assert!(
            bar.contains("no outcome by the end of the journal"),
            "{bar}"
        );
        assert!(bar.contains("<line class=\"start\""), "{bar}");
        assert!(bar.contains("<line class=\"end\""), "{bar}");
        let legend = element(&html, "id=\"legend\"", "</div>");
        assert!(
            legend.contains("<i class=\"bar outcome-succeeded\"></i>slot migration"),
            "{legend}"
        );
    });
}

#[test]
fn state_at_a_point_mid_reshard_shows_the_slot_map_and_what_moves() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        j.spec(2, 3);
        let slots = range(5462, 8191);
        j.decide(2, 3, &moves());
        let polled = j.job("c-0", '1', ('a', 'c'), &slots, "replicating", Some(120), "");
        j.push(Event::SlotStatesObserved {
            pod: "c-1".to_owned(),
            node_id: id('b'),
            migrating: vec![SlotPeer {
                slot: 9000,
                node_id: id('c'),
            }],
            importing: Vec::new(),
        });
        let input = j.input().await;
        let point = logbook_replay::state_at::Point::Seq(polled + 1);
        let (state, start) = logbook_replay::state_at::state_at(&input, point)
            .await
            .unwrap();
        let view = logbook_replay::state_at::cluster_view(&state);
        let owners: Vec<_> = view
            .slots
            .iter()
            .map(|s| (s.slots.as_str(), s.pod.as_deref()))
            .collect();
        assert_eq!(
            owners,
            vec![("0-8191", Some("c-0")), ("8192-16383", Some("c-1"))]
        );
        let [m] = view.migrations.as_slice() else {
            panic!("{:#?}", view.migrations)
        };
        assert_eq!(
            (
                m.side,
                m.listed_by.as_str(),
                m.moves.as_str(),
                m.slots.as_str()
            ),
            ("export", "c-0", "c-0 -> c-2", "5462-8191")
        );
        assert_eq!(m.phase, "replicating");
        assert_eq!(view.moves_in_flight.len(), 2);
        assert!(
            view.moves_in_flight[0]
                .starts_with("move 2730 slots (5462-8191) from c-0 to c-2 (decided at seq"),
            "{:?}",
            view.moves_in_flight
        );
        assert_eq!(
            view.half_moved,
            vec!["c-1: 9000 migrating -> c-2".to_owned()]
        );
        let reshard = view.reshard.as_ref().unwrap();
        assert_eq!(
            (reshard.generation, reshard.planned, reshard.moved),
            (2, 5461, 0)
        );
        let mut yaml = Vec::new();
        logbook_replay::state_at::write_yaml(&mut yaml, &state, &start).unwrap();
        let yaml = String::from_utf8(yaml).unwrap();
        assert!(
            yaml.contains("  migrations:\n  - job: '11111111'")
                || yaml.contains("  migrations:\n  - job: \"11111111\""),
            "{yaml}"
        );
        assert!(yaml.contains("  moves_in_flight:"), "{yaml}");
        let _: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        // Before any reshard, none of it is printed.
        let (state, start) =
            logbook_replay::state_at::state_at(&input, logbook_replay::state_at::Point::Seq(7))
                .await
                .unwrap();
        let mut yaml = Vec::new();
        logbook_replay::state_at::write_yaml(&mut yaml, &state, &start).unwrap();
        let yaml = String::from_utf8(yaml).unwrap();
        let derived = yaml.split("valkey_cluster:").nth(1).unwrap();
        assert!(!derived.contains("migrations:"), "{derived}");
        assert!(!derived.contains("moves_in_flight:"), "{derived}");
    });
}

#[test]
fn a_move_in_flight_in_the_snapshot_the_scan_starts_from_is_still_reported() {
    futures::executor::block_on(async {
        let mut j = Journal::formed();
        j.spec(2, 3);
        let slots = range(5462, 8191);
        let (decided, ids) = j.decide(2, 3, &[("c-0", 'a', "c-2", 'c', slots.clone())]);
        let running = j.job("c-0", '1', ('a', 'c'), &slots, "replicating", Some(100), "");
        j.job("c-0", '1', ('a', 'c'), &slots, "success", Some(300), "");
        j.set("c-2", 'c', slots.clone(), 7);
        j.report("c-2");
        let done = j.succeeded(ids[0], "moved 2730 slots by atomic slot migration");
        let input = j.input().await;
        // Compacted up to the job's first phase: the decision is gone, the
        // move is in flight in the snapshot, its job under way.
        let (state, _) = logbook_replay::state_at::state_at(
            &input,
            logbook_replay::state_at::Point::Seq(running),
        )
        .await
        .unwrap();
        let Input::Store { store, stream, .. } = &input else {
            unreachable!()
        };
        logbook_journal::snapshot::save(store, stream, &state)
            .await
            .unwrap();
        store.compact(stream, running + 1).await.unwrap();
        let reshards = j_reshards(&input).await;
        let [r] = reshards.records.as_slice() else {
            panic!("{:#?}", reshards.records)
        };
        assert_eq!(r.started.seq, decided);
        let m = &r.migrations[0];
        assert_eq!(m.decided.seq, decided);
        // Its job under way in the snapshot is its own, not one it waited
        // for (that is not known of a compacted decision).
        assert!(!m.adopted);
        assert!(m.jobs[0].before_start);
        assert_eq!(m.jobs[0].phases.len(), 1, "{:#?}", m.jobs);
        assert_eq!(m.ended.as_ref().map(|e| e.seq), Some(done));
        assert!(matches!(m.outcome, MoveOutcome::Succeeded { .. }));
        assert!(reshards.unplanned().is_empty());
    });
}

async fn j_reshards(input: &Input<MemoryStore>) -> Reshards {
    let mut reshards = Reshards::new();
    input.scan(None, &mut reshards).await.unwrap();
    reshards
}

/// The audit starts from the snapshot when the events before it were
/// compacted away; that snapshot must be the one the operator journaled
/// taking (`SnapshotRecorded` carries its state's digest). One that
/// matches is clean; one whose state differs is a `snapshot-digest`
/// finding: the audit would otherwise trust a state the operator never had.
#[test]
fn the_snapshot_the_audit_starts_from_is_checked_against_its_journaled_digest() {
    futures::executor::block_on(async {
        for forged in [false, true] {
            let mut j = Journal::formed();
            let at = j.report("c-0");
            let input = j.input().await;
            let Input::Store { store, stream, .. } = &input else {
                unreachable!()
            };
            // The operator's snapshot at `at`, recorded right after it.
            let (state, _) = logbook_replay::state_at::state_at(
                &input,
                logbook_replay::state_at::Point::Seq(at),
            )
            .await
            .unwrap();
            let digest = logbook_journal::codec::state_digest(&state).unwrap();
            let recorded = Event::SnapshotRecorded {
                seq: at,
                hash: state.last_hash,
                digest,
            };
            let head = store.head(stream).await.unwrap();
            let event = NewEvent {
                id: Uuid::now_v7(),
                at: Timestamp(1_700_000_100_000_000),
                cause: None,
                body: recorded,
            };
            let (_, encoded) = encode_batch(stream, head, 1, vec![event]).unwrap();
            store
                .append(stream, head.next_seq(), &encoded)
                .await
                .unwrap();
            let mut stored = state.clone();
            if forged {
                stored.pods.remove("c-2");
            }
            logbook_journal::snapshot::save(store, stream, &stored)
                .await
                .unwrap();
            store.compact(stream, at + 1).await.unwrap();
            let report = audit(&input, &Nothing).await.unwrap();
            let check = summary(&report, Check::SnapshotDigest);
            assert_eq!(check.examined, 1, "{:?}", check.note);
            let found = only(&report, Check::SnapshotDigest);
            if forged {
                assert_eq!(found.len(), 1, "{found:?}");
                assert!(found[0].1.contains("never had"), "{found:?}");
            } else {
                assert!(found.is_empty(), "{found:?}");
            }
        }
    });
}
