//! This build's `decide` as the replay tool's [`Decider`]: the determinism
//! audit and the HTML export recompute every journaled decision with it
//! (and the audit every place where none is journaled, and what a takeover
//! found done), and exports name the build that wrote them. Shared by `logbook replay`
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

    fn already_done(&self, state: &ClusterState, intent: &Intent) -> Option<String> {
        crate::decide::already_done(state, intent)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use logbook_journal::projection::reshard::MoveFailures;
    use logbook_journal::{Timestamp, projection::reshard::move_key};

    use super::*;
    use crate::metrics::fixture::{Fixture, node};

    #[test]
    fn a_reshard_is_given_up_exactly_when_this_builds_status_says_failing() {
        let given_up = OperatorDecider.reshard_given_up().unwrap();
        let mut state = Fixture::formed().state;
        assert!(!given_up(&state));
        let mut failing = |same_error| {
            state.reshard.failures.insert(
                move_key(&node(0, 0), &node(1, 0)),
                MoveFailures {
                    count: same_error,
                    same_error,
                    last_error: "ERR".to_owned(),
                    last_at: Timestamp(0),
                },
            );
            given_up(&state)
        };
        assert!(!failing(1));
        assert!(failing(5));
    }
}
