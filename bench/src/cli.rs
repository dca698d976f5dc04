//! The `logbook-bench` command line: one subcommand per bench, each
//! printing its report (the tables of `docs/benchmarks.md`) to the writer it
//! is given and its progress to stderr.
//!
//! `logbook-bench failover`: the write-unavailability windows of the
//! operator's failovers and switchovers, beside Valkey Sentinel
//! (`down-after-milliseconds` 1000 and 5000) and a bare `FAILOVER TO`
//! measured in the same run on identical servers; then the Cluster rows (a
//! shard primary killed or its pod deleted, through a cluster-aware
//! client) beside Valkey Cluster's own failover. Prints markdown tables.
//!
//! `logbook-bench restart`: the time to rebuild every cluster's projection
//! from ConfigMap journals and decide once on each, as an operator does
//! after taking the Lease (`crate::restart`).
//!
//! `logbook-bench replay`, `churn` and `idle`: the replay tool on a long
//! journal, journal writes under churn, and a real operator process's
//! memory with idle clusters.
//!
//! `logbook-bench backup`: the backup and restore paths' throughput beside
//! copying the same RDB bytes to and from the bucket (`crate::backup`).
//!
//! `logbook-bench reshard`: a 3 → 4-shard reshard of a Valkey Cluster
//! holding N keys, by Atomic Slot Migration driven by the bench, by
//! `redis-cli --cluster rebalance` and by the operator (`crate::reshard`).
//! Prints a line per run, the medians, and a JSON object as its last line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::record::Record;
use crate::restart::{RestartConfig, run_restart};

mod check;
mod failover;
mod trials;

pub use check::CheckArgs;
use check::check;
use failover::failover;
pub use failover::{FailoverArgs, Only, Topologies};
use trials::{SpecTrialsArgs, spec_trials};

/// Errors of the bench command line: the harness failed, not the system
/// under test (a slow failover is the result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Writing the report failed (a closed pipe, a full disk).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The operator binary `idle` runs is not there.
    #[error(
        "no logbook binary at {0}: build it (cargo build --release --locked -p logbook) or pass --operator-binary"
    )]
    NoOperatorBinary(PathBuf),
    /// The harness failed: which bench, and why.
    #[error("bench: {0}")]
    Harness(String),
}

/// `pub type Result` in the kube-runtime style.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Logbook's benchmarks: failovers beside Sentinel, operator restart,
/// replay, journal churn, idle memory and resharding (docs/benchmarks.md).
#[derive(Debug, Parser)]
#[command(name = "logbook-bench", version, about, long_about = None)]
pub struct Cli {
    /// Log format and filter of the operator run in-process (global).
    #[command(flatten)]
    pub log: logbook::logging::LogArgs,
    /// Where each run's figures go as JSON (`<command>-<time>.json` and
    /// `<command>-latest.json`), with the commit and the machine's load.
    #[arg(long, global = true, default_value = "bench-results")]
    pub results: PathBuf,
    /// The bench to run.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// `logbook-bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Failover and switchover windows, with Sentinel references.
    Failover(FailoverArgs),
    /// Operator restart: every projection loaded from ConfigMap journals
    /// and decided once, with snapshots and (the reference) from seq 1.
    Restart(RestartArgs),
    /// The replay tool on a long journal: audit, verify beside sha256sum,
    /// export to JSONL (docs/benchmarks.md).
    Replay(ReplayBenchArgs),
    /// Journal writes per cluster under a churn of observations, with
    /// group commit and (the reference) write-through.
    Churn(ChurnArgs),
    /// A real operator process's memory with many idle clusters, and the
    /// API writes it makes while they are idle.
    Idle(IdleArgs),
    /// A real operator process at a thousand clusters against localkube's API
    /// alone: first decisions carried out, memory, API requests per minute,
    /// restart to every journal taken over
    Scale(ScaleArgs),
    /// A 3 → 4-shard reshard of a Cluster holding N keys: raw Atomic Slot
    /// Migration, `redis-cli --cluster rebalance`, and the operator.
    Reshard(ReshardArgs),
    /// Backup and restore throughput beside copying the same RDB bytes to
    /// and from the bucket directly (moto's S3 server).
    Backup(BackupArgs),
    /// The continuous archive's cost to the primary's writes (following
    /// the replica, or the primary), its lag, and its uploads.
    Archive(crate::archive::ArchiveArgs),
    /// A seeded fault-injection soak of each topology with invariants
    /// checked throughout (docs/robustness.md); exits non-zero when one
    /// broke, printing the seed and the command that reproduces it.
    Soak(SoakArgs),
    /// Spec changes generated from the CRD's schema (Acto-style chains)
    /// applied to a live cluster under a recorded history, each step
    /// judged: refused clearly or converged, its value reflected, a revert
    /// restoring the objects, a fresh cluster agreeing; exits non-zero on
    /// a finding.
    SpecTrials(SpecTrialsArgs),
    /// Each bench's last run (`--results`) beside its baseline: names every
    /// figure whose ratio to its same-run reference got more than the
    /// tolerance worse, and every lost write or false failover; exits
    /// non-zero when there is one.
    Check(CheckArgs),
    /// Judges a recorded history (a soak's `history.jsonl`, one operation
    /// per line) against the client promises (docs/robustness.md): prints
    /// both checkers' reports and every anomaly outside the promises;
    /// exits non-zero when there is one.
    History(HistoryArgs),
}

