//! Defaulting.

use serde_json::json;

use super::with_spec;

#[test]
fn nested_top_down() {
    let s = with_spec(json!({"type": "object", "default": {}, "properties": {
        "replicas": {"type": "integer", "default": 1},
        "storage": {"type": "object", "default": {}, "properties": {"size": {"type": "string", "default": "1Gi"}, "class": {"type": "string"}}}}}));
    let mut obj = json!({"spec": {}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj,
        json!({"spec": {"replicas": 1, "storage": {"size": "1Gi"}}})
    );
    let mut obj = json!({});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj,
        json!({"spec": {"replicas": 1, "storage": {"size": "1Gi"}}}),
        "a defaulted object gets its children's defaults"
    );
    let mut obj = json!({"spec": {"replicas": 5, "storage": {"size": "2Gi"}}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj,
        json!({"spec": {"replicas": 5, "storage": {"size": "2Gi"}}})
    );
}

#[test]
fn arrays_and_maps() {
    let s = with_spec(json!({"type": "object", "properties": {
        "list": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer", "default": 80}}}},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"on": {"type": "boolean", "default": true}}}}}}));
    let mut obj =
        json!({"spec": {"list": [{}, {"port": 1}], "map": {"a": {}, "b": {"on": false}}}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj,
        json!({"spec": {"list": [{"port": 80}, {"port": 1}], "map": {"a": {"on": true}, "b": {"on": false}}}})
    );
}

#[test]
fn nulls() {
    let s = with_spec(json!({"type": "object", "properties": {
        "foo": {"type": "string", "default": "default"},
        "bar": {"type": "string"},
        "baz": {"type": "string", "nullable": true, "default": "x"}}}));
    let mut obj = json!({"spec": {"foo": null, "bar": null, "baz": null}});
    s.apply_defaults(&mut obj);
    assert_eq!(obj, json!({"spec": {"foo": "default", "baz": null}}));
}

#[test]
fn metadata_at_the_root_is_left_alone() {
    let s = super::super::CompiledSchema::compile(&json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "default": "x"}}}}})).unwrap();
    let mut obj = json!({"metadata": {}});
    s.apply_defaults(&mut obj);
    assert_eq!(obj, json!({"metadata": {}}));
}
