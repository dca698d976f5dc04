//! Server-side apply and update ownership on Kubernetes-shaped objects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};

use super::fieldpath::{FieldSet, PathElement};
use super::{ApplyError, FieldConflict, Writer, apply, record_update};
use crate::listtype::ListTypes;
use crate::patch::builtin_list_types;

fn w<'a>(manager: &'a str, now: &'a str) -> Writer<'a> {
    Writer {
        manager,
        api_version: "apps/v1",
        now,
        subresource: None,
    }
}

fn sts_lists() -> &'static dyn ListTypes {
    builtin_list_types("apps", "StatefulSet").unwrap()
}

fn sts(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "v", "namespace": "ns"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

fn entry<'v>(obj: &'v Value, manager: &str, op: &str) -> Option<&'v Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == op)
}

fn conflicts(r: Result<Value, ApplyError>) -> Vec<FieldConflict> {
    match r {
        Err(ApplyError::Conflict(c)) => c,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn create_via_apply_records_exact_fields_v1() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "labels": {"app": "valkey"}}, "data": {"key": "v"}});
    let lists = builtin_list_types("", "ConfigMap").unwrap();
    let writer = Writer {
        manager: "kubectl",
        api_version: "v1",
        now: "2024-01-01T00:00:00Z",
        subresource: None,
    };
    let out = apply(None, &cm, &writer, false, lists).unwrap();
    assert_eq!(out["data"], json!({"key": "v"}));
    // Exactly the shape the real server records for this apply.
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
        }])
    );
}

#[test]
fn map_list_elements_are_keyed() {
    let out = apply(None, &sts(1, "v:7"), &w("op", "t1"), false, sts_lists()).unwrap();
    let f = &entry(&out, "op", "Apply").unwrap()["fieldsV1"];
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    assert_eq!(f["f:spec"]["f:replicas"], json!({}));
    // name/namespace are never owned.
    assert!(f.get("f:metadata").is_none());
}

#[test]
fn ports_key_defaults_protocol() {
    let pod =
        json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 6379}]}]}});
    let lists = builtin_list_types("", "Pod").unwrap();
    let out = apply(None, &pod, &w("op", "t"), false, lists).unwrap();
    let f = &entry(&out, "op", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
    assert!(
        f["f:ports"]
            .get("k:{\"containerPort\":6379,\"protocol\":\"TCP\"}")
            .is_some(),
        "{f}"
    );
}

#[test]
fn two_managers_own_different_fields_then_conflict() {
    let live = apply(None, &sts(1, "v:7"), &w("op", "t1"), false, sts_lists()).unwrap();
    // A second manager applying only the image of the same container to
    // the same value shares it; a different value conflicts.
    let scaler = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "v"},
        "spec": {"replicas": 5}});
    let err = conflicts(apply(
        Some(&live),
        &scaler,
        &w("scaler", "t2"),
        false,
        sts_lists(),
    ));
    assert_eq!(
        err,
        vec![FieldConflict {
            manager: "op".into(),
            field: ".spec.replicas".into()
        }]
    );

    let img = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "v"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "v:8"}]}}}});
    let err = conflicts(apply(
        Some(&live),
        &img,
        &w("other", "t2"),
        false,
        sts_lists(),
    ));
    assert_eq!(
        err,
        vec![FieldConflict {
            manager: "op".into(),
            field: ".spec.template.spec.containers[name=\"app\"].image".into()
        }]
    );

    // Same value: shared ownership, no conflict.
    let same = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "v"}, "spec": {"replicas": 1, "serviceName": "v"}});
    let out = apply(Some(&live), &same, &w("scaler", "t2"), false, sts_lists()).unwrap();
    assert_eq!(out["spec"]["serviceName"], "v");
    assert!(
        entry(&out, "op", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    assert!(
        entry(&out, "scaler", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some()
    );
}

#[test]
fn force_transfers_ownership() {
    let live = apply(None, &sts(1, "v:7"), &w("op", "t1"), false, sts_lists()).unwrap();
    let scaler = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "v"}, "spec": {"replicas": 5}});
    let out = apply(Some(&live), &scaler, &w("scaler", "t2"), true, sts_lists()).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert!(
        entry(&out, "op", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert_eq!(
        entry(&out, "scaler", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    // op no longer owns replicas: applying without it leaves replicas alone.
    let mut cfg = sts(1, "v:7");
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let out2 = apply(Some(&out), &cfg, &w("op", "t3"), false, sts_lists()).unwrap();
    assert_eq!(out2["spec"]["replicas"], 5);
}

#[test]
fn removing_a_field_from_the_config_prunes_it() {
    let mut cfg = sts(1, "v:7");
    cfg["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    cfg["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "app", "image": "v:7"}, {"name": "sidecar", "image": "s"}]);
    let live = apply(None, &cfg, &w("op", "t1"), false, sts_lists()).unwrap();
    let out = apply(
        Some(&live),
        &sts(1, "v:7"),
        &w("op", "t2"),
        false,
        sts_lists(),
    )
    .unwrap();
    assert!(out["metadata"].get("labels").is_none(), "{out}");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "v:7"}])
    );
}

