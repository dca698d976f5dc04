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

use logbook_journal::{Intent, ReasonCode, SentinelMonitorReport};

use super::view::{answering_sentinels, quiet, wanted_sentinels};
use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// The addresses in `m` that no current pod has.
fn stale(m: &SentinelMonitorReport) -> Vec<String> {
    m.replicas
        .iter()
        .chain(m.sentinels.iter())
        .filter(|k| k.pod.is_none())
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
        let gone = stale(m);
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
