//! Rules for what the operator stamps onto the objects it creates: extra
//! labels and annotations, the node selector and the priority class.
//!
//! This module owns the list of label and annotation keys reserved for the
//! operator. Resource builders should use these constants too, so that what
//! validation refuses and what the operator writes stay the same set.

use std::collections::BTreeMap;

use super::error::{Errors, FieldErrorKind};
use super::names::{check_label_value, check_qualified_name};

/// Prefix of every label and annotation key the operator owns.
pub const OPERATOR_KEY_PREFIX: &str = "valkey.logbook.dev/";

/// Well-known label keys the operator sets and selects on; a user value would
/// break Services, PodDisruptionBudgets and StatefulSet selectors.
pub const RESERVED_LABEL_KEYS: &[&str] = &[
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
];

/// Well-known annotation keys the operator sets.
pub const RESERVED_ANNOTATION_KEYS: &[&str] = &["app.kubernetes.io/managed-by"];

fn reserved(key: &str, reserved_keys: &[&str]) -> Option<String> {
    if key.starts_with(OPERATOR_KEY_PREFIX) {
        return Some(format!(
            "key {key:?} is under {OPERATOR_KEY_PREFIX:?}, which is reserved for the operator"
        ));
    }
    reserved_keys
        .contains(&key)
        .then(|| format!("key {key:?} is set by the operator and may not be overridden"))
}

/// `spec.labels`: valid label syntax, no reserved keys.
pub(super) fn check_labels(labels: &BTreeMap<String, String>, errors: &mut Errors) {
    for (key, value) in labels {
        let path = format!("spec.labels[{key:?}]");
        if let Err(e) = check_qualified_name(key) {
            errors.push(
                path,
                FieldErrorKind::Invalid,
                format!("invalid label key: {e}"),
            );
            continue;
        }
        if let Some(reason) = reserved(key, RESERVED_LABEL_KEYS) {
            errors.push(path.clone(), FieldErrorKind::Forbidden, reason);
        }
        if let Err(e) = check_label_value(value) {
            errors.push(
                path,
                FieldErrorKind::Invalid,
                format!("invalid label value: {e}"),
            );
        }
    }
}

/// Annotations at `field` (`spec.annotations`): valid key syntax, no
/// reserved keys.
pub(super) fn check_annotations(
    field: &str,
    annotations: &BTreeMap<String, String>,
    errors: &mut Errors,
) {
    for key in annotations.keys() {
        let path = format!("{field}[{key:?}]");
        if let Err(e) = check_qualified_name(key) {
            errors.push(
                path,
                FieldErrorKind::Invalid,
                format!("invalid annotation key: {e}"),
            );
            continue;
        }
        if let Some(reason) = reserved(key, RESERVED_ANNOTATION_KEYS) {
            errors.push(path, FieldErrorKind::Forbidden, reason);
        }
    }
}

/// `spec.nodeSelector`: valid label syntax.
pub(super) fn check_node_selector(selector: &BTreeMap<String, String>, errors: &mut Errors) {
    for (key, value) in selector {
        let path = format!("spec.nodeSelector[{key:?}]");
        if let Err(e) = check_qualified_name(key) {
            errors.push(
                path.clone(),
                FieldErrorKind::Invalid,
                format!("invalid label key: {e}"),
            );
        }
        if let Err(e) = check_label_value(value) {
            errors.push(
                path,
                FieldErrorKind::Invalid,
                format!("invalid label value: {e}"),
            );
        }
    }
}
