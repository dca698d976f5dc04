//! `logbook-bench`: Logbook's benchmarks, a tool beside the operator and
//! not part of it. This crate depends on the operator library (`logbook`)
//! for what it measures; the operator never imports it (only the
//! operator's end-to-end tests do, as a dev-dependency, for the write
//! probe below). The binary's subcommands are in [`cli`]: `failover`,
//! `restart` ([`restart`]), `replay` ([`replay`]), `churn` ([`churn`]),
//! `idle` ([`idle`]) and `reshard` ([`reshard`]); the figures are in
//! `docs/benchmarks.md`.
//!
//! The failover bench: failover and switchover measurements with
//! references. It owns the measurement harness: a write probe that records every write
//! attempt ([`WriteProbe`]), the windows and losses derived from its log
//! ([`WriteLog`], [`missing_keys`]), statistics and the markdown table
//! ([`stats`]), and two references the operator is compared with, run
//! against real `valkey-server` processes on 127.0.0.1:
//!
//! * Sentinel ([`run_sentinel_reference`]): three servers, three Sentinels,
//!   a fault injected into the primary (SIGKILL or SIGSTOP);
//! * bare `FAILOVER TO` ([`run_failover_to_reference`]): a planned
//!   switchover between a primary and its replica;
//! * Valkey Cluster's own failover ([`cluster_reference`]): S primaries and
//!   R replicas each, formed with CLUSTER commands, a primary killed.
//!
//! The Cluster rows ([`operator_cluster`]) write through one independent
//! cluster-aware writer per shard ([`shard_probe`]: a [`cluster_writer`]
//! over [`cluster_client`], routing by [`slots`], its keys hash-tagged
//! into its shard) and read the victim shard's window from its own
//! writer; the operator's journal tells where the time went
//! ([`cluster_journal`]).
//!
//! It must not decide or journal anything, and it never touches servers it
//! did not start except through a [`WriteProbe`] the caller points at them.
//! Every process it starts is owned by a guard that kills it when dropped,
//! so a failed or cancelled run leaves nothing behind.
//!
//! # What is measured
//!
//! * **Window**: the time from the start of the last successful write before
//!   the fault (or the switchover command) to the start of the first
//!   successful write after it on the new primary. A write is *successful*
//!   when `SET` returned `OK`.
//! * **Lost writes**: *acknowledged* writes (`SET` returned `OK` and
//!   `WAIT 1 1000` returned at least 1) missing on the new primary after the
//!   run. Both references write with `WAIT`, so an acknowledged write is on
//!   at least two servers.

pub mod archive;
pub mod backup;
pub mod check;
pub mod churn;
pub mod cli;
pub mod cluster_client;
pub mod cluster_journal;
pub mod cluster_reference;
pub mod cluster_writer;
mod conn;
mod failover_to;
pub mod history_client;
pub mod idle;
mod operator;
pub mod operator_cluster;
mod process;
mod readback;
mod readiness;
pub mod record;
pub mod replay;
pub mod reshard;
mod resolve;
pub mod restart;
pub mod s3;
pub mod scale;
mod sentinel;
pub mod shard_probe;
pub mod slots;
pub mod slow_command;
pub mod soak;
pub mod spec_mutations;
pub mod stats;
mod writer;

use std::time::Duration;

pub use conn::{TlsHosts, client, speak_tls_to, speaks_tls, split_addr};
pub use failover_to::{Switch, run_failover_to_reference, run_switchover_reference};
pub use operator::{OperatorBench, Scenario};
pub use process::valkey_server_binary;
pub use readback::missing_keys;
pub use resolve::Target;
pub use sentinel::run_sentinel_reference;
pub use stats::{Percentiles, Row, render_cluster_table, render_table};
pub use writer::{Attempt, Failure, Outcome, WriteLog, WriteProbe, WriteProbeConfig};

