//! The operator's Prometheus metrics: one [`Metrics`] (a registry and its
//! families) per operator run, shared by every task through the
//! operator's `Context` and each cluster's [`ClusterMetrics`].
//!
//! Metrics are in memory only: recording one never writes to the API
//! server or the journal, so a converged cluster still costs nothing.
//! Labels stay bounded (see `labels.rs`). A cluster's series are removed
//! when it is deleted or this instance stops leading
//! ([`Metrics::forget_cluster`], [`Metrics::forget_all_clusters`]), so a
//! follower exports no stale gauges. `docs/metrics.md` lists every metric.
//!
//! Layout: `families.rs` (names, types, help, buckets), `labels.rs` (label
//! sets and values), `tally.rs` (events → notes, pure), `probe.rs` (probe
//! answers → lag and primary health, pure), `shards.rs` (a Valkey
//! Cluster's shards from the projection, pure; `kubectl valkey status`
//! reads it too), `cluster.rs` (one cluster's recording), `exposition.rs`
//! (the scrape body). This module must not
//! decide anything nor do any I/O.

mod cluster;
mod exposition;
mod families;
#[cfg(any(test, feature = "testkit"))]
pub mod fixture;
mod labels;
mod probe;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use logbook_crds::v1alpha1::ClusterPhase;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::registry::Registry;

pub use cluster::{ClusterMetrics, ConfigMapWrites};
pub use exposition::{Format, to_prometheus_text};
pub use labels::{
    ClusterLabels, FailoverKind, MoveOutcome, Outcome, PHASES, WriteResult, phase_name,
};
pub use logbook_core::metrics::{
    ClusterSummary, Note, ReplicaSummary, ShardSummary, Tracker, counted_failovers,
    summarize_cluster,
};
use logbook_core::metrics::{shards, tally};
pub use probe::{Answer, PrimaryHealth, primary_answered, replication_lag};

use families::Families;
use labels::{
    DecisionLabels, FailoverLabels, MoveLabels, OutcomeLabels, PhaseLabels, PodLabels,
    ResultLabels, ShardLabels, WriteLabels,
};

/// A series of a cluster whose label values are not a closed set known
/// here, remembered so that it can be removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Series {
    Decision {
        intent: &'static str,
        reason: &'static str,
    },
    Outcome {
        intent: &'static str,
        outcome: &'static str,
    },
    Lag(String),
    /// A Valkey Cluster shard's gauges, by its first slot.
    Shard(String),
}

struct Inner {
    registry: Registry,
    families: Families,
    /// Every cluster with series, and those of its series to remove by
    /// name.
    clusters: Mutex<HashMap<ClusterLabels, HashSet<Series>>>,
}

