//! Log lines end to end: `logbook operator --log-format json` as a child
//! process, through a password-protected Replication cluster's creation,
//! a failover and the operator's shutdown. Every line must be one JSON
//! object; every line about the cluster must name its namespace, its name
//! and the journal seq it concerns; and the cluster's password must be in
//! no line, in clear or in base64.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use operator_common::*;

const NAME: &str = "vault";
const INSTANCE: &str = "logs-1";
/// Distinctive enough that no other text contains it by chance.
const PASSWORD: &str = "Lgbk-S3cret-9f2c7e41d0a8";

fn cluster_yaml() -> String {
    format!(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: {NAME}
spec:
  topology: Replication
  replicas: 3
  auth:
    enabled: true
    passwordSecret:
      name: {NAME}-credentials
      key: secret
  failover:
    probeIntervalMilliseconds: 200
    failureThreshold: 3
  storage:
    size: 1Gi
"#
    )
}

/// `base64` of `text` (standard alphabet, padded), as a Secret's `data`
/// shows it.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_lines_name_the_cluster_and_its_seq_and_never_the_password() {
    let env = Env::start_without_operator("logs").await;
    let workdir = tempfile::Builder::new()
        .prefix("logbook-logs-")
        .tempdir()
        .unwrap();
    let kubeconfig = workdir.path().join("kubeconfig");
    env.write_kubeconfig_to(&kubeconfig);
    env.api::<Secret>()
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some(format!("{NAME}-credentials")),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    "secret".to_owned(),
                    ByteString(PASSWORD.as_bytes().to_vec()),
                )])),
                ..Secret::default()
            },
        )
        .await
        .unwrap();
    let operator = OperatorProcess::start_with(
        &env,
        &kubeconfig,
        workdir.path(),
        INSTANCE,
        None,
        &["--log-format", "json", "--log-level", "debug"],
    );
    env.apply_yaml(&cluster_yaml()).await;
    let vkc = env.wait_ready(NAME, 3, Duration::from_secs(60)).await;
    let old = primary(&vkc);
    // The password is the one the pods require.
    let (kind, _) = role(&env.pod_addr(&old).await, PASSWORD).await;
    assert_eq!(kind, "master");
    env.kill(&old).await;
    env.wait_primary_moved(NAME, &old, Duration::from_secs(30))
        .await;
    env.wait_ready(NAME, 3, Duration::from_secs(60)).await;
    operator.stop(&env, NAME, false).await;

    let started = format!("==== {INSTANCE} started");
    assert!(
        !env.logs.grep(&started).is_empty(),
        "the log buffer overflowed: the first lines are lost"
    );
    let prefix = format!("[{INSTANCE}] ");
    let lines: Vec<String> = env
        .logs
        .grep(&prefix)
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    assert!(
        lines.len() > 20,
        "{} lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    eprintln!("{} log lines checked", lines.len());

    // No secret, in any form, in any line.
    let encoded = base64(PASSWORD);
    for line in &lines {
        assert!(!line.contains(PASSWORD), "the password is logged: {line}");
        assert!(
            !line.contains(&encoded),
            "the password is logged in base64: {line}"
        );
    }

    // One JSON object per line; lines about the cluster name it and a seq.
    let mut about = 0;
    let mut seqs = Vec::new();
    let mut messages = Vec::new();
    for line in &lines {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(object.get(key).is_some(), "no {key}: {line}");
        }
        if !line.contains(NAME) {
            continue;
        }
        about += 1;
        assert_eq!(object["namespace"], NS, "{line}");
        assert_eq!(object["name"], NAME, "{line}");
        // Only the first reconcile's lines before the cluster's journal
        // was read have no seq yet.
        let Some(seq) = object["seq"].as_u64() else {
            assert!(seqs.is_empty(), "no seq after the journal was read: {line}");
            continue;
        };
        seqs.push(seq);
        messages.push(object["message"].as_str().unwrap_or_default().to_owned());
    }
    assert!(about >= 5, "{about} lines about the cluster");
    for wanted in ["decided", "intent succeeded"] {
        assert!(
            messages.iter().any(|m| m == wanted),
            "no {wanted:?} line among {messages:?}"
        );
    }
    let (first, last) = (seqs.iter().min().unwrap(), seqs.iter().max().unwrap());
    assert!(last > first, "every line at seq {first}");
    let head = env
        .config_map_journal()
        .pin(&env.stream(NAME).await)
        .await
        .unwrap();
    let head = logbook_journal::JournalStore::head(&head, &env.stream(NAME).await)
        .await
        .unwrap()
        .seq;
    assert!(
        *last <= head,
        "a line names seq {last} beyond the head {head}"
    );

    env.finish().await;
}
