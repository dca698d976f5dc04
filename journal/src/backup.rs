//! Backup facts as the journal stores them: a `ValkeyBackup` as the
//! operator read it ([`BackupRecord`]), where its objects go
//! ([`BackupTarget`]), which pod each shard's RDB is streamed from
//! ([`BackupSource`]) and what was uploaded ([`ShardUpload`]).
//!
//! No credential is ever here: the bucket's Secret is named, never read
//! into the journal.

use serde::{Deserialize, Serialize};

use crate::intent::SlotRange;
use crate::time::Timestamp;

/// Most attempts at one backup: an attempt interrupted by a failover, a
/// pod's death or an operator restart is failed and retried up to this.
pub const MAX_BACKUP_ATTEMPTS: u32 = 3;

/// A bucket and the directory of one backup in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupTarget {
    /// The bucket.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// The endpoint URL, when not AWS (from the spec; `None` may still be
    /// given by the Secret's `endpoint` key).
    pub endpoint: Option<String>,
    /// Path-style addressing, when the spec says (`None`: by endpoint).
    pub path_style: Option<bool>,
    /// The Secret with the credentials (by name only).
    pub secret: String,
    /// The backup's directory in the bucket, ending in `/`.
    pub dir: String,
    /// The directory of every backup of this cluster, ending in `/`: what
    /// retention may list and delete under, and nothing else.
    pub cluster_dir: String,
}

/// A `ValkeyBackup` of the cluster, as last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// The ValkeyBackup object's name.
    pub object: String,
    /// Its uid.
    pub uid: String,
    /// When it was created.
    pub created: Timestamp,
    /// Made by the schedule (and so subject to retention).
    pub scheduled: bool,
    /// Where it goes, when that is known.
    pub target: Option<BackupTarget>,
    /// Why it cannot be taken (no destination, an invalid spec).
    pub problem: Option<String>,
}

/// One shard's RDB source, as decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSource {
    /// The shard's index in the manifest (0 for a non-Cluster topology).
    pub shard: u32,
    /// The pod streamed from.
    pub pod: String,
    /// The shard's primary (the same pod when no replica was in sync).
    pub primary: String,
    /// The shard's slots (Cluster), empty otherwise.
    pub slots: Vec<SlotRange>,
    /// The source node's cluster id (Cluster).
    pub node_id: Option<String>,
}

/// One shard's RDB, uploaded and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardUpload {
    /// The shard.
    pub shard: u32,
    /// The pod it was streamed from.
    pub pod: String,
    /// Its object key.
    pub key: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The RDB format version.
    pub rdb_version: u32,
    /// Whether the RDB's own CRC-64 was verified (`false`: the server
    /// writes none).
    pub crc_verified: bool,
    /// The replication id and offset the snapshot was taken at.
    pub replid: String,
    /// See `replid`.
    pub offset: u64,
    /// The primary's replication offset when the source was chosen: every
    /// write the primary acknowledged before it is in the snapshot.
    pub primary_offset: Option<u64>,
}

/// One shard of a backup being restored, as its manifest says and as
/// verified in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreShard {
    /// The shard; its RDB is loaded by the pod of the same ordinal.
    pub shard: u32,
    /// The object's key.
    pub key: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The slots it owned (Cluster).
    pub slots: Vec<SlotRange>,
}

/// A backup verified whole, to be loaded into a new cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePlan {
    /// What `restoreFrom` named (`ValkeyBackup <name>` or the path).
    pub source: String,
    /// The bucket and the backup's directory.
    pub target: BackupTarget,
    /// The topology backed up.
    pub topology: String,
    /// The server version backed up.
    pub server_version: Option<String>,
    /// The cluster journal seq the backup was decided at.
    pub journal_seq: u64,
    /// The shards, in order.
    pub shards: Vec<RestoreShard>,
}

/// A chain of the continuous archive as it began: one shard's
/// replication history from a full resynchronisation on (its base RDB),
/// continued across failovers while every reconnection is partial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveChain {
    /// Its name (its directory under the archive).
    pub chain: String,
    /// The archive's directory in the bucket (`<cluster dir>_archive/`).
    pub dir: String,
    /// The pod the full resynchronisation came from.
    pub source: String,
    /// The shard's primary then.
    pub primary: String,
    /// `+FULLRESYNC <replid> <offset>`.
    pub replid: String,
    /// See `replid`.
    pub offset: u64,
    /// When the base was taken.
    pub base_at: Timestamp,
    /// The base RDB's size.
    pub base_bytes: u64,
    /// The shard's slots then (Cluster).
    pub slots: Vec<SlotRange>,
}

/// One shard of a point-in-time restore: the chain it replays, how far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointInTimeShard {
    /// The shard (the pod of this ordinal loads it).
    pub shard: u32,
    /// The chain's directory in the bucket.
    pub chain_dir: String,
    /// Segments replayed (the first ones of the chain's index).
    pub segments: u64,
    /// The offset after the last segment's last byte.
    pub end: u64,
    /// SHA-256 over the index entries used: the init container refuses an
    /// index changed since the verification.
    pub digest: String,
    /// The shard's slots at the time (Cluster), as the archive recorded
    /// them.
    pub slots: Vec<SlotRange>,
}

/// A point-in-time restore, verified: every shard's chain covers the time
/// and is whole up to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointInTimePlan {
    /// The time restored to.
    pub until: Timestamp,
    /// Each shard's chain.
    pub shards: Vec<PointInTimeShard>,
    /// Where the restore cannot be exact (a slot moving between shards at
    /// the time), for people.
    pub notes: Vec<String>,
}
