//! Every default value and every numeric bound of the `v1alpha1` API, in one
//! place.
//!
//! The serde defaults, the `Default` impls, the schema (`default`, `minimum`,
//! `maximum`), the validation messages and the `effective_*` helpers all read
//! these constants, so a default or a bound is changed here and nowhere else.
//! This module holds data only; it must not grow logic.

/// Image used when `spec.image` is not set.
pub const IMAGE: &str = "valkey/valkey:9.1";

/// The metrics exporter's image when `spec.metrics.image` is not set:
/// oliver006's `redis_exporter`, the exporter every Redis and Valkey chart
/// runs, at the version Debian ships (`prometheus-redis-exporter`), which
/// is what `make images` builds it from and what localkube runs for it.
pub const EXPORTER_IMAGE: &str = "oliver006/redis_exporter:v1.45.0";

/// Data pods for Standalone (always exactly one).
pub const STANDALONE_REPLICAS: i32 = 1;
/// Data pods (primary plus replicas) for Replication and Sentinel when unset.
pub const REPLICAS: i32 = 3;
/// Smallest `spec.replicas` for Replication and Sentinel.
pub const REPLICAS_MIN: i32 = 1;
/// Largest `spec.replicas` for Replication and Sentinel.
pub const REPLICAS_MAX: i32 = 100;

/// Shards (primaries) of a Cluster when unset.
pub const SHARDS: i32 = 3;
/// Smallest `spec.shards`.
pub const SHARDS_MIN: i32 = 1;
/// Largest `spec.shards`; 500 primaries keeps every shard above 32 slots.
pub const SHARDS_MAX: i32 = 500;
/// Replicas of each Cluster shard when unset.
pub const REPLICAS_PER_SHARD: i32 = 1;
/// Smallest `spec.replicasPerShard` (0: primaries only, no failover).
pub const REPLICAS_PER_SHARD_MIN: i32 = 0;
/// Largest `spec.replicasPerShard`.
pub const REPLICAS_PER_SHARD_MAX: i32 = 5;

/// `cluster-node-timeout` when unset, in milliseconds.
pub const CLUSTER_NODE_TIMEOUT_MS: i32 = 5_000;
/// Smallest `spec.clusterNodeTimeoutMilliseconds`: below a second, a GC pause
/// or a busy node triggers failovers.
pub const CLUSTER_NODE_TIMEOUT_MS_MIN: i32 = 1_000;
/// Largest `spec.clusterNodeTimeoutMilliseconds` (10 minutes).
pub const CLUSTER_NODE_TIMEOUT_MS_MAX: i32 = 600_000;

/// Sentinel processes when unset.
pub const SENTINEL_REPLICAS: i32 = 3;
/// Fewest Sentinels: fewer than three cannot form a majority after one loss.
pub const SENTINEL_REPLICAS_MIN: i32 = 3;
/// Most Sentinels; more only adds gossip.
pub const SENTINEL_REPLICAS_MAX: i32 = 9;
/// Sentinel `down-after-milliseconds` when unset.
pub const SENTINEL_DOWN_AFTER_MS: i32 = 5_000;
/// Smallest Sentinel `down-after-milliseconds`.
pub const SENTINEL_DOWN_AFTER_MS_MIN: i32 = 1_000;
/// Largest Sentinel `down-after-milliseconds` (10 minutes).
pub const SENTINEL_DOWN_AFTER_MS_MAX: i32 = 600_000;
/// Sentinel `failover-timeout` when unset (one minute): the cool-down
/// between two failovers of the same primary, and how long a failover may
/// take before another Sentinel retries it.
pub const SENTINEL_FAILOVER_TIMEOUT_MS: i32 = 60_000;
/// Smallest Sentinel `failover-timeout`: below a second a failover is
/// abandoned before the replicas can even be reconfigured.
pub const SENTINEL_FAILOVER_TIMEOUT_MS_MIN: i32 = 1_000;
/// Largest Sentinel `failover-timeout` (one hour).
pub const SENTINEL_FAILOVER_TIMEOUT_MS_MAX: i32 = 3_600_000;
/// Sentinel `parallel-syncs` when unset: one replica resyncs with a new
/// primary at a time, so the others keep serving reads meanwhile.
pub const SENTINEL_PARALLEL_SYNCS: i32 = 1;
/// Smallest Sentinel `parallel-syncs`.
pub const SENTINEL_PARALLEL_SYNCS_MIN: i32 = 1;
/// Largest Sentinel `parallel-syncs`.
pub const SENTINEL_PARALLEL_SYNCS_MAX: i32 = 16;

