//! What a spec trial compares: the objects the operator made for a
//! cluster, normalized so that two equal states compare equal (no uids,
//! resource versions, timestamps, owner references, namespaces or status),
//! and never a secret value (a Secret shows its keys only).
//!
//! Left out on purpose, because they follow the data plane rather than the
//! spec: the boot ConfigMap (it names the primary the operator last
//! decided), the journal's ConfigMaps, and pods (their names and count are
//! the StatefulSets').

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Map, Value};

/// The normalized objects of one cluster, by `Kind/name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// `Kind/name` → the object, normalized.
    pub objects: BTreeMap<String, Value>,
}

impl State {
    /// Reads the objects labelled with `cluster` in `namespace`; the
    /// namespace's name is replaced by `<ns>` wherever it appears in them
    /// (a Service's DNS name), so that two namespaces' clusters compare.
    ///
    /// # Errors
    /// The API error of a listing, in words.
    pub async fn read(
        client: &kube::Client,
        namespace: &str,
        cluster: &str,
    ) -> Result<State, String> {
        let selector = format!("{}={cluster}", logbook::resources::labels::CLUSTER);
        let mut objects = BTreeMap::new();
        collect::<StatefulSet>(client, namespace, &selector, "StatefulSet", &mut objects).await?;
        collect::<Service>(client, namespace, &selector, "Service", &mut objects).await?;
        collect::<ConfigMap>(client, namespace, &selector, "ConfigMap", &mut objects).await?;
        collect::<Secret>(client, namespace, &selector, "Secret", &mut objects).await?;
        collect::<PodDisruptionBudget>(
            client,
            namespace,
            &selector,
            "PodDisruptionBudget",
            &mut objects,
        )
        .await?;
        collect::<NetworkPolicy>(client, namespace, &selector, "NetworkPolicy", &mut objects)
            .await?;
        collect::<PersistentVolumeClaim>(
            client,
            namespace,
            &selector,
            "PersistentVolumeClaim",
            &mut objects,
        )
        .await?;
        objects.retain(|key, _| !left_out(key, cluster));
        // A scale-in keeps the volumes of the pods it removed (as a
        // StatefulSet does by default; a scale-out takes them back), and
        // the operator never deletes a claim a spec stopped using
        // (`storage.persistence: None`): they are not what the spec asks
        // for, so they are left out.
        let claimed: Vec<String> = objects
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("StatefulSet/")?, v)))
            .flat_map(|(set, v)| claims_of(set, v))
            .collect();
        let kept: Vec<String> = objects
            .keys()
            .filter(|key| {
                key.strip_prefix("PersistentVolumeClaim/")
                    .is_some_and(|claim| !claimed.iter().any(|c| c == claim))
            })
            .cloned()
            .collect();
        for key in kept {
            objects.remove(&key);
        }
        for value in objects.values_mut() {
            rename_namespace(value, namespace);
        }
        Ok(State { objects })
    }

    /// What differs from `other`, one line per object (empty: equal).
    pub fn diff(&self, other: &State) -> Vec<String> {
        let mut out = Vec::new();
        for (key, value) in &self.objects {
            match other.objects.get(key) {
                None => out.push(format!("{key}: only before")),
                Some(o) if o != value => {
                    let mut paths = Vec::new();
                    differing_paths(value, o, String::new(), &mut paths);
                    paths.truncate(6);
                    out.push(format!("{key}: differs at {}", paths.join(", ")));
                }
                Some(_) => {}
            }
        }
        for key in other.objects.keys() {
            if !self.objects.contains_key(key) {
                out.push(format!("{key}: only after"));
            }
        }
        out
    }

    /// Whether the text `needle` appears in any string, number or key of
    /// the objects (a spec value reflected somewhere).
    pub fn mentions(&self, needle: &str) -> bool {
        self.objects.values().any(|v| mentions(v, needle))
    }
}

/// Lists `K` in `namespace` with `selector`, normalized, into `out`.
async fn collect<K>(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    kind: &str,
    out: &mut BTreeMap<String, Value>,
) -> Result<(), String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Serialize,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| format!("listing {kind}s: {e}"))?;
    for item in list.items {
        let mut value = serde_json::to_value(&item).map_err(|e| format!("a {kind}: {e}"))?;
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        normalize(&mut value, kind);
        out.insert(format!("{kind}/{name}"), value);
    }
    Ok(())
}

