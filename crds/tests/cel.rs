//! The CRD's `x-kubernetes-validations` rules, evaluated client-side by
//! kube's CEL validator the way an API server would (schema defaults are
//! applied first): every sample passes, and each rule refuses what it
//! promises to refuse, with its message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kube::core::cel::Validator;
use serde_json::{Value, json};

fn schema() -> Value {
    let crd = serde_json::to_value(&logbook_crds::crds()[0]).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn object(spec: Value) -> Value {
    json!({
        "apiVersion": "valkey.logbook.dev/v1alpha1",
        "kind": "ValkeyCluster",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": spec,
    })
}

/// The messages of every failed rule (empty when all pass).
fn failures(spec: Value, old: Option<Value>) -> Vec<String> {
    let old = old.map(object);
    match Validator::new().validate(&schema(), &object(spec), old.as_ref()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

#[track_caller]
fn passes(spec: Value, old: Option<Value>) {
    let failed = failures(spec, old);
    assert!(failed.is_empty(), "unexpected CEL failures: {failed:?}");
}

#[track_caller]
fn fails_with(spec: Value, old: Option<Value>, message: &str) {
    let failed = failures(spec, old);
    assert!(
        failed.iter().any(|m| m.contains(message)),
        "expected a failure containing {message:?}, got {failed:?}"
    );
}

#[test]
fn samples_and_defaults_pass() {
    for name in [
        "standalone.yaml",
        "replication.yaml",
        "sentinel.yaml",
        "cluster.yaml",
        "tls.yaml",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config/samples")
            .join(name);
        let sample: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        passes(sample["spec"].clone(), None);
        passes(sample["spec"].clone(), Some(sample["spec"].clone()));
    }
    passes(json!({}), None);
    passes(json!({}), Some(json!({})));
}

#[test]
fn topology_is_immutable() {
    fails_with(
        json!({"topology": "Sentinel"}),
        Some(json!({"topology": "Replication"})),
        "topology is immutable",
    );
    passes(
        json!({"topology": "Sentinel"}),
        Some(json!({"topology": "Sentinel"})),
    );
}

#[test]
fn cluster_fields_only_with_cluster() {
    let message = "apply only to topology Cluster";
    fails_with(
        json!({"topology": "Replication", "shards": 3}),
        None,
        message,
    );
    fails_with(
        json!({"topology": "Sentinel", "replicasPerShard": 1}),
        None,
        message,
    );
    fails_with(
        json!({"topology": "Standalone", "clusterNodeTimeoutMilliseconds": 5000}),
        None,
        message,
    );
    passes(
        json!({"topology": "Cluster", "shards": 3, "replicasPerShard": 1, "clusterNodeTimeoutMilliseconds": 5000}),
        None,
    );
}

#[test]
fn replicas_by_topology() {
    fails_with(
        json!({"topology": "Cluster", "replicas": 3}),
        None,
        "replicas does not apply to topology Cluster",
    );
    fails_with(
        json!({"topology": "Standalone", "replicas": 2}),
        None,
        "replicas must be 1",
    );
    passes(json!({"topology": "Standalone", "replicas": 1}), None);
    passes(json!({"topology": "Replication", "replicas": 5}), None);
}

#[test]
fn sentinel_rules() {
    fails_with(
        json!({"topology": "Replication", "sentinel": {}}),
        None,
        "sentinel applies only to topology Sentinel",
    );
    fails_with(
        json!({"topology": "Sentinel", "sentinel": {"replicas": 5, "quorum": 6}}),
        None,
        "must not exceed",
    );
    fails_with(
        json!({"topology": "Sentinel", "sentinel": {"quorum": 4}}),
        None,
        "must not exceed",
    );
    fails_with(
        json!({"topology": "Sentinel", "sentinel": {"replicas": 4}}),
        None,
        "must be odd",
    );
    passes(
        json!({"topology": "Sentinel", "sentinel": {"replicas": 5, "quorum": 3}}),
        None,
    );
    passes(
        json!({"topology": "Sentinel", "sentinel": {"failoverTimeoutMilliseconds": 3600000, "parallelSyncs": 16}}),
        None,
    );
}

/// The schema lets a size change be undone (the operator refuses the
/// change itself, in the status: `src/observe/spec.rs`).
#[test]
fn storage_size_is_positive_and_a_change_can_be_undone() {
    let old = json!({"storage": {"size": "2Gi"}});
    passes(json!({"storage": {"size": "1Gi"}}), Some(old.clone()));
    passes(json!({"storage": {"size": "4Gi"}}), Some(old));
    fails_with(json!({"storage": {"size": "0"}}), None, "greater than zero");
}

#[test]
fn storage_class_is_immutable() {
    let old = json!({"storage": {"storageClassName": "fast"}});
    let message = "storageClassName is immutable";
    fails_with(
        json!({"storage": {"storageClassName": "slow"}}),
        Some(old.clone()),
        message,
    );
    fails_with(json!({"storage": {}}), Some(old.clone()), message);
    // A class added where no storage was set before: the schema has no
    // old storage to compare with (it writes no default section since the
    // operator's defaults layers came, crds/src/crdgen.rs), so the operator
    // refuses it in the status (`validate`, storage_class_name_is_immutable).
    passes(
        json!({"storage": {"storageClassName": "fast"}}),
        Some(json!({})),
    );
    passes(
        json!({"storage": {"storageClassName": "fast", "size": "2Gi"}}),
        Some(old),
    );
}

#[test]
fn tls_takes_at_most_one_source() {
    let issuer = json!({"name": "ca", "kind": "ClusterIssuer"});
    // Neither: the operator's own CA issues the certificate.
    passes(json!({"tls": {"enabled": true}}), None);
    passes(json!({"tls": {"enabled": true, "clientAuth": true}}), None);
    fails_with(
        json!({"tls": {"enabled": true, "issuerRef": issuer, "secretName": "s"}}),
        None,
        "not both",
    );
    fails_with(
        json!({"tls": {"issuerRef": issuer, "secretName": "s"}}),
        None,
        "not both",
    );
    passes(json!({"tls": {"enabled": true, "issuerRef": issuer}}), None);
    passes(
        json!({"tls": {"enabled": true, "secretName": "valkey-tls"}}),
        None,
    );
}

#[test]
fn service_monitor_requires_metrics() {
    fails_with(
        json!({"metrics": {"serviceMonitor": true}}),
        None,
        "requires metrics.enabled",
    );
    passes(
        json!({"metrics": {"enabled": true, "serviceMonitor": true}}),
        None,
    );
}

#[test]
fn a_name_too_long_or_no_service_can_carry_is_refused_at_creation() {
    let named = |name: &str| {
        let mut o = object(json!({}));
        o["metadata"]["name"] = json!(name);
        match Validator::new().validate(&schema(), &o, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .into_vec()
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>(),
        }
    };
    assert!(named(&"a".repeat(52)).is_empty());
    let long = named(&"a".repeat(53));
    assert!(
        long.iter().any(|m| m.contains("at most 52 characters")),
        "{long:?}"
    );
    let digit = named("1cache");
    assert!(digit.iter().any(|m| m.contains("DNS-1035")), "{digit:?}");
}

/// The names CEL refuses for `name` with `spec`.
fn name_failures(name: &str, spec: Value) -> Vec<String> {
    let mut o = object(spec);
    o["metadata"]["name"] = json!(name);
    match Validator::new().validate(&schema(), &o, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

#[test]
fn a_sentinel_cluster_name_leaves_room_for_the_sentinel_statefulset() {
    let sentinel = json!({"topology": "Sentinel"});
    assert!(name_failures(&"a".repeat(43), sentinel.clone()).is_empty());
    let long = name_failures(&"a".repeat(44), sentinel);
    assert!(
        long.iter()
            .any(|m| m.contains("at most 43 characters for topology Sentinel")),
        "{long:?}"
    );
    // Other topologies keep the general bound of 52.
    for topology in ["Standalone", "Replication", "Cluster"] {
        let failed = name_failures(&"a".repeat(52), json!({"topology": topology}));
        assert!(failed.is_empty(), "{topology}: {failed:?}");
    }
    assert!(name_failures(&"a".repeat(52), json!({})).is_empty());
}

#[test]
fn external_settings_only_with_their_type() {
    let lb = json!({"enabled": true, "type": "LoadBalancer",
                    "loadBalancerClass": "example.com/lb"});
    passes(json!({"externalAccess": lb}), None);
    let by_node_ports = json!({"enabled": true, "nodePorts": {"primary": 31000}});
    passes(json!({"externalAccess": by_node_ports}), None);
    fails_with(
        json!({"externalAccess": {"enabled": true, "type": "LoadBalancer",
                                  "nodePorts": {"primary": 31000}}}),
        None,
        "externalAccess.nodePorts applies only to type NodePort",
    );
    fails_with(
        json!({"externalAccess": {"enabled": true, "type": "NodePort",
                                  "loadBalancerClass": "example.com/lb"}}),
        None,
        "apply only to type LoadBalancer",
    );
}
