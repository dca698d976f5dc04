//! Upgrades of the Valkey version on real servers (8.0.1 and 9.1.2, both
//! built here): a preflight of the new image before anything rolls, a
//! canary watched for `upgrade.canarySeconds`, then the rest, primaries
//! last by hand-over, under a writer that loses no acknowledged write; a
//! config the new version refuses stops it before anything rolls; a
//! canary that fails (a downgrade its primary cannot copy its data to)
//! holds the roll, and setting the image back rolls it back; a canary
//! set back after it wrote the new version's files comes back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use logbook_journal::{Envelope, Event, Intent};
use operator_common::*;

const OLD: &str = "valkey/valkey:8.0";
const NEW: &str = "valkey/valkey:9.1";
const CANARY_SECONDS: i64 = 5;

/// The `valkey_version` each pod's server says.
async fn versions(env: &Env, name: &str, password: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pod in env.pods(name).await {
        let pod = pod.name_any();
        let info = redis_cli(&env.pod_addr(&pod).await, password, &["INFO", "server"]);
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("valkey_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned();
        out.push((pod, version));
    }
    out.sort();
    out
}

fn upgrade_phase(vkc: &logbook_crds::ValkeyCluster) -> Option<String> {
    vkc.status
        .as_ref()
        .and_then(|s| s.upgrade.as_ref())
        .map(|u| u.phase.clone())
}

fn uids(pods: &[Pod]) -> Vec<(String, String)> {
    let mut out: Vec<_> = pods
        .iter()
        .map(|p| (p.name_any(), p.metadata.uid.clone().unwrap_or_default()))
        .collect();
    out.sort();
    out
}

/// Every decision after seq `from`, with the time it was journaled.
fn decided_after(events: &[Envelope], from: u64) -> Vec<(logbook_journal::Timestamp, Intent)> {
    events
        .iter()
        .filter(|e| e.seq > from)
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().map(|p| (e.at, p.intent.clone()))),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The journal of an upgrade from seq `from`: the preflight decided and
/// answered with 9.1.2, the canary (the first pod rolled) watched for
/// the soak before anything else rolled, and no failover.
fn check_upgrade_journal(events: &[Envelope], from: u64) {
    let decided = decided_after(events, from);
    eprintln!(
        "decided: {:#?}",
        decided
            .iter()
            .map(|(_, i)| i.describe())
            .collect::<Vec<_>>()
    );
    assert!(
        decided
            .iter()
            .any(|(_, i)| matches!(i, Intent::PreflightImage { image, .. } if image == NEW)),
        "no preflight decided"
    );
    let preflighted = events.iter().find_map(|e| match &e.body {
        Event::ImagePreflighted { image, version, .. } if image == NEW => version.clone(),
        _ => None,
    });
    assert_eq!(preflighted.as_deref(), Some("9.1.2"));
    // The canary: the first pod rolled; what rolls or hands over next is
    // decided only after it ran 9.1.2 for the soak.
    let rolled: Vec<(logbook_journal::Timestamp, String)> = decided
        .iter()
        .filter_map(|(at, i)| match i {
            Intent::RollPod { pod, .. } => Some((*at, pod.clone())),
            Intent::Switchover { .. } | Intent::ClusterFailover { .. } => {
                Some((*at, "hand-over".to_owned()))
            }
            _ => None,
        })
        .collect();
    let canary = &rolled.first().expect("nothing rolled").1;
    let since = events
        .iter()
        .find_map(|e| match &e.body {
            Event::ServerVersionObserved { pod, version, .. }
                if pod == canary && version == "9.1.2" =>
            {
                Some(e.at)
            }
            _ => None,
        })
        .expect("the canary's version observed");
    let next = rolled.get(1).expect("only the canary rolled").0;
    let soaked = (next.0 - since.0) / 1000;
    eprintln!("canary {canary}: the next step {soaked} ms after it answered on 9.1.2");
    assert!(
        soaked >= CANARY_SECONDS * 1000,
        "the roll went on {soaked} ms after the canary answered"
    );
    let failovers: Vec<_> = decided
        .iter()
        .filter(|(_, i)| {
            matches!(
                i,
                Intent::FenceNode { .. }
                    | Intent::PromoteReplica { .. }
                    | Intent::SentinelFailover { .. }
            ) || matches!(
                i,
                Intent::ClusterFailover { mode, .. }
                    if *mode != logbook_journal::ClusterFailoverMode::Coordinated
            )
        })
        .collect();
    assert!(failovers.is_empty(), "a failover decided: {failovers:?}");
}

fn with_image(yaml: &str, image: &str) -> String {
    yaml.replace(
        "  storage:\n",
        &format!("  image: {image}\n  upgrade:\n    canarySeconds: {CANARY_SECONDS}\n  storage:\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_cluster_upgrades_from_8_0_to_9_1_behind_a_canary_under_a_writer() {
    let mut env = Env::start("upgrade-repl").await;
    env.apply_yaml(&with_image(&replication_yaml("demo", 3), OLD))
        .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    assert!(
        versions(&env, "demo", &password)
            .await
            .iter()
            .all(|(_, v)| v == "8.0.1")
    );
    let probe = bulk_then_writer(&env, &service, &password, 2000).await;
    let from = u64::try_from(journal_seq(&vkc)).unwrap();
    let asked = Instant::now();
    env.patch("demo", serde_json::json!({"spec": {"image": NEW}}))
        .await;
    env.wait_status("demo", Duration::from_secs(30), "the canary", |v| {
        upgrade_phase(v).as_deref() == Some("Canary")
    })
    .await;
    let vkc = env
        .wait_status("demo", Duration::from_secs(180), "upgraded", |v| {
            is_ready(v, 3) && v.status.as_ref().is_some_and(|s| s.upgrade.is_none())
        })
        .await;
    eprintln!("demo: upgraded {:?} after it was asked", asked.elapsed());
    let now = versions(&env, "demo", &password).await;
    assert!(now.iter().all(|(_, v)| v == "9.1.2"), "{now:?}");
    let at = env.pod_addr(&primary(&vkc)).await;
    let (acked, failed) = stop_writer_and_check(
        &env,
        probe,
        "a write after the upgrade",
        asked,
        &at,
        &password,
        2000,
    )
    .await;
    eprintln!("demo: {acked} acknowledged writes kept, {failed} failed");
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    check_upgrade_journal(&env.journal_events(&stream).await, from);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_valkey_cluster_upgrades_from_8_0_to_9_1_behind_a_canary_under_a_writer() {
    const KEYS: u64 = 3000;
    let mut env = Env::start("upgrade-cluster").await;
    env.apply_yaml(&with_image(&cluster_yaml("shop"), OLD))
        .await;
    env.wait_status("shop", Duration::from_secs(120), "formed", cluster_ready)
        .await;
    let password = env.password("shop").await;
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    let probe = loaded_under_writer(&env, &password, KEYS).await;
    let from = u64::try_from(journal_seq(&env.vkc("shop").await)).unwrap();
    let asked = Instant::now();
    env.patch("shop", serde_json::json!({"spec": {"image": NEW}}))
        .await;
    env.wait_status("shop", Duration::from_secs(300), "upgraded", |v| {
        cluster_ready(v) && v.status.as_ref().is_some_and(|s| s.upgrade.is_none())
    })
    .await;
    eprintln!("shop: upgraded {:?} after it was asked", asked.elapsed());
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    let now = versions(&env, "shop", &password).await;
    assert!(now.iter().all(|(_, v)| v == "9.1.2"), "{now:?}");
    let acked_after = probe.acked_count();
    env.eventually(Duration::from_secs(20), "writes after the upgrade", || {
        let n = probe.acked_count();
        async move { n > acked_after + 20 }
    })
    .await;
    let log = probe.snapshot();
    let slowest = log
        .attempts
        .iter()
        .filter(|a| a.started >= asked)
        .map(|a| a.ended.saturating_duration_since(a.started))
        .max();
    eprintln!("shop: the slowest write during the upgrade took {slowest:?}");
    stop_and_check_writes(&env, probe, 6, &password, KEYS).await;
    let stream = env.stream("shop").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    check_upgrade_journal(&events, from);
    // Each shard handed over once: a coordinated failover that does not
    // complete leaves its primary's writes paused for Valkey's manual
    // failover timeout (5 s) before it is tried again.
    // A failover the executor held back before sending anything (a
    // replica not ready for it yet: "nothing sent, no write paused") is
    // decided again at no cost, and is not counted.
    let held_back: Vec<uuid::Uuid> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::IntentFailed {
                intent_id, error, ..
            } if error.contains("nothing sent, no write paused") => Some(*intent_id),
            _ => None,
        })
        .collect();
    let handovers: Vec<String> = events
        .iter()
        .filter(|e| e.seq > from)
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter()),
            _ => None,
        })
        .flatten()
        .filter(|p| matches!(p.intent, Intent::ClusterFailover { .. }))
        .filter(|p| !held_back.contains(&p.intent_id))
        .map(|p| p.intent.describe())
        .collect();
    eprintln!(
        "failovers held back before anything was sent: {}",
        held_back.len()
    );
    assert_eq!(handovers.len(), 3, "{handovers:#?}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_config_the_new_version_refuses_stops_the_upgrade_before_anything_rolls() {
    let env = Env::start("upgrade-refused").await;
    // A 9.x directive (the command log), which 8.0 does not know: going
    // to 8.0 with it cannot work.
    let yaml = with_image(&replication_yaml("demo", 2), NEW).replace(
        "  storage:\n",
        "  config:\n    commandlog-execution-slower-than: \"20000\"\n  storage:\n",
    );
    env.apply_yaml(&yaml).await;
    env.wait_ready("demo", 2, Duration::from_secs(60)).await;
    let before = uids(&env.pods("demo").await);
    env.patch("demo", serde_json::json!({"spec": {"image": OLD}}))
        .await;
    let vkc = env
        .wait_status("demo", Duration::from_secs(60), "upgrade refused", |v| {
            upgrade_phase(v).as_deref() == Some("Refused")
        })
        .await;
    let upgrade = vkc.status.as_ref().unwrap().upgrade.clone().unwrap();
    eprintln!("demo: {upgrade:?}");
    assert!(
        upgrade.message.contains("commandlog-execution-slower-than")
            && upgrade.message.contains("nothing rolled"),
        "{}",
        upgrade.message
    );
    // Refused as a spec the operator cannot honour: SpecValid false, not
    // progressing, and a Warning Event.
    for kind in ["SpecValid", "Progressing"] {
        let c = vkc
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "UpgradeRefused"),
            "{kind}"
        );
    }
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    env.eventually(Duration::from_secs(10), "a Warning SpecRejected", || {
        let events = events.clone();
        async move {
            events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("SpecRejected")
                        && e.note.as_deref().is_some_and(|n| n.contains("preflight"))
                })
        }
    })
    .await;
    // Nothing rolled, nothing was applied: the same pods on 9.1, the
    // StatefulSet still names 9.1, the preflight pod gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(uids(&env.pods("demo").await), before);
    let sets: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> = env.api();
    let sts = sets.get("demo").await.unwrap();
    let image = sts.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some(NEW));
    let pods: kube::Api<Pod> = env.api();
    env.eventually(Duration::from_secs(10), "the preflight pod gone", || {
        let pods = pods.clone();
        async move { pods.get_opt("demo-preflight").await.unwrap().is_none() }
    })
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_that_fails_holds_the_roll_and_the_image_set_back_rolls_it_back() {
    let env = Env::start("upgrade-canary").await;
    env.apply_yaml(&with_image(&replication_yaml("demo", 3), NEW))
        .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    // A hash field with a TTL (9.x): 8.0 cannot hold it, so the 9.1
    // primary cannot send an 8.0 replica a full copy ("Can't store key
    // in RDB version 11"): the canary never gets in sync.
    let hsetex = redis_cli(
        &env.pod_addr(&primary(&vkc)).await,
        &password,
        &[
            "HSETEX", "session", "EX", "100000", "FIELDS", "1", "token", "t",
        ],
    );
    assert_eq!(hsetex.trim(), "1", "{hsetex}");
    let probe = bulk_then_writer(&env, &service, &password, 2000).await;
    let asked = Instant::now();
    let primary_before = primary(&vkc);
    env.patch("demo", serde_json::json!({"spec": {"image": OLD}}))
        .await;
    let vkc = env
        .wait_status("demo", Duration::from_secs(90), "the canary failed", |v| {
            upgrade_phase(v).as_deref() == Some("CanaryFailed")
        })
        .await;
    let upgrade = vkc.status.as_ref().unwrap().upgrade.clone().unwrap();
    eprintln!("demo: {upgrade:?}");
    let canary = upgrade.canary.clone().unwrap();
    assert_ne!(canary, primary_before, "the canary is a replica");
    assert!(
        upgrade.message.contains("set image back"),
        "{}",
        upgrade.message
    );
    // Held: the others still run 9.1 a while later.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = versions(&env, "demo", &password).await;
    let others: Vec<_> = held.iter().filter(|(p, _)| *p != canary).collect();
    assert!(
        others.iter().all(|(_, v)| v == "9.1.2"),
        "the roll went on past a failed canary: {held:?}"
    );
    // Set back: the canary rolls back, and all is as it was.
    env.patch("demo", serde_json::json!({"spec": {"image": NEW}}))
        .await;
    let vkc = env
        .wait_status("demo", Duration::from_secs(90), "rolled back", |v| {
            is_ready(v, 3) && v.status.as_ref().is_some_and(|s| s.upgrade.is_none())
        })
        .await;
    eprintln!(
        "demo: rolled back {:?} after the upgrade was asked",
        asked.elapsed()
    );
    let now = versions(&env, "demo", &password).await;
    assert!(now.iter().all(|(_, v)| v == "9.1.2"), "{now:?}");
    assert_eq!(primary(&vkc), primary_before, "the primary never moved");
    let at = env.pod_addr(&primary_before).await;
    stop_writer_and_check(
        &env,
        probe,
        "a write after the rollback",
        asked,
        &at,
        &password,
        2000,
    )
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_set_back_to_8_0_after_it_wrote_9_1_files_comes_back_with_every_write() {
    let env = Env::start("upgrade-back").await;
    // A soak long enough to set the image back while the canary runs.
    env.apply_yaml(&with_image(&replication_yaml("demo", 3), OLD).replace(
        &format!("canarySeconds: {CANARY_SECONDS}"),
        "canarySeconds: 600",
    ))
    .await;
    env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let probe = bulk_then_writer(&env, &service, &password, 2000).await;
    let asked = Instant::now();
    env.patch("demo", serde_json::json!({"spec": {"image": NEW}}))
        .await;
    let vkc_canary = env
        .wait_status("demo", Duration::from_secs(60), "the canary", |v| {
            upgrade_phase(v).as_deref() == Some("Canary")
                && v.status
                    .as_ref()
                    .and_then(|s| s.upgrade.as_ref())
                    .is_some_and(|u| u.message.contains("watched"))
        })
        .await;
    let canary = vkc_canary.status.unwrap().upgrade.unwrap().canary.unwrap();
    // Its files now in 9.1's format, which 8.0 cannot read.
    redis_cli(&env.pod_addr(&canary).await, &password, &["SAVE"]);
    env.patch("demo", serde_json::json!({"spec": {"image": OLD}}))
        .await;
    let vkc = env
        .wait_status("demo", Duration::from_secs(90), "set back", |v| {
            is_ready(v, 3) && v.status.as_ref().is_some_and(|s| s.upgrade.is_none())
        })
        .await;
    eprintln!(
        "demo: back on 8.0 {:?} after the upgrade was asked",
        asked.elapsed()
    );
    let now = versions(&env, "demo", &password).await;
    assert!(now.iter().all(|(_, v)| v == "8.0.1"), "{now:?}");
    let failing = vkc
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .any(|c| c.reason == "ContainerFailing");
    assert!(!failing, "{:?}", vkc.status);
    let at = env.pod_addr(&primary(&vkc)).await;
    stop_writer_and_check(
        &env,
        probe,
        "a write after going back",
        asked,
        &at,
        &password,
        2000,
    )
    .await;
    // And the canary holds them too, resynchronised from its primary.
    assert_eq!(
        count_missing(&env.pod_addr(&canary).await, &password, "bulk", 2000).await,
        0
    );
    env.finish().await;
}
