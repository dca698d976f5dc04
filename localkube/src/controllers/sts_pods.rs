//! The objects a StatefulSet stamps out: pod `<sts>-<ordinal>` from a
//! revision's template, with the identity labels, hostname and claim
//! volumes the real controller gives it, and the PVCs
//! `<template>-<sts>-<ordinal>` of its `volumeClaimTemplates` with the
//! owner references the retention policy asks for.

use serde_json::{Map, Value, json};

use super::pods::owner_ref;
use super::revision;
use crate::obj;

/// `controller-revision-hash`.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// `statefulset.kubernetes.io/pod-name`.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// `apps.kubernetes.io/pod-index`.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `spec.volumeClaimTemplates`.
pub fn claim_templates(sts: &Value) -> Vec<Value> {
    sts.get("spec")
        .and_then(|s| s.get("volumeClaimTemplates"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The PVC name of claim template `template` for `ordinal`.
pub fn claim_name(template: &Value, sts: &Value, ordinal: i64) -> String {
    format!("{}-{}-{ordinal}", obj::name(template), obj::name(sts))
}

/// The ordinal of `pod_name` when it is `<sts>-<n>`.
pub fn ordinal_of(sts_name: &str, pod_name: &str) -> Option<i64> {
    let n = pod_name.strip_prefix(sts_name)?.strip_prefix('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Pod `ordinal` of `sts` from the template of `rev`.
pub fn build_pod(sts: &Value, rev: &Value, ordinal: i64) -> Value {
    let name = format!("{}-{ordinal}", obj::name(sts));
    let template = revision::template_of(rev);
    let mut meta = obj::object_or_empty(template.get("metadata"));
    let mut labels = obj::object_or_empty(meta.get("labels"));
    labels.insert(REVISION_LABEL.into(), json!(obj::name(rev)));
    labels.insert(POD_NAME_LABEL.into(), json!(name));
    labels.insert(POD_INDEX_LABEL.into(), json!(ordinal.to_string()));
    meta.insert("labels".into(), Value::Object(labels));
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(obj::namespace(sts)));
    meta.remove("generateName");
    meta.insert(
        "ownerReferences".into(),
        json!([owner_ref(sts, "apps/v1", "StatefulSet", true)]),
    );
    let mut spec = obj::object_or_empty(template.get("spec"));
    spec.insert("hostname".into(), json!(name));
    if let Some(svc) = sts
        .get("spec")
        .and_then(|s| s.get("serviceName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        spec.insert("subdomain".into(), json!(svc));
    }
    add_claim_volumes(&mut spec, sts, ordinal);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// Each claim template becomes a volume of the same name backed by the
/// ordinal's PVC, replacing a template volume of that name.
fn add_claim_volumes(spec: &mut Map<String, Value>, sts: &Value, ordinal: i64) {
    let templates = claim_templates(sts);
    if templates.is_empty() {
        return;
    }
    let mut volumes: Vec<Value> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in &templates {
        let vname = obj::name(t);
        volumes.retain(|v| v.get("name").and_then(Value::as_str) != Some(vname));
        volumes.push(json!({"name": vname,
            "persistentVolumeClaim": {"claimName": claim_name(t, sts, ordinal)}}));
    }
    spec.insert("volumes".into(), Value::Array(volumes));
}

/// `persistentVolumeClaimRetentionPolicy.<field>` is `Delete`.
pub fn retention_deletes(sts: &Value, field: &str) -> bool {
    sts.get("spec")
        .and_then(|s| s.get("persistentVolumeClaimRetentionPolicy"))
        .and_then(|p| p.get(field))
        .and_then(Value::as_str)
        == Some("Delete")
}

/// A new PVC for `template` and `ordinal`: bound at once (there is no
/// provisioner: the kubelet backs it with a directory) with the requested
/// capacity.
pub fn build_claim(sts: &Value, template: &Value, ordinal: i64, owners: &[Value]) -> Value {
    let mut meta = obj::object_or_empty(template.get("metadata"));
    // The selector's labels go on the claim, as upstream does.
    let mut labels = obj::object_or_empty(meta.get("labels"));
    if let Some(sel) = sts
        .get("spec")
        .and_then(|s| s.get("selector"))
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
    {
        for (k, v) in sel {
            labels.insert(k.clone(), v.clone());
        }
    }
    meta.insert("labels".into(), Value::Object(labels));
    meta.insert("name".into(), json!(claim_name(template, sts, ordinal)));
    meta.insert("namespace".into(), json!(obj::namespace(sts)));
    if !owners.is_empty() {
        meta.insert("ownerReferences".into(), Value::Array(owners.to_vec()));
    }
    let spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec})
}

/// The bound status of a claim: phase Bound, its access modes, and
/// capacity equal to its request.
pub fn bound_status(claim: &Value) -> Value {
    let spec = claim.get("spec");
    let mut status = json!({"phase": "Bound"});
    if let Some(m) = status.as_object_mut() {
        if let Some(modes) = spec.and_then(|s| s.get("accessModes")) {
            m.insert("accessModes".into(), modes.clone());
        }
        if let Some(req) = spec
            .and_then(|s| s.get("resources"))
            .and_then(|r| r.get("requests"))
        {
            m.insert("capacity".into(), req.clone());
        }
    }
    status
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn ordinals_parse_only_from_the_sets_own_names() {
        assert_eq!(ordinal_of("web", "web-3"), Some(3));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
    }

    #[test]
    fn a_pod_carries_identity_labels_and_claim_volumes() {
        let sts = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"serviceName": "web", "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}});
        let rev = json!({"metadata": {"name": "web-abc"}, "data": revision::template_patch(&sts)});
        let pod = build_pod(&sts, &rev, 2);
        assert_eq!(pod["metadata"]["name"], "web-2");
        assert_eq!(pod["metadata"]["labels"][REVISION_LABEL], "web-abc");
        assert_eq!(pod["metadata"]["labels"][POD_INDEX_LABEL], "2");
        assert_eq!(pod["spec"]["hostname"], "web-2");
        assert_eq!(pod["spec"]["subdomain"], "web");
        assert_eq!(
            pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "data-web-2"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
    }
}
