//! The reconcile's part for backups (read the cluster's ValkeyBackups,
//! publish their statuses) and the cluster's backup task, which carries
//! out each attempt the decider started: it streams every shard's RDB
//! into the bucket, journals each shard as it lands, writes the manifest
//! last — only while it leads and the attempt is still the current one —
//! and journals how the attempt ended.
//!
//! The task runs beside the prober, one attempt at a time; it holds the
//! runtime's lock only to read the attempt and to journal. An attempt it
//! did not start (one of a previous process) was failed at the takeover
//! (`ClusterRuntime::sync_leadership`); what it journals for an attempt
//! that no longer runs (failed meanwhile) is dropped.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use kube::api::{Api, ListParams, Patch, PatchParams};
use logbook_crds::v1alpha1::BackupShardStatus;
use logbook_crds::{
    BackupDestination, BackupPhase, RestoreSource, ValkeyBackup, ValkeyBackupStatus,
    ValkeyClusterSpec,
};
use logbook_journal::projection::backups::{BackupOutcome, BackupRun};
use logbook_journal::{
    BackupRecord, BackupTarget, ClusterState, Event, RestorePlan, RestoreShard, Timestamp,
};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::Instrument;

use super::error::OperatorError;
use super::events::Kind;
use super::runtime::ClusterRuntime;
use super::span::ClusterSpan;
use crate::backup::credentials;
use crate::backup::manifest::{
    MANIFEST_FORMAT, MANIFEST_NAME, Manifest, ManifestCluster, ManifestShard,
};
use crate::backup::run::{NodeAccess, ShardJob, backup_shard};
use crate::backup::store::BackupStore;
use crate::observe::freshness::{self, Reads};
use crate::resources::{ClusterMeta, valkey_addr};

/// How often the task looks for an attempt to carry out.
const POLL: Duration = Duration::from_secs(1);

/// The ValkeyBackups naming `meta`'s cluster, and their records; the
/// list's and each one's resourceVersion go to `reads`.
///
/// # Errors
/// [`OperatorError::Kube`] when they cannot be listed.
pub async fn read_backups(
    client: &kube::Client,
    meta: &ClusterMeta,
    spec: Option<&ValkeyClusterSpec>,
    reads: &mut Reads,
) -> Result<(Vec<ValkeyBackup>, Vec<BackupRecord>), OperatorError> {
    let ns = meta.namespace.as_str();
    let api: Api<ValkeyBackup> = Api::namespaced(client.clone(), ns);
    let listed = api
        .list(&ListParams::default())
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("listing the ValkeyBackups of {ns}"),
            source,
        })?;
    reads.list(freshness::VALKEY_BACKUPS, &listed.metadata);
    let backups: Vec<ValkeyBackup> = listed
        .items
        .into_iter()
        .filter(|b| b.spec.cluster == meta.name)
        .collect();
    for backup in &backups {
        let name = backup.metadata.name.as_deref().unwrap_or_default();
        reads.object(freshness::valkey_backup(name), &backup.metadata);
    }
    let records = backups
        .iter()
        .map(|b| crate::observe::backup::backup_record(b, ns, &meta.name, spec))
        .collect();
    Ok((backups, records))
}

