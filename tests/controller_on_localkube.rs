//! The operator's Controller wiring — a `kube::runtime::Controller` on
//! ValkeyCluster that owns StatefulSets, Services, ConfigMaps, Secrets and
//! PodDisruptionBudgets and watches the cluster's Pods by label — running
//! unchanged against localkube with the project's real CRD.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use logbook_crds::ValkeyCluster;
use logbook_localkube::{Config, LocalKube};

const LABEL: &str = "valkey.logbook.dev/cluster";

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: kube::Client,
    reconciles: AtomicUsize,
}

async fn reconcile(vkc: Arc<ValkeyCluster>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let ns = vkc.namespace().unwrap();
    let name = vkc.name_any();
    let owner = vkc.controller_owner_ref(&()).unwrap();
    let pp = PatchParams::apply("logbook-test").force();
    let meta =
        serde_json::json!({"name": name, "labels": {LABEL: name}, "ownerReferences": [owner]});
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"valkey.conf": "port 6379\n"}});
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&cm))
        .await?;
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {"password": "not-a-real-secret"}});
    Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&secret))
        .await?;
    let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
        "spec": {"selector": {LABEL: name}, "ports": [{"name": "valkey", "port": 6379}]}});
    Api::<Service>::namespaced(ctx.client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&svc))
        .await?;
    let pdb = serde_json::json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {LABEL: name}}}});
    Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&pdb))
        .await?;
    let sts = serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
        "spec": {"serviceName": name, "replicas": vkc.spec.effective_replicas(), "selector": {"matchLabels": {LABEL: name}},
            "template": {"metadata": {"labels": {LABEL: name}},
                "spec": {"containers": [{"name": "valkey", "image": vkc.spec.image}]}}}});
    Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&sts))
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ValkeyCluster>, _: &Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_controller_setup_runs_on_localkube() {
    let server = LocalKube::start(Config::default()).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in logbook_crds::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let vkcs: Api<ValkeyCluster> = Api::namespaced(client.clone(), "default");
    eventually("the CRD is served", || async {
        vkcs.list(&Default::default()).await.is_ok()
    })
    .await;

    let ctx = Arc::new(Ctx {
        client: client.clone(),
        reconciles: AtomicUsize::new(0),
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let controller = Controller::new(vkcs.clone(), watcher::Config::default())
        .owns(
            Api::<StatefulSet>::namespaced(client.clone(), "default"),
            watcher::Config::default(),
        )
        .owns(
            Api::<Service>::namespaced(client.clone(), "default"),
            watcher::Config::default(),
        )
        .owns(
            Api::<ConfigMap>::namespaced(client.clone(), "default"),
            watcher::Config::default(),
        )
        .owns(
            Api::<Secret>::namespaced(client.clone(), "default"),
            watcher::Config::default(),
        )
        .owns(
            Api::<PodDisruptionBudget>::namespaced(client.clone(), "default"),
            watcher::Config::default(),
        )
        .watches(
            pods.clone(),
            watcher::Config::default().labels(LABEL),
            |pod: Pod| {
                let cluster = pod.labels().get(LABEL)?.clone();
                Some(ObjectRef::<ValkeyCluster>::new(&cluster).within(pod.namespace()?.as_str()))
            },
        )
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    let demo: ValkeyCluster = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/replication.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    vkcs.create(&PostParams::default(), &demo).await.unwrap();

    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    eventually("the owned objects exist", || async {
        stss.get_opt("demo").await.unwrap().is_some()
            && Api::<PodDisruptionBudget>::namespaced(client.clone(), "default")
                .get_opt("demo")
                .await
                .unwrap()
                .is_some()
    })
    .await;
    let sts = stss.get("demo").await.unwrap();
    assert_eq!(sts.owner_references()[0].name, "demo");
    assert_eq!(sts.spec.unwrap().replicas, Some(3));

    // A change to an owned object, and a labelled pod, both bring the
    // cluster back to the reconciler.
    let before = ctx.reconciles.load(Ordering::SeqCst);
    stss.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"touched": "yes"}}})),
    )
    .await
    .unwrap();
    eventually("an owned change triggers a reconcile", || async {
        ctx.reconciles.load(Ordering::SeqCst) > before
    })
    .await;
    let before = ctx.reconciles.load(Ordering::SeqCst);
    let pod: Pod = serde_json::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "demo-0", "labels": {LABEL: "demo"}},
        "spec": {"containers": [{"name": "valkey", "image": "valkey/valkey:9.1"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("a labelled pod triggers a reconcile", || async {
        ctx.reconciles.load(Ordering::SeqCst) > before
    })
    .await;

    // Deleting the cluster garbage-collects what it owns.
    vkcs.delete("demo", &DeleteParams::background())
        .await
        .unwrap();
    eventually("owned objects are garbage-collected", || async {
        stss.get_opt("demo").await.unwrap().is_none()
            && Api::<ConfigMap>::namespaced(client.clone(), "default")
                .get_opt("demo")
                .await
                .unwrap()
                .is_none()
    })
    .await;

    handle.abort();
    server.shutdown().await;
}
