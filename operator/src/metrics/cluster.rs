//! One cluster's recording: what its runtime, prober and journal store
//! report, turned into updates of the shared [`Metrics`].
//!
//! Journal metrics follow the commit point: notes are taken as events are
//! staged (when the projection before each event is at hand, to name an
//! outcome's intent) and published when their batch is committed;
//! staged events that are dropped (this writer was fenced) are dropped
//! from the notes too.

use std::collections::BTreeMap;
use std::time::Instant;

use logbook_crds::ValkeyClusterStatus;
use logbook_crds::v1alpha1::CONDITION_READY;
use logbook_journal::{ClusterState, Envelope};

use super::labels::{ClusterLabels, WriteResult};
use super::probe::{Answer, PrimaryHealth, primary_answered, replication_lag};
use super::shards::summarize_cluster;
use super::tally::{Note, Tracker};
use super::{Metrics, ReshardGauges};

/// Records the writes of one cluster's journal ConfigMaps.
#[derive(Clone)]
pub struct ConfigMapWrites {
    metrics: Metrics,
    cluster: ClusterLabels,
}

impl std::fmt::Debug for ConfigMapWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapWrites")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl ConfigMapWrites {
    /// Counts one write of `cluster`'s journal ConfigMaps into `metrics`.
    pub fn new(metrics: Metrics, cluster: ClusterLabels) -> Self {
        Self { metrics, cluster }
    }
}

impl logbook_journal_k8s::WriteCounter for ConfigMapWrites {
    fn record(&self, result: WriteResult) {
        self.metrics.observe_configmap_write(&self.cluster, result);
    }
}

/// One cluster's recording, held by its runtime.
#[derive(Debug)]
pub struct ClusterMetrics {
    metrics: Metrics,
    cluster: ClusterLabels,
    tracker: Tracker,
    /// Notes of the events staged and not committed yet.
    pending: Vec<Note>,
    /// How many events are staged and not committed yet.
    pending_events: u64,
    health: PrimaryHealth,
}

impl ClusterMetrics {
    /// How far the archive's bucket is behind the stream (`None`: off or
    /// not known yet).
    pub fn archive_lag(&self, seconds: Option<f64>) {
        self.metrics.set_archive_lag(&self.cluster, seconds);
    }

    /// The recording of cluster `namespace/name`; [`ClusterMetrics::discard`]
    /// starts it on the cluster's loaded projection.
    pub fn new(metrics: Metrics, namespace: &str, name: &str) -> Self {
        Self {
            metrics,
            cluster: ClusterLabels::new(namespace, name),
            tracker: Tracker::default(),
            pending: Vec::new(),
            pending_events: 0,
            health: PrimaryHealth::default(),
        }
    }

    /// The shared metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The cluster's labels.
    pub fn labels(&self) -> &ClusterLabels {
        &self.cluster
    }

    /// A recorder of the cluster's journal ConfigMap writes.
    pub fn configmap_writes(&self) -> ConfigMapWrites {
        ConfigMapWrites::new(self.metrics.clone(), self.cluster.clone())
    }

    /// Folds staged `envelopes` into `state` (as `ClusterState::apply`
    /// does) and keeps what they note until they are committed.
    pub fn fold(&mut self, state: &mut ClusterState, envelopes: &[Envelope]) {
        for envelope in envelopes {
            let notes = self.tracker.fold(state, envelope);
            self.pending.extend(notes);
            self.pending_events = self.pending_events.saturating_add(1);
        }
    }

    /// The staged events were committed in `bytes` of frames, the head is
    /// now `head_seq`: publishes what they noted.
    pub fn committed(&mut self, bytes: usize, head_seq: u64) {
        let notes = std::mem::take(&mut self.pending);
        let events = std::mem::take(&mut self.pending_events);
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.metrics
            .observe_appended(&self.cluster, events, bytes, head_seq, &notes);
    }

    /// The staged events were dropped and the projection reloaded as
    /// `state`: their notes go too, and failovers are followed from there.
    pub fn discard(&mut self, state: &ClusterState) {
        self.pending.clear();
        self.pending_events = 0;
        self.tracker.resume(state);
    }

