//! The continuous archive against real `valkey-server` processes and a
//! real S3 endpoint (moto): a follower on a replica archives every write
//! of its primary in order, continues the same chain across a failover
//! (`+CONTINUE` with the new history id), ends the chain and starts a new
//! one when its position left the backlog, and continues a chain another
//! writer left (`resume`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use logbook::backup::BackupStore;
use logbook::backup::archiver::{
    ChainMeta, ChainWriter, FollowEnd, FollowNote, FollowReport, FollowTarget, SourceInfo, follow,
};
use logbook::backup::segment::{
    BASE_NAME, CHAIN_NAME, ChainEnd, ChainStart, END_NAME, IndexPage, Record, archive_dir,
    check_segment, command_args, command_name,
};
use logbook::valkey::{ARCHIVER_ADDRESS, Timeouts};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::s3_server;
use crate::valkey_server::{Server, eventually};
use s3_server::{S3Server, credentials};

const BUCKET: &str = "archive";

fn archive() -> String {
    archive_dir("backups/ns/demo/")
}

fn meta() -> ChainMeta {
    ChainMeta {
        namespace: "ns".to_owned(),
        cluster: "demo".to_owned(),
        uid: "uid-1".to_owned(),
        topology: "Replication".to_owned(),
    }
}

fn bucket() -> (S3Server, BackupStore) {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let store = BackupStore::new(&s3.target(BUCKET), &credentials()).unwrap();
    (s3, store)
}

/// The options Logbook runs servers with that the follower relies on.
fn server_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--repl-ping-replica-period",
        "1",
        "--repl-diskless-sync-delay",
        "0",
    ];
    args.extend_from_slice(extra);
    args
}

/// A primary and its replica, the link up.
async fn pair(extra: &[&str]) -> (Server, Server) {
    let p = Server::start(&server_args(extra));
    let port = p.port();
    let r = Server::start(&server_args(
        &[&["--replicaof", "127.0.0.1", port.as_str()], extra].concat(),
    ));
    eventually("the replica's link", || async {
        info(r.addr).await.contains("master_link_status:up")
    })
    .await;
    (p, r)
}

async fn connect(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn info(addr: SocketAddr) -> String {
    let mut conn = connect(addr).await;
    redis::cmd("INFO")
        .arg("replication")
        .query_async::<String>(&mut conn)
        .await
        .unwrap()
}

async fn command(addr: SocketAddr, args: &[&str]) {
    let mut conn = connect(addr).await;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<()>(&mut conn).await.unwrap();
}

/// Writes `SET k:<i> v:<i>` for `range` through `addr`.
async fn write(addr: SocketAddr, range: std::ops::Range<usize>) {
    let mut conn = connect(addr).await;
    for i in range {
        redis::cmd("SET")
            .arg(format!("k:{i}"))
            .arg(format!("v:{i}"))
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
}

fn target(addr: SocketAddr, pod: &str, idle: Duration) -> FollowTarget<'static> {
    FollowTarget {
        addr,
        auth: None,
        tls: None,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            command: Duration::from_secs(5),
        },
        idle,
        source: SourceInfo {
            pod: pod.to_owned(),
            primary: "p".to_owned(),
            slots: Vec::new(),
        },
    }
}

/// What a stopped follower hands back: the writer, every report, every
/// note.
type Stopped = (Option<ChainWriter>, Vec<FollowReport>, Vec<FollowNote>);

/// A follower running in the background: reconnects to `addr` after a
/// lost source, until stopped; hands back the writer and every report.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Stopped>,
}

fn run(store: &BackupStore, addr: SocketAddr, writer: Option<ChainWriter>) -> Running {
    run_idle(store, addr, writer, Duration::from_secs(5))
}

