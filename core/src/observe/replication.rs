//! Valkey probes (`ROLE`, `INFO replication`) to events.
//!
//! Reachability: a success is recorded when the pod was not already
//! reachable; failures are recorded one by one (each moves the
//! consecutive-failure count a decision reads) until the count reaches
//! `cap`, after which more of the same failure changes no decision and is
//! not recorded. Role and link state are recorded when they change;
//! offsets when a decision needs them (`want_offsets`) and otherwise only
//! with a change of link or history.

use std::collections::BTreeMap;

use logbook_journal::{ClusterState, Event, LinkStatus, Reachability, ReplId, Role};

use crate::replies::{Probe, ProbeError, ReplicationInfo};

/// `master_last_io_seconds_ago` from which an `up` link counts as silent:
/// two replication pings missed (the rendered config pings every second).
/// Valkey computes it from whole-second clocks, so a reading of 2 comes
/// from a gap of just over one second — one ping a few milliseconds late
/// across two second boundaries, which an idle healthy cluster shows now
/// and then; only 3 proves more than two seconds without a byte.
pub const SILENT_AFTER_SECONDS: u64 = 3;

/// One probe of one pod, as the prober saw it.
#[derive(Debug)]
pub enum ProbeObservation<'a> {
    /// The pod has no IP.
    NoAddress,
    /// The probe answered.
    Answered(&'a Probe),
    /// The probe failed.
    Failed(&'a ProbeError),
}

fn reachability(obs: &ProbeObservation<'_>) -> Reachability {
    match obs {
        ProbeObservation::NoAddress => Reachability::NoAddress,
        ProbeObservation::Answered(_) => Reachability::Reachable,
        ProbeObservation::Failed(err) if err.is_death() => Reachability::Refused,
        ProbeObservation::Failed(err) if err.is_slowness() => Reachability::TimedOut,
        ProbeObservation::Failed(_) => Reachability::ProtocolError,
    }
}

/// The journal's name for a server's role.
pub const fn journal_role(role: crate::replies::Role) -> Role {
    match role {
        crate::replies::Role::Primary => Role::Primary,
        crate::replies::Role::Replica => Role::Replica,
    }
}

/// `master_last_io_seconds_ago` from which an `up` link counts as silent
/// while its primary is failing its probes: a reading of 2 proves more than
/// one second without a byte (whole-second clocks), one ping missed. Only
/// then: alone it comes now and then from an idle healthy cluster (see
/// [`SILENT_AFTER_SECONDS`]), and would flip its journaled link back and
/// forth.
pub const SUSPECT_SILENT_AFTER_SECONDS: u64 = 2;

/// What the prober knows of a replica's link beyond one reply: whether the
/// primary it follows is failing its probes right now, and whether the
/// replica's offset has stood still, by the prober's clock, for longer than
/// a ping period (`STALLED_AFTER` in `operator/prober.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkEvidence {
    /// The primary this replica follows failed its probe this round.
    pub primary_failing: bool,
    /// The replica's offset has not moved for longer than a ping period.
    pub stalled: bool,
}

/// The journal's link state from `INFO replication`.
pub fn link_status(info: &ReplicationInfo) -> LinkStatus {
    link_status_with(info, LinkEvidence::default())
}

/// The journal's link state from `INFO replication` and what the prober
/// knows besides: while the primary fails its probes, a link is silent from
/// a reading of [`SUSPECT_SILENT_AFTER_SECONDS`] or an offset that stood
/// still past a ping period, both of which only a primary that sent
/// nothing (frozen, or blocked by a command) shows.
pub fn link_status_with(info: &ReplicationInfo, evidence: LinkEvidence) -> LinkStatus {
    let silent_after = if evidence.primary_failing {
        SUSPECT_SILENT_AFTER_SECONDS
    } else {
        SILENT_AFTER_SECONDS
    };
    match &info.primary {
        None => LinkStatus::NotReplica,
        Some(link) if link.sync_in_progress => LinkStatus::Syncing,
        Some(link) if !link.link_up => LinkStatus::Down,
        Some(link) if link.last_io_seconds_ago.unwrap_or(0) >= silent_after => LinkStatus::Silent,
        Some(_) if evidence.primary_failing && evidence.stalled => LinkStatus::Silent,
        Some(_) => LinkStatus::Up,
    }
}

/// Events for one probe of `pod`. `ip_to_pod` resolves a replica's
/// primary address (host and port: by node port pods share a host) to a
/// pod name; `cap` bounds how many consecutive
/// failures are recorded.
pub fn observe_probe(
    state: &ClusterState,
    pod: &str,
    obs: &ProbeObservation<'_>,
    ip_to_pod: &BTreeMap<(String, u16), String>,
    cap: u32,
    want_offsets: bool,
    evidence: LinkEvidence,
) -> Vec<Event> {
    let mut out: Vec<Event> = observe_reachability(state, pod, reachability(obs), cap)
        .into_iter()
        .collect();
    let ProbeObservation::Answered(probe) = obs else {
        return out;
    };
    let info = &probe.info;
    let primary = info
        .primary
        .as_ref()
        .and_then(|link| ip_to_pod.get(&(link.host.clone(), link.port)).cloned());
    out.extend(observe_role(state, pod, journal_role(info.role), primary));
    out.extend(observe_replication(
        state,
        pod,
        info,
        want_offsets,
        evidence,
    ));
    out
}

