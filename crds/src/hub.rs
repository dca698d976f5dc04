//! The `ValkeyCluster` the operator works on (the conversion's hub):
//! v1alpha1's spec and status, read from and written to the API at
//! `v1beta1`, the version stored.
//!
//! The operator, the plugin, replay and the journal keep one shape of a
//! cluster (v1alpha1's [`ValkeyClusterSpec`]); the API is spoken at the
//! stored version, so none of the operator's own reads or writes needs a
//! conversion webhook (its own, which it could not answer while starting)
//! or the API server's conversion at all. At the edge, this type's serde
//! converts with [`crate::conversion`]:
//!
//! - serializing gives a v1beta1 object (`apiVersion:
//!   valkey.logbook.dev/v1beta1`, its spec as v1beta1 says it);
//! - deserializing reads an object of either version by its `apiVersion`
//!   (v1beta1 when it has none: the version this type is served at), so a
//!   manifest written at v1alpha1 loads too.
//!
//! A merge patch of a spec written as v1alpha1 says it is turned into
//! v1beta1's by [`merge_patch_to_stored`] before it is sent.
//!
//! This module does no I/O.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::conversion::{self, ConversionError, V1ALPHA1, V1BETA1};
use crate::v1alpha1::{ValkeyClusterSpec, ValkeyClusterStatus};

/// A ValkeyCluster: v1alpha1's spec and status, spoken at v1beta1 (see
/// the module's documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct ValkeyCluster {
    /// The object's metadata.
    pub metadata: ObjectMeta,
    /// The spec, as v1alpha1 says it.
    pub spec: ValkeyClusterSpec,
    /// The status (the same in both versions).
    pub status: Option<ValkeyClusterStatus>,
}

impl ValkeyCluster {
    /// A cluster named `name` with `spec`, no status.
    pub fn new(name: &str, spec: ValkeyClusterSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// This cluster as its v1alpha1 object's JSON.
    fn to_v1alpha1_value(&self) -> Result<Value, serde_json::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Repr<'a> {
            api_version: &'static str,
            kind: &'static str,
            metadata: &'a ObjectMeta,
            spec: &'a ValkeyClusterSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<&'a ValkeyClusterStatus>,
        }
        serde_json::to_value(Repr {
            api_version: V1ALPHA1,
            kind: KIND,
            metadata: &self.metadata,
            spec: &self.spec,
            status: self.status.as_ref(),
        })
    }

    /// This cluster as the object stored: its v1beta1 JSON.
    ///
    /// # Errors
    ///
    /// [`HubError`] when the spec does not serialize or convert (not
    /// expected of a typed spec).
    pub fn to_stored_value(&self) -> Result<Value, HubError> {
        let alpha = self.to_v1alpha1_value().map_err(HubError::Json)?;
        conversion::convert_object(&alpha, V1BETA1).map_err(HubError::Conversion)
    }

    /// A cluster from an object of either served version (v1beta1 when
    /// it names none).
    ///
    /// # Errors
    ///
    /// [`HubError`]: another group or version, a field of the wrong type.
    pub fn from_value(value: Value) -> Result<Self, HubError> {
        let Value::Object(mut map) = value else {
            return Err(HubError::Conversion(ConversionError::NotAnObject(
                "a ValkeyCluster is a JSON object".to_owned(),
            )));
        };
        let version = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or(V1BETA1)
            .to_owned();
        map.insert("apiVersion".to_owned(), Value::String(version.clone()));
        map.entry("kind".to_owned())
            .or_insert_with(|| Value::String(KIND.to_owned()));
        let alpha = if version == V1ALPHA1 {
            Value::Object(map)
        } else {
            conversion::convert_object(&Value::Object(map), V1ALPHA1)
                .map_err(HubError::Conversion)?
        };
        let object: crate::v1alpha1::ValkeyCluster =
            serde_json::from_value(alpha).map_err(HubError::Json)?;
        Ok(Self {
            metadata: object.metadata,
            spec: object.spec,
            status: object.status,
        })
    }
}

/// The kind.
const KIND: &str = "ValkeyCluster";

/// Why a ValkeyCluster could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The conversion between the versions refused it.
    #[error(transparent)]
    Conversion(ConversionError),
    /// Its JSON does not have the shape of a ValkeyCluster.
    #[error("ValkeyCluster: {0}")]
    Json(serde_json::Error),
}

