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
/// Average least time between the starts of two passes of one controller
/// while changes keep coming: the changes made meanwhile are taken by one
/// pass (a real controller's work queue coalesces them likewise). Without
/// it, a hundred pods starting made each controller pass over everything
/// once per status update. Besides, the gap after a pass is at least as
/// long as the pass took, so a controller whose passes grow (a thousand
/// objects) takes at most half a core while changes keep coming, and the
/// API keeps answering.
const MIN_GAP: Duration = Duration::from_millis(50);
/// Passes that may start back to back after a quiet spell before
/// [`MIN_GAP`] paces them, as kube-proxy's bounded-frequency runner allows
/// a burst of syncs. A failover is a handful of changes within a few
/// milliseconds (a pod's deletion, the role labels moved from one pod to
/// another): with a strict gap the last of them, the one that points a
/// Service at the new primary, waited out the gap the first had started,
/// and every client of the Service 40 ms with it.
const BURST: u32 = 4;

/// When a controller's next pass may start: a token bucket of [`BURST`]
/// passes refilled one per [`MIN_GAP`] (kept as its theoretical arrival
/// time), and never sooner after a pass than that pass took.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// When the bucket is empty again at one pass per gap: a pass may start
    /// once `now >= tat - (BURST - 1) × MIN_GAP`.
    tat: tokio::time::Instant,
    /// When the last pass ended, and how long it took.
    last: Option<(tokio::time::Instant, Duration)>,
}

impl Pace {
    fn new(now: tokio::time::Instant) -> Self {
        Self {
            tat: now,
            last: None,
        }
    }

    /// The earliest start of the next pass.
    fn earliest(&self) -> tokio::time::Instant {
        let bucket = self
            .tat
            .checked_sub(MIN_GAP * (BURST - 1))
            .unwrap_or(self.tat);
        match self.last {
            Some((ended, took)) => bucket.max(ended + took),
            None => bucket,
        }
    }

    /// A pass starts at `now`: it takes one pass of the bucket.
    fn started(&mut self, now: tokio::time::Instant) {
        self.tat = self.tat.max(now) + MIN_GAP;
    }

    /// The pass that started at `started` ended at `now`; `wrote` is
    /// whether anything was written meanwhile. A pass that wrote nothing
    /// gives its pass of the bucket back: it is mostly the echo of the
    /// last pass's own writes (a controller watches what it writes), and
    /// counting it let every real change spend two passes, so a failover's
    /// four (a pod's deletion, its status, the role labels moved) emptied
    /// the bucket and the last one, the Service's new endpoint, waited out
    /// a whole gap. The gap after a pass as long as it took still bounds
    /// what such passes cost.
    fn ended(&mut self, started: tokio::time::Instant, now: tokio::time::Instant, wrote: bool) {
        self.last = Some((now, now.saturating_duration_since(started)));
        if !wrote {
            self.tat = self
                .tat
                .checked_sub(MIN_GAP)
                .unwrap_or(self.tat)
                .max(started);
        }
    }
}

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
    let mut pace = Pace::new(tokio::time::Instant::now());
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
        tokio::select! {
            () = tokio::time::sleep_until(pace.earliest()) => {}
            _ = stop.changed() => return,
        }
        let started = tokio::time::Instant::now();
        let version = store.resource_version();
        pace.started(started);
        // A pass is synchronous work over the store: off the runtime's
        // workers, which serve the API meanwhile.
        let pass = {
            let (store, r) = (store.clone(), r.clone());
            tokio::task::spawn_blocking(move || r.reconcile_all(&store)).await
        };
        // Any write meanwhile (this pass's or another writer's) counts:
        // only a pass sure to have written nothing is given back.
        let wrote = store.resource_version() != version;
        pace.ended(started, tokio::time::Instant::now(), wrote);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_after_quiet_goes_at_once_then_passes_are_paced() {
        let t0 = tokio::time::Instant::now();
        let mut pace = Pace::new(t0);
        // A quiet controller: the first BURST passes (each taking 1 ms)
        // start as soon as the previous one ended.
        let mut now = t0;
        for _ in 0..BURST {
            assert_eq!(pace.earliest().max(now), now, "a pass of the burst waited");
            pace.started(now);
            now += Duration::from_millis(1);
            pace.ended(now - Duration::from_millis(1), now, true);
            now += Duration::from_millis(1);
        }
        // The bucket is empty: the next waits for the gap.
        let next = pace.earliest();
        assert!(next >= t0 + MIN_GAP, "{:?} after the start", next - t0);
        // Sustained changes: one pass per gap.
        pace.started(next);
        pace.ended(next, next + Duration::from_millis(1), true);
        assert_eq!(pace.earliest() - next, MIN_GAP);
    }

    #[test]
    fn a_long_pass_is_followed_by_a_gap_as_long() {
        let t0 = tokio::time::Instant::now();
        let mut pace = Pace::new(t0);
        pace.started(t0);
        let took = Duration::from_millis(400);
        pace.ended(t0, t0 + took, true);
        assert_eq!(pace.earliest(), t0 + took + took);
    }

    #[test]
    fn a_pass_that_wrote_nothing_leaves_the_bucket_as_it_was() {
        let t0 = tokio::time::Instant::now();
        let mut pace = Pace::new(t0);
        // A failover's changes: each pass that writes is echoed by one
        // that finds nothing to do (its own writes woke it). All of them
        // start at once; only the writing ones spend the burst.
        let mut now = t0;
        for i in 0..BURST {
            // (The echo of the last would need a pass of an empty bucket.)
            let passes: &[bool] = if i + 1 < BURST {
                &[true, false]
            } else {
                &[true]
            };
            for &wrote in passes {
                assert_eq!(pace.earliest().max(now), now, "a pass of the burst waited");
                pace.started(now);
                now += Duration::from_millis(1);
                pace.ended(now - Duration::from_millis(1), now, wrote);
                now += Duration::from_millis(1);
            }
        }
        // The writing passes emptied it: the next waits for the gap.
        assert!(pace.earliest() >= t0 + MIN_GAP);
    }

    #[test]
    fn a_quiet_spell_refills_the_burst() {
        let t0 = tokio::time::Instant::now();
        let mut pace = Pace::new(t0);
        for i in 0..10u32 {
            let at = pace.earliest().max(t0 + MIN_GAP * i);
            pace.started(at);
            pace.ended(at, at, true);
        }
        let later = t0 + Duration::from_secs(10);
        for _ in 0..BURST {
            assert!(pace.earliest() <= later);
            pace.started(later);
            pace.ended(later, later, true);
        }
        assert!(pace.earliest() > later);
    }
}