/// The registry and families of one operator run. Cloning is cheap;
/// clones share everything.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, `logbook_build_info` set, nothing else
    /// recorded yet.
    pub fn new() -> Self {
        let (families, registry) = Families::registered();
        Self {
            inner: Arc::new(Inner {
                registry,
                families,
                clusters: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn families(&self) -> &Families {
        &self.inner.families
    }

    fn clusters(&self) -> MutexGuard<'_, HashMap<ClusterLabels, HashSet<Series>>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.inner
            .clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that `cluster` has series, and `series` among them.
    fn remember(&self, cluster: &ClusterLabels, series: Option<Series>) {
        let mut clusters = self.clusters();
        let known = clusters.entry(cluster.clone()).or_default();
        if let Some(series) = series {
            known.insert(series);
        }
    }

    /// The scrape body in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut body = String::new();
        // Writing to a String cannot fail; a metric that failed to encode
        // would leave a partial body, which the scraper reports.
        if prometheus_client::encoding::text::encode(&mut body, &self.inner.registry).is_err() {
            tracing::warn!("cannot encode the metrics");
        }
        match format {
            Format::OpenMetrics => body,
            Format::Prometheus => to_prometheus_text(&body),
        }
    }

    /// One reconcile ended after `elapsed`, `ok` or not.
    pub fn observe_reconcile(&self, elapsed: Duration, ok: bool) {
        let f = self.families();
        let result = if ok { "ok" } else { "error" };
        f.reconciles.get_or_create(&ResultLabels { result }).inc();
        f.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// This instance now leads (`true`) or follows; `changed` counts a
    /// transition (a new term while leading is one too).
    pub fn observe_leadership(&self, leading: bool, changed: bool) {
        let f = self.families();
        f.leader.set(i64::from(leading));
        if changed {
            f.leader_transitions.inc();
        }
    }

    /// Events committed to `cluster`'s journal: `events` of them in
    /// `bytes` of frames, the head now at `head_seq`, with what they
    /// noted (see [`Tracker::fold`]).
    pub fn observe_appended(
        &self,
        cluster: &ClusterLabels,
        events: u64,
        bytes: u64,
        head_seq: u64,
        notes: &[Note],
    ) {
        let f = self.families();
        self.remember(cluster, None);
        f.journal_appends.get_or_create(cluster).inc_by(events);
        f.journal_bytes.get_or_create(cluster).inc_by(bytes);
        f.journal_head_seq
            .get_or_create(cluster)
            .set(i64::try_from(head_seq).unwrap_or(i64::MAX));
        for note in notes {
            self.observe_note(cluster, note);
        }
    }

    fn observe_note(&self, cluster: &ClusterLabels, note: &Note) {
        let f = self.families();
        let (namespace, name) = (cluster.namespace.clone(), cluster.valkeycluster.clone());
        match *note {
            Note::Decision { intent, reason } => {
                self.remember(cluster, Some(Series::Decision { intent, reason }));
                let labels = DecisionLabels {
                    namespace,
                    valkeycluster: name,
                    intent,
                    reason,
                };
                f.decisions.get_or_create(&labels).inc();
            }
            Note::Outcome { intent, outcome } => {
                let outcome = outcome.as_str();
                self.remember(cluster, Some(Series::Outcome { intent, outcome }));
                let labels = OutcomeLabels {
                    namespace,
                    valkeycluster: name,
                    intent,
                    outcome,
                };
                f.intent_outcomes.get_or_create(&labels).inc();
            }
            Note::SlotMove { outcome } => {
                let labels = MoveLabels {
                    namespace,
                    valkeycluster: name,
                    outcome: outcome.as_str(),
                };
                f.slot_moves.get_or_create(&labels).inc();
            }
            Note::Backup { failed } => {
                let labels = MoveLabels {
                    namespace,
                    valkeycluster: name,
                    outcome: backup_outcome(failed),
                };
                f.backups.get_or_create(&labels).inc();
            }
            Note::Failover { kind, seconds } => {
                let labels = FailoverLabels {
                    namespace,
                    valkeycluster: name,
                    kind: kind.as_str(),
                };
                f.failovers.get_or_create(&labels).inc();
                if let Some(seconds) = seconds {
                    f.failover_duration.get_or_create(&labels).observe(seconds);
                }
            }
        }
    }

    /// One write of a journal ConfigMap of `cluster` ended with `result`.
    pub fn observe_configmap_write(&self, cluster: &ClusterLabels, result: WriteResult) {
        self.remember(cluster, None);
        let labels = WriteLabels {
            namespace: cluster.namespace.clone(),
            valkeycluster: cluster.valkeycluster.clone(),
            result: result.as_str(),
        };
        self.families()
            .configmap_writes
            .get_or_create(&labels)
            .inc();
    }

    /// Whether `cluster`'s journal can be trusted.
    pub fn set_journal_healthy(&self, cluster: &ClusterLabels, healthy: bool) {
        self.remember(cluster, None);
        self.families()
            .journal_healthy
            .get_or_create(cluster)
            .set(i64::from(healthy));
    }

    /// Whether `cluster`'s Ready condition is True.
    pub fn set_ready(&self, cluster: &ClusterLabels, ready: bool) {
        self.remember(cluster, None);
        self.families()
            .cluster_ready
            .get_or_create(cluster)
            .set(i64::from(ready));
    }

    /// The Ready condition and phase the operator publishes for `cluster`.
    pub fn set_status(&self, cluster: &ClusterLabels, ready: bool, phase: Option<ClusterPhase>) {
        let f = self.families();
        self.set_ready(cluster, ready);
        for p in PHASES {
            let labels = PhaseLabels {
                namespace: cluster.namespace.clone(),
                valkeycluster: cluster.valkeycluster.clone(),
                phase: phase_name(p),
            };
            f.cluster_phase
                .get_or_create(&labels)
                .set(i64::from(phase == Some(p)));
        }
        // Every failover counter exists from 0, so the first failover is
        // an increase a rule sees (`increase()` over a series that appears
        // at 1 is 0).
        for kind in FailoverKind::ALL {
            let labels = FailoverLabels {
                namespace: cluster.namespace.clone(),
                valkeycluster: cluster.valkeycluster.clone(),
                kind: kind.as_str(),
            };
            drop(f.failovers.get_or_create(&labels));
        }
    }

    /// What a probe round of `cluster` found: how long the primary has
    /// been unhealthy, and each replica's lag (replicas absent from `lag`
    /// lose their series).
    pub fn set_probed(
        &self,
        cluster: &ClusterLabels,
        unhealthy_seconds: f64,
        lag: &BTreeMap<String, u64>,
    ) {
        let f = self.families();
        f.primary_unhealthy
            .get_or_create(cluster)
            .set(unhealthy_seconds);
        let pod_labels = |pod: &str| PodLabels {
            namespace: cluster.namespace.clone(),
            valkeycluster: cluster.valkeycluster.clone(),
            pod: pod.to_owned(),
        };
        let mut clusters = self.clusters();
        let known = clusters.entry(cluster.clone()).or_default();
        known.retain(|series| match series {
            Series::Lag(pod) if !lag.contains_key(pod) => {
                f.replication_lag.remove(&pod_labels(pod));
                false
            }
            _ => true,
        });
        for (pod, bytes) in lag {
            known.insert(Series::Lag(pod.clone()));
            f.replication_lag
                .get_or_create(&pod_labels(pod))
                .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
        }
    }

    /// What the projection shows of a Valkey Cluster's shards; `None` for
    /// another topology (which exports none of these series). A shard no
    /// longer in `summary` (resharded away) loses its series.
    pub fn set_cluster_shards(&self, cluster: &ClusterLabels, summary: Option<&ClusterSummary>) {
        let f = self.families();
        let Some(summary) = summary else {
            self.forget_cluster_shards(cluster);
            return;
        };
        let gauge = |v: u32| i64::from(v);
        let count = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        f.cluster_formed
            .get_or_create(cluster)
            .set(i64::from(summary.formed));
        f.cluster_slots_owned
            .get_or_create(cluster)
            .set(gauge(summary.slots_owned));
        f.cluster_state_ok
            .get_or_create(cluster)
            .set(i64::from(summary.state_ok));
        f.cluster_shards_desired
            .get_or_create(cluster)
            .set(gauge(summary.shards_wanted));
        let shard_labels = |shard: &str| ShardLabels {
            namespace: cluster.namespace.clone(),
            valkeycluster: cluster.valkeycluster.clone(),
            shard: shard.to_owned(),
        };
        let mut clusters = self.clusters();
        let known = clusters.entry(cluster.clone()).or_default();
        known.retain(|series| match series {
            Series::Shard(shard) if !summary.shards.iter().any(|s| s.label() == *shard) => {
                remove_shard(f, &shard_labels(shard));
                false
            }
            _ => true,
        });
        for shard in &summary.shards {
            let label = shard.label();
            let labels = shard_labels(&label);
            known.insert(Series::Shard(label));
            f.shard_slots
                .get_or_create(&labels)
                .set(gauge(shard.slot_count));
            f.shard_served
                .get_or_create(&labels)
                .set(i64::from(shard.served));
            f.shard_replicas
                .get_or_create(&labels)
                .set(count(shard.replicas.len()));
            f.shard_replicas_in_sync
                .get_or_create(&labels)
                .set(count(shard.in_sync()));
        }
    }

    /// A standby's lag as last read (`lag` `None`: unknown, and the
    /// series is removed) and whether it is behind; `standby` false: not
    /// (or no longer) a standby, and both series are removed.
    pub fn set_standby(
        &self,
        cluster: &ClusterLabels,
        standby: bool,
        lag: Option<u64>,
        behind: bool,
    ) {
        let f = self.families();
        if !standby {
            f.standby_lag.remove(cluster);
            f.standby_behind.remove(cluster);
            return;
        }
        self.remember(cluster, None);
        match lag {
            Some(lag) => {
                f.standby_lag
                    .get_or_create(cluster)
                    .set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
            None => {
                f.standby_lag.remove(cluster);
            }
        }
        f.standby_behind
            .get_or_create(cluster)
            .set(i64::from(behind));
    }

    /// The continuous archive as the projection tells it: the oldest
    /// restorable moment (Unix seconds), chains live and ended; all
    /// removed while there is none.
    pub fn set_archive(&self, cluster: &ClusterLabels, archive: Option<(Option<i64>, i64, i64)>) {
        let f = self.families();
        match archive {
            Some((oldest, live, ended)) => {
                self.remember(cluster, None);
                match oldest {
                    Some(at) => {
                        f.archive_oldest.get_or_create(cluster).set(at);
                    }
                    None => {
                        f.archive_oldest.remove(cluster);
                    }
                }
                f.archive_live_chains.get_or_create(cluster).set(live);
                f.archive_chain_breaks.get_or_create(cluster).set(ended);
            }
            None => {
                f.archive_oldest.remove(cluster);
                f.archive_live_chains.remove(cluster);
                f.archive_chain_breaks.remove(cluster);
                f.archive_lag.remove(cluster);
            }
        }
    }

    /// How far the archive's bucket is behind the stream, in seconds
    /// (`None` removes it).
    pub fn set_archive_lag(&self, cluster: &ClusterLabels, seconds: Option<f64>) {
        let f = self.families();
        match seconds {
            Some(s) => {
                self.remember(cluster, None);
                f.archive_lag.get_or_create(cluster).set(s);
            }
            None => {
                f.archive_lag.remove(cluster);
            }
        }
    }

    /// Where a Valkey Cluster's reshard stands, as its published status
    /// says (`None`: another topology, which exports none of these
    /// series). The slot move counters exist from 0 for a Valkey Cluster,
    /// so a rule sees the first move.
    pub fn set_reshard(&self, cluster: &ClusterLabels, reshard: Option<&ReshardGauges>) {
        let f = self.families();
        let Some(r) = reshard else {
            remove_reshard(f, cluster);
            return;
        };
        self.remember(cluster, None);
        f.reshard_slots_remaining
            .get_or_create(cluster)
            .set(i64::from(r.slots_remaining));
        f.reshard_migrations_running
            .get_or_create(cluster)
            .set(i64::from(r.migrations_running));
        f.reshard_given_up
            .get_or_create(cluster)
            .set(i64::from(r.given_up));
        for outcome in MoveOutcome::ALL {
            drop(f.slot_moves.get_or_create(&MoveLabels {
                namespace: cluster.namespace.clone(),
                valkeycluster: cluster.valkeycluster.clone(),
                outcome: outcome.as_str(),
            }));
        }
    }

    /// What the status says of the Sentinels (`None`: another topology,
    /// which exports none of these series).
    pub fn set_sentinels(
        &self,
        cluster: &ClusterLabels,
        sentinel: Option<&logbook_crds::v1alpha1::SentinelStatus>,
    ) {
        let f = self.families();
        let Some(s) = sentinel else {
            remove_sentinels(f, cluster);
            return;
        };
        self.remember(cluster, None);
        f.sentinels_answering
            .get_or_create(cluster)
            .set(i64::from(s.answering));
        f.sentinels_agreeing
            .get_or_create(cluster)
            .set(i64::from(s.agreeing));
        f.sentinel_quorum_reachable
            .get_or_create(cluster)
            .set(i64::from(s.quorum_reachable));
    }

    /// The cluster's backup gauges: when its latest backup completed and
    /// its size, and the schedule's interval; each removed when unknown.
    /// The backup counters exist from 0 (a rule's `increase()` sees the
    /// first failure).
    pub fn set_backup(
        &self,
        cluster: &ClusterLabels,
        last: Option<(i64, u64)>,
        interval_seconds: Option<i64>,
    ) {
        let f = self.families();
        self.remember(cluster, None);
        for failed in [false, true] {
            drop(f.backups.get_or_create(&MoveLabels {
                namespace: cluster.namespace.clone(),
                valkeycluster: cluster.valkeycluster.clone(),
                outcome: backup_outcome(failed),
            }));
        }
        match last {
            Some((at, bytes)) => {
                self.remember(cluster, None);
                f.backup_last_success.get_or_create(cluster).set(at);
                f.backup_last_bytes
                    .get_or_create(cluster)
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            None => {
                f.backup_last_success.remove(cluster);
                f.backup_last_bytes.remove(cluster);
            }
        }
        match interval_seconds {
            Some(seconds) => {
                self.remember(cluster, None);
                f.backup_max_interval.get_or_create(cluster).set(seconds);
            }
            None => {
                f.backup_max_interval.remove(cluster);
            }
        }
    }

    /// Removes `cluster`'s Valkey Cluster series (its topology changed).
    /// When the cluster's certificate expires (Unix seconds), or `None`
    /// (no TLS, or not read yet): the series removed.
    pub fn set_certificate_expiry(&self, cluster: &ClusterLabels, not_after: Option<i64>) {
        let f = self.families();
        match not_after {
            Some(at) => {
                self.remember(cluster, None);
                f.certificate_expiry.get_or_create(cluster).set(at);
            }
            None => {
                f.certificate_expiry.remove(cluster);
            }
        }
    }

    fn forget_cluster_shards(&self, cluster: &ClusterLabels) {
        let f = self.families();
        let mut clusters = self.clusters();
        let Some(known) = clusters.get_mut(cluster) else {
            return;
        };
        known.retain(|series| match series {
            Series::Shard(shard) => {
                remove_shard(
                    f,
                    &ShardLabels {
                        namespace: cluster.namespace.clone(),
                        valkeycluster: cluster.valkeycluster.clone(),
                        shard: shard.clone(),
                    },
                );
                false
            }
            _ => true,
        });
        for family in cluster_shard_families(f) {
            family.remove_series(cluster);
        }
    }

    /// Removes every series of `cluster` (deleted, or no longer led here).
    pub fn forget_cluster(&self, cluster: &ClusterLabels) {
        let known = self.clusters().remove(cluster).unwrap_or_default();
        let f = self.families();
        let (namespace, name) = (&cluster.namespace, &cluster.valkeycluster);
        for series in known {
            match series {
                Series::Decision { intent, reason } => {
                    f.decisions.remove(&DecisionLabels {
                        namespace: namespace.clone(),
                        valkeycluster: name.clone(),
                        intent,
                        reason,
                    });
                }
                Series::Outcome { intent, outcome } => {
                    f.intent_outcomes.remove(&OutcomeLabels {
                        namespace: namespace.clone(),
                        valkeycluster: name.clone(),
                        intent,
                        outcome,
                    });
                }
                Series::Lag(pod) => {
                    f.replication_lag.remove(&PodLabels {
                        namespace: namespace.clone(),
                        valkeycluster: name.clone(),
                        pod,
                    });
                }
                Series::Shard(shard) => remove_shard(
                    f,
                    &ShardLabels {
                        namespace: namespace.clone(),
                        valkeycluster: name.clone(),
                        shard,
                    },
                ),
            }
        }
        for family in cluster_shard_families(f) {
            family.remove_series(cluster);
        }
        remove_reshard(f, cluster);
        remove_sentinels(f, cluster);
        for family in [
            &f.primary_unhealthy as &dyn Remove<ClusterLabels>,
            &f.backup_last_success,
            &f.backup_last_bytes,
            &f.backup_max_interval,
            &f.certificate_expiry,
            &f.standby_lag,
            &f.standby_behind,
            &f.archive_oldest,
            &f.archive_lag,
            &f.archive_live_chains,
            &f.archive_chain_breaks,
            &f.journal_appends,
            &f.journal_bytes,
            &f.journal_head_seq,
            &f.journal_healthy,
            &f.cluster_ready,
        ] {
            family.remove_series(cluster);
        }
        for kind in FailoverKind::ALL {
            let labels = FailoverLabels {
                namespace: namespace.clone(),
                valkeycluster: name.clone(),
                kind: kind.as_str(),
            };
            f.failovers.remove(&labels);
            f.failover_duration.remove(&labels);
        }
        for failed in [false, true] {
            f.backups.remove(&MoveLabels {
                namespace: namespace.clone(),
                valkeycluster: name.clone(),
                outcome: backup_outcome(failed),
            });
        }
        for result in WriteResult::ALL {
            f.configmap_writes.remove(&WriteLabels {
                namespace: namespace.clone(),
                valkeycluster: name.clone(),
                result: result.as_str(),
            });
        }
        for phase in PHASES {
            f.cluster_phase.remove(&PhaseLabels {
                namespace: namespace.clone(),
                valkeycluster: name.clone(),
                phase: phase_name(phase),
            });
        }
    }

    /// Removes the series of every cluster (this instance stopped leading).
    pub fn forget_all_clusters(&self) {
        let clusters: Vec<ClusterLabels> = self.clusters().keys().cloned().collect();
        for cluster in clusters {
            self.forget_cluster(&cluster);
        }
    }
}

/// The Valkey Cluster families of per-cluster series.
fn cluster_shard_families(f: &Families) -> [&dyn Remove<ClusterLabels>; 4] {
    [
        &f.cluster_formed,
        &f.cluster_slots_owned,
        &f.cluster_state_ok,
        &f.cluster_shards_desired,
    ]
}

/// A Valkey Cluster's reshard gauges, from `status.reshard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReshardGauges {
    /// Slots still to move.
    pub slots_remaining: u32,
    /// Migration jobs under way.
    pub migrations_running: u32,
    /// A move was given up (`phase: Failing`).
    pub given_up: bool,
}

impl ReshardGauges {
    /// The gauges of a Valkey Cluster whose `status.reshard` is
    /// `reshard` (`None`: the slots are where the spec wants them).
    pub fn from_status(reshard: Option<&logbook_crds::v1alpha1::ReshardStatus>) -> Self {
        reshard.map_or_else(Self::default, |r| Self {
            slots_remaining: u32::try_from(r.slots_remaining).unwrap_or(0),
            migrations_running: u32::try_from(r.migrations_running).unwrap_or(0),
            given_up: r.phase == "Failing",
        })
    }
}

/// Removes a cluster's reshard series.
fn remove_reshard(f: &Families, cluster: &ClusterLabels) {
    for family in [
        &f.reshard_slots_remaining as &dyn Remove<ClusterLabels>,
        &f.reshard_migrations_running,
        &f.reshard_given_up,
    ] {
        family.remove_series(cluster);
    }
    for outcome in MoveOutcome::ALL {
        f.slot_moves.remove(&MoveLabels {
            namespace: cluster.namespace.clone(),
            valkeycluster: cluster.valkeycluster.clone(),
            outcome: outcome.as_str(),
        });
    }
}

/// Removes a cluster's Sentinel series.
fn remove_sentinels(f: &Families, cluster: &ClusterLabels) {
    for family in [
        &f.sentinels_answering as &dyn Remove<ClusterLabels>,
        &f.sentinels_agreeing,
        &f.sentinel_quorum_reachable,
    ] {
        family.remove_series(cluster);
    }
}

/// Removes one shard's series.
fn remove_shard(f: &Families, labels: &ShardLabels) {
    for family in [
        &f.shard_slots,
        &f.shard_served,
        &f.shard_replicas,
        &f.shard_replicas_in_sync,
    ] {
        family.remove(labels);
    }
}

/// Families of per-cluster series, removed alike.
trait Remove<S> {
    fn remove_series(&self, labels: &S);
}

impl<M, C: MetricConstructor<M>> Remove<ClusterLabels> for Family<ClusterLabels, M, C> {
    fn remove_series(&self, labels: &ClusterLabels) {
        self.remove(labels);
    }
}

#[cfg(test)]
mod agreement_tests;
#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod reshard_tests;
#[cfg(test)]
mod tests;

/// The `outcome` label of `logbook_backups_total`.
fn backup_outcome(failed: bool) -> &'static str {
    if failed { "failed" } else { "completed" }
}
