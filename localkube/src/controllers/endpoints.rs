//! The endpoints and EndpointSlice controllers: for every Service with a
//! selector, the Endpoints object of the same name (ready pods in
//! `addresses`, the others in `notReadyAddresses`, or all ready with
//! `publishNotReadyAddresses`) and `discovery.k8s.io/v1` EndpointSlices
//! labelled `kubernetes.io/service-name`, one per distinct port set.
//! Ports are resolved per pod from `targetPort` (number or container port
//! name). Nothing is written when nothing changed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, owner_ref};
use super::{Reconciler, Result, store_err};
use crate::error::ApiError;
use crate::obj;
use crate::selector::LabelSelector;
use crate::store::{DeleteOptions, Store, WriteCtx};

const CONTROLLER: &str = "endpoint-controller";
/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGER: &str = "endpointslice-controller.k8s.io";
/// Set on every Endpoints this controller writes, so that one left behind
/// by a deleted Service is recognised as ours (Endpoints carry no owner).
const TRIGGER: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The endpoints controller (Endpoints and EndpointSlices).
pub struct EndpointsController;

impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        CONTROLLER
    }

    fn watches(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("v1", "services"),
            ("v1", "pods"),
            ("v1", "endpoints"),
            ("discovery.k8s.io/v1", "endpointslices"),
        ]
    }

    fn reconcile_all(&self, store: &Store) -> Result<Option<Duration>> {
        let err = |a| store_err(CONTROLLER, a, "", "");
        let services = store
            .list("v1", "services", None, None)
            .map_err(err("list services"))?;
        let all_pods = store
            .list("v1", "pods", None, None)
            .map_err(err("list pods"))?;
        let mut first = None;
        for svc in &services {
            if let Err(e) = reconcile(store, svc, &all_pods) {
                first.get_or_insert(e);
            }
        }
        if let Err(e) = remove_orphans(store, &services) {
            first.get_or_insert(e);
        }
        first.map_or(Ok(None), Err)
    }
}

/// One endpoint of a Service: a pod and the ports it serves.
struct Member<'a> {
    pod: &'a Value,
    ip: &'a str,
    ready: bool,
    terminating: bool,
}

/// The pod's port for a Service port, as `podutil.FindPort` resolves it.
fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let target = svc_port
        .get("targetPort")
        .or_else(|| svc_port.get("port"))?;
    match target {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => {
            if let Ok(n) = name.parse::<i64>() {
                return Some(n);
            }
            let proto = svc_port
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP");
            pod.get("spec")?
                .get("containers")?
                .as_array()?
                .iter()
                .filter_map(|c| c.get("ports")?.as_array())
                .flatten()
                .find(|p| {
                    p.get("name").and_then(Value::as_str) == Some(name.as_str())
                        && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == proto
                })
                .and_then(|p| p.get("containerPort")?.as_i64())
        }
        _ => None,
    }
}

/// The endpoint ports of `pod` for `svc`, in the Service's port order.
fn ports_of(pod: &Value, svc: &Value) -> Vec<Value> {
    let ports = svc
        .get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            let mut p = json!({"port": port,
                "protocol": sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP")});
            if let (Some(m), Some(n)) = (p.as_object_mut(), sp.get("name").and_then(Value::as_str))
                && !n.is_empty()
            {
                m.insert("name".into(), json!(n));
            }
            if let (Some(m), Some(ap)) = (p.as_object_mut(), sp.get("appProtocol")) {
                m.insert("appProtocol".into(), ap.clone());
            }
            Some(p)
        })
        .collect()
}

fn address(m: &Member<'_>) -> Value {
    let mut a = json!({"ip": m.ip, "targetRef": {"kind": "Pod", "namespace": obj::namespace(m.pod),
        "name": obj::name(m.pod), "uid": obj::uid(m.pod)}});
    if let Some(o) = a.as_object_mut() {
        if let Some(node) = m.pod.get("spec").and_then(|s| s.get("nodeName")) {
            o.insert("nodeName".into(), node.clone());
        }
        if let Some(h) = m.pod.get("spec").and_then(|s| s.get("hostname")) {
            o.insert("hostname".into(), h.clone());
        }
    }
    a
}

