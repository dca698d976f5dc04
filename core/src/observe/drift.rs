//! Drift: an object the operator made, and still marks as its own, changed
//! by someone else. Read from its `managedFields`: the newest write to the
//! object itself (not its status) by a manager that is neither the
//! operator nor a Kubernetes component, newer than the operator's own
//! last write, holding fields outside the metadata and status. A change
//! of metadata only (a label or an annotation a tool adds) is not drift:
//! the operator's apply would not take it back, and unbinding is one.
//! Journaled (`DriftObserved`) once per object, manager and time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use logbook_journal::Event;
use logbook_journal::projection::ClusterState;

use crate::resources::{FIELD_MANAGER, labels};

/// Field managers of Kubernetes' own components, whose writes to the
/// operator's objects are theirs to make (a StatefulSet's status, a
/// Service's addresses): never drift.
const COMPONENTS: &[&str] = &[
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-apiserver",
];

/// Whether `manager` is the operator or a Kubernetes component.
fn ours_or_components(manager: &str) -> bool {
    manager == FIELD_MANAGER
        || COMPONENTS.contains(&manager)
        || manager.ends_with(".k8s.io")
        || manager.starts_with("localkube")
}

/// The dotted paths, two levels deep, of the fields `entry` holds outside
/// `metadata` and `status` (`spec.updateStrategy`, `data.valkey.conf`).
fn content_fields(entry: &ManagedFieldsEntry) -> Vec<String> {
    let Some(serde_json::Value::Object(top)) = entry.fields_v1.as_ref().map(|f| &f.0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, inner) in top {
        let Some(name) = key.strip_prefix("f:") else {
            continue;
        };
        if name == "metadata" || name == "status" {
            continue;
        }
        let children: Vec<&str> = inner
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.strip_prefix("f:"))
            .collect();
        if children.is_empty() {
            out.push(name.to_owned());
        } else {
            out.extend(children.into_iter().map(|c| format!("{name}.{c}")));
        }
    }
    out
}