impl Serialize for ValkeyCluster {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_stored_value()
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ValkeyCluster {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

impl kube::Resource for ValkeyCluster {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        conversion::GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1beta1".into()
    }

    fn api_version(_: &()) -> Cow<'_, str> {
        V1BETA1.into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "valkeyclusters".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The spec of a ValkeyCluster read raw at v1beta1 (the fields its user
/// set, nothing filled in), as v1alpha1 says it: what the defaults'
/// layers combine with (`crate::layers`). No spec is an empty one.
///
/// # Errors
///
/// [`ConversionError::WrongType`] naming the field: a `spec` that is not
/// an object, or a grouped field of the wrong type.
pub fn written_spec(spec: Option<&Value>) -> Result<Map<String, Value>, ConversionError> {
    match spec {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(spec) => partial_spec(spec, conversion::spec_to_v1alpha1),
    }
}

/// A merge patch of a ValkeyCluster whose `spec` (if any) is written as
/// v1alpha1 says it, as v1beta1 says it: what to send to the API, where
/// the operator and the plugin speak the stored version. Everything but
/// `spec` is left as it is (`metadata`, `status` are the same in both).
///
/// # Errors
///
/// [`ConversionError::WrongType`] naming the field: `spec` or
/// `spec.image` of a type the schema does not allow.
pub fn merge_patch_to_stored(patch: &Value) -> Result<Value, ConversionError> {
    let Value::Object(map) = patch else {
        return Ok(patch.clone());
    };
    let mut out: Map<String, Value> = map.clone();
    if let Some(spec) = out.get_mut("spec").filter(|s| !s.is_null()) {
        // An image named without a tag names no tag: the stored one must
        // go (`tag: null`), or the merge would keep it and run
        // `<new repository>:<old tag>` under the new name.
        let untagged = spec
            .get("image")
            .and_then(Value::as_str)
            .is_some_and(|reference| conversion::split_image(reference).1.is_none());
        let mut converted = partial_spec(spec, conversion::spec_to_v1beta1)?;
        if untagged && let Some(Value::Object(image)) = converted.get_mut("image") {
            image.insert("tag".to_owned(), Value::Null);
        }
        *spec = Value::Object(converted);
    }
    Ok(Value::Object(out))
}

/// `spec`, a whole or partial spec, converted by `convert`; a field of
/// the wrong type (`spec` itself not an object) refused naming it.
fn partial_spec(
    spec: &Value,
    convert: conversion::SpecConversion,
) -> Result<Map<String, Value>, ConversionError> {
    let wrong = |field: String, expected| ConversionError::WrongType {
        kind: KIND.to_owned(),
        name: String::new(),
        field,
        expected,
    };
    let Value::Object(spec) = spec else {
        return Err(wrong("spec".to_owned(), "an object"));
    };
    convert(spec).map_err(|(f, e)| wrong(f, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    fn alpha() -> Value {
        json!({
            "apiVersion": V1ALPHA1, "kind": "ValkeyCluster",
            "metadata": {"name": "shop", "namespace": "a"},
            "spec": {"topology": "Cluster", "image": "valkey/valkey:8.0.1", "shards": 4,
                     "imagePullPolicy": "IfNotPresent"},
        })
    }

    #[test]
    fn either_version_reads_as_the_same_cluster_and_writes_as_v1beta1() {
        let from_alpha = ValkeyCluster::from_value(alpha()).unwrap();
        let stored = serde_json::to_value(&from_alpha).unwrap();
        assert_eq!(stored["apiVersion"], V1BETA1);
        assert_eq!(
            stored["spec"]["image"],
            json!({"repository": "valkey/valkey", "tag": "8.0.1", "pullPolicy": "IfNotPresent"})
        );
        assert_eq!(stored["spec"]["cluster"]["shards"], 4);
        assert!(stored["spec"].get("shards").is_none(), "{stored}");
        let from_beta: ValkeyCluster = serde_json::from_value(stored).unwrap();
        assert_eq!(from_beta, from_alpha);
        assert_eq!(from_beta.spec.shards, Some(4));
        assert_eq!(from_beta.spec.image, "valkey/valkey:8.0.1");
    }

    #[test]
    fn an_object_without_apiversion_is_read_as_v1beta1_and_another_version_refused() {
        let mut beta = serde_json::to_value(ValkeyCluster::from_value(alpha()).unwrap()).unwrap();
        beta.as_object_mut().unwrap().remove("apiVersion");
        assert_eq!(
            ValkeyCluster::from_value(beta).unwrap().spec.shards,
            Some(4)
        );
        let mut other = alpha();
        other["apiVersion"] = json!("valkey.logbook.dev/v2");
        let err = ValkeyCluster::from_value(other).unwrap_err().to_string();
        assert!(err.contains("not a version"), "{err}");
    }

    #[test]
    fn a_merge_patch_of_the_spec_is_sent_as_v1beta1_says_it() {
        let patch = json!({"metadata": {"annotations": {"a": "b"}},
                           "spec": {"shards": 5, "image": "valkey/valkey:9.1", "replicas": null}});
        assert_eq!(
            merge_patch_to_stored(&patch).unwrap(),
            json!({"metadata": {"annotations": {"a": "b"}},
                   "spec": {"cluster": {"shards": 5},
                            "image": {"repository": "valkey/valkey", "tag": "9.1"},
                            "replicas": null}})
        );
        let err = merge_patch_to_stored(&json!({"spec": 3})).unwrap_err();
        assert!(err.to_string().contains("spec must be an object"), "{err}");
    }

    /// An untagged image set by a merge patch removes the stored tag: it
    /// once kept it (`myrepo/valkey` ran as `myrepo/valkey:9.1`).
    #[test]
    fn a_merge_patch_to_an_untagged_image_removes_the_stored_tag() {
        let stored = json!({"spec": {"image": {"repository": "valkey/valkey", "tag": "9.1"}}});
        let patch = merge_patch_to_stored(&json!({"spec": {"image": "myrepo/valkey"}})).unwrap();
        assert_eq!(
            patch,
            json!({"spec": {"image": {"repository": "myrepo/valkey", "tag": null}}})
        );
        // RFC 7386, as the API server merges it.
        fn merge(target: &mut Value, patch: &Value) {
            let Value::Object(patch) = patch else {
                *target = patch.clone();
                return;
            };
            if !target.is_object() {
                *target = json!({});
            }
            if let Value::Object(map) = target {
                for (key, value) in patch {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        let mut merged = stored;
        merge(&mut merged, &patch);
        assert_eq!(
            merged,
            json!({"spec": {"image": {"repository": "myrepo/valkey"}}})
        );
    }
}
