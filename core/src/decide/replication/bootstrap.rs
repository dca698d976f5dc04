//! Replication bootstrap: with no primary, one is chosen by a decision —
//! the pod with the most data (highest offset), ties to the lowest ordinal,
//! so an empty cluster starts on pod 0. Every data pod boots fenced (a
//! read-only replica of nowhere), so nothing is primary until this says so.

use logbook_crds::Topology;
use logbook_journal::{Intent, PodPhase, ReasonCode, Role};

use super::roles::after_new_primary;
use crate::decide::Decision;
use crate::decide::view::{ClusterView, best, describe};

/// Chooses the first primary, or a new one after the believed primary
/// came back as a fenced replica (it restarted in place).
pub fn decide_bootstrap(view: &ClusterView<'_>) -> Vec<Decision> {
    if view.primary().is_some() || view.topology() == Topology::Standalone {
        // Standalone boots as a primary: it has no replica to mislead.
        return Vec::new();
    }
    let pods = view.pods();
    if pods.is_empty() {
        return Vec::new();
    }
    // Wait for every running pod to answer so the choice sees all the data;
    // pods not running yet, or being deleted, do not hold it up.
    let waiting = pods.iter().any(|p| {
        !p.view.terminating
            && p.view.phase == Some(PodPhase::Running)
            && (!p.usable() || p.view.role.is_none())
    });
    if waiting {
        return Vec::new();
    }
    let candidates = view.rank_candidates(None, false);
    // A restore: the pod of ordinal 0 loaded the backup, and only it may
    // become the first primary (any other would be empty, and pod 0 would
    // then copy its emptiness).
    if view.state.backups.restore.pending().is_some()
        && view.state.replication.boot_primary.is_none()
    {
        let Some(holder) = pods.iter().find(|p| p.ordinal() == 0) else {
            return Vec::new();
        };
        if !holder.usable() || view.state.replication.primary.is_some() {
            return Vec::new();
        }
        let chosen = holder.name.to_owned();
        let code = ReasonCode::Bootstrap {
            candidates: candidates.clone(),
        };
        let detail = format!(
            "restoring: {chosen} loaded the backup; it is the first primary; candidates: {}",
            describe(&candidates)
        );
        let mut out = vec![Decision::new(
            Intent::PromoteReplica {
                pod: chosen.clone(),
                from: None,
            },
            code.clone(),
            detail.clone(),
        )];
        out.extend(after_new_primary(view, &chosen, &code, &detail));
        return out;
    }
    // A pod observed serving as primary (the projection lost track of it:
    // a promotion whose record was lost with an operator, probes that saw
    // the old primary demoted before the new one promoted) is adopted, never
    // joined by a second primary. Promoting it again is a no-op on the
    // server that journals what it is; with several, the one with the most
    // data is kept and the others are repointed to it.
    let serving: Vec<&str> = pods
        .iter()
        .filter(|p| !p.view.terminating && p.usable() && p.view.role == Some(Role::Primary))
        .map(|p| p.name)
        .collect();
    if let Some(adopted) = candidates
        .iter()
        .find(|c| serving.contains(&c.pod.as_str()))
        .map(|c| c.pod.clone())
    {
        let code = ReasonCode::Bootstrap {
            candidates: candidates.clone(),
        };
        let detail = format!(
            "no primary believed, but {adopted} is observed serving as primary; adopting it; candidates: {}",
            describe(&candidates)
        );
        let mut out = vec![Decision::new(
            Intent::PromoteReplica {
                pod: adopted.clone(),
                from: None,
            },
            code.clone(),
            detail.clone(),
        )];
        out.extend(after_new_primary(view, &adopted, &code, &detail));
        return out;
    }
    let previous = view
        .state
        .replication
        .boot_primary
        .as_ref()
        .and_then(|(pod, _)| pod.clone());
    // The primary that was lost (restarted in place, or its pod recreated)
    // comes back as a replica whatever data it has: it is chosen again only
    // when no other pod can be. Without this, a recreated primary pod that
    // reloaded a snapshot as recent as its replicas' data would win the tie
    // on its lower ordinal and be "failed over" to itself.
    let Some(chosen) = candidates
        .iter()
        .find(|c| c.eligible && Some(&c.pod) != previous.as_ref())
        .or_else(|| best(&candidates))
    else {
        return Vec::new();
    };
    let chosen = chosen.pod.clone();
    if previous.is_some() && !view.spec.failover.automatic {
        // Replacing a lost primary is a failover, which the spec turned off.
        return Vec::new();
    }
    let (code, detail) = match &previous {
        Some(old) => (
            ReasonCode::PrimaryFailed {
                death: true,
                consecutive_failures: 0,
                candidates: candidates.clone(),
            },
            format!(
                "primary {old} is gone or came back fenced; promoting {chosen}; candidates: {}",
                describe(&candidates)
            ),
        ),
        None => (
            ReasonCode::Bootstrap {
                candidates: candidates.clone(),
            },
            format!(
                "no primary yet; choosing {chosen}; candidates: {}",
                describe(&candidates)
            ),
        ),
    };
    let mut out = vec![Decision::new(
        Intent::PromoteReplica {
            pod: chosen.clone(),
            // The primary it replaces, when there was one: the status and
            // the timeline count this as a failover, not a bootstrap.
            from: previous.filter(|p| *p != chosen),
        },
        code.clone(),
        detail.clone(),
    )];
    out.extend(after_new_primary(view, &chosen, &code, &detail));
    out
}
