//! The `/openapi/v3/apis/{group}/{version}` document.

use serde_json::{Value, json};

use crate::schema::{CrdKindSchema, openapi_v3_document};

fn doc() -> Value {
    let schema = json!({"type": "object", "description": "A Valkey cluster.", "properties": {"spec": {"type": "object", "description": "Desired state.", "properties": {"shards": {"type": "integer"}}}}});
    openapi_v3_document(
        "valkey.logbook.dev",
        "v1alpha1",
        &[CrdKindSchema {
            kind: "ValkeyCluster",
            list_kind: "ValkeyClusterList",
            plural: "valkeyclusters",
            namespaced: true,
            schema: &schema,
        }],
    )
}

#[test]
fn components_are_keyed_like_the_server() {
    let d = doc();
    let schemas = &d["components"]["schemas"];
    let kind = &schemas["dev.logbook.valkey.v1alpha1.ValkeyCluster"];
    assert_eq!(
        kind["x-kubernetes-group-version-kind"],
        json!([{"group": "valkey.logbook.dev", "kind": "ValkeyCluster", "version": "v1alpha1"}])
    );
    assert_eq!(kind["description"], "A Valkey cluster.");
    assert_eq!(
        kind["properties"]["spec"]["properties"]["shards"]["type"],
        "integer"
    );
    assert_eq!(
        kind["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(kind["properties"]["apiVersion"]["type"], "string");
    let list = &schemas["dev.logbook.valkey.v1alpha1.ValkeyClusterList"];
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/dev.logbook.valkey.v1alpha1.ValkeyCluster"
    );
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"]["description"].is_string());
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"].is_object());
}

#[test]
fn every_ref_resolves() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let d = doc();
    let mut all = Vec::new();
    refs(&d, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            d["components"]["schemas"].get(name).is_some(),
            "dangling {r}"
        );
    }
}

#[test]
fn paths_carry_gvk_and_write_params() {
    let d = doc();
    assert_eq!(d["openapi"], "3.0.0");
    let item = &d["paths"]["/apis/valkey.logbook.dev/v1alpha1/namespaces/{namespace}/valkeyclusters/{name}"];
    let collection =
        &d["paths"]["/apis/valkey.logbook.dev/v1alpha1/namespaces/{namespace}/valkeyclusters"];
    for op in [&item["patch"], &item["put"], &collection["post"]] {
        assert_eq!(
            op["x-kubernetes-group-version-kind"]["kind"],
            "ValkeyCluster"
        );
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in ["fieldValidation", "dryRun", "fieldManager"] {
            assert!(names.contains(&p), "{p} missing in {names:?}");
        }
    }
    for op in [&item["get"], &item["delete"], &collection["get"]] {
        assert!(op["x-kubernetes-group-version-kind"].is_object());
    }
}
