//! Automatic failover: tell death from slowness, then fence the old
//! primary and promote the replica holding the most of its history.
//!
//! Death (pod gone, not running, connection refused or no address, after
//! one confirming probe) is acted on at once. A timeout may be a busy
//! server (`DEBUG SLEEP`, a long `KEYS`): it is acted on only after
//! `failure_threshold` consecutive failures spanning at least
//! [`MIN_UNREACHABLE_MS`], AND with no reachable replica of the primary
//! still hearing from it (at least one down or silent, the others down,
//! silent or stuck in a sync). With `fenceIsolatedPrimarySeconds` set, an
//! unreachable primary is replaced only once it certainly refuses writes
//! (`decide/fence.rs`).

use logbook_journal::projection::PodView;
use logbook_journal::{Intent, LinkStatus, PodPhase, Policy, Reachability, ReasonCode, Role};

use super::roles::replace_primary;
use crate::decide::view::{ClusterView, best, describe};
use crate::decide::{Decision, fence};

/// Consecutive refusals that prove a process dead: the failed probe and
/// one confirming probe.
pub const DEATH_CONFIRMATIONS: u32 = 2;

pub use logbook_journal::policy::{MIN_UNREACHABLE_MS, PROBE_CONNECT_TIMEOUT_MS};

/// How the believed primary is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Healthy, or not failed enough to act.
    Alive,
    /// The process or pod is gone.
    Dead { failures: u32 },
    /// Unreachable past the threshold and corroborated by its replicas.
    Unreachable { failures: u32 },
    /// Being deleted but still answering: fence it first, so it takes no
    /// write the new primary will not have; promote once the replicas'
    /// offsets after the fence are known. (Being deleted and timing out
    /// is judged as any timing-out primary.)
    Leaving,
}

fn judge(view: &ClusterView<'_>, primary: &str, policy: &Policy) -> Verdict {
    let Some(pod) = view.pod(primary) else {
        return Verdict::Dead { failures: 0 };
    };
    let failures = pod.view.consecutive_failures;
    if pod.view.terminating {
        match pod.view.reachability {
            Some(Reachability::Reachable) if pod.view.role == Some(Role::Primary) => {
                return Verdict::Leaving;
            }
            // A timeout is not an exit: a primary shutting down waits up
            // to Valkey's `shutdown-timeout` for its replicas, answering
            // as primary all along, and one slow probe (a loaded node)
            // must not have it replaced unfenced. It is judged as any
            // silent primary below; its replicas still hearing from it
            // keep it alive until it answers (then it is fenced) or exits.
            Some(Reachability::TimedOut | Reachability::ProtocolError) => {}
            _ => return Verdict::Dead { failures },
        }
    }
    if process_dead(pod.view) {
        return Verdict::Dead { failures };
    }
    match pod.view.reachability {
        Some(Reachability::TimedOut | Reachability::ProtocolError)
            if failures >= policy.failure_threshold.max(1)
                && policy
                    .unanswered_long_enough(pod.view.failing_since, pod.view.last_failed_at)
                && corroborated(view, primary) =>
        {
            Verdict::Unreachable { failures }
        }
        _ => Verdict::Alive,
    }
}

/// Whether the process of the pod `view` is known dead: its pod ended, or
/// its port refused [`DEATH_CONFIRMATIONS`] probes in a row (nothing
/// listens) or it has no address. Shared with topology Sentinel, which
/// asks the Sentinels at once for such a primary.
pub fn process_dead(view: &PodView) -> bool {
    matches!(view.phase, Some(PodPhase::Failed | PodPhase::Succeeded))
        || matches!(
            view.reachability,
            Some(Reachability::Refused | Reachability::NoAddress)
        ) && view.consecutive_failures >= DEATH_CONFIRMATIONS
}

/// The replicas of `primary` back the probes' verdict: none of the
/// reachable ones has a live link to it (down, silent, or stuck in a
/// sync), and at least one reports it down or silent.
fn corroborated(view: &ClusterView<'_>, primary: &str) -> bool {
    let replicas: Vec<_> = view
        .pods()
        .into_iter()
        .filter(|p| p.usable_as(Role::Replica) && p.view.replicates.as_deref() == Some(primary))
        .collect();
    replicas
        .iter()
        .any(|p| matches!(p.view.link, Some(LinkStatus::Down | LinkStatus::Silent)))
        && replicas.iter().all(|p| p.view.link != Some(LinkStatus::Up))
}

