//! The report of `logbook-bench reshard`: one line per timed reshard, the
//! summary (medians of the runs) and, as the last line, one JSON object
//! for machines. Pure: it formats what the runs measured.

use std::time::Duration;

use serde_json::{Value, json};

/// The target: the operator's reshard within 1.2 × raw ASM's.
pub const TARGET_OPERATOR_TO_ASM_MAX: f64 = 1.2;
/// The target: raw ASM at least 25 × faster than the legacy
/// `redis-cli --cluster rebalance`.
pub const TARGET_LEGACY_TO_ASM_MIN: f64 = 25.0;

/// A way of resharding, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The bench drives Atomic Slot Migration itself.
    RawAsm,
    /// `redis-cli --cluster rebalance --cluster-use-empty-masters`.
    Legacy,
    /// The Logbook operator, `spec.shards` patched.
    Operator,
}

impl Method {
    /// The report's key: `raw_asm`, `legacy`, `operator`.
    pub fn key(self) -> &'static str {
        match self {
            Method::RawAsm => "raw_asm",
            Method::Legacy => "legacy",
            Method::Operator => "operator",
        }
    }
}

/// One timed reshard.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodRun {
    /// From the start (migrations issued, `redis-cli` started, the spec
    /// patched) to balanced and agreed.
    pub elapsed: Duration,
    /// Slots whose owner changed.
    pub slots_moved: u32,
    /// Loaded keys in those slots.
    pub keys_moved: u64,
    /// The longest time between two successful writes of the writer
    /// around and during the reshard (`None`: no success after it began).
    pub max_write_pause: Option<Duration>,
    /// Writes the writer attempted, and how many were acknowledged.
    pub writes: usize,
    /// Acknowledged writes (accepted, and `WAIT 1` saw them on a replica
    /// when the shards have replicas).
    pub acked: usize,
    /// Loaded keys and acknowledged writes not read back with their value.
    pub lost_keys: usize,
    /// Operator only: from the patch to the status Ready with every shard.
    pub ready_after: Option<Duration>,
    /// Raw ASM only: from starting the fourth shard's processes (the
    /// bench then meets them, seats the replica, waits for its first sync
    /// and for every primary to know the new one, and moves the slots) to
    /// balanced and agreed: the steps the operator's time includes, its
    /// pods aside. `elapsed` times the moves alone.
    pub from_start: Option<Duration>,
    /// The machine's 1-minute load average when the clock started: the
    /// build machines are shared, and a run under load says so.
    pub load: Option<f64>,
}

/// Every run of one method, or why there is none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodResults {
    /// The runs that finished, in order.
    pub runs: Vec<MethodRun>,
    /// The runs that failed (a job failed, `redis-cli` gave up, nothing
    /// balanced in time): run number (from 0) and why. A failure of the
    /// method under test is a result, reported beside the times.
    pub failed: Vec<(usize, String)>,
    /// Why runs are missing (skipped, refused), for the report.
    pub note: Option<String>,
}

impl MethodResults {
    /// The median of the runs' times.
    pub fn median(&self) -> Option<Duration> {
        median(&self.runs.iter().map(|r| r.elapsed).collect::<Vec<_>>())
    }

    fn max_pause(&self) -> Option<Duration> {
        self.runs.iter().filter_map(|r| r.max_write_pause).max()
    }

    pub(crate) fn lost(&self) -> Option<usize> {
        (!self.runs.is_empty()).then(|| self.runs.iter().map(|r| r.lost_keys).sum())
    }

    fn slots_moved(&self) -> Option<u32> {
        self.runs.iter().map(|r| r.slots_moved).max()
    }

    fn keys_moved(&self) -> Option<u64> {
        let mut keys: Vec<u64> = self.runs.iter().map(|r| r.keys_moved).collect();
        keys.sort_unstable();
        keys.get(keys.len() / 2).copied()
    }

    pub(crate) fn median_from_start(&self) -> Option<Duration> {
        let times: Vec<Duration> = self.runs.iter().filter_map(|r| r.from_start).collect();
        median(&times)
    }

    fn ready_median(&self) -> Option<Duration> {
        let ready: Vec<Duration> = self.runs.iter().filter_map(|r| r.ready_after).collect();
        median(&ready)
    }
}

/// What the bench measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ReshardReport {
    /// Keys loaded before each reshard.
    pub keys: u64,
    /// Runs asked for, per method.
    pub runs: usize,
    /// Replicas per shard.
    pub replicas: usize,
    /// Bytes of each loaded value.
    pub value_bytes: usize,
    /// Shards before and after.
    pub shards: (usize, usize),
    /// The bench driving Atomic Slot Migration.
    pub raw_asm: MethodResults,
    /// `redis-cli --cluster rebalance`.
    pub legacy: MethodResults,
    /// The operator.
    pub operator: MethodResults,
}

