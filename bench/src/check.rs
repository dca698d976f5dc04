//! `logbook-bench check`: each bench's last run beside its recorded
//! baseline (`bench/baselines/<command>.json`). What is compared is each
//! figure's ratio to its reference measured in the same run (the
//! operator's switchover beside a bare `FAILOVER TO`, its reshard beside
//! raw Atomic Slot Migration, its restore beside a bare download), so that
//! a loaded machine, which slows both, does not read as a regression,
//! while an operator path that got slower does. Figures that must stay at
//! zero (acknowledged writes lost, a failover where none may happen) are
//! compared as they are.
//!
//! A baseline is made from several runs of one command ([`baseline`]):
//! each ratio's median over them, and a tolerance of its own from how far
//! the runs spread ([`SPREAD_MARGIN`] times the widest run's distance from
//! the median, never under the floor). A figure that held still gets a
//! tight bound; a noisy one a wide bound, named in the baseline for all to
//! see, instead of one tolerance that is too tight for the one and too
//! loose for the other.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The least tolerance a ratio gets, however still it held in the
/// baseline's runs (0.15: 15 % worse than the baseline's median).
pub const TOLERANCE: f64 = 0.15;

/// A ratio's tolerance is this many times the widest distance of one of
/// the baseline's runs from their median (relative to the median).
pub const SPREAD_MARGIN: f64 = 2.0;

/// The format of a baseline file this build writes and reads.
const BASELINE_FORMAT: u64 = 2;

/// One compared figure of a run beside its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// The bench command.
    pub command: String,
    /// The figure.
    pub figure: String,
    /// The baseline's value: a ratio's median over the baseline's runs,
    /// or a count's highest.
    pub baseline: f64,
    /// How much above the baseline a ratio may be (0.2: 20 %); 0 for a
    /// count.
    pub tolerance: f64,
    /// What it is now; `None` when this run did not measure it.
    pub now: Option<f64>,
    /// Whether the values are ratios to a reference (else counts).
    pub ratio: bool,
}

impl Compared {
    /// Whether the figure is worse than its baseline allows.
    pub fn worse(&self) -> bool {
        match self.now {
            None => true,
            Some(now) if self.ratio => now > self.baseline * (1.0 + self.tolerance),
            Some(now) => now > self.baseline,
        }
    }
}

impl fmt::Display for Compared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.ratio {
            "ratio to its reference"
        } else {
            "count"
        };
        match self.now {
            Some(now) if self.ratio && self.baseline > 0.0 => write!(
                f,
                "{}: {} — {what} {now:.4}, baseline {:.4} ({:+.0} %, tolerance {:.0} %)",
                self.command,
                self.figure,
                self.baseline,
                (now / self.baseline - 1.0) * 100.0,
                self.tolerance * 100.0
            ),
            Some(now) => write!(
                f,
                "{}: {} — {what} {now}, baseline {}",
                self.command, self.figure, self.baseline
            ),
            None => write!(
                f,
                "{}: {} — not measured in this run (baseline {what} {:.4})",
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

/// The median of `values` (not empty): the middle one, or the mean of
/// the two middle ones.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match (values.get(mid.wrapping_sub(1)), values.get(mid)) {
        (Some(a), Some(b)) if values.len().is_multiple_of(2) => (a + b) / 2.0,
        (_, Some(m)) => *m,
        _ => f64::NAN,
    }
}

/// The baseline of one command from records of its runs (`Record`s as
/// JSON, oldest first): every ratio's median, lowest and highest over the
/// runs and its tolerance, `max(floor, SPREAD_MARGIN × (highest − median)
/// / median)`; every count that must not grow at its highest; and the
/// runs' commits, start times and loads.
///
/// # Errors
/// No record, records of different commands, a record without ratios, or
/// a ratio one run measured and another did not (the baseline would
/// rest on fewer runs than it says).
pub fn baseline(records: &[Value], floor: f64) -> Result<Value, String> {
    let command = |v: &Value| v["command"].as_str().map(str::to_owned);
    let Some(first) = records.first() else {
        return Err("no run to make a baseline from".to_owned());
    };
    let Some(cmd) = command(first) else {
        return Err("a record without its command".to_owned());
    };
    let mut ratios: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    let mut runs = Vec::new();
    for (i, record) in records.iter().enumerate() {
        if command(record).as_deref() != Some(cmd.as_str()) {
            return Err(format!(
                "run {} is of {:?}, the others of {cmd}",
                i + 1,
                record["command"]
            ));
        }
        let Some(these) = record["ratios"].as_object() else {
            return Err(format!("{cmd}: run {} has no ratios", i + 1));
        };
        for (name, value) in these {
            if let Some(v) = value.as_f64() {
                ratios.entry(name.clone()).or_default().push(v);
            }
        }
        for (name, value) in count_figures(record) {
            let highest = counts.entry(name).or_insert(value);
            *highest = highest.max(value);
        }
        runs.push(json!({
            "commit": record["commit"],
            "started": record["started"],
            "load": record["load"],
        }));
    }
    let mut out = serde_json::Map::new();
    for (name, mut values) in ratios {
        if values.len() != records.len() {
            return Err(format!(
                "{cmd}: {name} was measured in {} of the {} runs",
                values.len(),
                records.len()
            ));
        }
        let (low, high) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(*v), h.max(*v))
            });
        let mid = median(&mut values);
        let spread = if mid > 0.0 { high / mid - 1.0 } else { 0.0 };
        out.insert(
            name,
            json!({
                "median": mid,
                "lowest": low,
                "highest": high,
                "tolerance": floor.max(SPREAD_MARGIN * spread),
            }),
        );
    }
    Ok(json!({
        "format": BASELINE_FORMAT,
        "command": cmd,
        "runs": runs,
        "ratios": out,
        "counts": counts,
    }))
}

