//! Rules for where the data pods may run: `spec.tolerations`,
//! `spec.topologySpreadConstraints` and `spec.affinity`.
//!
//! These fields go unchanged into the StatefulSet's pod template, where
//! the API server checks them (`ValidatePodTemplateSpec`): a value it
//! refuses would be refused on the StatefulSet, far from the cause and
//! after the spec was accepted. The same rules run here, so the refusal
//! names the ValkeyCluster's own field and nothing is applied.

use k8s_openapi::api::core::v1::{
    Affinity, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::error::{Errors, FieldErrorKind};
use super::names::{check_label_value, check_qualified_name};

const TOLERATION_OPERATORS: [&str; 2] = ["Equal", "Exists"];
const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const WHEN_UNSATISFIABLE: [&str; 2] = ["DoNotSchedule", "ScheduleAnyway"];
const INCLUSION_POLICIES: [&str; 2] = ["Honor", "Ignore"];
const NODE_OPERATORS: [&str; 6] = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];
const LABEL_OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

/// Every rule of this module, for the data pods' scheduling fields.
pub(super) fn check_scheduling(
    tolerations: &[Toleration],
    spread: &[TopologySpreadConstraint],
    affinity: Option<&Affinity>,
    errors: &mut Errors,
) {
    for (i, t) in tolerations.iter().enumerate() {
        check_toleration(&format!("spec.tolerations[{i}]"), t, errors);
    }
    check_spread(spread, errors);
    if let Some(affinity) = affinity {
        check_affinity(affinity, errors);
    }
}

fn not_supported(errors: &mut Errors, path: String, value: &str, supported: &[&str]) {
    errors.push(
        path,
        FieldErrorKind::NotSupported,
        format!("{value:?} is not supported: one of {supported:?}"),
    );
}

fn check_key(errors: &mut Errors, path: String, key: &str, what: &str) {
    if let Err(e) = check_qualified_name(key) {
        errors.push(
            path,
            FieldErrorKind::Invalid,
            format!("{what} {key:?} is invalid: {e}"),
        );
    }
}

/// A `topologyKey`: given, and a valid label key.
fn check_topology_key(path: &str, key: &str, errors: &mut Errors) {
    let path = format!("{path}.topologyKey");
    if key.is_empty() {
        errors.push(
            path,
            FieldErrorKind::Required,
            "topologyKey can not be empty",
        );
    } else {
        check_key(errors, path, key, "topologyKey");
    }
}

fn check_toleration(path: &str, t: &Toleration, errors: &mut Errors) {
    let key = t.key.as_deref().unwrap_or_default();
    let operator = t.operator.as_deref().unwrap_or_default();
    let value = t.value.as_deref().unwrap_or_default();
    if key.is_empty() {
        if operator != "Exists" {
            errors.push(
                format!("{path}.operator"),
                FieldErrorKind::Invalid,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            );
        }
    } else {
        check_key(errors, format!("{path}.key"), key, "key");
    }
    match operator {
        "" | "Equal" => {
            if let Err(e) = check_label_value(value) {
                errors.push(
                    format!("{path}.value"),
                    FieldErrorKind::Invalid,
                    format!("value {value:?} is invalid: {e}"),
                );
            }
        }
        "Exists" => {
            if !value.is_empty() {
                errors.push(
                    format!("{path}.value"),
                    FieldErrorKind::Invalid,
                    "value must be empty when `operator` is \"Exists\"",
                );
            }
        }
        other => not_supported(
            errors,
            format!("{path}.operator"),
            other,
            &TOLERATION_OPERATORS,
        ),
    }
    let effect = t.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
        not_supported(errors, format!("{path}.effect"), effect, &TAINT_EFFECTS);
    }
    if t.toleration_seconds.is_some() && effect != "NoExecute" {
        errors.push(
            format!("{path}.effect"),
            FieldErrorKind::Invalid,
            "effect must be \"NoExecute\" when `tolerationSeconds` is set",
        );
    }
}

