//! What particular kinds do on write, as the real server's strategies and
//! admission do: defaults (Services' cluster IPs, Pods', StatefulSets';
//! Deployments' and ReplicaSets' with their validation in [`super::apps`]),
//! Services' node ports (in [`super::node_ports`]),
//! Secrets' `stringData`, Namespaces' finalizer and phase, CRDs' checks,
//! status and registration, and custom resources' schema admission.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::Inner;
use super::write::{FieldValidation, WriteCtx};
use crate::error::{ApiError, cause};
use crate::obj;
use crate::registry::{ResourceInfo, crd};

fn is(res: &ResourceInfo, group: &str, plural: &str) -> bool {
    res.group == group && res.plural == plural
}

fn map_of<'a>(o: &'a mut Value, field: &str) -> Option<&'a mut Map<String, Value>> {
    let root = o.as_object_mut()?;
    let v = root.entry(field).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut()
}

fn default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(Value::is_null) {
        m.insert(k.to_owned(), v);
    }
}

/// Defaults of built-in kinds (applied on every write, as decoding does).
fn defaults(res: &ResourceInfo, o: &mut Value) {
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "pods") => {
            if let Some(spec) = map_of(o, "spec") {
                default(spec, "restartPolicy", json!("Always"));
                default(spec, "terminationGracePeriodSeconds", json!(30));
                default(spec, "dnsPolicy", json!("ClusterFirst"));
                default(spec, "schedulerName", json!("default-scheduler"));
            }
        }
        ("", "services") => {
            if let Some(spec) = map_of(o, "spec") {
                default(spec, "type", json!("ClusterIP"));
                default(spec, "sessionAffinity", json!("None"));
                let kind = spec
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
                    default(spec, "externalTrafficPolicy", json!("Cluster"));
                }
                if kind == "LoadBalancer" {
                    default(spec, "allocateLoadBalancerNodePorts", json!(true));
                }
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            default(p, "targetPort", port);
                        }
                    }
                }
            }
        }
        ("", "secrets") => {
            if let Some(m) = o.as_object_mut() {
                default(m, "type", json!("Opaque"));
            }
        }
        ("apps", "deployments" | "replicasets") => super::apps::defaults(res, o),
        ("apps", "statefulsets") => {
            if let Some(spec) = map_of(o, "spec") {
                default(spec, "replicas", json!(1));
                default(spec, "podManagementPolicy", json!("OrderedReady"));
                default(spec, "revisionHistoryLimit", json!(10));
                default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
            }
        }
        _ => {}
    }
}

