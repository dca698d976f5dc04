//! What `reshards` reports: the rows of its `--json` and the records
//! its text is written from. Data only; [`super::Reshards`] fills them.

use logbook_journal::{SlotRange, Timestamp};
use serde::Serialize;
use uuid::Uuid;

use super::pause::{Pause, Phase};
use crate::failovers::{Mark, Outcome};
use crate::shard_failovers::NodeRef;

/// What a row of `reshards --json` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowKind {
    /// A reshard: one spec generation's moves.
    Reshard,
    /// A slot settled after it was left half-moved.
    Settle,
    /// A migration job no decision of this journal names.
    MigrationJob,
}

/// How a reshard stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ReshardOutcome {
    /// The slot map showed the shards wanted, evenly split, every slot
    /// owned.
    Balanced {
        /// The event after which it first did.
        seq: u64,
        /// Its time.
        at: Timestamp,
    },
    /// No move under way, not balanced, and the last move between some
    /// source and target failed.
    Failing {
        /// Whether the decider's build would publish the reshard as
        /// `Failing` (a move failed with the same error as often as it
        /// allows, and is no longer tried under this generation); `None`
        /// when no build was asked.
        given_up: Option<bool>,
        /// The pairs whose last move failed.
        pairs: Vec<FailingPair>,
    },
    /// A newer generation's reshard began before this one balanced.
    Superseded {
        /// The newer generation.
        generation: i64,
        /// Seq of its first decision.
        seq: u64,
    },
    /// Moves under way, or more to come.
    InProgress,
}

/// Moves from one source to one target whose last attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingPair {
    /// The source.
    pub from: NodeRef,
    /// The target.
    pub to: NodeRef,
    /// Failures in a row.
    pub failures: u32,
    /// How many of the last of them failed with `last_error`.
    pub same_error: u32,
    /// The last error.
    pub last_error: String,
}

/// One reshard: the moves decided for one spec generation's shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reshard {
    /// Always `reshard`.
    pub kind: RowKind,
    /// The spec generation whose shards are wanted.
    pub generation: i64,
    /// Shards wanted (as its last decision says).
    pub shards: u32,
    /// Slots its first decision planned to move (0 when no decision
    /// carried a plan).
    pub slots_planned: u32,
    /// Slots its moves carried to their targets (a move counts when the
    /// target owned all its slots after its outcome).
    pub slots_moved: u32,
    /// Its first decision.
    pub started: Mark,
    /// Its last move's outcome.
    pub ended: Option<Mark>,
    /// How it stands.
    pub outcome: ReshardOutcome,
    /// Its migrations, in decision order.
    pub migrations: Vec<Migration>,
}

/// How a move came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// An atomic slot migration job was observed for it.
    AtomicSlotMigration,
    /// No job was observed; the outcome's detail says how it was done.
    NotObserved,
}

/// How a move ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum MoveOutcome {
    /// `IntentSucceeded`.
    Succeeded {
        /// What the executor says it did.
        detail: String,
    },
    /// `IntentFailed`.
    Failed {
        /// The error.
        error: String,
        /// Whether deciding it again may succeed.
        retryable: bool,
    },
    /// `IntentFailed` while its job was still seen under way: the move
    /// handed back (the operator had something to act on first, or the
    /// job outlasted one action's wait) and the job went on; the next
    /// decision follows it. Not a failure.
    LeftRunning {
        /// What the executor said.
        detail: String,
    },
    /// Its job failed after the source unpaused ("may have succeeded with
    /// lost writes"): slot ownership decided.
    Ambiguous {
        /// `moved`, `not moved` or `partly moved`, as the slot map showed
        /// right after the outcome.
        resolved: &'static str,
        /// The outcome event: `succeeded` or `failed`.
        outcome: &'static str,
        /// Its detail or error.
        detail: String,
    },
    /// `IntentAbandoned`.
    Abandoned {
        /// Why.
        reason: String,
    },
    /// No outcome in the journal (yet).
    Pending,
}

/// One migration job's observations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Always `migration-job` (a row of its own only when no decision
    /// names it).
    pub kind: RowKind,
    /// The job's name (the same at both ends).
    pub name: String,
    /// The source.
    pub source: NodeRef,
    /// The target.
    pub target: NodeRef,
    /// The slots it moves.
    pub slots: Vec<SlotRange>,
    /// Seen under way before the journal's first event (a snapshot's).
    pub before_start: bool,
    /// Each observation, in journal order.
    pub phases: Vec<Phase>,
}

/// One `MoveSlots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migration {
    /// Its intent id.
    pub intent_id: Uuid,
    /// The slots.
    pub slots: Vec<SlotRange>,
    /// How many.
    pub slot_count: u32,
    /// The source primary.
    pub source: NodeRef,
    /// The target primary.
    pub target: NodeRef,
    /// The decision (`what`: the reason's detail).
    pub decided: Mark,
    /// A job for exactly these slots was under way when it was decided:
    /// it was waited for, not issued again (`false` too when the decision
    /// was compacted away and the scan starts from a snapshot holding the
    /// move in flight: then it is not known).
    pub adopted: bool,
    /// How the slots moved, as far as observations show.
    pub mechanism: Mechanism,
    /// The jobs observed for it (one, unless it was retried in place).
    pub jobs: Vec<Job>,
    /// The write pause of its (last) job.
    pub pause: Option<Pause>,
    /// Its outcome's event.
    pub ended: Option<Mark>,
    /// How it ended.
    pub outcome: MoveOutcome,
    /// Slots of it the target owned right after the outcome.
    pub target_owned_after: Option<u32>,
    /// `MoveSlots` of the same source to the same target under the same
    /// generation that failed before it.
    pub retries: u32,
}

/// One `SettleSlot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settle {
    /// Always `settle`.
    pub kind: RowKind,
    /// Its intent id.
    pub intent_id: Uuid,
    /// The slot.
    pub slot: u16,
    /// The node owning it.
    pub owner: NodeRef,
    /// The node the move is finished to, if it is.
    pub to: Option<NodeRef>,
    /// What was to be done, for people.
    pub action: String,
    /// The half-move markers the journal showed on the slot when it was
    /// decided (`<pod> migrating -> <node>`, `<pod> importing <- <node>`).
    pub markers: Vec<String>,
    /// The decision (`what`: the reason's detail).
    pub decided: Mark,
    /// Its outcome's event.
    pub ended: Option<Mark>,
    /// How it ended.
    pub outcome: Outcome,
    /// The slot's owner right after the outcome (pod, or node id).
    pub owner_after: Option<String>,
}

/// One `--json` row.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum Row<'a> {
    /// A reshard with its migrations.
    Reshard(&'a Reshard),
    /// A settled slot.
    Settle(&'a Settle),
    /// A migration job no decision names.
    Job(&'a Job),
}
