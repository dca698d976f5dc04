//! Merge patch, JSON patch, strategic merge patch and built-in list types,
//! on Kubernetes-shaped objects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};

use super::{PatchError, builtin_list_types, json_patch, merge_patch, strategic_merge_patch};
use crate::listtype::{AllAtomic, ListType, ListTypes};

fn pod_lists() -> &'static dyn ListTypes {
    builtin_list_types("", "Pod").unwrap()
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "valkey", "tier": "db"}, "finalizers": ["a", "b"]},
        "spec": {
            "containers": [
                {"name": "valkey", "image": "valkey:7", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 6379, "protocol": "TCP"}]},
                {"name": "exporter", "image": "exp:1"}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "x", "operator": "Exists"}]
        }
    })
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn merge_patch_sets_and_deletes() {
    let out = merge_patch(
        &pod(),
        &json!({"metadata": {"labels": {"tier": null, "new": "x"}}}),
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "valkey", "new": "x"})
    );
    // Lists are replaced whole.
    let out = merge_patch(&pod(), &json!({"spec": {"containers": [{"name": "only"}]}}));
    assert_eq!(out["spec"]["containers"], json!([{"name": "only"}]));
}

#[test]
fn json_patch_ops() {
    let cm = json!({"data": {"a": "1"}, "list": [1, 2]});
    let patch = json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "replace", "path": "/data/a", "value": "9"},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "add", "path": "/list/0", "value": 0},
        {"op": "remove", "path": "/list/1"},
        {"op": "copy", "from": "/data/b", "path": "/data/c"},
        {"op": "move", "from": "/data/c", "path": "/moved"}
    ]);
    let out = json_patch(&cm, &patch).unwrap();
    assert_eq!(
        out,
        json!({"data": {"a": "9", "b": "2"}, "list": [0, 2, 3], "moved": "2"})
    );
}

#[test]
fn json_patch_test_of_a_missing_value_against_null_succeeds() {
    let cm = json!({"metadata": {"name": "a"}});
    let out = json_patch(
        &cm,
        &json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}
        ]),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["x"]));
    assert!(
        json_patch(
            &cm,
            &json!([{"op": "test", "path": "/metadata/nope", "value": 1}])
        )
        .is_err()
    );
}

#[test]
fn json_patch_test_failure_is_unprocessable() {
    let sts = json!({"spec": {"replicas": 3}});
    let err = json_patch(
        &sts,
        &json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
    )
    .unwrap_err();
    assert!(
        matches!(&err, PatchError::Unprocessable(m) if m == "testing value /spec/replicas failed: test failed"),
        "{err:?}"
    );
    let err = json_patch(&sts, &json!([{"op": "remove", "path": "/spec/nope"}])).unwrap_err();
    assert!(matches!(err, PatchError::Unprocessable(_)));
    let err = json_patch(&sts, &json!([{"op": "add", "path": "/nope/x", "value": 1}])).unwrap_err();
    assert!(matches!(err, PatchError::Unprocessable(_)));
    // The target is untouched on failure (the patch is all or nothing).
    assert_eq!(sts, json!({"spec": {"replicas": 3}}));
}

#[test]
fn json_patch_malformed() {
    assert!(matches!(
        json_patch(&json!({}), &json!({"op": "add"})),
        Err(PatchError::Malformed(_))
    ));
    assert!(matches!(
        json_patch(&json!({}), &json!(["x"])),
        Err(PatchError::Malformed(_))
    ));
}

