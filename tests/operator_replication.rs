//! Replication failover end to end on localkube with real `valkey-server`
//! pods: the primary's process killed (the kubelet restarts it at once, so
//! it must come back fenced, never as a sync source), the primary pod
//! deleted, and a primary merely busy (`DEBUG SLEEP 1`) never failed over.
//! A client writes through the client Service every 10 ms with `WAIT 1
//! 1000`; no acknowledged write may be lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use operator_common::*;

const BULK: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL of the primary's container; the kubelet restarts it in place.
    KillProcess,
    /// Deletion of the primary's pod; the StatefulSet recreates it.
    DeletePod,
}

async fn failover(fault_kind: Fault) {
    let env = Env::start(&format!("{fault_kind:?}")).await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let started = Instant::now();
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    eprintln!("Ready after {:?}", started.elapsed());
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "bulk", BULK).await;

    let old = primary(&vkc);
    let old_failovers = vkc.status.as_ref().unwrap().last_failover.clone();
    let probe = write_probe(&service, &password, "probe");
    env.eventually(
        Duration::from_secs(10),
        "the probe's first acknowledged writes",
        || {
            let n = probe.acked_count();
            async move { n >= 20 }
        },
    )
    .await;

    let fault = Instant::now();
    match fault_kind {
        Fault::KillProcess => env.kill(&old).await,
        Fault::DeletePod => env.delete_pod(&old).await,
    }
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(20))
        .await;
    let new = primary(&moved);
    let moved_at = Instant::now();
    eprintln!("{old} -> {new} after {:?}", fault.elapsed());
    // The writer resumes on the new primary: an acknowledged write that
    // started after the operator published it.
    env.wait_acked_after(&probe, moved_at, "a successful write after the failover")
        .await;
    // Keep writing a little on the new primary, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(30)).await;
    let log = probe.stop().await;
    assert_eq!(primary(&vkc), new, "the primary moved again");
    let status = vkc.status.as_ref().unwrap();
    let last = status.last_failover.clone().expect("status.lastFailover");
    assert_ne!(Some(&last), old_failovers.as_ref());
    // `from` is the old primary, or none when its pod came back (fenced)
    // before its death was confirmed and the choice was a new election.
    assert!(
        last.from.is_none() || last.from.as_deref() == Some(old.as_str()),
        "lastFailover {last:?}"
    );
    assert_eq!(last.to.as_deref(), Some(new.as_str()));

    let new_addr = env.pod_addr(&new).await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, &password).await;
    let window = log.window_around(fault);
    eprintln!(
        "{fault_kind:?}: {acked} acknowledged writes kept, {failed} failed, window {window:?}"
    );
    assert_eq!(
        count_missing(&new_addr, &password, "bulk", BULK).await,
        0,
        "bulk keys lost on the new primary {new}"
    );

    // The old primary is back as a replica of the new one, in sync.
    let old_addr = env.pod_addr(&old).await;
    let new_ip = new_addr.rsplit_once(':').unwrap().0.to_owned();
    let (kind, follows) = role(&old_addr, &password).await;
    assert_eq!(kind, "slave", "{old} is not a replica");
    assert_eq!(
        follows.as_deref(),
        Some(new_ip.as_str()),
        "{old} follows the wrong primary"
    );
    env.eventually(Duration::from_secs(10), "the old primary's link up", || {
        let (old_addr, password) = (old_addr.clone(), password.clone());
        async move {
            info_field(&old_addr, &password, "master_link_status")
                .await
                .as_deref()
                == Some("up")
        }
    })
    .await;
    assert_eq!(
        count_missing(&old_addr, &password, "bulk", BULK).await,
        0,
        "the old primary {old} did not resync the bulk keys"
    );
    // Every other pod follows the new primary too.
    for pod in env.pods("demo").await {
        let name = kube::ResourceExt::name_any(&pod);
        if name == new {
            continue;
        }
        let (kind, follows) = role(&env.pod_addr(&name).await, &password).await;
        assert_eq!(
            (kind.as_str(), follows.as_deref()),
            ("slave", Some(new_ip.as_str())),
            "{name}"
        );
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_process_fails_over_without_losing_an_acknowledged_write() {
    failover(Fault::KillProcess).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_primary_pod_fails_over_without_losing_an_acknowledged_write() {
    failover(Fault::DeletePod).await;
}

/// A Replication cluster of 3 that accepts `DEBUG`, probed every
/// `probe_ms` (the default 500 when `None`) with the default threshold (3).
fn debug_yaml(probe_ms: Option<u32>) -> String {
    let probe = probe_ms.map_or_else(String::new, |ms| {
        format!("  failover:\n    probeIntervalMilliseconds: {ms}\n")
    });
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Replication
  replicas: 3
  storage:
    size: 1Gi
  config:
    enable-debug-command: "yes"
{probe}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_busy_with_debug_sleep_is_never_failed_over() {
    debug_sleep(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Fast probes: three timeouts fit in the one-second sleep and a replica's
// whole-second "last heard 2 s ago" can corroborate them; only the minimum
// failing span (decide::MIN_UNREACHABLE_MS) keeps this from failing over.
async fn a_primary_busy_with_debug_sleep_is_never_failed_over_with_fast_probes() {
    debug_sleep(Some(200)).await;
}

/// Three `DEBUG SLEEP 1` on the primary, a few seconds apart: no failover.
async fn debug_sleep(probe_ms: Option<u32>) {
    let env = Env::start(&format!("debug-sleep-{probe_ms:?}")).await;
    env.apply_yaml(&debug_yaml(probe_ms)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old = primary(&vkc);
    // The bootstrap's promotion is the last "failover" until now.
    let bootstrap = vkc.status.as_ref().unwrap().last_failover.clone();
    let password = env.password("demo").await;
    let addr = env.pod_addr(&old).await;
    let mut con = connect(&addr, &password).await;
    for round in 0..3 {
        let slept = Instant::now();
        let () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(
            slept.elapsed() >= Duration::from_millis(900),
            "DEBUG SLEEP did not block"
        );
        eprintln!("DEBUG SLEEP 1 #{round} done");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let vkc = env.vkc("demo").await;
        assert_eq!(
            primary(&vkc),
            old,
            "failed over after DEBUG SLEEP #{round}\n{}",
            env.dump("demo").await
        );
    }
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(10)).await;
    assert_eq!(primary(&vkc), old);
    assert_eq!(
        vkc.status.as_ref().unwrap().last_failover,
        bootstrap,
        "a failover was recorded"
    );
    assert_eq!(role(&addr, &password).await.0, "master");

    // The journal: one promotion (the bootstrap), no failover decided.
    let stream = env.stream("demo").await;
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let promotions: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.body, logbook_journal::Event::ReplicaPromoted { .. }))
        .collect();
    assert_eq!(promotions.len(), 1, "promotions: {promotions:#?}");
    let failovers = events
        .iter()
        .filter(|e| {
            matches!(&e.body, logbook_journal::Event::Decided { intents }
                if intents.iter().any(|i| matches!(i.reason.code, logbook_journal::ReasonCode::PrimaryFailed { .. })))
        })
        .count();
    assert_eq!(failovers, 0, "a failover was decided");
    // The sleeps were seen: probes of the primary timed out meanwhile. At
    // least once, not once a sleep: a round can start just before a sleep
    // and the next one end just as it does (probes every 500 ms, each
    // timing out after 500 ms, against a 1 s sleep), and a loaded machine
    // moves a round by more than that margin (CI saw 2 of 3).
    let timeouts = events
        .iter()
        .filter(|e| {
            matches!(&e.body, logbook_journal::Event::PodReachabilityObserved { pod, reachability }
                if *pod == old && *reachability == logbook_journal::Reachability::TimedOut)
        })
        .count();
    assert!(
        timeouts >= 1,
        "the prober never saw the primary stall ({timeouts} timeouts)"
    );
    eprintln!(
        "{} events journaled, {timeouts} probe timeouts of {old}",
        events.len()
    );
    env.finish().await;
}
