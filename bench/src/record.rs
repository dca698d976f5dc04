//! What a bench run measured, as JSON beside its report: the figures, the
//! references measured in the same run and each figure's ratio to its
//! reference, with the commit the binaries were built from and the
//! machine's load before and after. `logbook-bench check` compares the
//! ratios of a run with a recorded baseline (`crate::check`): on a shared,
//! noisy machine an absolute time says little, a ratio to a reference
//! measured alongside says whether the operator got slower.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What it is, unique within the command (`switchover p50`).
    pub name: String,
    /// Its value in `unit`.
    pub value: f64,
    /// `ms`, `s`, `MiB/s`, `count`.
    pub unit: &'static str,
    /// The figure of the same run it is compared with, when it has one.
    pub reference: Option<String>,
}

/// One run of one bench command.
#[derive(Debug, Clone)]
pub struct Record {
    /// The subcommand (`failover`, `reshard`, `backup`, ...).
    pub command: String,
    /// The command line's options, as parsed.
    pub args: String,
    /// `git describe`-like: the short commit, `-dirty` when the tree had
    /// changes; `unknown` outside a checkout.
    pub commit: String,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The 1, 5 and 15-minute load averages before the run.
    pub load_before: Option<[f64; 3]>,
    /// ... and after it.
    pub load_after: Option<[f64; 3]>,
    /// The CPUs the machine offers.
    pub cores: usize,
    /// Every figure, in the order measured.
    pub figures: Vec<Figure>,
}

impl Record {
    /// A record of `command` starting now.
    pub fn start(command: &str, args: String) -> Self {
        Record {
            command: command.to_owned(),
            args,
            commit: commit(),
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            load_before: load(),
            load_after: None,
            cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            figures: Vec::new(),
        }
    }

    /// Adds a figure.
    pub fn figure(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit,
            reference: None,
        });
    }

    /// Adds a figure compared with `reference` (a figure of this record).
    pub fn compared(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        reference: impl Into<String>,
    ) {
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit,
            reference: Some(reference.into()),
        });
    }

    /// Adds a duration in milliseconds.
    pub fn millis(&mut self, name: impl Into<String>, d: Duration) {
        self.figure(name, d.as_secs_f64() * 1000.0, "ms");
    }

    /// Each compared figure's ratio to its reference: `None` where the
    /// reference is missing or zero.
    pub fn ratios(&self) -> BTreeMap<String, Option<f64>> {
        let by_name: BTreeMap<&str, f64> = self
            .figures
            .iter()
            .map(|f| (f.name.as_str(), f.value))
            .collect();
        self.figures
            .iter()
            .filter_map(|f| {
                let reference = f.reference.as_deref()?;
                let ratio = by_name
                    .get(reference)
                    .filter(|r| **r > 0.0)
                    .map(|r| f.value / r);
                Some((f.name.clone(), ratio))
            })
            .collect()
    }

    /// The record as JSON.
    pub fn to_json(&self) -> Value {
        let load = |l: Option<[f64; 3]>| l.map_or(Value::Null, |l| json!(l));
        json!({
            "command": self.command,
            "args": self.args,
            "commit": self.commit,
            "started": self.started,
            "cores": self.cores,
            "load": {"before": load(self.load_before), "after": load(self.load_after)},
            "figures": self.figures.iter().map(|f| json!({
                "name": f.name,
                "value": f.value,
                "unit": f.unit,
                "reference": f.reference,
            })).collect::<Vec<_>>(),
            "ratios": self.ratios(),
        })
    }

    /// Ends the record (the load after) and writes it to
    /// `dir/<command>-<started>.json` and `dir/<command>-latest.json`;
    /// returns the first path.
    ///
    /// # Errors
    /// The directory cannot be made or a file written.
    pub fn finish(mut self, dir: &Path) -> std::io::Result<PathBuf> {
        self.load_after = load();
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        let stamp: String = self
            .started
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let path = dir.join(format!("{}-{stamp}.json", self.command));
        std::fs::write(&path, &text)?;
        std::fs::write(dir.join(format!("{}-latest.json", self.command)), &text)?;
        Ok(path)
    }
}

/// The commit the bench was built from, `-dirty` when tracked files had
/// uncommitted changes (embedded by `build.rs`: the checkout may have
/// moved on while a long run ran).
fn commit() -> String {
    env!("LOGBOOK_BENCH_BUILT_FROM").to_owned()
}

/// The load averages of `/proc/loadavg`.
fn load() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<f64>);
    Some([
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn ratios_follow_the_references_of_the_same_run() {
        let mut r = Record::start("failover", String::new());
        r.figure("bare p50", 200.0, "ms");
        r.compared("switchover p50", 20.0, "ms", "bare p50");
        r.compared("orphan p50", 5.0, "ms", "no such figure");
        let ratios = r.ratios();
        assert_eq!(ratios["switchover p50"], Some(0.1));
        assert_eq!(ratios["orphan p50"], None);
        assert!(!ratios.contains_key("bare p50"));
        let json = r.to_json();
        assert_eq!(json["figures"][1]["reference"], "bare p50");
        assert!(json["commit"].as_str().is_some_and(|c| !c.is_empty()));
    }

    #[test]
    fn a_record_is_written_with_a_latest_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Record::start("backup", "--runs 1".into());
        r.figure("restore", 1.5, "s");
        let path = r.finish(dir.path()).unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let latest: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("backup-latest.json")).unwrap())
                .unwrap();
        assert_eq!(written, latest);
        assert_eq!(written["figures"][0]["value"], 1.5);
    }
}