#[test]
fn smp_merges_containers_by_name_and_env_by_name() {
    let patch = json!({"spec": {"containers": [{"name": "valkey", "image": "valkey:8",
        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    let c = &out["spec"]["containers"];
    assert_eq!(names(c), ["valkey", "exporter"]);
    assert_eq!(c[0]["image"], "valkey:8");
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 6379, "protocol": "TCP"}])
    );
    // Patch items in patch order, interleaved with live-only ones by live
    // order: A (live only, before B in live) then B, C (upstream order).
    assert_eq!(
        c[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
    );
}

#[test]
fn smp_new_element_goes_first_like_upstream() {
    let patch = json!({"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(
        names(&out["spec"]["containers"]),
        ["sidecar", "valkey", "exporter"]
    );
}

#[test]
fn smp_set_element_order() {
    // What kubectl client-side apply sends when adding a sidecar at the end.
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "valkey"}, {"name": "exporter"}, {"name": "sidecar"}],
        "containers": [{"name": "sidecar", "image": "s:1"}]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(
        names(&out["spec"]["containers"]),
        ["valkey", "exporter", "sidecar"]
    );
    assert!(
        out["spec"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with('$'))
    );
    // Reordering only.
    let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "exporter"}, {"name": "valkey"}]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(names(&out["spec"]["containers"]), ["exporter", "valkey"]);
    // A patch item missing from the order list is malformed.
    let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "valkey"}], "containers": [{"name": "x"}]}});
    assert!(matches!(
        strategic_merge_patch(&pod(), &patch, pod_lists()),
        Err(PatchError::Malformed(_))
    ));
}

#[test]
fn smp_patch_delete_element_and_map() {
    let patch = json!({"spec": {"containers": [{"name": "exporter", "$patch": "delete"}]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(names(&out["spec"]["containers"]), ["valkey"]);
    let patch = json!({"metadata": {"labels": {"$patch": "delete"}}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({}));
}

#[test]
fn smp_patch_replace_map_and_list() {
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "only": "me"}}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"only": "me"}));
    let patch =
        json!({"spec": {"containers": [{"name": "new", "image": "n"}, {"$patch": "replace"}]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "new", "image": "n"}])
    );
}

#[test]
fn smp_retain_keys() {
    let deploy =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let lists = builtin_list_types("apps", "Deployment").unwrap();
    let out = strategic_merge_patch(&deploy, &patch, lists).unwrap();
    assert_eq!(out, json!({"spec": {"strategy": {"type": "Recreate"}}}));
    let bad = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
    assert!(strategic_merge_patch(&deploy, &bad, lists).is_err());
    let bad = json!({"spec": {"strategy": {"$retainKeys": "type"}}});
    assert!(matches!(
        strategic_merge_patch(&deploy, &bad, lists),
        Err(PatchError::Malformed(_))
    ));
}

#[test]
fn smp_null_deletes_and_atomic_lists_replace() {
    let patch =
        json!({"metadata": {"labels": {"tier": null}}, "spec": {"tolerations": [{"key": "y"}]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "valkey"}));
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "y"}]));
    // Nulls inside newly added values are dropped too.
    let patch = json!({"spec": {"nodeSelector": {"a": "b", "c": null}}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(out["spec"]["nodeSelector"], json!({"a": "b"}));
}

#[test]
fn smp_set_lists_finalizers() {
    let out = strategic_merge_patch(
        &pod(),
        &json!({"metadata": {"finalizers": ["b", "c"]}}),
        pod_lists(),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
    let out = strategic_merge_patch(&pod(), &patch, pod_lists()).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    let bad = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}});
    assert!(matches!(
        strategic_merge_patch(&pod(), &bad, pod_lists()),
        Err(PatchError::Malformed(_))
    ));
}

#[test]
fn smp_malformed_directives() {
    let bad = json!({"metadata": {"labels": {"$patch": "explode"}}});
    assert!(matches!(
        strategic_merge_patch(&pod(), &bad, pod_lists()),
        Err(PatchError::Malformed(_))
    ));
    let bad = json!({"spec": {"containers": [{"image": "no-name"}]}});
    assert!(matches!(
        strategic_merge_patch(&pod(), &bad, pod_lists()),
        Err(PatchError::Malformed(_))
    ));
    assert!(matches!(
        strategic_merge_patch(&pod(), &json!([1]), pod_lists()),
        Err(PatchError::Malformed(_))
    ));
}