/// As [`run`], with the stream allowed to stay silent for `idle`.
fn run_idle(
    store: &BackupStore,
    addr: SocketAddr,
    writer: Option<ChainWriter>,
    idle: Duration,
) -> Running {
    let (stop, stopped) = watch::channel(false);
    let store = store.clone();
    let task = tokio::spawn(async move {
        let mut writer = writer;
        let mut reports = Vec::new();
        let target = target(addr, "r", idle);
        let (notes_tx, mut notes_rx) = mpsc::unbounded_channel();
        loop {
            let stop = async {
                let _ = stopped.clone().wait_for(|s| *s).await;
            };
            let report = follow(
                &store,
                &archive(),
                &meta(),
                &target,
                &mut writer,
                stop,
                &notes_tx,
            )
            .await;
            let again = matches!(report.end, FollowEnd::SourceLost(_));
            reports.push(report);
            if !again || *stopped.borrow() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut notes = Vec::new();
        while let Ok(note) = notes_rx.try_recv() {
            notes.push(note);
        }
        (writer, reports, notes)
    });
    Running { stop, task }
}

impl Running {
    async fn stop(self) -> Stopped {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}

/// A chain as a reader sees it: its start, every record of every
/// segment (checked against the index, contiguous from the base), and
/// its end if it has one.
struct ChainRead {
    start: ChainStart,
    records: Vec<Record>,
    end: Option<ChainEnd>,
    has_base: bool,
}

async fn read_chain(store: &BackupStore, dir: &str) -> ChainRead {
    let start: ChainStart = serde_json::from_slice(
        &store
            .get_bytes(&format!("{dir}{CHAIN_NAME}"))
            .await
            .unwrap(),
    )
    .unwrap();
    let objects = store.list(dir).await.unwrap();
    let mut pages: Vec<&str> = objects
        .iter()
        .map(|o| o.key.as_str())
        .filter(|k| k.contains("/index-"))
        .collect();
    pages.sort_unstable();
    let mut records: Vec<Record> = Vec::new();
    let mut at = start.offset;
    for key in pages {
        let page: IndexPage = serde_json::from_slice(&store.get_bytes(key).await.unwrap()).unwrap();
        for entry in page.segments {
            assert_eq!(entry.start, at, "segment {} does not follow", entry.name);
            let body = store
                .get_bytes(&format!("{dir}{}", entry.name))
                .await
                .unwrap();
            let got = check_segment(&entry, &body).unwrap();
            at = entry.end;
            records.extend(got);
        }
    }
    let end = match store.get_bytes(&format!("{dir}{END_NAME}")).await {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(_) => None,
    };
    let has_base = objects.iter().any(|o| o.key.ends_with(BASE_NAME));
    ChainRead {
        start,
        records,
        end,
        has_base,
    }
}

/// The chains' directories, oldest first.
async fn chains(store: &BackupStore) -> Vec<String> {
    let mut dirs: Vec<String> = store
        .list(&archive())
        .await
        .unwrap()
        .iter()
        .filter(|o| o.key.ends_with(CHAIN_NAME))
        .map(|o| o.key.trim_end_matches(CHAIN_NAME).to_owned())
        .collect();
    dirs.sort();
    dirs
}

/// The `SET` keys among `records`, in order (the stream's `PING`,
/// `REPLCONF` and `SELECT` left out).
fn set_keys(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| command_name(&r.bytes).as_deref() == Some("set"))
        .map(|r| String::from_utf8(command_args(&r.bytes).unwrap()[1].to_vec()).unwrap())
        .collect()
}

fn keys(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("k:{i}")).collect()
}

/// Waits until the archive holds `n` chains. A chain's `chain.json` is
/// written once its base RDB is in: writes from then on are in its
/// stream, writes before it may be in the base instead (a test that
/// writes while the follower still waits for `+FULLRESYNC` cannot know
/// which keys its segments will hold).
async fn chains_started(store: &BackupStore, n: usize) {
    eventually("the chain's base in the archive", || async {
        chains(store).await.len() == n
    })
    .await;
}

