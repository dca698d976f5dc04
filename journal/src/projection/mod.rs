//! `ClusterState`: the projection of one stream, folded event by event.
//!
//! `apply` is total: it never fails and never panics, whatever sequence of
//! envelopes it is given. Anything unexpected (a seq gap, an outcome for an
//! unknown intent, two primaries) is recorded as an [`Anomaly`] and folding
//! goes on. The projection holds facts only — no decisions, no policy
//! logic; `decide` reads it.
//!
//! The state is also the snapshot payload, JSON with named fields through
//! `codec`: a field added here reads as its default from an older
//! snapshot (`#[serde(default)]`), so only a rename or a change of meaning
//! needs a new `SNAPSHOT_FORMAT_VERSION` and an upcast.

mod apply;
pub mod backups;
pub mod cluster;
mod hung;
pub mod replication;
pub mod reshard;
pub mod sentinel;
pub mod sources;
pub mod tls;
pub mod users;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{LinkStatus, PodPhase, Reachability, Role, SpecProblem};
use crate::ids::{ChainHash, ReplId, SpecFingerprint};
use crate::intent::PlannedIntent;
use crate::policy::Policy;
use crate::time::Timestamp;

/// How many notable events `history` keeps.
pub const HISTORY_LIMIT: usize = 64;
/// How many anomalies `anomalies` keeps (the total is counted separately).
pub const ANOMALY_LIMIT: usize = 64;

