//! Backups: create the backup the schedule made due, delete what
//! retention expired, and take the backups asked for, one at a time, each
//! shard's RDB from a replica in sync when there is one.
//!
//! The clock's part (the schedule firing) is journaled first
//! (`BackupDue`); from there on every step reads the projection only.

use logbook_crds::Topology;
use logbook_journal::projection::backups::{BackupOutcome, BackupRun};
use logbook_journal::{
    BackupRecord, BackupSource, Intent, MAX_BACKUP_ATTEMPTS, ReasonCode, Role, Timestamp,
};

use super::view::ClusterView;
use super::{Decision, PodState};

/// The decisions about backups and the archive, at most one.
pub fn decide_backups(view: &ClusterView<'_>, now: Timestamp) -> Vec<Decision> {
    if let Some(archive) = super::archive::decide_archive(view, now) {
        return vec![archive];
    }
    let part = &view.state.backups;
    if let Some((at, object)) = &part.last_due
        && part.last_created.as_ref() != Some(object)
        && !part.records.contains_key(object)
    {
        return vec![Decision::new(
            Intent::CreateScheduledBackup {
                object: object.clone(),
            },
            ReasonCode::BackupScheduled { at: *at },
            format!("the schedule fired at {at}"),
        )];
    }
    if let Some(expired) = retention(view, now) {
        return vec![expired];
    }
    if part.running().is_some() {
        return Vec::new();
    }
    // Retries first, then the oldest backup asked for.
    let mut waiting: Vec<&BackupRecord> = part
        .records
        .values()
        .filter(|r| r.problem.is_none() && r.target.is_some())
        .filter(|r| !part.deleted.contains_key(&r.object))
        .collect();
    waiting.sort_by_key(|r| (r.created, r.object.clone()));
    for record in waiting {
        let (attempt, code, detail) = match part.runs.get(&record.object) {
            None => (
                1,
                ReasonCode::BackupRequested,
                format!("ValkeyBackup {} waits to be taken", record.object),
            ),
            Some(BackupRun {
                attempt,
                outcome:
                    Some(BackupOutcome::Failed {
                        retry: true,
                        reason,
                        ..
                    }),
                ..
            }) if *attempt < MAX_BACKUP_ATTEMPTS => (
                attempt.saturating_add(1),
                ReasonCode::BackupRetry { failed: *attempt },
                format!(
                    "attempt {attempt} failed ({reason}); attempt {} of {MAX_BACKUP_ATTEMPTS}",
                    attempt.saturating_add(1)
                ),
            ),
            Some(_) => continue,
        };
        let Some(sources) = sources(view) else {
            // Not now: a shard has no usable node. The status says so.
            return Vec::new();
        };
        return vec![Decision::new(
            Intent::TakeBackup {
                object: record.object.clone(),
                attempt,
                sources,
            },
            code,
            detail,
        )];
    }
    Vec::new()
}

/// When the next completed scheduled backup grows older than
/// `maxAgeHours` (the newest never expires), if one will.
pub fn retention_deadline(view: &ClusterView<'_>) -> Option<Timestamp> {
    let max = max_age_ms(view)?;
    // `now > at + max`: one microsecond past it.
    completed_scheduled(view)
        .iter()
        .skip(1)
        .map(|(_, at, _)| Timestamp(at.plus_millis(max).as_micros().saturating_add(1)))
        .min()
}

/// `maxAgeHours` in milliseconds, if set.
fn max_age_ms(view: &ClusterView<'_>) -> Option<i64> {
    let hours = view.spec.backup.retention.max_age_hours?;
    Some(i64::from(hours).saturating_mul(3_600_000))
}

