//! A ValkeyCluster's effective spec from layers, and which layer gave each
//! field (issue 39: operator defaults with precedence, and plans).
//!
//! Each layer is any part of a spec, as JSON. From least to most: the
//! built-in values, the operator's defaults (`valkey-operator-defaults` in
//! its namespace), the defaults of the cluster's own namespace, the plan
//! the cluster selects, the cluster's own spec. A later layer wins field
//! by field, as a JSON merge patch (RFC 7386) applies: objects merge key
//! by key, anything else (a string, a number, a list) replaces what was
//! there whole, and `null` removes a field an earlier layer set. Every
//! leaf of the result is traced to the layer that set it, so that a user
//! can be told where each value came from.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a layer comes from, least to most precedent in [`Source::rank`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Source {
    /// The operator's built-in values.
    BuiltIn,
    /// The operator's defaults object, in its own namespace.
    OperatorDefaults {
        /// The object's name.
        name: String,
    },
    /// The defaults object of the cluster's namespace.
    NamespaceDefaults {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A plan the cluster selects (`spec.plan`).
    Plan {
        /// The plan's name.
        name: String,
    },
    /// The ValkeyCluster's own spec.
    Cluster,
}

impl Source {
    /// Its precedence: a layer of a higher rank wins.
    #[must_use]
    pub const fn rank(&self) -> u8 {
        match self {
            Self::BuiltIn => 0,
            Self::OperatorDefaults { .. } => 1,
            Self::NamespaceDefaults { .. } => 2,
            Self::Plan { .. } => 3,
            Self::Cluster => 4,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BuiltIn => f.write_str("built-in"),
            Self::OperatorDefaults { name } => write!(f, "operator defaults {name}"),
            Self::NamespaceDefaults { namespace, name } => {
                write!(f, "namespace defaults {namespace}/{name}")
            }
            Self::Plan { name } => write!(f, "plan {name}"),
            Self::Cluster => f.write_str("the cluster's spec"),
        }
    }
}

/// Layers that cannot be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerError {
    /// A layer that is not a JSON object.
    #[error("{layer} is not an object of spec fields (it is {found})")]
    NotAnObject {
        /// Which layer.
        layer: Source,
        /// What it is instead.
        found: &'static str,
    },
    /// Layers out of precedence order.
    #[error("{later} comes after {earlier}, which outranks it")]
    OutOfOrder {
        /// The layer of higher rank, given first.
        earlier: Source,
        /// The one of lower rank, given after it.
        later: Source,
    },
}

/// The effective spec and where each of its leaves came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layered {
    /// The merged spec, as JSON.
    pub value: Map<String, Value>,
    /// The layer that set each leaf, by JSON pointer (`/storage/size`).
    /// A leaf is a value that is not an object, or an empty object.
    pub sources: BTreeMap<String, Source>,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `key` escaped for a JSON pointer.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Forgets the sources of `pointer` and of everything under it.
fn forget(sources: &mut BTreeMap<String, Source>, pointer: &str) {
    let under = format!("{pointer}/");
    sources.retain(|k, _| k != pointer && !k.starts_with(&under));
}

/// Every leaf of `value` at `pointer`, traced to `source`.
fn trace(sources: &mut BTreeMap<String, Source>, pointer: &str, value: &Value, source: &Source) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                trace(sources, &format!("{pointer}/{}", escape(k)), v, source);
            }
        }
        _ => {
            sources.insert(pointer.to_owned(), source.clone());
        }
    }
}

/// Applies `patch` (a merge patch from `source`) to `target` at `pointer`.
fn merge(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    pointer: &str,
    source: &Source,
    sources: &mut BTreeMap<String, Source>,
) {
    for (k, v) in patch {
        let at = format!("{pointer}/{}", escape(k));
        match v {
            Value::Null => {
                target.remove(k);
                forget(sources, &at);
            }
            Value::Object(sub) if !sub.is_empty() => {
                let slot = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                    forget(sources, &at);
                }
                if let Value::Object(inner) = slot {
                    // The object as such came from its first layer; its
                    // fields are traced one by one.
                    sources.remove(&at);
                    merge(inner, sub, &at, source, sources);
                }
            }
            // An empty object changes nothing of an object below it
            // (RFC 7386: the merge of `{}` into an object is that object).
            Value::Object(_) if target.get(k).is_some_and(Value::is_object) => {}
            other => {
                forget(sources, &at);
                target.insert(k.clone(), other.clone());
                trace(sources, &at, other, source);
            }
        }
    }
}

/// Combines `layers`, least precedent first.
///
/// # Errors
/// A layer that is not an object, or layers out of precedence order.
pub fn combine(layers: &[(Source, &Value)]) -> Result<Layered, LayerError> {
    let mut out = Layered::default();
    let mut last: Option<&Source> = None;
    for (source, layer) in layers {
        if let Some(before) = last
            && before.rank() > source.rank()
        {
            return Err(LayerError::OutOfOrder {
                earlier: before.clone(),
                later: source.clone(),
            });
        }
        last = Some(source);
        let Value::Object(patch) = layer else {
            return Err(LayerError::NotAnObject {
                layer: source.clone(),
                found: kind_of(layer),
            });
        };
        merge(&mut out.value, patch, "", source, &mut out.sources);
    }
    Ok(out)
}

/// A plan a cluster names that no defaults object defines: refused with
/// every plan that is defined, never replaced by another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plan {asked:?} is not defined; the plans defined are: {}", known_list(.known))]
pub struct UnknownPlan {
    /// The plan asked for.
    pub asked: String,
    /// Every plan defined, sorted.
    pub known: Vec<String>,
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    }
}

