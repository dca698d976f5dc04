//! The OpenAPI keywords, with the real server's reasons and wording.

use serde_json::json;

use super::{cause, check, with_spec};

#[test]
fn integer_type_and_bounds() {
    let s = with_spec(
        json!({"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1, "maximum": 100}}}),
    );
    assert!(check(&s, json!({"replicas": 3})).is_empty());
    assert!(
        check(&s, json!({"replicas": 3.0})).is_empty(),
        "a whole float is an integer"
    );
    assert_eq!(
        check(&s, json!({"replicas": 200})),
        vec![cause(
            "FieldValueInvalid",
            "Invalid value: 200: spec.replicas in body should be less than or equal to 100",
            "spec.replicas"
        )]
    );
    assert_eq!(
        check(&s, json!({"replicas": 0})),
        vec![cause(
            "FieldValueInvalid",
            "Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            "spec.replicas"
        )]
    );
    assert_eq!(
        check(&s, json!({"replicas": "string"})),
        vec![cause(
            "FieldValueTypeInvalid",
            "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            "spec.replicas"
        )]
    );
    assert_eq!(
        check(&s, json!({"replicas": 1.5}))[0].message,
        "Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\""
    );
}

#[test]
fn exclusive_bounds_and_multiple_of() {
    let s = with_spec(
        json!({"type": "object", "properties": {"n": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1000000, "exclusiveMaximum": true, "multipleOf": 0.5}}}),
    );
    assert!(
        check(&s, json!({"n": 1})).is_empty(),
        "a number schema accepts integers"
    );
    assert_eq!(
        check(&s, json!({"n": 0}))[0].message,
        "Invalid value: 0: spec.n in body should be greater than 0"
    );
    // Go prints the float64 limit as 1e+06.
    assert_eq!(
        check(&s, json!({"n": 1000000}))[0].message,
        "Invalid value: 1000000: spec.n in body should be less than 1e+06"
    );
    assert_eq!(
        check(&s, json!({"n": 1.25}))[0].message,
        "Invalid value: 1.25: spec.n in body should be a multiple of 0.5"
    );
}

#[test]
fn enum_not_supported() {
    let s = with_spec(
        json!({"type": "object", "properties": {"mode": {"type": "string", "enum": ["a", "b"]}, "n": {"type": "integer", "enum": [1, 2]}}}),
    );
    assert_eq!(
        check(&s, json!({"mode": "x"})),
        vec![cause(
            "FieldValueNotSupported",
            "Unsupported value: \"x\": supported values: \"a\", \"b\"",
            "spec.mode"
        )]
    );
    assert_eq!(
        check(&s, json!({"n": 3}))[0].message,
        "Unsupported value: 3: supported values: \"1\", \"2\""
    );
    assert!(check(&s, json!({"mode": "b", "n": 2})).is_empty());
}

#[test]
fn strings() {
    let s = with_spec(
        json!({"type": "object", "properties": {"name": {"type": "string", "minLength": 3, "maxLength": 5, "pattern": "^[a-z]+$"}}}),
    );
    assert_eq!(
        check(&s, json!({"name": "abcdef"})),
        vec![cause(
            "FieldValueTooLong",
            "Too long: may not be more than 5 bytes",
            "spec.name"
        )]
    );
    assert_eq!(
        check(&s, json!({"name": "ab"}))[0].message,
        "Invalid value: \"ab\": spec.name in body should be at least 3 chars long"
    );
    assert_eq!(
        check(&s, json!({"name": "AB1"}))[0].message,
        "Invalid value: \"AB1\": spec.name in body should match '^[a-z]+$'"
    );
    assert!(check(&s, json!({"name": "abc"})).is_empty());
}

#[test]
fn formats() {
    let s = with_spec(json!({"type": "object", "properties": {
        "t": {"type": "string", "format": "date-time"},
        "b": {"type": "string", "format": "byte"},
        "i": {"type": "integer", "format": "int32"},
        "u": {"type": "string", "format": "uuid"}}}));
    assert!(check(&s, json!({"t": "2024-01-02T03:04:05Z", "b": "aGVsbG8=", "i": 5_000_000_000_i64, "u": "123e4567-e89b-12d3-a456-426614174000"})).is_empty());
    assert_eq!(
        check(&s, json!({"t": "yesterday"})),
        vec![cause(
            "FieldValueTypeInvalid",
            "Invalid value: \"yesterday\": spec.t in body must be of type date-time: \"yesterday\"",
            "spec.t"
        )]
    );
    assert_eq!(check(&s, json!({"b": "!!"}))[0].field, "spec.b");
}

#[test]
fn arrays_and_objects() {
    let s = with_spec(
        json!({"type": "object", "required": ["items"], "minProperties": 1, "maxProperties": 2, "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
        "a": {"type": "string"}, "b": {"type": "string"}}}),
    );
    assert_eq!(
        check(&s, json!({})),
        vec![
            cause("FieldValueRequired", "Required value", "spec.items"),
            cause(
                "FieldValueInvalid",
                "Invalid value: 0: spec in body should have at least 1 properties",
                "spec"
            ),
        ]
    );
    assert_eq!(
        check(&s, json!({"items": []}))[0].message,
        "Invalid value: 0: spec.items in body should have at least 1 items"
    );
    assert_eq!(
        check(
            &s,
            json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
        ),
        vec![cause(
            "FieldValueTooMany",
            "Too many: 3: must have at most 2 items",
            "spec.items"
        )]
    );
    assert_eq!(
        check(&s, json!({"items": [{"name": "a"}, {}]})),
        vec![cause(
            "FieldValueRequired",
            "Required value",
            "spec.items[1].name"
        )]
    );
    assert_eq!(
        check(&s, json!({"items": [{"name": "a"}], "a": "x", "b": "y"}))[0],
        cause(
            "FieldValueTooMany",
            "Too many: 3: must have at most 2 items",
            "spec"
        )
    );
}

