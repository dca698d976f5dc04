//! The reconciler: feeds what the API shows into the journal and lets the
//! runtime act. It computes nothing itself. Every read keeps its
//! resourceVersion, and what a read older than the journal's shows is not
//! journaled (`observe/freshness.rs`, [`gated`]). Deletion runs the finalizer:
//! `ClusterDeleted` is journaled, the owned objects are deleted (PVCs only
//! when the cluster carries `valkey.logbook.dev/delete-pvcs-on-delete:
//! "true"`), the journal stays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use logbook_crds::ValkeyCluster;
use logbook_journal::reader::ReadError;
use logbook_journal::{Event, StreamId};
use tracing::Instrument;

use super::error::OperatorError;
use super::events::Kind;
use super::{Context, FINALIZER};
use crate::metrics::ClusterLabels;
use crate::observe::freshness::{self, Reads};
use crate::resources::{ClusterMeta, labels, statefulset_name};

/// How often a quiet cluster is reconciled anyway (reads only; a
/// converged cluster writes nothing). A leading runtime therefore decides
/// at least this often, which `replay audit`'s `missed-decision` check
/// counts on.
pub(super) const RESYNC: Duration = Duration::from_secs(300);
/// How often a cluster whose new image's preflight runs looks at it.
pub(super) const PREFLIGHT_POLL: Duration = Duration::from_millis(500);
/// How long after a deadline the reconcile that journals it runs (the
/// wall clock must have passed it).
pub(super) const DEADLINE_MARGIN: Duration = Duration::from_millis(50);
/// How often a follower catches its projections up with the journals, and
/// a cluster with an untrusted journal is looked at again (a repair).
pub(super) const FOLLOWER_REFRESH: Duration = Duration::from_secs(30);

/// Reconciles one ValkeyCluster, in the cluster's span; counts and times
/// it, and logs a failure there (with the seq the cluster's journal is at).
///
/// # Errors
/// [`OperatorError`]; the controller retries after [`error_policy`].
pub async fn reconcile(
    obj: Arc<ValkeyCluster>,
    ctx: Arc<Context>,
) -> Result<Action, OperatorError> {
    let started = Instant::now();
    let span = match ClusterMeta::from_cluster(&obj) {
        Some(meta) => ctx.span(&meta).await,
        None => tracing::Span::none(),
    };
    let result = reconcile_in(obj, ctx.clone())
        .instrument(span.clone())
        .await;
    ctx.deps
        .metrics
        .observe_reconcile(started.elapsed(), result.is_ok());
    if let Err(err) = &result {
        tracing::warn!(parent: &span, error = %err, label = err.metric_label(), "reconcile failed");
    }
    result
}

async fn reconcile_in(obj: Arc<ValkeyCluster>, ctx: Arc<Context>) -> Result<Action, OperatorError> {
    let ns = obj.namespace().ok_or(OperatorError::MissingMeta)?;
    if !ctx.deps.leadership.borrow().is_leader() {
        return follow(&obj, &ctx).await;
    }
    let api: Api<ValkeyCluster> = Api::namespaced(ctx.deps.client.clone(), &ns);
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => super::apply::apply(obj, ctx.clone()).await,
            FinalizerEvent::Cleanup(obj) => cleanup(obj, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(err)
        | kube::runtime::finalizer::Error::CleanupFailed(err) => err,
        other => OperatorError::Finalizer(other.to_string()),
    })
}

/// What of `events`, read as `reads` say, the journal takes
/// ([`freshness::gate`]); each stale read ignored is a warning too, said
/// once (when its `StaleReadIgnored` is new).
pub(super) fn gated(
    rt: &super::runtime::ClusterRuntime,
    reads: &Reads,
    events: Vec<Event>,
) -> Vec<Event> {
    let events = freshness::gate(&rt.state, reads, events);
    for event in &events {
        if let Event::StaleReadIgnored {
            object,
            resource_version,
            journaled,
        } = event
        {
            tracing::warn!(
                %object,
                resource_version,
                journaled,
                "stale read ignored: the API server answered with an older view than the journal's"
            );
        }
    }
    events
}

