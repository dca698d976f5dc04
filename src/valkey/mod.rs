//! The Valkey data-plane client: probes (`ROLE`, `INFO replication`) for the
//! observers and admin commands (`REPLICAOF`, `FAILOVER`, `WAIT`,
//! `CONFIG SET`) for the executors.
//!
//! It owns connections, timeouts, authentication and the classification of
//! failures into death, slowness and refusals. It must not decide anything,
//! journal anything or log the password: callers turn its results into
//! observations and outcomes.

mod client;
mod cluster_client;
mod cluster_parse;
mod error;
mod parse;
mod password;

pub use client::{Probe, Timeouts, ValkeyClient};
pub use cluster_client::ClusterProbe;
pub use cluster_parse::{ClusterInfo, ClusterNodeLine, parse_cluster_info, parse_cluster_nodes};
pub use error::{Phase, ProbeError};
pub use parse::{
    ConnectedReplica, ParseError, PrimaryLink, ReplicationInfo, Role, RoleReplica, RoleReply,
    parse_info_replication, parse_role,
};
pub use password::Password;
