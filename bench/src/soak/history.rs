//! The soak's recorded history: a `logbook-history` client beside the
//! writer (lists and registers, every operation as invoke then
//! ok / fail / unknown), and the client promises of `docs/robustness.md`
//! ("What a client can rely on") checked on what it recorded.
//!
//! # The promises, as checked here
//! * **Never**: an acknowledged append lost, a value twice in one list, a
//!   value no append carried, the value of an append that failed, two
//!   reads that disagree on a list's order, an order real time forbids.
//! * **A stale read** (a read that lacks a value acknowledged before it
//!   began) is within the promise only when another server answered it
//!   than the one that acknowledged the value, and it began within
//!   [`STALE_BOUND`] of that acknowledgement: a demoted primary still
//!   answering a connection opened before the failover moved the Service.
//! * **A list that shrank** (a read lacking a value an earlier read saw) is
//!   within the promise only for values whose append was never
//!   acknowledged (replication is asynchronous: a failover can drop what
//!   the old primary applied and no replica had yet), or when the read is
//!   a stale read as above.
//! * **Registers** are checked for linearizability and reported; Valkey's
//!   asynchronous replication does not promise it across a failover (a
//!   read can see an unacknowledged write that the failover then drops),
//!   so a non-linearizable key is a figure, not a violation.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use logbook::valkey::Password;
use logbook_history::{Anomaly, AnomalyKind, Function, History, Op, OpId, Outcome, Verdict};

use super::schedule::SoakTopology;
use crate::Target;
use crate::history_client::{
    CheckSummary, HistoryClientConfig, HistoryRun, Route, WaitFor, write_json_lines,
};

/// The longest a stale read may begin after the acknowledgement it lacks:
/// the time a demoted primary can keep answering a connection opened
/// before the failover (the operator fences it, then moves the Service;
/// a client learns of the move at its next write or reconnect).
pub const STALE_BOUND: Duration = Duration::from_secs(2);

/// How hard the history client works: logical clients and the pause after
/// each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLoad {
    /// Logical clients, each with its own connection (0: no history).
    pub clients: usize,
    /// Pause after each operation.
    pub pace: Duration,
}

impl Default for HistoryLoad {
    /// Four clients, 10 ms apart: up to 400 operations a second, light
    /// enough for a shared CI machine.
    fn default() -> Self {
        HistoryLoad {
            clients: 4,
            pace: Duration::from_millis(10),
        }
    }
}

/// Where the soak's history client sends its operations.
pub(super) struct Way {
    /// The client Service (`host:port`).
    pub service: String,
    /// The Sentinel Service, for the Sentinel topology.
    pub sentinel: Option<String>,
    /// A Cluster's seeds: the client Service, then the data pods.
    pub seeds: Vec<String>,
}

/// The client configuration for `topology`: lists and registers, `WAIT`
/// as the soak's writer waits.
pub(super) fn config(
    topology: SoakTopology,
    way: Way,
    password: &Password,
    prefix: &str,
    seed: u64,
    load: HistoryLoad,
    sentinel_replicas: u32,
) -> HistoryClientConfig {
    let route = match topology {
        SoakTopology::Cluster => Route::Cluster { seeds: way.seeds },
        SoakTopology::Sentinel => Route::Primary(Target::Sentinel {
            sentinels: way.sentinel.into_iter().collect(),
            master: super::NAME.to_owned(),
        }),
        SoakTopology::Standalone | SoakTopology::Replication => {
            Route::Primary(Target::Fixed(way.service))
        }
    };
    let mut config = HistoryClientConfig::lists(route, prefix);
    config.registers = 3;
    config.password = Some(password.clone());
    config.clients = load.clients.max(1);
    config.pace = load.pace;
    config.seed = seed;
    config.wait = match topology {
        SoakTopology::Standalone => None,
        // Sentinel promotes by offsets up to 10 s old: only what every
        // replica has is safe there (as for the writer).
        SoakTopology::Sentinel => Some(WaitFor {
            replicas: sentinel_replicas,
            timeout: Duration::from_secs(1),
        }),
        SoakTopology::Replication | SoakTopology::Cluster => Some(WaitFor {
            replicas: 1,
            timeout: Duration::from_secs(1),
        }),
    };
    config
}