/// The status of ValkeyBackup `object` the projection shows.
pub fn backup_status(state: &ClusterState, object: &str) -> ValkeyBackupStatus {
    let record = state.backups.records.get(object);
    let run = state.backups.runs.get(object);
    let location = record
        .and_then(|r| r.target.as_ref())
        .map(|t| format!("s3://{}/{}", t.bucket, t.dir));
    let time = |t: Timestamp| Some(crate::decide::status::kube_time(t));
    let destination =
        record
            .and_then(|r| r.target.as_ref())
            .map(|t| logbook_crds::BackupDestination {
                bucket: t.bucket.clone(),
                prefix: None,
                region: Some(t.region.clone()),
                endpoint: t.endpoint.clone(),
                force_path_style: t.path_style,
                credentials_secret: t.secret.clone(),
            });
    let mut status = ValkeyBackupStatus {
        location,
        destination,
        ..ValkeyBackupStatus::default()
    };
    if let Some(problem) = record.and_then(|r| r.problem.as_ref()) {
        status.phase = Some(BackupPhase::Failed);
        status.message = Some(problem.clone());
        return status;
    }
    let Some(run) = run else {
        status.phase = Some(BackupPhase::Pending);
        status.message = Some(
            "waiting to be taken: another backup of the cluster runs, or a shard has no usable node"
                .to_owned(),
        );
        return status;
    };
    status.attempts = i32::try_from(run.attempt).ok();
    status.started_at = time(run.started);
    status.journal_seq = i64::try_from(run.started_seq).ok();
    status.shards = shard_statuses(run);
    match &run.outcome {
        None => {
            status.phase = Some(BackupPhase::Running);
            status.message = Some(format!(
                "attempt {}: {} of {} shards uploaded",
                run.attempt,
                run.uploaded.len(),
                run.sources.len()
            ));
        }
        Some(BackupOutcome::Completed {
            at,
            bytes,
            manifest,
        }) => {
            status.phase = Some(BackupPhase::Completed);
            status.completed_at = time(*at);
            status.bytes = i64::try_from(*bytes).ok();
            status.message = Some(format!("complete: manifest {manifest}"));
        }
        Some(BackupOutcome::Failed { reason, retry, .. }) => {
            let retried = *retry && run.attempt < logbook_journal::MAX_BACKUP_ATTEMPTS;
            status.phase = Some(if retried {
                BackupPhase::Running
            } else {
                BackupPhase::Failed
            });
            status.message = Some(if retried {
                format!("attempt {} failed ({reason}); retrying", run.attempt)
            } else {
                format!("attempt {} failed: {reason}", run.attempt)
            });
        }
    }
    status
}

fn shard_statuses(run: &BackupRun) -> Vec<BackupShardStatus> {
    run.uploaded
        .values()
        .map(|u| BackupShardStatus {
            shard: i32::try_from(u.shard).unwrap_or(i32::MAX),
            pod: u.pod.clone(),
            key: u.key.clone(),
            bytes: i64::try_from(u.bytes).unwrap_or(i64::MAX),
            sha256: u.sha256.clone(),
        })
        .collect()
}

/// Writes each ValkeyBackup's status that changed (nothing when none
/// did); returns those that turned Failed, with the message.
///
/// # Errors
/// [`OperatorError::Kube`] when a status cannot be written.
pub async fn publish_statuses(
    client: &kube::Client,
    namespace: &str,
    state: &ClusterState,
    backups: &[ValkeyBackup],
) -> Result<Vec<(String, String)>, OperatorError> {
    let api: Api<ValkeyBackup> = Api::namespaced(client.clone(), namespace);
    let mut failed = Vec::new();
    for backup in backups {
        let object = backup.metadata.name.clone().unwrap_or_default();
        let status = backup_status(state, &object);
        let current = backup.status.clone().unwrap_or_default();
        if status == current {
            continue;
        }
        if status.phase == Some(BackupPhase::Failed) && current.phase != Some(BackupPhase::Failed) {
            failed.push((object.clone(), status.message.clone().unwrap_or_default()));
        }
        let patch = json!({ "status": status });
        api.patch_status(&object, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| OperatorError::Kube {
                what: format!("writing the status of ValkeyBackup {namespace}/{object}"),
                source,
            })?;
    }
    Ok(failed)
}

/// One attempt to carry out.
struct Job {
    object: String,
    attempt: u32,
    target: BackupTarget,
    shards: Result<Vec<ShardJob>, String>,
    access: NodeAccess,
    meta: ClusterMeta,
    topology: String,
    started: Timestamp,
    started_seq: u64,
    /// The `TakeBackup` intent the attempt is carried out for.
    intent: Option<uuid::Uuid>,
}

/// A restore to verify.
struct Verify {
    from: RestoreSource,
    spec: ValkeyClusterSpec,
    meta: ClusterMeta,
    client: kube::Client,
}