/// The figures of a record that must not grow, with their values.
fn count_figures(record: &Value) -> Vec<(String, f64)> {
    record["figures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["value"].as_f64()?)))
        .filter(|(name, _)| must_not_grow(name))
        .collect()
}

/// Every figure of the baseline beside `current` (a run's record of the
/// same command): each ratio against its median and tolerance (never
/// under `floor`), each count that must not grow against its highest.
/// [`Compared::worse`] says which got worse.
///
/// # Errors
/// A baseline of another format (made by an older build: `make
/// bench-baseline` makes it again) or another command, or a record
/// without ratios.
pub fn compare(baseline: &Value, current: &Value, floor: f64) -> Result<Vec<Compared>, String> {
    let (Some(base_cmd), Some(cmd)) = (baseline["command"].as_str(), current["command"].as_str())
    else {
        return Err("a record without its command".to_owned());
    };
    if baseline["format"].as_u64() != Some(BASELINE_FORMAT) {
        return Err(format!(
            "the {base_cmd} baseline is not of format {BASELINE_FORMAT} (made by an older build): \
             make it again with `make bench-baseline`"
        ));
    }
    if base_cmd != cmd {
        return Err(format!("the baseline is of {base_cmd}, the run of {cmd}"));
    }
    let (Some(base_ratios), Some(ratios)) = (
        baseline["ratios"].as_object(),
        current["ratios"].as_object(),
    ) else {
        return Err(format!("{cmd}: a record without ratios"));
    };
    let mut all = Vec::new();
    for (name, base) in base_ratios {
        let Some(mid) = base["median"].as_f64() else {
            return Err(format!("{cmd}: the baseline's {name} has no median"));
        };
        all.push(Compared {
            command: cmd.to_owned(),
            figure: name.clone(),
            baseline: mid,
            tolerance: floor.max(base["tolerance"].as_f64().unwrap_or(floor)),
            now: ratios.get(name).and_then(Value::as_f64),
            ratio: true,
        });
    }
    let now_counts = count_figures(current);
    for (name, base) in baseline["counts"].as_object().into_iter().flatten() {
        let Some(base) = base.as_f64() else { continue };
        all.push(Compared {
            command: cmd.to_owned(),
            figure: name.clone(),
            baseline: base,
            tolerance: 0.0,
            now: now_counts.iter().find(|(n, _)| n == name).map(|(_, v)| *v),
            ratio: false,
        });
    }
    Ok(all)
}

/// The outcome of checking every command that has a baseline.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Commands compared.
    pub compared: Vec<String>,
    /// Commands with a baseline but no run in the results.
    pub not_run: Vec<String>,
    /// Every figure compared, worse or not.
    pub figures: Vec<Compared>,
}

impl CheckReport {
    /// The figures that got worse.
    pub fn regressions(&self) -> impl Iterator<Item = &Compared> {
        self.figures.iter().filter(|c| c.worse())
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// Compares `results/<command>-latest.json` with `baselines/<command>.json`
/// for every baseline.
///
/// # Errors
/// A baseline or result that cannot be read or is not a record.
pub fn check_dirs(baselines: &Path, results: &Path, floor: f64) -> Result<CheckReport, String> {
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
        let found = compare(&read_json(&base_path)?, &read_json(&run_path)?, floor)
            .map_err(|e| format!("{}: {e}", base_path.display()))?;
        report.compared.push(command.to_owned());
        report.figures.extend(found);
    }
    Ok(report)
}

/// The records of the last `runs` runs of each of `commands` in
/// `results` (`<command>-<started>.json`, not the `-latest` copies),
/// oldest first, by command; of every command with a latest run there
/// when `commands` is empty.
///
/// # Errors
/// The directory cannot be read, a record not read, or a command with
/// fewer runs than asked for.
pub fn last_runs(
    results: &Path,
    runs: usize,
    commands: &[String],
) -> Result<BTreeMap<String, Vec<Value>>, String> {
    let mut by_command: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(results).map_err(|e| format!("{}: {e}", results.display()))? {
        let path = entry
            .map_err(|e| format!("{}: {e}", results.display()))?
            .path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|x| x != "json") || stem.ends_with("-latest") {
            continue;
        }
        // `<command>-<stamp>`: the stamp is the start time, digits and
        // letters only, so the names sort as the runs started.
        let Some((command, _)) = stem.rsplit_once('-') else {
            continue;
        };
        by_command.entry(command.to_owned()).or_default().push(path);
    }
    let mut out = BTreeMap::new();
    for (command, mut paths) in by_command {
        let asked = if commands.is_empty() {
            results.join(format!("{command}-latest.json")).exists()
        } else {
            commands.contains(&command)
        };
        if !asked {
            continue;
        }
        paths.sort();
        if paths.len() < runs {
            return Err(format!(
                "{command}: {} run(s) in {}, {runs} asked for",
                paths.len(),
                results.display()
            ));
        }
        let records = paths
            .split_off(paths.len() - runs)
            .iter()
            .map(|p| read_json(p))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(command, records);
    }
    Ok(out)
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

