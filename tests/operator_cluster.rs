//! Valkey Cluster end to end on localkube with real `valkey-server` pods:
//! a 3 × 1 cluster forms (meet, even split, replicas, labels) with every
//! step journaled; keys are written through a cluster-aware client
//! (`redis-cli -c`, following MOVED); a primary's pod is deleted and its
//! replica takes the shard over at once; `valkey-cli --cluster check` is
//! clean, every slot covered, every key present, the journal verifies, and
//! the converged cluster appends nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod operator_common;

use std::time::{Duration, Instant};

use logbook_crds::ValkeyCluster;
use logbook_journal::Event;
use operator_common::*;

/// The cluster every test here creates.
fn yaml() -> String {
    cluster_yaml("shop")
}

fn primaries(vkc: &ValkeyCluster) -> Vec<String> {
    let mut p: Vec<String> = vkc
        .status
        .as_ref()
        .unwrap()
        .shards
        .iter()
        .filter_map(|s| s.primary.clone())
        .collect();
    p.sort();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_forms_fails_over_a_deleted_primary_and_keeps_every_key() {
    let env = Env::start("cluster").await;
    env.apply_yaml(&yaml()).await;
    let started = Instant::now();
    let vkc = env
        .wait_status(
            "shop",
            Duration::from_secs(60),
            "3 shards of 1 primary and 1 replica, Ready",
            cluster_ready,
        )
        .await;
    eprintln!("formed and Ready after {:?}", started.elapsed());
    let password = env.password("shop").await;
    let seed = env.pod_addr(&primaries(&vkc)[0]).await;
    assert_check_clean(&seed, &password);

    // Keys through a cluster-aware client: each lands on its slot's owner.
    for i in 0..200 {
        let key = format!("key:{i}");
        let reply = redis_cli(&seed, &password, &["-c", "set", &key, &i.to_string()]);
        assert!(reply.contains("OK"), "{key}: {reply}");
    }
    // Acknowledged by the replicas before the fault (WAIT on each primary).
    for p in primaries(&vkc) {
        let addr = env.pod_addr(&p).await;
        let acked = redis_cli(&addr, &password, &["wait", "1", "2000"]);
        assert_eq!(acked.trim(), "1", "{p}: {acked}");
    }

    // A primary's pod deleted: its replica takes the shard over at once.
    let before = primaries(&vkc);
    let victim = before[1].clone();
    let deleted = Instant::now();
    env.delete_pod(&victim).await;
    let moved = env
        .wait_status(
            "shop",
            Duration::from_secs(30),
            "another primary for the deleted pod's shard",
            |v| {
                let p = primaries(v);
                p.len() == 3 && !p.contains(&victim)
            },
        )
        .await;
    eprintln!(
        "{victim}'s shard moved after {:?}: {:?}",
        deleted.elapsed(),
        primaries(&moved)
    );
    let vkc = env
        .wait_status(
            "shop",
            Duration::from_secs(60),
            "Ready again with the pod back as a replica",
            cluster_ready,
        )
        .await;
    let seed = env.pod_addr(&primaries(&vkc)[0]).await;
    assert_check_clean(&seed, &password);
    for i in 0..200 {
        let key = format!("key:{i}");
        let got = redis_cli(&seed, &password, &["-c", "get", &key]);
        assert_eq!(got.trim(), i.to_string(), "{key} after the failover");
    }
    let status = vkc.status.as_ref().unwrap();
    let last = status.last_failover.clone().expect("status.lastFailover");
    assert_eq!(last.from.as_deref(), Some(victim.as_str()));

    // Converged: nothing more is appended while nothing changes (every
    // append would move the published journal seq).
    let seq = journal_seq(&vkc);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        journal_seq(&env.vkc("shop").await),
        seq,
        "an idle cluster appended events"
    );

    // Everything in the journal: the forming steps and the failover with
    // its candidates, and the chain verifies.
    let stream = env.stream("shop").await;
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let intents: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => {
                Some(intents.iter().map(|p| p.intent.name()).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect();
    for want in [
        "MeetNode",
        "AssignSlots",
        "ReplicateShard",
        "SetShardRoleLabels",
        "ClusterFailover",
    ] {
        assert!(intents.contains(&want), "{want} not decided: {intents:?}");
    }
    assert!(
        events.iter().any(
            |e| matches!(&e.body, Event::ReplicaPromoted { from: Some(f), .. } if *f == victim)
        )
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e.body, Event::ClusterNodeObserved { .. }))
    );
    env.verify_journal().await;
    // The replay tool's audit is clean: this build decides the same at
    // every decision point, and no invariant is broken (one primary per
    // slot, not one per cluster).
    env.assert_audit_clean().await;
    env.finish().await;
}

