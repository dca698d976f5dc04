//! CRD schemas: compile a CRD version's `openAPIV3Schema`, prune unknown
//! fields, apply defaults, validate (including `x-kubernetes-validations`
//! CEL rules), and build the `/openapi/v3` documents of custom resources.
//!
//! INTERFACE PLACEHOLDER: the signatures below are the contract the server
//! is written against; the implementation is being written separately and
//! replaces this file (and adds siblings) wholesale.

use serde_json::Value;

use crate::listtype::{ListType, ListTypes};

/// One reason a write was refused, as in a `Status`'s `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`,
    /// `FieldValueTypeInvalid`, `FieldValueTooLong`, `FieldValueTooMany`,
    /// `FieldValueDuplicate`, `FieldValueForbidden` (as the real server).
    pub reason: String,
    /// The message, as the real server words it.
    pub message: String,
    /// The field path, e.g. `spec.replicas` or `spec.config[foo]`.
    pub field: String,
}

/// A schema that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema is malformed at `path`.
    #[error("invalid openAPIV3Schema at {path}: {message}")]
    Invalid {
        /// JSON path inside the schema.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A compiled `openAPIV3Schema` of one CRD version.
#[derive(Debug, Clone)]
pub struct CompiledSchema {
    raw: Value,
}

impl CompiledSchema {
    /// Compiles the schema (including its CEL rules).
    ///
    /// # Errors
    /// [`SchemaError`] when the schema or a CEL rule is malformed.
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        Ok(Self {
            raw: schema.clone(),
        })
    }

    /// Removes fields the schema does not declare (unless
    /// `x-kubernetes-preserve-unknown-fields`), returning their paths (for
    /// `fieldValidation=Strict|Warn`). `apiVersion`, `kind` and
    /// `metadata` are never pruned.
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        let _ = (&self.raw, object);
        Vec::new()
    }

    /// Applies the schema's `default`s where fields are absent.
    pub fn apply_defaults(&self, object: &mut Value) {
        let _ = object;
    }

    /// Validates `object` (on update `old` is the stored object, for CEL
    /// transition rules with `oldSelf`). Empty when valid.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        let _ = (object, old);
        Vec::new()
    }
}

impl ListTypes for CompiledSchema {
    fn list_type(&self, _path: &[&str]) -> ListType {
        ListType::Atomic
    }
}

/// What `/openapi/v3/apis/{group}/{version}` needs to know of one kind.
#[derive(Debug, Clone)]
pub struct CrdKindSchema<'a> {
    /// Kind, e.g. `ValkeyCluster`.
    pub kind: &'a str,
    /// List kind, e.g. `ValkeyClusterList`.
    pub list_kind: &'a str,
    /// Plural resource name.
    pub plural: &'a str,
    /// Whether namespaced.
    pub namespaced: bool,
    /// The version's `openAPIV3Schema`.
    pub schema: &'a Value,
}

/// The OpenAPI v3 document of one custom group-version.
pub fn openapi_v3_document(group: &str, version: &str, kinds: &[CrdKindSchema<'_>]) -> Value {
    let _ = (group, version, kinds);
    serde_json::json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.35.0"}, "paths": {}, "components": {"schemas": {}}})
}
