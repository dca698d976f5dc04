//! The operator: a kube-rs `Controller` on ValkeyCluster that owns the
//! objects it creates and watches the cluster's pods, one
//! [`ClusterRuntime`] (journal stream + projection) per cluster, and one
//! prober task per cluster.
//!
//! Layout: `reconcile.rs` (API observations, finalizer), `prober.rs`
//! (Valkey observations), `runtime.rs` (journal, decide, act, status),
//! `http.rs` (the health and metrics endpoints), `health.rs`, `error.rs`.
//!
//! Every task working on a cluster (its reconciles, its prober) runs in the
//! cluster's span (`namespace`, `name`, `seq`), so every log line about the
//! cluster names it and the journal seq it concerns.

mod apply;
mod archive;
mod backups;
mod cluster_prober;
mod crash;
mod death_watch;
mod defaults;
mod error;
mod events;
mod external;
mod health;
mod http;
mod journal;
mod main_loop;
mod pod_tasks;
mod prober;
mod reconcile;
mod runtime;
mod sentinel_prober;
mod span;
mod standby;
mod terminating;
mod tls;
mod upgrade;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use logbook_crds::{ValkeyBackup, ValkeyCluster, ValkeyOperatorDefaults, ValkeyUser};
use logbook_journal::{Event, NewEvent, SledStore, StreamId, StreamWriter};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

pub use backups::write_manifest;
pub use crash::{CRASH_AT_COMMIT, CRASH_COUNT_FROM, FAULTS_ARMABLE};
pub use error::OperatorError;
pub use journal::{JournalError, MAX_STAGED_BYTES, MAX_STAGED_EVENTS};
pub use main_loop::run;
pub use prober::probe_timeouts;
pub use runtime::{ClusterRuntime, JournalFactory, RuntimeDeps, describe_intent, intent_name};
pub use span::{ClusterSpan, cluster_span};

use crate::journal_store::{AnyStore, ConfigMapStore, JournalBackend};
use crate::leader::{self, Leadership, LeaseConfig};
use crate::metrics::{ClusterLabels, Metrics};
use crate::resources::labels;

/// The finalizer the operator puts on every ValkeyCluster.
pub const FINALIZER: &str = "valkey.logbook.dev/finalizer";

/// The stack of each thread of the operator's runtime: a reconcile's
/// poll chain (the controller, the runtime, the executor's match over
/// every intent, a Valkey command) took more than tokio's default 2 MiB
/// in a debug build (a stack overflow in `tests/operator_reshard_classic.rs`);
/// 8 MiB leaves room. Address space only: pages are touched as used.
pub const THREAD_STACK_BYTES: usize = 8 << 20;

/// Group-commit interval of ConfigMap journals: at most one write per
/// cluster per interval for observations.
pub const GROUP_COMMIT: Duration = Duration::from_secs(1);

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Watch one namespace, or all when `None`.
    pub namespace: Option<String>,
    /// Where journals live.
    pub journal: JournalBackend,
    /// The local journal directory (`sled` and `both`).
    pub journal_dir: PathBuf,
    /// This process's identity (pod name or host), journaled.
    pub instance: String,
    /// Operator feature flags, journaled in each cluster's policy.
    pub features: BTreeMap<String, bool>,
    /// The leader-election Lease (its namespace also holds the operator's
    /// own journal stream when journals live in ConfigMaps).
    pub lease: LeaseConfig,
    /// Shortest interval between two commits of observations; `None`: the
    /// backend's default (1 s for ConfigMaps, write-through for sled).
    pub group_commit: Option<Duration>,
    /// Where to serve `/healthz` and `/readyz`, if anywhere.
    pub health_addr: Option<std::net::SocketAddr>,
    /// Where to serve `/metrics`, if anywhere (the same address as
    /// `health_addr` serves both).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Where to serve the web UI (`src/ui/`), if anywhere: read-only, on
    /// this operator's journals, read with its credentials and shown to
    /// each reader as `ui_auth` says.
    pub ui_addr: Option<std::net::SocketAddr>,
    /// Who may read the UI: readers checked by the API server (the
    /// default, for a Deployment), or anyone who reaches `ui_addr`.
    pub ui_auth: crate::ui::UiAuth,
    /// The validating webhook over the objects the operator makes
    /// (`src/webhook/`), if it serves one.
    pub webhook: Option<crate::webhook::WebhookConfig>,
}

impl OperatorConfig {
    /// A configuration with the defaults: every namespace, the given
    /// backend and directory, the Lease in `lease_namespace`.
    pub fn new(
        journal: JournalBackend,
        journal_dir: PathBuf,
        instance: String,
        lease_namespace: &str,
    ) -> Self {
        Self {
            namespace: None,
            journal,
            journal_dir,
            lease: LeaseConfig::new(lease_namespace, instance.clone()),
            instance,
            features: BTreeMap::new(),
            group_commit: None,
            health_addr: None,
            metrics_addr: None,
            ui_addr: None,
            ui_auth: crate::ui::UiAuth::default(),
            webhook: None,
        }
    }
}

