//! The write pause of an atomic slot migration, as far as the journal
//! bounds it.
//!
//! The source pauses writes to the slots it sends once the target asks
//! for ownership (`waiting-to-pause`, `failover-paused`,
//! `failover-granted` on the export side) and resumes them when the job
//! ends: on `success` (the target owns the slots) or on a failure after
//! it paused ("Unpaused before migration completed ..."). The journal
//! holds the source's job only as polled — by the executor, every poll
//! stamped with the milliseconds since it issued the job, or by the
//! probes, stamped with the journal's time — so the pause is bounded,
//! never measured: it began after the last observation that showed the
//! job not yet paused (or after the job was issued) and was over by the
//! observation that showed it ended. When no poll caught the job paused,
//! that is said too: the job finished between two polls.
//!
//! Times on two clocks are never subtracted from each other: an
//! executor's `elapsed_ms` and a probe's journal time give no bound
//! together.

use logbook_journal::Timestamp;
use serde::Serialize;

/// The export-side states in which the source holds writes to the slots.
pub const PAUSED_STATES: [&str; 3] = ["waiting-to-pause", "failover-paused", "failover-granted"];

/// One observation of a job, as journaled (`SlotMigrationObserved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    /// Seq of the event.
    pub seq: u64,
    /// Its journal time.
    pub at: Timestamp,
    /// The pod of the node listing the job.
    pub pod: String,
    /// `export` (the source) or `import` (the target).
    pub side: &'static str,
    /// Valkey's state name (`snapshotting`, `replicating`, ..., `success`,
    /// `failed`, `cancelled`; `vanished` when the node no longer listed it).
    pub state: String,
    /// Milliseconds since the operator issued the job, when the executor
    /// watched it from its start (`None`: seen by a probe).
    pub elapsed_ms: Option<u64>,
    /// Valkey's message (why it failed), when it has one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Bytes of the slots' writes not yet acknowledged by the target.
    pub remaining_repl_size: u64,
}

impl Phase {
    /// Whether this observation shows the job over.
    #[must_use]
    pub fn is_over(&self) -> bool {
        matches!(
            self.state.as_str(),
            "success" | "failed" | "cancelled" | "vanished"
        )
    }

    /// Whether it shows the source holding writes.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.side == "export" && PAUSED_STATES.contains(&self.state.as_str())
    }

    /// A failure after the source gave up its pause: the slots may have
    /// moved (see `SlotMigrationJob::ambiguous`).
    #[must_use]
    pub fn is_ambiguous(&self) -> bool {
        self.state == "failed" && self.message.contains("may have succeeded")
    }

    /// When, for people: `+120 ms` (since the job was issued) or the seq.
    #[must_use]
    pub fn when(&self) -> String {
        self.elapsed_ms
            .map_or_else(|| format!("#{}", self.seq), |ms| format!("+{ms} ms"))
    }
}

/// Which clock a bound is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clock {
    /// Milliseconds since the operator issued the job, as its executor
    /// stamped each poll.
    SinceIssued,
    /// The journal times of the events of two probes.
    Journal,
}

/// The write pause of one job, as the journal bounds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pause {
    /// Whether a poll caught the source with writes paused.
    pub observed: bool,
    /// Whether the journal shows a pause happened: caught by a poll, or
    /// implied by a success (a job succeeds only after pausing) or by an
    /// ambiguous failure (its source unpaused); `None` while the job is
    /// not over, or when the source's side was never observed.
    pub happened: Option<bool>,
    /// At most this many milliseconds, when both ends of the bound are on
    /// one clock.
    pub bound_ms: Option<u64>,
    /// The clock of the bound.
    pub clock: Option<Clock>,
    /// Seq of the observation the bound starts after (`None`: the job's
    /// issue, elapsed 0).
    pub after_seq: Option<u64>,
    /// Seq of the observation that showed the job over.
    pub until_seq: Option<u64>,
    /// For people.
    pub text: String,
}

