//! `{}` means the documented defaults, for the spec and for every
//! sub-struct, and the `effective_*` helpers resolve topology-dependent
//! defaults.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use logbook_crds::v1alpha1::{
    EndpointsStatus, JournalStatus, ShardStatus, generated_password_secret,
};
use logbook_crds::*;
use serde::de::DeserializeOwned;

fn from_empty<T: DeserializeOwned>() -> T {
    serde_json::from_str("{}").unwrap()
}

#[test]
fn empty_spec_is_the_default() {
    let spec: ValkeyClusterSpec = from_empty();
    assert_eq!(spec, ValkeyClusterSpec::default());
    assert_eq!(spec.topology, Topology::Replication);
    assert_eq!(spec.image, "valkey/valkey:9.1");
    assert_eq!(spec.image_pull_policy, None);
    assert_eq!(spec.storage.size.0, "1Gi");
    assert_eq!(spec.storage.persistence, Persistence::Rdb);
    assert!(spec.auth.enabled);
    assert!(!spec.tls.enabled);
    assert!(!spec.metrics.enabled && !spec.metrics.service_monitor);
    assert!(spec.pod_disruption_budget.enabled);
    assert_eq!(spec.pod_disruption_budget.max_unavailable, 1);
    assert!(!spec.network_policy.enabled);
    assert_eq!(spec.failover.probe_interval_milliseconds, 500);
    assert_eq!(spec.failover.failure_threshold, 3);
    assert!(spec.failover.automatic);
    assert!(spec.journal.retain_on_delete);
    assert_eq!(spec.journal.max_events, 100_000);
    assert!(!spec.paused);
}

