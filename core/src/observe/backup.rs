//! Backups: a ValkeyBackup as the journal records it ([`backup_record`]),
//! the records that differ from the projection's ([`observe_backups`]),
//! and the schedule's clock ([`backup_due`]).

pub use crate::schedule::next_fire;
use logbook_crds::v1alpha1::{SCHEDULED_LABEL, next_fire_ms};
use logbook_crds::{ValkeyBackup, ValkeyClusterSpec, validate_backup};
use logbook_journal::{BackupRecord, ClusterState, Event, Timestamp};

use crate::backup_target::target_of;

/// The record of `backup`, a ValkeyBackup of the cluster `cluster` in
/// `namespace` whose spec is `spec`: its destination (its own, else the
/// cluster's), or why it cannot be taken.
pub fn backup_record(
    backup: &ValkeyBackup,
    namespace: &str,
    cluster: &str,
    spec: Option<&ValkeyClusterSpec>,
) -> BackupRecord {
    let object = backup.metadata.name.clone().unwrap_or_default();
    let destination = backup
        .spec
        .destination
        .clone()
        .or_else(|| spec.and_then(|s| s.backup.destination.clone()));
    let problem = match (validate_backup(&backup.spec), &destination) {
        (Err(errors), _) => Some(logbook_crds::v1alpha1::validation::describe(&errors)),
        (Ok(()), None) => Some(format!(
            "no destination: neither the ValkeyBackup nor ValkeyCluster {cluster}'s backup.destination names a bucket"
        )),
        (Ok(()), Some(_)) => None,
    };
    BackupRecord {
        target: destination.map(|d| target_of(&d, namespace, cluster, &object)),
        uid: backup.metadata.uid.clone().unwrap_or_default(),
        created: backup
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(Timestamp::EPOCH, |t| {
                chrono::DateTime::from_timestamp_micros(t.0.as_microsecond())
                    .map_or(Timestamp::EPOCH, Timestamp::from_datetime)
            }),
        scheduled: backup
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get(SCHEDULED_LABEL).is_some_and(|v| v == "true")),
        problem,
        object,
    }
}

/// `BackupRequested` for each record that differs from the projection's,
/// `BackupForgotten` for each object gone.
pub fn observe_backups(state: &ClusterState, records: &[BackupRecord]) -> Vec<Event> {
    let mut events: Vec<Event> = records
        .iter()
        .filter(|r| state.backups.records.get(&r.object) != Some(*r))
        .map(|r| Event::BackupRequested { backup: r.clone() })
        .collect();
    for object in state.backups.records.keys() {
        if !records.iter().any(|r| &r.object == object) {
            events.push(Event::BackupForgotten {
                object: object.clone(),
            });
        }
    }
    events
}

/// Where the continuous archive of cluster `cluster` in `namespace` goes
/// as `spec` asks (`spec.backup.continuous` on, with a destination):
/// `<prefix>/<namespace>/<cluster>/_archive/` of that bucket.
pub fn archive_target(
    spec: Option<&ValkeyClusterSpec>,
    namespace: &str,
    cluster: &str,
) -> Option<logbook_journal::BackupTarget> {
    let spec = spec.filter(|s| s.backup.continuous_enabled())?;
    let destination = spec.backup.destination.as_ref()?;
    Some(target_of(destination, namespace, cluster, ARCHIVE_NAME))
}

/// The archive's directory name under a cluster's: `_` is in no
/// Kubernetes name, so no backup's directory can be it.
pub const ARCHIVE_NAME: &str = "_archive";

/// `ArchiveTargetObserved` when where the archive goes (`wanted`, from
/// [`archive_target`]) differs from the projection's.
pub fn observe_archive_target(
    state: &ClusterState,
    wanted: Option<logbook_journal::BackupTarget>,
) -> Option<Event> {
    (state.backups.archive.wanted != wanted)
        .then_some(Event::ArchiveTargetObserved { target: wanted })
}

/// `BackupDue` when the clock `now` has passed the schedule's next fire
/// time: the latest fire time passed (runs missed while no operator ran
/// make one backup, not one each), and the backup it makes, named
/// `<cluster>-<yyyymmdd-hhmm>`.
pub fn backup_due(state: &ClusterState, cluster: &str, now: Timestamp) -> Option<Event> {
    let (schedule, _) = state.backups.schedule.as_ref()?;
    let now_ms = now.as_micros() / 1000;
    let mut due = next_fire(state).filter(|t| *t <= now_ms)?;
    while let Some(next) = next_fire_ms(schedule, due).filter(|t| *t <= now_ms) {
        due = next;
    }
    let at = Timestamp::from_datetime(chrono::DateTime::from_timestamp_millis(due)?);
    let stamp = at.to_datetime()?.format("%Y%m%d-%H%M");
    Some(Event::BackupDue {
        at,
        object: format!("{cluster}-{stamp}"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use logbook_journal::{ClusterState, Event, Timestamp};

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn the_schedule_fires_once_for_the_latest_time_passed() {
        let mut state = ClusterState::new();
        assert!(super::backup_due(&state, "demo", at("2026-11-24T03:30:00Z")).is_none());
        state.backups.schedule = Some(("0 * * * *".into(), at("2026-11-24T00:10:00Z")));
        assert!(super::backup_due(&state, "demo", at("2026-11-24T00:59:59Z")).is_none());
        // Three fires missed: one backup, of the latest.
        let due = super::backup_due(&state, "demo", at("2026-11-24T03:30:00Z")).unwrap();
        assert_eq!(
            due,
            Event::BackupDue {
                at: at("2026-11-24T03:00:00Z"),
                object: "demo-20261124-0300".into()
            }
        );
        state.backups.last_due = Some((at("2026-11-24T03:00:00Z"), "demo-20261124-0300".into()));
        assert!(super::backup_due(&state, "demo", at("2026-11-24T03:59:00Z")).is_none());
        assert_eq!(
            super::next_fire(&state),
            Some(at("2026-11-24T04:00:00Z").as_micros() / 1000)
        );
    }
}
