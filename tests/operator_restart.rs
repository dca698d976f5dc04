//! The operator's memory is its journal: stopped while the primary dies,
//! or crashed in the middle of a failover, it starts again on the same
//! sled journal and converges with no acknowledged write lost; and a
//! healthy idle cluster costs nothing: over one idle minute, no API write
//! and no journal append.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod operator_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use logbook_journal::{Event, StreamId};
use operator_common::*;

const BULK: u64 = 5000;

/// The operator is down while the primary dies (`Stop::Graceful`), or
/// dies itself as soon as it has journaled its failover decision
/// (`Stop::Crash`); restarted on the same journal it converges.
async fn restart_case(how: Stop) {
    let mut env = Env::start(&format!("restart-{how:?}")).await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old = primary(&vkc);
    let stream = env.stream("demo").await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "bulk", BULK).await;
    let probe = write_probe(&service, &password, "probe");
    env.eventually(Duration::from_secs(10), "acknowledged writes", || {
        let n = probe.acked_count();
        async move { n >= 20 }
    })
    .await;

    let fault = Instant::now();
    match how {
        Stop::Graceful => {
            env.stop_operator(Stop::Graceful).await;
            env.kill(&old).await;
            // The kubelet restarts the process in place; it boots fenced
            // (never as a primary), so nobody serves writes until the
            // operator is back.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (kind, _) = role(&env.pod_addr(&old).await, &password).await;
            assert_eq!(kind, "slave", "the restarted primary booted as a primary");
        }
        Stop::Crash => {
            let since = chrono_like_now();
            env.kill(&old).await;
            // Crash as soon as the failover decision is published (it is
            // journaled before; its intents are then running or about to).
            let events: Api<KubeEvent> = env.api();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let list = events.list(&ListParams::default()).await.unwrap();
                // One Event per decision; a series (should a publisher fold
                // repeats) counts by its last time.
                let decided = list.items.iter().any(|e| {
                    let last = e
                        .series
                        .as_ref()
                        .map(|s| s.last_observed_time.0)
                        .or(e.event_time.as_ref().map(|t| t.0));
                    e.action.as_deref() == Some("Decided")
                        && matches!(e.reason.as_deref(), Some("FenceNode" | "PromoteReplica"))
                        && last.is_some_and(|t| t.as_microsecond() >= since)
                });
                if decided {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no failover decided\n{}",
                    env.dump("demo").await
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            env.stop_operator(Stop::Crash).await;
        }
    }
    let restarted = Instant::now();
    env.start_operator();
    let moved = env
        .wait_status("demo", Duration::from_secs(20), "a new primary", |v| {
            v.status
                .as_ref()
                .and_then(|s| s.primary.as_deref())
                .is_some_and(|p| p != old)
        })
        .await;
    let new = primary(&moved);
    eprintln!(
        "{how:?}: {old} -> {new}, {:?} after the restart ({:?} after the fault)",
        restarted.elapsed(),
        fault.elapsed()
    );
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(30)).await;
    assert_eq!(primary(&vkc), new);
    let after = Instant::now();
    env.wait_acked_after(&probe, after, "a write on the new primary")
        .await;
    let log = probe.stop().await;
    let new_addr = env.pod_addr(&new).await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, &password).await;
    assert_eq!(count_missing(&new_addr, &password, "bulk", BULK).await, 0);
    let (kind, follows) = role(&env.pod_addr(&old).await, &password).await;
    assert_eq!(kind, "slave");
    assert_eq!(
        follows.as_deref(),
        Some(new_addr.rsplit_once(':').unwrap().0)
    );
    eprintln!("{how:?}: {acked} acknowledged writes kept, {failed} failed");

    // The journal verifies, and folds to what the status shows.
    env.stop_operator(Stop::Graceful).await;
    let streams = env.verify_journal().await;
    eprintln!("journal streams: {streams:?}");
    let state = env.journal_state(&stream).await;
    assert_eq!(state.primary.as_deref(), Some(new.as_str()));
    assert!(
        state.in_flight.is_empty(),
        "intents left in flight: {:?}",
        state.in_flight
    );
    let operator_events = env.journal_events(&StreamId::operator()).await;
    let starts = operator_events
        .iter()
        .filter(|e| matches!(e.body, Event::OperatorStarted { .. }))
        .count();
    assert_eq!(starts, 2, "OperatorStarted events");
    let events = env.journal_events(&stream).await;
    let abandoned = events
        .iter()
        .filter(|e| matches!(e.body, Event::IntentAbandoned { .. }))
        .count();
    let promotions: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::ReplicaPromoted { pod, from, .. } => Some(format!("{pod} (from {from:?})")),
            _ => None,
        })
        .collect();
    eprintln!("{how:?}: {abandoned} intents abandoned at the restart; promotions {promotions:?}");
    assert_eq!(
        promotions.len(),
        2,
        "one bootstrap and one failover: {promotions:?}"
    );
    env.finish().await;
}

