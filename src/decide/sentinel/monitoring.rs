//! Monitoring: every answering Sentinel monitors the believed primary
//! with the spec's settings.
//!
//! A Sentinel that monitors nothing (new, replaced, or restarted without
//! its state) or an address no pod has any more is pointed at the
//! believed primary; one whose settings differ from the spec's gets them.
//! A Sentinel that names another live pod is left alone: Sentinels settle
//! that among themselves by epoch, and re-pointing it could undo a
//! failover the operator has not seen yet.

use logbook_journal::{Intent, ReasonCode};

use super::view::{answering_sentinels, quiet, quorum_reachable, wanted_settings};
use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// `SentinelMonitor` or `SentinelConfigure` for the Sentinels that need it.
pub fn decide_monitoring(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    let Some(ip) = primary.view.ip.clone() else {
        return Vec::new();
    };
    let settings = wanted_settings(view);
    let settled = quorum_reachable(view)
        && answering_sentinels(view)
            .iter()
            .all(|(_, m)| m.is_none_or(|m| m.failover_state.is_none()));
    let mut out = Vec::new();
    for (sentinel, monitoring) in answering_sentinels(view) {
        match monitoring {
            Some(m) if m.primary_pod.is_some() => {
                if m.settings != settings && quiet(view) {
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
            }
            other => {
                let now = match other {
                    // A Sentinel naming an address that no pod has may be
                    // one that missed a switch, or one in the middle of a
                    // failover away from a deleted pod: it is re-pointed
                    // only while no Sentinel fails over and a quorum of
                    // the others names the believed primary.
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
        }
    }
    out
}
