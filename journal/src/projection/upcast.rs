//! Snapshots of an older format read into today's projection, so that an
//! operator upgraded over a compacted journal (whose early events are gone,
//! so the projection cannot be folded again from seq 1) keeps its state.
//!
//! Format 6 kept the single decided primary, its replication id and the
//! boot primary as top-level fields of the projection; format 7 holds them
//! in its Replication part. Format 8 added the reshard part at the end,
//! format 9 the Sentinel part after it, format 10 the ACL users part
//! after that, format 11 the TLS part, format 12 the backups part.
//! Those formats are positional (bincode), so each is read through a copy
//! of its field order, then moved. Format 13 stores the state with named
//! fields: a part added since reads as its default, with no copy. (The
//! copies hold today's nested types, which must therefore keep the
//! layout they had in those formats, byte for byte: positional bincode
//! has no field names, so a field added to a nested type, even last and
//! `#[serde(default)]`, would shift everything after it and misread
//! every such snapshot. A new piece of the projection is a new top-level
//! field of `ClusterState` instead, left out of the snapshot while empty
//! — as `sources` and `sentinel_info_periods` are.)

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use uuid::Uuid;

use super::backups::BackupsPart;
use super::replication::ReplicationPart;
use super::reshard::ReshardPart;
use super::sentinel::SentinelPart;
use super::tls::TlsPart;
use super::users::UsersPart;
use super::{
    Anomaly, ClusterState, Counters, DesiredSpec, FailoverRequestView, FailoverView, HistoryEntry,
    InFlightIntent, OperatorView, PodView, SpecStatus, StatefulSetView, cluster,
};
use crate::ids::{ChainHash, ReplId};
use crate::policy::Policy;
use crate::time::Timestamp;

/// The snapshot format [`ClusterStateV6`] reads.
pub const V6: u8 = 6;

/// The projection as format 6 laid it out, field for field.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ClusterStateV6 {
    last_seq: u64,
    last_hash: ChainHash,
    last_at: Timestamp,
    epoch: u64,
    desired: Option<DesiredSpec>,
    spec_status: SpecStatus,
    deleted: bool,
    pods: BTreeMap<String, PodView>,
    kube_nodes: BTreeMap<String, bool>,
    primary: Option<String>,
    in_flight: BTreeMap<Uuid, InFlightIntent>,
    policy: Option<Policy>,
    operator: OperatorView,
    last_snapshot: Option<(u64, ChainHash)>,
    history: VecDeque<HistoryEntry>,
    anomalies: VecDeque<Anomaly>,
    counters: Counters,
    statefulset: Option<StatefulSetView>,
    switchover_request: Option<String>,
    applied_generation: Option<i64>,
    boot_primary: Option<(Option<String>, Option<String>)>,
    primary_replid: Option<ReplId>,
    last_failover: Option<FailoverView>,
    failover_request: Option<FailoverRequestView>,
    cluster: cluster::ClusterPart,
}

impl From<ClusterStateV6> for ClusterState {
    fn from(v6: ClusterStateV6) -> Self {
        ClusterState {
            last_seq: v6.last_seq,
            last_hash: v6.last_hash,
            last_at: v6.last_at,
            epoch: v6.epoch,
            desired: v6.desired,
            spec_status: v6.spec_status,
            deleted: v6.deleted,
            pods: v6.pods,
            kube_nodes: v6.kube_nodes,
            in_flight: v6.in_flight,
            policy: v6.policy,
            operator: v6.operator,
            last_snapshot: v6.last_snapshot,
            history: v6.history,
            anomalies: v6.anomalies,
            counters: v6.counters,
            statefulset: v6.statefulset,
            switchover_request: v6.switchover_request,
            applied_generation: v6.applied_generation,
            last_failover: v6.last_failover,
            failover_request: v6.failover_request,
            replication: ReplicationPart {
                primary: v6.primary,
                primary_replid: v6.primary_replid,
                boot_primary: v6.boot_primary,
            },
            cluster: v6.cluster,
            reshard: ReshardPart::default(),
            sentinel: SentinelPart::default(),
            users: UsersPart::default(),
            tls: TlsPart::default(),
            backups: BackupsPart::default(),
            ..ClusterState::default()
        }
    }
}