fn check_spread(spread: &[TopologySpreadConstraint], errors: &mut Errors) {
    for (i, c) in spread.iter().enumerate() {
        let path = format!("spec.topologySpreadConstraints[{i}]");
        if c.max_skew <= 0 {
            errors.push(
                format!("{path}.maxSkew"),
                FieldErrorKind::Invalid,
                format!("maxSkew must be greater than zero, got {}", c.max_skew),
            );
        }
        check_topology_key(&path, &c.topology_key, errors);
        let when = c.when_unsatisfiable.as_str();
        if !WHEN_UNSATISFIABLE.contains(&when) {
            not_supported(
                errors,
                format!("{path}.whenUnsatisfiable"),
                when,
                &WHEN_UNSATISFIABLE,
            );
        }
        if spread.iter().skip(i + 1).any(|o| {
            o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
        }) {
            errors.push(
                format!("{path}.{{topologyKey, whenUnsatisfiable}}"),
                FieldErrorKind::Duplicate,
                format!(
                    "the pair {{{:?}, {when:?}}} appears more than once",
                    c.topology_key
                ),
            );
        }
        if let Some(min) = c.min_domains {
            if min <= 0 {
                errors.push(
                    format!("{path}.minDomains"),
                    FieldErrorKind::Invalid,
                    format!("minDomains must be greater than zero, got {min}"),
                );
            }
            if when != "DoNotSchedule" {
                errors.push(
                    format!("{path}.minDomains"),
                    FieldErrorKind::Invalid,
                    format!("minDomains can only be used with whenUnsatisfiable DoNotSchedule, not {when:?}"),
                );
            }
        }
        for (field, value) in [
            ("nodeAffinityPolicy", &c.node_affinity_policy),
            ("nodeTaintsPolicy", &c.node_taints_policy),
        ] {
            if let Some(v) = value.as_deref()
                && !INCLUSION_POLICIES.contains(&v)
            {
                not_supported(errors, format!("{path}.{field}"), v, &INCLUSION_POLICIES);
            }
        }
        for (j, key) in c.match_label_keys.iter().flatten().enumerate() {
            check_key(
                errors,
                format!("{path}.matchLabelKeys[{j}]"),
                key,
                "label key",
            );
        }
        if let Some(selector) = &c.label_selector {
            check_label_selector(&format!("{path}.labelSelector"), selector, errors);
        }
    }
}

