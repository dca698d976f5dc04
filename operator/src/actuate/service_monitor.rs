//! The Prometheus Operator's `ServiceMonitor` of a cluster's exporters
//! (`spec.metrics.serviceMonitor`), applied when the API server serves
//! `monitoring.coreos.com/v1`; without it the spec is refused with what to
//! do (a field asked for is never accepted and ignored).

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use logbook_crds::ValkeyClusterSpec;
use serde_json::json;

use super::ActError;
use crate::resources::{ClusterMeta, EXPORTER_PORT_NAME, labels};

/// `monitoring.coreos.com/v1` `ServiceMonitor`.
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
    ))
}

/// The ServiceMonitor `<name>`: the metrics Service's `metrics` port on
/// every exporter, each series labelled with the cluster's name as
/// `valkeycluster` (the operator's own series' label; `namespace` and
/// `pod` the Prometheus Operator adds itself).
pub fn build_service_monitor(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> DynamicObject {
    let mut object = DynamicObject::new(&meta.name, &service_monitor_resource())
        .within(&meta.namespace)
        .data(json!({
            "spec": {
                "selector": { "matchLabels": {
                    labels::CLUSTER: meta.name,
                    labels::COMPONENT: labels::COMPONENT_METRICS,
                }},
                "namespaceSelector": { "matchNames": [meta.namespace] },
                "endpoints": [{
                    "port": EXPORTER_PORT_NAME,
                    "path": "/metrics",
                    "interval": "30s",
                    "relabelings": [{
                        "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
                        "targetLabel": "valkeycluster",
                    }],
                }],
            }
        }));
    object.metadata = meta.object_meta(meta.name.clone(), spec);
    object
}

/// Applies the ServiceMonitor when the spec asks for one, else deletes
/// the one an earlier generation made (none, or the kind unknown: done).
///
/// # Errors
/// [`ActError::Refused`] when the spec asks for one and the API server
/// does not serve the kind; [`ActError::Kube`] on any other API error.
pub async fn reconcile_service_monitor(
    client: &Client,
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
) -> Result<(), ActError> {
    let ns = meta.namespace.as_str();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &service_monitor_resource());
    if !(spec.metrics.enabled && spec.metrics.service_monitor) {
        return match api.delete(&meta.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(ActError::Kube {
                what: format!("deleting ServiceMonitor {ns}/{}", meta.name),
                source,
            }),
        };
    }
    super::kube_ops::apply_optional_kind(
        client,
        ns,
        &service_monitor_resource(),
        &build_service_monitor(meta, spec),
        "spec.metrics.serviceMonitor asks for a ServiceMonitor, but the API server does not serve monitoring.coreos.com/v1 ServiceMonitor: install the Prometheus Operator's CRDs, or set metrics.serviceMonitor to false and scrape the exporters through the Service <name>-metrics (port metrics)",
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn the_service_monitor_selects_the_metrics_service_alone_in_its_namespace() {
        let meta = ClusterMeta {
            name: "cache".to_owned(),
            namespace: "shop".to_owned(),
            uid: "u".to_owned(),
        };
        let mut spec = ValkeyClusterSpec::default();
        spec.metrics.enabled = true;
        spec.metrics.service_monitor = true;
        let sm = build_service_monitor(&meta, &spec);
        let service = crate::resources::build_metrics_service(&meta, &spec).unwrap();
        let service_labels = service.metadata.labels.unwrap();
        let wanted = &sm.data["spec"]["selector"]["matchLabels"];
        for (k, v) in wanted.as_object().unwrap() {
            assert_eq!(service_labels.get(k).map(String::as_str), v.as_str(), "{k}");
        }
        // The other Services of the cluster do not match.
        let headless = crate::resources::build_headless_service(&meta, &spec);
        assert!(
            !headless
                .metadata
                .labels
                .unwrap()
                .contains_key(labels::COMPONENT)
        );
        assert_eq!(
            sm.data["spec"]["namespaceSelector"]["matchNames"][0],
            "shop"
        );
        assert_eq!(sm.data["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(sm.metadata.owner_references.unwrap()[0].name, "cache");
    }
}
