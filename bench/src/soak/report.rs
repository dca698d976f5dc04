//! What a soak leaves behind: the report's table, and the work
//! directory's `writes.log`.

use std::time::Instant;

use super::SoakReport;
use crate::writer::WriteLog;

/// One line per write attempt, in the soak's seconds (the clock of
/// `faults.log`): when it started and ended, its key (and slot, in a
/// Cluster), the server that took it, and whether it was accepted and
/// acknowledged. What places a lost write in time.
pub(super) fn writes_log(log: &WriteLog, begin: Instant, cluster: bool) -> String {
    let secs = |t: Instant| {
        if t >= begin {
            t.duration_since(begin).as_secs_f64()
        } else {
            -begin.duration_since(t).as_secs_f64()
        }
    };
    let mut out = String::from("# started_s ended_s key slot server outcome acked\n");
    for a in &log.attempts {
        let slot = if cluster {
            crate::cluster_writer::attempt_slot(&log.prefix, a).to_string()
        } else {
            "-".to_owned()
        };
        let outcome = match &a.outcome {
            crate::writer::Outcome::Ok => "ok".to_owned(),
            crate::writer::Outcome::Failed(f) => format!("{f:?}").replace(' ', "_"),
        };
        out.push_str(&format!(
            "{:.3} {:.3} {} {slot} {} {outcome} {}\n",
            secs(a.started),
            secs(a.ended),
            a.key,
            a.server.as_deref().unwrap_or("-"),
            a.acked
        ));
    }
    out
}

pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all.get(all.len().saturating_sub(lines)..)
        .unwrap_or_default()
        .join("\n")
}

/// The records of `replay failovers --json` (an array, one per change of
/// primary or shard failover).
pub(super) fn count_failovers(out: &str) -> Option<usize> {
    let start = out.find('[')?;
    serde_json::from_str::<Vec<serde_json::Value>>(out.get(start..)?.trim())
        .ok()
        .map(|rows| rows.len())
}

/// The report as markdown: one row.
pub fn render(reports: &[SoakReport]) -> String {
    let mut out = String::from(
        "| topology | seed | faults injected | skipped | writes acknowledged (all read back) | ROLE rounds (with a followed primary) | journal failovers | converged after last fault | result |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let faults: Vec<String> = r
            .injected
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} of {} | {} ({}) | {} | {} | {} |\n",
            r.topology.name(),
            r.seed,
            faults.join(", "),
            r.skipped,
            r.acknowledged,
            r.attempts,
            r.role_rounds,
            r.acknowledging_rounds,
            r.journal_failovers
                .map_or_else(|| "?".into(), |n| n.to_string()),
            r.converged_after
                .map_or_else(|| "no".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            if r.passed() { "pass" } else { "FAIL" },
        ));
    }
    if reports.iter().any(|r| r.history.is_some()) {
        out.push_str(
            "\n| topology | seed | history ops (reads) | ok / fail / unknown | stale reads within the promise (longest) | shrunk lists within the promise | registers linearizable / not / undecided | anomalies outside the promise |\n|---|---|---|---|---|---|---|---|\n",
        );
        for r in reports {
            let Some(h) = &r.history else { continue };
            out.push_str(&format!(
                "| {} | {} | {} ({}) | {} / {} / {} | {} ({} ms) | {} | {} / {} / {} | {} |\n",
                r.topology.name(),
                r.seed,
                h.ops,
                h.reads,
                h.ok,
                h.fail,
                h.unknown,
                h.stale_tolerated,
                h.stale_max_ms,
                h.shrunk_tolerated,
                h.registers.0,
                h.registers.1,
                h.registers.2,
                h.outside
            ));
        }
    }
    for r in reports.iter().filter(|r| !r.passed()) {
        out.push_str(&format!(
            "\n{} seed {} failed:\n",
            r.topology.name(),
            r.seed
        ));
        for v in &r.violations {
            out.push_str(&format!("- {v}\n"));
        }
        out.push_str(&format!("reproduce: {}\n", r.command));
        if let Some(dir) = &r.kept {
            out.push_str(&format!(
                "kept: {} (journal/, operator.log, faults.log, writes.log, history.jsonl, workloads/ with every pod's log)\n",
                dir.display()
            ));
        }
    }
    out
}