#[test]
fn smp_without_table_replaces_lists() {
    let out = strategic_merge_patch(
        &pod(),
        &json!({"spec": {"containers": [{"name": "x"}]}}),
        &AllAtomic,
    )
    .unwrap();
    assert_eq!(out["spec"]["containers"], json!([{"name": "x"}]));
}

#[test]
fn smp_statefulset_template_and_service_ports() {
    let sts = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "valkey", "image": "v:7"}]}}}});
    let lists = builtin_list_types("apps", "StatefulSet").unwrap();
    let patch = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "valkey", "image": "v:8"}]}}}});
    let out = strategic_merge_patch(&sts, &patch, lists).unwrap();
    assert_eq!(
        out,
        json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "valkey", "image": "v:8"}]}}}})
    );

    let svc = json!({"spec": {"ports": [{"port": 6379, "name": "valkey"}, {"port": 9121, "name": "metrics"}]}});
    let lists = builtin_list_types("", "Service").unwrap();
    let out = strategic_merge_patch(
        &svc,
        &json!({"spec": {"ports": [{"port": 9121, "targetPort": 9121}]}}),
        lists,
    )
    .unwrap();
    assert_eq!(
        out["spec"]["ports"][1],
        json!({"port": 9121, "name": "metrics", "targetPort": 9121})
    );
}

#[test]
fn builtin_tables() {
    let pod = pod_lists();
    let map = |k: &[&str]| ListType::Map(k.iter().map(|s| (*s).to_owned()).collect());
    assert_eq!(pod.list_type(&["spec", "containers"]), map(&["name"]));
    assert_eq!(
        pod.list_type(&["spec", "containers", "ports"]),
        map(&["containerPort", "protocol"])
    );
    assert_eq!(
        pod.list_type(&["spec", "initContainers", "volumeMounts"]),
        map(&["mountPath"])
    );
    assert_eq!(
        pod.list_type(&["spec", "containers", "envFrom"]),
        ListType::Atomic
    );
    assert_eq!(pod.list_type(&["spec", "tolerations"]), ListType::Atomic);
    assert_eq!(pod.list_type(&["status", "conditions"]), map(&["type"]));
    assert_eq!(
        pod.list_type(&["status", "containerStatuses"]),
        ListType::Atomic
    );
    assert_eq!(pod.list_type(&["metadata", "finalizers"]), ListType::Set);
    assert_eq!(
        pod.list_type(&["metadata", "ownerReferences"]),
        map(&["uid"])
    );
    assert_eq!(
        pod.list_type(&["metadata", "managedFields"]),
        ListType::Atomic
    );
    let cron = builtin_list_types("batch", "CronJob").unwrap();
    assert_eq!(
        cron.list_type(&[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
            "env"
        ]),
        map(&["name"])
    );
    let sts = builtin_list_types("apps", "StatefulSet").unwrap();
    assert_eq!(
        sts.list_type(&["spec", "template", "metadata", "finalizers"]),
        ListType::Set
    );
    assert_eq!(
        sts.list_type(&["spec", "volumeClaimTemplates"]),
        ListType::Atomic
    );
    assert_eq!(sts.list_type(&["status", "conditions"]), map(&["type"]));
    assert_eq!(
        builtin_list_types("", "Service")
            .unwrap()
            .list_type(&["spec", "ports"]),
        map(&["port", "protocol"])
    );
    assert_eq!(
        builtin_list_types("", "ServiceAccount")
            .unwrap()
            .list_type(&["secrets"]),
        map(&["name"])
    );
    assert_eq!(
        builtin_list_types("", "Namespace")
            .unwrap()
            .list_type(&["spec", "finalizers"]),
        ListType::Set
    );
    let role = builtin_list_types("rbac.authorization.k8s.io", "Role").unwrap();
    assert_eq!(role.list_type(&["rules"]), ListType::Atomic);
    assert_eq!(role.list_type(&["metadata", "finalizers"]), ListType::Set);
    assert!(builtin_list_types("example.com", "Valkey").is_none());
}