/// Retries a failed reconcile after a short pause ([`reconcile`] logged
/// the failure).
pub fn error_policy(_obj: Arc<ValkeyCluster>, _err: &OperatorError, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(2))
}

/// A follower writes nothing: it keeps the cluster's projection warm by
/// reading its journal, so that taking over costs only the tail. It
/// exports none of the cluster's series (the leader does).
async fn follow(obj: &ValkeyCluster, ctx: &Context) -> Result<Action, OperatorError> {
    let meta = ClusterMeta::from_cluster(obj).ok_or(OperatorError::MissingMeta)?;
    let retain = obj.spec.journal.retain_on_delete;
    ctx.deps
        .metrics
        .forget_cluster(&ClusterLabels::new(&meta.namespace, &meta.name));
    match ctx.handle(&meta, obj.object_ref(&()), retain).await {
        Ok(handle) => {
            let mut rt = handle.lock().await;
            if !rt.leading()
                && let Err(err) = rt.refresh().await
            {
                tracing::debug!(%err, "follower cannot refresh the projection");
            }
        }
        Err(err) => tracing::debug!(%err, "follower cannot load the journal"),
    }
    Ok(Action::requeue(FOLLOWER_REFRESH))
}

/// The journal of `meta`'s cluster cannot be trusted (`err`): publish
/// `JournalHealthy=False` naming the seq and the ConfigMap, once per
/// distinct problem, and leave the cluster alone until it is repaired.
pub(super) async fn journal_untrusted(
    obj: &ValkeyCluster,
    meta: &ClusterMeta,
    ctx: &Context,
    err: &OperatorError,
) -> Result<Action, OperatorError> {
    let labels = ClusterLabels::new(&meta.namespace, &meta.name);
    ctx.deps.metrics.set_journal_healthy(&labels, false);
    ctx.deps.metrics.set_ready(&labels, false);
    let message = untrusted_message(meta, ctx, err).await;
    let mut unhealthy = ctx.unhealthy.lock().await;
    if unhealthy.get(&meta.uid) == Some(&message) {
        return Ok(Action::requeue(FOLLOWER_REFRESH));
    }
    tracing::error!(%message, "journal untrusted: not acting on this cluster");
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let condition = |type_: &str, reason: &str| {
        serde_json::json!({
            "type": type_, "status": "False", "reason": reason, "message": message,
            "lastTransitionTime": now, "observedGeneration": obj.metadata.generation,
        })
    };
    let patch = serde_json::json!({ "status": { "conditions": [
        condition(logbook_crds::v1alpha1::CONDITION_JOURNAL_HEALTHY, "JournalCorrupt"),
        condition(logbook_crds::v1alpha1::CONDITION_READY, "JournalUntrusted"),
    ]}});
    let api: Api<ValkeyCluster> = Api::namespaced(ctx.deps.client.clone(), &meta.namespace);
    api.patch_status(&meta.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("writing the status of {}/{}", meta.namespace, meta.name),
            source,
        })?;
    unhealthy.insert(meta.uid.clone(), message);
    Ok(Action::requeue(FOLLOWER_REFRESH))
}

/// Whether `err` says the journal is damaged (rather than unreachable).
pub(super) fn untrusted(err: &OperatorError) -> bool {
    matches!(err, OperatorError::Load { source, .. } if !source.is_retryable())
}

/// What is wrong with the journal, where, and what to do about it.
async fn untrusted_message(meta: &ClusterMeta, ctx: &Context, err: &OperatorError) -> String {
    let seq = match err {
        OperatorError::Load { source, .. } => match source.as_ref() {
            ReadError::Corrupt { seq, .. } => Some(*seq),
            ReadError::Missing { expected, .. } => Some(*expected),
            _ => None,
        },
        _ => None,
    };
    if let Some(seq) = seq {
        // No projection was loaded: the seq these lines concern is the
        // damaged one.
        tracing::Span::current().record("seq", seq);
    }
    let mut place = String::new();
    if let (Some(seq), Ok(store)) = (seq, ctx.deps.journals.store_for(meta, true))
        && let (Some(config_maps), Ok(stream)) =
            (store.config_maps(), StreamId::new(meta.uid.clone()))
    {
        place = match config_maps.locate(&stream, seq).await {
            Ok(Some((name, key))) => format!(" (ConfigMap {}/{name}, key {key})", meta.namespace),
            _ => format!(" (journal stream {stream})"),
        };
    }
    let at = seq.map_or_else(String::new, |seq| format!(" at seq {seq}"));
    format!(
        "journal untrusted{at}{place}: {err}; the operator does not act on this cluster until it is repaired: logbook journal repair --cluster {} --namespace {}",
        meta.name, meta.namespace
    )
}

