//! The Cluster pieces of the failover bench against real cluster-enabled
//! `valkey-server` processes on 127.0.0.1 (a 3 × 1 cluster formed by the
//! bench's reference harness): the slot function agrees with `CLUSTER
//! KEYSLOT`, the client writes each key on its slot's primary and follows
//! `MOVED` after a slot changes owner, the probe writes to every shard and
//! has its writes acknowledged, the read-back finds a deleted key, and the
//! per-shard probe keeps each shard's writes to its own writer (one shard
//! held up does not hold up the others).
//!
//! No assertion is about how long anything took.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook_bench::cluster_client::{ClusterClient, missing_in_cluster, slot_map};
use logbook_bench::cluster_reference::ReferenceCluster;
use logbook_bench::cluster_writer::{ClusterProbeConfig, shard_log, start_cluster_probe};
use logbook_bench::shard_probe::{ShardProbe, lost_writes, others_gap, recovery};
use logbook_bench::slots::{in_ranges, key_slot};
use redis::Value;

async fn raw(addr: &str) -> redis::aio::MultiplexedConnection {
    // A command that writes nodes.conf (SETSLOT) may take more than the
    // client's default response time on a loaded machine.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(10)))
        .set_response_timeout(Some(std::time::Duration::from_secs(10)));
    redis::Client::open(format!("redis://{addr}"))
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

async fn cmd<T: redis::FromRedisValue>(addr: &str, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(&mut raw(addr).await)
        .await
        .unwrap_or_else(|e| panic!("{args:?} on {addr}: {e}"))
}

fn client(seeds: Vec<String>) -> ClusterClient {
    ClusterClient::new(seeds, None, Duration::from_secs(1), Duration::from_secs(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_client_routes_by_slot_and_follows_moved() {
    let cluster = ReferenceCluster::start(3, 1, 5000).await.unwrap();
    let seeds = cluster.seeds();
    let primaries: Vec<String> = (0..3).map(|s| cluster.primary(s).unwrap()).collect();

    // The slot function is the server's.
    let mut keys: Vec<String> = (0..200).map(|i| format!("p:{i}")).collect();
    keys.extend(
        [
            "foo", "{user}:1", "a{b}c", "{}x", "x{}{y}", "{{z}}", "é{ü}", "",
        ]
        .iter()
        .map(|k| (*k).to_owned()),
    );
    for key in &keys {
        let server: i64 = cmd(&seeds[0], &["CLUSTER", "KEYSLOT", key]).await;
        assert_eq!(i64::from(key_slot(key.as_bytes())), server, "{key:?}");
    }

    // Each write lands on the primary that serves its slot.
    let map = slot_map(&seeds, None).await.unwrap();
    assert_eq!(map.primaries().len(), 3);
    let mut c = client(seeds.clone());
    let mut served: Vec<Arc<str>> = Vec::new();
    let mut used_slots = Vec::new();
    for i in 0..300 {
        let key = format!("route:{i}");
        used_slots.push(key_slot(key.as_bytes()));
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(i);
        let (node, reply) = c.route(key.as_bytes(), &set).await;
        assert_eq!(reply, Ok(Value::Okay), "{key}");
        let node = node.unwrap();
        let owner = map.owner(key_slot(key.as_bytes())).unwrap();
        assert_eq!(
            &node, owner,
            "{key} written on {node}, slot owned by {owner}"
        );
        // Read on that node itself, no routing: it holds the key.
        let got: Option<String> = cmd(&node, &["GET", &key]).await;
        assert_eq!(got, Some(i.to_string()));
        if !served.contains(&node) {
            served.push(node);
        }
    }
    assert_eq!(served.len(), 3, "300 keys over 3 shards: {served:?}");

    // A slot given to another primary behind the client's back: the old
    // owner answers MOVED and the client follows it.
    // An empty slot: a slot holding keys cannot be given away.
    let key = (0..)
        .map(|n| format!("moving-key-{n}"))
        .find(|k| !used_slots.contains(&key_slot(k.as_bytes())))
        .unwrap();
    let key = key.as_str();
    let slot = key_slot(key.as_bytes()).to_string();
    let from = map.owner(key_slot(key.as_bytes())).unwrap().to_string();
    let to = primaries.iter().find(|p| **p != from).unwrap().clone();
    let to_id: String = cmd(&to, &["CLUSTER", "MYID"]).await;
    let from_id: String = cmd(&from, &["CLUSTER", "MYID"]).await;
    // Importing first, as a migration does: taking the slot then bumps
    // the target's config epoch, so that gossip the old owner sent before
    // it was told cannot win the slot back (each would then send the
    // client to the other).
    let _: Value = cmd(&to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]).await;
    let mut setslot_order = vec![to.clone(), from.clone()];
    // Replicas refuse SETSLOT; they learn the owner from their primaries.
    setslot_order.extend(
        primaries
            .iter()
            .filter(|s| **s != to && **s != from)
            .cloned(),
    );
    for node in &setslot_order {
        let _: Value = cmd(node, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]).await;
    }
    assert_eq!(
        c.map()
            .owner(key_slot(key.as_bytes()))
            .map(|a| a.to_string()),
        Some(from.clone()),
        "the client still believes the old owner"
    );
    let mut set = redis::cmd("SET");
    set.arg(key).arg("1");
    let (node, reply) = c.route(key.as_bytes(), &set).await;
    assert_eq!(reply, Ok(Value::Okay));
    assert_eq!(node.as_deref(), Some(to.as_str()), "followed MOVED to {to}");
    assert_eq!(
        c.map()
            .owner(key_slot(key.as_bytes()))
            .map(|a| a.to_string()),
        Some(to.clone())
    );

    // The probe writes to every shard, WAIT-acknowledged by the replicas,
    // and each shard's writes went to that shard's primary.
    let probe = start_cluster_probe(ClusterProbeConfig::new(seeds.clone(), "probe"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while probe.acked_count() < 90 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            probe.snapshot().attempts.last()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = probe.stop().await;
    let map = slot_map(&seeds, None).await.unwrap();
    for primary in &primaries {
        let ranges = map.ranges_of(primary);
        let shard = shard_log(&log, &ranges, true);
        assert!(shard.acked_keys().len() >= 10, "{primary}: {shard:?}");
        assert!(
            shard
                .attempts
                .iter()
                .all(|a| a.server.as_deref() == Some(primary.as_str())),
            "{primary}"
        );
    }
    let acked = log.acked_keys();
    assert_eq!(
        missing_in_cluster(&seeds, None, "probe", &acked)
            .await
            .unwrap(),
        Vec::<u64>::new()
    );

    // The read-back sees a key deleted on its own primary.
    let gone = acked[acked.len() / 2];
    let gone_key = format!("probe:{gone}");
    let owner = map
        .owner(key_slot(gone_key.as_bytes()))
        .unwrap()
        .to_string();
    let deleted: i64 = cmd(&owner, &["DEL", &gone_key]).await;
    assert_eq!(deleted, 1);
    assert_eq!(
        missing_in_cluster(&seeds, None, "probe", &acked)
            .await
            .unwrap(),
        vec![gone]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_probe_gives_each_shard_a_writer_of_its_own() {
    let cluster = ReferenceCluster::start(3, 1, 5000).await.unwrap();
    let seeds = cluster.seeds();
    let map = slot_map(&seeds, None).await.unwrap();
    let probe = ShardProbe::start(ClusterProbeConfig::new(seeds.clone(), "sp"))
        .await
        .unwrap();
    assert_eq!(probe.writers().len(), 3);
    for writer in probe.writers() {
        assert_eq!(writer.ranges, map.ranges_of(&writer.primary));
        probe.warm_up(&writer.primary, 10).await.unwrap();
    }

    // One shard's primary holds every write for 1.5 s: its writer stalls,
    // the others go on.
    let paused = cluster.primary(0).unwrap();
    let _: Value = cmd(&paused, &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let to = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let logs = probe.stop().await;

    for shard in &logs {
        // Every key of the writer is in its shard, written on its primary.
        assert!(shard.log.prefix.starts_with('{'), "{}", shard.log.prefix);
        assert!(
            shard.log.attempts.iter().all(|a| {
                let key = format!("{}:{}", shard.log.prefix, a.key);
                in_ranges(&shard.ranges, key_slot(key.as_bytes()))
                    && a.server.as_deref() == Some(shard.primary.as_str())
            }),
            "{}",
            shard.primary
        );
        let inside = shard
            .log
            .attempts
            .iter()
            .filter(|a| a.acked && a.started > from && a.ended < to)
            .count();
        if shard.primary == paused {
            assert_eq!(inside, 0, "a write of the paused shard was acknowledged");
            // Served again once the pause ended, on the same primary.
            let r = recovery(&shard.log, from, &paused);
            assert!(r.accepted.is_some() && r.acknowledged.is_some(), "{r:?}");
        } else {
            assert!(
                inside > 0,
                "{} stalled with the paused shard",
                shard.primary
            );
        }
    }
    assert!(others_gap(&logs, &paused, from).is_some());
    let (missing, acked) = lost_writes(&logs, &seeds, None).await.unwrap();
    assert_eq!(missing, 0);
    assert!(acked >= 30, "{acked}");
}
