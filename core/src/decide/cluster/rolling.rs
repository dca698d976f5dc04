//! Rolling change (config, image, resources) of a Cluster: pods whose
//! revision differs from the StatefulSet's are deleted one at a time,
//! only while the whole cluster is up (every pod ready and answering,
//! every slot owned, every replica in sync): replicas first (highest
//! ordinal first); a primary only after a coordinated `CLUSTER FAILOVER`
//! handed its shard to an in-sync replica, so no acknowledged write is
//! lost. A shard without replicas has nobody to hand over to: its primary
//! is rolled as it is (its slots are down while it restarts).

use logbook_journal::{ClusterFailoverMode, Intent, LinkStatus, ReasonCode, Role};

use super::{members, short};
use crate::decide::Decision;
use crate::decide::view::{ClusterView, Roll, best, describe};

/// Rolls the next outdated pod, if the cluster is whole and in sync.
pub fn decide_rolling(view: &ClusterView<'_>) -> Vec<Decision> {
    let cluster = &view.state.cluster;
    let Some(Roll {
        revision,
        replicas,
        pods,
        outdated,
    }) = view.roll()
    else {
        return Vec::new();
    };
    if cluster.formed_at.is_none()
        || !view.state.reshard.migrations.is_empty()
        || super::resharding::plan(view).is_some()
    {
        // A reshard goes first: a primary restarting mid-move would fail it.
        return Vec::new();
    }
    let members = members(view);
    let whole = u32::try_from(pods.len()).unwrap_or(u32::MAX) == replicas
        && members.len() == pods.len()
        && pods.iter().all(|p| p.view.ready)
        && cluster.unassigned() == 0
        && members.iter().all(|m| m.report.state_ok);
    let in_sync = members.iter().all(|m| {
        m.report.is_primary()
            || (m.pod.view.role == Some(Role::Replica) && m.pod.view.link == Some(LinkStatus::Up))
    });
    let shards = cluster.shards();
    let is_primary = |pod: &str| shards.iter().any(|s| s.primary == pod);
    let roll = |pod: &str, detail: String| {
        vec![Decision::new(
            Intent::RollPod {
                pod: pod.to_owned(),
                revision: revision.clone(),
            },
            ReasonCode::RevisionOutdated,
            detail,
        )]
    };
    // A replica down on an outdated revision (a crash loop after a change
    // that has been set right since) is rolled at once when every pod
    // down is such a replica and every slot still has its primary: it
    // serves nothing, and waiting for the cluster to be whole would wait
    // for it for ever (as on Replication and Sentinel).
    // An outdated replica that cannot follow its primary (a downgrade
    // whose full copy the primary cannot send, set back since) is down as
    // far as the roll goes.
    let down: Vec<_> = pods
        .iter()
        .filter(|p| {
            !p.view.ready
                || (outdated.iter().any(|o| o.name == p.name)
                    && p.view.role == Some(Role::Replica)
                    && p.view.link != Some(LinkStatus::Up))
        })
        .collect();
    let all_there = u32::try_from(pods.len()).unwrap_or(u32::MAX) == replicas;
    if all_there && !down.is_empty() {
        let rollable = down
            .iter()
            .all(|d| outdated.iter().any(|o| o.name == d.name) && !is_primary(d.name))
            && cluster.unassigned() == 0;
        return match down.iter().rev().find(|p| !p.view.terminating) {
            Some(p) if rollable => roll(
                p.name,
                format!(
                    "{} is down on an outdated revision ({} of {} pods outdated): rolling it takes nothing further down",
                    p.name,
                    outdated.len(),
                    pods.len()
                ),
            ),
            _ => Vec::new(),
        };
    }
    if !whole || !in_sync {
        return Vec::new();
    }
    // A change of version goes on past its canary once it passed.
    if crate::decide::upgrade::canary_hold(view, &pods, &outdated).is_some() {
        return Vec::new();
    }
    if let Some(replica) = outdated.iter().rev().find(|p| !is_primary(p.name)) {
        return roll(
            replica.name,
            format!(
                "{} runs an outdated revision ({} of {} pods outdated)",
                replica.name,
                outdated.len(),
                pods.len()
            ),
        );
    }
    // Only primaries are outdated: hand the first one's shard over.
    let Some(primary) = outdated.first() else {
        return Vec::new();
    };
    let Some(shard) = shards.iter().find(|s| s.primary == primary.name) else {
        return Vec::new();
    };
    let mut candidates: Vec<_> = shard
        .replicas
        .iter()
        .filter_map(|pod| view.pod(pod))
        .map(|p| logbook_journal::Candidate {
            pod: p.name.to_owned(),
            offset: p.view.offset,
            reachable: true,
            same_history: true,
            eligible: p.usable() && p.view.link == Some(LinkStatus::Up),
        })
        .collect();
    candidates.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.eligible),
            std::cmp::Reverse(c.offset.unwrap_or(0)),
        )
    });
    let Some(target) = best(&candidates) else {
        return roll(
            primary.name,
            format!(
                "primary {} runs an outdated revision and its shard has no in-sync replica to hand over to; rolling it as it is",
                primary.name
            ),
        );
    };
    vec![Decision::new(
        Intent::ClusterFailover {
            pod: target.pod.clone(),
            from: Some(primary.name.to_owned()),
            mode: ClusterFailoverMode::Coordinated,
        },
        ReasonCode::PrimaryOutdated,
        format!(
            "primary {} (node {}) runs an outdated revision; {} takes its shard over by a coordinated failover before it rolls; candidates: {}",
            primary.name,
            short(shard.node_id),
            target.pod,
            describe(&candidates)
        ),
    )]
}