/// The median of `times`: the middle one, or the mean of the two middle
/// ones; `None` when there is none.
pub fn median(times: &[Duration]) -> Option<Duration> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted.get(mid).copied()
    } else {
        let (a, b) = (sorted.get(mid.checked_sub(1)?)?, sorted.get(mid)?);
        Some(a.saturating_add(*b) / 2)
    }
}

/// `; N failed run(s)` and the note, or nothing.
fn failures(results: &MethodResults) -> String {
    let mut out = String::new();
    if !results.failed.is_empty() {
        out.push_str(&format!(
            "; {} failed run(s): {}",
            results.failed.len(),
            results
                .failed
                .iter()
                .map(|(run, why)| format!("run {}: {why}", run.saturating_add(1)))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if let Some(note) = &results.note
        && !results.runs.is_empty()
    {
        out.push_str(&format!(" ({note})"));
    }
    out
}

fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round(d.as_secs_f64(), 3)))
}

fn millis(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round(d.as_secs_f64() * 1000.0, 1)))
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> Option<f64> {
    let (a, b) = (a?.as_secs_f64(), b?.as_secs_f64());
    (b > 0.0).then(|| a / b)
}

/// The progress line of run `index` (from 0) of `method`.
pub fn run_line(method: Method, index: usize, run: &MethodRun) -> String {
    let pause = run
        .max_write_pause
        .map_or_else(|| "–".to_owned(), |p| format!("{} ms", p.as_millis()));
    let load = run
        .load
        .map(|l| format!(" (load {l:.2})"))
        .unwrap_or_default();
    let ready = run
        .ready_after
        .map(|r| format!(", status Ready at {:.3} s", r.as_secs_f64()))
        .unwrap_or_default();
    let from_start = run
        .from_start
        .map(|r| format!(", {:.3} s from starting the new shard", r.as_secs_f64()))
        .unwrap_or_default();
    format!(
        "  {} run {}: {:.3} s to balanced and agreed ({} slots, {} keys moved){from_start}{ready}; max write pause {pause}; {} of {} writes acknowledged; lost {}{load}",
        method.key(),
        index.saturating_add(1),
        run.elapsed.as_secs_f64(),
        run.slots_moved,
        run.keys_moved,
        run.acked,
        run.writes,
        run.lost_keys,
    )
}

/// The line of run `index` (from 0) of `method` that failed.
pub fn failed_line(method: Method, index: usize, why: &str) -> String {
    format!(
        "  {} run {}: failed: {why}",
        method.key(),
        index.saturating_add(1)
    )
}

impl ReshardReport {
    fn methods(&self) -> [(Method, &MethodResults); 3] {
        [
            (Method::RawAsm, &self.raw_asm),
            (Method::Legacy, &self.legacy),
            (Method::Operator, &self.operator),
        ]
    }

    /// The summary lines, then the JSON object as the last line.
    pub fn render(&self) -> String {
        let (from, to) = self.shards;
        let mut out = format!(
            "\nreshard {from} → {to} shards, {} keys of {} bytes, {} replica(s) per shard; median of the runs:\n",
            self.keys, self.value_bytes, self.replicas
        );
        let asm = self.raw_asm.median();
        let asm_from_start = self.raw_asm.median_from_start();
        for (method, results) in self.methods() {
            let line = match results.median() {
                Some(m) => format!(
                    "  {:<9} {:>9.3} s ({} run{}){}; max write pause {}; lost {}{}\n",
                    method.key(),
                    m.as_secs_f64(),
                    results.runs.len(),
                    if results.runs.len() == 1 { "" } else { "s" },
                    match (method, ratio(Some(m), asm)) {
                        (Method::RawAsm, _) => asm_from_start
                            .map(|f| format!(
                                " moving, {:.3} s from starting the new shard",
                                f.as_secs_f64()
                            ))
                            .unwrap_or_default(),
                        (_, None) => String::new(),
                        (Method::Operator, Some(r)) => format!(
                            ", {r:.2}× raw ASM's moves{}",
                            ratio(Some(m), asm_from_start)
                                .map(|f| format!(", {f:.2}× raw ASM from starting the shard"))
                                .unwrap_or_default()
                        ),
                        (_, Some(r)) => format!(", {r:.2}× raw ASM"),
                    },
                    results
                        .max_pause()
                        .map_or_else(|| "–".to_owned(), |p| format!("{} ms", p.as_millis())),
                    results.lost().unwrap_or(0),
                    failures(results),
                ),
                None => format!(
                    "  {:<9} not measured: {}{}\n",
                    method.key(),
                    results.note.as_deref().unwrap_or("no run finished"),
                    failures(results),
                ),
            };
            out.push_str(&line);
        }
        out.push_str(&format!(
            "  targets: operator ≤ {TARGET_OPERATOR_TO_ASM_MAX}× raw ASM, legacy ≥ {TARGET_LEGACY_TO_ASM_MIN}× raw ASM\n"
        ));
        out.push_str(&self.json().to_string());
        out.push('\n');
        out
    }

