//! The history client: Jepsen-style logical clients that run a list and
//! register workload against Valkey and record every call in a
//! [`logbook_history::History`], for `logbook-history`'s checkers.
//!
//! It generalises the write probes ([`crate::WriteProbe`], the cluster
//! probe): instead of `SET` + `WAIT` on fresh keys it hammers a few hot
//! keys with writes and reads, so the history can show what a log of
//! writes cannot: stale reads, lists that shrink, orders that contradict
//! real time, registers that are not linearizable.
//!
//! * Workloads: lists (`RPUSH key v`, then `WAIT`; `LRANGE key 0 -1`) and
//!   registers (`SET key v`, then `WAIT`; `GET key`), every written value
//!   unique across the run; a configurable share of reads.
//! * Concurrency: N logical clients, each one operation at a time on its
//!   own connection (or cluster client), at a configurable pace, until
//!   stopped or after a number of operations; then one more read of every
//!   key, so every acknowledged append has a read late enough to judge it.
//! * Outcomes: see `classify` (refused → `Fail`, unanswered → `Unknown`,
//!   applied but short of `WAIT` → `Unknown`); a client whose operation
//!   ended `Unknown` goes on under a new process id.
//! * Routing: see `session` (a [`Target`]: fixed address, `ROLE`,
//!   Sentinel; or the [`ClusterClient`](crate::cluster_client::ClusterClient),
//!   with hot keys spread over every shard by `workload`). Reads take the
//!   writes' route, to the primary.
//!
//! The concerns, one file each: `workload` (keys, the next operation),
//! `session` (the way to the data), `classify` (replies → outcomes),
//! `worker` (one client's loop), `summary` (counts, JSON lines, verdicts).
//!
//! It must not judge the database (the checkers do) nor retry an
//! operation (one call is one attempt, recorded), and it touches no key
//! outside its prefix.

mod classify;
mod session;
mod summary;
mod worker;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use logbook::valkey::Password;
use logbook_history::{History, HistoryError, Nanos, RecordError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use summary::{CheckSummary, RunCounts, check_history, read_json_lines, write_json_lines};
pub use workload::HotKeys;

use crate::{BenchError, Target};
use session::{Limits, Session};
use worker::{Plan, Shared, read_every_key, run_client};

/// Where the clients send their operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// One primary (standalone or replication): a fixed Service address,
    /// the server whose `ROLE` says primary, or the Sentinels' answer,
    /// found again after any failure.
    Primary(Target),
    /// Valkey Cluster, from these seed nodes (`host:port`): each key to its
    /// slot's primary.
    Cluster {
        /// Nodes to read the slot map from first.
        seeds: Vec<String>,
    },
}

/// `WAIT <replicas> <timeout>` after every applied write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitFor {
    /// Replicas that must have the write for it to be acknowledged.
    pub replicas: u32,
    /// How long the server may wait for them.
    pub timeout: Duration,
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct HistoryClientConfig {
    /// Where to send operations.
    pub route: Route,
    /// Sent with `AUTH` on every connection.
    pub password: Option<Password>,
    /// Every key starts with it; use a fresh prefix per run.
    pub prefix: String,
    /// How many list keys (default 12).
    pub lists: usize,
    /// How many register keys (default 0; 3 for [`Self::registers`]).
    pub registers: usize,
    /// The share of reads, in `[0, 1]` (default 0.35).
    pub read_fraction: f64,
    /// Logical clients (default 4).
    pub clients: usize,
    /// Pause after each operation (default none).
    pub pace: Duration,
    /// Pause after an operation that did not end `Ok`, when longer than
    /// `pace` (default 10 ms): a client without a primary fails at once.
    pub backoff: Duration,
    /// Stop after this many operations in all (default: until stopped).
    pub max_ops: Option<u64>,
    /// `WAIT` after writes (default one replica, 1 s). `None` when there is
    /// no replica to wait for: a write is then acknowledged when applied.
    pub wait: Option<WaitFor>,
    /// Deadline of each command, and of `WAIT` on top of its own timeout
    /// (default 500 ms).
    pub op_timeout: Duration,
    /// Deadline of connecting, `AUTH`, and each query that finds the
    /// primary (default 250 ms).
    pub connect_timeout: Duration,
    /// Seeds each client's choice of keys and operations (default 0).
    pub seed: u64,
    /// Once the clients stopped, read every key once more (default true),
    /// so every acknowledged append has a read late enough to judge it.
    pub final_reads: bool,
}

