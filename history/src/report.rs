//! What the list checker hands back: [`ListReport`] with its
//! [`Anomaly`] list, plus the [`OpCounts`] both checkers share.
//!
//! Reports are plain data (serializable, so a CI run can keep them beside
//! the history). They say what was seen and what could not be judged; they
//! never fill a gap with a guess.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::op::{Function, Op, OpId, Outcome};

/// How many operations a checker looked at, and how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Operations of the checker's workload.
    pub total: usize,
    /// Reads among them.
    pub reads: usize,
    /// Appends (list) or writes (register) among them.
    pub writes: usize,
    /// Ended `Ok`.
    pub ok: usize,
    /// Ended `Fail`.
    pub fail: usize,
    /// Ended `Unknown`.
    pub unknown: usize,
    /// Operations of the other workload, not looked at.
    pub ignored: usize,
}

impl OpCounts {
    /// Counts `op` if `mine`, else counts it as ignored.
    pub(crate) fn add(&mut self, op: &Op, mine: bool) {
        if !mine {
            self.ignored = self.ignored.saturating_add(1);
            return;
        }
        self.total = self.total.saturating_add(1);
        let kind = if op.f.is_read() {
            &mut self.reads
        } else {
            &mut self.writes
        };
        *kind = kind.saturating_add(1);
        let outcome = match op.outcome {
            Outcome::Ok(_) => &mut self.ok,
            Outcome::Fail(_) => &mut self.fail,
            Outcome::Unknown(_) => &mut self.unknown,
        };
        *outcome = outcome.saturating_add(1);
    }

    /// Counts every operation, those whose function `is_mine` as checked.
    pub(crate) fn of<'h>(
        ops: impl Iterator<Item = &'h Op>,
        is_mine: impl Fn(&Function) -> bool,
    ) -> Self {
        let mut counts = Self::default();
        for op in ops {
            counts.add(op, is_mine(&op.f));
        }
        counts
    }
}

/// The kinds of list anomaly. Persisted in reports: never renamed or
/// reordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AnomalyKind {
    /// An acknowledged append is absent from the final read of its key.
    LostAppend,
    /// A read began after an append was acknowledged, lacks its value, and
    /// a later read has it.
    StaleRead,
    /// A value appears more than once in one read.
    Duplicate,
    /// A read holds a value no append of its key ever carried.
    Phantom,
    /// A read holds the value of an append that failed.
    AbortedRead,
    /// Two reads are not prefixes of one order.
    Reordered,
    /// An append acknowledged before another was invoked comes after it in
    /// a read.
    RealTimeOrder,
    /// A read lacks a value that a read completed before it began had.
    Shrunk,
}

impl AnomalyKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::LostAppend,
        Self::StaleRead,
        Self::Duplicate,
        Self::Phantom,
        Self::AbortedRead,
        Self::Reordered,
        Self::RealTimeOrder,
        Self::Shrunk,
    ];
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::LostAppend => "lost-append",
            Self::StaleRead => "stale-read",
            Self::Duplicate => "duplicate",
            Self::Phantom => "phantom",
            Self::AbortedRead => "aborted-read",
            Self::Reordered => "reordered",
            Self::RealTimeOrder => "real-time-order",
            Self::Shrunk => "shrunk",
        };
        f.write_str(name)
    }
}

/// One anomaly on one key. One fault of the database can show under more
/// than one kind (a read serving an old list is stale and, when an earlier
/// read saw more, shrunk too); each kind states its own evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// The list.
    pub key: String,
    /// The operations involved, the one at fault first.
    pub ops: Vec<OpId>,
    /// The values involved, ascending.
    pub values: Vec<u64>,
    /// For [`AnomalyKind::StaleRead`]: how long after the acknowledgement
    /// of the oldest missing append the read began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ns: Option<u64>,
    /// One line for a human.
    pub explanation: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {:?}: {}", self.kind, self.key, self.explanation)
    }
}