/// Microseconds since the epoch.
fn chrono_like_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_stopped_while_the_primary_dies_resumes_from_its_journal() {
    restart_case(Stop::Graceful).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_crashed_mid_failover_resumes_from_its_journal() {
    restart_case(Stop::Crash).await;
}

/// The kinds whose objects the idle check lists.
fn kinds() -> Vec<ApiResource> {
    let core = |kind: &str, plural: &str| ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let grouped = |group: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    };
    vec![
        core("Pod", "pods"),
        core("Service", "services"),
        core("Endpoints", "endpoints"),
        core("ConfigMap", "configmaps"),
        core("Secret", "secrets"),
        core("PersistentVolumeClaim", "persistentvolumeclaims"),
        core("Event", "events"),
        grouped("apps", "StatefulSet", "statefulsets"),
        grouped("apps", "ControllerRevision", "controllerrevisions"),
        grouped("policy", "PodDisruptionBudget", "poddisruptionbudgets"),
        grouped("events.k8s.io", "Event", "events"),
        grouped("discovery.k8s.io", "EndpointSlice", "endpointslices"),
        grouped("coordination.k8s.io", "Lease", "leases"),
        ApiResource {
            group: "valkey.logbook.dev".into(),
            version: "v1alpha1".into(),
            api_version: "valkey.logbook.dev/v1alpha1".into(),
            kind: "ValkeyCluster".into(),
            plural: "valkeyclusters".into(),
        },
    ]
}

/// Every object of [`kinds`]: `Kind namespace/name` → (resourceVersion,
/// field managers), and the global resourceVersion (of the lists).
async fn objects(env: &Env) -> (u64, BTreeMap<String, (u64, Vec<String>)>) {
    let mut global = 0;
    let mut all = BTreeMap::new();
    for ar in kinds() {
        let api: Api<DynamicObject> = Api::all_with(env.client.clone(), &ar);
        let Ok(list) = api.list(&ListParams::default()).await else {
            continue;
        };
        let rv: u64 = list
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        global = global.max(rv);
        for obj in list.items {
            let rv: u64 = obj
                .resource_version()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let managers: Vec<String> = obj
                .managed_fields()
                .iter()
                .filter_map(|m| {
                    let sub = m
                        .subresource
                        .clone()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default();
                    Some(format!("{}{sub}", m.manager.clone()?))
                })
                .collect();
            let key = format!(
                "{} {}/{}",
                ar.kind,
                obj.namespace().unwrap_or_default(),
                obj.name_any()
            );
            all.insert(key, (rv, managers));
        }
    }
    (global, all)
}

/// The node's heartbeat: the kubelet renews its Lease every few seconds,
/// as a real kubelet does. It is the only writer allowed while idle.
fn is_node_heartbeat(key: &str) -> bool {
    key.starts_with("Lease kube-node-lease/")
}

/// Objects created, changed or deleted between two [`objects`] snapshots,
/// the node heartbeat excepted.
fn changes(
    before: &BTreeMap<String, (u64, Vec<String>)>,
    after: &BTreeMap<String, (u64, Vec<String>)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (key, (rv, managers)) in after {
        if is_node_heartbeat(key) {
            continue;
        }
        match before.get(key) {
            None => out.push(format!("created {key} rv={rv} managers={managers:?}")),
            Some((old, _)) if old != rv => {
                out.push(format!(
                    "changed {key} rv {old}->{rv} managers={managers:?}"
                ));
            }
            Some(_) => {}
        }
    }
    for key in before.keys() {
        if !after.contains_key(key) && !is_node_heartbeat(key) {
            out.push(format!("deleted {key}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_healthy_cluster_writes_nothing_for_a_minute() {
    let mut env = Env::start("idle").await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let stream = env.stream("demo").await;
    // Settle: Ready, and nothing but the node heartbeat written for a few
    // seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (_, mut settled) = objects(&env).await;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(5) {
        assert!(
            Instant::now() < deadline,
            "never settled\n{}",
            env.dump("demo").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, now) = objects(&env).await;
        if !changes(&settled, &now).is_empty() {
            quiet_since = Instant::now();
        }
        settled = now;
    }
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(5)).await;
    let seq = journal_seq(&vkc);
    let (rv, before) = objects(&env).await;
    let lines = env.logs.tail(usize::MAX).len();
    eprintln!("settled at resourceVersion {rv}, journal seq {seq}; idling for 60 s");

    let start = Instant::now();
    let mut global = rv;
    while start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (now_rv, now) = objects(&env).await;
        let changed = changes(&before, &now);
        assert!(
            changed.is_empty(),
            "API writes while idle after {:?}: {changed:#?}\n{}",
            start.elapsed(),
            env.dump("demo").await
        );
        global = now_rv;
        let vkc = env.vkc("demo").await;
        assert_eq!(
            journal_seq(&vkc),
            seq,
            "journal appends while idle\n{}",
            env.dump("demo").await
        );
    }
    let new_lines: Vec<String> = env.logs.tail(usize::MAX).into_iter().skip(lines).collect();

    // The journal's head after stopping is where it was before the minute.
    env.stop_operator(Stop::Graceful).await;
    let head = env.journal_head(&stream).await;
    assert_eq!(
        i64::try_from(head).unwrap(),
        seq,
        "journal appends while idle"
    );
    eprintln!(
        "idle minute: no write but the node heartbeat (global resourceVersion {rv} -> {global}), journal head {head} unchanged; {} operator log lines meanwhile",
        new_lines.len()
    );
    env.finish().await;
}
