//! `ClusterRuntime`: one cluster's journal stream, its projection, and the
//! step every trigger runs — record observations, then decide and act
//! until nothing is left to do.
//!
//! The projection is only ever changed by folding events this runtime
//! appended (append first, then fold): what the operator believes is
//! exactly what the journal says.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use logbook_crds::{ValkeyCluster, ValkeyClusterSpec, ValkeyClusterStatus};
use logbook_journal::reader::{ReadError, load_state, load_state_from_start};
use logbook_journal::{
    ClusterState, Envelope, Event, Intent, NewEvent, PlannedIntent, Policy, SledStore, StreamId,
    StreamWriter,
};
use tokio::time::Instant;
use uuid::Uuid;

use super::error::OperatorError;
use super::events::{Kind, Publisher};
use crate::actuate::{ActError, Done, Executor, Target};
use crate::decide::decide;
use crate::decide::status::{StatusContext, render_status};
use crate::resources::ClusterMeta;
use crate::valkey::{Password, ValkeyClient};

/// Decide-and-act rounds per trigger, a guard against a decision that
/// its own outcome does not settle.
const MAX_STEPS: usize = 16;
/// First wait after a failed intent before deciding again; doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait after failed intents.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Events between snapshots of the projection: a restart folds at most
/// this many events after the snapshot.
const SNAPSHOT_EVERY: u64 = 1_000;

/// One cluster's runtime.
pub struct ClusterRuntime {
    /// Its identity.
    pub meta: ClusterMeta,
    writer: StreamWriter<SledStore>,
    /// The projection of its stream.
    pub state: ClusterState,
    executor: Executor,
    probe_client: ValkeyClient,
    features: BTreeMap<String, bool>,
    events: Publisher,
    reference: ObjectReference,
    client: kube::Client,
    backoff: Option<(Instant, Duration)>,
    last_status: Option<ValkeyClusterStatus>,
    /// The data-plane password once read (`Some(None)`: auth is off).
    password: Option<Option<Password>>,
    /// Intents carried out so far: the prober discards probe results that
    /// raced with an action (see [`ClusterRuntime::actions`]).
    actions: u64,
}

impl std::fmt::Debug for ClusterRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRuntime")
            .field("meta", &self.meta)
            .field("last_seq", &self.state.last_seq)
            .finish_non_exhaustive()
    }
}

/// What a runtime needs from the operator.
#[derive(Clone)]
pub struct RuntimeDeps {
    /// The API client.
    pub client: kube::Client,
    /// The journal.
    pub store: SledStore,
    /// Kubernetes Events.
    pub events: Publisher,
    /// Operator feature flags, journaled in each cluster's policy.
    pub features: BTreeMap<String, bool>,
}

impl ClusterRuntime {
    /// Loads the cluster's stream (snapshot plus tail, or from the start if
    /// the snapshot is of an older format) and records every intent found
    /// in flight as abandoned: after a restart nothing is resumed blindly;
    /// `decide` looks again at fresh observations.
    ///
    /// # Errors
    /// Journal read or append errors.
    pub async fn open(
        deps: &RuntimeDeps,
        meta: ClusterMeta,
        reference: ObjectReference,
    ) -> Result<Self, OperatorError> {
        let cluster = format!("{}/{}", meta.namespace, meta.name);
        let stream = StreamId::new(meta.uid.clone()).map_err(|e| OperatorError::StreamId {
            cluster: cluster.clone(),
            reason: e.to_string(),
        })?;
        let state = match load_state(&deps.store, &stream).await {
            Ok(loaded) => loaded.state,
            Err(ReadError::Snapshot(err)) => {
                tracing::warn!(%cluster, %err, "snapshot unreadable; folding the journal from the start");
                load_state_from_start(&deps.store, &stream)
                    .await
                    .map_err(|source| OperatorError::Load {
                        cluster: cluster.clone(),
                        source,
                    })?
            }
            Err(source) => return Err(OperatorError::Load { cluster, source }),
        };
        let writer = StreamWriter::open(deps.store.clone(), stream, state.epoch)
            .await
            .map_err(|source| OperatorError::Append {
                cluster: cluster.clone(),
                source,
            })?;
        let timeouts = crate::valkey::Timeouts::default();
        let mut runtime = Self {
            meta,
            writer,
            state,
            executor: Executor::new(deps.client.clone(), ValkeyClient::new(timeouts, None)),
            probe_client: ValkeyClient::new(timeouts, None),
            features: deps.features.clone(),
            events: deps.events.clone(),
            reference,
            client: deps.client.clone(),
            backoff: None,
            last_status: None,
            password: None,
            actions: 0,
        };
        let abandoned: Vec<Event> = runtime
            .state
            .in_flight
            .keys()
            .map(|id| Event::IntentAbandoned {
                intent_id: *id,
                reason: "found in flight after an operator restart; deciding again from fresh observations".to_owned(),
            })
            .collect();
        if !abandoned.is_empty() {
            tracing::info!(cluster = %runtime.cluster(), count = abandoned.len(), "abandoning intents left in flight");
            runtime.record(abandoned, None).await?;
        }
        Ok(runtime)
    }

