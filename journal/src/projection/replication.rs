//! The Standalone and Replication part of the projection: the one primary
//! the operator decided, the history it holds and what a booting pod is
//! told. A Valkey Cluster has no such single primary (its shards' primaries
//! are in the Cluster part), so this part stays empty there.

use serde::{Deserialize, Serialize};

use crate::ids::ReplId;
use crate::time::Timestamp;

/// What the journal says of a Replication's (or a Standalone's) primary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicationPart {
    /// The pod believed to be the primary.
    pub primary: Option<String>,
    /// Replication id of the believed primary's history, last observed.
    pub primary_replid: Option<ReplId>,
    /// The boot primary last published successfully: `(pod, ip)`; a pod
    /// of `None` means every pod boots fenced.
    pub boot_primary: Option<(Option<String>, Option<String>)>,
}

/// What a pod that follows a standby's source is said to replicate
/// (`PodView::replicates`): no pod's name has parentheses.
pub const STANDBY_SOURCE: &str = "(source)";

/// A standby's source as last observed, and what follows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StandbyView {
    /// The source's address and port, as last resolved.
    pub address: Option<(String, u16)>,
    /// `namespace/name` of the Secret holding the source's passwords.
    pub secret: String,
    /// The pod that follows the source (`SourceFollowed`), and at which
    /// address; `None` before, and once promoted.
    pub leader: Option<(String, String, u16)>,
    /// The standby's offset at the last observation.
    pub offset: Option<u64>,
    /// The source's offset at the last observation.
    pub source_offset: Option<u64>,
    /// The source's replication id at the last observation.
    pub source_replid: Option<ReplId>,
    /// Bytes behind at the last observation, when known.
    pub lag: Option<u64>,
    /// Whether the lag was past the bound.
    pub behind: bool,
    /// Why the source could not be read, at the last observation.
    pub error: Option<String>,
    /// When it was last journaled.
    pub observed: Option<Timestamp>,
    /// The promotion, once done.
    pub promoted: Option<StandbyPromotionView>,
}

/// A standby's promotion (`StandbyPromoted`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StandbyPromotionView {
    /// The pod promoted.
    pub pod: String,
    /// Its offset when it stopped following.
    pub offset: u64,
    /// The source's offset just before.
    pub source_before: Option<u64>,
    /// The source's offset just after.
    pub source_after: Option<u64>,
    /// Why the source's offset is unknown.
    pub error: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// How far behind its source a standby was when promoted at `offset`,
/// the source at `before` just before and `after` just after (on the same
/// history), for people: the one sentence the projection's history, the
/// replay and the status say.
#[must_use]
pub fn promotion_lag(offset: u64, before: Option<u64>, after: Option<u64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!(
            "between {} and {} bytes behind the source (its offset {b} before, {a} after)",
            b.saturating_sub(offset),
            a.saturating_sub(offset)
        ),
        (Some(b), None) => format!(
            "at least {} bytes behind the source (its offset {b} before; none after)",
            b.saturating_sub(offset)
        ),
        (None, Some(a)) => format!(
            "at most {} bytes behind the source (its offset {a} after)",
            a.saturating_sub(offset)
        ),
        (None, None) => "how far behind the source is unknown".to_owned(),
    }
}
