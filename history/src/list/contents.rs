//! What one read holds, judged on its own: a value twice (`Duplicate`), a
//! value no append of the key carried (`Phantom`), a value whose append
//! failed (`AbortedRead`).
//!
//! Needs no timing: each of these is wrong whatever the interleaving. An
//! `Unknown` append's value is neither phantom nor aborted: it may have
//! happened.

use std::collections::BTreeMap;

use super::{AppendStatus, KeyOps, Owners, anomaly, brief};
use crate::report::{Anomaly, AnomalyKind};

/// Reports the duplicates, phantoms and aborted reads of every read of
/// `ops`, one anomaly per read and value.
pub(super) fn check(ops: &KeyOps<'_>, owners: &Owners<'_>, out: &mut Vec<Anomaly>) {
    for read in &ops.reads {
        // Ordered, so anomalies come out in value order.
        let mut occurrences: BTreeMap<u64, usize> = BTreeMap::new();
        for value in read.values {
            let n = occurrences.entry(*value).or_default();
            *n = n.saturating_add(1);
        }
        for (&value, &n) in &occurrences {
            if n > 1 {
                let mut involved = vec![read.id];
                involved.extend(ops.append_of(value).map(|a| a.id));
                out.push(anomaly(
                    AnomalyKind::Duplicate,
                    ops.key,
                    involved,
                    vec![value],
                    format!(
                        "read {} holds {value} {n} times: {}",
                        read.id,
                        brief(read.values)
                    ),
                ));
            }
            match ops.append_of(value) {
                Some(append) => match append.status {
                    AppendStatus::Failed => out.push(anomaly(
                        AnomalyKind::AbortedRead,
                        ops.key,
                        vec![read.id, append.id],
                        vec![value],
                        format!(
                            "read {} holds {value}, whose append {} failed",
                            read.id, append.id
                        ),
                    )),
                    AppendStatus::Acknowledged(_) | AppendStatus::Unknown => {}
                },
                None => {
                    let source = match owners.get(&value) {
                        Some((key, id)) => format!("; it was appended to {key:?} by {id}"),
                        None => String::new(),
                    };
                    out.push(anomaly(
                        AnomalyKind::Phantom,
                        ops.key,
                        vec![read.id],
                        vec![value],
                        format!(
                            "read {} holds {value}, which no append of this key carried{source}",
                            read.id
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use crate::given::Given;
    use crate::op::OpId;
    use crate::report::AnomalyKind;

    #[test]
    fn a_duplicated_value_is_reported_once_per_read() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.append("k", 2, 11, 20);
        let bad = g.read("k", &[1, 2, 2], 21, 22);
        g.read("k", &[1, 2], 23, 24);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::Duplicate), 1);
        assert_eq!(
            report.by_kind.keys().collect::<Vec<_>>(),
            vec![&AnomalyKind::Duplicate],
            "{:#?}",
            report.anomalies
        );
        let dup = report.of_kind(AnomalyKind::Duplicate).next().unwrap();
        assert_eq!(dup.ops, vec![bad, OpId(1)]);
        assert_eq!(dup.values, vec![2]);
    }

    #[test]
    fn a_phantom_value_is_reported_with_where_it_came_from() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.append("elsewhere", 5, 0, 10);
        let bad = g.read("k", &[1, 99], 11, 12);
        g.read("k", &[1, 5], 13, 14);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::Phantom), 2);
        let phantoms: Vec<_> = report.of_kind(AnomalyKind::Phantom).collect();
        assert!(
            phantoms
                .iter()
                .any(|a| a.values == vec![99] && a.ops == vec![bad])
        );
        assert!(
            phantoms
                .iter()
                .any(|a| a.values == vec![5] && a.explanation.contains("\"elsewhere\""))
        );
    }

    #[test]
    fn a_failed_appends_value_read_is_an_aborted_read() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        let failed = g.append_failed("k", 2, 11, 12);
        let bad = g.read("k", &[1, 2], 13, 14);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::AbortedRead), 1);
        assert_eq!(
            report.by_kind.keys().collect::<Vec<_>>(),
            vec![&AnomalyKind::AbortedRead],
            "{:#?}",
            report.anomalies
        );
        assert_eq!(report.count(AnomalyKind::Phantom), 0);
        let aborted = report.of_kind(AnomalyKind::AbortedRead).next().unwrap();
        assert_eq!(aborted.ops, vec![bad, failed]);
    }
}
