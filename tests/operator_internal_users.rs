//! The internal users end to end on localkube with real `valkey-server`
//! pods: the operator authenticates as `logbook-operator`, replicas as
//! `logbook-replication`, Sentinels as `logbook-sentinel`, each limited to
//! what it needs; nothing of Logbook's own runs as `default`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use operator_common::*;

async fn internal(env: &Env, cluster: &str, key: &str) -> String {
    let secret = env
        .api::<Secret>()
        .get(&format!("{cluster}-internal"))
        .await
        .unwrap();
    String::from_utf8(secret.data.unwrap()[key].0.clone()).unwrap()
}

/// `CLIENT LIST` of `addr`, as `default`: one map of fields per client.
fn clients(addr: &str, password: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    redis_cli(addr, password, &["CLIENT", "LIST"])
        .lines()
        .map(|line| {
            line.split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_replicas_and_exporters_use_their_own_least_privileged_users() {
    let mut env = Env::start_without_operator("internal-users").await;
    env.journal = logbook::journal_store::JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Replication
  replicas: 3
  failover:
    probeIntervalMilliseconds: 200
  storage:
    size: 1Gi
"#,
    )
    .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(90)).await;
    let password = env.password("demo").await;
    let primary_addr = env.pod_addr(&primary(&vkc)).await;

    // Every node holds the four users.
    for pod in env.pods("demo").await {
        let addr = env.pod_addr(&kube::ResourceExt::name_any(&pod)).await;
        let acl = redis_cli(&addr, &password, &["ACL", "USERS"]);
        for user in [
            "logbook-operator",
            "logbook-replication",
            "logbook-sentinel",
            "logbook-metrics",
        ] {
            assert!(acl.contains(user), "{addr}: {acl}");
        }
    }
    // The operator is connected as its own user, the replicas as the
    // replication user; nothing of Logbook's runs as default.
    env.eventually(
        Duration::from_secs(10),
        "the operator and replicas as their users",
        || {
            let (addr, password) = (primary_addr.clone(), password.clone());
            async move {
                let list = clients(&addr, &password);
                let replicas: Vec<_> = list
                    .iter()
                    .filter(|c| c.get("flags").is_some_and(|f| f.contains('S')))
                    .collect();
                replicas.len() == 2
                    && replicas
                        .iter()
                        .all(|c| c.get("user").map(String::as_str) == Some("logbook-replication"))
                    && list
                        .iter()
                        .any(|c| c.get("user").map(String::as_str) == Some("logbook-operator"))
            }
        },
    )
    .await;
    let by_default: Vec<_> = clients(&primary_addr, &password)
        .into_iter()
        .filter(|c| c.get("user").map(String::as_str) == Some("default"))
        .filter(|c| c.get("cmd").map(String::as_str) != Some("client|list"))
        // The operator's death watch (operator/src/operator/death_watch.rs) holds
        // an idle connection that never authenticates and never sends a
        // command: listed under `default`, it can run nothing.
        .filter(|c| {
            !(c.get("cmd").map(String::as_str) == Some("NULL")
                && c.get("tot-cmds").map(String::as_str) == Some("0"))
        })
        .collect();
    assert!(by_default.is_empty(), "clients as default: {by_default:?}");

    // Least privilege: metrics reads server facts, no key, no setting;
    // replication cannot write; the operator cannot read a key.
    let metrics = internal(&env, "demo", "metrics").await;
    let as_metrics =
        |args: &[&str]| redis_cli_as(&primary_addr, Some("logbook-metrics"), &metrics, args);
    assert!(as_metrics(&["INFO", "replication"]).contains("role:master"));
    assert!(as_metrics(&["GET", "k"]).contains("NOPERM"));
    assert!(as_metrics(&["CONFIG", "GET", "masterauth"]).contains("NOPERM"));
    let replication = internal(&env, "demo", "replication").await;
    let refused = redis_cli_as(
        &primary_addr,
        Some("logbook-replication"),
        &replication,
        &["SET", "k", "v"],
    );
    assert!(refused.contains("NOPERM"), "{refused}");
    let operator = internal(&env, "demo", "operator").await;
    let refused = redis_cli_as(
        &primary_addr,
        Some("logbook-operator"),
        &operator,
        &["GET", "k"],
    );
    assert!(refused.contains("NOPERM"), "{refused}");
    let role = redis_cli_as(
        &primary_addr,
        Some("logbook-operator"),
        &operator,
        &["ROLE"],
    );
    assert!(role.contains("master"), "{role}");

    // A node that lacks an internal user (one started by an earlier
    // version, or a user deleted by hand) is given it again, journaled.
    // (An operator upgraded over older pods reads their ACLs at its first
    // reconcile.)
    let deleted = redis_cli(
        &primary_addr,
        &password,
        &["ACL", "DELUSER", "logbook-metrics", "logbook-sentinel"],
    );
    assert_eq!(deleted.trim(), "2", "{deleted}");
    // Noticed at the next reconcile (every 5 minutes, or on any change of
    // the cluster's objects): one is brought about.
    env.vkcs()
        .patch(
            "demo",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                serde_json::json!({"metadata": {"annotations": {"touched": "1"}}}),
            ),
        )
        .await
        .unwrap();
    env.eventually(
        Duration::from_secs(20),
        "the internal users given back",
        || {
            let (addr, password) = (primary_addr.clone(), password.clone());
            async move {
                let users = redis_cli(&addr, &password, &["ACL", "USERS"]);
                users.contains("logbook-metrics") && users.contains("logbook-sentinel")
            }
        },
    )
    .await;
    assert!(as_metrics(&["INFO", "server"]).contains("redis_version"));
    let events = env.journal_events(&env.stream("demo").await).await;
    assert!(
        events.iter().any(
            |e| matches!(&e.body, logbook_journal::Event::Decided { intents }
            if intents.iter().any(|p| matches!(&p.intent,
                logbook_journal::Intent::SyncUsers { pod, apply, .. }
                    if *pod == primary(&vkc) && apply.contains(&"logbook-metrics".to_owned()))))
        ),
        "the SyncUsers giving them back is journaled"
    );
    assert!(
        !format!("{events:?}").contains(&metrics),
        "no password in the journal"
    );

    // A failover: the new primary's replicas follow it as the
    // replication user.
    let old = primary(&vkc);
    env.kill(&old).await;
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(40))
        .await;
    env.wait_ready("demo", 3, Duration::from_secs(90)).await;
    let new_addr = env.pod_addr(&primary(&moved)).await;
    env.eventually(
        Duration::from_secs(20),
        "replicas of the new primary",
        || {
            let (addr, password) = (new_addr.clone(), password.clone());
            async move {
                let list = clients(&addr, &password);
                list.iter()
                    .filter(|c| c.get("flags").is_some_and(|f| f.contains('S')))
                    .filter(|c| c.get("user").map(String::as_str) == Some("logbook-replication"))
                    .count()
                    == 2
            }
        },
    )
    .await;
    env.finish().await;
}
