//! Behaviour that rests on the patch and schema modules (JSON patch,
//! strategic merge, server-side apply, CRD schema validation and pruning).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

#[tokio::test]
async fn json_patch_with_test() {
    let server = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(common::client(&server));
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "j"}, "data": {"a": "1"}})).unwrap(),
    )
    .await
    .unwrap();
    let p: json_patch_types::Patch = serde_json::from_value(json!([{"op": "test", "path": "/data/a", "value": "1"}, {"op": "replace", "path": "/data/a", "value": "2"}])).unwrap();
    let got = api
        .patch("j", &PatchParams::default(), &Patch::<()>::Json(p))
        .await
        .unwrap();
    assert_eq!(got.data.unwrap()["a"], "2");
    let p: json_patch_types::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/a", "value": "1"}])).unwrap();
    let e = common::api_err(
        api.patch("j", &PatchParams::default(), &Patch::<()>::Json(p))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    server.shutdown().await;
}

mod json_patch_types {
    pub use json_patch::Patch;
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_by_name() {
    let server = common::start().await;
    let api: Api<Pod> = Api::default_namespaced(common::client(&server));
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}})).unwrap();
    api.create(&PostParams::default(), &p).await.unwrap();
    let got = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "b", "image": "2"}]}})),
        )
        .await
        .unwrap();
    let cs = got.spec.unwrap().containers;
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[1].image.as_deref(), Some("2"));
    server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_ownership_and_conflicts() {
    let server = common::start().await;
    let api: Api<StatefulSet> = Api::default_namespaced(common::client(&server));
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "a"},
        "spec": {"replicas": 1, "serviceName": "a", "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let made = api
        .patch("a", &PatchParams::apply("one"), &Patch::Apply(&sts))
        .await
        .unwrap();
    assert_eq!(
        made.metadata.managed_fields.unwrap()[0].manager.as_deref(),
        Some("one")
    );
    let mut other = sts.clone();
    other["spec"]["replicas"] = json!(3);
    let e = common::api_err(
        api.patch("a", &PatchParams::apply("two"), &Patch::Apply(&other))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    assert!(e.message.contains(".spec.replicas"), "{}", e.message);
    let forced = api
        .patch(
            "a",
            &PatchParams::apply("two").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(3));
    server.shutdown().await;
}

async fn crd_with_schema(server: &logbook_localkube::RunningServer) -> Api<DynamicObject> {
    let client = common::client(server);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.test.localkube.dev"},
        "spec": {"group": "test.localkube.dev", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["replicas"], "properties": {
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 9},
                        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.localkube.dev", "v1", "Gadget"),
        "gadgets",
    );
    Api::namespaced_with(client, "default", &ar)
}

fn gadget(spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "test.localkube.dev/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec})).unwrap()
}

#[tokio::test]
async fn crd_schema_rejections_have_exact_causes() {
    let server = common::start().await;
    let api = crd_with_schema(&server).await;
    let e = common::api_err(
        api.create(&PostParams::default(), &gadget(json!({"replicas": 0})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "Gadget.test.localkube.dev \"g\" is invalid: spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    );
    let cause = &e.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldValueInvalid", "spec.replicas")
    );
    let e = common::api_err(
        api.create(&PostParams::default(), &gadget(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.details.unwrap().causes[0].reason, "FieldValueRequired");
    let made = api
        .create(&PostParams::default(), &gadget(json!({"replicas": 2})))
        .await
        .unwrap();
    assert_eq!(made.data["spec"]["mode"], "a", "schema default applied");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_strict_and_warn() {
    let server = common::start().await;
    let _api = crd_with_schema(&server).await;
    let body = json!({"apiVersion": "test.localkube.dev/v1", "kind": "Gadget", "metadata": {"name": "u"}, "spec": {"replicas": 2, "foo": 1}}).to_string();
    let path = "/apis/test.localkube.dev/v1/namespaces/default/gadgets";
    let ct = [("Content-Type", "application/json")];
    let (code, _, text) = common::raw(
        server.addr(),
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &ct,
        body.as_bytes(),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        text.contains("strict decoding error: unknown field \\\"spec.foo\\\""),
        "{text}"
    );
    let (code, head, _) = common::raw(server.addr(), "POST", path, &ct, body.as_bytes()).await;
    assert_eq!(code, 201);
    assert!(
        head.contains("299 - \"unknown field \\\"spec.foo\\\"\""),
        "{head}"
    );
    server.shutdown().await;
}
