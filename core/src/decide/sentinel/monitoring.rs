//! Monitoring: every answering Sentinel monitors the believed primary
//! with the spec's settings.
//!
//! A Sentinel that monitors nothing (new, replaced, or restarted without
//! its state) or an address no pod has any more is pointed at the
//! believed primary; one whose settings differ from the spec's gets them.
//! A Sentinel that names another live pod is left alone: Sentinels settle
//! that among themselves by epoch, and re-pointing it could undo a
//! failover the operator has not seen yet. Except one that names, as it
//! was configured, a pod that is a replica and sees it down (see
//! `booted_naming_a_replica`): no epoch ever moves it.
//!
//! Every answering Sentinel asks the data nodes for `INFO` every
//! [`SENTINEL_INFO_PERIOD_MS`] rather than its default 10 s: it sees the
//! replica it promoted only in such a reply, and at 1 s the reply after a
//! promotion comes half a second sooner on average (the constant says
//! why). A Sentinel that did not report its period is left alone.

use logbook_crds::Topology;
use logbook_journal::{
    HIBERNATE_DOWN_AFTER_MS, Intent, ReasonCode, Role, SENTINEL_INFO_PERIOD_MS,
    SentinelMonitorReport, SentinelSettings,
};

use super::view::{
    answering, answering_sentinels, quiet, quorum_reachable, wanted_sentinels, wanted_settings,
};
use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// `SentinelMonitor` or `SentinelConfigure` for the Sentinels that need it.
pub fn decide_monitoring(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    // Where its peers and the Sentinels dial it (its external endpoint
    // in a cluster exposed outside: see `observe::addresses`).
    let Some(ip) = crate::observe::addresses::monitor_target(view.state, primary.name) else {
        return Vec::new();
    };
    let settings = wanted_settings(view);
    let settled = quorum_reachable(view)
        && answering_sentinels(view)
            .iter()
            .all(|(_, m)| m.is_none_or(|m| m.failover_state.is_none()));
    let mut out = Vec::new();
    for (sentinel, monitoring) in answering_sentinels(view) {
        let now = match monitoring {
            Some(m) if booted_naming_a_replica(view, m, primary.name) => format!(
                "names {}, a replica, as it was configured (config epoch 0: it failed nothing over) and sees it down",
                m.primary_pod.as_deref().unwrap_or("?")
            ),
            Some(m) if m.primary_pod.is_some() => {
                // Asked to hibernate, the Sentinels hold their failovers
                // (`hold_failovers`) until they stop or the ask is undone.
                if m.settings != settings && quiet(view) && !view.spec.hibernated {
                    out.push(Decision::new(
                        Intent::SentinelConfigure {
                            sentinel: sentinel.to_owned(),
                            settings,
                        },
                        ReasonCode::SentinelSettingsDrift,
                        format!(
                            "{sentinel} applies quorum {}, down-after {} ms, failover-timeout {} ms, parallel-syncs {}; the spec asks quorum {}, {} ms, {} ms, {}",
                            m.settings.quorum,
                            m.settings.down_after_ms,
                            m.settings.failover_timeout_ms,
                            m.settings.parallel_syncs,
                            settings.quorum,
                            settings.down_after_ms,
                            settings.failover_timeout_ms,
                            settings.parallel_syncs
                        ),
                    ));
                }
                continue;
            }
            // A Sentinel naming an address that no pod has may be one that
            // missed a switch, or one in the middle of a failover away
            // from a deleted pod: it is re-pointed only while no Sentinel
            // fails over and a quorum of the others names the believed
            // primary.
            Some(m) if m.busy() || !settled => continue,
            Some(m) => format!("monitors {}, which no pod has", m.primary_ip),
            None => "monitors no primary".to_owned(),
        };
        out.push(Decision::new(
            Intent::SentinelMonitor {
                sentinel: sentinel.to_owned(),
                primary: primary.name.to_owned(),
                ip: ip.clone(),
                settings,
            },
            ReasonCode::SentinelNotMonitoring,
            format!("{sentinel} {now}; the primary is {} ({ip})", primary.name),
        ));
    }
    out
}

/// Whether a Sentinel names, as it was configured, a pod that is a
/// replica, and sees it down: at config epoch 0 it failed nothing over
/// (its boot config was older than the last switch, and it lost its
/// state, as at a wake), it is not trying to fail over now, and the pod
/// it names is not `primary` but reports itself a replica. It cannot
/// fail that pod over (the pod has no replica to give it) and no
/// Sentinel gossip moves it at epoch 0: left alone, no pod takes writes
/// through it. Re-pointing it undoes no failover; a Sentinel that did
/// fail over tells it its newer epoch, which wins.
fn booted_naming_a_replica(
    view: &ClusterView<'_>,
    m: &logbook_journal::SentinelMonitorReport,
    primary: &str,
) -> bool {
    let Some(named) = m.primary_pod.as_deref() else {
        return false;
    };
    named != primary
        && m.config_epoch == 0
        && m.failover_state.is_none()
        && m.flags.iter().any(|f| f == "s_down")
        && view
            .pod(named)
            .is_some_and(|p| p.view.role == Some(Role::Replica))
}

