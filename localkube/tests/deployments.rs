//! The Deployment and ReplicaSet controllers against the in-process store,
//! with the test playing the kubelet (it marks pods Running and Ready):
//! a Deployment gets a ReplicaSet per template and its pods, rolls a new
//! template out within maxSurge / maxUnavailable or by Recreate, trims its
//! history, reports status, and a converged one sees no writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use logbook_localkube::{
    ApiError, Config, PatchKind, RunningServer, Store, WorkloadsConfig, WriteCtx,
};
use serde_json::{Value, json};

const NS: &str = "default";

async fn start() -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_with(Config {
        workloads: Some(WorkloadsConfig {
            state_dir: dir.path().to_path_buf(),
            kubelet: false,
            proxy: false,
            local_images: Vec::new(),
        }),
        ..Config::default()
    })
    .await;
    (server, dir)
}

fn ctx() -> WriteCtx {
    WriteCtx::internal("test")
}

fn deployment(name: &str, replicas: i64, image: &str, extra: Value) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]}}}});
    json_patch::merge(&mut d, &extra);
    d
}

fn replicasets(store: &Store, app: &str) -> Vec<Value> {
    store
        .list(
            "apps/v1",
            "replicasets",
            Some(NS),
            Some(&format!("app={app}")),
        )
        .unwrap()
}

fn pods(store: &Store, app: &str) -> Vec<Value> {
    store
        .list("v1", "pods", Some(NS), Some(&format!("app={app}")))
        .unwrap()
}

fn get(store: &Store, name: &str) -> Value {
    store.get("apps/v1", "deployments", Some(NS), name).unwrap()
}