    fn worse(base: &Value, now: &Value) -> Vec<Compared> {
        compare(base, now, TOLERANCE)
            .unwrap()
            .into_iter()
            .filter(Compared::worse)
            .collect()
    }

    #[test]
    fn a_still_figure_gets_the_floor_and_more_than_it_is_named() {
        let base = baseline(&[failover(20.0, 0.0), failover(20.0, 0.0)], TOLERANCE).unwrap();
        let ratio = &base["ratios"]["switchover p50"];
        assert_eq!(ratio["median"], 0.1);
        assert_eq!(ratio["tolerance"], TOLERANCE);
        assert!(worse(&base, &failover(22.9, 0.0)).is_empty());
        let named = worse(&base, &failover(30.0, 0.0));
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].figure, "switchover p50");
        assert!(named[0].to_string().contains("+50 %"), "{}", named[0]);
    }

    #[test]
    fn a_noisy_figure_gets_a_tolerance_from_its_spread() {
        // Runs of 18, 20 and 26 ms: median 20, the widest 30 % above it,
        // so a tolerance of 60 %.
        let runs = [18.0, 26.0, 20.0].map(|ms| failover(ms, 0.0));
        let base = baseline(&runs, TOLERANCE).unwrap();
        let ratio = &base["ratios"]["switchover p50"];
        assert_eq!(ratio["median"], 0.1);
        assert_eq!(ratio["lowest"], 0.09);
        assert_eq!(ratio["highest"], 0.13);
        let tolerance = ratio["tolerance"].as_f64().unwrap();
        assert!((tolerance - 0.6).abs() < 1e-9, "{tolerance}");
        assert!(worse(&base, &failover(31.0, 0.0)).is_empty());
        assert_eq!(worse(&base, &failover(33.0, 0.0)).len(), 1);
        assert_eq!(base["runs"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_lost_write_is_named_however_small() {
        let base = baseline(&[failover(20.0, 0.0)], TOLERANCE).unwrap();
        let named = worse(&base, &failover(20.0, 1.0));
        assert_eq!(named[0].figure, "switchover lost acked");
        assert!(!named[0].ratio);
    }

    #[test]
    fn a_figure_no_longer_measured_is_named_and_commands_must_match() {
        let mut r = Record::start("failover", String::new());
        r.figure("bare FAILOVER TO p50", 200.0, "ms");
        let base = baseline(&[failover(20.0, 0.0)], TOLERANCE).unwrap();
        assert!(
            worse(&base, &r.to_json())
                .iter()
                .any(|w| w.figure == "switchover p50" && w.now.is_none())
        );
        let other = Record::start("backup", String::new()).to_json();
        assert!(compare(&base, &other, TOLERANCE).is_err());
        assert!(baseline(&[failover(20.0, 0.0), other], TOLERANCE).is_err());
        // A ratio one run lacked: the baseline would rest on fewer runs.
        assert!(baseline(&[failover(20.0, 0.0), r.to_json()], TOLERANCE).is_err());
    }

    #[test]
    fn a_baseline_of_the_old_format_is_refused_by_name() {
        // The old baselines were a copy of one run's record.
        let err = compare(&failover(20.0, 0.0), &failover(20.0, 0.0), TOLERANCE).unwrap_err();
        assert!(err.contains("make bench-baseline"), "{err}");
    }

    #[test]
    fn the_last_runs_of_each_command_are_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for (stamp, ms) in [
            ("20261130T010000Z", 10.0),
            ("20261130T020000Z", 20.0),
            ("20261130T030000Z", 30.0),
        ] {
            let text = serde_json::to_string(&failover(ms, 0.0)).unwrap();
            std::fs::write(dir.path().join(format!("failover-{stamp}.json")), &text).unwrap();
            std::fs::write(dir.path().join("failover-latest.json"), &text).unwrap();
        }
        let runs = last_runs(dir.path(), 2, &[]).unwrap();
        let values: Vec<_> = runs["failover"]
            .iter()
            .map(|r| r["figures"][1]["value"].as_f64().unwrap())
            .collect();
        assert_eq!(values, [20.0, 30.0]);
        let err = last_runs(dir.path(), 4, &["failover".to_owned()]).unwrap_err();
        assert!(
            last_runs(dir.path(), 4, &["backup".to_owned()])
                .unwrap()
                .is_empty()
        );
        assert!(err.contains("3 run(s)"), "{err}");
    }
}