/// `logbook-bench history` options.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history file.
    pub file: PathBuf,
}

/// `logbook-bench soak` options.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Standalone, Replication, Sentinel, Cluster, or all (each in turn).
    #[arg(long, default_value = "all")]
    pub topology: String,
    /// The schedule's seed (default: from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds of faults per topology.
    #[arg(long, default_value_t = 120)]
    pub duration_seconds: u64,
    /// Mean seconds between faults.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval_seconds: u64,
    /// Seconds the cluster has to converge after the last fault.
    #[arg(long, default_value_t = 240)]
    pub converge_seconds: u64,
    /// Keep each work directory (journal, logs, faults) even when it passed.
    #[arg(long)]
    pub keep: bool,
    /// The `logbook` binary to run as the operator (default: `logbook`
    /// beside this binary).
    #[arg(long)]
    pub operator_binary: Option<PathBuf>,
    /// `local` (localkube, in process), `kubernetes` (the real control
    /// plane that `make controlplane` builds, with localkube's kubelet and
    /// proxy as its node) or `containers` (that control plane with the
    /// real node, `make node` and `make images`: pods in containers).
    #[arg(long, default_value = "local")]
    pub control_plane: String,
    /// Logical clients of the recorded history (lists and registers,
    /// checked at the end; 0: no history).
    #[arg(long, default_value_t = 4)]
    pub history_clients: usize,
    /// Milliseconds each history client pauses after an operation.
    #[arg(long, default_value_t = 10)]
    pub history_pace_milliseconds: u64,
}

/// `logbook-bench backup` options.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Keys loaded.
    #[arg(long, default_value_t = 200_000)]
    pub keys: u64,
    /// Bytes of each value.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// Runs of each path (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// A planted regression, to check `logbook-bench check`: every
    /// restore made this many times as slow inside its timed span.
    #[arg(long, default_value_t = 1, hide = true)]
    pub plant_restore_factor: u32,
}

/// `logbook-bench reshard` options.
#[derive(Debug, Args)]
pub struct ReshardArgs {
    /// Keys loaded before each reshard (a quarter of them move).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Runs of each method, each on fresh servers (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Replicas per shard (1, as the operator's default). With replicas
    /// each write of the writer is followed by `WAIT 1` and counts as
    /// acknowledged only once a replica has it; with 0 an accepted write
    /// counts.
    #[arg(long, default_value_t = 1)]
    pub replicas_per_shard: usize,
    /// Bytes of each loaded value.
    #[arg(long, default_value_t = 64)]
    pub value_bytes: usize,
    /// Leave the operator out (its `operator_s` is null, with a note).
    #[arg(long)]
    pub skip_operator: bool,
    /// Leave the legacy `redis-cli` rebalance out (the slow one).
    #[arg(long)]
    pub skip_legacy: bool,
}

