//! Intents (imperative orders the decider emits) and their machine-readable
//! reasons. An intent is journaled inside `Event::Decided` before anything
//! acts on it; its outcome comes back as `IntentSucceeded` / `IntentFailed` /
//! `IntentAbandoned` carrying the same `intent_id`.
//!
//! This module holds data only: which intent to emit is `decide`'s business.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

/// An intent with its identity and the reason it was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedIntent {
    /// Identity of this intent; outcome events refer to it.
    pub intent_id: Uuid,
    /// What is ordered.
    pub intent: Intent,
    /// Why it is ordered.
    pub reason: Reason,
}

/// An inclusive range of Valkey Cluster hash slots (0..=16383).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SlotRange {
    /// First slot of the range.
    pub start: u16,
    /// Last slot of the range (inclusive).
    pub end: u16,
}

/// An order to an executor. Imperative names; each is idempotent and safe
/// to resume after a crash.
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Server-side apply the Kubernetes objects rendered from the spec of
    /// `generation` (StatefulSets, Services, ConfigMaps, PDBs).
    ApplyResources {
        /// Spec generation the objects are rendered from.
        generation: i64,
    },
    /// Make `pod` the primary (`REPLICAOF NO ONE` / `FAILOVER`), replacing
    /// `from` when one is known.
    PromoteReplica {
        /// The replica to promote.
        pod: String,
        /// The primary it replaces, if any.
        from: Option<String>,
    },
    /// Point `pod` at the primary `to` (`REPLICAOF <ip> <port>`).
    RepointReplica {
        /// The replica to repoint.
        pod: String,
        /// The primary it must follow.
        to: String,
    },
    /// Delete `pod` so its StatefulSet recreates it at `revision`.
    RollPod {
        /// The pod to roll.
        pod: String,
        /// The controller revision it must come back at.
        revision: String,
    },
    /// Stop `pod` from accepting writes (read-only / isolated) so it cannot
    /// diverge while another pod is promoted.
    FenceNode {
        /// The pod to fence.
        pod: String,
    },
    /// Join `pod` to the Valkey Cluster (`CLUSTER MEET`).
    AddNode {
        /// The pod to add.
        pod: String,
    },
    /// Remove the cluster node `node_id` (last seen as `pod`) from every
    /// member's node table (`CLUSTER FORGET`).
    ForgetNode {
        /// The pod the node ran in.
        pod: String,
        /// The Valkey Cluster node id (40 hex characters).
        node_id: String,
    },
    /// Move `slots` from the shard whose primary is `from` to the one whose
    /// primary is `to`.
    MigrateSlots {
        /// Source primary pod.
        from: String,
        /// Target primary pod.
        to: String,
        /// Slot ranges to move.
        slots: Vec<SlotRange>,
    },
    /// Publish the projection as the ValkeyCluster's status.
    UpdateStatus,
    /// Set the `valkey.logbook.dev/role` label: `primary` on `primary`,
    /// `replica` on every other data pod (all of them when `None`), so the
    /// client Service sends writes only to the decided primary.
    SetRoleLabels {
        /// The pod that must carry `role=primary`, if any.
        primary: Option<String>,
    },
    /// Publish the primary the pods must boot as replicas of (the boot
    /// ConfigMap read by each pod's start script). `None` makes every pod
    /// boot fenced.
    PublishBootConfig {
        /// The decided primary.
        primary: Option<String>,
        /// Its pod IP at the time of the decision.
        ip: Option<String>,
    },
    /// Planned hand-over of the primary role from `from` to its in-sync
    /// replica `to` without losing an acknowledged write.
    Switchover {
        /// The current primary.
        from: String,
        /// The replica taking over.
        to: String,
    },
    /// Remove the switchover request annotation once it has been served
    /// (or cannot be).
    ClearSwitchoverRequest,
    /// Remove the failover request annotation once it has been served (or
    /// refused, the reason saying why).
    ClearFailoverRequest,
    /// Cluster: give the slots `slots` to the node in `pod`
    /// (`CLUSTER ADDSLOTSRANGE`); only slots nobody owns.
    AssignSlots {
        /// The pod whose node takes the slots.
        pod: String,
        /// The slot ranges.
        slots: Vec<SlotRange>,
    },
    /// Cluster: make the node in `pod` a replica of the node `node_id`
    /// running in `primary` (`CLUSTER REPLICATE`).
    ReplicateShard {
        /// The pod to attach.
        pod: String,
        /// The shard's primary pod.
        primary: String,
        /// The shard's primary node id.
        node_id: String,
    },
    /// Cluster: fail the shard of `from` over to its replica in `pod`
    /// (`CLUSTER FAILOVER` with `mode`).
    ClusterFailover {
        /// The replica taking over.
        pod: String,
        /// The primary it replaces, if known.
        from: Option<String>,
        /// Coordinated, forced or takeover.
        mode: ClusterFailoverMode,
    },
    /// Cluster: set `valkey.logbook.dev/role` to `primary` on each pod of
    /// `primaries` and `replica` on every other data pod.
    SetShardRoleLabels {
        /// The pods serving as shard primaries.
        primaries: Vec<String>,
    },
    /// Cluster: `CLUSTER MEET` the node in `pod` (at its pod address, once
    /// its node id there is checked) from the node of each pod of `from`.
    MeetNode {
        /// The pod to meet.
        pod: String,
        /// The members that meet it.
        from: Vec<String>,
    },
    /// Cluster: move `slots` from the node `from_node` (the shard primary
    /// in `from`) to the node `to_node` (the primary in `to`): one atomic
    /// slot migration job (`CLUSTER MIGRATESLOTS`: one snapshot, one write
    /// pause), or on servers without it the classic `SETSLOT` + `MIGRATE`
    /// pipeline, slot by slot. A job already under way for exactly these
    /// slots is waited for, never started twice; slots the target already
    /// owns are done.
    MoveSlots {
        /// Source primary pod.
        from: String,
        /// Source node id.
        from_node: String,
        /// Target primary pod.
        to: String,
        /// Target node id.
        to_node: String,
        /// The slot ranges.
        slots: Vec<SlotRange>,
    },
    /// Cluster: settle `slot`, left half-moved (`IMPORTING`/`MIGRATING`)
    /// with no migration under way. With `to_node`, the move is finished:
    /// the keys still on the owner `owner_node` (in `owner`) are sent to
    /// `to_node` (in `to`) and every primary is told it owns the slot;
    /// without, the markers are cleared (`SETSLOT STABLE`) where they stand.
    SettleSlot {
        /// The slot.
        slot: u16,
        /// Pod of the node owning it.
        owner: String,
        /// The owning node id.
        owner_node: String,
        /// Pod of the node the move is finished to, if it is.
        to: Option<String>,
        /// That node's id.
        to_node: Option<String>,
    },
    /// Sentinel: make the Sentinel in `sentinel` monitor the cluster's
    /// primary `primary` at `ip` with `settings` (`SENTINEL REMOVE` of a
    /// stale entry, `MONITOR`, `SET`, the data nodes' password).
    SentinelMonitor {
        /// The Sentinel's pod.
        sentinel: String,
        /// The primary's pod.
        primary: String,
        /// Its address at the time of the decision.
        ip: String,
        /// The settings in force.
        settings: crate::sentinel::SentinelSettings,
    },
    /// Sentinel: apply `settings` to the Sentinel in `sentinel`
    /// (`SENTINEL SET`), which already monitors the primary.
    SentinelConfigure {
        /// The Sentinel's pod.
        sentinel: String,
        /// The settings in force.
        settings: crate::sentinel::SentinelSettings,
    },
    /// Sentinel: forget the replicas and Sentinels the Sentinel in
    /// `sentinel` knows (`SENTINEL RESET`), so that it rediscovers the live
    /// ones and drops stale entries.
    SentinelReset {
        /// The Sentinel's pod.
        sentinel: String,
    },
    /// Sentinel: ask the Sentinels to hand the primary role over from
    /// `from` (`SENTINEL FAILOVER … COORDINATED`: the primary pauses writes
    /// until the chosen replica has caught up), preferring `to` when
    /// given, and wait until they confirm the switch.
    SentinelFailover {
        /// The current primary.
        from: String,
        /// The replica preferred, if any.
        to: Option<String>,
    },
    /// ACL users: on the node in `pod`, apply the users named in `apply`
    /// as their records say (`ACL SETUSER <user> reset >password
    /// <rules>`), delete those in `remove` (`ACL DELUSER`), persist
    /// (`ACL SAVE`), and read back what the node holds.
    SyncUsers {
        /// The data pod.
        pod: String,
        /// ACL user names to (re)apply.
        apply: Vec<String>,
        /// ACL user names to delete.
        remove: Vec<String>,
    },
    /// ACL users: the ValkeyUser `object`'s user is on no node any more:
    /// release the object's finalizer, so that its deletion completes.
    ReleaseUser {
        /// The ValkeyUser object's name.
        object: String,
    },
    /// TLS: issue the cluster's certificate from the operator's own CA
    /// into `secret` (the first one, or a renewal before it expires).
    IssueCertificate {
        /// The certificate Secret.
        secret: String,
    },
    /// TLS: make the nodes in `pods` load the certificate files again
    /// (`CONFIG SET tls-cert-file ...`), so that they serve the
    /// certificate with `fingerprint` without a restart.
    ReloadCertificate {
        /// The data pods.
        pods: Vec<String>,
        /// The certificate they are to serve.
        fingerprint: String,
    },
    /// Backups: take attempt `attempt` of backup `object`, streaming each
    /// shard's RDB from its source into the bucket, then the manifest.
    /// Started here; carried on in the background, which journals each
    /// shard and the end (`BackupShardUploaded`, `BackupCompleted`,
    /// `BackupFailed`).
    TakeBackup {
        /// The ValkeyBackup object's name.
        object: String,
        /// The attempt, from 1.
        attempt: u32,
        /// One source per shard.
        sources: Vec<crate::backup::BackupSource>,
    },
    /// Backups: create the ValkeyBackup `object` the schedule made due.
    CreateScheduledBackup {
        /// Its name.
        object: String,
    },
    /// Backups: delete backup `object`: every object under `dir` (this
    /// backup's directory, and nothing else), then the ValkeyBackup.
    DeleteBackup {
        /// The ValkeyBackup object's name.
        object: String,
        /// Its directory in the bucket, ending in `/`.
        dir: String,
    },
    /// Restore: every shard's pod serves its restored data; remove the
    /// restore plan (so that no pod started later loads it again).
    FinishRestore {
        /// Shards restored.
        shards: u32,
    },
    /// The ValkeyCluster was deleted: delete every object the operator
    /// made for it (StatefulSets, Services, ConfigMaps, PDB,
    /// NetworkPolicy, Secrets; its PVCs when `delete_pvcs`), and release
    /// the ValkeyUsers naming it. The journal is kept.
    DeleteOwnedObjects {
        /// Whether the PVCs go too.
        delete_pvcs: bool,
    },
    /// ACL users: add the cluster's fingerprint key (32 random bytes) to
    /// its Secret `<cluster>-internal`, which lacks it (a cluster made
    /// before the key existed, or the key deleted by hand); nothing else
    /// of the Secret changes, and a key already there is kept.
    CreateFingerprintKey,
    /// Sentinel: set how often the Sentinel in `sentinel` asks the data
    /// nodes for `INFO` (`SENTINEL DEBUG info-period`), which is not kept
    /// in its configuration file: a restarted Sentinel is back at 10 s.
    /// (Last: an intent's index is its journal encoding.)
    SentinelTune {
        /// The Sentinel's pod.
        sentinel: String,
        /// The period, in milliseconds.
        info_period_ms: u64,
    },
    /// Valkey Cluster: turn the replica running node `node_id` in `pod`,
    /// one its shard has more of than the spec asks for, into an empty
    /// primary (`CLUSTER RESET SOFT`: it drops its copy of the shard and
    /// forgets the cluster; its node id stays), so that it is met again
    /// and becomes a new shard's primary — more shards are wanted than
    /// empty primaries exist (pods that came back on volumes kept from
    /// before a scale-in rejoin as the replicas they were).
    ResetReplica {
        /// The replica's pod.
        pod: String,
        /// Its node id, checked before the reset.
        node_id: String,
    },
    /// Remove the ownership annotation (`valkey.logbook.dev/cr`) from
    /// every object the cluster owns but its data StatefulSet, whose user
    /// removed it there: the cluster is unbound, and its objects are no
    /// longer marked as the operator's. Pods, volumes and data stay.
    ReleaseObjects,
    /// Hibernation (`spec.hibernated`): stop every primary of `primaries`
    /// taking writes (`CLIENT PAUSE WRITE`), let its replicas catch up,
    /// then make what every pod of `pods` holds durable as the spec's
    /// persistence asks (`SAVE`, an append-only rewrite), before its
    /// StatefulSets go to zero pods. Volumes, Services and Secrets stay.
    PersistForHibernation {
        /// The primaries, paused first (a Cluster's shard primaries).
        primaries: Vec<String>,
        /// Every data pod to persist, primaries included.
        pods: Vec<String>,
    },
    /// Waking from hibernation: every data pod is back from its volume;
    /// `primary` (the one it had, booted fenced) takes writes again and
    /// the others follow it, so that no failover is decided on the way
    /// up. `None`: the pods' own files say their roles (Standalone, a
    /// Cluster's `nodes.conf`), and each is only checked to answer.
    Wake {
        /// The primary it had when it went to sleep.
        primary: Option<String>,
        /// Every data pod.
        pods: Vec<String>,
    },
    /// A change of image: run `image` once as the pods of spec generation
    /// `generation` would run it (its config, its users, its TLS), on no
    /// data and in no Service, before anything rolls: the Pod
    /// `<cluster>-preflight` with its own ConfigMap. What it answers is
    /// journaled as `ImagePreflighted`.
    PreflightImage {
        /// The image to run.
        image: String,
        /// The spec generation whose config it runs with.
        generation: i64,
    },
    /// The preflight of `image` ended: its Pod and ConfigMap are deleted.
    RemovePreflight {
        /// The image it ran.
        image: String,
    },
    /// A standby (`spec.replicateFrom`): `pod` replicates from the
    /// source at `host`:`port` (its client Service, so it follows the
    /// source's failovers): `REPLICAOF host port`. From then on it is the
    /// standby's believed primary, which its other pods follow and which
    /// refuses writes. Journaled as `SourceFollowed`.
    FollowSource {
        /// The standby's pod.
        pod: String,
        /// The source's address.
        host: String,
        /// The source's port.
        port: u16,
        /// `namespace/name` of the Secret holding the source's passwords.
        secret: String,
    },
    /// `spec.replicateFrom` removed: `pod`, which follows the source,
    /// stops following (`REPLICAOF NO ONE`) and takes writes. The source's
    /// offset is read just before and just after, so the outcome
    /// (`StandbyPromoted`) says how far behind the source it was.
    PromoteStandby {
        /// The standby's pod that follows the source.
        pod: String,
        /// The source's address.
        host: String,
        /// The source's port.
        port: u16,
        /// `namespace/name` of the Secret holding the source's passwords.
        secret: String,
    },
    /// Remove the rebalance request annotation once every primary that
    /// could move back to its preferred pod has (the reason says which
    /// could not, and why).
    ClearRebalanceRequest,
    /// A restart was requested (`kubectl valkey restart`): the objects of
    /// `generation` are applied with `requested` stamped on every pod
    /// template (annotation `valkey.logbook.dev/restarted-at`), which
    /// gives the StatefulSets a new revision; the usual roll then replaces
    /// every pod once (replicas first, the primary after a switchover).
    RestartPods {
        /// The request's value, stamped on the pod templates.
        requested: String,
        /// The spec generation whose objects are applied.
        generation: i64,
    },
    /// ACL users: write the connection Secret of the ValkeyUser `object`
    /// (`spec.connectionSecret`, in its namespace, owned by it) with its
    /// user name and the password every node holds it with, for its
    /// application.
    ApplyUserConnection {
        /// The ValkeyUser object's name.
        object: String,
    },
    /// Archive: keep every shard's write stream archived under `dir`
    /// (`spec.backup.continuous`): the cluster's archive task follows
    /// each shard as a replica of one of its replicas and ships the
    /// stream in segments (`ArchiveChainStarted`, `ArchiveFollowed`,
    /// `ArchiveChainEnded`).
    Archive {
        /// The bucket and the archive's directory (`dir`).
        target: crate::backup::BackupTarget,
    },
    /// Archive: stop archiving (the field was removed); the chains end.
    StopArchive,
    /// Archive retention: delete chain `chain`, every object under `dir`
    /// (that chain's directory and nothing else).
    DeleteArchiveChain {
        /// The chain.
        chain: String,
        /// Its directory, ending in `/`.
        dir: String,
    },
    /// Point-in-time restore of a Cluster: delete the keys of `slots`
    /// on `pod` and give the slots up. The pod loaded a shard's stream
    /// up to the time, and claimed every slot it holds keys of; these
    /// belonged to another shard at that time.
    DropForeignSlots {
        /// The pod.
        pod: String,
        /// The slots.
        slots: Vec<SlotRange>,
    },
    /// Cluster: make the node in `pod` announce `endpoint` (`CONFIG SET`
    /// of `cluster-announce-*`, no restart), or its own pod address when
    /// `None`; the node's `CLUSTER NODES` line then shows it. `pod_ip` is
    /// its pod address when decided (what it announces to its peers when
    /// only clients are told the endpoint).
    Announce {
        /// The pod.
        pod: String,
        /// Its pod address.
        pod_ip: String,
        /// Where clients outside reach it; `None` for none.
        endpoint: Option<crate::external::ExternalEndpoint>,
    },
}

