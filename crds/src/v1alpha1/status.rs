//! The published view of a ValkeyCluster: [`ValkeyClusterStatus`].
//!
//! Status is rebuilt from the journal's projection and written by the
//! operator; it is never read back as a source of truth. This module owns its
//! shape and the condition type names. Every field is optional so that an
//! older or newer operator can read what another wrote.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the cluster serves reads and writes as specified.
pub const CONDITION_READY: &str = "Ready";
/// Condition type: the operator is changing the cluster (create, roll, scale,
/// reshard, failover).
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: the cluster serves, with less redundancy than specified.
pub const CONDITION_DEGRADED: &str = "Degraded";
/// Condition type: the spec passed validation; `False` carries the reasons.
pub const CONDITION_SPEC_VALID: &str = "SpecValid";
/// Condition type: the journal accepts appends and its hash chain verifies.
pub const CONDITION_JOURNAL_HEALTHY: &str = "JournalHealthy";

/// Condition type (topology Sentinel): enough Sentinels answer and agree
/// on the primary to fail it over (the quorum to see it down and a
/// majority to elect a leader); `False` blocks planned hand-overs and
/// rolls, and says which Sentinels are missing or disagree.
pub const CONDITION_SENTINEL_QUORUM: &str = "SentinelQuorum";

/// Condition type (TLS): the certificate Secret holds a usable certificate
/// and every answering node serves it; `False` says what is missing
/// (a Secret, a key, cert-manager's certificate) or which nodes serve
/// another one.
pub const CONDITION_CERTIFICATE_READY: &str = "CertificateReady";

/// Every condition type the operator sets, in a stable order.
pub const CONDITION_TYPES: [&str; 7] = [
    CONDITION_READY,
    CONDITION_PROGRESSING,
    CONDITION_DEGRADED,
    CONDITION_SPEC_VALID,
    CONDITION_JOURNAL_HEALTHY,
    CONDITION_SENTINEL_QUORUM,
    CONDITION_CERTIFICATE_READY,
];

/// Lifecycle stage shown in `kubectl get vkc`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ClusterPhase {
    /// Accepted, nothing created yet.
    Pending,
    /// First creation in progress: pods starting, replication or slots being set up.
    Creating,
    /// Serving with the specified redundancy.
    Ready,
    /// Serving with less redundancy than specified (a replica or node is down).
    Degraded,
    /// A roll, scale, reshard or failover is in progress.
    Updating,
    /// Not serving, or the spec is invalid; see the conditions.
    Failed,
    /// `spec.paused` is set: observing and journaling only.
    Paused,
    /// Its user took it over by removing the ownership annotation
    /// `valkey.logbook.dev/cr` from its StatefulSet: the operator observes
    /// and journals only, until the annotation is back.
    Unbound,
    /// `spec.hibernated` is set: its data being made durable and its pods
    /// stopping (or waiting for an operation in progress to end first).
    Hibernating,
    /// Asleep: no pod runs; volumes, Services and Secrets are kept.
    Hibernated,
    /// `spec.hibernated` was unset: its pods are coming back as they were.
    Waking,
}

/// Observed state of a ValkeyCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ValkeyClusterStatus {
    /// Lifecycle stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClusterPhase>,
    /// Standard conditions; types are `Ready`, `Progressing`, `Degraded`,
    /// `SpecValid`, `JournalHealthy`, `SentinelQuorum` (topology Sentinel)
    /// and `CertificateReady` (with TLS).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `metadata.generation` of the spec this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Data pods that are running and in sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Pod name of the current primary (Standalone, Replication, Sentinel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// Shards and their slots (Cluster).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardStatus>,
    /// Service names clients connect to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<EndpointsStatus>,
    /// Head of the cluster's journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalStatus>,
    /// The most recent change of primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<FailoverRecord>,
    /// A reshard under way, or one that cannot go on (Cluster): absent
    /// when the slots are where the spec wants them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reshard: Option<ReshardStatus>,
    /// The Sentinels' view (Sentinel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelStatus>,
    /// Backups: the last one completed and the schedule's next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<ClusterBackupStatus>,
    /// The restore `restoreFrom` asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
    /// TLS: the certificate the nodes are to serve, as the operator last
    /// read it (never the certificate or its key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClusterTlsStatus>,
    /// What the defaults (`ValkeyOperatorDefaults`) and the plan gave the
    /// spec in force; absent when none reaches the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defaults: Option<ClusterDefaultsStatus>,
    /// A change of image under way: its preflight, its canary, the roll;
    /// absent when every pod runs the spec's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeStatus>,
    /// A standby (`spec.replicateFrom`): its source, how far behind it
    /// is, and its promotion once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbyStatus>,
}