/// `logbook-bench churn` options.
#[derive(Debug, Args)]
pub struct ChurnArgs {
    /// Clusters churned at once.
    #[arg(long, default_value_t = 10)]
    pub clusters: usize,
    /// Observations per second per cluster.
    #[arg(long, default_value_t = 10)]
    pub rate: u32,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// The group-commit interval under test, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub group_commit_milliseconds: u64,
}

/// `logbook-bench idle` options.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Standalone clusters (one real valkey-server each).
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Seconds idle before sampling.
    #[arg(long, default_value_t = 30)]
    pub settle_seconds: u64,
    /// Seconds of sampling.
    #[arg(long, default_value_t = 30)]
    pub sample_seconds: u64,
    /// The `logbook` binary to run as the operator (default: `logbook`
    /// beside this binary, as `cargo build --release -p logbook` puts it).
    #[arg(long)]
    pub operator_binary: Option<PathBuf>,
}

/// `logbook-bench scale` options.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Standalone clusters (API objects only: no pod runs).
    #[arg(long, default_value_t = 1000)]
    pub clusters: usize,
    /// Seconds quiet before sampling (and after the restart's takeover).
    #[arg(long, default_value_t = 20)]
    pub settle_seconds: u64,
    /// Seconds of sampling.
    #[arg(long, default_value_t = 60)]
    pub sample_seconds: u64,
    /// The `logbook` binary to run as the operator (default: `logbook`
    /// beside this binary, as `cargo build --release -p logbook` puts it).
    #[arg(long)]
    pub operator_binary: Option<PathBuf>,
}

/// `logbook-bench replay` options.
#[derive(Debug, Clone, Args)]
pub struct ReplayBenchArgs {
    /// Events in the seeded journal.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Timed runs of each verb (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Work in this (new or empty) directory and keep the journal there,
    /// instead of a temporary one.
    #[arg(long)]
    pub keep: Option<std::path::PathBuf>,
}

/// `logbook-bench restart` options.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// ValkeyClusters, one journal stream each.
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Events per stream.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Events between snapshots (the operator takes one every 1,000).
    #[arg(long, default_value_t = 1_000)]
    pub snapshot_every: u64,
    /// Timed passes of each load (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repetitions: usize,
    /// Clusters loaded at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Frame bytes at which a journal segment is sealed while seeding.
    #[arg(long, default_value_t = logbook::journal_store::layout::DEFAULT_SEAL_BYTES)]
    pub seal_bytes: usize,
}

/// `logbook-bench history FILE`.
fn history(args: &HistoryArgs, out: &mut dyn Write) -> Result<()> {
    let history = crate::history_client::read_json_lines(&args.file).map_err(bench_err)?;
    let summary =
        crate::history_client::check_history(&history, &logbook_history::RegisterConfig::default());
    writeln!(out, "{summary}")?;
    let findings = crate::soak::history::judge(&history, &summary);
    writeln!(
        out,
        "within the promises: {} stale read(s) (longest {} ms), {} shrunk list(s); registers linearizable / not / undecided: {} / {} / {}",
        findings.stale_tolerated,
        findings.stale_max_ms,
        findings.shrunk_tolerated,
        findings.registers.0,
        findings.registers.1,
        findings.registers.2
    )?;
    for violation in &findings.violations {
        writeln!(out, "{violation}")?;
    }
    out.flush()?;
    if findings.violations.is_empty() {
        Ok(())
    } else {
        Err(Error::Harness(format!(
            "{}: {} anomalies outside the promises, or a loss not judged (above)",
            args.file.display(),
            findings.outside
        )))
    }
}

fn bench_err(e: impl std::fmt::Display) -> Error {
    Error::Harness(e.to_string())
}