/// One cluster: its runtime, its prober, and the maker of its spans.
struct ClusterHandle {
    runtime: Arc<Mutex<ClusterRuntime>>,
    prober: JoinHandle<()>,
    /// The cluster's backup task (`backups::run`).
    backups: JoinHandle<()>,
    /// The cluster's archive task (`archive::run`).
    archive: JoinHandle<()>,
    log: ClusterSpan,
}

/// What every reconcile shares.
pub struct Context {
    deps: RuntimeDeps,
    clusters: Mutex<HashMap<String, ClusterHandle>>,
    /// Clusters whose journal cannot be trusted, with the condition message
    /// last published for them (uid → message).
    unhealthy: Mutex<HashMap<String, String>>,
    /// When the Lease was last read: a follower reading it is a standby.
    lease_contact: leader::LeaseContact,
    /// How long a Lease is valid: a standby that has not read it for that
    /// long has lost the API server.
    lease_duration: Duration,
    /// The Secrets ValkeyUsers name, to the clusters to reconcile when one
    /// changes.
    user_secrets: users::SecretIndex,
    /// The ValkeyOperatorDefaults, and the clusters rolling a change of
    /// them.
    defaults: defaults::DefaultsIndex,
    /// The pods the pod watch saw being deleted, for their cluster's next
    /// reconcile to journal first.
    terminating: terminating::Terminating,
}

impl Context {
    /// A span for work on `meta`'s cluster, at the seq of its projection
    /// (none before its journal was read).
    async fn span(&self, meta: &crate::resources::ClusterMeta) -> tracing::Span {
        match self.clusters.lock().await.get(&meta.uid) {
            Some(handle) => handle.log.span(),
            None => cluster_span(&meta.namespace, &meta.name, None),
        }
    }

    /// The runtime of `meta`'s cluster, opened (and its prober started) on
    /// first use.
    async fn handle(
        &self,
        meta: &crate::resources::ClusterMeta,
        reference: ObjectReference,
        retain: bool,
    ) -> Result<Arc<Mutex<ClusterRuntime>>, OperatorError> {
        let mut clusters = self.clusters.lock().await;
        if let Some(handle) = clusters.get(&meta.uid) {
            return Ok(handle.runtime.clone());
        }
        let runtime = ClusterRuntime::open(&self.deps, meta.clone(), reference, retain).await?;
        let log = runtime.log().clone();
        // The first reconcile's span was made before the journal was read:
        // from here on its lines name the seq (recorded once, it was empty).
        tracing::Span::current().record("seq", log.seq());
        let runtime = Arc::new(Mutex::new(runtime));
        let prober = tokio::spawn(prober::run(runtime.clone(), log.clone()));
        let backups = tokio::spawn(backups::run(runtime.clone(), log.clone()));
        let archive = tokio::spawn(archive::run(runtime.clone(), log.clone()));
        clusters.insert(
            meta.uid.clone(),
            ClusterHandle {
                runtime: runtime.clone(),
                prober,
                backups,
                archive,
                log,
            },
        );
        Ok(runtime)
    }

    /// Stops probing a deleted cluster, drops its runtime and its metrics.
    async fn forget(&self, meta: &crate::resources::ClusterMeta) {
        if let Some(handle) = self.clusters.lock().await.remove(&meta.uid) {
            handle.prober.abort();
            handle.backups.abort();
            handle.archive.abort();
        }
        self.deps
            .metrics
            .forget_cluster(&ClusterLabels::new(&meta.namespace, &meta.name));
    }

    /// Stops every prober, then commits what each runtime still holds.
    async fn stop_all(&self) {
        let handles: Vec<ClusterHandle> =
            self.clusters.lock().await.drain().map(|(_, h)| h).collect();
        for handle in &handles {
            handle.prober.abort();
            handle.backups.abort();
            handle.archive.abort();
        }
        for handle in handles {
            let mut rt = handle.runtime.lock().await;
            if let Err(err) = rt.commit().await {
                tracing::warn!(parent: &handle.log.span(), %err, "events not committed at shutdown");
            }
        }
    }
}

/// The operator's own stream (lifecycle and leadership), written only by
/// the leader.
struct OperatorStream {
    writer: StreamWriter<AnyStore>,
}

impl OperatorStream {
    async fn open(store: AnyStore) -> Result<Self, OperatorError> {
        let writer = StreamWriter::open(store, StreamId::operator(), 0)
            .await
            .map_err(|source| OperatorError::Append {
                cluster: "operator".to_owned(),
                source: Box::new(source),
            })?;
        Ok(Self { writer })
    }

    /// Appends `events` at `epoch`, reloading the head once if a previous
    /// leader wrote last.
    async fn append(&mut self, epoch: u64, events: Vec<Event>) -> Result<(), OperatorError> {
        self.writer.set_epoch(epoch);
        let batch = || events.iter().cloned().map(NewEvent::now).collect();
        let mut result = self.writer.append(batch()).await;
        if result.as_ref().is_err_and(|e| e.is_retryable()) {
            let _ = self.writer.reload().await;
            result = self.writer.append(batch()).await;
        }
        result.map(drop).map_err(|source| OperatorError::Append {
            cluster: "operator".to_owned(),
            source: Box::new(source),
        })
    }
}

