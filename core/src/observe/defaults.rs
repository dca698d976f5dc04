//! A ValkeyCluster's spec built from its layers (issue 39): the operator's
//! `valkey-operator-defaults`, its namespace's, the plan it selects, its
//! own spec, over the built-in values; and the events that judge it.
//!
//! [`layer_spec`] is pure: the objects in, the effective spec (or why it
//! cannot be built), the fingerprint of the layers and each field's source
//! out. [`observe_layered_spec`] judges it against the projection, once
//! per generation and once per change of the layers; a change that comes
//! with the defaults (the generation unchanged) waits for its turn
//! (`admitted`), so that at most `maxClustersRolling` clusters roll it at
//! once.

use logbook_crds::layers::{Source, combine, find_plan};
use logbook_crds::{
    DEFAULTS_NAME, Topology, ValkeyClusterSpec, ValkeyOperatorDefaults, applicable,
    validate_defaults,
};
use logbook_journal::projection::SpecStatus;
use logbook_journal::{ClusterState, Event, SpecFingerprint, SpecProblem};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::spec::{fingerprint, judge, judged_generation};

/// A cluster's spec as its layers give it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayeredSpec {
    /// The effective spec, or every reason it cannot be built.
    pub spec: Result<ValkeyClusterSpec, Vec<SpecProblem>>,
    /// SHA-256 of the layers besides the cluster's own, as applied;
    /// `None` when none reaches the cluster.
    pub layers: Option<SpecFingerprint>,
    /// Each field a layer besides the cluster's own set (a JSON pointer),
    /// and which layer.
    pub sources: Vec<(String, String)>,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> SpecProblem {
    SpecProblem {
        path: path.into(),
        message: message.into(),
    }
}

/// The defaults object `d`'s problems, said as the cluster's.
fn problems_of(d: &ValkeyOperatorDefaults) -> Vec<SpecProblem> {
    let ns = d.metadata.namespace.as_deref().unwrap_or_default();
    let name = d.metadata.name.as_deref().unwrap_or_default();
    validate_defaults(name, &d.spec)
        .into_iter()
        .map(|e| {
            problem(
                "spec",
                format!(
                    "ValkeyOperatorDefaults {ns}/{name} is invalid, so no cluster it reaches changes: {}: {}",
                    e.path, e.message
                ),
            )
        })
        .collect()
}

/// The spec `own` (the cluster's spec as stored, with only the fields its
/// user set) over the layers that reach it: `operator` (the operator's
/// defaults), `namespace` (its namespace's, when that is not the
/// operator's namespace), the plan it selects.
///
/// With no defaults object and no plan, the layers are `None` and the
/// spec is `own` over the built-in values, as it always was.
#[must_use]
pub fn layer_spec(
    own: &Map<String, Value>,
    operator: Option<&ValkeyOperatorDefaults>,
    namespace: Option<&ValkeyOperatorDefaults>,
) -> LayeredSpec {
    let topology: Topology = own
        .get("topology")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let templates = |d: Option<&ValkeyOperatorDefaults>| {
        d.map(|d| applicable(d.spec.template.clone(), topology))
    };
    let op_template = templates(operator);
    let ns_template = templates(namespace);
    // The plan: the cluster's own choice, else its namespace's default
    // plan, else the operator's.
    let plan_name = [Some(own), ns_template.as_ref(), op_template.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|layer| layer.get("plan").and_then(Value::as_str).map(str::to_owned));
    if operator.is_none() && namespace.is_none() && plan_name.is_none() {
        return LayeredSpec {
            spec: from_json(Value::Object(own.clone())),
            layers: None,
            sources: Vec::new(),
        };
    }
    let mut problems: Vec<SpecProblem> = operator
        .into_iter()
        .chain(namespace)
        .flat_map(problems_of)
        .collect();
    let plans: Vec<std::collections::BTreeMap<String, Value>> = [namespace, operator]
        .into_iter()
        .flatten()
        .map(|d| {
            d.spec
                .plans
                .iter()
                .map(|(k, v)| (k.clone(), Value::Object(v.clone())))
                .collect()
        })
        .collect();
    let plan_refs: Vec<&std::collections::BTreeMap<String, Value>> = plans.iter().collect();
    let plan = match &plan_name {
        Some(name) => match find_plan(name, &plan_refs) {
            Ok(Value::Object(part)) => Some((name.clone(), applicable(part.clone(), topology))),
            Ok(_) => Some((name.clone(), Map::new())),
            Err(unknown) => {
                problems.push(problem("spec.plan", unknown.to_string()));
                None
            }
        },
        None => None,
    };
    let named = |d: Option<&ValkeyOperatorDefaults>| {
        d.map(|d| {
            (
                d.metadata.namespace.clone().unwrap_or_default(),
                d.metadata
                    .name
                    .clone()
                    .unwrap_or_else(|| DEFAULTS_NAME.to_owned()),
            )
        })
    };
    let mut layers: Vec<(Source, Value)> = Vec::new();
    if let (Some(template), Some((_, name))) = (op_template, named(operator)) {
        layers.push((Source::OperatorDefaults { name }, Value::Object(template)));
    }
    if let (Some(template), Some((namespace, name))) = (ns_template, named(namespace)) {
        layers.push((
            Source::NamespaceDefaults { namespace, name },
            Value::Object(template),
        ));
    }
    if let Some((name, part)) = plan {
        layers.push((Source::Plan { name }, Value::Object(part)));
    }
    // What a change of the defaults changes: the layers besides the
    // cluster's own, as applied to it (and their problems: a fix of a
    // defaults object is judged again).
    let key = {
        let mut hash = Sha256::new();
        for (source, value) in &layers {
            hash.update(source.to_string().as_bytes());
            hash.update([0]);
            hash.update(value.to_string().as_bytes());
            hash.update([0]);
        }
        for p in &problems {
            hash.update(p.message.as_bytes());
            hash.update([0]);
        }
        SpecFingerprint(hash.finalize().into())
    };
    let own_value = Value::Object(own.clone());
    let mut all: Vec<(Source, &Value)> = layers.iter().map(|(s, v)| (s.clone(), v)).collect();
    all.push((Source::Cluster, &own_value));
    let combined = match combine(&all) {
        Ok(combined) => combined,
        Err(err) => {
            problems.push(problem("spec", err.to_string()));
            return LayeredSpec {
                spec: Err(problems),
                layers: Some(key),
                sources: Vec::new(),
            };
        }
    };
    let sources = combined
        .sources
        .iter()
        .filter(|(_, source)| !matches!(source, Source::Cluster | Source::BuiltIn))
        .map(|(field, source)| (field.clone(), source.to_string()))
        .collect();
    let spec = if problems.is_empty() {
        from_json(Value::Object(combined.value))
    } else {
        Err(problems)
    };
    LayeredSpec {
        spec,
        layers: Some(key),
        sources,
    }
}