/// Runs one bench.
///
/// # Errors
/// When the harness fails (not when the system under test is slow: that is
/// the result).
pub fn run(cmd: BenchCommand, results: &Path, out: &mut dyn Write) -> Result<()> {
    if let BenchCommand::Check(args) = &cmd {
        return check(args, results, out);
    }
    if let BenchCommand::History(args) = &cmd {
        return history(args, out);
    }
    // Several commands run the operator in this runtime: its threads get
    // the operator's stack, as in its own binary.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(logbook::operator::THREAD_STACK_BYTES)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let mut rec = Record::start(cmd.name(), cmd.args());
    let outcome = match cmd {
        BenchCommand::Failover(args) => runtime.block_on(failover(args, out, &mut rec)),
        BenchCommand::Restart(args) => runtime.block_on(restart(args, out, &mut rec)),
        BenchCommand::Churn(args) => runtime.block_on(churn(args, out, &mut rec)),
        BenchCommand::Idle(args) => runtime.block_on(idle(args, out, &mut rec)),
        BenchCommand::Scale(args) => runtime.block_on(scale(args, out, &mut rec)),
        BenchCommand::Replay(args) => runtime.block_on(replay(args, out, &mut rec)),
        BenchCommand::Reshard(args) => runtime.block_on(reshard(args, out, &mut rec)),
        BenchCommand::Backup(args) => runtime.block_on(backup(args, out, &mut rec)),
        BenchCommand::Archive(args) => runtime
            .block_on(crate::archive::run_cli(&args, out, &mut rec))
            .map_err(|e| Error::Harness(e.to_string())),
        BenchCommand::Soak(args) => runtime.block_on(soak(args, out)),
        BenchCommand::SpecTrials(args) => runtime.block_on(spec_trials(args, out)),
        BenchCommand::Check(_) | BenchCommand::History(_) => Ok(()),
    };
    // What was measured is kept even when a later part failed.
    if !rec.figures.is_empty() {
        let path = rec.finish(results)?;
        eprintln!("logbook-bench: figures written to {}", path.display());
    }
    outcome
}

impl BenchCommand {
    /// The subcommand's name, as records and baselines are named.
    pub fn name(&self) -> &'static str {
        match self {
            BenchCommand::Failover(_) => "failover",
            BenchCommand::Restart(_) => "restart",
            BenchCommand::Replay(_) => "replay",
            BenchCommand::Churn(_) => "churn",
            BenchCommand::Idle(_) => "idle",
            BenchCommand::Scale(_) => "scale",
            BenchCommand::Reshard(_) => "reshard",
            BenchCommand::Backup(_) => "backup",
            BenchCommand::Archive(_) => "archive",
            BenchCommand::Soak(_) => "soak",
            BenchCommand::SpecTrials(_) => "spec-trials",
            BenchCommand::Check(_) => "check",
            BenchCommand::History(_) => "history",
        }
    }

    /// The options as parsed, for the record.
    fn args(&self) -> String {
        match self {
            BenchCommand::Failover(a) => format!("{a:?}"),
            BenchCommand::Restart(a) => format!("{a:?}"),
            BenchCommand::Replay(a) => format!("{a:?}"),
            BenchCommand::Churn(a) => format!("{a:?}"),
            BenchCommand::Idle(a) => format!("{a:?}"),
            BenchCommand::Scale(a) => format!("{a:?}"),
            BenchCommand::Reshard(a) => format!("{a:?}"),
            BenchCommand::Backup(a) => format!("{a:?}"),
            BenchCommand::Archive(a) => format!("{a:?}"),
            BenchCommand::Soak(a) => format!("{a:?}"),
            BenchCommand::SpecTrials(a) => format!("{a:?}"),
            BenchCommand::Check(a) => format!("{a:?}"),
            BenchCommand::History(a) => format!("{a:?}"),
        }
    }
}