/// A standby: its source and lag, or its promotion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct StandbyStatus {
    /// The source, `namespace/name` or `host:port`.
    pub source: String,
    /// `Waiting` (its address or its leader not known yet), `Following`
    /// (within its lag bound), `Behind` (past it), `SourceUnreadable` (the
    /// source or its Secret cannot be read: the lag is unknown),
    /// `Promoted`.
    pub phase: String,
    /// The pod that follows the source (the standby's primary), while one
    /// does.
    pub leader: Option<String>,
    /// Bytes behind the source at the last journaled observation.
    pub lag_bytes: Option<i64>,
    /// The source's offset then.
    pub source_offset: Option<i64>,
    /// The standby's offset then.
    pub offset: Option<i64>,
    /// When it was last journaled (a change of phase, of the source's
    /// history or address); the live lag is the metric
    /// `logbook_standby_lag_bytes`.
    pub observed_at: Option<Time>,
    /// Where it stands, in a sentence.
    pub message: String,
}

/// A change of image under way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct UpgradeStatus {
    /// The image the spec asks for.
    pub image: String,
    /// Its version, once known (from its preflight, or a pod running it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What the other pods run, `image (version)` each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// `Preflight` (the new image runs once on no data), `Refused` (it
    /// cannot run this cluster: nothing rolled), `Canary` (the first pod
    /// upgraded is watched), `CanaryFailed` (it failed: set `image` back
    /// to roll it back), `Rolling` (the rest, primaries last).
    pub phase: String,
    /// The canary pod, once one runs the new image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
    /// Where it stands, in a sentence.
    pub message: String,
}

/// The defaults layers of a cluster's spec.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterDefaultsStatus {
    /// The plan in force, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Each field a layer besides the cluster's own spec set (a JSON
    /// pointer into the spec), and which: `operator defaults <name>`,
    /// `namespace defaults <namespace>/<name>`, `plan <name>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSource>,
    /// A change of the defaults is rolling on this cluster.
    pub rolling: bool,
    /// A change of the defaults waits for its turn, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// One field of the spec and the layer that set it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FieldSource {
    /// The field, as a JSON pointer into the spec (`/storage/size`).
    pub field: String,
    /// The layer that set it.
    pub from: String,
}

/// A TLS cluster's certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterTlsStatus {
    /// The certificate's Secret.
    pub secret: String,
    /// Who issues it: `internal` (the operator's own CA), `cert-manager`,
    /// or `secret` (its owner).
    pub issuer: String,
    /// When it expires: known when the operator issued it (it renews it
    /// before), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// Why it cannot be used, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A cluster's backups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterBackupStatus {
    /// The last backup completed (a ValkeyBackup's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<String>,
    /// When it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_completed_at: Option<Time>,
    /// Its size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_bytes: Option<i64>,
    /// A backup being taken now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    /// When the schedule fires next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_scheduled_at: Option<Time>,
    /// The continuous archive (`spec.backup.continuous`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveStatus>,
}

/// The continuous archive of the write stream, as the journal tells it.
/// How far behind the primaries it runs is a metric
/// (`logbook_archive_lag_seconds`), not a status field: the status is
/// written only when the journal changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ArchiveStatus {
    /// `s3://<bucket>/<directory>/`, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Chains being written now (one per shard when all is well).
    pub live_chains: i32,
    /// Chains kept in all (live and ended).
    pub chains: i32,
    /// The oldest moment a restore can go back to (the earliest base kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_restorable_time: Option<Time>,
    /// The last chain that ended and why, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_break: Option<String>,
}

