//! How reads of one list relate to each other and to real time.
//!
//! A list only grows at its tail, so every read must be a prefix of one
//! longest order (`Reordered` when two are not), a read must keep what
//! reads that completed before it began had seen (`Shrunk`), and an append
//! acknowledged before another was invoked must come first (`RealTimeOrder`).
//! These relate reads and appends pairwise; what became of acknowledged
//! appends is `loss`'s concern.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{Append, AppendStatus, KeyOps, Read, anomaly, brief};
use crate::op::OpId;
use crate::report::{Anomaly, AnomalyKind, human_nanos};

/// Reports pairs of reads that are not prefixes of one order.
///
/// Sorted by length, every read must be a prefix of the next: prefixing is
/// transitive, so checking neighbours proves all pairs compatible, and a
/// break is reported once, between the two reads where it shows.
pub(super) fn reordered(ops: &KeyOps<'_>, out: &mut Vec<Anomaly>) {
    let mut reads: Vec<&Read<'_>> = ops.reads.iter().collect();
    reads.sort_by(|a, b| {
        (a.values.len(), a.values, a.invoked, a.id).cmp(&(
            b.values.len(),
            b.values,
            b.invoked,
            b.id,
        ))
    });
    // Equal lists are adjacent now; comparing them again says nothing.
    reads.dedup_by(|later, earlier| later.values == earlier.values);
    for pair in reads.windows(2) {
        let [shorter, longer] = pair else { continue };
        if longer.values.starts_with(shorter.values) {
            continue;
        }
        let Some((at, (x, y))) = shorter
            .values
            .iter()
            .zip(longer.values.iter())
            .enumerate()
            .find(|(_, (x, y))| x != y)
        else {
            continue;
        };
        out.push(anomaly(
            AnomalyKind::Reordered,
            ops.key,
            vec![shorter.id, longer.id],
            vec![*x, *y],
            format!(
                "reads {} {} and {} {} are not prefixes of one order: position {at} holds {x} in one, {y} in the other",
                shorter.id,
                brief(shorter.values),
                longer.id,
                brief(longer.values)
            ),
        ));
    }
}

/// Reports reads lacking values that a read completed before they began
/// had seen: the list lost elements between the two.
pub(super) fn shrunk(ops: &KeyOps<'_>, out: &mut Vec<Anomaly>) {
    let mut by_completion: Vec<&Read<'_>> = ops.reads.iter().collect();
    by_completion.sort_by_key(|r| (r.completed, r.id));
    // Value to the first read (by completion) that saw it, over the reads
    // completed before the current one began.
    let mut seen: BTreeMap<u64, OpId> = BTreeMap::new();
    let mut next = 0;
    for read in &ops.reads {
        while let Some(earlier) = by_completion.get(next)
            && earlier.completed < read.invoked
        {
            for value in earlier.values {
                seen.entry(*value).or_insert(earlier.id);
            }
            next = next.saturating_add(1);
        }
        let lost: Vec<(u64, OpId)> = seen
            .iter()
            .filter(|(value, _)| !read.set.contains(value))
            .map(|(value, witness)| (*value, *witness))
            .collect();
        let Some((first, witness)) = lost.first() else {
            continue;
        };
        let witnesses: BTreeSet<OpId> = lost.iter().map(|(_, w)| *w).collect();
        let mut involved = vec![read.id];
        involved.extend(witnesses);
        out.push(anomaly(
            AnomalyKind::Shrunk,
            ops.key,
            involved,
            lost.iter().map(|(value, _)| *value).collect(),
            format!(
                "read {} lacks {} value(s) seen by reads completed before it began, e.g. {first} seen by {witness}",
                read.id,
                lost.len()
            ),
        ));
    }
}

