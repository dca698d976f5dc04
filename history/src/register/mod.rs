//! The register checker: is each key's history of `SET`s and `GET`s
//! linearizable, as Knossos and Porcupine ask?
//!
//! Registers are independent, so the history is partitioned by key and
//! each key searched alone (`search`). This module prepares one key's
//! operations for the search (a failed operation did not happen; an
//! unknown read constrains nothing; an unknown write may happen at any
//! time after its invocation, or never), catches the reads no search is
//! needed to condemn, and words the verdict (`verdict`).

mod search;
mod verdict;

use std::collections::BTreeMap;

use crate::op::{Function, History, Nanos, OpId, Outcome, Returned};
use crate::report::OpCounts;
use search::{Action, Entry, Found};

pub use verdict::{KeyVerdict, Prefix, RegisterReport, Verdict, Violation};

/// The default bound on configurations entered per key.
pub const DEFAULT_MAX_STATES: usize = 1_000_000;

/// How hard the checker may try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterConfig {
    /// Configurations (set of linearized operations, register value) the
    /// search may enter per key before it gives up with
    /// [`Verdict::Unknown`]. Memory grows with it: each remembered
    /// configuration holds one bit per operation of the key.
    pub max_states: usize,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        Self {
            max_states: DEFAULT_MAX_STATES,
        }
    }
}

/// Checks the linearizability of every register in `history`, one key at
/// a time. List operations are counted as ignored.
///
/// # Guarantees
///
/// A key is [`Verdict::Linearizable`] only when an order was found, and
/// [`Verdict::Illegal`] only when none exists; a search that hit the bound
/// says [`Verdict::Unknown`] and how far it got.
pub fn check_registers(history: &History, config: &RegisterConfig) -> RegisterReport {
    let counts = OpCounts::of(history.ops().iter(), |f| !f.is_list());
    let mut keys: BTreeMap<&str, KeyOps> = BTreeMap::new();
    for (id, op) in history.iter() {
        let (key, action) = match (&op.f, &op.outcome) {
            (Function::Write { key, value }, _) => (key, Action::Write(*value)),
            (Function::ReadRegister { key }, Outcome::Ok(Returned::Register(seen))) => {
                (key, Action::Read(*seen))
            }
            (Function::ReadRegister { key }, _) => (key, Action::Read(None)),
            (Function::Append { .. } | Function::ReadList { .. }, _) => continue,
        };
        let ops = keys.entry(key).or_default();
        let completed = match (&op.outcome, op.completed_at) {
            (Outcome::Ok(_), Some(at)) => Some(at),
            (Outcome::Fail(_), _) => {
                ops.dropped = ops.dropped.saturating_add(1);
                if let Action::Write(value) = action {
                    ops.failed_writes.push((id, value));
                }
                continue;
            }
            (Outcome::Ok(_) | Outcome::Unknown(_), _) => None,
        };
        if completed.is_none() && matches!(action, Action::Read(_)) {
            // An unknown read returned nothing: it constrains nothing.
            ops.dropped = ops.dropped.saturating_add(1);
            continue;
        }
        ops.entries.push(Entry {
            id,
            action,
            invoked: op.invoked_at,
            completed: completed.unwrap_or(Nanos::MAX),
            definite: completed.is_some(),
        });
    }
    let keys = keys
        .into_iter()
        .map(|(key, ops)| check_key(key, &ops, config))
        .collect();
    RegisterReport { counts, keys }
}

/// One key's operations, ready for the search.
#[derive(Debug, Default)]
struct KeyOps {
    entries: Vec<Entry>,
    /// Failed and unknown-read operations, left out.
    dropped: usize,
    /// Failed writes, to explain a read of a value only they carried.
    failed_writes: Vec<(OpId, u64)>,
}

