//! Sentinel: the Sentinel pods as the API shows them, what each Sentinel
//! reports, what they publish, and the switch of primary they made.
//!
//! Pure, like every observer: the shell probes and subscribes, these
//! functions say which events the answers make, only where they differ
//! from the projection. The switch is found here, not decided: Sentinel
//! is the authority on failover in this topology, and the operator only
//! records what it did with everything it knew at the time.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use logbook_journal::{
    ClusterState, Event, LinkStatus, Reachability, Role, SentinelKnown, SentinelMonitorReport,
    SentinelReport, SentinelSettings, SentinelSwitch, SwitchCandidate,
};

use super::addresses::pods_by_address;
use super::pods::{PodBasics, pod_basics};
use crate::replies::{ProbeError, SentinelPeer, SentinelProbe, SentinelReplica};

/// The flags worth journaling (the others, like `master` or `slave`, say
/// nothing a report does not).
const NOTABLE_FLAGS: [&str; 7] = [
    "s_down",
    "o_down",
    "disconnected",
    "promoted",
    "failover_in_progress",
    "coordinated_failover",
    "force_failover",
];

/// The published events journaled: the steps of a failover and what
/// leads to one. Discovery (`+slave`, `+sentinel`) and the hello channel
/// are left out: they repeat and change no explanation.
const JOURNALED_EVENTS: [&str; 22] = [
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+new-epoch",
    "+try-failover",
    "+vote-for-leader",
    "+elected-leader",
    "+failover-state-select-slave",
    "+selected-slave",
    "+failover-state-send-slaveof-noone",
    "+failover-state-wait-promotion",
    "+promoted-slave",
    "+failover-state-reconf-slaves",
    "+failover-end-for-timeout",
    "+failover-end",
    "+switch-master",
    "+convert-to-slave",
    "+fix-slave-config",
    "+tilt",
    "-tilt",
    "+reset-master",
];

/// Events for the cluster's Sentinel pods (`pods`: every pod the Sentinel
/// selector lists): observed where they differ, deleted where gone.
pub fn observe_sentinel_pods(state: &ClusterState, pods: &[Pod]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for pod in pods {
        let Some(PodBasics {
            name,
            uid,
            ip,
            phase,
            ready,
        }) = pod_basics(pod)
        else {
            continue;
        };
        seen.insert(name.clone());
        let known = state.sentinel.pods.get(&name);
        let same = known.is_some_and(|v| {
            v.uid.as_deref() == Some(uid.as_str())
                && v.ip == ip
                && v.phase == Some(phase)
                && v.ready == ready
        });
        if !same {
            out.push(Event::SentinelPodObserved {
                pod: name,
                uid,
                ip,
                phase,
                ready,
            });
        }
    }
    for name in state.sentinel.pods.keys() {
        if !seen.contains(name) {
            out.push(Event::SentinelPodDeleted { pod: name.clone() });
        }
    }
    out
}

fn notable(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| NOTABLE_FLAGS.contains(&f.as_str()))
        .cloned()
        .collect()
}

/// Sentinel pods by IP.
fn sentinel_addresses(state: &ClusterState) -> BTreeMap<&str, &str> {
    state
        .sentinel
        .pods
        .iter()
        .filter_map(|(name, v)| v.ip.as_deref().map(|ip| (ip, name.as_str())))
        .collect()
}

/// The report a Sentinel's answers make, its addresses resolved to pods.
pub fn sentinel_report(state: &ClusterState, probe: &SentinelProbe) -> SentinelReport {
    let sentinels = sentinel_addresses(state);
    // Data pods by host and port: by node port, pods share a host.
    let by_address = pods_by_address(state);
    let data = |ip: &str, port: u16| by_address.get(&(ip.to_owned(), port)).cloned();
    let monitoring = probe.primary.as_ref().map(|p| {
        let mut replicas: Vec<SentinelKnown> = probe
            .replicas
            .iter()
            .map(|r: &SentinelReplica| SentinelKnown {
                ip: r.ip.clone(),
                port: r.port,
                pod: data(&r.ip, r.port),
                run_id: None,
                flags: notable(&r.flags),
            })
            .collect();
        replicas.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
        let mut peers: Vec<SentinelKnown> = probe
            .sentinels
            .iter()
            .map(|s: &SentinelPeer| SentinelKnown {
                ip: s.ip.clone(),
                port: s.port,
                pod: sentinels.get(s.ip.as_str()).map(|p| (*p).to_owned()),
                run_id: Some(s.run_id.clone()),
                flags: notable(&s.flags),
            })
            .collect();
        peers.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
        SentinelMonitorReport {
            primary_ip: p.ip.clone(),
            primary_port: p.port,
            primary_pod: data(&p.ip, p.port),
            config_epoch: p.config_epoch,
            flags: notable(&p.flags),
            failover_state: p.failover_state.clone(),
            settings: SentinelSettings {
                quorum: p.quorum,
                down_after_ms: p.down_after_ms,
                failover_timeout_ms: p.failover_timeout_ms,
                parallel_syncs: p.parallel_syncs,
            },
            replicas,
            sentinels: peers,
        }
    });
    SentinelReport {
        myid: probe.myid.clone(),
        monitoring,
    }
}

/// The reachability a failed probe shows.
pub fn failed_reachability(err: &ProbeError) -> Reachability {
    if err.is_death() {
        Reachability::Refused
    } else if err.is_slowness() {
        Reachability::TimedOut
    } else {
        Reachability::ProtocolError
    }
}

