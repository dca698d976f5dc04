//! A container's environment as the real kubelet builds it: `envFrom`
//! (with prefixes) first, then `env` (values, fieldRef, secretKeyRef,
//! configMapKeyRef, optional honoured), `$(VAR)` references expanded.
//! Secret values are never logged; errors name keys, not values.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine;
use serde_json::Value;

use crate::ApiError;
use crate::node_api::NodeApi;

/// Where a container's env values come from.
pub(crate) struct EnvSource<'a> {
    pub refs: &'a Refs,
    pub pod: &'a Value,
    pub pod_ip: &'a str,
    pub node_name: &'a str,
    /// The node's address (`status.hostIP`).
    pub host_ip: &'a str,
}

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The data of a ConfigMap or Secret, decoded.
fn decode(o: &Value, secret: bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    let (text, binary) = if secret {
        ("stringData", "data")
    } else {
        ("data", "binaryData")
    };
    for (k, v) in o
        .get(binary)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(bytes) = v.as_str().and_then(|x| b64.decode(x).ok()) {
            out.insert(k.clone(), bytes);
        }
    }
    for (k, v) in o.get(text).and_then(Value::as_object).into_iter().flatten() {
        if let Some(x) = v.as_str() {
            out.insert(k.clone(), x.as_bytes().to_vec());
        }
    }
    out
}

/// A ConfigMap's or Secret's data, decoded.
type Data = BTreeMap<String, Vec<u8>>;

/// What the pod's env and volumes name in its namespace — ConfigMaps and
/// Secrets (decoded, None when absent) and whether each claim exists —
/// read from the API in one pass, so the containers and volumes are built
/// from one reading without further requests.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    objects: HashMap<(bool, String), Option<Data>>,
    /// Each claim named: its uid, None when it does not exist.
    claims: HashMap<String, Option<String>>,
}

impl Refs {
    /// Reads everything `pod` names.
    ///
    /// # Errors
    /// A read the API refused other than with 404 (the pod waits for the
    /// next round instead of taking the object as absent).
    pub(crate) async fn fetch(api: &NodeApi, pod: &Value) -> Result<Self, String> {
        let ns = s(pod, "/metadata/namespace").unwrap_or("default");
        let mut wanted: BTreeSet<(bool, String)> = BTreeSet::new();
        let mut claims: BTreeSet<String> = BTreeSet::new();
        let name = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        for field in ["initContainers", "containers"] {
            for c in pod
                .pointer(&format!("/spec/{field}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for from in c
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(n) = name(from.pointer("/configMapRef/name")) {
                        wanted.insert((false, n));
                    }
                    if let Some(n) = name(from.pointer("/secretRef/name")) {
                        wanted.insert((true, n));
                    }
                }
                for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(n) = name(e.pointer("/valueFrom/configMapKeyRef/name")) {
                        wanted.insert((false, n));
                    }
                    if let Some(n) = name(e.pointer("/valueFrom/secretKeyRef/name")) {
                        wanted.insert((true, n));
                    }
                }
            }
        }
        for v in pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = name(v.pointer("/configMap/name")) {
                wanted.insert((false, n));
            }
            if let Some(n) = name(v.pointer("/secret/secretName")) {
                wanted.insert((true, n));
            }
            if let Some(n) = name(v.pointer("/persistentVolumeClaim/claimName")) {
                claims.insert(n);
            }
        }
        let mut out = Self::default();
        for (secret, n) in wanted {
            let plural = if secret { "secrets" } else { "configmaps" };
            let data = match api.get("v1", plural, Some(ns), &n).await {
                Ok(o) => Some(decode(&o, secret)),
                Err(ApiError::NotFound(_)) => None,
                Err(e) => return Err(format!("cannot read {plural} \"{n}\": {e}")),
            };
            out.objects.insert((secret, n), data);
        }
        for n in claims {
            let exists = match api.get("v1", "persistentvolumeclaims", Some(ns), &n).await {
                Ok(c) => Some(s(&c, "/metadata/uid").unwrap_or_default().to_owned()),
                Err(ApiError::NotFound(_)) => None,
                Err(e) => return Err(format!("cannot read persistentvolumeclaim \"{n}\": {e}")),
            };
            out.claims.insert(n, exists);
        }
        Ok(out)
    }

    /// The data of the ConfigMap (or Secret) `name`, None when absent.
    pub(crate) fn data(&self, secret: bool, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.objects
            .get(&(secret, name.to_owned()))
            .cloned()
            .flatten()
    }

    /// The uid of the claim `name`, None when it does not exist.
    pub(crate) fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Option::as_deref)
    }
}

