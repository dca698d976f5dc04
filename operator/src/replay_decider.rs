//! This build's `decide` as the replay tool's decider: defined beside
//! the audit (`logbook_replay::this_build`), which depends on the core.

pub use logbook_replay::this_build::{OperatorDecider, build};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use logbook_journal::projection::reshard::MoveFailures;
    use logbook_journal::{Timestamp, projection::reshard::move_key};

    use logbook_replay::Decider;

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