/// The plan `asked` from `plans` (the namespace's plans first, then the
/// operator's, each a map of name to a part of a spec).
///
/// # Errors
/// No such plan: [`UnknownPlan`], naming every plan defined.
pub fn find_plan<'a>(
    asked: &str,
    plans: &[&'a BTreeMap<String, Value>],
) -> Result<&'a Value, UnknownPlan> {
    plans.iter().find_map(|p| p.get(asked)).ok_or_else(|| {
        let mut known: Vec<String> = plans.iter().flat_map(|p| p.keys().cloned()).collect();
        known.sort();
        known.dedup();
        UnknownPlan {
            asked: asked.to_owned(),
            known,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    use super::*;

    fn operator() -> Source {
        Source::OperatorDefaults {
            name: "valkey-operator-defaults".into(),
        }
    }

    fn namespace() -> Source {
        Source::NamespaceDefaults {
            namespace: "shop".into(),
            name: "valkey-operator-defaults".into(),
        }
    }

    #[test]
    fn each_level_wins_over_the_ones_below_field_by_field() {
        let built_in = json!({"image": "valkey/valkey:9.1", "replicas": 1,
            "storage": {"persistence": "Rdb", "size": "1Gi"}});
        let ops =
            json!({"replicas": 2, "storage": {"size": "5Gi"}, "labels": {"team": "platform"}});
        let ns = json!({"replicas": 3, "labels": {"team": "shop", "cost": "a1"}});
        let plan = json!({"resources": {"limits": {"memory": "2Gi"}}, "replicas": 4});
        let own = json!({"topology": "Replication", "labels": {"cost": "b2"}});
        let out = combine(&[
            (Source::BuiltIn, &built_in),
            (operator(), &ops),
            (namespace(), &ns),
            (Source::Plan { name: "pro".into() }, &plan),
            (Source::Cluster, &own),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(out.value.clone()),
            json!({"image": "valkey/valkey:9.1", "replicas": 4, "topology": "Replication",
                "storage": {"persistence": "Rdb", "size": "5Gi"},
                "labels": {"team": "shop", "cost": "b2"},
                "resources": {"limits": {"memory": "2Gi"}}})
        );
        let from = |p: &str| out.sources[p].clone();
        assert_eq!(from("/image"), Source::BuiltIn);
        assert_eq!(from("/storage/persistence"), Source::BuiltIn);
        assert_eq!(from("/storage/size"), operator());
        assert_eq!(from("/labels/team"), namespace());
        assert_eq!(from("/labels/cost"), Source::Cluster);
        assert_eq!(from("/replicas"), Source::Plan { name: "pro".into() });
        assert_eq!(
            from("/resources/limits/memory"),
            Source::Plan { name: "pro".into() }
        );
        // Leaves only: no object is traced as a whole.
        assert!(!out.sources.contains_key("/storage"));
        assert_eq!(out.sources.len(), 8);
    }

    #[test]
    fn a_list_is_replaced_whole_and_null_removes() {
        let ops =
            json!({"tolerations": [{"key": "a"}, {"key": "b"}], "nodeSelector": {"disk": "ssd"}});
        let own = json!({"tolerations": [{"key": "c"}], "nodeSelector": null});
        let out = combine(&[(operator(), &ops), (Source::Cluster, &own)]).unwrap();
        assert_eq!(
            Value::Object(out.value.clone()),
            json!({"tolerations": [{"key": "c"}]})
        );
        assert_eq!(out.sources["/tolerations"], Source::Cluster);
        assert!(!out.sources.contains_key("/nodeSelector/disk"));
        assert_eq!(out.sources.len(), 1);
    }

    #[test]
    fn an_object_replacing_a_value_and_a_value_replacing_an_object_keep_the_trace_true() {
        let ops = json!({"a": {"b": 1, "c": 2}, "d": "x"});
        let own = json!({"a": 5, "d": {"e": true}, "f": {}, "g/h": 1});
        let out = combine(&[(operator(), &ops), (Source::Cluster, &own)]).unwrap();
        assert_eq!(
            out.sources.keys().cloned().collect::<Vec<_>>(),
            ["/a", "/d/e", "/f", "/g~1h"]
        );
        assert!(out.sources.values().all(|s| *s == Source::Cluster));
    }

    #[test]
    fn layers_out_of_order_or_not_objects_are_refused_naming_them() {
        let obj = json!({});
        let err = combine(&[(Source::Cluster, &obj), (operator(), &obj)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "operator defaults valkey-operator-defaults comes after the cluster's spec, which outranks it"
        );
        let list = json!([1]);
        let err = combine(&[(namespace(), &list)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "namespace defaults shop/valkey-operator-defaults is not an object of spec fields (it is a list)"
        );
    }

    #[test]
    fn an_unknown_plan_is_refused_with_every_plan_defined() {
        let ns: BTreeMap<String, Value> = [("pro".to_owned(), json!({"replicas": 3}))].into();
        let ops: BTreeMap<String, Value> = [
            ("free".to_owned(), json!({"replicas": 0})),
            ("pro".to_owned(), json!({"replicas": 2})),
            ("standard".to_owned(), json!({"replicas": 1})),
        ]
        .into();
        // The namespace's plan of a name wins over the operator's.
        assert_eq!(
            find_plan("pro", &[&ns, &ops]).unwrap(),
            &json!({"replicas": 3})
        );
        let err = find_plan("enterprise", &[&ns, &ops]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan \"enterprise\" is not defined; the plans defined are: free, pro, standard"
        );
        let none: BTreeMap<String, Value> = BTreeMap::new();
        assert_eq!(
            find_plan("free", &[&none]).unwrap_err().to_string(),
            "plan \"free\" is not defined; the plans defined are: none"
        );
    }
}