fn check_key(key: &str, ops: &KeyOps, config: &RegisterConfig) -> KeyVerdict {
    let base = KeyVerdict {
        key: key.to_owned(),
        considered: ops.entries.len(),
        dropped: ops.dropped,
        explored: 0,
        verdict: Verdict::Linearizable,
    };
    if let Some(violation) = verdict::impossible_read(&ops.entries, &ops.failed_writes) {
        return KeyVerdict {
            verdict: Verdict::Illegal(violation),
            ..base
        };
    }
    match search::search(&ops.entries, config.max_states) {
        Found::Linearizable { explored } => KeyVerdict { explored, ..base },
        Found::Exhausted { explored, deepest } => KeyVerdict {
            explored,
            verdict: Verdict::Unknown {
                deepest,
                definite: ops.entries.iter().filter(|e| e.definite).count(),
            },
            ..base
        },
        Found::Illegal {
            explored,
            deepest,
            register,
        } => KeyVerdict {
            explored,
            verdict: verdict::explain(&ops.entries, &deepest, register),
            ..base
        },
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::given::Given;

    fn verdict_of(g: &Given) -> Verdict {
        let report = g.check_registers();
        assert_eq!(report.keys.len(), 1, "{report:#?}");
        report.keys[0].verdict.clone()
    }

    #[test]
    fn sequential_write_then_read_is_linearizable() {
        let mut g = Given::new();
        g.register_read("r", None, 0, 1);
        g.register_write("r", 1, 2, 3);
        g.register_read("r", Some(1), 4, 5);
        g.register_write("r", 2, 6, 7);
        g.register_read("r", Some(2), 8, 9);
        let report = g.check_registers();
        assert!(report.valid(), "{report:#?}");
        assert_eq!(report.counts.reads, 3);
        assert_eq!(report.counts.writes, 2);
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for seen in [Some(1), Some(2)] {
            let mut g = Given::new();
            g.register_write("r", 1, 0, 1);
            g.register_write("r", 2, 10, 20);
            g.register_read("r", seen, 12, 18);
            assert_eq!(verdict_of(&g), Verdict::Linearizable, "{seen:?}");
        }
    }

    #[test]
    fn a_read_before_its_write_was_invoked_is_illegal() {
        let mut g = Given::new();
        let read = g.register_read("r", Some(1), 0, 5);
        let write = g.register_write("r", 1, 10, 20);
        let Verdict::Illegal(violation) = verdict_of(&g) else {
            panic!("expected illegal");
        };
        assert_eq!(violation.op, read);
        assert!(
            violation
                .explanation
                .contains(&format!("write of 1, {write}, was invoked")),
            "{violation:?}"
        );
        assert!(violation.concurrent.is_empty());
        assert!(violation.prefix.is_none());
    }

    #[test]
    fn a_value_never_written_is_illegal_and_a_failed_write_is_named() {
        let mut g = Given::new();
        let failed = g.register_write_failed("r", 7, 0, 5);
        let read = g.register_read("r", Some(7), 6, 8);
        let Verdict::Illegal(violation) = verdict_of(&g) else {
            panic!("expected illegal");
        };
        assert_eq!(violation.op, read);
        assert!(violation.explanation.contains(&failed.to_string()));
    }

    #[test]
    fn new_then_old_in_sequence_is_illegal_with_the_point_of_failure() {
        let mut g = Given::new();
        let w1 = g.register_write("r", 1, 0, 10);
        let w2 = g.register_write("r", 2, 5, 15);
        let r1 = g.register_read("r", Some(2), 20, 25);
        let r2 = g.register_read("r", Some(1), 30, 35);
        let Verdict::Illegal(violation) = verdict_of(&g) else {
            panic!("expected illegal");
        };
        assert_eq!(violation.op, r2);
        let prefix = violation.prefix.clone().expect("found by search");
        assert_eq!(prefix.ops, vec![w1, w2, r1]);
        assert_eq!(prefix.register, Some(2));
        assert!(violation.explanation.contains("return 1"), "{violation:?}");
        assert!(
            violation.explanation.contains(&format!(
                "write {w1} of 1 is in the prefix, overwritten since by write {w2}"
            )),
            "{violation:?}"
        );
    }

    #[test]
    fn concurrent_reads_may_not_disagree_on_the_order() {
        // Write 1 then 2 concurrently with two readers; reader A sees 2
        // then 1, reader B sees 1 then 2 (each reader sequential): the
        // register cannot have gone both ways.
        let mut g = Given::new();
        g.register_write("r", 1, 0, 100);
        g.register_write("r", 2, 0, 100);
        g.register_read("r", Some(2), 10, 20);
        g.register_read("r", Some(1), 30, 40);
        g.register_read("r", Some(1), 10, 20);
        g.register_read("r", Some(2), 30, 40);
        assert!(matches!(verdict_of(&g), Verdict::Illegal(_)));
    }

    #[test]
    fn unknown_writes_may_or_may_not_take_effect() {
        let mut g = Given::new();
        g.register_write("r", 1, 0, 5);
        g.register_write_unknown("r", 2, 6);
        g.register_read("r", Some(2), 10, 12);
        assert_eq!(verdict_of(&g), Verdict::Linearizable);

        let mut g = Given::new();
        g.register_write("r", 1, 0, 5);
        g.register_write_unknown("r", 2, 6);
        g.register_read("r", Some(1), 10, 12);
        g.register_read("r", Some(1), 20, 22);
        assert_eq!(verdict_of(&g), Verdict::Linearizable);

        // It took effect late, long after the client gave up.
        let mut g = Given::new();
        g.register_write("r", 1, 0, 5);
        g.register_write_unknown("r", 2, 6);
        g.register_read("r", Some(1), 100, 120);
        g.register_read("r", Some(2), 1_000, 1_200);
        assert_eq!(verdict_of(&g), Verdict::Linearizable);

        // But not before it was invoked.
        let mut g = Given::new();
        g.register_write("r", 1, 0, 5);
        g.register_read("r", Some(2), 6, 7);
        g.register_write_unknown("r", 2, 10);
        assert!(matches!(verdict_of(&g), Verdict::Illegal(_)));
    }

    #[test]
    fn unknown_and_failed_ops_are_dropped() {
        let mut g = Given::new();
        g.register_write("r", 1, 0, 5);
        g.register_write_failed("r", 2, 6, 7);
        g.register_read_unknown("r", 8);
        g.register_read("r", Some(1), 10, 12);
        let report = g.check_registers();
        assert!(report.valid());
        assert_eq!(report.keys[0].dropped, 2);
        assert_eq!(report.keys[0].considered, 2);
        assert_eq!(report.counts.fail, 1);
        assert_eq!(report.counts.unknown, 1);
    }

    #[test]
    fn keys_are_independent() {
        let mut g = Given::new();
        g.register_write("a", 1, 0, 5);
        g.register_write("b", 2, 0, 5);
        g.register_read("a", Some(1), 6, 7);
        g.register_read("b", Some(1), 6, 7);
        g.append("list", 3, 0, 1);
        let report = g.check_registers();
        assert_eq!(report.counts.ignored, 1);
        assert_eq!(report.keys.len(), 2);
        assert_eq!(report.keys[0].verdict, Verdict::Linearizable);
        assert!(matches!(report.keys[1].verdict, Verdict::Illegal(_)));
        assert_eq!(report.illegal().count(), 1);
    }

    #[test]
    fn the_bound_gives_unknown_never_linearizable() {
        let mut g = Given::new();
        for i in 0..10 {
            g.register_write("r", i, i * 10, i * 10 + 5);
            g.register_read("r", Some(i), i * 10 + 6, i * 10 + 8);
        }
        let history = g.history();
        let report = check_registers(&history, &RegisterConfig { max_states: 5 });
        assert!(!report.valid());
        assert_eq!(report.undecided().count(), 1);
        let key = &report.keys[0];
        assert_eq!(key.explored, 5);
        assert_eq!(
            key.verdict,
            Verdict::Unknown {
                deepest: 5,
                definite: 20
            }
        );
        assert!(check_registers(&history, &RegisterConfig::default()).valid());
    }
}
