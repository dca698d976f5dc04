//! One test per rule of [`validate`]: the valid case passes, the invalid case
//! fails with exactly the expected path and kind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::v1alpha1::{
    IssuerRef, Persistence, SecretKeyRef, SentinelSpec, Topology, ValkeyClusterSpec,
};

mod restore;
mod security_and_config;

fn spec(topology: Topology) -> ValkeyClusterSpec {
    ValkeyClusterSpec::with_topology(topology)
}

fn errors(
    spec: &ValkeyClusterSpec,
    old: Option<&ValkeyClusterSpec>,
) -> Vec<(String, FieldErrorKind)> {
    match validate(spec, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.path, e.kind)).collect(),
    }
}

#[track_caller]
fn assert_valid(spec: &ValkeyClusterSpec) {
    if let Err(errors) = validate(spec, None) {
        panic!("expected valid, got: {}", describe(&errors));
    }
}

#[track_caller]
fn assert_only(spec: &ValkeyClusterSpec, path: &str, kind: FieldErrorKind) {
    assert_only_with_old(spec, None, path, kind);
}

#[track_caller]
fn assert_only_with_old(
    spec: &ValkeyClusterSpec,
    old: Option<&ValkeyClusterSpec>,
    path: &str,
    kind: FieldErrorKind,
) {
    assert_eq!(errors(spec, old), vec![(path.to_owned(), kind)]);
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_are_valid_for_every_topology() {
    for topology in Topology::ALL {
        assert_valid(&spec(topology));
    }
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let mut s = spec(Topology::Standalone);
    s.replicas = Some(2);
    s.shards = Some(3);
    s.image = String::new();
    s.config = map(&[("port", "1")]);
    assert_eq!(validate(&s, None).unwrap_err().len(), 4);
}

#[test]
fn display_is_path_then_message() {
    let mut s = spec(Topology::Sentinel);
    s.sentinel = Some(SentinelSpec {
        replicas: 4,
        ..SentinelSpec::default()
    });
    let errs = validate(&s, None).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "spec.sentinel.replicas: sentinel.replicas must be odd so a majority survives a split, got 4"
    );
    assert_eq!(describe(&errs), errs[0].to_string());
}

#[test]
fn image() {
    let mut s = spec(Topology::Replication);
    s.image = String::new();
    assert_only(&s, "spec.image", FieldErrorKind::Required);
    s.image = "valkey/valkey:9.1 --evil".into();
    assert_only(&s, "spec.image", FieldErrorKind::Invalid);
    s.image = "registry.example.com:5000/valkey@sha256:abc".into();
    assert_valid(&s);
}

#[test]
fn image_pull_secrets() {
    let mut s = spec(Topology::Replication);
    s.image_pull_secrets = vec![LocalObjectReference {
        name: "regcred".into(),
    }];
    assert_valid(&s);
    s.image_pull_secrets.push(LocalObjectReference {
        name: "Bad_Name".into(),
    });
    assert_only(&s, "spec.imagePullSecrets[1].name", FieldErrorKind::Invalid);
}

#[test]
fn standalone_replicas_must_be_one() {
    let mut s = spec(Topology::Standalone);
    s.replicas = Some(1);
    assert_valid(&s);
    s.replicas = Some(2);
    assert_only(&s, "spec.replicas", FieldErrorKind::Invalid);
    s.replicas = Some(0);
    assert_only(&s, "spec.replicas", FieldErrorKind::Invalid);
}

#[test]
fn replication_and_sentinel_replicas_range() {
    for topology in [Topology::Replication, Topology::Sentinel] {
        let mut s = spec(topology);
        for ok in [1, 3, 100] {
            s.replicas = Some(ok);
            assert_valid(&s);
        }
        for bad in [0, -1, 101, i32::MAX, i32::MIN] {
            s.replicas = Some(bad);
            assert_only(&s, "spec.replicas", FieldErrorKind::OutOfRange);
        }
    }
}

#[test]
fn out_of_range_message_names_value_and_range() {
    let mut s = spec(Topology::Replication);
    s.replicas = Some(101);
    let errs = validate(&s, None).unwrap_err();
    assert_eq!(
        errs[0].message,
        "replicas must be between 1 and 100, got 101"
    );
}