/// `SentinelTune` for each answering Sentinel that reports another `INFO`
/// period than [`SENTINEL_INFO_PERIOD_MS`] (a restarted one is back at its
/// default: the period is not in its configuration file).
pub fn decide_info_period(view: &ClusterView<'_>) -> Vec<Decision> {
    view.state
        .sentinel
        .pods
        .iter()
        .filter(|(_, v)| answering(v))
        .filter_map(|(sentinel, _)| {
            let reported = *view.state.sentinel_info_periods.get(sentinel)?;
            (reported != SENTINEL_INFO_PERIOD_MS).then(|| {
                Decision::new(
                    Intent::SentinelTune {
                        sentinel: sentinel.clone(),
                        info_period_ms: SENTINEL_INFO_PERIOD_MS,
                    },
                    ReasonCode::SentinelInfoPeriod {
                        reported_ms: reported,
                    },
                    format!(
                        "{sentinel} asks the data nodes for INFO every {reported} ms; at {SENTINEL_INFO_PERIOD_MS} ms it sees a replica it promoted sooner"
                    ),
                )
            })
        })
        .collect()
}

/// Before a hibernation pauses the primary's writes, every answering
/// Sentinel that monitors it with a down-after shorter than
/// [`HIBERNATE_DOWN_AFTER_MS`] is given that one (`SentinelConfigure`,
/// the reason `Hibernate`): a Sentinel takes a paused primary for down
/// and, with a quorum, would fail it over while its data is made
/// durable. `None` once the Sentinels that could still see it down are
/// fewer than the quorum (the persist may start); `Some` with the
/// decisions otherwise, none while those that could are not answering
/// (the status says which, [`unheld`]).
pub fn hold_failovers(view: &ClusterView<'_>) -> Option<Vec<Decision>> {
    let (configure, missing) = unheld(view);
    if missing.is_empty() {
        return None;
    }
    let settings = SentinelSettings {
        down_after_ms: HIBERNATE_DOWN_AFTER_MS,
        ..wanted_settings(view)
    };
    Some(
        configure
            .into_iter()
            .map(|(sentinel, from)| {
                let detail = format!(
                    "{sentinel} holds its failovers while writes are paused for hibernation: down-after {from} ms raised to {HIBERNATE_DOWN_AFTER_MS} ms (longer than the pause can last), so that it does not take the paused primary for down"
                );
                Decision::new(
                    Intent::SentinelConfigure { sentinel, settings },
                    ReasonCode::Hibernate,
                    detail,
                )
            })
            .collect(),
    )
}

/// The Sentinels that could fail a paused primary over, when they reach
/// the quorum: those to give [`HIBERNATE_DOWN_AFTER_MS`] (answering and
/// monitoring a pod, with their down-after), and a line for each of them
/// all (both empty otherwise, and for any topology but Sentinel). One
/// that monitors nothing fails nothing over; one that does not answer may.
pub fn unheld(view: &ClusterView<'_>) -> (Vec<(String, u64)>, Vec<String>) {
    if view.topology() != Topology::Sentinel {
        return (Vec::new(), Vec::new());
    }
    let answering = answering_sentinels(view);
    let short: Vec<(&str, &SentinelMonitorReport)> = answering
        .iter()
        .filter_map(|(name, m)| {
            Some((
                *name,
                m.filter(|m| m.settings.down_after_ms < HIBERNATE_DOWN_AFTER_MS)?,
            ))
        })
        .collect();
    let held = answering.len().saturating_sub(short.len());
    let quorum = wanted_settings(view).quorum;
    let unheld = wanted_sentinels(view).saturating_sub(u32::try_from(held).unwrap_or(u32::MAX));
    if unheld < quorum {
        return (Vec::new(), Vec::new());
    }
    let mut configure = Vec::new();
    let mut missing = Vec::new();
    for (name, m) in short {
        let ms = m.settings.down_after_ms;
        if m.primary_pod.is_some() {
            configure.push((name.to_owned(), ms));
            missing.push(format!("{name} fails a primary over after {ms} ms down"));
        } else {
            missing.push(format!(
                "{name} monitors {}, which no pod has",
                m.primary_ip
            ));
        }
    }
    let silent =
        wanted_sentinels(view).saturating_sub(u32::try_from(answering.len()).unwrap_or(u32::MAX));
    if silent > 0 {
        missing.push(format!("{silent} Sentinel(s) not answering"));
    }
    (configure, missing)
}
