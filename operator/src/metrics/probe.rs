//! What a probe round adds to the metrics, computed from the round's
//! answers (not from the journal, which records offsets only when a
//! decision needs them): each replica's lag behind the primary, and how
//! long the primary has gone without a healthy answer. Pure: time is an
//! argument.

use std::collections::BTreeMap;
use std::time::Instant;

use logbook_journal::Role;

/// One pod's answer to a probe: its role and `master_repl_offset`, or
/// `None` when it did not answer.
pub type Answer<'a> = (&'a str, Option<(Role, u64)>);

/// Bytes each replica is behind the primary: the primary's offset minus
/// the replica's, by replica pod name. Empty unless `primary` answered as
/// a primary; a replica that did not answer has no entry (its lag is
/// unknown, and a stale value would look healthy).
pub fn replication_lag(primary: Option<&str>, answers: &[Answer<'_>]) -> BTreeMap<String, u64> {
    let Some(primary) = primary else {
        return BTreeMap::new();
    };
    let head = answers.iter().find_map(|(pod, answer)| match answer {
        Some((Role::Primary, offset)) if *pod == primary => Some(*offset),
        _ => None,
    });
    let Some(head) = head else {
        return BTreeMap::new();
    };
    answers
        .iter()
        .filter_map(|(pod, answer)| match answer {
            // Probed a moment apart, a replica may report more than the
            // primary did: that is no lag.
            Some((Role::Replica, offset)) if *pod != primary => {
                Some(((*pod).to_owned(), head.saturating_sub(*offset)))
            }
            _ => None,
        })
        .collect()
}

/// Whether `primary` answered the round as a primary.
pub fn primary_answered(primary: Option<&str>, answers: &[Answer<'_>]) -> bool {
    primary.is_some_and(|primary| {
        answers
            .iter()
            .any(|(pod, answer)| *pod == primary && matches!(answer, Some((Role::Primary, _))))
    })
}

/// When the primary was last seen healthy, for
/// `logbook_primary_unhealthy_seconds`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrimaryHealth {
    healthy_at: Option<Instant>,
}

impl PrimaryHealth {
    /// Seconds since the primary was last seen healthy, as of a round at
    /// `now`: 0 while it answers as a primary (`healthy`), or while none
    /// is expected yet (a new cluster before its first primary). Without a
    /// healthy sighting since this tracker started (a takeover with the
    /// primary already down), the clock starts at the first unhealthy
    /// round.
    pub fn update(&mut self, now: Instant, healthy: bool, expected: bool) -> f64 {
        if healthy || !expected {
            self.healthy_at = expected.then_some(now);
            return 0.0;
        }
        let since = *self.healthy_at.get_or_insert(now);
        now.saturating_duration_since(since).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lag_is_the_primary_offset_minus_each_replica_offset() {
        let answers: Vec<Answer<'_>> = vec![
            ("demo-0", Some((Role::Primary, 1_000))),
            ("demo-1", Some((Role::Replica, 900))),
            ("demo-2", Some((Role::Replica, 1_010))),
            ("demo-3", None),
        ];
        let lag = replication_lag(Some("demo-0"), &answers);
        assert_eq!(
            lag,
            BTreeMap::from([("demo-1".to_owned(), 100), ("demo-2".to_owned(), 0)])
        );
        assert!(primary_answered(Some("demo-0"), &answers));
    }

    #[test]
    fn no_lag_without_a_primary_answering_as_one() {
        let answers: Vec<Answer<'_>> = vec![
            ("demo-0", Some((Role::Replica, 1_000))),
            ("demo-1", Some((Role::Replica, 900))),
        ];
        assert!(replication_lag(Some("demo-0"), &answers).is_empty());
        assert!(replication_lag(None, &answers).is_empty());
        assert!(!primary_answered(Some("demo-0"), &answers));
        assert!(!primary_answered(Some("demo-9"), &answers));
    }

    #[test]
    fn unhealthy_seconds_count_from_the_last_healthy_round() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut health = PrimaryHealth::default();
        // No primary expected yet: 0, and no clock running.
        assert_eq!(health.update(at(0), false, false), 0.0);
        assert_eq!(health.update(at(1), true, true), 0.0);
        assert_eq!(health.update(at(2), false, true), 1.0);
        assert_eq!(health.update(at(5), false, true), 4.0);
        assert_eq!(health.update(at(6), true, true), 0.0);
        // A takeover with the primary down: from the first round.
        let mut fresh = PrimaryHealth::default();
        assert_eq!(fresh.update(at(10), false, true), 0.0);
        assert_eq!(fresh.update(at(12), false, true), 2.0);
    }
}