/// What the history showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFindings {
    /// Operations recorded, and reads among them.
    pub ops: usize,
    /// Reads among them.
    pub reads: usize,
    /// Ended ok, fail, unknown.
    pub ok: usize,
    /// Ended with an error reply.
    pub fail: usize,
    /// Ended without a reply, or applied short of `WAIT`.
    pub unknown: usize,
    /// Stale reads within the promise.
    pub stale_tolerated: usize,
    /// The longest lag of those, in ms.
    pub stale_max_ms: u64,
    /// Shrunk lists within the promise (unacknowledged values dropped, or
    /// a stale read).
    pub shrunk_tolerated: usize,
    /// List anomalies outside the promise (each kind's first three are
    /// quoted in `violations`).
    pub outside: usize,
    /// Register keys: linearizable, not, undecided (the search's bound).
    pub registers: (usize, usize, usize),
    /// Every anomaly outside the promise, in words.
    pub violations: Vec<String>,
}

/// Judges `history`, whose checkers' reports are `summary`, against the
/// promises (see the module's documentation).
pub fn judge(history: &History, summary: &CheckSummary) -> HistoryFindings {
    let counts = crate::history_client::RunCounts::of(history);
    let mut findings = HistoryFindings {
        ops: counts.ops,
        reads: counts.reads,
        ok: counts.ok,
        fail: counts.fail,
        unknown: counts.unknown,
        ..HistoryFindings::default()
    };
    let appends = appends_by_value(history);
    let last_reads = last_reads(history);
    let op = |id: OpId| history.get(id);
    let mut refused: Vec<&Anomaly> = Vec::new();
    for anomaly in &summary.lists.anomalies {
        match anomaly.kind {
            AnomalyKind::StaleRead => match stale_within_promise(anomaly, &op) {
                Some(lag) => {
                    findings.stale_tolerated += 1;
                    findings.stale_max_ms = findings.stale_max_ms.max(lag / 1_000_000);
                }
                None => refused.push(anomaly),
            },
            AnomalyKind::Shrunk => {
                if shrunk_within_promise(anomaly, &op, &appends) {
                    findings.shrunk_tolerated += 1;
                } else {
                    refused.push(anomaly);
                }
            }
            AnomalyKind::Reordered => {
                if diverged_within_promise(anomaly, &op, &appends, &last_reads) {
                    findings.shrunk_tolerated += 1;
                } else {
                    refused.push(anomaly);
                }
            }
            _ => refused.push(anomaly),
        }
    }
    findings.outside = refused.len();
    let mut by_kind: HashMap<AnomalyKind, usize> = HashMap::new();
    for anomaly in refused {
        let n = by_kind.entry(anomaly.kind).or_default();
        *n += 1;
        // Three of each kind in full; the rest are in history.jsonl.
        if *n <= 3 {
            findings
                .violations
                .push(format!("history: {anomaly}{}", describe_ops(anomaly, &op)));
        }
    }
    for (kind, n) in by_kind {
        if n > 3 {
            findings
                .violations
                .push(format!("history: {} more {kind} anomalies", n - 3));
        }
    }
    if !summary.lists.loss_fully_judged() {
        findings.violations.push(
            "history: some list had no read late enough to judge every acknowledged append".into(),
        );
    }
    for key in &summary.registers.keys {
        match key.verdict {
            Verdict::Linearizable => findings.registers.0 += 1,
            Verdict::Illegal(_) => findings.registers.1 += 1,
            Verdict::Unknown { .. } => findings.registers.2 += 1,
        }
    }
    findings
}

