//! The audit's checks of the places where no decision is recorded
//! (`missed-decision`) and of what a new leader did with the intents it
//! found in flight (`takeover-resolution`), on small journals written for
//! the purpose.
//!
//! The decider is a stand-in with one rule, so that what it asks for is
//! plain: roll the first pod (by name) not observed at revision `r2`, and
//! nothing while an intent is in flight; a roll is done when its pod is
//! observed at its revision. Events are 1 ms apart unless a test waits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use logbook_journal::codec::StateDigest;
use logbook_journal::writer::encode_batch;
use logbook_journal::{
    ChainHash, ClusterState, Event, Head, Intent, JournalStore, MemoryStore, NewEvent,
    PlannedIntent, PodPhase, Policy, Reachability, Reason, ReasonCode, StreamId, Timestamp,
};
use logbook_replay::audit::missed::{DECISIONS_PER_ACT, STANDING_MS};
use logbook_replay::audit::{AuditReport, Check, audit};
use logbook_replay::{Decider, Input};
use uuid::Uuid;

/// Rolls pods to `r2`, one at a time.
struct Rolls;

impl Decider for Rolls {
    fn decide(&self, state: &ClusterState, _: Timestamp, _: &Policy) -> Vec<(Intent, Reason)> {
        if !state.in_flight.is_empty() {
            return Vec::new();
        }
        state
            .pods
            .iter()
            .find(|(_, v)| v.revision.as_deref() != Some("r2"))
            .map(|(pod, _)| vec![roll(pod)])
            .unwrap_or_default()
    }

    fn build(&self) -> String {
        "rolls".to_owned()
    }

    fn already_done(&self, state: &ClusterState, intent: &Intent) -> Option<String> {
        let Intent::RollPod { pod, revision } = intent else {
            return None;
        };
        state
            .pods
            .get(pod)
            .filter(|v| v.revision.as_deref() == Some(revision.as_str()))
            .map(|_| format!("{pod} is observed at revision {revision}"))
    }
}

fn roll(pod: &str) -> (Intent, Reason) {
    (
        Intent::RollPod {
            pod: pod.to_owned(),
            revision: "r2".to_owned(),
        },
        Reason {
            code: ReasonCode::RevisionOutdated,
            detail: format!("{pod} is not at r2"),
        },
    )
}

/// A journal under construction: (ms since the start, epoch, event).
struct Journal {
    events: Vec<(i64, u64, Event)>,
    ms: i64,
    epoch: u64,
}

impl Journal {
    /// Pods `pods` observed at `revision`.
    fn with(pods: &[&str], revision: &str) -> Self {
        let mut j = Self {
            events: Vec::new(),
            ms: 0,
            epoch: 1,
        };
        for pod in pods {
            j.observe(pod, revision);
        }
        j
    }

    fn push(&mut self, body: Event) -> u64 {
        self.ms += 1;
        self.events.push((self.ms, self.epoch, body));
        self.events.len() as u64
    }

    fn wait(&mut self, ms: i64) {
        self.ms += ms;
    }

    fn observe(&mut self, pod: &str, revision: &str) -> u64 {
        self.push(Event::PodObserved {
            pod: pod.to_owned(),
            uid: format!("uid-{pod}"),
            ip: Some("10.0.0.1".to_owned()),
            phase: PodPhase::Running,
            ready: true,
            node: None,
            revision: Some(revision.to_owned()),
        })
    }

    /// An observation that changes nothing `Rolls` reads.
    fn probe(&mut self, pod: &str) -> u64 {
        self.push(Event::PodReachabilityObserved {
            pod: pod.to_owned(),
            reachability: Reachability::Reachable,
        })
    }

    fn decide(&mut self, pod: &str) -> (u64, Uuid) {
        let id = Uuid::now_v7();
        let (intent, reason) = roll(pod);
        let seq = self.push(Event::Decided {
            intents: vec![PlannedIntent {
                intent_id: id,
                intent,
                reason,
            }],
        });
        (seq, id)
    }

    fn succeed(&mut self, id: Uuid, detail: &str) -> u64 {
        self.push(Event::IntentSucceeded {
            intent_id: id,
            detail: detail.to_owned(),
        })
    }

    /// A roll decided and carried out: the pod observed at r2, then the
    /// outcome. Returns the outcome's seq.
    fn rolled(&mut self, pod: &str) -> u64 {
        let (_, id) = self.decide(pod);
        self.observe(pod, "r2");
        self.succeed(id, "rolled")
    }

    fn takeover(&mut self, epoch: u64) -> u64 {
        self.epoch = epoch;
        self.push(Event::OperatorStarted {
            version: "t".to_owned(),
            instance: format!("op-{epoch}"),
            epoch,
            gap_ms: Some(3000),
        })
    }

