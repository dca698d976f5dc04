//! The reconcile of a live cluster (not being deleted), as a list of
//! steps: each reads what the API (or the pods) show, keeps each read's
//! resourceVersion in [`Reads`], and journals what changed through
//! [`gated`] (a read older than the journal's is not journaled); then the
//! runtime acts and publishes, and the reads that must not hold a
//! decision up (drift, a standby's source) run without its lock.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use logbook_crds::{ValkeyBackup, ValkeyCluster, ValkeyUser};
use logbook_journal::Event;
use tokio::sync::Mutex;

use super::Context;
use super::error::OperatorError;
use super::events::Kind;
use super::reconcile::{
    DEADLINE_MARGIN, FOLLOWER_REFRESH, PREFLIGHT_POLL, RESYNC, binding_events, drift_events, gated,
    journal_untrusted, owned_objects, standby_events, untrusted,
};
use super::runtime::{ClusterRuntime, FENCED_PAUSE};
use crate::actuate::{Target, read_password_with_meta};
use crate::decide::status::{REASON_CONTAINER_FAILING, REASON_UPGRADE_REFUSED};
use crate::metrics::ClusterLabels;
use crate::observe::freshness::{self, Reads};
use crate::observe::{
    defaults::observe_layered_spec, observe_binding, observe_failover_request, observe_pods,
    observe_rebalance_request, observe_restart_request, observe_spec, observe_statefulset,
    observe_switchover_request,
};
use crate::resources::{ClusterMeta, labels, statefulset_name};

/// How soon a cluster whose change of defaults waits for its turn asks
/// again.
const DEFAULTS_TURN_POLL: Duration = Duration::from_secs(1);

/// Reconciles a live cluster: its runtime opened (its journal trusted and
/// this instance leading), what the API shows observed step by step,
/// acted on and published, then the reads kept off the runtime's lock.
pub(super) async fn apply(
    obj: Arc<ValkeyCluster>,
    ctx: Arc<Context>,
) -> Result<Action, OperatorError> {
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
    observe_deleting(&mut rt, &ctx, &meta).await?;
    let client = ctx.deps.client.clone();
    // What each read was at: an observation read older than the journal's
    // is not journaled (`observe/freshness.rs`).
    let mut reads = Reads::new();
    observe_spec_and_requests(&mut rt, &ctx, &obj, &meta, &mut reads).await?;
    let listed = observe_pods_and_sets(&mut rt, &client, &meta, &mut reads).await?;
    super::external::observe(&mut rt, &client, &meta, &listed).await?;
    observe_versions(&mut rt, &client, &meta, &listed).await?;
    let (users, tls_pending) =
        observe_credentials_and_users(&mut rt, &ctx, &meta, &mut reads).await?;
    let backups = observe_backups(&mut rt, &client, &meta, &mut reads).await?;
    rt.act().await?;
    rt.flush_due().await?;
    rt.publish_status(obj.status.as_ref()).await?;
    ctx.defaults.settle(&meta.uid, rt.defaults_rolling());
    publish_users_and_backups(&mut rt, &client, &meta, &users, &backups).await?;
    let resync = next_resync(&rt);
    drop(rt);
    observe_drift_and_standby(&handle, &client, &meta).await?;
    if tls_pending {
        // A node still serves an old certificate: ask it again once the
        // kubelet has had time to update the mounted files.
        return Ok(Action::requeue(std::time::Duration::from_millis(
            crate::decide::RELOAD_RETRY_MS.unsigned_abs(),
        )));
    }
    Ok(Action::requeue(resync))
}

/// Pods the watch saw being deleted, journaled terminating and acted on
/// before anything else is read.
async fn observe_deleting(
    rt: &mut ClusterRuntime,
    ctx: &Context,
    meta: &ClusterMeta,
) -> Result<(), OperatorError> {
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
            rt,
            &reads,
            crate::observe::observe_terminating(&rt.state, &deleting),
        );
        if !events.is_empty() {
            rt.record(events, None).await?;
            rt.act().await?;
        }
    }
    Ok(())
}

