//! Hibernation (`spec.hibernated`) on real `valkey-server` pods: under a
//! writer, every acknowledged write made durable, the pods gone with their
//! volumes kept, nothing written while asleep, and on waking the same
//! primary with no failover decided and every acknowledged key present.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ListParams};
use logbook_crds::v1alpha1::ClusterPhase;
use logbook_journal::{Event, Intent};
use operator_common::*;

const BULK: u64 = 2000;

fn phase(vkc: &logbook_crds::ValkeyCluster) -> Option<ClusterPhase> {
    vkc.status.as_ref().and_then(|s| s.phase)
}

/// The names of the test namespace's claims.
async fn claim_names(env: &Env) -> Vec<String> {
    env.api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect()
}

/// Hibernates `name` (of `pods` data pods) under a writer, checks it
/// sleeps at no cost, wakes it, and checks what it came back as.
async fn sleep_and_wake(env: &mut Env, name: &str, pods: usize) {
    let vkc = env.wait_ready(name, pods, Duration::from_secs(60)).await;
    let before = primary(&vkc);
    let stream = env.stream(name).await;
    let password = env.password(name).await;
    let service = env.service_addr(name).await;
    // With replicas, a write counts as acknowledged once one holds it
    // (`WAIT 1`); a Standalone pod's answer is its acknowledgement.
    let replicated = pods > 1;
    if replicated {
        write_keys(&service, &password, "bulk", BULK).await;
    } else {
        write_keys_unreplicated(&service, &password, "bulk", BULK).await;
    }
    let probe = {
        let mut config = logbook_bench::WriteProbeConfig::fixed(&service, "probe");
        config.password = Some(logbook::valkey::Password::new(&password));
        config.wait_replicas = replicated;
        logbook_bench::WriteProbe::start(config)
    };
    first_acks(env, &probe).await;

    // To sleep.
    let asked = Instant::now();
    let decided_from = u64::try_from(journal_seq(&vkc)).unwrap();
    env.patch(name, serde_json::json!({"spec": {"hibernated": true}}))
        .await;
    env.wait_status(name, Duration::from_secs(60), "phase Hibernated", |v| {
        phase(v) == Some(ClusterPhase::Hibernated)
    })
    .await;
    eprintln!(
        "{name}: hibernated {:?} after it was asked",
        asked.elapsed()
    );
    assert!(env.pods(name).await.is_empty(), "pods still run asleep");
    let sets: Api<StatefulSet> = env.api();
    let sts = sets.get(name).await.unwrap();
    assert_eq!(sts.spec.as_ref().unwrap().replicas, Some(0));
    let claim_names = claim_names(env).await;
    let kept = (0..pods)
        .filter(|i| {
            claim_names
                .iter()
                .any(|c| c.ends_with(&format!("-{name}-{i}")))
        })
        .count();
    assert_eq!(kept, pods, "the volumes are kept asleep");

    // Asleep: nothing is written, to the journal (its head is in the
    // status, published by every reconcile) or the API (every request the
    // API server answers is logged; Lease renewals, the kubelet's and the
    // operator's own, are not the cluster's).
    let asleep = env.vkc(name).await;
    let head = journal_seq(&asleep);
    let requests = env.api_requests();
    let mark = requests.total();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        journal_seq(&env.vkc(name).await),
        head,
        "journal appends while asleep"
    );
    let writes: Vec<String> = requests
        .since(mark)
        .into_iter()
        .filter(|r| r.method != "GET" && !r.uri.contains("/leases/"))
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect();
    assert!(writes.is_empty(), "API writes while asleep: {writes:#?}");

    // Awake again.
    let woken = Instant::now();
    env.patch(name, serde_json::json!({"spec": {"hibernated": false}}))
        .await;
    let vkc = env.wait_ready(name, pods, Duration::from_secs(90)).await;
    eprintln!("{name}: Ready {:?} after it was woken", woken.elapsed());
    assert_eq!(primary(&vkc), before, "woke with another primary");
    env.wait_acked_after(&probe, Instant::now(), "a write after waking")
        .await;
    let log = probe.stop().await;
    let at = env.pod_addr(&before).await;
    let (acked, failed) = check_no_acked_write_lost(&log, asked, &at, &password).await;
    assert_eq!(count_missing(&at, &password, "bulk", BULK).await, 0);
    eprintln!("{name}: {acked} acknowledged writes kept, {failed} failed");

    // What was decided from the hibernation on: its own steps, and no
    // failover (the journal read with the operator stopped).
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    // Each step's outcome says what it did: the pause, the offsets, the
    // files written; the primary given its writes back.
    let outcome = |wanted: fn(&Intent) -> bool| -> String {
        let id = events
            .iter()
            .filter(|e| e.seq > decided_from)
            .find_map(|e| match &e.body {
                Event::Decided { intents } => intents
                    .iter()
                    .find(|p| wanted(&p.intent))
                    .map(|p| p.intent_id),
                _ => None,
            })
            .expect("decided");
        events
            .iter()
            .find_map(|e| match &e.body {
                Event::IntentSucceeded { intent_id, detail } if *intent_id == id => {
                    Some(detail.clone())
                }
                _ => None,
            })
            .expect("succeeded")
    };
    let persisted = outcome(|i| matches!(i, Intent::PersistForHibernation { .. }));
    eprintln!("{name}: {persisted}");
    if vkc.spec.topology == logbook_crds::Topology::Sentinel {
        sentinels_held_then_released(&events, decided_from);
    }
    let files = match vkc.spec.storage.persistence {
        logbook_crds::Persistence::Aof => "append-only file rewritten",
        logbook_crds::Persistence::RdbAndAof => "RDB file saved, append-only file rewritten",
        _ => "RDB file saved",
    };
    assert!(
        persisted.contains(&format!("writes paused on {before}")) && persisted.contains(files),
        "{persisted}"
    );
    if replicated {
        assert!(persisted.contains("replicas caught up"), "{persisted}");
        let woke = outcome(|i| matches!(i, Intent::Wake { .. }));
        eprintln!("{name}: {woke}");
        assert!(woke.contains(&format!("{before} primary again")), "{woke}");
    }
    let decided: Vec<&Intent> = events
        .iter()
        .filter(|e| e.seq > decided_from)
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().map(|p| &p.intent)),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        decided
            .iter()
            .any(|i| matches!(i, Intent::PersistForHibernation { .. })),
        "no PersistForHibernation decided: {decided:?}"
    );
    assert!(
        decided.iter().any(|i| matches!(i, Intent::Wake { .. })),
        "no Wake decided: {decided:?}"
    );
    let failovers: Vec<&&Intent> = decided
        .iter()
        .filter(|i| {
            matches!(
                i,
                Intent::FenceNode { .. }
                    | Intent::PromoteReplica { .. }
                    | Intent::Switchover { .. }
                    | Intent::ClusterFailover { .. }
                    | Intent::SentinelFailover { .. }
            )
        })
        .collect();
    assert!(
        failovers.is_empty(),
        "failover decided on the way: {failovers:?}"
    );
}