/// Whether the claim `key` (`PersistentVolumeClaim/<template>-<set>-<n>`)
/// belongs to a pod ordinal at or past its StatefulSet's replicas.
/// The claims a StatefulSet's pods use: `<template>-<set>-<ordinal>` for
/// each of its volume claim templates and each ordinal below its replicas.
fn claims_of(set: &str, sts: &Value) -> Vec<String> {
    let replicas = sts
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    sts.pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
        .flat_map(|template| (0..replicas).map(move |i| format!("{template}-{set}-{i}")))
        .collect()
}

/// The objects that follow the data plane, not the spec.
fn left_out(key: &str, cluster: &str) -> bool {
    key == format!("ConfigMap/{cluster}-boot")
        || key.starts_with(&format!("ConfigMap/{cluster}-journal"))
}

/// Drops what the API server or the data plane sets.
fn normalize(value: &mut Value, kind: &str) {
    if let Some(obj) = value.as_object_mut() {
        obj.remove("status");
        obj.remove("apiVersion");
        obj.remove("kind");
        if kind == "Secret" {
            // Never a secret value: the keys only.
            let keys: Vec<Value> = obj
                .get("data")
                .and_then(Value::as_object)
                .map(|d| d.keys().map(|k| Value::String(k.clone())).collect())
                .unwrap_or_default();
            obj.remove("data");
            obj.remove("stringData");
            obj.insert("keys".into(), Value::Array(keys));
        }
        if kind == "Service"
            && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            // Allocated by the API server.
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                spec.remove(field);
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports {
                    if let Some(p) = port.as_object_mut() {
                        p.remove("nodePort");
                    }
                }
            }
        }
        let name = obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if kind == "ConfigMap"
            && name.ends_with("-sentinel-config")
            && let Some(data) = obj.get_mut("data").and_then(Value::as_object_mut)
        {
            // Each Sentinel's id is derived from the cluster's uid: the
            // cluster's identity, not its spec.
            for (key, value) in data.iter_mut() {
                if key.starts_with("myid-") {
                    *value = Value::String("<per-cluster id>".into());
                }
            }
        }
        if kind == "StatefulSet"
            && name.ends_with("-sentinel")
            && let Some(annotations) = obj
                .get_mut("spec")
                .and_then(|spec| spec.pointer_mut("/template/metadata/annotations"))
                .and_then(Value::as_object_mut)
        {
            // The hash of that ConfigMap, ids included (its content is
            // compared, normalized, above).
            annotations.remove("valkey.logbook.dev/config-hash");
        }
        if kind == "PersistentVolumeClaim"
            && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            // Bound by the storage provisioner.
            spec.remove("volumeName");
        }
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "ownerReferences",
                "namespace",
                "selfLink",
                "finalizers",
            ] {
                meta.remove(field);
            }
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.retain(|k, _| {
                    !k.starts_with("pv.kubernetes.io/") && !k.starts_with("volume.")
                });
            }
        }
        if let Some(spec) = obj.get_mut("spec") {
            drop_empty(spec);
        }
    }
}

/// Drops every empty object under `value`, and the objects that leaves
/// empty: `affinity: {}` says what no `affinity` says, and which of the two
/// an object holds depends on its history (created with it, or applied
/// over a fuller one, whose fields server-side apply prunes with the
/// emptied object), not on the spec.
fn drop_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(drop_empty);
            map.retain(|_, v| !v.as_object().is_some_and(Map::is_empty));
        }
        Value::Array(items) => items.iter_mut().for_each(drop_empty),
        _ => {}
    }
}

