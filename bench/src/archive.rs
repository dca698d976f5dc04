//! `logbook-bench archive`: what the continuous archive costs a shard's
//! primary and how far the bucket trails its writes, in one run on one
//! primary, one replica and one S3 endpoint (moto's, started here).
//!
//! Writers send pipelined `SET`s of small values to the primary from a
//! fixed number of connections for the whole run. The run alternates, in
//! rounds whose order rotates (to cancel the machine's drift), windows
//! of the same length:
//!
//! - **off**: no archive;
//! - **replica**: `follow` as a sub-replica of the replica (what the
//!   operator does when the shard has one);
//! - **primary**: `follow` as a replica of the primary itself (a shard
//!   without replicas).
//!
//! Each follower starts a fresh chain (a full resynchronisation, its base
//! uploaded) before its window opens: the window measures the steady
//! stream, not the start. Then, on the replica again: **probes** (a write
//! acknowledged, then the time until the segment holding it is listed in
//! the bucket, polled every 100 ms, so not during the throughput windows)
//! and **idle** (the writers stopped: the `PUT`s a quiet shard costs).
//!
//! The bench must not change the archiver: it drives `follow` as the
//! operator's runtime does.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use logbook::backup::BackupStore;
use logbook::backup::archiver::{
    ChainMeta, ChainWriter, FollowEnd, FollowNote, FollowTarget, SourceInfo, follow,
};
use logbook::backup::segment::{IndexPage, archive_dir, chain_dir, index_name};
use logbook::valkey::Timeouts;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::BenchError;
use crate::conn::connect;
use crate::process::{Mode, ValkeyProcess};
use crate::s3::{S3Server, credentials};

const BUCKET: &str = "bench";

/// `logbook-bench archive` options.
#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    /// Seconds of each measured window.
    #[arg(long, default_value_t = 8)]
    pub seconds: u64,
    /// Rounds of (off, replica, primary), the order rotating each round.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Writer connections to the primary.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// `SET`s in each writer's pipeline.
    #[arg(long, default_value_t = 50)]
    pub pipeline: usize,
    /// Bytes of each value.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Keys written over (and loaded first), so the data set stays put.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Seconds of write probes, the archive on the replica.
    #[arg(long, default_value_t = 12)]
    pub probe_seconds: u64,
    /// Seconds without writes, the archive on the replica (an idle segment
    /// closes after 60 s), measured from 3 s after its chain began.
    #[arg(long, default_value_t = 62)]
    pub idle_seconds: u64,
}

/// `logbook-bench archive`: runs the bench (progress on stderr), records
/// its figures in `rec` and prints the table to `out`.
///
/// # Errors
/// As [`run_archive_bench`]; an error writing to `out`.
pub async fn run_cli(
    args: &ArchiveArgs,
    out: &mut dyn Write,
    rec: &mut crate::record::Record,
) -> Result<(), BenchError> {
    let r = run_archive_bench(args, &mut std::io::stderr()).await?;
    for (arm, t) in &r.arms {
        let name = format!("SET/s, {}", arm.name());
        if *arm == Arm::Off {
            rec.figure(name, t.ops_per_sec(), "ops/s");
        } else {
            rec.compared(name, t.ops_per_sec(), "ops/s", "SET/s, off");
            if let Some(p99) = rank(&t.lags, 99) {
                rec.figure(format!("lag p99, {}", arm.name()), p99 as f64, "ms");
            }
        }
    }
    if let Some(p99) = rank(&r.probe_ms, 99) {
        rec.figure("write to bucket p99", p99 as f64, "ms");
    }
    write!(out, "{}", render(args, &r)).map_err(|source| BenchError::Io {
        what: "the report".to_owned(),
        source,
    })
}

/// Where the archive runs in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arm {
    /// No archive.
    Off,
    /// Following the replica.
    Replica,
    /// Following the primary.
    Primary,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Off => "off",
            Arm::Replica => "archive on the replica",
            Arm::Primary => "archive on the primary",
        }
    }
}

