//! Version `v1beta1` of the `valkey.logbook.dev` API, the version stored:
//! the [`ValkeyCluster`] resource with its image one object and the
//! Cluster-only fields under `cluster` (see `spec.rs` and
//! `crate::conversion`). The other kinds are the same in both versions.

mod spec;

pub use spec::{ClusterSpec, ImageSpec, ValkeyCluster, ValkeyClusterSpec};

use crate::conversion::{self, ConversionError};

impl ValkeyClusterSpec {
    /// This spec as v1alpha1's, the one the operator works on.
    ///
    /// # Errors
    ///
    /// [`ConversionError`] when the spec does not hold what its schema
    /// admits (a tag without a repository).
    pub fn to_v1alpha1(&self) -> Result<crate::v1alpha1::ValkeyClusterSpec, ConversionError> {
        let json = serde_json::to_value(self).map_err(|e| wrong("spec", &e))?;
        let serde_json::Value::Object(map) = json else {
            return Err(wrong("spec", &"not an object"));
        };
        let alpha = conversion::spec_to_v1alpha1(&map).map_err(|(field, expected)| {
            ConversionError::WrongType {
                kind: "ValkeyCluster".to_owned(),
                name: String::new(),
                field,
                expected,
            }
        })?;
        serde_json::from_value(serde_json::Value::Object(alpha)).map_err(|e| wrong("spec", &e))
    }

    /// v1alpha1's `spec` as this version's.
    ///
    /// # Errors
    ///
    /// [`ConversionError`] when the spec does not serialize as its schema
    /// says (not expected of a typed spec).
    pub fn from_v1alpha1(
        spec: &crate::v1alpha1::ValkeyClusterSpec,
    ) -> Result<Self, ConversionError> {
        let json = serde_json::to_value(spec).map_err(|e| wrong("spec", &e))?;
        let serde_json::Value::Object(map) = json else {
            return Err(wrong("spec", &"not an object"));
        };
        let beta = conversion::spec_to_v1beta1(&map).map_err(|(field, expected)| {
            ConversionError::WrongType {
                kind: "ValkeyCluster".to_owned(),
                name: String::new(),
                field,
                expected,
            }
        })?;
        serde_json::from_value(serde_json::Value::Object(beta)).map_err(|e| wrong("spec", &e))
    }
}

fn wrong(field: &str, err: &dyn std::fmt::Display) -> ConversionError {
    ConversionError::NotAnObject(format!("{field}: {err}"))
}
