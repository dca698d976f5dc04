//! The operator: a kube-rs `Controller` on ValkeyCluster that owns the
//! objects it creates and watches the cluster's pods, one
//! [`ClusterRuntime`] (journal stream + projection) per cluster, and one
//! prober task per cluster.
//!
//! Layout: `reconcile.rs` (API observations, finalizer), `prober.rs`
//! (Valkey observations), `runtime.rs` (journal, decide, act, status),
//! `error.rs`.

mod error;
mod events;
mod prober;
mod reconcile;
mod runtime;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use logbook_crds::ValkeyCluster;
use logbook_journal::{Event, NewEvent, SledStore, StreamId, StreamWriter};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub use error::OperatorError;
pub use prober::probe_timeouts;
pub use runtime::{ClusterRuntime, RuntimeDeps, describe_intent, intent_name};

use crate::resources::labels;

/// The finalizer the operator puts on every ValkeyCluster.
pub const FINALIZER: &str = "valkey.logbook.dev/finalizer";

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Watch one namespace, or all when `None`.
    pub namespace: Option<String>,
    /// Where the sled journal lives.
    pub journal_dir: PathBuf,
    /// This process's identity (pod name or host), journaled.
    pub instance: String,
    /// Operator feature flags, journaled in each cluster's policy.
    pub features: BTreeMap<String, bool>,
}

/// One cluster: its runtime and its prober.
struct ClusterHandle {
    runtime: Arc<Mutex<ClusterRuntime>>,
    prober: JoinHandle<()>,
}

/// What every reconcile shares.
pub struct Context {
    deps: RuntimeDeps,
    clusters: Mutex<HashMap<String, ClusterHandle>>,
    backend: &'static str,
}

impl Context {
    /// The runtime of `meta`'s cluster, opened (and its prober started) on
    /// first use.
    async fn handle(
        &self,
        meta: &crate::resources::ClusterMeta,
        reference: ObjectReference,
    ) -> Result<Arc<Mutex<ClusterRuntime>>, OperatorError> {
        let mut clusters = self.clusters.lock().await;
        if let Some(handle) = clusters.get(&meta.uid) {
            return Ok(handle.runtime.clone());
        }
        let runtime = ClusterRuntime::open(&self.deps, meta.clone(), reference).await?;
        let runtime = Arc::new(Mutex::new(runtime));
        let prober = tokio::spawn(prober::run(runtime.clone(), self.backend));
        clusters.insert(
            meta.uid.clone(),
            ClusterHandle {
                runtime: runtime.clone(),
                prober,
            },
        );
        Ok(runtime)
    }

    /// Stops probing a deleted cluster and drops its runtime.
    async fn forget(&self, uid: &str) {
        if let Some(handle) = self.clusters.lock().await.remove(uid) {
            handle.prober.abort();
        }
    }

    async fn stop_all(&self) {
        for (_, handle) in self.clusters.lock().await.drain() {
            handle.prober.abort();
        }
    }
}

/// Appends one lifecycle event to the operator stream.
async fn append_operator_event(
    stream: &mut StreamWriter<SledStore>,
    event: Event,
) -> Result<(), OperatorError> {
    stream
        .append(vec![NewEvent::now(event)])
        .await
        .map(drop)
        .map_err(|source| OperatorError::Append {
            cluster: "operator".to_owned(),
            source,
        })
}

/// Runs the operator until `shutdown` completes.
///
/// # Errors
/// The journal cannot be opened or written.
pub async fn run(
    client: kube::Client,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), OperatorError> {
    std::fs::create_dir_all(&config.journal_dir).map_err(|e| {
        OperatorError::Config(format!(
            "cannot create the journal directory {}: {e}",
            config.journal_dir.display()
        ))
    })?;
    let store = SledStore::open(&config.journal_dir, logbook_journal::Durability::Flush).map_err(
        |source| OperatorError::Store {
            path: config.journal_dir.display().to_string(),
            source,
        },
    )?;
    let mut operator_stream = StreamWriter::open(store.clone(), StreamId::operator(), 0)
        .await
        .map_err(|source| OperatorError::Append {
            cluster: "operator".to_owned(),
            source,
        })?;
    append_operator_event(
        &mut operator_stream,
        Event::OperatorStarted {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            instance: config.instance.clone(),
            epoch: 0,
            gap_ms: None,
        },
    )
    .await?;
    let ctx = Arc::new(Context {
        deps: RuntimeDeps {
            client: client.clone(),
            store: store.clone(),
            events: events::Publisher::new(client.clone(), config.instance.clone()),
            features: config.features.clone(),
        },
        clusters: Mutex::new(HashMap::new()),
        backend: "sled",
    });
    let (clusters, pods, sets, services, maps, secrets, pdbs) = match &config.namespace {
        Some(ns) => (
            Api::<ValkeyCluster>::namespaced(client.clone(), ns),
            Api::<Pod>::namespaced(client.clone(), ns),
            Api::<StatefulSet>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            Api::<Secret>::namespaced(client.clone(), ns),
            Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let managed = watcher::Config::default().labels(&format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE
    ));
    let pod_watch =
        watcher::Config::default().labels(&format!("{}={}", labels::NAME, labels::NAME_VALUE));
    tracing::info!(instance = %config.instance, journal = %config.journal_dir.display(), "operator started");
    Controller::new(clusters, watcher::Config::default())
        .owns(sets, managed.clone())
        .owns(services, managed.clone())
        .owns(maps, managed.clone())
        .owns(secrets, managed.clone())
        .owns(pdbs, managed)
        .watches(pods, pod_watch, |pod: Pod| {
            let ns = pod.metadata.namespace.clone()?;
            let cluster = pod.metadata.labels.as_ref()?.get(labels::CLUSTER)?.clone();
            Some(ObjectRef::<ValkeyCluster>::new(&cluster).within(&ns))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "controller");
            }
        })
        .await;
    ctx.stop_all().await;
    append_operator_event(
        &mut operator_stream,
        Event::OperatorStopped {
            instance: config.instance.clone(),
        },
    )
    .await?;
    store.flush().map_err(|source| OperatorError::Store {
        path: config.journal_dir.display().to_string(),
        source,
    })?;
    tracing::info!("operator stopped");
    Ok(())
}
