//! Intents (imperative orders the decider emits) and their machine-readable
//! reasons. An intent is journaled inside `Event::Decided` before anything
//! acts on it; its outcome comes back as `IntentSucceeded` / `IntentFailed` /
//! `IntentAbandoned` carrying the same `intent_id`.
//!
//! This module holds data only: which intent to emit is `decide`'s business.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Why an intent was decided: a code for machines, a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Machine-readable code; the determinism audit compares it.
    pub code: ReasonCode,
    /// Short human explanation (no secrets).
    pub detail: String,
}