/// A failure of the harness itself (not of the system under test: failed
/// writes are data, recorded in the [`WriteLog`]).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An address is not `host:port`.
    #[error("invalid address {addr:?}: expected host:port")]
    BadAddress {
        /// The address as given.
        addr: String,
    },
    /// A process could not be spawned (binary missing or not executable).
    #[error("cannot start {what} with {binary}: {source}")]
    Spawn {
        /// Which process (`primary`, `sentinel-1`, ...).
        what: String,
        /// The binary tried.
        binary: String,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// A working directory or configuration file could not be prepared.
    #[error("cannot prepare {what}: {source}")]
    Io {
        /// What was being prepared.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A process exited while starting (port taken, bad configuration).
    #[error("{what} exited during start-up ({status}); last log lines:\n{log}")]
    Exited {
        /// Which process.
        what: String,
        /// Its exit status.
        status: String,
        /// The tail of its log.
        log: String,
    },
    /// A command the harness itself sent failed (setting up, reading back).
    #[error("{command} on {addr} failed: {source}")]
    Valkey {
        /// The server.
        addr: String,
        /// The command name.
        command: &'static str,
        /// The client error.
        #[source]
        source: redis::RedisError,
    },
    /// A reply the harness could not interpret.
    #[error("unexpected reply to {command} from {addr}: {detail}")]
    Protocol {
        /// The server.
        addr: String,
        /// The command name.
        command: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// Something the run waits for did not happen in time (no failover, a
    /// replica never synchronised, a server never answered).
    #[error("timed out after {after_ms} ms waiting for {what}{detail}")]
    TimedOut {
        /// What was awaited, with the servers involved.
        what: String,
        /// How long the harness waited.
        after_ms: u128,
        /// Extra context (log tails), empty or starting with a newline.
        detail: String,
    },
    /// A tool the harness runs as the system under test (`redis-cli
    /// --cluster rebalance`) exited with an error.
    #[error("{tool} failed ({status}) after {after_ms} ms: {detail}")]
    ToolFailed {
        /// The command.
        tool: String,
        /// Its exit status.
        status: String,
        /// How long it ran.
        after_ms: u128,
        /// Its last error line.
        detail: String,
    },
    /// A signal could not be delivered to a process the harness started.
    #[error("cannot send SIG{signal} to {what} (pid {pid}): {detail}")]
    Signal {
        /// Which process.
        what: String,
        /// Its pid.
        pid: u32,
        /// The signal name without `SIG`.
        signal: &'static str,
        /// Why.
        detail: String,
    },
}

/// The fault injected into the primary in an unplanned failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// SIGKILL: the process is gone and is not restarted.
    Kill,
    /// SIGSTOP: the process is frozen (sockets stay open, nothing answers);
    /// it gets SIGCONT once the writer succeeded on the new primary.
    Freeze,
    /// No fault: a planned switchover, `SENTINEL FAILOVER <name>
    /// COORDINATED` asked of one Sentinel (the old primary pauses writes
    /// until the chosen replica caught up), as the operator asks it.
    Planned,
}

impl Fault {
    /// A short name for tables and logs: `kill` or `freeze`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Freeze => "freeze",
            Fault::Planned => "switchover",
        }
    }
}

/// How often the failover bench's probes write (operator rows and
/// references alike). A switchover's window is two or three of the
/// default 10 ms ticks, so its median of five flipped between 20 and
/// 30 ms from run to run (+50 %) with nothing changed; at 1 ms the window
/// measures the switchover, not the probe's ticks.
pub const FAILOVER_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

/// The measurements of one run of a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    /// The write window (unplanned) or write pause (planned); see the
    /// module documentation.
    pub window: Duration,
    /// Acknowledged writes missing on the new primary after the run.
    pub lost_acked: usize,
    /// How many acknowledged writes were read back.
    pub acked: usize,
    /// How many primary changes happened during the run (`+switch-master`
    /// events for Sentinel; 1 for a completed `FAILOVER TO`).
    pub failovers: usize,
}

/// The measurements of one Cluster run, read from the victim shard's own
/// writer ([`shard_probe`]): every shard has a writer of its own, so a
/// stall elsewhere does not show here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRun {
    /// Fault → the first write the shard's new primary accepted, and the
    /// first it acknowledged.
    pub recovery: shard_probe::Recovery,
    /// Acknowledged writes (every shard's) missing after the run.
    pub lost_acked: usize,
    /// Acknowledged writes read back (every shard's).
    pub acked: usize,
    /// 1 when the victim's primary changed, else 0.
    pub failovers: usize,
    /// The longest gap between successful writes of the other shards'
    /// writers from the fault to the end of the run.
    pub others_gap: Option<Duration>,
    /// The fault by the wall clock, the journal's clock.
    pub fault_wall: logbook_journal::Timestamp,
    /// The shard's primary (`host:port`) at the end of the run.
    pub new_primary: String,
    /// The operator's journal's account of the run (operator rows, once
    /// the operator stopped and its journal was read).
    pub journal: Option<cluster_journal::JournalTimes>,
}

