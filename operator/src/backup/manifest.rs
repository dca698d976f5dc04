//! `manifest.json`, the last object of a backup and the proof it is
//! whole: which shards, which slots, which objects with what sizes and
//! checksums, from which nodes at which replication offsets, the server's
//! version and the journal seq the backup was decided at. A backup
//! directory without a manifest is an incomplete backup, never restored.
//!
//! It holds no secret: the bucket's credentials are nowhere in it.

use serde::{Deserialize, Serialize};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// The manifest's object name inside a backup's directory.
pub const MANIFEST_NAME: &str = "manifest.json";

/// A backup's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`] when written.
    pub format: u32,
    /// The ValkeyBackup's name.
    pub backup: String,
    /// The attempt that completed it.
    pub attempt: u32,
    /// The cluster backed up.
    pub cluster: ManifestCluster,
    /// When the attempt started and completed (RFC 3339).
    pub started_at: String,
    /// See `started_at`.
    pub completed_at: String,
    /// The cluster journal's seq of the attempt's `BackupStarted`.
    pub journal_seq: u64,
    /// The server version of the nodes streamed from (`INFO server`).
    pub server_version: Option<String>,
    /// One entry per shard, in slot order.
    pub shards: Vec<ManifestShard>,
}

/// The cluster a backup is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestCluster {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Standalone, Replication, Sentinel or Cluster.
    pub topology: String,
}

/// One shard's RDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestShard {
    /// Its index.
    pub shard: u32,
    /// Its object's name inside the backup's directory (`shard-0.rdb`).
    pub object: String,
    /// The object's size in bytes.
    pub bytes: u64,
    /// The object's SHA-256, hex.
    pub sha256: String,
    /// The RDB format version.
    pub rdb_version: u32,
    /// Whether the RDB's own CRC-64 was verified on upload.
    pub crc_verified: bool,
    /// The slots the shard owned (Cluster), as `[start, end]` pairs.
    pub slots: Vec<[u16; 2]>,
    /// The pod streamed from, and the shard's primary then.
    pub pod: String,
    /// See `pod`.
    pub primary: String,
    /// The node id streamed from (Cluster).
    pub node_id: Option<String>,
    /// The replication id and offset of the snapshot.
    pub replid: String,
    /// See `replid`.
    pub offset: u64,
    /// The primary's offset when the source was chosen: every write it
    /// had acknowledged by then is in the snapshot.
    pub primary_offset: Option<u64>,
}

/// The object name of shard `shard`'s RDB.
pub fn shard_object(shard: u32) -> String {
    format!("shard-{shard}.rdb")
}

impl Manifest {
    /// Checks what a restore relies on, naming the first problem: the
    /// format, at least one shard, shards numbered `0..n` in order, object
    /// names inside the directory, 64-hex checksums, slots (Cluster) that
    /// cover all 16384 exactly once.
    ///
    /// # Errors
    /// What is wrong, for the status.
    pub fn check(&self) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!(
                "manifest format {} is not {MANIFEST_FORMAT}, the one this operator reads",
                self.format
            ));
        }
        if self.shards.is_empty() {
            return Err("the manifest lists no shard".to_owned());
        }
        let mut owned = vec![false; 16_384];
        for (i, shard) in self.shards.iter().enumerate() {
            if usize::try_from(shard.shard).ok() != Some(i) {
                return Err(format!(
                    "shard entry {i} says shard {}: shards must be numbered 0.. in order",
                    shard.shard
                ));
            }
            if shard.object.contains('/') || shard.object.is_empty() {
                return Err(format!(
                    "shard {i}'s object {:?} is not a name inside the backup's directory",
                    shard.object
                ));
            }
            if shard.sha256.len() != 64 || !shard.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "shard {i}'s SHA-256 {:?} is not 64 hex digits",
                    shard.sha256
                ));
            }
            for [start, end] in &shard.slots {
                if start > end || *end >= 16_384 {
                    return Err(format!("shard {i} has an invalid slot range {start}-{end}"));
                }
                for slot in *start..=*end {
                    match owned.get_mut(usize::from(slot)) {
                        Some(o) if !*o => *o = true,
                        _ => return Err(format!("slot {slot} is listed twice")),
                    }
                }
            }
        }
        if self.cluster.topology == "Cluster" {
            if let Some(slot) = owned.iter().position(|o| !o) {
                return Err(format!("slot {slot} belongs to no shard in the manifest"));
            }
        } else if self.shards.len() != 1 {
            return Err(format!(
                "a {} backup has one shard; this manifest lists {}",
                self.cluster.topology,
                self.shards.len()
            ));
        }
        Ok(())
    }
}
