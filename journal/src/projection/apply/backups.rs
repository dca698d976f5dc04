//! The backups family: the ValkeyBackups read, each attempt from start to
//! end, the schedule's fires, retention's deletions, and a restore from
//! its verification to its completion.
//!
//! Only one attempt of a backup runs at a time: an upload or an end for
//! another attempt is an anomaly, and does not touch the running one.

use crate::event::Event;
use crate::projection::ClusterState;
use crate::projection::backups::{BackupOutcome, BackupRun};
use crate::time::Timestamp;

impl ClusterState {
    /// Folds backups and restores: the ValkeyBackups read, each attempt
    /// from start to end, the schedule's fires, retention, and a restore
    /// from verification to completion.
    pub(super) fn fold_backups(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::BackupRequested { backup } => {
                self.observed();
                let what = match (&backup.problem, &backup.target) {
                    (Some(problem), _) => format!("cannot be taken: {problem}"),
                    (None, Some(t)) => format!("into s3://{}/{}", t.bucket, t.dir),
                    (None, None) => "with no destination".to_owned(),
                };
                let by = if backup.scheduled { " (scheduled)" } else { "" };
                self.history(
                    seq,
                    at,
                    body,
                    format!("backup {}{by} requested {what}", backup.object),
                );
                self.backups
                    .records
                    .insert(backup.object.clone(), backup.clone());
            }
            Event::BackupForgotten { object } => {
                self.observed();
                if self.backups.records.remove(object).is_none() {
                    self.anomaly(
                        seq,
                        format!("ValkeyBackup {object} forgotten but never observed"),
                    );
                }
                self.backups.runs.remove(object);
                self.backups.deleted.remove(object);
            }
            Event::BackupStarted {
                object,
                attempt,
                target,
                sources,
            } => {
                if let Some((running, _)) = self.backups.running()
                    && running != object
                {
                    self.anomaly(
                        seq,
                        format!("backup {object} started while {running} runs"),
                    );
                }
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "backup {object} attempt {attempt} started from {}",
                        sources
                            .iter()
                            .map(|s| s.pod.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                self.backups.runs.insert(
                    object.clone(),
                    BackupRun {
                        attempt: *attempt,
                        started: at,
                        started_seq: seq,
                        target: target.clone(),
                        sources: sources.clone(),
                        uploaded: std::collections::BTreeMap::new(),
                        outcome: None,
                        intent: None,
                    },
                );
            }
            Event::BackupShardUploaded {
                object,
                attempt,
                upload,
            } => match self.backups.runs.get_mut(object) {
                Some(run) if run.attempt == *attempt && run.outcome.is_none() => {
                    run.uploaded.insert(upload.shard, upload.clone());
                }
                _ => self.anomaly(
                    seq,
                    format!("shard {} of backup {object} attempt {attempt} uploaded, but that attempt does not run", upload.shard),
                ),
            },
            Event::BackupCompleted {
                object,
                attempt,
                manifest,
                bytes,
            } => {
                self.end_backup(
                    seq,
                    object,
                    *attempt,
                    BackupOutcome::Completed {
                        at,
                        manifest: manifest.clone(),
                        bytes: *bytes,
                    },
                );
                self.history(
                    seq,
                    at,
                    body,
                    format!("backup {object} completed: {bytes} bytes, manifest {manifest}"),
                );
            }
            Event::BackupFailed {
                object,
                attempt,
                reason,
                retry,
            } => {
                self.end_backup(
                    seq,
                    object,
                    *attempt,
                    BackupOutcome::Failed {
                        at,
                        reason: reason.clone(),
                        retry: *retry,
                    },
                );
                let then = if *retry { "; to be retried" } else { "" };
                self.history(
                    seq,
                    at,
                    body,
                    format!("backup {object} attempt {attempt} failed: {reason}{then}"),
                );
            }
            Event::BackupDue { at: due, object } => {
                self.backups.last_due = Some((*due, object.clone()));
                self.history(
                    seq,
                    at,
                    body,
                    format!("the backup schedule fired at {due}: backup {object} is due"),
                );
            }
            Event::BackupDeleted { object, objects } => {
                self.backups.deleted.insert(object.clone(), at);
                self.history(
                    seq,
                    at,
                    body,
                    format!("retention deleted backup {object} ({objects} objects)"),
                );
            }
            Event::RestoreVerified { plan } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "restore of {} verified: {} shards from s3://{}/{}",
                        plan.source,
                        plan.shards.len(),
                        plan.target.bucket,
                        plan.target.dir
                    ),
                );
                self.backups.restore.plan = Some(plan.clone());
                self.backups.restore.refused = None;
            }
            Event::RestoreToTimeVerified { plan, point } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "restore of {} to {} verified: {} shards, each a base and its archived stream up to then",
                        plan.source,
                        point.until,
                        point.shards.len(),
                    ),
                );
                self.backups.restore.plan = Some(plan.clone());
                self.backups.restore.point = Some(point.clone());
                self.backups.restore.refused = None;
            }
            Event::ArchiveTargetObserved { target } => {
                self.observed();
                let note = match target {
                    Some(t) => format!(
                        "the spec asks for the continuous archive, into s3://{}/{}",
                        t.bucket, t.dir
                    ),
                    None => "the spec asks for no continuous archive".to_owned(),
                };
                self.history(seq, at, body, note);
                self.backups.archive.wanted = target.clone();
            }
            Event::ArchiveChainStarted { chain } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "archive chain {} began: the base from {} (primary {}) at {}:{}, {} bytes",
                        chain.chain,
                        chain.source,
                        chain.primary,
                        chain.replid,
                        chain.offset,
                        chain.base_bytes
                    ),
                );
                self.backups.archive.chains.insert(
                    chain.chain.clone(),
                    crate::projection::backups::ChainView {
                        start: chain.clone(),
                        followed: None,
                        ended: None,
                    },
                );
            }
            Event::ArchiveFollowed {
                chain,
                source,
                primary,
                replid,
                offset,
            } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "archive chain {chain} continues from {source} (primary {primary}) at {replid}:{offset}"
                    ),
                );
                match self.backups.archive.chains.get_mut(chain) {
                    Some(c) => {
                        c.followed = Some((
                            source.clone(),
                            primary.clone(),
                            replid.clone(),
                            *offset,
                            at,
                        ));
                    }
                    None => self.anomaly(seq, format!("ArchiveFollowed for unknown chain {chain}")),
                }
            }
            Event::ArchiveChainEnded { chain, end, reason } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!("archive chain {chain} ended at offset {end}: {reason}"),
                );
                match self.backups.archive.chains.get_mut(chain) {
                    Some(c) => c.ended = Some((at, *end, reason.clone())),
                    None => self.anomaly(seq, format!("ArchiveChainEnded for unknown chain {chain}")),
                }
            }
            Event::ArchiveChainDeleted { chain, objects } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!("retention deleted archive chain {chain} ({objects} objects)"),
                );
                self.backups.archive.chains.remove(chain);
            }
            Event::RestoreRefused {
                source,
                reason,
                retry,
            } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!("restore of {source} refused: {reason}"),
                );
                self.backups.restore.refused = Some((reason.clone(), *retry, at));
            }
            Event::RestoreFetchObserved { pod, failure } => {
                let note = match failure {
                    Some(f) => format!("restore: pod {pod} cannot load its shard: {f}"),
                    None => format!("restore: pod {pod} no longer shows a failure to load"),
                };
                self.history(seq, at, body, note);
                match failure {
                    Some(f) => {
                        self.backups
                            .restore
                            .fetch_failures
                            .insert(pod.clone(), f.clone());
                    }
                    None => {
                        self.backups.restore.fetch_failures.remove(pod);
                    }
                }
            }
            Event::RestoreCompleted { shards } => {
                self.history(seq, at, body, format!("restore completed: {shards} shards"));
                self.backups.restore.completed = Some(at);
            }
            other => self.misrouted(seq, other, "backups"),
        }
    }

    /// Ends the running attempt `attempt` of backup `object` with
    /// `outcome`; an end of another attempt is an anomaly.
    fn end_backup(&mut self, seq: u64, object: &str, attempt: u32, outcome: BackupOutcome) {
        match self.backups.runs.get_mut(object) {
            Some(run) if run.attempt == attempt && run.outcome.is_none() => {
                run.outcome = Some(outcome);
            }
            _ => self.anomaly(
                seq,
                format!("backup {object} attempt {attempt} ended, but that attempt does not run"),
            ),
        }
    }
}