#[test]
fn maps_use_dotted_paths() {
    let s = with_spec(
        json!({"type": "object", "properties": {"config": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 2}}}}),
    );
    assert_eq!(
        check(&s, json!({"config": {"key": "long"}})),
        vec![cause(
            "FieldValueTooLong",
            "Too long: may not be more than 2 bytes",
            "spec.config.key"
        )]
    );
}

#[test]
fn nullable() {
    let s = with_spec(
        json!({"type": "object", "properties": {"a": {"type": "string", "nullable": true}, "b": {"type": "string"}}}),
    );
    assert!(check(&s, json!({"a": null})).is_empty());
    assert_eq!(
        check(&s, json!({"b": null})),
        vec![cause(
            "FieldValueTypeInvalid",
            "Invalid value: \"null\": spec.b in body must be of type string: \"null\"",
            "spec.b"
        )]
    );
}

#[test]
fn int_or_string() {
    let s = with_spec(
        json!({"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": true, "maximum": 10}}}),
    );
    assert!(check(&s, json!({"port": 5})).is_empty());
    assert!(check(&s, json!({"port": "http"})).is_empty());
    let causes = check(&s, json!({"port": true}));
    assert_eq!(
        causes[0],
        cause(
            "FieldValueInvalid",
            "Invalid value: \"\": spec.port must validate at least one schema (anyOf)",
            "spec.port"
        )
    );
    assert_eq!(check(&s, json!({"port": 11}))[0].field, "spec.port");
}

#[test]
fn list_sets_and_maps_reject_duplicates() {
    let s = with_spec(json!({"type": "object", "properties": {
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}}}));
    assert_eq!(
        check(&s, json!({"tags": ["a", "b", "a"]})),
        vec![cause(
            "FieldValueDuplicate",
            "Duplicate value: \"a\"",
            "spec.tags[2]"
        )]
    );
    assert_eq!(
        check(
            &s,
            json!({"ports": [{"name": "x", "port": 1}, {"name": "x", "port": 2}]})
        ),
        vec![cause(
            "FieldValueDuplicate",
            "Duplicate value: map[string]interface {}{\"name\":\"x\"}",
            "spec.ports[1]"
        )]
    );
}

#[test]
fn embedded_resource_requires_type_meta() {
    let s = with_spec(
        json!({"type": "object", "properties": {"template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}),
    );
    assert_eq!(
        check(&s, json!({"template": {"kind": "Pod"}})),
        vec![cause(
            "FieldValueRequired",
            "Required value: must not be empty",
            "spec.template.apiVersion"
        )]
    );
    assert!(check(&s, json!({"template": {"kind": "Pod", "apiVersion": "v1"}})).is_empty());
}

#[test]
fn update_ratchets_unchanged_invalid_values() {
    let s = with_spec(
        json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 1}, "b": {"type": "string", "maxLength": 1}}}),
    );
    let old = json!({"spec": {"a": "too long", "b": "x"}});
    assert!(
        s.validate(&json!({"spec": {"a": "too long", "b": "y"}}), Some(&old))
            .is_empty()
    );
    assert_eq!(
        s.validate(&json!({"spec": {"a": "too long", "b": "yy"}}), Some(&old))
            .len(),
        1
    );
}

#[test]
fn junctors() {
    let s = with_spec(json!({"type": "object", "properties": {
        "a": {"type": "string", "allOf": [{"minLength": 2}], "not": {"enum": ["no"]}},
        "o": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]}}}));
    assert_eq!(
        check(&s, json!({"a": "x"}))[0].message,
        "Invalid value: \"x\": spec.a in body should be at least 2 chars long"
    );
    assert_eq!(
        check(&s, json!({"a": "no"}))[0].message,
        "Invalid value: \"\": spec.a must not validate the schema (not)"
    );
    assert!(check(&s, json!({"o": 20})).is_empty());
    assert_eq!(
        check(&s, json!({"o": 5}))[0].message,
        "Invalid value: \"\": spec.o must validate one and only one schema (oneOf). Found 2 valid alternatives"
    );
}
