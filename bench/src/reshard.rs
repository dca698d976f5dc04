//! `logbook-bench reshard`: a Valkey Cluster of N keys resharded from 3 to
//! 4 shards three ways, each run on fresh servers (issue 15):
//!
//! * **raw ASM** ([`asm`]): the bench itself moves the slots with Atomic
//!   Slot Migration, one `CLUSTER MIGRATESLOTS` per source, all at once;
//! * **legacy** ([`legacy`]): `redis-cli --cluster rebalance
//!   --cluster-use-empty-masters`, the classic `SETSLOT`/`MIGRATE`
//!   pipeline;
//! * **operator** ([`operator`]): the Logbook operator on localkube,
//!   `spec.shards` patched 3 → 4.
//!
//! Raw ASM and legacy start from the same cluster ([`cluster`]): three
//! primaries with the slots split evenly, R replicas each, N keys loaded
//! ([`load`]), a fourth shard met and known by every node. Each is timed
//! to *balanced and agreed*: every node's `CLUSTER NODES` states four
//! primaries of 4096 slots each, the same on every node, no slot open
//! ([`plan`]). During each timed reshard one cluster-aware writer
//! ([`crate::cluster_writer`], following `MOVED` and `ASK`) writes every
//! millisecond, with `WAIT 1` after each write when the shards have
//! replicas; the longest time between two of its successful writes is the
//! run's write pause. Afterwards every loaded key and every acknowledged
//! write is read back from the primary that owns it: those missing are
//! lost ([`load::count_missing`]). The report ([`report`]) ends with one
//! JSON line.
//!
//! It never touches servers it did not start; every process a run starts
//! is killed when the run ends, failed or not.

mod asm;
mod cluster;
mod legacy;
mod load;
mod migrations;
mod nodes;
mod operator;
mod plan;
mod report;

use std::time::{Duration, Instant};

use logbook::valkey::Password;

pub use migrations::{JobOutcome, JobState, MigrationJob, Operation, parse_slot_migrations};
pub use operator::OperatorReshardError;
pub use plan::{Move, PlanError, even_shares, plan_moves};
pub use report::{Method, MethodResults, MethodRun, ReshardReport, failed_line, median, run_line};

use self::cluster::RawCluster;
use self::load::{count_missing, load_keys, loaded_key, loaded_value};
use self::nodes::Nodes;
use self::operator::OperatorCluster;
use self::plan::{Owners, moved_slots};
use crate::BenchError;
use crate::cluster_writer::{ClusterProbeConfig, start_cluster_probe};
use crate::slots::key_slot;
use crate::writer::{WriteLog, WriteProbe};

/// Shards before the reshard.
pub const SHARDS_FROM: usize = 3;
/// Shards after it.
pub const SHARDS_TO: usize = 4;

/// Acknowledged writes before the clock starts, so the first pause has a
/// start.
const WARM_UP_ACKED: usize = 20;

/// How long the writer keeps writing once the reshard is done, so the
/// pause ends inside its log.
const TAIL: Duration = Duration::from_millis(300);

/// What `logbook-bench reshard` runs.
#[derive(Debug, Clone)]
pub struct ReshardConfig {
    /// Keys loaded before each reshard.
    pub keys: u64,
    /// Runs of each method.
    pub runs: usize,
    /// Replicas per shard (0: writes are not `WAIT`ed for).
    pub replicas: usize,
    /// Bytes of each loaded value.
    pub value_bytes: usize,
    /// Leave the operator out.
    pub skip_operator: bool,
    /// Leave the legacy rebalance out.
    pub skip_legacy: bool,
}

/// What the runs measured, and the operator's refusal when it refused.
#[derive(Debug, Clone)]
pub struct ReshardOutcome {
    /// Every run that completed.
    pub report: ReshardReport,
    /// The operator's message when it refused the new `spec.shards`: the
    /// bench fails with it once the report is printed.
    pub refused: Option<String>,
}

