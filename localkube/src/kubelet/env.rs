//! A container's environment as the real kubelet builds it: `envFrom`
//! (with prefixes) first, then `env` (values, fieldRef, secretKeyRef,
//! configMapKeyRef, optional honoured), `$(VAR)` references expanded.
//! Secret values are never logged; errors name keys, not values.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

use crate::Store;

/// Where a container's env values come from.
pub(crate) struct EnvSource<'a> {
    pub store: &'a Store,
    pub pod: &'a Value,
    pub pod_ip: &'a str,
    pub node_name: &'a str,
}

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The data of a ConfigMap or Secret (decoded), None when absent.
pub(crate) fn object_data(
    store: &Store,
    ns: &str,
    secret: bool,
    name: &str,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let plural = if secret { "secrets" } else { "configmaps" };
    let o = store.get("v1", plural, Some(ns), name).ok()?;
    let mut out = BTreeMap::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    if secret {
        for (k, v) in o
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(bytes) = v.as_str().and_then(|x| b64.decode(x).ok()) {
                out.insert(k.clone(), bytes);
            }
        }
        for (k, v) in o
            .get("stringData")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(x) = v.as_str() {
                out.insert(k.clone(), x.as_bytes().to_vec());
            }
        }
    } else {
        for (k, v) in o
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(x) = v.as_str() {
                out.insert(k.clone(), x.as_bytes().to_vec());
            }
        }
        for (k, v) in o
            .get("binaryData")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(bytes) = v.as_str().and_then(|x| b64.decode(x).ok()) {
                out.insert(k.clone(), bytes);
            }
        }
    }
    Some(out)
}

fn field_ref(src: &EnvSource<'_>, path: &str) -> Result<String, String> {
    let pod = src.pod;
    let v = match path {
        "metadata.name" => s(pod, "/metadata/name").unwrap_or_default().to_owned(),
        "metadata.namespace" => s(pod, "/metadata/namespace").unwrap_or_default().to_owned(),
        "metadata.uid" => s(pod, "/metadata/uid").unwrap_or_default().to_owned(),
        "status.podIP" => src.pod_ip.to_owned(),
        "status.hostIP" => "127.0.0.1".to_owned(),
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
    match object_data(src.store, ns, secret, name) {
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
fn expand(v: &str, known: &[(String, String)]) -> String {
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
    let ns = s(src.pod, "/metadata/namespace").unwrap_or("default");
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
        match object_data(src.store, ns, secret, name) {
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