/// The projection of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterState {
    /// Last seq folded (0 before any event).
    pub last_seq: u64,
    /// Chain hash of that event: where the next event's chain continues.
    pub last_hash: ChainHash,
    /// Time of the last event folded.
    pub last_at: Timestamp,
    /// Highest writer epoch seen in any envelope.
    pub epoch: u64,
    /// The last accepted desired spec.
    pub desired: Option<DesiredSpec>,
    /// Whether the latest generation was accepted or rejected.
    pub spec_status: SpecStatus,
    /// Whether the ValkeyCluster was deleted.
    pub deleted: bool,
    /// Data pods by name.
    pub pods: BTreeMap<String, PodView>,
    /// Kubernetes nodes hosting pods, by name → Ready.
    pub kube_nodes: BTreeMap<String, bool>,
    /// Decided intents without an outcome yet, by intent id.
    pub in_flight: BTreeMap<Uuid, InFlightIntent>,
    /// The policy in force (last `PolicyRecorded`).
    pub policy: Option<Policy>,
    /// Operator lifecycle and leadership (operator stream).
    pub operator: OperatorView,
    /// Last snapshot recorded by a `SnapshotTaken` event.
    pub last_snapshot: Option<(u64, ChainHash)>,
    /// The most recent notable events, oldest first, at most [`HISTORY_LIMIT`].
    pub history: VecDeque<HistoryEntry>,
    /// The most recent anomalies, oldest first, at most [`ANOMALY_LIMIT`].
    pub anomalies: VecDeque<Anomaly>,
    /// Counters over the whole stream.
    pub counters: Counters,
    /// The data StatefulSet as last observed.
    pub statefulset: Option<StatefulSetView>,
    /// The standing switchover request (`auto` or a pod), if any.
    pub switchover_request: Option<String>,
    /// Spec generation whose objects were last applied successfully.
    pub applied_generation: Option<i64>,
    /// A spec generation whose objects the operator refused to apply
    /// (`ApplyResources` failed, not retryable: a kind the spec asks for
    /// that the API server does not serve, say), and why: the spec is not
    /// applied again until a new generation (the status says so). Cleared
    /// when an `ApplyResources` succeeds.
    pub apply_refused: Option<(i64, String)>,
    /// The most recent promotion.
    pub last_failover: Option<FailoverView>,
    /// The standing failover request, if any.
    pub failover_request: Option<FailoverRequestView>,
    /// Standalone and Replication: the decided primary and its history.
    pub replication: replication::ReplicationPart,
    /// Valkey Cluster: node reports, retired node ids, formation.
    pub cluster: cluster::ClusterPart,
    /// Valkey Cluster: slot migrations under way, half-moved slots, moves
    /// failing.
    pub reshard: reshard::ReshardPart,
    /// Sentinel: the Sentinel pods, their reports, the votes and leaders
    /// seen, the switches they made.
    pub sentinel: sentinel::SentinelPart,
    /// ACL users: the ValkeyUsers, what each node holds and was given.
    pub users: users::UsersPart,
    /// TLS: the certificate, what each node serves, the reloads asked.
    pub tls: tls::TlsPart,
    /// Backups: the ValkeyBackups, their attempts, the schedule.
    pub backups: backups::BackupsPart,
    /// The deletion of the ValkeyCluster, once requested.
    pub deletion: DeletionView,
    /// The cluster's fingerprint key, as last read (an older snapshot
    /// reads as never read).
    pub fingerprint_key: FingerprintKeyView,
    /// The resourceVersion each API object was last read at, for
    /// telling a stale read (`ResourceVersionsObserved`,
    /// `StaleReadIgnored`). Not serialized while empty, so a snapshot of
    /// a journal without them keeps its digest.
    #[serde(skip_serializing_if = "sources::SourcesPart::is_empty")]
    pub sources: sources::SourcesPart,
    /// Each Sentinel pod's `INFO` period in milliseconds, as last
    /// journaled (`SentinelTimingObserved`); a pod deleted or recreated
    /// is dropped. Not serialized while empty, so a snapshot of a journal
    /// without it keeps its digest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sentinel_info_periods: BTreeMap<String, u64>,
    /// Data pods whose Valkey container fails, with how
    /// (`ContainerFailureObserved`); a pod deleted is dropped. Not
    /// serialized while empty, so a snapshot of a journal without it
    /// keeps its digest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub container_failures: BTreeMap<String, String>,
    /// The defaults layers the spec was last judged with
    /// (`SpecLayersObserved`); `None` for a cluster no layer but its own
    /// spec ever reached. Not serialized while `None`, so a snapshot of a
    /// journal without it keeps its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_layers: Option<SpecLayersView>,
    /// Whether the data StatefulSet carries the ownership annotation
    /// (`BindingObserved`), and what follows from it; `None` until it is
    /// first observed. Not serialized while `None`, so a snapshot of a
    /// journal without it keeps its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<BindingView>,
    /// Changes made by someone else to the objects the operator made
    /// (`DriftObserved`), by object: the last journaled, and whether the
    /// objects were applied again since. Not serialized while empty, so a
    /// snapshot of a journal without it keeps its digest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub drift: BTreeMap<String, DriftView>,
    /// Hibernation (`spec.hibernated`): set once its data was made
    /// durable (`PersistForHibernation` succeeded), cleared once it woke
    /// (`Wake` succeeded). Not serialized while `None`, so a snapshot of a
    /// journal without it keeps its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hibernation: Option<HibernationView>,
    /// The image and server version each data pod runs
    /// (`ServerVersionObserved`); a pod recreated or deleted is dropped.
    /// Not serialized while empty, so a snapshot of a journal without it
    /// keeps its digest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, PodVersionView>,
    /// The last preflight of a new image (`PreflightImage`,
    /// `ImagePreflighted`, `RemovePreflight`). Not serialized while
    /// `None`, so a snapshot of a journal without it keeps its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<PreflightView>,
    /// A standby's source and its leader, once observed (`StandbyObserved`,
    /// `SourceFollowed`, `StandbyPromoted`). Not serialized while `None`,
    /// so a snapshot of a journal without it keeps its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standby: Option<replication::StandbyView>,
    /// The standing rebalance request (`RebalanceRequestObserved`), if
    /// any. Not serialized while `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebalance_request: Option<String>,
    /// The standing restart request (`RestartRequestObserved`), if any.
    /// Not serialized while `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_request: Option<String>,
    /// The last restart carried out: the request stamped on the pod
    /// templates (`RestartPods` succeeded), which every later apply keeps
    /// stamped. Not serialized while `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<String>,
    /// What each data pod held when made durable to hibernate, and what
    /// it holds back from its volume at wake (`PodDataObserved`);
    /// cleared once it woke. Not serialized while empty.
    #[serde(skip_serializing_if = "HibernationData::is_empty")]
    pub hibernation_data: HibernationData,
    /// Each data pod's last in-place restart of its Valkey container
    /// (`ContainerRestartObserved`), until the pod is deleted. Not
    /// serialized while empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub container_restarts: BTreeMap<String, ContainerRestartView>,
    /// External access (`ExternalEndpointsObserved`). Not serialized
    /// while empty.
    #[serde(skip_serializing_if = "crate::external::ExternalPart::is_empty")]
    pub external: crate::external::ExternalPart,
}

