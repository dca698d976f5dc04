//! The ownership annotation ([`labels::OWNED_BY`]) on the objects the
//! operator makes: added to the claims the StatefulSet made (its claim
//! templates are immutable, so the claims of one made before the
//! annotation are annotated one by one), and removed from every object
//! but the StatefulSet when the cluster is unbound (`ReleaseObjects`).
//! Only the annotation is written: nothing else in an object changes, and
//! no pod is touched.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::kube_ops::kube_err;
use super::{ActError, Done, Target};
use crate::journal_store::layout::JOURNAL_LABEL;
use crate::resources::{ClusterMeta, FIELD_MANAGER, labels, network_policy_name};

/// A merge patch under the operator's field manager.
fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// The annotation set (`Some(cluster)`) or removed (`None`) on `name`.
fn annotation_patch(value: Option<&str>) -> serde_json::Value {
    json!({ "metadata": { "annotations": { labels::OWNED_BY: value } } })
}

/// Annotates every claim of `meta`'s data pods that lacks the annotation;
/// the names annotated.
///
/// # Errors
/// [`ActError::Kube`] when the claims cannot be listed or one patched.
pub async fn mark_claims(client: &Client, meta: &ClusterMeta) -> Result<Vec<String>, ActError> {
    let ns = meta.namespace.as_str();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&labels::selector_string(&meta.name));
    let claims = api
        .list(&lp)
        .await
        .map_err(kube_err(format!("listing the PVCs of {ns}/{}", meta.name)))?;
    let mut marked = Vec::new();
    for claim in claims {
        if labels::owned_by(&claim.metadata, &meta.name) {
            continue;
        }
        let name = claim.name_any();
        api.patch(
            &name,
            &params(),
            &Patch::Merge(annotation_patch(Some(&meta.name))),
        )
        .await
        .map_err(kube_err(format!("annotating PVC {ns}/{name}")))?;
        marked.push(name);
    }
    Ok(marked)
}

/// Removes the annotation from every object of the cluster that carries
/// it but the data StatefulSet (its user removed it there) and the
/// journal's own ConfigMaps (the journal stays the operator's: it goes on
/// recording what it observes). Idempotent: an object without it is
/// skipped. A failure part-way names what was already released.
///
/// # Errors
/// [`ActError::Kube`] when a kind cannot be listed or an object patched.
pub async fn release(client: &Client, target: Target<'_>) -> Result<Done, ActError> {
    let meta = target.meta;
    let mut released = Vec::new();
    let result = release_each(client, target, &mut released).await;
    let said = if released.is_empty() {
        "no object carried the ownership annotation any more".to_owned()
    } else {
        format!(
            "removed the ownership annotation from {}",
            released.join(", ")
        )
    };
    match result {
        Ok(()) => Ok(Done::said(format!(
            "{said}; {}/{} is unbound: its pods and data are as they were",
            meta.namespace, meta.name
        ))),
        Err(err) if released.is_empty() => Err(err),
        Err(err) => Err(ActError::NotYet(format!("{err} (after it {said})"))),
    }
}

async fn release_each(
    client: &Client,
    target: Target<'_>,
    released: &mut Vec<String>,
) -> Result<(), ActError> {
    let meta = target.meta;
    release_kind::<StatefulSet>(client, meta, released).await?;
    release_kind::<Service>(client, meta, released).await?;
    release_kind::<ConfigMap>(client, meta, released).await?;
    release_kind::<Secret>(client, meta, released).await?;
    release_kind::<PodDisruptionBudget>(client, meta, released).await?;
    release_kind::<PersistentVolumeClaim>(client, meta, released).await?;
    // The one NetworkPolicy and cert-manager Certificate the spec may ask
    // for, by name (the operator never lists them).
    if target.spec.network_policy.enabled {
        let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &meta.namespace);
        release_named(
            &api,
            "NetworkPolicy",
            &network_policy_name(&meta.name),
            meta,
            released,
        )
        .await?;
    }
    if matches!(
        target.spec.tls.source(),
        Some(logbook_crds::CertSource::CertManager(_))
    ) {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &meta.namespace,
            &crate::tls::certificate_resource(),
        );
        release_named(&api, "Certificate", &meta.name, meta, released).await?;
    }
    if target.spec.metrics.enabled && target.spec.metrics.service_monitor {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &meta.namespace,
            &super::service_monitor::service_monitor_resource(),
        );
        release_named(&api, "ServiceMonitor", &meta.name, meta, released).await?;
    }
    Ok(())
}

/// The metadata of each object of kind `K` labelled with `meta`'s cluster
/// (`valkey.logbook.dev/cluster`), its journal's ConfigMaps left out (the
/// journal stays the operator's): what is released when the cluster is
/// unbound, and what drift is read from.
///
/// # Errors
/// The API's, when the objects cannot be listed.
pub async fn owned_metadata<K>(
    client: &Client,
    meta: &ClusterMeta,
) -> Result<Vec<kube::api::ObjectMeta>, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    let lp = ListParams::default().labels(&format!("{}={}", labels::CLUSTER, meta.name));
    let list = Api::<K>::namespaced(client.clone(), &meta.namespace)
        .list_metadata(&lp)
        .await?;
    Ok(list
        .items
        .into_iter()
        .map(|o| o.metadata)
        .filter(|m| {
            !m.labels
                .as_ref()
                .is_some_and(|l| l.contains_key(JOURNAL_LABEL))
        })
        .collect())
}

/// Removes the annotation from every object of kind `K` of the cluster
/// that carries it, but the data StatefulSet.
async fn release_kind<K>(
    client: &Client,
    meta: &ClusterMeta,
    released: &mut Vec<String>,
) -> Result<(), ActError>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    let ns = meta.namespace.as_str();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let objects = owned_metadata::<K>(client, meta)
        .await
        .map_err(kube_err(format!(
            "listing the {kind}s of {ns}/{}",
            meta.name
        )))?;
    let data = crate::resources::statefulset_name(&meta.name);
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    for object in objects {
        let name = object.name.clone().unwrap_or_default();
        if !labels::owned_by(&object, &meta.name) || (kind == "StatefulSet" && name == data) {
            continue;
        }
        api.patch(&name, &params(), &Patch::Merge(annotation_patch(None)))
            .await
            .map_err(kube_err(format!("releasing {kind} {ns}/{name}")))?;
        released.push(format!("{kind} {name}"));
    }
    Ok(())
}

/// Removes the annotation from `name` (of `kind`), when it exists.
async fn release_named<K>(
    api: &Api<K>,
    kind: &str,
    name: &str,
    meta: &ClusterMeta,
    released: &mut Vec<String>,
) -> Result<(), ActError>
where
    K: Clone + DeserializeOwned + Debug,
{
    match api
        .patch(name, &params(), &Patch::Merge(annotation_patch(None)))
        .await
    {
        Ok(_) => {
            released.push(format!("{kind} {name}"));
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(kube_err(format!(
            "releasing {kind} {}/{name}",
            meta.namespace
        ))(source)),
    }
}
