//! What every Sentinel concern reads: the settings the spec wants, the
//! Sentinels that answer, whether they agree on the believed primary and
//! are quiet (no failover running, nothing seen down), and whether a
//! quorum of them can be reached. Pure.

use logbook_journal::projection::sentinel::SentinelPodView;
use logbook_journal::{PodPhase, Reachability, SentinelMonitorReport, SentinelSettings};

use crate::decide::view::ClusterView;

/// The settings the spec in force asks of every Sentinel.
pub fn wanted_settings(view: &ClusterView<'_>) -> SentinelSettings {
    let s = view.spec.effective_sentinel().unwrap_or_default();
    SentinelSettings {
        quorum: u32::try_from(s.effective_quorum()).unwrap_or(1),
        down_after_ms: u64::try_from(s.down_after_milliseconds).unwrap_or(5000),
        failover_timeout_ms: u64::try_from(s.failover_timeout_milliseconds).unwrap_or(60_000),
        parallel_syncs: u32::try_from(s.parallel_syncs).unwrap_or(1),
    }
}

/// The Sentinels the spec asks for.
pub fn wanted_sentinels(view: &ClusterView<'_>) -> u32 {
    view.spec
        .effective_sentinel()
        .map_or(0, |s| u32::try_from(s.replicas).unwrap_or(0))
}

/// A Sentinel pod that runs and answered its last probe.
pub fn answering(view: &SentinelPodView) -> bool {
    view.phase == Some(PodPhase::Running)
        && view.ip.is_some()
        && view.reachability == Some(Reachability::Reachable)
        && view.report.is_some()
}

/// The Sentinels that answer, with what they monitor (if anything).
pub fn answering_sentinels<'a>(
    view: &ClusterView<'a>,
) -> Vec<(&'a str, Option<&'a SentinelMonitorReport>)> {
    view.state
        .sentinel
        .pods
        .iter()
        .filter(|(_, v)| answering(v))
        .map(|(name, v)| {
            (
                name.as_str(),
                v.report.as_ref().and_then(|r| r.monitoring.as_ref()),
            )
        })
        .collect()
}

/// Whether any answering Sentinel monitors a primary (then the Sentinels,
/// not a bootstrap, say who it is).
pub fn anyone_monitors(view: &ClusterView<'_>) -> bool {
    answering_sentinels(view)
        .iter()
        .any(|(_, m)| m.is_some_and(|m| m.primary_pod.is_some()))
}

/// The answering Sentinels that name the believed primary.
pub fn agreeing(view: &ClusterView<'_>) -> Vec<String> {
    let Some(primary) = view.primary() else {
        return Vec::new();
    };
    answering_sentinels(view)
        .into_iter()
        .filter(|(_, m)| m.is_some_and(|m| m.primary_pod.as_deref() == Some(primary)))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Sentinels needed to act: the quorum to see a failure, and a majority
/// of all Sentinels to elect a leader, whichever is more.
pub fn needed(view: &ClusterView<'_>) -> u32 {
    let all = wanted_sentinels(view);
    wanted_settings(view).quorum.max(all / 2 + 1)
}

/// Whether enough Sentinels agree on the believed primary to fail it over
/// (the condition a planned hand-over or a roll needs).
pub fn quorum_reachable(view: &ClusterView<'_>) -> bool {
    u32::try_from(agreeing(view).len()).unwrap_or(0) >= needed(view)
}

/// Whether the Sentinels leave the roles to the operator now: the
/// believed primary answers as primary, every answering Sentinel that
/// monitors names it, and none sees it down or runs a failover.
pub fn quiet(view: &ClusterView<'_>) -> bool {
    let Some(primary) = view.healthy_primary() else {
        return false;
    };
    answering_sentinels(view).iter().all(|(_, m)| match m {
        None => true,
        Some(m) => !m.busy() && m.primary_pod.as_deref() == Some(primary.name),
    })
}

/// The answering Sentinels that monitor a primary but have not yet found
/// every live replica (in the primary's `INFO`, every 10 s) or every other
/// Sentinel (on the hello channel, every 2 s), each said in one line.
/// Until then a Sentinel asked to fail over answers `NOGOODSLAVE`, and
/// one that lost the primary could not replace it.
pub fn undiscovered(view: &ClusterView<'_>) -> Vec<String> {
    let replicas = usize::try_from(view.desired_pods())
        .unwrap_or(0)
        .saturating_sub(1);
    let others = usize::try_from(wanted_sentinels(view))
        .unwrap_or(0)
        .saturating_sub(1);
    answering_sentinels(view)
        .into_iter()
        .filter_map(|(pod, m)| {
            let m = m?;
            let known = m.replicas.iter().filter(|k| k.pod.is_some()).count();
            let peers = m.sentinels.iter().filter(|k| k.pod.is_some()).count();
            (known < replicas || peers < others).then(|| {
                format!(
                    "{pod} knows {known} of {replicas} replicas and {peers} of {others} other Sentinels"
                )
            })
        })
        .collect()
}

/// Whether every answering Sentinel monitors a primary and has found the
/// live replicas and the other Sentinels ([`undiscovered`]).
pub fn discovered(view: &ClusterView<'_>) -> bool {
    answering_sentinels(view).iter().all(|(_, m)| m.is_some()) && undiscovered(view).is_empty()
}
