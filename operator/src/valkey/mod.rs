//! The Valkey data-plane client: probes (`ROLE`, `INFO replication`,
//! `CLUSTER NODES`, `CLUSTER GETSLOTMIGRATIONS`) for the observers and
//! admin commands (`REPLICAOF`, `FAILOVER`, `WAIT`, `CONFIG SET`, the
//! cluster's `MEET` to `MIGRATESLOTS`, the ACL commands) for the executors.
//! It also streams RDB snapshots out of a server for backups (`rdb_stream`)
//! and follows a replication stream for the archive (`repl_follow`).
//!
//! It owns connections, timeouts, authentication and the classification of
//! failures into death, slowness and refusals. It must not decide anything,
//! journal anything or log the password: callers turn its results into
//! observations and outcomes.

mod acl;
mod client;
mod cluster;
mod crc64;
mod held;
mod rdb_stream;
mod repl_follow;
mod reply;
mod reshard;
mod sentinel;
mod sentinel_refusal;
mod socket;
mod tls;

pub use crate::credentials::{
    FINGERPRINT_KEY_LEN, FingerprintKey, FingerprintKeyError, Password, is_unkeyed, unkeyed_digest,
    unkeyed_password_fingerprint,
};
pub use acl::{acl_user_lines, acl_users};
pub use client::{Timeouts, ValkeyClient};
pub use crc64::{Crc64, crc64};
pub use held::Held;
pub use logbook_core::replies::{
    ClusterInfo, ClusterNodeLine, ClusterProbe, ClusterShard, ConnectedReplica, InstanceDetails,
    ParseError, Phase, PrimaryLink, Probe, ProbeError, ReplicationInfo, Reply, Role, RoleReplica,
    RoleReply, SentinelEvent, SentinelNotice, SentinelPeer, SentinelPrimary, SentinelProbe,
    SentinelReplica, ShardNode, ShardNodeHealth, SlotMigration, SwitchMaster, VoteForLeader,
    parse_cluster_info, parse_cluster_node_line, parse_cluster_nodes, parse_cluster_shards,
    parse_info_replication, parse_instance_details, parse_new_epoch, parse_role,
    parse_sentinel_event, parse_sentinel_master, parse_sentinel_replicas, parse_sentinel_sentinels,
    parse_slot_migrations, parse_switch_master, parse_vote_for_leader,
};
pub use rdb_stream::{
    FullResync, RDB_IDLE_TIMEOUT, RdbAuth, RdbCheck, RdbCheckError, RdbCrc, RdbFraming, RdbReport,
    RdbSnapshot, RdbStream, open_rdb_stream, open_rdb_stream_with_idle,
};
pub use repl_follow::{
    ARCHIVER_ADDRESS, FOLLOW_IDLE_TIMEOUT, FullPayload, Opened, ReplPosition, ReplStream,
    open_follower, wall_ms,
};
pub use reply::reply;
pub use reshard::SetSlot;
pub use sentinel::{SentinelEvents, subscribe_sentinel_events};
pub use sentinel_refusal::SentinelRefusal;
pub use tls::{TlsSettings, TlsSetupError, certificate_fingerprint, pem_fingerprint};
