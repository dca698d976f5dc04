//! Backups: start an attempt (the streaming itself runs in the cluster's
//! backup task, `operator/backups.rs`), create the ValkeyBackup the
//! schedule made due, and delete what retention expired: the objects under
//! that one backup's directory, then its ValkeyBackup.

use kube::api::{Api, ObjectMeta, PostParams};
use logbook_crds::v1alpha1::SCHEDULED_LABEL;
use logbook_crds::{ValkeyBackup, ValkeyBackupSpec};
use logbook_journal::{BackupSource, Event};

use super::kube_ops::{delete_named, kube_err};
use super::{ActError, Done, Target};
use crate::backup::credentials;
use crate::backup::store::BackupStore;
use crate::resources::labels;

/// A destination's Secret that cannot be read now (retried) or cannot be
/// used (refused).
pub(super) fn credentials_error(err: credentials::CredentialsError) -> ActError {
    if err.is_retryable() {
        ActError::NotYet(err.to_string())
    } else {
        ActError::Refused(err.to_string())
    }
}

/// Starts attempt `attempt` of backup `object` from `sources`: checks its
/// destination's Secret and journals `BackupStarted`. A Secret that cannot
/// be used ends the backup at once (`BackupFailed`, not retried): the
/// user must fix it and ask again.
pub(super) async fn take(
    client: &kube::Client,
    target: Target<'_>,
    object: &str,
    attempt: u32,
    sources: &[BackupSource],
) -> Result<Done, ActError> {
    let record = target
        .state
        .backups
        .records
        .get(object)
        .ok_or_else(|| ActError::Refused(format!("ValkeyBackup {object} is not known")))?;
    let destination = record
        .target
        .clone()
        .ok_or_else(|| ActError::Refused(format!("ValkeyBackup {object} has no destination")))?;
    let mut events = vec![Event::BackupStarted {
        object: object.to_owned(),
        attempt,
        target: destination.clone(),
        sources: sources.to_vec(),
    }];
    match credentials::resolve(client, &target.meta.namespace, &destination).await {
        Ok(_) => Ok(Done {
            detail: format!(
                "backup {object} attempt {attempt} started into s3://{}/{}",
                destination.bucket, destination.dir
            ),
            events,
            password: None,
        }),
        Err(err) if err.is_retryable() => Err(ActError::NotYet(err.to_string())),
        Err(err) => {
            events.push(Event::BackupFailed {
                object: object.to_owned(),
                attempt,
                reason: err.to_string(),
                retry: false,
            });
            Ok(Done {
                detail: format!("backup {object} cannot be taken: {err}"),
                events,
                password: None,
            })
        }
    }
}

/// Creates the ValkeyBackup `object` of the cluster, labelled as the
/// schedule's and owned by the cluster (deleting the cluster deletes the
/// objects, never the backups in the bucket). One that exists is kept.
pub(super) async fn create_scheduled(
    client: &kube::Client,
    target: Target<'_>,
    object: &str,
) -> Result<Done, ActError> {
    let api: Api<ValkeyBackup> = Api::namespaced(client.clone(), &target.meta.namespace);
    let mut backup = ValkeyBackup::new(
        object,
        ValkeyBackupSpec {
            cluster: target.meta.name.clone(),
            destination: None,
        },
    );
    backup.metadata = ObjectMeta {
        name: Some(object.to_owned()),
        namespace: Some(target.meta.namespace.clone()),
        labels: Some(
            [
                (SCHEDULED_LABEL.to_owned(), "true".to_owned()),
                (labels::CLUSTER.to_owned(), target.meta.name.clone()),
            ]
            .into(),
        ),
        annotations: Some([(labels::OWNED_BY.to_owned(), target.meta.name.clone())].into()),
        owner_references: Some(vec![target.meta.owner_reference()]),
        ..ObjectMeta::default()
    };
    match api.create(&PostParams::default(), &backup).await {
        Ok(_) => Ok(Done::said(format!("created ValkeyBackup {object}"))),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Ok(Done::said(format!("ValkeyBackup {object} exists")))
        }
        Err(source) => Err(kube_err(format!("creating ValkeyBackup {object}"))(source)),
    }
}

