//! Malformed schemas and list-type lookups.

use serde_json::json;

use crate::listtype::{ListType, ListTypes};
use crate::schema::{CompiledSchema, SchemaError};

fn error_path(schema: serde_json::Value) -> String {
    match CompiledSchema::compile(&schema) {
        Err(SchemaError::Invalid { path, .. }) => path,
        Ok(_) => panic!("compiled: {schema}"),
    }
}

#[test]
fn malformed_schemas_name_the_path() {
    let spec = |s: serde_json::Value| json!({"type": "object", "properties": {"spec": s}});
    assert_eq!(
        error_path(spec(
            json!({"type": "object", "properties": {"a": {"type": "strin"}}})
        )),
        "openAPIV3Schema.properties[spec].properties[a].type"
    );
    assert_eq!(
        error_path(spec(json!({"type": "object", "properties": {"a": {}}}))),
        "openAPIV3Schema.properties[spec].properties[a].type"
    );
    assert_eq!(
        error_path(spec(json!({"type": "string", "pattern": "("}))),
        "openAPIV3Schema.properties[spec].pattern"
    );
    assert_eq!(
        error_path(spec(json!({"type": "string", "maxLength": -1}))),
        "openAPIV3Schema.properties[spec].maxLength"
    );
    assert_eq!(
        error_path(spec(
            json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true})
        )),
        "openAPIV3Schema.properties[spec].uniqueItems"
    );
    assert_eq!(
        error_path(spec(
            json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"})
        )),
        "openAPIV3Schema.properties[spec].x-kubernetes-list-map-keys"
    );
    assert_eq!(
        error_path(spec(
            json!({"type": "string", "x-kubernetes-validations": [{"rule": "self ==="}]})
        )),
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    );
    assert_eq!(
        error_path(spec(
            json!({"type": "string", "x-kubernetes-validations": [{"rule": "true", "messageExpression": "'a' +"}]})
        )),
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].messageExpression"
    );
    assert_eq!(
        error_path(spec(
            json!({"type": "string", "x-kubernetes-validations": [{"rule": "true", "reason": "Nope"}]})
        )),
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].reason"
    );
    assert_eq!(
        error_path(json!({"type": "string"})),
        "openAPIV3Schema.type"
    );
}

#[test]
fn list_types_by_field_path() {
    let s = CompiledSchema::compile(&json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "shards": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "nodes": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id", "zone"], "items": {"type": "object", "properties": {"id": {"type": "integer"}, "zone": {"type": "string"}}}}}}},
        "byName": {"type": "object", "additionalProperties": {"type": "object", "properties": {"hosts": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
        "plain": {"type": "array", "items": {"type": "string"}}}}}})).unwrap();
    assert_eq!(s.list_type(&["spec", "tags"]), ListType::Set);
    assert_eq!(
        s.list_type(&["spec", "shards"]),
        ListType::Map(vec!["name".into()])
    );
    assert_eq!(
        s.list_type(&["spec", "shards", "nodes"]),
        ListType::Map(vec!["id".into(), "zone".into()])
    );
    assert_eq!(
        s.list_type(&["spec", "byName", "anykey", "hosts"]),
        ListType::Set
    );
    assert_eq!(s.list_type(&["spec", "plain"]), ListType::Atomic);
    assert_eq!(s.list_type(&["spec", "nope"]), ListType::Atomic);
}