    /// What a probe round at `now` found: the believed primary (of
    /// `state`) and every pod's answer. A Valkey Cluster has a primary per
    /// shard: its primary is healthy while every slot is owned and every
    /// shard's primary answers as one, and each replica's lag is measured
    /// against its own shard's primary.
    pub fn probed(&mut self, state: &ClusterState, answers: &[Answer<'_>], now: Instant) {
        let (healthy, expected, lag) = if is_valkey_cluster(state) {
            let cluster = &state.cluster;
            let shards = cluster.shards();
            let healthy = !shards.is_empty()
                && cluster.unassigned() == 0
                && shards
                    .iter()
                    .all(|s| !s.retired && primary_answered(Some(s.primary), answers));
            let mut lag = BTreeMap::new();
            for shard in &shards {
                let members: Vec<Answer<'_>> = answers
                    .iter()
                    .filter(|(pod, _)| *pod == shard.primary || shard.replicas.contains(pod))
                    .copied()
                    .collect();
                lag.extend(replication_lag(Some(shard.primary), &members));
            }
            // Slots are served only once the cluster formed.
            (healthy, cluster.formed_at.is_some(), lag)
        } else {
            let primary = state.replication.primary.as_deref();
            // A primary is expected once one was ever decided or seen;
            // before that the cluster is still being created.
            let expected = primary.is_some()
                || state.last_failover.is_some()
                || state
                    .replication
                    .boot_primary
                    .as_ref()
                    .is_some_and(|(pod, _)| pod.is_some());
            (
                primary_answered(primary, answers),
                expected,
                replication_lag(primary, answers),
            )
        };
        let seconds = self.health.update(now, healthy, expected);
        self.metrics.set_probed(&self.cluster, seconds, &lag);
    }

    /// The status the operator publishes (or would: it is unchanged),
    /// rendered from `state`, and for a Valkey Cluster its shards as
    /// `state` shows them and its reshard as the status says.
    /// A standby's last read: `None` when the cluster is none (or no
    /// longer one); else its lag (`None`: unknown) and whether it is
    /// behind its bound or its source unreadable.
    pub fn standby(&self, read: Option<(Option<u64>, bool)>) {
        match read {
            Some((lag, behind)) => self.metrics.set_standby(&self.cluster, true, lag, behind),
            None => self.metrics.set_standby(&self.cluster, false, None, false),
        }
    }

    pub fn status(&self, state: &ClusterState, status: &ValkeyClusterStatus) {
        let ready = status
            .condition(CONDITION_READY)
            .is_some_and(|c| c.status == "True");
        self.metrics.set_status(&self.cluster, ready, status.phase);
        let summary = summarize_cluster(state);
        self.metrics
            .set_cluster_shards(&self.cluster, summary.as_ref());
        let reshard = summary
            .is_some()
            .then(|| ReshardGauges::from_status(status.reshard.as_ref()));
        self.metrics.set_reshard(&self.cluster, reshard.as_ref());
        self.metrics
            .set_sentinels(&self.cluster, status.sentinel.as_ref());
        let last = state
            .backups
            .last_completed()
            .map(|(_, at, bytes)| (at.as_micros() / 1_000_000, bytes));
        let interval = state
            .backups
            .schedule
            .as_ref()
            .and_then(|(schedule, since)| schedule_interval(schedule, *since));
        self.metrics.set_backup(&self.cluster, last, interval);
        let archive = &state.backups.archive;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.set_archive(
            &self.cluster,
            (archive.target.is_some() || !archive.chains.is_empty()).then(|| {
                (
                    archive
                        .oldest_restorable()
                        .map(|at| at.as_micros() / 1_000_000),
                    count(archive.live().count()),
                    count(archive.chains.len() - archive.live().count()),
                )
            }),
        );
        let not_after = status
            .tls
            .as_ref()
            .and_then(|t| t.not_after.as_ref())
            .map(|t| t.0.as_second());
        self.metrics
            .set_certificate_expiry(&self.cluster, not_after);
    }
}

/// The longest gap, in seconds, between the next five fires of
/// `schedule` after `since`.
fn schedule_interval(schedule: &str, since: logbook_journal::Timestamp) -> Option<i64> {
    let mut at = since.as_micros() / 1000;
    let mut longest = None;
    let mut previous = logbook_crds::v1alpha1::next_fire_ms(schedule, at)?;
    for _ in 0..5 {
        at = previous;
        let next = logbook_crds::v1alpha1::next_fire_ms(schedule, at)?;
        let gap = (next - previous) / 1000;
        longest = Some(longest.map_or(gap, |l: i64| l.max(gap)));
        previous = next;
    }
    longest
}

/// Whether `state` is a Valkey Cluster's (the projection holds node
/// reports only for one).
fn is_valkey_cluster(state: &ClusterState) -> bool {
    !state.cluster.pods.is_empty()
}
