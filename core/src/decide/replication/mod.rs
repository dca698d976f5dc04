//! Standalone and Replication: one primary, decided by the operator.
//!
//! One file per concern, consulted in order; the first concern that wants
//! something done wins the step, because every step changes what the next
//! one sees (the executor's outcomes and fresh observations are folded
//! before `decide` runs again):
//!
//! 1. [`failover`]: the believed primary is dead or unreachable and
//!    corroborated: fence it and promote the best replica.
//! 2. [`scaling`], then the shared provisioning: the objects of a new
//!    spec generation, scale-in only once the primary is not among the
//!    removed.
//! 3. [`requested_failover`]: a person asked for a failover: fence the
//!    primary, then promote the best replica (before bootstrap, which
//!    would otherwise take the fenced primary for a lost one).
//! 4. [`bootstrap`]: no primary yet: choose one.
//! 5. [`roles`]: labels, boot config and replicas following the primary.
//! 6. [`switchover`]: a requested planned hand-over.
//! 7. [`rolling`]: pods on an outdated revision, one at a time.

mod bootstrap;
mod failover;
mod requested_failover;
pub(super) mod roles;
pub(crate) mod rolling;
mod scaling;
mod switchover;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;

use logbook_journal::Policy;

use super::provisioning::decide_provisioning;
use super::view::ClusterView;
use super::{Decision, Step, first_wanted};

pub(super) use bootstrap::decide_bootstrap;
pub use failover::{
    DEATH_CONFIRMATIONS, MIN_UNREACHABLE_MS, PROBE_CONNECT_TIMEOUT_MS, process_dead,
};
pub(super) use roles::{after_new_primary, decide_roles, decide_second_primary};
pub use switchover::AUTO as SWITCHOVER_AUTO;

/// What a Standalone or Replication cluster needs next.
pub fn decide_replication(view: &ClusterView<'_>, policy: &Policy) -> Vec<Decision> {
    let steps: [&Step<'_>; 10] = [
        &|v| failover::decide_failover(v, policy),
        &super::standby::decide_standby,
        &roles::decide_second_primary,
        &|v| scaling::decide_scaling(v).unwrap_or_else(|| decide_provisioning(v)),
        &requested_failover::decide_requested_failover,
        &bootstrap::decide_bootstrap,
        &roles::decide_roles,
        &switchover::decide_switchover,
        &rolling::decide_rolling,
        &super::placement::decide_replication_fail_back,
    ];
    super::standby::for_standby(view, first_wanted(view, &steps))
}