/// What the task does next.
enum Work {
    Backup(Box<Job>),
    Verify(Box<Verify>),
}

/// How long after a restore could not be read (the bucket did not
/// answer, the backup was not complete yet) it is read again.
const VERIFY_RETRY: Duration = Duration::from_secs(15);

/// The cluster's backup task: forever, verify the backup a new cluster is
/// to be restored from, and carry out the backup attempt the projection
/// shows running, if this instance leads.
pub async fn run(rt: Arc<Mutex<ClusterRuntime>>, log: ClusterSpan) {
    loop {
        tokio::time::sleep(POLL).await;
        match next_work(&rt).await {
            // Boxed, as the prober's rounds: the task waits holding a
            // pointer, not a backup's largest state.
            Some(Work::Backup(job)) => Box::pin(carry_out(&rt, *job).instrument(log.span())).await,
            Some(Work::Verify(v)) => Box::pin(verify_restore(&rt, *v).instrument(log.span())).await,
            None => {}
        }
    }
}

async fn next_work(rt: &Arc<Mutex<ClusterRuntime>>) -> Option<Work> {
    let guard = rt.lock().await;
    if !guard.leading() {
        return None;
    }
    let restore = &guard.state.backups.restore;
    if restore.plan.is_none()
        && let Some(Ok(spec)) = guard.state.desired_spec()
        && let Some(from) = spec.restore_from.clone()
    {
        let due = restore.refused.as_ref().is_none_or(|(_, retry, at)| {
            *retry
                && Timestamp::now().millis_since(*at)
                    >= i64::try_from(VERIFY_RETRY.as_millis()).unwrap_or(i64::MAX)
        });
        return due.then(|| {
            Work::Verify(Box::new(Verify {
                from,
                spec,
                meta: guard.meta.clone(),
                client: guard.backup_access().client,
            }))
        });
    }
    next_job(&guard).map(|job| Work::Backup(Box::new(job)))
}

fn next_job(guard: &ClusterRuntime) -> Option<Job> {
    let state = &guard.state;
    let (object, run) = state.backups.running()?;
    let addr = |pod: &str| {
        state
            .pods
            .get(pod)
            .and_then(|p| p.ip.as_deref())
            .and_then(valkey_addr)
            .ok_or_else(|| format!("pod {pod} has no known address"))
    };
    let shards = run
        .sources
        .iter()
        .map(|s| {
            Ok(ShardJob {
                source: s.clone(),
                source_addr: addr(&s.pod)?,
                primary_addr: addr(&s.primary)?,
            })
        })
        .collect();
    let topology = state
        .desired
        .as_ref()
        .and_then(|d| serde_json::from_str::<ValkeyClusterSpec>(&d.spec_json).ok())
        .map(|s| s.topology.to_string())
        .unwrap_or_default();
    Some(Job {
        object: object.to_owned(),
        attempt: run.attempt,
        target: run.target.clone(),
        shards,
        access: guard.backup_access(),
        meta: guard.meta.clone(),
        topology,
        started: run.started,
        started_seq: run.started_seq,
        intent: run.intent,
    })
}

/// Whether `job`'s attempt still runs in the projection.
fn still_runs(state: &ClusterState, job: &Job) -> bool {
    is_current(state, &job.object, job.attempt)
}

/// Whether the projection's current run of backup `object` is attempt
/// `attempt`, with no outcome yet.
fn is_current(state: &ClusterState, object: &str, attempt: u32) -> bool {
    state
        .backups
        .runs
        .get(object)
        .is_some_and(|r| r.attempt == attempt && r.outcome.is_none())
}

