//! What the register checker hands back, and how a failure is explained.
//!
//! A bare "not linearizable" does not help whoever must find the bug, so an
//! illegal key names the operation no order could place, the longest order
//! the search did find, the register's value after it, and the operations
//! that could still have come first. Reads that no search is needed to
//! condemn (a value never written, or read before its write began) are
//! caught here before searching, with a plainer explanation.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::search::{Action, Entry};
use crate::op::OpId;
use crate::report::{OpCounts, human_nanos};

/// The register checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterReport {
    /// The operations looked at.
    pub counts: OpCounts,
    /// One verdict per key, by key.
    pub keys: Vec<KeyVerdict>,
}

impl RegisterReport {
    /// Every key was proved linearizable. False when any key is illegal
    /// or its search hit the bound.
    pub fn valid(&self) -> bool {
        self.keys
            .iter()
            .all(|k| matches!(k.verdict, Verdict::Linearizable))
    }

    /// The keys proved not linearizable.
    pub fn illegal(&self) -> impl Iterator<Item = &KeyVerdict> {
        self.keys
            .iter()
            .filter(|k| matches!(k.verdict, Verdict::Illegal(_)))
    }

    /// The keys whose search hit the bound.
    pub fn undecided(&self) -> impl Iterator<Item = &KeyVerdict> {
        self.keys
            .iter()
            .filter(|k| matches!(k.verdict, Verdict::Unknown { .. }))
    }
}

/// The verdict on one register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVerdict {
    /// The register.
    pub key: String,
    /// Operations the search considered (`Ok` ones and unknown writes).
    pub considered: usize,
    /// Operations left out: failed ones and unknown reads.
    pub dropped: usize,
    /// Configurations the search entered.
    pub explored: usize,
    /// The verdict.
    pub verdict: Verdict,
}

/// Whether one register's history is linearizable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// An order consistent with real time exists in which every read
    /// returns the latest write.
    Linearizable,
    /// No such order exists.
    Illegal(Violation),
    /// The search hit its bound first: nothing is claimed.
    Unknown {
        /// Operations in the longest order placed before stopping.
        deepest: usize,
        /// Operations that had to be placed (`Ok` ones).
        definite: usize,
    },
}

/// Why a register is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The operation no order could place: usually a read of a value no
    /// order allows at that point.
    pub op: OpId,
    /// One line for a human.
    pub explanation: String,
    /// The longest order found, when a search found the violation (`None`
    /// when the read was condemned without one).
    pub prefix: Option<Prefix>,
    /// Operations outside the prefix that overlap `op` or were invoked
    /// before it completed: those that could have come before it.
    pub concurrent: Vec<OpId>,
}

/// The longest linearizable order the search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefix {
    /// The operations, in linearization order.
    pub ops: Vec<OpId>,
    /// The register after them (`None`: never written).
    pub register: Option<u64>,
}

/// The first read (by invocation) whose value no order can explain,
/// whatever the other operations: nothing wrote it, or everything that did
/// began after the read ended.
pub(super) fn impossible_read(
    entries: &[Entry],
    failed_writes: &[(OpId, u64)],
) -> Option<Violation> {
    let mut reads: Vec<(&Entry, u64)> = entries
        .iter()
        .filter(|e| e.definite)
        .filter_map(|e| match e.action {
            Action::Read(Some(value)) => Some((e, value)),
            Action::Read(None) | Action::Write(_) => None,
        })
        .collect();
    reads.sort_by_key(|(e, _)| (e.invoked, e.id));
    for (read, value) in reads {
        let first_write = entries
            .iter()
            .filter(|e| e.action == Action::Write(value))
            .min_by_key(|e| (e.invoked, e.id));
        let explanation = match first_write {
            None => {
                let failed: Vec<String> = failed_writes
                    .iter()
                    .filter(|(_, v)| *v == value)
                    .map(|(id, _)| id.to_string())
                    .collect();
                if failed.is_empty() {
                    format!(
                        "read {} returned {value}, but no write of {value} was invoked on this key",
                        read.id
                    )
                } else {
                    format!(
                        "read {} returned {value}, but only the failed write(s) {} carried it",
                        read.id,
                        failed.join(", ")
                    )
                }
            }
            Some(write) if write.invoked > read.completed => format!(
                "read {} returned {value} and completed {} before the first write of {value}, {}, was invoked",
                read.id,
                human_nanos(write.invoked.saturating_sub(read.completed)),
                write.id
            ),
            Some(_) => continue,
        };
        let concurrent = entries
            .iter()
            .filter(|e| {
                e.id != read.id && e.invoked <= read.completed && e.completed >= read.invoked
            })
            .map(|e| e.id)
            .collect();
        return Some(Violation {
            op: read.id,
            explanation,
            prefix: None,
            concurrent,
        });
    }
    None
}