fn field_ref(src: &EnvSource<'_>, path: &str) -> Result<String, String> {
    let pod = src.pod;
    let v = match path {
        "metadata.name" => s(pod, "/metadata/name").unwrap_or_default().to_owned(),
        "metadata.namespace" => s(pod, "/metadata/namespace").unwrap_or_default().to_owned(),
        "metadata.uid" => s(pod, "/metadata/uid").unwrap_or_default().to_owned(),
        "status.podIP" => src.pod_ip.to_owned(),
        "status.hostIP" | "status.hostIPs" => src.host_ip.to_owned(),
        "spec.nodeName" => src.node_name.to_owned(),
        "spec.serviceAccountName" => s(pod, "/spec/serviceAccountName")
            .unwrap_or("default")
            .to_owned(),
        other => {
            let key = other
                .strip_prefix("metadata.labels['")
                .map(|k| ("labels", k))
                .or_else(|| {
                    other
                        .strip_prefix("metadata.annotations['")
                        .map(|k| ("annotations", k))
                })
                .and_then(|(m, k)| k.strip_suffix("']").map(|k| (m, k)));
            match key {
                Some((m, k)) => pod
                    .get("metadata")
                    .and_then(|md| md.get(m))
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                None => return Err(format!("unsupported fieldRef {other}")),
            }
        }
    };
    Ok(v)
}

fn key_ref(src: &EnvSource<'_>, r: &Value, secret: bool) -> Result<Option<String>, String> {
    let ns = s(src.pod, "/metadata/namespace").unwrap_or("default");
    let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
    let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
    let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
    let kind = if secret { "secret" } else { "configmap" };
    match src.refs.data(secret, name) {
        Some(d) => match d.get(key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
            None if optional => Ok(None),
            None => Err(format!("couldn't find key {key} in {kind} {ns}/{name}")),
        },
        None if optional => Ok(None),
        None => Err(format!("{kind} \"{name}\" not found")),
    }
}

/// Expands `$(VAR)` from earlier variables; `$$(VAR)` stays literal.
pub(crate) fn expand(v: &str, known: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('$') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("$(")
            && let Some(end) = t.find(')')
        {
            let (name, after) = t.split_at(end);
            match known.iter().rev().find(|(k, _)| k == name) {
                Some((_, val)) => out.push_str(val),
                None => out.push_str(&format!("$({name})")),
            }
            rest = after.strip_prefix(')').unwrap_or(after);
        } else {
            out.push('$');
            rest = tail.strip_prefix('$').unwrap_or(tail);
        }
    }
    out.push_str(rest);
    out
}

/// The container's own variables (the kubelet adds its own after).
///
/// # Errors
/// A missing non-optional ConfigMap/Secret or key (reported as
/// `CreateContainerConfigError`).
pub(crate) fn build(
    src: &EnvSource<'_>,
    container: &Value,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = from
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (r, secret) = match (from.get("configMapRef"), from.get("secretRef")) {
            (Some(r), _) => (r, false),
            (None, Some(r)) => (r, true),
            (None, None) => continue,
        };
        let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
        let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
        match src.refs.data(secret, name) {
            Some(d) => {
                for (k, v) in d {
                    out.push((
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).into_owned(),
                    ));
                }
            }
            None if optional => {}
            None => {
                let kind = if secret { "secret" } else { "configmap" };
                return Err(format!("{kind} \"{name}\" not found"));
            }
        }
    }
    for e in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = e.get("name").and_then(Value::as_str) else {
            continue;
        };
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            Some(expand(v, &out))
        } else if let Some(f) = e
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            Some(field_ref(src, f)?)
        } else if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
            key_ref(src, r, true)?
        } else if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
            key_ref(src, r, false)?
        } else if e.get("valueFrom").is_some() {
            // resourceFieldRef: no resource accounting here; the empty
            // value keeps the variable defined.
            Some(String::new())
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            out.retain(|(k, _)| k != name);
            out.push((name.to_owned(), v));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_and_escapes_stay() {
        let known = vec![("A".to_owned(), "x".to_owned())];
        assert_eq!(expand("$(A)-$(B)-$$(A)", &known), "x-$(B)-$(A)");
    }
}