    /// The machine-readable summary.
    pub fn json(&self) -> Value {
        let asm = self.raw_asm.median();
        let per = |f: &dyn Fn(&MethodResults) -> Value| {
            let mut map = serde_json::Map::new();
            for (method, results) in self.methods() {
                map.insert(method.key().to_owned(), f(results));
            }
            Value::Object(map)
        };
        let pauses: Vec<Duration> = self
            .methods()
            .iter()
            .filter_map(|(_, r)| r.max_pause())
            .collect();
        let lost: usize = self.methods().iter().filter_map(|(_, r)| r.lost()).sum();
        let slots_moved = self.methods().iter().find_map(|(_, r)| r.slots_moved());
        let op_ratio = ratio(self.operator.median(), asm);
        let asm_from_start = self.raw_asm.median_from_start();
        let op_ratio_from_start = ratio(self.operator.median(), asm_from_start);
        let legacy_ratio = ratio(self.legacy.median(), asm);
        json!({
            "bench": "reshard",
            "keys": self.keys,
            "runs": self.runs,
            "replicas_per_shard": self.replicas,
            "value_bytes": self.value_bytes,
            "shards_from": self.shards.0,
            "shards_to": self.shards.1,
            "operator_s": secs(self.operator.median()),
            "raw_asm_s": secs(asm),
            "legacy_s": secs(self.legacy.median()),
            "ratio_operator_to_asm": op_ratio.map(|r| round(r, 3)),
            "raw_asm_from_start_s": secs(asm_from_start),
            "ratio_operator_to_asm_from_start": op_ratio_from_start.map(|r| round(r, 3)),
            "ratio_legacy_to_asm": legacy_ratio.map(|r| round(r, 3)),
            "max_write_pause_ms": millis(pauses.into_iter().max()),
            "lost_keys": lost,
            "slots_moved": slots_moved,
            "operator_ready_s": secs(self.operator.ready_median()),
            "max_write_pause_ms_by_method": per(&|r| millis(r.max_pause())),
            "lost_keys_by_method": per(&|r| json!(r.lost())),
            "slots_moved_by_method": per(&|r| json!(r.slots_moved())),
            "keys_moved_by_method": per(&|r| json!(r.keys_moved())),
            "runs_by_method": per(&|r| json!(r.runs.len())),
            "failed_runs_by_method": per(&|r| json!(r.failed.len())),
            "load_average_max": self
                .methods()
                .iter()
                .flat_map(|(_, r)| r.runs.iter().filter_map(|run| run.load))
                .max_by(f64::total_cmp)
                .map(|l| round(l, 2)),
            "operator_note": self.operator.note,
            "legacy_note": self.legacy.note,
            "targets": {
                "operator_to_asm_max": TARGET_OPERATOR_TO_ASM_MAX,
                "legacy_to_asm_min": TARGET_LEGACY_TO_ASM_MIN,
                "operator_met": op_ratio.map(|r| r <= TARGET_OPERATOR_TO_ASM_MAX),
                "operator_met_from_start": op_ratio_from_start.map(|r| r <= TARGET_OPERATOR_TO_ASM_MAX),
                "legacy_met": legacy_ratio.map(|r| r >= TARGET_LEGACY_TO_ASM_MIN),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value at `path`, or a marker string when there is none (so a
    /// missing field never passes for `null`).
    fn at(json: &Value, path: &str) -> Value {
        json.pointer(path)
            .cloned()
            .unwrap_or_else(|| Value::String(format!("no {path}")))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_median_is_the_middle_or_the_mean_of_the_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[ms(7)]), Some(ms(7)));
        assert_eq!(median(&[ms(9), ms(1), ms(5)]), Some(ms(5)));
        assert_eq!(median(&[ms(4), ms(1), ms(10), ms(2)]), Some(ms(3)));
        assert_eq!(median(&[ms(1), ms(2)]), Some(Duration::from_micros(1500)));
    }

    fn run(elapsed_ms: u64, pause_ms: u64, lost: usize) -> MethodRun {
        MethodRun {
            elapsed: ms(elapsed_ms),
            slots_moved: 4096,
            keys_moved: 250_000,
            max_write_pause: Some(ms(pause_ms)),
            writes: 100,
            acked: 99,
            lost_keys: lost,
            ready_after: None,
            from_start: None,
            load: None,
        }
    }

    fn report(operator: MethodResults) -> ReshardReport {
        ReshardReport {
            keys: 1_000_000,
            runs: 3,
            replicas: 1,
            value_bytes: 64,
            shards: (3, 4),
            raw_asm: MethodResults {
                runs: vec![run(500, 20, 0), run(600, 30, 0), run(400, 10, 0)],
                failed: Vec::new(),
                note: None,
            },
            legacy: MethodResults {
                runs: vec![
                    run(20_000, 900, 0),
                    run(19_000, 800, 1),
                    run(21_000, 700, 0),
                ],
                failed: vec![(3, "NOREPLICAS".into())],
                note: None,
            },
            operator,
        }
    }

    #[test]
    fn a_skipped_operator_is_null_with_a_note_and_the_json_is_the_last_line() {
        let text = report(MethodResults {
            runs: Vec::new(),
            failed: Vec::new(),
            note: Some("skipped (--skip-operator)".into()),
        })
        .render();
        let last = text.lines().last().unwrap_or_default();
        let json: Value = serde_json::from_str(last).unwrap_or_default();
        assert_eq!(at(&json, "/keys"), json!(1_000_000));
        assert_eq!(at(&json, "/runs"), json!(3));
        assert_eq!(at(&json, "/operator_s"), Value::Null);
        assert_eq!(at(&json, "/ratio_operator_to_asm"), Value::Null);
        assert_eq!(at(&json, "/raw_asm_s"), json!(0.5));
        assert_eq!(at(&json, "/legacy_s"), json!(20.0));
        assert_eq!(at(&json, "/ratio_legacy_to_asm"), json!(40.0));
        assert_eq!(at(&json, "/max_write_pause_ms"), json!(900.0));
        assert_eq!(
            at(&json, "/max_write_pause_ms_by_method/raw_asm"),
            json!(30.0)
        );
        assert_eq!(at(&json, "/lost_keys"), json!(1));
        assert_eq!(at(&json, "/lost_keys_by_method/operator"), Value::Null);
        assert_eq!(at(&json, "/slots_moved"), json!(4096));
        assert_eq!(
            at(&json, "/operator_note"),
            json!("skipped (--skip-operator)")
        );
        assert_eq!(at(&json, "/targets/legacy_met"), json!(true));
        assert_eq!(at(&json, "/targets/operator_met"), Value::Null);
        assert!(text.contains("operator  not measured: skipped (--skip-operator)"));
        assert_eq!(at(&json, "/failed_runs_by_method/legacy"), json!(1));
        assert!(text.contains("1 failed run(s): run 4: NOREPLICAS"));
    }

    #[test]
    fn a_measured_operator_has_its_ratio() {
        let json = report(MethodResults {
            runs: vec![run(550, 40, 0)],
            failed: Vec::new(),
            note: None,
        })
        .json();
        assert_eq!(at(&json, "/operator_s"), json!(0.55));
        assert_eq!(at(&json, "/ratio_operator_to_asm"), json!(1.1));
        assert_eq!(at(&json, "/targets/operator_met"), json!(true));
        assert_eq!(at(&json, "/lost_keys_by_method/operator"), json!(0));
    }

    #[test]
    fn raw_asm_from_starting_the_shard_has_its_own_median_and_ratio() {
        let mut r = report(MethodResults {
            runs: vec![run(2_800, 40, 0)],
            failed: Vec::new(),
            note: None,
        });
        for (run, from_start) in r.raw_asm.runs.iter_mut().zip([2_500, 2_700, 2_600]) {
            run.from_start = Some(ms(from_start));
        }
        let json = r.json();
        assert_eq!(at(&json, "/raw_asm_s"), json!(0.5));
        assert_eq!(at(&json, "/raw_asm_from_start_s"), json!(2.6));
        assert_eq!(at(&json, "/ratio_operator_to_asm"), json!(5.6));
        assert_eq!(at(&json, "/ratio_operator_to_asm_from_start"), json!(1.077));
        assert_eq!(at(&json, "/targets/operator_met"), json!(false));
        assert_eq!(at(&json, "/targets/operator_met_from_start"), json!(true));
        let text = r.render();
        assert!(
            text.contains("5.60× raw ASM's moves, 1.08× raw ASM from starting the shard"),
            "{text}"
        );
        assert!(
            text.contains("moving, 2.600 s from starting the new shard"),
            "{text}"
        );
    }

    #[test]
    fn run_lines_say_what_was_measured() {
        let mut measured = run(19_500, 812, 0);
        measured.load = Some(1.5);
        let line = run_line(Method::Legacy, 0, &measured);
        assert_eq!(
            line,
            "  legacy run 1: 19.500 s to balanced and agreed (4096 slots, 250000 keys moved); max write pause 812 ms; 99 of 100 writes acknowledged; lost 0 (load 1.50)"
        );
        assert_eq!(
            failed_line(Method::RawAsm, 1, "timed out"),
            "  raw_asm run 2: failed: timed out"
        );
    }
}