/// How a Cluster failover is run (`CLUSTER FAILOVER [FORCE|TAKEOVER]`).
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterFailoverMode {
    /// No option: the primary stops writes until the replica has caught
    /// up, then the replica is elected. Loses no acknowledged write; needs
    /// the primary to answer.
    Coordinated,
    /// `FORCE`: no hand-shake with the primary (it is dead); the replica
    /// is still elected by a majority of primaries.
    Force,
    /// `TAKEOVER`: no election either; the replica takes a new epoch on
    /// its own. Only when a majority of primaries is gone.
    Takeover,
}

impl ClusterFailoverMode {
    /// The option word (`""`, `FORCE`, `TAKEOVER`).
    #[must_use]
    pub const fn word(self) -> &'static str {
        match self {
            Self::Coordinated => "",
            Self::Force => "FORCE",
            Self::Takeover => "TAKEOVER",
        }
    }
}

/// `pods` joined for a sentence, `no pod` when empty.
fn list(pods: &[String]) -> String {
    if pods.is_empty() {
        "no pod".to_owned()
    } else {
        pods.join(", ")
    }
}

impl Intent {
    /// The stable catalog name of the variant (for logs, metrics, timelines).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::ApplyResources { .. } => "ApplyResources",
            Self::PromoteReplica { .. } => "PromoteReplica",
            Self::RepointReplica { .. } => "RepointReplica",
            Self::RollPod { .. } => "RollPod",
            Self::FenceNode { .. } => "FenceNode",
            Self::AddNode { .. } => "AddNode",
            Self::ForgetNode { .. } => "ForgetNode",
            Self::MigrateSlots { .. } => "MigrateSlots",
            Self::UpdateStatus => "UpdateStatus",
            Self::SetRoleLabels { .. } => "SetRoleLabels",
            Self::PublishBootConfig { .. } => "PublishBootConfig",
            Self::Switchover { .. } => "Switchover",
            Self::ClearSwitchoverRequest => "ClearSwitchoverRequest",
            Self::ClearFailoverRequest => "ClearFailoverRequest",
            Self::AssignSlots { .. } => "AssignSlots",
            Self::ReplicateShard { .. } => "ReplicateShard",
            Self::ClusterFailover { .. } => "ClusterFailover",
            Self::SetShardRoleLabels { .. } => "SetShardRoleLabels",
            Self::MeetNode { .. } => "MeetNode",
            Self::MoveSlots { .. } => "MoveSlots",
            Self::SettleSlot { .. } => "SettleSlot",
            Self::SentinelMonitor { .. } => "SentinelMonitor",
            Self::SentinelConfigure { .. } => "SentinelConfigure",
            Self::SentinelTune { .. } => "SentinelTune",
            Self::ResetReplica { .. } => "ResetReplica",
            Self::ReleaseObjects => "ReleaseObjects",
            Self::PersistForHibernation { .. } => "PersistForHibernation",
            Self::Wake { .. } => "Wake",
            Self::PreflightImage { .. } => "PreflightImage",
            Self::RemovePreflight { .. } => "RemovePreflight",
            Self::FollowSource { .. } => "FollowSource",
            Self::PromoteStandby { .. } => "PromoteStandby",
            Self::ClearRebalanceRequest => "ClearRebalanceRequest",
            Self::RestartPods { .. } => "RestartPods",
            Self::ApplyUserConnection { .. } => "ApplyUserConnection",
            Self::Archive { .. } => "Archive",
            Self::StopArchive => "StopArchive",
            Self::DeleteArchiveChain { .. } => "DeleteArchiveChain",
            Self::DropForeignSlots { .. } => "DropForeignSlots",
            Self::Announce { .. } => "Announce",
            Self::SentinelReset { .. } => "SentinelReset",
            Self::SentinelFailover { .. } => "SentinelFailover",
            Self::SyncUsers { .. } => "SyncUsers",
            Self::ReleaseUser { .. } => "ReleaseUser",
            Self::IssueCertificate { .. } => "IssueCertificate",
            Self::ReloadCertificate { .. } => "ReloadCertificate",
            Self::TakeBackup { .. } => "TakeBackup",
            Self::CreateScheduledBackup { .. } => "CreateScheduledBackup",
            Self::DeleteBackup { .. } => "DeleteBackup",
            Self::FinishRestore { .. } => "FinishRestore",
            Self::DeleteOwnedObjects { .. } => "DeleteOwnedObjects",
            Self::CreateFingerprintKey => "CreateFingerprintKey",
        }
    }

    /// One line for people: Kubernetes Events, logs, replay timelines.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::ApplyResources { generation } => format!("apply generation {generation}"),
            Self::PromoteReplica { pod, from } => match from {
                Some(from) => format!("promote {pod} (replacing {from})"),
                None => format!("promote {pod}"),
            },
            Self::RepointReplica { pod, to } => format!("repoint {pod} to {to}"),
            Self::RollPod { pod, revision } => format!("roll {pod} to revision {revision}"),
            Self::FenceNode { pod } => format!("fence {pod}"),
            Self::AddNode { pod } => format!("add {pod} to the cluster"),
            Self::ForgetNode { pod, node_id } => format!("forget node {node_id} ({pod})"),
            Self::MigrateSlots { from, to, slots } => {
                let count: u32 = slots
                    .iter()
                    .map(|r| u32::from(r.end.saturating_sub(r.start)).saturating_add(1))
                    .sum();
                format!("migrate {count} slots from {from} to {to}")
            }
            Self::UpdateStatus => "publish the status".to_owned(),
            Self::SetRoleLabels { primary } => {
                format!("label {} primary", primary.as_deref().unwrap_or("no pod"))
            }
            Self::PublishBootConfig { primary, .. } => format!(
                "boot replicas of {}",
                primary.as_deref().unwrap_or("nobody")
            ),
            Self::Switchover { from, to } => format!("switch over {from} -> {to}"),
            Self::ClearSwitchoverRequest => "clear the switchover request".to_owned(),
            Self::ClearFailoverRequest => "clear the failover request".to_owned(),
            Self::AssignSlots { pod, slots } => format!(
                "assign {} slots ({}) to {pod}",
                crate::cluster::slot_count(slots),
                crate::cluster::describe_slots(slots)
            ),
            Self::ReplicateShard { pod, primary, .. } => {
                format!("make {pod} a replica of {primary}")
            }
            Self::ClusterFailover { pod, from, mode } => {
                let how = match mode {
                    ClusterFailoverMode::Coordinated => "coordinated failover",
                    ClusterFailoverMode::Force => "forced failover",
                    ClusterFailoverMode::Takeover => "takeover",
                };
                match from {
                    Some(from) => format!("{how} of {from}'s shard to {pod}"),
                    None => format!("{how} to {pod}"),
                }
            }
            Self::SetShardRoleLabels { primaries } => {
                format!("label {} primary", primaries.join(", "))
            }
            Self::MeetNode { pod, from } => format!("meet {pod} from {}", from.join(", ")),
            Self::MoveSlots {
                from, to, slots, ..
            } => format!(
                "move {} slots ({}) from {from} to {to}",
                crate::cluster::slot_count(slots),
                crate::cluster::describe_slots(slots)
            ),
            Self::SettleSlot {
                slot, owner, to, ..
            } => match to {
                Some(to) => format!("finish moving slot {slot} from {owner} to {to}"),
                None => format!("clear slot {slot}'s half-move markers (owner {owner})"),
            },
            Self::SentinelMonitor {
                sentinel,
                primary,
                ip,
                settings,
            } => format!(
                "make {sentinel} monitor {primary} ({ip}) with quorum {}",
                settings.quorum
            ),
            Self::SentinelConfigure { sentinel, settings } => format!(
                "set {sentinel}'s quorum {}, down-after {} ms, failover-timeout {} ms, parallel-syncs {}",
                settings.quorum,
                settings.down_after_ms,
                settings.failover_timeout_ms,
                settings.parallel_syncs
            ),
            Self::SentinelTune {
                sentinel,
                info_period_ms,
            } => format!("set {sentinel}'s INFO period to {info_period_ms} ms"),
            Self::ResetReplica { pod, node_id } => format!(
                "reset replica {pod} (node {}) into an empty primary",
                node_id.get(..8).unwrap_or(node_id)
            ),
            Self::SentinelReset { sentinel } => format!("reset {sentinel}'s tables"),
            Self::SentinelFailover { from, to } => match to {
                Some(to) => format!("ask Sentinel to fail {from} over (to {to})"),
                None => format!("ask Sentinel to fail {from} over"),
            },
            Self::SyncUsers { pod, apply, remove } => match (apply.is_empty(), remove.is_empty()) {
                (false, true) => format!("apply ACL users {} on {pod}", apply.join(", ")),
                (true, false) => format!("delete ACL users {} on {pod}", remove.join(", ")),
                _ => format!(
                    "apply ACL users {} and delete {} on {pod}",
                    apply.join(", "),
                    remove.join(", ")
                ),
            },
            Self::ReleaseUser { object } => {
                format!("release ValkeyUser {object} (on no node any more)")
            }
            Self::IssueCertificate { secret } => {
                format!("issue the TLS certificate into Secret {secret} from the operator's CA")
            }
            Self::ReloadCertificate { pods, fingerprint } => format!(
                "reload the TLS certificate {} on {}",
                fingerprint.get(..16).unwrap_or(fingerprint),
                pods.join(", ")
            ),
            Self::TakeBackup {
                object,
                attempt,
                sources,
            } => format!(
                "take backup {object} (attempt {attempt}) from {}",
                sources
                    .iter()
                    .map(|s| s.pod.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::CreateScheduledBackup { object } => {
                format!("create the scheduled ValkeyBackup {object}")
            }
            Self::DeleteBackup { object, dir } => {
                format!("delete backup {object} (the objects under {dir}, then the ValkeyBackup)")
            }
            Self::FinishRestore { shards } => {
                format!("finish the restore of {shards} shards (remove the restore plan)")
            }
            Self::DeleteOwnedObjects { delete_pvcs } => format!(
                "delete the objects the cluster owns{}",
                if *delete_pvcs {
                    ", its PVCs too"
                } else {
                    " (its PVCs are kept)"
                }
            ),
            Self::CreateFingerprintKey => {
                "create the cluster's fingerprint key (in its Secret <name>-internal)".to_owned()
            }
            Self::ReleaseObjects => {
                "remove the ownership annotation from the cluster's objects (unbound)".to_owned()
            }
            Self::PersistForHibernation { primaries, pods } => format!(
                "pause writes on {}, then persist {} before hibernating",
                list(primaries),
                list(pods)
            ),
            Self::Wake { primary, pods } => match primary {
                Some(primary) => format!(
                    "wake: {primary} primary again, {} following it",
                    list(
                        &pods
                            .iter()
                            .filter(|p| *p != primary)
                            .cloned()
                            .collect::<Vec<_>>()
                    )
                ),
                None => format!("wake: {} back as they were", list(pods)),
            },
            Self::PreflightImage { image, generation } => format!(
                "run {image} once with the config of spec generation {generation}, on no data"
            ),
            Self::RemovePreflight { image } => format!("delete the preflight pod of {image}"),
            Self::FollowSource {
                pod, host, port, ..
            } => format!("{pod} follows the source at {host}:{port}"),
            Self::PromoteStandby { pod, .. } => {
                format!("promote the standby: {pod} stops following its source")
            }
            Self::ClearRebalanceRequest => "clear the rebalance request".to_owned(),
            Self::RestartPods { requested, .. } => {
                format!("restart every pod (requested {requested})")
            }
            Self::ApplyUserConnection { object } => {
                format!("write the connection Secret of ValkeyUser {object}")
            }
            Self::Archive { target } => format!(
                "archive every shard's write stream to s3://{}/{}",
                target.bucket, target.dir
            ),
            Self::StopArchive => "stop archiving the write stream".to_owned(),
            Self::DeleteArchiveChain { chain, dir } => {
                format!("delete archive chain {chain} (the objects under {dir})")
            }
            Self::DropForeignSlots { pod, slots } => format!(
                "delete the keys of {} on {pod} and give the slots up (another shard owned them at the time restored to)",
                crate::cluster::describe_slots(slots)
            ),
            Self::Announce {
                pod,
                endpoint: Some(e),
                ..
            } => format!("make {pod} announce {} to clients", e.describe()),
            Self::Announce {
                pod,
                pod_ip,
                endpoint: None,
            } => format!("make {pod} announce its pod address {pod_ip}"),
        }
    }
}