/// A promotion whose old primary took writes since: the believed
/// primary was promoted from it (the last failover), but the old one
/// still reports itself primary, further along than the promoted one,
/// which no replica follows. So a switchover cut short between its
/// promotion and the old primary following the promoted pod (the
/// operator killed there): the pause holding the old primary's writes
/// expired, and it took writes again through the Services that still
/// select it, acknowledged by the replicas that still follow it.
/// Repointing it at the promoted pod would discard them; the role goes
/// back to it instead (fence the promoted pod, which took none of them,
/// and make the old one the primary again, which it still is). Topology
/// Replication only: Sentinel settles its own.
fn old_primary_ahead(view: &ClusterView<'_>, primary: &str) -> Option<Vec<Decision>> {
    if view.topology() != logbook_crds::Topology::Replication {
        return None;
    }
    let last = view.state.last_failover.as_ref()?;
    let old = last.from.as_deref()?;
    if last.to != primary || old == primary {
        return None;
    }
    let promoted = view.pod(primary).filter(|p| p.usable_as(Role::Primary))?;
    let before = view.pod(old).filter(|p| p.usable_as(Role::Primary))?;
    let followed = view.pods().iter().any(|p| {
        p.view.role == Some(Role::Replica)
            && p.view.replicates.as_deref() == Some(primary)
            && p.view.link == Some(LinkStatus::Up)
    });
    let (Some(at), Some(ahead)) = (promoted.view.offset, before.view.offset) else {
        return None;
    };
    if followed || ahead <= at {
        return None;
    }
    let candidates = view.rank_candidates(Some(primary), false);
    let code = ReasonCode::PrimaryBehindReplica {
        primary_offset: at,
        candidates: candidates.clone(),
    };
    let detail = format!(
        "{primary} was promoted from {old}, but {old} still reports itself primary at offset {ahead}, ahead of {primary} at {at}, which no replica follows: {old} took writes after the promotion (the switchover was cut short before it followed {primary}); {old} keeps the role rather than lose them"
    );
    Some(replace_primary(view, primary, old, &code, &detail))
}

/// Fails over from a dead or corroborated-unreachable primary.
pub fn decide_failover(view: &ClusterView<'_>, policy: &Policy) -> Vec<Decision> {
    let Some(primary) = view.primary() else {
        return Vec::new();
    };
    if let Some(undo) = old_primary_ahead(view, primary) {
        return undo;
    }
    if !view.spec.failover.automatic || !view.topology().uses_replicas() {
        return Vec::new();
    }
    let (death, failures) = match judge(view, primary, policy) {
        Verdict::Alive => return Vec::new(),
        Verdict::Leaving => {
            let candidates = view.rank_candidates(Some(primary), false);
            if candidates.is_empty() {
                // No pod could succeed it (a Standalone, rolled): the
                // fence would protect no successor's history and leave
                // the pod, back from its restart, fenced with no primary
                // at all. Its restart is its own.
                return Vec::new();
            }
            return vec![Decision::new(
                Intent::FenceNode {
                    pod: primary.to_owned(),
                },
                ReasonCode::PrimaryFailed {
                    death: true,
                    consecutive_failures: 0,
                    candidates: candidates.clone(),
                },
                format!(
                    "primary {primary} is being deleted; fencing it before choosing a successor; candidates so far: {}",
                    describe(&candidates)
                ),
            )];
        }
        Verdict::Dead { failures } => (true, failures),
        Verdict::Unreachable { failures } => (false, failures),
    };
    // A primary that is only unreachable may be serving clients on its
    // side of a partition: with the fence on, it hands over only once it
    // certainly refuses writes (`decide/fence.rs`). A dead one takes none.
    let fence = if death {
        None
    } else {
        fence::fence_of(view, primary)
    };
    if fence.is_some_and(|f| view.state.last_at < f.fenced_by) {
        return Vec::new();
    }
    let candidates = view.rank_candidates(Some(primary), false);
    let Some(chosen) = best(&candidates) else {
        return Vec::new();
    };
    let chosen = chosen.pod.clone();
    let code = ReasonCode::PrimaryFailed {
        death,
        consecutive_failures: failures,
        candidates: candidates.clone(),
    };
    let how = if death {
        format!("primary {primary} is dead")
    } else {
        format!("primary {primary} unreachable for {failures} probes and its replicas lost it")
    };
    let how = match fence {
        Some(f) => format!(
            "{how}; waited for its fence: {}, and the journal is at {}",
            f.describe(primary),
            view.state.last_at
        ),
        None => how,
    };
    let detail = format!(
        "{how}; promoting {chosen} (highest offset on its history); candidates: {}",
        describe(&candidates)
    );
    replace_primary(view, primary, &chosen, &code, &detail)
}