/// The metadata of the objects of the cluster (listed by its
/// `valkey.logbook.dev/cluster` label, its journal's ConfigMaps left out),
/// each as `<Kind> <name>`.
pub(super) async fn owned_objects(
    client: &kube::Client,
    meta: &ClusterMeta,
) -> Result<Vec<(String, kube::api::ObjectMeta)>, OperatorError> {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let (sets, services, maps, secrets, pdbs) = tokio::join!(
        owned_metas::<StatefulSet>(client, meta),
        owned_metas::<Service>(client, meta),
        owned_metas::<ConfigMap>(client, meta),
        owned_metas::<Secret>(client, meta),
        owned_metas::<PodDisruptionBudget>(client, meta),
    );
    let mut objects = sets?;
    objects.extend(services?);
    objects.extend(maps?);
    objects.extend(secrets?);
    objects.extend(pdbs?);
    Ok(objects)
}

/// The metadata of each object of kind `K` of `meta`'s cluster
/// ([`crate::actuate::owned_metadata`]), as `<Kind> <name>`.
async fn owned_metas<K>(
    client: &kube::Client,
    meta: &ClusterMeta,
) -> Result<Vec<(String, kube::api::ObjectMeta)>, OperatorError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let metas = crate::actuate::owned_metadata::<K>(client, meta)
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!(
                "listing the {kind}s of {}/{} for drift",
                meta.namespace, meta.name
            ),
            source,
        })?;
    Ok(metas
        .into_iter()
        .map(|m| (format!("{kind} {}", m.name.clone().unwrap_or_default()), m))
        .collect())
}

/// Each drift journaled is a Warning Event: a change made by hand to an
/// object the operator manages is put back.
pub(super) async fn drift_events(
    rt: &mut super::runtime::ClusterRuntime,
    recorded: &[logbook_journal::Envelope],
) {
    for envelope in recorded {
        if let Event::DriftObserved {
            object, by, fields, ..
        } = &envelope.body
        {
            let note = format!(
                "{object} was changed by {by} ({}): the operator puts back what its spec says; change the ValkeyCluster instead, or unbind the cluster (kubectl annotate statefulset {} {}-)",
                fields.join(", "),
                statefulset_name(&rt.meta.name),
                labels::OWNED_BY,
            );
            rt.publish_event(Kind::Warning, "Drift", "Revert", note)
                .await;
        }
    }
}

/// A standby's source unreadable, or the standby past its lag bound, is
/// its user's to see: a Warning Event; a Normal one when it is over.
pub(super) async fn standby_events(
    rt: &mut super::runtime::ClusterRuntime,
    recorded: &[logbook_journal::Envelope],
) {
    for envelope in recorded {
        let Event::StandbyObserved {
            host,
            port,
            lag,
            behind,
            error,
            ..
        } = &envelope.body
        else {
            continue;
        };
        let at = host.as_ref().map_or_else(
            || "its source".to_owned(),
            |h| format!("its source {h}:{port}"),
        );
        match (error, behind, lag) {
            (Some(e), _, _) => {
                rt.publish_event(
                    Kind::Warning,
                    "StandbySourceUnreadable",
                    "Observe",
                    format!("the standby cannot read {at}: {e}"),
                )
                .await;
            }
            (None, true, Some(lag)) => {
                rt.publish_event(
                    Kind::Warning,
                    "StandbyBehind",
                    "Observe",
                    format!("the standby is {lag} bytes behind {at}, past spec.replicateFrom.maxLagBytes"),
                )
                .await;
            }
            (None, false, Some(lag)) => {
                rt.publish_event(
                    Kind::Normal,
                    "StandbyFollowing",
                    "Observe",
                    format!("the standby follows {at}, {lag} bytes behind"),
                )
                .await;
            }
            (None, _, None) => {}
        }
    }
}

