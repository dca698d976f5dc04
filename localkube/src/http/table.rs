//! Server-side printing: meta.k8s.io/v1 Tables (what `kubectl get` asks
//! for) with the built-in kinds' usual columns and CRDs'
//! `additionalPrinterColumns`, and PartialObjectMetadata.

use serde_json::{Value, json};

use crate::jsonpath;
use crate::registry::ResourceInfo;

/// A PartialObjectMetadata of `o`.
pub fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({}))})
}

/// kubectl's human duration (`5m`, `2d3h`).
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "0s".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    let join = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua}{b}{ub}")
        }
    };
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        join(m, "m", secs % 60, "s")
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        join(h, "h", m % 60, "m")
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        join(d, "d", h % 24, "h")
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        join(d / 365, "y", d % 365, "d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(o: &Value) -> Value {
    since(
        o.get("metadata")
            .and_then(|m| m.get("creationTimestamp"))
            .and_then(Value::as_str),
    )
}

/// A timestamp as the time since it (`5m`), as the server renders `date`
/// columns; `<unknown>` when absent or unparsable.
fn since(ts: Option<&str>) -> Value {
    match ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => json!(human_duration(
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()
        )),
        None => json!("<unknown>"),
    }
}

fn col(name: &str, type_: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn s<'a>(o: &'a Value, path: &str) -> &'a str {
    jsonpath::get(o, path).and_then(Value::as_str).unwrap_or("")
}

fn count(o: &Value, fields: &[&str]) -> usize {
    fields
        .iter()
        .filter_map(|f| o.get(*f).and_then(Value::as_object))
        .map(serde_json::Map::len)
        .sum()
}

