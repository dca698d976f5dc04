//! `x-kubernetes-validations`.

use serde_json::json;

use super::{cause, check, with_spec};
use crate::schema::CompiledSchema;

#[test]
fn plain_rule_messages() {
    let s = with_spec(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.min <= self.max"},
        {"rule": "self.min >= 0", "message": "min must be non-negative"}],
        "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}));
    assert!(check(&s, json!({"min": 1, "max": 2})).is_empty());
    assert_eq!(
        check(&s, json!({"min": -3, "max": -4})),
        vec![
            cause(
                "FieldValueInvalid",
                "Invalid value: \"object\": failed rule: self.min <= self.max",
                "spec"
            ),
            cause(
                "FieldValueInvalid",
                "Invalid value: \"object\": min must be non-negative",
                "spec"
            ),
        ]
    );
}

#[test]
fn root_rules_report_nil_path() {
    let s = CompiledSchema::compile(&json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('v')"}], "properties": {"spec": {"type": "object"}}})).unwrap();
    assert!(
        s.validate(
            &json!({"metadata": {"name": "valkey", "labels": {"a": "b"}}}),
            None
        )
        .is_empty()
    );
    assert_eq!(
        s.validate(&json!({"metadata": {"name": "x"}}), None),
        vec![cause(
            "FieldValueInvalid",
            "Invalid value: \"object\": failed rule: self.metadata.name.startsWith('v')",
            "<nil>"
        )]
    );
}

#[test]
fn immutability_transition_rule() {
    let s = with_spec(
        json!({"type": "object", "properties": {"name": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}]}}}),
    );
    let new = json!({"spec": {"name": "a"}});
    assert!(s.validate(&new, None).is_empty(), "skipped on create");
    assert!(
        s.validate(&new, Some(&json!({"spec": {"name": "a"}})))
            .is_empty()
    );
    assert_eq!(
        s.validate(&new, Some(&json!({"spec": {"name": "b"}}))),
        vec![cause(
            "FieldValueInvalid",
            "Invalid value: \"string\": name is immutable",
            "spec.name"
        )]
    );
    assert!(
        s.validate(&new, Some(&json!({"spec": {}}))).is_empty(),
        "skipped when the old value is absent"
    );
}

#[test]
fn optional_old_self() {
    let s = with_spec(
        json!({"type": "object", "properties": {"n": {"type": "integer", "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": true, "message": "no decrease"}, {"rule": "oldSelf.hasValue() || self < 10", "optionalOldSelf": true, "message": "small on create"}]}}}),
    );
    assert!(s.validate(&json!({"spec": {"n": 3}}), None).is_empty());
    assert_eq!(
        s.validate(&json!({"spec": {"n": 30}}), None)[0].message,
        "Invalid value: \"integer\": small on create"
    );
    assert_eq!(
        s.validate(&json!({"spec": {"n": 2}}), Some(&json!({"spec": {"n": 3}})))[0].message,
        "Invalid value: \"integer\": no decrease"
    );
}

#[test]
fn rules_in_list_map_items_correlate_by_key() {
    let s = with_spec(
        json!({"type": "object", "properties": {"shards": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "required": ["name"], "x-kubernetes-validations": [{"rule": "self.size >= oldSelf.size", "message": "cannot shrink"}, {"rule": "self.size > 0"}],
        "properties": {"name": {"type": "string"}, "size": {"type": "integer"}}}}}}),
    );
    let old = json!({"spec": {"shards": [{"name": "a", "size": 5}, {"name": "b", "size": 5}]}});
    let new = json!({"spec": {"shards": [{"name": "b", "size": 6}, {"name": "a", "size": 4}, {"name": "c", "size": 0}]}});
    assert_eq!(
        s.validate(&new, Some(&old)),
        vec![
            cause(
                "FieldValueInvalid",
                "Invalid value: \"object\": cannot shrink",
                "spec.shards[1]"
            ),
            cause(
                "FieldValueInvalid",
                "Invalid value: \"object\": failed rule: self.size > 0",
                "spec.shards[2]"
            ),
        ]
    );
}

#[test]
fn rules_in_maps_correlate_by_key() {
    let s = with_spec(
        json!({"type": "object", "properties": {"limits": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "quantity(self).compareTo(quantity(oldSelf)) >= 0", "message": "cannot lower"}, {"rule": "isQuantity(self)", "message": "not a quantity"}]}}}}),
    );
    let old = json!({"spec": {"limits": {"memory": "1Gi", "cpu": "2"}}});
    let new = json!({"spec": {"limits": {"memory": "512Mi", "cpu": "3", "disk": "lots"}}});
    assert_eq!(
        s.validate(&new, Some(&old)),
        vec![
            cause(
                "FieldValueInvalid",
                "Invalid value: \"string\": not a quantity",
                "spec.limits[disk]"
            ),
            cause(
                "FieldValueInvalid",
                "Invalid value: \"string\": cannot lower",
                "spec.limits[memory]"
            ),
        ]
    );
}

