//! A restart on request, end to end on localkube with real
//! `valkey-server` pods: `kubectl valkey restart demo --wait` on a
//! Replication cluster under a writer whose writes a replica acknowledges
//! (`WAIT`). Every pod is replaced exactly once (a new uid), never two down
//! at once, the primary only after it handed over; no acknowledged write
//! is lost; the journal holds the decision (`RestartPods`, reason
//! `RestartRequested`) and the switchover before the primary's roll. The
//! same request again (the annotation removed and put back with the same
//! value) replaces nothing and decides nothing. A Valkey Cluster of 3
//! shards restarts the same way, shard by shard, each primary after a
//! coordinated `CLUSTER FAILOVER`, under a cluster-aware writer; a
//! Sentinel cluster restarts its data pods the same way (the primary after
//! a coordinated Sentinel failover) and its Sentinels too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use logbook::journal_store::JournalBackend;
use logbook_crds::ValkeyCluster;
use logbook_journal::{ClusterFailoverMode, Event, Intent, ReasonCode};
use operator_common::*;

const ANNOTATION: &str = "valkey.logbook.dev/restart-requested";

async fn uids(env: &Env, cluster: &str) -> BTreeMap<String, String> {
    env.pods(cluster)
        .await
        .iter()
        .map(|p| (p.name_any(), p.metadata.uid.clone().unwrap()))
        .collect()
}