/// Journals `events` for `job` while its attempt still runs and this
/// instance leads, then decides and publishes.
async fn journal(
    rt: &Arc<Mutex<ClusterRuntime>>,
    job: &Job,
    events: Vec<Event>,
    end: bool,
) -> bool {
    let mut guard = rt.lock().await;
    if !guard.leading() || !still_runs(&guard.state, job) {
        tracing::info!(backup = %job.object, attempt = job.attempt, "the attempt no longer runs; its result is dropped");
        return false;
    }
    if let Err(err) = guard.record_now(events, None).await {
        tracing::warn!(%err, backup = %job.object, "cannot journal the backup's progress");
        return false;
    }
    if end {
        if let Err(err) = guard.act().await {
            tracing::warn!(%err, "deciding after the backup");
        }
        if let Err(err) = guard.publish_status(None).await {
            tracing::warn!(%err, "publishing the status after the backup");
        }
    }
    let client = guard.backup_access().client;
    let state = guard.state.clone();
    let ns = guard.meta.namespace.clone();
    let failed = publish_one(&client, &ns, &state, &job.object).await;
    if let Some(message) = failed {
        guard
            .publish_event(
                Kind::Warning,
                "BackupFailed",
                "Backup",
                format!("ValkeyBackup {}: {message}", job.object),
            )
            .await;
    }
    true
}

/// Publishes ValkeyBackup `object`'s status; the message when it turned
/// Failed.
async fn publish_one(
    client: &kube::Client,
    namespace: &str,
    state: &ClusterState,
    object: &str,
) -> Option<String> {
    let api: Api<ValkeyBackup> = Api::namespaced(client.clone(), namespace);
    let backup = api.get_opt(object).await.ok().flatten()?;
    match publish_statuses(client, namespace, state, &[backup]).await {
        Ok(failed) => failed.into_iter().next().map(|(_, m)| m),
        Err(err) => {
            tracing::warn!(%err, "publishing a ValkeyBackup's status");
            None
        }
    }
}

async fn carry_out(rt: &Arc<Mutex<ClusterRuntime>>, job: Job) {
    tracing::info!(backup = %job.object, attempt = job.attempt, "backup attempt begins");
    // Its writes (the shards, the manifest) are the effects of the
    // `TakeBackup` intent that started the attempt.
    let streamed = match job.intent {
        Some(id) => crate::effects::within("TakeBackup", id, stream_all(rt, &job)).await,
        None => stream_all(rt, &job).await,
    };
    let end = match streamed {
        Ok(Some((manifest, bytes))) => Event::BackupCompleted {
            object: job.object.clone(),
            attempt: job.attempt,
            manifest,
            bytes,
        },
        Ok(None) => {
            // Not this instance's attempt to end any more: whoever leads
            // now ended it (or will, at its takeover), and a non-leader
            // journals nothing.
            tracing::info!(backup = %job.object, attempt = job.attempt, "the attempt no longer runs here; its manifest was not written");
            return;
        }
        Err((reason, retry)) => Event::BackupFailed {
            object: job.object.clone(),
            attempt: job.attempt,
            reason,
            retry,
        },
    };
    tracing::info!(backup = %job.object, attempt = job.attempt, outcome = end.kind(), "backup attempt ends");
    journal(rt, &job, vec![end], true).await;
}

