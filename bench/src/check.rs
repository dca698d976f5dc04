//! `logbook-bench check`: each bench's last run beside its recorded
//! baseline (`bench/baselines/<command>.json`, a [`crate::record`] of an
//! earlier run). What is compared is each figure's ratio to its reference
//! measured in the same run (the operator's switchover beside a bare
//! `FAILOVER TO`, its reshard beside raw Atomic Slot Migration, its restore
//! beside a bare download), so that a loaded machine, which slows both,
//! does not read as a regression, while an operator path that got slower
//! does. Figures that must stay at zero (acknowledged writes lost, a
//! failover where none may happen) are compared as they are.

use std::fmt;
use std::path::Path;

use serde_json::Value;

/// How much worse than the baseline a ratio may get before it is named.
pub const TOLERANCE: f64 = 0.20;

/// A figure that got worse than its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// The bench command.
    pub command: String,
    /// The figure.
    pub figure: String,
    /// What it was in the baseline (a ratio, or a count).
    pub baseline: f64,
    /// What it is now; `None` when this run did not measure it.
    pub now: Option<f64>,
    /// Whether the values are ratios to a reference (else counts).
    pub ratio: bool,
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.ratio {
            "ratio to its reference"
        } else {
            "count"
        };
        match self.now {
            Some(now) if self.ratio && self.baseline > 0.0 => write!(
                f,
                "{}: {} — {what} {now:.3}, baseline {:.3} ({:+.0} %)",
                self.command,
                self.figure,
                self.baseline,
                (now / self.baseline - 1.0) * 100.0
            ),
            Some(now) => write!(
                f,
                "{}: {} — {what} {now}, baseline {}",
                self.command, self.figure, self.baseline
            ),
            None => write!(
                f,
                "{}: {} — not measured in this run (baseline {what} {:.3})",
                self.command, self.figure, self.baseline
            ),
        }
    }
}

/// Whether a figure must stay where the baseline had it or lower, as it
/// is (not as a ratio): acknowledged writes lost, failovers where none
/// may happen.
fn must_not_grow(name: &str) -> bool {
    name.ends_with("lost acked") || name.ends_with("false failovers")
}

/// The figures of `current` worse than in `baseline` (two records of one
/// command): ratios more than `tolerance` above the baseline's, counts
/// that must not grow above it, and ratios the baseline had that this run
/// did not measure.
///
/// # Errors
/// A record that is not one (no `ratios` or `figures`), or of another
/// command than the baseline.
pub fn compare(
    baseline: &Value,
    current: &Value,
    tolerance: f64,
) -> Result<Vec<Regression>, String> {
    let command = |v: &Value| v["command"].as_str().map(str::to_owned);
    let (Some(base_cmd), Some(cmd)) = (command(baseline), command(current)) else {
        return Err("a record without its command".to_owned());
    };
    if base_cmd != cmd {
        return Err(format!("the baseline is of {base_cmd}, the run of {cmd}"));
    }
    let (Some(base_ratios), Some(ratios)) = (
        baseline["ratios"].as_object(),
        current["ratios"].as_object(),
    ) else {
        return Err(format!("{cmd}: a record without ratios"));
    };
    let mut worse = Vec::new();
    for (name, base) in base_ratios {
        let Some(base) = base.as_f64() else { continue };
        let now = ratios.get(name).and_then(Value::as_f64);
        if now.is_none_or(|now| now > base * (1.0 + tolerance)) {
            worse.push(Regression {
                command: cmd.clone(),
                figure: name.clone(),
                baseline: base,
                now,
                ratio: true,
            });
        }
    }
    let counts = |v: &Value| -> Vec<(String, f64)> {
        v["figures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["value"].as_f64()?)))
            .filter(|(name, _)| must_not_grow(name))
            .collect()
    };
    let now_counts = counts(current);
    for (name, base) in counts(baseline) {
        let now = now_counts.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        if now.is_none_or(|now| now > base) {
            worse.push(Regression {
                command: cmd.clone(),
                figure: name,
                baseline: base,
                now,
                ratio: false,
            });
        }
    }
    Ok(worse)
}

/// The outcome of checking every command that has a baseline.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Commands compared.
    pub compared: Vec<String>,
    /// Commands with a baseline but no run in the results.
    pub not_run: Vec<String>,
    /// Everything that got worse.
    pub regressions: Vec<Regression>,
}

/// Compares `results/<command>-latest.json` with `baselines/<command>.json`
/// for every baseline.
///
/// # Errors
/// A baseline or result that cannot be read or is not a record.
pub fn check_dirs(baselines: &Path, results: &Path, tolerance: f64) -> Result<CheckReport, String> {
    let read = |path: &Path| -> Result<Value, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
    };
    let mut entries: Vec<_> = std::fs::read_dir(baselines)
        .map_err(|e| format!("{}: {e}", baselines.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    let mut report = CheckReport::default();
    for base_path in entries {
        let Some(command) = base_path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let run_path = results.join(format!("{command}-latest.json"));
        if !run_path.exists() {
            report.not_run.push(command.to_owned());
            continue;
        }
        let found = compare(&read(&base_path)?, &read(&run_path)?, tolerance)?;
        report.compared.push(command.to_owned());
        report.regressions.extend(found);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::record::Record;

    fn failover(switchover_ms: f64, lost: f64) -> Value {
        let mut r = Record::start("failover", String::new());
        r.figure("bare FAILOVER TO p50", 200.0, "ms");
        r.compared(
            "switchover p50",
            switchover_ms,
            "ms",
            "bare FAILOVER TO p50",
        );
        r.figure("switchover lost acked", lost, "count");
        r.to_json()
    }

    #[test]
    fn a_ratio_a_fifth_worse_or_less_passes_and_more_is_named() {
        let base = failover(20.0, 0.0);
        assert!(
            compare(&base, &failover(23.9, 0.0), TOLERANCE)
                .unwrap()
                .is_empty()
        );
        let worse = compare(&base, &failover(30.0, 0.0), TOLERANCE).unwrap();
        assert_eq!(worse.len(), 1);
        assert_eq!(worse[0].figure, "switchover p50");
        assert!(worse[0].to_string().contains("+50 %"), "{}", worse[0]);
    }

    #[test]
    fn a_lost_write_is_named_however_small() {
        let worse = compare(&failover(20.0, 0.0), &failover(20.0, 1.0), TOLERANCE).unwrap();
        assert_eq!(worse[0].figure, "switchover lost acked");
    }

    #[test]
    fn a_figure_no_longer_measured_is_named_and_commands_must_match() {
        let mut r = Record::start("failover", String::new());
        r.figure("bare FAILOVER TO p50", 200.0, "ms");
        let worse = compare(&failover(20.0, 0.0), &r.to_json(), TOLERANCE).unwrap();
        assert!(
            worse
                .iter()
                .any(|w| w.figure == "switchover p50" && w.now.is_none())
        );
        let other = Record::start("backup", String::new()).to_json();
        assert!(compare(&failover(20.0, 0.0), &other, TOLERANCE).is_err());
    }
}
