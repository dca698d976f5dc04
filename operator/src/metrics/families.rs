//! The families of [`Metrics`](super::Metrics): their names, types, help
//! texts and buckets, registered once per operator run.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{
    ClusterLabels, DecisionLabels, FailoverLabels, MoveLabels, OutcomeLabels, PhaseLabels,
    PodLabels, ResultLabels, ShardLabels, VersionLabels, WriteLabels,
};

/// Buckets of `logbook_reconcile_duration_seconds`: a reconcile reads a
/// few objects (milliseconds) and may carry out intents (seconds).
const RECONCILE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of `logbook_failover_duration_seconds`: from a promotion
/// decided a tenth of a second after the failure to one that waited out
/// a slow primary for two minutes.
const FAILOVER_BUCKETS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
];

fn failover_histogram() -> Histogram {
    Histogram::new(FAILOVER_BUCKETS)
}

/// A gauge of seconds.
type Seconds = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The families.
pub(super) struct Families {
    pub(super) reconciles: Family<ResultLabels, Counter>,
    pub(super) reconcile_duration: Histogram,
    pub(super) decisions: Family<DecisionLabels, Counter>,
    pub(super) intent_outcomes: Family<OutcomeLabels, Counter>,
    pub(super) failovers: Family<FailoverLabels, Counter>,
    pub(super) failover_duration: Family<FailoverLabels, Histogram, fn() -> Histogram>,
    pub(super) primary_unhealthy: Family<ClusterLabels, Seconds>,
    pub(super) replication_lag: Family<PodLabels, Gauge>,
    pub(super) journal_appends: Family<ClusterLabels, Counter>,
    pub(super) journal_bytes: Family<ClusterLabels, Counter>,
    pub(super) journal_head_seq: Family<ClusterLabels, Gauge>,
    pub(super) configmap_writes: Family<WriteLabels, Counter>,
    pub(super) journal_healthy: Family<ClusterLabels, Gauge>,
    pub(super) cluster_ready: Family<ClusterLabels, Gauge>,
    pub(super) cluster_phase: Family<PhaseLabels, Gauge>,
    pub(super) cluster_formed: Family<ClusterLabels, Gauge>,
    pub(super) cluster_slots_owned: Family<ClusterLabels, Gauge>,
    pub(super) cluster_state_ok: Family<ClusterLabels, Gauge>,
    pub(super) cluster_shards_desired: Family<ClusterLabels, Gauge>,
    pub(super) shard_slots: Family<ShardLabels, Gauge>,
    pub(super) shard_served: Family<ShardLabels, Gauge>,
    pub(super) shard_replicas: Family<ShardLabels, Gauge>,
    pub(super) shard_replicas_in_sync: Family<ShardLabels, Gauge>,
    pub(super) reshard_slots_remaining: Family<ClusterLabels, Gauge>,
    pub(super) reshard_migrations_running: Family<ClusterLabels, Gauge>,
    pub(super) reshard_given_up: Family<ClusterLabels, Gauge>,
    pub(super) slot_moves: Family<MoveLabels, Counter>,
    pub(super) sentinels_answering: Family<ClusterLabels, Gauge>,
    pub(super) sentinels_agreeing: Family<ClusterLabels, Gauge>,
    pub(super) sentinel_quorum_reachable: Family<ClusterLabels, Gauge>,
    pub(super) backup_last_success: Family<ClusterLabels, Gauge>,
    pub(super) backup_last_bytes: Family<ClusterLabels, Gauge>,
    pub(super) backup_max_interval: Family<ClusterLabels, Gauge>,
    pub(super) backups: Family<MoveLabels, Counter>,
    pub(super) certificate_expiry: Family<ClusterLabels, Gauge>,
    pub(super) standby_lag: Family<ClusterLabels, Gauge>,
    pub(super) standby_behind: Family<ClusterLabels, Gauge>,
    pub(super) archive_lag: Family<ClusterLabels, Seconds>,
    pub(super) archive_oldest: Family<ClusterLabels, Gauge>,
    pub(super) archive_live_chains: Family<ClusterLabels, Gauge>,
    pub(super) archive_chain_breaks: Family<ClusterLabels, Gauge>,
    pub(super) leader: Gauge,
    pub(super) leader_transitions: Counter,
    pub(super) build_info: Family<VersionLabels, Gauge>,
}

