//! `ClusterRuntime`: one cluster's journal stream, its projection, and the
//! step every trigger runs — record observations, then decide and act
//! until nothing is left to do.
//!
//! The projection is only ever changed by folding events this runtime
//! appended (append first, then fold): what the operator believes is
//! exactly what the journal says.
//!
//! Here: opening, leadership and the policy. Its other concerns each have
//! a file: [`journaling`] (staging, group commit, snapshots), [`acting`]
//! (decide, write-ahead, execute, outcomes) and [`publishing`] (status
//! and Events).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use logbook_crds::v1alpha1::CONDITION_DEGRADED;
use logbook_crds::{ValkeyCluster, ValkeyClusterSpec, ValkeyClusterStatus};
use logbook_journal::reader::{ReadError, load_state, load_state_from_start, read_envelopes};
use logbook_journal::{
    ClusterState, Envelope, Event, Head, Intent, JournalStore, NewEvent, PlannedIntent, Policy,
    SledStore, StreamId, Timestamp,
};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

mod acting;
mod journaling;
mod publishing;

use super::error::OperatorError;
use super::events::{Kind, Publisher};
use super::journal::ClusterJournal;
use super::span::ClusterSpan;
use crate::actuate::{ActError, Done, Executor, Target};
use crate::decide::status::{
    REASON_DATA_LOST, REASON_POD_NOT_EXITING, REASON_QUORUM_LOST, REASON_RESHARD_FAILING,
    StatusContext, render_status,
};
use crate::decide::{already_done, decide, promotion_found_done};
use crate::journal_store::{AnyStore, ConfigMapStore, JournalBackend};
use crate::leader::Leadership;
use crate::metrics::{Answer, ClusterMetrics, Metrics};
use crate::resources::{ClusterMeta, labels};
use crate::valkey::{Password, ValkeyClient};

/// Decide-and-act rounds per trigger, a guard against a decision that
/// its own outcome does not settle. (`replay audit` knows it: after as
/// many decisions in a row, the runtime waits for its next trigger.)
const MAX_STEPS: usize = 16;
/// First wait after a failed intent before deciding again; doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait after failed intents.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long after an action the prober looks closely (see
/// [`ClusterRuntime::settling`]).
const SETTLING: Duration = Duration::from_secs(10);

/// How often pods are probed while settling, at most.
pub const SETTLING_INTERVAL: Duration = Duration::from_millis(100);
/// Events between snapshots of the projection: a restart folds at most
/// this many events after the snapshot.
const SNAPSHOT_EVERY: u64 = 1_000;
/// How long a runtime fenced by another writer stays quiet before it may
/// take the stream over again (one default renew period).
pub(super) const FENCED_PAUSE: Duration = Duration::from_secs(5);

/// Where each cluster's journal lives, and how often it is written.
#[derive(Clone)]
pub struct JournalFactory {
    /// The backend chosen with `--journal`.
    pub backend: JournalBackend,
    /// The API client (ConfigMap journals).
    pub client: kube::Client,
    /// The local store (`sled` and `both`).
    pub sled: Option<SledStore>,
    /// Shortest interval between two commits of observations (group
    /// commit); decisions are written through.
    pub group_commit: Duration,
}

impl JournalFactory {
    /// The store of `meta`'s journal: ConfigMaps in its namespace labelled
    /// with its name, owned by it unless the journal is retained on delete.
    ///
    /// # Errors
    /// [`OperatorError::Config`] when the backend needs a sled store that
    /// was not opened.
    pub fn store_for(&self, meta: &ClusterMeta, retain: bool) -> Result<AnyStore, OperatorError> {
        let config_maps = || {
            let store = ConfigMapStore::new(self.client.clone(), &meta.namespace)
                .with_labels(BTreeMap::from([(
                    labels::CLUSTER.to_owned(),
                    meta.name.clone(),
                )]))
                .with_annotations(BTreeMap::from([(
                    labels::OWNED_BY.to_owned(),
                    meta.name.clone(),
                )]));
            if retain {
                store
            } else {
                store.with_owner(OwnerReference {
                    controller: None,
                    block_owner_deletion: None,
                    ..meta.owner_reference()
                })
            }
        };
        let sled = || {
            self.sled.clone().ok_or_else(|| {
                OperatorError::Config(format!(
                    "the {} journal needs a local directory",
                    self.backend
                ))
            })
        };
        Ok(match self.backend {
            JournalBackend::Sled => AnyStore::Sled(sled()?),
            JournalBackend::ConfigMap => AnyStore::ConfigMap(config_maps()),
            JournalBackend::Both => AnyStore::Both {
                cluster: config_maps(),
                local: sled()?,
            },
        })
    }
}