/// A Sentinel cluster's hibernation: before the primary's writes were
/// paused, every Sentinel was given a down-after longer than the pause
/// can last (a Sentinel takes a paused primary for down), and each
/// Sentinel the wake brought back monitors with the spec's again.
fn sentinels_held_then_released(events: &[logbook_journal::Envelope], from: u64) {
    let held = logbook_journal::HIBERNATE_DOWN_AFTER_MS;
    let after: Vec<&logbook_journal::Envelope> = events.iter().filter(|e| e.seq > from).collect();
    let persist_at = after
        .iter()
        .find(|e| match &e.body {
            Event::Decided { intents } => intents
                .iter()
                .any(|p| matches!(p.intent, Intent::PersistForHibernation { .. })),
            _ => false,
        })
        .map(|e| e.seq)
        .expect("persist decided");
    let holding: std::collections::BTreeSet<&str> = after
        .iter()
        .filter(|e| e.seq < persist_at)
        .filter_map(|e| match &e.body {
            Event::SentinelObserved {
                pod,
                report: Some(r),
                ..
            } if r
                .monitoring
                .as_ref()
                .is_some_and(|m| m.settings.down_after_ms == held) =>
            {
                Some(pod.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        holding.len(),
        3,
        "Sentinels holding before the pause: {holding:?}"
    );
    let mut last = std::collections::BTreeMap::new();
    for e in &after {
        if let Event::SentinelObserved {
            pod,
            report: Some(r),
            ..
        } = &e.body
            && let Some(m) = &r.monitoring
        {
            last.insert(pod.as_str(), m.settings.down_after_ms);
        }
    }
    assert!(
        last.len() == 3 && last.values().all(|ms| *ms != held),
        "the Sentinels' down-after after the wake: {last:?}"
    );
}

/// `<prefix>:<n> = n` for n in 0..count through `addr`, each answered
/// (no replica to wait for).
async fn write_keys_unreplicated(addr: &str, password: &str, prefix: &str, count: u64) {
    let mut con = connect(addr, password).await;
    let mut pipe = redis::pipe();
    for k in 0..count {
        pipe.cmd("SET").arg(format!("{prefix}:{k}")).arg(k).ignore();
    }
    let () = pipe.query_async(&mut con).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_cluster_sleeps_and_wakes_with_its_primary_and_every_write() {
    let mut env = Env::start("hibernate-repl").await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    sleep_and_wake(&mut env, "demo", 3).await;
    env.finish().await;
}

/// A volume lost while asleep: the primary's claim deleted, so it comes
/// back empty. Trusted, it would be made writable and every replica would
/// copy its emptiness (what happened before `PodDataObserved`); it is not
/// given writes, a pod that holds everything is, and every key is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_whose_volume_is_lost_asleep_is_not_given_writes_at_wake() {
    let mut env = Env::start("hibernate-lost").await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    let before = primary(&vkc);
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    // Acknowledged by both replicas (`WAIT 2`).
    let mut con = connect(&service, &password).await;
    let mut pipe = redis::pipe();
    for k in 0..BULK {
        pipe.cmd("SET").arg(format!("bulk:{k}")).arg(k).ignore();
    }
    let () = pipe.query_async(&mut con).await.unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(5000)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(acked, 2, "the bulk was not acknowledged by both replicas");
    drop(con);
    lose_claim_asleep(&env, "demo", &before).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(120)).await;
    let after = primary(&vkc);
    assert_ne!(
        after, before,
        "the primary that lost its volume was given writes"
    );
    for pod in ["demo-0", "demo-1", "demo-2"] {
        let at = env.pod_addr(pod).await;
        env.eventually(
            Duration::from_secs(60),
            &format!("{pod} holds every acknowledged key"),
            || {
                let (at, password) = (at.clone(), password.clone());
                async move { count_missing(&at, &password, "bulk", BULK).await == 0 }
            },
        )
        .await;
    }
    // The journal says what each pod held, then and now.
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let held = |persisted: bool| {
        events
            .iter()
            .filter_map(|e| match &e.body {
                Event::PodDataObserved {
                    pod,
                    keys,
                    persisted: p,
                    ..
                } if *p == persisted => Some((pod.clone(), *keys)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let then = held(true);
    assert_eq!(then.len(), 3, "{then:?}");
    assert!(then.iter().all(|(_, k)| *k >= BULK), "{then:?}");
    let now = held(false);
    assert!(
        now.iter().any(|(p, k)| *p == before && *k == 0),
        "{before} not journaled as back empty: {now:?}"
    );
    env.assert_audit_clean_of("demo").await;
    env.finish().await;
}

/// Cluster `name` hibernated, `pod`'s claim deleted while it sleeps (its
/// volume lost), then asked to wake.
async fn lose_claim_asleep(env: &Env, name: &str, pod: &str) {
    env.patch(name, serde_json::json!({"spec": {"hibernated": true}}))
        .await;
    env.wait_status(name, Duration::from_secs(60), "phase Hibernated", |v| {
        phase(v) == Some(ClusterPhase::Hibernated)
    })
    .await;
    let claims: Api<PersistentVolumeClaim> = env.api();
    let lost = claim_names(env)
        .await
        .into_iter()
        .find(|c| c.ends_with(&format!("-{pod}")))
        .expect("the primary's claim");
    claims.delete(&lost, &Default::default()).await.unwrap();
    env.eventually(Duration::from_secs(30), "the claim is gone", || {
        let (claims, lost) = (claims.clone(), lost.clone());
        async move { claims.get_opt(&lost).await.unwrap().is_none() }
    })
    .await;
    env.patch(name, serde_json::json!({"spec": {"hibernated": false}}))
        .await;
}

/// A replica whose volume went bad asleep (every file garbage: its
/// server exits at load, and the pod crash-loops) holds the wake only for
/// `spec.wakeTimeoutSeconds`: the status names it meanwhile, then the
/// cluster wakes with the other two, its primary the one it slept with,
/// every acknowledged write there and writes taken again; the pod joins
/// once its volume is cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_cannot_come_back_holds_the_wake_only_until_its_deadline() {
    let mut env = Env::start("hibernate-stuck").await;
    let yaml = format!("{}  wakeTimeoutSeconds: 10\n", replication_yaml("demo", 3));
    env.apply_yaml(&yaml).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    let before = primary(&vkc);
    let stuck = ["demo-0", "demo-1", "demo-2"]
        .into_iter()
        .rfind(|p| *p != before)
        .unwrap();
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "bulk", BULK).await;
    let probe = {
        let mut config = logbook_bench::WriteProbeConfig::fixed(&service, "probe");
        config.password = Some(logbook::valkey::Password::new(&password));
        config.wait_replicas = true;
        logbook_bench::WriteProbe::start(config)
    };
    first_acks(&env, &probe).await;
    let asked = Instant::now();
    env.patch("demo", serde_json::json!({"spec": {"hibernated": true}}))
        .await;
    env.wait_status("demo", Duration::from_secs(60), "phase Hibernated", |v| {
        phase(v) == Some(ClusterPhase::Hibernated)
    })
    .await;
    let claim = format!("data-{stuck}");
    env.faults().corrupt_pvc_data(NS, &claim).await.unwrap();

    let woken = Instant::now();
    env.patch("demo", serde_json::json!({"spec": {"hibernated": false}}))
        .await;
    // Waiting, and saying for whom.
    let waiting = env
        .wait_status(
            "demo",
            Duration::from_secs(30),
            "waking, the stuck pod named",
            |v| {
                phase(v) == Some(ClusterPhase::Waking)
                    && v.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.message.contains(stuck))
                    })
            },
        )
        .await;
    assert!(
        woken.elapsed() < Duration::from_secs(10),
        "named only after the deadline"
    );
    eprintln!(
        "demo: {}",
        waiting
            .status
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .message
    );
    // Past the deadline: awake with the two back, writes taken. (Waited
    // for longer than `wait_acked_after`'s 10 s: the wait starts before
    // the 10 s deadline, which must pass first.)
    let waited_from = Instant::now();
    env.eventually(
        Duration::from_secs(30),
        "a write after the partial wake",
        || {
            let ok = probe
                .snapshot()
                .attempts
                .iter()
                .any(|a| a.acked && a.started > waited_from);
            async move { ok }
        },
    )
    .await;
    let took = woken.elapsed();
    eprintln!("demo: writes again {took:?} after it was woken");
    assert!(
        took >= Duration::from_secs(10),
        "woke before its deadline: {took:?}"
    );
    let vkc = env.vkc("demo").await;
    assert_eq!(primary(&vkc), before, "woke with another primary");
    // The stuck pod joins once its volume is cleared (its claim's files
    // gone: it comes back empty and copies the primary).
    env.faults().wipe_pvc_data(NS, &claim).await.unwrap();
    env.wait_ready("demo", 3, Duration::from_secs(120)).await;
    let log = probe.stop().await;
    let at = env.pod_addr(&before).await;
    let (acked, failed) = check_no_acked_write_lost(&log, asked, &at, &password).await;
    for pod in ["demo-0", "demo-1", "demo-2"] {
        let at = env.pod_addr(pod).await;
        env.eventually(
            Duration::from_secs(60),
            &format!("{pod} holds every acknowledged key"),
            || {
                let (at, password) = (at.clone(), password.clone());
                async move { count_missing(&at, &password, "bulk", BULK).await == 0 }
            },
        )
        .await;
    }
    eprintln!("demo: {acked} acknowledged writes kept, {failed} failed");
    // The journal says why it woke without it.
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let partial = events.iter().find_map(|e| match &e.body {
        Event::Decided { intents } => intents.iter().find_map(|p| match &p.intent {
            Intent::Wake { pods, .. } if pods.len() == 2 => Some(p.reason.detail.clone()),
            _ => None,
        }),
        _ => None,
    });
    let detail = partial.expect("no Wake with the two pods back journaled");
    assert!(
        detail.contains(stuck) && detail.contains("10 s"),
        "{detail}"
    );
    env.assert_audit_clean_of("demo").await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standalone_cluster_sleeps_and_wakes_with_every_write() {
    let mut env = Env::start("hibernate-standalone").await;
    env.apply_yaml(&standalone_yaml("solo")).await;
    sleep_and_wake(&mut env, "solo", 1).await;
    env.finish().await;
}

/// A Standalone's volume lost while asleep: its pod comes back empty.
/// Its one pod boots writable (it has no one to follow), but the client
/// Service reaches it only once it is labelled primary, which `Wake`
/// comes first to: its data is read, found short of what it made
/// durable, and it is not labelled. The status says so (`Degraded`,
/// reason `DataLost`), as does a Warning Event, and no write through the
/// Service lands on the empty server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standalone_whose_volume_is_lost_asleep_takes_no_client_at_wake() {
    let env = Env::start("hibernate-standalone-lost").await;
    env.apply_yaml(&standalone_yaml("solo")).await;
    env.wait_ready("solo", 1, Duration::from_secs(60)).await;
    let password = env.password("solo").await;
    let service = env.service_addr("solo").await;
    write_keys_unreplicated(&service, &password, "bulk", BULK).await;
    env.patch("solo", serde_json::json!({"spec": {"hibernated": true}}))
        .await;
    env.wait_status("solo", Duration::from_secs(60), "phase Hibernated", |v| {
        phase(v) == Some(ClusterPhase::Hibernated)
    })
    .await;
    let claims: Api<PersistentVolumeClaim> = env.api();
    claims
        .delete("data-solo-0", &Default::default())
        .await
        .unwrap();
    env.eventually(Duration::from_secs(30), "the claim is gone", || {
        let claims = claims.clone();
        async move { claims.get_opt("data-solo-0").await.unwrap().is_none() }
    })
    .await;
    env.patch("solo", serde_json::json!({"spec": {"hibernated": false}}))
        .await;
    let vkc = env
        .wait_status("solo", Duration::from_secs(90), "Degraded: DataLost", |v| {
            v.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "DataLost")
            })
        })
        .await;
    let status = vkc.status.unwrap();
    assert_eq!(status.phase, Some(ClusterPhase::Waking));
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert!(
        degraded
            .message
            .contains("no pod holds what was made durable"),
        "{}",
        degraded.message
    );
    eprintln!("solo: {}", degraded.message);
    env.eventually(
        Duration::from_secs(20),
        "a DataLost Warning Event",
        || async {
            let events: Api<k8s_openapi::api::events::v1::Event> = env.api();
            events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("DataLost") && e.type_.as_deref() == Some("Warning")
                })
        },
    )
    .await;
    // The pod runs and answers, empty, and is not behind the Service:
    // not labelled primary, a while later still.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pod = env
        .pods("solo")
        .await
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some("solo-0"))
        .expect("solo-0 runs");
    assert_ne!(
        pod.metadata
            .labels
            .unwrap_or_default()
            .get("valkey.logbook.dev/role")
            .map(String::as_str),
        Some("primary"),
        "the empty pod was put behind the client Service"
    );
    let at = env.pod_addr("solo-0").await;
    assert_eq!(
        count_missing(&at, &password, "bulk", BULK).await,
        usize::try_from(BULK).unwrap(),
        "the pod was expected back empty"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standalone_cluster_with_an_append_only_file_sleeps_and_wakes_with_every_write() {
    let mut env = Env::start("hibernate-aof").await;
    env.apply_yaml(&standalone_yaml("solo").replace(
        "  storage:\n    size: 1Gi\n",
        "  storage:\n    size: 1Gi\n    persistence: Aof\n",
    ))
    .await;
    sleep_and_wake(&mut env, "solo", 1).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hibernation_without_persistence_is_refused_in_the_status() {
    let env = Env::start("hibernate-refused").await;
    env.apply_yaml(&replication_yaml("demo", 2)).await;
    env.wait_ready("demo", 2, Duration::from_secs(60)).await;
    env.patch(
        "demo",
        serde_json::json!({"spec": {"hibernated": true, "storage": {"persistence": "None"}}}),
    )
    .await;
    let vkc = env
        .wait_status("demo", Duration::from_secs(30), "SpecValid false", |v| {
            v.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "SpecValid" && c.status == "False")
            })
        })
        .await;
    let message = vkc
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "SpecValid")
        .unwrap()
        .message
        .clone();
    assert!(
        message.contains("spec.hibernated") && message.contains("persistence"),
        "{message}"
    );
    // Refused, so the cluster goes on serving as it was.
    assert_eq!(env.pods("demo").await.len(), 2);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_cluster_sleeps_and_wakes_with_its_primary_and_every_write() {
    let mut env = Env::start("hibernate-sentinel").await;
    env.apply_yaml(&sentinel_yaml("demo")).await;
    sleep_and_wake(&mut env, "demo", 3).await;
    env.finish().await;
}