#[test]
fn cluster_forbids_replicas() {
    let mut s = spec(Topology::Cluster);
    s.replicas = Some(3);
    assert_only(&s, "spec.replicas", FieldErrorKind::Forbidden);
}

#[test]
fn cluster_fields_forbidden_outside_cluster() {
    for topology in [
        Topology::Standalone,
        Topology::Replication,
        Topology::Sentinel,
    ] {
        let mut s = spec(topology);
        s.shards = Some(3);
        assert_only(&s, "spec.shards", FieldErrorKind::Forbidden);
        s.shards = None;
        s.replicas_per_shard = Some(1);
        assert_only(&s, "spec.replicasPerShard", FieldErrorKind::Forbidden);
        s.replicas_per_shard = None;
        s.cluster_node_timeout_milliseconds = Some(5000);
        assert_only(
            &s,
            "spec.clusterNodeTimeoutMilliseconds",
            FieldErrorKind::Forbidden,
        );
        s.cluster_node_timeout_milliseconds = None;
        s.failover.takeover_on_quorum_loss = true;
        assert_only(
            &s,
            "spec.failover.takeoverOnQuorumLoss",
            FieldErrorKind::Forbidden,
        );
    }
    let mut s = spec(Topology::Cluster);
    s.failover.takeover_on_quorum_loss = true;
    assert_valid(&s);
}

#[test]
fn cluster_ranges() {
    let mut s = spec(Topology::Cluster);
    s.shards = Some(1);
    s.replicas_per_shard = Some(0);
    s.cluster_node_timeout_milliseconds = Some(1000);
    assert_valid(&s);
    s.shards = Some(500);
    s.replicas_per_shard = Some(5);
    s.cluster_node_timeout_milliseconds = Some(600_000);
    assert_valid(&s);

    s.shards = Some(0);
    assert_only(&s, "spec.shards", FieldErrorKind::OutOfRange);
    s.shards = Some(501);
    assert_only(&s, "spec.shards", FieldErrorKind::OutOfRange);
    s.shards = None;
    s.replicas_per_shard = Some(6);
    assert_only(&s, "spec.replicasPerShard", FieldErrorKind::OutOfRange);
    s.replicas_per_shard = Some(-1);
    assert_only(&s, "spec.replicasPerShard", FieldErrorKind::OutOfRange);
    s.replicas_per_shard = None;
    s.cluster_node_timeout_milliseconds = Some(999);
    assert_only(
        &s,
        "spec.clusterNodeTimeoutMilliseconds",
        FieldErrorKind::OutOfRange,
    );
}

#[test]
fn sentinel_forbidden_outside_sentinel() {
    for topology in [
        Topology::Standalone,
        Topology::Replication,
        Topology::Cluster,
    ] {
        let mut s = spec(topology);
        s.sentinel = Some(SentinelSpec::default());
        assert_only(&s, "spec.sentinel", FieldErrorKind::Forbidden);
    }
}

#[test]
fn sentinel_replicas_odd_and_in_range() {
    let mut s = spec(Topology::Sentinel);
    for ok in [3, 5, 7, 9] {
        s.sentinel = Some(SentinelSpec {
            replicas: ok,
            ..SentinelSpec::default()
        });
        assert_valid(&s);
    }
    s.sentinel = Some(SentinelSpec {
        replicas: 4,
        ..SentinelSpec::default()
    });
    assert_only(&s, "spec.sentinel.replicas", FieldErrorKind::Invalid);
    s.sentinel = Some(SentinelSpec {
        replicas: 1,
        ..SentinelSpec::default()
    });
    assert_only(&s, "spec.sentinel.replicas", FieldErrorKind::OutOfRange);
    s.sentinel = Some(SentinelSpec {
        replicas: 11,
        ..SentinelSpec::default()
    });
    assert_only(&s, "spec.sentinel.replicas", FieldErrorKind::OutOfRange);
    // Even and too small: both reported.
    s.sentinel = Some(SentinelSpec {
        replicas: 2,
        ..SentinelSpec::default()
    });
    assert_eq!(
        errors(&s, None),
        vec![
            (
                "spec.sentinel.replicas".to_owned(),
                FieldErrorKind::OutOfRange
            ),
            ("spec.sentinel.replicas".to_owned(), FieldErrorKind::Invalid),
        ]
    );
}