async fn backup(args: BackupArgs, out: &mut dyn Write, rec: &mut Record) -> Result<()> {
    let config = crate::backup::BackupBenchConfig {
        keys: args.keys,
        value_bytes: args.value_bytes,
        runs: args.runs,
        plant_restore_factor: args.plant_restore_factor,
    };
    let result = crate::backup::run_backup_bench(config, &mut std::io::stderr())
        .await
        .map_err(|e| Error::Harness(e.to_string()))?;
    let secs = |d: Duration| d.as_secs_f64();
    rec.figure("copy up (reference)", secs(result.copy_up), "s");
    rec.compared("backup", secs(result.backup), "s", "copy up (reference)");
    rec.figure("copy down (reference)", secs(result.copy_down), "s");
    rec.compared(
        "restore",
        secs(result.restore),
        "s",
        "copy down (reference)",
    );
    // The restore again, against the download written as `fetch_to_file`
    // writes it: this ratio is what the checks alone cost.
    rec.figure(
        "copy down, threaded write (reference)",
        secs(result.copy_down_threaded),
        "s",
    );
    rec.compared(
        "restore against the threaded write",
        secs(result.restore),
        "s",
        "copy down, threaded write (reference)",
    );
    rec.figure("RDB bytes", result.bytes as f64, "bytes");
    write!(out, "{}", crate::backup::render(config, &result))?;
    Ok(())
}

async fn reshard(args: ReshardArgs, out: &mut dyn Write, rec: &mut Record) -> Result<()> {
    let config = crate::reshard::ReshardConfig {
        keys: args.keys,
        runs: args.runs.max(1),
        replicas: args.replicas_per_shard,
        value_bytes: args.value_bytes,
        skip_operator: args.skip_operator,
        skip_legacy: args.skip_legacy,
    };
    writeln!(
        out,
        "reshard {} → {} shards, {} keys, {} replica(s) per shard, {} run(s) per method",
        crate::reshard::SHARDS_FROM,
        crate::reshard::SHARDS_TO,
        config.keys,
        config.replicas,
        config.runs
    )?;
    out.flush()?;
    // Each run's line goes to `out` as it finishes, the setup to stderr.
    let mut unwritten: Option<std::io::Error> = None;
    let outcome = {
        let mut line = |method, run, end: crate::reshard::RunEnd<'_>| {
            let text = match end {
                crate::reshard::RunEnd::Measured(measured) => {
                    crate::reshard::run_line(method, run, measured)
                }
                crate::reshard::RunEnd::Failed(why) => {
                    crate::reshard::failed_line(method, run, why)
                }
            };
            if let Err(err) = writeln!(out, "{text}").and_then(|()| out.flush()) {
                unwritten.get_or_insert(err);
            }
        };
        crate::reshard::run_reshard(&config, &mut line, &mut |p| eprintln!("{p}")).await
    };
    if let Some(err) = unwritten {
        return Err(err.into());
    }
    let outcome = outcome.map_err(bench_err)?;
    reshard_figures(&outcome.report, rec);
    write!(out, "{}", outcome.report.render())?;
    out.flush()?;
    match outcome.refused {
        Some(message) => Err(Error::Harness(format!(
            "the operator refused the reshard (operator_s is null): {message}"
        ))),
        None => Ok(()),
    }
}

/// The reshard's figures: each method's median, the operator's compared
/// with raw Atomic Slot Migration timed from starting the new shard (the
/// steps the operator's time includes), and every method's lost keys.
fn reshard_figures(report: &crate::reshard::ReshardReport, rec: &mut Record) {
    let secs = |d: Duration| d.as_secs_f64();
    let from_start = "raw ASM from starting the new shard";
    if let Some(d) = report.raw_asm.median_from_start() {
        rec.figure(from_start, secs(d), "s");
    }
    if let Some(d) = report.raw_asm.median() {
        rec.figure("raw ASM moves", secs(d), "s");
    }
    if let Some(d) = report.legacy.median() {
        rec.figure("redis-cli rebalance", secs(d), "s");
    }
    if let Some(d) = report.operator.median() {
        rec.compared("operator", secs(d), "s", from_start);
    }
    for (name, results) in [
        ("raw ASM", &report.raw_asm),
        ("redis-cli rebalance", &report.legacy),
        ("operator", &report.operator),
    ] {
        if let Some(lost) = results.lost() {
            rec.figure(format!("{name} lost acked"), lost as f64, "count");
        }
    }
}

/// The median of `times` in seconds, if any.
fn median_secs(times: &[Duration]) -> Option<f64> {
    crate::reshard::median(times).map(|d| d.as_secs_f64())
}