    async fn audit(&self) -> AuditReport {
        let store = MemoryStore::new();
        let stream = StreamId::new("s").unwrap();
        let mut head = Head::EMPTY;
        for (ms, epoch, body) in &self.events {
            let event = NewEvent {
                id: Uuid::now_v7(),
                at: Timestamp(1_700_000_000_000_000 + ms * 1000),
                cause: None,
                body: body.clone(),
            };
            let (_, encoded) = encode_batch(&stream, head, *epoch, vec![event]).unwrap();
            head = store
                .append(&stream, head.next_seq(), &encoded)
                .await
                .unwrap();
        }
        let input = Input::Store {
            store,
            stream,
            cluster: None,
            place: "test".to_owned(),
        };
        audit(&input, &Rolls).await.unwrap()
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

fn examined(report: &AuditReport, check: Check) -> u64 {
    report
        .checks
        .iter()
        .find(|c| c.check == check.name())
        .unwrap_or_else(|| panic!("no {} in {report:#?}", check.name()))
        .examined
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[test]
fn a_decision_not_taken_where_the_runtime_decides_next_is_found() {
    run(async {
        let mut j = Journal::with(&["p-0", "p-1"], "r1");
        // Decided, carried out, succeeded: the runtime decides again at
        // once, and `decide` asks to roll p-1.
        let due = j.rolled("p-0");
        // It does not: the next trigger's observation changes nothing it
        // asks for (still waited for), then p-1 is rolled by someone else.
        j.probe("p-0");
        let changed = j.observe("p-1", "r2");
        let report = j.audit().await;
        let missed = only(&report, Check::MissedDecision);
        assert_eq!(missed.len(), 1, "{report:#?}");
        assert_eq!(missed[0].0, due);
        assert!(missed[0].1.contains("roll p-1"), "{}", missed[0].1);
        assert!(
            missed[0].1.contains(&format!("before seq {changed}")),
            "{}",
            missed[0].1
        );
        let finding = &report.findings[0];
        assert_eq!(finding.recomputed.len(), 1);
        assert!(finding.recorded.is_empty());
        // Nothing else is wrong with it.
        assert_eq!(report.findings.len(), 1, "{report:#?}");
        let mut text = Vec::new();
        logbook_replay::audit::write_text(&mut text, &report).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("FINDING missed-decision"), "{text}");
        assert!(text.contains("recorded:   (nothing)"), "{text}");
    });
}

#[test]
fn a_demand_that_stands_longer_than_any_runtime_waits_is_found() {
    run(async {
        let mut j = Journal::with(&["p-0", "p-1"], "r2");
        let began = j.observe("p-1", "r1");
        // Observations keep coming, none of them acted on, for longer
        // than the bound.
        j.wait(STANDING_MS / 2);
        j.probe("p-0");
        j.wait(STANDING_MS / 2);
        let late = j.probe("p-0");
        j.rolled("p-1");
        let report = j.audit().await;
        let missed = only(&report, Check::MissedDecision);
        assert_eq!(missed.len(), 1, "{report:#?}");
        assert_eq!(missed[0].0, began);
        assert!(
            missed[0].1.contains(&format!("until seq {late}")),
            "{}",
            missed[0].1
        );
        assert_eq!(report.findings.len(), 1, "{report:#?}");
    });
}

#[test]
fn the_runtimes_legitimate_silences_are_not_missed_decisions() {
    run(async {
        let mut j = Journal::with(&["p-0", "p-1", "p-2", "p-3", "p-4"], "r1");
        // A demand in the middle of a trigger's observations, decided
        // when the trigger ends.
        j.probe("p-0");
        // Decided, succeeded; the snapshot the commit triggered is staged
        // before the next decision.
        let (_, id) = j.decide("p-0");
        j.observe("p-0", "r2");
        j.succeed(id, "rolled");
        j.push(Event::SnapshotRecorded {
            seq: 10,
            hash: ChainHash::GENESIS,
            digest: StateDigest([0; 32]),
        });
        // Intents in flight: `decide` asks for nothing meanwhile.
        let (_, id) = j.decide("p-1");
        j.probe("p-2");
        j.observe("p-1", "r2");
        // A failure: backing off, the observations after it change what
        // `decide` asks for before it decides again.
        j.push(Event::IntentFailed {
            intent_id: id,
            error: "the pod did not come back".to_owned(),
            retryable: true,
        });
        j.observe("p-2", "r2");
        j.wait(20_000);
        // A clock fact: the runtime decides right after it.
        j.push(Event::DeadlinePassed {
            deadline: Timestamp(1_700_000_000_000_000),
        });
        j.rolled("p-3");
        // The lead lost right after a success (p-4 due): the next event is
        // the takeover, whose observations change what is due.
        j.takeover(2);
        j.observe("p-4", "r2");
        j.observe("p-0", "r1");
        // A takeover with a roll in flight: its probe round, then the
        // resolution, then the decision afresh.
        let (_, cut) = j.decide("p-0");
        j.takeover(3);
        j.probe("p-1");
        j.push(Event::IntentAbandoned {
            intent_id: cut,
            reason: "found without an outcome when the journal was taken over".to_owned(),
        });
        j.rolled("p-0");
        // The journal ends with a decision due: not judged.
        j.observe("p-1", "r1");
        let report = j.audit().await;
        assert!(report.is_clean(), "{report:#?}");
        assert!(examined(&report, Check::MissedDecision) > 10, "{report:#?}");
        assert_eq!(examined(&report, Check::TakeoverResolution), 1);
        let note = report
            .checks
            .iter()
            .find(|c| c.check == "missed-decision")
            .and_then(|c| c.note.clone())
            .unwrap();
        assert!(note.contains("roll p-1"), "{note}");
    });
}

#[test]
fn after_as_many_decisions_in_a_row_as_one_act_takes_the_runtime_waits() {
    run(async {
        let n = usize::try_from(DECISIONS_PER_ACT).unwrap();
        let pods: Vec<String> = (0..=n).map(|i| format!("p-{i:02}")).collect();
        let names: Vec<&str> = pods.iter().map(String::as_str).collect();
        let mut j = Journal::with(&names, "r1");
        for pod in &names[..n] {
            j.rolled(pod);
        }
        // The last pod is due, but the act stopped: the next trigger's
        // observation changes what is due, and that is no finding.
        j.observe(names[n], "r2");
        assert!(j.audit().await.is_clean());

        // One decision fewer in a row: the same silence is a finding.
        let mut j = Journal::with(&names, "r1");
        j.observe(names[0], "r2");
        let mut last = 0;
        for pod in &names[1..n] {
            last = j.rolled(pod);
        }
        j.observe(names[n], "r2");
        let report = j.audit().await;
        let missed = only(&report, Check::MissedDecision);
        assert_eq!(missed.len(), 1, "{report:#?}");
        assert_eq!(missed[0].0, last);
    });
}

#[test]
fn a_takeover_finds_done_or_abandons_and_carries_nothing_out_itself() {
    run(async {
        // Found done, rightly: clean.
        let mut j = Journal::with(&["p-0"], "r1");
        let (_, id) = j.decide("p-0");
        j.takeover(2);
        j.observe("p-0", "r2");
        j.succeed(
            id,
            "found done when the journal was taken over: p-0 is observed at revision r2",
        );
        let report = j.audit().await;
        assert!(report.is_clean(), "{report:#?}");
        assert_eq!(examined(&report, Check::TakeoverResolution), 1);

        // Carried out again under its old id: no decision orders it.
        let mut j = Journal::with(&["p-0"], "r1");
        let (_, id) = j.decide("p-0");
        j.takeover(2);
        j.probe("p-0");
        let resumed = j.succeed(id, "p-0 rolled to r2");
        let report = j.audit().await;
        let wrong = only(&report, Check::TakeoverResolution);
        assert_eq!(wrong.len(), 1, "{report:#?}");
        assert_eq!(wrong[0].0, resumed);
        assert!(wrong[0].1.contains("under its old id"), "{}", wrong[0].1);

        // Its failure says the same.
        let mut j = Journal::with(&["p-0"], "r1");
        let (_, id) = j.decide("p-0");
        j.takeover(2);
        let failed = j.push(Event::IntentFailed {
            intent_id: id,
            error: "no".to_owned(),
            retryable: true,
        });
        let report = j.audit().await;
        assert_eq!(only(&report, Check::TakeoverResolution)[0].0, failed);

        // Abandoned although the observations show it done.
        let mut j = Journal::with(&["p-0"], "r1");
        let (_, id) = j.decide("p-0");
        j.takeover(2);
        j.observe("p-0", "r2");
        let abandoned = j.push(Event::IntentAbandoned {
            intent_id: id,
            reason: "found without an outcome".to_owned(),
        });
        let report = j.audit().await;
        let wrong = only(&report, Check::TakeoverResolution);
        assert_eq!(wrong.len(), 1, "{report:#?}");
        assert_eq!(wrong[0].0, abandoned);
        assert!(wrong[0].1.contains("found done"), "{}", wrong[0].1);

        // Judged on the projection before the resolution began: the
        // second found intent where the first was, not after what came
        // between (a fact journaled with the first's outcome).
        let mut j = Journal::with(&["p-0", "p-1"], "r1");
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        j.push(Event::Decided {
            intents: [(first, "p-0"), (second, "p-1")]
                .into_iter()
                .map(|(intent_id, pod)| {
                    let (intent, reason) = roll(pod);
                    PlannedIntent {
                        intent_id,
                        intent,
                        reason,
                    }
                })
                .collect(),
        });
        j.takeover(2);
        j.push(Event::IntentAbandoned {
            intent_id: first,
            reason: "found without an outcome".to_owned(),
        });
        j.observe("p-1", "r2");
        j.push(Event::IntentAbandoned {
            intent_id: second,
            reason: "found without an outcome".to_owned(),
        });
        let report = j.audit().await;
        assert!(
            only(&report, Check::TakeoverResolution).is_empty(),
            "{report:#?}"
        );
        assert_eq!(examined(&report, Check::TakeoverResolution), 2);
    });
}
