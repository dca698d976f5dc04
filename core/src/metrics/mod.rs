//! What the metrics count, folded from the journal with no clock and no
//! I/O: the notes appended events add ([`tally`]: decisions, outcomes,
//! failovers and slot moves) and a Valkey Cluster's shards summarized
//! from the projection ([`shards`]). The operator's metrics registry
//! publishes them (`logbook_operator::metrics`).

pub mod shards;
pub mod tally;

pub use shards::{ClusterSummary, ReplicaSummary, ShardSummary, summarize_cluster};
pub use tally::{Note, Tracker, counted_failovers};

/// How an intent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `IntentSucceeded`.
    Succeeded,
    /// `IntentFailed`.
    Failed,
    /// `IntentAbandoned`.
    Abandoned,
}

impl Outcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }
}

/// How a Valkey Cluster slot move (`MoveSlots`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoveOutcome {
    /// `IntentSucceeded`, its job (if one was observed) not ambiguous.
    Succeeded,
    /// `IntentFailed`, its job (if one was observed) not ambiguous.
    Failed,
    /// Its atomic slot migration job failed after the source unpaused
    /// ("migration may have succeeded with lost writes"): slot ownership
    /// decided the outcome, and writes may have been lost.
    Ambiguous,
}

impl MoveOutcome {
    /// Every outcome, for starting and removing a cluster's series.
    pub const ALL: [Self; 3] = [Self::Succeeded, Self::Failed, Self::Ambiguous];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Ambiguous => "ambiguous",
        }
    }
}