/// One cluster's runtime.
pub struct ClusterRuntime {
    /// Its identity.
    pub meta: ClusterMeta,
    journal: ClusterJournal,
    /// The projection of its stream: committed events, then staged ones.
    pub state: ClusterState,
    executor: Executor,
    probe_client: ValkeyClient,
    features: BTreeMap<String, bool>,
    events: Publisher,
    reference: ObjectReference,
    client: kube::Client,
    backoff: Option<(Instant, Duration)>,
    last_status: Option<ValkeyClusterStatus>,
    /// A change of the defaults waiting for its turn, and why (shown in
    /// the status; not journaled until it is taken).
    pub(in crate::operator) defaults_waiting: Option<String>,
    /// The data-plane password once read (`Some(None)`: auth is off).
    password: Option<Option<Password>>,
    /// The password last read from the Secret (differs from `password` in
    /// topology Sentinel after a change: see [`Self::set_password`]).
    password_read: Option<Option<Password>>,
    /// Whether the clients speak TLS (set from the certificate Secret).
    tls_ready: bool,
    /// The TLS settings the clients use, for the backup streams.
    tls_settings: Option<crate::valkey::TlsSettings>,
    /// The internal users' passwords, by user name (the backup streams
    /// authenticate as the replication user).
    internal: BTreeMap<String, Password>,
    /// The cluster's fingerprint key, as last read (the probe rounds
    /// digest the ACL users they read with it).
    fingerprint_key: Option<crate::valkey::FingerprintKey>,
    /// The CA (PEM) the clients trust, and the one before it.
    tls_ca: Option<String>,
    tls_ca_previous: Option<String>,
    /// Intents carried out so far: the prober discards probe results that
    /// raced with an action (see [`ClusterRuntime::actions`]).
    actions: u64,
    /// When the last intent was carried out (see
    /// [`ClusterRuntime::settling`]).
    last_action: Option<Instant>,
    leadership: watch::Receiver<Leadership>,
    /// The epoch this runtime took the stream over at (recorded with
    /// `OperatorStarted`); it writes only while that epoch leads.
    taken_over: Option<u64>,
    /// Why and when this runtime stopped writing (another writer extended
    /// the stream): it must be reloaded before it writes again, and waits
    /// [`FENCED_PAUSE`] first, the time the Lease needs to say who leads.
    fenced: Option<(String, Instant)>,
    /// Intents found without an outcome at the takeover wait for a first
    /// full probe round, then are completed or abandoned.
    resolve_pending: bool,
    probed: bool,
    instance: String,
    retain: bool,
    max_events: u64,
    /// This cluster's metrics (published as events are committed).
    metrics: ClusterMetrics,
    /// Makes the spans its work logs in, at the seq of the last event
    /// folded.
    log: ClusterSpan,
}

impl std::fmt::Debug for ClusterRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRuntime")
            .field("meta", &self.meta)
            .field("last_seq", &self.state.last_seq)
            .field("taken_over", &self.taken_over)
            .finish_non_exhaustive()
    }
}

/// What a runtime needs from the operator.
#[derive(Clone)]
pub struct RuntimeDeps {
    /// The API client.
    pub client: kube::Client,
    /// Where journals live.
    pub journals: JournalFactory,
    /// Kubernetes Events.
    pub events: Publisher,
    /// Operator feature flags, journaled in each cluster's policy.
    pub features: BTreeMap<String, bool>,
    /// Whether this instance leads, and at which epoch.
    pub leadership: watch::Receiver<Leadership>,
    /// This instance's name, journaled in `OperatorStarted`.
    pub instance: String,
    /// The operator's metrics.
    pub metrics: Metrics,
}

impl RuntimeDeps {
    /// The dependencies of runtimes run outside the operator's controller
    /// (benchmarks, tools): Events are published as `instance`.
    pub fn new(
        client: kube::Client,
        journals: JournalFactory,
        leadership: watch::Receiver<Leadership>,
        instance: String,
    ) -> Self {
        Self {
            events: Publisher::new(client.clone(), instance.clone()),
            client,
            journals,
            features: BTreeMap::new(),
            leadership,
            instance,
            metrics: Metrics::new(),
        }
    }
}