#[test]
fn every_sub_struct_deserializes_from_empty() {
    assert_eq!(from_empty::<SentinelSpec>(), SentinelSpec::default());
    assert_eq!(from_empty::<FailoverSpec>(), FailoverSpec::default());
    assert_eq!(from_empty::<StorageSpec>(), StorageSpec::default());
    assert_eq!(from_empty::<AuthSpec>(), AuthSpec::default());
    assert_eq!(from_empty::<TlsSpec>(), TlsSpec::default());
    assert_eq!(from_empty::<MetricsSpec>(), MetricsSpec::default());
    assert_eq!(
        from_empty::<PodDisruptionBudgetSpec>(),
        PodDisruptionBudgetSpec::default()
    );
    assert_eq!(
        from_empty::<NetworkPolicySpec>(),
        NetworkPolicySpec::default()
    );
    assert_eq!(from_empty::<JournalSpec>(), JournalSpec::default());
    assert_eq!(
        from_empty::<ValkeyClusterStatus>(),
        ValkeyClusterStatus::default()
    );
    assert_eq!(from_empty::<ShardStatus>(), ShardStatus::default());
    assert_eq!(from_empty::<EndpointsStatus>(), EndpointsStatus::default());
    assert_eq!(from_empty::<JournalStatus>(), JournalStatus::default());

    let sentinel = SentinelSpec::default();
    assert_eq!(
        (
            sentinel.replicas,
            sentinel.quorum,
            sentinel.down_after_milliseconds,
            sentinel.failover_timeout_milliseconds,
            sentinel.parallel_syncs
        ),
        (3, None, 5000, 60_000, 1)
    );
    assert_eq!(sentinel.effective_quorum(), 2);
    let issuer: IssuerRef = serde_json::from_str(r#"{"name":"ca"}"#).unwrap();
    assert_eq!(
        (issuer.kind.as_str(), issuer.group.as_str()),
        ("Issuer", "cert-manager.io")
    );
}

fn spec_of(json: &str) -> ValkeyClusterSpec {
    serde_json::from_str(json).unwrap()
}

#[test]
fn effective_values_per_topology() {
    let standalone = spec_of(r#"{"topology":"Standalone"}"#);
    assert_eq!(
        (
            standalone.effective_replicas(),
            standalone.effective_shards(),
            standalone.effective_replicas_per_shard()
        ),
        (1, 1, 0)
    );
    assert_eq!(standalone.effective_sentinel(), None);
    assert_eq!(
        standalone.effective_cluster_node_timeout_milliseconds(),
        None
    );

    let replication = spec_of(r#"{"topology":"Replication"}"#);
    assert_eq!(
        (
            replication.effective_replicas(),
            replication.effective_shards(),
            replication.effective_replicas_per_shard()
        ),
        (3, 1, 2)
    );
    assert_eq!(replication.effective_sentinel(), None);

    let sentinel = spec_of(r#"{"topology":"Sentinel","replicas":5}"#);
    assert_eq!(
        (
            sentinel.effective_replicas(),
            sentinel.effective_replicas_per_shard()
        ),
        (5, 4)
    );
    assert_eq!(sentinel.effective_sentinel(), Some(SentinelSpec::default()));

    let cluster = spec_of(r#"{"topology":"Cluster"}"#);
    assert_eq!(
        (
            cluster.effective_replicas(),
            cluster.effective_shards(),
            cluster.effective_replicas_per_shard()
        ),
        (6, 3, 1)
    );
    assert_eq!(
        cluster.effective_cluster_node_timeout_milliseconds(),
        Some(5000)
    );

    let big = spec_of(r#"{"topology":"Cluster","shards":500,"replicasPerShard":5}"#);
    assert_eq!(big.effective_replicas(), 3000);

    for topology in Topology::ALL {
        assert!(validate(&ValkeyClusterSpec::with_topology(topology), None).is_ok());
    }
}

#[test]
fn effective_quorum_is_a_majority_unless_set() {
    for (replicas, quorum) in [(3, 2), (5, 3), (7, 4), (9, 5)] {
        let s = SentinelSpec {
            replicas,
            ..SentinelSpec::default()
        };
        assert_eq!(s.effective_quorum(), quorum);
    }
    let s = SentinelSpec {
        quorum: Some(1),
        ..SentinelSpec::default()
    };
    assert_eq!(s.effective_quorum(), 1);
}

#[test]
fn secret_names() {
    let spec = ValkeyClusterSpec::default();
    assert_eq!(connection_secret_name("demo"), "demo-connection");
    assert_eq!(spec.connection_secret_name("demo"), "demo-connection");
    let generated = generated_password_secret("demo");
    assert_eq!(
        (generated.name.as_str(), generated.key.as_str()),
        ("demo-password", "password")
    );
    assert_eq!(spec.auth.effective_password_secret("demo"), Some(generated));
    let off = AuthSpec {
        enabled: false,
        password_secret: None,
        rotation_window_seconds: 300,
    };
    assert_eq!(off.effective_password_secret("demo"), None);
}

#[test]
fn canonical_json_of_the_default_spec_is_stable() {
    // The journal stores the spec as this JSON; a change here changes what
    // `SpecChanged` events contain, so it must be deliberate.
    assert_eq!(
        serde_json::to_string(&ValkeyClusterSpec::default()).unwrap(),
        concat!(
            r#"{"topology":"Replication","image":"valkey/valkey:9.1","#,
            r#""failover":{"probeIntervalMilliseconds":500,"failureThreshold":3,"automatic":true},"#,
            r#""storage":{"size":"1Gi","persistence":"Rdb"},"auth":{"enabled":true},"tls":{"enabled":false},"#,
            r#""metrics":{"enabled":false,"serviceMonitor":false},"#,
            r#""podDisruptionBudget":{"enabled":true,"maxUnavailable":1},"#,
            r#""networkPolicy":{"enabled":false},"journal":{"retainOnDelete":true,"maxEvents":100000},"#,
            r#""paused":false}"#
        )
    );
}

#[test]
fn maps_serialize_in_key_order() {
    let a = spec_of(r#"{"config":{"b":"2","a":"1"},"labels":{"z":"1","y":"2"}}"#);
    let b = spec_of(r#"{"labels":{"y":"2","z":"1"},"config":{"a":"1","b":"2"}}"#);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn unknown_enum_values_are_refused() {
    assert!(serde_json::from_str::<ValkeyClusterSpec>(r#"{"topology":"Ring"}"#).is_err());
    assert!(
        serde_json::from_str::<ValkeyClusterSpec>(r#"{"storage":{"persistence":"Sometimes"}}"#)
            .is_err()
    );
    assert!(serde_json::from_str::<ValkeyClusterSpec>(r#"{"imagePullPolicy":"Maybe"}"#).is_err());
}

#[test]
fn status_round_trips() {
    let json = r#"{"phase":"Ready","observedGeneration":3,"readyReplicas":3,"primary":"demo-0",
        "shards":[{"index":0,"name":"demo-0","primary":"demo-0-0","replicas":["demo-0-1"],"slots":[{"start":0,"end":5460}]}],
        "endpoints":{"primary":"demo-primary:6379","read":"demo-read:6379"},
        "journal":{"seq":42,"hashPrefix":"ab12cd","backend":"configmap"},
        "lastFailover":{"at":"2025-01-01T00:00:00Z","from":"demo-0","to":"demo-1","reason":"PrimaryUnreachable","seq":40}}"#;
    let status: ValkeyClusterStatus = serde_json::from_str(json).unwrap();
    assert_eq!(status.phase, Some(ClusterPhase::Ready));
    let again: ValkeyClusterStatus =
        serde_json::from_str(&serde_json::to_string(&status).unwrap()).unwrap();
    assert_eq!(again, status);
    assert!(
        status
            .condition(logbook_crds::v1alpha1::CONDITION_READY)
            .is_none()
    );
}
