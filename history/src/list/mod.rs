//! The list-append checker: Elle's list-append analysis, specialised to
//! one key at a time and to values unique across the history.
//!
//! Every append carries a value no other append uses, so each value in a
//! read names the one append that put it there, and a read is a direct
//! view of the list's order. The checker groups the list operations by key
//! and runs, per key, the concerns below in this order, one file each:
//!
//! - `contents`: what one read holds on its own (`Duplicate`, `Phantom`,
//!   `AbortedRead`).
//! - `order`: how reads relate to each other and to real time
//!   (`Reordered`, `Shrunk`, `RealTimeOrder`).
//! - `loss`: what acknowledged appends became (`LostAppend`, `StaleRead`).
//!
//! It never decides an `Unknown` append's fate: its value may appear or
//! not. Register operations in the same history are counted as ignored.

mod contents;
mod loss;
mod order;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::op::{Function, History, Nanos, OpId, Outcome};
use crate::report::{Anomaly, AnomalyKind, KeySummary, ListReport, OpCounts};

/// Checks every list in `history` and reports each anomaly found.
///
/// # Guarantees
///
/// Total: any validated history gives a report. Lost appends are only
/// judged against a read that began after the append was acknowledged;
/// what no read could judge is counted in [`KeySummary::final_read`].
pub fn check_list(history: &History) -> ListReport {
    let counts = OpCounts::of(history.ops().iter(), Function::is_list);
    let (keys, owners) = group(history);
    let mut anomalies = Vec::new();
    let mut summaries = Vec::with_capacity(keys.len());
    for ops in keys.values() {
        contents::check(ops, &owners, &mut anomalies);
        order::reordered(ops, &mut anomalies);
        order::shrunk(ops, &mut anomalies);
        order::real_time(ops, &mut anomalies);
        let final_read = loss::lost_appends(ops, &mut anomalies);
        loss::stale_reads(ops, &mut anomalies);
        summaries.push(KeySummary {
            key: ops.key.to_owned(),
            appends: ops.appends.len(),
            acknowledged: ops.appends.iter().filter(|a| a.acked().is_some()).count(),
            reads: ops.reads.len(),
            final_read,
        });
    }
    ListReport::new(counts, summaries, anomalies)
}

/// How an append ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendStatus {
    /// Acknowledged at this time.
    Acknowledged(Nanos),
    /// Refused: it did not happen.
    Failed,
    /// May have happened, at any time after its invocation.
    Unknown,
}

/// One append of a key.
#[derive(Debug, Clone)]
pub(crate) struct Append {
    pub(crate) id: OpId,
    pub(crate) value: u64,
    pub(crate) invoked: Nanos,
    pub(crate) status: AppendStatus,
}

impl Append {
    /// When it was acknowledged, if it was.
    pub(crate) fn acked(&self) -> Option<Nanos> {
        match self.status {
            AppendStatus::Acknowledged(at) => Some(at),
            AppendStatus::Failed | AppendStatus::Unknown => None,
        }
    }
}

/// One `Ok` read of a key.
#[derive(Debug, Clone)]
pub(crate) struct Read<'h> {
    pub(crate) id: OpId,
    pub(crate) invoked: Nanos,
    pub(crate) completed: Nanos,
    pub(crate) values: &'h [u64],
    pub(crate) set: HashSet<u64>,
}

/// A key's operations, ready for the checks.
#[derive(Debug, Clone)]
pub(crate) struct KeyOps<'h> {
    pub(crate) key: &'h str,
    /// In history order.
    pub(crate) appends: Vec<Append>,
    /// By invocation time, then id.
    pub(crate) reads: Vec<Read<'h>>,
    /// Value to its index in `appends`.
    pub(crate) by_value: HashMap<u64, usize>,
}

impl KeyOps<'_> {
    /// The append of this key that carried `value`.
    pub(crate) fn append_of(&self, value: u64) -> Option<&Append> {
        self.by_value.get(&value).and_then(|i| self.appends.get(*i))
    }
}

/// Every value appended anywhere: its key and append. A value read on one
/// key but appended to another is a phantom there, and the report says
/// where it came from.
pub(crate) type Owners<'h> = HashMap<u64, (&'h str, OpId)>;

