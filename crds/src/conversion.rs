//! Conversion of a ValkeyCluster between `v1alpha1` and `v1beta1`, on its
//! JSON: whole objects (what a conversion webhook is given) and partial
//! specs (a defaults layer, a merge patch), both ways.
//!
//! The two versions differ in three places, and nowhere else (status is
//! the same):
//!
//! | v1alpha1 | v1beta1 |
//! |---|---|
//! | `image: "valkey/valkey:9.1"` | `image.repository: valkey/valkey`, `image.tag: "9.1"` |
//! | `imagePullPolicy`, `imagePullSecrets` | `image.pullPolicy`, `image.pullSecrets` |
//! | `shards`, `replicasPerShard`, `clusterNodeTimeoutMilliseconds` | `cluster.shards`, `cluster.replicasPerShard`, `cluster.nodeTimeoutMilliseconds` |
//!
//! # Guarantees
//!
//! - `v1alpha1 → v1beta1 → v1alpha1` gives back the same JSON, for every
//!   spec (an image reference that does not split cleanly into a
//!   repository and a tag is kept whole as the repository).
//! - `v1beta1 → v1alpha1 → v1beta1` gives back the same JSON for every
//!   spec its schema admits (`image.repository` names no tag of its own;
//!   a tag needs a repository not given by digest), except that an empty
//!   `image: {}` or `cluster: {}` says nothing and comes back absent.
//! - Every field the conversion does not know passes through untouched,
//!   `null`s included (a merge patch's deletions convert too).
//!
//! This module does no I/O and knows nothing of the webhook that serves
//! it (`src/webhook/conversion.rs`).

use serde_json::{Map, Value};

/// The API group of every Logbook resource.
pub const GROUP: &str = "valkey.logbook.dev";
/// `apiVersion` of the first version.
pub const V1ALPHA1: &str = "valkey.logbook.dev/v1alpha1";
/// `apiVersion` of the stored version.
pub const V1BETA1: &str = "valkey.logbook.dev/v1beta1";

/// The fields of a v1alpha1 spec that v1beta1 groups, each with its
/// group and its name there.
const GROUPED: [(&str, &str, &str); 5] = [
    ("imagePullPolicy", "image", "pullPolicy"),
    ("imagePullSecrets", "image", "pullSecrets"),
    ("shards", "cluster", "shards"),
    ("replicasPerShard", "cluster", "replicasPerShard"),
    (
        "clusterNodeTimeoutMilliseconds",
        "cluster",
        "nodeTimeoutMilliseconds",
    ),
];

/// Why an object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The object is not a JSON object, or lacks `apiVersion` or `kind`.
    #[error("the object is not a Kubernetes object: {0}")]
    NotAnObject(String),
    /// A version this operator does not serve.
    #[error("{kind} {name}: cannot convert from {from} to {to}: {to_or_from} is not a version of {group} this operator serves (v1alpha1, v1beta1)", group = GROUP)]
    UnknownVersion {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// Its `apiVersion`.
        from: String,
        /// The version asked for.
        to: String,
        /// Which of the two is unknown.
        to_or_from: String,
    },
    /// A field has a type the schema does not allow.
    #[error("{kind} {name}: {field} must be {expected}")]
    WrongType {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The field's path (`spec.image`).
        field: String,
        /// What it must be.
        expected: &'static str,
    },
}

/// The version part of an `apiVersion` of this group (`v1beta1`), `None`
/// for another group.
fn version_of(api_version: &str) -> Option<&str> {
    api_version
        .strip_prefix(GROUP)
        .and_then(|rest| rest.strip_prefix('/'))
}

