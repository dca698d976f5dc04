//! A Valkey Cluster's shards as the operator last observed them, in the
//! few facts its users watch: each shard (named by its first slot), its
//! primary and whether that primary serves, its slots, its replicas and
//! which of them are in sync; and for the whole cluster whether it formed,
//! how many of the 16384 slots have an owner and whether its members say
//! `cluster_state:ok`.
//!
//! One pure reading of the projection, shared by the metrics
//! (`logbook_shard_*`, `logbook_cluster_*`) and `kubectl valkey status`,
//! so the scrape and the plugin never disagree. It judges a pod exactly
//! as the published status does (`decide/status.rs`): a primary serves
//! while its pod is usable and its node not retired; a replica is in sync
//! while its pod is usable and its link up. It must not decide anything
//! nor do any I/O.

use logbook_crds::Topology;
use logbook_journal::cluster::{SLOTS, slot_count};
use logbook_journal::projection::cluster::Shard;
use logbook_journal::{ClusterState, LinkStatus, SlotRange};

use crate::decide::{ClusterView, PodState};

/// One replica of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSummary {
    /// Its pod.
    pub pod: String,
    /// Usable, with its replication link up.
    pub in_sync: bool,
}

/// One shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSummary {
    /// Its first slot: the shard's name in metrics and in the plugin. It
    /// survives failovers (the slots stay, the primary moves) and changes
    /// only with a reshard, and there are never more names than shards.
    pub first_slot: u16,
    /// The primary's pod.
    pub primary: String,
    /// The primary's pod now runs another node: the primary is gone for
    /// good, until a replica takes its slots over.
    pub retired: bool,
    /// The primary answers (its pod usable) and is not retired.
    pub served: bool,
    /// The slots it owns, as merged ranges.
    pub slots: Vec<SlotRange>,
    /// How many slots that is.
    pub slot_count: u32,
    /// Its replicas, in pod order.
    pub replicas: Vec<ReplicaSummary>,
}

impl ShardSummary {
    /// The `shard` label value: the first slot.
    pub fn label(&self) -> String {
        self.first_slot.to_string()
    }

    /// How many of its replicas are in sync.
    pub fn in_sync(&self) -> usize {
        self.replicas.iter().filter(|r| r.in_sync).count()
    }
}

/// The cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    /// All 16384 slots had an owner at least once.
    pub formed: bool,
    /// Slots with an owning primary now.
    pub slots_owned: u32,
    /// Every usable member's last report says `cluster_state:ok` (and
    /// there is at least one).
    pub state_ok: bool,
    /// Shards the spec asks for.
    pub shards_wanted: u32,
    /// The shards, in the order of their primaries' pods.
    pub shards: Vec<ShardSummary>,
}

impl ClusterSummary {
    /// Shards whose primary serves.
    pub fn served(&self) -> usize {
        self.shards.iter().filter(|s| s.served).count()
    }

    /// Replicas of all shards, and how many of them are in sync.
    pub fn replicas(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(all, sync), s| {
            (
                all.saturating_add(s.replicas.len()),
                sync.saturating_add(s.in_sync()),
            )
        })
    }
}

/// The summary of `state`'s Valkey Cluster; `None` unless its accepted
/// spec asks for topology Cluster.
pub fn summarize_cluster(state: &ClusterState) -> Option<ClusterSummary> {
    let view = ClusterView::new(state)?;
    if view.topology() != Topology::Cluster {
        return None;
    }
    let cluster = &state.cluster;
    let usable = |pod: &str| view.pod(pod).is_some_and(|p| p.usable());
    let shards = cluster
        .shards()
        .iter()
        .filter_map(|s| summarize_shard(&view, s))
        .collect();
    let members: Vec<bool> = view
        .pods()
        .iter()
        .filter(|p| usable(p.name))
        .filter_map(|p| cluster.report(p.name))
        .map(|r| r.state_ok)
        .collect();
    Some(ClusterSummary {
        formed: cluster.formed_at.is_some(),
        slots_owned: SLOTS.saturating_sub(cluster.unassigned()),
        state_ok: !members.is_empty() && members.iter().all(|ok| *ok),
        shards_wanted: u32::try_from(view.spec.effective_shards()).unwrap_or(0),
        shards,
    })
}

fn summarize_shard(view: &ClusterView<'_>, shard: &Shard<'_>) -> Option<ShardSummary> {
    let first_slot = shard.slots.first()?.start;
    let usable = |pod: &str| view.pod(pod).as_ref().is_some_and(PodState::usable);
    let mut replicas: Vec<ReplicaSummary> = shard
        .replicas
        .iter()
        .map(|pod| ReplicaSummary {
            pod: (*pod).to_owned(),
            in_sync: view
                .pod(pod)
                .is_some_and(|p| p.usable() && p.view.link == Some(LinkStatus::Up)),
        })
        .collect();
    replicas.sort_by(|a, b| {
        (crate::decide::ordinal(&a.pod), &a.pod).cmp(&(crate::decide::ordinal(&b.pod), &b.pod))
    });
    Some(ShardSummary {
        first_slot,
        primary: shard.primary.to_owned(),
        retired: shard.retired,
        served: !shard.retired && usable(shard.primary),
        slot_count: slot_count(&shard.slots),
        slots: shard.slots.clone(),
        replicas,
    })
}