/// Starts the history client of a soak or a trial on the cluster reached
/// by `way` (`None` when `load` asks for no client), writes waiting as the
/// soak's writer does (every replica under Sentinel).
///
/// # Errors
/// [`crate::BenchError`] when the client cannot start.
pub(super) async fn start(
    topology: SoakTopology,
    way: Way,
    password: &Password,
    prefix: &str,
    seed: u64,
    load: HistoryLoad,
) -> Result<Option<crate::history_client::HistoryClient>, crate::BenchError> {
    if load.clients == 0 {
        return Ok(None);
    }
    let c = config(
        topology,
        way,
        password,
        prefix,
        seed,
        load,
        u32::try_from(super::SENTINEL_REPLICAS - 1).unwrap_or(1),
    );
    crate::history_client::HistoryClient::start(c)
        .await
        .map(Some)
        .map_err(|e| crate::harness("the history client")(e.to_string()))
}

/// Stops `recorder` (if any), keeps its history in `dir`, and judges it:
/// the findings, and each violation (or failure to record) pushed to
/// `violations`.
pub(super) async fn finish(
    recorder: Option<crate::history_client::HistoryClient>,
    dir: &Path,
    violations: &mut Vec<String>,
) -> Option<HistoryFindings> {
    match recorder?.stop().await {
        Ok(run) => {
            if let Err(e) = keep(&run, dir) {
                violations.push(format!("history.jsonl could not be written: {e}"));
            }
            let summary = crate::history_client::check_history(
                &run.history,
                &logbook_history::RegisterConfig::default(),
            );
            let findings = judge(&run.history, &summary);
            violations.extend(findings.violations.iter().cloned());
            Some(findings)
        }
        Err(e) => {
            violations.push(format!("the history client failed: {e}"));
            None
        }
    }
}

/// Writes the history beside the soak's other logs.
pub(super) fn keep(run: &HistoryRun, dir: &Path) -> Result<(), String> {
    write_json_lines(&run.history, &dir.join("history.jsonl")).map_err(|e| e.to_string())
}

/// Key and value to the append that carried it.
fn appends_by_value(history: &History) -> HashMap<(&str, u64), &Op> {
    history
        .ops()
        .iter()
        .filter_map(|op| match &op.f {
            Function::Append { key, value } => Some(((key.as_str(), *value), op)),
            _ => None,
        })
        .collect()
}

/// A stale read's lag (ns) when it is within the promise: another server
/// answered it than the one that acknowledged the oldest value it lacks,
/// and it began within [`STALE_BOUND`].
fn stale_within_promise<'h>(
    anomaly: &Anomaly,
    op: &impl Fn(OpId) -> Option<&'h Op>,
) -> Option<u64> {
    let (read, append) = match anomaly.ops.as_slice() {
        [read, append, ..] => (op(*read)?, op(*append)?),
        _ => return None,
    };
    let lag = anomaly.lag_ns?;
    let other_server = match (&read.server, &append.server) {
        (Some(r), Some(a)) => r != a,
        _ => false,
    };
    let bound = u64::try_from(STALE_BOUND.as_nanos()).unwrap_or(u64::MAX);
    (other_server && lag <= bound).then_some(lag)
}

/// A shrunk list is within the promise when every value it lost was never
/// acknowledged, or the read lacking them was answered by another server
/// than every earlier read that had them (a stale read).
fn shrunk_within_promise<'h>(
    anomaly: &Anomaly,
    op: &impl Fn(OpId) -> Option<&'h Op>,
    appends: &HashMap<(&str, u64), &Op>,
) -> bool {
    let Some((read, witnesses)) = anomaly.ops.split_first() else {
        return false;
    };
    let Some(read) = op(*read) else {
        return false;
    };
    let unacknowledged = anomaly.values.iter().all(|value| {
        appends
            .get(&(anomaly.key.as_str(), *value))
            .is_some_and(|append| !matches!(append.outcome, Outcome::Ok(_)))
    });
    let from_another_server = read.server.is_some()
        && witnesses
            .iter()
            .filter_map(|w| op(*w))
            .all(|w| w.server.is_some() && w.server != read.server);
    unacknowledged || from_another_server
}