async fn replay(args: ReplayBenchArgs, out: &mut dyn Write, rec: &mut Record) -> Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("logbook-bench-replay-")
        .tempdir()
        .map_err(bench_err)?;
    let work = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(bench_err)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let report =
        crate::replay::run_replay_bench(&work, args.events.max(1), args.runs.max(1), &mut |line| {
            eprintln!("{line}")
        })
        .await
        .map_err(bench_err)?;
    if let Some(sha) = median_secs(&report.sha256sum) {
        rec.figure("sha256sum of the journal (reference)", sha, "s");
    }
    if let Some(verify) = median_secs(&report.verify) {
        rec.compared(
            "verify",
            verify,
            "s",
            "sha256sum of the journal (reference)",
        );
    }
    for (name, times) in [("audit", &report.audit), ("export", &report.export)] {
        if let Some(t) = median_secs(times) {
            rec.figure(name, t, "s");
        }
    }
    rec.figure("events", report.events as f64, "count");
    rec.figure("audit findings", report.findings as f64, "count");
    write!(out, "{}", report.render())?;
    out.flush()?;
    Ok(())
}

async fn churn(args: ChurnArgs, out: &mut dyn Write, rec: &mut Record) -> Result<()> {
    let report = crate::churn::run_churn(crate::churn::ChurnConfig {
        clusters: args.clusters.max(1),
        rate: args.rate.max(1),
        duration: std::time::Duration::from_secs(args.seconds.max(1)),
        group_commit: std::time::Duration::from_millis(args.group_commit_milliseconds),
    })
    .await
    .map_err(bench_err)?;
    let reference = "store appends per cluster per minute, write-through (reference)";
    rec.figure(
        reference,
        report.write_through.appends_per_minute,
        "per minute",
    );
    rec.compared(
        "store appends per cluster per minute, group commit",
        report.grouped.appends_per_minute,
        "per minute",
        reference,
    );
    rec.figure(
        "API writes per cluster per minute, group commit",
        report.grouped.api_writes_per_minute,
        "per minute",
    );
    write!(out, "{}", crate::churn::render(&report))?;
    out.flush()?;
    Ok(())
}

/// The operator binary given, or `logbook` beside this binary.
fn operator_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    let binary = match given {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| Error::Harness(format!("cannot find this binary's directory: {e}")))?
            .with_file_name("logbook"),
    };
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(Error::NoOperatorBinary(binary))
    }
}

/// `--topology`: one topology, or `all` of them in turn.
fn topologies(arg: &str) -> Result<Vec<crate::soak::schedule::SoakTopology>> {
    use crate::soak::schedule::SoakTopology;
    if arg.eq_ignore_ascii_case("all") {
        return Ok(SoakTopology::ALL.to_vec());
    }
    SoakTopology::parse(arg).map(|t| vec![t]).ok_or_else(|| {
        Error::Harness(format!(
            "--topology {arg}: expected Standalone, Replication, Sentinel, Cluster or all"
        ))
    })
}

/// `--seed`, or one from the clock.
fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    })
}

async fn soak(args: SoakArgs, out: &mut dyn Write) -> Result<()> {
    let binary = operator_binary(args.operator_binary)?;
    let topologies = topologies(&args.topology)?;
    let control_plane = crate::soak::ControlPlane::parse(&args.control_plane).ok_or_else(|| {
        Error::Harness(format!(
            "--control-plane {}: expected local, kubernetes or containers",
            args.control_plane
        ))
    })?;
    let seed = seed_or_clock(args.seed);
    let mut reports = Vec::new();
    for topology in topologies {
        let config = crate::soak::SoakConfig {
            topology,
            seed,
            duration: std::time::Duration::from_secs(args.duration_seconds),
            interval: std::time::Duration::from_secs(args.interval_seconds),
            binary: binary.clone(),
            converge: std::time::Duration::from_secs(args.converge_seconds),
            keep: args.keep,
            control_plane,
            history: crate::soak::history::HistoryLoad {
                clients: args.history_clients,
                pace: std::time::Duration::from_millis(args.history_pace_milliseconds),
            },
        };
        eprintln!("soak: {}", config.command());
        let report = crate::soak::run_soak(&config).await.map_err(bench_err)?;
        eprintln!(
            "soak: {} seed {}: {} in {:.0} s",
            topology.name(),
            seed,
            if report.passed() { "passed" } else { "FAILED" },
            report.elapsed.as_secs_f64()
        );
        reports.push(report);
    }
    write!(out, "{}", crate::soak::render(&reports))?;
    out.flush()?;
    if reports.iter().all(crate::soak::SoakReport::passed) {
        Ok(())
    } else {
        Err(Error::Harness(format!(
            "soak seed {seed}: an invariant broke (above)"
        )))
    }
}

