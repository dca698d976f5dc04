//! Storage version migration: the objects of a CRD stored at a version it
//! no longer stores (a ValkeyCluster stored at `v1alpha1` before the CRD
//! stored `v1beta1`) are written again at the one it stores, then the
//! CRD's `status.storedVersions` is trimmed to that one — what
//! Kubernetes' storage version migrator does, done by the operator once
//! its conversion webhook answers, since reading those objects at all
//! needs that webhook.
//!
//! Each object is written as it is: a merge patch naming only its
//! `resourceVersion`, which the API server applies to the object
//! converted to the stored version and stores there. Nothing in the
//! object changes (its spec neither, so neither does its `generation`),
//! and the operator's reconcile sees nothing to do. An object that
//! changed meanwhile was written at the stored version by that change;
//! one created meanwhile is created there. Only when every object listed
//! is at the stored version are the older versions taken out of
//! `storedVersions`, so a version is never dropped while an object may
//! still be stored at it (after which an older version could stop being
//! served with nothing lost).
//!
//! Like the webhook's CA, this is the API's setup: it concerns no Valkey
//! cluster, changes nothing of any, and is not journaled. Only the
//! instance that holds the Lease runs it (`webhook::start` waits for the
//! leadership), and it asks before each write whether it still leads in
//! the term it began in: an instance that does not lead writes nothing.
//! Cut short anywhere (a write failed, its reply lost, the leadership
//! lost, the process killed), it has left no state of its own: the next
//! run lists again and writes what is left; `storedVersions` is trimmed
//! only by a run that wrote every object it listed.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{WebhookError, kube_err};
use crate::resources::FIELD_MANAGER;

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The objects listed: each written again, or found deleted or
    /// changed (and so stored at the stored version) meanwhile.
    pub listed: usize,
    /// The objects written again at the stored version.
    pub written: usize,
    /// The versions taken out of `storedVersions`.
    pub dropped: Vec<String>,
}

/// Migrates the objects of the CRD `name` stored at another version than
/// the one it stores (nothing when `storedVersions` holds that one alone,
/// or the CRD stores none).
///
/// # Errors
///
/// [`WebhookError::Kube`] naming the call that failed (the CRD not
/// readable, an object not listable or not written, `storedVersions`
/// changed under the trim); [`WebhookError::NotLeading`] when `leading`
/// says no before a write: the caller tries again once it leads.
pub async fn migrate(
    client: &Client,
    name: &str,
    leading: impl Fn() -> bool,
) -> Result<Migrated, WebhookError> {
    let lead = |what: &str| {
        if leading() {
            Ok(())
        } else {
            Err(WebhookError::NotLeading {
                what: what.to_owned(),
            })
        }
    };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .get(name)
        .await
        .map_err(kube_err(format!("reading CustomResourceDefinition {name}")))?;
    let Some(storage) = crd.spec.versions.iter().find(|v| v.storage) else {
        return Ok(Migrated::default());
    };
    let stored: Vec<String> = crd
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.clone())
        .unwrap_or_default();
    let dropped: Vec<String> = stored
        .iter()
        .filter(|v| **v != storage.name)
        .cloned()
        .collect();
    if dropped.is_empty() {
        return Ok(Migrated::default());
    }
    let resource = ApiResource {
        group: crd.spec.group.clone(),
        version: storage.name.clone(),
        api_version: format!("{}/{}", crd.spec.group, storage.name),
        kind: crd.spec.names.kind.clone(),
        plural: crd.spec.names.plural.clone(),
    };
    tracing::info!(crd = name, from = ?dropped, to = %storage.name, "migrating the objects stored at an older version");
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let listed = all
        .list(&ListParams::default())
        .await
        .map_err(kube_err(format!(
            "listing {} to migrate them",
            resource.plural
        )))?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let mut written = 0;
    let count = listed.items.len();
    for object in listed.items {
        let object_name = object.name_any();
        let api: Api<DynamicObject> = match object.namespace() {
            Some(ns) => Api::namespaced_with(client.clone(), &ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let what = format!(
            "writing {} {}/{object_name} again at {}",
            resource.kind,
            object.namespace().unwrap_or_default(),
            storage.name
        );
        let again = json!({"metadata": {"resourceVersion": object.resource_version()}});
        lead(&what)?;
        match api
            .patch(&object_name, &params, &Patch::Merge(&again))
            .await
        {
            Ok(_) => written += 1,
            // Deleted, or changed (and so written at the stored version)
            // since it was listed.
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(source) => return Err(WebhookError::Kube { what, source }),
        }
    }
    // Guarded by the resourceVersion the CRD was read at: a CRD changed
    // meanwhile (another storage version) is read and judged again.
    let trim = json!({
        "metadata": {"resourceVersion": crd.resource_version()},
        "status": {"storedVersions": [storage.name]},
    });
    let what = format!(
        "trimming the storedVersions of CustomResourceDefinition {name} to {}",
        storage.name
    );
    lead(&what)?;
    crds.patch_status(name, &params, &Patch::Merge(&trim))
        .await
        .map_err(kube_err(what))?;
    tracing::info!(crd = name, listed = count, written, dropped = ?dropped, "the objects stored at an older version are migrated");
    Ok(Migrated {
        listed: count,
        written,
        dropped,
    })
}
