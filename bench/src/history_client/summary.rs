//! What a run leaves behind for people and files: the counts of its
//! operations, the history as JSON lines (one [`Op`] a line, as
//! `logbook-history` reads it back), and both checkers' verdicts in a few
//! lines for the soak's report.
//!
//! It judges nothing itself: the verdicts are the checkers'.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use logbook_history::{
    AnomalyKind, History, ListReport, Op, Outcome, RegisterConfig, RegisterReport, Verdict,
    check_list, check_registers,
};

use super::HistoryClientError;

/// How many operations a run made, and how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Every operation.
    pub ops: usize,
    /// Reads among them (`LRANGE`, `GET`).
    pub reads: usize,
    /// Ended `Ok`.
    pub ok: usize,
    /// Ended `Fail`.
    pub fail: usize,
    /// Ended `Unknown`.
    pub unknown: usize,
    /// Distinct process ids (clients, plus one more per `Unknown`).
    pub processes: usize,
}

impl RunCounts {
    /// Counts the operations of `history`.
    pub fn of(history: &History) -> RunCounts {
        let mut counts = RunCounts::default();
        let mut processes = HashSet::new();
        for op in history.ops() {
            counts.ops = counts.ops.saturating_add(1);
            if op.f.is_read() {
                counts.reads = counts.reads.saturating_add(1);
            }
            let ended = match op.outcome {
                Outcome::Ok(_) => &mut counts.ok,
                Outcome::Fail(_) => &mut counts.fail,
                Outcome::Unknown(_) => &mut counts.unknown,
            };
            *ended = ended.saturating_add(1);
            processes.insert(op.process);
        }
        counts.processes = processes.len();
        counts
    }

    /// The share of reads, 0 for an empty run.
    pub fn read_fraction(&self) -> f64 {
        if self.ops == 0 {
            return 0.0;
        }
        // Counts far below 2^52: exact as floats.
        #[allow(clippy::cast_precision_loss)]
        let fraction = self.reads as f64 / self.ops as f64;
        fraction
    }
}

impl fmt::Display for RunCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ops ({} reads), ok {} / fail {} / unknown {}, {} processes",
            self.ops, self.reads, self.ok, self.fail, self.unknown, self.processes
        )
    }
}

/// Writes `history` to `path`, one operation a JSON line.
///
/// # Errors
/// [`HistoryClientError::File`] when the file cannot be written.
pub fn write_json_lines(history: &History, path: &Path) -> Result<(), HistoryClientError> {
    let failed = |source| HistoryClientError::File {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(failed)?;
    let mut out = BufWriter::new(file);
    for op in history.ops() {
        serde_json::to_writer(&mut out, op).map_err(|e| failed(e.into()))?;
        out.write_all(b"\n").map_err(failed)?;
    }
    out.flush().map_err(failed)
}

/// Reads a history written by [`write_json_lines`] (blank lines skipped).
///
/// # Errors
/// [`HistoryClientError::File`] when the file cannot be read,
/// [`HistoryClientError::Line`] for a line that is not an operation, and
/// [`HistoryClientError::History`] when the operations break a history
/// rule.
pub fn read_json_lines(path: &Path) -> Result<History, HistoryClientError> {
    let failed = |source| HistoryClientError::File {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut ops = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(failed)?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line).map_err(|source| HistoryClientError::Line {
            path: path.to_owned(),
            line: index.saturating_add(1),
            source,
        })?;
        ops.push(op);
    }
    Ok(History::new(ops)?)
}

/// Both checkers' reports on one history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    /// The list checker's.
    pub lists: ListReport,
    /// The register checker's.
    pub registers: RegisterReport,
}

impl CheckSummary {
    /// No list anomaly and every register proved linearizable.
    pub fn valid(&self) -> bool {
        self.lists.valid() && self.registers.valid()
    }
}

/// Runs both checkers on `history`.
pub fn check_history(history: &History, registers: &RegisterConfig) -> CheckSummary {
    CheckSummary {
        lists: check_list(history),
        registers: check_registers(history, registers),
    }
}