/// The snapshot format [`ClusterStateV7`] reads.
pub const V7: u8 = 7;

/// The projection as format 7 laid it out: today's without the reshard
/// part.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ClusterStateV7 {
    last_seq: u64,
    last_hash: ChainHash,
    last_at: Timestamp,
    epoch: u64,
    desired: Option<DesiredSpec>,
    spec_status: SpecStatus,
    deleted: bool,
    pods: BTreeMap<String, PodView>,
    kube_nodes: BTreeMap<String, bool>,
    in_flight: BTreeMap<Uuid, InFlightIntent>,
    policy: Option<Policy>,
    operator: OperatorView,
    last_snapshot: Option<(u64, ChainHash)>,
    history: VecDeque<HistoryEntry>,
    anomalies: VecDeque<Anomaly>,
    counters: Counters,
    statefulset: Option<StatefulSetView>,
    switchover_request: Option<String>,
    applied_generation: Option<i64>,
    last_failover: Option<FailoverView>,
    failover_request: Option<FailoverRequestView>,
    replication: ReplicationPart,
    cluster: cluster::ClusterPart,
}

impl From<ClusterStateV7> for ClusterState {
    fn from(v7: ClusterStateV7) -> Self {
        ClusterState {
            last_seq: v7.last_seq,
            last_hash: v7.last_hash,
            last_at: v7.last_at,
            epoch: v7.epoch,
            desired: v7.desired,
            spec_status: v7.spec_status,
            deleted: v7.deleted,
            pods: v7.pods,
            kube_nodes: v7.kube_nodes,
            in_flight: v7.in_flight,
            policy: v7.policy,
            operator: v7.operator,
            last_snapshot: v7.last_snapshot,
            history: v7.history,
            anomalies: v7.anomalies,
            counters: v7.counters,
            statefulset: v7.statefulset,
            switchover_request: v7.switchover_request,
            applied_generation: v7.applied_generation,
            last_failover: v7.last_failover,
            failover_request: v7.failover_request,
            replication: v7.replication,
            cluster: v7.cluster,
            reshard: ReshardPart::default(),
            sentinel: SentinelPart::default(),
            users: UsersPart::default(),
            tls: TlsPart::default(),
            backups: BackupsPart::default(),
            ..ClusterState::default()
        }
    }
}

/// The snapshot format [`ClusterStateV8`] reads.
pub const V8: u8 = 8;

/// The projection as format 8 laid it out: today's without the Sentinel
/// part.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ClusterStateV8 {
    last_seq: u64,
    last_hash: ChainHash,
    last_at: Timestamp,
    epoch: u64,
    desired: Option<DesiredSpec>,
    spec_status: SpecStatus,
    deleted: bool,
    pods: BTreeMap<String, PodView>,
    kube_nodes: BTreeMap<String, bool>,
    in_flight: BTreeMap<Uuid, InFlightIntent>,
    policy: Option<Policy>,
    operator: OperatorView,
    last_snapshot: Option<(u64, ChainHash)>,
    history: VecDeque<HistoryEntry>,
    anomalies: VecDeque<Anomaly>,
    counters: Counters,
    statefulset: Option<StatefulSetView>,
    switchover_request: Option<String>,
    applied_generation: Option<i64>,
    last_failover: Option<FailoverView>,
    failover_request: Option<FailoverRequestView>,
    replication: ReplicationPart,
    cluster: cluster::ClusterPart,
    reshard: ReshardPart,
}

impl From<ClusterStateV8> for ClusterState {
    fn from(v8: ClusterStateV8) -> Self {
        ClusterState {
            last_seq: v8.last_seq,
            last_hash: v8.last_hash,
            last_at: v8.last_at,
            epoch: v8.epoch,
            desired: v8.desired,
            spec_status: v8.spec_status,
            deleted: v8.deleted,
            pods: v8.pods,
            kube_nodes: v8.kube_nodes,
            in_flight: v8.in_flight,
            policy: v8.policy,
            operator: v8.operator,
            last_snapshot: v8.last_snapshot,
            history: v8.history,
            anomalies: v8.anomalies,
            counters: v8.counters,
            statefulset: v8.statefulset,
            switchover_request: v8.switchover_request,
            applied_generation: v8.applied_generation,
            last_failover: v8.last_failover,
            failover_request: v8.failover_request,
            replication: v8.replication,
            cluster: v8.cluster,
            reshard: v8.reshard,
            sentinel: SentinelPart::default(),
            users: UsersPart::default(),
            tls: TlsPart::default(),
            backups: BackupsPart::default(),
            ..ClusterState::default()
        }
    }
}