/// The read a key's lost appends were judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalRead {
    /// The last `Ok` read that began after every acknowledged append of
    /// the key completed: every acknowledged append was judged.
    Late {
        /// The read.
        read: OpId,
    },
    /// No read began after every acknowledged append completed. The last
    /// `Ok` read judged only the appends acknowledged before it began.
    NotLateEnough {
        /// The last read.
        read: OpId,
        /// Acknowledged appends that completed after it began, so whose
        /// loss cannot be judged.
        unjudged: usize,
    },
    /// The key has no `Ok` read: no loss can be judged.
    NoRead {
        /// Acknowledged appends, none judged.
        unjudged: usize,
    },
}

/// What was checked on one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySummary {
    /// The list.
    pub key: String,
    /// Appends of any outcome.
    pub appends: usize,
    /// Acknowledged appends.
    pub acknowledged: usize,
    /// `Ok` reads.
    pub reads: usize,
    /// What loss was judged against.
    pub final_read: FinalRead,
}

/// The list checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReport {
    /// The operations looked at.
    pub counts: OpCounts,
    /// One summary per key, by key.
    pub keys: Vec<KeySummary>,
    /// Every anomaly, by key then kind.
    pub anomalies: Vec<Anomaly>,
    /// How many anomalies of each kind (kinds without any are absent).
    pub by_kind: BTreeMap<AnomalyKind, usize>,
}

impl ListReport {
    /// Assembles a report, sorting anomalies and counting them by kind.
    pub(crate) fn new(
        counts: OpCounts,
        keys: Vec<KeySummary>,
        mut anomalies: Vec<Anomaly>,
    ) -> Self {
        anomalies.sort_by(|a, b| (&a.key, a.kind, &a.ops).cmp(&(&b.key, b.kind, &b.ops)));
        let mut by_kind = BTreeMap::new();
        for anomaly in &anomalies {
            let count: &mut usize = by_kind.entry(anomaly.kind).or_default();
            *count = count.saturating_add(1);
        }
        Self {
            counts,
            keys,
            anomalies,
            by_kind,
        }
    }

    /// No anomaly was found. Says nothing of the loss of appends no read
    /// was late enough to judge: see [`Self::loss_fully_judged`].
    pub fn valid(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// Every key had a read late enough to judge every acknowledged append.
    pub fn loss_fully_judged(&self) -> bool {
        self.keys
            .iter()
            .all(|key| matches!(key.final_read, FinalRead::Late { .. }))
    }

    /// How many anomalies of `kind`.
    pub fn count(&self, kind: AnomalyKind) -> usize {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }

    /// The anomalies of `kind`.
    pub fn of_kind(&self, kind: AnomalyKind) -> impl Iterator<Item = &Anomaly> {
        self.anomalies.iter().filter(move |a| a.kind == kind)
    }
}

/// A duration for a human: `850ns`, `12.3µs`, `4.56ms`, `1.20s`.
pub(crate) fn human_nanos(nanos: u64) -> String {
    // Lossy on purpose: the figure is for reading; the exact one is in
    // `lag_ns`.
    #[allow(clippy::cast_precision_loss)]
    let n = nanos as f64;
    if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 1_000_000 {
        format!("{:.1}µs", n / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.2}ms", n / 1e6)
    } else {
        format!("{:.2}s", n / 1e9)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_nanos(850), "850ns");
        assert_eq!(human_nanos(12_300), "12.3µs");
        assert_eq!(human_nanos(4_560_000), "4.56ms");
        assert_eq!(human_nanos(1_200_000_000), "1.20s");
    }

    #[test]
    fn counts_and_validity_follow_the_anomalies() {
        let anomaly = |kind| Anomaly {
            kind,
            key: "k".into(),
            ops: vec![OpId(1)],
            values: vec![],
            lag_ns: None,
            explanation: String::new(),
        };
        let report = ListReport::new(
            OpCounts::default(),
            vec![],
            vec![
                anomaly(AnomalyKind::Shrunk),
                anomaly(AnomalyKind::LostAppend),
                anomaly(AnomalyKind::Shrunk),
            ],
        );
        assert!(!report.valid());
        assert_eq!(report.count(AnomalyKind::Shrunk), 2);
        assert_eq!(report.count(AnomalyKind::Phantom), 0);
        assert_eq!(report.anomalies[0].kind, AnomalyKind::LostAppend);
        assert_eq!(AnomalyKind::ALL.len(), 8);
    }
}
