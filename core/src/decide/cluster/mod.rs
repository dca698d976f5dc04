//! Valkey Cluster: `shards` primaries, each with `replicasPerShard`
//! replicas, sharing the 16384 slots. Valkey's election is the authority
//! on who is primary; the operator forms the cluster, makes failover fast
//! on *confirmed* death, replaces nodes and rolls changes, every step an
//! intent with an outcome. A node is its node id, never its pod.
//!
//! One file per concern, consulted in order; the first that wants
//! something done wins the step:
//!
//! 1. [`failover`]: a shard primary is dead (pod gone, process refused
//!    twice, or its pod came back as another node): its best replica takes
//!    over at once, coordinated while the primary still answers, forced
//!    otherwise; never on a timeout alone, never beside Valkey's own
//!    election.
//!    With a majority of shard primaries silent no election can win:
//!    [`quorum`] then takes over the shards gone for the node timeout,
//!    only when the spec allows it, and nothing else is tried.
//! 2. [`scaling`], then the shared provisioning: the objects of a new
//!    spec generation; fewer pods only once the shards leaving are
//!    drained and the pods that stay hold every shard, each with the
//!    replicas it needs, in sync.
//! 3. [`announce`]: a node announcing other than where clients reach it
//!    (outside Kubernetes with external access on, else its pod address)
//!    is told, without a restart.
//! 4. [`membership`]: node ids no pod runs any more, or that never
//!    belonged here, are forgotten on every member; pods not in the
//!    cluster, or known at a stale address, are met.
//! 5. [`slots`]: a cluster never formed gets its 16384 slots, split
//!    evenly over primaries spread across Kubernetes nodes.
//! 6. [`replicas`]: nodes holding no slot and following nobody (or
//!    following a primary left without slots) become replicas of the shard
//!    that needs one most; the empty primaries [`resharding`] picked as
//!    new shards are seats, not replicas.
//! 7. [`resharding`]: slots follow `shards` — a migration under way is
//!    waited for, a half-moved slot ([`settling`]) is settled, then each
//!    source sends each target what it owes it, one job per pair, all
//!    sources at once.
//! 8. [`labels`]: the `role` labels follow the shard primaries.
//! 9. [`rolling`]: outdated pods, replicas first, each primary after a
//!    coordinated failover to an in-sync replica.

mod announce;
mod failover;
mod labels;
mod layout;
mod membership;
pub mod quorum;
mod replicas;
pub mod resharding;
mod rolling;
mod scaling;
mod settling;
mod slots;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;

use logbook_journal::{ClusterNodeReport, Policy, Timestamp};

use super::provisioning::decide_provisioning;
use super::view::{ClusterView, PodState};
use super::{Decision, Step, first_wanted};

/// What a Valkey Cluster needs next.
pub fn decide_cluster(view: &ClusterView<'_>, now: Timestamp, policy: &Policy) -> Vec<Decision> {
    let steps: [&Step<'_>; 10] = [
        &|v| failover::decide_failover(v, now, policy),
        &|v| scaling::decide_scaling(v).unwrap_or_else(|| decide_provisioning(v)),
        &announce::decide_announce,
        &membership::decide_membership,
        &slots::decide_slots,
        &replicas::decide_replicas,
        &resharding::decide_resharding,
        &labels::decide_labels,
        &rolling::decide_rolling,
        &crate::decide::placement::decide_cluster_fail_back,
    ];
    first_wanted(view, &steps)
}

/// A pod whose node can be talked to now: usable (running, answering, not
/// being deleted) and with a report of its current node.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// The pod.
    pub pod: PodState<'a>,
    /// Its current node's last report.
    pub report: &'a ClusterNodeReport,
}

impl<'a> Member<'a> {
    /// Its pod name.
    pub fn name(&self) -> &'a str {
        self.pod.name
    }

    /// Its node id.
    pub fn node_id(&self) -> &'a str {
        &self.report.node_id
    }

    /// Its pod address.
    pub fn ip(&self) -> Option<&'a str> {
        self.pod.view.ip.as_deref()
    }
}

/// Every member, in ordinal order.
pub fn members<'a>(view: &ClusterView<'a>) -> Vec<Member<'a>> {
    view.pods()
        .into_iter()
        .filter(|p| p.usable())
        .filter_map(|pod| {
            let report = view.state.cluster.report(pod.name)?;
            Some(Member { pod, report })
        })
        .collect()
}

/// Shards the spec asks for.
pub fn desired_shards(view: &ClusterView<'_>) -> u32 {
    u32::try_from(view.spec.effective_shards()).unwrap_or(0)
}

/// Replicas per shard the spec asks for.
pub fn desired_replicas(view: &ClusterView<'_>) -> u32 {
    u32::try_from(view.spec.effective_replicas_per_shard()).unwrap_or(0)
}

/// The first 8 characters of a node id, for people.
pub fn short(node_id: &str) -> &str {
    node_id.get(..8).unwrap_or(node_id)
}