    /// `namespace/name`.
    pub fn cluster(&self) -> String {
        format!("{}/{}", self.meta.namespace, self.meta.name)
    }

    /// The client used for probes (shorter timeouts than admin commands).
    pub fn probe_client(&self) -> &ValkeyClient {
        &self.probe_client
    }

    /// Replaces the clients' password when it changed.
    pub async fn set_password(&mut self, password: Option<Password>) {
        if self.password.as_ref() == Some(&password) {
            return;
        }
        self.executor.valkey().set_password(password.clone()).await;
        self.probe_client.set_password(password.clone()).await;
        self.password = Some(password);
    }

    /// How many intents this runtime has carried out. A probe round that
    /// started before an action and ends after it reports what the servers
    /// said before the action (a demoted primary still "primary", a
    /// promoted replica still "replica"); the prober compares this count
    /// across its round and drops such stale results.
    pub fn actions(&self) -> u64 {
        self.actions
    }

    /// Whether the password was loaded at least once.
    pub fn password_known(&self) -> bool {
        self.password.is_some()
    }

    /// Uses `timeouts` for probes (derived from the probe interval).
    pub fn set_probe_timeouts(&mut self, timeouts: crate::valkey::Timeouts) {
        if self.probe_client.timeouts() != timeouts {
            self.probe_client = ValkeyClient::new(timeouts, self.password.clone().flatten());
        }
    }

