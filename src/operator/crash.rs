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
//! Unset (always, in production) it does nothing and costs one atomic
//! load per commit.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms crash injection.
pub const CRASH_AT_COMMIT: &str = "LOGBOOK_CRASH_AT_COMMIT";

/// Commits counted since the first decision (0 before it).
static COUNTED: AtomicU64 = AtomicU64::new(0);

fn target() -> Option<u64> {
    static TARGET: OnceLock<Option<u64>> = OnceLock::new();
    *TARGET.get_or_init(|| {
        std::env::var(CRASH_AT_COMMIT)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    })
}

fn crash(point: &str) {
    eprintln!("{CRASH_AT_COMMIT}: aborting {point}");
    std::process::abort();
}

/// Called before every commit; `decision` when it holds a `Decided`.
pub fn before_commit(decision: bool) {
    if target() == Some(0) && decision && COUNTED.load(Ordering::SeqCst) == 0 {
        crash("before the first decision's commit");
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
    if now == target {
        crash(&format!("after commit {now} since the first decision"));
    }
}