/// Streams every shard, journaling each as it lands, then writes the
/// manifest: the manifest's key and the shards' bytes; `None` when the
/// attempt stopped being this instance's to complete before its manifest
/// (see [`write_manifest`]); `Err((reason, retry))` when it failed.
async fn stream_all(
    rt: &Arc<Mutex<ClusterRuntime>>,
    job: &Job,
) -> Result<Option<(String, u64)>, (String, bool)> {
    let shards = job.shards.clone().map_err(|e| (e, true))?;
    let (s3, creds) = credentials::resolve(&job.access.client, &job.meta.namespace, &job.target)
        .await
        .map_err(|e| (e.to_string(), e.is_retryable()))?;
    let store = BackupStore::new(&s3, &creds).map_err(|e| (e.to_string(), false))?;
    let server_version = match shards.first() {
        Some(s) => job.access.valkey.server_version(s.source_addr).await.ok(),
        None => None,
    };
    let uploads = try_join_all(shards.iter().map(|shard| {
        let store = &store;
        async move {
            let upload = backup_shard(store, &job.target.dir, shard, &job.access).await?;
            let event = Event::BackupShardUploaded {
                object: job.object.clone(),
                attempt: job.attempt,
                upload: upload.clone(),
            };
            if journal(rt, job, vec![event], false).await {
                Ok(upload)
            } else {
                Err("the attempt no longer runs".to_owned())
            }
        }
    }))
    .await
    .map_err(|e| (e, true))?;
    let bytes: u64 = uploads.iter().map(|u| u.bytes).sum();
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        backup: job.object.clone(),
        attempt: job.attempt,
        cluster: ManifestCluster {
            namespace: job.meta.namespace.clone(),
            name: job.meta.name.clone(),
            uid: job.meta.uid.clone(),
            topology: job.topology.clone(),
        },
        started_at: job.started.to_string(),
        completed_at: Timestamp::now().to_string(),
        journal_seq: job.started_seq,
        server_version,
        shards: uploads
            .iter()
            .zip(&shards)
            .map(|(u, s)| ManifestShard {
                shard: u.shard,
                object: crate::backup::manifest::shard_object(u.shard),
                bytes: u.bytes,
                sha256: u.sha256.clone(),
                rdb_version: u.rdb_version,
                crc_verified: u.crc_verified,
                slots: s.source.slots.iter().map(|r| [r.start, r.end]).collect(),
                pod: u.pod.clone(),
                primary: s.source.primary.clone(),
                node_id: s.source.node_id.clone(),
                replid: u.replid.clone(),
                offset: u.offset,
                primary_offset: u.primary_offset,
            })
            .collect(),
    };
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| (format!("encoding the manifest: {e}"), false))?;
    let key = format!("{}{MANIFEST_NAME}", job.target.dir);
    let written = write_manifest(
        rt,
        &job.object,
        job.attempt,
        &store,
        &key,
        bytes::Bytes::from(body),
    )
    .await
    .map_err(|e| (format!("writing the manifest {key}: {e}"), true))?;
    Ok(written.then_some((key, bytes)))
}

/// Writes `body`, attempt `attempt` of backup `object`'s manifest, at
/// `key` in `store` — only while this runtime leads and the projection's
/// current run of the backup is that attempt with no outcome yet.
/// `Ok(true)` when it was written, `Ok(false)` when it was not (nothing
/// was written, and nothing is to be journaled).
///
/// # Guarantees
/// The manifest is what makes a backup restorable, so it must never
/// appear for an attempt the journal records as failed: a new leader
/// fails the attempts it did not start, and the leader journals an
/// attempt's end only when it still runs. The runtime's lock is held from
/// the check through the write (the manifest is small), so nothing this
/// instance journals — a takeover failing the attempt, another attempt
/// starting — comes between them.
///
/// # Errors
/// The store's, when the manifest cannot be written.
pub async fn write_manifest(
    rt: &Arc<Mutex<ClusterRuntime>>,
    object: &str,
    attempt: u32,
    store: &BackupStore,
    key: &str,
    body: bytes::Bytes,
) -> Result<bool, crate::backup::StoreError> {
    let guard = rt.lock().await;
    if !guard.leading() || !is_current(&guard.state, object, attempt) {
        return Ok(false);
    }
    store.put_bytes(key, body).await?;
    drop(guard);
    Ok(true)
}

