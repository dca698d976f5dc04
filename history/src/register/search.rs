//! The linearizability search over one register's operations: a
//! depth-first search in the manner of Wing and Gong, pruned as Lowe
//! proposed by remembering every (set of linearized operations, register
//! value) configuration already entered.
//!
//! Two configurations with the same linearized set and the same value have
//! the same futures, so a configuration is explored at most once, which
//! turns an exponential search over interleavings into one bounded by the
//! distinct configurations. This module knows nothing of keys, histories or
//! explanations; `register` prepares the entries and words the verdict.

use std::collections::HashSet;

use crate::op::{Nanos, OpId};

/// What an entry does to the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Sets the value.
    Write(u64),
    /// Observed this value.
    Read(Option<u64>),
}

/// One operation as the search sees it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: OpId,
    pub(crate) action: Action,
    pub(crate) invoked: Nanos,
    /// `Nanos::MAX` for an operation whose outcome is unknown: it may take
    /// effect at any time after its invocation.
    pub(crate) completed: Nanos,
    /// Must be linearized. An unknown write need not: one that never
    /// happened is indistinguishable from one placed after every read.
    pub(crate) definite: bool,
}

impl Entry {
    /// The register after this entry, if it can take effect on `state`.
    fn step(&self, state: Option<u64>) -> Option<Option<u64>> {
        match self.action {
            Action::Write(value) => Some(Some(value)),
            Action::Read(seen) => (seen == state).then_some(state),
        }
    }
}

/// How the search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Every definite entry was placed in an order real time allows.
    Linearizable {
        /// Configurations entered.
        explored: usize,
    },
    /// Every configuration was tried; none placed all definite entries.
    Illegal {
        /// Configurations entered.
        explored: usize,
        /// The longest order placed (indices into the entries).
        deepest: Vec<usize>,
        /// The register after it.
        register: Option<u64>,
    },
    /// The bound on configurations was reached first.
    Exhausted {
        /// Configurations entered (the bound).
        explored: usize,
        /// Length of the longest order placed.
        deepest: usize,
    },
}

/// A fixed-size set of entry indices, hashable for the memo.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize, on: bool) {
        if let Some(word) = self.0.get_mut(i / 64) {
            let mask = 1u64 << (i % 64);
            if on {
                *word |= mask;
            } else {
                *word &= !mask;
            }
        }
    }

    fn contains(&self, i: usize) -> bool {
        self.0
            .get(i / 64)
            .is_some_and(|word| word & (1u64 << (i % 64)) != 0)
    }
}

/// One level of the depth-first search: which candidate to try next.
#[derive(Debug)]
struct Frame {
    /// Position in the candidate order.
    cursor: usize,
    /// The earliest completion among entries not yet placed: an entry
    /// invoked after it cannot come next, since that entry must precede it.
    horizon: Nanos,
}

/// One placed entry and the register before it, to undo on backtrack.
#[derive(Debug)]
struct Placed {
    entry: usize,
    before: Option<u64>,
}

