//! Valkey Cluster probes (`CLUSTER NODES`, `CLUSTER INFO`, `INFO
//! replication` of each pod) to events: the node's report when it
//! changed (`ClusterNodeObserved`), its role with the pod of the primary
//! it replicates (resolved by node id, never by address), and its
//! replication link and offset as for Replication. Reachability is
//! recorded as for every topology.

use logbook_journal::cluster::{SLOTS, merge_ranges};
use logbook_journal::{
    ClusterNodeReport, ClusterPeer, ClusterState, Event, PeerHealth, Reachability, ReplId, Role,
    SlotMigrationJob, SlotPeer,
};

use super::replication::{
    failure_reachability, observe_reachability, observe_replication, observe_role,
};
use crate::replies::{ClusterProbe, ProbeError, ReplicationInfo};

/// What one probe of a cluster node got.
#[derive(Debug, Clone)]
pub struct ClusterAnswer {
    /// The node's report, volatile fields left out.
    pub report: ClusterNodeReport,
    /// Its `INFO replication`.
    pub replication: ReplicationInfo,
    /// The atomic slot migration jobs it lists (`CLUSTER
    /// GETSLOTMIGRATIONS`), finished ones included; `None` when the
    /// server has none (Redis, Valkey before 9.0).
    pub migrations: Option<Vec<SlotMigrationJob>>,
    /// The slots its own `CLUSTER NODES` line marks as half-moved:
    /// migrating (`[slot->-id]`, with the target) and importing
    /// (`[slot-<-id]`, with the source), each sorted.
    pub slot_states: (Vec<SlotPeer>, Vec<SlotPeer>),
    /// What the node announces, as its own line shows it to the operator
    /// (`ip:port@cport`); `None` while it knows no address of its own.
    pub announced: Option<String>,
}

