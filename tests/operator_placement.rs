//! `placement: Preferred` on real servers: after a primary's pod is
//! deleted and failed over, the primary role goes back to its preferred
//! pod by a planned hand-over once that pod is back and in sync and the
//! hold-down has passed, journaled with the reason `FailBack`, under a
//! writer that loses no acknowledged write.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use logbook_journal::{Envelope, Event, Intent, ReasonCode};
use operator_common::*;

/// The fail-back decisions of the journal, with the pod each moves to.
fn fail_backs(events: &[Envelope]) -> Vec<(Intent, String)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => {
                Some(intents.iter().filter_map(|p| match &p.reason.code {
                    ReasonCode::FailBack { pod }
                        if matches!(
                            p.intent,
                            Intent::Switchover { .. } | Intent::ClusterFailover { .. }
                        ) =>
                    {
                        Some((p.intent.clone(), pod.clone()))
                    }
                    _ => None,
                }))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// The outcome of each fail-back decision, in order: `Ok` succeeded,
/// `Err` with why it failed.
fn fail_back_outcomes(events: &[Envelope]) -> Vec<Result<(), String>> {
    let ids: Vec<uuid::Uuid> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().filter_map(|p| {
                (matches!(p.reason.code, ReasonCode::FailBack { .. })
                    && matches!(p.intent, Intent::Switchover { .. }))
                .then_some(p.intent_id)
            })),
            _ => None,
        })
        .flatten()
        .collect();
    ids.iter()
        .map(|id| {
            events
                .iter()
                .find_map(|e| match &e.body {
                    Event::IntentSucceeded { intent_id, .. } if intent_id == id => Some(Ok(())),
                    Event::IntentFailed {
                        intent_id, error, ..
                    } if intent_id == id => Some(Err(error.clone())),
                    Event::IntentAbandoned { intent_id, .. } if intent_id == id => {
                        Some(Err("abandoned".to_owned()))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| Err("no outcome".to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_primary_goes_back_to_its_preferred_pod_after_a_failover() {
    let mut env = Env::start("placement-repl").await;
    env.apply_yaml(
        &replication_yaml("demo", 3)
            .replace("  storage:\n", "  placement: Preferred\n  storage:\n"),
    )
    .await;
    // Bootstrap waits only for pods that run: on a loaded machine demo-0
    // can start after demo-1 has been made the first primary, and the
    // placement then moves the role to demo-0 once the hold-down passed.
    env.wait_status("demo", Duration::from_secs(120), "ready on demo-0", |v| {
        is_ready(v, 3) && primary(v) == "demo-0"
    })
    .await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let probe = bulk_then_writer(&env, &service, &password, 2000).await;
    let asked = Instant::now();
    env.delete_pod("demo-0").await;
    env.wait_status("demo", Duration::from_secs(30), "failed over", |v| {
        v.status
            .as_ref()
            .and_then(|s| s.primary.as_deref())
            .is_some_and(|p| p != "demo-0")
    })
    .await;
    let vkc = env
        .wait_status("demo", Duration::from_secs(120), "back on demo-0", |v| {
            is_ready(v, 3) && primary(v) == "demo-0"
        })
        .await;
    eprintln!(
        "demo: back on demo-0 {:?} after its pod was deleted",
        asked.elapsed()
    );
    let at = env.pod_addr(&primary(&vkc)).await;
    stop_writer_and_check(
        &env,
        probe,
        "a write after the fail-back",
        asked,
        &at,
        &password,
        2000,
    )
    .await;
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    // From the failover of the deleted demo-0 on (a fail-back before it,
    // after a bootstrap onto demo-1, is not the one under test).
    let failover = events
        .iter()
        .position(|e| {
            match &e.body {
            Event::Decided { intents } => intents.iter().any(|p| {
                matches!(&p.intent, Intent::PromoteReplica { from: Some(f), .. } if f == "demo-0")
            }),
            _ => false,
        }
        })
        .expect("the failover of demo-0 is journaled");
    let events = &events[failover..];
    let back = fail_backs(events);
    eprintln!("demo: {back:?}");
    assert!(!back.is_empty(), "no fail-back");
    assert!(
        back.iter()
            .all(|(i, _)| matches!(i, Intent::Switchover { to, .. } if to == "demo-0")),
        "{back:?}"
    );
    // One fail-back, or, on a loaded machine, one that succeeded after
    // others that failed (each says why): never two that moved the role.
    let outcomes = fail_back_outcomes(events);
    eprintln!("demo: fail-back outcomes {outcomes:?}");
    let succeeded = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(succeeded, 1, "{outcomes:?}");
    assert!(outcomes.last().is_some_and(Result::is_ok), "{outcomes:?}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_shard_goes_back_to_its_preferred_pod_after_a_failover() {
    const KEYS: u64 = 3000;
    let mut env = Env::start("placement-cluster").await;
    env.apply_yaml(
        &cluster_yaml("shop").replace("  storage:\n", "  placement: Preferred\n  storage:\n"),
    )
    .await;
    let vkc = env
        .wait_status("shop", Duration::from_secs(120), "formed", cluster_ready)
        .await;
    let primaries_before = primaries(&vkc);
    assert!(
        primaries_before.contains(&"shop-0".to_owned()),
        "{primaries_before:?}"
    );
    let password = env.password("shop").await;
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    let probe = loaded_under_writer(&env, &password, KEYS).await;
    let asked = Instant::now();
    env.delete_pod("shop-0").await;
    env.wait_status("shop", Duration::from_secs(60), "failed over", |v| {
        !primaries(v).contains(&"shop-0".to_owned()) && primaries(v).len() == 3
    })
    .await;
    env.wait_status("shop", Duration::from_secs(150), "back on shop-0", |v| {
        cluster_ready(v) && {
            let mut now = primaries(v);
            now.sort();
            let mut before = primaries_before.clone();
            before.sort();
            now == before
        }
    })
    .await;
    eprintln!(
        "shop: the primaries back where they were {:?} after shop-0 was deleted",
        asked.elapsed()
    );
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    stop_and_check_writes(&env, probe, 6, &password, KEYS).await;
    let stream = env.stream("shop").await;
    env.stop_operator(Stop::Graceful).await;
    let back = fail_backs(&env.journal_events(&stream).await);
    eprintln!("shop: {back:?}");
    assert!(
        back.iter().any(|(i, pod)| pod == "shop-0"
            && matches!(i, Intent::ClusterFailover { pod, .. } if pod == "shop-0")),
        "{back:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_valkey_rebalance_moves_a_cluster_shard_back_at_once() {
    const KEYS: u64 = 3000;
    let mut env = Env::start("rebalance-cluster").await;
    // placement Any: the failover's result stays until a rebalance.
    env.apply_yaml(&cluster_yaml("shop")).await;
    let vkc = env
        .wait_status("shop", Duration::from_secs(120), "formed", cluster_ready)
        .await;
    let mut before = primaries(&vkc);
    before.sort();
    let password = env.password("shop").await;
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    let probe = loaded_under_writer(&env, &password, KEYS).await;
    env.delete_pod("shop-0").await;
    env.wait_status("shop", Duration::from_secs(60), "failed over", |v| {
        !primaries(v).contains(&"shop-0".to_owned()) && primaries(v).len() == 3
    })
    .await;
    env.wait_status("shop", Duration::from_secs(60), "shop-0 back", |v| {
        cluster_ready(v)
    })
    .await;
    let said = kubectl_valkey(&env, &["rebalance", "shop"]).await;
    assert!(said.contains("rebalance requested"), "{said}");
    let asked = Instant::now();
    env.wait_status(
        "shop",
        Duration::from_secs(60),
        "primaries back, request served",
        |v| {
            let mut now = primaries(v);
            now.sort();
            let served = !v
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("valkey.logbook.dev/rebalance-requested"));
            cluster_ready(v) && now == before && served
        },
    )
    .await;
    eprintln!(
        "shop: rebalanced {:?} after kubectl valkey rebalance",
        asked.elapsed()
    );
    eventually_clean(&env, &password, 6, Duration::from_secs(60)).await;
    stop_and_check_writes(&env, probe, 6, &password, KEYS).await;
    let stream = env.stream("shop").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let moves: Vec<&Intent> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().filter_map(|p| {
                matches!(p.reason.code, ReasonCode::Rebalance { .. }).then_some(&p.intent)
            })),
            _ => None,
        })
        .flatten()
        .collect();
    eprintln!("shop: {moves:?}");
    assert!(
        moves
            .iter()
            .any(|i| matches!(i, Intent::ClusterFailover { pod, .. } if pod == "shop-0")),
        "{moves:?}"
    );
    assert!(fail_backs(&events).is_empty(), "placement Any failed back");
    env.assert_audit_clean().await;
    env.finish().await;
}
