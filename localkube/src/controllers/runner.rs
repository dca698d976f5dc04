//! Runs the controllers: one task per controller that waits for a change
//! of what it watches (or its requeue time), then reconciles everything.
//! Watches that end (410 Gone, a slow reader cut off) are reopened at the
//! store's current version followed by a full pass, which is what a relist
//! gives a real controller.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::Reconciler;
use crate::store::Store;

/// A failed pass is retried after this long even without a change.
const RETRY: Duration = Duration::from_millis(200);
/// Least time between the end of one pass of a controller and the start
/// of its next: the changes made meanwhile are taken by one pass (a real
/// controller's work queue coalesces them likewise). Without it, a hundred
/// pods starting made each controller pass over everything once per status
/// update. The gap is at least as long as the last pass took, so a
/// controller whose passes grow (a thousand objects) takes at most half a
/// core while changes keep coming, and the API keeps answering.
const MIN_GAP: Duration = Duration::from_millis(50);

/// The running controllers; [`Controllers::shutdown`] stops them.
pub struct Controllers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Controllers {
    /// Starts the StatefulSet, Deployment, ReplicaSet, endpoints and
    /// PodDisruptionBudget controllers on `store` (needs a tokio runtime).
    pub fn spawn(store: &Store) -> Self {
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let all: Vec<Arc<dyn Reconciler>> = vec![
            Arc::new(super::statefulset::StatefulSetController),
            Arc::new(super::deployment::DeploymentController),
            Arc::new(super::replicaset::ReplicaSetController),
            Arc::new(super::endpoints::EndpointsController),
            Arc::new(super::pdb::DisruptionController),
        ];
        for r in all {
            let changed = Arc::new(Notify::new());
            for (av, plural) in r.watches() {
                tasks.spawn(forward(
                    store.clone(),
                    av,
                    plural,
                    changed.clone(),
                    stop.subscribe(),
                ));
            }
            tasks.spawn(run(store.clone(), r, changed, stop.subscribe()));
        }
        Self { stop, tasks }
    }

    /// Stops every controller and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Turns every event of one watch into a wake-up of `changed` (reopening
/// the watch at the current version when it ends, e.g. on 410), until
/// `stop` says so. Shared by the controllers and the Service proxy.
pub(crate) async fn forward(
    store: Store,
    api_version: &'static str,
    plural: &'static str,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let rv = store.resource_version().to_string();
        let rx = match store.watch(api_version, plural, None, Some(&rv), None) {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!(error = %e, plural, "localkube controllers: cannot watch");
                return;
            }
        };
        // Whatever happened while no watch was open is seen by this pass.
        changed.notify_one();
        if !crate::node_api::relay(rx, &changed, &mut stop).await {
            return;
        }
        if *stop.borrow() {
            return;
        }
        // A store being closed ends watches too; do not spin on it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(
    store: Store,
    r: Arc<dyn Reconciler>,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next: Option<Duration> = None;
    // When the last pass ended, and how long it took.
    let mut last_pass: Option<(tokio::time::Instant, Duration)> = None;
    loop {
        let wait = async {
            match next {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = changed.notified() => {}
            () = wait => {}
            _ = stop.changed() => return,
        }
        if let Some((ended, took)) = last_pass {
            tokio::select! {
                () = tokio::time::sleep_until(ended + took.max(MIN_GAP)) => {}
                _ = stop.changed() => return,
            }
        }
        let started = tokio::time::Instant::now();
        // A pass is synchronous work over the store: off the runtime's
        // workers, which serve the API meanwhile.
        let pass = {
            let (store, r) = (store.clone(), r.clone());
            tokio::task::spawn_blocking(move || r.reconcile_all(&store)).await
        };
        last_pass = Some((tokio::time::Instant::now(), started.elapsed()));
        next = match pass {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, controller = r.name(), "localkube: reconcile failed; retrying");
                Some(RETRY)
            }
            Err(e) => {
                tracing::warn!(error = %e, controller = r.name(), "localkube: a reconcile pass did not finish; retrying");
                Some(RETRY)
            }
        };
    }
}