/// What one method's run ended with, as it is handed to the caller.
#[derive(Debug, Clone, Copy)]
pub enum RunEnd<'a> {
    /// It finished: what it measured.
    Measured(&'a MethodRun),
    /// It failed: why.
    Failed(&'a str),
}

/// Why one run ended without a time.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Before the clock started, the harness could not set the run up (a
    /// server did not start, the cluster did not form, the keys were not
    /// loaded, the writer did not write): the bench stops.
    #[error("setting up: {0}")]
    Setup(#[source] BenchError),
    /// The reshard failed (a job failed, `redis-cli` gave up, nothing
    /// balanced in time) or its data could not be read back: a result of
    /// the method under test, reported, and the bench goes on.
    #[error("{0}")]
    Reshard(#[source] BenchError),
    /// The operator refused the new `spec.shards`: its message.
    #[error("the operator refused spec.shards {from} → {to}: {message}")]
    Refused {
        /// Shards before.
        from: usize,
        /// Shards asked for.
        to: usize,
        /// The `SpecValid` condition's message.
        message: String,
    },
}

/// Runs the bench: per run, raw ASM, legacy, then the operator. Each
/// finished or failed run is handed to `line`; setup progress to
/// `progress`.
///
/// A run whose reshard fails is recorded as failed and the bench goes on:
/// on a shared machine one run under load must not throw the others away.
/// The operator's refusal ends the operator's runs and is returned in
/// [`ReshardOutcome::refused`].
///
/// # Errors
/// [`RunError::Setup`]'s cause, naming the method and the run, when a
/// run could not be set up.
pub async fn run_reshard(
    config: &ReshardConfig,
    line: &mut dyn FnMut(Method, usize, RunEnd<'_>),
    progress: &mut dyn FnMut(&str),
) -> Result<ReshardOutcome, BenchError> {
    let mut report = ReshardReport {
        keys: config.keys,
        runs: config.runs,
        replicas: config.replicas,
        value_bytes: config.value_bytes,
        shards: (SHARDS_FROM, SHARDS_TO),
        raw_asm: MethodResults::default(),
        legacy: MethodResults::default(),
        operator: MethodResults::default(),
    };
    if config.skip_legacy {
        report.legacy.note = Some("skipped (--skip-legacy)".to_owned());
    }
    if config.skip_operator {
        report.operator.note =
            Some("skipped (--skip-operator): the operator's resharding is not measured".to_owned());
    }
    let mut refused = None;
    for run in 0..config.runs {
        let mut methods = vec![Method::RawAsm];
        if !config.skip_legacy {
            methods.push(Method::Legacy);
        }
        if !config.skip_operator && refused.is_none() {
            methods.push(Method::Operator);
        }
        for method in methods {
            progress(&format!("{} run {}: starting ...", method.key(), run + 1));
            let result = match method {
                Method::RawAsm => raw_run(config, Driver::Asm, run).await,
                Method::Legacy => raw_run(config, Driver::Legacy, run).await,
                Method::Operator => operator_run(config, run).await,
            };
            let results = match method {
                Method::RawAsm => &mut report.raw_asm,
                Method::Legacy => &mut report.legacy,
                Method::Operator => &mut report.operator,
            };
            match result {
                Ok(measured) => {
                    line(method, run, RunEnd::Measured(&measured));
                    results.runs.push(measured);
                }
                Err(RunError::Reshard(err)) => {
                    // One line: a timeout's detail carries log tails.
                    let why = err
                        .to_string()
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(" | ");
                    line(method, run, RunEnd::Failed(&why));
                    results.failed.push((run, why));
                }
                Err(RunError::Refused { from, to, message }) => {
                    results.note = Some(format!("refused spec.shards {from} → {to}: {message}"));
                    refused = Some(message);
                }
                Err(RunError::Setup(err)) => {
                    return Err(crate::harness(format!("{} run {}", method.key(), run + 1))(
                        err.to_string(),
                    ));
                }
            }
        }
    }
    Ok(ReshardOutcome { report, refused })
}

/// The 1-minute load average (Linux), for the run lines.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Who moves the slots of a cluster the bench formed.
#[derive(Debug, Clone, Copy)]
enum Driver {
    /// The bench, with Atomic Slot Migration.
    Asm,
    /// `redis-cli --cluster rebalance`.
    Legacy,
}

/// One raw ASM or legacy run on a fresh cluster.
async fn raw_run(
    config: &ReshardConfig,
    driver: Driver,
    run: usize,
) -> Result<MethodRun, RunError> {
    let method = match driver {
        Driver::Asm => Method::RawAsm,
        Driver::Legacy => Method::Legacy,
    };
    let mut cluster = RawCluster::start(SHARDS_FROM, config.replicas)
        .await
        .map_err(RunError::Setup)?;
    load_keys(
        &cluster.addrs(),
        None,
        config.keys,
        config.value_bytes,
        cluster.replicas(),
    )
    .await
    .map_err(RunError::Setup)?;
    let (_, target) = cluster.add_empty_shard().await.map_err(RunError::Setup)?;
    let addrs = cluster.addrs();
    let writer = start_writer(&addrs, None, config.replicas, method, run)
        .await
        .map_err(RunError::Setup)?;
    let mut nodes = Nodes::new(None);
    let load = load_average();
    let measured = match driver {
        Driver::Asm => asm::reshard_asm(&mut nodes, &addrs, &target)
            .await
            .map(|r| Measured {
                elapsed: r.elapsed,
                started: r.started,
                before: r.before,
                after: r.after,
                ready_after: None,
                load,
            }),
        Driver::Legacy => legacy::reshard_legacy(&mut nodes, &addrs, SHARDS_TO)
            .await
            .map(|r| Measured {
                elapsed: r.elapsed,
                started: r.started,
                before: r.before,
                after: r.after,
                ready_after: None,
                load,
            }),
    }
    .map_err(RunError::Reshard)?;
    finish(config, writer, &addrs, None, measured)
        .await
        .map_err(RunError::Reshard)
}

/// One operator run: localkube, the operator and a fresh cluster.
async fn operator_run(config: &ReshardConfig, run: usize) -> Result<MethodRun, RunError> {
    let cluster = OperatorCluster::start(SHARDS_FROM, config.replicas)
        .await
        .map_err(RunError::Setup)?;
    let result = operator_reshard(config, &cluster, run).await;
    cluster.stop().await;
    result
}

async fn operator_reshard(
    config: &ReshardConfig,
    cluster: &OperatorCluster,
    run: usize,
) -> Result<MethodRun, RunError> {
    let password = cluster.password().cloned();
    let seeds = cluster.addrs().await.map_err(RunError::Setup)?;
    load_keys(
        &seeds,
        password.as_ref(),
        config.keys,
        config.value_bytes,
        config.replicas,
    )
    .await
    .map_err(RunError::Setup)?;
    let writer = start_writer(
        &seeds,
        password.as_ref(),
        config.replicas,
        Method::Operator,
        run,
    )
    .await
    .map_err(RunError::Setup)?;
    let load = load_average();
    let r = cluster.reshard(SHARDS_TO).await.map_err(|e| match e {
        OperatorReshardError::Refused { from, to, message } => {
            RunError::Refused { from, to, message }
        }
        OperatorReshardError::Bench(err) => RunError::Reshard(err),
    })?;
    let seeds = cluster.addrs().await.map_err(RunError::Reshard)?;
    let measured = Measured {
        elapsed: r.elapsed,
        started: r.started,
        before: r.before,
        after: r.after,
        ready_after: r.ready_after,
        load,
    };
    finish(config, writer, &seeds, password.as_ref(), measured)
        .await
        .map_err(RunError::Reshard)
}

/// Starts the run's writer and waits until it has acknowledged writes.
async fn start_writer(
    seeds: &[String],
    password: Option<&Password>,
    replicas: usize,
    method: Method,
    run: usize,
) -> Result<WriteProbe, BenchError> {
    let mut config = ClusterProbeConfig::new(
        seeds.to_vec(),
        format!("bench:reshard:w:{}:{run}", method.key()),
    );
    config.password = password.cloned();
    config.interval = Duration::from_millis(1);
    // A write held by a migration is a pause to measure, not a failure.
    config.op_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(1);
    config.wait_replicas = replicas > 0;
    let probe = start_cluster_probe(config);
    crate::readiness::probe_acked(&probe, WARM_UP_ACKED, Duration::from_secs(20)).await?;
    Ok(probe)
}

/// A timed reshard, before the writes are read back.
struct Measured {
    elapsed: Duration,
    started: Instant,
    before: Owners,
    after: Owners,
    ready_after: Option<Duration>,
    load: Option<f64>,
}

/// The longest a client of the writer waited for a write from `from` on:
/// the longest time between the starts of two successive successful
/// writes (from the last one before `from`), or the longest single call
/// (`SET`, and `WAIT` when asked) started since — which counts the call
/// still held when the log ends. `None` without a success before `from`.
pub fn max_write_pause(log: &WriteLog, from: Instant) -> Option<Duration> {
    let start = log
        .attempts
        .iter()
        .filter(|a| a.succeeded() && a.started <= from)
        .map(|a| a.started)
        .max()?;
    let longest_call = log
        .attempts
        .iter()
        .filter(|a| a.started >= start)
        .map(|a| a.ended.saturating_duration_since(a.started))
        .max();
    log.longest_gap_from(from).max(longest_call)
}

/// Stops the writer after [`TAIL`], reads back every loaded key and
/// acknowledged write from `seeds`' cluster, and counts what moved.
async fn finish(
    config: &ReshardConfig,
    writer: WriteProbe,
    seeds: &[String],
    password: Option<&Password>,
    measured: Measured,
) -> Result<MethodRun, BenchError> {
    tokio::time::sleep(TAIL).await;
    let log = writer.stop().await;
    let acked = log.acked_keys();
    let n = usize::try_from(config.keys).unwrap_or(usize::MAX);
    let bytes = config.value_bytes;
    let index = |i: usize| u64::try_from(i).unwrap_or(u64::MAX);
    let lost_loaded = count_missing(seeds, password, n, &|i| loaded_key(index(i)), &|i| {
        loaded_value(index(i), bytes)
    })
    .await?;
    let prefix = log.prefix.clone();
    let acked_key = |i: usize| acked.get(i).copied().unwrap_or(u64::MAX);
    let lost_acked = count_missing(
        seeds,
        password,
        acked.len(),
        &|i| format!("{prefix}:{}", acked_key(i)),
        &|i| acked_key(i).to_string(),
    )
    .await?;
    let moved = moved_slots(&measured.before, &measured.after);
    let keys_moved = (0..config.keys)
        .filter(|i| {
            moved
                .get(usize::from(key_slot(loaded_key(*i).as_bytes())))
                .copied()
                .unwrap_or(false)
        })
        .count();
    Ok(MethodRun {
        elapsed: measured.elapsed,
        slots_moved: plan::slots_moved(&measured.before, &measured.after),
        keys_moved: u64::try_from(keys_moved).unwrap_or(u64::MAX),
        max_write_pause: max_write_pause(&log, measured.started),
        writes: log.attempts.len(),
        acked: acked.len(),
        lost_keys: lost_loaded.saturating_add(lost_acked),
        ready_after: measured.ready_after,
        load: measured.load,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::writer::{Attempt, Failure, Outcome};

    fn attempt(base: Instant, start: u64, end: u64, ok: bool) -> Attempt {
        let at = |ms| base + Duration::from_millis(ms);
        Attempt {
            key: start,
            started: at(start),
            replied: at(start),
            ended: at(end),
            server: Some(Arc::from("n:1")),
            outcome: if ok {
                Outcome::Ok
            } else {
                Outcome::Failed(Failure::TimedOut)
            },
            acked: ok,
        }
    }

    #[test]
    fn the_pause_is_the_longest_gap_or_the_longest_call_in_flight() {
        let base = Instant::now();
        let log = |attempts| WriteLog {
            prefix: "p".into(),
            attempts,
        };
        let from = base + Duration::from_millis(10);
        // A failed call, then a success 80 ms after the last before `from`.
        let gap = log(vec![
            attempt(base, 0, 1, true),
            attempt(base, 5, 6, true),
            attempt(base, 12, 60, false),
            attempt(base, 85, 86, true),
        ]);
        assert_eq!(max_write_pause(&gap, from), Some(Duration::from_millis(80)));
        // The last call is still held by WAIT when the log ends.
        let held = log(vec![
            attempt(base, 0, 1, true),
            attempt(base, 5, 6, true),
            attempt(base, 20, 21, true),
            attempt(base, 22, 400, true),
        ]);
        assert_eq!(
            max_write_pause(&held, from),
            Some(Duration::from_millis(378))
        );
        // Nothing succeeded before: no start.
        let none = log(vec![attempt(base, 20, 21, true)]);
        assert_eq!(max_write_pause(&none, from), None);
    }
}
