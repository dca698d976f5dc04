//! Point-in-time restore end to end on localkube with real `valkey-server`
//! pods and a real S3 server (moto's): the continuous archive follows a
//! Replication cluster across a failover under a writer that records
//! each write's times, and a new cluster restored to a moment after the
//! failover holds every write acknowledged before it and none sent after
//! it. A deleted or corrupted segment makes the restore refuse, naming
//! it, with nothing created.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use logbook_journal::Event;

use crate::operator_backup::{BUCKET, SECRET, cluster_yaml, store_for, with_s3};
use crate::operator_common::*;

/// The most writes at risk the archive may have at a moment, as time
/// (docs/backups.md): a follower reconnecting after its source failed
/// over reads the writes made meanwhile late, and a write is as old as
/// when the archive received it.
const MAX_LAG_MS: i64 = 5_000;

/// The archive on, into the test's bucket.
const CONTINUOUS: &str = "    continuous:\n      enabled: true\n";

/// A wall-clock moment and the `Instant` it was read beside, so that the
/// writer's `Instant`s compare with the archive's wall-clock times.
struct Clock {
    instant: Instant,
    wall: SystemTime,
}

impl Clock {
    fn now() -> Self {
        Clock {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The wall-clock time of `at`, in ms since the epoch.
    fn wall_ms(&self, at: Instant) -> i64 {
        let base = self
            .wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        match at.checked_duration_since(self.instant) {
            Some(d) => base + d.as_millis() as i64,
            None => base - self.instant.duration_since(at).as_millis() as i64,
        }
    }
}

/// The writes acknowledged at or before `at_ms`, and those sent after it.
fn split_at(log: &logbook_bench::WriteLog, clock: &Clock, at_ms: i64) -> (Vec<u64>, Vec<u64>) {
    let acked_before: Vec<u64> = log
        .attempts
        .iter()
        .filter(|a| a.acked && clock.wall_ms(a.ended) <= at_ms)
        .map(|a| a.key)
        .collect();
    let sent_after: Vec<u64> = log
        .attempts
        .iter()
        .filter(|a| clock.wall_ms(a.started) > at_ms)
        .map(|a| a.key)
        .collect();
    assert!(
        acked_before.len() > 100,
        "{} writes acknowledged before the moment",
        acked_before.len()
    );
    assert!(!sent_after.is_empty(), "no write sent after the moment");
    (acked_before, sent_after)
}

/// The archive's lag as a run saw it: how long before the moment the
/// latest acknowledged write a restore lacks was acknowledged (0: none
/// lacked).
fn lag_seen(log: &logbook_bench::WriteLog, clock: &Clock, at_ms: i64, missing: &[u64]) -> i64 {
    log.attempts
        .iter()
        .filter(|a| missing.contains(&a.key))
        .map(|a| at_ms - clock.wall_ms(a.ended))
        .max()
        .unwrap_or(0)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The archive's and restores' events of `cluster`'s journal.
async fn archive_events(env: &Env, cluster: &str) -> Vec<Event> {
    crate::operator_backup::events_of_kinds(env, cluster, &["Archive", "Restore"]).await
}

async fn live_chains(env: &Env, name: &str, chains: i32) {
    env.wait_status(
        name,
        Duration::from_secs(90),
        &format!("{chains} live archive chain(s)"),
        |v| {
            v.status
                .as_ref()
                .and_then(|s| s.backup.as_ref())
                .and_then(|b| b.archive.as_ref())
                .is_some_and(|a| a.live_chains == chains)
        },
    )
    .await;
}

fn restored_yaml(name: &str, source: &str, at_ms: i64) -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {name}
spec:
  topology: Replication
  replicas: 2
  failover:
    probeIntervalMilliseconds: 200
  storage:
    size: 1Gi
    persistence: Aof
  restoreFrom:
    cluster: {source}
    pointInTime: "{}"
"#,
        rfc3339(at_ms)
    )
}

/// Waits for `name`'s restore to reach `phase`.
async fn restore_phase(env: &Env, name: &str, phase: &str, timeout: Duration) -> String {
    let vkc = env
        .wait_status(name, timeout, &format!("restore {phase}"), |v| {
            v.status
                .as_ref()
                .and_then(|s| s.restore.as_ref())
                .is_some_and(|r| r.phase == phase)
        })
        .await;
    vkc.status
        .and_then(|s| s.restore)
        .and_then(|r| r.message)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_cluster_is_restored_to_a_moment_after_a_failover() {
    let (s3, env) = with_s3("pitr-replication").await;
    env.apply_yaml(&cluster_yaml("demo", CONTINUOUS)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    live_chains(&env, "demo", 1).await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let clock = Clock::now();
    let probe = write_probe(&service, &password, "w");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A failover inside the archived range.
    let old = primary(&vkc);
    env.delete_pod(&old).await;
    env.wait_status("demo", Duration::from_secs(60), "a new primary", |v| {
        v.status
            .as_ref()
            .and_then(|s| s.primary.as_deref())
            .is_some_and(|p| p != old)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_ms = now_ms();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = probe.stop().await;

    env.apply_yaml(&restored_yaml("demo-then", "demo", at_ms))
        .await;
    let message = restore_phase(&env, "demo-then", "Completed", Duration::from_secs(150)).await;
    eprintln!("restore: {message}");
    let restored = env
        .wait_ready("demo-then", 2, Duration::from_secs(60))
        .await;
    let restored_password = env.password("demo-then").await;
    let addr = env.pod_addr(&primary(&restored)).await;
    let pw = logbook::valkey::Password::new(restored_password);

    // Acknowledged before the moment: there. Sent after it: not.
    let (acked_before, sent_after) = split_at(&log, &clock, at_ms);
    let missing = logbook_bench::missing_keys(&addr, Some(&pw), &log.prefix, &acked_before)
        .await
        .unwrap();
    // The archive's lag, as this run saw it: how long before the moment
    // the latest acknowledged write it lacks was acknowledged.
    let lag_ms = lag_seen(&log, &clock, at_ms, &missing);
    eprintln!(
        "restored to {}: {} of {} writes acknowledged before it missing (lag bound seen: {lag_ms} ms)",
        rfc3339(at_ms),
        missing.len(),
        acked_before.len()
    );
    assert!(
        lag_ms <= MAX_LAG_MS,
        "writes acknowledged more than {MAX_LAG_MS} ms before the moment are missing: {missing:?}"
    );
    let absent = logbook_bench::missing_keys(&addr, Some(&pw), &log.prefix, &sent_after)
        .await
        .unwrap();
    assert_eq!(
        absent.len(),
        sent_after.len(),
        "writes sent after the moment are in the restored cluster"
    );

    // The journal: one chain, followed across the failover, never broken.
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let source = archive_events(&env, "demo").await;
    let kinds: Vec<&str> = source.iter().map(Event::kind).collect();
    eprintln!("demo: {kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "ArchiveChainStarted")
            .count(),
        1,
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"ArchiveChainEnded"), "{kinds:?}");
    let restored_kinds: Vec<&str> = archive_events(&env, "demo-then")
        .await
        .iter()
        .map(Event::kind)
        .collect::<Vec<_>>()
        .into_iter()
        .filter(|k| k.starts_with("Restore"))
        .collect();
    assert_eq!(
        restored_kinds,
        ["RestoreToTimeVerified", "RestoreCompleted"]
    );
    env.verify_journal().await;
    drop(s3);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_or_corrupt_segment_refuses_the_restore_naming_it() {
    let (s3, env) = with_s3("pitr-refused").await;
    env.apply_yaml(&cluster_yaml("demo", CONTINUOUS)).await;
    env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    live_chains(&env, "demo", 1).await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let probe = write_probe(&service, &password, "w");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let at_ms = now_ms();
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(probe.stop().await);

    // Three segments at least: delete the second.
    let store = store_for(&s3);
    let archive = "logbook/default/demo/_archive/";
    let segments: Vec<String> = store
        .list(archive)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".seg"))
        .collect();
    assert!(segments.len() >= 3, "{segments:?}");
    let deleted = segments[1].clone();
    let body = store.get_bytes(&deleted).await.unwrap();
    store.delete(&deleted).await.unwrap();
    env.apply_yaml(&restored_yaml("gap", "demo", at_ms)).await;
    let message = restore_phase(&env, "gap", "Refused", Duration::from_secs(60)).await;
    let name = deleted.rsplit('/').next().unwrap();
    assert!(
        message.contains(name) && message.contains("missing"),
        "the refusal does not name {name} as missing: {message}"
    );
    // Nothing was created.
    assert!(env.pods("gap").await.is_empty());

    // Put it back damaged: refused for its checksum.
    let mut bad = body.to_vec();
    let last = bad.len() - 3;
    bad[last] ^= 0x20;
    store.put_bytes(&deleted, Bytes::from(bad)).await.unwrap();
    env.apply_yaml(&restored_yaml("damaged", "demo", at_ms))
        .await;
    let message = restore_phase(&env, "damaged", "Refused", Duration::from_secs(60)).await;
    assert!(
        message.contains(name) && message.contains("SHA-256"),
        "the refusal does not name {name}'s checksum: {message}"
    );
    assert!(env.pods("damaged").await.is_empty());
    let _ = (BUCKET, SECRET);
    env.finish().await;
}

/// A restored Cluster of `shards` primaries, no replicas, from `source`'s
/// archive at `at_ms`.
fn restored_cluster_yaml(name: &str, shards: u32, source: &str, at_ms: i64) -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {name}
spec:
  topology: Cluster
  shards: {shards}
  replicasPerShard: 0
  clusterNodeTimeoutMilliseconds: 5000
  storage:
    size: 1Gi
    persistence: Aof
  restoreFrom:
    cluster: {source}
    pointInTime: "{}"
"#,
        rfc3339(at_ms)
    )
}

fn slot_total(slots: &[logbook_crds::v1alpha1::SlotRange]) -> i64 {
    slots
        .iter()
        .map(|r| i64::from(r.end) - i64::from(r.start) + 1)
        .sum()
}

/// Every shard of `v` holds its even share again (5461 or 5462 slots).
fn balanced(v: &logbook_crds::ValkeyCluster) -> bool {
    v.status.as_ref().is_some_and(|s| {
        s.shards.len() == 3
            && s.shards
                .iter()
                .all(|sh| (5461..=5462).contains(&slot_total(&sh.slots)))
    })
}

async fn redis_conn(addr: &str, password: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://:{password}@{addr}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_shard_cluster_is_restored_to_a_moment_after_a_reshard_and_a_failover() {
    let (s3, env) = with_s3("pitr-cluster").await;
    let yaml = format!(
        "{}  backup:\n    destination:\n      bucket: {BUCKET}\n      credentialsSecret: {SECRET}\n{CONTINUOUS}",
        crate::operator_common::cluster_yaml("shop")
    );
    env.apply_yaml(&yaml).await;
    let vkc = env
        .wait_status("shop", Duration::from_secs(120), "3 shards ready", |v| {
            crate::operator_common::cluster_ready(v)
        })
        .await;
    live_chains(&env, "shop", 3).await;
    let password = env.password("shop").await;
    let clock = Clock::now();
    let writer = crate::operator_common::start_writer(&env, &password).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A reshard by hand: 200 of shard 0's slots to shard 1 (atomic slot
    // migration); the operator then moves them back to the even split.
    let shards = vkc.status.as_ref().unwrap().shards.clone();
    let from = env.pod_addr(shards[0].primary.as_deref().unwrap()).await;
    let to = env.pod_addr(shards[1].primary.as_deref().unwrap()).await;
    let to_id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut redis_conn(&to, &password).await)
        .await
        .unwrap();
    let start = shards[0].slots[0].start;
    let () = redis::cmd("CLUSTER")
        .arg("MIGRATESLOTS")
        .arg("SLOTSRANGE")
        .arg(start)
        .arg(start + 199)
        .arg("NODE")
        .arg(&to_id)
        .query_async(&mut redis_conn(&from, &password).await)
        .await
        .unwrap();
    // The job as the source lists it: done, the target owning the slots
    // (the operator may move them back at once, before a status shows it).
    let client = logbook::valkey::ValkeyClient::new(
        logbook::valkey::Timeouts::default(),
        Some(logbook::valkey::Password::new(password.clone())),
    );
    let source: std::net::SocketAddr = from.parse().unwrap();
    let moved = Instant::now();
    loop {
        let jobs = client
            .cluster_getslotmigrations(source)
            .await
            .unwrap()
            .unwrap_or_default();
        if jobs.iter().any(|j| {
            j.phase == logbook_journal::MigrationPhase::Succeeded
                && j.slots.iter().any(|r| i32::from(r.start) == start)
        }) {
            break;
        }
        assert!(
            moved.elapsed() < Duration::from_secs(60),
            "the hand-made migration did not succeed: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.wait_status(
        "shop",
        Duration::from_secs(120),
        "the even split again",
        balanced,
    )
    .await;

    // A failover: shard 2's primary is deleted; its replica takes over.
    let lost = shards[2].primary.clone().unwrap();
    env.delete_pod(&lost).await;
    env.wait_status(
        "shop",
        Duration::from_secs(90),
        "shard 2 served by another",
        |v| {
            crate::operator_common::cluster_ready(v)
                && v.status.as_ref().is_some_and(|s| {
                    s.shards
                        .iter()
                        .all(|sh| sh.primary.as_deref() != Some(lost.as_str()))
                })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_ms = now_ms();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = writer.stop().await;
    let archive = env
        .vkc("shop")
        .await
        .status
        .and_then(|s| s.backup)
        .and_then(|b| b.archive);
    eprintln!("shop's archive at the moment: {archive:?}");

    env.apply_yaml(&restored_cluster_yaml("three", 3, "shop", at_ms))
        .await;
    env.apply_yaml(&restored_cluster_yaml("five", 5, "shop", at_ms))
        .await;
    let (acked_before, sent_after) = split_at(&log, &clock, at_ms);
    for (name, n) in [("three", 3_usize), ("five", 5)] {
        // A refusal ends the wait at once, with what the source's archive
        // said then (which chain ended, and why).
        let done = env
            .wait_status(
                name,
                Duration::from_secs(240),
                "restore Completed or Refused",
                |v| {
                    v.status
                        .as_ref()
                        .and_then(|s| s.restore.as_ref())
                        .is_some_and(|r| r.phase == "Completed" || r.phase == "Refused")
                },
            )
            .await;
        let restore = done.status.and_then(|s| s.restore).unwrap();
        if restore.phase == "Refused" {
            let archive = env.vkc("shop").await.status.and_then(|s| s.backup);
            panic!(
                "{name}: refused: {:?}; shop's archive: {archive:?}",
                restore.message
            );
        }
        let message = restore_phase(&env, name, "Completed", Duration::from_secs(10)).await;
        eprintln!("{name}: {message}");
        env.wait_status(name, Duration::from_secs(180), "every shard ready", |v| {
            crate::operator_backup::shards_ready(v, n, n)
        })
        .await;
        let pw = logbook::valkey::Password::new(env.password(name).await);
        let seeds = crate::operator_backup::seeds_of(&env, name, n).await;
        let missing = logbook_bench::cluster_client::missing_in_cluster(
            &seeds,
            Some(&pw),
            "w",
            &acked_before,
        )
        .await
        .unwrap();
        let lag_ms = lag_seen(&log, &clock, at_ms, &missing);
        eprintln!(
            "{name} ({n} shards) restored to {}: {} of {} acknowledged before it missing (lag bound seen: {lag_ms} ms)",
            rfc3339(at_ms),
            missing.len(),
            acked_before.len()
        );
        assert!(lag_ms <= MAX_LAG_MS, "{name}: {missing:?}");
        let absent =
            logbook_bench::cluster_client::missing_in_cluster(&seeds, Some(&pw), "w", &sent_after)
                .await
                .unwrap();
        assert_eq!(
            absent.len(),
            sent_after.len(),
            "{name}: writes sent after the moment are in the restored cluster"
        );
    }
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let kinds: Vec<&str> = archive_events(&env, "shop")
        .await
        .iter()
        .map(Event::kind)
        .collect::<Vec<_>>();
    eprintln!("shop: {kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "ArchiveChainStarted")
            .count(),
        3,
        "{kinds:?}"
    );
    env.verify_journal().await;
    drop(s3);
    env.finish().await;
}
