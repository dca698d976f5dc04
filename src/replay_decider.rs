//! This build's `decide` as the replay tool's [`Decider`]: the determinism
//! audit and the HTML export recompute every journaled decision with it,
//! and exports name the build that wrote them. Shared by `logbook replay`
//! (and `kubectl valkey replay` through it) and the replay bench.
//!
//! It only adapts; it decides nothing of its own.

use logbook_journal::{ClusterState, Intent, Policy, Reason, Timestamp};
use logbook_replay::Decider;

/// `decide` of this build, for the audit.
pub struct OperatorDecider;

impl Decider for OperatorDecider {
    fn decide(
        &self,
        state: &ClusterState,
        now: Timestamp,
        policy: &Policy,
    ) -> Vec<(Intent, Reason)> {
        crate::decide::decide(state, now, policy)
            .into_iter()
            .map(|d| (d.intent, d.reason))
            .collect()
    }

    fn build(&self) -> String {
        build()
    }

    fn reshard_given_up(&self) -> Option<logbook_replay::reshards::GivenUp> {
        Some(reshard_given_up)
    }
}

/// Whether this build would publish the reshard of `state` as given up:
/// `status.reshard.phase` `Failing` (a move failed with the same error as
/// often as `decide` allows).
fn reshard_given_up(state: &ClusterState) -> bool {
    let ctx = crate::decide::status::StatusContext {
        name: "",
        namespace: "",
        backend: "",
    };
    crate::decide::status::render_status(state, &ctx)
        .reshard
        .is_some_and(|r| r.phase == "Failing")
}

/// This build, as exports and audits name it: `logbook <version>`.
#[must_use]
pub fn build() -> String {
    format!("logbook {}", env!("CARGO_PKG_VERSION"))
}