/// What the windows of one arm added up to.
#[derive(Debug, Clone, Default)]
pub struct ArmTotals {
    /// `SET`s acknowledged.
    pub ops: u64,
    /// Seconds measured.
    pub secs: f64,
    /// Bytes of the primary's replication stream.
    pub stream_bytes: u64,
    /// Bytes of segments that began in the windows.
    pub segment_bytes: u64,
    /// Segments that began in the windows.
    pub segments: u64,
    /// `PUT`s moto logged in the windows.
    pub puts: u64,
    /// Every `FollowNote::Lag` of the windows (ms).
    pub lags: Vec<i64>,
    /// Each window's ops/s.
    pub rates: Vec<f64>,
}

impl ArmTotals {
    /// Acknowledged `SET`s a second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// The run's figures.
#[derive(Debug, Clone, Default)]
pub struct ArchiveResult {
    /// Per arm.
    pub arms: BTreeMap<Arm, ArmTotals>,
    /// Acknowledgement to segment listed, ms, sorted.
    pub probe_ms: Vec<i64>,
    /// `PUT`s moto logged while idle.
    pub idle_puts: u64,
    /// Seconds idle.
    pub idle_secs: f64,
    /// The lag notes while idle (ms).
    pub idle_lags: Vec<i64>,
}

fn harness(what: impl Into<String>) -> impl FnOnce(String) -> BenchError {
    let what = what.into();
    move |detail| BenchError::Protocol {
        addr: "bench".to_owned(),
        command: "archive bench",
        detail: format!("{what}: {detail}"),
    }
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn archive() -> String {
    archive_dir("bench/ns/demo/")
}

/// Runs the bench, printing a line per window to `progress`.
///
/// # Errors
/// [`BenchError`] when a server, moto, a writer or a follower fails.
pub async fn run_archive_bench(
    args: &ArchiveArgs,
    progress: &mut dyn Write,
) -> Result<ArchiveResult, BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ping = vec!["--repl-ping-replica-period".to_owned(), "1".to_owned()];
    let primary = ValkeyProcess::start("archive-primary", &Mode::Server(ping.clone())).await?;
    let mut replica_args = ping;
    replica_args.extend([
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        primary.port().to_string(),
    ]);
    let replica = ValkeyProcess::start("archive-replica", &Mode::Server(replica_args)).await?;
    let s3 = S3Server::start_at([127, 0, 0, 1], None, &[])?;
    s3.create_bucket(BUCKET)?;
    let store = BackupStore::new(&s3.target(BUCKET), &credentials())
        .map_err(|e| harness("the S3 client")(e.to_string()))?;
    load(&primary.addr(), args).await?;
    wait_link(&replica.addr()).await?;
    let parse = |s: String| {
        s.parse::<SocketAddr>()
            .map_err(|_| BenchError::BadAddress { addr: s })
    };
    let (p_addr, r_addr) = (parse(primary.addr())?, parse(replica.addr())?);

    let ops = Arc::new(AtomicU64::new(0));
    let (stop_writers, writers_stopped) = watch::channel(false);
    let mut writers = Vec::new();
    for n in 0..args.connections.max(1) {
        writers.push(tokio::spawn(writer(
            primary.addr(),
            args.clone(),
            n as u64,
            Arc::clone(&ops),
            writers_stopped.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut result = ArchiveResult::default();
    let window = Duration::from_secs(args.seconds.max(1));
    let arms = [Arm::Off, Arm::Replica, Arm::Primary];
    for round in 0..args.rounds.max(1) {
        for k in 0..arms.len() {
            let arm = arms
                .get((k + round) % arms.len())
                .copied()
                .unwrap_or(Arm::Off);
            let source = match arm {
                Arm::Off => None,
                Arm::Replica => Some(r_addr),
                Arm::Primary => Some(p_addr),
            };
            let follower = match source {
                Some(addr) => Some(Follower::start(&store, addr).await?),
                None => None,
            };
            let puts_before = count_puts(&s3);
            let offset_before = repl_offset(&primary.addr()).await?;
            let ops_before = ops.load(Ordering::Relaxed);
            let opened = Instant::now();
            let from_ms = wall_ms();
            tokio::time::sleep(window).await;
            let took = opened.elapsed().as_secs_f64();
            let done = ops.load(Ordering::Relaxed).saturating_sub(ops_before);
            let to_ms = wall_ms();
            let stream = repl_offset(&primary.addr())
                .await?
                .saturating_sub(offset_before);
            let puts = count_puts(&s3).saturating_sub(puts_before);
            let totals = result.arms.entry(arm).or_default();
            totals.ops = totals.ops.saturating_add(done);
            totals.secs += took;
            totals.stream_bytes = totals.stream_bytes.saturating_add(stream);
            totals.puts = totals.puts.saturating_add(puts);
            let rate = done as f64 / took.max(1e-9);
            totals.rates.push(rate);
            let mut line = format!("round {}: {}: {rate:.0} SET/s", round + 1, arm.name());
            if let Some(mut f) = follower {
                totals.lags.extend(f.drain_lags());
                let chain = f.stop().await?;
                let (bytes, segments) = segments_between(&store, &chain, from_ms, to_ms).await?;
                totals.segment_bytes = totals.segment_bytes.saturating_add(bytes);
                totals.segments = totals.segments.saturating_add(segments);
                line.push_str(&format!(
                    ", {segments} segments, {bytes} segment bytes, {puts} PUTs"
                ));
            }
            let _ = writeln!(progress, "{line}");
            check_writers(&writers)?;
        }
    }

    // Probes: a write acknowledged, then its segment listed.
    let f = Follower::start(&store, r_addr).await?;
    let chain = f.chain.clone();
    let probes = probe(&primary.addr(), Duration::from_secs(args.probe_seconds)).await?;
    let (stop_poll, poll_stopped) = watch::channel(false);
    let poller = tokio::spawn(poll_segments(store.clone(), chain.clone(), poll_stopped));
    let probes = probes
        .await
        .map_err(|e| harness("the probe task")(e.to_string()))??;
    // The segments of the last probes close a second after them.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let _ = stop_poll.send(true);
    let seen = poller
        .await
        .map_err(|e| harness("the bucket poller")(e.to_string()))??;
    f.stop().await?;
    result.probe_ms = probe_latencies(&probes, &seen);
    let _ = writeln!(
        progress,
        "probes: {} of {} found in the bucket",
        result.probe_ms.len(),
        probes.len()
    );

    // Idle: the writers stopped.
    let _ = stop_writers.send(true);
    for w in writers {
        w.await
            .map_err(|e| harness("a writer task")(e.to_string()))??;
    }
    let mut f = Follower::start(&store, r_addr).await?;
    // The chain's first segment (the stream's opening `SELECT`) is not
    // what an idle shard costs from then on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = f.drain_lags();
    let puts_before = count_puts(&s3);
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    result.idle_secs = opened.elapsed().as_secs_f64();
    result.idle_puts = count_puts(&s3).saturating_sub(puts_before);
    result.idle_lags = f.drain_lags();
    f.stop().await?;
    let _ = writeln!(
        progress,
        "idle: {} PUTs in {:.0} s",
        result.idle_puts, result.idle_secs
    );
    for list in result.arms.values_mut() {
        list.lags.sort_unstable();
    }
    result.probe_ms.sort_unstable();
    result.idle_lags.sort_unstable();
    drop((replica, primary));
    Ok(result)
}

/// A `follow` running in the background on one source, one chain.
struct Follower {
    stop: watch::Sender<bool>,
    task: JoinHandle<FollowEnd>,
    notes: mpsc::UnboundedReceiver<FollowNote>,
    chain: String,
}

impl Follower {
    /// Starts following `addr` and waits until its chain's base is in the
    /// bucket and the stream flows (its first lag note).
    async fn start(store: &BackupStore, addr: SocketAddr) -> Result<Follower, BenchError> {
        let (stop, stopped) = watch::channel(false);
        let (notes_tx, mut notes) = mpsc::unbounded_channel();
        let store = store.clone();
        let task = tokio::spawn(async move {
            let target = FollowTarget {
                addr,
                auth: None,
                tls: None,
                timeouts: Timeouts {
                    connect: Duration::from_secs(2),
                    command: Duration::from_secs(10),
                },
                idle: Duration::from_secs(10),
                source: SourceInfo {
                    pod: addr.to_string(),
                    primary: "primary".to_owned(),
                    slots: Vec::new(),
                },
            };
            let meta = ChainMeta {
                namespace: "ns".to_owned(),
                cluster: "demo".to_owned(),
                uid: "bench".to_owned(),
                topology: "Replication".to_owned(),
            };
            let mut writer: Option<ChainWriter> = None;
            let stop = async {
                let _ = stopped.clone().wait_for(|s| *s).await;
            };
            follow(
                &store,
                &archive(),
                &meta,
                &target,
                &mut writer,
                stop,
                &notes_tx,
            )
            .await
            .end
        });
        let mut chain = None;
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(note) = notes.recv().await {
                match note {
                    FollowNote::Started(start) => chain = Some(start.chain.clone()),
                    FollowNote::Lag(_) if chain.is_some() => return true,
                    _ => {}
                }
            }
            false
        })
        .await;
        match (waited, chain) {
            (Ok(true), Some(chain)) => Ok(Follower {
                stop,
                task,
                notes,
                chain,
            }),
            _ => {
                let _ = stop.send(true);
                let end = task.await.map(|end| format!("{end:?}"));
                Err(harness(format!("following {addr}"))(format!(
                    "no chain streaming within 60 s (the follower ended: {end:?})"
                )))
            }
        }
    }

    /// The lag notes since the last call.
    fn drain_lags(&mut self) -> Vec<i64> {
        let mut lags = Vec::new();
        while let Ok(note) = self.notes.try_recv() {
            if let FollowNote::Lag(Some(ms)) = note {
                lags.push(ms);
            }
        }
        lags
    }

    /// Stops it (everything received is uploaded); its chain's name.
    async fn stop(self) -> Result<String, BenchError> {
        let _ = self.stop.send(true);
        let end = self
            .task
            .await
            .map_err(|e| harness("the follower task")(e.to_string()))?;
        match end {
            FollowEnd::Stopped => Ok(self.chain),
            other => Err(harness(format!("following into {}", self.chain))(format!(
                "it ended with {other:?}"
            ))),
        }
    }
}

/// `args.keys` keys loaded, so the base stays the same size.
async fn load(addr: &str, args: &ArchiveArgs) -> Result<(), BenchError> {
    let mut con = connect(addr, None, Duration::from_secs(5)).await?;
    let value = value(args.value_bytes, 1);
    let mut n = 0;
    while n < args.keys {
        let end = (n + 1_000).min(args.keys);
        let mut pipe = redis::pipe();
        for k in n..end {
            pipe.cmd("SET").arg(format!("key:{k}")).arg(&value).ignore();
        }
        let () = pipe
            .query_async(&mut con)
            .await
            .map_err(|source| BenchError::Valkey {
                addr: addr.to_owned(),
                command: "SET",
                source,
            })?;
        n = end;
    }
    Ok(())
}

/// `len` pseudo-random bytes (xorshift64 from `seed`).
fn value(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        v.extend_from_slice(&state.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// One writer connection: pipelines of `SET`s until stopped, each
/// acknowledged pipeline counted into `ops`.
async fn writer(
    addr: String,
    args: ArchiveArgs,
    n: u64,
    ops: Arc<AtomicU64>,
    stopped: watch::Receiver<bool>,
) -> Result<(), BenchError> {
    let mut con = connect(&addr, None, Duration::from_secs(5)).await?;
    let value = value(args.value_bytes, n.wrapping_add(2));
    let keys = args.keys.max(1);
    let mut k = n.wrapping_mul(7_919);
    while !*stopped.borrow() {
        let mut pipe = redis::pipe();
        for _ in 0..args.pipeline.max(1) {
            k = k.wrapping_add(1);
            pipe.cmd("SET")
                .arg(format!("key:{}", k % keys))
                .arg(&value)
                .ignore();
        }
        let () = pipe
            .query_async(&mut con)
            .await
            .map_err(|source| BenchError::Valkey {
                addr: addr.clone(),
                command: "SET",
                source,
            })?;
        ops.fetch_add(args.pipeline.max(1) as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// A writer that ended early ended with an error: surface it.
fn check_writers(writers: &[JoinHandle<Result<(), BenchError>>]) -> Result<(), BenchError> {
    if writers.iter().any(JoinHandle::is_finished) {
        return Err(harness("the writers")(
            "a writer stopped before the end (its connection failed)".to_owned(),
        ));
    }
    Ok(())
}

async fn info(addr: &str) -> Result<String, BenchError> {
    let mut con = connect(addr, None, Duration::from_secs(5)).await?;
    redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut con)
        .await
        .map_err(|source| BenchError::Valkey {
            addr: addr.to_owned(),
            command: "INFO",
            source,
        })
}

/// The primary's `master_repl_offset`.
async fn repl_offset(addr: &str) -> Result<u64, BenchError> {
    let text = info(addr).await?;
    text.lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            harness(format!("INFO replication of {addr}"))("no master_repl_offset".into())
        })
}

async fn wait_link(addr: &str) -> Result<(), BenchError> {
    let started = Instant::now();
    while !info(addr).await?.contains("master_link_status:up") {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(harness(format!("the replica {addr}"))(
                "its link to the primary is not up after 30 s".to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `PUT` requests moto logged so far.
fn count_puts(s3: &S3Server) -> u64 {
    s3.log_text().matches("\"PUT /").count() as u64
}

/// Bytes and count of `chain`'s segments whose first record came in
/// `[from_ms, to_ms)`.
async fn segments_between(
    store: &BackupStore,
    chain: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<(u64, u64), BenchError> {
    let dir = chain_dir(&archive(), chain);
    let (mut bytes, mut count) = (0u64, 0u64);
    for page in 0.. {
        let key = format!("{dir}{}", index_name(page));
        let Ok(body) = store.get_bytes(&key).await else {
            break;
        };
        let page: IndexPage = serde_json::from_slice(&body)
            .map_err(|e| harness(format!("the index page {key}"))(e.to_string()))?;
        for s in page
            .segments
            .iter()
            .filter(|s| s.first_ms >= from_ms && s.first_ms < to_ms)
        {
            bytes = bytes.saturating_add(s.bytes);
            count = count.saturating_add(1);
        }
    }
    Ok((bytes, count))
}

/// A probe: acknowledged at `ack_ms`, its bytes before `offset`.
struct Probe {
    ack_ms: i64,
    offset: u64,
}

/// Every 200 ms for `length`: a `SET`, its acknowledgement's time, then
/// the primary's offset (an upper bound of the write's end).
async fn probe(
    addr: &str,
    length: Duration,
) -> Result<JoinHandle<Result<Vec<Probe>, BenchError>>, BenchError> {
    let mut con = connect(addr, None, Duration::from_secs(5)).await?;
    let addr = addr.to_owned();
    Ok(tokio::spawn(async move {
        let mut probes = Vec::new();
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < length {
            n += 1;
            let () = redis::cmd("SET")
                .arg(format!("probe:{n}"))
                .arg(n)
                .query_async(&mut con)
                .await
                .map_err(|source| BenchError::Valkey {
                    addr: addr.clone(),
                    command: "SET",
                    source,
                })?;
            let ack_ms = wall_ms();
            let offset = repl_offset(&addr).await?;
            probes.push(Probe { ack_ms, offset });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(probes)
    }))
}

/// Lists `chain`'s directory every 100 ms until stopped (and once more):
/// each segment's start offset and when it was first listed.
async fn poll_segments(
    store: BackupStore,
    chain: String,
    mut stopped: watch::Receiver<bool>,
) -> Result<BTreeMap<u64, i64>, BenchError> {
    let dir = chain_dir(&archive(), &chain);
    let mut seen = BTreeMap::new();
    loop {
        let last = *stopped.borrow();
        let listed = store
            .list(&dir)
            .await
            .map_err(|e| harness(format!("listing {dir}"))(e.to_string()))?;
        let now = wall_ms();
        for o in listed {
            let start = o
                .key
                .rsplit('/')
                .next()
                .and_then(|n| n.strip_prefix("seg-"))
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(start) = start {
                seen.entry(start).or_insert(now);
            }
        }
        if last {
            return Ok(seen);
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), stopped.changed()).await;
    }
}

/// Each probe's acknowledgement to the listing of the segment holding its
/// last byte (the one with the greatest start below its offset).
fn probe_latencies(probes: &[Probe], seen: &BTreeMap<u64, i64>) -> Vec<i64> {
    probes
        .iter()
        .filter_map(|p| {
            let (_, at) = seen.range(..p.offset).next_back()?;
            Some(at.saturating_sub(p.ack_ms))
        })
        .collect()
}

/// The nearest-rank `percent`th of sorted `v`.
pub fn rank(v: &[i64], percent: usize) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let i = (v.len() * percent).div_ceil(100).saturating_sub(1);
    v.get(i.min(v.len() - 1)).copied()
}

/// The report: one markdown table and the ratios.
pub fn render(args: &ArchiveArgs, r: &ArchiveResult) -> String {
    let ms = |v: Option<i64>| v.map_or_else(|| "–".to_owned(), |x| format!("{x} ms"));
    let pcts = |v: &[i64]| {
        format!(
            "{} / {} / {} (n={})",
            ms(rank(v, 50)),
            ms(rank(v, 99)),
            ms(v.last().copied()),
            v.len()
        )
    };
    let off = r.arms.get(&Arm::Off).map_or(0.0, ArmTotals::ops_per_sec);
    let mut out = format!(
        "{} connections × pipelines of {} SETs of {} bytes over {} keys; {} rounds of \
         {} s windows (off, replica, primary, rotating)\n\n\
| arm | SET/s (per window) | / off | lag p50 / p99 / max | segment MiB/s | stream MiB/s | PUTs/min |\n\
|---|---|---|---|---|---|---|\n",
        args.connections, args.pipeline, args.value_bytes, args.keys, args.rounds, args.seconds
    );
    for (arm, t) in &r.arms {
        let rates: Vec<String> = t.rates.iter().map(|x| format!("{x:.0}")).collect();
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20) / t.secs.max(1e-9);
        let follows = *arm != Arm::Off;
        out.push_str(&format!(
            "| {} | {:.0} ({}) | {:.3} | {} | {} | {:.2} | {} |\n",
            arm.name(),
            t.ops_per_sec(),
            rates.join(", "),
            t.ops_per_sec() / off.max(1e-9),
            if follows { pcts(&t.lags) } else { "–".into() },
            if follows {
                format!("{:.2}", mib(t.segment_bytes))
            } else {
                "–".into()
            },
            mib(t.stream_bytes),
            if follows {
                format!("{:.0}", t.puts as f64 * 60.0 / t.secs.max(1e-9))
            } else {
                "–".into()
            },
        ));
    }
    out.push_str(&format!(
        "\nwrite acknowledged → its segment listed in the bucket ({} probes, archive on \
         the replica, under the same writes): p50 / p99 / max = {}\n\
idle ({:.0} s, archive on the replica): {:.1} PUTs/min, lag p50 / p99 / max = {}\n",
        r.probe_ms.len(),
        pcts(&r.probe_ms),
        r.idle_secs,
        r.idle_puts as f64 * 60.0 / r.idle_secs.max(1e-9),
        pcts(&r.idle_lags),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_is_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(rank(&v, 50), Some(50));
        assert_eq!(rank(&v, 99), Some(99));
        assert_eq!(rank(&[7], 99), Some(7));
        assert_eq!(rank(&[], 50), None);
    }

    #[test]
    fn a_probe_lands_in_the_segment_below_its_offset() {
        let seen = BTreeMap::from([(0, 1_000), (500, 2_000), (900, 3_000)]);
        let probes = [
            Probe {
                ack_ms: 900,
                offset: 400,
            },
            Probe {
                ack_ms: 1_500,
                offset: 900,
            },
        ];
        assert_eq!(probe_latencies(&probes, &seen), vec![100, 500]);
    }
}