#[test]
fn sentinel_quorum_within_replicas() {
    let mut s = spec(Topology::Sentinel);
    for ok in [1, 2, 3] {
        s.sentinel = Some(SentinelSpec {
            quorum: Some(ok),
            ..SentinelSpec::default()
        });
        assert_valid(&s);
    }
    for bad in [0, 4, -1] {
        s.sentinel = Some(SentinelSpec {
            quorum: Some(bad),
            ..SentinelSpec::default()
        });
        assert_only(&s, "spec.sentinel.quorum", FieldErrorKind::OutOfRange);
    }
}

#[test]
fn sentinel_down_after_range() {
    let mut s = spec(Topology::Sentinel);
    s.sentinel = Some(SentinelSpec {
        down_after_milliseconds: 999,
        ..SentinelSpec::default()
    });
    assert_only(
        &s,
        "spec.sentinel.downAfterMilliseconds",
        FieldErrorKind::OutOfRange,
    );
    s.sentinel = Some(SentinelSpec {
        down_after_milliseconds: 600_001,
        ..SentinelSpec::default()
    });
    assert_only(
        &s,
        "spec.sentinel.downAfterMilliseconds",
        FieldErrorKind::OutOfRange,
    );
}

#[test]
fn sentinel_failover_timeout_and_parallel_syncs_ranges() {
    let mut s = spec(Topology::Sentinel);
    for timeout in [999, 3_600_001] {
        s.sentinel = Some(SentinelSpec {
            failover_timeout_milliseconds: timeout,
            ..SentinelSpec::default()
        });
        assert_only(
            &s,
            "spec.sentinel.failoverTimeoutMilliseconds",
            FieldErrorKind::OutOfRange,
        );
    }
    for syncs in [0, 17] {
        s.sentinel = Some(SentinelSpec {
            parallel_syncs: syncs,
            ..SentinelSpec::default()
        });
        assert_only(
            &s,
            "spec.sentinel.parallelSyncs",
            FieldErrorKind::OutOfRange,
        );
    }
    s.sentinel = Some(SentinelSpec {
        failover_timeout_milliseconds: 3_600_000,
        parallel_syncs: 16,
        ..SentinelSpec::default()
    });
    assert!(validate(&s, None).is_ok());
}

#[test]
fn failover_ranges() {
    let mut s = spec(Topology::Replication);
    s.failover.probe_interval_milliseconds = 100;
    s.failover.failure_threshold = 100;
    assert_valid(&s);
    s.failover.probe_interval_milliseconds = 99;
    assert_only(
        &s,
        "spec.failover.probeIntervalMilliseconds",
        FieldErrorKind::OutOfRange,
    );
    s.failover.probe_interval_milliseconds = 60_001;
    assert_only(
        &s,
        "spec.failover.probeIntervalMilliseconds",
        FieldErrorKind::OutOfRange,
    );
    s.failover.probe_interval_milliseconds = 500;
    s.failover.failure_threshold = 0;
    assert_only(
        &s,
        "spec.failover.failureThreshold",
        FieldErrorKind::OutOfRange,
    );
    s.failover.failure_threshold = 101;
    assert_only(
        &s,
        "spec.failover.failureThreshold",
        FieldErrorKind::OutOfRange,
    );
}