/// Loads a stream's projection: snapshot plus tail, or from the start when
/// the snapshot is unreadable (an older format, or damaged).
async fn load(
    store: &AnyStore,
    stream: &StreamId,
    cluster: &str,
) -> Result<ClusterState, OperatorError> {
    // ConfigMap journals are read at one commit point: the head is fetched
    // once for the whole load instead of once per read.
    match store.config_maps() {
        Some(config_maps) => {
            let pinned = config_maps
                .pin(stream)
                .await
                .map_err(|source| OperatorError::Load {
                    cluster: cluster.to_owned(),
                    source: Box::new(ReadError::Store(source)),
                })?;
            load_from(&pinned, stream, cluster).await
        }
        None => load_from(store, stream, cluster).await,
    }
}

async fn load_from<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    cluster: &str,
) -> Result<ClusterState, OperatorError> {
    match load_state(store, stream).await {
        Ok(loaded) => Ok(loaded.state),
        Err(ReadError::Snapshot(err)) => {
            tracing::warn!(%err, "snapshot unreadable; folding the journal from the start");
            load_state_from_start(store, stream)
                .await
                .map_err(|source| OperatorError::Load {
                    cluster: cluster.to_owned(),
                    source: Box::new(source),
                })
        }
        Err(source) => Err(OperatorError::Load {
            cluster: cluster.to_owned(),
            source: Box::new(source),
        }),
    }
}

fn head_of(state: &ClusterState) -> Head {
    Head {
        seq: state.last_seq,
        hash: state.last_hash,
    }
}

impl ClusterRuntime {
    /// Loads the cluster's stream (snapshot plus tail). Nothing is written:
    /// a follower keeps it warm with [`ClusterRuntime::refresh`]; a leader
    /// takes it over with [`ClusterRuntime::sync_leadership`].
    ///
    /// # Errors
    /// Journal read errors ([`OperatorError::Load`] when it is damaged).
    pub async fn open(
        deps: &RuntimeDeps,
        meta: ClusterMeta,
        reference: ObjectReference,
        retain: bool,
    ) -> Result<Self, OperatorError> {
        let cluster = format!("{}/{}", meta.namespace, meta.name);
        let stream = StreamId::new(meta.uid.clone()).map_err(|e| OperatorError::StreamId {
            cluster: cluster.clone(),
            reason: e.to_string(),
        })?;
        let metrics = ClusterMetrics::new(deps.metrics.clone(), &meta.namespace, &meta.name);
        let store = deps
            .journals
            .store_for(&meta, retain)?
            .with_writes(metrics.configmap_writes());
        let state = load(&store, &stream, &cluster).await?;
        let log = ClusterSpan::new(&meta.namespace, &meta.name, state.last_seq);
        let journal = ClusterJournal::new(
            store,
            stream,
            head_of(&state),
            state.epoch,
            deps.journals.group_commit,
        );
        let timeouts = crate::valkey::Timeouts::default();
        Ok(Self {
            meta,
            journal,
            state,
            executor: Executor::new(deps.client.clone(), ValkeyClient::new(timeouts, None)),
            probe_client: ValkeyClient::new(timeouts, None),
            features: deps.features.clone(),
            events: deps.events.clone(),
            reference,
            client: deps.client.clone(),
            backoff: None,
            last_status: None,
            defaults_waiting: None,
            password: None,
            password_read: None,
            tls_ready: false,
            tls_settings: None,
            internal: BTreeMap::new(),
            fingerprint_key: None,
            tls_ca: None,
            tls_ca_previous: None,
            actions: 0,
            last_action: None,
            leadership: deps.leadership.clone(),
            taken_over: None,
            fenced: None,
            resolve_pending: false,
            probed: false,
            instance: deps.instance.clone(),
            retain,
            max_events: u64::try_from(logbook_crds::v1alpha1::defaults::JOURNAL_MAX_EVENTS)
                .unwrap_or(u64::MAX),
            metrics,
            log,
        }
        .resumed())
    }

    /// Follows failovers from the loaded projection on.
    fn resumed(mut self) -> Self {
        self.metrics.discard(&self.state);
        self
    }

    /// Makes the spans of this cluster's work (`namespace`, `name`, and the
    /// `seq` of the last event of its projection), without its lock.
    pub fn log(&self) -> &ClusterSpan {
        &self.log
    }