/// The completed scheduled backups retention judges (not deleted yet),
/// newest first: each with when it completed and its last run.
pub(super) fn completed_scheduled<'v>(
    view: &ClusterView<'v>,
) -> Vec<(&'v BackupRecord, Timestamp, &'v BackupRun)> {
    let part = &view.state.backups;
    let mut completed: Vec<(&BackupRecord, Timestamp, &BackupRun)> = part
        .records
        .values()
        .filter(|r| r.scheduled && !part.deleted.contains_key(&r.object))
        .filter_map(|r| {
            let run = part.runs.get(&r.object)?;
            part.completed(&r.object).map(|at| (r, at, run))
        })
        .collect();
    completed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.object.cmp(&b.0.object)));
    completed
}

/// The first scheduled backup retention expires, if any: beyond
/// `keepLast` or older than `maxAgeHours`, never the newest completed.
fn retention(view: &ClusterView<'_>, now: Timestamp) -> Option<Decision> {
    let retention = &view.spec.backup.retention;
    let keep = usize::try_from(retention.effective_keep_last()).unwrap_or(usize::MAX);
    let max_age_ms = max_age_ms(view);
    completed_scheduled(view)
        .iter()
        .enumerate()
        .skip(1)
        .find(|(newer, (_, at, _))| {
            *newer >= keep || max_age_ms.is_some_and(|max| now > at.plus_millis(max))
        })
        .map(|(newer, (record, at, run))| {
            let newer = u32::try_from(newer).unwrap_or(u32::MAX);
            Decision::new(
                Intent::DeleteBackup {
                    object: record.object.clone(),
                    dir: run.target.dir.clone(),
                },
                ReasonCode::RetentionExpired {
                    newer,
                    completed: *at,
                },
                format!(
                    "completed at {at}; {newer} newer scheduled backups; retention keeps {keep}{}",
                    retention
                        .max_age_hours
                        .map(|h| format!(" and none older than {h} h"))
                        .unwrap_or_default()
                ),
            )
        })
}

/// One source per shard, `None` while a shard has no usable node (or, in
/// a Cluster, a slot has no owner).
pub(super) fn sources(view: &ClusterView<'_>) -> Option<Vec<BackupSource>> {
    match view.topology() {
        Topology::Standalone | Topology::Replication | Topology::Sentinel => {
            let primary = view.healthy_primary()?;
            let mut replicas: Vec<PodState<'_>> = view
                .pods()
                .into_iter()
                .filter(|p| p.in_sync_with(primary.name))
                .collect();
            replicas.sort_by_key(|p| (std::cmp::Reverse(p.view.offset), p.ordinal()));
            let pod = replicas.first().map_or(primary.name, |p| p.name);
            Some(vec![BackupSource {
                shard: 0,
                pod: pod.to_owned(),
                primary: primary.name.to_owned(),
                slots: Vec::new(),
                node_id: None,
            }])
        }
        Topology::Cluster => {
            let cluster = &view.state.cluster;
            if cluster.unassigned() > 0 {
                return None;
            }
            let mut shards: Vec<_> = cluster
                .shards()
                .into_iter()
                .filter(|s| !s.retired && !s.slots.is_empty())
                .collect();
            shards.sort_by_key(|s| s.slots.first().map(|r| r.start));
            let mut out = Vec::new();
            for (i, shard) in shards.iter().enumerate() {
                let primary = view
                    .pod(shard.primary)
                    .filter(|p| p.usable_as(Role::Primary))?;
                let mut replicas: Vec<PodState<'_>> = shard
                    .replicas
                    .iter()
                    .filter_map(|r| view.pod(r))
                    .filter(|p| p.usable_as(Role::Replica))
                    .collect();
                replicas.sort_by_key(PodState::ordinal);
                let source = replicas.first().map_or(primary.name, |p| p.name);
                out.push(BackupSource {
                    shard: u32::try_from(i).unwrap_or(u32::MAX),
                    pod: source.to_owned(),
                    primary: primary.name.to_owned(),
                    slots: shard.slots.clone(),
                    node_id: cluster.node_id(source).map(str::to_owned),
                });
            }
            (!out.is_empty()).then_some(out)
        }
    }
}

