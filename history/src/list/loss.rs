//! What became of acknowledged appends: gone from the final read
//! (`LostAppend`), or missing from a read that began after the
//! acknowledgement while a later read has them (`StaleRead`).
//!
//! Only acknowledged appends are judged: a failed one has nothing to lose
//! and an unknown one may never have happened. Loss is judged only against
//! a read that began after the acknowledgement; appends no read was late
//! enough for are counted, never assumed kept or lost.

use std::collections::HashMap;

use super::{Append, KeyOps, anomaly};
use crate::op::{Nanos, OpId};
use crate::report::{Anomaly, AnomalyKind, FinalRead, human_nanos};

/// Reports acknowledged appends absent from the key's final read, and
/// says which read that was and what it could not judge.
///
/// The final read is the last `Ok` read by invocation. When it began after
/// every acknowledgement it judges every acknowledged append; otherwise it
/// judges only those acknowledged before it began.
pub(super) fn lost_appends(ops: &KeyOps<'_>, out: &mut Vec<Anomaly>) -> FinalRead {
    let acknowledged: Vec<(Nanos, &Append)> = ops
        .appends
        .iter()
        .filter_map(|a| a.acked().map(|at| (at, a)))
        .collect();
    // Reads are sorted by invocation: the last one is the latest to begin.
    let Some(last) = ops.reads.last() else {
        return FinalRead::NoRead {
            unjudged: acknowledged.len(),
        };
    };
    let mut unjudged = 0usize;
    for (acked, append) in &acknowledged {
        if *acked >= last.invoked {
            unjudged = unjudged.saturating_add(1);
            continue;
        }
        if last.set.contains(&append.value) {
            continue;
        }
        // An earlier read holding the value shows it existed and was then
        // lost, rather than never applied.
        let seer = ops.reads.iter().find(|r| r.set.contains(&append.value));
        let earlier = seer
            .map(|r| format!("; read {} had seen it", r.id))
            .unwrap_or_default();
        let mut involved = vec![append.id, last.id];
        involved.extend(seer.map(|r| r.id));
        out.push(anomaly(
            AnomalyKind::LostAppend,
            ops.key,
            involved,
            vec![append.value],
            format!(
                "append {} of {} was acknowledged, yet the final read {}, begun {} later, lacks it ({} values){earlier}",
                append.id,
                append.value,
                last.id,
                human_nanos(last.invoked.saturating_sub(*acked)),
                last.values.len()
            ),
        ));
    }
    if unjudged == 0 {
        FinalRead::Late { read: last.id }
    } else {
        FinalRead::NotLateEnough {
            read: last.id,
            unjudged,
        }
    }
}

/// Reports reads that began after an append was acknowledged, lack its
/// value, and are followed by a read that has it: the value existed and the
/// read was served from an older list. One anomaly per read, its lag the
/// longest (from the oldest missing acknowledgement).
pub(super) fn stale_reads(ops: &KeyOps<'_>, out: &mut Vec<Anomaly>) {
    let mut acknowledged: Vec<(Nanos, &Append)> = ops
        .appends
        .iter()
        .filter_map(|a| a.acked().map(|at| (at, a)))
        .collect();
    acknowledged.sort_by_key(|(at, a)| (*at, a.id));
    // Value to the latest-invoked read holding it: reads come sorted by
    // invocation, so the last insert wins.
    let mut last_seen: HashMap<u64, (Nanos, OpId)> = HashMap::new();
    for read in &ops.reads {
        for value in read.values {
            last_seen.insert(*value, (read.invoked, read.id));
        }
    }
    for read in &ops.reads {
        let missing: Vec<(Nanos, &Append, OpId)> = acknowledged
            .iter()
            .take_while(|(at, _)| *at < read.invoked)
            .filter(|(_, append)| !read.set.contains(&append.value))
            .filter_map(|(at, append)| {
                let (invoked, witness) = last_seen.get(&append.value)?;
                ((*invoked, *witness) > (read.invoked, read.id)).then_some((*at, *append, *witness))
            })
            .collect();
        // Sorted by acknowledgement: the first is the oldest, the lag the
        // longest.
        let Some((acked, oldest, witness)) = missing.first() else {
            continue;
        };
        let lag = read.invoked.saturating_sub(*acked);
        let others = missing.len().saturating_sub(1);
        let mut stale = anomaly(
            AnomalyKind::StaleRead,
            ops.key,
            vec![read.id, oldest.id, *witness],
            missing.iter().map(|(_, a, _)| a.value).collect(),
            format!(
                "read {} began {} after append {} of {} was acknowledged, yet lacks it (and {others} more acknowledged value(s)); the later read {} has it",
                read.id,
                human_nanos(lag),
                oldest.id,
                oldest.value,
                witness
            ),
        );
        stale.lag_ns = Some(lag);
        out.push(stale);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use crate::given::Given;
    use crate::report::{AnomalyKind, FinalRead};

    #[test]
    fn a_dropped_acknowledged_append_is_lost() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        let dropped = g.append("k", 2, 0, 10);
        let seen = g.read("k", &[1, 2], 11, 12);
        let last = g.read("k", &[1], 20, 21);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::LostAppend), 1, "{report:#?}");
        assert_eq!(
            report.by_kind.keys().collect::<Vec<_>>(),
            vec![&AnomalyKind::LostAppend, &AnomalyKind::Shrunk],
            "{:#?}",
            report.anomalies
        );
        // Seen, then gone: the final read also shrank.
        let lost = report.of_kind(AnomalyKind::LostAppend).next().unwrap();
        assert_eq!(lost.ops, vec![dropped, last, seen]);
        assert_eq!(lost.values, vec![2]);
        assert_eq!(report.keys[0].final_read, FinalRead::Late { read: last });
    }

    #[test]
    fn loss_is_not_judged_by_a_read_that_began_too_early() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.append("k", 2, 5, 30);
        let last = g.read("k", &[1], 11, 12);
        let report = g.check();
        assert!(report.valid(), "{report:#?}");
        assert!(!report.loss_fully_judged());
        assert_eq!(
            report.keys[0].final_read,
            FinalRead::NotLateEnough {
                read: last,
                unjudged: 1
            }
        );

        let mut none = Given::new();
        none.append("k", 1, 0, 10);
        assert_eq!(
            none.check().keys[0].final_read,
            FinalRead::NoRead { unjudged: 1 }
        );
    }

    #[test]
    fn a_read_serving_an_old_list_is_stale_with_its_lag() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        let acked = g.append("k", 2, 11, 20);
        let stale = g.read("k", &[1], 1_020, 1_030);
        let later = g.read("k", &[1, 2], 1_040, 1_050);
        let report = g.check();
        assert_eq!(report.count(AnomalyKind::StaleRead), 1, "{report:#?}");
        assert_eq!(
            report.by_kind.keys().collect::<Vec<_>>(),
            vec![&AnomalyKind::StaleRead],
            "{:#?}",
            report.anomalies
        );
        let anomaly = report.of_kind(AnomalyKind::StaleRead).next().unwrap();
        assert_eq!(anomaly.ops, vec![stale, acked, later]);
        assert_eq!(anomaly.lag_ns, Some(1_000));
        assert!(anomaly.explanation.contains("1.0µs"));
        assert_eq!(report.count(AnomalyKind::LostAppend), 0);
    }

    #[test]
    fn a_read_concurrent_with_the_append_is_not_stale() {
        let mut g = Given::new();
        g.append("k", 1, 0, 10);
        g.read("k", &[], 5, 15);
        g.read("k", &[1], 16, 17);
        assert!(g.check().valid());
    }
}
