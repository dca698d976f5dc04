//! `decide`: the pure heart of the operator.
//!
//! `decide(&ClusterState, now, &Policy) -> Vec<Decision>` reads only the
//! projection (which is folded from the journal), the time it is given and
//! the policy in force, so replaying the journal recomputes exactly what was
//! decided. Nothing here reads a clock, the network, Kubernetes or the
//! environment; there is no tokio and no kube client in this module tree.
//!
//! The tree shows the topology: the concerns every topology shares sit at
//! the root ([`view`], [`provisioning`], [`recovery`], [`status`]); each
//! topology's own concerns sit in its directory, one file each, consulted
//! in the order its `mod.rs` lists:
//!
//! - [`replication`]: Standalone and Replication, whose one primary the
//!   operator decides.
//! - [`cluster`]: Valkey Cluster, whose primaries Valkey elects.
//! - [`sentinel`]: Replication whose primary Valkey Sentinel moves.

mod archive;
mod backup;
mod binding;
mod cluster;
mod deadline;
mod deletion;
mod external;
mod fence;
mod fingerprint_key;
/// A cluster's journal built event by event, for the tests of the
/// decisions and of the observations beside them (the `testkit` feature).
#[cfg(any(test, feature = "testkit"))]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::new_without_default,
    missing_docs
)]
pub mod given;
pub(crate) mod hibernation;
mod placement;
mod provisioning;
mod recovery;
pub(crate) mod replication;
mod restart;
mod sentinel;
mod standby;
pub mod status;
mod tls;
pub(crate) mod upgrade;
pub mod users;

pub use tls::RELOAD_RETRY_MS;
mod view;

use logbook_crds::Topology;
use logbook_journal::{ClusterState, Intent, Policy, Reason, ReasonCode, Timestamp};

pub use archive::archive_sources;
pub use cluster::quorum::takeover_span_ms;
pub use deadline::next_deadline;
pub use recovery::{already_done, promotion_found_done};
pub use replication::{
    DEATH_CONFIRMATIONS, MIN_UNREACHABLE_MS, PROBE_CONNECT_TIMEOUT_MS, SWITCHOVER_AUTO,
};
pub use sentinel::health::{REASON_QUORUM_UNREACHABLE, SentinelHealth, sentinel_health};
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

/// The decisions of the first step, in order, that wants something.
fn first_wanted(view: &ClusterView<'_>, steps: &[&Step<'_>]) -> Vec<Decision> {
    steps
        .iter()
        .map(|step| step(view))
        .find(|decisions| !decisions.is_empty())
        .unwrap_or_default()
}

/// What should be done next for the cluster whose projection is `state`.
///
/// # Guarantees
/// Pure and total: the same arguments always give the same decisions, and
/// nothing panics. Returns nothing while intents are in flight (their
/// outcomes are awaited), when the cluster has no accepted spec, and when
/// it is paused; a deleted cluster is only ever asked to delete what it
/// owns.
pub fn decide(state: &ClusterState, now: Timestamp, policy: &Policy) -> Vec<Decision> {
    if !state.in_flight.is_empty() {
        return Vec::new();
    }
    if state.deleted {
        return deletion::decide_deletion(state);
    }
    // Unbound: its user took it over. Its objects are released once, and
    // nothing else is done until the annotation is back.
    if let Some(binding) = state.binding.as_ref().filter(|b| b.unbound()) {
        return if binding.released {
            Vec::new()
        } else {
            vec![binding::release(binding)]
        };
    }
    let Some(view) = ClusterView::new(state) else {
        return Vec::new();
    };
    if view.spec.paused {
        return Vec::new();
    }
    // A restore: nothing is created before the backup is verified whole.
    if view.spec.restore_from.is_some() && view.state.backups.restore.plan.is_none() {
        return Vec::new();
    }
    // Waking: a certificate that fell due (or expired) while the cluster
    // slept is issued before any pod starts, so that every pod boots
    // serving one that its peers and the operator accept.
    if !view.spec.hibernated
        && view.state.hibernation.is_some()
        && let Some(issue) = tls::decide_issue(&view, now)
    {
        return vec![issue];
    }
    // Hibernating, asleep or waking: nothing else is decided (a primary
    // stopping is not failed over), unless an operation must end first.
    if let Some(decisions) = hibernation::decide_hibernation(&view) {
        return decisions;
    }
    // A new image is tried on no data before anything rolls.
    if let Some(preflight) = upgrade::decide_preflight(&view) {
        return vec![preflight];
    }
    // The certificate first: no pod of a TLS cluster starts without it.
    if let Some(issue) = tls::decide_issue(&view, now) {
        return vec![issue];
    }
    // Bound again: the roles its user left are adopted, not undone.
    if let Some(adopt) = binding::adopt(&view) {
        return adopt;
    }
    let topology = match view.topology() {
        Topology::Standalone | Topology::Replication => {
            replication::decide_replication(&view, policy)
        }
        Topology::Cluster => cluster::decide_cluster(&view, now, policy),
        Topology::Sentinel => sentinel::decide_sentinel(&view, now, policy),
    };
    if !topology.is_empty() {
        return topology;
    }
    // Every topology's nodes serve the certificate in its Secret and hold
    // the ValkeyUsers (after its own concerns).
    if let Some(reload) = tls::decide_reload(&view) {
        return vec![reload];
    }
    if let Some(done) = backup::decide_restore_done(&view) {
        return vec![done];
    }
    // No password is fingerprinted without the key: it comes first.
    if let Some(key) = fingerprint_key::decide_fingerprint_key(&view) {
        return vec![key];
    }
    let users = users::decide_users(&view);
    if !users.is_empty() {
        return users;
    }
    backup::decide_backups(&view, now)
}
