//! What one probe of a server, a cluster node or a Sentinel read, all in
//! one round trip: the parsed replies the observers fold.

use std::time::Duration;

use logbook_journal::SlotMigrationJob;

use super::{
    ClusterInfo, ClusterNodeLine, ReplicationInfo, RoleReply, SentinelPeer, SentinelPrimary,
    SentinelReplica,
};

/// One probe of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `INFO replication`.
    pub info: ReplicationInfo,
    /// `ROLE`, taken just before `INFO`.
    pub role: RoleReply,
    /// Round trip of `ROLE` alone (connection set-up excluded).
    pub latency: Duration,
}

/// One probe of a cluster node, all taken in the same round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterProbe {
    /// `CLUSTER NODES`.
    pub nodes: Vec<ClusterNodeLine>,
    /// `CLUSTER INFO`.
    pub info: ClusterInfo,
    /// `INFO replication`.
    pub replication: ReplicationInfo,
    /// `CLUSTER GETSLOTMIGRATIONS`: the atomic slot migration jobs the
    /// node lists, running and finished (until its process restarts, at
    /// most `cluster-slot-migration-log-max-len`); `None` when the server
    /// has no atomic slot migration (Redis, Valkey before 9.0).
    pub migrations: Option<Vec<SlotMigrationJob>>,
}

/// One probe of a Sentinel about one monitored name, in one round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelProbe {
    /// `SENTINEL MYID`.
    pub myid: String,
    /// `SENTINEL MASTER`; `None` when the Sentinel does not monitor the
    /// name.
    pub primary: Option<SentinelPrimary>,
    /// `SENTINEL REPLICAS` (empty when the name is unknown).
    pub replicas: Vec<SentinelReplica>,
    /// `SENTINEL SENTINELS`: the other Sentinels (empty when the name is
    /// unknown).
    pub sentinels: Vec<SentinelPeer>,
    /// `info-period` of `SENTINEL DEBUG`, in milliseconds; `None` when
    /// the Sentinel refused the command (one older than Redis 7) or left
    /// it out.
    pub info_period_ms: Option<u64>,
    /// Round trip of the five commands together.
    pub latency: Duration,
}
