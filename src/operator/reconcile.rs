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
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use logbook_crds::ValkeyCluster;
use logbook_journal::reader::ReadError;
use logbook_journal::{Event, StreamId};
use tracing::Instrument;

use super::error::OperatorError;
use super::events::Kind;
use super::runtime::FENCED_PAUSE;
use super::{Context, FINALIZER};
use crate::actuate::{Target, read_password_with_meta};
use crate::decide::status::{REASON_CONTAINER_FAILING, REASON_UPGRADE_REFUSED};
use crate::metrics::ClusterLabels;
use crate::observe::freshness::{self, Reads};
use crate::observe::{
    defaults::observe_layered_spec, observe_binding, observe_failover_request, observe_pods,
    observe_rebalance_request, observe_spec, observe_statefulset, observe_switchover_request,
};
use crate::resources::{ClusterMeta, labels, statefulset_name};

/// How often a quiet cluster is reconciled anyway (reads only; a
/// converged cluster writes nothing). A leading runtime therefore decides
/// at least this often, which `replay audit`'s `missed-decision` check
/// counts on.
pub(super) const RESYNC: Duration = Duration::from_secs(300);
/// How often a cluster whose new image's preflight runs looks at it.
const PREFLIGHT_POLL: Duration = Duration::from_millis(500);
/// How long after a deadline the reconcile that journals it runs (the
/// wall clock must have passed it).
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);
/// How often a follower catches its projections up with the journals, and
/// a cluster with an untrusted journal is looked at again (a repair).
const FOLLOWER_REFRESH: Duration = Duration::from_secs(30);

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
            FinalizerEvent::Apply(obj) => apply(obj, ctx.clone()).await,
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
async fn journal_untrusted(
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
fn untrusted(err: &OperatorError) -> bool {
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
async fn owned_objects(
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
async fn drift_events(
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
async fn standby_events(
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
async fn binding_events(
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

/// How soon a cluster whose change of defaults waits for its turn asks
/// again.
const DEFAULTS_TURN_POLL: std::time::Duration = std::time::Duration::from_secs(1);

async fn apply(obj: Arc<ValkeyCluster>, ctx: Arc<Context>) -> Result<Action, OperatorError> {
    let meta = ClusterMeta::from_cluster(&obj).ok_or(OperatorError::MissingMeta)?;
    let retain = obj.spec.journal.retain_on_delete;
    let handle = match ctx.handle(&meta, obj.object_ref(&()), retain).await {
        Ok(handle) => handle,
        Err(err) if untrusted(&err) => {
            return journal_untrusted(&obj, &meta, &ctx, &err).await;
        }
        Err(err) => return Err(err),
    };
    ctx.unhealthy.lock().await.remove(&meta.uid);
    ctx.deps
        .metrics
        .set_journal_healthy(&ClusterLabels::new(&meta.namespace, &meta.name), true);
    let mut rt = handle.lock().await;
    rt.set_journal_spec(&ctx.deps.journals, retain, obj.spec.journal.max_events)?;
    if !rt.sync_leadership().await? {
        // Fenced by another writer while this instance leads: look again
        // when the pause is over, not at a follower's pace; until a
        // reconcile gets past here the password is not read, so the
        // prober cannot probe, act or publish the status.
        let again = if rt.fenced().is_some() {
            FENCED_PAUSE
        } else {
            FOLLOWER_REFRESH
        };
        return Ok(Action::requeue(again));
    }
    // A pod the watch saw being deleted is journaled terminating first,
    // and acted on at once: a deleted primary's failover does not wait on
    // the reads below (docs/benchmarks.md, "Where a deletion's window
    // goes"). Its freshness is judged by the watch event's version.
    let deleting = ctx.terminating.take(&meta.namespace, &meta.name);
    if !deleting.is_empty() {
        let mut reads = Reads::new();
        for pod in &deleting {
            reads.object(freshness::pod(&pod.name_any()), &pod.metadata);
        }
        let events = gated(
            &rt,
            &reads,
            crate::observe::observe_terminating(&rt.state, &deleting),
        );
        if !events.is_empty() {
            rt.record(events, None).await?;
            rt.act().await?;
        }
    }
    let client = ctx.deps.client.clone();
    let ns = meta.namespace.as_str();
    // What each read was at: an observation read older than the journal's
    // is not journaled (`observe/freshness.rs`).
    let mut reads = Reads::new();
    // The spec and the switchover and failover requests.
    // With defaults or a plan, the spec judged is the one its layers
    // give, from the object as its user wrote it (read again, raw).
    let layered = ctx
        .defaults
        .layered(&client, &obj, rt.state.spec_layers.is_some())
        .await?;
    let mut events = match layered {
        None => {
            reads.object(freshness::VALKEY_CLUSTER.to_owned(), &obj.metadata);
            rt.defaults_waiting = None;
            observe_spec(&rt.state, &obj)
        }
        Some((raw, layered)) => {
            reads.object(freshness::VALKEY_CLUSTER.to_owned(), &raw);
            let generation = raw.generation.unwrap_or(0);
            let mut judged =
                observe_layered_spec(&rt.state, &meta.name, generation, &layered, false);
            // A change of the defaults takes its turn: at most
            // `maxClustersRolling` clusters roll one at once.
            if judged.waiting.is_some() && ctx.defaults.admit(&meta.uid) {
                judged = observe_layered_spec(&rt.state, &meta.name, generation, &layered, true);
            }
            rt.defaults_waiting = judged.waiting;
            judged.events
        }
    };
    events.extend(observe_switchover_request(&rt.state, &obj));
    events.extend(observe_failover_request(&rt.state, &obj));
    events.extend(observe_rebalance_request(&rt.state, &obj));
    let events = gated(&rt, &reads, events);
    let rejected: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::SpecRejected { generation, errors } => Some(format!(
                "spec generation {generation} refused: {}",
                logbook_journal::SpecProblem::describe_at_v1beta1(errors)
            )),
            _ => None,
        })
        .collect();
    let recorded = rt.record(events, None).await?;
    if !recorded.is_empty() {
        // A refused spec is the user's to fix: said where they look, not
        // only in the status.
        for note in rejected {
            rt.publish_event(Kind::Warning, "SpecRejected", "Validate", note)
                .await;
        }
    }
    rt.sync_policy().await?;
    // The pods and the StatefulSet, read together (a pod's deletion the
    // watch event did not bring waits on them).
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let selector = ListParams::default().labels(&labels::selector_string(&meta.name));
    let sts_name = statefulset_name(&meta.name);
    let (listed, sts) = tokio::join!(pods.list(&selector), sets.get_opt(&sts_name));
    let listed = listed.map_err(|source| OperatorError::Kube {
        what: format!("listing the pods of {ns}/{}", meta.name),
        source,
    })?;
    let sts = sts.map_err(|source| OperatorError::Kube {
        what: format!("reading the StatefulSet of {ns}/{}", meta.name),
        source,
    })?;
    reads.list(freshness::PODS, &listed.metadata);
    for pod in &listed.items {
        reads.object(freshness::pod(&pod.name_any()), &pod.metadata);
    }
    if let Some(sts) = &sts {
        reads.object(freshness::STATEFUL_SET.to_owned(), &sts.metadata);
    }
    let mut events = observe_pods(&rt.state, &listed.items);
    events.extend(observe_statefulset(&rt.state, sts.as_ref()));
    events.extend(observe_binding(&rt.state, &meta.name, sts.as_ref()));
    let fetch = crate::observe::observe_restore_fetch(&rt.state, &listed.items);
    let fetch = gated(&rt, &reads, fetch);
    if rt.state.sentinel.enabled {
        let sentinels = pods
            .list(&ListParams::default().labels(&labels::sentinel_selector_string(&meta.name)))
            .await
            .map_err(|source| OperatorError::Kube {
                what: format!("listing the Sentinel pods of {ns}/{}", meta.name),
                source,
            })?;
        reads.list(freshness::SENTINEL_PODS, &sentinels.metadata);
        for pod in &sentinels.items {
            reads.object(freshness::pod(&pod.name_any()), &pod.metadata);
        }
        events.extend(crate::observe::sentinel::observe_sentinel_pods(
            &rt.state,
            &sentinels.items,
        ));
    }
    let events = gated(&rt, &reads, events);
    let recorded = rt.record(events, None).await?;
    binding_events(&mut rt, &recorded).await;
    // A restore container or a Valkey container that fails is the user's
    // to see (the bucket unreachable from the pods, an object gone, a
    // configuration value Valkey refuses, an image that cannot be
    // pulled): said where they look, not only in the container's log,
    // once per failure journaled. (Observed after the pods' events, so a
    // pod deleted is already no longer failing.)
    let mut failures = fetch;
    failures.extend(gated(
        &rt,
        &reads,
        crate::observe::observe_container_failures(&rt.state, &listed.items),
    ));
    failures.extend(gated(
        &rt,
        &reads,
        crate::observe::observe_container_restarts(&rt.state, &listed.items),
    ));
    let recorded = if failures.is_empty() {
        Vec::new()
    } else {
        rt.record_now(failures, None).await?
    };
    for envelope in &recorded {
        match &envelope.body {
            logbook_journal::Event::RestoreFetchObserved {
                pod,
                failure: Some(failure),
            } => {
                rt.publish_event(
                    Kind::Warning,
                    "RestoreFailing",
                    "Restore",
                    format!("pod {pod} cannot load its shard of the backup: {failure}"),
                )
                .await;
            }
            logbook_journal::Event::ContainerFailureObserved {
                pod,
                failure: Some(failure),
            } => {
                rt.publish_event(
                    Kind::Warning,
                    REASON_CONTAINER_FAILING,
                    "Observe",
                    format!("pod {pod}: Valkey fails: {failure}"),
                )
                .await;
            }
            _ => {}
        }
    }
    // What each pod runs (read once per pod and image), and what the
    // preflight of a new image shows while it runs; a refusal is the
    // user's to see.
    let mut upgrade =
        super::upgrade::read_versions(rt.probe_client(), &rt.state, &listed.items).await;
    upgrade.extend(
        super::upgrade::observe_preflight(&client, &meta, rt.probe_client(), &rt.state).await?,
    );
    if !upgrade.is_empty() {
        for envelope in rt.record_now(upgrade, None).await? {
            if let Event::ImagePreflighted {
                image,
                refused: Some(refused),
                ..
            } = &envelope.body
            {
                // The spec is refused, as one that fails validation is.
                rt.publish_event(
                    Kind::Warning,
                    "SpecRejected",
                    "Preflight",
                    format!(
                        "image {image} failed its preflight ({REASON_UPGRADE_REFUSED}); nothing rolled: {refused}"
                    ),
                )
                .await;
            }
        }
    }
    // The internal Secret: the internal users' passwords (the operator
    // authenticates as its own user, and gives the Sentinels theirs) and
    // the cluster's fingerprint key, without which no password is
    // fingerprinted (its absence journaled, so that it is made).
    // Read older than the journal's, it is neither journaled nor given
    // to the operator's clients.
    let internal = super::users::read_internal(&client, &meta).await?;
    let internal_secret = freshness::secret(
        &crate::resources::internal_users::internal_secret_name(&meta.name),
    );
    reads.at(
        internal_secret.clone(),
        internal.resource_version.as_deref(),
    );
    let internal_stale = freshness::older(&rt.state, &reads, &internal_secret);
    let key_event = crate::observe::fingerprints::observe_fingerprint_key(
        &rt.state,
        internal.fingerprint_key.is_some(),
    );
    if !internal_stale {
        rt.record(key_event.into_iter().collect(), None).await?;
    }
    let fingerprint_key = internal.fingerprint_key.clone();
    let mut prints = crate::observe::fingerprints::Fingerprints::new(fingerprint_key.as_ref());
    // The password (read each reconcile, so a rotated Secret is picked up:
    // the clients keep the old one to fall back on, and the record of the
    // cluster's password opens its rotation on the nodes).
    let mut cluster_password = None;
    let mut own_secrets = Vec::new();
    if let Some(Ok(spec)) = rt.state.desired_spec() {
        own_secrets.extend(
            spec.auth
                .effective_password_secret(&meta.name)
                .map(|secret| secret.name),
        );
        own_secrets.extend(spec.tls.certificate_secret(&meta.name));
        let target = Target {
            meta: &meta,
            spec: &spec,
            state: &rt.state,
            interrupt: None,
        };
        match read_password_with_meta(&client, target).await {
            Ok(read) => {
                let (password, secret_meta) = read.unzip();
                let secret = spec.auth.effective_password_secret(&meta.name);
                let object = secret.as_ref().map(|s| freshness::secret(&s.name));
                if let (Some(object), Some(m)) = (&object, &secret_meta) {
                    reads.object(object.clone(), m);
                }
                // A password older than the one the journal holds is not
                // the cluster's any more: the clients keep theirs.
                let stale = object
                    .as_deref()
                    .is_some_and(|o| freshness::older(&rt.state, &reads, o));
                if let (Some(pw), Some(secret)) = (&password, secret) {
                    cluster_password = crate::observe::users::cluster_password_record(
                        &format!("{}/{}", secret.name, secret.key),
                        pw,
                        spec.auth.rotation_window_seconds,
                        &mut prints,
                    );
                }
                if !stale {
                    rt.set_password(password).await;
                }
            }
            Err(err) => {
                tracing::debug!(seq = rt.state.last_seq, %err, "password not available yet")
            }
        }
    }
    // The internal users' records.
    let internal_records: Vec<logbook_journal::UserRecord> = match rt.state.desired_spec() {
        Some(Ok(spec)) => crate::resources::internal_users::INTERNAL_USERS
            .iter()
            .filter_map(|user| {
                let password = internal.passwords.get(user.name)?;
                crate::observe::users::internal_record(
                    &meta.name,
                    *user,
                    password,
                    spec.topology,
                    &mut prints,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    if !internal_stale {
        rt.set_internal(internal).await;
    }
    // TLS: the certificate Secret, the clients' CA, what the nodes serve.
    let tls_pending = super::tls::observe(&client, &meta, &mut rt, &mut reads).await?;
    // The ValkeyUsers naming the cluster, with their passwords'
    // fingerprints, and the cluster's own password (kept as last read
    // when it could not be read now).
    let (users, mut records) = super::users::read_users(
        &client,
        &meta,
        &ctx.user_secrets,
        &own_secrets,
        &rt.state,
        &mut prints,
        &mut reads,
    )
    .await?;
    records.extend(cluster_password.or_else(|| {
        rt.state
            .users
            .records
            .get(logbook_journal::CLUSTER_PASSWORD)
            .cloned()
    }));
    // The internal users, so that a node started before they existed is
    // given them (kept as last read when their Secret could not be read).
    if internal_records.is_empty() {
        records.extend(
            rt.state
                .users
                .records
                .values()
                .filter(|r| r.is_internal())
                .cloned(),
        );
    } else {
        records.extend(internal_records);
    }
    // Fingerprints an earlier version journaled unkeyed, of the passwords
    // read now, are renamed first: the same passwords, no rotation.
    let rekeyed = prints.rekeyed(&rt.state);
    rt.record(rekeyed.into_iter().collect(), None).await?;
    let events = crate::observe::users::observe_users(&rt.state, &records);
    let events = gated(&rt, &reads, events);
    rt.record(events, None).await?;
    // What each answering node holds of those users.
    let acls =
        super::users::read_node_acls(rt.probe_client(), &rt.state, rt.fingerprint_key()).await;
    rt.record(acls, None).await?;
    // The ValkeyBackups naming the cluster.
    let spec_now = rt.state.desired_spec().and_then(Result::ok);
    let (backups, backup_records) =
        super::backups::read_backups(&client, &meta, spec_now.as_ref(), &mut reads).await?;
    let events = crate::observe::backup::observe_backups(&rt.state, &backup_records);
    let events = gated(&rt, &reads, events);
    rt.record(events, None).await?;
    rt.act().await?;
    rt.flush_due().await?;
    rt.publish_status(obj.status.as_ref()).await?;
    ctx.defaults.settle(&meta.uid, rt.defaults_rolling());
    if rt.leading() {
        for (user, message) in
            super::users::publish_statuses(&client, &meta, &rt.state, &users).await?
        {
            rt.publish_event(
                Kind::Warning,
                "UserNotApplied",
                "ApplyUser",
                format!("ValkeyUser {user}: {message}"),
            )
            .await;
        }
    }
    if rt.leading() {
        for (backup, message) in
            super::backups::publish_statuses(&client, &meta.namespace, &rt.state, &backups).await?
        {
            rt.publish_event(
                Kind::Warning,
                "BackupFailed",
                "Backup",
                format!("ValkeyBackup {backup}: {message}"),
            )
            .await;
        }
    }
    // The next deadline (a certificate falling due, a schedule's fire, a
    // retention age, a rotation window), so that it is journaled when it
    // comes, and the end of a back-off after a failure, so that the
    // decision is taken again then: an idle cluster has no other traffic
    // to wake it. (Found by the effect sweep: a new cluster whose first
    // effect failed waited for the resync, minutes, before trying again.)
    let resync = [
        rt.until_next_deadline()
            .map(|left| left.saturating_add(DEADLINE_MARGIN)),
        rt.until_backoff_ends(),
        // A change of the defaults waiting for its turn asks again soon:
        // the clusters it waits on finishing wake nothing here.
        rt.defaults_waiting.as_ref().map(|_| DEFAULTS_TURN_POLL),
        // A preflight's pod is no data pod: no watch event wakes the
        // cluster when its server answers or its container ends.
        rt.state
            .preflight
            .as_ref()
            .filter(|p| !p.ended() && !p.removed)
            .map(|_| PREFLIGHT_POLL),
        // A standby's source: nothing of it wakes the cluster.
        super::standby::watched(&rt.state).map(|_| super::standby::STANDBY_POLL),
    ]
    .into_iter()
    .flatten()
    .min()
    .map_or(RESYNC, |left| left.min(RESYNC));
    // Drift: what someone else changed in the objects the operator made,
    // read last and without the cluster's runtime, so that no decision (a
    // failover the prober journals meanwhile) waits on these reads; what
    // is journaled is acted on at once (the objects applied again).
    drop(rt);
    let owned = owned_objects(&client, &meta).await?;
    let mut rt = handle.lock().await;
    let drift = crate::observe::observe_drift(&rt.state, &meta.name, &owned);
    if !drift.is_empty() && rt.leading() {
        let recorded = rt.record_now(drift, None).await?;
        drift_events(&mut rt, &recorded).await;
        rt.act().await?;
    }
    // A standby's source and lag, read without the runtime too (a source
    // that does not answer holds nothing up).
    let standby = super::standby::watched(&rt.state)
        .filter(|_| rt.leading())
        .map(|watched| (rt.probe_client().clone(), watched));
    if standby.is_none() {
        rt.standby_metrics(None);
    }
    drop(rt);
    if let Some((valkey, watched)) = standby {
        let (read, bound) = super::standby::read_standby(&client, &meta, &valkey, watched).await;
        let mut rt = handle.lock().await;
        let lag = crate::observe::standby::lag_of(&read);
        rt.standby_metrics(Some((
            lag,
            read.source.is_err() || lag.is_some_and(|l| l > bound),
        )));
        let seen = crate::observe::standby::observe_standby(&rt.state, &read, bound);
        if let Some(event) = seen.filter(|_| rt.leading()) {
            let recorded = rt.record_now(vec![event], None).await?;
            standby_events(&mut rt, &recorded).await;
            rt.act().await?;
            rt.publish_status(None).await?;
        }
    }
    if tls_pending {
        // A node still serves an old certificate: ask it again once the
        // kubelet has had time to update the mounted files.
        return Ok(Action::requeue(std::time::Duration::from_millis(
            crate::decide::RELOAD_RETRY_MS.unsigned_abs(),
        )));
    }
    Ok(Action::requeue(resync))
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
