//! The operator's memory is its journal: stopped while the primary dies,
//! or crashed in the middle of a failover, it starts again on the same
//! sled journal and converges with no acknowledged write lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams};
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
    first_acks(&env, &probe).await;

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
        .wait_primary_moved("demo", &old, Duration::from_secs(20))
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
    assert_eq!(state.replication.primary.as_deref(), Some(new.as_str()));
    assert!(
        state.in_flight.is_empty(),
        "intents left in flight: {:?}",
        state.in_flight
    );
    let operator_events = env.journal_events(&StreamId::operator()).await;
    // Each of the two instances journaled its start; one whose short
    // lease starved on a loaded machine journals a second term too.
    let mut started: Vec<&str> = operator_events
        .iter()
        .filter_map(|e| match &e.body {
            Event::OperatorStarted { instance, .. } => Some(instance.as_str()),
            _ => None,
        })
        .collect();
    started.dedup();
    assert_eq!(
        started.len(),
        2,
        "instances that journaled their start: {started:?}"
    );
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
    let found_done: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::IntentSucceeded { detail, .. } if detail.starts_with("found done") => {
                Some(detail.as_str())
            }
            _ => None,
        })
        .collect();
    eprintln!(
        "{how:?}: {abandoned} intents abandoned at the restart; promotions {promotions:?}; found done {found_done:?}"
    );
    // One bootstrap and one failover: the failover's promotion journaled,
    // or — when the crash came between the promotion and its record —
    // found done by the next instance from what it observed.
    let failover_found_done = found_done
        .iter()
        .any(|d| d.contains(&format!("{new} is observed as primary")));
    assert!(
        promotions.len() == 2 || (promotions.len() == 1 && failover_found_done),
        "one bootstrap and one failover: {promotions:?}, found done {found_done:?}"
    );
    // The takeover is in the cluster's own stream, with the gap.
    let takeovers = events
        .iter()
        .filter(|e| {
            matches!(
                e.body,
                Event::OperatorStarted {
                    gap_ms: Some(_),
                    ..
                }
            )
        })
        .count();
    assert!(takeovers >= 1, "no OperatorStarted in the cluster's stream");
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