/// Reads and verifies the backup `v.from` names, and journals the plan or
/// why it cannot be restored (a reason already journaled is not again).
async fn verify_restore(rt: &Arc<Mutex<ClusterRuntime>>, v: Verify) {
    let source = crate::decide::status::restore_source_name(&v.from);
    tracing::info!(%source, "verifying the backup to restore");
    let planned = if v.from.point_in_time.is_some() {
        plan_point_in_time(&v, &source)
            .await
            .map(|(plan, point)| Event::RestoreToTimeVerified { plan, point })
    } else {
        plan_restore(&v, &source)
            .await
            .map(|plan| Event::RestoreVerified { plan })
    };
    let event = match planned {
        Ok(event) => event,
        Err((reason, retry)) => Event::RestoreRefused {
            source: source.clone(),
            reason,
            retry,
        },
    };
    let mut guard = rt.lock().await;
    if !guard.leading() || guard.state.backups.restore.plan.is_some() {
        return;
    }
    if let (Event::RestoreRefused { reason, retry, .. }, Some((last, last_retry, _))) =
        (&event, &guard.state.backups.restore.refused)
        && reason == last
        && retry == last_retry
    {
        // Nothing new: the next try is due from the journaled time again.
        return;
    }
    if let Event::RestoreRefused { reason, .. } = &event {
        guard
            .publish_event(
                Kind::Warning,
                "RestoreRefused",
                "Restore",
                format!("restore of {source}: {reason}"),
            )
            .await;
    }
    if let Err(err) = guard.record_now(vec![event], None).await {
        tracing::warn!(%err, "cannot journal the restore's verification");
        return;
    }
    if let Err(err) = guard.act().await {
        tracing::warn!(%err, "deciding after the restore's verification");
    }
    if let Err(err) = guard.publish_status(None).await {
        tracing::warn!(%err, "publishing the status after the restore's verification");
    }
}

/// The backup's directory, bucket and Secret, from the ValkeyBackup's
/// status or the path and destination given.
async fn restore_target(v: &Verify) -> Result<BackupTarget, (String, bool)> {
    let ns = v.meta.namespace.as_str();
    match (&v.from.backup, &v.from.path, &v.from.destination) {
        (Some(name), _, _) => {
            let api: Api<ValkeyBackup> = Api::namespaced(v.client.clone(), ns);
            let backup = api
                .get_opt(name)
                .await
                .map_err(|e| (format!("reading ValkeyBackup {ns}/{name}: {e}"), true))?
                .ok_or_else(|| (format!("ValkeyBackup {ns}/{name} does not exist"), true))?;
            let status = backup.status.unwrap_or_default();
            match status.phase {
                Some(BackupPhase::Completed) => {}
                Some(BackupPhase::Failed) => {
                    return Err((
                        format!(
                            "ValkeyBackup {name} failed ({}): there is nothing to restore",
                            status.message.unwrap_or_default()
                        ),
                        false,
                    ));
                }
                _ => {
                    return Err((format!("ValkeyBackup {name} has not completed yet"), true));
                }
            }
            let (Some(d), Some(location)) = (status.destination, status.location) else {
                return Err((
                    format!("ValkeyBackup {name}'s status does not say where it is"),
                    false,
                ));
            };
            let dir = location
                .strip_prefix(&format!("s3://{}/", d.bucket))
                .map(str::to_owned)
                .ok_or_else(|| {
                    (
                        format!(
                            "ValkeyBackup {name}'s location {location} is not in bucket {}",
                            d.bucket
                        ),
                        false,
                    )
                })?;
            Ok(BackupTarget {
                region: d.effective_region().to_owned(),
                bucket: d.bucket,
                endpoint: d.endpoint,
                path_style: d.force_path_style,
                secret: d.credentials_secret,
                dir,
                cluster_dir: String::new(),
            })
        }
        (None, Some(path), Some(d)) => Ok(restore_path_target(path, d)),
        _ => Err((
            "restoreFrom needs a backup, or a path and a destination".to_owned(),
            false,
        )),
    }
}

/// The S3 target of `restoreFrom.path` in `restoreFrom.destination` `d`:
/// its bucket, region, endpoint, addressing and Secret, and the backup's
/// directory (`path`, which holds the whole key prefix: `d.prefix` is
/// refused by validation, never added). Nothing to delete under, so no
/// cluster directory.
pub(crate) fn restore_path_target(path: &str, d: &BackupDestination) -> BackupTarget {
    BackupTarget {
        bucket: d.bucket.clone(),
        region: d.effective_region().to_owned(),
        endpoint: d.endpoint.clone(),
        path_style: d.force_path_style,
        secret: d.credentials_secret.clone(),
        dir: format!("{}/", path.trim_matches('/')),
        cluster_dir: String::new(),
    }
}

