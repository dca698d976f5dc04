//! Slot moves as the nodes list them, to events: atomic slot migration
//! jobs (`CLUSTER GETSLOTMIGRATIONS`) and the half-moved slot markers of
//! the classic pipeline (`CLUSTER NODES`). Edge-triggered: a job is
//! journaled when first seen under way, when its phase or message
//! changes, and when it vanishes while under way (its node restarted);
//! a finished job never seen running (the node keeps up to a thousand)
//! is history the journal does not need. Progress alone journals nothing.

use logbook_journal::{ClusterState, Event, MigrationPhase, SlotMigrationJob, SlotPeer};

/// `SlotMigrationObserved` for each job `pod`'s node lists that the
/// projection does not know as it is, and for each job known under way on
/// `pod` that it no longer lists. `jobs` is `None` for a server without
/// atomic slot migration.
pub fn observe_migrations(
    state: &ClusterState,
    pod: &str,
    jobs: Option<&[SlotMigrationJob]>,
) -> Vec<Event> {
    let Some(jobs) = jobs else {
        return Vec::new();
    };
    let known = &state.reshard.migrations;
    let mut out: Vec<Event> = jobs
        .iter()
        .filter(|job| match known.get(&job.key()) {
            Some(was) => was.job.phase != job.phase || was.job.message != job.message,
            None => !job.phase.is_over(),
        })
        .map(|job| Event::SlotMigrationObserved {
            pod: pod.to_owned(),
            job: job.clone(),
            elapsed_ms: None,
        })
        .collect();
    for (key, was) in known {
        if was.pod == pod && !jobs.iter().any(|j| j.key() == *key) {
            let mut job = was.job.clone();
            job.phase = MigrationPhase::Vanished;
            out.push(Event::SlotMigrationObserved {
                pod: pod.to_owned(),
                job,
                elapsed_ms: None,
            });
        }
    }
    out
}

/// `SlotStatesObserved` when the slots `pod`'s node (`node_id`) marks as
/// half-moved differ from the projection's.
pub fn observe_slot_states(
    state: &ClusterState,
    pod: &str,
    node_id: &str,
    migrating: &[SlotPeer],
    importing: &[SlotPeer],
) -> Option<Event> {
    let mut migrating = migrating.to_vec();
    let mut importing = importing.to_vec();
    migrating.sort();
    importing.sort();
    let same = match state.reshard.slot_states.get(pod) {
        Some(known) => {
            known.node_id == node_id && known.migrating == migrating && known.importing == importing
        }
        None => migrating.is_empty() && importing.is_empty(),
    };
    (!same).then(|| Event::SlotStatesObserved {
        pod: pod.to_owned(),
        node_id: node_id.to_owned(),
        migrating,
        importing,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use logbook_journal::{MigrationSide, SlotRange, Timestamp};

    use super::*;

    fn job(state: &str) -> SlotMigrationJob {
        SlotMigrationJob {
            name: "a".repeat(40),
            side: MigrationSide::Export,
            source: "s".repeat(40),
            target: "t".repeat(40),
            slots: vec![SlotRange { start: 0, end: 99 }],
            phase: MigrationPhase::from_valkey(state),
            message: String::new(),
            remaining_repl_size: 0,
        }
    }

    fn fold(state: &mut ClusterState, events: &[Event]) {
        for e in events {
            if let Event::SlotMigrationObserved { pod, job, .. } = e {
                state.reshard.observe_job(pod, job, Timestamp(0));
            }
        }
    }

    #[test]
    fn a_job_is_journaled_on_each_change_of_phase_and_not_for_progress() {
        let mut state = ClusterState::new();
        let first = observe_migrations(&state, "demo-0", Some(&[job("snapshotting")]));
        assert_eq!(first.len(), 1);
        fold(&mut state, &first);
        let mut progressed = job("snapshotting");
        progressed.remaining_repl_size = 4096;
        assert!(observe_migrations(&state, "demo-0", Some(&[progressed])).is_empty());
        let done = observe_migrations(&state, "demo-0", Some(&[job("success")]));
        assert_eq!(done.len(), 1);
        fold(&mut state, &done);
        assert!(state.reshard.migrations.is_empty());
        // Over and known no more: old history, not journaled again.
        assert!(observe_migrations(&state, "demo-0", Some(&[job("success")])).is_empty());
    }

    #[test]
    fn a_job_under_way_that_its_node_no_longer_lists_vanished() {
        let mut state = ClusterState::new();
        let first = observe_migrations(&state, "demo-0", Some(&[job("replicating")]));
        fold(&mut state, &first);
        let gone = observe_migrations(&state, "demo-0", Some(&[]));
        match gone.as_slice() {
            [Event::SlotMigrationObserved { job, .. }] => {
                assert_eq!(job.phase, MigrationPhase::Vanished);
            }
            other => panic!("{other:?}"),
        }
        // Another pod's listing says nothing of it; a server without
        // atomic slot migration neither.
        assert!(observe_migrations(&state, "demo-1", Some(&[])).is_empty());
        assert!(observe_migrations(&state, "demo-0", None).is_empty());
    }

    #[test]
    fn half_moved_markers_are_journaled_when_they_change() {
        let mut state = ClusterState::new();
        let node = "n".repeat(40);
        assert_eq!(observe_slot_states(&state, "demo-0", &node, &[], &[]), None);
        let marks = vec![SlotPeer {
            slot: 7,
            node_id: "t".repeat(40),
        }];
        let seen = observe_slot_states(&state, "demo-0", &node, &marks, &[]).unwrap();
        if let Event::SlotStatesObserved {
            migrating,
            importing,
            ..
        } = &seen
        {
            state.reshard.slot_states.insert(
                "demo-0".into(),
                logbook_journal::projection::reshard::SlotStates {
                    node_id: node.clone(),
                    migrating: migrating.clone(),
                    importing: importing.clone(),
                },
            );
        }
        assert_eq!(
            observe_slot_states(&state, "demo-0", &node, &marks, &[]),
            None
        );
        assert!(observe_slot_states(&state, "demo-0", &node, &[], &[]).is_some());
    }
}