/// Interval between the operator's health probes when unset, in milliseconds.
pub const PROBE_INTERVAL_MS: i32 = 500;
/// Smallest probe interval: faster probing only loads the server.
pub const PROBE_INTERVAL_MS_MIN: i32 = 100;
/// Largest probe interval (one minute).
pub const PROBE_INTERVAL_MS_MAX: i32 = 60_000;
/// Consecutive failed probes before a primary is considered failed, when unset.
pub const FAILURE_THRESHOLD: i32 = 3;
/// Smallest failure threshold.
pub const FAILURE_THRESHOLD_MIN: i32 = 1;
/// Largest failure threshold.
pub const FAILURE_THRESHOLD_MAX: i32 = 100;

/// Storage size of each data pod's volume when unset.
pub const STORAGE_SIZE: &str = "1Gi";

/// PodDisruptionBudget `maxUnavailable` when unset.
pub const PDB_MAX_UNAVAILABLE: i32 = 1;
/// Smallest PodDisruptionBudget `maxUnavailable`: 0 would block node drains forever.
pub const PDB_MAX_UNAVAILABLE_MIN: i32 = 1;

/// Events kept in the in-cluster journal before compaction, when unset.
pub const JOURNAL_MAX_EVENTS: i64 = 100_000;
/// Smallest `spec.journal.maxEvents`.
pub const JOURNAL_MAX_EVENTS_MIN: i64 = 1_000;
/// Largest `spec.journal.maxEvents`.
pub const JOURNAL_MAX_EVENTS_MAX: i64 = 10_000_000;

/// cert-manager issuer kind when `spec.tls.issuerRef.kind` is unset.
pub const ISSUER_KIND: &str = "Issuer";
/// cert-manager API group when `spec.tls.issuerRef.group` is unset.
pub const ISSUER_GROUP: &str = "cert-manager.io";

/// Suffix of the connection Secret's name when `spec.connectionSecret` is unset.
pub const CONNECTION_SECRET_SUFFIX: &str = "-connection";
/// Suffix of the generated password Secret's name when `spec.auth.passwordSecret` is unset.
pub const PASSWORD_SECRET_SUFFIX: &str = "-password";
/// Suffix of the Secret holding a TLS cluster's certificate when the
/// operator or cert-manager writes it (`<name>-tls`).
pub const TLS_SECRET_SUFFIX: &str = "-tls";
/// Suffix of the Secret holding the CA the operator runs for a cluster.
pub const TLS_CA_SECRET_SUFFIX: &str = "-tls-ca";
/// Key of the password inside the generated password Secret.
pub const PASSWORD_SECRET_KEY: &str = "password";

/// serde/schemars default functions; `#[serde(default = "...")]` needs a path.
pub(crate) mod serde_fns {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    pub(crate) fn image() -> String {
        super::IMAGE.to_owned()
    }
    pub(crate) fn sentinel_replicas() -> i32 {
        super::SENTINEL_REPLICAS
    }
    pub(crate) fn sentinel_down_after_ms() -> i32 {
        super::SENTINEL_DOWN_AFTER_MS
    }
    pub(crate) fn sentinel_failover_timeout_ms() -> i32 {
        super::SENTINEL_FAILOVER_TIMEOUT_MS
    }
    pub(crate) fn sentinel_parallel_syncs() -> i32 {
        super::SENTINEL_PARALLEL_SYNCS
    }
    pub(crate) fn storage_size() -> Quantity {
        Quantity(super::STORAGE_SIZE.to_owned())
    }
    pub(crate) fn issuer_kind() -> String {
        super::ISSUER_KIND.to_owned()
    }
    pub(crate) fn issuer_group() -> String {
        super::ISSUER_GROUP.to_owned()
    }
}