impl Families {
    /// Every family, registered in a new registry; `logbook_build_info`
    /// set, nothing else recorded.
    pub(super) fn registered() -> (Self, Registry) {
        let f = Families {
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(RECONCILE_BUCKETS),
            decisions: Family::default(),
            intent_outcomes: Family::default(),
            failovers: Family::default(),
            failover_duration: Family::new_with_constructor(failover_histogram),
            primary_unhealthy: Family::default(),
            replication_lag: Family::default(),
            journal_appends: Family::default(),
            journal_bytes: Family::default(),
            journal_head_seq: Family::default(),
            configmap_writes: Family::default(),
            journal_healthy: Family::default(),
            cluster_ready: Family::default(),
            cluster_phase: Family::default(),
            cluster_formed: Family::default(),
            cluster_slots_owned: Family::default(),
            cluster_state_ok: Family::default(),
            cluster_shards_desired: Family::default(),
            shard_slots: Family::default(),
            shard_served: Family::default(),
            shard_replicas: Family::default(),
            shard_replicas_in_sync: Family::default(),
            reshard_slots_remaining: Family::default(),
            sentinels_answering: Family::default(),
            sentinels_agreeing: Family::default(),
            sentinel_quorum_reachable: Family::default(),
            backup_last_success: Family::default(),
            backup_last_bytes: Family::default(),
            backup_max_interval: Family::default(),
            backups: Family::default(),
            certificate_expiry: Family::default(),
            standby_lag: Family::default(),
            standby_behind: Family::default(),
            archive_lag: Family::default(),
            archive_oldest: Family::default(),
            archive_live_chains: Family::default(),
            archive_chain_breaks: Family::default(),
            reshard_migrations_running: Family::default(),
            reshard_given_up: Family::default(),
            slot_moves: Family::default(),
            leader: Gauge::default(),
            leader_transitions: Counter::default(),
            build_info: Family::default(),
        };
        let mut r = Registry::default();
        // Counters are registered without `_total`: the encoder adds it.
        f.register_decisions(&mut r);
        f.register_journal(&mut r);
        f.register_clusters(&mut r);
        f.register_sentinel_backup_standby(&mut r);
        f.register_reshard_and_leadership(&mut r);
        f.build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        (f, r)
    }

    /// Reconciles, decisions, intents, failovers and the replicas.
    fn register_decisions(&self, r: &mut Registry) {
        r.register(
            "logbook_reconciles",
            "ValkeyCluster reconciles, by result (ok or error)",
            self.reconciles.clone(),
        );
        r.register(
            "logbook_reconcile_duration_seconds",
            "Time one reconcile of a ValkeyCluster took",
            self.reconcile_duration.clone(),
        );
        r.register(
            "logbook_decisions",
            "Intents decided (journaled in Decided events), by intent and reason code",
            self.decisions.clone(),
        );
        r.register(
            "logbook_intent_outcomes",
            "Intents settled, by intent and outcome (succeeded, failed, abandoned)",
            self.intent_outcomes.clone(),
        );
        r.register(
            "logbook_failovers",
            "Changes of primary, by kind (automatic, planned, observed)",
            self.failovers.clone(),
        );
        r.register(
            "logbook_failover_duration_seconds",
            "Failover time: decision to promotion confirmed (automatic, planned), first failure journaled to new primary observed (observed)",
            self.failover_duration.clone(),
        );
        r.register(
            "logbook_primary_unhealthy_seconds",
            "Seconds since the primary last answered a probe as primary (0 while it does); in a Valkey Cluster, since every slot was owned and every shard's primary answered",
            self.primary_unhealthy.clone(),
        );
        r.register(
            "logbook_replication_lag_bytes",
            "Primary replication offset (in a Valkey Cluster, its shard's primary's) minus the replica's, per replica pod, as of the last probe round",
            self.replication_lag.clone(),
        );
    }

