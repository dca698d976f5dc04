//! `logbook replay` on a live cluster's ConfigMap journal, through the
//! real kube-rs client and the real `kubectl`-style kubeconfig: a
//! Replication cluster on localkube with real `valkey-server` pods fails
//! over; then every verb and every export format runs against
//! `--namespace/--cluster` (and against the sled mirror and the JSONL
//! export), and
//!
//! - the API server saw only GETs from the replay commands (read-only,
//!   with get and list),
//! - no output of any verb or format contains the cluster's password,
//! - the live journal, its JSONL export and the retained journal after the
//!   cluster is deleted all give the same failovers and a clean audit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::Duration;

use clap::Parser;
use kube::api::DeleteParams;
use logbook::cli::{Cli, Error, run};
use logbook::journal_store::JournalBackend;
use operator_common::*;
use serde_json::Value;

/// Runs `logbook <args>` on a blocking thread (the command builds its own
/// runtime); returns the result and the output.
async fn cli(args: Vec<String>) -> (Result<(), Error>, String) {
    tokio::task::spawn_blocking(move || {
        let cli =
            Cli::try_parse_from(std::iter::once("logbook".to_owned()).chain(args.clone())).unwrap();
        let mut out = Vec::new();
        let result = run(cli, &mut out);
        let printed = String::from_utf8(out).unwrap();
        eprintln!(
            "$ logbook {}\n{}=> {result:?}\n",
            args.join(" "),
            printed.chars().take(3000).collect::<String>()
        );
        (result, printed)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_a_live_configmap_journal_with_gets_only_and_never_prints_the_password() {
    let mut env = Env::start_without_operator("replay-live").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old = primary(&vkc);
    let password = env.password("demo").await;
    assert!(password.len() >= 16, "a real generated password");
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "k", 200).await;
    env.kill(&old).await;
    env.eventually(Duration::from_secs(40), "a failover", || async {
        let vkc = env.vkc("demo").await;
        is_ready(&vkc, 3) && primary(&vkc) != old
    })
    .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let new = primary(&vkc);
    let kubeconfig = env.write_kubeconfig();
    let source = |verb: &[&str]| -> Vec<String> {
        let mut args = vec!["replay".to_owned()];
        args.extend(verb.iter().map(|s| (*s).to_owned()));
        args.extend([
            "--namespace".to_owned(),
            NS.to_owned(),
            "--cluster".to_owned(),
            "demo".to_owned(),
            "--kubeconfig".to_owned(),
            kubeconfig.to_str().unwrap().to_owned(),
        ]);
        args
    };
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("demo.jsonl");
    let html = tmp.path().join("demo.html");

    // Every verb and format, with the cluster live but the operator
    // stopped, so that every request the API server answers meanwhile is
    // the replay's (the kubelet's node Lease heartbeat aside): only GETs.
    env.stop_operator(Stop::Graceful).await;
    let log = env.api_requests();
    let mark = log.total();
    let mut outputs: Vec<(String, String)> = Vec::new();
    for verb in [
        vec!["verify"],
        vec!["timeline"],
        vec!["failovers"],
        vec!["failovers", "--json"],
        vec!["reshards"],
        vec!["state", "--at", "20"],
        vec!["audit"],
        vec!["audit", "--json"],
        vec!["export", "--format", "csv"],
        vec!["export", "--format", "jsonl"],
    ] {
        let (result, printed) = cli(source(&verb)).await;
        result.unwrap_or_else(|e| panic!("replay {verb:?}: {e}"));
        outputs.push((verb.join(" "), printed));
    }
    let (result, _) = cli(source(&[
        "export",
        "--format",
        "jsonl",
        "--output",
        export.to_str().unwrap(),
    ]))
    .await;
    result.unwrap();
    let (result, _) = cli(source(&[
        "export",
        "--format",
        "html",
        "--output",
        html.to_str().unwrap(),
    ]))
    .await;
    result.unwrap();
    let requests = log.since(mark);
    let not_reads: Vec<_> = requests
        .iter()
        .filter(|r| r.method != "GET" && !r.uri.contains("/namespaces/kube-node-lease/leases/"))
        .collect();
    assert!(
        not_reads.is_empty(),
        "not reads while replaying: {not_reads:#?}"
    );
    let watches: Vec<_> = requests
        .iter()
        .filter(|r| r.uri.contains("watch="))
        .collect();
    assert!(watches.is_empty(), "watches while replaying: {watches:#?}");
    let reads = requests
        .iter()
        .filter(|r| r.method == "GET" && r.uri.contains("configmaps"))
        .count();
    assert!(reads > 0, "the replay read the ConfigMaps");

    // The failover, as the live journal tells it.
    let failovers: Value = serde_json::from_str(&outputs[3].1).unwrap();
    let records = failovers.as_array().unwrap();
    let last = records.last().unwrap();
    assert_eq!(last["kind"], "automatic", "{failovers:#}");
    assert_eq!(last["old_primary"], old.as_str());
    assert_eq!(last["new_primary"], new.as_str());
    assert_eq!(last["outcome"]["state"], "completed");
    let audit: Value = serde_json::from_str(&outputs[7].1).unwrap();
    assert_eq!(audit["findings"], Value::Array(vec![]), "{audit:#}");
    assert_eq!(audit["cluster"], format!("{NS}/demo"));
    assert!(outputs[0].1.starts_with("OK stream "), "{}", outputs[0].1);

    // The export reads back to the same answers.
    let file = |verb: &[&str]| -> Vec<String> {
        let mut args = vec!["replay".to_owned()];
        args.extend(verb.iter().map(|s| (*s).to_owned()));
        args.extend(["--file".to_owned(), export.to_str().unwrap().to_owned()]);
        args
    };
    let (result, from_file) = cli(file(&["failovers", "--json"])).await;
    result.unwrap();
    let from_file: Value = serde_json::from_str(&from_file).unwrap();
    assert_eq!(from_file, failovers);

    // No secret in anything a replay verb printed or exported.
    outputs.push((
        "export jsonl file".into(),
        std::fs::read_to_string(&export).unwrap(),
    ));
    outputs.push((
        "export html file".into(),
        std::fs::read_to_string(&html).unwrap(),
    ));
    for (what, text) in &outputs {
        assert!(!text.is_empty(), "{what} printed nothing");
        assert!(
            !text.contains(&password),
            "the password appears in the output of replay {what}"
        );
    }

    // The cluster deleted, its journal retained: still replayable by name.
    env.start_operator();
    env.vkcs()
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    env.eventually(Duration::from_secs(30), "the cluster gone", || async {
        env.vkcs().get_opt("demo").await.unwrap().is_none()
    })
    .await;
    env.stop_operator(Stop::Graceful).await;
    let (result, retained) = cli(source(&["failovers", "--json"])).await;
    result.unwrap();
    let retained: Value = serde_json::from_str(&retained).unwrap();
    assert_eq!(retained.as_array().unwrap()[..records.len()], records[..]);
    let (result, text) = cli(source(&["audit"])).await;
    result.unwrap();
    assert!(text.contains("audit: clean"), "{text}");
    env.finish().await;
}