fn check_affinity(affinity: &Affinity, errors: &mut Errors) {
    let base = "spec.affinity";
    if let Some(node) = &affinity.node_affinity {
        let path = format!("{base}.nodeAffinity");
        if let Some(required) = &node.required_during_scheduling_ignored_during_execution {
            let path = format!("{path}.requiredDuringSchedulingIgnoredDuringExecution");
            if required.node_selector_terms.is_empty() {
                errors.push(
                    format!("{path}.nodeSelectorTerms"),
                    FieldErrorKind::Required,
                    "must have at least one node selector term",
                );
            }
            for (i, term) in required.node_selector_terms.iter().enumerate() {
                check_node_term(&format!("{path}.nodeSelectorTerms[{i}]"), term, errors);
            }
        }
        for (i, p) in node
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let path = format!("{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            check_weight(&path, p.weight, errors);
            check_node_term(&format!("{path}.preference"), &p.preference, errors);
        }
    }
    let pod_terms = [
        (
            "podAffinity",
            affinity.pod_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            affinity.pod_anti_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (name, terms) in pod_terms {
        let Some((required, preferred)) = terms else {
            continue;
        };
        let path = format!("{base}.{name}");
        for (i, term) in required.iter().flatten().enumerate() {
            check_pod_term(
                &format!("{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                term,
                errors,
            );
        }
        for (i, p) in preferred.iter().flatten().enumerate() {
            let path = format!("{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            check_weight(&path, p.weight, errors);
            check_pod_term(
                &format!("{path}.podAffinityTerm"),
                &p.pod_affinity_term,
                errors,
            );
        }
    }
}

fn check_weight(path: &str, weight: i32, errors: &mut Errors) {
    errors.range(&format!("{path}.weight"), weight, 1, 100, "weight");
}

fn check_node_term(path: &str, term: &NodeSelectorTerm, errors: &mut Errors) {
    for (i, r) in term.match_expressions.iter().flatten().enumerate() {
        check_node_requirement(&format!("{path}.matchExpressions[{i}]"), r, true, errors);
    }
    for (i, r) in term.match_fields.iter().flatten().enumerate() {
        let path = format!("{path}.matchFields[{i}]");
        check_node_requirement(&path, r, false, errors);
        if r.key != "metadata.name" {
            not_supported(errors, format!("{path}.key"), &r.key, &["metadata.name"]);
        }
    }
}

fn check_node_requirement(
    path: &str,
    r: &NodeSelectorRequirement,
    label_key: bool,
    errors: &mut Errors,
) {
    let values = r.values.as_deref().unwrap_or_default();
    check_requirement(path, &r.operator, values, &NODE_OPERATORS, errors);
    if label_key {
        check_key(errors, format!("{path}.key"), &r.key, "label key");
    }
}

/// An expression's operator is one of `operators`, with the values it
/// needs: some for `In` and `NotIn`, none for `Exists` and
/// `DoesNotExist`, one integer for `Gt` and `Lt`.
fn check_requirement(
    path: &str,
    operator: &str,
    values: &[String],
    operators: &[&str],
    errors: &mut Errors,
) {
    match operator {
        op if !operators.contains(&op) => {
            not_supported(errors, format!("{path}.operator"), op, operators);
        }
        "In" | "NotIn" if values.is_empty() => errors.push(
            format!("{path}.values"),
            FieldErrorKind::Required,
            format!("values must be non-empty when `operator` is {operator:?}"),
        ),
        "Exists" | "DoesNotExist" if !values.is_empty() => errors.push(
            format!("{path}.values"),
            FieldErrorKind::Forbidden,
            format!("values must be empty when `operator` is {operator:?}"),
        ),
        "Gt" | "Lt" if !matches!(values, [v] if v.parse::<i64>().is_ok()) => errors.push(
            format!("{path}.values"),
            FieldErrorKind::Required,
            format!("values must hold exactly one integer when `operator` is {operator:?}"),
        ),
        _ => {}
    }
}

fn check_pod_term(path: &str, term: &PodAffinityTerm, errors: &mut Errors) {
    check_topology_key(path, &term.topology_key, errors);
    for (field, selector) in [
        ("labelSelector", &term.label_selector),
        ("namespaceSelector", &term.namespace_selector),
    ] {
        if let Some(selector) = selector {
            check_label_selector(&format!("{path}.{field}"), selector, errors);
        }
    }
}

/// `metav1validation.ValidateLabelSelector`: keys and values are labels,
/// and each operator has the values it needs.
fn check_label_selector(path: &str, selector: &LabelSelector, errors: &mut Errors) {
    for (key, value) in selector.match_labels.iter().flatten() {
        let p = format!("{path}.matchLabels[{key:?}]");
        check_key(errors, p.clone(), key, "label key");
        if let Err(e) = check_label_value(value) {
            errors.push(
                p,
                FieldErrorKind::Invalid,
                format!("label value {value:?} is invalid: {e}"),
            );
        }
    }
    for (i, r) in selector.match_expressions.iter().flatten().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = r.values.as_deref().unwrap_or_default();
        check_requirement(&p, &r.operator, values, &LABEL_OPERATORS, errors);
        check_key(errors, format!("{p}.key"), &r.key, "label key");
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        NodeAffinity, NodeSelector, PodAntiAffinity, WeightedPodAffinityTerm,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn problems(
        tolerations: &[Toleration],
        spread: &[TopologySpreadConstraint],
        affinity: Option<&Affinity>,
    ) -> Vec<(String, FieldErrorKind)> {
        let mut errors = Errors::default();
        check_scheduling(tolerations, spread, affinity, &mut errors);
        errors.0.into_iter().map(|e| (e.path, e.kind)).collect()
    }

    fn spread(key: &str, when: &str, skew: i32) -> TopologySpreadConstraint {
        TopologySpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            when_unsatisfiable: when.into(),
            ..TopologySpreadConstraint::default()
        }
    }

    #[test]
    fn spread_constraints_are_checked_as_the_api_server_checks_a_pod_template() {
        let good = spread("kubernetes.io/hostname", "ScheduleAnyway", 1);
        assert!(problems(&[], std::slice::from_ref(&good), None).is_empty());
        let bad = [
            spread("kubernetes.io/hostname", "Sometimes", 0),
            spread("", "DoNotSchedule", 1),
            spread("zone", "DoNotSchedule", 1),
            spread("zone", "DoNotSchedule", 2),
        ];
        let p = problems(&[], &bad, None);
        let paths: Vec<&str> = p.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.topologySpreadConstraints[0].maxSkew",
                "spec.topologySpreadConstraints[0].whenUnsatisfiable",
                "spec.topologySpreadConstraints[1].topologyKey",
                "spec.topologySpreadConstraints[2].{topologyKey, whenUnsatisfiable}",
            ]
        );
        assert_eq!(p.get(1).map(|e| e.1), Some(FieldErrorKind::NotSupported));
        let mut min = spread("zone", "ScheduleAnyway", 1);
        min.min_domains = Some(0);
        min.node_taints_policy = Some("Maybe".into());
        let p = problems(&[], &[min], None);
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn tolerations_need_a_known_operator_and_effect() {
        let ok = Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("valkey".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(30),
        };
        assert!(problems(std::slice::from_ref(&ok), &[], None).is_empty());
        let everything = Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert!(problems(&[everything], &[], None).is_empty());
        let bad = [
            Toleration {
                operator: Some("Like".into()),
                ..ok.clone()
            },
            Toleration {
                key: None,
                operator: Some("Equal".into()),
                ..ok.clone()
            },
            Toleration {
                operator: Some("Exists".into()),
                ..ok.clone()
            },
            Toleration {
                effect: Some("NoSchedule".into()),
                ..ok.clone()
            },
            Toleration {
                effect: Some("Evict".into()),
                toleration_seconds: None,
                ..ok.clone()
            },
        ];
        let p = problems(&bad, &[], None);
        let paths: Vec<&str> = p.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.tolerations[0].operator",
                "spec.tolerations[1].operator",
                "spec.tolerations[2].value",
                "spec.tolerations[3].effect",
                "spec.tolerations[4].effect",
            ]
        );
    }

    #[test]
    fn affinity_terms_need_operators_with_their_values_and_weights_in_range() {
        let affinity = Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![
                            NodeSelectorRequirement {
                                key: "disk".into(),
                                operator: "In".into(),
                                values: None,
                            },
                            NodeSelectorRequirement {
                                key: "cores".into(),
                                operator: "Gt".into(),
                                values: Some(vec!["many".into()]),
                            },
                            NodeSelectorRequirement {
                                key: "x".into(),
                                operator: "Near".into(),
                                values: None,
                            },
                        ]),
                        match_fields: None,
                    }],
                }),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 101,
                        pod_affinity_term: PodAffinityTerm {
                            topology_key: String::new(),
                            label_selector: Some(LabelSelector {
                                match_expressions: Some(vec![LabelSelectorRequirement {
                                    key: "app".into(),
                                    operator: "Exists".into(),
                                    values: Some(vec!["valkey".into()]),
                                }]),
                                match_labels: None,
                            }),
                            ..PodAffinityTerm::default()
                        },
                    },
                ]),
                required_during_scheduling_ignored_during_execution: None,
            }),
            pod_affinity: None,
        };
        let p = problems(&[], &[], Some(&affinity));
        let paths: Vec<&str> = p.iter().map(|(path, _)| path.as_str()).collect();
        let node = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
        let pod =
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]";
        assert_eq!(
            paths,
            [
                format!("{node}.matchExpressions[0].values"),
                format!("{node}.matchExpressions[1].values"),
                format!("{node}.matchExpressions[2].operator"),
                format!("{pod}.weight"),
                format!("{pod}.podAffinityTerm.topologyKey"),
                format!("{pod}.podAffinityTerm.labelSelector.matchExpressions[0].values"),
            ]
        );
    }
}
