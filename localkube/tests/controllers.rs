//! The workload controllers against the in-process store, with the test
//! playing the kubelet: it writes pod status (Running, podIP, Ready)
//! through the status subresource and watches what the controllers do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use logbook_localkube::{
    ApiError, Config, DeleteOptions, PatchKind, RunningServer, Store, WorkloadsConfig, WriteCtx,
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

fn sts(name: &str, replicas: i64, extra: Value) -> Value {
    let mut s = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "valkey/valkey:9.1",
                    "ports": [{"name": "redis", "containerPort": 6379}]}]}}}
    });
    json_patch::merge(&mut s, &extra);
    s
}

fn pod_names(store: &Store, app: &str) -> Vec<String> {
    let mut v: Vec<String> = store
        .list("v1", "pods", Some(NS), Some(&format!("app={app}")))
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// Plays the kubelet: the pod runs at `ip` and is Ready (or not).
fn set_ready(store: &Store, name: &str, ip: &str, ready: bool) {
    for _ in 0..20 {
        let mut pod = store.get("v1", "pods", Some(NS), name).unwrap();
        pod["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
        match store.update("v1", "pods", Some(NS), pod, true, &ctx()) {
            Ok(_) => return,
            Err(ApiError::Conflict { .. }) => {}
            Err(e) => panic!("status of {name}: {e}"),
        }
    }
    panic!("status of {name}: conflicts");
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("timed out waiting for {what}");
}

fn hash_of(store: &Store, pod: &str) -> String {
    store.get("v1", "pods", Some(NS), pod).unwrap()["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn get_sts(store: &Store, name: &str) -> Value {
    store
        .get("apps/v1", "statefulsets", Some(NS), name)
        .unwrap()
}

fn patch_sts(store: &Store, name: &str, patch: Value) {
    store
        .patch(
            "apps/v1",
            "statefulsets",
            Some(NS),
            name,
            PatchKind::Merge,
            &patch,
            false,
            &ctx(),
        )
        .unwrap();
}

/// Marks every pod of `app` ready as it appears, until `n` are.
async fn ready_all(store: &Store, app: &str, n: usize) {
    for i in 0..n {
        let name = format!("{app}-{i}");
        wait_for(&format!("{name} created"), || {
            store.get("v1", "pods", Some(NS), &name).is_ok()
        })
        .await;
        set_ready(store, &name, &format!("10.1.0.{}", i + 1), true);
    }
}

#[tokio::test]
async fn ordered_ready_creates_one_at_a_time_scales_and_keeps_claims() {
    let (server, _dir) = start().await;
    let store = server.store();
    let claim = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
    store
        .create(
            "apps/v1",
            "statefulsets",
            Some(NS),
            sts("web", 3, claim),
            &ctx(),
        )
        .unwrap();
    wait_for("web-0", || pod_names(&store, "web") == ["web-0"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pod_names(&store, "web"), ["web-0"], "web-1 waits for web-0");
    let pvc = store
        .get("v1", "persistentvolumeclaims", Some(NS), "data-web-0")
        .unwrap();
    assert_eq!(pvc["status"]["phase"], "Bound");
    assert_eq!(pvc["status"]["capacity"]["storage"], "1Gi");
    let pod = store.get("v1", "pods", Some(NS), "web-0").unwrap();
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    assert_eq!(
        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "web-0"
    );
    assert_eq!(
        pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "0"
    );
    assert_eq!(
        pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-web-0"
    );
    set_ready(&store, "web-0", "10.1.0.1", true);
    wait_for("web-1", || pod_names(&store, "web").len() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pod_names(&store, "web").len(), 2);
    ready_all(&store, "web", 3).await;
    wait_for("status", || {
        get_sts(&store, "web")["status"]["readyReplicas"] == 3
    })
    .await;
    let st = get_sts(&store, "web")["status"].clone();
    assert_eq!(st["replicas"], 3);
    assert_eq!(st["currentReplicas"], 3);
    assert_eq!(st["updatedReplicas"], 3);
    assert_eq!(st["availableReplicas"], 3);
    assert_eq!(
        st["observedGeneration"],
        get_sts(&store, "web")["metadata"]["generation"]
    );
    assert_eq!(st["currentRevision"], st["updateRevision"]);
    let revs = store
        .list("apps/v1", "controllerrevisions", Some(NS), None)
        .unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0]["metadata"]["name"], st["updateRevision"]);
    assert_eq!(revs[0]["revision"], 1);
    assert_eq!(
        hash_of(&store, "web-2"),
        st["updateRevision"].as_str().unwrap()
    );

    // Converged: nothing is written any more.
    let rv = store.resource_version();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        store.resource_version(),
        rv,
        "a converged StatefulSet is left alone"
    );

    patch_sts(&store, "web", json!({"spec": {"replicas": 5}}));
    ready_all(&store, "web", 5).await;
    wait_for("5 ready", || {
        get_sts(&store, "web")["status"]["readyReplicas"] == 5
    })
    .await;

    let rv = store.resource_version().to_string();
    let mut events = store
        .watch("v1", "pods", Some(NS), Some(&rv), None)
        .unwrap();
    patch_sts(&store, "web", json!({"spec": {"replicas": 2}}));
    let mut deleted = Vec::new();
    while deleted.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(3), events.recv())
            .await
            .unwrap()
            .unwrap();
        if ev.etype == "DELETED" {
            deleted.push(ev.object["metadata"]["name"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        deleted,
        ["web-4", "web-3", "web-2"],
        "highest ordinal first"
    );
    wait_for("scaled to 2", || {
        pod_names(&store, "web") == ["web-0", "web-1"]
    })
    .await;
    wait_for("status 2", || {
        get_sts(&store, "web")["status"]["replicas"] == 2
    })
    .await;
    for i in 0..5 {
        store
            .get(
                "v1",
                "persistentvolumeclaims",
                Some(NS),
                &format!("data-web-{i}"),
            )
            .expect("claims are retained");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn parallel_creates_every_pod_at_once() {
    let (server, _dir) = start().await;
    let store = server.store();
    let body = sts(
        "par",
        3,
        json!({"spec": {"podManagementPolicy": "Parallel"}}),
    );
    store
        .create("apps/v1", "statefulsets", Some(NS), body, &ctx())
        .unwrap();
    wait_for("3 pods", || pod_names(&store, "par").len() == 3).await;
    patch_sts(&store, "par", json!({"spec": {"replicas": 0}}));
    wait_for("none", || pod_names(&store, "par").is_empty()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn on_delete_changes_nothing_until_a_pod_is_deleted() {
    let (server, _dir) = start().await;
    let store = server.store();
    let body = sts(
        "od",
        2,
        json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}),
    );
    store
        .create("apps/v1", "statefulsets", Some(NS), body, &ctx())
        .unwrap();
    ready_all(&store, "od", 2).await;
    wait_for("ready", || {
        get_sts(&store, "od")["status"]["readyReplicas"] == 2
    })
    .await;
    let old = hash_of(&store, "od-1");
    patch_sts(
        &store,
        "od",
        json!({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}),
    );
    wait_for("new revision", || {
        get_sts(&store, "od")["status"]["updateRevision"].as_str() != Some(old.as_str())
    })
    .await;
    let new = get_sts(&store, "od")["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hash_of(&store, "od-0"), old);
    assert_eq!(hash_of(&store, "od-1"), old);
    store
        .delete("v1", "pods", Some(NS), "od-1", &DeleteOptions::default())
        .unwrap();
    wait_for("od-1 back", || {
        store
            .get("v1", "pods", Some(NS), "od-1")
            .is_ok_and(|p| p["metadata"]["labels"]["controller-revision-hash"] == new.as_str())
    })
    .await;
    let pod = store.get("v1", "pods", Some(NS), "od-1").unwrap();
    assert_eq!(pod["metadata"]["annotations"]["v"], "2");
    assert_eq!(hash_of(&store, "od-0"), old);
    server.shutdown().await;
}

#[tokio::test]
async fn rolling_update_with_partition_updates_from_the_top_down_to_it() {
    let (server, _dir) = start().await;
    let store = server.store();
    let body = sts(
        "ru",
        3,
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}}),
    );
    store
        .create("apps/v1", "statefulsets", Some(NS), body, &ctx())
        .unwrap();
    ready_all(&store, "ru", 3).await;
    wait_for("ready", || {
        get_sts(&store, "ru")["status"]["readyReplicas"] == 3
    })
    .await;
    let old = hash_of(&store, "ru-0");
    patch_sts(
        &store,
        "ru",
        json!({"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}),
    );
    // ru-2 is replaced first; ru-1 only once ru-2 is back and ready.
    wait_for("ru-2 replaced", || {
        store
            .get("v1", "pods", Some(NS), "ru-2")
            .is_ok_and(|p| p["metadata"]["labels"]["controller-revision-hash"] != old.as_str())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hash_of(&store, "ru-1"),
        old,
        "ru-1 waits for ru-2 to be ready"
    );
    set_ready(&store, "ru-2", "10.1.0.3", true);
    wait_for("ru-1 replaced", || {
        store
            .get("v1", "pods", Some(NS), "ru-1")
            .is_ok_and(|p| p["metadata"]["labels"]["controller-revision-hash"] != old.as_str())
    })
    .await;
    set_ready(&store, "ru-1", "10.1.0.2", true);
    wait_for("updated 2", || {
        get_sts(&store, "ru")["status"]["updatedReplicas"] == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hash_of(&store, "ru-0"), old, "below the partition stays");
    let st = get_sts(&store, "ru")["status"].clone();
    assert_eq!(st["currentRevision"], old.as_str());
    assert_eq!(st["currentReplicas"], 1);
    assert_eq!(
        store
            .list("apps/v1", "controllerrevisions", Some(NS), None)
            .unwrap()
            .len(),
        2
    );
    server.shutdown().await;
}

#[tokio::test]
async fn claims_follow_the_retention_policy() {
    let (server, _dir) = start().await;
    let store = server.store();
    let extra = json!({"spec": {"podManagementPolicy": "Parallel",
        "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]}});
    store
        .create(
            "apps/v1",
            "statefulsets",
            Some(NS),
            sts("ret", 2, extra),
            &ctx(),
        )
        .unwrap();
    wait_for("2 pods", || pod_names(&store, "ret").len() == 2).await;
    patch_sts(&store, "ret", json!({"spec": {"replicas": 1}}));
    wait_for("claim of ret-1 deleted with its pod", || {
        store
            .get("v1", "persistentvolumeclaims", Some(NS), "data-ret-1")
            .is_err()
    })
    .await;
    store
        .get("v1", "persistentvolumeclaims", Some(NS), "data-ret-0")
        .expect("kept");
    server.shutdown().await;
}

#[tokio::test]
async fn endpoints_and_slices_follow_readiness() {
    let (server, _dir) = start().await;
    let store = server.store();
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ep", "namespace": NS},
        "spec": {"selector": {"app": "ep"}, "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}]}});
    store
        .create("v1", "services", Some(NS), svc, &ctx())
        .unwrap();
    store
        .create(
            "apps/v1",
            "statefulsets",
            Some(NS),
            sts(
                "ep",
                2,
                json!({"spec": {"podManagementPolicy": "Parallel"}}),
            ),
            &ctx(),
        )
        .unwrap();
    wait_for("2 pods", || pod_names(&store, "ep").len() == 2).await;
    set_ready(&store, "ep-0", "10.1.0.1", true);
    set_ready(&store, "ep-1", "10.1.0.2", false);
    let endpoints = || store.get("v1", "endpoints", Some(NS), "ep").ok();
    wait_for("endpoints", || {
        endpoints().is_some_and(|e| {
            e["subsets"][0]["addresses"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
                && e["subsets"][0]["notReadyAddresses"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1)
        })
    })
    .await;
    let e = endpoints().unwrap();
    assert_eq!(e["subsets"][0]["addresses"][0]["ip"], "10.1.0.1");
    assert_eq!(e["subsets"][0]["addresses"][0]["targetRef"]["name"], "ep-0");
    assert_eq!(e["subsets"][0]["notReadyAddresses"][0]["ip"], "10.1.0.2");
    assert_eq!(
        e["subsets"][0]["ports"],
        json!([{"name": "redis", "port": 6379, "protocol": "TCP"}])
    );
    let slices = store
        .list(
            "discovery.k8s.io/v1",
            "endpointslices",
            Some(NS),
            Some("kubernetes.io/service-name=ep"),
        )
        .unwrap();
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0]["addressType"], "IPv4");
    let eps = slices[0]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2);
    assert_eq!(eps[0]["conditions"]["ready"], true);
    assert_eq!(eps[1]["conditions"]["ready"], false);

    set_ready(&store, "ep-1", "10.1.0.2", true);
    // Everything the change moves must show it before the quiet span
    // starts: the slice and the StatefulSet's readyReplicas may be written
    // in later (paced) passes than the Endpoints.
    let slice_ready = || {
        store
            .list(
                "discovery.k8s.io/v1",
                "endpointslices",
                Some(NS),
                Some("kubernetes.io/service-name=ep"),
            )
            .ok()
            .and_then(|s| s.first().cloned())
            .is_some_and(|s| {
                s["endpoints"].as_array().is_some_and(|eps| {
                    eps.len() == 2 && eps.iter().all(|e| e["conditions"]["ready"] == true)
                })
            })
    };
    wait_for("both ready", || {
        endpoints().is_some_and(|e| {
            e["subsets"][0]["addresses"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        }) && slice_ready()
            && store
                .get("apps/v1", "statefulsets", Some(NS), "ep")
                .is_ok_and(|s| s["status"]["readyReplicas"] == 2)
    })
    .await;
    let rv = store.resource_version();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.resource_version(), rv, "no pointless endpoint writes");

    // publishNotReadyAddresses puts not-ready pods in addresses.
    set_ready(&store, "ep-1", "10.1.0.2", false);
    store
        .patch(
            "v1",
            "services",
            Some(NS),
            "ep",
            PatchKind::Merge,
            &json!({"spec": {"publishNotReadyAddresses": true}}),
            false,
            &ctx(),
        )
        .unwrap();
    wait_for("published", || {
        endpoints().is_some_and(|e| {
            e["subsets"][0]["addresses"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        })
    })
    .await;
    store
        .delete("v1", "services", Some(NS), "ep", &DeleteOptions::default())
        .unwrap();
    wait_for("endpoints removed", || endpoints().is_none()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn disruption_budget_status_and_eviction() {
    let (server, _dir) = start().await;
    let store = server.store();
    store
        .create(
            "apps/v1",
            "statefulsets",
            Some(NS),
            sts("db", 3, json!({})),
            &ctx(),
        )
        .unwrap();
    ready_all(&store, "db", 3).await;
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db", "namespace": NS},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}});
    store
        .create("policy/v1", "poddisruptionbudgets", Some(NS), pdb, &ctx())
        .unwrap();
    let status = || {
        store
            .get("policy/v1", "poddisruptionbudgets", Some(NS), "db")
            .unwrap()["status"]
            .clone()
    };
    wait_for("pdb status", || status()["currentHealthy"] == 3).await;
    let s = status();
    assert_eq!(s["desiredHealthy"], 2);
    assert_eq!(s["expectedPods"], 3);
    assert_eq!(s["disruptionsAllowed"], 1);
    assert_eq!(s["conditions"][0]["type"], "DisruptionAllowed");
    assert_eq!(s["conditions"][0]["status"], "True");

    set_ready(&store, "db-0", "10.1.0.1", false);
    wait_for("no disruption allowed", || {
        status()["disruptionsAllowed"] == 0
    })
    .await;
    assert_eq!(status()["conditions"][0]["reason"], "InsufficientPods");
    let evict = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "db-1", "namespace": NS}}).to_string();
    let path = "/api/v1/namespaces/default/pods/db-1/eviction";
    let ct = [("Content-Type", "application/json")];
    let (code, _, _) = common::raw(server.addr(), "POST", path, &ct, evict.as_bytes()).await;
    assert_eq!(code, 429, "the budget refuses");
    set_ready(&store, "db-0", "10.1.0.1", true);
    wait_for("allowed again", || status()["disruptionsAllowed"] == 1).await;
    let (code, _, body) = common::raw(server.addr(), "POST", path, &ct, evict.as_bytes()).await;
    assert_eq!(code, 201, "{body}");

    // maxUnavailable as a percentage counts the set's desired replicas.
    store
        .patch(
            "policy/v1",
            "poddisruptionbudgets",
            Some(NS),
            "db",
            PatchKind::Merge,
            &json!({"spec": {"minAvailable": null, "maxUnavailable": "50%"}}),
            false,
            &ctx(),
        )
        .unwrap();
    wait_for("percent", || status()["desiredHealthy"] == 1).await;
    assert_eq!(status()["expectedPods"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn services_get_cluster_ips_from_the_instance_block() {
    let (server, _dir) = start().await;
    let store = server.store();
    let n = server.instance().unwrap().number();
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ip", "namespace": NS},
        "spec": {"ports": [{"port": 80}]}});
    let created = store
        .create("v1", "services", Some(NS), svc, &ctx())
        .unwrap();
    assert_eq!(created["spec"]["clusterIP"], format!("127.{n}.200.1"));
    server.shutdown().await;
}

/// A pass costs what its objects cost, not their square: with many
/// StatefulSets and budgets in one namespace, a change to one pod makes
/// each controller copy each object a few times, not once per owner. (At
/// a hundred clusters the passes copied every pod of the namespace for
/// every StatefulSet and every budget: both cores went to it and the API
/// left requests unanswered for seconds, long enough for the operator's
/// Lease renewals to fail.) Counted, not timed: `Store::copies`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_copies_each_object_a_few_times_not_once_per_owner() {
    const N: usize = 60;
    let (server, _dir) = start().await;
    let store = server.store();
    for i in 0..N {
        let name = format!("c{i}");
        store
            .create(
                "apps/v1",
                "statefulsets",
                Some(NS),
                sts(&name, 1, json!({})),
                &ctx(),
            )
            .unwrap();
        let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}}});
        store
            .create("policy/v1", "poddisruptionbudgets", Some(NS), pdb, &ctx())
            .unwrap();
    }
    let pods = || store.list("v1", "pods", Some(NS), None).unwrap().len();
    for _ in 0..300 {
        if pods() == N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pods(), N, "every StatefulSet has its pod");
    for i in 0..N {
        set_ready(
            &store,
            &format!("c{i}-0"),
            &format!("10.0.0.{}", i + 1),
            true,
        );
    }
    // Quiet: every controller has caught up with every change.
    let settled = || async {
        let mut last = store.copies();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = store.copies();
            if now == last {
                return now;
            }
            last = now;
        }
    };
    let before = settled().await;
    // One pod changes: every controller watching pods passes over all.
    set_ready(&store, "c0-0", "10.0.0.1", false);
    let after = settled().await;
    let copies = after - before;
    // Each pass copies each object a small number of times (the sets, one
    // set's pods and revisions, the budgets, one budget's pods...): linear
    // in N. Copying every pod once per set and once per budget is 2·N²
    // (7,200 here) for one pass of each.
    let bound = u64::try_from(40 * N).unwrap();
    assert!(
        copies < bound,
        "one pod's change made the controllers copy {copies} objects (bound {bound}, N = {N})"
    );
}