impl HistoryClientConfig {
    /// The list workload: 12 lists, 35 % reads, 4 clients, `WAIT 1 1000`.
    pub fn lists(route: Route, prefix: impl Into<String>) -> Self {
        HistoryClientConfig {
            route,
            password: None,
            prefix: prefix.into(),
            lists: 12,
            registers: 0,
            read_fraction: 0.35,
            clients: 4,
            pace: Duration::ZERO,
            backoff: Duration::from_millis(10),
            max_ops: None,
            wait: Some(WaitFor {
                replicas: 1,
                timeout: Duration::from_secs(1),
            }),
            op_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(250),
            seed: 0,
            final_reads: true,
        }
    }

    /// The register workload: 3 registers, otherwise as [`Self::lists`].
    pub fn registers(route: Route, prefix: impl Into<String>) -> Self {
        HistoryClientConfig {
            lists: 0,
            registers: 3,
            ..Self::lists(route, prefix)
        }
    }

    fn check(&self) -> Result<(), HistoryClientError> {
        let refuse = |detail: &str| Err(HistoryClientError::BadConfig(detail.to_owned()));
        if self.clients == 0 {
            return refuse("no clients");
        }
        if self.lists == 0 && self.registers == 0 {
            return refuse("no keys");
        }
        if !(0.0..=1.0).contains(&self.read_fraction) {
            return refuse("read_fraction outside [0, 1]");
        }
        if let Route::Cluster { seeds } = &self.route
            && seeds.is_empty()
        {
            return refuse("a cluster route without seeds");
        }
        Ok(())
    }
}

