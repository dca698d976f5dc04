//! The continuous archive: on while the spec asks for it (to where the
//! spec says), off once it no longer does, and retention of the chains
//! that ended, kept as far back as the scheduled backups go.
//!
//! The archive task itself (which pod each shard is read from, when a
//! chain begins or ends) runs under the `Archive` intent and journals
//! what it did (`ArchiveChainStarted`, `ArchiveFollowed`,
//! `ArchiveChainEnded`).

use logbook_journal::{BackupSource, ClusterState, Intent, ReasonCode, Timestamp};

use super::Decision;
use super::backup::completed_scheduled;
use super::view::ClusterView;

/// `Archive`, `StopArchive` or one `DeleteArchiveChain`, at most one.
pub fn decide_archive(view: &ClusterView<'_>, now: Timestamp) -> Option<Decision> {
    let archive = &view.state.backups.archive;
    match (&archive.wanted, &archive.target) {
        (Some(wanted), current) if current.as_ref() != Some(wanted) => {
            return Some(Decision::new(
                Intent::Archive {
                    target: wanted.clone(),
                },
                ReasonCode::ArchiveRequested,
                match current {
                    Some(old) => format!(
                        "spec.backup.continuous moved the archive from s3://{}/{} to s3://{}/{}",
                        old.bucket, old.dir, wanted.bucket, wanted.dir
                    ),
                    None => format!(
                        "spec.backup.continuous asks for every shard's write stream in s3://{}/{}",
                        wanted.bucket, wanted.dir
                    ),
                },
            ));
        }
        (None, Some(_)) => {
            return Some(Decision::new(
                Intent::StopArchive,
                ReasonCode::ArchiveNotRequested,
                "spec.backup.continuous is off: the archive's chains end".to_owned(),
            ));
        }
        _ => {}
    }
    let horizon = horizon(view, now)?;
    let (name, chain) = archive
        .chains
        .iter()
        .filter_map(|(name, c)| c.ended.as_ref().map(|e| (name, c, e.0)))
        .filter(|(_, _, ended)| *ended < horizon)
        .min_by_key(|(name, _, ended)| (*ended, (*name).clone()))
        .map(|(name, c, _)| (name, c))?;
    let ended = chain.ended.as_ref().map_or(horizon, |e| e.0);
    Some(Decision::new(
        Intent::DeleteArchiveChain {
            chain: name.clone(),
            dir: format!("{}{name}/", chain.start.dir),
        },
        ReasonCode::ArchiveExpired { ended },
        format!(
            "archive chain {name} ended at {ended}, before {horizon}, the oldest moment retention keeps"
        ),
    ))
}

/// Where each shard's stream is read from now: a replica in sync with
/// the shard's primary (the primary counts it in none of its
/// `min-replicas-to-write` or `WAIT`), else the primary; `None` while a
/// shard has no usable node (the followers keep what they follow).
pub fn archive_sources(state: &ClusterState) -> Option<Vec<BackupSource>> {
    let view = ClusterView::new(state)?;
    super::backup::sources(&view)
}

/// The oldest moment retention keeps restorable: the completion of the
/// oldest scheduled backup kept, else `now - maxAgeHours`; `None` keeps
/// every chain.
pub fn horizon(view: &ClusterView<'_>, now: Timestamp) -> Option<Timestamp> {
    let keep = usize::try_from(view.spec.backup.retention.effective_keep_last()).unwrap_or(1);
    let oldest_kept = completed_scheduled(view)
        .iter()
        .take(keep.max(1))
        .map(|(_, at, _)| *at)
        .min();
    let by_age = view
        .spec
        .backup
        .retention
        .max_age_hours
        .map(|h| now.plus_millis(-i64::from(h).saturating_mul(3_600_000)));
    oldest_kept.or(by_age)
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
