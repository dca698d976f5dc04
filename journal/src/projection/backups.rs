//! The backups part of the projection: the ValkeyBackups as last read,
//! each one's attempts and outcome, and the schedule's last fire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backup::{
    ArchiveChain, BackupRecord, BackupSource, BackupTarget, PointInTimePlan, RestorePlan,
    ShardUpload,
};
use crate::time::Timestamp;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupOutcome {
    /// Every shard and the manifest are in the bucket.
    Completed {
        /// When.
        at: Timestamp,
        /// The manifest's key.
        manifest: String,
        /// Total bytes of the shards' RDBs.
        bytes: u64,
    },
    /// Given up.
    Failed {
        /// When.
        at: Timestamp,
        /// Why.
        reason: String,
        /// Whether another attempt may succeed.
        retry: bool,
    },
}

/// The last attempt at one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRun {
    /// The attempt, from 1.
    pub attempt: u32,
    /// When it started.
    pub started: Timestamp,
    /// The seq of its `BackupStarted` event.
    pub started_seq: u64,
    /// Where it goes.
    pub target: BackupTarget,
    /// One source per shard.
    pub sources: Vec<BackupSource>,
    /// The shards uploaded, by shard.
    pub uploaded: BTreeMap<u32, ShardUpload>,
    /// How it ended (`None`: running, or interrupted with its process).
    pub outcome: Option<BackupOutcome>,
    /// The `TakeBackup` intent that started it, once its success is
    /// journaled: the attempt's transfer and manifest are carried out for
    /// it (the effect gate attributes them to it).
    #[serde(default)]
    pub intent: Option<uuid::Uuid>,
}

/// The backups of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupsPart {
    /// ValkeyBackups by object name, as last read.
    pub records: BTreeMap<String, BackupRecord>,
    /// The last attempt at each backup, by object name.
    pub runs: BTreeMap<String, BackupRun>,
    /// The schedule's last fire time and the backup it made due.
    pub last_due: Option<(Timestamp, String)>,
    /// The schedule in force and since when (its first fire is after
    /// that), from the spec.
    pub schedule: Option<(String, Timestamp)>,
    /// The last scheduled backup created (`CreateScheduledBackup`
    /// succeeded).
    pub last_created: Option<String>,
    /// The restore of this cluster, when its spec names one.
    pub restore: RestoreState,
    /// Backups deleted by retention (their records may linger until the
    /// object's deletion is seen).
    pub deleted: BTreeMap<String, Timestamp>,
    /// The continuous archive.
    pub archive: ArchivePart,
}

/// The continuous archive of a cluster's write stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchivePart {
    /// Where the spec asks it to go (`ArchiveTargetObserved`).
    pub wanted: Option<BackupTarget>,
    /// Where it goes, while it is on (`Archive` succeeded; `StopArchive`
    /// clears it).
    pub target: Option<BackupTarget>,
    /// Every chain journaled and not deleted, by name.
    pub chains: BTreeMap<String, ChainView>,
}

/// One chain as the journal tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainView {
    /// How it began.
    pub start: ArchiveChain,
    /// Where it was last followed from: the source pod, the shard's
    /// primary, the replication id, the offset, and when.
    pub followed: Option<(String, String, String, u64, Timestamp)>,
    /// How it ended: when, the offset after its last byte, why.
    pub ended: Option<(Timestamp, u64, String)>,
}

impl ChainView {
    /// The pod it streams from now (the last followed, else its first).
    #[must_use]
    pub fn source(&self) -> &str {
        self.followed
            .as_ref()
            .map_or(self.start.source.as_str(), |f| f.0.as_str())
    }

    /// The shard's primary as last journaled.
    #[must_use]
    pub fn primary(&self) -> &str {
        self.followed
            .as_ref()
            .map_or(self.start.primary.as_str(), |f| f.1.as_str())
    }
}

impl ArchivePart {
    /// Chains not ended.
    pub fn live(&self) -> impl Iterator<Item = (&String, &ChainView)> {
        self.chains.iter().filter(|(_, c)| c.ended.is_none())
    }

    /// The oldest moment a restore can go back to: the earliest base of a
    /// chain still kept.
    #[must_use]
    pub fn oldest_restorable(&self) -> Option<Timestamp> {
        self.chains.values().map(|c| c.start.base_at).min()
    }
}

impl BackupsPart {
    /// The attempt running (started, not ended), if any, with its backup.
    #[must_use]
    pub fn running(&self) -> Option<(&str, &BackupRun)> {
        self.runs
            .iter()
            .find(|(_, run)| run.outcome.is_none())
            .map(|(object, run)| (object.as_str(), run))
    }

    /// When backup `object` completed, if it did.
    #[must_use]
    pub fn completed(&self, object: &str) -> Option<Timestamp> {
        match self.runs.get(object)?.outcome.as_ref()? {
            BackupOutcome::Completed { at, .. } => Some(*at),
            BackupOutcome::Failed { .. } => None,
        }
    }

    /// The latest completed backup: its name, when and its size.
    #[must_use]
    pub fn last_completed(&self) -> Option<(&str, Timestamp, u64)> {
        self.runs
            .iter()
            .filter_map(|(object, run)| match &run.outcome {
                Some(BackupOutcome::Completed { at, bytes, .. }) => {
                    Some((object.as_str(), *at, *bytes))
                }
                _ => None,
            })
            .max_by_key(|(_, at, _)| *at)
    }
}

/// Where a restore stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreState {
    /// The backup verified, once it is (`RestoreVerified`).
    pub plan: Option<RestorePlan>,
    /// Why it was refused, last (`RestoreRefused`): the reason, whether it
    /// is read again, and when.
    pub refused: Option<(String, bool, Timestamp)>,
    /// When it completed.
    pub completed: Option<Timestamp>,
    /// By data pod, how its `restore` init container last failed, while
    /// it shows a failure (`RestoreFetchObserved`).
    pub fetch_failures: BTreeMap<String, String>,
    /// A point-in-time restore's streams (`RestoreToTimeVerified`).
    pub point: Option<PointInTimePlan>,
}

impl RestoreState {
    /// The plan, while the restore is under way (verified, not completed).
    #[must_use]
    pub fn pending(&self) -> Option<&RestorePlan> {
        self.plan.as_ref().filter(|_| self.completed.is_none())
    }
}
