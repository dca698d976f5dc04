//! Every verb through the real kube-rs client: create, get, list, update,
//! patch, delete, deletecollection, with the real server's conflicts,
//! generation rules, status-subresource semantics, selectors, paging,
//! dry runs and kind-specific defaults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"a": "1"}
    }))
    .unwrap()
}

#[tokio::test]
async fn bootstrap_objects_exist() {
    let server = common::start().await;
    let client = common::client(&server);
    let ns: Api<Namespace> = Api::all(client.clone());
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let got = ns.get(n).await.unwrap();
        assert_eq!(got.status.unwrap().phase.as_deref(), Some("Active"));
    }
    let svc: Api<Service> = Api::default_namespaced(client);
    let k = svc.get("kubernetes").await.unwrap();
    assert_eq!(k.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.1"));
    server.shutdown().await;
}

#[tokio::test]
async fn create_get_update_delete() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let created = api
        .create(&PostParams::default(), &cm("one", &[]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some());
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv1: u64 = meta.resource_version.as_ref().unwrap().parse().unwrap();

    let e = common::api_err(
        api.create(&PostParams::default(), &cm("one", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"one\" already exists");

    let mut got = api.get("one").await.unwrap();
    got.data.as_mut().unwrap().insert("b".into(), "2".into());
    let updated = api
        .replace("one", &PostParams::default(), &got)
        .await
        .unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    assert_eq!(updated.metadata.generation, Some(2));

    // A stale resourceVersion is a conflict, worded as the real server.
    let e = common::api_err(
        api.replace("one", &PostParams::default(), &got)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on configmaps \"one\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // No resourceVersion: unconditional.
    let mut unconditional = updated.clone();
    unconditional.metadata.resource_version = None;
    unconditional
        .data
        .as_mut()
        .unwrap()
        .insert("c".into(), "3".into());
    api.replace("one", &PostParams::default(), &unconditional)
        .await
        .unwrap();

    // An update that changes nothing keeps the resourceVersion.
    let now = api.get("one").await.unwrap();
    let same = api
        .replace("one", &PostParams::default(), &now)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        now.metadata.resource_version
    );

    api.delete("one", &DeleteParams::default()).await.unwrap();
    let e = common::api_err(api.get("one").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "configmaps \"one\" not found");
    server.shutdown().await;
}

#[tokio::test]
async fn generate_name_and_name_validation() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let mut c = cm("", &[]);
    c.metadata.name = None;
    c.metadata.generate_name = Some("gen-".into());
    let a = api.create(&PostParams::default(), &c).await.unwrap();
    let name = a.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let e = common::api_err(
        api.create(&PostParams::default(), &cm("Bad_Name", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", e.message);
    // Creating in a namespace that does not exist.
    let other: Api<ConfigMap> = Api::namespaced(common::client(&server), "nope");
    let e = common::api_err(
        other
            .create(&PostParams::default(), &cm("x", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn merge_patch_and_generation_rules() {
    let server = common::start().await;
    let client = common::client(&server);
    let api: Api<StatefulSet> = Api::default_namespaced(client);
    let sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        "status": {"replicas": 7}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &sts).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.status.as_ref().is_none_or(|s| s.replicas == 0),
        "status is dropped on create"
    );

    // A label change does not bump the generation; a spec change does.
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(1));
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    assert_eq!(p.spec.as_ref().unwrap().replicas, Some(3));

    // Status writes: only through /status, and they leave the generation.
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(
        p.status.map(|s| s.replicas).unwrap_or(0),
        0,
        "main resource ignores status"
    );
    let p = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 2, "readyReplicas": 2}, "spec": {"replicas": 9}, "metadata": {"labels": {"z": "1"}}})))
        .await
        .unwrap();
    assert_eq!(p.status.as_ref().unwrap().replicas, 2);
    assert_eq!(
        p.spec.as_ref().unwrap().replicas,
        Some(3),
        "status write ignores spec"
    );
    assert!(
        !p.metadata.labels.unwrap().contains_key("z"),
        "status write ignores labels"
    );
    assert_eq!(p.metadata.generation, Some(2));

    // The scale subresource.
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.as_ref().unwrap().replicas, 2);
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let s = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(4));
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );

    // Merge patch with a stale resourceVersion conflicts.
    let e = common::api_err(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on statefulsets.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn selectors_and_paging() {
    let server = common::start().await;
    let client = common::client(&server);
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for i in 0..10 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i}"), &[("app", "t"), ("tier", tier)]),
        )
        .await
        .unwrap();
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier=even"))
                .await
                .unwrap()
        )
        .len(),
        5
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier in (even,odd),app"))
                .await
                .unwrap()
        )
        .len(),
        10
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier notin (even)"))
                .await
                .unwrap()
        )
        .len(),
        5
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("!app"))
                .await
                .unwrap()
        )
        .len(),
        0
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=cm-3"))
                .await
                .unwrap()
        ),
        vec!["cm-3"]
    );
    let e = common::api_err(
        api.list(&ListParams::default().labels("tier in ("))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    let e = common::api_err(
        api.list(&ListParams::default().fields("spec.x=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: spec.x")
    );

    // Paging: every object exactly once.
    let mut seen = Vec::new();
    let mut lp = ListParams::default().labels("app=t").limit(3);
    loop {
        let page = api.list(&lp).await.unwrap();
        let token = page.metadata.continue_.clone();
        seen.extend(names(page));
        match token {
            Some(t) if !t.is_empty() => lp = lp.continue_token(&t),
            _ => break,
        }
    }
    seen.sort();
    assert_eq!(seen.len(), 10);
    seen.dedup();
    assert_eq!(seen.len(), 10);

    // Cluster-wide list, and the list's kind and resourceVersion.
    let all: Api<ConfigMap> = Api::all(client);
    let l = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(l.items.len(), 10);
    assert!(l.metadata.resource_version.unwrap().parse::<u64>().unwrap() > 0);

    // deletecollection by label.
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=odd"),
    )
    .await
    .unwrap();
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        5
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pod_field_selectors() {
    let server = common::start().await;
    let api: Api<Pod> = Api::default_namespaced(common::client(&server));
    for (name, node) in [("a", "n1"), ("b", "n2")] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}})).unwrap();
        api.create(&PostParams::default(), &p).await.unwrap();
    }
    api.patch_status(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    let l = api
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    assert_eq!(l.items.len(), 1);
    let l = api
        .list(&ListParams::default().fields("spec.nodeName=n2,status.phase!=Running"))
        .await
        .unwrap();
    assert_eq!(l.items[0].metadata.name.as_deref(), Some("b"));
    assert_eq!(
        api.get("b").await.unwrap().status.unwrap().phase.as_deref(),
        Some("Pending")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    let before = server.store().resource_version();
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let c = api.create(&pp, &cm("dry", &[])).await.unwrap();
    assert!(c.metadata.uid.is_some());
    assert!(common::api_err(api.get("dry").await.unwrap_err()).code == 404);
    api.create(&PostParams::default(), &cm("wet", &[]))
        .await
        .unwrap();
    let mid = server.store().resource_version();
    api.patch(
        "wet",
        &PatchParams::default().dry_run(),
        &Patch::Merge(json!({"data": {"z": "1"}})),
    )
    .await
    .unwrap();
    api.delete(
        "wet",
        &DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(server.store().resource_version(), mid);
    assert!(
        !api.get("wet")
            .await
            .unwrap()
            .data
            .unwrap()
            .contains_key("z")
    );
    assert!(mid > before);
    server.shutdown().await;
}

#[tokio::test]
async fn kind_defaults() {
    let server = common::start().await;
    let client = common::client(&server);
    let svcs: Api<Service> = Api::default_namespaced(client.clone());
    let s: Service = serde_json::from_value(
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .unwrap();
    let s = svcs.create(&PostParams::default(), &s).await.unwrap();
    let spec = s.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert!(spec.cluster_ip.unwrap().starts_with("10."));
    let h: Service =
        serde_json::from_value(json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}))
            .unwrap();
    assert_eq!(
        svcs.create(&PostParams::default(), &h)
            .await
            .unwrap()
            .spec
            .unwrap()
            .cluster_ip
            .as_deref(),
        Some("None")
    );

    let secrets: Api<Secret> = Api::default_namespaced(client);
    let sec: Secret = serde_json::from_value(
        json!({"metadata": {"name": "x"}, "stringData": {"password": "hunter2"}}),
    )
    .unwrap();
    let sec = secrets.create(&PostParams::default(), &sec).await.unwrap();
    assert!(sec.string_data.is_none());
    assert_eq!(sec.data.unwrap()["password"].0, b"hunter2");
    assert_eq!(sec.type_.as_deref(), Some("Opaque"));
    server.shutdown().await;
}

#[tokio::test]
async fn kubeconfig_path_works() {
    let server = common::start_with(logbook_localkube::Config {
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("via-kubeconfig", &[]))
        .await
        .unwrap();
    // Without the token: 401.
    let e = common::api_err(
        Api::<ConfigMap>::default_namespaced(common::client(&server))
            .get("via-kubeconfig")
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));
    let (code, _, body) = common::raw(server.addr(), "GET", "/healthz", &[], b"").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    server.shutdown().await;
}