/// Searches for a linearization of `entries`, from an absent register,
/// entering at most `max_states` configurations.
///
/// # Guarantees
///
/// `Linearizable` and `Illegal` are exact; `Exhausted` claims nothing.
pub(crate) fn search(entries: &[Entry], max_states: usize) -> Found {
    // Definite entries first: an unknown write is only worth placing when a
    // read needs its value, and trying it last finds that out with the
    // fewest detours. Within each group, by invocation.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| {
        entries
            .get(i)
            .map(|e| (!e.definite, e.invoked, e.id))
            .unwrap_or((true, Nanos::MAX, OpId(usize::MAX)))
    });
    let mut remaining = entries.iter().filter(|e| e.definite).count();
    let mut placed_set = Bits::new(entries.len());
    let mut register: Option<u64> = None;
    let mut path: Vec<Placed> = Vec::new();
    let mut memo: HashSet<(Bits, Option<u64>)> = HashSet::new();
    let mut explored = 0usize;
    let mut deepest: Vec<usize> = Vec::new();
    let mut deepest_register: Option<u64> = None;
    let mut frames = vec![frame(entries, &placed_set)];

    loop {
        if remaining == 0 {
            return Found::Linearizable { explored };
        }
        let Some(top) = frames.last_mut() else {
            return Found::Illegal {
                explored,
                deepest,
                register: deepest_register,
            };
        };
        let mut advanced = false;
        while let Some(&i) = order.get(top.cursor) {
            top.cursor = top.cursor.saturating_add(1);
            let Some(entry) = entries.get(i) else {
                continue;
            };
            if placed_set.contains(i) || entry.invoked > top.horizon {
                continue;
            }
            let Some(after) = entry.step(register) else {
                continue;
            };
            placed_set.set(i, true);
            if !memo.insert((placed_set.clone(), after)) {
                // Entered before, from another order: its futures are known
                // to fail (or we would have returned).
                placed_set.set(i, false);
                continue;
            }
            if explored >= max_states {
                return Found::Exhausted {
                    explored,
                    deepest: deepest.len(),
                };
            }
            explored = explored.saturating_add(1);
            path.push(Placed {
                entry: i,
                before: register,
            });
            register = after;
            if entry.definite {
                remaining = remaining.saturating_sub(1);
            }
            if path.len() > deepest.len() {
                deepest = path.iter().map(|p| p.entry).collect();
                deepest_register = register;
            }
            advanced = true;
            break;
        }
        if advanced {
            frames.push(frame(entries, &placed_set));
            continue;
        }
        // Every candidate at this level failed: undo the entry that led
        // here and try the next candidate one level up.
        frames.pop();
        if let Some(undone) = path.pop() {
            placed_set.set(undone.entry, false);
            register = undone.before;
            if entries.get(undone.entry).is_some_and(|e| e.definite) {
                remaining = remaining.saturating_add(1);
            }
        }
    }
}

fn frame(entries: &[Entry], placed: &Bits) -> Frame {
    let horizon = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !placed.contains(*i))
        .map(|(_, e)| e.completed)
        .min()
        .unwrap_or(Nanos::MAX);
    Frame { cursor: 0, horizon }
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

    fn entry(i: usize, action: Action, invoked: Nanos, completed: Option<Nanos>) -> Entry {
        Entry {
            id: OpId(i),
            action,
            invoked,
            completed: completed.unwrap_or(Nanos::MAX),
            definite: completed.is_some(),
        }
    }

    #[test]
    fn bits_set_and_clear_across_words() {
        let mut bits = Bits::new(130);
        bits.set(129, true);
        bits.set(3, true);
        assert!(bits.contains(129) && bits.contains(3) && !bits.contains(64));
        bits.set(129, false);
        assert!(!bits.contains(129));
        assert!(!bits.contains(1_000));
    }

    #[test]
    fn the_memo_keeps_many_concurrent_writes_cheap() {
        // 12 fully concurrent writes then a read of the first: without the
        // memo the permutations (12! of them) would be tried; with it, at
        // most each subset once per last value.
        let mut entries: Vec<Entry> = (0..12)
            .map(|i| entry(i, Action::Write(i as u64), 0, Some(100)))
            .collect();
        entries.push(entry(12, Action::Read(Some(0)), 101, Some(102)));
        match search(&entries, 1_000_000) {
            Found::Linearizable { explored } => assert!(explored <= 12 << 12, "{explored}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_impossible_read_exhausts_the_configurations() {
        let entries = vec![
            entry(0, Action::Write(1), 0, Some(10)),
            entry(1, Action::Write(2), 0, Some(10)),
            entry(2, Action::Read(Some(3)), 11, Some(12)),
        ];
        match search(&entries, 1_000) {
            Found::Illegal {
                deepest, register, ..
            } => {
                assert_eq!(deepest.len(), 2);
                assert!(register.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}
