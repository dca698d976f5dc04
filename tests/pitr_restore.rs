//! Point-in-time restore against a real `valkey-server` and a real S3
//! endpoint (moto): a chain built by hand (a server's base RDB, segments
//! of SETs received at chosen times, index pages), planned to a time,
//! fetched by the init container's own code into a data directory, and
//! loaded by a server with `appendonly yes` holding exactly the keys
//! written by then. And refused, naming what is wrong: a segment deleted,
//! a segment damaged, a time after the archive, an index changed between
//! the plan and the fetch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use logbook::backup::BackupStore;
use logbook::backup::pitr::{PitrPlan, plan_point_in_time};
use logbook::backup::segment::{
    ChainEnd, ChainStart, IndexPage, Record, SegmentEntry, encode_segment, index_name,
    segment_name, sha256_hex,
};
use logbook::resources::restore::{PLAN_KEY, RestoreFetchPlan};
use logbook::restore_fetch_cli::{RestoreFetchArgs, run};
use logbook::valkey::{Timeouts, open_rdb_stream};

use crate::s3_server::{S3Server, credentials};
use crate::valkey_server::Server;

const BUCKET: &str = "backups";
const ARCHIVE: &str = "p/ns/c/_archive/";
const CHAIN: &str = "0000000001000-abcdefgh";
const BASE_AT: i64 = 1_000_000;

/// `*N` RESP array of `args`.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// The segments' commands, by segment, with when each was received.
fn segments_plan() -> Vec<Vec<(i64, Vec<u8>)>> {
    let t = |ms: i64| BASE_AT + ms;
    vec![
        vec![
            (t(100), resp(&["SELECT", "0"])),
            (t(100), resp(&["SET", "a1", "one"])),
            (t(200), resp(&["SET", "a2", "two"])),
        ],
        vec![
            (t(300), resp(&["SET", "b1", "three"])),
            (t(350), resp(&["PING"])),
            (t(400), resp(&["SET", "b2", "four"])),
        ],
        vec![
            (t(500), resp(&["SET", "c1", "five"])),
            (t(600), resp(&["SET", "c2", "six"])),
        ],
    ]
}

struct Archive {
    _s3: S3Server,
    s3_target: logbook::backup::S3Target,
    store: BackupStore,
    chain_dir: String,
    entries: Vec<SegmentEntry>,
    _source: Server,
}