#[test]
fn resources() {
    let q = |s: &str| Quantity(s.to_owned());
    let mut s = spec(Topology::Replication);
    s.resources = Some(ResourceRequirements {
        requests: Some(
            [
                ("memory".to_owned(), q("1Gi")),
                ("cpu".to_owned(), q("500m")),
            ]
            .into(),
        ),
        limits: Some([("memory".to_owned(), q("1Gi"))].into()),
        ..ResourceRequirements::default()
    });
    assert_valid(&s);

    s.resources = Some(ResourceRequirements {
        requests: Some([("memory".to_owned(), q("2Gi"))].into()),
        limits: Some([("memory".to_owned(), q("1Gi"))].into()),
        ..ResourceRequirements::default()
    });
    assert_only(
        &s,
        "spec.resources.requests[\"memory\"]",
        FieldErrorKind::Invalid,
    );

    s.resources = Some(ResourceRequirements {
        limits: Some([("memory".to_owned(), q("lots"))].into()),
        ..ResourceRequirements::default()
    });
    assert_only(
        &s,
        "spec.resources.limits[\"memory\"]",
        FieldErrorKind::Invalid,
    );

    s.resources = Some(ResourceRequirements {
        requests: Some([("cpu".to_owned(), q("-1"))].into()),
        ..ResourceRequirements::default()
    });
    assert_only(
        &s,
        "spec.resources.requests[\"cpu\"]",
        FieldErrorKind::Invalid,
    );
}

#[test]
fn node_selector() {
    let mut s = spec(Topology::Replication);
    s.node_selector = map(&[("kubernetes.io/os", "linux")]);
    assert_valid(&s);
    s.node_selector = map(&[("bad key", "linux")]);
    assert_only(
        &s,
        "spec.nodeSelector[\"bad key\"]",
        FieldErrorKind::Invalid,
    );
    s.node_selector = map(&[("disk", "fast ssd")]);
    assert_only(&s, "spec.nodeSelector[\"disk\"]", FieldErrorKind::Invalid);
}

#[test]
fn priority_class_name() {
    let mut s = spec(Topology::Replication);
    s.priority_class_name = Some("system-cluster-critical".into());
    assert_valid(&s);
    s.priority_class_name = Some("High_Priority".into());
    assert_only(&s, "spec.priorityClassName", FieldErrorKind::Invalid);
}

#[test]
fn labels() {
    let mut s = spec(Topology::Replication);
    s.labels = map(&[("team", "cache"), ("example.com/tier", "gold")]);
    assert_valid(&s);
    s.labels = map(&[("valkey.logbook.dev/role", "primary")]);
    assert_only(
        &s,
        "spec.labels[\"valkey.logbook.dev/role\"]",
        FieldErrorKind::Forbidden,
    );
    s.labels = map(&[("app.kubernetes.io/managed-by", "me")]);
    assert_only(
        &s,
        "spec.labels[\"app.kubernetes.io/managed-by\"]",
        FieldErrorKind::Forbidden,
    );
    s.labels = map(&[("app.kubernetes.io/instance", "x")]);
    assert_only(
        &s,
        "spec.labels[\"app.kubernetes.io/instance\"]",
        FieldErrorKind::Forbidden,
    );
    s.labels = map(&[("team", "not valid!")]);
    assert_only(&s, "spec.labels[\"team\"]", FieldErrorKind::Invalid);
    s.labels = map(&[("/team", "a")]);
    assert_only(&s, "spec.labels[\"/team\"]", FieldErrorKind::Invalid);
}

#[test]
fn annotations() {
    let mut s = spec(Topology::Replication);
    s.annotations = map(&[("example.com/owner", "any value at all, even with spaces")]);
    assert_valid(&s);
    s.annotations = map(&[("valkey.logbook.dev/paused", "true")]);
    assert_only(
        &s,
        "spec.annotations[\"valkey.logbook.dev/paused\"]",
        FieldErrorKind::Forbidden,
    );
    s.annotations = map(&[("app.kubernetes.io/managed-by", "x")]);
    assert_only(
        &s,
        "spec.annotations[\"app.kubernetes.io/managed-by\"]",
        FieldErrorKind::Forbidden,
    );
    s.annotations = map(&[("no spaces please", "x")]);
    assert_only(
        &s,
        "spec.annotations[\"no spaces please\"]",
        FieldErrorKind::Invalid,
    );
}

#[test]
fn storage_size_must_parse_and_be_positive() {
    let mut s = spec(Topology::Replication);
    for ok in ["1Gi", "500Mi", "10G", "1e9", "0.5Ti"] {
        s.storage.size = Quantity(ok.into());
        assert_valid(&s);
    }
    for bad in ["", "lots", "1GB", "0", "-1Gi", "0Gi"] {
        s.storage.size = Quantity(bad.into());
        assert_only(&s, "spec.storage.size", FieldErrorKind::Invalid);
    }
}