/// One probe of one cluster pod, as the prober saw it.
#[derive(Debug)]
pub enum ClusterObservation<'a> {
    /// The pod has no IP.
    NoAddress,
    /// The probe answered.
    Answered(&'a ClusterAnswer),
    /// The probe failed.
    Failed(&'a ProbeError),
}

/// Events for one probe of the cluster node in `pod`; `cap` bounds how
/// many consecutive failures are recorded, `want_offsets` asks for the
/// offset even when only it moved (a shard primary is failing).
pub fn observe_cluster_probe(
    state: &ClusterState,
    pod: &str,
    obs: &ClusterObservation<'_>,
    cap: u32,
    want_offsets: bool,
    evidence: super::LinkEvidence,
) -> Vec<Event> {
    let reach = match obs {
        ClusterObservation::NoAddress => Reachability::NoAddress,
        ClusterObservation::Answered(_) => Reachability::Reachable,
        ClusterObservation::Failed(err) => failure_reachability(err),
    };
    let mut out: Vec<Event> = observe_reachability(state, pod, reach, cap)
        .into_iter()
        .collect();
    let ClusterObservation::Answered(answer) = obs else {
        return out;
    };
    out.extend(observe_report(state, pod, &answer.report));
    let role = if answer.report.is_primary() {
        Role::Primary
    } else {
        Role::Replica
    };
    let primary = answer
        .report
        .primary_id
        .as_deref()
        .and_then(|id| state.cluster.pod_of(id))
        .map(str::to_owned);
    out.extend(observe_history_reset(state, pod, answer));
    // A replica lists its primary's import jobs: the primary's own list
    // is the one that counts.
    out.extend(super::reshard::observe_migrations(
        state,
        pod,
        answer
            .migrations
            .as_deref()
            .filter(|_| answer.report.is_primary()),
    ));
    out.extend(super::reshard::observe_slot_states(
        state,
        pod,
        &answer.report.node_id,
        &answer.slot_states.0,
        &answer.slot_states.1,
    ));
    out.extend(observe_role(state, pod, role, primary));
    out.extend(observe_replication(
        state,
        pod,
        &answer.replication,
        want_offsets,
        evidence,
    ));
    if let Some(announced) = &answer.announced {
        out.extend(super::external::observe_announced(state, pod, announced));
    }
    out
}

/// `PrimaryHistoryReset` when `pod` was a primary, still is the same node
/// and a primary, and answers with another replication id than the one
/// journaled: its process restarted in place faster than a probe could
/// see it die (a failover or a role change would have been observed).
/// Compared with the state before this probe's events, so the role this
/// probe reports cannot hide the change.
///
/// A primary serving no slot holds no key anyone could lose: an empty
/// primary picked as a new shard takes a new id when its first replica
/// asks to sync, and that is no reset (journaled as one, it would stand
/// and hold the reshard back).
///
/// Two changes of id lose nothing and are not journaled as resets:
/// - a promotion's: the node keeps the history it had as `master_replid2`
///   and goes on with it under a new id (journaled as a reset, it would
///   stand for as long as the node stays primary, with a history nobody
///   lost);
/// - a change off a history that no replica of the node may hold (each
///   one's journaled history is another): a primary without a backlog
///   takes a new id at the same offset when its first replica asks to
///   sync — every primary of a new cluster does, and a restarted one
///   does again. Nobody held the old history, so nothing of it can be
///   saved; while a reset stands, the history it records is the one its
///   replicas hold and the failover must save, and replacing it with one
///   no replica holds, the failover would no longer be decided, nor
///   resumed after an operator restart, and the replica would resync
///   from the emptied primary. A change off a history some replica took
///   is journaled: a restart lost that.
pub fn observe_history_reset(
    state: &ClusterState,
    pod: &str,
    answer: &ClusterAnswer,
) -> Option<Event> {
    let known = state.pods.get(pod)?;
    let node_id = &answer.report.node_id;
    let was_primary = known.role == Some(Role::Primary)
        && state
            .cluster
            .report(pod)
            .is_some_and(|r| r.serves_slots() && r.node_id == *node_id);
    if !was_primary || !answer.report.is_primary() {
        return None;
    }
    let previous = known.replid?;
    let replid = ReplId::from_hex(&answer.replication.replid).ok()?;
    let promoted = ReplId::from_hex(&answer.replication.replid2).ok() == Some(previous);
    if promoted || !replica_may_hold(state, node_id, previous) {
        return None;
    }
    (replid != previous).then(|| Event::PrimaryHistoryReset {
        pod: pod.to_owned(),
        node_id: answer.report.node_id.clone(),
        previous_replid: previous,
        previous_offset: known.offset,
        replid,
        offset: answer.replication.master_repl_offset,
    })
}

/// Whether a replica of node `node_id` (by its last report) may hold
/// history `replid`: it was journaled on it, or on none yet (a pod
/// recreated since).
fn replica_may_hold(state: &ClusterState, node_id: &str, replid: ReplId) -> bool {
    state.pods.iter().any(|(pod, view)| {
        view.replid.is_none_or(|r| r == replid)
            && state
                .cluster
                .report(pod)
                .is_some_and(|r| r.primary_id.as_deref() == Some(node_id))
    })
}

/// `ClusterNodeObserved` when `pod`'s node reports anything other than
/// its last report (or is another node than the pod last ran).
pub fn observe_report(
    state: &ClusterState,
    pod: &str,
    report: &ClusterNodeReport,
) -> Option<Event> {
    (state.cluster.report(pod) != Some(report)).then(|| Event::ClusterNodeObserved {
        pod: pod.to_owned(),
        report: report.clone(),
    })
}

/// The report and replication state a probe of a cluster node shows:
/// `myself` is the node, every other line a peer (sorted by node id so
/// that an unchanged table gives an equal report). `None` when the reply
/// has no `myself` line.
pub fn cluster_answer(probe: &ClusterProbe) -> Option<ClusterAnswer> {
    let me = probe.nodes.iter().find(|n| n.myself)?;
    let mut peers: Vec<ClusterPeer> = probe
        .nodes
        .iter()
        .filter(|n| !n.myself)
        .map(|n| ClusterPeer {
            node_id: n.id.clone(),
            ip: n.ip.clone(),
            primary: n.primary,
            primary_id: n.primary_id.clone(),
            health: if n.handshake {
                PeerHealth::Handshake
            } else if n.failed {
                PeerHealth::Failed
            } else if n.noaddr {
                PeerHealth::NoAddress
            } else if n.suspected {
                PeerHealth::Suspected
            } else {
                PeerHealth::Ok
            },
        })
        .collect();
    peers.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    // Its ranges, within the slot space, sorted and merged (never
    // expanded slot by slot: this runs on every probe of every node).
    let owned: Vec<logbook_journal::intent::SlotRange> = me
        .slots
        .iter()
        .filter(|r| r.start <= r.end && u32::from(r.start) < SLOTS)
        .map(|r| logbook_journal::intent::SlotRange {
            start: r.start,
            end: u16::try_from(u32::from(r.end).min(SLOTS - 1)).unwrap_or(r.end),
        })
        .collect();
    let peers_of = |marks: &[crate::replies::SlotMigration]| {
        let mut out: Vec<SlotPeer> = marks
            .iter()
            .map(|m| SlotPeer {
                slot: m.slot,
                node_id: m.node_id.clone(),
            })
            .collect();
        out.sort();
        out
    };
    Some(ClusterAnswer {
        report: ClusterNodeReport {
            node_id: me.id.clone(),
            primary_id: if me.primary {
                None
            } else {
                me.primary_id.clone()
            },
            slots: merge_ranges(&owned),
            config_epoch: me.config_epoch,
            current_epoch: probe.info.current_epoch,
            state_ok: probe.info.state_ok,
            peers,
        },
        replication: probe.replication.clone(),
        migrations: probe.migrations.clone(),
        slot_states: (peers_of(&me.migrating), peers_of(&me.importing)),
        announced: me
            .ip
            .as_deref()
            .map(|ip| format!("{ip}:{}@{}", me.port, me.cport)),
    })
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
