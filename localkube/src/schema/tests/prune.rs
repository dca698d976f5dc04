//! Pruning of undeclared fields.

use serde_json::json;

use super::with_spec;

#[test]
fn nested_arrays_and_maps() {
    let s = with_spec(json!({"type": "object", "properties": {
        "a": {"type": "object", "properties": {"keep": {"type": "string"}}},
        "list": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "integer"}}}}}}));
    let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1}, "top": 1,
        "spec": {"a": {"keep": "k", "drop": 1}, "list": [{"name": "n", "extra": true}], "map": {"k": {"v": 1, "w": 2}}, "foo": 1}});
    let pruned = s.prune(&mut obj);
    assert_eq!(
        pruned,
        vec![
            ".spec.a.drop",
            ".spec.foo",
            ".spec.list[0].extra",
            ".spec.map.k.w",
            ".top"
        ]
    );
    assert_eq!(
        obj,
        json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
        "spec": {"a": {"keep": "k"}, "list": [{"name": "n"}], "map": {"k": {"v": 1}}}})
    );
}

#[test]
fn preserve_unknown_fields_and_embedded_resources() {
    let s = with_spec(json!({"type": "object", "properties": {
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"typed": {"type": "object", "properties": {"x": {"type": "string"}}}}},
        "tpl": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}));
    let mut obj = json!({"spec": {
        "free": {"anything": {"deep": 1}, "typed": {"x": "1", "y": 2}},
        "tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": "1", "b": 2}, "status": {}}}});
    let pruned = s.prune(&mut obj);
    assert_eq!(
        pruned,
        vec![".spec.free.typed.y", ".spec.tpl.spec.b", ".spec.tpl.status"]
    );
    assert_eq!(obj["spec"]["free"]["anything"], json!({"deep": 1}));
    assert_eq!(obj["spec"]["tpl"]["metadata"], json!({"name": "p"}));
    assert_eq!(obj["spec"]["tpl"]["kind"], json!("Pod"));
}

#[test]
fn mistyped_values_are_left_for_validation() {
    let s = with_spec(
        json!({"type": "object", "properties": {"a": {"type": "object", "properties": {}}}}),
    );
    let mut obj = json!({"spec": {"a": "string"}});
    assert!(s.prune(&mut obj).is_empty());
}