#[test]
fn field_stays_when_another_manager_owns_it() {
    let mut cfg = sts(1, "v:7");
    cfg["metadata"]["labels"] = json!({"a": "1"});
    let live = apply(None, &cfg, &w("op", "t1"), false, sts_lists()).unwrap();
    let other = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "v", "labels": {"a": "1"}}});
    let live = apply(Some(&live), &other, &w("other", "t2"), false, sts_lists()).unwrap();
    let out = apply(
        Some(&live),
        &sts(1, "v:7"),
        &w("op", "t3"),
        false,
        sts_lists(),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"a": "1"}));
    let op = &entry(&out, "op", "Apply").unwrap()["fieldsV1"];
    assert!(op.get("f:metadata").is_none(), "{op}");
}

#[test]
fn edit_then_apply_conflicts_with_the_update_manager() {
    let live = apply(
        None,
        &sts(1, "v:7"),
        &w("kubectl", "t1"),
        false,
        sts_lists(),
    )
    .unwrap();
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(3);
    record_update(
        Some(&live),
        &mut edited,
        &w("kubectl-edit", "t2"),
        sts_lists(),
    );
    let upd = entry(&edited, "kubectl-edit", "Update").unwrap();
    assert_eq!(upd["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(upd["time"], "t2");
    assert!(
        entry(&edited, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    let err = conflicts(apply(
        Some(&edited),
        &sts(1, "v:7"),
        &w("kubectl", "t3"),
        false,
        sts_lists(),
    ));
    assert_eq!(
        err,
        vec![FieldConflict {
            manager: "kubectl-edit".into(),
            field: ".spec.replicas".into()
        }]
    );
    // Forcing moves it back, and the emptied Update entry disappears.
    let out = apply(
        Some(&edited),
        &sts(1, "v:7"),
        &w("kubectl", "t3"),
        true,
        sts_lists(),
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], 1);
    assert!(entry(&out, "kubectl-edit", "Update").is_none());
}

#[test]
fn update_on_create_owns_everything_with_dot_members() {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"app": "x"}}, "data": {"k": "v"}});
    let lists = builtin_list_types("", "ConfigMap").unwrap();
    let writer = Writer {
        manager: "kubectl-create",
        api_version: "v1",
        now: "t",
        subresource: None,
    };
    record_update(None, &mut cm, &writer, lists);
    assert_eq!(
        cm["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );
    // A no-op update records nothing new.
    let before = cm.clone();
    let mut again = cm.clone();
    record_update(
        Some(&before),
        &mut again,
        &Writer {
            now: "t9",
            ..writer.clone()
        },
        lists,
    );
    assert_eq!(again, before);
    // Removing a field drops it from every set.
    let mut removed = cm.clone();
    removed["data"].as_object_mut().unwrap().remove("k");
    record_update(
        Some(&cm),
        &mut removed,
        &Writer {
            manager: "other",
            ..writer
        },
        lists,
    );
    let f = &removed["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(f["f:data"].get("f:k").is_none(), "{removed}");
}

#[test]
fn status_subresource_entries_are_separate() {
    let live = apply(None, &sts(1, "v:7"), &w("op", "t1"), false, sts_lists()).unwrap();
    let mut new = live.clone();
    new["status"] = json!({"readyReplicas": 1});
    let writer = Writer {
        subresource: Some("status"),
        ..w("op", "t2")
    };
    record_update(Some(&live), &mut new, &writer, sts_lists());
    let e = entry(&new, "op", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:readyReplicas": {}}}));
    // Sorted: Apply before Update.
    assert_eq!(new["metadata"]["managedFields"][0]["operation"], "Apply");
}

#[test]
fn apply_to_unmanaged_object_meets_before_first_apply() {
    let live = sts(1, "v:7");
    let err = conflicts(apply(
        Some(&live),
        &sts(2, "v:7"),
        &w("op", "t"),
        false,
        sts_lists(),
    ));
    assert_eq!(
        err,
        vec![FieldConflict {
            manager: "before-first-apply".into(),
            field: ".spec.replicas".into()
        }]
    );
}

#[test]
fn managed_fields_in_config_are_rejected() {
    let mut cfg = sts(1, "v");
    cfg["metadata"]["managedFields"] = json!([{"manager": "x"}]);
    assert!(matches!(
        apply(None, &cfg, &w("op", "t"), false, sts_lists()),
        Err(ApplyError::Invalid(_))
    ));
}

#[test]
fn apply_merges_lists_by_key_keeping_others() {
    let live = apply(None, &sts(1, "v:7"), &w("op", "t1"), false, sts_lists()).unwrap();
    let side = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "v"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "s"}]}}}});
    let out = apply(Some(&live), &side, &w("injector", "t2"), false, sts_lists()).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "sidecar"]);
}

