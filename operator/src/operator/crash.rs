//! Crash injection for the recovery tests: with
//! `LOGBOOK_CRASH_AT_COMMIT=<n>` in its environment the operator process
//! aborts (no cleanup, no flush, like a `kill -9`) at the n-th journal
//! commit point counted from its first decision:
//!
//! - `0`: just before the first commit that holds a `Decided` event (the
//!   decision is lost: nothing was acted on);
//! - `n ≥ 1`: just after the n-th commit counted from that one (the
//!   decision is durable, its intents may or may not have run).
//!
//! With `LOGBOOK_CRASH_COUNT_FROM=<intent>` too (an intent's name, as
//! `MoveSlots`), the count starts at the first decision holding such an
//! intent instead: a sweep reaches the commits of one operation without
//! crossing every commit that leads up to it (those are another sweep's).
//!
//! Unset (always, in production) it does nothing and costs one atomic
//! load per commit. A release build (the image's) ignores it, with a
//! warning: [`FAULTS_ARMABLE`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use logbook_journal::{Event, NewEvent};

/// The environment variable that arms crash injection.
pub const CRASH_AT_COMMIT: &str = "LOGBOOK_CRASH_AT_COMMIT";

/// The environment variable naming the intent whose first decision starts
/// the count (unset: any decision does).
pub const CRASH_COUNT_FROM: &str = "LOGBOOK_CRASH_COUNT_FROM";

/// Commits counted since the first decision (0 before it).
static COUNTED: AtomicU64 = AtomicU64::new(0);

pub use crate::effects::FAULTS_ARMABLE;

fn target() -> Option<u64> {
    static TARGET: OnceLock<Option<u64>> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let target = std::env::var(CRASH_AT_COMMIT)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        if target.is_some() && !FAULTS_ARMABLE {
            tracing::warn!("{CRASH_AT_COMMIT} is ignored: faults are injected by test builds only");
            return None;
        }
        target
    })
}

fn count_from() -> Option<&'static str> {
    static FROM: OnceLock<Option<String>> = OnceLock::new();
    FROM.get_or_init(|| {
        std::env::var(CRASH_COUNT_FROM)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
    .as_deref()
}

/// `decision`, or `MoveSlots decision` when the count starts at one.
fn counted_decision() -> String {
    count_from().map_or_else(|| "decision".to_owned(), |name| format!("{name} decision"))
}

fn crash(point: &str) {
    eprintln!("{CRASH_AT_COMMIT}: aborting {point}");
    std::process::abort();
}

/// Whether a batch holding a decision (`decision`) counts as one: any
/// does, unless [`CRASH_COUNT_FROM`] names an intent; then only one that
/// decides such an intent (once counting started, every commit counts
/// anyway). Unarmed, the batch is not looked at.
pub fn counts_as_decision(decision: bool, events: &[NewEvent]) -> bool {
    if !decision || target().is_none() {
        return decision;
    }
    decides(events, count_from())
}

/// Whether `events` decide an intent named `name` (any decision counts
/// without a name).
fn decides(events: &[NewEvent], name: Option<&str>) -> bool {
    let Some(name) = name else {
        return true;
    };
    events.iter().any(|e| match &e.body {
        Event::Decided { intents } => intents.iter().any(|p| p.intent.name() == name),
        _ => false,
    })
}

/// Called before every commit; `decision` when it holds a `Decided`.
pub fn before_commit(decision: bool) {
    if target() == Some(0) && decision && COUNTED.load(Ordering::SeqCst) == 0 {
        crash(&format!("before the first {}'s commit", counted_decision()));
    }
}

/// Called after every successful commit.
pub fn after_commit(decision: bool) {
    let Some(target) = target() else {
        return;
    };
    let counted = COUNTED.load(Ordering::SeqCst);
    if counted == 0 && !decision {
        return;
    }
    let now = COUNTED.fetch_add(1, Ordering::SeqCst).saturating_add(1);
    tracing::debug!(
        commit = now,
        crash_at = target,
        "crash injection: commit counted"
    );
    if now == target {
        crash(&format!(
            "after commit {now} since the first {}",
            counted_decision()
        ));
    }
}

#[cfg(test)]
mod tests {
    use logbook_journal::{Intent, PlannedIntent, Reason, ReasonCode, Timestamp};
    use uuid::Uuid;

    use super::*;

    fn decided(intents: Vec<Intent>) -> NewEvent {
        NewEvent {
            id: Uuid::now_v7(),
            at: Timestamp::now(),
            cause: None,
            body: Event::Decided {
                intents: intents
                    .into_iter()
                    .map(|intent| PlannedIntent {
                        intent_id: Uuid::now_v7(),
                        intent,
                        reason: Reason {
                            code: ReasonCode::StatusStale,
                            detail: String::new(),
                        },
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn the_count_starts_at_a_decision_of_the_named_intent_only() {
        let status = decided(vec![Intent::UpdateStatus]);
        let moves = decided(vec![
            Intent::UpdateStatus,
            Intent::MoveSlots {
                from: "demo-0".to_owned(),
                from_node: "a".repeat(40),
                to: "demo-6".to_owned(),
                to_node: "b".repeat(40),
                slots: Vec::new(),
            },
        ]);
        assert!(decides(std::slice::from_ref(&status), None));
        assert!(!decides(std::slice::from_ref(&status), Some("MoveSlots")));
        assert!(decides(&[status, moves], Some("MoveSlots")));
    }
}
