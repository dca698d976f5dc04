//! Discovery as a v1.35 kube-apiserver serves it: `/version`, `/api`,
//! `/apis`, `/apis/{group}`, the APIResourceLists, and the aggregated
//! APIGroupDiscoveryList (v2 and v2beta1) that kubectl asks for first.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Response;
use serde_json::{Value, json};

use super::App;
use super::request::{self, As};
use crate::error::ApiError;
use crate::registry::{ResourceInfo, VERBS};

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "35", "emulationMajor": "1", "emulationMinor": "35",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "34",
        "gitVersion": "v1.35.0", "gitCommit": "localkube", "gitTreeState": "clean",
        "buildDate": "2025-12-17T00:00:00Z", "goVersion": "go1.25.5", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// Orders versions as Kubernetes does: GA before beta before alpha,
/// higher numbers first.
fn version_key(v: &str) -> (u8, i64, i64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse::<i64>().unwrap_or(0);
    let tail = rest.get(digits.len()..).unwrap_or("");
    let (kind, minor) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else if tail.is_empty() {
        (3, 0)
    } else {
        (0, 0)
    };
    (kind, major, minor)
}

/// Group → its versions, preferred first.
fn groups(app: &App) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in app.store.resources() {
        let e = out.entry(r.group.clone()).or_default();
        for v in &r.versions {
            if !e.contains(&v.name) {
                e.push(v.name.clone());
            }
        }
    }
    for vs in out.values_mut() {
        vs.sort_by_key(|v| std::cmp::Reverse(version_key(v)));
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": vs, "preferredVersion": preferred})
}

fn in_version(app: &App, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
    app.store
        .resources()
        .into_iter()
        .filter(|r| r.group == group && r.version(version).is_some())
        .collect()
}

fn scope(r: &ResourceInfo) -> &'static str {
    if r.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    }
}

/// Subresources: (name, group, version, kind, verbs).
fn subresources(
    r: &ResourceInfo,
    version: &str,
) -> Vec<(&'static str, String, String, String, Vec<&'static str>)> {
    let mut out = Vec::new();
    let Some(v) = r.version(version) else {
        return out;
    };
    let rw = vec!["get", "patch", "update"];
    if v.status {
        out.push((
            "status",
            r.group.clone(),
            version.to_owned(),
            r.kind.clone(),
            rw.clone(),
        ));
    }
    if v.scale.is_some() {
        out.push((
            "scale",
            "autoscaling".into(),
            "v1".into(),
            "Scale".into(),
            rw,
        ));
    }
    if r.log {
        out.push(("log", String::new(), "v1".into(), "Pod".into(), vec!["get"]));
    }
    if r.eviction {
        out.push((
            "eviction",
            "policy".into(),
            "v1".into(),
            "Eviction".into(),
            vec!["create"],
        ));
    }
    if r.group.is_empty() && r.plural == "serviceaccounts" {
        out.push((
            "token",
            "authentication.k8s.io".into(),
            "v1".into(),
            "TokenRequest".into(),
            vec!["create"],
        ));
    }
    if r.group.is_empty() && r.plural == "namespaces" {
        out.push((
            "finalize",
            String::new(),
            "v1".into(),
            "Namespace".into(),
            vec!["update"],
        ));
    }
    out
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(app: &App, group: &str, version: &str) -> Response<Body> {
    let rs = in_version(app, group, version);
    if rs.is_empty() {
        return request::error(&ApiError::UnknownResource);
    }
    let mut resources = Vec::new();
    for r in &rs {
        let mut e = json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind, "verbs": VERBS});
        if let Some(m) = e.as_object_mut() {
            if !r.short_names.is_empty() {
                m.insert("shortNames".into(), json!(r.short_names));
            }
            if !r.categories.is_empty() {
                m.insert("categories".into(), json!(r.categories));
            }
        }
        resources.push(e);
        for (name, g, v, kind, verbs) in subresources(r, version) {
            let mut s = json!({"name": format!("{}/{name}", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": kind, "verbs": verbs});
            if (g != r.group || v != version)
                && let Some(m) = s.as_object_mut()
            {
                m.insert("group".into(), json!(g));
                m.insert("version".into(), json!(v));
            }
            resources.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    request::json(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// `/apis/{group}`.
pub fn group(app: &App, g: &str) -> Response<Body> {
    match groups(app).get(g) {
        Some(vs) if !g.is_empty() => {
            let mut v = group_json(g, vs);
            if let Some(m) = v.as_object_mut() {
                m.insert("kind".into(), json!("APIGroup"));
                m.insert("apiVersion".into(), json!("v1"));
            }
            request::json(200, &v)
        }
        _ => request::error(&ApiError::UnknownResource),
    }
}

fn aggregated(app: &App, core: bool, accept: As) -> Response<Body> {
    let av = if accept == As::DiscoveryV2 {
        "v2"
    } else {
        "v2beta1"
    };
    let mut items = Vec::new();
    for (g, versions) in groups(app)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
    {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = in_version(app, &g, v)
                    .iter()
                    .map(|r| {
                        let subs: Vec<Value> = subresources(r, v)
                            .into_iter()
                            .map(|(name, sg, sv, kind, verbs)| json!({"subresource": name, "responseKind": {"group": sg, "version": sv, "kind": kind}, "verbs": verbs}))
                            .collect();
                        let mut e = json!({"resource": r.plural, "responseKind": {"group": r.group, "version": v, "kind": r.kind},
                            "scope": scope(r), "singularResource": r.singular, "verbs": VERBS});
                        if let Some(m) = e.as_object_mut() {
                            if !r.short_names.is_empty() {
                                m.insert("shortNames".into(), json!(r.short_names));
                            }
                            if !r.categories.is_empty() {
                                m.insert("categories".into(), json!(r.categories));
                            }
                            if !subs.is_empty() {
                                m.insert("subresources".into(), json!(subs));
                            }
                        }
                        e
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let meta = if g.is_empty() {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": g, "creationTimestamp": null})
        };
        items.push(json!({"metadata": meta, "versions": vs}));
    }
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{av}"), "metadata": {}, "items": items});
    request::json_typed(
        200,
        &body,
        &format!("application/json;g=apidiscovery.k8s.io;v={av};as=APIGroupDiscoveryList"),
    )
}

/// `/api`.
pub fn api(app: &App, accept: As) -> Response<Body> {
    if matches!(accept, As::DiscoveryV2 | As::DiscoveryV2Beta1) {
        return aggregated(app, true, accept);
    }
    request::json(
        200,
        &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": app.addr.to_string()}]}),
    )
}

/// `/apis`.
pub fn apis(app: &App, accept: As) -> Response<Body> {
    if matches!(accept, As::DiscoveryV2 | As::DiscoveryV2Beta1) {
        return aggregated(app, false, accept);
    }
    let gs: Vec<Value> = groups(app)
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    request::json(
        200,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}),
    )
}
