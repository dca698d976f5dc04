//! Deletion: finalizers, propagation (background, foreground, orphan),
//! the collector's removal of dependents whose owners are gone, namespace
//! termination, evictions against a PodDisruptionBudget, and a restart
//! from a state directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{
    Api, DeleteParams, EvictParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use logbook_localkube::Config;
use serde_json::json;

fn cm(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    let mut v = json!({"metadata": {"name": name}, "data": {"a": "1"}});
    if let Some(o) = owner {
        v["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name, "uid": o.metadata.uid, "blockOwnerDeletion": true}]);
    }
    serde_json::from_value(v).unwrap()
}

async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_none()
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let mut c = cm("held", None);
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    // A new finalizer on a deleting object is refused.
    let e = common::api_err(
        api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "x/y"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        e.message
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(gone(&api, "held").await);
    server.shutdown().await;
}

#[tokio::test]
async fn propagation_policies() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    // Background: dependents follow their owner.
    let owner = api
        .create(&PostParams::default(), &cm("bg-owner", None))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("bg-dep", Some(&owner)))
        .await
        .unwrap();
    api.delete("bg-owner", &DeleteParams::background())
        .await
        .unwrap();
    common::eventually("background dependents deleted", || gone(&api, "bg-dep")).await;

    // Foreground: the owner waits for its dependents.
    let owner = api
        .create(&PostParams::default(), &cm("fg-owner", None))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("fg-dep", Some(&owner)))
        .await
        .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    api.delete("fg-owner", &dp).await.unwrap();
    common::eventually("foreground owner and dependents deleted", || async {
        gone(&api, "fg-dep").await && gone(&api, "fg-owner").await
    })
    .await;

    // Orphan: dependents stay, without the owner reference.
    let owner = api
        .create(&PostParams::default(), &cm("or-owner", None))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("or-dep", Some(&owner)))
        .await
        .unwrap();
    api.delete("or-owner", &DeleteParams::orphan())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let dep = api.get("or-dep").await.unwrap();
    assert!(dep.metadata.owner_references.is_none_or(|r| r.is_empty()));

    // An object whose owner never existed (or is gone) is collected.
    let mut ghost = cm("ghost-owner", None);
    ghost.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
    ghost.metadata.name = Some("ghost".into());
    api.create(&PostParams::default(), &cm("orphaned", Some(&ghost)))
        .await
        .unwrap();
    common::eventually("dangling dependent collected", || gone(&api, "orphaned")).await;
    server.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_empties_it() {
    let server = common::start().await;
    let client = common::client(&server);
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
    )
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "doomed");
    api.create(&PostParams::default(), &cm("x", None))
        .await
        .unwrap();
    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    common::eventually("namespace gone", || async {
        nss.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
    assert!(gone(&api, "x").await);
    server.shutdown().await;
}

fn pod(name: &str, ready: bool) -> serde_json::Value {
    json!({"metadata": {"name": name, "labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

#[tokio::test]
async fn eviction_honours_the_disruption_budget() {
    let server = common::start().await;
    let client = common::client(&server);
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client);
    pdbs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}})).unwrap())
        .await
        .unwrap();
    for n in ["db-0", "db-1"] {
        let p: Pod = serde_json::from_value(pod(n, true)).unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
        pods.patch_status(n, &PatchParams::default(), &Patch::Merge(pod(n, true)))
            .await
            .unwrap();
    }
    // kube-rs retries 429s with backoff, so the refusal is read raw.
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "db-0", "namespace": "default"}}).to_string();
    let (code, _, body) = common::raw(
        server.addr(),
        "POST",
        "/api/v1/namespaces/default/pods/db-0/eviction",
        &[("Content-Type", "application/json")],
        eviction.as_bytes(),
    )
    .await;
    assert_eq!(code, 429);
    let e: kube::core::Status = serde_json::from_str(&body).unwrap();
    assert_eq!(e.reason, "TooManyRequests");
    assert_eq!(
        e.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let cause = &e.details.unwrap().causes[0];
    assert_eq!(cause.reason, "DisruptionBudget");
    assert_eq!(
        cause.message,
        "The disruption budget db needs 2 healthy pods and has 2 currently"
    );

    let p: Pod = serde_json::from_value(pod("db-2", true)).unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    pods.patch_status(
        "db-2",
        &PatchParams::default(),
        &Patch::Merge(pod("db-2", true)),
    )
    .await
    .unwrap();
    pods.evict("db-0", &EvictParams::default()).await.unwrap();
    assert!(pods.get_opt("db-0").await.unwrap().is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_pod_deletion_waits_for_the_kubelet() {
    let server = common::start_with(Config {
        graceful_pod_deletion: true,
        ..Config::default()
    })
    .await;
    let pods: Api<Pod> = Api::default_namespaced(common::client(&server));
    let mut v = pod("p", true);
    v["spec"]["nodeName"] = json!("node-1");
    pods.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let p = pods.get("p").await.unwrap();
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    assert!(pods.get_opt("p").await.unwrap().is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn restart_from_state_dir_brings_objects_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        state_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    let server = common::start_with(config.clone()).await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let made = api
        .create(&PostParams::default(), &cm("kept", None))
        .await
        .unwrap();
    api.patch(
        "kept",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"b": "2"}})),
    )
    .await
    .unwrap();
    let rv_before = server.store().resource_version();
    server.shutdown().await;

    let server = common::start_with(config).await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let back = api.get("kept").await.unwrap();
    assert_eq!(back.metadata.uid, made.metadata.uid);
    assert!(server.store().resource_version() >= rv_before);
    // A watch from before the restart must relist.
    let e = api
        .watch(
            &kube::api::WatchParams::default(),
            made.metadata.resource_version.as_deref().unwrap(),
        )
        .await;
    let mut s = Box::pin(e.unwrap());
    use futures::StreamExt;
    match s.next().await {
        Some(Ok(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    server.shutdown().await;
}
