//! `logbook-bench backup`: the throughput of the operator's backup and
//! restore paths beside copying the same RDB bytes to and from the bucket
//! directly, measured in one run on one server and one S3 endpoint (moto's,
//! started here), so that only the ratios matter on a shared machine.
//!
//! - **backup**: `backup_node`, what a backup attempt runs per shard: the
//!   RDB streamed from a live `valkey-server` over the replication protocol
//!   (diskless, nothing on the server's disk), checked (RDB magic, CRC-64)
//!   and hashed (SHA-256) as it goes, uploaded by multipart.
//! - **copy up** (reference): the same server's RDB, saved to its disk
//!   beforehand (`SAVE`, not timed), read from the file and uploaded with
//!   the same client, unchecked.
//! - **restore**: `fetch_to_file`, what a restore's init container runs:
//!   the object downloaded to a file, checked (size, SHA-256, RDB) as it
//!   goes.
//! - **copy down** (reference): the same object downloaded to a file,
//!   unchecked, each piece written with `tokio::fs` as it comes.
//! - **copy down, threaded write** (reference): the same, written by
//!   `fetch_to_file`'s own writer (a thread beside the download, writing
//!   back as it goes): the restore without its checks, so that restore /
//!   this is what the checks cost.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbook::backup::piece_workers::spawn_writer;
use logbook::backup::{BackupStore, backup_node, fetch_to_file};
use logbook::valkey::Timeouts;
use tokio::io::AsyncWriteExt;

use crate::BenchError;
use crate::conn::connect;
use crate::process::{Mode, ValkeyProcess};
use crate::s3::{S3Server, credentials};
use crate::stats::nearest_rank;

const BUCKET: &str = "bench";

/// What the bench loads and how often it measures.
#[derive(Debug, Clone, Copy)]
pub struct BackupBenchConfig {
    /// Keys loaded.
    pub keys: u64,
    /// Bytes of each value (pseudo-random, so the RDB does not compress).
    pub value_bytes: usize,
    /// Runs of each path (the median is reported).
    pub runs: usize,
    /// A planted regression: every restore made this many times as slow,
    /// inside its timed span, by waiting out the rest after it ended (1
    /// but when checking that `logbook-bench check` catches a slower
    /// restore). A factor, not a fixed delay: on a loaded machine a fixed
    /// delay can vanish in the restore's own spread.
    pub plant_restore_factor: u32,
}

/// The medians of one run, in seconds, and the RDB's size.
#[derive(Debug, Clone, Copy)]
pub struct BackupBenchResult {
    /// Bytes of the RDB.
    pub bytes: u64,
    /// `backup_node`.
    pub backup: Duration,
    /// The file uploaded directly.
    pub copy_up: Duration,
    /// `fetch_to_file`.
    pub restore: Duration,
    /// The object downloaded directly.
    pub copy_down: Duration,
    /// The object downloaded directly, written from a thread.
    pub copy_down_threaded: Duration,
}

fn harness(what: impl Into<String>) -> impl FnOnce(String) -> BenchError {
    let what = what.into();
    move |detail| BenchError::Protocol {
        addr: "bench".to_owned(),
        command: "backup bench",
        detail: format!("{what}: {detail}"),
    }
}

/// Runs the bench, printing a line per run to `progress`.
///
/// # Errors
/// [`BenchError`] when the server, moto or a transfer fails.
pub async fn run_backup_bench(
    config: BackupBenchConfig,
    progress: &mut dyn Write,
) -> Result<BackupBenchResult, BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = ValkeyProcess::start("backup-source", &Mode::Server(Vec::new())).await?;
    load(&server.addr(), config).await?;
    let s3 = S3Server::start_at([127, 0, 0, 1], None, &[])?;
    s3.create_bucket(BUCKET)?;
    let store = BackupStore::new(&s3.target(BUCKET), &credentials())
        .map_err(|e| harness("the S3 client")(e.to_string()))?;
    // The reference's bytes: the server's own RDB file.
    let mut con = connect(&server.addr(), None, Duration::from_secs(5)).await?;
    let () = redis::cmd("SAVE")
        .query_async(&mut con)
        .await
        .map_err(|source| BenchError::Valkey {
            addr: server.addr(),
            command: "SAVE",
            source,
        })?;
    let dump = server.dir().join("dump.rdb");
    let addr: std::net::SocketAddr = server.addr().parse().map_err(|_| BenchError::BadAddress {
        addr: server.addr(),
    })?;
    let scratch = tempfile::tempdir().map_err(|source| BenchError::Io {
        what: "a scratch directory".to_owned(),
        source,
    })?;
    let (mut backups, mut ups, mut restores, mut downs) = (vec![], vec![], vec![], vec![]);
    let mut threaded = vec![];
    let mut bytes = 0;
    for run in 1..=config.runs.max(1) {
        let key = format!("run-{run}/shard-0.rdb");
        let started = Instant::now();
        let node = backup_node(&store, &key, addr, None, None, Timeouts::default())
            .await
            .map_err(|e| harness("backup_node")(e.to_string()))?;
        backups.push(started.elapsed());
        bytes = node.bytes;

        let started = Instant::now();
        copy_up(&store, &format!("run-{run}/copy.rdb"), &dump).await?;
        ups.push(started.elapsed());

        let dest = scratch.path().join(format!("restore-{run}.rdb"));
        let started = Instant::now();
        fetch_to_file(&store, &key, node.bytes, &node.sha256, &dest)
            .await
            .map_err(|e| harness("fetch_to_file")(e.to_string()))?;
        let took = started.elapsed();
        tokio::time::sleep(took * config.plant_restore_factor.saturating_sub(1)).await;
        restores.push(started.elapsed());

        let copy = scratch.path().join(format!("copy-{run}.rdb"));
        let started = Instant::now();
        copy_down(&store, &format!("run-{run}/copy.rdb"), &copy).await?;
        downs.push(started.elapsed());

        let copy_threaded = scratch.path().join(format!("copy-threaded-{run}.rdb"));
        let started = Instant::now();
        copy_down_threaded(&store, &format!("run-{run}/copy.rdb"), &copy_threaded).await?;
        threaded.push(started.elapsed());
        let _ = std::fs::remove_file(&dest);
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(&copy_threaded);
        let last = |v: &[Duration]| v.last().copied().unwrap_or_default();
        let _ = writeln!(
            progress,
            "run {run}: {} MiB; backup {:?}, copy up {:?}, restore {:?}, copy down {:?}, \
             copy down threaded {:?}",
            node.bytes / (1 << 20),
            last(&backups),
            last(&ups),
            last(&restores),
            last(&downs),
            last(&threaded)
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        nearest_rank(v, 50).unwrap_or_default()
    };
    Ok(BackupBenchResult {
        bytes,
        backup: median(&mut backups),
        copy_up: median(&mut ups),
        restore: median(&mut restores),
        copy_down: median(&mut downs),
        copy_down_threaded: median(&mut threaded),
    })
}

