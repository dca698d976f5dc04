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
//! ([`load`]). Legacy's fourth shard is met and known by every node
//! before its clock starts; raw ASM starts and joins it under its clock
//! (and reports the moves alone beside it). Each is timed to *balanced
//! and agreed*: every node's `CLUSTER NODES` states four primaries of
//! 4096 slots each, the same on every node, no slot open ([`plan`]), and
//! every node says `cluster_state:ok` (a new primary refuses every key
//! for its first two seconds). During each timed reshard one cluster-aware writer
//! ([`crate::cluster_writer`], following `MOVED` and `ASK`) writes every
//! millisecond, with `WAIT 1` after each write when the shards have
//! replicas; the longest time a call of it waited, or between two of its
//! successful writes, is the run's write pause. Afterwards every loaded
//! key and every acknowledged write is read back from the primary that
//! owns it: those missing are lost ([`measure`]). The report ([`report`])
//! ends with one JSON line.
//!
//! It never touches servers it did not start; every process a run starts
//! is killed when the run ends, failed or not.

mod asm;
mod cluster;
mod legacy;
mod load;
mod measure;
mod migrations;
mod nodes;
mod operator;
mod plan;
mod report;

pub use migrations::{JobOutcome, JobState, MigrationJob, Operation, parse_slot_migrations};
pub use operator::OperatorReshardError;
pub use plan::{Move, PlanError, even_shares, plan_moves};
pub use report::{Method, MethodResults, MethodRun, ReshardReport, failed_line, median, run_line};

pub use measure::max_write_pause;

use self::cluster::RawCluster;
use self::load::load_keys;
use self::measure::{Measured, finish, load_average, start_writer};
use self::nodes::Nodes;
use self::operator::OperatorCluster;
use crate::BenchError;

/// Shards before the reshard.
pub const SHARDS_FROM: usize = 3;
/// Shards after it.
pub const SHARDS_TO: usize = 4;

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
    // Raw ASM starts and joins the new shard under the clock, as the
    // operator must (its time runs from the patch): the writer writes
    // throughout. The legacy rebalance starts from a fully joined shard.
    let (writer, grown, target) = match driver {
        Driver::Asm => {
            let writer = start_writer(&cluster.addrs(), None, config.replicas, method, run)
                .await
                .map_err(RunError::Setup)?;
            let (_, target, grown) = cluster.grow_shard().await.map_err(RunError::Reshard)?;
            (writer, Some(grown), target)
        }
        Driver::Legacy => {
            let (_, target) = cluster.add_empty_shard().await.map_err(RunError::Setup)?;
            let writer = start_writer(&cluster.addrs(), None, config.replicas, method, run)
                .await
                .map_err(RunError::Setup)?;
            (writer, None, target)
        }
    };
    let addrs = cluster.addrs();
    let mut nodes = Nodes::new(None);
    let load = load_average();
    let measured = match driver {
        Driver::Asm => asm::reshard_asm(&mut nodes, &addrs, &target)
            .await
            .map(|r| Measured {
                elapsed: r.elapsed,
                started: grown.unwrap_or(r.started),
                before: r.before,
                after: r.after,
                ready_after: None,
                from_start: grown.map(|g| (r.started + r.elapsed).saturating_duration_since(g)),
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
                from_start: None,
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
        from_start: None,
        load,
    };
    finish(config, writer, &seeds, password.as_ref(), measured)
        .await
        .map_err(RunError::Reshard)
}
