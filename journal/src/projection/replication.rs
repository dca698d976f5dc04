//! The Standalone and Replication part of the projection: the one primary
//! the operator decided, the history it holds and what a booting pod is
//! told. A Valkey Cluster has no such single primary (its shards' primaries
//! are in the Cluster part), so this part stays empty there.

use serde::{Deserialize, Serialize};

use crate::ids::ReplId;

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