    /// `namespace/name`.
    pub fn cluster(&self) -> String {
        format!("{}/{}", self.meta.namespace, self.meta.name)
    }

    /// The journal backend's name (for `status.journal.backend`).
    pub fn backend(&self) -> &'static str {
        self.journal.store().backend().as_str()
    }

    /// Store appends this runtime made.
    pub const fn commits(&self) -> u64 {
        self.journal.commits()
    }

    /// Follows the spec's journal settings: the owner reference (unless
    /// retained on delete) and the compaction bound.
    ///
    /// # Errors
    /// [`OperatorError::Config`] (a backend without its store).
    pub fn set_journal_spec(
        &mut self,
        factory: &JournalFactory,
        retain: bool,
        max_events: i64,
    ) -> Result<(), OperatorError> {
        self.max_events = journaling::events_kept(max_events);
        if retain != self.retain {
            let store = factory
                .store_for(&self.meta, retain)?
                .with_writes(self.metrics.configmap_writes());
            self.journal.set_store(store);
            self.retain = retain;
        }
        Ok(())
    }

    /// Whether this runtime may write and act now: its instance leads at
    /// the epoch it took the stream over at, and no other writer fenced it.
    pub fn leading(&self) -> bool {
        self.fenced.is_none()
            && self.taken_over.is_some()
            && self.leadership.borrow().epoch() == self.taken_over
    }

    /// Why this runtime stopped writing, if it did.
    pub fn fenced(&self) -> Option<&str> {
        self.fenced.as_ref().map(|(why, _)| why.as_str())
    }

    /// Catches the projection up with the store (a follower keeping warm,
    /// or a leader before it takes over): folds the events appended since,
    /// or reloads when its own uncommitted events or a compaction stand in
    /// the way.
    ///
    /// # Errors
    /// Journal read errors.
    pub async fn refresh(&mut self) -> Result<(), OperatorError> {
        let cluster = self.cluster();
        let store = self.journal.store().clone();
        let stream = self.journal.stream().clone();
        if !self.journal.has_staged() {
            let durable = head_of(&self.state);
            let head = store
                .head(&stream)
                .await
                .map_err(|source| OperatorError::Load {
                    cluster: cluster.clone(),
                    source: Box::new(ReadError::Store(source)),
                })?;
            if head == durable {
                self.journal.reset(durable);
                self.followed();
                return Ok(());
            }
            let tail = if head.seq > durable.seq {
                read_envelopes(&store, &stream, durable.next_seq(), durable.hash, head.seq).await
            } else {
                Ok(Vec::new())
            };
            match tail {
                Ok(envelopes) if !envelopes.is_empty() && self.state.last_seq < head.seq => {
                    for envelope in &envelopes {
                        self.state.apply(envelope);
                    }
                    if head_of(&self.state) == head {
                        self.journal.reset(head);
                        self.followed();
                        return Ok(());
                    }
                    tracing::info!(
                        seq = self.state.last_seq,
                        head = head.seq,
                        "the journal's tail does not end at its head; reloading it"
                    );
                }
                Ok(_) => {
                    tracing::info!(
                        seq = self.state.last_seq,
                        head = head.seq,
                        "the journal's head is behind this projection; reloading it"
                    );
                }
                Err(ReadError::Store(source)) => {
                    return Err(OperatorError::Load {
                        cluster,
                        source: Box::new(ReadError::Store(source)),
                    });
                }
                Err(err) => {
                    tracing::info!(seq = self.state.last_seq, %err, "cannot continue the projection from the store; reloading it");
                }
            }
        }
        self.state = load(&store, &stream, &cluster).await?;
        self.journal.reset(head_of(&self.state));
        self.followed();
        Ok(())
    }

    /// The projection was caught up with the store (or reloaded): what was
    /// staged is gone, and new spans name the new seq.
    fn followed(&mut self) {
        self.metrics.discard(&self.state);
        self.log.set_seq(self.state.last_seq);
    }

    /// Follows this instance's leadership: when it leads at an epoch this
    /// runtime has not taken over at, catches up with the store, records
    /// `OperatorStarted` (with the gap since the stream's last event) and
    /// marks the intents found without an outcome for resolution. Returns
    /// whether this runtime may write and act.
    ///
    /// # Errors
    /// Journal read or append errors.
    pub async fn sync_leadership(&mut self) -> Result<bool, OperatorError> {
        let Some(epoch) = self.leadership.borrow().epoch() else {
            // The lead is lost: a decision it cut is recorded by a
            // takeover when it comes back (see `orphans_found`).
            self.orphans_found();
            return Ok(false);
        };
        if self.fenced.is_none() && self.taken_over == Some(epoch) {
            return Ok(true);
        }
        if self
            .fenced
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < FENCED_PAUSE)
        {
            return Ok(false);
        }
        // A different term, or a conflict: what this runtime staged was
        // never committed and may be stale, yet the projection folded it.
        // `refresh` rebuilds the projection from the store when events are
        // staged, then drops them. (Dropping them first would leave the
        // projection's head on an event the store never took: when the
        // other writer had appended as many events, the next append would
        // chain onto that phantom hash and break the stored chain.)
        self.refresh().await?;
        // The term may have ended while the store was read (a renewal
        // starved on a busy machine steps down, and the same epoch can be
        // renewed a moment later): the takeover is then recorded when the
        // lead is back, never marked done without its `OperatorStarted`.
        if self.leadership.borrow().epoch() != Some(epoch) {
            return Ok(false);
        }
        self.journal.set_epoch(epoch);
        self.fenced = None;
        self.taken_over = Some(epoch);
        self.backoff = None;
        let gap_ms = (self.state.last_seq > 0)
            .then(|| u64::try_from(Timestamp::now().millis_since(self.state.last_at)).unwrap_or(0));
        if self.state.last_seq > 0 {
            tracing::info!(
                seq = self.state.last_seq,
                epoch,
                gap_ms,
                in_flight = self.state.in_flight.len(),
                "taking the journal over"
            );
            let started = Event::OperatorStarted {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                instance: self.instance.clone(),
                epoch,
                gap_ms,
            };
            if self.record_now(vec![started], None).await?.is_empty() {
                // Not leading any more: nothing was staged.
                self.taken_over = None;
                return Ok(false);
            }
            // A backup that ran in the process before this one was cut
            // with it: failed, to be retried (never reported as good).
            if let Some((object, run)) = self.state.backups.running() {
                let failed = Event::BackupFailed {
                    object: object.to_owned(),
                    attempt: run.attempt,
                    reason: "interrupted: the operator stopped (or lost the lead) while it ran"
                        .to_owned(),
                    retry: true,
                };
                self.record_now(vec![failed], None).await?;
            }
        }
        self.resolve_pending = !self.state.in_flight.is_empty();
        self.probed = false;
        Ok(self.leading())
    }

    /// Tells the runtime a full probe round was recorded (intents found in
    /// flight at the takeover are resolved only after one).
    pub fn mark_probed(&mut self) {
        self.probed = true;
    }

    /// Records what a probe round's `answers` show in the metrics (the
    /// primary's health, each replica's lag), while this runtime leads: a
    /// follower exports no cluster series.
    pub fn observe_probes(&mut self, answers: &[Answer<'_>]) {
        if self.leading() {
            self.metrics
                .probed(&self.state, answers, std::time::Instant::now());
        }
    }

    /// The client used for probes (shorter timeouts than admin commands).
    pub fn probe_client(&self) -> &ValkeyClient {
        &self.probe_client
    }

    /// Exports a standby's last read (`None`: not a standby).
    pub fn standby_metrics(&self, read: Option<(Option<u64>, bool)>) {
        self.metrics.standby(read);
    }

    /// Replaces the clients' password when it changed (they keep the old
    /// one to fall back on while the nodes are rotated). The operator
    /// authenticates as its own user first: `default` is its fallback for
    /// a pod started before that user existed.
    pub async fn set_password(&mut self, password: Option<Password>) {
        if self.password_read.as_ref() == Some(&password) {
            return;
        }
        self.password_read = Some(password.clone());
        self.executor.valkey().set_password(password.clone()).await;
        self.probe_client.set_password(password.clone()).await;
        self.password = Some(password);
    }

    /// Gives the clients the internal users' passwords (by user name): the
    /// operator's own user to authenticate as, the Sentinels' to give them;
    /// and keeps the cluster's fingerprint key for the probe rounds.
    pub async fn set_internal(&mut self, internal: crate::operator::users::Internal) {
        use crate::resources::internal_users::{OPERATOR_USER, SENTINEL_USER};
        let crate::operator::users::Internal {
            passwords: internal,
            fingerprint_key,
            ..
        } = internal;
        self.fingerprint_key = fingerprint_key;
        let identity = internal
            .get(OPERATOR_USER)
            .map(|p| (OPERATOR_USER.to_owned(), p.clone()));
        for client in [self.executor.valkey(), &self.probe_client] {
            client.set_identity(identity.clone()).await;
            client
                .set_sentinel_auth(internal.get(SENTINEL_USER).cloned())
                .await;
        }
        self.internal = internal;
    }

    /// The cluster's fingerprint key, as the last reconcile read it.
    pub fn fingerprint_key(&self) -> Option<&crate::valkey::FingerprintKey> {
        self.fingerprint_key.as_ref()
    }

    /// How far the archive's bucket is behind the stream, for the
    /// metrics.
    pub fn set_archive_lag(&self, seconds: Option<f64>) {
        self.metrics.archive_lag(seconds);
    }

    /// What a backup or archive stream needs to reach this cluster's
    /// nodes: the identity to authenticate as (the replication user, else
    /// the cluster's password), the TLS settings, the API client.
    pub fn backup_access(&self) -> crate::backup::NodeAccess {
        use crate::resources::internal_users::REPLICATION_USER;
        let identity = match self.internal.get(REPLICATION_USER) {
            Some(p) => Some((Some(REPLICATION_USER.to_owned()), p.clone())),
            None => self.password().map(|p| (None, p)),
        };
        crate::backup::NodeAccess {
            identity,
            tls: self.tls_settings.clone(),
            client: self.client.clone(),
            valkey: self.probe_client.clone(),
        }
    }

    /// Speaks TLS to the cluster's servers with `settings` (plaintext with
    /// `None`), on the executor's and the prober's clients.
    ///
    /// # Errors
    /// When the settings cannot be used; the clients keep what they had.
    pub async fn set_tls(
        &mut self,
        settings: Option<crate::valkey::TlsSettings>,
    ) -> Result<(), crate::valkey::TlsSetupError> {
        for client in [self.executor.valkey(), &self.probe_client] {
            client.set_tls(settings.clone()).await?;
        }
        self.tls_ready = settings.is_some();
        self.tls_settings = settings;
        Ok(())
    }

    /// Whether the clients speak TLS (a TLS cluster's are not probed
    /// before).
    pub fn tls_ready(&self) -> bool {
        self.tls_ready
    }

    /// The CA the clients trust now, and keep trusting for one change
    /// (servers may serve a certificate of the CA being replaced).
    pub fn trusted_ca(&mut self, ca_pem: &str) -> Option<String> {
        match &self.tls_ca {
            Some(current) if current == ca_pem => self.tls_ca_previous.clone(),
            _ => {
                self.tls_ca_previous = self.tls_ca.replace(ca_pem.to_owned());
                self.tls_ca_previous.clone()
            }
        }
    }

    /// How many intents this runtime has carried out. A probe round that
    /// started before an action and ends after it reports what the servers
    /// said before the action (a demoted primary still "primary", a
    /// promoted replica still "replica"); the prober compares this count
    /// across its round and drops such stale results.
    pub fn actions(&self) -> u64 {
        self.actions
    }

    /// Counts `n` intents carried out, now.
    fn count_actions(&mut self, n: u64) {
        self.actions = self.actions.wrapping_add(n);
        self.last_action = Some(Instant::now());
    }

    /// Whether this is a Cluster that carried an intent out in the last
    /// [`SETTLING`]: the servers are moving towards what it asked (pods
    /// starting, nodes meeting, a replica syncing) and the next step waits
    /// on seeing it, so the prober looks every [`SETTLING_INTERVAL`] rather
    /// than every probe interval. Cluster only: its changes take several
    /// observed steps (meet, seat, move), each waiting on the last;
    /// Replication's failover and crash timing stay at the probe interval.
    /// A converged cluster carries nothing out and is probed at its own
    /// pace; a faster round appends nothing unless something changed.
    pub fn settling(&self) -> bool {
        let cluster = self
            .state
            .desired_spec()
            .and_then(Result::ok)
            .is_some_and(|spec| spec.topology.is_cluster());
        cluster && self.last_action.is_some_and(|at| at.elapsed() < SETTLING)
    }

    /// The data-plane password, once read (also the Sentinels').
    pub fn password(&self) -> Option<Password> {
        self.password.clone().flatten()
    }

    /// Whether the prober can run a round: the password was read and, for
    /// a TLS cluster, the CA ([`Self::tls_pending`]).
    fn prober_can_run(&self) -> bool {
        self.password_known() && !self.tls_pending()
    }

    /// Whether the spec in force asks for TLS and the CA is not read yet:
    /// the pods are not probed until it is (a probe in plaintext would
    /// fail and be taken for the pods' death).
    pub fn tls_pending(&self) -> bool {
        !self.tls_ready
            && self
                .state
                .desired_spec()
                .and_then(Result::ok)
                .is_some_and(|spec| spec.tls.enabled)
    }

    /// Whether the password was loaded at least once.
    pub fn password_known(&self) -> bool {
        self.password.is_some()
    }

    /// Uses `timeouts` for probes (derived from the probe interval).
    pub fn set_probe_timeouts(&mut self, timeouts: crate::valkey::Timeouts) {
        if self.probe_client.timeouts() != timeouts {
            self.probe_client = self.probe_client.with_timeouts(timeouts);
        }
    }

    /// The policy this cluster runs under: [`policy_of`] its spec and
    /// the operator's flags.
    fn policy_for(&self, spec: &ValkeyClusterSpec) -> Policy {
        policy_of(spec, &self.features)
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
}

/// The policy a cluster of `spec` runs under, with the operator's feature
/// flags `features`: `failover.probeIntervalMilliseconds` and
/// `failover.failureThreshold` become the probe interval and the count of
/// failed probes the decider and the prober use. A negative value (refused
/// by validation, so never accepted) falls back to the built-in default
/// rather than wrapping around.
pub(crate) fn policy_of(spec: &ValkeyClusterSpec, features: &BTreeMap<String, bool>) -> Policy {
    Policy {
        probe_interval_ms: u64::try_from(spec.failover.probe_interval_milliseconds).unwrap_or(500),
        failure_threshold: u32::try_from(spec.failover.failure_threshold).unwrap_or(3),
        features: features.clone(),
    }
}

/// The intent's catalog name, as an Event reason.
pub fn intent_name(intent: &Intent) -> &'static str {
    intent.name()
}

