//! apps/v1 Deployments and ReplicaSets over HTTP with kube-rs: served,
//! defaulted, validated with the real server's messages, their scale
//! subresource; and the monitoring.coreos.com kinds served once the
//! trimmed CRD fixtures are applied.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn deployment(name: &str, selector: Value, labels: Value, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": selector,
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "valkey"}]}}}})
}

async fn post(server: &logbook_localkube::RunningServer, path: &str, body: &Value) -> (u16, Value) {
    let (code, _, out) = common::raw(
        server.addr(),
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    (code, serde_json::from_str(&out).unwrap())
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn deployments_are_defaulted_and_validated() {
    let server = common::start().await;
    let api: Api<Deployment> = Api::default_namespaced(common::client(&server));
    let web = deployment(
        "web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
        2,
    );
    let d = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(web.clone()).unwrap(),
        )
        .await
        .unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(
        serde_json::to_value(strategy.rolling_update.unwrap()).unwrap(),
        json!({"maxSurge": "25%", "maxUnavailable": "25%"})
    );
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(d.metadata.generation, Some(1));

    // The selector must be there, not empty, and match the template (a
    // missing one matches nothing, so the template is refused too, as on a
    // real server).
    let mut no_selector = deployment("a", json!(null), json!({"app": "a"}), 1);
    no_selector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    let (code, s) = post(&server, DEPLOYMENTS, &no_selector).await;
    assert_eq!(code, 422);
    assert_eq!(
        s["message"],
        "Deployment.apps \"a\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`]"
    );
    let (_, s) = post(
        &server,
        DEPLOYMENTS,
        &deployment("b", json!({}), json!({"app": "b"}), 1),
    )
    .await;
    assert_eq!(
        s["message"],
        "Deployment.apps \"b\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    );
    let (_, s) = post(
        &server,
        DEPLOYMENTS,
        &deployment(
            "c",
            json!({"matchLabels": {"app": "c"}}),
            json!({"app": "other", "tier": "x"}),
            -1,
        ),
    )
    .await;
    assert_eq!(
        s["message"],
        "Deployment.apps \"c\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\", \"tier\":\"x\"}: `selector` does not match template `labels`]"
    );
    assert_eq!(
        s["details"]["causes"][1]["field"],
        "spec.template.metadata.labels"
    );
    let mut never = deployment(
        "n",
        json!({"matchLabels": {"app": "n"}}),
        json!({"app": "n"}),
        1,
    );
    never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let (_, s) = post(&server, DEPLOYMENTS, &never).await;
    assert_eq!(
        s["message"],
        "Deployment.apps \"n\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
    );

    // The selector is immutable; the template may change.
    let moved = deployment(
        "web",
        json!({"matchLabels": {"app": "web2"}}),
        json!({"app": "web2"}),
        2,
    );
    let e = common::api_err(
        api.patch(
            "web",
            &PatchParams::apply("t").force(),
            &Patch::Apply(&moved),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
    let mut retemplated = web.clone();
    retemplated["spec"]["template"]["metadata"]["labels"]["version"] = json!("2");
    let d = api
        .patch(
            "web",
            &PatchParams::apply("t").force(),
            &Patch::Apply(&retemplated),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));

    // scale: the Scale's selector is the Deployment's, replicas >= 0.
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );
    let e = common::api_err(
        api.patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    // status is a subresource: a write to the object leaves it alone.
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"readyReplicas": 1}})),
    )
    .await
    .unwrap();
    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().ready_replicas, Some(1));
    server.shutdown().await;
}

#[tokio::test]
async fn replicasets_are_validated_and_scaled() {
    let server = common::start().await;
    let api: Api<ReplicaSet> = Api::default_namespaced(common::client(&server));
    let mut rs = deployment(
        "r",
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["r"]}]}),
        json!({"app": "r"}),
        1,
    );
    rs["kind"] = json!("ReplicaSet");
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(rs.clone()).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.spec.unwrap().replicas, Some(1));
    let mut bad = rs.clone();
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "x"});
    let (code, s) = post(
        &server,
        "/apis/apps/v1/namespaces/default/replicasets",
        &bad,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        s["message"],
        "ReplicaSet.apps \"bad\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"
    );
    let scale = api.get_scale("r").await.unwrap();
    assert_eq!(
        scale.status.unwrap().selector.as_deref(),
        Some("app in (r)")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn monitoring_crds_serve_service_monitors_and_prometheus_rules() {
    let server = common::start().await;
    let client = common::client(&server);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/monitoring.coreos.com-crds.yaml"),
    )
    .unwrap();
    for doc in serde_yaml::Deserializer::from_str(&fixture) {
        let crd: CustomResourceDefinition = serde::Deserialize::deserialize(doc).unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    for (kind, plural, body) in [
        (
            "ServiceMonitor",
            "servicemonitors",
            json!({"selector": {"matchLabels": {"app": "logbook"}}, "endpoints": [{"port": "metrics", "interval": "30s"}]}),
        ),
        (
            "PrometheusRule",
            "prometheusrules",
            json!({"groups": [{"name": "logbook", "rules": [{"alert": "LogbookDown", "expr": "up == 0", "for": "5m"}]}]}),
        ),
    ] {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("monitoring.coreos.com", "v1", kind),
            plural,
        );
        let api: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &ar);
        let obj = json!({"apiVersion": "monitoring.coreos.com/v1", "kind": kind,
            "metadata": {"name": "logbook"}, "spec": body});
        api.patch("logbook", &PatchParams::apply("chart"), &Patch::Apply(&obj))
            .await
            .unwrap();
        let got = api.get("logbook").await.unwrap();
        assert_eq!(got.data["spec"], body, "{kind}");
        // The schema's required spec is enforced.
        let (code, s) = post(
            &server,
            &format!("/apis/monitoring.coreos.com/v1/namespaces/default/{plural}"),
            &json!({"apiVersion": "monitoring.coreos.com/v1", "kind": kind, "metadata": {"name": "empty"}}),
        )
        .await;
        assert_eq!(code, 422, "{s}");
        assert_eq!(s["details"]["causes"][0]["field"], "spec");
    }
    server.shutdown().await;
}

/// A StatefulSet's spec may change only in the fields the real server
/// lets change; its volume claim templates, like its service name, are
/// refused with the real server's message, and the stored object is left
/// as it was.
#[tokio::test]
async fn a_statefulset_keeps_its_claim_templates() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let server = common::start().await;
    let api: Api<StatefulSet> = Api::default_namespaced(common::client(&server));
    let sts = |size: &str, replicas: i64| -> StatefulSet {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {"replicas": replicas, "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "valkey"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": size}}}}]}}))
        .unwrap()
    };
    api.create(&PostParams::default(), &sts("1Gi", 1))
        .await
        .unwrap();
    // Replicas may change.
    let mut grown = api.get("db").await.unwrap();
    grown.spec.as_mut().unwrap().replicas = Some(3);
    api.replace("db", &PostParams::default(), &grown)
        .await
        .unwrap();
    // The claim template may not.
    let mut resized = api.get("db").await.unwrap();
    resized.spec.as_mut().unwrap().volume_claim_templates =
        sts("2Gi", 3).spec.unwrap().volume_claim_templates;
    let err = api
        .replace("db", &PostParams::default(), &resized)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
    let stored = api.get("db").await.unwrap();
    let spec = stored.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.volume_claim_templates.unwrap()[0]
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "1Gi"
    );
}