/// Where a restore stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreStatus {
    /// What `restoreFrom` names.
    pub source: String,
    /// `Verifying`, `Refused`, `Restoring` or `Completed`.
    pub phase: String,
    /// Details: why it was refused, what is loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the Sentinels say (topology Sentinel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SentinelStatus {
    /// The name the Sentinels monitor the primary under (what
    /// Sentinel-aware clients ask for).
    pub master_name: String,
    /// The Sentinel Service clients ask (`host:port`).
    pub service: String,
    /// Sentinels the spec asks for.
    pub replicas: i32,
    /// Sentinels that answer.
    pub answering: i32,
    /// Of them, those naming the primary in `status.primary`.
    pub agreeing: i32,
    /// Sentinels needed to fail the primary over: the quorum, and a
    /// majority of all Sentinels to elect a leader, whichever is more.
    pub needed: i32,
    /// Whether `agreeing` reaches `needed`.
    pub quorum_reachable: bool,
    /// The primary's configuration epoch (raised by each failover).
    pub epoch: i64,
    /// Sentinels that answer otherwise than the others agree: naming
    /// another primary, monitoring none, seeing the primary down.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disagreements: Vec<String>,
    /// Switches of primary Sentinel made, in all.
    pub switches: i64,
}

/// Where a reshard (slots moving between shards) stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ReshardStatus {
    /// `Moving` (migrations under way or next), `Settling` (half-moved
    /// slots being settled), `Waiting` (for the cluster to settle, or for
    /// a failed move's retry) or `Failing` (a move keeps failing with the
    /// same error and is no longer tried under this generation).
    pub phase: String,
    /// The spec generation whose shards are wanted.
    pub generation: i64,
    /// Shards wanted.
    pub shards: i32,
    /// Slots the reshard of this generation has moved so far.
    pub slots_moved: i32,
    /// Slots still to move.
    pub slots_remaining: i32,
    /// Migration jobs under way.
    pub migrations_running: i32,
    /// One line for people: what moves, what fails and what to do.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl ValkeyClusterStatus {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// One shard of a Cluster as last observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ShardStatus {
    /// Shard index, from 0; stable for the life of the shard.
    pub index: i32,
    /// Shard name (the StatefulSet of its pods).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Pod name of the shard's primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// Pod names of the shard's replicas.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<String>,
    /// Hash slots the shard serves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotRange>,
}

/// An inclusive range of hash slots, `start..=end`, within 0..=16383.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub struct SlotRange {
    /// First slot.
    #[schemars(range(min = 0, max = 16383))]
    pub start: i32,
    /// Last slot, inclusive.
    #[schemars(range(min = 0, max = 16383))]
    pub end: i32,
}

/// Where clients connect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointsStatus {
    /// Service (`host:port`) that always points at the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// Service (`host:port`) spreading reads over all data pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
    /// External access: where a client outside Kubernetes reaches the
    /// primary (`<name>-external`, `host:port`; not for a Cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_primary: Option<String>,
    /// External access: where a client outside reaches each data pod
    /// (`host:port`, by pod), as each node announces it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external: BTreeMap<String, String>,
    /// External access: each pod or Service with no external address
    /// yet, and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_waiting: BTreeMap<String, String>,
    /// External access, topology Sentinel: where a client outside
    /// reaches the Sentinels (`<name>-sentinel-external`, `host:port`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_sentinels: Vec<String>,
}

/// Head of the cluster's journal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct JournalStatus {
    /// Sequence number of the last appended event.
    pub seq: i64,
    /// First hex digits of the last event's chain hash.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hash_prefix: String,
    /// Store holding the journal (`configmap`, `sled`, `memory`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backend: String,
}

/// A completed change of primary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FailoverRecord {
    /// When the new primary took over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
    /// Pod name of the old primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Pod name of the new primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Machine-readable reason (`PrimaryUnreachable`, `Switchover`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Journal sequence number of the event recording the failover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}