/// What one data pod runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PodVersionView {
    /// The Pod's `metadata.uid`.
    pub uid: String,
    /// Its Valkey container's image.
    pub image: String,
    /// The server's version.
    pub version: String,
    /// When it was first read (the server answered).
    pub since: Timestamp,
    /// How its container failed since then, if it did (the last failure
    /// journaled; kept once it recovers: a canary that failed once failed).
    pub failed: Option<String>,
    /// Since when it has been in sync on this version: a primary, or a
    /// replica whose link is up; `None` while it is not (syncing, link
    /// down). A canary's soak counts from here. Not serialized while
    /// `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_sync_since: Option<Timestamp>,
}

impl PodVersionView {
    /// Whether a pod whose observed role and link are these is in sync.
    #[must_use]
    pub fn in_sync(role: Option<Role>, link: Option<LinkStatus>) -> bool {
        role == Some(Role::Primary) || link == Some(LinkStatus::Up)
    }
}

/// A preflight of a new image: run once on no data before anything rolls.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PreflightView {
    /// The image run.
    pub image: String,
    /// The spec generation whose config it ran with.
    pub generation: i64,
    /// When its Pod was made (`PreflightImage` succeeded).
    pub started: Timestamp,
    /// The version it answered with.
    pub version: Option<String>,
    /// Why it cannot run the cluster.
    pub refused: Option<String>,
    /// Its Pod and ConfigMap were deleted (`RemovePreflight` succeeded).
    pub removed: bool,
}

impl PreflightView {
    /// Whether it ended (answered or refused).
    #[must_use]
    pub const fn ended(&self) -> bool {
        self.version.is_some() || self.refused.is_some()
    }
}

/// A change made by someone else to an object of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftView {
    /// Its field manager.
    pub by: String,
    /// Its `managedFields` time.
    pub at: String,
    /// The fields it set.
    pub fields: Vec<String>,
    /// The objects were applied again since (`ApplyResources` succeeded).
    pub reverted: bool,
}

/// A hibernation under way, asleep, or waking: what it went to sleep as.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HibernationView {
    /// The primaries paused and persisted (a Cluster's shard primaries).
    pub primaries: Vec<String>,
    /// Every data pod persisted.
    pub pods: Vec<String>,
    /// Seq of the `PersistForHibernation` decision.
    pub seq: u64,
    /// When its data was made durable (the outcome's time).
    pub since: Timestamp,
    /// When the spec asked it to wake (`spec.hibernated` unset: the first
    /// `SpecChanged` saying so since it slept); `None` while asleep. A
    /// wake that waits on pods counts its deadline from here. Not
    /// serialized while `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waking_since: Option<Timestamp>,
}

/// A data pod's Valkey container restarted in place.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRestartView {
    /// The Pod's uid (a new Pod starts counting again).
    pub uid: String,
    /// Its container's restart count.
    pub restarts: u32,
    /// When the restart was journaled.
    pub at: Timestamp,
}

impl ClusterState {
    /// When `pod`'s current Valkey process began, as far as the journal
    /// knows: its last in-place restart, or when its server first
    /// answered on this pod and image.
    #[must_use]
    pub fn process_since(&self, pod: &str) -> Option<Timestamp> {
        let version = self.versions.get(pod)?;
        let restarted = self
            .container_restarts
            .get(pod)
            .filter(|r| r.uid == version.uid)
            .map(|r| r.at);
        Some(restarted.map_or(version.since, |r| Timestamp(r.0.max(version.since.0))))
    }
}

/// What the pods of a hibernation held, as `PodDataObserved` said.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HibernationData {
    /// Read as each pod was made durable.
    pub persisted: BTreeMap<String, PodData>,
    /// Read as each pod came back from its volume, before any was given
    /// writes.
    pub woken: BTreeMap<String, PodData>,
}

impl HibernationData {
    /// Nothing known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.persisted.is_empty() && self.woken.is_empty()
    }

    /// What the most any pod persisted was: the offset and keys a pod
    /// must hold to be made primary at wake. `None` when nothing was
    /// journaled as persisted (a hibernation older than this check).
    #[must_use]
    pub fn required(&self) -> Option<&PodData> {
        self.persisted.values().max_by_key(|d| (d.offset, d.keys))
    }
}

/// What one pod holds: its replication history and offset, and its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodData {
    /// `master_replid`.
    pub replid: ReplId,
    /// `master_repl_offset`.
    pub offset: u64,
    /// Keys in every database.
    pub keys: u64,
}