/// Waits until the archive's only chain (or the last) holds `want`.
async fn archived(store: &BackupStore, want: &[String]) -> ChainRead {
    eventually("the writes in the archive", || async {
        let Some(dir) = chains(store).await.pop() else {
            return false;
        };
        set_keys(&read_chain(store, &dir).await.records).len() >= want.len()
    })
    .await;
    let dir = chains(store).await.pop().unwrap();
    let read = read_chain(store, &dir).await;
    assert_eq!(set_keys(&read.records), want);
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writes_of_a_primary_are_archived_from_its_replica_in_order() {
    let (_s3, store) = bucket();
    let (p, r) = pair(&[]).await;
    let running = run(&store, r.addr, None);
    eventually("the follower on the replica", || async {
        info(r.addr)
            .await
            .contains(&format!("ip={ARCHIVER_ADDRESS}"))
    })
    .await;
    chains_started(&store, 1).await;
    write(p.addr, 0..200).await;
    // Acknowledged as a replica (its ACKs reach the source).
    eventually("the follower online and acknowledging", || async {
        let text = info(r.addr).await;
        text.lines().any(|l| {
            l.contains(&format!("ip={ARCHIVER_ADDRESS},port=0,state=online"))
                && !l.contains("offset=0,")
        })
    })
    .await;
    println!("INFO replication on the source:\n{}", info(r.addr).await);
    let read = archived(&store, &keys(0..200)).await;
    let (writer, reports, notes) = running.stop().await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].started.len(), 1);
    assert!(matches!(&notes[0], FollowNote::Started(s) if **s == read.start));
    assert!(notes.iter().any(|n| matches!(n, FollowNote::Lag(Some(_)))));
    assert!(read.has_base);
    assert!(read.end.is_none());
    assert_eq!(read.records[0].offset, read.start.offset);
    // Everything the writer took is uploaded at the stop, and it is the
    // stream as the replica has it.
    let final_read = read_chain(&store, &chains(&store).await[0]).await;
    let end = final_read.records.last().unwrap().end();
    assert_eq!(writer.unwrap().position().offset, end);
    let r_offset: u64 = info(r.addr)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        end <= r_offset,
        "archived to {end}, the replica is at {r_offset}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_continues_the_same_chain() {
    let (_s3, store) = bucket();
    let (p, r) = pair(&[]).await;
    let running = run(&store, r.addr, None);
    chains_started(&store, 1).await;
    write(p.addr, 0..50).await;
    archived(&store, &keys(0..50)).await;
    command(r.addr, &["REPLICAOF", "NO", "ONE"]).await;
    command(p.addr, &["REPLICAOF", "127.0.0.1", &r.port()]).await;
    write(r.addr, 50..100).await;
    let read = archived(&store, &keys(0..100)).await;
    let (_writer, reports, notes) = running.stop().await;
    println!("reports across the failover: {reports:?}");
    assert_eq!(
        chains(&store).await.len(),
        1,
        "one chain across the failover"
    );
    assert!(read.end.is_none());
    let replids: std::collections::BTreeSet<String> = {
        let dir = chains(&store).await[0].clone();
        let page: IndexPage = serde_json::from_slice(
            &store
                .get_bytes(&format!("{dir}index-000000.json"))
                .await
                .unwrap(),
        )
        .unwrap();
        page.segments.into_iter().map(|s| s.replid).collect()
    };
    // The promotion drops the replica's own replicas so they learn the
    // new history id: the follower comes back with `+CONTINUE <new id>`.
    assert!(
        matches!(reports[0].end, FollowEnd::SourceLost(_)),
        "{reports:?}"
    );
    assert!(reports.iter().any(|r| r.continued.is_some()), "{reports:?}");
    assert!(
        notes
            .iter()
            .any(|n| matches!(n, FollowNote::Continued { .. })),
        "{notes:?}"
    );
    assert_eq!(replids.len(), 2, "{replids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_position_ends_the_chain_and_starts_another() {
    let (_s3, store) = bucket();
    let (p, r) = pair(&["--repl-backlog-size", "16384"]).await;
    let running = run(&store, r.addr, None);
    chains_started(&store, 1).await;
    write(p.addr, 0..20).await;
    archived(&store, &keys(0..20)).await;
    let (writer, _, _) = running.stop().await;
    // Far more than the backlog holds while nobody follows.
    write(p.addr, 20..2000).await;
    let running = run(&store, r.addr, writer);
    chains_started(&store, 2).await;
    write(p.addr, 2000..2010).await;
    archived(&store, &keys(2000..2010)).await;
    let (_writer, reports, notes) = running.stop().await;
    assert_eq!(reports[0].ended.len(), 1, "{reports:?}");
    assert_eq!(reports[0].started.len(), 1, "{reports:?}");
    let dirs = chains(&store).await;
    let old = read_chain(&store, &dirs[0]).await;
    let end = old.end.expect("the old chain's end.json");
    assert!(notes.contains(&FollowNote::Ended(end.clone())), "{notes:?}");
    assert!(end.reason.contains("position lost"), "{}", end.reason);
    assert_eq!(set_keys(&old.records), keys(0..20));
    assert_eq!(end.end, old.records.last().unwrap().end());
    let new = read_chain(&store, &dirs[1]).await;
    assert!(new.has_base);
    assert!(new.end.is_none());
    assert_eq!(new.records[0].offset, new.start.offset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_writer_resumes_the_chain_another_left() {
    let (_s3, store) = bucket();
    let (p, r) = pair(&[]).await;
    let running = run(&store, r.addr, None);
    chains_started(&store, 1).await;
    write(p.addr, 0..30).await;
    archived(&store, &keys(0..30)).await;
    let (writer, _, _) = running.stop().await;
    let left = writer.unwrap().position();
    write(p.addr, 30..60).await;
    let dir = chains(&store).await[0].clone();
    let resumed = ChainWriter::resume(&store, &dir).await.unwrap();
    assert_eq!(resumed.position(), left);
    let running = run(&store, r.addr, Some(resumed));
    write(p.addr, 60..90).await;
    let read = archived(&store, &keys(0..90)).await;
    let (_writer, reports, notes) = running.stop().await;
    assert!(reports[0].continued.is_some(), "{reports:?}");
    assert!(reports[0].started.is_empty());
    assert!(matches!(&notes[0], FollowNote::Continued { offset, .. } if *offset == left.offset));
    assert_eq!(chains(&store).await.len(), 1);
    assert!(read.end.is_none());
}

/// A source that pings its replicas a minute apart: a write still reaches
/// the bucket about `SEGMENT_HOLD_MS` after it arrived, not with the next
/// record (which would be the next ping, after this test's end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_quiet_source_is_archived_without_waiting_for_a_ping() {
    let (_s3, store) = bucket();
    let (p, r) = pair(&["--repl-ping-replica-period", "60"]).await;
    let running = run_idle(&store, r.addr, None, Duration::from_secs(90));
    chains_started(&store, 1).await;
    let written = Instant::now();
    write(p.addr, 0..1).await;
    archived(&store, &keys(0..1)).await;
    let took = written.elapsed();
    let (_writer, reports, _) = running.stop().await;
    assert_eq!(reports.len(), 1, "one connection throughout: {reports:?}");
    assert!(
        took < Duration::from_secs(10),
        "the write reached the bucket {took:?} after it was made"
    );
}