/// `DriftObserved` for each object of `objects` (`<Kind> <name>` and its
/// metadata) that carries the ownership annotation naming `cluster` and
/// was changed by someone else since the operator last wrote it, unless
/// the journal already holds that change.
pub fn observe_drift(
    state: &ClusterState,
    cluster: &str,
    objects: &[(String, ObjectMeta)],
) -> Vec<Event> {
    let mut out = Vec::new();
    // The generated password Secret's value is its user's to change (the
    // cluster's password rotated): never drift.
    let password = format!(
        "Secret {}",
        logbook_crds::v1alpha1::generated_password_secret(cluster).name
    );
    for (object, meta) in objects {
        if !labels::owned_by(meta, cluster) || *object == password {
            continue;
        }
        let entries: Vec<&ManagedFieldsEntry> = meta
            .managed_fields
            .iter()
            .flatten()
            // The object itself and its `/scale` (`kubectl scale` sets the
            // replicas there); never its status.
            .filter(|m| {
                m.subresource
                    .as_deref()
                    .is_none_or(|s| s.is_empty() || s == "scale")
            })
            .collect();
        let ours = entries
            .iter()
            .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
            .filter_map(|m| m.time.as_ref().map(|t| t.0))
            .max();
        // The API server records a write through `/scale` among the
        // object's entries with no time (its scale handler takes each
        // manager's time from the object's own entries, where a new
        // manager has none). Such an entry owns `spec.replicas` now,
        // which the operator's last apply would have taken back: it is
        // newer than that apply, and is told apart by the object's
        // resourceVersion instead of a time.
        let untimed_scale =
            |m: &ManagedFieldsEntry| m.time.is_none() && m.subresource.as_deref() == Some("scale");
        let newest = entries
            .iter()
            .filter(|m| !m.manager.as_deref().is_none_or(ours_or_components))
            .filter(|m| untimed_scale(m) || m.time.as_ref().map(|t| t.0) >= ours)
            .filter(|m| !content_fields(m).is_empty())
            .max_by_key(|m| (untimed_scale(m), m.time.as_ref().map(|t| t.0)));
        let Some(entry) = newest else {
            continue;
        };
        let by = entry.manager.clone().unwrap_or_default();
        let at = match &entry.time {
            Some(t) => t.0.to_string(),
            None => format!(
                "resourceVersion {}",
                meta.resource_version.as_deref().unwrap_or("?")
            ),
        };
        if state
            .drift
            .get(object)
            .is_some_and(|d| d.by == by && d.at == at)
        {
            continue;
        }
        out.push(Event::DriftObserved {
            object: object.clone(),
            by,
            at,
            fields: content_fields(entry),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, Time};
    use logbook_journal::projection::DriftView;

    use super::*;

    fn entry(
        manager: &str,
        secs: i64,
        sub: Option<&str>,
        fields: serde_json::Value,
    ) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_owned()),
            operation: Some("Update".to_owned()),
            subresource: sub.map(str::to_owned),
            time: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(secs).unwrap(),
            )),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        }
    }

    fn meta(entries: Vec<ManagedFieldsEntry>) -> ObjectMeta {
        ObjectMeta {
            annotations: Some(BTreeMap::from([(
                labels::OWNED_BY.to_owned(),
                "demo".to_owned(),
            )])),
            managed_fields: Some(entries),
            ..ObjectMeta::default()
        }
    }

    fn spec_fields() -> serde_json::Value {
        serde_json::json!({"f:spec": {"f:updateStrategy": {"f:type": {}}}})
    }

    #[test]
    fn a_hand_edit_newer_than_the_operators_write_is_drift_once() {
        let m = meta(vec![
            entry("logbook", 100, None, spec_fields()),
            entry("kubectl-edit", 200, None, spec_fields()),
            entry(
                "kube-controller-manager",
                300,
                Some("status"),
                serde_json::json!({"f:status": {}}),
            ),
        ]);
        let objects = vec![("StatefulSet demo".to_owned(), m.clone())];
        let events = observe_drift(&ClusterState::default(), "demo", &objects);
        let [
            Event::DriftObserved {
                object,
                by,
                at,
                fields,
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        assert_eq!(object, "StatefulSet demo");
        assert_eq!(by, "kubectl-edit");
        assert_eq!(fields, &vec!["spec.updateStrategy".to_owned()]);
        // Journaled: not again.
        let mut state = ClusterState::default();
        state.drift.insert(
            object.clone(),
            DriftView {
                by: by.clone(),
                at: at.clone(),
                fields: fields.clone(),
                reverted: true,
            },
        );
        assert!(observe_drift(&state, "demo", &objects).is_empty());
    }

    #[test]
    fn the_operators_newer_write_metadata_components_and_unmarked_objects_are_not_drift() {
        let assert_no_drift = |m: &ObjectMeta| {
            let drift = observe_drift(
                &ClusterState::default(),
                "demo",
                &[("S a".into(), m.clone())],
            );
            assert!(drift.is_empty(), "{drift:?}");
        };
        // The operator wrote after the edit (it put it back).
        let m = meta(vec![
            entry("kubectl-edit", 200, None, spec_fields()),
            entry("logbook", 300, None, spec_fields()),
        ]);
        assert_no_drift(&m);
        // A label added by hand.
        let m = meta(vec![
            entry("logbook", 100, None, spec_fields()),
            entry(
                "kubectl-label",
                200,
                None,
                serde_json::json!({"f:metadata": {"f:labels": {"f:team": {}}}}),
            ),
        ]);
        assert_no_drift(&m);
        // Kubernetes' own components.
        let m = meta(vec![
            entry("logbook", 100, None, spec_fields()),
            entry("endpointslice-controller.k8s.io", 200, None, spec_fields()),
            entry("kube-controller-manager", 200, None, spec_fields()),
        ]);
        assert_no_drift(&m);
        // Unbound: released objects are the user's.
        let mut m = meta(vec![
            entry("logbook", 100, None, spec_fields()),
            entry("kubectl-edit", 200, None, spec_fields()),
        ]);
        m.annotations = None;
        assert_no_drift(&m);
    }

    /// The real API server records a `kubectl scale` without a time (its
    /// scale handler): still drift, journaled once per resourceVersion.
    #[test]
    fn an_untimed_scale_entry_is_drift() {
        let mut scale = entry(
            "kubectl",
            0,
            Some("scale"),
            serde_json::json!({"f:spec": {"f:replicas": {}}}),
        );
        scale.time = None;
        let mut m = meta(vec![entry("logbook", 100, None, spec_fields()), scale]);
        m.resource_version = Some("42".into());
        let events = observe_drift(
            &ClusterState::default(),
            "demo",
            &[("StatefulSet demo".into(), m)],
        );
        assert!(
            matches!(
                events.as_slice(),
                [Event::DriftObserved { by, at, .. }]
                    if by == "kubectl" && at == "resourceVersion 42"
            ),
            "{events:?}"
        );
    }

    /// `kubectl scale` writes through the `/scale` subresource: the
    /// replicas it set are drift (once overlooked: the count stayed).
    #[test]
    fn a_scale_through_the_subresource_is_drift() {
        let m = meta(vec![
            entry("logbook", 100, None, spec_fields()),
            entry(
                "kubectl",
                200,
                Some("scale"),
                serde_json::json!({"f:spec": {"f:replicas": {}}}),
            ),
        ]);
        let events = observe_drift(
            &ClusterState::default(),
            "demo",
            &[("StatefulSet demo".into(), m)],
        );
        assert!(
            matches!(
                events.as_slice(),
                [Event::DriftObserved { by, fields, .. }]
                    if by == "kubectl" && fields == &vec!["spec.replicas".to_owned()]
            ),
            "{events:?}"
        );
    }
}