fn reconcile(store: &Store, svc: &Value, all_pods: &[Value]) -> Result<()> {
    let ns = obj::namespace(svc);
    let selector = svc.get("spec").and_then(|s| s.get("selector"));
    // A Service without a selector has hand-made endpoints: not ours.
    let Some(sel) = selector
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    else {
        return Ok(());
    };
    if obj::is_deleting(svc) {
        return Ok(());
    }
    let sel = LabelSelector::from_object(Some(&json!({"matchLabels": sel})));
    let publish = svc
        .get("spec")
        .and_then(|s| s.get("publishNotReadyAddresses"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Port set → members, for both Endpoints subsets and slices.
    let mut groups: BTreeMap<String, (Vec<Value>, Vec<Member<'_>>)> = BTreeMap::new();
    for pod in all_pods
        .iter()
        .filter(|p| obj::namespace(p) == ns && sel.matches_object(p))
    {
        if matches!(pods::phase(pod), "Failed" | "Succeeded") {
            continue;
        }
        let Some(ip) = pods::pod_ip(pod) else {
            continue;
        };
        let ports = ports_of(pod, svc);
        let member = Member {
            pod,
            ip,
            ready: pods::is_ready(pod) && !obj::is_deleting(pod),
            terminating: obj::is_deleting(pod),
        };
        groups
            .entry(Value::Array(ports.clone()).to_string())
            .or_insert_with(|| (ports, Vec::new()))
            .1
            .push(member);
    }
    for (_, members) in groups.values_mut() {
        members.sort_by(|a, b| {
            a.ip.cmp(b.ip)
                .then_with(|| obj::name(a.pod).cmp(obj::name(b.pod)))
        });
    }
    write_endpoints(store, svc, &groups, publish)?;
    write_slices(store, svc, &groups, publish)
}

fn labels_of(svc: &Value) -> serde_json::Map<String, Value> {
    svc.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn write_endpoints(
    store: &Store,
    svc: &Value,
    groups: &BTreeMap<String, (Vec<Value>, Vec<Member<'_>>)>,
    publish: bool,
) -> Result<()> {
    let ns = obj::namespace(svc);
    let name = obj::name(svc);
    let mut subsets = Vec::new();
    for (ports, members) in groups.values() {
        let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
        for m in members.iter().filter(|m| publish || !m.terminating) {
            if m.ready || publish {
                ready.push(address(m));
            } else {
                not_ready.push(address(m));
            }
        }
        let mut subset = serde_json::Map::new();
        if !ready.is_empty() {
            subset.insert("addresses".into(), Value::Array(ready));
        }
        if !not_ready.is_empty() {
            subset.insert("notReadyAddresses".into(), Value::Array(not_ready));
        }
        if subset.is_empty() {
            continue;
        }
        if !ports.is_empty() {
            subset.insert("ports".into(), Value::Array(ports.clone()));
        }
        subsets.push(Value::Object(subset));
    }
    let labels = Value::Object(labels_of(svc));
    let ctx = WriteCtx::internal(CONTROLLER);
    let err = |a| store_err(CONTROLLER, a, ns, name);
    match store.get("v1", "endpoints", Some(ns), name) {
        Ok(current) => {
            let have_subsets = current.get("subsets").cloned().unwrap_or_else(|| json!([]));
            let have_labels = current
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .cloned()
                .unwrap_or_else(|| json!({}));
            if have_subsets == Value::Array(subsets.clone()) && have_labels == labels {
                return Ok(());
            }
            let mut body = current;
            obj::set_field(
                &mut body,
                "subsets",
                (!subsets.is_empty()).then_some(Value::Array(subsets)),
            );
            let meta = obj::meta_mut(&mut body);
            meta.insert("labels".into(), labels);
            annotate(meta, &ctx.now);
            store
                .update("v1", "endpoints", Some(ns), body, false, &ctx)
                .map_err(err("update endpoints"))?;
        }
        Err(ApiError::NotFound(_)) => {
            let mut body = json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels}});
            annotate(obj::meta_mut(&mut body), &ctx.now);
            if !subsets.is_empty() {
                obj::set_field(&mut body, "subsets", Some(Value::Array(subsets)));
            }
            match store.create("v1", "endpoints", Some(ns), body, &ctx) {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                Err(e) => return Err(err("create endpoints")(e)),
            }
        }
        Err(e) => return Err(err("get endpoints")(e)),
    }
    Ok(())
}

fn annotate(meta: &mut serde_json::Map<String, Value>, now: &str) {
    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = ann.as_object_mut() {
        a.insert(TRIGGER.into(), json!(now));
    }
}

fn slice_endpoint(m: &Member<'_>, publish: bool) -> Value {
    let ready = (m.ready || publish) && !m.terminating;
    let mut e = json!({
        "addresses": [m.ip],
        "conditions": {"ready": ready, "serving": m.ready || publish, "terminating": m.terminating},
        "targetRef": {"kind": "Pod", "namespace": obj::namespace(m.pod), "name": obj::name(m.pod), "uid": obj::uid(m.pod)},
    });
    if let Some(o) = e.as_object_mut() {
        if let Some(node) = m.pod.get("spec").and_then(|s| s.get("nodeName")) {
            o.insert("nodeName".into(), node.clone());
        }
        if let Some(h) = m.pod.get("spec").and_then(|s| s.get("hostname")) {
            o.insert("hostname".into(), h.clone());
        }
    }
    e
}

fn write_slices(
    store: &Store,
    svc: &Value,
    groups: &BTreeMap<String, (Vec<Value>, Vec<Member<'_>>)>,
    publish: bool,
) -> Result<()> {
    let ns = obj::namespace(svc);
    let name = obj::name(svc);
    let err = |a| store_err(CONTROLLER, a, ns, name);
    let ctx = WriteCtx::internal("endpointslice-controller");
    let selector = format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY}={MANAGER}");
    let mut existing = store
        .list(
            "discovery.k8s.io/v1",
            "endpointslices",
            Some(ns),
            Some(&selector),
        )
        .map_err(err("list endpointslices"))?;
    let mut labels = labels_of(svc);
    labels.insert(SERVICE_NAME_LABEL.into(), json!(name));
    labels.insert(MANAGED_BY.into(), json!(MANAGER));
    // A Service with no endpoints still gets one empty slice, as upstream.
    let mut wanted: Vec<(Value, Vec<Value>)> = groups
        .values()
        .map(|(ports, members)| {
            let eps = members.iter().map(|m| slice_endpoint(m, publish)).collect();
            (Value::Array(ports.clone()), eps)
        })
        .collect();
    if wanted.is_empty() {
        wanted.push((json!([]), Vec::new()));
    }
    for (ports, endpoints) in wanted {
        let pos = existing
            .iter()
            .position(|s| s.get("ports").cloned().unwrap_or_else(|| json!([])) == ports);
        let endpoints = Value::Array(endpoints);
        match pos {
            Some(i) => {
                let current = existing.remove(i);
                let same = current
                    .get("endpoints")
                    .cloned()
                    .unwrap_or_else(|| json!([]))
                    == endpoints
                    && current.get("metadata").and_then(|m| m.get("labels"))
                        == Some(&Value::Object(labels.clone()));
                if same {
                    continue;
                }
                let mut body = current;
                obj::set_field(&mut body, "endpoints", Some(endpoints));
                obj::meta_mut(&mut body).insert("labels".into(), Value::Object(labels.clone()));
                store
                    .update(
                        "discovery.k8s.io/v1",
                        "endpointslices",
                        Some(ns),
                        body,
                        false,
                        &ctx,
                    )
                    .map_err(err("update endpointslice"))?;
            }
            None => {
                let body = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": labels,
                        "ownerReferences": [owner_ref(svc, "v1", "Service", true)]},
                    "addressType": "IPv4", "endpoints": endpoints, "ports": ports});
                store
                    .create(
                        "discovery.k8s.io/v1",
                        "endpointslices",
                        Some(ns),
                        body,
                        &ctx,
                    )
                    .map_err(err("create endpointslice"))?;
            }
        }
    }
    for stale in existing {
        match store.delete(
            "discovery.k8s.io/v1",
            "endpointslices",
            Some(ns),
            obj::name(&stale),
            &DeleteOptions::default(),
        ) {
            Ok(_) | Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(err("delete endpointslice")(e)),
        }
    }
    Ok(())
}

/// Endpoints this controller wrote whose Service is gone, or whose
/// Service lost its selector, are deleted (slices go with their owner).
fn remove_orphans(store: &Store, services: &[Value]) -> Result<()> {
    let all = store
        .list("v1", "endpoints", None, None)
        .map_err(store_err(CONTROLLER, "list endpoints", "", ""))?;
    for ep in all {
        let ours = ep
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(TRIGGER))
            .is_some();
        let selected = services.iter().any(|s| {
            obj::namespace(s) == obj::namespace(&ep)
                && obj::name(s) == obj::name(&ep)
                && s.get("spec")
                    .and_then(|sp| sp.get("selector"))
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
        });
        if ours && !selected {
            let ns = obj::namespace(&ep);
            match store.delete(
                "v1",
                "endpoints",
                Some(ns),
                obj::name(&ep),
                &DeleteOptions::default(),
            ) {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => {
                    return Err(store_err(
                        CONTROLLER,
                        "delete endpoints",
                        ns,
                        obj::name(&ep),
                    )(e));
                }
            }
        }
    }
    Ok(())
}