/// Words the failure of a search whose longest order was `deepest`
/// (indices into `entries`), leaving the register at `register`.
///
/// The operation reported is the unplaced `Ok` one that completes first:
/// every order extending the prefix must place it before anything invoked
/// after its completion, and none could.
pub(super) fn explain(entries: &[Entry], deepest: &[usize], register: Option<u64>) -> Verdict {
    let placed: HashSet<usize> = deepest.iter().copied().collect();
    let prefix = Prefix {
        ops: deepest
            .iter()
            .filter_map(|i| entries.get(*i).map(|e| e.id))
            .collect(),
        register,
    };
    let blocking = entries
        .iter()
        .enumerate()
        .filter(|(i, e)| e.definite && !placed.contains(i))
        .min_by_key(|(_, e)| (e.completed, e.invoked, e.id));
    let Some((blocking_index, blocking)) = blocking else {
        // Unreachable when the search is right (all definite placed means
        // linearizable); still not a reason to claim linearizability.
        return Verdict::Illegal(Violation {
            op: prefix.ops.last().copied().unwrap_or(OpId(0)),
            explanation: "the search found no linearization".to_owned(),
            prefix: Some(prefix),
            concurrent: Vec::new(),
        });
    };
    let concurrent: Vec<OpId> = entries
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            *i != blocking_index && !placed.contains(i) && e.invoked <= blocking.completed
        })
        .map(|(_, e)| e.id)
        .collect();
    let what = match blocking.action {
        Action::Read(seen) => format!("lets read {} return {}", blocking.id, shown(seen)),
        Action::Write(value) => format!("places write {} of {value}", blocking.id),
    };
    let source = match blocking.action {
        Action::Read(Some(value)) => source_of(entries, deepest, &placed, value),
        Action::Read(None) | Action::Write(_) => String::new(),
    };
    let explanation = format!(
        "no linearization {what}: the longest linearizable prefix places {} of {} operations and leaves the register {}; {} other operation(s) could still come before it{source}",
        prefix.ops.len(),
        entries.len(),
        match register {
            Some(value) => format!("at {value}"),
            None => "unwritten".to_owned(),
        },
        concurrent.len()
    );
    Verdict::Illegal(Violation {
        op: blocking.id,
        explanation,
        prefix: Some(prefix),
        concurrent,
    })
}

/// Where the value a failing read returned came from: its write already
/// placed and overwritten, or a write the search could not place in time.
fn source_of(entries: &[Entry], deepest: &[usize], placed: &HashSet<usize>, value: u64) -> String {
    let Some((index, write)) = entries
        .iter()
        .enumerate()
        .find(|(_, e)| e.action == Action::Write(value))
    else {
        return String::new();
    };
    if !placed.contains(&index) {
        return format!("; write {} of {value} is not in the prefix", write.id);
    }
    let overwritten_by = deepest
        .iter()
        .rev()
        .filter_map(|i| entries.get(*i))
        .find(|e| matches!(e.action, Action::Write(_)))
        .filter(|last| last.id != write.id);
    match overwritten_by {
        Some(last) => format!(
            "; write {} of {value} is in the prefix, overwritten since by write {}",
            write.id, last.id
        ),
        None => format!("; write {} of {value} is in the prefix", write.id),
    }
}

fn shown(value: Option<u64>) -> String {
    match value {
        Some(value) => value.to_string(),
        None => "nothing".to_owned(),
    }
}