/// `object` (any kind of this group) as `desired` (`valkey.logbook.dev/v1beta1`).
///
/// Only a ValkeyCluster's spec changes shape; every other kind, and the
/// status, are the same in both versions, so only their `apiVersion` is
/// set. Metadata is never touched.
///
/// # Errors
///
/// [`ConversionError`] naming the object and what is wrong: not an
/// object, a version not served, a grouped field of the wrong type.
pub fn convert_object(object: &Value, desired: &str) -> Result<Value, ConversionError> {
    let Value::Object(map) = object else {
        return Err(ConversionError::NotAnObject("not a JSON object".to_owned()));
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str);
    let (Some(from), Some(kind)) = (text("apiVersion"), text("kind")) else {
        return Err(ConversionError::NotAnObject(
            "apiVersion or kind missing".to_owned(),
        ));
    };
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned();
    let unknown = |which: &str| ConversionError::UnknownVersion {
        kind: kind.to_owned(),
        name: name.clone(),
        from: from.to_owned(),
        to: desired.to_owned(),
        to_or_from: which.to_owned(),
    };
    let from_version = version_of(from)
        .filter(|v| is_served(v))
        .ok_or_else(|| unknown(from))?;
    let to_version = version_of(desired)
        .filter(|v| is_served(v))
        .ok_or_else(|| unknown(desired))?;
    let mut out = map.clone();
    out.insert("apiVersion".to_owned(), Value::String(desired.to_owned()));
    if kind == "ValkeyCluster"
        && from_version != to_version
        && let Some(spec) = out.get_mut("spec")
    {
        let Value::Object(spec_map) = spec else {
            return Err(ConversionError::WrongType {
                kind: kind.to_owned(),
                name,
                field: "spec".to_owned(),
                expected: "an object",
            });
        };
        let converted = match to_version {
            "v1beta1" => spec_to_v1beta1(spec_map),
            _ => spec_to_v1alpha1(spec_map),
        };
        *spec =
            Value::Object(
                converted.map_err(|(field, expected)| ConversionError::WrongType {
                    kind: kind.to_owned(),
                    name,
                    field,
                    expected,
                })?,
            );
    }
    Ok(Value::Object(out))
}

/// A field's path as v1alpha1 names it (`spec.shards`,
/// `spec.imagePullSecrets[0].name`) as v1beta1 does (`spec.cluster.shards`,
/// `spec.image.pullSecrets[0].name`): what a user of the stored version is
/// shown when a spec is refused. Other paths are the same in both.
pub fn path_to_v1beta1(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("spec.") {
        for (alpha, group, beta) in GROUPED {
            if let Some(tail) = rest.strip_prefix(alpha)
                && (tail.is_empty() || tail.starts_with('.') || tail.starts_with('['))
            {
                return format!("spec.{group}.{beta}{tail}");
            }
        }
    }
    path.to_owned()
}

fn is_served(version: &str) -> bool {
    matches!(version, "v1alpha1" | "v1beta1")
}