/// `FinishRestore` once every shard's pod serves its restored data: a
/// primary (and in a Cluster, every slot owned and the cluster formed).
pub fn decide_restore_done(view: &ClusterView<'_>) -> Option<Decision> {
    let plan = view.state.backups.restore.pending()?;
    let shards = u32::try_from(plan.shards.len()).unwrap_or(u32::MAX);
    let served = match view.topology() {
        Topology::Cluster => {
            let cluster = &view.state.cluster;
            cluster.formed_at.is_some()
                && cluster.unassigned() == 0
                && plan.shards.iter().all(|s| {
                    view.pods()
                        .iter()
                        .any(|p| p.ordinal() == s.shard && p.usable_as(Role::Primary))
                })
        }
        Topology::Standalone | Topology::Replication | Topology::Sentinel => {
            view.healthy_primary().is_some_and(|p| p.ordinal() == 0)
        }
    };
    served.then(|| {
        Decision::new(
            Intent::FinishRestore { shards },
            ReasonCode::RestoreLoaded,
            format!(
                "the {shards} shard(s) of {} are served; the restore plan goes",
                plan.source
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use logbook_crds::{Topology, ValkeyClusterSpec};
    use logbook_journal::{
        BackupRecord, BackupTarget, Event, Intent, LinkStatus, Reachability, Role, Timestamp,
    };

    use crate::decide::given::Given;

    fn target(object: &str) -> BackupTarget {
        BackupTarget {
            bucket: "b".into(),
            region: "us-east-1".into(),
            endpoint: None,
            path_style: None,
            secret: "s3".into(),
            dir: format!("p/ns/demo/{object}/"),
            cluster_dir: "p/ns/demo/".into(),
        }
    }

    fn record(object: &str, created_s: i64, scheduled: bool) -> Event {
        Event::BackupRequested {
            backup: BackupRecord {
                object: object.into(),
                uid: format!("uid-{object}"),
                created: Timestamp::EPOCH.plus_millis(created_s * 1000),
                scheduled,
                target: Some(target(object)),
                problem: None,
            },
        }
    }

    /// A Replication cluster of three answering pods, demo-0 primary,
    /// demo-1 and demo-2 replicas in sync (demo-2 ahead).
    fn cluster(spec: &ValkeyClusterSpec) -> Given {
        let mut g = Given::new();
        g.spec(spec);
        g.applied(1);
        for i in 0..3 {
            g.pod(i, "r1");
            g.reach(i, Reachability::Reachable);
        }
        g.succeed(Intent::PromoteReplica {
            pod: "demo-0".into(),
            from: None,
        });
        g.role(0, Role::Primary, None);
        for (i, offset) in [(1, 100), (2, 200)] {
            g.role(i, Role::Replica, Some(0));
            g.repl(i, LinkStatus::Up, offset, 1);
        }
        g
    }

    fn spec() -> ValkeyClusterSpec {
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
        spec.replicas = Some(3);
        spec
    }

    fn backups(g: &Given) -> Vec<Intent> {
        let view = crate::decide::ClusterView::new(&g.state).unwrap();
        super::decide_backups(&view, g.state.last_at)
            .into_iter()
            .map(|d| d.intent)
            .collect()
    }

    fn started(object: &str, attempt: u32) -> Event {
        Event::BackupStarted {
            object: object.into(),
            attempt,
            target: target(object),
            sources: Vec::new(),
        }
    }

    #[test]
    fn a_backup_is_taken_from_the_replica_in_sync_with_the_most_data_one_at_a_time() {
        let mut g = cluster(&spec());
        g.event(record("first", 1, false))
            .event(record("second", 2, false));
        let intents = backups(&g);
        let [
            Intent::TakeBackup {
                object,
                attempt,
                sources,
            },
        ] = intents.as_slice()
        else {
            panic!("{intents:?}");
        };
        assert_eq!((object.as_str(), *attempt), ("first", 1));
        assert_eq!(sources[0].pod, "demo-2");
        assert_eq!(sources[0].primary, "demo-0");
        // While it runs, nothing else starts.
        g.event(started("first", 1));
        assert!(backups(&g).is_empty());
        g.event(Event::BackupCompleted {
            object: "first".into(),
            attempt: 1,
            manifest: "m".into(),
            bytes: 1,
        });
        assert!(
            matches!(&backups(&g)[..], [Intent::TakeBackup { object, .. }] if object == "second")
        );
    }

    #[test]
    fn without_a_replica_in_sync_the_primary_is_the_source() {
        let mut g = cluster(&spec());
        for i in 1..3 {
            g.repl(i, LinkStatus::Down, 0, 1);
        }
        g.event(record("first", 1, false));
        assert!(matches!(&backups(&g)[..],
            [Intent::TakeBackup { sources, .. }] if sources[0].pod == "demo-0"));
    }

    #[test]
    fn a_failed_attempt_is_retried_up_to_three_then_left_failed() {
        let mut g = cluster(&spec());
        g.event(record("first", 1, false));
        for attempt in 1..=3 {
            assert!(
                matches!(&backups(&g)[..], [Intent::TakeBackup { attempt: a, .. }] if *a == attempt),
                "attempt {attempt}: {:?}",
                backups(&g)
            );
            g.event(started("first", attempt));
            g.event(Event::BackupFailed {
                object: "first".into(),
                attempt,
                reason: "cut".into(),
                retry: true,
            });
        }
        assert!(backups(&g).is_empty(), "{:?}", backups(&g));
        // A failure not worth retrying is final at once.
        g.event(record("other", 5, false));
        g.event(started("other", 1));
        g.event(Event::BackupFailed {
            object: "other".into(),
            attempt: 1,
            reason: "no Secret".into(),
            retry: false,
        });
        assert!(backups(&g).is_empty());
    }

    #[test]
    fn retention_expires_the_oldest_scheduled_backups_only_and_never_the_newest() {
        let mut spec = spec();
        spec.backup.retention.keep_last = Some(2);
        spec.backup.retention.max_age_hours = Some(1);
        let mut g = cluster(&spec);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            g.event(record(name, i64::try_from(i).unwrap(), true));
            g.event(started(name, 1));
            g.event(Event::BackupCompleted {
                object: (*name).into(),
                attempt: 1,
                manifest: "m".into(),
                bytes: 1,
            });
        }
        // A backup asked for by hand is never expired.
        g.event(record("manual", 0, false));
        g.event(started("manual", 1));
        g.event(Event::BackupCompleted {
            object: "manual".into(),
            attempt: 1,
            manifest: "m".into(),
            bytes: 1,
        });
        let intents = backups(&g);
        assert_eq!(
            intents,
            vec![Intent::DeleteBackup {
                object: "a".into(),
                dir: "p/ns/demo/a/".into()
            }]
        );
        g.event(Event::BackupDeleted {
            object: "a".into(),
            objects: 2,
        });
        assert!(backups(&g).is_empty(), "{:?}", backups(&g));
        // Two hours on, all but the newest are too old.
        g.every_ms(7_200_000);
        g.event(Event::BackupForgotten { object: "a".into() });
        assert_eq!(
            backups(&g),
            vec![Intent::DeleteBackup {
                object: "b".into(),
                dir: "p/ns/demo/b/".into()
            }]
        );
        g.event(Event::BackupDeleted {
            object: "b".into(),
            objects: 2,
        });
        assert!(
            backups(&g).is_empty(),
            "the newest is kept: {:?}",
            backups(&g)
        );
    }

    #[test]
    fn the_schedule_firing_creates_its_backup_once() {
        let mut g = cluster(&spec());
        g.event(Event::BackupDue {
            at: Timestamp::EPOCH,
            object: "demo-19700101-0000".into(),
        });
        assert_eq!(
            backups(&g),
            vec![Intent::CreateScheduledBackup {
                object: "demo-19700101-0000".into()
            }]
        );
        g.succeed(Intent::CreateScheduledBackup {
            object: "demo-19700101-0000".into(),
        });
        assert!(backups(&g).is_empty());
    }
}