/// The pause of the job observed as `phases` (in journal order, either
/// side; only the source's export side counts).
#[must_use]
pub fn bound(phases: &[Phase]) -> Pause {
    let export: Vec<&Phase> = phases.iter().filter(|p| p.side == "export").collect();
    let none = |text: String| Pause {
        observed: false,
        happened: None,
        bound_ms: None,
        clock: None,
        after_seq: None,
        until_seq: None,
        text,
    };
    if export.is_empty() {
        return none(
            "not observed: the journal holds no observation of the source's side of the job"
                .to_owned(),
        );
    }
    let end = export.iter().position(|p| p.is_over());
    let live: &[&Phase] = end.map_or(export.as_slice(), |i| export.get(..i).unwrap_or(&[]));
    let first_paused = live.iter().position(|p| p.is_paused());
    let observed = first_paused.is_some();
    // The last poll before the pause: before the first paused poll, or,
    // none caught, before the end.
    let before_pause = live
        .get(..first_paused.unwrap_or(live.len()))
        .unwrap_or(&[])
        .last()
        .copied();
    let Some(end) = end.and_then(|i| export.get(i)).copied() else {
        let text = match first_paused.and_then(|i| live.get(i)) {
            Some(p) => format!(
                "writes paused when last polled ({} at {}); the job is not over by the end of the journal",
                p.state,
                p.when()
            ),
            None => "not reached: the job is not over by the end of the journal".to_owned(),
        };
        return Pause {
            observed,
            ..none(text)
        };
    };
    let happened = observed || end.state == "success" || end.is_ambiguous();
    if !happened {
        return Pause {
            happened: Some(false),
            until_seq: Some(end.seq),
            ..none(format!(
                "none observed: the job ended {} at {} with no poll showing writes paused",
                end.state,
                end.when()
            ))
        };
    }
    let (bound_ms, clock) = match (before_pause, end.elapsed_ms) {
        (Some(b), Some(e)) => match b.elapsed_ms {
            Some(s) => (Some(e.saturating_sub(s)), Some(Clock::SinceIssued)),
            None => (None, None),
        },
        (Some(b), None) if b.elapsed_ms.is_none() => (
            u64::try_from(end.at.millis_since(b.at)).ok(),
            Some(Clock::Journal),
        ),
        // No poll before the pause: it began after the job was issued.
        (None, Some(e)) => (Some(e), Some(Clock::SinceIssued)),
        (Some(_) | None, None) => (None, None),
    };
    let start = before_pause.map_or_else(
        || "the job's issue".to_owned(),
        |b| format!("{} at {}", b.state, b.when()),
    );
    let text = match (bound_ms, observed) {
        (Some(ms), true) => format!(
            "≤ {ms} ms between observations: paused after {start}, seen {} at {}, over by {} at {}",
            first_paused
                .and_then(|i| live.get(i))
                .map_or("", |p| p.state.as_str()),
            first_paused
                .and_then(|i| live.get(i))
                .map_or_else(String::new, |p| p.when()),
            end.state,
            end.when()
        ),
        (Some(ms), false) => format!(
            "not observed (the job finished between two polls): ≤ {ms} ms, from {start} to {} at {}",
            end.state,
            end.when()
        ),
        (None, true) => format!(
            "seen paused, not bounded: {start} and {} at {} are on different clocks (executor and probe)",
            end.state,
            end.when()
        ),
        (None, false) => format!(
            "not observed (the job finished between two polls), not bounded: {start} and {} at {} are on different clocks (executor and probe)",
            end.state,
            end.when()
        ),
    };
    Pause {
        observed,
        happened: Some(true),
        bound_ms,
        clock,
        after_seq: before_pause.map(|b| b.seq),
        until_seq: Some(end.seq),
        text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn poll(seq: u64, state: &str, elapsed: Option<u64>) -> Phase {
        Phase {
            seq,
            at: Timestamp(1_000_000 * i64::try_from(seq).unwrap()),
            pod: "c-0".to_owned(),
            side: "export",
            state: state.to_owned(),
            elapsed_ms: elapsed,
            message: String::new(),
            remaining_repl_size: 0,
        }
    }

    #[test]
    fn a_pause_seen_is_bounded_by_the_polls_around_it() {
        let p = bound(&[
            poll(1, "snapshotting", Some(3)),
            poll(2, "replicating", Some(120)),
            poll(3, "failover-paused", Some(900)),
            poll(4, "success", Some(950)),
        ]);
        assert!(p.observed);
        assert_eq!(p.happened, Some(true));
        assert_eq!(p.bound_ms, Some(830));
        assert_eq!(p.clock, Some(Clock::SinceIssued));
        assert_eq!((p.after_seq, p.until_seq), (Some(2), Some(4)));
        assert!(
            p.text.starts_with("≤ 830 ms between observations"),
            "{}",
            p.text
        );
        assert!(p.text.contains("replicating at +120 ms"), "{}", p.text);
    }

    #[test]
    fn a_pause_between_two_polls_is_said_not_observed_and_still_bounded() {
        let p = bound(&[
            poll(1, "replicating", Some(40)),
            poll(2, "success", Some(75)),
        ]);
        assert!(!p.observed);
        assert_eq!(p.happened, Some(true));
        assert_eq!(p.bound_ms, Some(35));
        assert!(
            p.text
                .starts_with("not observed (the job finished between two polls): ≤ 35 ms"),
            "{}",
            p.text
        );
        // A job seen only once over: bounded by its issue.
        let p = bound(&[poll(1, "success", Some(12))]);
        assert_eq!((p.bound_ms, p.after_seq), (Some(12), None));
        assert!(p.text.contains("from the job's issue"), "{}", p.text);
    }

    #[test]
    fn probes_bound_on_journal_time_and_two_clocks_never_mix() {
        let p = bound(&[poll(3, "replicating", None), poll(5, "success", None)]);
        assert_eq!(p.clock, Some(Clock::Journal));
        assert_eq!(p.bound_ms, Some(2000));
        let p = bound(&[poll(3, "replicating", None), poll(5, "success", Some(900))]);
        assert_eq!(p.bound_ms, None);
        assert!(p.text.contains("different clocks"), "{}", p.text);
    }

    #[test]
    fn a_failure_before_pausing_has_no_pause_and_an_ambiguous_one_has() {
        let p = bound(&[
            poll(1, "snapshotting", Some(3)),
            poll(2, "failed", Some(50)),
        ]);
        assert_eq!(p.happened, Some(false));
        assert!(p.text.starts_with("none observed"), "{}", p.text);
        let mut failed = poll(3, "failed", Some(6000));
        failed.message =
            "Unpaused before migration completed (migration may have succeeded with lost writes)"
                .to_owned();
        let p = bound(&[
            poll(1, "replicating", Some(100)),
            poll(2, "failover-granted", Some(400)),
            failed,
        ]);
        assert_eq!(p.happened, Some(true));
        assert_eq!(p.bound_ms, Some(5900));
    }

    #[test]
    fn the_import_side_and_an_unfinished_job_bound_nothing() {
        let mut import = poll(1, "failover-granted", Some(10));
        import.side = "import";
        let p = bound(&[import]);
        assert_eq!(p.happened, None);
        assert!(
            p.text.contains("no observation of the source"),
            "{}",
            p.text
        );
        let p = bound(&[poll(1, "failover-paused", Some(10))]);
        assert!(p.observed);
        assert_eq!(p.happened, None);
        assert!(p.text.contains("not over by the end"), "{}", p.text);
    }
}