/// The last list each key was read as (by completion): what survived.
fn last_reads(history: &History) -> HashMap<&str, &[u64]> {
    let mut last: HashMap<&str, (u64, &[u64])> = HashMap::new();
    for op in history.ops() {
        if let (Function::ReadList { key }, Some(list), Some(done)) =
            (&op.f, op.ok_list(), op.completed_at)
        {
            let entry = last.entry(key.as_str()).or_insert((done, list));
            if done >= entry.0 {
                *entry = (done, list);
            }
        }
    }
    last.into_iter().map(|(k, (_, l))| (k, l)).collect()
}

/// Two reads that are not prefixes of one order are within the promise
/// when one of them went on, past where they part, only with values never
/// acknowledged that the other and the list's last read lack: that read
/// saw what a primary applied and no replica had, a failover dropped it,
/// and the list grew again from there. It is the shrink the promise allows
/// (asynchronous replication), followed by new appends.
fn diverged_within_promise<'h>(
    anomaly: &Anomaly,
    op: &impl Fn(OpId) -> Option<&'h Op>,
    appends: &HashMap<(&str, u64), &Op>,
    last_reads: &HashMap<&str, &[u64]>,
) -> bool {
    let [a, b] = anomaly.ops.as_slice() else {
        return false;
    };
    let (Some(a), Some(b)) = (op(*a).and_then(Op::ok_list), op(*b).and_then(Op::ok_list)) else {
        return false;
    };
    let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return false;
    };
    let last = last_reads
        .get(anomaly.key.as_str())
        .copied()
        .unwrap_or_default();
    let dropped = |one: &[u64], other: &[u64]| {
        one.get(at..).is_some_and(|suffix| {
            suffix.iter().all(|value| {
                !other.contains(value)
                    && !last.contains(value)
                    && appends
                        .get(&(anomaly.key.as_str(), *value))
                        .is_some_and(|append| !matches!(append.outcome, Outcome::Ok(_)))
            })
        })
    };
    dropped(a, b) || dropped(b, a)
}

/// The operations of an anomaly, one line each: process, function, times
/// (ms on the history's clock), outcome and server.
fn describe_ops<'h>(anomaly: &Anomaly, op: &impl Fn(OpId) -> Option<&'h Op>) -> String {
    let mut out = String::new();
    for id in &anomaly.ops {
        if let Some(o) = op(*id) {
            let done = o
                .completed_at
                .map_or_else(|| "?".to_owned(), |t| format!("{:.1}", ms(t)));
            let outcome = match &o.outcome {
                Outcome::Ok(_) => "ok".to_owned(),
                Outcome::Fail(why) => format!("fail ({why})"),
                Outcome::Unknown(why) => format!("unknown ({why})"),
            };
            out.push_str(&format!(
                "\n    {id}: process {} {} {:?} {:.1}..{done} ms, {outcome}, by {}",
                o.process,
                o.f.name(),
                o.f.key(),
                ms(o.invoked_at),
                o.server.as_deref().unwrap_or("?")
            ));
        }
    }
    out
}