impl PodData {
    /// Whether a pod holding this holds at least `required`: on the same
    /// history, at least its offset; on another (a server that loads an
    /// append-only file starts a new history at offset 0), at least as
    /// many keys. A lost volume holds a new history and no key.
    #[must_use]
    pub fn holds(&self, required: &PodData) -> bool {
        if self.replid == required.replid {
            self.offset >= required.offset
        } else {
            self.keys >= required.keys
        }
    }
}

/// The cluster's binding to the operator: the ownership annotation on its
/// StatefulSet as last journaled, and the work that follows from a change
/// of it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BindingView {
    /// The StatefulSet carried the annotation when last observed.
    pub annotated: bool,
    /// It was observed carrying it at least once: lacking it now means
    /// its user removed it (unbound), not that it predates it.
    pub ever_annotated: bool,
    /// Who last changed the StatefulSet when it was observed lacking it.
    pub by: Option<String>,
    /// When the binding last changed (the observation's time).
    pub since: Timestamp,
    /// Seq of that observation.
    pub seq: u64,
    /// The objects are to be applied again with the annotation: they
    /// predate it, or the cluster was bound again after its objects'
    /// annotations were removed. Cleared when `ApplyResources` succeeds.
    pub mark_due: bool,
    /// The cluster was bound again after being unbound and has not been
    /// taken over yet: its roles are adopted as observed, not restored to
    /// what the journal decided before.
    pub rebound: bool,
    /// Unbound, and the annotation removed from its other objects
    /// (`ReleaseObjects` succeeded).
    pub released: bool,
}

impl BindingView {
    /// The user took the cluster over: the annotation was seen, and is
    /// gone.
    #[must_use]
    pub const fn unbound(&self) -> bool {
        self.ever_annotated && !self.annotated
    }
}

/// The layers a cluster's spec was last judged with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecLayersView {
    /// The generation judged.
    pub generation: i64,
    /// SHA-256 of the layers besides the cluster's own; `None`: none.
    pub layers: Option<SpecFingerprint>,
    /// The spec in force after it, `None` when the layered spec was refused.
    pub fingerprint: Option<SpecFingerprint>,
    /// Each field a layer besides the cluster's own set, and which.
    pub sources: Vec<(String, String)>,
    /// Whether the change came with the defaults, not the generation.
    pub from_defaults: bool,
    /// Seq of the event.
    pub seq: u64,
}

/// The cluster's fingerprint key (Secret `<cluster>-internal`, key
/// `fingerprint-key`), as last journaled (`FingerprintKeyObserved`). The
/// key itself is never here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FingerprintKeyView {
    /// Not read yet (a new stream, or one journaled before the key
    /// existed).
    #[default]
    Unread,
    /// Read, and missing or unusable: no password is fingerprinted until
    /// the key is made.
    Missing,
    /// Read, and there.
    Present,
}

/// The deletion of a ValkeyCluster as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletionView {
    /// `DeletionRequested` was journaled (older journals end with
    /// `ClusterDeleted` instead, after the objects were deleted).
    pub requested: bool,
    /// Whether the PVCs are deleted too.
    pub delete_pvcs: bool,
    /// Every owned object is gone (`OwnedObjectsDeleted`, complete).
    pub objects_deleted: bool,
}

/// A standing request for an operator-driven failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRequestView {
    /// The annotation's value (a time or nonce; may be empty).
    pub request: String,
    /// Seq of the `FailoverRequestObserved` that made it: a promotion
    /// after this seq has served it.
    pub seq: u64,
    /// When it was observed.
    pub at: Timestamp,
}

/// The data StatefulSet as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatefulSetView {
    /// `spec.replicas`.
    pub replicas: u32,
    /// `status.updateRevision`.
    pub update_revision: Option<String>,
}

/// One promotion, for the status and the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverView {
    /// Seq of the `ReplicaPromoted` event.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// The primary replaced, if known.
    pub from: Option<String>,
    /// The new primary.
    pub to: String,
}

/// The desired spec in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredSpec {
    /// `metadata.generation` it came from.
    pub generation: i64,
    /// Canonical JSON of the spec.
    pub spec_json: String,
    /// SHA-256 of `spec_json`.
    pub fingerprint: SpecFingerprint,
    /// Seq of the `SpecChanged` event.
    pub seq: u64,
}

