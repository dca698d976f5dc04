//! CustomResourceDefinitions: checking one on write as the real server's
//! validation does, filling its status (NamesAccepted, Established) and
//! turning it into the [`ResourceInfo`] the server serves.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{PrinterColumn, ResourceInfo, ScalePaths, VersionInfo};
use crate::error::cause;
use crate::names::NameRule;
use crate::schema::{Cause, CompiledSchema};

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn required(causes: &mut Vec<Cause>, v: Option<&str>, field: &str) -> String {
    match v {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => {
            causes.push(cause("FieldValueRequired", "Required value", field));
            String::new()
        }
    }
}

/// Checks `crd` and builds what it serves.
///
/// # Errors
/// The field errors, answered as 422 Invalid.
pub fn resource_of(crd: &Value) -> Result<ResourceInfo, Vec<Cause>> {
    let mut causes = Vec::new();
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let group = required(&mut causes, str_at(&spec, &["group"]), "spec.group");
    let plural = required(
        &mut causes,
        str_at(&spec, &["names", "plural"]),
        "spec.names.plural",
    );
    let kind = required(
        &mut causes,
        str_at(&spec, &["names", "kind"]),
        "spec.names.kind",
    );
    let scope = str_at(&spec, &["scope"]).unwrap_or("");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(cause(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
            "spec.scope",
        ));
    }
    let name = str_at(crd, &["metadata", "name"]).unwrap_or("");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
            "metadata.name",
        ));
    }
    let singular = str_at(&spec, &["names", "singular"])
        .map(str::to_owned)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = str_at(&spec, &["names", "listKind"])
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{kind}List"));
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let names = spec.get("names");
    let short_names = strings(names.and_then(|n| n.get("shortNames")));
    let categories = strings(names.and_then(|n| n.get("categories")));

    let empty = Vec::new();
    let raw_versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if raw_versions.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "Required value: must have exactly one version marked as storage version",
            "spec.versions",
        ));
    }
    let storage_count = raw_versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !raw_versions.is_empty() && storage_count != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "Invalid value: must have exactly one version marked as storage version",
            "spec.versions",
        ));
    }
    let mut versions = Vec::new();
    for (i, v) in raw_versions.iter().enumerate() {
        let field = format!("spec.versions[{i}]");
        let vname = required(
            &mut causes,
            v.get("name").and_then(Value::as_str),
            &format!("{field}.name"),
        );
        let served = v.get("served").and_then(Value::as_bool).unwrap_or(false);
        let storage = v.get("storage").and_then(Value::as_bool).unwrap_or(false);
        let raw_schema = v
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .cloned();
        let schema = match &raw_schema {
            None => {
                causes.push(cause(
                    "FieldValueRequired",
                    "Required value: schemas are required",
                    &format!("{field}.schema.openAPIV3Schema"),
                ));
                None
            }
            Some(s) => match CompiledSchema::compile(s) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    causes.push(cause(
                        "FieldValueInvalid",
                        format!("Invalid value: {e}"),
                        &format!("{field}.schema.openAPIV3Schema"),
                    ));
                    None
                }
            },
        };
        let sub = v.get("subresources");
        let scale = sub.and_then(|s| s.get("scale")).map(|s| ScalePaths {
            spec_replicas: s
                .get("specReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".spec.replicas")
                .to_owned(),
            status_replicas: s
                .get("statusReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".status.replicas")
                .to_owned(),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
        let columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| {
                        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                        PrinterColumn {
                            name: s("name"),
                            type_: s("type"),
                            format: s("format"),
                            description: s("description"),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                            json_path: s("jsonPath"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        if served {
            versions.push(VersionInfo {
                name: vname,
                storage,
                status: sub.and_then(|s| s.get("status")).is_some(),
                scale,
                schema,
                raw_schema,
                columns,
            });
        }
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    Ok(ResourceInfo {
        group,
        kind,
        list_kind,
        plural,
        singular,
        namespaced: scope == "Namespaced",
        short_names,
        categories,
        versions,
        log: false,
        eviction: false,
        name_rule: NameRule::Subdomain,
        custom: true,
        conversion_webhook: spec
            .get("conversion")
            .filter(|c| c.get("strategy").and_then(Value::as_str) == Some("Webhook"))
            .and_then(|c| c.pointer("/webhook/clientConfig"))
            .cloned(),
    })
}

/// Fills the status a real server's CRD controllers would: accepted names,
/// NamesAccepted and Established conditions, stored versions. Conditions
/// already true keep their transition time.
pub fn fill_status(crd: &mut Value, info: &ResourceInfo, now: &str) {
    let old = crd.get("status").cloned().unwrap_or(Value::Null);
    let since = |t: &str| {
        old.get("conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            })
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now))
    };
    let mut accepted = json!({
        "plural": info.plural, "singular": info.singular, "kind": info.kind, "listKind": info.list_kind,
    });
    if let Some(m) = accepted.as_object_mut() {
        if !info.short_names.is_empty() {
            m.insert("shortNames".into(), json!(info.short_names));
        }
        if !info.categories.is_empty() {
            m.insert("categories".into(), json!(info.categories));
        }
    }
    let mut stored: Vec<String> = old
        .get("storedVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(s) = info.versions.iter().find(|v| v.storage)
        && !stored.contains(&s.name)
    {
        stored.push(s.name.clone());
    }
    let status = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since("Established")},
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    });
    if let Some(m) = crd.as_object_mut() {
        m.insert("status".into(), status);
    }
}