/// The spec (through its defaults' layers, when there are some) and the
/// switchover, failover and rebalance requests; a refused spec is said
/// in an Event.
async fn observe_spec_and_requests(
    rt: &mut ClusterRuntime,
    ctx: &Context,
    obj: &ValkeyCluster,
    meta: &ClusterMeta,
    reads: &mut Reads,
) -> Result<(), OperatorError> {
    let client = &ctx.deps.client;
    // The spec and the switchover and failover requests.
    // With defaults or a plan, the spec judged is the one its layers
    // give, from the object as its user wrote it (read again, raw).
    let layered = ctx
        .defaults
        .layered(client, obj, rt.state.spec_layers.is_some())
        .await?;
    let mut events = match layered {
        None => {
            reads.object(freshness::VALKEY_CLUSTER.to_owned(), &obj.metadata);
            rt.defaults_waiting = None;
            observe_spec(&rt.state, obj)
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
    events.extend(observe_switchover_request(&rt.state, obj));
    events.extend(observe_failover_request(&rt.state, obj));
    events.extend(observe_rebalance_request(&rt.state, obj));
    events.extend(observe_restart_request(&rt.state, obj));
    // A restart asked of a cluster that acts on nothing now waits: said
    // where its user looks, once, as the request is journaled.
    let restart_waits = events.iter().find_map(|e| match e {
        Event::RestartRequestObserved {
            request: Some(request),
        } if obj.spec.paused || obj.spec.hibernated => Some(format!(
            "restart requested ({request}) waits: the cluster is {}; it is carried out once the cluster is {}",
            if obj.spec.paused { "paused" } else { "hibernated" },
            if obj.spec.paused { "resumed" } else { "woken" },
        )),
        _ => None,
    });
    let events = gated(rt, reads, events);
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
        if let Some(note) = restart_waits {
            rt.publish_event(Kind::Normal, "RestartDeferred", "Restart", note)
                .await;
        }
    }
    rt.sync_policy().await?;
    Ok(())
}

/// The pods, the StatefulSet and the Sentinel pods; then the containers
/// that fail (a restore's fetch, Valkey), said in Events.
async fn observe_pods_and_sets(
    rt: &mut ClusterRuntime,
    client: &kube::Client,
    meta: &ClusterMeta,
    reads: &mut Reads,
) -> Result<Vec<Pod>, OperatorError> {
    let ns = meta.namespace.as_str();
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
    let fetch = gated(rt, reads, fetch);
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
    let events = gated(rt, reads, events);
    let recorded = rt.record(events, None).await?;
    binding_events(rt, &recorded).await;
    // A restore container or a Valkey container that fails is the user's
    // to see (the bucket unreachable from the pods, an object gone, a
    // configuration value Valkey refuses, an image that cannot be
    // pulled): said where they look, not only in the container's log,
    // once per failure journaled. (Observed after the pods' events, so a
    // pod deleted is already no longer failing.)
    let mut failures = fetch;
    failures.extend(gated(
        rt,
        reads,
        crate::observe::observe_container_failures(&rt.state, &listed.items),
    ));
    failures.extend(gated(
        rt,
        reads,
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
    Ok(listed.items)
}

/// What each pod runs, and a new image's preflight; a refused image is
/// said in an Event.
async fn observe_versions(
    rt: &mut ClusterRuntime,
    client: &kube::Client,
    meta: &ClusterMeta,
    listed: &[Pod],
) -> Result<(), OperatorError> {
    // What each pod runs (read once per pod and image), and what the
    // preflight of a new image shows while it runs; a refusal is the
    // user's to see.
    let mut upgrade = super::upgrade::read_versions(rt.probe_client(), &rt.state, listed).await;
    upgrade.extend(
        super::upgrade::observe_preflight(client, meta, rt.probe_client(), &rt.state).await?,
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
    Ok(())
}

/// The internal Secret, the cluster's password, TLS, the ValkeyUsers and
/// what each node holds of them. Returns the users read, and whether a
/// node still serves an old certificate.
async fn observe_credentials_and_users(
    rt: &mut ClusterRuntime,
    ctx: &Context,
    meta: &ClusterMeta,
    reads: &mut Reads,
) -> Result<(Vec<ValkeyUser>, bool), OperatorError> {
    let client = &ctx.deps.client;
    // The internal Secret: the internal users' passwords (the operator
    // authenticates as its own user, and gives the Sentinels theirs) and
    // the cluster's fingerprint key, without which no password is
    // fingerprinted (its absence journaled, so that it is made).
    // Read older than the journal's, it is neither journaled nor given
    // to the operator's clients.
    let internal = super::users::read_internal(client, meta).await?;
    let internal_secret = freshness::secret(
        &crate::resources::internal_users::internal_secret_name(&meta.name),
    );
    reads.at(
        internal_secret.clone(),
        internal.resource_version.as_deref(),
    );
    let internal_stale = freshness::older(&rt.state, reads, &internal_secret);
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
            meta,
            spec: &spec,
            state: &rt.state,
            interrupt: None,
        };
        match read_password_with_meta(client, target).await {
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
                    .is_some_and(|o| freshness::older(&rt.state, reads, o));
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
    let tls_pending = super::tls::observe(client, meta, rt, reads).await?;
    // The ValkeyUsers naming the cluster, with their passwords'
    // fingerprints, and the cluster's own password (kept as last read
    // when it could not be read now).
    let super::users::UsersRead {
        users,
        mut records,
        connections,
    } = super::users::read_users(
        client,
        meta,
        &ctx.user_secrets,
        &own_secrets,
        &rt.state,
        &mut prints,
        reads,
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
    let mut events = crate::observe::users::observe_users(&rt.state, &records);
    events.extend(crate::observe::users::observe_connections(
        &rt.state,
        &connections,
    ));
    let events = gated(rt, reads, events);
    rt.record(events, None).await?;
    // What each answering node holds of those users.
    let acls =
        super::users::read_node_acls(rt.probe_client(), &rt.state, rt.fingerprint_key()).await;
    rt.record(acls, None).await?;
    Ok((users, tls_pending))
}

/// The ValkeyBackups naming the cluster.
async fn observe_backups(
    rt: &mut ClusterRuntime,
    client: &kube::Client,
    meta: &ClusterMeta,
    reads: &mut Reads,
) -> Result<Vec<ValkeyBackup>, OperatorError> {
    // The ValkeyBackups naming the cluster.
    let spec_now = rt.state.desired_spec().and_then(Result::ok);
    let (backups, backup_records) =
        super::backups::read_backups(client, meta, spec_now.as_ref(), reads).await?;
    let mut events = crate::observe::backup::observe_backups(&rt.state, &backup_records);
    let archive =
        crate::observe::backup::archive_target(spec_now.as_ref(), &meta.namespace, &meta.name);
    events.extend(crate::observe::backup::observe_archive_target(
        &rt.state, archive,
    ));
    let events = gated(rt, reads, events);
    rt.record(events, None).await?;
    Ok(backups)
}

/// The ValkeyUsers' and ValkeyBackups' statuses, by the leader only; a
/// user not applied or a backup failed is said in an Event.
async fn publish_users_and_backups(
    rt: &mut ClusterRuntime,
    client: &kube::Client,
    meta: &ClusterMeta,
    users: &[ValkeyUser],
    backups: &[ValkeyBackup],
) -> Result<(), OperatorError> {
    if rt.leading() {
        for (user, message) in
            super::users::publish_statuses(client, meta, &rt.state, users).await?
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
            super::backups::publish_statuses(client, &meta.namespace, &rt.state, backups).await?
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
    Ok(())
}

/// When to reconcile again with nothing else waking the cluster.
fn next_resync(rt: &ClusterRuntime) -> Duration {
    // The next deadline (a certificate falling due, a schedule's fire, a
    // retention age, a rotation window), so that it is journaled when it
    // comes, and the end of a back-off after a failure, so that the
    // decision is taken again then: an idle cluster has no other traffic
    // to wake it, and a failed first effect must not wait minutes for the
    // resync before it is tried again.
    [
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
    .map_or(RESYNC, |left| left.min(RESYNC))
}

/// Drift of the objects the operator made, and a standby's source and
/// lag: read without the runtime's lock, so that no decision waits on
/// them; what is journaled is acted on at once.
async fn observe_drift_and_standby(
    handle: &Arc<Mutex<ClusterRuntime>>,
    client: &kube::Client,
    meta: &ClusterMeta,
) -> Result<(), OperatorError> {
    // Drift: what someone else changed in the objects the operator made,
    // read last and without the cluster's runtime, so that no decision (a
    // failover the prober journals meanwhile) waits on these reads; what
    // is journaled is acted on at once (the objects applied again).
    let owned = owned_objects(client, meta).await?;
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
        let (read, bound) = super::standby::read_standby(client, meta, &valkey, watched).await;
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
    Ok(())
}