/// Validity of the latest spec generation seen.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SpecStatus {
    /// No spec seen yet.
    #[default]
    Unknown,
    /// The latest generation was accepted (it is `desired`).
    Accepted {
        /// That generation.
        generation: i64,
    },
    /// The latest generation was rejected; `desired` still holds the last valid one.
    Rejected {
        /// The rejected generation.
        generation: i64,
        /// Its problems.
        errors: Vec<SpecProblem>,
    },
}

/// What is known about one data pod.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PodView {
    /// `metadata.uid`, once observed.
    pub uid: Option<String>,
    /// Pod IP, once assigned.
    pub ip: Option<String>,
    /// Pod phase, once observed.
    pub phase: Option<PodPhase>,
    /// Ready condition.
    pub ready: bool,
    /// Kubernetes node.
    pub node: Option<String>,
    /// Controller revision.
    pub revision: Option<String>,
    /// Observed Valkey role.
    pub role: Option<Role>,
    /// For a replica: the pod it replicates from.
    pub replicates: Option<String>,
    /// Replication link state.
    pub link: Option<LinkStatus>,
    /// Last observed replication offset.
    pub offset: Option<u64>,
    /// Last observed replication id.
    pub replid: Option<ReplId>,
    /// Last probe outcome.
    pub reachability: Option<Reachability>,
    /// Consecutive failed probes.
    pub consecutive_failures: u32,
    /// Time of the first failed probe of the current run of failures.
    pub failing_since: Option<Timestamp>,
    /// Time of the last failed probe of the current run of failures: how
    /// long a run of timeouts lasted is known up to here, never up to an
    /// event about something else.
    pub last_failed_at: Option<Timestamp>,
    /// The observed `valkey.logbook.dev/role` label.
    pub role_label: Option<Role>,
    /// Being deleted (`PodTerminating`).
    pub terminating: bool,
    /// Time of the last event about this pod.
    pub last_seen: Timestamp,
}

/// A decided intent awaiting its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightIntent {
    /// Seq of the `Decided` event.
    pub decided_seq: u64,
    /// When it was decided.
    pub decided_at: Timestamp,
    /// The intent and its reason.
    pub planned: PlannedIntent,
}

/// Operator process and leadership, as seen on the operator stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OperatorView {
    /// `(version, instance)` of the last started operator.
    pub last_started: Option<(String, String)>,
    /// `(epoch, holder)` of the current leader, `None` after it lost the lease.
    pub leader: Option<(u64, String)>,
    /// Highest leadership epoch acquired.
    pub highest_epoch: u64,
}

/// A notable event kept in the bounded history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// Catalog name of the event (`Event::kind`).
    pub kind: String,
    /// One-line summary.
    pub summary: String,
}

/// Something in the stream that contradicts the state it was folded into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Seq of the offending event.
    pub seq: u64,
    /// What was unexpected.
    pub description: String,
}

/// Counters over the whole stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Events folded (including repeats that were skipped).
    pub events: u64,
    /// Observations (pod, node, role, replication, reachability).
    pub observations: u64,
    /// `Decided` events.
    pub decisions: u64,
    /// Intents decided.
    pub intents_decided: u64,
    /// Intents succeeded.
    pub intents_succeeded: u64,
    /// Intents failed.
    pub intents_failed: u64,
    /// Intents abandoned.
    pub intents_abandoned: u64,
    /// Promotions (`ReplicaPromoted`).
    pub failovers: u64,
    /// Rejected specs.
    pub rejections: u64,
    /// Anomalies ever recorded.
    pub anomalies: u64,
}

impl DesiredSpec {
    /// Parses the stored JSON into the current `ValkeyClusterSpec` type.
    /// Fields added to the spec since the event was written take their
    /// serde defaults, which is why the journal stores JSON, not bincode.
    ///
    /// # Errors
    /// The JSON error when the stored text does not fit the current type.
    pub fn spec(&self) -> Result<logbook_crds::ValkeyClusterSpec, serde_json::Error> {
        serde_json::from_str(&self.spec_json)
    }
}

impl ClusterState {
    /// The desired spec parsed into `ValkeyClusterSpec`, `None` before any
    /// accepted spec.
    ///
    /// # Errors
    /// The JSON error when the stored text does not fit the current type.
    pub fn desired_spec(
        &self,
    ) -> Option<Result<logbook_crds::ValkeyClusterSpec, serde_json::Error>> {
        self.desired.as_ref().map(DesiredSpec::spec)
    }

    /// The state before any event.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The seq the next event must carry to continue this state without a gap.
    #[must_use]
    pub const fn next_seq(&self) -> u64 {
        self.last_seq.saturating_add(1)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;
