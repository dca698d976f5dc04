//! What the apiserver's strategies do for apps/v1 Deployments and
//! ReplicaSets on write: their defaults (and their pod template's), and
//! the validation a client meets first — replicas not negative, a selector
//! that is present, not empty and matches the template's labels, a
//! template with containers that restarts Always, and a selector that
//! never changes — worded as the real server words it (Go's `%#v` of the
//! offending value included). Rolling them out is a controller's job, not
//! this module's.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, cause};
use crate::obj;
use crate::registry::ResourceInfo;
use crate::schema::Cause;
use crate::selector::LabelSelector;

/// Whether `res` is a kind this module handles.
pub(crate) fn handles(res: &ResourceInfo) -> bool {
    res.group == "apps" && (res.plural == "deployments" || res.plural == "replicasets")
}

fn default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(Value::is_null) {
        m.insert(k.to_owned(), v);
    }
}

fn spec_mut(o: &mut Value) -> Option<&mut Map<String, Value>> {
    let root = o.as_object_mut()?;
    let spec = root.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    spec.as_object_mut()
}

/// The defaults of apps/v1 (`SetDefaults_Deployment`, `_ReplicaSet`, and
/// the pod template's `SetDefaults_PodSpec`).
pub(crate) fn defaults(res: &ResourceInfo, o: &mut Value) {
    let deployment = res.plural == "deployments";
    let Some(spec) = spec_mut(o) else {
        return;
    };
    default(spec, "replicas", json!(1));
    if deployment {
        default(spec, "revisionHistoryLimit", json!(10));
        default(spec, "progressDeadlineSeconds", json!(600));
        let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
        if let Some(s) = strategy.as_object_mut() {
            default(s, "type", json!("RollingUpdate"));
            if s.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                if let Some(ru) = ru.as_object_mut() {
                    default(ru, "maxUnavailable", json!("25%"));
                    default(ru, "maxSurge", json!("25%"));
                }
            }
        }
    }
    if let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        default(pod, "restartPolicy", json!("Always"));
        default(pod, "terminationGracePeriodSeconds", json!(30));
        default(pod, "dnsPolicy", json!("ClusterFirst"));
        default(pod, "schedulerName", json!("default-scheduler"));
    }
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as fmt prints maps).
fn go_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_owned(),
        Some(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
    }
}

fn go_strings(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_owned(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|s| format!("{:?}", s.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%#v` of a `metav1.LabelSelector`.
fn go_selector(sel: &Value) -> String {
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|r| {
                    let s = |k: &str| {
                        r.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{}}}",
                        s("key"),
                        s("operator"),
                        go_strings(r.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_map(sel.get("matchLabels"))
    )
}

fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    cause(
        "FieldValueInvalid",
        format!("Invalid value: {value}: {detail}"),
        field,
    )
}

/// The causes of `ValidateDeploymentSpec` / `ValidateReplicaSetSpec` this
/// server checks, in the real server's order.
fn spec_causes(o: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = o.get("spec");
    if let Some(r) = spec
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .filter(|r| *r < 0)
    {
        causes.push(invalid(
            "spec.replicas",
            &r.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    let selector = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    match selector {
        None => causes.push(cause(
            "FieldValueRequired",
            "Required value",
            "spec.selector",
        )),
        Some(sel) => {
            let labels = sel
                .get("matchLabels")
                .and_then(Value::as_object)
                .map_or(0, Map::len);
            let exprs = sel
                .get("matchExpressions")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if labels + exprs == 0 {
                causes.push(invalid(
                    "spec.selector",
                    &go_selector(sel),
                    "empty selector is invalid for deployment",
                ));
            }
        }
    }
    let template = spec
        .and_then(|s| s.get("template"))
        .filter(|t| !t.is_null());
    let Some(template) = template else {
        causes.push(cause(
            "FieldValueRequired",
            "Required value",
            "spec.template",
        ));
        return causes;
    };
    let parsed = LabelSelector::from_object(selector);
    if !parsed.is_empty() && !parsed.matches_object(template) {
        causes.push(invalid(
            "spec.template.metadata.labels",
            &go_map(template.get("metadata").and_then(|m| m.get("labels"))),
            "`selector` does not match template `labels`",
        ));
    }
    let pod = template.get("spec");
    let containers = pod
        .and_then(|p| p.get("containers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if containers == 0 {
        causes.push(cause(
            "FieldValueRequired",
            "Required value",
            "spec.template.spec.containers",
        ));
    }
    let restart = pod
        .and_then(|p| p.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if restart != "Always" {
        causes.push(cause(
            "FieldValueNotSupported",
            format!("Unsupported value: {restart:?}: supported values: \"Always\""),
            "spec.template.spec.restartPolicy",
        ));
    }
    causes
}

/// Validates a Deployment or ReplicaSet about to be stored (`old`: the
/// stored one, on update).
///
/// # Errors
/// 422 Invalid with every cause found.
pub(crate) fn validate(res: &ResourceInfo, o: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = spec_causes(o);
    if let Some(old) = old {
        let sel = |v: &Value| v.get("spec").and_then(|s| s.get("selector")).cloned();
        if let Some(new_sel) = sel(o)
            && sel(old).as_ref() != Some(&new_sel)
        {
            causes.push(invalid(
                "spec.selector",
                &go_selector(&new_sel),
                "field is immutable",
            ));
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::Invalid {
        kind: res.kind.clone(),
        group: res.group.clone(),
        name: obj::name(o).to_owned(),
        causes,
    })
}

/// The spec fields of a StatefulSet an update may change
/// (`ValidateStatefulSetUpdate`); any other change is forbidden.
const STATEFULSET_MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// Whether `res` is apps/v1 StatefulSets.
pub(crate) fn is_statefulset(res: &ResourceInfo) -> bool {
    res.group == "apps" && res.plural == "statefulsets"
}

/// Refuses an update of a StatefulSet that changes its spec beyond
/// [`STATEFULSET_MUTABLE`] (its selector, service name, volume claim
/// templates, pod management policy), worded as the real server words it.
///
/// # Errors
/// 422 Invalid with the `spec` cause.
pub(crate) fn validate_statefulset_update(
    res: &ResourceInfo,
    new: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    let fixed = |o: &Value| -> Map<String, Value> {
        let mut spec = o
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for field in STATEFULSET_MUTABLE {
            spec.remove(field);
        }
        spec
    };
    if fixed(new) == fixed(old) {
        return Ok(());
    }
    let fields: Vec<String> = STATEFULSET_MUTABLE
        .iter()
        .map(|f| format!("'{f}'"))
        .collect();
    let (last, rest) = fields
        .split_last()
        .map_or((String::new(), &[][..]), |(l, r)| (l.clone(), r));
    Err(ApiError::invalid_one(
        &res.kind,
        &res.group,
        obj::name(new),
        cause(
            "FieldValueForbidden",
            format!(
                "Forbidden: updates to statefulset spec for fields other than {} and {last} are forbidden",
                rest.join(", ")
            ),
            "spec",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_map(None), "map[string]string(nil)");
        assert_eq!(
            go_map(Some(&json!({"b": "2", "a": "1"}))),
            r#"map[string]string{"a":"1", "b":"2"}"#
        );
        assert_eq!(
            go_selector(&json!({"matchLabels": {"app": "web"}})),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            go_selector(
                &json!({"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]})
            ),
            r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"k", Operator:"In", Values:[]string{"a"}}}}"#
        );
    }
}
