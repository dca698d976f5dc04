//! The resharding part of a Valkey Cluster's projection: the atomic slot
//! migration jobs seen under way, the slots nodes mark as half-moved, and
//! the moves that keep failing.
//!
//! Facts only. Which slots are where is the cluster part's (the nodes'
//! own claims); what to move next is `decide`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::{SlotMigrationJob, SlotPeer};
use crate::time::Timestamp;

/// What the journal says of a Valkey Cluster's slot moves.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReshardPart {
    /// Atomic slot migration jobs last seen under way, by
    /// [`SlotMigrationJob::key`]. A job leaves when it is seen over (or
    /// vanished), or its pod is deleted.
    pub migrations: BTreeMap<String, RunningMigration>,
    /// Slots each pod's node marks as half-moved, by pod (absent: none).
    pub slot_states: BTreeMap<String, SlotStates>,
    /// Moves between two nodes that failed since their last success or
    /// the last spec change, by [`move_key`].
    pub failures: BTreeMap<String, MoveFailures>,
    /// The reshard of the latest spec generation that decided a move.
    pub run: Option<ReshardRun>,
}

/// One generation's reshard, as its decisions and outcomes show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshardRun {
    /// The spec generation.
    pub generation: i64,
    /// Slots its first decision planned to move.
    pub planned: u32,
    /// Slots its succeeded moves carried.
    pub moved: u32,
    /// When its first move was decided.
    pub started_at: Timestamp,
    /// Seq of that decision.
    pub started_seq: u64,
}

/// A job under way, as last listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningMigration {
    /// The pod of the node listing it.
    pub pod: String,
    /// The job as last seen.
    pub job: SlotMigrationJob,
    /// When it was first seen under way.
    pub since: Timestamp,
}

/// A node's half-moved slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotStates {
    /// Its node id.
    pub node_id: String,
    /// Slots it marks as migrating, with their target.
    pub migrating: Vec<SlotPeer>,
    /// Slots it marks as importing, with their source.
    pub importing: Vec<SlotPeer>,
}

/// Failed moves from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveFailures {
    /// Failures in a row.
    pub count: u32,
    /// How many of the last ones in a row failed with `last_error`.
    pub same_error: u32,
    /// The last failure's error.
    pub last_error: String,
    /// When it failed last.
    pub last_at: Timestamp,
}

/// An error with what changes from one try to the next (job names, node
/// ids, counts, times) blanked: two failures alike have the same shape.
#[must_use]
pub fn error_shape(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    let mut in_number = false;
    for word in error.split_inclusive(|c: char| !c.is_ascii_alphanumeric()) {
        let (token, tail) = word
            .char_indices()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
            .map_or((word, ""), |(i, _)| word.split_at(i));
        let id = token.len() >= 16 && token.bytes().all(|b| b.is_ascii_hexdigit());
        let number = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
        if id {
            out.push_str("<id>");
            in_number = false;
        } else if number {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            out.push_str(token);
            in_number = false;
        }
        out.push_str(tail);
    }
    out
}

/// The key of the moves from node `from` to node `to`.
#[must_use]
pub fn move_key(from: &str, to: &str) -> String {
    format!("{from}>{to}")
}

impl ReshardPart {
    /// Records a job as listed: kept while under way, dropped when over.
    /// Returns whether it was known under way before.
    pub fn observe_job(&mut self, pod: &str, job: &SlotMigrationJob, at: Timestamp) -> bool {
        let key = job.key();
        if job.phase.is_over() {
            return self.migrations.remove(&key).is_some();
        }
        match self.migrations.get_mut(&key) {
            Some(known) => {
                known.job = job.clone();
                known.pod = pod.to_owned();
                true
            }
            None => {
                self.migrations.insert(
                    key,
                    RunningMigration {
                        pod: pod.to_owned(),
                        job: job.clone(),
                        since: at,
                    },
                );
                false
            }
        }
    }

    /// A pod is gone: the jobs its node listed went with its process, and
    /// so did its markers.
    pub fn pod_deleted(&mut self, pod: &str) {
        self.migrations.retain(|_, m| m.pod != pod);
        self.slot_states.remove(pod);
    }

    /// A move from `from` to `to` failed with `error` at `at`.
    pub fn move_failed(&mut self, from: &str, to: &str, error: &str, at: Timestamp) {
        let entry = self
            .failures
            .entry(move_key(from, to))
            .or_insert_with(|| MoveFailures {
                count: 0,
                same_error: 0,
                last_error: String::new(),
                last_at: at,
            });
        entry.count = entry.count.saturating_add(1);
        entry.same_error = if error_shape(&entry.last_error) == error_shape(error) {
            entry.same_error.saturating_add(1)
        } else {
            1
        };
        error.clone_into(&mut entry.last_error);
        entry.last_at = at;
    }

    /// Jobs under way, listed by either end, whose source or target is
    /// `node_id`.
    pub fn jobs_of<'a>(&'a self, node_id: &'a str) -> impl Iterator<Item = &'a RunningMigration> {
        self.migrations
            .values()
            .filter(move |m| m.job.source == node_id || m.job.target == node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_alike_but_for_job_names_and_counts_have_one_shape() {
        let a = "slot migration job 0f2b2937920d11331caba6b9b50a303714a8eb37 moving 1365 slots: failed: OOM after 12 s";
        let b = "slot migration job 99efd7e95937b08c5d228e29fb2e8f9b35bff985 moving 1366 slots: failed: OOM after 3 s";
        assert_eq!(error_shape(a), error_shape(b));
        assert_ne!(
            error_shape(a),
            error_shape(
                "slot migration job 0f2b2937920d11331caba6b9b50a303714a8eb37 moving 1365 slots: failed: Connection lost"
            )
        );
        let mut part = ReshardPart::default();
        part.move_failed("s", "t", a, Timestamp(1));
        part.move_failed("s", "t", b, Timestamp(2));
        assert_eq!(
            part.failures.get(&move_key("s", "t")).map(|f| f.same_error),
            Some(2)
        );
    }
}