/// A chain on a fresh moto bucket: the base of a server holding
/// `base:0..2`, then the three segments of [`segments_plan`], indexed on
/// two pages (segments 0-1, then 2).
async fn archive() -> Archive {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let target = s3.target(BUCKET);
    let store = BackupStore::new(&target, &credentials()).unwrap();
    let source = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let client = redis::Client::open(format!("redis://{}", source.addr)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for i in 0..3 {
        redis::cmd("SET")
            .arg(format!("base:{i}"))
            .arg("in the base")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    let (chain_dir, entries) = add_chain(&store, source.addr, CHAIN, "Replication", &[]).await;
    Archive {
        _s3: s3,
        s3_target: target,
        store,
        chain_dir,
        entries,
        _source: source,
    }
}

/// Adds chain `chain` to the bucket: `source`'s base, then the segments
/// of [`segments_plan`] (listing `slots`), indexed on two pages
/// (segments 0-1, then 2). Its directory and index entries.
async fn add_chain(
    store: &BackupStore,
    source: std::net::SocketAddr,
    chain: &str,
    topology: &str,
    slots: &[[u16; 2]],
) -> (String, Vec<SegmentEntry>) {
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        command: Duration::from_secs(5),
    };
    let mut stream = open_rdb_stream(source, None, None, timeouts).await.unwrap();
    let resync = stream.snapshot().resync.clone().unwrap();
    let mut base = Vec::new();
    while let Some(chunk) = stream.next_chunk().await.unwrap() {
        base.extend_from_slice(&chunk);
    }
    let chain_dir = format!("{ARCHIVE}{chain}/");
    let start = ChainStart {
        format: 1,
        chain: chain.to_owned(),
        namespace: "ns".to_owned(),
        cluster: "c".to_owned(),
        uid: "uid".to_owned(),
        topology: topology.to_owned(),
        source: "c-0".to_owned(),
        primary: "c-0".to_owned(),
        replid: resync.replid.clone(),
        offset: resync.offset,
        base_at_ms: BASE_AT,
        base_bytes: base.len() as u64,
        base_sha256: sha256_hex(&base),
        rdb_version: 80,
        slots: slots.to_vec(),
    };
    put(store, &format!("{chain_dir}base.rdb"), base).await;
    put(
        store,
        &format!("{chain_dir}chain.json"),
        serde_json::to_vec(&start).unwrap(),
    )
    .await;
    let mut offset = resync.offset;
    let mut entries = Vec::new();
    for commands in segments_plan() {
        let seg_start = offset;
        let records: Vec<Record> = commands
            .into_iter()
            .map(|(received_ms, bytes)| {
                let r = Record {
                    offset,
                    received_ms,
                    bytes,
                };
                offset = r.end();
                r
            })
            .collect();
        let bytes = encode_segment(&records);
        let entry = SegmentEntry {
            name: segment_name(seg_start),
            start: seg_start,
            end: offset,
            first_ms: records.first().unwrap().received_ms,
            last_ms: records.last().unwrap().received_ms,
            records: records.len() as u64,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            replid: resync.replid.clone(),
            source: "c-0".to_owned(),
            slots: slots.to_vec(),
        };
        put(store, &format!("{chain_dir}{}", entry.name), bytes).await;
        entries.push(entry);
    }
    write_index(store, chain, &chain_dir, &entries).await;
    (chain_dir, entries)
}

/// Writes `entries` as index pages 0 (the first two) and 1 (the rest).
async fn write_index(store: &BackupStore, chain: &str, chain_dir: &str, entries: &[SegmentEntry]) {
    let (first, rest) = entries.split_at(2);
    for (page, segments) in [(0, first), (1, rest)] {
        let page = IndexPage {
            format: 1,
            chain: chain.to_owned(),
            page,
            segments: segments.to_vec(),
        };
        put(
            store,
            &format!("{chain_dir}{}", index_name(page.page)),
            serde_json::to_vec(&page).unwrap(),
        )
        .await;
    }
}

async fn put(store: &BackupStore, key: &str, bytes: Vec<u8>) {
    store.put_bytes(key, Bytes::from(bytes)).await.unwrap();
}

impl Archive {
    async fn write_index(&self, entries: &[SegmentEntry]) {
        write_index(&self.store, CHAIN, &self.chain_dir, entries).await;
    }

    fn segment_key(&self, i: usize) -> String {
        format!("{}{}", self.chain_dir, self.entries[i].name)
    }

    /// Runs the init container's code for pod `c-0` on `plan` into a new
    /// data directory; its output, or its error.
    fn fetch(&self, plan: &PitrPlan, aof: bool, data: &Path) -> Result<String, String> {
        let shard = &plan.shards[0];
        let fetch_plan = RestoreFetchPlan {
            bucket: BUCKET.to_owned(),
            region: self.s3_target.region.clone(),
            endpoint: self.s3_target.endpoint.clone(),
            path_style: self.s3_target.path_style,
            aof,
            shards: BTreeMap::from([(
                0,
                (
                    shard.base_key.clone(),
                    shard.base_bytes,
                    shard.base_sha256.clone(),
                ),
            )]),
            point_in_time: BTreeMap::from([(0, shard.fetch())]),
        };
        let plan_dir = tempfile::tempdir().unwrap();
        std::fs::write(plan_dir.path().join(PLAN_KEY), fetch_plan.render()).unwrap();
        let creds = credentials();
        std::fs::write(
            plan_dir.path().join("AWS_ACCESS_KEY_ID"),
            &creds.access_key_id,
        )
        .unwrap();
        std::fs::write(
            plan_dir.path().join("AWS_SECRET_ACCESS_KEY"),
            &creds.secret_access_key,
        )
        .unwrap();
        let args = RestoreFetchArgs {
            plan_dir: plan_dir.path().to_path_buf(),
            data_dir: data.to_path_buf(),
            pod: Some("c-0".to_owned()),
        };
        // `run` makes its own runtime: off this one's threads.
        std::thread::spawn(move || {
            let mut out = Vec::new();
            run(args, &mut out)
                .map(|()| String::from_utf8_lossy(&out).into_owned())
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap()
    }
}

/// Every key of the server on `data` (started with `appendonly yes`)
/// with its value.
async fn keys_of(data: &Path) -> BTreeMap<String, String> {
    let server = Server::start(&["--dir", data.to_str().unwrap(), "--appendonly", "yes"]);
    let client = redis::Client::open(format!("redis://{}", server.addr)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for k in keys {
        let v: String = redis::cmd("GET")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.insert(k, v);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_to_a_time_loads_the_base_and_exactly_the_writes_received_by_then() {
    let a = archive().await;
    // T = base + 300 ms: a1, a2, b1 taken; PING and b2 (segment 1)
    // left out; segment 2 not needed.
    let until = BASE_AT + 300;
    let plan = plan_point_in_time(&a.store, ARCHIVE, until).await.unwrap();
    assert_eq!(plan.shards.len(), 1);
    let shard = &plan.shards[0];
    assert_eq!(shard.chain, CHAIN);
    assert_eq!(shard.segments, 2);
    assert_eq!(shard.end, a.entries[1].end);
    let data = tempfile::tempdir().unwrap();
    // What a pod killed mid-fetch left behind is rebuilt from nothing.
    let staging = data.path().join(".restore-staging/appendonlydir");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("appendonly.aof.1.incr.aof"), "half a command").unwrap();
    let out = a.fetch(&plan, true, data.path()).unwrap();
    assert!(out.contains("4 command(s) taken"), "{out}");
    assert!(out.contains("2 record(s) received later left out"), "{out}");
    let aof = data.path().join("appendonlydir");
    assert_eq!(
        std::fs::read_to_string(aof.join("appendonly.aof.manifest")).unwrap(),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert!(!data.path().join(".restore-staging").exists());
    let keys = keys_of(data.path()).await;
    let expected: BTreeMap<String, String> = [
        ("base:0", "in the base"),
        ("base:1", "in the base"),
        ("base:2", "in the base"),
        ("a1", "one"),
        ("a2", "two"),
        ("b1", "three"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(keys, expected);

    // A second run finds the data and keeps it.
    let again = a.fetch(&plan, true, data.path()).unwrap();
    assert!(again.contains("is kept"), "{again}");

    // T between the base and the first command: the base alone.
    let plan = plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 50)
        .await
        .unwrap();
    assert_eq!(plan.shards[0].segments, 0);
    let data = tempfile::tempdir().unwrap();
    a.fetch(&plan, true, data.path()).unwrap();
    assert_eq!(keys_of(data.path()).await.len(), 3);

    // Without an append-only file there is nowhere to replay into.
    let data = tempfile::tempdir().unwrap();
    let err = a.fetch(&plan, false, data.path()).unwrap_err();
    assert!(err.contains("appendonly yes"), "{err}");
    assert!(!data.path().join("appendonlydir").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_damaged_segment_and_a_time_past_the_archive_are_refused() {
    let a = archive().await;
    // After the archive: the covered range is named.
    let err = plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 601)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no chain covers"), "{err}");
    assert!(
        err.contains(&format!("({BASE_AT} ms) to"))
            && err.contains(&format!("({} ms)", BASE_AT + 600)),
        "{err}"
    );
    // The last segment is damaged: a time before it is still restorable,
    // one in it is refused naming the checksum.
    let mut bytes = a.store.get_bytes(&a.segment_key(2)).await.unwrap().to_vec();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x20;
    put(&a.store, &a.segment_key(2), bytes).await;
    plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 450)
        .await
        .unwrap();
    let err = plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 550)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&a.entries[2].name), "{err}");
    assert!(err.contains("damaged: SHA-256"), "{err}");
    // The middle segment is deleted: refused naming it, its offsets and
    // times.
    a.store.delete(&a.segment_key(1)).await.unwrap();
    let err = plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 300)
        .await
        .unwrap_err()
        .to_string();
    let e = &a.entries[1];
    assert!(
        err.contains(&format!(
            "chain {CHAIN}: segment {} (offsets {}..{}",
            e.name, e.start, e.end
        )),
        "{err}"
    );
    assert!(err.contains("is missing from the bucket"), "{err}");
    // Before it: fine.
    plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 200)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_changed_after_planning_is_refused_by_the_fetch() {
    let a = archive().await;
    let plan = plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 300)
        .await
        .unwrap();
    // The entries are rewritten (a segment's SHA-256 changed).
    let mut entries = a.entries.clone();
    entries[0].sha256 = "00".repeat(32);
    a.write_index(&entries).await;
    let data = tempfile::tempdir().unwrap();
    let err = a.fetch(&plan, true, data.path()).unwrap_err();
    assert!(
        err.contains("changed after the restore was planned"),
        "{err}"
    );
    assert!(!data.path().join("appendonlydir").exists());
    // A gap in the index is refused by the plan, naming the segment.
    let mut entries = a.entries.clone();
    entries[1].start += 1;
    a.write_index(&entries).await;
    let err = plan_point_in_time(&a.store, ARCHIVE, BASE_AT + 300)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("gap before segment"), "{err}");
    assert!(err.contains(&a.entries[1].name), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_restores_one_chain_per_shard_holding_every_slot_once() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let store = BackupStore::new(&s3.target(BUCKET), &credentials()).unwrap();
    let source = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let a = "0000000001000-aaaaaaaa";
    let b = "0000000001000-bbbbbbbb";
    add_chain(&store, source.addr, b, "Cluster", &[[8192, 16000]]).await;
    add_chain(&store, source.addr, a, "Cluster", &[[0, 8191]]).await;
    // Slots 16001-16383 are held by no chain: refused, naming them.
    let err = plan_point_in_time(&store, ARCHIVE, BASE_AT + 300)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no chain holds slots 16001-16383"), "{err}");
    assert!(err.contains(&format!("{a} holds 0-8191")), "{err}");
    // That shard's chain ended (its position lost) and restarted later
    // with every slot it has now: the fresher chain is taken for it.
    let ended = ChainEnd {
        chain: b.to_owned(),
        end: 0,
        at_ms: BASE_AT + 700,
        reason: "position lost".to_owned(),
    };
    put(
        &store,
        &format!("{ARCHIVE}{b}/end.json"),
        serde_json::to_vec(&ended).unwrap(),
    )
    .await;
    let b2 = "0000000001100-cccccccc";
    let (dir, _) = add_chain(&store, source.addr, b2, "Cluster", &[[8192, 16383]]).await;
    let mut start: ChainStart =
        serde_json::from_slice(&store.get_bytes(&format!("{dir}chain.json")).await.unwrap())
            .unwrap();
    start.base_at_ms = BASE_AT + 100;
    put(
        &store,
        &format!("{dir}chain.json"),
        serde_json::to_vec(&start).unwrap(),
    )
    .await;
    let plan = plan_point_in_time(&store, ARCHIVE, BASE_AT + 300)
        .await
        .unwrap();
    assert_eq!(plan.topology, "Cluster");
    let chosen: Vec<(&str, Vec<[u16; 2]>)> = plan
        .shards
        .iter()
        .map(|s| (s.chain.as_str(), s.slots.clone()))
        .collect();
    assert_eq!(
        chosen,
        vec![(a, vec![[0, 8191]]), (b2, vec![[8192, 16383]])]
    );
}