/// `PodReachabilityObserved` when it moves what a decision reads: a
/// success when the pod was not already reachable; failures one by one
/// until `cap` in a row (more of the same change nothing).
pub fn observe_reachability(
    state: &ClusterState,
    pod: &str,
    reach: Reachability,
    cap: u32,
) -> Option<Event> {
    let known = state.pods.get(pod);
    let prev = known.and_then(|v| v.reachability);
    let failures = known.map_or(0, |v| v.consecutive_failures);
    let record = match reach {
        Reachability::Reachable => prev != Some(Reachability::Reachable),
        _ => prev != Some(reach) || failures < cap,
    };
    record.then(|| Event::PodReachabilityObserved {
        pod: pod.to_owned(),
        reachability: reach,
    })
}

/// The journal's reachability of a failed probe.
pub fn failure_reachability(err: &ProbeError) -> Reachability {
    reachability(&ProbeObservation::Failed(err))
}

/// `NodeRoleObserved` when the role or the primary followed changed.
pub fn observe_role(
    state: &ClusterState,
    pod: &str,
    role: Role,
    primary: Option<String>,
) -> Option<Event> {
    let primary = match role {
        Role::Replica => primary,
        Role::Primary | Role::Sentinel => None,
    };
    let same = state
        .pods
        .get(pod)
        .is_some_and(|v| v.role == Some(role) && v.replicates == primary);
    (!same).then(|| Event::NodeRoleObserved {
        pod: pod.to_owned(),
        role,
        primary,
    })
}

/// `ReplicationObserved` when the link or the history changed, or the
/// offset moved while a decision needs offsets (`want_offsets`).
pub fn observe_replication(
    state: &ClusterState,
    pod: &str,
    info: &ReplicationInfo,
    want_offsets: bool,
    evidence: LinkEvidence,
) -> Option<Event> {
    let known = state.pods.get(pod);
    let link = link_status_with(info, evidence);
    let replid = ReplId::from_hex(&info.replid).ok()?;
    let offset = info.master_repl_offset;
    let changed = known.is_none_or(|v| v.link != Some(link) || v.replid != Some(replid));
    let offset_moved = known.is_none_or(|v| v.offset != Some(offset));
    // An offset going back on one history is a restart, never noise.
    let went_back = known.is_some_and(|v| v.offset.is_some_and(|o| offset < o));
    (changed || went_back || (want_offsets && offset_moved)).then(|| Event::ReplicationObserved {
        pod: pod.to_owned(),
        link,
        offset,
        replid,
    })
}

#[cfg(test)]
mod link_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::replies::{PrimaryLink, Role as ServerRole};

    fn replica(last_io_seconds_ago: Option<u64>) -> ReplicationInfo {
        ReplicationInfo {
            role: ServerRole::Replica,
            replid: "0".repeat(40),
            replid2: "0".repeat(40),
            master_repl_offset: 10,
            primary: Some(PrimaryLink {
                host: "10.0.0.1".to_owned(),
                port: 6379,
                link_up: true,
                last_io_seconds_ago,
                sync_in_progress: false,
                replica_offset: 10,
            }),
            replicas: Vec::new(),
        }
    }

    #[test]
    fn one_late_ping_is_no_silence_two_missed_are() {
        assert_eq!(link_status(&replica(Some(0))), LinkStatus::Up);
        assert_eq!(link_status(&replica(None)), LinkStatus::Up);
        // A gap of just over a second across two second boundaries.
        assert_eq!(link_status(&replica(Some(2))), LinkStatus::Up);
        assert_eq!(link_status(&replica(Some(3))), LinkStatus::Silent);
    }

    #[test]
    fn while_the_primary_fails_a_missed_ping_or_a_stalled_offset_is_silence() {
        let failing = LinkEvidence {
            primary_failing: true,
            stalled: false,
        };
        assert_eq!(link_status_with(&replica(Some(1)), failing), LinkStatus::Up);
        assert_eq!(
            link_status_with(&replica(Some(2)), failing),
            LinkStatus::Silent
        );
        let stalled = LinkEvidence {
            primary_failing: true,
            stalled: true,
        };
        assert_eq!(
            link_status_with(&replica(Some(0)), stalled),
            LinkStatus::Silent
        );
        // A healthy primary's replica is never called silent on a stalled
        // offset or a reading of 2: an idle cluster shows both.
        let idle = LinkEvidence {
            primary_failing: false,
            stalled: true,
        };
        assert_eq!(link_status_with(&replica(Some(2)), idle), LinkStatus::Up);
    }
}
