//! Sentinel: Replication whose failovers Valkey Sentinel decides.
//!
//! The operator never promotes on its own here and never fights
//! Sentinel: the one primary the journal believes is moved only by a
//! switch the Sentinels made (`SentinelSwitchObserved`), and a planned
//! hand-over is asked of them (`SentinelFailover`) and waited for. What
//! the operator still does is keep everything else true around them.
//!
//! One file per concern, consulted in order; the first that wants
//! something done wins the step:
//!
//! 0. [`handover`]: the primary's process is dead (its port refuses
//!    connections), is being deleted, or restarted in place and booted
//!    fenced; Sentinel is asked to fail it over now rather than notice
//!    after `down-after-milliseconds` (or 20 s for a fenced one).
//! 1. [`scaling`], then the shared provisioning: the objects of a new
//!    spec generation (the Sentinel StatefulSet with them); a scale-in
//!    that removes the primary asks Sentinel to hand it over first.
//! 2. the Replication bootstrap: no primary yet and no Sentinel
//!    monitoring one: choose one, as for Replication.
//! 3. [`monitoring`]: every Sentinel monitors the believed primary with
//!    the spec's settings (a restarted or replaced Sentinel is
//!    re-pointed), and asks for `INFO` every second.
//! 4. [`announce`]: exposed outside Kubernetes, each data pod announces
//!    its external endpoint to its primary.
//! 5. the Replication roles (labels, boot config, replicas following the
//!    primary), only while the Sentinels are [`quiet`](view::quiet).
//! 6. [`reset`]: stale replicas and Sentinels in a Sentinel's tables.
//! 7. [`announce`] again: Sentinels naming the primary at another address
//!    than it is dialled at are moved to it.
//! 8. [`handover`]: a requested switchover or failover, and the roll of
//!    an outdated primary, through `SENTINEL FAILOVER`.
//! 9. [`handover`] again for the replicas of an outdated revision.

mod announce;
mod handover;
pub mod health;
mod monitoring;
mod reset;
mod scaling;
pub mod view;

#[cfg(test)]
#[path = "announce_tests.rs"]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod announce_tests;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;

use logbook_journal::{Policy, Timestamp};
pub use monitoring::{hold_failovers, unheld};

use super::provisioning::decide_provisioning;
use super::replication::{decide_bootstrap, decide_roles, decide_second_primary};
use super::view::ClusterView;
use super::{Decision, Step, first_wanted};

/// What a Sentinel cluster needs next.
pub fn decide_sentinel(view: &ClusterView<'_>, _now: Timestamp, _policy: &Policy) -> Vec<Decision> {
    let steps: [&Step<'_>; 15] = [
        &handover::decide_dead_primary,
        &handover::decide_leaving_primary,
        &handover::decide_fenced_primary,
        &|v| {
            if view::quiet(v) {
                decide_second_primary(v)
            } else {
                Vec::new()
            }
        },
        &|v| scaling::decide_scaling(v).unwrap_or_else(|| decide_provisioning(v)),
        &|v| {
            if view::anyone_monitors(v) {
                Vec::new()
            } else {
                decide_bootstrap(v)
            }
        },
        &monitoring::decide_monitoring,
        &monitoring::decide_info_period,
        &announce::decide_announce,
        &|v| {
            if view::quiet(v) {
                decide_roles(v)
            } else {
                Vec::new()
            }
        },
        &reset::decide_reset,
        &announce::decide_readdress,
        &handover::decide_handover,
        &handover::decide_rolling_replicas,
        &crate::decide::placement::decide_unplaced_rebalance,
    ];
    first_wanted(view, &steps)
}