impl ReasonCode {
    /// The stable catalog name of the variant.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::SpecChanged { .. } => "SpecChanged",
            Self::PrimaryUnreachable { .. } => "PrimaryUnreachable",
            Self::PrimaryDead => "PrimaryDead",
            Self::NoPrimary => "NoPrimary",
            Self::ReplicaMisdirected => "ReplicaMisdirected",
            Self::RevisionOutdated => "RevisionOutdated",
            Self::ResumeAfterRestart => "ResumeAfterRestart",
            Self::StatusStale => "StatusStale",
            Self::Requested => "Requested",
            Self::PrimaryFailed { .. } => "PrimaryFailed",
            Self::Bootstrap { .. } => "Bootstrap",
            Self::RoleLabelsStale => "RoleLabelsStale",
            Self::BootConfigStale => "BootConfigStale",
            Self::ScaleIn { .. } => "ScaleIn",
            Self::PrimaryOutdated => "PrimaryOutdated",
            Self::NodeNotJoined => "NodeNotJoined",
            Self::SlotsUnassigned { .. } => "SlotsUnassigned",
            Self::ShardNeedsReplica => "ShardNeedsReplica",
            Self::NodeRetired { .. } => "NodeRetired",
            Self::QuorumLost { .. } => "QuorumLost",
            Self::PrimaryBehindReplica { .. } => "PrimaryBehindReplica",
            Self::Reshard { .. } => "Reshard",
            Self::SlotStuck { .. } => "SlotStuck",
            Self::SentinelNotMonitoring => "SentinelNotMonitoring",
            Self::SentinelSettingsDrift => "SentinelSettingsDrift",
            Self::SentinelInfoPeriod { .. } => "SentinelInfoPeriod",
            Self::ObjectsUnmarked => "ObjectsUnmarked",
            Self::Unbound { .. } => "Unbound",
            Self::Rebound => "Rebound",
            Self::Drift { .. } => "Drift",
            Self::Hibernate => "Hibernate",
            Self::Wake => "Wake",
            Self::Upgrade => "Upgrade",
            Self::FailBack { .. } => "FailBack",
            Self::Standby { .. } => "Standby",
            Self::Promotion { .. } => "Promotion",
            Self::Rebalance { .. } => "Rebalance",
            Self::RestartRequested { .. } => "RestartRequested",
            Self::UserConnectionStale => "UserConnectionStale",
            Self::ArchiveRequested => "ArchiveRequested",
            Self::ArchiveNotRequested => "ArchiveNotRequested",
            Self::ArchiveExpired { .. } => "ArchiveExpired",
            Self::ForeignSlotsClaimed => "ForeignSlotsClaimed",
            Self::AnnouncedAddressStale { .. } => "AnnouncedAddressStale",
            Self::ExternalEndpointsChanged { .. } => "ExternalEndpointsChanged",
            Self::SentinelStaleEntries { .. } => "SentinelStaleEntries",
            Self::PrimaryRestartedFenced => "PrimaryRestartedFenced",
            Self::UsersOutOfSync { .. } => "UsersOutOfSync",
            Self::UserRemoved => "UserRemoved",
            Self::CertificateDue { .. } => "CertificateDue",
            Self::CertificateChanged { .. } => "CertificateChanged",
            Self::BackupRequested => "BackupRequested",
            Self::BackupRetry { .. } => "BackupRetry",
            Self::BackupScheduled { .. } => "BackupScheduled",
            Self::RetentionExpired { .. } => "RetentionExpired",
            Self::RestoreLoaded => "RestoreLoaded",
            Self::ClusterDeleted => "ClusterDeleted",
            Self::FingerprintKeyMissing => "FingerprintKeyMissing",
        }
    }

    /// The pods considered for a promotion, when the code carries them.
    #[must_use]
    pub fn candidates(&self) -> &[Candidate] {
        match self {
            Self::PrimaryFailed { candidates, .. }
            | Self::Bootstrap { candidates }
            | Self::QuorumLost { candidates, .. }
            | Self::PrimaryBehindReplica { candidates, .. } => candidates,
            Self::SpecChanged { .. }
            | Self::PrimaryUnreachable { .. }
            | Self::PrimaryDead
            | Self::NoPrimary
            | Self::ReplicaMisdirected
            | Self::RevisionOutdated
            | Self::ResumeAfterRestart
            | Self::StatusStale
            | Self::Requested
            | Self::RoleLabelsStale
            | Self::BootConfigStale
            | Self::ScaleIn { .. }
            | Self::PrimaryOutdated
            | Self::NodeNotJoined
            | Self::SlotsUnassigned { .. }
            | Self::ShardNeedsReplica
            | Self::NodeRetired { .. }
            | Self::Reshard { .. }
            | Self::SlotStuck { .. }
            | Self::SentinelNotMonitoring
            | Self::SentinelSettingsDrift
            | Self::SentinelInfoPeriod { .. }
            | Self::ObjectsUnmarked
            | Self::Unbound { .. }
            | Self::Rebound
            | Self::Drift { .. }
            | Self::Hibernate
            | Self::Wake
            | Self::Upgrade
            | Self::FailBack { .. }
            | Self::Standby { .. }
            | Self::Promotion { .. }
            | Self::Rebalance { .. }
            | Self::RestartRequested { .. }
            | Self::UserConnectionStale
            | Self::ArchiveRequested
            | Self::ArchiveNotRequested
            | Self::ArchiveExpired { .. }
            | Self::ForeignSlotsClaimed
            | Self::AnnouncedAddressStale { .. }
            | Self::ExternalEndpointsChanged { .. }
            | Self::SentinelStaleEntries { .. }
            | Self::PrimaryRestartedFenced
            | Self::UsersOutOfSync { .. }
            | Self::UserRemoved
            | Self::CertificateDue { .. }
            | Self::CertificateChanged { .. }
            | Self::BackupRequested
            | Self::BackupRetry { .. }
            | Self::BackupScheduled { .. }
            | Self::RetentionExpired { .. }
            | Self::RestoreLoaded
            | Self::ClusterDeleted
            | Self::FingerprintKeyMissing => &[],
        }
    }
}

