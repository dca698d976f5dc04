//! CRD schemas: compile a CRD version's `openAPIV3Schema`, prune unknown
//! fields, apply defaults, validate (including `x-kubernetes-validations`
//! CEL rules), and build the `/openapi/v3` documents of custom resources.
//!
//! Behaviour follows `k8s.io/apiextensions-apiserver`: structural pruning
//! (`prune`), defaulting on read from a request (`apply_defaults`), and
//! validation (`validate`) = kube-openapi schema checks, embedded-resource
//! checks, list set/map uniqueness, then CEL rules (skipped, with the
//! server's notice, when a type error makes them meaningless).

mod celvalue;
mod celwalk;
mod defaults;
mod formats;
mod gofmt;
mod listtypes;
mod node;
mod objectmeta;
mod openapi;
mod prune;
mod rules;
mod validate;

#[cfg(test)]
mod tests;

pub use openapi::{BuiltinKindDoc, openapi_v3_builtin_document, openapi_v3_document};

use serde_json::Value;

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
    root: node::Node,
}

impl CompiledSchema {
    /// Compiles the schema (including its CEL rules).
    ///
    /// # Errors
    /// [`SchemaError`] when the schema or a CEL rule is malformed.
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let root = node::Node::parse(schema, "openAPIV3Schema", node::Mode::Structural)?;
        if root.type_ != "object" {
            return Err(SchemaError::Invalid {
                path: "openAPIV3Schema.type".into(),
                message: "must be object at the root".into(),
            });
        }
        Ok(Self { root })
    }

    /// Removes fields the schema does not declare (unless
    /// `x-kubernetes-preserve-unknown-fields`), returning their paths (for
    /// `fieldValidation=Strict|Warn`). `apiVersion`, `kind` and
    /// `metadata` are never pruned.
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        let mut out = Vec::new();
        prune::prune(object, &self.root, true, &mut String::new(), &mut out);
        out.sort();
        out
    }

    /// Applies the schema's `default`s where fields are absent.
    pub fn apply_defaults(&self, object: &mut Value) {
        defaults::apply(object, &self.root, true);
    }

    /// Validates `object` (on update `old` is the stored object, for CEL
    /// transition rules with `oldSelf`). Empty when valid.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut found = validate::Findings::default();
        validate::walk(&self.root, object, old, "", &mut found);
        let mut causes = found.schema;
        causes.append(&mut found.embedded);
        causes.append(&mut found.lists);
        if !self.root.has_rules() {
            return causes;
        }
        if causes.iter().any(|c| c.reason == "FieldValueTypeInvalid") {
            // CEL cannot run on mistyped data; the server says so instead.
            causes.push(gofmt::invalid_rendered(
                celwalk::ROOT,
                "\"null\"",
                "some validation rules were not checked because the object was invalid; \
                 correct the existing errors to complete validation",
            ));
            return causes;
        }
        celwalk::run(&self.root, object, old, &mut causes);
        causes
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
