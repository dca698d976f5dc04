//! A Valkey Cluster's reshard series: the gauges follow `status.reshard`
//! (slots to move, jobs under way, given up), the slot move counter
//! counts each `MoveSlots` once at its outcome — ambiguous when a job of
//! it failed after its source unpaused — and a Replication cluster or a
//! forgotten one exports none of it.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use logbook_crds::ValkeyClusterStatus;
use logbook_crds::v1alpha1::ReshardStatus;
use logbook_journal::{
    Event, Intent, MigrationPhase, MigrationSide, ReasonCode, SlotMigrationJob, SlotRange,
};
use uuid::Uuid;

use super::fixture::{Fixture, node, pod};
use super::*;

fn shop() -> ClusterLabels {
    ClusterLabels::new("default", "shop")
}

fn has(body: &str, line: &str) -> bool {
    body.lines().any(|l| l == line)
}

fn gauge(name: &str, value: i64) -> String {
    format!("logbook_reshard_{name}{{namespace=\"default\",valkeycluster=\"shop\"}} {value}")
}

fn moves(outcome: &str, value: u64) -> String {
    format!(
        "logbook_slot_moves_total{{namespace=\"default\",valkeycluster=\"shop\",outcome=\"{outcome}\"}} {value}"
    )
}

fn reshard(phase: &str, remaining: i32, running: i32) -> ValkeyClusterStatus {
    ValkeyClusterStatus {
        reshard: Some(ReshardStatus {
            phase: phase.to_owned(),
            generation: 2,
            shards: 4,
            slots_moved: 100,
            slots_remaining: remaining,
            migrations_running: running,
            message: String::new(),
        }),
        ..ValkeyClusterStatus::default()
    }
}

#[test]
fn the_reshard_gauges_follow_the_status_and_the_move_counters_start_at_zero() {
    let metrics = Metrics::new();
    let f = Fixture::formed();
    let recording = ClusterMetrics::new(metrics.clone(), "default", "shop");
    recording.status(&f.state, &reshard("Moving", 4096, 3));
    let body = metrics.encode(Format::Prometheus);
    for line in [
        gauge("slots_remaining", 4096),
        gauge("migrations_running", 3),
        gauge("given_up", 0),
        moves("succeeded", 0),
        moves("failed", 0),
        moves("ambiguous", 0),
    ] {
        assert!(has(&body, &line), "{line} not in\n{body}");
    }
    // Given up: the status says Failing.
    recording.status(&f.state, &reshard("Failing", 2730, 0));
    let body = metrics.encode(Format::Prometheus);
    assert!(has(&body, &gauge("given_up", 1)), "{body}");
    assert!(has(&body, &gauge("migrations_running", 0)), "{body}");
    // Balanced: no status.reshard, every gauge 0.
    recording.status(&f.state, &ValkeyClusterStatus::default());
    let body = metrics.encode(Format::Prometheus);
    for line in [
        gauge("slots_remaining", 0),
        gauge("migrations_running", 0),
        gauge("given_up", 0),
    ] {
        assert!(has(&body, &line), "{line} not in\n{body}");
    }
    // A Replication cluster has none of them; nor a forgotten one.
    let replication = ClusterMetrics::new(metrics.clone(), "default", "cart");
    replication.status(&Fixture::replication().state, &reshard("Moving", 1, 1));
    let body = metrics.encode(Format::Prometheus);
    assert!(
        !body.contains(
            "logbook_reshard_slots_remaining{namespace=\"default\",valkeycluster=\"cart\""
        ),
        "{body}"
    );
    assert!(
        !body.contains("logbook_slot_moves_total{namespace=\"default\",valkeycluster=\"cart\""),
        "{body}"
    );
    metrics.forget_cluster(&shop());
    let body = metrics.encode(Format::Prometheus);
    assert!(!body.contains("logbook_reshard"), "{body}");
    assert!(!body.contains("logbook_slot_moves_total{"), "{body}");
}

fn move_intent() -> Intent {
    Intent::MoveSlots {
        from: pod(0),
        from_node: node(0, 0),
        to: pod(6),
        to_node: node(6, 0),
        slots: vec![SlotRange {
            start: 0,
            end: 1364,
        }],
    }
}

fn job(state: &str, message: &str) -> Event {
    Event::SlotMigrationObserved {
        pod: pod(0),
        job: SlotMigrationJob {
            name: "f".repeat(40),
            side: MigrationSide::Export,
            source: node(0, 0),
            target: node(6, 0),
            slots: vec![SlotRange {
                start: 0,
                end: 1364,
            }],
            phase: MigrationPhase::from_valkey(state),
            message: message.to_owned(),
            remaining_repl_size: 0,
        },
        elapsed_ms: Some(10),
    }
}

/// The slot move notes of a move decided, with `between` journaled,
/// then ended by `end` (built from the intent id).
fn slot_moves(between: Vec<Event>, end: impl Fn(Uuid) -> Event) -> Vec<Note> {
    let mut f = Fixture::formed();
    let mut state = f.state.clone();
    let mut tracker = Tracker::new(&state);
    let from = f.envelopes.len();
    let id = Uuid::now_v7();
    f.decided(
        id,
        move_intent(),
        ReasonCode::Reshard {
            generation: 2,
            shards: 4,
            slots_to_move: 4096,
        },
    );
    for e in between {
        f.event(e);
    }
    f.event(end(id));
    f.envelopes[from..]
        .iter()
        .flat_map(|e| tracker.fold(&mut state, e))
        .filter(|n| matches!(n, Note::SlotMove { .. }))
        .collect()
}

#[test]
fn a_move_counts_once_at_its_outcome_and_an_ambiguous_job_makes_it_ambiguous() {
    let succeeded = |id| Event::IntentSucceeded {
        intent_id: id,
        detail: "moved".to_owned(),
    };
    let failed = |id| Event::IntentFailed {
        intent_id: id,
        error: "ERR".to_owned(),
        retryable: true,
    };
    assert_eq!(
        slot_moves(vec![job("snapshotting", ""), job("success", "")], succeeded),
        vec![Note::SlotMove {
            outcome: MoveOutcome::Succeeded
        }]
    );
    assert_eq!(
        slot_moves(vec![job("failed", "connection lost")], failed),
        vec![Note::SlotMove {
            outcome: MoveOutcome::Failed
        }]
    );
    let ambiguous = job(
        "failed",
        "Unpaused before migration completed (migration may have succeeded with lost writes)",
    );
    assert_eq!(
        slot_moves(vec![ambiguous.clone()], succeeded),
        vec![Note::SlotMove {
            outcome: MoveOutcome::Ambiguous
        }]
    );
    assert_eq!(
        slot_moves(vec![ambiguous], failed),
        vec![Note::SlotMove {
            outcome: MoveOutcome::Ambiguous
        }]
    );
    // Abandoned: an intent outcome only.
    assert_eq!(
        slot_moves(Vec::new(), |id| Event::IntentAbandoned {
            intent_id: id,
            reason: "superseded".to_owned(),
        }),
        vec![]
    );
    // And the counter counts them.
    let metrics = Metrics::new();
    metrics.observe_appended(
        &shop(),
        1,
        10,
        1,
        &[Note::SlotMove {
            outcome: MoveOutcome::Ambiguous,
        }],
    );
    assert!(has(
        &metrics.encode(Format::Prometheus),
        &moves("ambiguous", 1)
    ));
}