#[allow(clippy::cast_precision_loss)] // for reading only
fn ms(t: logbook_history::Nanos) -> f64 {
    t as f64 / 1e6
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use logbook_history::{Recorder, RegisterConfig};

    use super::*;
    use crate::history_client::check_history;

    fn judged(history: History) -> HistoryFindings {
        judge(
            &history,
            &check_history(&history, &RegisterConfig::default()),
        )
    }

    fn append(r: &mut Recorder, p: u64, v: u64, at: u64, outcome: Outcome, server: &str) {
        let id = r.invoke(
            p,
            Function::Append {
                key: "k".into(),
                value: v,
            },
            at,
        );
        r.complete(id, outcome, at + 1).unwrap();
        r.served_by(id, server).unwrap();
    }

    fn read(r: &mut Recorder, p: u64, values: Vec<u64>, at: u64, server: &str) {
        let id = r.invoke(p, Function::ReadList { key: "k".into() }, at);
        r.complete(id, Outcome::list(values), at + 1).unwrap();
        r.served_by(id, server).unwrap();
    }

    #[test]
    fn a_stale_read_from_the_old_primary_is_within_the_promise_and_from_the_same_is_not() {
        for (stale_server, within) in [("old:6379", true), ("new:6379", false)] {
            let mut r = Recorder::new();
            append(&mut r, 0, 1, 10, Outcome::done(), "new:6379");
            read(&mut r, 1, vec![], 1_000, stale_server);
            read(&mut r, 2, vec![1], 2_000, "new:6379");
            let findings = judged(r.finish().unwrap());
            assert_eq!(
                findings.stale_tolerated,
                usize::from(within),
                "{findings:?}"
            );
            assert_eq!(findings.violations.is_empty(), within, "{findings:?}");
            assert_eq!(findings.outside, usize::from(!within), "{findings:?}");
        }
    }

    #[test]
    fn a_lost_unacknowledged_value_is_within_the_promise_and_a_lost_acknowledged_one_is_not() {
        let mut r = Recorder::new();
        append(&mut r, 0, 1, 10, Outcome::unknown("WAIT 0 of 1"), "a:6379");
        read(&mut r, 1, vec![1], 100, "a:6379");
        read(&mut r, 1, vec![], 200, "a:6379");
        let findings = judged(r.finish().unwrap());
        assert_eq!(findings.shrunk_tolerated, 1, "{findings:?}");
        assert!(findings.violations.is_empty(), "{findings:?}");

        let mut r = Recorder::new();
        append(&mut r, 0, 1, 10, Outcome::done(), "a:6379");
        read(&mut r, 1, vec![1], 100, "a:6379");
        read(&mut r, 1, vec![], 200, "a:6379");
        let findings = judged(r.finish().unwrap());
        assert!(
            findings
                .violations
                .iter()
                .any(|v| v.contains("lost-append")),
            "{findings:?}"
        );
        assert!(
            findings.violations.iter().any(|v| v.contains("shrunk")),
            "{findings:?}"
        );
    }

    #[test]
    fn lists_that_part_over_a_dropped_unacknowledged_value_are_within_the_promise() {
        // The Sentinel soak's case (seed 20261127): the old primary,
        // partitioned, applied 3 without a reply; a read saw [1, 3]; the
        // failover dropped 3, and the list grew with 4 on the new primary.
        for (three, within) in [
            (Outcome::unknown("no reply within 500 ms"), true),
            (Outcome::done(), false),
        ] {
            let mut r = Recorder::new();
            append(&mut r, 0, 1, 10, Outcome::done(), "old:6379");
            append(&mut r, 1, 3, 20, three, "old:6379");
            read(&mut r, 2, vec![1, 3], 100, "old:6379");
            append(&mut r, 3, 4, 200, Outcome::done(), "new:6379");
            read(&mut r, 4, vec![1, 4], 300, "new:6379");
            let findings = judged(r.finish().unwrap());
            assert_eq!(findings.violations.is_empty(), within, "{findings:?}");
            if !within {
                assert!(
                    findings.violations.iter().any(|v| v.contains("reordered")),
                    "{findings:?}"
                );
            }
        }
        // A value the list's last read still has was not dropped: two
        // orders of the same values are never within the promise.
        let mut r = Recorder::new();
        append(&mut r, 0, 1, 10, Outcome::unknown("x"), "a:6379");
        append(&mut r, 1, 2, 20, Outcome::unknown("x"), "a:6379");
        read(&mut r, 2, vec![1, 2], 100, "a:6379");
        read(&mut r, 3, vec![2, 1], 200, "a:6379");
        let findings = judged(r.finish().unwrap());
        assert!(
            findings.violations.iter().any(|v| v.contains("reordered")),
            "{findings:?}"
        );
    }

    #[test]
    fn a_phantom_is_never_within_the_promise() {
        let mut r = Recorder::new();
        append(&mut r, 0, 1, 10, Outcome::done(), "a:6379");
        read(&mut r, 1, vec![1, 99], 100, "a:6379");
        let findings = judged(r.finish().unwrap());
        assert!(
            findings.violations.iter().any(|v| v.contains("phantom")),
            "{findings:?}"
        );
    }
}