/// Plays the kubelet: every pod of `app` not yet ready becomes Running and
/// Ready.
fn ready_pods(store: &Store, app: &str) {
    for pod in pods(store, app) {
        let ready = pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready"));
        if ready || pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let mut pod = pod.clone();
        pod["status"] = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
        match store.update("v1", "pods", Some(NS), pod, true, &ctx()) {
            Ok(_) | Err(ApiError::Conflict { .. } | ApiError::NotFound(_)) => {}
            Err(e) => panic!("pod status: {e}"),
        }
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Plays the kubelet until `f` holds.
async fn drive(store: &Store, app: &str, what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..400 {
        ready_pods(store, app);
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn condition<'a>(d: &'a Value, kind: &str) -> &'a Value {
    d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_deployment_rolls_out_within_its_budget_and_converges() {
    let (server, _dir) = start().await;
    let store = server.store();
    store
        .create(
            "apps/v1",
            "deployments",
            Some(NS),
            deployment("web", 3, "valkey:1", json!({})),
            &ctx(),
        )
        .unwrap();
    wait_for("3 pods", || pods(&store, "web").len() == 3).await;
    let rss = replicasets(&store, "web");
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"],
        json!({"app": "web", "pod-template-hash": hash})
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    for p in pods(&store, "web") {
        assert!(
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("web-{hash}-"))
        );
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["name"],
            format!("web-{hash}")
        );
    }
    drive(&store, "web", "web available", || {
        get(&store, "web")["status"]["availableReplicas"] == 3
    })
    .await;
    let d = get(&store, "web");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(condition(&d, "Available")["status"], "True");
    wait_for("progress complete", || {
        condition(&get(&store, "web"), "Progressing")["reason"] == "NewReplicaSetAvailable"
    })
    .await;

    // Converged: no controller writes anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rv = store.resource_version();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.resource_version(),
        rv,
        "a converged Deployment was written to"
    );

    // A new template: never more than 3 + maxSurge (1) pods, never fewer
    // than 3 - maxUnavailable (0) available.
    store
        .patch(
            "apps/v1",
            "deployments",
            Some(NS),
            "web",
            PatchKind::Merge,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "valkey:2"}]}}}}),
            false,
            &ctx(),
        )
        .unwrap();
    let mut most = 0;
    drive(&store, "web", "rollout", || {
        let live = pods(&store, "web")
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .count();
        most = most.max(live);
        let d = get(&store, "web");
        // As `kubectl rollout status`: the status must be of this generation.
        d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && d["status"]["updatedReplicas"] == 3
            && d["status"]["availableReplicas"] == 3
            && d["status"]["replicas"] == 3
    })
    .await;
    assert!(most <= 4, "surged to {most} pods");
    let rss = replicasets(&store, "web");
    assert_eq!(rss.len(), 2);
    let new = rss.iter().find(|rs| rs["spec"]["replicas"] == 3).unwrap();
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert!(rss.iter().any(|rs| rs["spec"]["replicas"] == 0));
    wait_for("revision 2", || {
        get(&store, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    })
    .await;
    for p in pods(&store, "web") {
        assert_eq!(p["spec"]["containers"][0]["image"], "valkey:2");
    }

    // Scaling goes to the new ReplicaSet.
    store
        .patch(
            "apps/v1",
            "deployments",
            Some(NS),
            "web",
            PatchKind::Merge,
            &json!({"spec": {"replicas": 1}}),
            false,
            &ctx(),
        )
        .unwrap();
    wait_for("1 pod", || pods(&store, "web").len() == 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn recreate_stops_the_old_pods_first_and_history_is_trimmed() {
    let (server, _dir) = start().await;
    let store = server.store();
    let extra = json!({"spec": {"strategy": {"type": "Recreate"}, "revisionHistoryLimit": 0}});
    store
        .create(
            "apps/v1",
            "deployments",
            Some(NS),
            deployment("db", 2, "valkey:1", extra),
            &ctx(),
        )
        .unwrap();
    drive(&store, "db", "db available", || {
        get(&store, "db")["status"]["availableReplicas"] == 2
    })
    .await;
    assert!(
        get(&store, "db")["spec"]["strategy"]
            .get("rollingUpdate")
            .is_none()
    );
    store
        .patch(
            "apps/v1",
            "deployments",
            Some(NS),
            "db",
            PatchKind::Merge,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "valkey:2"}]}}}}),
            false,
            &ctx(),
        )
        .unwrap();
    // Old and new pods never run side by side.
    drive(&store, "db", "recreated", || {
        let images: Vec<Value> = pods(&store, "db")
            .iter()
            .map(|p| p["spec"]["containers"][0]["image"].clone())
            .collect();
        assert!(
            !(images.contains(&json!("valkey:1")) && images.contains(&json!("valkey:2"))),
            "{images:?}"
        );
        let d = get(&store, "db");
        d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && d["status"]["updatedReplicas"] == 2
            && get(&store, "db")["status"]["availableReplicas"] == 2
    })
    .await;
    // revisionHistoryLimit 0: the old ReplicaSet is gone.
    wait_for("history trimmed", || replicasets(&store, "db").len() == 1).await;

    // Deleting the Deployment takes its ReplicaSets and pods with it.
    store
        .delete(
            "apps/v1",
            "deployments",
            Some(NS),
            "db",
            &Default::default(),
        )
        .unwrap();
    wait_for("garbage collected", || {
        replicasets(&store, "db").is_empty() && pods(&store, "db").is_empty()
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_replicaset_keeps_its_count_and_reports_it() {
    let (server, _dir) = start().await;
    let store = server.store();
    let mut rs = deployment("rs", 2, "valkey:1", json!({}));
    rs["kind"] = json!("ReplicaSet");
    store
        .create("apps/v1", "replicasets", Some(NS), rs, &ctx())
        .unwrap();
    wait_for("2 pods", || pods(&store, "rs").len() == 2).await;
    // A pod deleted is replaced.
    let victim = pods(&store, "rs")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    store
        .delete("v1", "pods", Some(NS), &victim, &Default::default())
        .unwrap();
    wait_for("replaced", || {
        let names: Vec<Value> = pods(&store, "rs")
            .iter()
            .map(|p| p["metadata"]["name"].clone())
            .collect();
        names.len() == 2 && !names.contains(&json!(victim))
    })
    .await;
    drive(&store, "rs", "ready", || {
        let s = store.get("apps/v1", "replicasets", Some(NS), "rs").unwrap();
        s["status"]["readyReplicas"] == 2 && s["status"]["availableReplicas"] == 2
    })
    .await;
    let s = store.get("apps/v1", "replicasets", Some(NS), "rs").unwrap();
    assert_eq!(s["status"]["replicas"], 2);
    assert_eq!(s["status"]["fullyLabeledReplicas"], 2);
    server.shutdown().await;
}
