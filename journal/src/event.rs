//! The event catalog: every fact the journal can hold, in the past tense.
//!
//! Variant indexes are the on-disk tags (bincode encodes a variant as its
//! zero-based position), so the order below IS the format. See
//! `docs/journal-format.md` for the table of indexes. Later issues (failover,
//! Sentinel, Cluster slots) add variants at the end.
//!
//! No secret ever appears here: Secrets are referred to by name and a short
//! fingerprint only (keyed with the cluster's own key: see
//! [`Event::FingerprintKeyObserved`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::backup::{
    ArchiveChain, BackupRecord, BackupSource, BackupTarget, PointInTimePlan, RestorePlan,
    ShardUpload,
};
use crate::cluster::{ClusterNodeReport, SlotMigrationJob, SlotPeer};
use crate::ids::{ChainHash, ReplId, SpecFingerprint};
use crate::intent::PlannedIntent;
use crate::policy::Policy;
use crate::sentinel::{SentinelReport, SentinelSwitch};
use crate::time::Timestamp;
use crate::users::{NodeUsers, UserRecord};

/// The replication role a Valkey process reports (`ROLE`, `INFO replication`).
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// `role:master`.
    Primary,
    /// `role:slave`.
    Replica,
    /// A Sentinel process.
    Sentinel,
}

/// State of a replica's link to its primary (`master_link_status`, plus the
/// sync in progress flag).
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkStatus {
    /// The pod is not a replica, so it has no link.
    NotReplica,
    /// `master_link_status:up`.
    Up,
    /// `master_link_status:down`.
    Down,
    /// A full or partial resynchronisation is in progress.
    Syncing,
    /// `master_link_status:up`, but nothing heard from the primary for at
    /// least two replication ping periods (`master_last_io_seconds_ago`): the
    /// replica's corroboration that a primary which stopped answering probes
    /// is not merely busy with one client.
    Silent,
}

/// Outcome of the last probe of a pod. Death (refused, no address) is told
/// apart from slowness (timed out), because only death is acted on at once.
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reachability {
    /// The probe got a valid answer.
    Reachable,
    /// The connection was refused: nothing listens (process dead).
    Refused,
    /// The probe timed out: dead or merely busy.
    TimedOut,
    /// The pod has no IP to probe.
    NoAddress,
    /// Something answered but not as Valkey should (auth, protocol).
    ProtocolError,
}

/// A Pod's `status.phase`.
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    /// Accepted, containers not all running yet.
    Pending,
    /// Bound to a node, at least one container running.
    Running,
    /// All containers terminated successfully.
    Succeeded,
    /// All containers terminated, at least one in failure.
    Failed,
    /// The phase could not be obtained.
    Unknown,
}

