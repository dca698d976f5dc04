//! This build's `decide` as the replay tool's [`Decider`]: the
//! determinism audit and the HTML export recompute every journaled
//! decision with it (and the audit every place where none is journaled,
//! and what a takeover found done), and exports name the build that
//! wrote them. That the audit reruns this build's decisions is a Cargo
//! fact: replay depends on the core itself. Shared by `logbook replay`
//! (and `kubectl valkey replay` through it) and the replay bench.
//!
//! It only adapts; it decides nothing of its own.

use crate::Decider;
use logbook_journal::{ClusterState, Intent, Policy, Reason, Timestamp};

/// `decide` of this build, for the audit.
pub struct OperatorDecider;

impl Decider for OperatorDecider {
    fn decide(
        &self,
        state: &ClusterState,
        now: Timestamp,
        policy: &Policy,
    ) -> Vec<(Intent, Reason)> {
        logbook_core::decide::decide(state, now, policy)
            .into_iter()
            .map(|d| (d.intent, d.reason))
            .collect()
    }

    fn build(&self) -> String {
        build()
    }

    fn already_done(&self, state: &ClusterState, intent: &Intent) -> Option<String> {
        logbook_core::decide::already_done(state, intent)
    }

    fn reshard_given_up(&self) -> Option<crate::reshards::GivenUp> {
        Some(reshard_given_up)
    }
}

/// Whether this build would publish the reshard of `state` as given up:
/// `status.reshard.phase` `Failing` (a move failed with the same error as
/// often as `decide` allows).
fn reshard_given_up(state: &ClusterState) -> bool {
    let ctx = logbook_core::decide::status::StatusContext {
        name: "",
        namespace: "",
        backend: "",
    };
    logbook_core::decide::status::render_status(state, &ctx)
        .reshard
        .is_some_and(|r| r.phase == "Failing")
}

/// This build, as exports and audits name it: `logbook <version>`.
#[must_use]
pub fn build() -> String {
    format!("logbook {}", env!("CARGO_PKG_VERSION"))
}