/// The result of a run whose writes are in `log`: the pause from `at` until
/// the first success on `new_primary`, and the acknowledged writes missing
/// there.
///
/// # Errors
/// [`BenchError::Protocol`] when no write succeeded before `at`; read-back
/// errors.
pub(crate) async fn measure(
    log: &WriteLog,
    at: std::time::Instant,
    new_primary: &str,
    failovers: usize,
) -> Result<RunResult, BenchError> {
    let window = log
        .pause_around(at, new_primary)
        .ok_or_else(|| BenchError::Protocol {
            addr: new_primary.to_owned(),
            command: "SET",
            detail: "no successful write before the fault or command".to_owned(),
        })?;
    let acked = log.acked_keys();
    let missing = missing_keys(new_primary, None, &log.prefix, &acked).await?;
    Ok(RunResult {
        window,
        lost_acked: missing.len(),
        acked: acked.len(),
        failovers,
    })
}

/// A harness failure described by `what` (the closure takes the detail).
pub(crate) fn harness(what: impl Into<String>) -> impl FnOnce(String) -> BenchError {
    let what = what.into();
    move |detail| BenchError::Io {
        what,
        source: std::io::Error::other(detail),
    }
}

/// A fresh work directory named `prefix…`.
///
/// # Errors
/// [`BenchError::Io`] when it cannot be made.
pub(crate) fn work_dir(prefix: &str) -> Result<tempfile::TempDir, BenchError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| BenchError::Io {
            what: "a work directory".into(),
            source,
        })
}

/// A fresh work directory named `prefix…` (and its real path: the node
/// mounts volumes under it by name) with the real control plane and node
/// in it (`make controlplane node images`; docs/node.md). Stop it with
/// `shutdown`.
///
/// # Errors
/// [`BenchError`] when the directory or the node cannot be had.
pub(crate) async fn start_containers(
    prefix: &str,
) -> Result<
    (
        tempfile::TempDir,
        std::path::PathBuf,
        logbook::local::containers::LocalContainers,
    ),
    BenchError,
> {
    start_nodes(prefix, 1).await
}

/// As [`start_containers`], with `count` real nodes in zones
/// (`logbook local --nodes`).
///
/// # Errors
/// As [`start_containers`].
pub(crate) async fn start_nodes(
    prefix: &str,
    count: usize,
) -> Result<
    (
        tempfile::TempDir,
        std::path::PathBuf,
        logbook::local::containers::LocalContainers,
    ),
    BenchError,
> {
    let dir = work_dir(prefix)?;
    let root = std::fs::canonicalize(dir.path()).map_err(|source| BenchError::Io {
        what: "the work directory".into(),
        source,
    })?;
    let node = logbook::local::containers::LocalContainers::start_nodes(&root, count)
        .await
        .map_err(|e| harness("the real control plane and node")(e.to_string()))?;
    Ok((dir, root, node))
}

/// `len` bytes that LZF cannot shrink (a xorshift from `seed`), so an RDB
/// is as large as the data it holds.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A fresh work directory named `prefix…` and an in-process localkube
/// with its process kubelet and proxy, pods' state under `workloads/`
/// in it: what the operator benches and the soak run on. Stop it with
/// [`stop_local_kube`].
///
/// # Errors
/// [`BenchError`] when the directory or localkube cannot be had.
pub(crate) async fn start_local_kube(
    prefix: &str,
) -> Result<(tempfile::TempDir, logbook_localkube::RunningServer), BenchError> {
    let dir = work_dir(prefix)?;
    let server = logbook_localkube::LocalKube::start(logbook_localkube::Config {
        workloads: Some(logbook_localkube::WorkloadsConfig {
            state_dir: dir.path().join("workloads"),
            kubelet: true,
            proxy: true,
            local_images: Vec::new(),
        }),
        ..logbook_localkube::Config::default()
    })
    .await
    .map_err(|e| harness("localkube")(e.to_string()))?;
    Ok((dir, server))
}

/// Readies `server` for an operator: the CRDs installed, a kubeconfig
/// written in `dir` (its path returned) and a client of it.
///
/// # Errors
/// [`BenchError`] when one of them fails.
pub(crate) async fn api_client(
    server: &logbook_localkube::RunningServer,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, kube::Client), BenchError> {
    logbook::local_cluster::install_crds(server).map_err(|e| harness("CRDs")(e.to_string()))?;
    let kubeconfig = dir.join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| harness("kubeconfig")(e.to_string()))?;
    let client = logbook::kube_client::client(Some(&kubeconfig))
        .await
        .map_err(|e| harness("client")(e.to_string()))?;
    Ok((kubeconfig, client))
}

/// Shuts localkube down and kills whatever its pods left running.
pub(crate) async fn stop_local_kube(
    dir: &std::path::Path,
    server: logbook_localkube::RunningServer,
) {
    server.shutdown().await;
    logbook_localkube::kubelet::kill_leftovers(&dir.join("workloads"));
}
