//! Version `v1beta1` of the `valkey.logbook.dev` API, the version stored:
//! the [`ValkeyCluster`] resource with its image one object and the
//! Cluster-only fields under `cluster` (see `spec.rs` and
//! `crate::conversion`). The other kinds are the same in both versions.

mod spec;

pub use spec::{ClusterSpec, ImageSpec, ValkeyCluster, ValkeyClusterSpec};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::conversion::{self, ConversionError};

impl ValkeyClusterSpec {
    /// This spec as v1alpha1's, the one the operator works on.
    ///
    /// # Errors
    ///
    /// [`ConversionError`] when the spec does not hold what its schema
    /// admits (a tag without a repository).
    pub fn to_v1alpha1(&self) -> Result<crate::v1alpha1::ValkeyClusterSpec, ConversionError> {
        convert_spec(self, conversion::spec_to_v1alpha1)
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
        convert_spec(spec, conversion::spec_to_v1beta1)
    }
}

/// `spec` through its JSON, converted by `convert`.
fn convert_spec<From: Serialize, To: DeserializeOwned>(
    spec: &From,
    convert: conversion::SpecConversion,
) -> Result<To, ConversionError> {
    let wrong = |err: &dyn std::fmt::Display| ConversionError::NotAnObject(format!("spec: {err}"));
    let Value::Object(map) = serde_json::to_value(spec).map_err(|e| wrong(&e))? else {
        return Err(wrong(&"not an object"));
    };
    let converted = convert(&map).map_err(|(field, expected)| ConversionError::WrongType {
        kind: "ValkeyCluster".to_owned(),
        name: String::new(),
        field,
        expected,
    })?;
    serde_json::from_value(Value::Object(converted)).map_err(|e| wrong(&e))
}