/// The snapshot format [`ClusterStateV9`] reads.
pub const V9: u8 = 9;

/// The projection as format 9 laid it out: today's without the ACL users
/// part.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ClusterStateV9 {
    last_seq: u64,
    last_hash: ChainHash,
    last_at: Timestamp,
    epoch: u64,
    desired: Option<DesiredSpec>,
    spec_status: SpecStatus,
    deleted: bool,
    pods: BTreeMap<String, PodView>,
    kube_nodes: BTreeMap<String, bool>,
    in_flight: BTreeMap<Uuid, InFlightIntent>,
    policy: Option<Policy>,
    operator: OperatorView,
    last_snapshot: Option<(u64, ChainHash)>,
    history: VecDeque<HistoryEntry>,
    anomalies: VecDeque<Anomaly>,
    counters: Counters,
    statefulset: Option<StatefulSetView>,
    switchover_request: Option<String>,
    applied_generation: Option<i64>,
    last_failover: Option<FailoverView>,
    failover_request: Option<FailoverRequestView>,
    replication: ReplicationPart,
    cluster: cluster::ClusterPart,
    reshard: ReshardPart,
    sentinel: SentinelPart,
}

impl From<ClusterStateV9> for ClusterState {
    fn from(v9: ClusterStateV9) -> Self {
        ClusterState {
            last_seq: v9.last_seq,
            last_hash: v9.last_hash,
            last_at: v9.last_at,
            epoch: v9.epoch,
            desired: v9.desired,
            spec_status: v9.spec_status,
            deleted: v9.deleted,
            pods: v9.pods,
            kube_nodes: v9.kube_nodes,
            in_flight: v9.in_flight,
            policy: v9.policy,
            operator: v9.operator,
            last_snapshot: v9.last_snapshot,
            history: v9.history,
            anomalies: v9.anomalies,
            counters: v9.counters,
            statefulset: v9.statefulset,
            switchover_request: v9.switchover_request,
            applied_generation: v9.applied_generation,
            last_failover: v9.last_failover,
            failover_request: v9.failover_request,
            replication: v9.replication,
            cluster: v9.cluster,
            reshard: v9.reshard,
            sentinel: v9.sentinel,
            users: UsersPart::default(),
            tls: TlsPart::default(),
            backups: BackupsPart::default(),
            ..ClusterState::default()
        }
    }
}

/// The snapshot format [`ClusterStateV10`] reads.
pub const V10: u8 = 10;

/// The projection as format 10 laid it out: today's without the TLS part.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ClusterStateV10 {
    last_seq: u64,
    last_hash: ChainHash,
    last_at: Timestamp,
    epoch: u64,
    desired: Option<DesiredSpec>,
    spec_status: SpecStatus,
    deleted: bool,
    pods: BTreeMap<String, PodView>,
    kube_nodes: BTreeMap<String, bool>,
    in_flight: BTreeMap<Uuid, InFlightIntent>,
    policy: Option<Policy>,
    operator: OperatorView,
    last_snapshot: Option<(u64, ChainHash)>,
    history: VecDeque<HistoryEntry>,
    anomalies: VecDeque<Anomaly>,
    counters: Counters,
    statefulset: Option<StatefulSetView>,
    switchover_request: Option<String>,
    applied_generation: Option<i64>,
    last_failover: Option<FailoverView>,
    failover_request: Option<FailoverRequestView>,
    replication: ReplicationPart,
    cluster: cluster::ClusterPart,
    reshard: ReshardPart,
    sentinel: SentinelPart,
    users: UsersPart,
}