/// `check` from some primary, retried until it is clean or `timeout`
/// passes (gossip takes a moment to agree after a node comes back).
async fn eventually_check_clean(env: &Env, name: &str, password: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let vkc = env.vkc(name).await;
        let seed = match vkc.status.as_ref().and_then(|s| s.shards.first()) {
            Some(shard) => match &shard.primary {
                Some(p) => Some(env.pod_addr(p).await),
                None => None,
            },
            None => None,
        };
        if let Some(seed) = seed {
            let check = redis_cli(&seed, password, &["--cluster", "check", &seed]);
            let nodes = redis_cli(&seed, password, &["cluster", "nodes"]);
            let clean = check.contains("[OK] All 16384 slots covered.")
                && check.contains("[OK] All nodes agree about slots configuration.")
                && !check.contains("[ERR]")
                && !check.contains("[WARNING]")
                && !nodes.contains("fail")
                && !nodes.contains("noaddr")
                && nodes.lines().filter(|l| !l.trim().is_empty()).count() == 6;
            if clean {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "not clean after {timeout:?}:\n{check}\n{nodes}\n{}",
                    env.dump(name).await
                );
            }
        } else if Instant::now() > deadline {
            panic!(
                "no shard primary after {timeout:?}\n{}",
                env.dump(name).await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The pods serving as shard primaries and one replica, by the status.
fn roles(vkc: &ValkeyCluster) -> (Vec<String>, Vec<String>) {
    let shards = &vkc.status.as_ref().unwrap().shards;
    (
        shards.iter().filter_map(|s| s.primary.clone()).collect(),
        shards.iter().flat_map(|s| s.replicas.clone()).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_keeps_every_acknowledged_write_through_kills_lost_volumes_and_a_full_restart() {
    let env = Env::start("cluster-faults").await;
    env.apply_yaml(&yaml()).await;
    let ready = |what: &'static str| {
        let env = &env;
        async move {
            env.wait_status("shop", Duration::from_secs(90), what, cluster_ready)
                .await
        }
    };
    let vkc = ready("formed").await;
    let password = env.password("shop").await;
    let mut seeds = Vec::new();
    for i in 0..6 {
        seeds.push(env.pod_addr(&format!("shop-{i}")).await);
    }
    // A cluster-aware client writes throughout, each write acknowledged
    // by a replica (`WAIT 1`) before it counts.
    let mut config = logbook_bench::cluster_writer::ClusterProbeConfig::new(seeds.clone(), "w");
    config.password = Some(logbook::valkey::Password::new(password.clone()));
    let probe = logbook_bench::cluster_writer::start_cluster_probe(config);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. A primary's process killed: the kubelet restarts it in place at
    // once, empty (nothing persisted yet), faster than two probes. Its
    // replica still holds every acknowledged write and must keep them.
    let (primaries, _) = roles(&vkc);
    let victim = primaries[0].clone();
    env.kill(&victim).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ready("ready after a primary's process was killed").await;
    eventually_check_clean(&env, "shop", &password, Duration::from_secs(60)).await;

    // 2. A replica's volume lost: it comes back as a new node, the old
    // one is forgotten, the new one replicates its shard again.
    let vkc = env.vkc("shop").await;
    let (_, replicas) = roles(&vkc);
    let replica = replicas.iter().find(|r| **r != victim).unwrap().clone();
    // Wiped under the running process, then killed (no shutdown save
    // rewrites `nodes.conf`): it restarts in place with an empty volume.
    env.faults()
        .wipe_pvc_data(NS, &format!("data-{replica}"))
        .await
        .unwrap();
    env.kill(&replica).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ready("ready after a replica lost its volume").await;
    eventually_check_clean(&env, "shop", &password, Duration::from_secs(60)).await;

    // 3. A primary's volume lost: its shard goes to its replica, the new
    // empty node never serves a slot and becomes a replica.
    let vkc = env.vkc("shop").await;
    let (primaries, _) = roles(&vkc);
    let wiped = primaries[2].clone();
    env.faults()
        .wipe_pvc_data(NS, &format!("data-{wiped}"))
        .await
        .unwrap();
    env.kill(&wiped).await;
    env.wait_status(
        "shop",
        Duration::from_secs(60),
        "another primary for the wiped pod's shard",
        |v| {
            let (p, _) = roles(v);
            p.len() == 3 && !p.contains(&wiped)
        },
    )
    .await;
    ready("ready after a primary lost its volume").await;
    eventually_check_clean(&env, "shop", &password, Duration::from_secs(60)).await;

    // Every write acknowledged so far is there, read through the slots'
    // owners.
    let log = probe.stop().await;
    let acked = log.acked_keys();
    assert!(
        acked.len() > 100,
        "too few writes acknowledged: {}",
        acked.len()
    );
    let pw = logbook::valkey::Password::new(password.clone());
    let missing = logbook_bench::cluster_client::missing_in_cluster(
        &seeds_now(&env).await,
        Some(&pw),
        "w",
        &acked,
    )
    .await
    .unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}\n{}",
        missing.len(),
        acked.len(),
        missing.iter().take(20).collect::<Vec<_>>(),
        env.dump("shop").await
    );
    eprintln!("{} acknowledged writes, none lost", acked.len());

    // 4. Every pod deleted at once: no gossip path is left between the
    // new addresses; the operator meets them again, and what the nodes
    // saved on the way down comes back.
    for i in 0..6 {
        env.delete_pod(&format!("shop-{i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    ready("ready after every pod was deleted").await;
    eventually_check_clean(&env, "shop", &password, Duration::from_secs(90)).await;
    let missing = logbook_bench::cluster_client::missing_in_cluster(
        &seeds_now(&env).await,
        Some(&pw),
        "w",
        &acked,
    )
    .await
    .unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost after the full restart",
        missing.len(),
        acked.len()
    );

    // The journal explains it: the restart in place was seen and the
    // lost volumes' nodes forgotten; it verifies and audits clean.
    let stream = env.stream("shop").await;
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let intents: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(
                intents
                    .iter()
                    .map(|p| format!("{} ({})", p.intent.name(), p.reason.code.name()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    eprintln!("decided: {intents:?}");
    for want in [
        "ClusterFailover (PrimaryBehindReplica)",
        "ClusterFailover (PrimaryFailed)",
        "ForgetNode (NodeRetired)",
    ] {
        assert!(intents.iter().any(|i| i == want), "{want}: {intents:?}");
    }
    env.verify_journal().await;
    env.assert_audit_clean().await;
    env.finish().await;
}

/// Every pod's current address.
async fn seeds_now(env: &Env) -> Vec<String> {
    let mut seeds = Vec::new();
    for i in 0..6 {
        seeds.push(env.pod_addr(&format!("shop-{i}")).await);
    }
    seeds
}
