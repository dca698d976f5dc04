//! The shape of a ValkeyCluster: [`Topology`].
//!
//! This module owns the topology enum and the facts that follow from it alone
//! (which spec fields apply). It must not look at any other field; combining
//! the topology with replica counts is `spec.rs`'s job.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the Valkey servers of one ValkeyCluster are arranged. Immutable.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum Topology {
    /// One pod, no replicas; recovery is a pod restart.
    Standalone,
    /// One primary and `replicas - 1` replicas; the operator detects a failed
    /// primary and promotes the most up-to-date replica.
    #[default]
    Replication,
    /// Replication plus a Sentinel StatefulSet; Sentinel's quorum decides
    /// failovers and the operator observes and journals them.
    Sentinel,
    /// Valkey Cluster: `shards` primaries, each with `replicasPerShard`
    /// replicas, sharing the 16384 hash slots; failover is Valkey's own.
    Cluster,
}

impl Topology {
    /// Every topology, in declaration order.
    pub const ALL: [Topology; 4] = [
        Topology::Standalone,
        Topology::Replication,
        Topology::Sentinel,
        Topology::Cluster,
    ];

    /// The name used in YAML and in the schema (`"Replication"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::Standalone => "Standalone",
            Topology::Replication => "Replication",
            Topology::Sentinel => "Sentinel",
            Topology::Cluster => "Cluster",
        }
    }

    /// `true` when `spec.replicas` applies (every topology but Cluster).
    pub fn uses_replicas(self) -> bool {
        match self {
            Topology::Standalone | Topology::Replication | Topology::Sentinel => true,
            Topology::Cluster => false,
        }
    }

    /// `true` when `spec.shards`, `spec.replicasPerShard` and
    /// `spec.clusterNodeTimeoutMilliseconds` apply.
    pub fn is_cluster(self) -> bool {
        matches!(self, Topology::Cluster)
    }

    /// `true` when `spec.sentinel` applies.
    pub fn uses_sentinel(self) -> bool {
        matches!(self, Topology::Sentinel)
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