/// Reads the manifest, checks it fits the cluster, and verifies every
/// shard's object (size, SHA-256, RDB checksum) before anything exists.
async fn plan_restore(v: &Verify, source: &str) -> Result<RestorePlan, (String, bool)> {
    let target = restore_target(v).await?;
    let (s3, creds) = credentials::resolve(&v.client, &v.meta.namespace, &target)
        .await
        .map_err(|e| (e.to_string(), e.is_retryable()))?;
    let store = BackupStore::new(&s3, &creds).map_err(|e| (e.to_string(), false))?;
    let key = format!("{}{MANIFEST_NAME}", target.dir);
    let body = store.get_bytes(&key).await.map_err(|e| match e {
        crate::backup::StoreError::NotFound { .. } => (
            format!(
                "no {MANIFEST_NAME} at s3://{}/{}: the backup never completed, or the path is wrong",
                target.bucket, target.dir
            ),
            false,
        ),
        e => (e.to_string(), e.is_retryable()),
    })?;
    let manifest: Manifest = serde_json::from_slice(&body)
        .map_err(|e| (format!("{key} is not a valid manifest: {e}"), false))?;
    manifest
        .check()
        .map_err(|e| (format!("{key}: {e}"), false))?;
    let backed_cluster = manifest.cluster.topology == "Cluster";
    let shards = manifest.shards.len();
    if backed_cluster != v.spec.topology.is_cluster() {
        return Err((
            format!(
                "the backup is of a {} cluster; a {} cluster cannot load it",
                manifest.cluster.topology, v.spec.topology
            ),
            false,
        ));
    }
    let wanted = usize::try_from(v.spec.effective_shards()).unwrap_or(0);
    if backed_cluster && wanted < shards {
        return Err((
            format!(
                "the backup has {shards} shards and the spec asks for {wanted}: restore into at least {shards} shards (then scale in)"
            ),
            false,
        ));
    }
    let mut restored = Vec::new();
    for shard in &manifest.shards {
        let object = format!("{}{}", target.dir, shard.object);
        crate::backup::verify_object(&store, &object, shard.bytes, &shard.sha256)
            .await
            .map_err(|e| {
                let retry =
                    matches!(&e, crate::backup::TransferError::Store(s) if s.is_retryable());
                (format!("shard {}: {e}", shard.shard), retry)
            })?;
        restored.push(RestoreShard {
            shard: shard.shard,
            key: object,
            bytes: shard.bytes,
            sha256: shard.sha256.clone(),
            slots: shard
                .slots
                .iter()
                .map(|[start, end]| logbook_journal::intent::SlotRange {
                    start: *start,
                    end: *end,
                })
                .collect(),
        });
    }
    Ok(RestorePlan {
        source: source.to_owned(),
        target,
        topology: manifest.cluster.topology,
        server_version: manifest.server_version,
        journal_seq: manifest.journal_seq,
        shards: restored,
    })
}

/// The archive `restoreFrom` names: a ValkeyCluster of this namespace
/// (its `backup.destination`, its directory's `_archive/`), or a cluster's
/// directory given by `path` in `destination`.
async fn archive_target(v: &Verify) -> Result<BackupTarget, (String, bool)> {
    let ns = v.meta.namespace.as_str();
    match (&v.from.cluster, &v.from.path, &v.from.destination) {
        (Some(name), _, _) => {
            let api: Api<logbook_crds::ValkeyCluster> = Api::namespaced(v.client.clone(), ns);
            let source = api
                .get_opt(name)
                .await
                .map_err(|e| (format!("reading ValkeyCluster {ns}/{name}: {e}"), true))?
                .ok_or_else(|| {
                    (
                        format!(
                            "ValkeyCluster {ns}/{name} does not exist: once a cluster is gone, name its archive by path (<prefix>/{ns}/{name}) and destination"
                        ),
                        false,
                    )
                })?;
            let destination = source.spec.backup.destination.clone().ok_or_else(|| {
                (
                    format!(
                        "ValkeyCluster {ns}/{name} names no backup.destination: it has no archive"
                    ),
                    false,
                )
            })?;
            Ok(logbook_core::backup_target::target_of(
                &destination,
                ns,
                name,
                crate::observe::backup::ARCHIVE_NAME,
            ))
        }
        (None, Some(path), Some(d)) => {
            let mut target = restore_path_target(path, d);
            target.dir = crate::backup::segment::archive_dir(&target.dir);
            Ok(target)
        }
        _ => Err((
            "restoreFrom.pointInTime needs cluster, or path and destination".to_owned(),
            false,
        )),
    }
}