fn from_json(value: Value) -> Result<ValkeyClusterSpec, Vec<SpecProblem>> {
    serde_json::from_value(value).map_err(|e| {
        vec![problem(
            "spec",
            format!("the spec its layers give is not valid: {e}"),
        )]
    })
}

/// What judging a layered spec gives: the events, and why a change of the
/// defaults is not taken yet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Judged {
    /// To journal, in order.
    pub events: Vec<Event>,
    /// A change of the defaults waiting for its turn, and why.
    pub waiting: Option<String>,
}

/// Whether the layers of `layered` were judged already (the ones last
/// journaled, or none ever and none now).
#[must_use]
pub fn layers_judged(state: &ClusterState, layered: &LayeredSpec) -> bool {
    state
        .spec_layers
        .as_ref()
        .map_or(layered.layers.is_none(), |l| l.layers == layered.layers)
}

/// The events that judge `layered` for generation `generation` of cluster
/// `name`: nothing when that generation and these layers were judged;
/// else `SpecChanged` (or `SpecRejected`) and `SpecLayersObserved`. A
/// change that comes with the defaults alone (the generation judged
/// already) is journaled only when `admitted`; otherwise [`Judged::waiting`]
/// says it waits. A change of layers that gives the spec in force journals
/// only the layers.
#[must_use]
pub fn observe_layered_spec(
    state: &ClusterState,
    name: &str,
    generation: i64,
    layered: &LayeredSpec,
    admitted: bool,
) -> Judged {
    let new_generation = judged_generation(state).is_none_or(|g| g < generation);
    if !new_generation && layers_judged(state, layered) {
        return Judged::default();
    }
    let from_defaults = !new_generation;
    let old = state.desired_spec().and_then(Result::ok);
    let observed = |fingerprint| Event::SpecLayersObserved {
        generation,
        layers: layered.layers,
        fingerprint,
        sources: layered.sources.clone(),
        from_defaults,
    };
    let spec_json = layered
        .spec
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|spec| judge(name, spec, old.as_ref()));
    match spec_json {
        Ok(spec_json) => {
            let fp = fingerprint(&spec_json);
            let in_force = matches!(state.spec_status, SpecStatus::Accepted { .. })
                && state.desired.as_ref().is_some_and(|d| d.fingerprint == fp);
            if from_defaults && in_force {
                return Judged {
                    events: vec![observed(Some(fp))],
                    waiting: None,
                };
            }
            if from_defaults && !admitted {
                return Judged {
                    events: Vec::new(),
                    waiting: Some(
                        "a change of its defaults waits: other clusters are rolling theirs (maxClustersRolling)"
                            .to_owned(),
                    ),
                };
            }
            Judged {
                events: vec![
                    Event::SpecChanged {
                        generation,
                        spec_json,
                        fingerprint: fp,
                    },
                    observed(Some(fp)),
                ],
                waiting: None,
            }
        }
        Err(errors) => Judged {
            events: vec![Event::SpecRejected { generation, errors }, observed(None)],
            waiting: None,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
#[path = "defaults_tests.rs"]
mod tests;
