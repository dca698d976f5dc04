//! The operator end to end on localkube with real `valkey-server` pods:
//! a Standalone cluster created, used and deleted; an invalid spec
//! rejected without touching the cluster; `paused` respected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use logbook_journal::{Event, Intent};
use operator_common::*;

const STANDALONE: &str = r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: solo
spec:
  topology: Standalone
  storage:
    size: 1Gi
"#;

/// Names of the objects of `kind` labelled as the cluster's.
async fn owned<K>(env: &Env, cluster: &str) -> Vec<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = env.api();
    api.list(&ListParams::default().labels(&format!("valkey.logbook.dev/cluster={cluster}")))
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect()
}

async fn all_owned(env: &Env, cluster: &str) -> Vec<String> {
    let mut all = Vec::new();
    for (kind, names) in [
        ("StatefulSet", owned::<StatefulSet>(env, cluster).await),
        ("Service", owned::<Service>(env, cluster).await),
        ("ConfigMap", owned::<ConfigMap>(env, cluster).await),
        ("Secret", owned::<Secret>(env, cluster).await),
        (
            "PodDisruptionBudget",
            owned::<PodDisruptionBudget>(env, cluster).await,
        ),
        ("NetworkPolicy", owned::<NetworkPolicy>(env, cluster).await),
    ] {
        all.extend(names.into_iter().map(|n| format!("{kind}/{n}")));
    }
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_is_created_serves_and_is_deleted_with_everything_it_owns() {
    let env = Env::start("standalone").await;
    let started = Instant::now();
    env.apply_yaml(STANDALONE).await;
    let vkc = env.wait_ready("solo", 1, Duration::from_secs(30)).await;
    eprintln!("standalone Ready after {:?}", started.elapsed());
    assert_eq!(primary(&vkc), "solo-0");
    assert!(
        vkc.finalizers()
            .iter()
            .any(|f| f == "valkey.logbook.dev/finalizer")
    );

    // What it owns.
    let objects = all_owned(&env, "solo").await;
    for want in [
        "StatefulSet/solo",
        "Service/solo",
        "Service/solo-headless",
        "ConfigMap/solo-config",
        "Secret/solo-password",
        "Secret/solo-connection",
    ] {
        assert!(
            objects.iter().any(|o| o == want),
            "{want} missing from {objects:?}"
        );
    }
    let connection = env.api::<Secret>().get("solo-connection").await.unwrap();
    let data = connection.data.unwrap();
    let password = env.password("solo").await;
    let url = String::from_utf8(data["REDIS_URL"].0.clone()).unwrap();
    assert_eq!(
        url,
        format!("redis://:{password}@solo.default.svc.cluster.local:6379")
    );
    assert_eq!(String::from_utf8(data["port"].0.clone()).unwrap(), "6379");
    // No password in any ConfigMap.
    for cm in env
        .api::<ConfigMap>()
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        let text = serde_json::to_string(&cm.data).unwrap();
        assert!(
            !text.contains(&password),
            "ConfigMap {} holds the password",
            cm.name_any()
        );
    }

    // A write and a read through the client Service.
    let addr = env.service_addr("solo").await;
    let mut con = connect(&addr, &password).await;
    let () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query_async(&mut con)
        .await
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("greeting")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(got, "hello");
    drop(con);

    // A NetworkPolicy asked for: own pods, the operator, and the peers
    // allowed. (localkube stores it and enforces nothing: what it admits
    // is checked on its rules, not on traffic.)
    assert!(!objects.iter().any(|o| o.starts_with("NetworkPolicy/")));
    env.patch(
        "solo",
        serde_json::json!({"spec": {"networkPolicy": {"enabled": true, "allowFrom": [
            {"podSelector": {"matchLabels": {"app": "web"}}}
        ]}}}),
    )
    .await;
    let policies = env.api::<NetworkPolicy>();
    env.eventually(Duration::from_secs(20), "NetworkPolicy solo", || async {
        policies.get_opt("solo").await.unwrap().is_some()
    })
    .await;
    let policy = policies.get("solo").await.unwrap().spec.unwrap();
    let ingress = policy.ingress.unwrap();
    assert_eq!(ingress.len(), 3, "{ingress:?}");
    let peer = &ingress[2].from.as_ref().unwrap()[0];
    assert_eq!(
        peer.pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["app"],
        "web"
    );
    // No longer asked for: removed.
    env.patch(
        "solo",
        serde_json::json!({"spec": {"networkPolicy": {"enabled": false}}}),
    )
    .await;
    env.eventually(
        Duration::from_secs(20),
        "NetworkPolicy solo removed",
        || async { policies.get_opt("solo").await.unwrap().is_none() },
    )
    .await;

    // Delete: the finalizer runs, then the object and everything it owns
    // are gone.
    let stream = env.stream("solo").await;
    env.vkcs()
        .delete("solo", &DeleteParams::default())
        .await
        .unwrap();
    env.eventually(
        Duration::from_secs(20),
        "the ValkeyCluster is gone",
        || async { env.vkcs().get_opt("solo").await.unwrap().is_none() },
    )
    .await;
    env.eventually(
        Duration::from_secs(20),
        "the owned objects are gone",
        || async { all_owned(&env, "solo").await.is_empty() },
    )
    .await;
    env.eventually(Duration::from_secs(20), "the pod is gone", || async {
        env.pods("solo").await.is_empty()
    })
    .await;
    assert!(
        !env.logs.grep("cluster deleted; journal kept").is_empty(),
        "the finalizer did not log the deletion"
    );
    // The deletion is an intent like any other: journaled as requested,
    // decided before anything was deleted, and its outcome says what went.
    let mut env = env;
    env.stop_operator(Stop::Graceful).await;
    let events: Vec<Event> = env
        .journal_events(&stream)
        .await
        .into_iter()
        .map(|e| e.body)
        .collect();
    let at = |want: &dyn Fn(&Event) -> bool| events.iter().position(want);
    let requested = at(&|e| matches!(e, Event::DeletionRequested { delete_pvcs: false }))
        .expect("DeletionRequested journaled");
    let decided = at(&|e| {
        matches!(e, Event::Decided { intents } if intents.iter().any(|p| matches!(p.intent, Intent::DeleteOwnedObjects { delete_pvcs: false })))
    })
    .expect("DeleteOwnedObjects decided");
    let deleted = at(&|e| {
        matches!(e, Event::OwnedObjectsDeleted { objects, complete: true } if objects.iter().any(|o| o == "StatefulSet solo"))
    })
    .expect("OwnedObjectsDeleted journaled, with the StatefulSet");
    assert!(requested < decided && decided < deleted, "{events:?}");
    assert!(
        matches!(events.get(deleted + 1), Some(Event::IntentSucceeded { .. })),
        "the deletion's outcome follows its facts: {events:?}"
    );
    env.finish().await;
}