/// Machine-readable reason code for a decision.
// PERSISTED ENUM — append-only: never reorder, rename or remove variants,
// never change a variant's fields; add new variants at the end only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReasonCode {
    /// The desired spec changed to `generation`.
    SpecChanged {
        /// The new generation.
        generation: i64,
    },
    /// The primary failed `consecutive_failures` probes in a row.
    PrimaryUnreachable {
        /// Number of consecutive failed probes.
        consecutive_failures: u32,
    },
    /// The primary's pod is gone or its process is dead (refused, terminated).
    PrimaryDead,
    /// No primary is known (bootstrap, or after a lost primary).
    NoPrimary,
    /// A replica follows someone other than the believed primary.
    ReplicaMisdirected,
    /// A pod runs an outdated controller revision.
    RevisionOutdated,
    /// Resuming an intent found in flight after an operator restart.
    ResumeAfterRestart,
    /// The published status differs from the projection.
    StatusStale,
    /// A human asked for it (annotation or CLI).
    Requested,
    /// The primary was judged failed; `candidates` is every data pod
    /// considered for promotion, as the decider saw it.
    PrimaryFailed {
        /// Death (refused, terminated, deleted) rather than slowness.
        death: bool,
        /// Consecutive failed probes of the primary.
        consecutive_failures: u32,
        /// Every pod considered.
        candidates: Vec<Candidate>,
    },
    /// No primary existed yet: the first one is chosen among `candidates`.
    Bootstrap {
        /// Every pod considered.
        candidates: Vec<Candidate>,
    },
    /// Pod role labels differ from the decided roles.
    RoleLabelsStale,
    /// The published boot primary differs from the decided primary.
    BootConfigStale,
    /// `replicas` went down from `from` to `to`; the primary must not be
    /// among the pods removed.
    ScaleIn {
        /// Pods before.
        from: u32,
        /// Pods after.
        to: u32,
    },
    /// The primary runs an outdated revision: it hands over before it rolls.
    PrimaryOutdated,
    /// Cluster: a pod's node is not in the cluster, or some member has a
    /// stale address for it.
    NodeNotJoined,
    /// Cluster: `unassigned` slots have no owner and the cluster was never
    /// formed.
    SlotsUnassigned {
        /// Slots with no owner.
        unassigned: u32,
    },
    /// Cluster: a node holds no slot and follows nobody; a shard lacks a
    /// replica.
    ShardNeedsReplica,
    /// Cluster: a node id no pod of this cluster runs any more (its data
    /// was lost, its pod removed) or that never belonged to it is still in
    /// some member's table.
    NodeRetired {
        /// The node id.
        node_id: String,
    },
    /// Cluster: a majority of shard primaries is gone, so no election can
    /// win; the spec allows a takeover, trading possible loss of the
    /// writes the dead primaries took last for availability.
    QuorumLost {
        /// Shards whose primary is gone.
        primaries_lost: u32,
        /// Shards in all.
        shards: u32,
        /// Every replica considered for this shard.
        candidates: Vec<Candidate>,
    },
    /// Cluster: the shard's primary answers, but with less of the shard's
    /// history than a replica holds (its process restarted in place from
    /// what it had persisted, or empty): before the replica resyncs from
    /// it and loses those writes, the replica with the most of them takes
    /// over (`FORCE`: the restarted primary must not hand over what it no
    /// longer has). Replication: the believed primary, promoted from a
    /// pod that still reports itself primary further along (a switchover
    /// cut short before the old primary followed it, whose pause expired),
    /// gives the role back to it.
    PrimaryBehindReplica {
        /// The primary's offset now (on its new history, or on the old one
        /// when it restored it from a snapshot).
        primary_offset: u64,
        /// Every replica considered for this shard.
        candidates: Vec<Candidate>,
    },
    /// Cluster: the slots are not where the spec in force wants them:
    /// `shards` shards of 16384 / `shards` slots each (the first 16384 %
    /// `shards` one more), no slot on a shard being removed.
    Reshard {
        /// The spec generation whose shards are wanted.
        generation: i64,
        /// Shards wanted.
        shards: u32,
        /// Slots still to move before the layout is reached.
        slots_to_move: u32,
    },
    /// Cluster: `slot` is left half-moved (`IMPORTING` or `MIGRATING` on
    /// some node) with no migration under way.
    SlotStuck {
        /// The slot.
        slot: u16,
    },
    /// Sentinel: a Sentinel monitors no primary, or one at an address no
    /// pod has.
    SentinelNotMonitoring,
    /// Sentinel: a Sentinel applies other settings than the spec's.
    SentinelSettingsDrift,
    /// Sentinel: a Sentinel's tables hold replicas or Sentinels that no
    /// current pod is.
    SentinelStaleEntries {
        /// The stale addresses.
        stale: Vec<String>,
    },
    /// Sentinel: the believed primary's process restarted in place and
    /// booted fenced (a replica of nobody, refusing writes and to feed
    /// replicas). Sentinel learns of it only once it has reported itself a
    /// replica for `down-after-milliseconds` plus two `INFO` periods
    /// (20 s); it is asked to fail the primary over now instead.
    PrimaryRestartedFenced,
    /// ACL users: the node lacks users a ValkeyUser names, holds them
    /// otherwise than their records say (new rules, a new password, a
    /// change made by hand), or holds users being deleted.
    UsersOutOfSync {
        /// Users it lacks.
        missing: Vec<String>,
        /// Users it holds otherwise than their records say.
        differing: Vec<String>,
        /// Users it holds that are being deleted.
        deleted: Vec<String>,
    },
    /// ACL users: a ValkeyUser being deleted is on no node any more.
    UserRemoved,
    /// TLS: the operator's CA has issued no certificate yet (`not_after`
    /// `None`), or the one it issued expires at `not_after`, within the
    /// last third of its life.
    CertificateDue {
        /// When the current certificate expires.
        not_after: Option<Timestamp>,
    },
    /// TLS: nodes serve another certificate than the one in the Secret.
    CertificateChanged {
        /// What each of them serves, by pod (`None`: not seen yet).
        served: BTreeMap<String, Option<String>>,
    },
    /// Backups: a ValkeyBackup waits to be taken and none runs.
    BackupRequested,
    /// Backups: attempt `failed` of the backup failed in a way another
    /// attempt may not (a stream cut by a failover, a restart).
    BackupRetry {
        /// The failed attempt.
        failed: u32,
    },
    /// Backups: the schedule fired at `at`.
    BackupScheduled {
        /// The fire time.
        at: Timestamp,
    },
    /// Backups: a scheduled backup is beyond `keepLast` or older than
    /// `maxAgeHours`.
    RetentionExpired {
        /// Completed scheduled backups newer than it.
        newer: u32,
        /// When it completed.
        completed: Timestamp,
    },
    /// Restore: every shard's pod serves its restored data.
    RestoreLoaded,
    /// The ValkeyCluster was deleted.
    ClusterDeleted,
    /// ACL users: the cluster's objects are applied but its Secret
    /// `<cluster>-internal` holds no usable fingerprint key, without which
    /// no password is fingerprinted.
    FingerprintKeyMissing,
    /// Sentinel: a Sentinel asks the data nodes for `INFO` at another
    /// period than the operator's (a restarted one is back at 10 s).
    /// (Last: a reason's index is its journal encoding.)
    SentinelInfoPeriod {
        /// The period it reports, in milliseconds.
        reported_ms: u64,
    },
    /// The cluster's objects were made before the operator marked them
    /// with the ownership annotation (an older operator): applied again,
    /// with it.
    ObjectsUnmarked,
    /// The user removed the ownership annotation from the StatefulSet:
    /// the cluster is unbound; `by` is who last changed it, as its
    /// `managedFields` say.
    Unbound {
        /// The field manager, when known.
        by: Option<String>,
    },
    /// The ownership annotation is back on the StatefulSet: the cluster is
    /// bound again and taken over as it now is.
    Rebound,
    /// Objects the operator made were changed by someone else
    /// (`DriftObserved`): applied again, which puts its fields back.
    Drift {
        /// The objects changed, `<Kind> <name>`.
        objects: Vec<String>,
    },
    /// `spec.hibernated` is set: the cluster goes to zero pods, its data
    /// made durable first.
    Hibernate,
    /// `spec.hibernated` is unset after a hibernation: the pods are back
    /// and take their roles as before.
    Wake,
    /// `image` changed: the new image is tried before anything rolls
    /// (a preflight), and a change of version rolls behind a canary.
    Upgrade,
    /// `placement: Preferred`: the primary role moves back to `pod`, its
    /// preferred pod, back and in sync since the last failover.
    FailBack {
        /// The preferred pod.
        pod: String,
    },
    /// `spec.replicateFrom`: the standby's believed primary follows its
    /// source (first, or again after it stopped or was replaced).
    Standby {
        /// The source, `namespace/name` or `host:port`.
        source: String,
    },
    /// `spec.replicateFrom` was removed: the standby is promoted.
    Promotion {
        /// Bytes behind the source at its last observation (`None`:
        /// unknown, the source's offset could not be read).
        lag: Option<u64>,
    },
    /// A rebalance was requested (`kubectl valkey rebalance`): the primary
    /// role moves back to `pod`, its preferred pod, now (no hold-down,
    /// whatever `spec.placement`).
    Rebalance {
        /// The preferred pod.
        pod: String,
    },
    /// A restart was requested (`kubectl valkey restart`, the annotation
    /// `valkey.logbook.dev/restart-requested`) with the value `requested`:
    /// every pod is restarted once, by the usual roll.
    RestartRequested {
        /// The request's value.
        requested: String,
    },
    /// A ValkeyUser's connection Secret is missing or does not hold what
    /// it must (a new password, CA or topology), and every node holds the
    /// user as its record says.
    UserConnectionStale,
    /// Archive: `spec.backup.continuous` asks for it and it is not on (or
    /// goes to another place).
    ArchiveRequested,
    /// Archive: `spec.backup.continuous` was removed.
    ArchiveNotRequested,
    /// Archive retention: the chain ended before the oldest moment kept.
    ArchiveExpired {
        /// When it ended.
        ended: Timestamp,
    },
    /// Point-in-time restore: a pod claims slots another shard owned at
    /// the time restored to.
    ForeignSlotsClaimed,
    /// External access: a node announces `announced`, while clients
    /// outside reach it at `wanted` (its own pod address when external
    /// access is off).
    AnnouncedAddressStale {
        /// What its `CLUSTER NODES` line shows (`ip:port@cport`).
        announced: String,
        /// What it should show.
        wanted: String,
    },
    /// External access: where clients outside reach the cluster changed
    /// since the connection Secret (and a Certificate) or the certificate
    /// of the operator's CA named it; `hosts` is every external host now.
    ExternalEndpointsChanged {
        /// Every external host.
        hosts: Vec<String>,
    },
}

/// A pod considered for promotion, with the facts that ranked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Pod name.
    pub pod: String,
    /// Its last observed replication offset.
    pub offset: Option<u64>,
    /// Whether its last probe answered.
    pub reachable: bool,
    /// Whether it holds the failed primary's history (same replication id).
    pub same_history: bool,
    /// Whether it was eligible at all.
    pub eligible: bool,
}

/// Why an intent was decided: a code for machines, a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Machine-readable code; the determinism audit compares it.
    pub code: ReasonCode,
    /// Short human explanation (no secrets).
    pub detail: String,
}