/// One line per intent, for Events and logs.
pub fn describe_intent(intent: &Intent) -> String {
    intent.describe()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use logbook_replay::audit::missed::{DECISIONS_PER_ACT, STANDING_MS};

    /// `replay audit` judges missed decisions by what this runtime does:
    /// it decides at most `MAX_STEPS` times in a row, and a demand must
    /// outlast a resync period and the longest back-off before no
    /// decision is a finding.
    #[test]
    fn the_audit_knows_how_the_runtime_waits() {
        assert_eq!(u32::try_from(MAX_STEPS).unwrap(), DECISIONS_PER_ACT);
        let standing = Duration::from_millis(u64::try_from(STANDING_MS).unwrap());
        assert!(standing >= 2 * super::super::reconcile::RESYNC);
        assert!(standing >= super::super::reconcile::RESYNC + MAX_BACKOFF);
    }

    /// The spec's probe settings are the policy the operator journals
    /// (`PolicyRecorded`) and runs under, value for value, with the
    /// operator's flags beside them.
    #[test]
    fn the_failover_probe_settings_become_the_policy() {
        let mut spec = ValkeyClusterSpec::default();
        spec.failover.probe_interval_milliseconds = 250;
        spec.failover.failure_threshold = 7;
        let features = BTreeMap::from([("example".to_owned(), true)]);
        let policy = policy_of(&spec, &features);
        assert_eq!(policy.probe_interval_ms, 250);
        assert_eq!(policy.failure_threshold, 7);
        assert_eq!(policy.features, features);
        // Another value is another policy: a changed spec is journaled.
        spec.failover.probe_interval_milliseconds = 60_000;
        spec.failover.failure_threshold = 1;
        let changed = policy_of(&spec, &features);
        assert_eq!(
            (changed.probe_interval_ms, changed.failure_threshold),
            (60_000, 1)
        );
        assert_ne!(changed, policy);
        // The defaults, unset in the spec.
        let default = policy_of(&ValkeyClusterSpec::default(), &BTreeMap::new());
        assert_eq!(
            (default.probe_interval_ms, default.failure_threshold),
            (500, 3)
        );
    }
}