/// `SentinelObserved` for the Sentinel in `pod`, when its answer (or its
/// failure) differs from what the projection holds, and
/// `SentinelTimingObserved` when the `INFO` period it gave does.
pub fn observe_sentinel_probe(
    state: &ClusterState,
    pod: &str,
    outcome: Option<&Result<SentinelProbe, ProbeError>>,
) -> Vec<Event> {
    let (reachability, report) = match outcome {
        None => (Reachability::NoAddress, None),
        Some(Ok(probe)) => (Reachability::Reachable, Some(sentinel_report(state, probe))),
        Some(Err(err)) => (failed_reachability(err), None),
    };
    let Some(known) = state.sentinel.pods.get(pod) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if known.reachability != Some(reachability) || known.report != report {
        out.push(Event::SentinelObserved {
            pod: pod.to_owned(),
            reachability,
            report,
        });
    }
    let period = outcome.and_then(|o| o.as_ref().ok()?.info_period_ms);
    if let Some(period) = period
        && state.sentinel_info_periods.get(pod) != Some(&period)
    {
        out.push(Event::SentinelTimingObserved {
            pod: pod.to_owned(),
            info_period_ms: period,
        });
    }
    out
}

/// `SentinelEventObserved` for a published event worth journaling.
pub fn observe_sentinel_event(pod: &str, channel: &str, payload: &str) -> Option<Event> {
    JOURNALED_EVENTS
        .contains(&channel)
        .then(|| Event::SentinelEventObserved {
            pod: pod.to_owned(),
            channel: channel.to_owned(),
            payload: payload.to_owned(),
        })
}

/// The primary the Sentinels name, with its epoch and who names it: the
/// highest configuration epoch reported by a Sentinel that answers wins
/// (as among Sentinels themselves), ties going to the pod named most.
pub fn sentinels_primary(state: &ClusterState) -> Option<(String, String, u64, Vec<String>)> {
    let mut named: BTreeMap<(u64, &str, &str), Vec<String>> = BTreeMap::new();
    for (sentinel, view) in &state.sentinel.pods {
        if view.reachability != Some(Reachability::Reachable) {
            continue;
        }
        let Some(m) = view.report.as_ref().and_then(|r| r.monitoring.as_ref()) else {
            continue;
        };
        let Some(pod) = m.primary_pod.as_deref() else {
            continue;
        };
        named
            .entry((m.config_epoch, pod, m.primary_ip.as_str()))
            .or_default()
            .push(sentinel.clone());
    }
    named
        .into_iter()
        .max_by(|(a, av), (b, bv)| a.0.cmp(&b.0).then(av.len().cmp(&bv.len())))
        .map(|((epoch, pod, ip), by)| (pod.to_owned(), ip.to_owned(), epoch, by))
}

/// `SentinelSwitchObserved` when the Sentinels name another primary than
/// the journal believes, at a newer epoch than the believed primary's (or
/// none of them names the believed one any more), never at config epoch 0.
///
/// A switch is recorded once at least one Sentinel has switched its own
/// configuration (`+switch-master`); the others follow through gossip.
/// The leader and its voters come from the events watched in that epoch;
/// none watched means the switch happened while the operator was not
/// looking, and it is marked as found after the fact.
pub fn observe_sentinel_switch(state: &ClusterState) -> Option<Event> {
    let part = &state.sentinel;
    if !part.enabled {
        return None;
    }
    let believed = state.replication.primary.as_deref()?;
    let (to, to_ip, epoch, reported_by) = sentinels_primary(state)?;
    // At config epoch 0 no Sentinel failed anything over: they name what
    // they were configured with (a boot config older than the last
    // switch, read by Sentinels that lost their state), which
    // `decide_monitoring` points at the believed primary.
    if to == believed || epoch == 0 {
        return None;
    }
    // A newer epoch than the believed primary's; or, when the Sentinels
    // were replaced and count epochs afresh, none of them naming the
    // believed primary any more.
    let someone_names_believed = state.sentinel.pods.values().any(|v| {
        v.reachability == Some(Reachability::Reachable)
            && v.report
                .as_ref()
                .and_then(|r| r.monitoring.as_ref())
                .is_some_and(|m| m.primary_pod.as_deref() == Some(believed))
    });
    if epoch <= part.primary_epoch && someone_names_believed {
        return None;
    }
    let leader = part.leaders.get(&epoch).cloned();
    let voters = leader
        .as_deref()
        .and_then(|l| part.pods.get(l))
        .and_then(|v| v.report.as_ref())
        .map(|r| part.voters(epoch, &r.myid))
        .unwrap_or_default();
    let candidates = state
        .pods
        .iter()
        .filter(|(name, _)| name.as_str() != believed)
        .map(|(name, v)| SwitchCandidate {
            pod: name.clone(),
            offset: v.offset,
            reachable: v.reachability == Some(Reachability::Reachable),
            in_sync: v.role == Some(Role::Replica)
                && v.replicates.as_deref() == Some(believed)
                && v.link == Some(LinkStatus::Up),
        })
        .collect();
    Some(Event::SentinelSwitchObserved {
        switch: SentinelSwitch {
            from: Some(believed.to_owned()),
            to,
            to_ip,
            epoch,
            leader,
            voters,
            candidates,
            reported_by,
            after_the_fact: !part.watched(epoch),
        },
    })
}

#[cfg(test)]
#[path = "sentinel_tests.rs"]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;
