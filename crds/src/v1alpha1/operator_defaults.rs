//! The [`ValkeyOperatorDefaults`] resource: any part of a ValkeyCluster's
//! spec, given as defaults for every cluster the object reaches, and the
//! named plans (presets) a cluster may select with `spec.plan`.
//!
//! Two objects named [`DEFAULTS_NAME`] take part: the one in the operator's
//! namespace (every cluster it manages) and the one in a cluster's own
//! namespace (that namespace's clusters). How they combine with a
//! cluster's spec is [`crate::layers`]; this module owns only the shape of
//! the object and what makes one invalid ([`validate_defaults`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::spec::{ValkeyCluster, ValkeyClusterSpec};
use super::topology::Topology;
use super::validation::{FieldError, FieldErrorKind, check_dns_label};

/// The name of the defaults objects the operator reads: one in its own
/// namespace, one in each cluster's namespace. Objects of another name are
/// reported invalid, not read.
pub const DEFAULTS_NAME: &str = "valkey-operator-defaults";

/// `spec.maxClustersRolling` when unset: one cluster at a time.
pub const MAX_CLUSTERS_ROLLING: i32 = 1;
/// Largest `spec.maxClustersRolling`.
pub const MAX_CLUSTERS_ROLLING_MAX: i32 = 1000;

/// Spec fields a defaults layer may not set: a cluster's topology is its
/// own (and immutable); a restore is asked of one cluster, once; a pause
/// is one cluster's.
pub const CLUSTER_OWN_FIELDS: &[&str] = &[
    "topology",
    "restoreFrom",
    "paused",
    "hibernated",
    "replicateFrom",
];

/// Defaults for ValkeyClusters, and the plans they may select.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "valkey.logbook.dev",
    version = "v1alpha1",
    kind = "ValkeyOperatorDefaults",
    plural = "valkeyoperatordefaults",
    singular = "valkeyoperatordefaults",
    namespaced,
    shortname = "vkdefaults",
    category = "valkey",
    status = "ValkeyOperatorDefaultsStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Defaults for the ValkeyClusters of a namespace (or, named valkey-operator-defaults in the operator's namespace, of every namespace), and the plans a cluster may select with spec.plan. A cluster's own spec wins over a plan, a plan over its namespace's defaults, those over the operator's, those over the built-in values.",
    printcolumn = r#"{"name":"Plans","type":"string","jsonPath":".status.plans"}"#,
    printcolumn = r#"{"name":"Valid","type":"string","jsonPath":".status.conditions[?(@.type==\"Valid\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ValkeyOperatorDefaultsSpec {
    /// Any part of a ValkeyCluster's spec (`image`, `storage`,
    /// `resources`, `failover`, ...), the defaults of every cluster this
    /// object reaches. `topology`, `restoreFrom`, `paused`, `hibernated` and `replicateFrom` are each
    /// cluster's own and may not be set here.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(schema_with = "spec_part_schema")]
    pub template: Map<String, Value>,

    /// Named presets (for example `free`, `standard`, `pro`), each any part
    /// of a ValkeyCluster's spec, selected by a cluster's `spec.plan`. A
    /// plan of the cluster's namespace hides one of the same name of the
    /// operator's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "plans_schema")]
    pub plans: BTreeMap<String, Map<String, Value>>,

    /// How many clusters a change of these defaults rolls at once (default
    /// 1): the others wait, their status saying so. Read from the
    /// operator's object only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_CLUSTERS_ROLLING_MAX))]
    pub max_clusters_rolling: Option<i32>,
}

impl ValkeyOperatorDefaultsSpec {
    /// `maxClustersRolling`, or its default.
    #[must_use]
    pub fn effective_max_clusters_rolling(&self) -> usize {
        let n = self
            .max_clusters_rolling
            .unwrap_or(MAX_CLUSTERS_ROLLING)
            .clamp(1, MAX_CLUSTERS_ROLLING_MAX);
        usize::try_from(n).unwrap_or(1)
    }
}

/// What the operator found in a defaults object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ValkeyOperatorDefaultsStatus {
    /// `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The plans defined, comma-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans: Option<String>,
    /// `Valid`: whether the operator uses this object, and why not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn spec_part_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "description": "Any part of a ValkeyCluster's spec.",
    })
}

fn plans_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        },
        "description": "Plan name to any part of a ValkeyCluster's spec.",
    })
}