    /// Appends `events` (caused by `cause`) and folds them.
    ///
    /// # Errors
    /// The append failed; the projection is unchanged.
    pub async fn record(
        &mut self,
        events: Vec<Event>,
        cause: Option<Uuid>,
    ) -> Result<Vec<Envelope>, OperatorError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let batch = events
            .into_iter()
            .map(|e| {
                let event = NewEvent::now(e);
                match cause {
                    Some(c) => event.caused_by(c),
                    None => event,
                }
            })
            .collect();
        let cluster = self.cluster();
        let envelopes = self
            .writer
            .append(batch)
            .await
            .map_err(|source| OperatorError::Append { cluster, source })?;
        for envelope in &envelopes {
            self.state.apply(envelope);
        }
        self.maybe_snapshot().await;
        Ok(envelopes)
    }

    /// Stores a snapshot every [`SNAPSHOT_EVERY`] events and journals that
    /// it did. A failed snapshot costs only a longer fold at the next
    /// start, so it is logged, not raised.
    async fn maybe_snapshot(&mut self) {
        let covered = self.state.last_snapshot.map_or(0, |(seq, _)| seq);
        if self.state.last_seq.saturating_sub(covered) < SNAPSHOT_EVERY {
            return;
        }
        let (seq, hash) = (self.state.last_seq, self.state.last_hash);
        let saved =
            logbook_journal::snapshot::save(self.writer.store(), self.writer.stream(), &self.state)
                .await;
        if let Err(err) = saved {
            tracing::warn!(cluster = %self.cluster(), %err, "cannot store a snapshot");
            return;
        }
        let appended = self
            .writer
            .append(vec![NewEvent::now(Event::SnapshotTaken { seq, hash })])
            .await;
        match appended {
            Ok(envelopes) => {
                for envelope in &envelopes {
                    self.state.apply(envelope);
                }
            }
            Err(err) => {
                tracing::warn!(cluster = %self.cluster(), %err, "cannot journal a snapshot")
            }
        }
    }

    /// The policy this cluster runs under: the operator's flags with the
    /// spec's probe settings.
    fn policy_for(&self, spec: &ValkeyClusterSpec) -> Policy {
        Policy {
            probe_interval_ms: u64::try_from(spec.failover.probe_interval_milliseconds)
                .unwrap_or(500),
            failure_threshold: u32::try_from(spec.failover.failure_threshold).unwrap_or(3),
            features: self.features.clone(),
        }
    }

    /// Journals the policy when it differs from the one in force.
    ///
    /// # Errors
    /// Append errors.
    pub async fn sync_policy(&mut self) -> Result<(), OperatorError> {
        let Some(Ok(spec)) = self.state.desired_spec() else {
            return Ok(());
        };
        let policy = self.policy_for(&spec);
        if self.state.policy.as_ref() != Some(&policy) {
            self.record(vec![Event::PolicyRecorded { policy }], None)
                .await?;
        }
        Ok(())
    }

    /// Decides and acts until `decide` asks for nothing (or a failure
    /// backs off). Each decision is journaled before any of its intents
    /// runs; each intent's facts and outcome are journaled as it ends.
    ///
    /// # Errors
    /// Journal append errors (the intents' own failures are outcomes).
    pub async fn act(&mut self) -> Result<(), OperatorError> {
        if self
            .backoff
            .is_some_and(|(until, _)| Instant::now() < until)
        {
            return Ok(());
        }
        for _ in 0..MAX_STEPS {
            let policy = self.state.policy.clone().unwrap_or_default();
            let decisions = decide(&self.state, self.state.last_at, &policy);
            if decisions.is_empty() {
                return Ok(());
            }
            let planned: Vec<PlannedIntent> = decisions
                .into_iter()
                .map(|d| PlannedIntent {
                    intent_id: Uuid::now_v7(),
                    intent: d.intent,
                    reason: d.reason,
                })
                .collect();
            let decided = self
                .record(
                    vec![Event::Decided {
                        intents: planned.clone(),
                    }],
                    None,
                )
                .await?;
            let cause = decided.first().map(|e| e.id);
            self.announce_decision(&planned).await;
            if !self.execute_all(&planned, cause).await? {
                let wait = self
                    .backoff
                    .map_or(FIRST_BACKOFF, |(_, d)| (d * 2).min(MAX_BACKOFF));
                self.backoff = Some((Instant::now() + wait, wait));
                return Ok(());
            }
            self.backoff = None;
        }
        tracing::warn!(cluster = %self.cluster(), "still deciding after {MAX_STEPS} steps; continuing at the next trigger");
        Ok(())
    }

    /// Runs `planned` in order; after a failure the rest are abandoned.
    /// Returns whether all succeeded.
    async fn execute_all(
        &mut self,
        planned: &[PlannedIntent],
        cause: Option<Uuid>,
    ) -> Result<bool, OperatorError> {
        let Some(Ok(spec)) = self.state.desired_spec() else {
            return Ok(false);
        };
        let mut failed: Option<String> = None;
        for p in planned {
            if let Some(why) = &failed {
                self.record(
                    vec![Event::IntentAbandoned {
                        intent_id: p.intent_id,
                        reason: format!("an earlier intent of the same decision failed: {why}"),
                    }],
                    cause,
                )
                .await?;
                continue;
            }
            let target = Target {
                meta: &self.meta,
                spec: &spec,
                state: &self.state,
            };
            let result = self.executor.execute(&p.intent, target).await;
            self.actions = self.actions.wrapping_add(1);
            match result {
                Ok(done) => self.succeeded(p, done, cause).await?,
                Err(err) => {
                    let message = err.to_string();
                    self.failed(p, &err, cause).await?;
                    failed = Some(message);
                }
            }
        }
        Ok(failed.is_none())
    }

    async fn succeeded(
        &mut self,
        p: &PlannedIntent,
        done: Done,
        cause: Option<Uuid>,
    ) -> Result<(), OperatorError> {
        if let Some(password) = done.password {
            self.set_password(Some(password)).await;
        }
        let mut events = done.events;
        tracing::info!(cluster = %self.cluster(), intent = ?p.intent, detail = %done.detail, "intent succeeded");
        events.push(Event::IntentSucceeded {
            intent_id: p.intent_id,
            detail: done.detail.clone(),
        });
        self.record(events, cause).await?;
        if matches!(
            p.intent,
            Intent::PromoteReplica { .. } | Intent::Switchover { .. } | Intent::RollPod { .. }
        ) {
            self.publish_event(
                Kind::Normal,
                intent_name(&p.intent),
                "Succeeded",
                done.detail,
            )
            .await;
        }
        Ok(())
    }

    async fn failed(
        &mut self,
        p: &PlannedIntent,
        err: &ActError,
        cause: Option<Uuid>,
    ) -> Result<(), OperatorError> {
        tracing::warn!(cluster = %self.cluster(), intent = ?p.intent, error = %err, "intent failed");
        self.record(
            vec![Event::IntentFailed {
                intent_id: p.intent_id,
                error: err.to_string(),
                retryable: err.is_retryable(),
            }],
            cause,
        )
        .await?;
        self.publish_event(
            Kind::Warning,
            intent_name(&p.intent),
            "Failed",
            err.to_string(),
        )
        .await;
        Ok(())
    }

    async fn announce_decision(&self, planned: &[PlannedIntent]) {
        let Some(first) = planned.first() else {
            return;
        };
        let what: Vec<String> = planned.iter().map(|p| describe_intent(&p.intent)).collect();
        let note = format!("{}: {}", what.join(", "), first.reason.detail);
        self.publish_event(Kind::Normal, intent_name(&first.intent), "Decided", note)
            .await;
    }

    /// Publishes a Kubernetes Event on the ValkeyCluster (best effort).
    async fn publish_event(&self, kind: Kind, reason: &str, action: &str, note: String) {
        self.events
            .publish(&self.reference, kind, reason, action, note)
            .await;
    }

    /// Writes the status rendered from the projection when it differs from
    /// the last one written (and from what `current` shows), keeping each
    /// condition's transition time while its status is unchanged.
    ///
    /// # Errors
    /// API errors.
    pub async fn publish_status(
        &mut self,
        current: Option<&ValkeyClusterStatus>,
        backend: &str,
    ) -> Result<(), OperatorError> {
        if self.state.deleted {
            return Ok(());
        }
        let ctx = StatusContext {
            name: &self.meta.name,
            namespace: &self.meta.namespace,
            backend,
        };
        let mut status = render_status(&self.state, &ctx);
        let previous = self.last_status.as_ref().or(current);
        if let Some(previous) = previous {
            for condition in &mut status.conditions {
                if let Some(old) = previous
                    .conditions
                    .iter()
                    .find(|c| c.type_ == condition.type_ && c.status == condition.status)
                {
                    condition.last_transition_time = old.last_transition_time.clone();
                }
            }
        }
        if previous == Some(&status) {
            self.last_status = Some(status);
            return Ok(());
        }
        let api: Api<ValkeyCluster> = Api::namespaced(self.client.clone(), &self.meta.namespace);
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(
                &self.meta.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                self.last_status = Some(status);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(OperatorError::Kube {
                what: format!("writing the status of {}", self.cluster()),
                source,
            }),
        }
    }
}

