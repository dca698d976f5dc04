//! `kubectl valkey defaults <name>`: a cluster's spec as its layers give
//! it (the operator's `valkey-operator-defaults`, its namespace's, its
//! plan, its own spec, over the built-in values), each field with the
//! layer that set it, computed by the operator's own code
//! (`observe::defaults::layer_spec`) from the objects as they stand; then
//! what the operator last said of it (`status.defaults`, `SpecValid`).

use std::io::Write;

use kube::api::{Api, ApiResource, DynamicObject};
use logbook_crds::layers::{Source, combine};
use logbook_crds::{DEFAULTS_NAME, ValkeyCluster, ValkeyOperatorDefaults};
use serde_json::Value;

use super::connect::Kube;
use super::error::{PluginError, Result};
use super::format::table;
use crate::observe::defaults::layer_spec;

const DEFAULTS: &str = "valkeyoperatordefaults";

async fn defaults_in(kube: &Kube, namespace: &str) -> Result<Option<ValkeyOperatorDefaults>> {
    let api: Api<ValkeyOperatorDefaults> = Api::namespaced(kube.client.clone(), namespace);
    let mut call = kube.call("get", DEFAULTS, Some(DEFAULTS_NAME));
    call.namespace = namespace;
    api.get_opt(DEFAULTS_NAME)
        .await
        .map_err(|e| PluginError::from_kube(&call, e))
}

/// Runs `defaults`.
///
/// # Errors
/// API errors; [`PluginError::ClusterNotFound`].
pub async fn run(
    kube: &Kube,
    name: &str,
    operator_namespace: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let typed = kube.cluster(name).await?;
    let resource = ApiResource::erase::<ValkeyCluster>(&());
    let api: Api<DynamicObject> =
        Api::namespaced_with(kube.client.clone(), &kube.namespace, &resource);
    let raw = api
        .get(name)
        .await
        .map_err(|e| PluginError::from_kube(&kube.call("get", "valkeyclusters", Some(name)), e))?;
    // Read at v1beta1 (the hub's version), layered as v1alpha1 says it.
    let own = logbook_crds::hub::written_spec(raw.data.get("spec"))
        .map_err(|e| PluginError::Refused(format!("valkeycluster/{name}: {e}")))?;
    let operator = defaults_in(kube, operator_namespace).await?;
    let namespace = if kube.namespace == operator_namespace {
        None
    } else {
        defaults_in(kube, &kube.namespace).await?
    };
    let layered = layer_spec(&own, operator.as_ref(), namespace.as_ref());
    writeln!(
        out,
        "{name} (namespace {}): defaults from {}",
        kube.namespace,
        match (&operator, &namespace) {
            (None, None) => "no ValkeyOperatorDefaults".to_owned(),
            (Some(_), None) => format!("{operator_namespace}/{DEFAULTS_NAME}"),
            (None, Some(_)) => format!("{}/{DEFAULTS_NAME}", kube.namespace),
            (Some(_), Some(_)) => format!(
                "{operator_namespace}/{DEFAULTS_NAME}, then {}/{DEFAULTS_NAME}",
                kube.namespace
            ),
        }
    )?;
    match &layered.spec {
        Err(problems) => {
            writeln!(out, "Its layers give no valid spec:")?;
            for p in problems {
                writeln!(out, "  {}: {}", p.path, p.message)?;
            }
        }
        Ok(spec) => {
            if let Some(plan) = &spec.plan {
                writeln!(out, "Plan: {plan}")?;
            }
            // The cluster's own leaves, traced as the layering traces them.
            let own = Value::Object(own);
            let set: Vec<(String, Value)> = combine(&[(Source::Cluster, &own)])
                .map(|traced| traced.sources.into_keys().collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(|field| {
                    let value = own.pointer(&field).cloned().unwrap_or(Value::Null);
                    (field, value)
                })
                .collect();
            let effective = serde_json::to_value(spec).unwrap_or(Value::Null);
            let mut rows: Vec<Vec<String>> = layered
                .sources
                .iter()
                .map(|(field, from)| {
                    let value = effective.pointer(field).cloned().unwrap_or(Value::Null);
                    vec![field.clone(), value.to_string(), from.clone()]
                })
                .chain(set.into_iter().map(|(field, value)| {
                    vec![field, value.to_string(), "its own spec".to_owned()]
                }))
                .collect();
            rows.sort();
            if rows.is_empty() {
                writeln!(out, "Every field has its built-in value.")?;
            } else {
                table(out, &["FIELD", "VALUE", "FROM"], &rows)?;
                writeln!(out, "Every other field has its built-in value.")?;
            }
        }
    }
    // What the operator last said: the spec it took, and a change waiting.
    let status = typed.status.unwrap_or_default();
    if let Some(valid) = status.conditions.iter().find(|c| c.type_ == "SpecValid") {
        writeln!(out, "SpecValid: {} ({})", valid.status, valid.message)?;
    }
    if let Some(d) = status.defaults {
        if d.rolling {
            writeln!(out, "A change of its defaults is rolling.")?;
        }
        if let Some(waiting) = d.waiting {
            writeln!(out, "Waiting: {waiting}")?;
        }
    }
    Ok(())
}