/// `config.keys` keys of pseudo-random values.
async fn load(addr: &str, config: BackupBenchConfig) -> Result<(), BenchError> {
    let mut con = connect(addr, None, Duration::from_secs(5)).await?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut n = 0;
    while n < config.keys {
        let end = (n + 200).min(config.keys);
        let mut pipe = redis::pipe();
        for k in n..end {
            let mut value = Vec::with_capacity(config.value_bytes);
            while value.len() < config.value_bytes {
                // xorshift64: incompressible enough for LZF.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                value.extend_from_slice(&state.to_le_bytes());
            }
            value.truncate(config.value_bytes);
            pipe.cmd("SET").arg(format!("key:{k}")).arg(value).ignore();
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

/// The file at `path` uploaded to `key`, 8 MiB at a time, unchecked.
async fn copy_up(store: &BackupStore, key: &str, path: &std::path::Path) -> Result<(), BenchError> {
    let failed = |e: String| harness("copy up")(e);
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut upload = store.upload(key).await.map_err(|e| failed(e.to_string()))?;
    loop {
        let mut buf = vec![0u8; 8 << 20];
        let n = tokio::io::AsyncReadExt::read(&mut file, &mut buf)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        upload
            .write(Bytes::from(buf))
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    upload.finish().await.map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// `key` downloaded to `path`, unchecked.
async fn copy_down(
    store: &BackupStore,
    key: &str,
    path: &std::path::Path,
) -> Result<(), BenchError> {
    let failed = |e: String| harness("copy down")(e);
    let mut download = store
        .download(key)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| failed(e.to_string()))?;
    while let Some(chunk) = download
        .next_chunk()
        .await
        .map_err(|e| failed(e.to_string()))?
    {
        file.write_all(&chunk)
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    file.sync_all().await.map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// `key` downloaded to `path`, unchecked, by `fetch_to_file`'s own writer
/// (a blocking thread fed through a bounded queue, writing back as it goes,
/// syncing at the end), without the check beside it.
async fn copy_down_threaded(
    store: &BackupStore,
    key: &str,
    path: &std::path::Path,
) -> Result<(), BenchError> {
    let failed = |e: String| harness("copy down threaded")(e);
    let mut download = store
        .download(key)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|e| failed(e.to_string()))?;
    let writer = spawn_writer(file);
    let mut whole = true;
    while let Some(chunk) = download
        .next_chunk()
        .await
        .map_err(|e| failed(e.to_string()))?
    {
        if !writer.send(chunk).await {
            // The writer stopped: its error is below.
            whole = false;
            break;
        }
    }
    writer
        .finish(whole)
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(format!("{} {}: {}", e.action, path.display(), e.source)))
}

/// The report: one markdown table and the ratios.
pub fn render(config: BackupBenchConfig, r: &BackupBenchResult) -> String {
    let mib = r.bytes as f64 / f64::from(1u32 << 20);
    let rate = |d: Duration| mib / d.as_secs_f64().max(1e-9);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    format!(
        "{} keys of {} bytes: an RDB of {mib:.1} MiB; medians of {} run(s)\n\n\
| path | time | MiB/s |\n|---|---|---|\n\
| backup (`backup_node`: stream, check, hash, upload) | {:.2} s | {:.1} |\n\
| copy up (the RDB file uploaded, unchecked) | {:.2} s | {:.1} |\n\
| restore (`fetch_to_file`: download, check, write) | {:.2} s | {:.1} |\n\
| copy down (the object downloaded, unchecked) | {:.2} s | {:.1} |\n\
| copy down, threaded write (as the restore writes, unchecked) | {:.2} s | {:.1} |\n\n\
backup / copy up = {:.2}; restore / copy down = {:.2}; \
restore / copy down, threaded write = {:.2}\n",
        config.keys,
        config.value_bytes,
        config.runs.max(1),
        r.backup.as_secs_f64(),
        rate(r.backup),
        r.copy_up.as_secs_f64(),
        rate(r.copy_up),
        r.restore.as_secs_f64(),
        rate(r.restore),
        r.copy_down.as_secs_f64(),
        rate(r.copy_down),
        r.copy_down_threaded.as_secs_f64(),
        rate(r.copy_down_threaded),
        ratio(r.backup, r.copy_up),
        ratio(r.restore, r.copy_down),
        ratio(r.restore, r.copy_down_threaded),
    )
}