/// Column definitions and the cells of one object.
fn columns(res: &ResourceInfo) -> Vec<Value> {
    let name = col(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    );
    let age = col(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    );
    if res.custom {
        let cols = res.storage().map(|v| v.columns.clone()).unwrap_or_default();
        if cols.is_empty() {
            return vec![name, col("Age", "date", "", "", 0)];
        }
        let mut out = vec![name];
        out.extend(
            cols.iter()
                .map(|c| col(&c.name, &c.type_, &c.format, &c.description, c.priority)),
        );
        return out;
    }
    let mut out = vec![name];
    let extra: Vec<Value> = match (res.group.as_str(), res.plural.as_str()) {
        ("", "pods") => vec![
            col(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            col(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            col(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0,
            ),
            age.clone(),
            col("IP", "string", "", "IP address allocated to the pod.", 1),
            col(
                "Node",
                "string",
                "",
                "Name of the node where the pod is scheduled.",
                1,
            ),
        ],
        ("", "namespaces") => vec![
            col("Status", "string", "", "The status of the namespace", 0),
            age.clone(),
        ],
        ("apps", "statefulsets") => vec![
            col(
                "Ready",
                "string",
                "",
                "Number of the pod with ready state",
                0,
            ),
            age.clone(),
        ],
        ("apps", "deployments") => vec![
            col(
                "Ready",
                "string",
                "",
                "Number of the pod with ready state",
                0,
            ),
            col(
                "Up-to-date",
                "string",
                "",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                0,
            ),
            col(
                "Available",
                "string",
                "",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                0,
            ),
            age.clone(),
        ],
        ("apps", "replicasets") => vec![
            col("Desired", "integer", "", "Number of desired pods.", 0),
            col("Current", "integer", "", "Number of actual pods.", 0),
            col("Ready", "integer", "", "Number of ready pods.", 0),
            age.clone(),
        ],
        ("", "configmaps") => vec![col("Data", "string", "", "", 0), age.clone()],
        ("", "secrets") => vec![
            col("Type", "string", "", "", 0),
            col("Data", "string", "", "", 0),
            age.clone(),
        ],
        ("", "services") => vec![
            col("Type", "string", "", "", 0),
            col("Cluster-IP", "string", "", "", 0),
            col("External-IP", "string", "", "", 0),
            col("Port(s)", "string", "", "", 0),
            age.clone(),
        ],
        _ => vec![age.clone()],
    };
    out.extend(extra);
    out
}

fn cells(res: &ResourceInfo, o: &Value) -> Vec<Value> {
    let name = json!(s(o, ".metadata.name"));
    if res.custom {
        let cols = res.storage().map(|v| v.columns.clone()).unwrap_or_default();
        if cols.is_empty() {
            return vec![name, age(o)];
        }
        let mut out = vec![name];
        out.extend(cols.iter().map(|c| {
            let value = jsonpath::get(o, &c.json_path);
            // The CRD table convertor renders `date` columns as an age.
            match (c.type_.as_str(), value) {
                ("date", Some(v)) => since(v.as_str()),
                (_, v) => v.cloned().unwrap_or(Value::Null),
            }
        }));
        return out;
    }
    let mut out = vec![name];
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "pods") => {
            let statuses = o
                .get("status")
                .and_then(|st| st.get("containerStatuses"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = o
                .get("spec")
                .and_then(|sp| sp.get("containers"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            let mut status = s(o, ".status.phase").to_owned();
            if let Some(r) = statuses.iter().find_map(|c| {
                c.get("state")
                    .and_then(|st| st.get("waiting"))
                    .and_then(|w| w.get("reason"))
                    .and_then(Value::as_str)
            }) {
                status = r.to_owned();
            }
            if o.get("metadata")
                .and_then(|m| m.get("deletionTimestamp"))
                .is_some()
            {
                status = "Terminating".into();
            }
            let ip = s(o, ".status.podIP");
            let node = s(o, ".spec.nodeName");
            out.extend([
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts.to_string()),
                age(o),
                json!(if ip.is_empty() { "<none>" } else { ip }),
                json!(if node.is_empty() { "<none>" } else { node }),
            ]);
        }
        ("", "namespaces") => out.extend([json!(s(o, ".status.phase")), age(o)]),
        ("apps", "statefulsets") => {
            let r = |p: &str| jsonpath::get(o, p).and_then(Value::as_i64).unwrap_or(0);
            out.extend([
                json!(format!(
                    "{}/{}",
                    r(".status.readyReplicas"),
                    r(".spec.replicas")
                )),
                age(o),
            ]);
        }
        ("apps", "deployments") => {
            let r = |p: &str| jsonpath::get(o, p).and_then(Value::as_i64).unwrap_or(0);
            out.extend([
                json!(format!(
                    "{}/{}",
                    r(".status.readyReplicas"),
                    r(".spec.replicas")
                )),
                json!(r(".status.updatedReplicas").to_string()),
                json!(r(".status.availableReplicas").to_string()),
                age(o),
            ]);
        }
        ("apps", "replicasets") => {
            let r = |p: &str| jsonpath::get(o, p).and_then(Value::as_i64).unwrap_or(0);
            out.extend([
                json!(r(".spec.replicas")),
                json!(r(".status.replicas")),
                json!(r(".status.readyReplicas")),
                age(o),
            ]);
        }
        ("", "configmaps") => out.extend([json!(count(o, &["data", "binaryData"])), age(o)]),
        ("", "secrets") => out.extend([json!(s(o, ".type")), json!(count(o, &["data"])), age(o)]),
        ("", "services") => {
            let ports: Vec<String> = o
                .get("spec")
                .and_then(|sp| sp.get("ports"))
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ports = if ports.is_empty() {
                "<none>".to_owned()
            } else {
                ports.join(",")
            };
            out.extend([
                json!(s(o, ".spec.type")),
                json!(s(o, ".spec.clusterIP")),
                json!("<none>"),
                json!(ports),
                age(o),
            ]);
        }
        _ => out.push(age(o)),
    }
    out
}

/// A Table of `objects` (`include`: `includeObject` — None, Metadata
/// (the default) or Object).
pub fn table(
    res: &ResourceInfo,
    objects: &[Value],
    include: Option<&str>,
    meta: Option<Value>,
    _event: Option<&str>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(res, o)});
            let object = match include {
                Some("None") => None,
                Some("Object") => Some(o.clone()),
                _ => Some(partial(o)),
            };
            if let (Some(obj), Some(m)) = (object, row.as_object_mut()) {
                m.insert("object".into(), obj);
            }
            row
        })
        .collect();
    let meta = meta.unwrap_or_else(|| {
        let rv = objects
            .first()
            .map(|o| s(o, ".metadata.resourceVersion"))
            .unwrap_or("");
        json!({"resourceVersion": rv})
    });
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns(res), "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(300), "5m");
        assert_eq!(human_duration(330), "5m30s");
        assert_eq!(human_duration(3 * 86_400 + 3 * 3600), "3d3h");
        assert_eq!(human_duration(10 * 86_400), "10d");
    }
}