#[test]
fn fieldset_json_roundtrip() {
    let v = json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}},
        "f:fin": {"v:\"x\"": {}}});
    let set = FieldSet::from_json(&v).unwrap();
    assert_eq!(set.to_json(), v);
    assert!(set.has(&[
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into())
    ]));
}

/// A Service's `spec.selector` is an atomic map (`+mapType=atomic`): a
/// key another manager added is taken back by a forced apply of the
/// selector, as on the real server, while a granular map (labels) keeps
/// the other manager's key.
#[test]
fn a_forced_apply_takes_an_atomic_map_back_whole() {
    let lists = builtin_list_types("", "Service").unwrap();
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "demo", "namespace": "ns", "labels": {"app": "valkey"}},
        "spec": {"selector": {"app": "valkey", "role": "primary"}}});
    let writer = |manager: &'static str, now: &'static str| Writer {
        manager,
        api_version: "v1",
        now,
        subresource: None,
    };
    let live = apply(None, &svc, &writer("op", "t1"), false, lists).unwrap();
    assert_eq!(
        entry(&live, "op", "Apply").unwrap()["fieldsV1"]["f:spec"],
        json!({"f:selector": {}})
    );
    let mut edited = live.clone();
    edited["spec"]["selector"]["x"] = json!("y");
    edited["metadata"]["labels"]["team"] = json!("a");
    record_update(
        Some(&live),
        &mut edited,
        &writer("kubectl-patch", "t2"),
        lists,
    );
    let upd = entry(&edited, "kubectl-patch", "Update").unwrap();
    assert_eq!(upd["fieldsV1"]["f:spec"], json!({"f:selector": {}}));
    let err = conflicts(apply(
        Some(&edited),
        &svc,
        &writer("op", "t3"),
        false,
        lists,
    ));
    assert_eq!(
        err,
        vec![FieldConflict {
            manager: "kubectl-patch".into(),
            field: ".spec.selector".into()
        }]
    );
    let out = apply(Some(&edited), &svc, &writer("op", "t3"), true, lists).unwrap();
    assert_eq!(
        out["spec"]["selector"],
        json!({"app": "valkey", "role": "primary"})
    );
    assert_eq!(out["metadata"]["labels"]["team"], "a");
}
