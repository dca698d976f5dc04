//! The objects of external access (`spec.externalAccess`), applied with
//! every other object of the spec: the external Services it asks for
//! (each other external Service of the cluster deleted: fewer pods,
//! another topology, access off), then what each node announces at boot
//! (the boot ConfigMap's `announce-<pod>`), from the Services as the API
//! server gave them back (node ports allocated, a load balancer's
//! address once it has one).

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Client;
use kube::api::{Api, ListParams};

use super::kube_ops::{apply, apply_as, delete_named, kube_err};
use super::{ActError, Target};
use crate::resources;

/// The field manager of the boot ConfigMap's announce keys: beside the
/// primary a Sentinel cluster's pods boot following, which
/// `PublishBootConfig` applies as the operator's own manager.
const ANNOUNCE_FIELD_MANAGER: &str = "logbook-operator-announce";

/// Applies the external Services and the boot announcements.
///
/// # Errors
/// [`ActError`] from the API server.
pub(super) async fn apply_objects(client: &Client, target: Target<'_>) -> Result<(), ActError> {
    let meta = target.meta;
    let spec = target.spec;
    let applied = apply_services(client, meta, spec).await?;
    if let Some(keys) = resources::announce::boot_announcements(
        spec,
        &meta.name,
        &applied,
        !target.state.external.is_empty(),
    ) {
        let boot = ConfigMap {
            metadata: meta.object_meta(resources::boot_config_map_name(&meta.name), spec),
            data: Some(keys),
            ..ConfigMap::default()
        };
        apply_as(client, &meta.namespace, &boot, ANNOUNCE_FIELD_MANAGER).await?;
    }
    Ok(())
}

/// The external Services the spec asks for, as applied; every other
/// external Service of the cluster is deleted.
async fn apply_services(
    client: &Client,
    meta: &resources::ClusterMeta,
    spec: &logbook_crds::ValkeyClusterSpec,
) -> Result<Vec<Service>, ActError> {
    let ns = meta.namespace.as_str();
    let pods: Vec<String> = (0..spec.effective_replicas())
        .map(|i| resources::pod_name(&meta.name, i))
        .collect();
    let wanted = resources::build_external_services(meta, spec, &pods);
    let mut applied = Vec::with_capacity(wanted.len());
    for service in &wanted {
        applied.push(apply(client, ns, service).await?);
    }
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let selector = resources::external::selector_string(&meta.name);
    let listed = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err(format!(
            "listing the external Services of {ns}/{}",
            meta.name
        )))?;
    for existing in listed.items {
        let name = existing.metadata.name.unwrap_or_default();
        let kept = wanted
            .iter()
            .any(|w| w.metadata.name.as_deref() == Some(name.as_str()));
        if !kept && resources::external::is_external_service(&meta.name, &name) {
            delete_named::<Service>(client, ns, &name).await?;
        }
    }
    Ok(applied)
}