impl From<ClusterStateV10> for ClusterState {
    fn from(v10: ClusterStateV10) -> Self {
        ClusterState {
            last_seq: v10.last_seq,
            last_hash: v10.last_hash,
            last_at: v10.last_at,
            epoch: v10.epoch,
            desired: v10.desired,
            spec_status: v10.spec_status,
            deleted: v10.deleted,
            pods: v10.pods,
            kube_nodes: v10.kube_nodes,
            in_flight: v10.in_flight,
            policy: v10.policy,
            operator: v10.operator,
            last_snapshot: v10.last_snapshot,
            history: v10.history,
            anomalies: v10.anomalies,
            counters: v10.counters,
            statefulset: v10.statefulset,
            switchover_request: v10.switchover_request,
            applied_generation: v10.applied_generation,
            last_failover: v10.last_failover,
            failover_request: v10.failover_request,
            replication: v10.replication,
            cluster: v10.cluster,
            reshard: v10.reshard,
            sentinel: v10.sentinel,
            users: v10.users,
            tls: TlsPart::default(),
            backups: BackupsPart::default(),
            ..ClusterState::default()
        }
    }
}

/// The snapshot format [`ClusterStateV11`] reads.
pub const V11: u8 = 11;

/// The projection as format 10 laid it out: today's without the TLS part.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ClusterStateV11 {
    last_seq: u64,
    last_hash: ChainHash,
    last_at: Timestamp,
    epoch: u64,
    desired: Option<DesiredSpec>,
    spec_status: SpecStatus,
    deleted: bool,
    pods: BTreeMap<String, PodView>,
    kube_nodes: BTreeMap<String, bool>,
    in_flight: BTreeMap<Uuid, InFlightIntent>,
    policy: Option<Policy>,
    operator: OperatorView,
    last_snapshot: Option<(u64, ChainHash)>,
    history: VecDeque<HistoryEntry>,
    anomalies: VecDeque<Anomaly>,
    counters: Counters,
    statefulset: Option<StatefulSetView>,
    switchover_request: Option<String>,
    applied_generation: Option<i64>,
    last_failover: Option<FailoverView>,
    failover_request: Option<FailoverRequestView>,
    replication: ReplicationPart,
    cluster: cluster::ClusterPart,
    reshard: ReshardPart,
    sentinel: SentinelPart,
    users: UsersPart,
    tls: TlsPart,
}

impl From<ClusterStateV11> for ClusterState {
    fn from(v11: ClusterStateV11) -> Self {
        ClusterState {
            last_seq: v11.last_seq,
            last_hash: v11.last_hash,
            last_at: v11.last_at,
            epoch: v11.epoch,
            desired: v11.desired,
            spec_status: v11.spec_status,
            deleted: v11.deleted,
            pods: v11.pods,
            kube_nodes: v11.kube_nodes,
            in_flight: v11.in_flight,
            policy: v11.policy,
            operator: v11.operator,
            last_snapshot: v11.last_snapshot,
            history: v11.history,
            anomalies: v11.anomalies,
            counters: v11.counters,
            statefulset: v11.statefulset,
            switchover_request: v11.switchover_request,
            applied_generation: v11.applied_generation,
            last_failover: v11.last_failover,
            failover_request: v11.failover_request,
            replication: v11.replication,
            cluster: v11.cluster,
            reshard: v11.reshard,
            sentinel: v11.sentinel,
            users: v11.users,
            tls: v11.tls,
            backups: BackupsPart::default(),
            ..ClusterState::default()
        }
    }
}

/// The snapshot format [`ClusterStateV12`] reads: the last positional
/// one. From format 13 on the state is stored with named fields (see
/// `codec`), and a field added to the projection needs no copy here.
pub const V12: u8 = 12;

/// The projection as format 12 laid it out: today's up to its backups
/// part, before the parts added since.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct ClusterStateV12 {
    last_seq: u64,
    last_hash: ChainHash,
    last_at: Timestamp,
    epoch: u64,
    desired: Option<DesiredSpec>,
    spec_status: SpecStatus,
    deleted: bool,
    pods: BTreeMap<String, PodView>,
    kube_nodes: BTreeMap<String, bool>,
    in_flight: BTreeMap<Uuid, InFlightIntent>,
    policy: Option<Policy>,
    operator: OperatorView,
    last_snapshot: Option<(u64, ChainHash)>,
    history: VecDeque<HistoryEntry>,
    anomalies: VecDeque<Anomaly>,
    counters: Counters,
    statefulset: Option<StatefulSetView>,
    switchover_request: Option<String>,
    applied_generation: Option<i64>,
    last_failover: Option<FailoverView>,
    failover_request: Option<FailoverRequestView>,
    replication: ReplicationPart,
    cluster: cluster::ClusterPart,
    reshard: ReshardPart,
    sentinel: SentinelPart,
    users: UsersPart,
    tls: TlsPart,
    backups: BackupsPart,
}

