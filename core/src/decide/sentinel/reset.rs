//! Reset: a Sentinel's tables keep every replica and Sentinel it ever
//! saw, so a replaced pod (a new address) leaves a stale entry that
//! counts against its view (a dead "replica" it may try to reconfigure,
//! a dead "Sentinel" in the majority it needs). `SENTINEL RESET` makes it
//! forget them and rediscover the live ones.
//!
//! One Sentinel at a time, and only while every other answering Sentinel
//! knows all the others, so that the reset one is re-learnt by gossip
//! before the next is reset (the order Sentinel's documentation asks
//! for); never while a failover runs.

use logbook_journal::{Intent, ReasonCode, SentinelKnown, SentinelMonitorReport};

use super::view::{answering_sentinels, quiet, wanted_sentinels};
use crate::decide::Decision;
use crate::decide::view::ClusterView;
use crate::observe::addresses::observed_replica_announcement;

/// The addresses in `m` that no current pod has, and the replicas it
/// lists at another address than their pod announces (one exposed
/// outside Kubernetes, or no longer: see `decide/sentinel/announce.rs`).
fn stale(view: &ClusterView<'_>, m: &SentinelMonitorReport) -> Vec<String> {
    let moved = |k: &SentinelKnown| {
        let Some(pod) = k.pod.as_deref() else {
            return false;
        };
        let Some(announced) = view.state.external.announced.get(pod) else {
            return false;
        };
        let at = observed_replica_announcement(&k.ip, k.port);
        if announced.is_empty() {
            let own = view.state.pods.get(pod).and_then(|v| v.ip.as_deref());
            own.is_some_and(|ip| at != observed_replica_announcement(ip, 0))
        } else {
            at != *announced
        }
    };
    m.replicas
        .iter()
        .filter(|k| moved(k))
        .chain(
            m.replicas
                .iter()
                .chain(m.sentinels.iter())
                .filter(|k| k.pod.is_none()),
        )
        .map(|k| format!("{}:{}", k.ip, k.port))
        .collect()
}

/// `SentinelReset` of the first Sentinel holding stale entries.
pub fn decide_reset(view: &ClusterView<'_>) -> Vec<Decision> {
    if !quiet(view) {
        return Vec::new();
    }
    let sentinels = answering_sentinels(view);
    let others = wanted_sentinels(view).saturating_sub(1) as usize;
    for (sentinel, monitoring) in &sentinels {
        let Some(m) = monitoring else { continue };
        let gone = stale(view, m);
        if gone.is_empty() {
            continue;
        }
        // Everyone else must know every other live Sentinel first.
        let settled = sentinels
            .iter()
            .filter(|(s, _)| s != sentinel)
            .all(|(_, o)| {
                o.is_some_and(|o| o.sentinels.iter().filter(|k| k.pod.is_some()).count() >= others)
            });
        if !settled {
            return Vec::new();
        }
        return vec![Decision::new(
            Intent::SentinelReset {
                sentinel: (*sentinel).to_owned(),
            },
            ReasonCode::SentinelStaleEntries {
                stale: gone.clone(),
            },
            format!("{sentinel} still lists {} that no pod has", gone.join(", ")),
        )];
    }
    Vec::new()
}