/// Reports appends a read lists after an append invoked only once they
/// were acknowledged.
///
/// One scan per read: keeping the latest-invoked append seen so far finds
/// a violation for each element, if any exists, without comparing all
/// pairs. Each (acknowledged, later) pair is reported once.
pub(super) fn real_time(ops: &KeyOps<'_>, out: &mut Vec<Anomaly>) {
    let mut reported: HashSet<(OpId, OpId)> = HashSet::new();
    for read in &ops.reads {
        let mut latest: Option<&Append> = None;
        for value in read.values {
            let Some(append) = ops.append_of(*value) else {
                continue;
            };
            // A failed append's value is an aborted read already; it
            // carries no real-time position.
            if append.status == AppendStatus::Failed {
                continue;
            }
            if let (Some(acked), Some(later)) = (append.acked(), latest)
                && later.invoked > acked
                && reported.insert((append.id, later.id))
            {
                out.push(anomaly(
                    AnomalyKind::RealTimeOrder,
                    ops.key,
                    vec![read.id, append.id, later.id],
                    vec![append.value, later.value],
                    format!(
                        "read {} lists {} before {}, yet append {} of {} was acknowledged {} before append {} of {} was invoked",
                        read.id,
                        later.value,
                        append.value,
                        append.id,
                        append.value,
                        human_nanos(later.invoked.saturating_sub(acked)),
                        later.id,
                        later.value
                    ),
                ));
            }
            if latest.is_none_or(|l| append.invoked > l.invoked) {
                latest = Some(append);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use crate::given::Given;
    use crate::report::AnomalyKind;

    #[test]
    fn two_incompatible_reads_are_reordered() {
        let mut g = Given::new();
        // Appends still unacknowledged while the reads run, so only the
        // order is at fault.
        g.append("k", 1, 0, 100);
        g.append("k", 2, 0, 100);
        g.append("k", 3, 0, 100);
        g.read("k", &[1], 11, 12);
        let a = g.read("k", &[1, 2, 3], 13, 14);
        let b = g.read("k", &[1, 3, 2], 13, 14);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::Reordered), 1, "{report:#?}");
        assert_eq!(
            report.by_kind.keys().collect::<Vec<_>>(),
            vec![&AnomalyKind::Reordered],
            "{:#?}",
            report.anomalies
        );
        let reordered = report.of_kind(AnomalyKind::Reordered).next().unwrap();
        assert_eq!(reordered.ops, vec![a, b]);
        assert_eq!(reordered.values, vec![2, 3]);
        assert!(reordered.explanation.contains("position 1"));
    }

    #[test]
    fn a_shrinking_list_is_reported_with_its_witness() {
        let mut g = Given::new();
        // Append 2's outcome is unknown, so it is not stale or lost: only
        // the shrinking shows.
        g.append("k", 1, 0, 10);
        g.append_unknown("k", 2, 0);
        let witness = g.read("k", &[1, 2], 11, 12);
        let bad = g.read("k", &[1], 13, 14);
        g.read("k", &[1, 2], 15, 16);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::Shrunk), 1, "{report:#?}");
        assert_eq!(
            report.by_kind.keys().collect::<Vec<_>>(),
            vec![&AnomalyKind::Shrunk],
            "{:#?}",
            report.anomalies
        );
        let shrunk = report.of_kind(AnomalyKind::Shrunk).next().unwrap();
        assert_eq!(shrunk.ops, vec![bad, witness]);
        assert_eq!(shrunk.values, vec![2]);
        // A shorter read is still a prefix: not reordered.
        assert_eq!(report.count(AnomalyKind::Reordered), 0);
    }

    #[test]
    fn overlapping_reads_may_disagree_on_length() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.append("k", 2, 5, 20);
        g.read("k", &[1, 2], 11, 19);
        g.read("k", &[1], 12, 18);
        g.read("k", &[1, 2], 21, 22);
        assert!(g.check().valid());
    }

    #[test]
    fn an_append_acknowledged_first_must_come_first() {
        let mut g = Given::new();
        let first = g.append("k", 1, 0, 10);
        let second = g.append("k", 2, 11, 20);
        let bad = g.read("k", &[2, 1], 21, 22);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::RealTimeOrder), 1, "{report:#?}");
        assert_eq!(
            report.by_kind.keys().collect::<Vec<_>>(),
            vec![&AnomalyKind::RealTimeOrder],
            "{:#?}",
            report.anomalies
        );
        let violation = report.of_kind(AnomalyKind::RealTimeOrder).next().unwrap();
        assert_eq!(violation.ops, vec![bad, first, second]);
        assert_eq!(violation.values, vec![1, 2]);
    }

    #[test]
    fn concurrent_appends_may_land_in_either_order() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.append("k", 2, 5, 20);
        g.append_unknown("k", 3, 1);
        g.read("k", &[3, 2, 1], 21, 22);
        assert!(g.check().valid());
    }
}