/// A change of the cluster's binding is its user's to see, where they
/// look: an Event when it is unbound and when it is bound again.
pub(super) async fn binding_events(
    rt: &mut super::runtime::ClusterRuntime,
    recorded: &[logbook_journal::Envelope],
) {
    for envelope in recorded {
        let Event::BindingObserved { annotated, by } = &envelope.body else {
            continue;
        };
        let name = rt.meta.name.clone();
        let (reason, note) = match (*annotated, rt.state.binding.as_ref()) {
            (false, Some(b)) if b.unbound() => (
                "Unbound",
                format!(
                    "the annotation {}={name} was removed from StatefulSet {}{}: the operator no longer manages this cluster (its pods and data are left as they are) until it is back",
                    labels::OWNED_BY,
                    statefulset_name(&name),
                    by.as_ref()
                        .map_or_else(String::new, |by| format!(" by {by}"))
                ),
            ),
            (true, Some(b)) if b.rebound => (
                "Rebound",
                format!(
                    "the annotation {}={name} is back on StatefulSet {}: the operator manages this cluster again, as it now is",
                    labels::OWNED_BY,
                    statefulset_name(&name)
                ),
            ),
            _ => continue,
        };
        rt.publish_event(Kind::Normal, reason, "Bind", note).await;
    }
}

/// The finalizer's cleanup: the deletion is journaled
/// (`DeletionRequested`), then decided and carried out like any intent
/// (`DeleteOwnedObjects`), and the finalizer goes only once the journal
/// says every owned object is gone. An instance that does not lead
/// deletes nothing: it fails, so the finalizer stays for the leader.
async fn cleanup(obj: Arc<ValkeyCluster>, ctx: Arc<Context>) -> Result<Action, OperatorError> {
    let meta = ClusterMeta::from_cluster(&obj).ok_or(OperatorError::MissingMeta)?;
    // A cluster being deleted rolls no defaults: it no longer counts.
    ctx.defaults.settle(&meta.uid, false);
    let retain = obj.spec.journal.retain_on_delete;
    let handle = match ctx.handle(&meta, obj.object_ref(&()), retain).await {
        Ok(handle) => handle,
        // A journal that cannot be trusted records nothing, so nothing is
        // deleted by the operator: its finalizer goes, and Kubernetes'
        // garbage collector removes what the cluster owns (every object
        // carries its ownerReference). PVCs, which are not owned, stay.
        Err(OperatorError::Load { source, .. }) if !source.is_retryable() => {
            tracing::warn!(%source, "deleting a cluster whose journal is untrusted: its owned objects go by garbage collection, its PVCs are kept");
            ctx.deps
                .events
                .publish(
                    &obj.object_ref(&()),
                    Kind::Warning,
                    "JournalUntrusted",
                    "Delete",
                    format!("the journal cannot record the deletion ({source}): owned objects are left to garbage collection, PVCs are kept"),
                )
                .await;
            ctx.forget(&meta).await;
            return Ok(Action::await_change());
        }
        Err(err) => return Err(err),
    };
    let mut rt = handle.lock().await;
    if !rt.sync_leadership().await? {
        return Err(OperatorError::NotLeading {
            cluster: rt.cluster(),
        });
    }
    if !rt.state.deletion.requested {
        let delete_pvcs = obj
            .annotations()
            .get(labels::DELETE_PVCS)
            .is_some_and(|v| v == "true");
        rt.record_now(vec![Event::DeletionRequested { delete_pvcs }], None)
            .await?;
    }
    rt.act().await?;
    if !rt.state.deletion.objects_deleted {
        return Err(OperatorError::Deleting {
            cluster: rt.cluster(),
        });
    }
    drop(rt);
    ctx.forget(&meta).await;
    tracing::info!("cluster deleted; journal kept");
    Ok(Action::await_change())
}