/// Why a run could not start or its history could not be had.
#[derive(Debug, thiserror::Error)]
pub enum HistoryClientError {
    /// The configuration cannot run (a refusal: fix the configuration).
    #[error("history client configuration refused: {0}")]
    BadConfig(String),
    /// The cluster's slot map could not be read to place the hot keys
    /// (retryable: the cluster is unreachable or not formed).
    #[error("cannot place the hot keys of {prefix:?}: {source}")]
    SlotMap {
        /// The run's key prefix.
        prefix: String,
        /// Why the map could not be read.
        #[source]
        source: BenchError,
    },
    /// Some shard serves no slot a key name could be found in.
    #[error("cannot place the hot keys of {prefix:?} on the shards of {primaries}")]
    KeyPlacement {
        /// The run's key prefix.
        prefix: String,
        /// The shards' primaries, comma-separated.
        primaries: String,
    },
    /// The recorder refused a completion: a bug of this client, which
    /// makes the history untrustworthy.
    #[error("the recorder refused a completion: {0}")]
    Record(#[from] RecordError),
    /// The recorded operations break a history rule (a bug of this
    /// client), or a history file's do.
    #[error("malformed history: {0}")]
    History(#[from] HistoryError),
    /// A logical client's task panicked or was cancelled.
    #[error("logical client {client} ended abnormally: {detail}")]
    Client {
        /// Its index.
        client: usize,
        /// The join error.
        detail: String,
    },
    /// A history file could not be written or read.
    #[error("cannot {action} history file {}: {source}", path.display())]
    File {
        /// `write` or `read`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a history file is not an operation.
    #[error("{}:{line}: not an operation: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// A stopped run: its history, the counts, and the keys it used.
#[derive(Debug, Clone)]
pub struct HistoryRun {
    /// Every operation, in invocation order.
    pub history: History,
    /// How they ended.
    pub counts: RunCounts,
    /// The keys the run worked on.
    pub keys: HotKeys,
}

/// Live counts of a running client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Operations invoked.
    pub invoked: u64,
    /// Ended `Ok`.
    pub ok: u64,
    /// Ended `Fail`.
    pub fail: u64,
    /// Ended `Unknown`.
    pub unknown: u64,
}

/// A running history client. Dropping it aborts its clients (their open
/// calls are lost); [`HistoryClient::stop`] ends them cleanly and returns
/// the history.
pub struct HistoryClient {
    shared: Arc<Shared>,
    keys: HotKeys,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The session that reads every key at the end, when asked to.
    final_reader: Option<Session>,
}

impl HistoryClient {
    /// Places the hot keys (reading the slot map first for a cluster) and
    /// starts the clients. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`HistoryClientError::BadConfig`] for a configuration that cannot
    /// run; [`HistoryClientError::SlotMap`] or
    /// [`HistoryClientError::KeyPlacement`] when a cluster's keys cannot
    /// be placed.
    pub async fn start(config: HistoryClientConfig) -> Result<HistoryClient, HistoryClientError> {
        config.check()?;
        let keys = place_keys(&config).await?;
        let clients = u64::try_from(config.clients).unwrap_or(u64::MAX);
        let shared = Arc::new(Shared::new(clients, config.max_ops));
        let plan = Arc::new(Plan {
            seed: config.seed,
            keys: keys.clone(),
            read_fraction: config.read_fraction,
            pace: config.pace,
            backoff: config.backoff,
        });
        let limits = Limits {
            connect: config.connect_timeout,
            op: config.op_timeout,
            wait: config.wait,
        };
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..clients)
            .map(|client| {
                let session = Session::new(&config.route, config.password.clone(), limits.clone());
                tokio::spawn(run_client(
                    client,
                    Arc::clone(&plan),
                    session,
                    Arc::clone(&shared),
                    stopped.clone(),
                ))
            })
            .collect();
        // The final reader's own session, on the clients' route.
        let final_reader = config
            .final_reads
            .then(|| Session::new(&config.route, config.password.clone(), limits));
        Ok(HistoryClient {
            shared,
            keys,
            stop,
            tasks,
            final_reader,
        })
    }

    /// Now on the run's clock (nanoseconds since it started): for marking
    /// faults on the history's own time line.
    pub fn now(&self) -> Nanos {
        self.shared.now()
    }

    /// The keys the run works on.
    pub fn keys(&self) -> &HotKeys {
        &self.keys
    }

    /// The counts so far.
    pub fn progress(&self) -> Progress {
        let p = &self.shared.progress;
        Progress {
            invoked: p.invoked.load(Ordering::Relaxed),
            ok: p.ok.load(Ordering::Relaxed),
            fail: p.fail.load(Ordering::Relaxed),
            unknown: p.unknown.load(Ordering::Relaxed),
        }
    }

    /// Stops every client after its operation in flight, reads every key
    /// once more (when `final_reads`), and returns the history.
    ///
    /// # Errors
    /// [`HistoryClientError::Client`] when a client's task failed;
    /// [`HistoryClientError::Record`] or [`HistoryClientError::History`]
    /// when the recording went wrong (bugs of this client).
    pub async fn stop(self) -> Result<HistoryRun, HistoryClientError> {
        let _ = self.stop.send(true);
        self.join().await
    }

    /// Waits until the clients end by themselves (their `max_ops` used up),
    /// reads every key once more (when `final_reads`), and returns the
    /// history. Without `max_ops`, waits forever.
    ///
    /// # Errors
    /// As [`HistoryClient::stop`].
    pub async fn join(mut self) -> Result<HistoryRun, HistoryClientError> {
        let tasks = std::mem::take(&mut self.tasks);
        for (client, task) in tasks.into_iter().enumerate() {
            task.await.map_err(|err| HistoryClientError::Client {
                client,
                detail: err.to_string(),
            })?;
        }
        if let Some(session) = self.final_reader.take() {
            read_every_key(&self.keys, session, &self.shared).await;
        }
        if let Some(err) = self.shared.refused.lock().take() {
            return Err(err.into());
        }
        let recorder = std::mem::take(&mut *self.shared.recorder.lock());
        let history = recorder.finish()?;
        Ok(HistoryRun {
            counts: RunCounts::of(&history),
            history,
            keys: std::mem::take(&mut self.keys),
        })
    }
}

impl Drop for HistoryClient {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Runs `config` for `duration`, then stops it.
///
/// # Errors
/// As [`HistoryClient::start`] and [`HistoryClient::stop`].
pub async fn run_for(
    config: HistoryClientConfig,
    duration: Duration,
) -> Result<HistoryRun, HistoryClientError> {
    let client = HistoryClient::start(config).await?;
    tokio::time::sleep(duration).await;
    client.stop().await
}

/// The run's hot keys: named freely for one primary, spread over every
/// shard's slots for a cluster.
async fn place_keys(config: &HistoryClientConfig) -> Result<HotKeys, HistoryClientError> {
    let seeds = match &config.route {
        Route::Primary(_) => {
            return Ok(HotKeys::standalone(
                &config.prefix,
                config.lists,
                config.registers,
            ));
        }
        Route::Cluster { seeds } => seeds,
    };
    let map = crate::cluster_client::slot_map(seeds, config.password.as_ref())
        .await
        .map_err(|source| HistoryClientError::SlotMap {
            prefix: config.prefix.clone(),
            source,
        })?;
    let primaries = map.primaries();
    let shards: Vec<Vec<(u16, u16)>> = primaries.iter().map(|p| map.ranges_of(p)).collect();
    HotKeys::spread(&config.prefix, config.lists, config.registers, &shards).ok_or_else(|| {
        HistoryClientError::KeyPlacement {
            prefix: config.prefix.clone(),
            primaries: primaries
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    })
}