/// Secrets: `stringData` is write-only, merged into base64 `data`.
fn merge_string_data(o: &mut Value) {
    let Some(root) = o.as_object_mut() else {
        return;
    };
    let Some(Value::Object(sd)) = root.remove("stringData") else {
        return;
    };
    let data = root.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in sd {
            let text = v.as_str().unwrap_or_default().to_owned();
            d.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

fn allocate_cluster_ip(inner: &mut Inner) -> String {
    let used: HashSet<String> = inner
        .objects
        .iter()
        .filter(|(k, _)| k.0.is_empty() && k.1 == "services")
        .filter_map(|(_, s)| s.get("spec")?.get("clusterIP")?.as_str().map(str::to_owned))
        .collect();
    if let Some(instance) = inner.instance {
        return allocate_instance_ip(instance, &used);
    }
    // 10.96.0.0/12: 2^20 addresses; .0.1 is the kubernetes Service.
    loop {
        let n = inner.next_ip.clamp(10, (1 << 20) - 2);
        inner.next_ip = if n + 1 >= (1 << 20) - 1 { 10 } else { n + 1 };
        let ip = format!("10.{}.{}.{}", 96 + (n >> 16), (n >> 8) & 0xff, n & 0xff);
        if !used.contains(&ip) || used.len() >= (1 << 20) - 12 {
            return ip;
        }
    }
}

/// The first free ClusterIP of instance `number`'s block (127.n.200.1 on),
/// so the Service proxy can listen on it without colliding with another
/// localkube on the machine. A full block hands out its last address again
/// rather than failing, as the 10.96/12 allocator does.
fn allocate_instance_ip(number: u8, used: &HashSet<String>) -> String {
    let ip = |i: u32| {
        let third = 200 + i / 254;
        let fourth = 1 + i % 254;
        format!("127.{number}.{third}.{fourth}")
    };
    (0..crate::instance::SERVICE_ADDRESSES)
        .map(ip)
        .find(|a| !used.contains(a))
        .unwrap_or_else(|| ip(crate::instance::SERVICE_ADDRESSES.saturating_sub(1)))
}

/// The node ports every Service but `namespace/name` holds.
fn node_ports_taken(inner: &Inner, namespace: &str, name: &str) -> HashSet<u16> {
    inner
        .objects
        .iter()
        .filter(|(k, _)| k.0.is_empty() && k.1 == "services" && (k.2 != namespace || k.3 != name))
        .flat_map(|(_, s)| super::node_ports::held(s).collect::<Vec<_>>())
        .collect()
}

/// Checks, keeps and allocates `svc`'s node ports (422 naming the field).
fn admit_node_ports(inner: &Inner, svc: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = obj::name(svc).to_owned();
    let taken = node_ports_taken(inner, obj::namespace(svc), &name);
    super::node_ports::admit(svc, old, &taken).map_err(|causes| ApiError::Invalid {
        kind: "Service".into(),
        group: String::new(),
        name,
        causes,
    })
}

/// Kind-specific work before a create is stored.
pub(crate) fn on_create(
    inner: &mut Inner,
    res: &ResourceInfo,
    o: &mut Value,
    ctx: &WriteCtx,
) -> Result<(), ApiError> {
    defaults(res, o);
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "services") => {
            let wants = o
                .get("spec")
                .and_then(|s| s.get("clusterIP"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let ip = match wants.as_deref() {
                Some(ip) if !ip.is_empty() => ip.to_owned(),
                _ => allocate_cluster_ip(inner),
            };
            if let Some(spec) = map_of(o, "spec") {
                spec.insert("clusterIP".into(), json!(ip));
                spec.insert("clusterIPs".into(), json!([ip]));
                if ip != "None" {
                    default(spec, "ipFamilies", json!(["IPv4"]));
                    default(spec, "ipFamilyPolicy", json!("SingleStack"));
                }
                default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            admit_node_ports(inner, o, None)?;
            obj::set_field(o, "status", Some(json!({"loadBalancer": {}})));
        }
        ("", "secrets") => merge_string_data(o),
        ("", "pods") => obj::set_field(o, "status", Some(json!({"phase": "Pending"}))),
        ("", "persistentvolumeclaims") => {
            obj::set_field(o, "status", Some(json!({"phase": "Pending"})))
        }
        ("", "namespaces") => {
            let name = obj::name(o).to_owned();
            let m = obj::meta_mut(o);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if let Some(spec) = map_of(o, "spec") {
                spec.insert("finalizers".into(), json!(["kubernetes"]));
            }
            obj::set_field(o, "status", Some(json!({"phase": "Active"})));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd_admit(o, &ctx.now)?,
        _ if super::apps::handles(res) => super::apps::validate(res, o, None)?,
        _ => {}
    }
    Ok(())
}

fn crd_admit(o: &mut Value, now: &str) -> Result<(), ApiError> {
    match crd::resource_of(o) {
        Ok(info) => {
            crd::fill_status(o, &info, now);
            Ok(())
        }
        Err(causes) => Err(ApiError::Invalid {
            kind: "CustomResourceDefinition".into(),
            group: "apiextensions.k8s.io".into(),
            name: obj::name(o).to_owned(),
            causes,
        }),
    }
}

/// Kind-specific work before an update is stored.
pub(crate) fn on_update(
    inner: &mut Inner,
    res: &ResourceInfo,
    old: &Value,
    new: &mut Value,
    ctx: &WriteCtx,
) -> Result<(), ApiError> {
    defaults(res, new);
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "services") => {
            let old_ip = old.get("spec").and_then(|s| s.get("clusterIP")).cloned();
            let new_ip = new.get("spec").and_then(|s| s.get("clusterIP")).cloned();
            match (&old_ip, &new_ip) {
                (Some(o_ip), Some(n_ip)) if o_ip != n_ip && n_ip.as_str() != Some("") => {
                    return Err(ApiError::invalid_one(
                        "Service",
                        "",
                        obj::name(new),
                        cause(
                            "FieldValueInvalid",
                            format!("Invalid value: {n_ip}: field is immutable"),
                            "spec.clusterIPs[0]",
                        ),
                    ));
                }
                _ => {
                    if let Some(spec) = map_of(new, "spec") {
                        for f in [
                            "clusterIP",
                            "clusterIPs",
                            "ipFamilies",
                            "ipFamilyPolicy",
                            "internalTrafficPolicy",
                        ] {
                            if let Some(v) = old.get("spec").and_then(|s| s.get(f)) {
                                default(spec, f, v.clone());
                            }
                        }
                    }
                }
            }
            admit_node_ports(inner, new, Some(old))?;
        }
        ("", "secrets") => merge_string_data(new),
        ("", "namespaces") => {
            let name = obj::name(new).to_owned();
            let m = obj::meta_mut(new);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if let Some(spec) = old.get("spec") {
                obj::set_field(new, "spec", Some(spec.clone()));
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd_admit(new, &ctx.now)?,
        _ if super::apps::handles(res) => super::apps::validate(res, new, Some(old))?,
        _ if super::apps::is_statefulset(res) => {
            super::apps::validate_statefulset_update(res, new, old)?;
        }
        _ => {}
    }
    Ok(())
}

/// Custom resources: prune unknown fields (per `fieldValidation`), apply
/// defaults, validate, by the schema of the version the request was made
/// at (`ctx.version`; the stored one for the server's own writes), as the
/// real server validates a request in its own version. Returns the warnings to
/// send.
pub(crate) fn admit_custom(
    res: &ResourceInfo,
    ctx: &WriteCtx,
    o: &mut Value,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    if !res.custom {
        return Ok(Vec::new());
    }
    let written_at = ctx.version.as_deref().and_then(|v| res.version(v));
    let Some(schema) = written_at
        .or_else(|| res.storage())
        .and_then(|v| v.schema.clone())
    else {
        return Ok(Vec::new());
    };
    let unknown = schema.prune(o);
    let warnings: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
        .collect();
    let warnings = match ctx.field_validation {
        FieldValidation::Strict if !warnings.is_empty() => {
            return Err(ApiError::BadRequest(format!(
                "strict decoding error: {}",
                warnings.join(", ")
            )));
        }
        FieldValidation::Strict | FieldValidation::Ignore => Vec::new(),
        FieldValidation::Warn => warnings,
    };
    schema.apply_defaults(o);
    let causes = schema.validate(o, old);
    if !causes.is_empty() {
        return Err(ApiError::Invalid {
            kind: res.kind.clone(),
            group: res.group.clone(),
            name: obj::name(o).to_owned(),
            causes,
        });
    }
    Ok(warnings)
}

/// After a stored write: a CRD starts (or keeps) serving its kind.
pub(crate) fn after_write(inner: &mut Inner, res: &ResourceInfo, stored: &Value) {
    if is(res, "apiextensions.k8s.io", "customresourcedefinitions")
        && let Ok(info) = crd::resource_of(stored)
    {
        inner
            .custom
            .insert((info.group.clone(), info.plural.clone()), Arc::new(info));
    }
}

/// Rebuilds the served custom resources from the stored CRDs (on load).
pub(crate) fn reload_crds(inner: &mut Inner) {
    let crds: Vec<Arc<Value>> = inner
        .objects
        .iter()
        .filter(|(k, _)| k.0 == "apiextensions.k8s.io" && k.1 == "customresourcedefinitions")
        .map(|(_, v)| v.clone())
        .collect();
    for c in crds {
        if let Ok(info) = crd::resource_of(&c) {
            inner
                .custom
                .insert((info.group.clone(), info.plural.clone()), Arc::new(info));
        }
    }
}