/// One validation problem of a rejected spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecProblem {
    /// JSON path of the offending field, e.g. `spec.replicas`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl SpecProblem {
    /// Every problem on one line, `"; "`-separated, each path named as
    /// v1beta1 (the version stored, users' own) names it (the journal
    /// keeps v1alpha1's, the operator's): what the status and the Events
    /// say of a refused spec.
    pub fn describe_at_v1beta1(problems: &[SpecProblem]) -> String {
        problems
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    logbook_crds::conversion::path_to_v1beta1(&p.path),
                    p.message
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A fact recorded in the journal.
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// [0] A valid new desired spec was accepted at `generation`.
    SpecChanged {
        /// `metadata.generation` of the ValkeyCluster.
        generation: i64,
        /// The spec as canonical JSON text (self-describing, so it survives
        /// the spec gaining fields).
        spec_json: String,
        /// SHA-256 of `spec_json`.
        fingerprint: SpecFingerprint,
    },
    /// [1] The spec at `generation` failed validation; the previous valid
    /// spec stays in force.
    SpecRejected {
        /// `metadata.generation` of the rejected spec.
        generation: i64,
        /// Every problem found.
        errors: Vec<SpecProblem>,
    },
    /// [2] The ValkeyCluster object was deleted; the stream ends here.
    ClusterDeleted,
    /// [3] A data Pod of the cluster was observed with these properties.
    PodObserved {
        /// Pod name, e.g. `demo-2`.
        pod: String,
        /// `metadata.uid` of the Pod (changes when the pod is recreated).
        uid: String,
        /// `status.podIP`, if assigned.
        ip: Option<String>,
        /// `status.phase`.
        phase: PodPhase,
        /// Whether the Ready condition is true.
        ready: bool,
        /// The Kubernetes node it is scheduled on, if any.
        node: Option<String>,
        /// The `controller-revision-hash` label, if any.
        revision: Option<String>,
    },
    /// [4] A data Pod disappeared from the API.
    PodDeleted {
        /// Pod name.
        pod: String,
    },
    /// [5] A Kubernetes node hosting cluster pods changed readiness.
    KubeNodeObserved {
        /// Node name.
        node: String,
        /// Whether the node's Ready condition is true.
        ready: bool,
    },
    /// [6] A probe of a pod's Valkey port had this outcome.
    PodReachabilityObserved {
        /// Pod name.
        pod: String,
        /// Probe outcome.
        reachability: Reachability,
    },
    /// [7] A pod's Valkey process reported this role.
    NodeRoleObserved {
        /// Pod name.
        pod: String,
        /// Reported role.
        role: Role,
        /// For a replica: the pod it replicates from (resolved from the
        /// reported primary IP), `None` when unknown or not a replica.
        primary: Option<String>,
    },
    /// [8] A pod's replication state was observed (`INFO replication`).
    ReplicationObserved {
        /// Pod name.
        pod: String,
        /// Link to its primary.
        link: LinkStatus,
        /// `master_repl_offset`.
        offset: u64,
        /// `master_replid`.
        replid: ReplId,
    },
    /// [9] The believed primary failed `consecutive_failures` probes in a row.
    PrimaryUnreachable {
        /// The primary's pod.
        pod: String,
        /// Number of consecutive failed probes.
        consecutive_failures: u32,
    },
    /// [10] A replica became the primary (observed after a promotion).
    ReplicaPromoted {
        /// The new primary.
        pod: String,
        /// The primary it replaced, if known.
        from: Option<String>,
        /// Its replication offset at promotion.
        offset: u64,
    },
    /// [11] The decider ordered these intents (write-ahead: before acting).
    Decided {
        /// The intents, in execution order.
        intents: Vec<PlannedIntent>,
    },
    /// [12] An intent was carried out.
    IntentSucceeded {
        /// The intent's id from `Decided`.
        intent_id: Uuid,
        /// What was done, for humans.
        detail: String,
    },
    /// [13] An intent failed.
    IntentFailed {
        /// The intent's id from `Decided`.
        intent_id: Uuid,
        /// The error, for humans (no secrets).
        error: String,
        /// Whether deciding it again may succeed (API or Valkey unreachable)
        /// rather than being refused.
        retryable: bool,
    },
    /// [14] An intent was dropped without being completed (superseded, or
    /// found in flight after a restart and no longer wanted).
    IntentAbandoned {
        /// The intent's id from `Decided`.
        intent_id: Uuid,
        /// Why it was dropped.
        reason: String,
    },
    /// [15] This operator policy is in force from here on.
    PolicyRecorded {
        /// The policy.
        policy: Policy,
    },
    /// [16] An operator process started: in the operator stream when the
    /// process starts, and as the first event a new leader appends to each
    /// cluster's stream (the takeover record). Format version 2 added
    /// `epoch` and `gap_ms` (version-1 frames are upcast with the
    /// envelope's epoch and no gap).
    OperatorStarted {
        /// Operator build version.
        version: String,
        /// Instance identity (pod name or host).
        instance: String,
        /// The leadership epoch it acts under.
        epoch: u64,
        /// Milliseconds since the stream's previous event, when it had one:
        /// how long nobody was watching.
        gap_ms: Option<u64>,
    },
    /// [17] An operator process shut down cleanly (operator stream).
    OperatorStopped {
        /// Instance identity, as in `OperatorStarted`.
        instance: String,
    },
    /// [18] An instance became leader at `epoch` (operator stream).
    LeadershipAcquired {
        /// Leadership epoch (the Lease's transition count).
        epoch: u64,
        /// Instance identity of the new leader.
        holder: String,
    },
    /// [19] The leader lost the Lease (operator stream).
    LeadershipLost {
        /// Epoch that ended.
        epoch: u64,
        /// Why (expired, released, renew failed).
        reason: String,
    },
    /// [20] A snapshot of the projection at `seq` (whose chain hash is
    /// `hash`) was stored.
    SnapshotTaken {
        /// Last seq folded into the snapshot.
        seq: u64,
        /// Chain hash of that event.
        hash: ChainHash,
    },
    /// [21] A data Pod's `valkey.logbook.dev/role` label (which the client
    /// and read Services select on) was observed.
    RoleLabelObserved {
        /// Pod name.
        pod: String,
        /// The label's value as a role; `None` when absent or unrecognised.
        label: Option<Role>,
    },
    /// [22] The cluster's data StatefulSet was observed.
    StatefulSetObserved {
        /// `spec.replicas`.
        replicas: u32,
        /// `status.updateRevision`: the revision pods must run. `None` when
        /// absent, or while the StatefulSet's controller has not observed
        /// its current spec (its `status.observedGeneration` is behind
        /// `metadata.generation`): the revision is then not known yet.
        update_revision: Option<String>,
    },
    /// [23] The switchover request annotation
    /// (`valkey.logbook.dev/switchover-to`) was observed.
    SwitchoverRequestObserved {
        /// The requested target pod, `auto`, or `None` when no request stands.
        target: Option<String>,
    },
    /// [24] A data Pod is being deleted (`deletionTimestamp` set): its
    /// process is leaving, though it may still answer for a moment.
    PodTerminating {
        /// Pod name.
        pod: String,
    },
    /// [25] The failover request annotation
    /// (`valkey.logbook.dev/failover-requested`) was observed: a person
    /// asked for an operator-driven failover even though the primary may
    /// be healthy.
    FailoverRequestObserved {
        /// The annotation's value (an RFC 3339 time or any nonce, which
        /// tells one request from the next; possibly empty), or `None`
        /// when no request stands.
        request: Option<String>,
    },
    /// [26] Cluster: the Valkey node in `pod` reported this (its node id,
    /// role, slots, epochs, `cluster_state` and its table of peers),
    /// differing from its last report. A new node id for a pod means a new
    /// node (its data was lost); the old id is retired.
    ClusterNodeObserved {
        /// Pod name.
        pod: String,
        /// What the node reported.
        report: ClusterNodeReport,
    },
    /// [27] Cluster: a node that was a primary and still is answered with
    /// another replication history than the one it had (a new
    /// replication id): its process restarted in place, empty or from an
    /// append-only file, faster than a probe could see it die. Its
    /// replicas may still hold the writes it lost, until they resync
    /// from it.
    PrimaryHistoryReset {
        /// Pod name.
        pod: String,
        /// The node id (unchanged: the node kept its `nodes.conf`).
        node_id: String,
        /// The replication id it had (its replicas' history).
        previous_replid: ReplId,
        /// Its last journaled offset on that history, if any.
        previous_offset: Option<u64>,
        /// The replication id it answers with now.
        replid: ReplId,
        /// Its offset on the new history.
        offset: u64,
    },
    /// [28] Cluster: an atomic slot migration job as the node in `pod`
    /// lists it (`CLUSTER GETSLOTMIGRATIONS`): first seen under way, its
    /// phase or message changed, or gone from the list while under way
    /// (`Vanished`). Progress (`remaining_repl_size`) is recorded only with
    /// a change of phase, so a long job appends a handful of events.
    SlotMigrationObserved {
        /// Pod name of the node listing it.
        pod: String,
        /// The job.
        job: SlotMigrationJob,
        /// Milliseconds since the operator issued it, when the operator
        /// watched it from its start (`None`: seen by a probe).
        elapsed_ms: Option<u64>,
    },
    /// [29] Cluster: the slots the node in `pod` marks as half-moved
    /// (`CLUSTER NODES`: migrating `[slot->-id]`, importing `[slot-<-id]`)
    /// changed. The classic `SETSLOT`/`MIGRATE` pipeline leaves them while
    /// a slot moves; left behind by a crash or another tool, they are
    /// settled.
    SlotStatesObserved {
        /// Pod name.
        pod: String,
        /// Its node id.
        node_id: String,
        /// Slots it marks as migrating, with their target.
        migrating: Vec<SlotPeer>,
        /// Slots it marks as importing, with their source.
        importing: Vec<SlotPeer>,
    },
    /// [30] Sentinel: a Sentinel Pod of the cluster was observed with
    /// these properties (Sentinel pods are not data pods: they hold no
    /// data and are never primaries).
    SentinelPodObserved {
        /// Pod name, e.g. `demo-sentinel-1`.
        pod: String,
        /// `metadata.uid` of the Pod.
        uid: String,
        /// `status.podIP`, if assigned.
        ip: Option<String>,
        /// `status.phase`.
        phase: PodPhase,
        /// Whether the Ready condition is true.
        ready: bool,
    },
    /// [31] Sentinel: a Sentinel Pod disappeared from the API.
    SentinelPodDeleted {
        /// Pod name.
        pod: String,
    },
    /// [32] Sentinel: what the Sentinel in `pod` reported (or how its probe
    /// failed), differing from its last report.
    SentinelObserved {
        /// Pod name.
        pod: String,
        /// Probe outcome.
        reachability: Reachability,
        /// Its report, when it answered.
        report: Option<SentinelReport>,
    },
    /// [33] Sentinel: the Sentinel in `pod` published this event
    /// (`+sdown`, `+odown`, `+vote-for-leader`, `+elected-leader`,
    /// `+failover-state-*`, `+promoted-slave`, `+switch-master`, …) on its
    /// event channels, seen through the operator's subscription.
    SentinelEventObserved {
        /// Pod name of the publishing Sentinel.
        pod: String,
        /// The channel, i.e. the event's name.
        channel: String,
        /// Its message, as published (addresses and ids, never a secret).
        payload: String,
    },
    /// [34] Sentinel: the Sentinels switched the cluster's primary (a
    /// failover they decided, or one the operator asked for with
    /// `SENTINEL FAILOVER`), with what the operator knew of it.
    SentinelSwitchObserved {
        /// The switch.
        switch: SentinelSwitch,
    },
    /// [35] A ValkeyUser of the cluster was read, differing from its last
    /// record (its spec, its password's fingerprint, a problem, its
    /// deletion).
    UserObserved {
        /// The user as read.
        user: UserRecord,
    },
    /// [36] A ValkeyUser object is gone from the API (its finalizer was
    /// released, or it was deleted while no operator held it).
    UserForgotten {
        /// The ValkeyUser object's name.
        object: String,
    },
    /// [37] The ACL users (of those ValkeyUsers name) the node in `pod`
    /// holds, differing from what was last journaled for it.
    AclObserved {
        /// Pod name.
        pod: String,
        /// The users it holds, with their `ACL LIST` digests.
        users: NodeUsers,
    },
    /// [38] The rotation window of ACL user `username`'s password closed
    /// (the clock passed its end): the old password is to go.
    RotationWindowClosed {
        /// The ACL user name.
        username: String,
    },
    /// [39] TLS: the cluster's certificate Secret was read, differing from
    /// its last record (issued, renewed, replaced by its owner, gone).
    /// Fingerprints only, never a certificate or key.
    CertificateObserved {
        /// The certificate as read.
        certificate: CertificateRecord,
    },
    /// [40] TLS: the node in `pod` presented a certificate other than the
    /// one last journaled for it (seen in the operator's TLS handshake);
    /// or the same one again, checked after a reload it was asked for and
    /// has not taken (the kubelet had not updated its files yet), so the
    /// decider knows to ask again.
    CertificateServed {
        /// Pod name.
        pod: String,
        /// SHA-256 fingerprint of the certificate it serves.
        fingerprint: String,
    },
    /// [41] Backups: a ValkeyBackup of the cluster was read, new or
    /// differing from its last record.
    BackupRequested {
        /// The backup as read.
        backup: BackupRecord,
    },
    /// [42] Backups: a ValkeyBackup object is gone from the API (deleted
    /// by hand; its objects in the bucket are kept).
    BackupForgotten {
        /// The ValkeyBackup object's name.
        object: String,
    },
    /// [43] Backups: attempt `attempt` of backup `object` started, from
    /// `sources` (one per shard), as decided (the `TakeBackup` intent).
    BackupStarted {
        /// The ValkeyBackup object's name.
        object: String,
        /// The attempt, from 1.
        attempt: u32,
        /// Where it goes.
        target: BackupTarget,
        /// One source per shard.
        sources: Vec<BackupSource>,
    },
    /// [44] Backups: one shard's RDB is in the bucket, its size and
    /// checksums verified as it streamed.
    BackupShardUploaded {
        /// The ValkeyBackup object's name.
        object: String,
        /// The attempt.
        attempt: u32,
        /// What was uploaded.
        upload: ShardUpload,
    },
    /// [45] Backups: every shard's RDB and then the manifest are in the
    /// bucket: the backup is good.
    BackupCompleted {
        /// The ValkeyBackup object's name.
        object: String,
        /// The attempt.
        attempt: u32,
        /// The manifest's key.
        manifest: String,
        /// Total bytes of the shards' RDBs.
        bytes: u64,
    },
    /// [46] Backups: attempt `attempt` failed; nothing of it is reported
    /// as good (no manifest was written). `retry`: another attempt may
    /// succeed (a stream cut by a failover, an operator restart).
    BackupFailed {
        /// The ValkeyBackup object's name.
        object: String,
        /// The attempt.
        attempt: u32,
        /// Why.
        reason: String,
        /// Whether to try again.
        retry: bool,
    },
    /// [47] Backups: the schedule fired at `at` (the clock passed it); the
    /// backup it makes is to be named `object`.
    BackupDue {
        /// The fire time.
        at: Timestamp,
        /// The ValkeyBackup to create.
        object: String,
    },
    /// [48] Backups: retention deleted backup `object`: `objects` objects
    /// under its directory, then the ValkeyBackup.
    BackupDeleted {
        /// The ValkeyBackup object's name.
        object: String,
        /// Objects deleted from the bucket.
        objects: u32,
    },
    /// [49] Restore: the backup `restoreFrom` names was read and verified
    /// whole (its manifest, then every shard's size, SHA-256 and RDB
    /// checksum), before any pod was created.
    RestoreVerified {
        /// What is to be loaded.
        plan: RestorePlan,
    },
    /// [50] Restore: the backup cannot be restored (`retry: false`: it is
    /// missing, incomplete or corrupt, or does not fit the cluster), or
    /// cannot be read now (`retry: true`: the bucket does not answer).
    /// Nothing is created while it stands.
    RestoreRefused {
        /// What `restoreFrom` named.
        source: String,
        /// Why.
        reason: String,
        /// Whether it is read again later.
        retry: bool,
    },
    /// [51] Restore: every shard's pod loaded its RDB and serves it (a
    /// primary, and in a Cluster every slot owned); the plan was removed,
    /// so no pod started later loads it again.
    RestoreCompleted {
        /// Shards restored.
        shards: u32,
    },
    /// [52] The ValkeyCluster was deleted (its deletion began): the
    /// operator deletes what it owns, its PVCs too when `delete_pvcs`
    /// (the `valkey.logbook.dev/delete-pvcs-on-delete` annotation). The
    /// stream ends once `OwnedObjectsDeleted` says it is done. (Older
    /// journals end with `ClusterDeleted`, journaled after the deletion.)
    DeletionRequested {
        /// Whether the cluster's PVCs are deleted too.
        delete_pvcs: bool,
    },
    /// [53] Objects the operator owned were deleted (`kind name` each);
    /// `complete` when nothing it owns is left, else it stopped part-way.
    OwnedObjectsDeleted {
        /// What was deleted, `StatefulSet demo`, `ValkeyUser app
        /// released`.
        objects: Vec<String>,
        /// Whether every owned object is gone.
        complete: bool,
    },
    /// [54] The wall clock passed `deadline`, a moment `decide` named as
    /// the next at which it would decide differently (a certificate
    /// falling due, a retention age, a schedule, a rotation window): the
    /// envelope's time is the journaled `now` the decision reads.
    DeadlinePassed {
        /// The deadline passed.
        deadline: Timestamp,
    },
    /// [55] A snapshot of the projection was stored at `seq`, whose state
    /// has `digest` (format 13 on): the audit checks that a snapshot it
    /// starts from is this one.
    SnapshotRecorded {
        /// Last seq folded into the snapshot.
        seq: u64,
        /// Chain hash at `seq`.
        hash: ChainHash,
        /// SHA-256 of the snapshot's state as stored.
        digest: crate::codec::StateDigest,
    },
    /// [56] TLS: the operator created the cluster's CA (a new key and
    /// certificate) in the Secret `secret`, which did not exist. Journaled
    /// when it is written, before the certificate issued from it: clients
    /// must be given this CA to trust, whether the issue then succeeded or
    /// not. Fingerprint only, never the certificate or its key.
    CertificateAuthorityCreated {
        /// The CA Secret's name (`<cluster>-tls-ca`).
        secret: String,
        /// SHA-256 fingerprint of the CA certificate.
        fingerprint: String,
    },
    /// [57] Restore: the `restore` init container of data pod `pod` (which
    /// loads the pod's shard from the bucket before Valkey starts) failed
    /// with `failure`: its termination reason, exit code and the last
    /// line of what it said, bounded and with anything that looks like a
    /// credential redacted; `None` once it no longer shows a failure (it
    /// succeeded, is gone, or the pod was recreated). Journaled only when
    /// it differs from what the journal last said of the pod.
    RestoreFetchObserved {
        /// Pod name, e.g. `demo-0`.
        pod: String,
        /// How it failed, last; `None`: it does not show a failure.
        failure: Option<String>,
    },
    /// [58] ACL users: the cluster's fingerprint key (Secret
    /// `<cluster>-internal`, key `fingerprint-key`: the key of the HMAC
    /// that fingerprints passwords and `ACL LIST` lines) as read:
    /// `present`, or missing (no Secret, no key, or one too short to
    /// use). Journaled when it differs from what the journal last said.
    /// Never the key, nor anything computed from it but fingerprints.
    FingerprintKeyObserved {
        /// Whether a usable key is there.
        present: bool,
    },
    /// [59] ACL users: fingerprints journaled before the cluster had its
    /// fingerprint key (unkeyed: 8 hex digits of a SHA-256), each with
    /// the keyed fingerprint of the same secret, computed now from the
    /// password or `ACL LIST` line read: `passwords` (records, wants,
    /// rotations) and `digests` (what nodes hold and were given), old →
    /// new. The same secret under a new name: no password changed, so no
    /// rotation opens and no node is given anything again.
    FingerprintsRekeyed {
        /// Password fingerprints, unkeyed → keyed.
        passwords: BTreeMap<String, String>,
        /// `ACL LIST` line digests, unkeyed → keyed.
        digests: BTreeMap<String, String>,
    },
    /// [60] The API objects the observations journaled beside this event
    /// were read from, or written to by the operator, each with the
    /// resourceVersion it was read or written at (for an object a list
    /// no longer showed, the list's): `ValkeyCluster`, `Pod/<name>`,
    /// `StatefulSet`, `Secret/<name>`, `ValkeyUser/<name>`,
    /// `ValkeyBackup/<name>`. Journaled only with observations (an idle
    /// cluster journals none) and only where it is newer than the
    /// journal's: a later read older than it is stale.
    ResourceVersionsObserved {
        /// (object, resourceVersion) pairs, by object.
        versions: Vec<(String, u64)>,
    },
    /// [61] A read of `object` at `resource_version`, older than the
    /// `journaled` one the journal's observations of it were read at,
    /// would have changed what the journal holds: the API server that
    /// answered was behind (a lagging cache, a second server on the same
    /// etcd, a replayed list after a restart). Nothing was observed from
    /// it. Journaled once per object and resourceVersion.
    StaleReadIgnored {
        /// The object, as in `ResourceVersionsObserved`.
        object: String,
        /// The resourceVersion it was read at.
        resource_version: u64,
        /// The newer one the journal holds.
        journaled: u64,
    },
    /// [62] How often the Sentinel in `pod` asks the data nodes for `INFO`
    /// outside a failover (`SENTINEL DEBUG`'s `INFO-PERIOD`, in
    /// milliseconds; 10 s by default, and again after a restart: it is
    /// not in the Sentinel's file), differing from what was last
    /// journaled for it. Not journaled for a Sentinel that does not say
    /// (one without `SENTINEL DEBUG`).
    SentinelTimingObserved {
        /// The Sentinel's pod.
        pod: String,
        /// Its `INFO` period, in milliseconds.
        info_period_ms: u64,
    },
    /// [63] The Valkey container of data pod `pod` fails with `failure`:
    /// how it last ended (termination reason, exit code and the last
    /// lines of what it said, bounded and with anything that looks like a
    /// credential redacted), while it is restarted in back-off or ended;
    /// or it cannot be started (an image that cannot be pulled, a config
    /// error of the container), with the kubelet's reason and message.
    /// `None` once it no longer shows a failure (it is ready, or the pod
    /// is gone or recreated). Journaled only when it differs from what
    /// the journal last said of the pod.
    ContainerFailureObserved {
        /// Pod name, e.g. `demo-0`.
        pod: String,
        /// How it fails; `None`: it does not show a failure.
        failure: Option<String>,
    },
    /// [64] The spec judged just before (the `SpecChanged` or
    /// `SpecRejected` of `generation` journaled beside it, or none when
    /// only the layers changed and the spec they give did not) was built
    /// from layers besides the cluster's own spec: the operator's
    /// defaults, its namespace's, a plan (`ValkeyOperatorDefaults`).
    /// Journaled whenever `layers` differs from what was last journaled,
    /// so a change of defaults is judged once per cluster.
    SpecLayersObserved {
        /// `metadata.generation` of the ValkeyCluster.
        generation: i64,
        /// SHA-256 of the layers other than the cluster's own, as applied;
        /// `None`: no layer but the cluster's own.
        layers: Option<SpecFingerprint>,
        /// Fingerprint of the spec in force after it (`None`: the
        /// layered spec was refused, the one before stays in force).
        fingerprint: Option<SpecFingerprint>,
        /// Each field a layer other than the cluster's own set, as a JSON
        /// pointer, with that layer (`plan pro`, `operator defaults
        /// valkey-operator-defaults`); built-in values are not listed.
        sources: Vec<(String, String)>,
        /// The spec changed with the defaults, not with the cluster's
        /// generation: a change rolled at most `maxClustersRolling`
        /// clusters at a time.
        from_defaults: bool,
    },
    /// [65] The data StatefulSet was observed carrying (`annotated`) or
    /// lacking the ownership annotation `valkey.logbook.dev/cr` naming
    /// the cluster. Journaled when it differs from what was last
    /// journaled. Lacking it after the journal once saw it, the cluster
    /// is unbound: its user took control, and the operator manages
    /// nothing until the annotation is back. Lacking it before the
    /// journal ever saw it, the objects predate the annotation (made by
    /// an older operator), and it is applied to them.
    BindingObserved {
        /// Whether the StatefulSet carries the annotation with the
        /// cluster's name.
        annotated: bool,
        /// Who last changed the StatefulSet's metadata when it lacks the
        /// annotation: the field manager of its latest `managedFields`
        /// entry (a user's `kubectl`, a tool); `None` when it carries it
        /// or none is recorded.
        by: Option<String>,
    },
    /// [66] An object the operator made and still marks as its own was
    /// changed by someone else: `by` (the field manager of its newest
    /// write to the object, newer than the operator's own) set `fields`
    /// outside its metadata and status. Journaled once per object, manager
    /// and time (`at`, the `managedFields` entry's, as the API server
    /// wrote it). The objects are applied again (reason `Drift`), which
    /// puts back every field the operator sets.
    DriftObserved {
        /// `<Kind> <name>`, e.g. `StatefulSet demo`.
        object: String,
        /// The field manager that changed it (`kubectl-edit`, a tool).
        by: String,
        /// Its `managedFields` entry's time.
        at: String,
        /// The fields it holds outside metadata and status, as dotted
        /// paths two levels deep (`spec.updateStrategy`).
        fields: Vec<String>,
    },
    /// [67] Data pod `pod` (`uid`) runs `image`, whose server says it is
    /// Valkey (or Redis) `version` (`INFO server`). Read once per pod and
    /// container: what a version upgrade rolls from and to.
    ServerVersionObserved {
        /// Pod name.
        pod: String,
        /// `metadata.uid` of the Pod.
        uid: String,
        /// The Valkey container's image, as the pod spec names it.
        image: String,
        /// `valkey_version` (else `redis_version`) of `INFO server`.
        version: String,
    },
    /// [68] The preflight of `image` for spec generation `generation`
    /// ended (`PreflightImage`): the image ran once with the generation's
    /// config, on no data, and answered as `version`; or it was
    /// `refused` (how its container ended: a directive the version does
    /// not know, an image that cannot be pulled). Exactly one is set.
    ImagePreflighted {
        /// The image run.
        image: String,
        /// The spec generation whose config it ran with.
        generation: i64,
        /// The version it answered with.
        version: Option<String>,
        /// Why it cannot run the cluster.
        refused: Option<String>,
    },
    /// [69] The standby's pod `pod` follows its source at `host`:`port`
    /// (`FollowSource` succeeded): the standby's believed primary.
    SourceFollowed {
        /// The standby's pod.
        pod: String,
        /// The source's address.
        host: String,
        /// The source's port.
        port: u16,
    },
    /// [70] A standby's source as the operator read it, journaled when
    /// its address, its history, whether it answered, or whether the
    /// standby is behind (`lag` past `spec.replicateFrom.maxLagBytes`)
    /// changed: never for a lag that moves within its side of the bound.
    StandbyObserved {
        /// The source's address (its client Service's), `None` when it
        /// could not be resolved.
        host: Option<String>,
        /// The source's port.
        port: u16,
        /// `namespace/name` of the Secret holding the source's passwords.
        secret: String,
        /// The standby's primary's offset in the source's stream.
        offset: Option<u64>,
        /// The source's offset (`master_repl_offset`), when it answered.
        source_offset: Option<u64>,
        /// The source's replication id: a new one is a failover there.
        source_replid: Option<ReplId>,
        /// Bytes behind the source, when both offsets are on one history.
        lag: Option<u64>,
        /// Whether `lag` is past the bound.
        behind: bool,
        /// Why the source or its Secret could not be read.
        error: Option<String>,
    },
    /// [71] The standby was promoted (`PromoteStandby`): `pod` stopped
    /// following its source at `offset`. The source's offset read just
    /// before and just after bound how far behind it was; `None` when the
    /// source did not answer (`error` says why).
    StandbyPromoted {
        /// The pod promoted.
        pod: String,
        /// Its offset when it stopped following.
        offset: u64,
        /// The source's offset just before.
        source_before: Option<u64>,
        /// The source's offset just after.
        source_after: Option<u64>,
        /// Why the source's offset is unknown.
        error: Option<String>,
    },
    /// [72] The rebalance request annotation
    /// (`valkey.logbook.dev/rebalance-requested`, `kubectl valkey
    /// rebalance`) as now observed: its value (a time or any nonce), or
    /// `None` once it is gone.
    RebalanceRequestObserved {
        /// The annotation's value, or `None`.
        request: Option<String>,
    },
    /// [73] What data pod `pod` holds (`INFO replication`, `INFO
    /// keyspace`): read when it was made durable to hibernate
    /// (`persisted`), or back from its volume at wake before any pod is
    /// given writes. A pod that holds less than what was persisted is
    /// never made primary.
    PodDataObserved {
        /// Pod name.
        pod: String,
        /// `master_replid`.
        replid: ReplId,
        /// `master_repl_offset`.
        offset: u64,
        /// Keys in every database (`INFO keyspace`).
        keys: u64,
        /// Read as it was made durable (`PersistForHibernation`), not at
        /// wake.
        persisted: bool,
    },
    /// [74] Data pod `pod` (`uid`)'s Valkey container was restarted in
    /// place by the kubelet: its restart count is now `restarts`. A pod
    /// whose server keeps crashing keeps its uid and image; this is how
    /// the journal knows its process is new.
    ContainerRestartObserved {
        /// Pod name.
        pod: String,
        /// The Pod's `metadata.uid`.
        uid: String,
        /// The container's `restartCount`.
        restarts: u32,
    },
    /// [75] The restart request annotation
    /// (`valkey.logbook.dev/restart-requested`, `kubectl valkey restart`)
    /// as now observed: its value (a time or any nonce), or `None` once it
    /// is gone. A value no restart was carried out for yet asks for every
    /// pod to be restarted once; the same value again asks for nothing.
    RestartRequestObserved {
        /// The annotation's value, or `None`.
        request: Option<String>,
    },
    /// [76] The connection Secret of the ValkeyUser `object` as now read,
    /// differing from the projection's; `None` once the user asks for
    /// none (or is being deleted: its Secret goes with it).
    UserConnectionObserved {
        /// The ValkeyUser object's name.
        object: String,
        /// Its connection Secret and how it stands.
        connection: Option<crate::users::UserConnection>,
    },
    /// [77] Archive: a chain began (`Archive`): the base RDB of a full
    /// resynchronisation from `chain.source` is in the bucket, and the
    /// stream after it follows.
    ArchiveChainStarted {
        /// The chain.
        chain: ArchiveChain,
    },
    /// [78] Archive: chain `chain` continues from `source` (a partial
    /// resynchronisation at `offset`, accepted under `replid`): the
    /// stream followed its shard to another pod or across a failover.
    ArchiveFollowed {
        /// The chain.
        chain: String,
        /// The pod streamed from now.
        source: String,
        /// The shard's primary now.
        primary: String,
        /// The replication id the source answered with.
        replid: String,
        /// The offset the stream continues at.
        offset: u64,
    },
    /// [79] Archive: chain `chain` ended at `end` (the offset after its
    /// last archived byte): its position was lost, the archive was turned
    /// off, or the buffer could not be uploaded.
    ArchiveChainEnded {
        /// The chain.
        chain: String,
        /// The offset after its last archived byte.
        end: u64,
        /// Why.
        reason: String,
    },
    /// [80] Archive: retention deleted chain `chain`: `objects` objects
    /// under its directory.
    ArchiveChainDeleted {
        /// The chain.
        chain: String,
        /// Objects deleted.
        objects: u64,
    },
    /// [81] Restore: the archive `restoreFrom` names covers its
    /// `pointInTime` and every chain is whole up to it; `plan` is each
    /// shard's base, `point` the stream replayed after it.
    RestoreToTimeVerified {
        /// The bases.
        plan: RestorePlan,
        /// The streams.
        point: PointInTimePlan,
    },
    /// [82] Archive: where the continuous archive goes, as the spec now
    /// says (`spec.backup.continuous` with its destination, resolved to
    /// `<prefix>/<namespace>/<name>/_archive/`); `None` once it asks for
    /// none. Journaled when it differs from the projection's.
    ArchiveTargetObserved {
        /// The bucket and the archive's directory (`dir`).
        target: Option<BackupTarget>,
    },
    /// [83] External access (`spec.externalAccess`): where a client
    /// outside Kubernetes reaches each data pod (its node's address and
    /// node port, or its load balancer's address) and the primary's
    /// Service, and what has no address yet. Journaled when it differs
    /// from the projection's; all empty and `enabled: false` once the
    /// spec asks for none.
    ExternalEndpointsObserved {
        /// Whether the spec asks for external access.
        enabled: bool,
        /// Each data pod's endpoint, by pod.
        pods: BTreeMap<String, crate::external::ExternalEndpoint>,
        /// `<name>-external` (Replication, Standalone), once its address
        /// is known.
        primary: Option<crate::external::ExternalEndpoint>,
        /// Each pod or Service with no address yet, and why.
        waiting: BTreeMap<String, String>,
    },
    /// [84] Cluster: the address `pod`'s node announces, as its own
    /// `CLUSTER NODES` line shows it to the operator (`ip:port@cport`):
    /// what a client is sent to by `MOVED`. Journaled when it changes,
    /// while external access is on or was.
    AnnouncedAddressObserved {
        /// Pod name.
        pod: String,
        /// `ip:port@cport`; for a Sentinel cluster's data pod, what it
        /// announces to its primary (`replica-announce-ip`/`-port`):
        /// `host:port`, or empty for none.
        announced: String,
    },
    /// [85] Sentinel: where clients outside Kubernetes reach the
    /// Sentinels (`<name>-sentinel-external`): by node port at each node
    /// running a data pod, by load balancer at its address. Journaled
    /// when it differs from the projection's; empty once none is known.
    ExternalSentinelsObserved {
        /// Each address, sorted.
        sentinels: Vec<crate::external::ExternalEndpoint>,
    },
}