impl From<ClusterStateV12> for ClusterState {
    fn from(v12: ClusterStateV12) -> Self {
        ClusterState {
            last_seq: v12.last_seq,
            last_hash: v12.last_hash,
            last_at: v12.last_at,
            epoch: v12.epoch,
            desired: v12.desired,
            spec_status: v12.spec_status,
            deleted: v12.deleted,
            pods: v12.pods,
            kube_nodes: v12.kube_nodes,
            in_flight: v12.in_flight,
            policy: v12.policy,
            operator: v12.operator,
            last_snapshot: v12.last_snapshot,
            history: v12.history,
            anomalies: v12.anomalies,
            counters: v12.counters,
            statefulset: v12.statefulset,
            switchover_request: v12.switchover_request,
            applied_generation: v12.applied_generation,
            last_failover: v12.last_failover,
            failover_request: v12.failover_request,
            replication: v12.replication,
            cluster: v12.cluster,
            reshard: v12.reshard,
            sentinel: v12.sentinel,
            users: v12.users,
            tls: v12.tls,
            backups: v12.backups,
            ..ClusterState::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Head;
    use crate::event::{Event, PodPhase};
    use crate::ids::StreamId;
    use crate::snapshot;
    use crate::writer::{NewEvent, encode_batch};

    /// What format 6 wrote for `state`.
    fn as_v6(s: ClusterState) -> ClusterStateV6 {
        ClusterStateV6 {
            last_seq: s.last_seq,
            last_hash: s.last_hash,
            last_at: s.last_at,
            epoch: s.epoch,
            desired: s.desired,
            spec_status: s.spec_status,
            deleted: s.deleted,
            pods: s.pods,
            kube_nodes: s.kube_nodes,
            primary: s.replication.primary,
            in_flight: s.in_flight,
            policy: s.policy,
            operator: s.operator,
            last_snapshot: s.last_snapshot,
            history: s.history,
            anomalies: s.anomalies,
            counters: s.counters,
            statefulset: s.statefulset,
            switchover_request: s.switchover_request,
            applied_generation: s.applied_generation,
            boot_primary: s.replication.boot_primary,
            primary_replid: s.replication.primary_replid,
            last_failover: s.last_failover,
            failover_request: s.failover_request,
            cluster: s.cluster,
        }
    }

    /// What format 7 wrote for `state`.
    fn as_v7(s: ClusterState) -> ClusterStateV7 {
        ClusterStateV7 {
            last_seq: s.last_seq,
            last_hash: s.last_hash,
            last_at: s.last_at,
            epoch: s.epoch,
            desired: s.desired,
            spec_status: s.spec_status,
            deleted: s.deleted,
            pods: s.pods,
            kube_nodes: s.kube_nodes,
            in_flight: s.in_flight,
            policy: s.policy,
            operator: s.operator,
            last_snapshot: s.last_snapshot,
            history: s.history,
            anomalies: s.anomalies,
            counters: s.counters,
            statefulset: s.statefulset,
            switchover_request: s.switchover_request,
            applied_generation: s.applied_generation,
            last_failover: s.last_failover,
            failover_request: s.failover_request,
            replication: s.replication,
            cluster: s.cluster,
        }
    }

    /// What format 9 wrote for `state`.
    fn as_v9(s: ClusterState) -> ClusterStateV9 {
        ClusterStateV9 {
            last_seq: s.last_seq,
            last_hash: s.last_hash,
            last_at: s.last_at,
            epoch: s.epoch,
            desired: s.desired,
            spec_status: s.spec_status,
            deleted: s.deleted,
            pods: s.pods,
            kube_nodes: s.kube_nodes,
            in_flight: s.in_flight,
            policy: s.policy,
            operator: s.operator,
            last_snapshot: s.last_snapshot,
            history: s.history,
            anomalies: s.anomalies,
            counters: s.counters,
            statefulset: s.statefulset,
            switchover_request: s.switchover_request,
            applied_generation: s.applied_generation,
            last_failover: s.last_failover,
            failover_request: s.failover_request,
            replication: s.replication,
            cluster: s.cluster,
            reshard: s.reshard,
            sentinel: s.sentinel,
        }
    }

    /// What format 10 wrote for `state`.
    fn as_v10(s: ClusterState) -> ClusterStateV10 {
        let v9 = as_v9(s.clone());
        ClusterStateV10 {
            last_seq: v9.last_seq,
            last_hash: v9.last_hash,
            last_at: v9.last_at,
            epoch: v9.epoch,
            desired: v9.desired,
            spec_status: v9.spec_status,
            deleted: v9.deleted,
            pods: v9.pods,
            kube_nodes: v9.kube_nodes,
            in_flight: v9.in_flight,
            policy: v9.policy,
            operator: v9.operator,
            last_snapshot: v9.last_snapshot,
            history: v9.history,
            anomalies: v9.anomalies,
            counters: v9.counters,
            statefulset: v9.statefulset,
            switchover_request: v9.switchover_request,
            applied_generation: v9.applied_generation,
            last_failover: v9.last_failover,
            failover_request: v9.failover_request,
            replication: v9.replication,
            cluster: v9.cluster,
            reshard: v9.reshard,
            sentinel: v9.sentinel,
            users: s.users,
        }
    }

    #[test]
    fn a_format_10_snapshot_reads_with_an_empty_tls_part() {
        let mut state = ClusterState::new();
        state.replication.primary = Some("demo-1".into());
        state.users.failed.insert(
            "demo-0".into(),
            crate::projection::users::FailedSync {
                wants: BTreeMap::new(),
                error: "ERR".into(),
            },
        );
        let old = crate::codec::encode_snapshot_of(
            state.last_seq,
            state.last_hash,
            &as_v10(state.clone()),
            V10,
        )
        .unwrap();
        let read = snapshot::decode(&old).expect("a format 10 snapshot reads");
        assert_eq!(read.state, state);
        assert!(read.state.tls.certificate.is_none());
        assert_eq!(read.state.users.failed.len(), 1);
    }

    /// What format 11 wrote for `state`.
    fn as_v11(s: ClusterState) -> ClusterStateV11 {
        let v10 = as_v10(s.clone());
        ClusterStateV11 {
            last_seq: v10.last_seq,
            last_hash: v10.last_hash,
            last_at: v10.last_at,
            epoch: v10.epoch,
            desired: v10.desired,
            spec_status: v10.spec_status,
            deleted: v10.deleted,
            pods: v10.pods,
            kube_nodes: v10.kube_nodes,
            in_flight: v10.in_flight,
            policy: v10.policy,
            operator: v10.operator,
            last_snapshot: v10.last_snapshot,
            history: v10.history,
            anomalies: v10.anomalies,
            counters: v10.counters,
            statefulset: v10.statefulset,
            switchover_request: v10.switchover_request,
            applied_generation: v10.applied_generation,
            last_failover: v10.last_failover,
            failover_request: v10.failover_request,
            replication: v10.replication,
            cluster: v10.cluster,
            reshard: v10.reshard,
            sentinel: v10.sentinel,
            users: v10.users,
            tls: s.tls,
        }
    }

    #[test]
    fn a_format_11_snapshot_reads_with_an_empty_backups_part() {
        let mut state = ClusterState::new();
        state.replication.primary = Some("demo-1".into());
        state
            .tls
            .served
            .insert("demo-0".into(), ("ab".into(), state.last_at));
        let old = crate::codec::encode_snapshot_of(
            state.last_seq,
            state.last_hash,
            &as_v11(state.clone()),
            V11,
        )
        .unwrap();
        let read = snapshot::decode(&old).expect("a format 11 snapshot reads");
        assert_eq!(read.state, state);
        assert!(read.state.backups.runs.is_empty());
        assert_eq!(read.state.tls.served.len(), 1);
    }

    #[test]
    fn a_format_9_snapshot_reads_with_an_empty_users_part() {
        let mut state = ClusterState::new();
        state.replication.primary = Some("demo-2".into());
        state.sentinel.switches = 3;
        let old = crate::codec::encode_snapshot_of(
            state.last_seq,
            state.last_hash,
            &as_v9(state.clone()),
            V9,
        )
        .unwrap();
        let read = snapshot::decode(&old).expect("a format 9 snapshot reads");
        assert_eq!(read.state, state);
        assert!(read.state.users.records.is_empty());
    }

    #[test]
    fn a_format_7_snapshot_reads_with_an_empty_reshard_part() {
        let mut state = ClusterState::new();
        state.last_seq = 0;
        state.replication.primary = Some("demo-1".into());
        let old = crate::codec::encode_snapshot_of(
            state.last_seq,
            state.last_hash,
            &as_v7(state.clone()),
            V7,
        )
        .unwrap();
        let read = snapshot::decode(&old).expect("a format 7 snapshot reads");
        assert_eq!(read.state, state);
    }

    #[test]
    fn a_format_6_snapshot_reads_into_the_replication_part() {
        let stream = StreamId::new("upcast").unwrap();
        let events = vec![
            Event::PodObserved {
                pod: "demo-0".into(),
                uid: "u0".into(),
                ip: Some("10.0.0.1".into()),
                phase: PodPhase::Running,
                ready: true,
                node: None,
                revision: None,
            },
            Event::ReplicaPromoted {
                pod: "demo-0".into(),
                from: None,
                offset: 42,
            },
        ];
        let (envelopes, _) = encode_batch(
            &stream,
            Head::EMPTY,
            1,
            events
                .into_iter()
                .enumerate()
                .map(|(i, body)| NewEvent {
                    id: Uuid::from_u128(i as u128 + 1),
                    at: Timestamp(1_000_000 * (i as i64 + 1)),
                    cause: None,
                    body,
                })
                .collect(),
        )
        .unwrap();
        let mut state = ClusterState::new();
        for e in &envelopes {
            state.apply(e);
        }
        state.replication.boot_primary = Some((Some("demo-0".into()), Some("10.0.0.1".into())));
        assert_eq!(state.replication.primary.as_deref(), Some("demo-0"));
        let old = crate::codec::encode_snapshot_of(
            state.last_seq,
            state.last_hash,
            &as_v6(state.clone()),
            V6,
        )
        .unwrap();
        let read = snapshot::decode(&old).expect("a format 6 snapshot reads");
        assert_eq!(read.state, state);
        // Today's format still reads as itself, and no other old one does.
        assert_eq!(
            snapshot::decode(&snapshot::encode(&state).unwrap().0)
                .unwrap()
                .state,
            state
        );
        let five = crate::codec::encode_snapshot_of(
            state.last_seq,
            state.last_hash,
            &as_v6(state.clone()),
            5,
        )
        .unwrap();
        assert!(matches!(
            snapshot::decode(&five),
            Err(crate::codec::CodecError::UnsupportedVersion(5))
        ));
    }

    #[test]
    fn a_format_12_snapshot_reads_with_the_parts_added_since_empty() {
        let mut state = ClusterState::new();
        state.replication.primary = Some("demo-1".into());
        state.deleted = true;
        let old = crate::codec::encode_snapshot_of(
            state.last_seq,
            state.last_hash,
            &as_v12(state.clone()),
            V12,
        )
        .unwrap();
        let read = snapshot::decode(&old).expect("a format 12 snapshot reads");
        assert_eq!(read.state, state);
        assert_eq!(read.digest, None, "a positional snapshot carried no digest");
    }

    /// What format 12 wrote for `state`.
    fn as_v12(s: ClusterState) -> ClusterStateV12 {
        ClusterStateV12 {
            last_seq: s.last_seq,
            last_hash: s.last_hash,
            last_at: s.last_at,
            epoch: s.epoch,
            desired: s.desired,
            spec_status: s.spec_status,
            deleted: s.deleted,
            pods: s.pods,
            kube_nodes: s.kube_nodes,
            in_flight: s.in_flight,
            policy: s.policy,
            operator: s.operator,
            last_snapshot: s.last_snapshot,
            history: s.history,
            anomalies: s.anomalies,
            counters: s.counters,
            statefulset: s.statefulset,
            switchover_request: s.switchover_request,
            applied_generation: s.applied_generation,
            last_failover: s.last_failover,
            failover_request: s.failover_request,
            replication: s.replication,
            cluster: s.cluster,
            reshard: s.reshard,
            sentinel: s.sentinel,
            users: s.users,
            tls: s.tls,
            backups: s.backups,
        }
    }
}
