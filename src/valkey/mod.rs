//! The Valkey data-plane client: probes (`ROLE`, `INFO replication`,
//! `CLUSTER NODES`, `CLUSTER GETSLOTMIGRATIONS`) for the observers and
//! admin commands (`REPLICAOF`, `FAILOVER`, `WAIT`, `CONFIG SET`, the
//! cluster's `MEET` to `MIGRATESLOTS`) for the executors.
//!
//! It owns connections, timeouts, authentication and the classification of
//! failures into death, slowness and refusals. It must not decide anything,
//! journal anything or log the password: callers turn its results into
//! observations and outcomes.

mod client;
mod cluster;
mod error;
mod parse;
mod parse_cluster;
mod password;
mod reshard;

pub use client::{Probe, Timeouts, ValkeyClient};
pub use cluster::ClusterProbe;
pub use error::{Phase, ProbeError};
pub use parse::{
    ConnectedReplica, ParseError, PrimaryLink, ReplicationInfo, Role, RoleReplica, RoleReply,
    parse_info_replication, parse_role,
};
pub use parse_cluster::{
    ClusterInfo, ClusterNodeLine, ClusterShard, ShardNode, ShardNodeHealth, SlotMigration,
    parse_cluster_info, parse_cluster_node_line, parse_cluster_nodes, parse_cluster_shards,
    parse_slot_migrations,
};
pub use password::Password;
pub use reshard::SetSlot;
