//! Resharding end to end on a server without atomic slot migration:
//! a Cluster of `image: redis:7.0` (Debian's `redis-server` under
//! localkube) goes from 3 shards to 4 and back under a cluster-aware
//! writer (each write acknowledged by a replica, `WAIT 1`) with 20k keys
//! loaded. The operator moves the slots the classic way (`SETSLOT
//! IMPORTING`/`MIGRATING`, `MIGRATE` batches, `SETSLOT NODE`), about 45
//! times slower than atomic slot migration, hence the smaller load. After
//! each step: every slot covered and balanced, `redis-cli --cluster check`
//! clean; at the end every key and acknowledged write there, the journal
//! showing classic moves only, verifying and auditing clean.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use logbook_journal::Event;
use operator_common::*;

/// Keys loaded before the reshard.
const KEYS: u64 = 20_000;

/// What `classic.rs` says of a move it made.
const CLASSIC: &str = "by the classic SETSLOT/MIGRATE pipeline";

/// Every pod runs Redis 7.0, not Valkey: the image decides the server
/// (`start.sh` runs `redis-server` where there is no `valkey-server`).
async fn assert_redis_7_0(env: &Env, pods: usize, password: &str) {
    for addr in seeds(env, pods).await {
        let info = redis_cli(&addr, password, &["info", "server"]);
        assert!(
            info.contains("redis_version:7.0.") && !info.contains("valkey_version"),
            "{addr} is not Redis 7.0:\n{info}"
        );
        let asm = redis_cli(&addr, password, &["cluster", "getslotmigrations"]);
        assert!(asm.contains("unknown subcommand"), "{addr}: {asm}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_7_cluster_goes_from_3_to_4_shards_and_back_by_the_classic_pipeline() {
    let started = Instant::now();
    let env = Env::start("reshard-classic").await;
    let mut yaml = cluster_yaml("shop");
    yaml.push_str("  image: redis:7.0\n");
    env.apply_yaml(&yaml).await;
    env.wait_status("shop", Duration::from_secs(90), "formed", |v| {
        balanced(v, 3)
    })
    .await;
    let password = env.password("shop").await;
    assert_redis_7_0(&env, 6, &password).await;
    load(&seeds(&env, 6).await, &password, KEYS).await;
    let probe = start_writer(&env, &password).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("formed and loaded after {:?}", started.elapsed());

    reshard_to(&env, &password, 4, Duration::from_secs(180)).await;
    assert_redis_7_0(&env, 8, &password).await;
    eprintln!("4 shards after {:?}", started.elapsed());

    reshard_to(&env, &password, 3, Duration::from_secs(180)).await;
    eprintln!("3 shards again after {:?}", started.elapsed());
    stop_and_check_writes(&env, probe, 6, &password, KEYS).await;

    let stream = env.stream("shop").await;
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    assert_moves_decided(&events);
    let classic: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::IntentSucceeded { detail, .. } if detail.contains(CLASSIC) => {
                Some(detail.as_str())
            }
            _ => None,
        })
        .collect();
    eprintln!("classic moves: {classic:#?}");

    assert!(
        classic.len() >= 6,
        "every move made the classic way: {classic:#?}"
    );
    // No atomic slot migration job was ever seen.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.body, Event::SlotMigrationObserved { .. })),
        "an atomic slot migration job on Redis 7.0"
    );
    env.verify_journal().await;
    env.assert_audit_clean().await;
    env.finish().await;
    eprintln!("done after {:?}", started.elapsed());
}