/// The run `idle` and `scale` share: the operator binary found, at least
/// one cluster, at least one second of sampling.
fn operator_run(
    binary: Option<PathBuf>,
    clusters: usize,
    settle_seconds: u64,
    sample_seconds: u64,
) -> Result<crate::idle::IdleConfig> {
    Ok(crate::idle::IdleConfig {
        binary: operator_binary(binary)?,
        clusters: clusters.max(1),
        settle: std::time::Duration::from_secs(settle_seconds),
        sample: std::time::Duration::from_secs(sample_seconds.max(1)),
    })
}

async fn idle(args: IdleArgs, out: &mut dyn Write, rec: &mut Record) -> Result<()> {
    let config = operator_run(
        args.operator_binary,
        args.clusters,
        args.settle_seconds,
        args.sample_seconds,
    )?;
    let report = crate::idle::run_idle(config).await.map_err(bench_err)?;
    rec.figure("clusters Ready", report.ready as f64, "count");
    rec.figure("Ready after", report.ready_after.as_secs_f64(), "s");
    rec.figure("RSS, largest", report.rss_max_kib as f64 / 1024.0, "MiB");
    if let Some(cpu) = report.idle_cpu {
        rec.figure("CPU share while idle", cpu, "fraction");
    }
    rec.figure("API writes while idle", report.idle_writes as f64, "count");
    write!(out, "{}", crate::idle::render(&report))?;
    out.flush()?;
    Ok(())
}

async fn scale(args: ScaleArgs, out: &mut dyn Write, rec: &mut Record) -> Result<()> {
    let config = operator_run(
        args.operator_binary,
        args.clusters,
        args.settle_seconds,
        args.sample_seconds,
    )?;
    let report = crate::scale::run_scale(config).await.map_err(bench_err)?;
    rec.figure(
        "first decisions carried out after",
        report.applied_after.as_secs_f64(),
        "s",
    );
    rec.figure("RSS", report.rss_kib as f64 / 1024.0, "MiB");
    rec.figure(
        "API requests per minute",
        report.requests_per_minute,
        "per minute",
    );
    rec.figure(
        "every journal taken over after",
        report.takeover_after.as_secs_f64(),
        "s",
    );
    write!(out, "{}", crate::scale::render(&report))?;
    out.flush()?;
    Ok(())
}

async fn restart(args: RestartArgs, out: &mut dyn Write, rec: &mut Record) -> Result<()> {
    let config = RestartConfig {
        clusters: args.clusters,
        events: args.events,
        snapshot_every: args.snapshot_every.max(1),
        repetitions: args.repetitions.max(1),
        concurrency: args.concurrency.max(1),
        seal_bytes: args.seal_bytes,
    };
    // Progress goes to stderr as it happens; the report to `out`.
    let report = run_restart(config, &mut |line| eprintln!("{line}"))
        .await
        .map_err(bench_err)?;
    let reference = format!("{:?} (reference)", crate::restart::LoadMode::FromStart);
    for runs in &report.modes {
        let totals: Vec<Duration> = runs.passes.iter().map(|p| p.total).collect();
        let Some(median) = median_secs(&totals) else {
            continue;
        };
        if runs.mode == crate::restart::LoadMode::FromStart {
            rec.figure(reference.clone(), median, "s");
        } else {
            rec.compared(format!("{:?}", runs.mode), median, "s", reference.clone());
        }
    }
    write!(out, "{}", report.render())?;
    out.flush()?;
    Ok(())
}
