//! `decide`: the pure heart of the operator.
//!
//! `decide(&ClusterState, now, &Policy) -> Vec<Decision>` reads only the
//! projection (which is folded from the journal), the time it is given and
//! the policy in force, so replaying the journal recomputes exactly what was
//! decided. Nothing here reads a clock, the network, Kubernetes or the
//! environment; there is no tokio and no kube client in this module tree.
//!
//! One file per concern, consulted in order; the first concern that wants
//! something done wins the step, because every step changes what the next
//! one sees (the executor's outcomes and fresh observations are folded
//! before `decide` runs again):
//!
//! 1. [`failover`]: the believed primary is dead or unreachable and
//!    corroborated: fence it and promote the best replica.
//! 2. [`provisioning`] and [`scaling`]: the objects of a new spec
//!    generation, scale-in only once the primary is not among the removed.
//! 3. [`requested_failover`]: a person asked for a failover: fence the
//!    primary, then promote the best replica (before bootstrap, which
//!    would otherwise take the fenced primary for a lost one).
//! 4. [`bootstrap`]: no primary yet: choose one.
//! 5. [`roles`]: labels, boot config and replicas following the primary.
//! 6. [`switchover`]: a requested planned hand-over.
//! 7. [`rolling`]: pods on an outdated revision, one at a time.
//!
//! [`status`] renders the published status from the same projection.

mod bootstrap;
mod failover;
mod provisioning;
mod recovery;
mod requested_failover;
mod roles;
mod rolling;
mod scaling;
pub mod status;
mod switchover;
mod view;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;

use logbook_journal::{ClusterState, Intent, Policy, Reason, ReasonCode, Timestamp};

pub use failover::{DEATH_CONFIRMATIONS, MIN_UNREACHABLE_MS, unreachable_after_ms};
pub use recovery::{already_done, promotion_found_done};
pub use switchover::AUTO as SWITCHOVER_AUTO;
pub use view::{ClusterView, PodState, ordinal};

/// One intent with the reason it is decided. The shell gives it an id
/// (drawn outside this pure function) and journals it in `Decided` before
/// anything acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What is ordered.
    pub intent: Intent,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// `intent` for `code`, explained by `detail`.
    pub fn new(intent: Intent, code: ReasonCode, detail: impl Into<String>) -> Self {
        Self {
            intent,
            reason: Reason {
                code,
                detail: detail.into(),
            },
        }
    }
}

/// One concern: the decisions it wants for a view (empty: nothing to do).
type Step<'p> = dyn Fn(&ClusterView<'_>) -> Vec<Decision> + 'p;

/// What should be done next for the cluster whose projection is `state`.
///
/// # Guarantees
/// Pure and total: the same arguments always give the same decisions, and
/// nothing panics. Returns nothing while intents are in flight (their
/// outcomes are awaited), when the cluster is deleted or has no accepted
/// spec, and when it is paused.
pub fn decide(state: &ClusterState, now: Timestamp, policy: &Policy) -> Vec<Decision> {
    if state.deleted || !state.in_flight.is_empty() {
        return Vec::new();
    }
    let Some(view) = ClusterView::new(state) else {
        return Vec::new();
    };
    if view.spec.paused {
        return Vec::new();
    }
    let steps: [&Step<'_>; 7] = [
        &|v| failover::decide_failover(v, now, policy),
        &|v| scaling::decide_scaling(v).unwrap_or_else(|| provisioning::decide_provisioning(v)),
        &requested_failover::decide_requested_failover,
        &bootstrap::decide_bootstrap,
        &roles::decide_roles,
        &switchover::decide_switchover,
        &rolling::decide_rolling,
    ];
    for step in steps {
        let decisions = step(&view);
        if !decisions.is_empty() {
            return decisions;
        }
    }
    Vec::new()
}