    /// The journal: appends, bytes, head, ConfigMap writes, health.
    fn register_journal(&self, r: &mut Registry) {
        r.register(
            "logbook_journal_appends",
            "Events committed to the cluster's journal",
            self.journal_appends.clone(),
        );
        r.register(
            "logbook_journal_appended_bytes",
            "Frame bytes committed to the cluster's journal",
            self.journal_bytes.clone(),
        );
        r.register(
            "logbook_journal_head_seq",
            "Seq of the last event committed to the cluster's journal",
            self.journal_head_seq.clone(),
        );
        r.register(
            "logbook_configmap_writes",
            "Writes of journal ConfigMaps, by result (ok, conflict: a 409 on the resourceVersion precondition, error)",
            self.configmap_writes.clone(),
        );
        r.register(
            "logbook_journal_healthy",
            "1 while the cluster's journal can be trusted, 0 when it is damaged and the operator does not act",
            self.journal_healthy.clone(),
        );
    }

    /// Phases and readiness, and a Valkey Cluster's formation and shards.
    fn register_clusters(&self, r: &mut Registry) {
        r.register(
            "logbook_cluster_ready",
            "1 while the cluster's Ready condition is True",
            self.cluster_ready.clone(),
        );
        r.register(
            "logbook_cluster_phase",
            "1 for the cluster's current phase, 0 for every other",
            self.cluster_phase.clone(),
        );
        // Valkey Cluster only: a Replication cluster has none of these.
        r.register(
            "logbook_cluster_formed",
            "Valkey Cluster: 1 once all 16384 slots have had an owner (formed), 0 while forming",
            self.cluster_formed.clone(),
        );
        r.register(
            "logbook_cluster_slots_owned",
            "Valkey Cluster: slots (of 16384) owned by a primary, as last observed",
            self.cluster_slots_owned.clone(),
        );
        r.register(
            "logbook_cluster_state_ok",
            "Valkey Cluster: 1 while every answering node last reported cluster_state:ok",
            self.cluster_state_ok.clone(),
        );
        r.register(
            "logbook_cluster_shards_desired",
            "Valkey Cluster: shards the spec asks for (spec.shards)",
            self.cluster_shards_desired.clone(),
        );
        r.register(
            "logbook_shard_slots",
            "Valkey Cluster: slots the shard owns; a shard is named by its first slot",
            self.shard_slots.clone(),
        );
        r.register(
            "logbook_shard_served",
            "Valkey Cluster: 1 while the shard's primary answers probes, 0 when it does not or its node is gone",
            self.shard_served.clone(),
        );
        r.register(
            "logbook_shard_replicas",
            "Valkey Cluster: replicas attached to the shard's primary",
            self.shard_replicas.clone(),
        );
        r.register(
            "logbook_shard_replicas_in_sync",
            "Valkey Cluster: replicas of the shard answering probes with their replication link up",
            self.shard_replicas_in_sync.clone(),
        );
    }

