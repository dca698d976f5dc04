//! Announcing, in a Sentinel cluster exposed outside Kubernetes: Sentinel
//! tells its clients the address it monitors the primary at, and promotes
//! a replica at the address the replica announces to its primary, so
//! both must be where clients outside reach the pods (see
//! [`crate::observe::addresses`]).
//!
//! - [`decide_announce`]: a data pod whose `replica-announce-*` differs
//!   from its endpoint (or, external access off, that still announces
//!   one) is told (`Announce`). Only pods whose announcement was ever
//!   journaled are considered, so a cluster never exposed decides
//!   nothing here; a pod whose endpoint is not known yet is left as it
//!   booted.
//! - [`decide_readdress`]: the Sentinels all name the believed primary,
//!   at another address than it is dialled at. While no Sentinel ever
//!   failed over (config epoch 0) each is pointed at the right address,
//!   one at a time. Once one has, a Sentinel told to monitor anew starts
//!   at epoch 0 and takes its peers' older address back from their
//!   hellos, so the address moves only as a failover moves it: the
//!   Sentinels are asked for a coordinated one (nothing acknowledged is
//!   lost), once every replica announces where it is reached.
//!
//! Both only while the Sentinels are quiet (no failover, nothing down).

use logbook_journal::{Intent, ReasonCode, SentinelMonitorReport};

use super::handover::ask_sentinel;
use super::view::{answering_sentinels, quiet, wanted_settings};
use crate::decide::Decision;
use crate::decide::external::{announce, judged};
use crate::decide::view::ClusterView;
use crate::observe::addresses::{
    monitor_target, parse_monitor_target, peer_address, wanted_replica_announcement,
};

/// `Announce` for every data pod announcing other than it should.
pub fn decide_announce(view: &ClusterView<'_>) -> Vec<Decision> {
    if !quiet(view) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (pod, v) in &view.state.pods {
        let Some(pod_ip) = v.ip.as_deref() else {
            continue;
        };
        let Some((announced, endpoint)) = judged(&view.state.external, pod) else {
            continue;
        };
        let wanted = wanted_replica_announcement(view.state, pod);
        if announced == wanted {
            continue;
        }
        let shown = if announced.is_empty() {
            "no address"
        } else {
            announced
        };
        let why = match endpoint {
            Some(e) => format!(
                "{pod} announces {shown} to its primary; Sentinel names it where clients outside reach it, at {}",
                e.address()
            ),
            None => format!("{pod} announces {shown}; external access is off"),
        };
        out.push(announce(pod, pod_ip, endpoint, announced, wanted, why));
    }
    out
}

/// Moves the Sentinels to the address the believed primary is dialled
/// at, when they all name it elsewhere (see the module).
pub fn decide_readdress(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    if !quiet(view) {
        return Vec::new();
    }
    let (Some(target), Some(wanted)) = (
        monitor_target(view.state, primary.name),
        peer_address(view.state, primary.name),
    ) else {
        return Vec::new();
    };
    let sentinels = answering_sentinels(view);
    let elsewhere: Vec<(&str, &SentinelMonitorReport)> = sentinels
        .iter()
        .filter_map(|(name, m)| Some((*name, (*m)?)))
        .filter(|(_, m)| (m.primary_ip.clone(), m.primary_port) != wanted)
        .collect();
    let Some((first, m)) = elsewhere.first() else {
        return Vec::new();
    };
    let named = format!("{}:{}", m.primary_ip, m.primary_port);
    let never_failed_over = sentinels
        .iter()
        .all(|(_, m)| m.is_none_or(|m| m.config_epoch == 0));
    if never_failed_over {
        return vec![Decision::new(
            Intent::SentinelMonitor {
                sentinel: (*first).to_owned(),
                primary: primary.name.to_owned(),
                ip: target.clone(),
                settings: wanted_settings(view),
            },
            ReasonCode::SentinelNotMonitoring,
            format!(
                "{first} monitors {} at {named}; it is dialled at {target}",
                primary.name
            ),
        )];
    }
    // The replica Sentinel promotes is named where it announces itself:
    // every one must announce where it is reached first.
    let unannounced = view.state.pods.keys().any(|pod| {
        pod != primary.name
            && view.state.external.announced.get(pod).map(String::as_str)
                != Some(wanted_replica_announcement(view.state, pod).as_str())
    });
    if unannounced || parse_monitor_target(&target).is_none() {
        return Vec::new();
    }
    ask_sentinel(
        view,
        None,
        ReasonCode::AnnouncedAddressStale {
            announced: named.clone(),
            wanted: target.clone(),
        },
        &format!(
            "the Sentinels name primary {} at {named}, where clients outside cannot reach it ({target}); a Sentinel monitoring anew would take its peers' address back, so only a failover moves it",
            primary.name
        ),
    )
}