/// The message of the cluster's `Ready` condition.
fn ready_message(vkc: &ValkeyCluster) -> String {
    vkc.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// Every decision of the journal, in order: (intent, reason).
fn decisions(events: &[logbook_journal::Envelope]) -> Vec<(Intent, ReasonCode)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents),
            _ => None,
        })
        .flatten()
        .map(|p| (p.intent.clone(), p.reason.code.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_restart_rolls_every_pod_once_primary_last_and_loses_no_acknowledged_write() {
    let mut env = Env::start_without_operator("restart-request").await;
    // The journal read while the operator runs: ConfigMaps, which any
    // reader may open beside it.
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old_primary = primary(&vkc);
    let before = uids(&env, "demo").await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let probe = write_probe(&service, &password, "restart");
    first_acks(&env, &probe).await;

    let monitor = PodMonitor::start(&env, "demo", 3);
    let asked = Instant::now();
    let said = kubectl_valkey(&env, &["restart", "demo", "--wait", "--timeout", "90s"]).await;
    eprintln!("{said}restart took {:?}", asked.elapsed());
    assert!(said.contains("restart requested"), "{said}");
    assert!(said.contains("every pod restarted"), "{said}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = monitor.stop();
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(20)).await;
    let new_primary = primary(&vkc);
    let log = probe.stop().await;

    // Every pod replaced exactly once, never two down at once, never the
    // primary while it was primary.
    let after = uids(&env, "demo").await;
    for (pod, uid) in &before {
        assert_ne!(after.get(pod), Some(uid), "{pod} was not replaced");
    }
    let mut replaced = seen.replaced.clone();
    replaced.sort();
    assert_eq!(replaced, ["demo-0", "demo-1", "demo-2"], "{seen:?}");
    assert!(seen.max_down <= 1, "pods down at once: {seen:?}");
    assert!(
        seen.deleted_while_primary.is_empty(),
        "rolled while primary: {seen:?}"
    );
    assert_ne!(new_primary, old_primary, "the primary did not hand over");
    // The old primary was the last replaced.
    assert_eq!(seen.replaced.last(), Some(&old_primary), "{seen:?}");

    // No acknowledged write lost.
    let addr = env.pod_addr(&new_primary).await;
    let (acked, failed) = check_no_acked_write_lost(&log, asked, &addr, &password).await;
    eprintln!("{acked} acknowledged writes kept, {failed} failed");

    // The journal: the request observed, then the decision with its
    // reason, then the rolls; the switchover away from the old primary
    // before its own roll.
    let stream = env.stream("demo").await;
    let events = env.journal_events(&stream).await;
    let request = events
        .iter()
        .find_map(|e| match &e.body {
            Event::RestartRequestObserved { request: Some(r) } => Some(r.clone()),
            _ => None,
        })
        .expect("the request journaled");
    let decided = decisions(&events);
    let restarts: Vec<&(Intent, ReasonCode)> = decided
        .iter()
        .filter(|(i, _)| matches!(i, Intent::RestartPods { .. }))
        .collect();
    assert_eq!(restarts.len(), 1, "{decided:?}");
    assert_eq!(
        restarts[0].1,
        ReasonCode::RestartRequested {
            requested: request.clone()
        }
    );
    let at = |want: &dyn Fn(&Intent) -> bool| decided.iter().position(|(i, _)| want(i));
    let restart_at = at(&|i| matches!(i, Intent::RestartPods { .. })).unwrap();
    let handover = at(&|i| matches!(i, Intent::Switchover { from, .. } if *from == old_primary))
        .expect("a switchover away from the old primary");
    let primary_rolled =
        at(&|i| matches!(i, Intent::RollPod { pod, .. } if *pod == old_primary)).unwrap();
    assert!(
        restart_at < handover && handover < primary_rolled,
        "{decided:?}"
    );
    let rolls = decided
        .iter()
        .skip(restart_at)
        .filter(|(i, _)| matches!(i, Intent::RollPod { .. }))
        .count();
    assert_eq!(rolls, 3, "{decided:?}");
    assert_eq!(
        env.journal_state(&stream).await.restarted_at.as_deref(),
        Some(request.as_str())
    );

    // The same request again: removed, then back with the same value.
    // Each journaled as seen, but nothing decided and no pod replaced.
    let head = events.len();
    let seen_again = |request: Option<String>| {
        let (env, stream) = (&env, &stream);
        async move {
            env.eventually(
                Duration::from_secs(10),
                &format!("RestartRequestObserved {request:?} journaled"),
                || {
                    let request = request.clone();
                    async move {
                        env.journal_events(stream).await.iter().skip(head).any(|e| {
                            matches!(&e.body, Event::RestartRequestObserved { request: r } if *r == request)
                        })
                    }
                },
            )
            .await;
        }
    };
    env.patch(
        "demo",
        serde_json::json!({"metadata": {"annotations": {ANNOTATION: null}}}),
    )
    .await;
    seen_again(None).await;
    env.patch(
        "demo",
        serde_json::json!({"metadata": {"annotations": {ANNOTATION: request}}}),
    )
    .await;
    seen_again(Some(request.clone())).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = env.journal_events(&stream).await;
    let again: Vec<(Intent, ReasonCode)> = decisions(&later[head..]);
    assert!(
        !again.iter().any(|(i, _)| matches!(
            i,
            Intent::RestartPods { .. } | Intent::RollPod { .. } | Intent::ApplyResources { .. }
        )),
        "the same request decided again: {again:?}"
    );
    assert_eq!(uids(&env, "demo").await, after, "pods replaced again");

    // Paused: `--wait` is refused with nothing written; without it the
    // request waits, says so in the status and an Event, and is carried
    // out once resumed.
    kubectl_valkey(&env, &["pause", "demo"]).await;
    let (code, _, err) = kubectl_valkey_ran(&env, &["restart", "demo", "--wait"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is paused"), "{err}");
    assert_eq!(
        env.vkc("demo").await.annotations().get(ANNOTATION),
        Some(&request),
        "written although refused"
    );
    let said = kubectl_valkey(&env, &["restart", "demo"]).await;
    assert!(said.contains("waits until it is resumed"), "{said}");
    env.wait_status(
        "demo",
        Duration::from_secs(10),
        "the restart said to wait",
        |v| ready_message(v).contains("waits: the cluster is paused"),
    )
    .await;
    let events: Api<KubeEvent> = env.api();
    env.eventually(Duration::from_secs(10), "a RestartDeferred Event", || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| e.reason.as_deref() == Some("RestartDeferred"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(uids(&env, "demo").await, after, "restarted while paused");
    kubectl_valkey(&env, &["resume", "demo"]).await;
    env.eventually(
        Duration::from_secs(60),
        "every pod restarted after resume",
        || {
            let (env, after) = (&env, &after);
            async move {
                let now = uids(env, "demo").await;
                now.len() == 3 && now.iter().all(|(pod, uid)| after.get(pod) != Some(uid))
            }
        },
    )
    .await;
    env.wait_ready("demo", 3, Duration::from_secs(30)).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_requested_restart_rolls_a_valkey_cluster_keeping_every_acknowledged_write() {
    const KEYS: u64 = 2_000;
    let mut env = Env::start_without_operator("restart-request-cluster").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&cluster_yaml("shop")).await;
    let vkc = env
        .wait_status("shop", Duration::from_secs(90), "formed", cluster_ready)
        .await;
    let old_primaries = primaries(&vkc);
    let before = uids(&env, "shop").await;
    let password = env.password("shop").await;
    let probe = loaded_under_writer(&env, &password, KEYS).await;

    let monitor = PodMonitor::start(&env, "shop", 6);
    let asked = Instant::now();
    let said = kubectl_valkey(&env, &["restart", "shop", "--wait", "--timeout", "120s"]).await;
    eprintln!("{said}restart took {:?}", asked.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = monitor.stop();
    env.wait_status("shop", Duration::from_secs(30), "ready", cluster_ready)
        .await;
    stop_and_check_writes(&env, probe, 6, &password, KEYS).await;

    let after = uids(&env, "shop").await;
    for (pod, uid) in &before {
        assert_ne!(after.get(pod), Some(uid), "{pod} was not replaced");
    }
    let mut replaced = seen.replaced.clone();
    replaced.sort();
    assert_eq!(
        replaced,
        ["shop-0", "shop-1", "shop-2", "shop-3", "shop-4", "shop-5"],
        "{seen:?}"
    );
    assert!(seen.max_down <= 1, "pods down at once: {seen:?}");
    assert!(
        seen.deleted_while_primary.is_empty(),
        "rolled while primary: {seen:?}"
    );

    // Each old primary handed its shard over by a coordinated failover
    // before its own roll, after the one RestartPods.
    let stream = env.stream("shop").await;
    let decided = decisions(&env.journal_events(&stream).await);
    let restart_at = decided
        .iter()
        .position(|(i, _)| matches!(i, Intent::RestartPods { .. }))
        .expect("RestartPods decided");
    for old in &old_primaries {
        let handover = decided.iter().position(|(i, _)| {
            matches!(i, Intent::ClusterFailover { from: Some(f), mode: ClusterFailoverMode::Coordinated, .. } if f == old)
        });
        let rolled = decided
            .iter()
            .position(|(i, _)| matches!(i, Intent::RollPod { pod, .. } if pod == old));
        match (handover, rolled) {
            (Some(h), Some(r)) => assert!(restart_at < h && h < r, "{old}: {decided:?}"),
            _ => panic!("{old}: no coordinated failover before its roll: {decided:?}"),
        }
    }
    env.finish().await;
}

/// Every Sentinel pod of `cluster`: name → uid.
async fn sentinel_uids(env: &Env, cluster: &str) -> BTreeMap<String, String> {
    env.api::<k8s_openapi::api::core::v1::Pod>()
        .list(&ListParams::default().labels(&format!(
            "valkey.logbook.dev/cluster={cluster},app.kubernetes.io/component=sentinel"
        )))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.metadata.uid.clone().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_restart_rolls_a_sentinel_clusters_data_pods_and_sentinels() {
    let mut env = Env::start_without_operator("restart-request-sentinel").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&sentinel_yaml("demo")).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(90)).await;
    let old_primary = primary(&vkc);
    let before = uids(&env, "demo").await;
    let sentinels_before = sentinel_uids(&env, "demo").await;
    assert_eq!(sentinels_before.len(), 3);
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let probe = write_probe(&service, &password, "restart");
    first_acks(&env, &probe).await;

    let asked = Instant::now();
    let (code, said, err) =
        kubectl_valkey_ran(&env, &["restart", "demo", "--wait", "--timeout", "120s"]).await;
    if code != 0 {
        let sts = kubectl(
            &env,
            NS,
            &["get", "statefulset", "demo-sentinel", "-o", "yaml"],
        );
        let pods = kubectl(&env, NS, &["get", "pods", "-o", "wide", "--show-labels"]);
        panic!("restart: {err}\n{sts}\n{pods}\n{}", env.dump("demo").await);
    }
    eprintln!("{said}restart took {:?}", asked.elapsed());
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(30)).await;
    let new_primary = primary(&vkc);
    let log = probe.stop().await;

    let after = uids(&env, "demo").await;
    for (pod, uid) in &before {
        assert_ne!(after.get(pod), Some(uid), "{pod} was not replaced");
    }
    let sentinels_after = sentinel_uids(&env, "demo").await;
    for (pod, uid) in &sentinels_before {
        assert_ne!(
            sentinels_after.get(pod),
            Some(uid),
            "{pod} was not restarted"
        );
    }
    assert_ne!(new_primary, old_primary, "the primary did not hand over");
    let addr = env.pod_addr(&new_primary).await;
    let (acked, failed) = check_no_acked_write_lost(&log, asked, &addr, &password).await;
    eprintln!("{acked} acknowledged writes kept, {failed} failed");

    // The primary handed over by a Sentinel failover before its roll.
    let stream = env.stream("demo").await;
    let decided = decisions(&env.journal_events(&stream).await);
    let at = |want: &dyn Fn(&Intent) -> bool| decided.iter().position(|(i, _)| want(i));
    let restart_at = at(&|i| matches!(i, Intent::RestartPods { .. })).expect("RestartPods");
    let handover =
        at(&|i| matches!(i, Intent::SentinelFailover { from, .. } if *from == old_primary))
            .expect("a Sentinel failover away from the old primary");
    let rolled = at(&|i| matches!(i, Intent::RollPod { pod, .. } if *pod == old_primary))
        .expect("the old primary rolled");
    assert!(restart_at < handover && handover < rolled, "{decided:?}");
    env.finish().await;
}

/// The operator dies (`Stop::Crash`) as soon as it decided the restart's
/// first roll; the one started after it, on the same journal, finishes the
/// restart from where it was: every pod replaced exactly once, the
/// restart itself decided once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_cut_by_an_operator_crash_goes_on_from_the_journal() {
    let mut env = Env::start_without_operator("restart-request-crash").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let before = uids(&env, "demo").await;
    let stream = env.stream("demo").await;
    let mut tail = env.cm_journal_tail(&stream);
    tail.catch_up().await;
    let seq = tail.seq();

    let monitor = PodMonitor::start(&env, "demo", 3);
    env.patch(
        "demo",
        serde_json::json!({"metadata": {"annotations": {ANNOTATION: "2026-11-30T18:00:00Z"}}}),
    )
    .await;
    let first_roll = tail
        .wait_for(seq, Duration::from_secs(20), |e| {
            matches!(&e.body, Event::Decided { intents }
                if intents.iter().any(|p| matches!(p.intent, Intent::RollPod { .. })))
        })
        .await
        .expect("a roll decided after the restart");
    env.stop_operator(Stop::Crash).await;
    eprintln!("crashed after seq {}", first_roll.seq);
    env.start_operator();
    let (env_ref, before_ref) = (&env, &before);
    env.eventually(
        Duration::from_secs(60),
        "every pod replaced",
        || async move {
            let now = uids(env_ref, "demo").await;
            now.len() == 3
                && now
                    .iter()
                    .all(|(pod, uid)| before_ref.get(pod) != Some(uid))
        },
    )
    .await;
    env.wait_ready("demo", 3, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = monitor.stop();
    let mut replaced = seen.replaced.clone();
    replaced.sort();
    assert_eq!(replaced, ["demo-0", "demo-1", "demo-2"], "{seen:?}");
    assert!(seen.max_down <= 1, "pods down at once: {seen:?}");
    assert!(
        seen.deleted_while_primary.is_empty(),
        "rolled while primary: {seen:?}"
    );
    let events = env.journal_events(&stream).await;
    let decided = decisions(&events);
    let restarts = decided
        .iter()
        .filter(|(i, _)| matches!(i, Intent::RestartPods { .. }))
        .count();
    assert_eq!(restarts, 1, "{decided:?}");
    // The second operator (a later leadership epoch) rolled the rest.
    let later_rolls = events
        .iter()
        .filter(|e| e.epoch > first_roll.epoch)
        .filter(|e| {
            matches!(&e.body, Event::Decided { intents }
                if intents.iter().any(|p| matches!(p.intent, Intent::RollPod { .. })))
        })
        .count();
    assert!(later_rolls >= 2, "the restart was not cut: {decided:?}");
    env.finish().await;
}