#[test]
fn storage_size_may_only_grow() {
    let old = spec(Topology::Replication);
    let mut new = old.clone();
    new.storage.size = Quantity("1024Mi".into()); // equal
    assert_eq!(errors(&new, Some(&old)), vec![]);
    new.storage.size = Quantity("2Gi".into());
    assert_eq!(errors(&new, Some(&old)), vec![]);
    new.storage.size = Quantity("1000Mi".into());
    assert_only_with_old(
        &new,
        Some(&old),
        "spec.storage.size",
        FieldErrorKind::Forbidden,
    );
    new.storage.size = Quantity("1G".into()); // 10^9 < 2^30
    assert_only_with_old(
        &new,
        Some(&old),
        "spec.storage.size",
        FieldErrorKind::Forbidden,
    );
    // Creation does not compare.
    assert_valid(&new);
}

#[test]
fn storage_class_name() {
    let mut s = spec(Topology::Replication);
    s.storage.storage_class_name = Some(String::new());
    assert_valid(&s);
    s.storage.storage_class_name = Some("fast-ssd".into());
    assert_valid(&s);
    s.storage.storage_class_name = Some("Fast SSD".into());
    assert_only(&s, "spec.storage.storageClassName", FieldErrorKind::Invalid);
}

#[test]
fn storage_class_name_is_immutable() {
    let mut old = spec(Topology::Replication);
    old.storage.storage_class_name = Some("fast".into());
    let mut new = old.clone();
    assert_eq!(errors(&new, Some(&old)), vec![]);
    new.storage.storage_class_name = Some("slow".into());
    assert_only_with_old(
        &new,
        Some(&old),
        "spec.storage.storageClassName",
        FieldErrorKind::Immutable,
    );
    new.storage.storage_class_name = None;
    assert_only_with_old(
        &new,
        Some(&old),
        "spec.storage.storageClassName",
        FieldErrorKind::Immutable,
    );
    // Unset to set after creation is a change too.
    assert_only_with_old(
        &old,
        Some(&new),
        "spec.storage.storageClassName",
        FieldErrorKind::Immutable,
    );
}

#[test]
fn persistence_changes_are_allowed() {
    let old = spec(Topology::Replication);
    let mut new = old.clone();
    new.storage.persistence = Persistence::RdbAndAof;
    assert_eq!(errors(&new, Some(&old)), vec![]);
}

#[test]
fn topology_is_immutable() {
    let old = spec(Topology::Replication);
    let new = spec(Topology::Sentinel);
    assert_only_with_old(&new, Some(&old), "spec.topology", FieldErrorKind::Immutable);
    let errs = validate(&new, Some(&old)).unwrap_err();
    assert_eq!(
        errs[0].message,
        "topology is immutable: it was Replication and may not become Sentinel"
    );
    assert_eq!(errors(&old, Some(&old)), vec![]);
}

#[test]
fn scaling_is_allowed() {
    let mut old = spec(Topology::Cluster);
    old.shards = Some(3);
    let mut new = old.clone();
    new.shards = Some(6);
    new.replicas_per_shard = Some(2);
    assert_eq!(errors(&new, Some(&old)), vec![]);
}

#[test]
fn wake_timeout_applies_to_replication_and_sentinel_in_range() {
    for topology in [Topology::Replication, Topology::Sentinel] {
        let mut s = spec(topology);
        s.wake_timeout_seconds = Some(30);
        assert_valid(&s);
        s.wake_timeout_seconds = Some(5);
        assert_only(&s, "spec.wakeTimeoutSeconds", FieldErrorKind::OutOfRange);
        s.wake_timeout_seconds = Some(86_401);
        assert_only(&s, "spec.wakeTimeoutSeconds", FieldErrorKind::OutOfRange);
    }
    for topology in [Topology::Standalone, Topology::Cluster] {
        let mut s = spec(topology);
        s.wake_timeout_seconds = Some(30);
        assert_only(&s, "spec.wakeTimeoutSeconds", FieldErrorKind::Forbidden);
    }
}