/// Replaces `namespace` in every string: exact, as a DNS label
/// (`.ns.`), or as a `ns/` prefix.
fn rename_namespace(value: &mut Value, namespace: &str) {
    match value {
        Value::String(s) => {
            if s == namespace {
                *s = "<ns>".into();
            } else {
                *s = s
                    .replace(&format!(".{namespace}."), ".<ns>.")
                    .replace(&format!("{namespace}/"), "<ns>/");
                if let Some(stripped) = s.strip_suffix(&format!(".{namespace}")) {
                    *s = format!("{stripped}.<ns>");
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rename_namespace(v, namespace)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| rename_namespace(v, namespace)),
        _ => {}
    }
}

fn mentions(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(s) => s.contains(needle),
        Value::Number(n) => n.to_string() == needle,
        Value::Bool(b) => b.to_string() == needle,
        Value::Array(items) => items.iter().any(|v| mentions(v, needle)),
        Value::Object(map) => map.iter().any(|(k, v)| k == needle || mentions(v, needle)),
        Value::Null => false,
    }
}

/// JSON pointers at which `a` and `b` differ (the first few).
fn differing_paths(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    if out.len() >= 6 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let child = format!("{at}/{key}");
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => differing_paths(p, q, child, out),
                    _ => out.push(child),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differing_paths(p, q, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(if at.is_empty() { "/".into() } else { at }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_claims_a_statefulset_uses_are_its_templates_below_its_replicas() {
        let sts = json!({"spec": {"replicas": 2, "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        assert_eq!(claims_of("soak", &sts), ["data-soak-0", "data-soak-1"]);
        // persistence None: no template, so every claim left is a kept one.
        assert!(claims_of("soak", &json!({"spec": {"replicas": 3}})).is_empty());
    }

    #[test]
    fn an_empty_object_compares_as_none() {
        let sts = |pod: Value| {
            let mut v = json!({"metadata": {"name": "soak"}, "spec": {"template": {"spec": pod}}});
            normalize(&mut v, "StatefulSet");
            v
        };
        assert_eq!(
            sts(json!({"affinity": {}, "securityContext": {"windowsOptions": {}}})),
            sts(json!({}))
        );
        assert_ne!(
            sts(json!({"affinity": {"podAntiAffinity": {"x": 1}}})),
            sts(json!({}))
        );
    }

    #[test]
    fn two_clusters_sentinel_ids_compare_equal_and_their_config_does_not() {
        let config = |id: &str, quorum: &str| {
            let mut v = json!({"metadata": {"name": "soak-sentinel-config"},
                "data": {"myid-0": id, "start.sh": quorum}});
            normalize(&mut v, "ConfigMap");
            v
        };
        assert_eq!(config("aa", "quorum 2"), config("bb", "quorum 2"));
        assert_ne!(config("aa", "quorum 2"), config("aa", "quorum 3"));
        let sts = |hash: &str| {
            let mut v = json!({"metadata": {"name": "soak-sentinel"}, "spec": {"template":
                {"metadata": {"annotations": {"valkey.logbook.dev/config-hash": hash}}}}});
            normalize(&mut v, "StatefulSet");
            v
        };
        assert_eq!(sts("1"), sts("2"));
    }

    #[test]
    fn a_secret_shows_its_keys_and_never_a_value() {
        let mut v = json!({"metadata": {"name": "x-password", "uid": "u"}, "data": {"password": "c2VjcmV0"}});
        normalize(&mut v, "Secret");
        assert_eq!(
            v,
            json!({"metadata": {"name": "x-password"}, "keys": ["password"]})
        );
        assert!(!v.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn namespaces_compare_equal_and_differences_are_named() {
        let mut a = json!({"spec": {"host": "soak-0.soak-headless.default.svc", "ns": "default"}});
        rename_namespace(&mut a, "default");
        let mut b = json!({"spec": {"host": "soak-0.soak-headless.fresh.svc", "ns": "fresh"}});
        rename_namespace(&mut b, "fresh");
        assert_eq!(a, b);
        let before = State {
            objects: BTreeMap::from([(
                "StatefulSet/x".to_owned(),
                json!({"spec": {"replicas": 3}}),
            )]),
        };
        let after = State {
            objects: BTreeMap::from([(
                "StatefulSet/x".to_owned(),
                json!({"spec": {"replicas": 4}}),
            )]),
        };
        assert_eq!(
            before.diff(&after),
            ["StatefulSet/x: differs at /spec/replicas"]
        );
        assert!(after.mentions("4"));
        assert!(!after.mentions("5"));
    }
}
