//! The Valkey Cluster family: what each node reports of itself and its
//! slots, primaries restarted in place with another history, atomic slot
//! migrations and half-moved slots.
//!
//! Slot ownership is never stored here, only the nodes' reports; the
//! moves of ownership and the cluster's formation are derived from them
//! for the history.

use super::short;
use crate::event::Event;
use crate::projection::ClusterState;
use crate::projection::cluster::{ClusterNode, HistoryReset};
use crate::projection::reshard::SlotStates;
use crate::time::Timestamp;

impl ClusterState {
    /// Folds what Valkey Cluster nodes report: their identities and slots,
    /// primaries restarted with another history, slot migrations and
    /// half-moved slots.
    pub(super) fn fold_cluster(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::ClusterNodeObserved { pod, report } => {
                self.observed();
                self.fold_cluster_report(seq, at, body, pod, report);
            }
            Event::PrimaryHistoryReset {
                pod,
                node_id,
                previous_replid,
                previous_offset,
                replid,
                offset,
            } => {
                self.observed();
                // The pod's new id and offset come with the same probe's
                // `ReplicationObserved`; only what it no longer shows is kept.
                self.pod_for_observation(seq, pod, at);
                self.cluster.history_resets.insert(
                    pod.clone(),
                    HistoryReset {
                        node_id: node_id.clone(),
                        previous_replid: *previous_replid,
                    },
                );
                let was = previous_offset.map_or_else(String::new, |o| format!(" at offset {o}"));
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "primary {pod} restarted in place with another history (was {}{was}, now {} at offset {offset})",
                        short(&previous_replid.to_hex()),
                        short(&replid.to_hex())
                    ),
                );
            }
            Event::SlotMigrationObserved {
                pod,
                job,
                elapsed_ms,
            } => {
                self.observed();
                let known = self.reshard.observe_job(pod, job, at);
                if job.phase.is_over() || !known {
                    let after = elapsed_ms.map_or_else(String::new, |ms| format!(" after {ms} ms"));
                    let message = if job.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", job.message)
                    };
                    self.history(
                        seq,
                        at,
                        body,
                        format!(
                            "slot migration {} of {} slots {} -> {} ({} on {pod}) {}{after}{message}",
                            short(&job.name),
                            crate::cluster::slot_count(&job.slots),
                            short(&job.source),
                            short(&job.target),
                            job.side.name(),
                            job.phase.name()
                        ),
                    );
                }
            }
            Event::SlotStatesObserved {
                pod,
                node_id,
                migrating,
                importing,
            } => {
                self.observed();
                if migrating.is_empty() && importing.is_empty() {
                    self.reshard.slot_states.remove(pod);
                } else {
                    self.reshard.slot_states.insert(
                        pod.clone(),
                        SlotStates {
                            node_id: node_id.clone(),
                            migrating: migrating.clone(),
                            importing: importing.clone(),
                        },
                    );
                }
            }
            other => self.misrouted(seq, other, "Valkey Cluster"),
        }
    }

    /// Folds a cluster node's report: a new node id for a pod retires the
    /// old node (kept, with its last claims, until forgotten); slot
    /// ownership that changed hands, and the cluster's formation, go into
    /// the history.
    fn fold_cluster_report(
        &mut self,
        seq: u64,
        at: Timestamp,
        body: &Event,
        pod: &str,
        report: &crate::cluster::ClusterNodeReport,
    ) {
        if let Some(other) = self
            .cluster
            .pod_of(&report.node_id)
            .filter(|other| *other != pod)
        {
            let other = other.to_owned();
            self.anomaly(
                seq,
                format!(
                    "{pod} reports node id {} which {other} reported before",
                    report.node_id
                ),
            );
        }
        if !report.is_primary()
            || self
                .cluster
                .history_resets
                .get(pod)
                .is_some_and(|r| r.node_id != report.node_id)
        {
            // No longer a primary (the failover served it), or another
            // node: the restart no longer bears on who should serve.
            self.cluster.history_resets.remove(pod);
        }
        let before = self.owner_pods();
        let previous = self
            .cluster
            .pods
            .insert(pod.to_owned(), report.node_id.clone());
        self.cluster.nodes.insert(
            report.node_id.clone(),
            ClusterNode {
                pod: pod.to_owned(),
                report: report.clone(),
            },
        );
        if let Some(previous) = previous.filter(|p| *p != report.node_id) {
            self.history(
                seq,
                at,
                body,
                format!(
                    "{pod} came back as a new node {} (was {}): it lost its data",
                    short(&report.node_id),
                    short(&previous)
                ),
            );
        }
        let after = self.owner_pods();
        let moves = changed_runs(&before, &after);
        let summaries: Vec<String> = moves
            .iter()
            .map(|(range, old, new)| {
                let slots = crate::cluster::describe_slots(std::slice::from_ref(range));
                match (*old, *new) {
                    (Some(old), Some(new)) => format!("slots {slots} moved from {old} to {new}"),
                    (None, Some(new)) => format!("slots {slots} now owned by {new}"),
                    (Some(old), None) => format!("slots {slots} no longer owned by {old}"),
                    (None, None) => String::new(),
                }
            })
            .collect();
        if !summaries.is_empty() {
            self.history(
                seq,
                at,
                body,
                format!("{} (epoch {})", summaries.join("; "), report.config_epoch),
            );
        }
        if self.cluster.formed_at.is_none() && after.iter().all(|(_, owner)| owner.is_some()) {
            self.cluster.formed_at = Some(seq);
            self.history(
                seq,
                at,
                body,
                "cluster formed: every one of the 16384 slots has an owner".to_owned(),
            );
        }
    }

    /// The pod owning each run of slots, as `node@pod` would be ambiguous
    /// for people: the pod name, or the node id when no pod is known.
    fn owner_pods(&self) -> Vec<(crate::intent::SlotRange, Option<String>)> {
        self.cluster
            .owner_runs(|id| Some(self.cluster.pod_of(id).unwrap_or(id).to_owned()))
    }

    /// Whether the stream is a Valkey Cluster's: its nodes reported
    /// cluster identities.
    pub(super) fn is_valkey_cluster(&self) -> bool {
        !self.cluster.pods.is_empty()
    }
}

/// The runs of slots whose owner differs between `before` and `after`
/// (each the whole slot range in runs, as `owner_runs` gives it), with the
/// owner before and after, adjacent runs of one change merged.
fn changed_runs<'a>(
    before: &'a [(crate::intent::SlotRange, Option<String>)],
    after: &'a [(crate::intent::SlotRange, Option<String>)],
) -> Vec<(
    crate::intent::SlotRange,
    &'a Option<String>,
    &'a Option<String>,
)> {
    let mut out: Vec<(crate::intent::SlotRange, &Option<String>, &Option<String>)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut at: u16 = 0;
    while let (Some((b, old)), Some((a, new))) = (before.get(i), after.get(j)) {
        let end = b.end.min(a.end);
        if old != new {
            match out.last_mut() {
                Some((range, o, n))
                    if range.end.checked_add(1) == Some(at) && *o == old && *n == new =>
                {
                    range.end = end;
                }
                _ => out.push((crate::intent::SlotRange { start: at, end }, old, new)),
            }
        }
        if b.end == end {
            i += 1;
        }
        if a.end == end {
            j += 1;
        }
        match end.checked_add(1) {
            Some(next) => at = next,
            None => break,
        }
    }
    out
}