/// Each pod's node id (`CLUSTER MYID`).
async fn node_ids(env: &Env, password: &str, pods: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..pods {
        let pod = format!("shop-{i}");
        let id = redis_cli(&env.pod_addr(&pod).await, password, &["CLUSTER", "MYID"]);
        out.push((pod, id.trim().to_owned()));
    }
    out
}

/// The shards as the status shows them: primary, replicas and slots.
fn shard_map(vkc: &logbook_crds::ValkeyCluster) -> Vec<String> {
    vkc.status
        .as_ref()
        .unwrap()
        .shards
        .iter()
        .map(|s| format!("{:?} {:?} {:?}", s.primary, s.replicas, s.slots))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_valkey_cluster_sleeps_and_wakes_with_its_node_ids_and_slot_map() {
    const KEYS: u64 = 3000;
    let mut env = Env::start("hibernate-cluster").await;
    env.apply_yaml(&cluster_yaml("shop")).await;
    let vkc = env
        .wait_status("shop", Duration::from_secs(120), "formed", cluster_ready)
        .await;
    let password = env.password("shop").await;
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    let shards_before = shard_map(&vkc);
    let ids_before = node_ids(&env, &password, 6).await;
    let probe = loaded_under_writer(&env, &password, KEYS).await;
    let decided_from = u64::try_from(journal_seq(&env.vkc("shop").await)).unwrap();
    env.patch("shop", serde_json::json!({"spec": {"hibernated": true}}))
        .await;
    env.wait_status("shop", Duration::from_secs(60), "phase Hibernated", |v| {
        phase(v) == Some(ClusterPhase::Hibernated)
    })
    .await;
    assert!(env.pods("shop").await.is_empty());
    env.patch("shop", serde_json::json!({"spec": {"hibernated": false}}))
        .await;
    let woken = Instant::now();
    let vkc = env
        .wait_status(
            "shop",
            Duration::from_secs(120),
            "formed again",
            cluster_ready,
        )
        .await;
    eprintln!("shop: formed {:?} after it was woken", woken.elapsed());
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    assert_eq!(node_ids(&env, &password, 6).await, ids_before, "node ids");
    assert_eq!(shard_map(&vkc), shards_before, "shards and slots");
    let acked_after = probe.acked_count();
    env.eventually(Duration::from_secs(20), "writes after waking", || {
        let n = probe.acked_count();
        async move { n > acked_after + 20 }
    })
    .await;
    stop_and_check_writes(&env, probe, 6, &password, KEYS).await;
    env.stop_operator(Stop::Graceful).await;
    let stream = env.stream("shop").await;
    let events = env.journal_events(&stream).await;
    let decided: Vec<Intent> = events
        .iter()
        .filter(|e| e.seq > decided_from)
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().map(|p| p.intent.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    eprintln!(
        "shop: decided {:?}",
        decided.iter().map(Intent::describe).collect::<Vec<_>>()
    );
    assert!(
        !decided.iter().any(|i| matches!(
            i,
            Intent::ClusterFailover { .. }
                | Intent::FenceNode { .. }
                | Intent::PromoteReplica { .. }
        )),
        "a failover decided: {decided:?}"
    );
    env.finish().await;
}

/// A shard's primary whose claim is deleted while the Valkey Cluster
/// sleeps comes back empty, a node with no id or slots of its own: it
/// must not be given its shard's slots (its replica, which holds what
/// was made durable, would then copy the empty node and lose it all).
/// Woken, the cluster forms again with every loaded key and every
/// acknowledged write, the emptied pod back as a node of the cluster,
/// and the audit clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_node_whose_volume_is_lost_asleep_loses_no_key_at_wake() {
    const KEYS: u64 = 3000;
    let mut env = Env::start("hibernate-cluster-lost").await;
    env.apply_yaml(&cluster_yaml("shop")).await;
    let vkc = env
        .wait_status("shop", Duration::from_secs(120), "formed", cluster_ready)
        .await;
    let password = env.password("shop").await;
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    let lost_pod = vkc.status.as_ref().unwrap().shards[0]
        .primary
        .clone()
        .expect("shard 0's primary");
    let ids_before = node_ids(&env, &password, 6).await;
    let probe = loaded_under_writer(&env, &password, KEYS).await;
    lose_claim_asleep(&env, "shop", &lost_pod).await;
    let woken = Instant::now();
    env.wait_status(
        "shop",
        Duration::from_secs(180),
        "formed again",
        cluster_ready,
    )
    .await;
    eventually_clean(&env, &password, 6, Duration::from_secs(120)).await;
    eprintln!(
        "shop: formed and clean {:?} after it was woken",
        woken.elapsed()
    );
    let ids_after = node_ids(&env, &password, 6).await;
    eprintln!("node ids before {ids_before:?}, after {ids_after:?}");
    let acked_after = probe.acked_count();
    env.eventually(Duration::from_secs(30), "writes after waking", || {
        let n = probe.acked_count();
        async move { n > acked_after + 20 }
    })
    .await;
    stop_and_check_writes(&env, probe, 6, &password, KEYS).await;
    // The journal says why: the lost node's replica took its slots over.
    let stream = env.stream("shop").await;
    env.stop_operator(Stop::Graceful).await;
    let taken_over = env
        .journal_events(&stream)
        .await
        .iter()
        .any(|e| match &e.body {
            Event::Decided { intents } => intents.iter().any(|p| {
                matches!(&p.intent, Intent::ClusterFailover { from, mode, .. }
                if from.as_deref() == Some(lost_pod.as_str())
                    && *mode == logbook_journal::ClusterFailoverMode::Takeover)
                    && p.reason.detail.contains("came back as another node")
            }),
            _ => false,
        });
    assert!(taken_over, "no takeover of {lost_pod}'s slots journaled");
    env.assert_audit_clean_of("shop").await;
    env.finish().await;
}