/// Anomalies and violations quoted in full, at most this many per kind.
const QUOTED: usize = 3;

impl fmt::Display for CheckSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lists = &self.lists;
        let c = &lists.counts;
        write!(
            f,
            "lists: {} ops ({} reads), ok {} / fail {} / unknown {}; ",
            c.total, c.reads, c.ok, c.fail, c.unknown
        )?;
        if lists.valid() {
            write!(f, "no anomaly")?;
        } else {
            let kinds: Vec<String> = lists
                .by_kind
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            write!(f, "anomalies: {}", kinds.join(", "))?;
        }
        let judged = lists
            .keys
            .iter()
            .filter(|k| matches!(k.final_read, logbook_history::FinalRead::Late { .. }))
            .count();
        writeln!(f, "; loss judged on {judged} of {} keys", lists.keys.len())?;
        for kind in AnomalyKind::ALL {
            for anomaly in lists.of_kind(kind).take(QUOTED) {
                writeln!(f, "  {anomaly}")?;
            }
        }
        let registers = &self.registers;
        let c = &registers.counts;
        let illegal: Vec<_> = registers.illegal().collect();
        let undecided = registers.undecided().count();
        writeln!(
            f,
            "registers: {} ops ({} reads), ok {} / fail {} / unknown {}; {} keys: {} linearizable, {} not, {} undecided",
            c.total,
            c.reads,
            c.ok,
            c.fail,
            c.unknown,
            registers.keys.len(),
            registers
                .keys
                .iter()
                .filter(|k| matches!(k.verdict, Verdict::Linearizable))
                .count(),
            illegal.len(),
            undecided
        )?;
        for key in illegal.into_iter().take(QUOTED) {
            if let Verdict::Illegal(violation) = &key.verdict {
                writeln!(
                    f,
                    "  {:?}: {} at {}",
                    key.key, violation.explanation, violation.op
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use logbook_history::{Function, Recorder};

    use super::*;

    fn sample() -> History {
        let mut r = Recorder::new();
        let key = || "k".to_owned();
        let a = r.invoke(
            0,
            Function::Append {
                key: key(),
                value: 1,
            },
            10,
        );
        r.complete(a, Outcome::done(), 20).unwrap();
        r.served_by(a, "127.0.0.1:1").unwrap();
        let b = r.invoke(
            1,
            Function::Append {
                key: key(),
                value: 2,
            },
            11,
        );
        r.complete(b, Outcome::unknown("timed out"), 30).unwrap();
        let c = r.invoke(5, Function::ReadList { key: key() }, 40);
        r.complete(c, Outcome::list(vec![2]), 50).unwrap();
        let d = r.invoke(0, Function::ReadRegister { key: "r".into() }, 41);
        r.complete(d, Outcome::fail("READONLY"), 45).unwrap();
        r.finish().unwrap()
    }

    #[test]
    fn counts_and_summary_say_what_happened() {
        let history = sample();
        let counts = RunCounts::of(&history);
        assert_eq!(
            counts,
            RunCounts {
                ops: 4,
                reads: 2,
                ok: 2,
                fail: 1,
                unknown: 1,
                processes: 3,
            }
        );
        assert!((counts.read_fraction() - 0.5).abs() < 1e-9);
        let summary = check_history(&history, &RegisterConfig::default());
        assert!(!summary.valid());
        assert_eq!(summary.lists.count(AnomalyKind::LostAppend), 1);
        let text = summary.to_string();
        assert!(text.contains("lost-append 1"), "{text}");
        assert!(text.contains("registers: 1 ops"), "{text}");
    }

    #[test]
    fn json_lines_round_trip() {
        let history = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        write_json_lines(&history, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert_eq!(read_json_lines(&path).unwrap(), history);
        std::fs::write(&path, "{\"process\":1}\n").unwrap();
        assert!(matches!(
            read_json_lines(&path),
            Err(HistoryClientError::Line { line: 1, .. })
        ));
    }
}