/// Groups list operations by key. Failed and unknown reads are dropped:
/// they returned nothing to judge.
fn group(history: &History) -> (BTreeMap<&str, KeyOps<'_>>, Owners<'_>) {
    let mut keys: BTreeMap<&str, KeyOps<'_>> = BTreeMap::new();
    let mut owners = Owners::new();
    for (id, op) in history.iter() {
        if !op.f.is_list() {
            continue;
        }
        let key = op.f.key();
        let entry = keys.entry(key).or_insert_with(|| KeyOps {
            key,
            appends: Vec::new(),
            reads: Vec::new(),
            by_value: HashMap::new(),
        });
        match (&op.f, &op.outcome) {
            (Function::Append { value, .. }, outcome) => {
                let status = match (outcome, op.completed_at) {
                    (Outcome::Ok(_), Some(at)) => AppendStatus::Acknowledged(at),
                    (Outcome::Fail(_), _) => AppendStatus::Failed,
                    // `Ok` without a completion cannot pass validation;
                    // were it here, not knowing when is not knowing.
                    (Outcome::Ok(_) | Outcome::Unknown(_), _) => AppendStatus::Unknown,
                };
                owners.insert(*value, (key, id));
                entry.by_value.insert(*value, entry.appends.len());
                entry.appends.push(Append {
                    id,
                    value: *value,
                    invoked: op.invoked_at,
                    status,
                });
            }
            (Function::ReadList { .. }, _) => {
                if let (Some(values), Some(completed)) = (op.ok_list(), op.completed_at) {
                    entry.reads.push(Read {
                        id,
                        invoked: op.invoked_at,
                        completed,
                        values,
                        set: values.iter().copied().collect(),
                    });
                }
            }
            (Function::Write { .. } | Function::ReadRegister { .. }, _) => {}
        }
    }
    for ops in keys.values_mut() {
        ops.reads.sort_by_key(|r| (r.invoked, r.id));
    }
    (keys, owners)
}

/// Builds one anomaly.
pub(crate) fn anomaly(
    kind: AnomalyKind,
    key: &str,
    ops: Vec<OpId>,
    mut values: Vec<u64>,
    explanation: String,
) -> Anomaly {
    values.sort_unstable();
    values.dedup();
    Anomaly {
        kind,
        key: key.to_owned(),
        ops,
        values,
        lag_ns: None,
        explanation,
    }
}

/// A list for a one-line explanation: the first few values and how many
/// more.
pub(crate) fn brief(values: &[u64]) -> String {
    const SHOWN: usize = 6;
    let head: Vec<String> = values.iter().take(SHOWN).map(u64::to_string).collect();
    let more = values.len().saturating_sub(SHOWN);
    if more == 0 {
        format!("[{}]", head.join(", "))
    } else {
        format!("[{}, … +{more}]", head.join(", "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::given::Given;

    #[test]
    fn brief_lists_stay_short() {
        assert_eq!(brief(&[1, 2]), "[1, 2]");
        assert_eq!(brief(&[1, 2, 3, 4, 5, 6, 7, 8]), "[1, 2, 3, 4, 5, 6, … +2]");
    }

    #[test]
    fn concurrent_valid_history_passes_with_counts() {
        // Two clients append concurrently, reads overlap the appends and
        // see either order-consistent prefix; a final read sees all.
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.append("k", 2, 5, 15);
        g.read("k", &[], 1, 3);
        g.read("k", &[1], 6, 12);
        g.read("k", &[1, 2], 11, 14);
        g.append("k", 3, 16, 30);
        g.read("k", &[1, 2], 17, 20);
        g.read("k", &[1, 2, 3], 31, 40);
        g.append("other", 4, 0, 5);
        g.read("other", &[4], 6, 7);
        g.register_write("r", 9, 0, 1);
        let report = g.check();
        assert!(report.valid(), "{:#?}", report.anomalies);
        assert!(report.loss_fully_judged());
        assert_eq!(report.counts.total, 10);
        assert_eq!(report.counts.reads, 6);
        assert_eq!(report.counts.writes, 4);
        assert_eq!(report.counts.ok, 10);
        assert_eq!(report.counts.ignored, 1);
        assert_eq!(report.keys.len(), 2);
    }

    #[test]
    fn unknown_appends_may_appear_or_not() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.append_unknown("k", 2, 5);
        g.append_unknown("k", 3, 6);
        g.append_failed("k", 4, 7, 8);
        g.read("k", &[1], 11, 12);
        g.read("k", &[1, 2], 20, 21);
        g.read("k", &[1, 2], 30, 31);
        let report = g.check();
        assert!(report.valid(), "{:#?}", report.anomalies);
        assert_eq!(report.counts.unknown, 2);
        assert_eq!(report.counts.fail, 1);
    }
}