/// The SpecValid condition.
fn spec_valid(vkc: &logbook_crds::ValkeyCluster) -> Option<(String, String)> {
    vkc.status
        .as_ref()?
        .condition("SpecValid")
        .map(|c| (c.status.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_is_rejected_with_its_messages_and_changes_nothing() {
    let mut env = Env::start("invalid").await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let first_primary = primary(&vkc);
    let sts_before = env.api::<StatefulSet>().get("demo").await.unwrap();
    let cm_before = env.api::<ConfigMap>().get("demo-config").await.unwrap();
    let pods_before: Vec<(String, Option<String>)> = env
        .pods("demo")
        .await
        .iter()
        .map(|p| (p.name_any(), p.metadata.uid.clone()))
        .collect();

    // The API server refuses what the CRD's rules cover: the topology is
    // immutable.
    let refused = env
        .vkcs()
        .patch(
            "demo",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"topology": "Standalone"}})),
        )
        .await;
    match refused {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("topology is immutable"),
                "{status:?}"
            );
        }
        other => panic!("a topology change was not refused: {other:?}"),
    }

    // Directives the operator owns pass the schema (config is a free map)
    // and fail the operator's validation: rejected with every message.
    let bad = env
        .patch(
            "demo",
            serde_json::json!({"spec": {"config": {"port": "7000", "dir": "/tmp"}, "replicas": 4}}),
        )
        .await;
    let generation = bad.metadata.generation;
    let rejected = env
        .wait_status("demo", Duration::from_secs(10), "SpecValid=False", |v| {
            v.status.as_ref().and_then(|s| s.observed_generation) == generation
                && spec_valid(v).is_some_and(|(s, _)| s == "False")
        })
        .await;
    let (_, message) = spec_valid(&rejected).unwrap();
    assert!(message.contains("spec.config"), "{message}");
    assert!(message.contains("\"port\""), "{message}");
    assert!(message.contains("\"dir\""), "{message}");
    // The last valid spec keeps running: nothing changed in the cluster.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sts_after = env.api::<StatefulSet>().get("demo").await.unwrap();
    assert_eq!(
        sts_after.metadata.generation,
        sts_before.metadata.generation
    );
    assert_eq!(
        sts_after.spec.as_ref().unwrap().replicas,
        Some(3),
        "the rejected replicas: 4 was applied"
    );
    let cm_after = env.api::<ConfigMap>().get("demo-config").await.unwrap();
    assert_eq!(
        cm_after.metadata.resource_version,
        cm_before.metadata.resource_version
    );
    let pods_after: Vec<(String, Option<String>)> = env
        .pods("demo")
        .await
        .iter()
        .map(|p| (p.name_any(), p.metadata.uid.clone()))
        .collect();
    assert_eq!(pods_after, pods_before);
    let vkc = env.vkc("demo").await;
    assert_eq!(primary(&vkc), first_primary);

    // Fixed, it is accepted and converges.
    let fixed = env
        .patch(
            "demo",
            serde_json::json!({"spec": {"config": {"port": null, "dir": null}, "replicas": 3}}),
        )
        .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(20)).await;
    assert_eq!(
        vkc.status.as_ref().unwrap().observed_generation,
        fixed.metadata.generation
    );
    assert_eq!(spec_valid(&vkc).unwrap().0, "True");

    // The journal says so: a SpecRejected with both problems.
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let rejections: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.body {
            logbook_journal::Event::SpecRejected { generation, errors } => {
                Some((*generation, errors.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(rejections, vec![(generation.unwrap(), 2)]);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_is_respected_then_unpausing_converges() {
    let env = Env::start("paused").await;
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old = primary(&vkc);
    let before = vkc.status.as_ref().unwrap().last_failover.clone();
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "before", 1000).await;

    env.patch("demo", serde_json::json!({"spec": {"paused": true}}))
        .await;
    env.wait_status("demo", Duration::from_secs(10), "phase Paused", |v| {
        v.status.as_ref().and_then(|s| s.phase)
            == Some(logbook_crds::v1alpha1::ClusterPhase::Paused)
    })
    .await;

    // Kill the primary's process: the kubelet restarts it at once, and it
    // comes back fenced. Paused, nothing is promoted.
    let old_addr = env.pod_addr(&old).await;
    env.kill(&old).await;
    env.eventually(
        Duration::from_secs(15),
        "the old primary back, fenced",
        || {
            let (addr, password) = (old_addr.clone(), password.clone());
            async move {
                try_role(&addr, &password)
                    .await
                    .is_some_and(|(kind, _)| kind == "slave")
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (kind, follows) = role(&old_addr, &password).await;
    assert_eq!(kind, "slave", "the restarted primary did not boot fenced");
    assert_ne!(
        follows.as_deref(),
        Some(old_addr.rsplit_once(':').unwrap().0),
        "it follows itself"
    );
    let vkc = env.vkc("demo").await;
    let status = vkc.status.as_ref().unwrap();
    assert_eq!(
        status.phase,
        Some(logbook_crds::v1alpha1::ClusterPhase::Paused)
    );
    assert_eq!(
        status.last_failover, before,
        "a failover happened while paused"
    );
    for pod in env.pods("demo").await {
        let name = pod.name_any();
        if name != old {
            let (kind, _) = role(&env.pod_addr(&name).await, &password).await;
            assert_eq!(kind, "slave", "{name} was promoted while paused");
        }
    }
    let labels = env.role_labels("demo").await;
    assert_eq!(
        labels[&old].as_deref(),
        Some("primary"),
        "labels moved while paused: {labels:?}"
    );

    // Unpaused, it converges: a primary again, every acknowledged key kept.
    env.patch("demo", serde_json::json!({"spec": {"paused": false}}))
        .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(20)).await;
    let new = primary(&vkc);
    let new_addr = env.pod_addr(&new).await;
    assert_eq!(role(&new_addr, &password).await.0, "master");
    assert_eq!(count_missing(&new_addr, &password, "before", 1000).await, 0);
    write_keys(&env.service_addr("demo").await, &password, "after", 100).await;
    eprintln!("paused: {old} stayed primary (fenced) while paused; {new} after unpausing");
    env.finish().await;
}

/// The names of the PVCs of `cluster`.
async fn pvcs(env: &Env, cluster: &str) -> Vec<String> {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let lp = ListParams::default().labels(&logbook::resources::labels::selector_string(cluster));
    env.api::<PersistentVolumeClaim>()
        .list(&lp)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name_any())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_pvcs_are_kept_on_delete_unless_the_cluster_asks() {
    let env = Env::start("pvcs").await;
    for (name, wipe) in [("keep", false), ("wipe", true)] {
        let annotations = if wipe {
            "\n  annotations:\n    valkey.logbook.dev/delete-pvcs-on-delete: \"true\""
        } else {
            ""
        };
        env.apply_yaml(&format!(
            "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyCluster\nmetadata:\n  name: {name}{annotations}\nspec:\n  topology: Standalone\n  storage:\n    size: 1Gi\n"
        ))
        .await;
    }
    for name in ["keep", "wipe"] {
        env.wait_ready(name, 1, Duration::from_secs(30)).await;
        assert_eq!(pvcs(&env, name).await.len(), 1, "{name} has its data PVC");
        env.vkcs()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["keep", "wipe"] {
        env.eventually(
            Duration::from_secs(20),
            "the ValkeyCluster is gone",
            || async { env.vkcs().get_opt(name).await.unwrap().is_none() },
        )
        .await;
    }
    // On a real API server a deleted PVC lingers until the
    // pvc-protection controller sees its pod gone.
    env.eventually(
        Duration::from_secs(30),
        "the PVC of a cluster that asked is deleted with it",
        || async { pvcs(&env, "wipe").await.is_empty() },
    )
    .await;
    assert_eq!(
        pvcs(&env, "keep").await.len(),
        1,
        "data outlives a cluster that did not ask"
    );
    env.finish().await;
}
