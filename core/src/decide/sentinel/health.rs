//! What the status says of the Sentinels: how many answer, how many name
//! the believed primary, whether a quorum of them can fail it over, and
//! which disagree. Pure.

use logbook_crds::v1alpha1::SentinelStatus;

use super::view::{
    agreeing, answering_sentinels, needed, quorum_reachable, undiscovered, wanted_sentinels,
    wanted_settings,
};
use crate::decide::view::ClusterView;

/// The Sentinel part of the status.
#[derive(Debug, Clone)]
pub struct SentinelHealth {
    /// `status.sentinel`.
    pub status: SentinelStatus,
    /// Every Sentinel the spec asks for answers, names the primary and
    /// applies the spec's settings.
    pub settled: bool,
    /// The `SentinelQuorum` condition's reason.
    pub reason: &'static str,
    /// Its message.
    pub message: String,
}

/// The condition reason when too few Sentinels agree to fail over.
pub const REASON_QUORUM_UNREACHABLE: &str = "QuorumUnreachable";

/// The Sentinels' health for the cluster `name` in `namespace`.
pub fn sentinel_health(view: &ClusterView<'_>, name: &str, namespace: &str) -> SentinelHealth {
    let sentinels = answering_sentinels(view);
    let agree = agreeing(view);
    let wanted = wanted_sentinels(view);
    let need = needed(view);
    let settings = wanted_settings(view);
    let primary = view.primary().unwrap_or("none");
    let mut disagreements = Vec::new();
    for (pod, m) in &sentinels {
        match m {
            None => disagreements.push(format!("{pod} monitors no primary")),
            Some(m) if m.primary_pod.as_deref() != view.primary() => disagreements.push(format!(
                "{pod} names {} ({}) at epoch {}",
                m.primary_pod.as_deref().unwrap_or("no pod"),
                m.primary_ip,
                m.config_epoch
            )),
            Some(m) if m.busy() => disagreements.push(format!(
                "{pod} sees {primary} {}{}",
                m.flags.join(","),
                m.failover_state
                    .as_deref()
                    .map(|s| format!(", failover {s}"))
                    .unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    let silent: Vec<&str> = view
        .state
        .sentinel
        .pods
        .iter()
        .filter(|(pod, _)| !sentinels.iter().any(|(p, _)| p == pod))
        .map(|(pod, _)| pod.as_str())
        .collect();
    let reachable = quorum_reachable(view);
    let settings_ok = sentinels
        .iter()
        .all(|(_, m)| m.is_some_and(|m| m.settings == settings));
    // A Sentinel can fail the primary over only once it has found the
    // replicas and the other Sentinels: until then a lost primary would be
    // seen down and not replaced.
    disagreements.extend(undiscovered(view));
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let settled = reachable
        && u32::try_from(agree.len()).unwrap_or(0) >= wanted
        && disagreements.is_empty()
        && settings_ok;
    let mut message = format!(
        "{}/{wanted} Sentinels answer, {} name primary {primary}; {need} needed to fail it over",
        sentinels.len(),
        agree.len()
    );
    if !silent.is_empty() {
        message.push_str(&format!("; not answering: {}", silent.join(", ")));
    }
    if !disagreements.is_empty() {
        message.push_str(&format!("; {}", disagreements.join("; ")));
    }
    if !reachable {
        message.push_str(
            "; planned hand-overs and rolls of the primary wait until enough Sentinels agree",
        );
    }
    SentinelHealth {
        status: SentinelStatus {
            master_name: crate::names::sentinel_master_name(name),
            service: format!(
                "{}.{namespace}.svc:{}",
                crate::names::sentinel_service_name(name),
                crate::names::SENTINEL_PORT
            ),
            replicas: i32::try_from(wanted).unwrap_or(i32::MAX),
            answering: count(sentinels.len()),
            agreeing: count(agree.len()),
            needed: i32::try_from(need).unwrap_or(i32::MAX),
            quorum_reachable: reachable,
            epoch: i64::try_from(view.state.sentinel.primary_epoch).unwrap_or(i64::MAX),
            disagreements,
            switches: i64::try_from(view.state.sentinel.switches).unwrap_or(i64::MAX),
        },
        settled,
        reason: if reachable {
            "QuorumReachable"
        } else {
            REASON_QUORUM_UNREACHABLE
        },
        message,
    }
}