/// Verifies that the archive covers `restoreFrom.pointInTime` for a
/// cluster of this spec's topology and shards, and that every object the
/// restore needs is whole, before anything exists.
async fn plan_point_in_time(
    v: &Verify,
    source: &str,
) -> Result<(RestorePlan, logbook_journal::PointInTimePlan), (String, bool)> {
    use crate::backup::pitr::PitrRefusal;
    let time = v.from.point_in_time.as_deref().unwrap_or_default();
    let until_ms = logbook_crds::v1alpha1::parse_point_in_time(time).map_err(|e| (e, false))?;
    let target = archive_target(v).await?;
    let (s3, creds) = credentials::resolve(&v.client, &v.meta.namespace, &target)
        .await
        .map_err(|e| (e.to_string(), e.is_retryable()))?;
    let store = BackupStore::new(&s3, &creds).map_err(|e| (e.to_string(), false))?;
    let planned = crate::backup::pitr::plan_point_in_time(&store, &target.dir, until_ms)
        .await
        .map_err(|e| {
            // A time the archive has not reached yet is read again (a
            // quiet cluster's archive closes a segment a minute); the
            // bucket failing may pass; anything else needs a person.
            let retry = matches!(
                e,
                PitrRefusal::Store { .. } | PitrRefusal::OutsideCoverage { may_come: true, .. }
            );
            (e.to_string(), retry)
        })?;
    let backed_cluster = planned.topology == "Cluster";
    if backed_cluster != v.spec.topology.is_cluster() {
        return Err((
            format!(
                "the archive is of a {} cluster; a {} cluster cannot load it",
                planned.topology, v.spec.topology
            ),
            false,
        ));
    }
    let shards = planned.shards.len();
    let wanted = usize::try_from(v.spec.effective_shards()).unwrap_or(0);
    if backed_cluster && wanted < shards {
        return Err((
            format!(
                "the archive had {shards} shards at {time} and the spec asks for {wanted}: restore into at least {shards} shards (then scale in)"
            ),
            false,
        ));
    }
    let slots = |pairs: &[[u16; 2]]| {
        pairs
            .iter()
            .map(|[start, end]| logbook_journal::intent::SlotRange {
                start: *start,
                end: *end,
            })
            .collect::<Vec<_>>()
    };
    let mut bases = Vec::new();
    let mut streams = Vec::new();
    for (i, shard) in planned.shards.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        bases.push(RestoreShard {
            shard: index,
            key: shard.base_key.clone(),
            bytes: shard.base_bytes,
            sha256: shard.base_sha256.clone(),
            slots: slots(&shard.slots),
        });
        streams.push(logbook_journal::PointInTimeShard {
            shard: index,
            chain_dir: shard.chain_dir.clone(),
            segments: shard.segments,
            end: shard.end,
            digest: shard.digest.clone(),
            slots: slots(&shard.slots),
        });
    }
    let until = Timestamp::EPOCH.plus_millis(until_ms);
    Ok((
        RestorePlan {
            source: source.to_owned(),
            target,
            topology: planned.topology,
            server_version: None,
            journal_seq: 0,
            shards: bases,
        },
        logbook_journal::PointInTimePlan {
            until,
            shards: streams,
            notes: Vec::new(),
        },
    ))
}

#[cfg(test)]
#[path = "backups_tests.rs"]
mod tests;