#[test]
fn message_expression_field_path_and_reason() {
    let s = with_spec(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.replicas <= self.max", "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds ' + string(self.max)", "fieldPath": ".replicas"},
        {"rule": "has(self.mode)", "message": "mode is required", "reason": "FieldValueRequired", "fieldPath": ".mode"},
        {"rule": "self.replicas != 7", "message": "no sevens", "reason": "FieldValueForbidden"}],
        "properties": {"replicas": {"type": "integer"}, "max": {"type": "integer"}, "mode": {"type": "string"}}}));
    assert_eq!(
        check(&s, json!({"replicas": 7, "max": 3})),
        vec![
            cause(
                "FieldValueInvalid",
                "Invalid value: \"object\": replicas 7 exceeds 3",
                "spec.replicas"
            ),
            cause(
                "FieldValueRequired",
                "Required value: mode is required",
                "spec.mode"
            ),
            cause("FieldValueForbidden", "Forbidden: no sevens", "spec"),
        ]
    );
}

#[test]
fn runtime_errors_become_causes() {
    let s = with_spec(
        json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.missing > 0"}, {"rule": "self.n / 0 == 1"}, {"rule": "self.n"}],
        "properties": {"n": {"type": "integer"}}}),
    );
    let causes = check(&s, json!({"n": 1}));
    assert_eq!(causes.len(), 3);
    assert!(
        causes
            .iter()
            .all(|c| c.reason == "FieldValueInvalid" && c.field == "spec"),
        "{causes:?}"
    );
    assert!(
        causes[0].message.starts_with("Invalid value: \"object\": "),
        "{causes:?}"
    );
    assert!(
        causes[0]
            .message
            .ends_with("evaluating rule: self.missing > 0"),
        "{causes:?}"
    );
}

#[test]
fn kubernetes_library_and_escaping() {
    let s = with_spec(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.items.isSorted()"}, {"rule": "self.name.matches('^[a-z]+$')"},
        {"rule": "self.dash__dash__key == 'v'"}, {"rule": "self.when > timestamp('2000-01-01T00:00:00Z')"},
        {"rule": "self.ratio == 1.0"}],
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}, "name": {"type": "string"}, "dash-key": {"type": "string"},
                       "when": {"type": "string", "format": "date-time"}, "ratio": {"type": "number"}}}));
    assert!(check(&s, json!({"items": [1, 2, 3], "name": "abc", "dash-key": "v", "when": "2024-01-01T00:00:00Z", "ratio": 1})).is_empty());
    assert_eq!(check(&s, json!({"items": [3, 1], "name": "abc", "dash-key": "v", "when": "2024-01-01T00:00:00Z", "ratio": 1})).len(), 1);
}

#[test]
fn embedded_resources_expose_type_meta() {
    let s = with_spec(
        json!({"type": "object", "properties": {"tpl": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-validations": [{"rule": "self.kind == 'Pod' && self.metadata.name == 'p'"}]}}}),
    );
    assert!(
        check(
            &s,
            json!({"tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}})
        )
        .is_empty()
    );
    assert_eq!(
        check(
            &s,
            json!({"tpl": {"apiVersion": "v1", "kind": "Svc", "metadata": {"name": "p"}}})
        )
        .len(),
        1
    );
}

#[test]
fn type_errors_block_cel() {
    let s = with_spec(
        json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.n > 0"}], "properties": {"n": {"type": "integer"}}}),
    );
    assert_eq!(
        check(&s, json!({"n": "x"})),
        vec![
            cause(
                "FieldValueTypeInvalid",
                "Invalid value: \"string\": spec.n in body must be of type integer: \"string\"",
                "spec.n"
            ),
            cause(
                "FieldValueInvalid",
                "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                "<nil>"
            ),
        ]
    );
}

#[test]
fn unchanged_values_skip_plain_rules_on_update() {
    let s = with_spec(
        json!({"type": "object", "properties": {"n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 5"}]}}}),
    );
    let obj = json!({"spec": {"n": 1}});
    assert_eq!(s.validate(&obj, None).len(), 1);
    assert!(s.validate(&obj, Some(&obj)).is_empty());
}