/// The intent's catalog name, as an Event reason.
pub fn intent_name(intent: &Intent) -> &'static str {
    match intent {
        Intent::ApplyResources { .. } => "ApplyResources",
        Intent::PromoteReplica { .. } => "PromoteReplica",
        Intent::RepointReplica { .. } => "RepointReplica",
        Intent::RollPod { .. } => "RollPod",
        Intent::FenceNode { .. } => "FenceNode",
        Intent::AddNode { .. } => "AddNode",
        Intent::ForgetNode { .. } => "ForgetNode",
        Intent::MigrateSlots { .. } => "MigrateSlots",
        Intent::UpdateStatus => "UpdateStatus",
        Intent::SetRoleLabels { .. } => "SetRoleLabels",
        Intent::PublishBootConfig { .. } => "PublishBootConfig",
        Intent::Switchover { .. } => "Switchover",
        Intent::ClearSwitchoverRequest => "ClearSwitchoverRequest",
    }
}

/// One line per intent, for Events and logs.
pub fn describe_intent(intent: &Intent) -> String {
    match intent {
        Intent::ApplyResources { generation } => format!("apply generation {generation}"),
        Intent::PromoteReplica { pod, .. } => format!("promote {pod}"),
        Intent::RepointReplica { pod, to } => format!("repoint {pod} to {to}"),
        Intent::RollPod { pod, .. } => format!("roll {pod}"),
        Intent::FenceNode { pod } => format!("fence {pod}"),
        Intent::SetRoleLabels { primary } => {
            format!("label {} primary", primary.as_deref().unwrap_or("no pod"))
        }
        Intent::PublishBootConfig { primary, .. } => {
            format!(
                "boot replicas of {}",
                primary.as_deref().unwrap_or("nobody")
            )
        }
        Intent::Switchover { from, to } => format!("switch over {from} -> {to}"),
        Intent::ClearSwitchoverRequest => "clear the switchover request".to_owned(),
        other => intent_name(other).to_owned(),
    }
}