/// Deletes backup `object`: every object under `dir`, which must be that
/// backup's own directory inside this cluster's, then the ValkeyBackup.
pub(super) async fn delete(
    client: &kube::Client,
    target: Target<'_>,
    object: &str,
    dir: &str,
) -> Result<Done, ActError> {
    let record = target
        .state
        .backups
        .runs
        .get(object)
        .map(|run| run.target.clone())
        .or_else(|| {
            target
                .state
                .backups
                .records
                .get(object)
                .and_then(|r| r.target.clone())
        })
        .ok_or_else(|| ActError::Refused(format!("backup {object} has no known destination")))?;
    // Never anything but this backup's directory of this cluster.
    let own = format!("{}{object}/", record.cluster_dir);
    if dir != own || record.dir != own {
        return Err(ActError::Refused(format!(
            "backup {object}'s directory {dir} is not {own}: refusing to delete it"
        )));
    }
    let deleted = delete_under(client, target, &record, dir, &format!("backup {object}")).await?;
    let deleted = u32::try_from(deleted).unwrap_or(u32::MAX);
    delete_named::<ValkeyBackup>(client, &target.meta.namespace, object).await?;
    Ok(Done {
        detail: format!("deleted backup {object}: {deleted} objects under {dir}"),
        events: vec![Event::BackupDeleted {
            object: object.to_owned(),
            objects: deleted,
        }],
        password: None,
    })
}

/// Deletes every object under `dir` (checked by the caller to be the one
/// directory it may delete) in `place`'s bucket: how many. A failure part
/// way says how many of how many were deleted (the rest go when retried).
pub(super) async fn delete_under(
    client: &kube::Client,
    target: Target<'_>,
    place: &logbook_journal::BackupTarget,
    dir: &str,
    what: &str,
) -> Result<u64, ActError> {
    let (s3, creds) = credentials::resolve(client, &target.meta.namespace, place)
        .await
        .map_err(credentials_error)?;
    let store = BackupStore::new(&s3, &creds).map_err(|e| ActError::Refused(e.to_string()))?;
    let listed = store
        .list(dir)
        .await
        .map_err(|e| ActError::NotYet(e.to_string()))?;
    let total = listed.len();
    let mut deleted = 0u64;
    for info in listed.iter().filter(|i| i.key.starts_with(dir)) {
        store.delete(&info.key).await.map_err(|e| {
            ActError::NotYet(format!(
                "{e} (deleted {deleted} of the {total} objects of {what} so far; the rest are deleted when retried)"
            ))
        })?;
        deleted = deleted.saturating_add(1);
    }
    Ok(deleted)
}

/// Applies the restore Secret (the plan and the bucket's credentials)
/// while the restore is under way; nothing once it completed.
pub(super) async fn publish_restore_plan(
    client: &kube::Client,
    target: Target<'_>,
) -> Result<(), ActError> {
    let Some(plan) = target.state.backups.restore.pending() else {
        return Ok(());
    };
    let (s3, creds) = credentials::resolve(client, &target.meta.namespace, &plan.target)
        .await
        .map_err(credentials_error)?;
    let secret = crate::resources::restore::build_restore_secret(
        target.meta,
        target.spec,
        plan,
        target.state.backups.restore.point.as_ref(),
        &s3,
        &creds,
    );
    super::kube_ops::apply_object(client, &target.meta.namespace, &secret).await
}

/// Removes the restore Secret: no pod started from now on loads the
/// backup again.
pub(super) async fn finish_restore(
    client: &kube::Client,
    target: Target<'_>,
    shards: u32,
) -> Result<Done, ActError> {
    let name = crate::resources::restore::restore_secret_name(&target.meta.name);
    delete_named::<k8s_openapi::api::core::v1::Secret>(client, &target.meta.namespace, &name)
        .await?;
    Ok(Done {
        detail: format!("restore of {shards} shard(s) complete; Secret {name} deleted"),
        events: vec![Event::RestoreCompleted { shards }],
        password: None,
    })
}