/// Journals leadership changes in the operator stream while this instance
/// runs, and follows them in the metrics: `logbook_leader`, its
/// transitions, and no cluster series once this instance stops leading
/// (the watch channel keeps the latest value only: a loss and a new term
/// between two looks count as one transition).
async fn follow_leadership(
    mut leadership: watch::Receiver<Leadership>,
    operator: Arc<Mutex<OperatorStream>>,
    instance: String,
    metrics: Metrics,
) {
    let mut led: Option<u64> = None;
    loop {
        let now = *leadership.borrow_and_update();
        metrics.observe_leadership(now.is_leader(), led != now.epoch());
        if led.is_some() && !now.is_leader() {
            metrics.forget_all_clusters();
        }
        match (led, now.epoch()) {
            (None, Some(epoch)) => {
                tracing::info!(%instance, epoch, "leading");
                let events = vec![
                    Event::LeadershipAcquired {
                        epoch,
                        holder: instance.clone(),
                    },
                    Event::OperatorStarted {
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        instance: instance.clone(),
                        epoch,
                        gap_ms: None,
                    },
                ];
                if let Err(err) = operator.lock().await.append(epoch, events).await {
                    tracing::warn!(%err, "cannot journal the leadership");
                }
            }
            (Some(old), None) => {
                tracing::warn!(%instance, epoch = old, "no longer leading: acting stops");
            }
            (Some(old), Some(epoch)) if old != epoch => {
                tracing::info!(%instance, epoch, "leading in a new term");
            }
            _ => {}
        }
        led = now.epoch();
        if leadership.changed().await.is_err() {
            return;
        }
    }
}

/// Binds the health and metrics addresses (one listener when they are the
/// same), before anything else starts: a taken port fails the start.
async fn bind_endpoints(
    config: &OperatorConfig,
) -> Result<Vec<(tokio::net::TcpListener, http::Endpoints)>, OperatorError> {
    let mut wanted: Vec<(std::net::SocketAddr, http::Endpoints)> = Vec::new();
    for (addr, health) in [(config.health_addr, true), (config.metrics_addr, false)] {
        let Some(addr) = addr else { continue };
        match wanted.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, endpoints)) => {
                endpoints.health |= health;
                endpoints.metrics |= !health;
            }
            None => wanted.push((
                addr,
                http::Endpoints {
                    health,
                    metrics: !health,
                },
            )),
        }
    }
    let mut listeners = Vec::with_capacity(wanted.len());
    for (addr, endpoints) in wanted {
        let listener = http::bind(addr).await.map_err(|e| {
            let what = match (endpoints.health, endpoints.metrics) {
                (true, true) => "health and metrics endpoints",
                (true, false) => "health endpoints",
                _ => "metrics endpoint",
            };
            OperatorError::Config(format!("cannot serve the {what} on {addr}: {e}"))
        })?;
        listeners.push((listener, endpoints));
    }
    Ok(listeners)
}

/// The ValkeyCluster owning `object`, by its controller's owner reference
/// of kind ValkeyCluster in Logbook's group, at any version the CRD
/// serves. kube-runtime's `owns` matches the owner's `apiVersion` exactly:
/// the objects name their cluster at v1alpha1 (`resources::owner`, kept
/// so that no object is written again on upgrade; any served version
/// names the same object), while the operator reads it at v1beta1.
fn owned_by<K: kube::Resource>(object: K) -> Option<ObjectRef<ValkeyCluster>> {
    let meta = object.meta();
    let namespace = meta.namespace.as_deref()?;
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| {
            o.kind == "ValkeyCluster"
                && o.api_version.split_once('/').map(|(group, _)| group)
                    == Some(logbook_crds::conversion::GROUP)
        })
        .map(|o| ObjectRef::<ValkeyCluster>::new(&o.name).within(namespace))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::owned_by;

    fn owned(api_version: &str, kind: &str) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("demo".to_owned()),
                namespace: Some("shop".to_owned()),
                owner_references: Some(vec![OwnerReference {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    name: "demo".to_owned(),
                    uid: "u".to_owned(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            ..StatefulSet::default()
        }
    }

    #[test]
    fn an_owned_object_names_its_cluster_at_any_served_version() {
        for version in ["valkey.logbook.dev/v1alpha1", "valkey.logbook.dev/v1beta1"] {
            let owner = owned_by(owned(version, "ValkeyCluster")).unwrap();
            assert_eq!(
                (owner.name.as_str(), owner.namespace.as_deref()),
                ("demo", Some("shop")),
                "{version}"
            );
        }
        assert!(owned_by(owned("apps/v1", "ValkeyCluster")).is_none());
        assert!(owned_by(owned("valkey.logbook.dev/v1beta1", "ValkeyUser")).is_none());
    }
}