    /// Sentinel, backups and a standby.
    fn register_sentinel_backup_standby(&self, r: &mut Registry) {
        r.register(
            "logbook_sentinels_answering",
            "Sentinel: Sentinels answering the operator's probe (status.sentinel.answering)",
            self.sentinels_answering.clone(),
        );
        r.register(
            "logbook_sentinels_agreeing",
            "Sentinel: answering Sentinels that name the believed primary (status.sentinel.agreeing)",
            self.sentinels_agreeing.clone(),
        );
        r.register(
            "logbook_sentinel_quorum_reachable",
            "Sentinel: 1 while enough Sentinels agree on the primary to fail it over (the quorum, and a majority to elect a leader); 0 blocks planned hand-overs and rolls (condition SentinelQuorum)",
            self.sentinel_quorum_reachable.clone(),
        );
        // Backups: only for a cluster that has completed one or has a
        // schedule.
        r.register(
            "logbook_backup_last_success_timestamp_seconds",
            "Unix time the cluster's latest backup completed (every shard and its manifest in the bucket)",
            self.backup_last_success.clone(),
        );
        r.register(
            "logbook_backup_last_bytes",
            "Bytes of the cluster's latest completed backup (its shards' RDBs)",
            self.backup_last_bytes.clone(),
        );
        r.register(
            "logbook_backup_schedule_interval_seconds",
            "The longest gap between two fires of the cluster's backup schedule (the next few), for the LogbookBackupTooOld alert",
            self.backup_max_interval.clone(),
        );
        r.register(
            "logbook_backups",
            "Backup attempts ended, by outcome (completed, failed: each failed attempt, retried or not), counted from the journal's BackupCompleted and BackupFailed events; both exist from 0 once the cluster's status is known",
            self.backups.clone(),
        );
        r.register(
            "logbook_certificate_expiry_timestamp_seconds",
            "TLS: Unix time the cluster's certificate expires (status.tls.notAfter); absent without TLS or before the certificate is read",
            self.certificate_expiry.clone(),
        );
        r.register(
            "logbook_standby_lag_bytes",
            "A standby (spec.replicateFrom): bytes of the source's replication stream its primary has not yet, as of the operator's last read of both (absent while unknown)",
            self.standby_lag.clone(),
        );
        r.register(
            "logbook_archive_lag_seconds",
            "The continuous archive: the age of the oldest write received and not in the bucket yet, the largest over the shards (0 when every write received is uploaded); absent while the archive is off",
            self.archive_lag.clone(),
        );
        r.register(
            "logbook_archive_oldest_restorable_timestamp_seconds",
            "The continuous archive: the oldest moment a point-in-time restore can go back to (the earliest base kept)",
            self.archive_oldest.clone(),
        );
        r.register(
            "logbook_archive_live_chains",
            "The continuous archive: chains being written now (one per shard when all is well)",
            self.archive_live_chains.clone(),
        );
        r.register(
            "logbook_archive_chain_breaks",
            "The continuous archive: chains kept that ended (a position lost, a shard gone, the archive off); a rise means a moment the archive cannot restore across",
            self.archive_chain_breaks.clone(),
        );
        r.register(
            "logbook_standby_behind",
            "A standby: 1 while its lag is past spec.replicateFrom.maxLagBytes, or the source cannot be read",
            self.standby_behind.clone(),
        );
    }

    /// A Valkey Cluster's reshard and slot moves, leadership and the build.
    fn register_reshard_and_leadership(&self, r: &mut Registry) {
        r.register(
            "logbook_reshard_slots_remaining",
            "Valkey Cluster: slots still to move before the slots are where spec.shards wants them (status.reshard.slotsRemaining; 0 when balanced, or while the cluster is not settled enough to plan)",
            self.reshard_slots_remaining.clone(),
        );
        r.register(
            "logbook_reshard_migrations_running",
            "Valkey Cluster: atomic slot migration jobs seen under way (status.reshard.migrationsRunning)",
            self.reshard_migrations_running.clone(),
        );
        r.register(
            "logbook_reshard_given_up",
            "Valkey Cluster: 1 while a slot move failed with the same error as often as the operator allows and is no longer tried under this spec generation (status.reshard.phase Failing); any new generation tries again",
            self.reshard_given_up.clone(),
        );
        r.register(
            "logbook_slot_moves",
            "Valkey Cluster: slot moves (MoveSlots) ended, by outcome (succeeded, failed, ambiguous: the job failed after its source unpaused and slot ownership decided)",
            self.slot_moves.clone(),
        );
        r.register(
            "logbook_leader",
            "1 while this instance holds the leader-election Lease",
            self.leader.clone(),
        );
        r.register(
            "logbook_leader_transitions",
            "Changes of this instance's leadership (acquired, lost, or a new term)",
            self.leader_transitions.clone(),
        );
        r.register(
            "logbook_build_info",
            "The operator's version (always 1)",
            self.build_info.clone(),
        );
    }
}
