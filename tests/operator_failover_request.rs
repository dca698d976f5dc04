//! A failover on request, end to end on localkube with real
//! `valkey-server` pods: a healthy Replication cluster gets the
//! `valkey.logbook.dev/failover-requested` annotation and ends with another
//! primary, the annotation removed, never two pods serving as primary
//! (sampled with `ROLE` all along), the old primary a replica of the new
//! one, no bulk key lost, and `logbook replay audit` clean on its journal,
//! where `replay failovers` shows the change as `requested`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use kube::ResourceExt;
use logbook::cli::{Cli, run};
use logbook::journal_store::JournalBackend;
use logbook_journal::{Event, Intent, ReasonCode};
use operator_common::*;

const ANNOTATION: &str = "valkey.logbook.dev/failover-requested";
const BULK: u64 = 2_000;

/// Runs `logbook <args>` on a blocking thread; returns the result and the
/// output.
async fn logbook(args: Vec<String>) -> (Result<(), logbook::cli::Error>, String) {
    tokio::task::spawn_blocking(move || {
        let cli = Cli::try_parse_from(std::iter::once("logbook".to_owned()).chain(args)).unwrap();
        let mut out = Vec::new();
        let result = run(cli, &mut out);
        (result, String::from_utf8(out).unwrap())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_failover_moves_a_healthy_primary_and_clears_the_request() {
    let mut env = Env::start_without_operator("failover-request").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old = primary(&vkc);
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "bulk", BULK).await;

    let mut addrs = Vec::new();
    for pod in env.pods("demo").await {
        addrs.push(env.pod_addr(&pod.name_any()).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_roles(addrs, password.clone(), stop.clone());

    env.patch(
        "demo",
        serde_json::json!({"metadata": {"annotations": {ANNOTATION: "2026-11-22T10:00:00Z"}}}),
    )
    .await;
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(30))
        .await;
    let new = primary(&moved);
    env.wait_status(
        "demo",
        Duration::from_secs(20),
        "the request removed",
        |v| !v.annotations().contains_key(ANNOTATION),
    )
    .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    stop.store(true, Ordering::Relaxed);
    let doubles = sampler.await.unwrap();
    assert!(doubles.is_empty(), "two primaries at once: {doubles:?}");
    assert_eq!(primary(&vkc), new, "the primary moved again");
    let last = vkc.status.as_ref().unwrap().last_failover.clone().unwrap();
    assert_eq!(last.from.as_deref(), Some(old.as_str()));
    assert_eq!(last.to.as_deref(), Some(new.as_str()));

    // The old primary follows the new one and has every bulk key.
    let new_addr = env.pod_addr(&new).await;
    let new_ip = new_addr.rsplit_once(':').unwrap().0.to_owned();
    let old_addr = env.pod_addr(&old).await;
    env.eventually(
        Duration::from_secs(15),
        "the old primary in sync with the new",
        || {
            let (old_addr, password) = (old_addr.clone(), password.clone());
            async move {
                info_field(&old_addr, &password, "master_link_status")
                    .await
                    .as_deref()
                    == Some("up")
            }
        },
    )
    .await;
    assert_eq!(
        role(&old_addr, &password).await,
        ("slave".to_owned(), Some(new_ip))
    );
    assert_eq!(count_missing(&new_addr, &password, "bulk", BULK).await, 0);

    // The journal: a decision for the request, then the promotion and the
    // clearing, all for Requested.
    let stream = env.stream("demo").await;
    let events = env.journal_events(&stream).await;
    let requested: Vec<&Intent> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents),
            _ => None,
        })
        .flatten()
        .filter(|p| p.reason.code == ReasonCode::Requested)
        .map(|p| &p.intent)
        .collect();
    assert_eq!(
        requested.first(),
        Some(&&Intent::FenceNode { pod: old.clone() }),
        "{requested:?}"
    );
    assert!(requested.contains(&&Intent::PromoteReplica {
        pod: new.clone(),
        from: Some(old.clone())
    }));
    assert!(requested.contains(&&Intent::ClearFailoverRequest));
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, Event::FailoverRequestObserved { request: None }))
    );
    assert!(env.journal_state(&stream).await.failover_request.is_none());

    // The replay tool: the audit is clean; the failover is `requested`.
    let kubeconfig = env.write_kubeconfig();
    let source = |verb: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = std::iter::once("replay")
            .chain(verb.iter().copied())
            .map(str::to_owned)
            .collect();
        args.extend(
            [
                "--namespace",
                NS,
                "--cluster",
                "demo",
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
            ]
            .map(str::to_owned),
        );
        args
    };
    let (audit, printed) = logbook(source(&["audit"])).await;
    assert!(audit.is_ok(), "audit: {audit:?}\n{printed}");
    let (failovers, printed) = logbook(source(&["failovers", "--json"])).await;
    failovers.unwrap();
    let records: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let last = records.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "requested", "{printed}");
    assert_eq!(last["old_primary"], old.as_str(), "{printed}");
    assert_eq!(last["new_primary"], new.as_str(), "{printed}");
    assert_eq!(last["outcome"]["state"], "completed", "{printed}");
    env.finish().await;
}