/// The fields of a ValkeyCluster's spec, as the CRD names them.
#[must_use]
pub fn spec_fields() -> Vec<String> {
    let crd = ValkeyCluster::crd();
    crd.spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("spec"))
        .and_then(|s| s.properties.as_ref())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The problems of one layer (`path` names it: `spec.template`,
/// `spec.plans.pro`): fields a ValkeyCluster's spec does not have, fields
/// a layer may not set, values of the wrong type.
fn check_part(
    part: &Map<String, Value>,
    path: &str,
    known: &[String],
    in_plan: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in part {
        let at = format!("{path}.{key}");
        if !known.iter().any(|k| k == key) {
            errors.push(FieldError::new(
                at,
                FieldErrorKind::Invalid,
                "not a field of a ValkeyCluster's spec",
            ));
            continue;
        }
        if CLUSTER_OWN_FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                at,
                FieldErrorKind::Forbidden,
                "each cluster's own: a default may not set it",
            ));
            continue;
        }
        if in_plan && key == "plan" {
            errors.push(FieldError::new(
                at,
                FieldErrorKind::Forbidden,
                "a plan may not select another plan",
            ));
            continue;
        }
        // Each field alone, so the error names it.
        let mut one = Map::new();
        one.insert(key.clone(), value.clone());
        if let Err(err) = serde_json::from_value::<ValkeyClusterSpec>(Value::Object(one)) {
            errors.push(FieldError::new(
                at,
                FieldErrorKind::Invalid,
                format!("not a valid value: {err}"),
            ));
        }
    }
    errors
}

/// Every problem of a defaults object: its name, fields a ValkeyCluster
/// has not, fields a default may not set, values of the wrong type, plan
/// names that are not DNS labels.
#[must_use]
pub fn validate_defaults(name: &str, spec: &ValkeyOperatorDefaultsSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if name != DEFAULTS_NAME {
        errors.push(FieldError::new(
            "metadata.name",
            FieldErrorKind::Invalid,
            format!("the operator reads only the defaults named {DEFAULTS_NAME}"),
        ));
    }
    let known = spec_fields();
    errors.extend(check_part(&spec.template, "spec.template", &known, false));
    for (plan, part) in &spec.plans {
        let path = format!("spec.plans.{plan}");
        if let Err(e) = check_dns_label(plan) {
            errors.push(FieldError::new(
                path.clone(),
                FieldErrorKind::Invalid,
                format!("a plan's name must be a DNS label: {e}"),
            ));
        }
        errors.extend(check_part(part, &path, &known, true));
    }
    errors
}

/// The fields of `part` that apply to `topology`: a default for every
/// topology may set `replicas` (not used by a Cluster) or `shards` (used
/// only by one); each cluster takes what applies to it.
#[must_use]
pub fn applicable(mut part: Map<String, Value>, topology: Topology) -> Map<String, Value> {
    let cluster_only = [
        "shards",
        "replicasPerShard",
        "clusterNodeTimeoutMilliseconds",
    ];
    for key in CLUSTER_OWN_FIELDS {
        part.remove(*key);
    }
    match topology {
        Topology::Cluster => {
            part.remove("replicas");
        }
        Topology::Standalone => {
            part.remove("replicas");
            for key in cluster_only {
                part.remove(key);
            }
        }
        _ => {
            for key in cluster_only {
                part.remove(key);
            }
        }
    }
    if !topology.uses_sentinel() {
        part.remove("sentinel");
    }
    part
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> ValkeyOperatorDefaultsSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_valid_object_has_no_problem() {
        let s = spec(
            json!({"template": {"image": "valkey/valkey:9.1", "storage": {"size": "2Gi"}},
            "plans": {"pro": {"replicas": 3, "resources": {"limits": {"memory": "2Gi"}}}},
            "maxClustersRolling": 2}),
        );
        assert!(validate_defaults(DEFAULTS_NAME, &s).is_empty());
        assert_eq!(s.effective_max_clusters_rolling(), 2);
    }

    #[test]
    fn every_problem_is_named_by_its_path() {
        let s = spec(
            json!({"template": {"imgae": "x", "topology": "Cluster", "replicas": "three"},
            "plans": {"Pro": {"plan": "free"}}}),
        );
        let errors = validate_defaults("other", &s);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "metadata.name",
                "spec.template.imgae",
                "spec.template.replicas",
                "spec.template.topology",
                "spec.plans.Pro",
                "spec.plans.Pro.plan"
            ],
            "{errors:?}"
        );
        assert!(errors[2].message.contains("invalid type"), "{errors:?}");
    }

    #[test]
    fn each_topology_takes_what_applies_to_it() {
        let part = json!({"replicas": 3, "shards": 4, "sentinel": {"replicas": 5}, "image": "i"});
        let Value::Object(part) = part else { panic!() };
        let keys = |t| {
            applicable(part.clone(), t)
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(Topology::Cluster), ["image", "shards"]);
        assert_eq!(keys(Topology::Replication), ["image", "replicas"]);
        assert_eq!(keys(Topology::Sentinel), ["image", "replicas", "sentinel"]);
        assert_eq!(keys(Topology::Standalone), ["image"]);
    }
}