/// A TLS cluster's certificate Secret, as the operator last read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// The Secret's name.
    pub secret: String,
    /// SHA-256 fingerprint of its `tls.crt` (the first certificate);
    /// `None` when the Secret or its certificate is missing.
    pub fingerprint: Option<String>,
    /// SHA-256 fingerprint of its `ca.crt`.
    pub ca_fingerprint: Option<String>,
    /// When the certificate expires, when the operator issued it and so
    /// knows (its own CA); `None` for a certificate it did not issue.
    pub not_after: Option<Timestamp>,
    /// Who issues it: `secret` (its owner), `cert-manager`, `internal`.
    pub source: String,
    /// Why it cannot be used, if it cannot (a missing key, no CA).
    pub problem: Option<String>,
}

impl Event {
    /// The stable catalog name of the variant (for logs, metrics, timelines).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::SpecChanged { .. } => "SpecChanged",
            Self::SpecRejected { .. } => "SpecRejected",
            Self::SpecLayersObserved { .. } => "SpecLayersObserved",
            Self::BindingObserved { .. } => "BindingObserved",
            Self::DriftObserved { .. } => "DriftObserved",
            Self::ClusterDeleted => "ClusterDeleted",
            Self::PodObserved { .. } => "PodObserved",
            Self::PodDeleted { .. } => "PodDeleted",
            Self::KubeNodeObserved { .. } => "KubeNodeObserved",
            Self::PodReachabilityObserved { .. } => "PodReachabilityObserved",
            Self::NodeRoleObserved { .. } => "NodeRoleObserved",
            Self::ReplicationObserved { .. } => "ReplicationObserved",
            Self::PrimaryUnreachable { .. } => "PrimaryUnreachable",
            Self::ReplicaPromoted { .. } => "ReplicaPromoted",
            Self::Decided { .. } => "Decided",
            Self::IntentSucceeded { .. } => "IntentSucceeded",
            Self::IntentFailed { .. } => "IntentFailed",
            Self::IntentAbandoned { .. } => "IntentAbandoned",
            Self::PolicyRecorded { .. } => "PolicyRecorded",
            Self::OperatorStarted { .. } => "OperatorStarted",
            Self::OperatorStopped { .. } => "OperatorStopped",
            Self::LeadershipAcquired { .. } => "LeadershipAcquired",
            Self::LeadershipLost { .. } => "LeadershipLost",
            Self::SnapshotTaken { .. } => "SnapshotTaken",
            Self::RoleLabelObserved { .. } => "RoleLabelObserved",
            Self::StatefulSetObserved { .. } => "StatefulSetObserved",
            Self::SwitchoverRequestObserved { .. } => "SwitchoverRequestObserved",
            Self::PodTerminating { .. } => "PodTerminating",
            Self::FailoverRequestObserved { .. } => "FailoverRequestObserved",
            Self::ClusterNodeObserved { .. } => "ClusterNodeObserved",
            Self::PrimaryHistoryReset { .. } => "PrimaryHistoryReset",
            Self::SlotMigrationObserved { .. } => "SlotMigrationObserved",
            Self::SlotStatesObserved { .. } => "SlotStatesObserved",
            Self::SentinelPodObserved { .. } => "SentinelPodObserved",
            Self::SentinelPodDeleted { .. } => "SentinelPodDeleted",
            Self::SentinelObserved { .. } => "SentinelObserved",
            Self::SentinelEventObserved { .. } => "SentinelEventObserved",
            Self::SentinelSwitchObserved { .. } => "SentinelSwitchObserved",
            Self::UserObserved { .. } => "UserObserved",
            Self::UserForgotten { .. } => "UserForgotten",
            Self::AclObserved { .. } => "AclObserved",
            Self::RotationWindowClosed { .. } => "RotationWindowClosed",
            Self::CertificateObserved { .. } => "CertificateObserved",
            Self::CertificateServed { .. } => "CertificateServed",
            Self::BackupRequested { .. } => "BackupRequested",
            Self::BackupForgotten { .. } => "BackupForgotten",
            Self::BackupStarted { .. } => "BackupStarted",
            Self::BackupShardUploaded { .. } => "BackupShardUploaded",
            Self::BackupCompleted { .. } => "BackupCompleted",
            Self::BackupFailed { .. } => "BackupFailed",
            Self::BackupDue { .. } => "BackupDue",
            Self::BackupDeleted { .. } => "BackupDeleted",
            Self::RestoreVerified { .. } => "RestoreVerified",
            Self::RestoreRefused { .. } => "RestoreRefused",
            Self::RestoreCompleted { .. } => "RestoreCompleted",
            Self::DeletionRequested { .. } => "DeletionRequested",
            Self::OwnedObjectsDeleted { .. } => "OwnedObjectsDeleted",
            Self::DeadlinePassed { .. } => "DeadlinePassed",
            Self::SnapshotRecorded { .. } => "SnapshotRecorded",
            Self::CertificateAuthorityCreated { .. } => "CertificateAuthorityCreated",
            Self::RestoreFetchObserved { .. } => "RestoreFetchObserved",
            Self::FingerprintKeyObserved { .. } => "FingerprintKeyObserved",
            Self::FingerprintsRekeyed { .. } => "FingerprintsRekeyed",
            Self::ResourceVersionsObserved { .. } => "ResourceVersionsObserved",
            Self::StaleReadIgnored { .. } => "StaleReadIgnored",
            Self::SentinelTimingObserved { .. } => "SentinelTimingObserved",
            Self::ContainerFailureObserved { .. } => "ContainerFailureObserved",
            Self::ServerVersionObserved { .. } => "ServerVersionObserved",
            Self::ImagePreflighted { .. } => "ImagePreflighted",
            Self::SourceFollowed { .. } => "SourceFollowed",
            Self::StandbyObserved { .. } => "StandbyObserved",
            Self::StandbyPromoted { .. } => "StandbyPromoted",
            Self::RebalanceRequestObserved { .. } => "RebalanceRequestObserved",
            Self::PodDataObserved { .. } => "PodDataObserved",
            Self::ContainerRestartObserved { .. } => "ContainerRestartObserved",
            Self::RestartRequestObserved { .. } => "RestartRequestObserved",
            Self::UserConnectionObserved { .. } => "UserConnectionObserved",
            Self::ArchiveChainStarted { .. } => "ArchiveChainStarted",
            Self::ArchiveFollowed { .. } => "ArchiveFollowed",
            Self::ArchiveChainEnded { .. } => "ArchiveChainEnded",
            Self::ArchiveChainDeleted { .. } => "ArchiveChainDeleted",
            Self::RestoreToTimeVerified { .. } => "RestoreToTimeVerified",
            Self::ArchiveTargetObserved { .. } => "ArchiveTargetObserved",
            Self::ExternalEndpointsObserved { .. } => "ExternalEndpointsObserved",
            Self::AnnouncedAddressObserved { .. } => "AnnouncedAddressObserved",
            Self::ExternalSentinelsObserved { .. } => "ExternalSentinelsObserved",
        }
    }
}