/// A field that had the wrong type: its path and what it must be.
pub type FieldFault = (String, &'static str);

/// A conversion of a spec from one version to the other
/// ([`spec_to_v1beta1`], [`spec_to_v1alpha1`]).
pub type SpecConversion = fn(&Map<String, Value>) -> Result<Map<String, Value>, FieldFault>;

/// A v1alpha1 spec (whole or partial) as v1beta1.
///
/// # Errors
///
/// `spec.image` that is neither a string nor `null`.
pub fn spec_to_v1beta1(spec: &Map<String, Value>) -> Result<Map<String, Value>, FieldFault> {
    let mut out = Map::new();
    let mut groups: Map<String, Value> = Map::new();
    let group = |groups: &mut Map<String, Value>, name: &str| -> Option<Map<String, Value>> {
        match groups.remove(name) {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        }
    };
    for (key, value) in spec {
        if key == "image" {
            let mut image = group(&mut groups, "image").unwrap_or_default();
            match value {
                Value::String(reference) => {
                    let (repository, tag) = split_image(reference);
                    image.insert(
                        "repository".to_owned(),
                        Value::String(repository.to_owned()),
                    );
                    if let Some(tag) = tag {
                        image.insert("tag".to_owned(), Value::String(tag.to_owned()));
                    }
                }
                Value::Null => {
                    image.insert("repository".to_owned(), Value::Null);
                }
                _ => return Err(("spec.image".to_owned(), "a string")),
            }
            groups.insert("image".to_owned(), Value::Object(image));
        } else if let Some((_, to, field)) = GROUPED.iter().find(|(from, _, _)| from == key) {
            let mut map = group(&mut groups, to).unwrap_or_default();
            map.insert((*field).to_owned(), value.clone());
            groups.insert((*to).to_owned(), Value::Object(map));
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    out.extend(groups);
    Ok(out)
}

/// A v1beta1 spec (whole or partial) as v1alpha1.
///
/// # Errors
///
/// `spec.image` or `spec.cluster` that is neither an object nor `null`,
/// an image repository or tag that is not a string, a tag without a
/// repository, or a field of either group that v1beta1 does not define.
pub fn spec_to_v1alpha1(spec: &Map<String, Value>) -> Result<Map<String, Value>, FieldFault> {
    let mut out = Map::new();
    for (key, value) in spec {
        let group = match key.as_str() {
            "image" | "cluster" => key.as_str(),
            _ => {
                out.insert(key.clone(), value.clone());
                continue;
            }
        };
        let fields = match value {
            Value::Object(fields) => fields,
            // A merge patch deleting the group deletes each of its fields.
            Value::Null => {
                for (from, _, _) in GROUPED.iter().filter(|(_, to, _)| *to == group) {
                    out.insert((*from).to_owned(), Value::Null);
                }
                if group == "image" {
                    out.insert("image".to_owned(), Value::Null);
                }
                continue;
            }
            _ => return Err((format!("spec.{group}"), "an object")),
        };
        if group == "image"
            && fields.get("tag").is_some_and(|t| !t.is_null())
            && !fields.contains_key("repository")
        {
            return Err((
                "spec.image.tag".to_owned(),
                "set only with spec.image.repository",
            ));
        }
        for (field, value) in fields {
            if group == "image" && field == "repository" {
                let tag = match fields.get("tag") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(tag)) => Some(tag.as_str()),
                    Some(_) => return Err(("spec.image.tag".to_owned(), "a string")),
                };
                let reference = match value {
                    Value::String(repository) => Value::String(join_image(repository, tag)),
                    Value::Null => Value::Null,
                    _ => return Err(("spec.image.repository".to_owned(), "a string")),
                };
                out.insert("image".to_owned(), reference);
                continue;
            }
            if group == "image" && field == "tag" {
                // Joined to the repository above; a tag without one is
                // refused by the schema and has nowhere to go.
                continue;
            }
            match GROUPED
                .iter()
                .find(|(_, to, name)| *to == group && name == field)
            {
                Some((from, _, _)) => {
                    out.insert((*from).to_owned(), value.clone());
                }
                // A field v1beta1 does not define (the schema prunes it
                // before it could get here): refused, never dropped.
                None => {
                    return Err((
                        format!("spec.{group}.{field}"),
                        "absent: v1beta1 defines no such field",
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Whether `tag` is a tag as an image reference writes one:
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// An image reference as its repository and tag: `registry:5000/valkey/valkey:9.1`
/// is `registry:5000/valkey/valkey` and `9.1`. A reference by digest
/// (`…@sha256:…`), without a tag, or whose tag is not one, is kept whole,
/// so that [`join_image`] always gives the reference back.
pub fn split_image(reference: &str) -> (&str, Option<&str>) {
    if reference.contains('@') {
        return (reference, None);
    }
    let after_slash = reference.rfind('/').map_or(0, |i| i.saturating_add(1));
    match reference.rfind(':') {
        Some(colon) if colon >= after_slash => {
            let (repository, tag) = (
                reference.get(..colon).unwrap_or_default(),
                reference.get(colon.saturating_add(1)..).unwrap_or_default(),
            );
            if !repository.is_empty() && is_tag(tag) {
                (repository, Some(tag))
            } else {
                (reference, None)
            }
        }
        _ => (reference, None),
    }
}

/// The image reference of `repository` and `tag`.
pub fn join_image(repository: &str, tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("{repository}:{tag}"),
        None => repository.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    #[test]
    fn paths_are_named_as_v1beta1_names_them() {
        for (alpha, beta) in [
            ("spec.shards", "spec.cluster.shards"),
            ("spec.replicasPerShard", "spec.cluster.replicasPerShard"),
            (
                "spec.clusterNodeTimeoutMilliseconds",
                "spec.cluster.nodeTimeoutMilliseconds",
            ),
            ("spec.imagePullPolicy", "spec.image.pullPolicy"),
            (
                "spec.imagePullSecrets[1].name",
                "spec.image.pullSecrets[1].name",
            ),
            ("spec.image", "spec.image"),
            ("spec.shardsX", "spec.shardsX"),
            ("spec.replicas", "spec.replicas"),
            ("metadata.name", "metadata.name"),
        ] {
            assert_eq!(super::path_to_v1beta1(alpha), beta, "{alpha}");
        }
    }

    use super::*;

    fn spec(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn images_split_where_a_tag_is_and_only_there() {
        for (reference, repository, tag) in [
            ("valkey/valkey:9.1", "valkey/valkey", Some("9.1")),
            ("valkey/valkey", "valkey/valkey", None),
            (
                "registry:5000/valkey/valkey",
                "registry:5000/valkey/valkey",
                None,
            ),
            (
                "registry:5000/valkey:8.0.1",
                "registry:5000/valkey",
                Some("8.0.1"),
            ),
            ("valkey@sha256:0123abcd", "valkey@sha256:0123abcd", None),
            (
                "valkey:9.1@sha256:0123abcd",
                "valkey:9.1@sha256:0123abcd",
                None,
            ),
            ("valkey:", "valkey:", None),
            (":9.1", ":9.1", None),
            ("valkey:-bad", "valkey:-bad", None),
        ] {
            assert_eq!(split_image(reference), (repository, tag), "{reference}");
            assert_eq!(join_image(repository, tag), reference);
        }
    }

    #[test]
    fn a_cluster_spec_converts_both_ways() {
        let alpha = spec(json!({
            "topology": "Cluster", "image": "valkey/valkey:8.0", "imagePullPolicy": "Never",
            "shards": 3, "replicasPerShard": 1, "clusterNodeTimeoutMilliseconds": 2000,
            "storage": {"size": "1Gi"}}));
        let beta = spec_to_v1beta1(&alpha).unwrap();
        assert_eq!(
            Value::Object(beta.clone()),
            json!({"topology": "Cluster",
                "image": {"repository": "valkey/valkey", "tag": "8.0", "pullPolicy": "Never"},
                "cluster": {"shards": 3, "replicasPerShard": 1, "nodeTimeoutMilliseconds": 2000},
                "storage": {"size": "1Gi"}})
        );
        assert_eq!(spec_to_v1alpha1(&beta).unwrap(), alpha);
    }

    #[test]
    fn a_merge_patch_deleting_a_grouped_field_deletes_it_in_either_version() {
        let alpha = spec(json!({"shards": null, "image": null}));
        let beta = spec_to_v1beta1(&alpha).unwrap();
        assert_eq!(
            Value::Object(beta.clone()),
            json!({"cluster": {"shards": null}, "image": {"repository": null}})
        );
        assert_eq!(spec_to_v1alpha1(&beta).unwrap(), alpha);
        let whole = spec_to_v1alpha1(&spec(json!({"cluster": null}))).unwrap();
        assert_eq!(
            Value::Object(whole),
            json!({"shards": null, "replicasPerShard": null, "clusterNodeTimeoutMilliseconds": null})
        );
    }

    #[test]
    fn empty_groups_say_nothing() {
        let beta = spec(json!({"image": {}, "cluster": {}, "replicas": 3}));
        let alpha = spec_to_v1alpha1(&beta).unwrap();
        assert_eq!(Value::Object(alpha.clone()), json!({"replicas": 3}));
        assert_eq!(
            Value::Object(spec_to_v1beta1(&alpha).unwrap()),
            json!({"replicas": 3})
        );
    }

    #[test]
    fn objects_convert_with_their_metadata_and_status_untouched() {
        let object = json!({
            "apiVersion": V1ALPHA1, "kind": "ValkeyCluster",
            "metadata": {"name": "demo", "namespace": "shop", "labels": {"a": "b"}},
            "spec": {"image": "valkey/valkey:9.1", "replicas": 3},
            "status": {"phase": "Ready", "primary": "demo-0"}});
        let beta = convert_object(&object, V1BETA1).unwrap();
        assert_eq!(
            beta,
            json!({
                "apiVersion": V1BETA1, "kind": "ValkeyCluster",
                "metadata": {"name": "demo", "namespace": "shop", "labels": {"a": "b"}},
                "spec": {"image": {"repository": "valkey/valkey", "tag": "9.1"}, "replicas": 3},
                "status": {"phase": "Ready", "primary": "demo-0"}})
        );
        assert_eq!(convert_object(&beta, V1ALPHA1).unwrap(), object);
        // Other kinds: only the apiVersion.
        let user = json!({"apiVersion": V1ALPHA1, "kind": "ValkeyUser",
            "metadata": {"name": "app"}, "spec": {"shards": "not grouped"}});
        let mut expected = user.clone();
        expected["apiVersion"] = json!(V1BETA1);
        assert_eq!(convert_object(&user, V1BETA1).unwrap(), expected);
    }

    #[test]
    fn bad_objects_are_refused_naming_what_is_wrong() {
        let err = convert_object(
            &json!({"apiVersion": "valkey.logbook.dev/v2", "kind": "ValkeyCluster",
                "metadata": {"name": "demo"}}),
            V1BETA1,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("valkey.logbook.dev/v2 is not a version"),
            "{err}"
        );
        let err = convert_object(
            &json!({"apiVersion": V1BETA1, "kind": "ValkeyCluster",
                "metadata": {"name": "demo"}, "spec": {"image": "valkey:9.1"}}),
            V1ALPHA1,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ValkeyCluster demo: spec.image must be an object"
        );
        let err = convert_object(&json!([1]), V1ALPHA1).unwrap_err();
        assert!(matches!(err, ConversionError::NotAnObject(_)));
    }
}
