//! Tests of the schema module (they move with it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cel;
mod compile;
mod crd;
mod defaults;
mod fuzz;
mod keywords;
mod openapi;
mod prune;

use serde_json::{Value, json};

use super::{Cause, CompiledSchema};

/// A root schema with `spec` described by `spec`.
pub(super) fn with_spec(spec: Value) -> CompiledSchema {
    CompiledSchema::compile(&json!({"type": "object", "properties": {"spec": spec}})).unwrap()
}

/// Validates `{"spec": spec}` (create).
pub(super) fn check(schema: &CompiledSchema, spec: Value) -> Vec<Cause> {
    schema.validate(&json!({"spec": spec}), None)
}

pub(super) fn cause(reason: &str, message: &str, field: &str) -> Cause {
    Cause {
        reason: reason.into(),
        message: message.into(),
        field: field.into(),
    }
}

/// A schema exercising most keywords and rules, for the fuzz test.
pub(super) fn crd_like() -> CompiledSchema {
    CompiledSchema::compile(&json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.spec.replicas > 0"}],
        "properties": {"spec": {"type": "object", "default": {}, "required": ["mode"],
        "x-kubernetes-validations": [{"rule": "self.name == oldSelf.name"}, {"rule": "size(self.items) < 3", "messageExpression": "'n=' + string(size(self.items))"}],
        "properties": {
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1, "multipleOf": 1},
            "name": {"type": "string", "maxLength": 3, "pattern": "^a", "format": "date-time", "nullable": true},
            "mode": {"type": "string", "enum": ["a", "b"], "x-kubernetes-validations": [{"rule": "self.startsWith('a')"}]},
            "items": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "x-kubernetes-validations": [{"rule": "self.port >= oldSelf.port"}],
                "properties": {"name": {"type": "string"}, "port": {"x-kubernetes-int-or-string": true, "default": 1}}}},
            "config": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string", "format": "byte", "x-kubernetes-validations": [{"rule": "size(self) > 0"}]}},
            "ports": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "number"}},
            "x": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}}})).unwrap()
}
