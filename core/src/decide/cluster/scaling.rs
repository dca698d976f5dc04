//! Fewer pods. Fewer shards are drained first (see [`resharding`]); then,
//! as for fewer replicas per shard: lowering `replicasPerShard` shrinks the
//! StatefulSet, which removes the highest ordinals whichever shard they
//! serve: a shard primary, or every replica of one shard, may be among
//! them. So before the StatefulSet shrinks, the pods that stay are
//! arranged as the new spec wants them, one step at a time:
//!
//! 1. a shard whose primary leaves hands it, by a coordinated `CLUSTER
//!    FAILOVER` (no acknowledged write lost), to an in-sync replica that
//!    stays;
//! 2. a shard left with fewer staying replicas than it needs (one more
//!    when its primary leaves: its successor) takes one from a shard that
//!    keeps more than it needs (`CLUSTER REPLICATE`);
//! 3. every staying replica is in sync.
//!
//! Only then does provisioning shrink the StatefulSet; the removed nodes
//! are forgotten by membership once their pods are gone. Growing is
//! provisioning alone: new pods join as replicas (see [`replicas`]).
//!
//! [`replicas`]: super::replicas
//! [`resharding`]: super::resharding

use logbook_journal::projection::cluster::Shard;
use logbook_journal::{Candidate, ClusterFailoverMode, Intent, LinkStatus, ReasonCode};

use super::{desired_replicas, short};
use crate::decide::Decision;
use crate::decide::view::{ClusterView, best, describe, ordinal};

/// `Some(decisions)` while the StatefulSet must not shrink yet (empty:
/// waiting for a shard to settle or a replica to sync); `None` when
/// provisioning may go ahead.
pub fn decide_scaling(view: &ClusterView<'_>) -> Option<Vec<Decision>> {
    if view.state.applied_generation == Some(view.generation) {
        return None;
    }
    let current = view.state.statefulset.as_ref()?.replicas;
    let wanted = view.desired_pods();
    let cluster = &view.state.cluster;
    if wanted >= current || cluster.formed_at.is_none() {
        return None;
    }
    let shards = cluster.shards();
    // A shard without an answering primary is failover's first: nothing
    // is moved meanwhile.
    let settled = cluster.unassigned() == 0
        && shards
            .iter()
            .all(|s| !s.retired && view.pod(s.primary).is_some_and(|p| p.usable()));
    if !settled || super::resharding::draining(view) {
        // Shards leaving give their slots away first (resharding).
        return Some(Vec::new());
    }
    let plan = Plan {
        view,
        wanted,
        code: ReasonCode::ScaleIn {
            from: current,
            to: wanted,
        },
        want: desired_replicas(view),
    };
    if let Some(handover) = shards.iter().find_map(|s| plan.handover(s)) {
        return Some(vec![handover]);
    }
    if let Some(move_) = plan.reseat(&shards) {
        return Some(vec![move_]);
    }
    let syncing = shards
        .iter()
        .flat_map(|s| s.replicas.iter())
        .any(|r| plan.stays(r) && !plan.in_sync(r));
    syncing.then(Vec::new)
}

/// What the scale-in works with.
struct Plan<'v, 'a> {
    view: &'v ClusterView<'a>,
    /// Pods the spec keeps: ordinals below this.
    wanted: u32,
    code: ReasonCode,
    /// Replicas per shard the spec asks for.
    want: u32,
}

impl Plan<'_, '_> {
    fn stays(&self, pod: &str) -> bool {
        ordinal(pod) < self.wanted
    }

    fn in_sync(&self, pod: &str) -> bool {
        self.view
            .pod(pod)
            .is_some_and(|p| p.usable() && p.view.link == Some(LinkStatus::Up))
    }

    /// The shard's replicas that stay.
    fn staying<'s>(&self, shard: &Shard<'s>) -> Vec<&'s str> {
        shard
            .replicas
            .iter()
            .copied()
            .filter(|r| self.stays(r))
            .collect()
    }

    /// Staying replicas the shard needs: one more when its primary
    /// leaves (its successor).
    fn needs(&self, shard: &Shard<'_>) -> usize {
        let want = usize::try_from(self.want).unwrap_or(usize::MAX);
        if self.stays(shard.primary) {
            want
        } else {
            want.saturating_add(1)
        }
    }

    /// A coordinated failover of a leaving primary's shard to its best
    /// staying, in-sync replica.
    fn handover(&self, shard: &Shard<'_>) -> Option<Decision> {
        if self.stays(shard.primary) {
            return None;
        }
        let mut candidates: Vec<Candidate> = shard
            .replicas
            .iter()
            .filter_map(|r| self.view.pod(r))
            .map(|p| Candidate {
                pod: p.name.to_owned(),
                offset: p.view.offset,
                reachable: p.usable(),
                same_history: true,
                eligible: self.stays(p.name) && self.in_sync(p.name),
            })
            .collect();
        candidates.sort_by_key(|c| {
            (
                std::cmp::Reverse(c.eligible),
                std::cmp::Reverse(c.offset.unwrap_or(0)),
                ordinal(&c.pod),
            )
        });
        let target = best(&candidates)?;
        Some(Decision::new(
            Intent::ClusterFailover {
                pod: target.pod.clone(),
                from: Some(shard.primary.to_owned()),
                mode: ClusterFailoverMode::Coordinated,
            },
            self.code.clone(),
            format!(
                "the spec keeps {} pods and {} (node {}) is removed: {} takes its {} slots over by a coordinated failover first; candidates: {}",
                self.wanted,
                shard.primary,
                short(shard.node_id),
                target.pod,
                logbook_journal::cluster::slot_count(&shard.slots),
                describe(&candidates)
            ),
        ))
    }

    /// A staying replica moved from a shard that keeps more than it needs
    /// to one that keeps fewer (a leaving primary's shard first).
    fn reseat(&self, shards: &[Shard<'_>]) -> Option<Decision> {
        let short_of = |s: &&Shard<'_>| self.staying(s).len() < self.needs(s);
        let to = shards
            .iter()
            .filter(short_of)
            .min_by_key(|s| (self.stays(s.primary), ordinal(s.primary)))?;
        let (from, pod) = shards.iter().find_map(|s| {
            let staying = self.staying(s);
            (staying.len() > self.needs(s))
                .then(|| staying.iter().copied().max_by_key(|p| ordinal(p)))
                .flatten()
                .map(|p| (s, p))
        })?;
        Some(Decision::new(
            Intent::ReplicateShard {
                pod: pod.to_owned(),
                primary: to.primary.to_owned(),
                node_id: to.node_id.to_owned(),
            },
            self.code.clone(),
            format!(
                "the spec keeps {} pods, {} replicas per shard: {}'s shard keeps {} of the {} it needs{}, {}'s keeps {}; {pod} moves to replicate {} (node {})",
                self.wanted,
                self.want,
                to.primary,
                self.staying(to).len(),
                self.needs(to),
                if self.stays(to.primary) {
                    ""
                } else {
                    " (its primary is removed)"
                },
                from.primary,
                self.staying(from).len(),
                to.primary,
                short(to.node_id)
            ),
        ))
    }
}
