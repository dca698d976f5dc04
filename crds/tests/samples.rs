//! The samples under `config/samples/` are what users `kubectl apply` first:
//! each must parse, validate, keep its meaning through YAML and JSON round
//! trips, and name the cluster `demo`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use logbook_crds::{Persistence, Topology, ValkeyCluster, validate};

const SAMPLES: [(&str, Topology); 5] = [
    ("standalone.yaml", Topology::Standalone),
    ("replication.yaml", Topology::Replication),
    ("sentinel.yaml", Topology::Sentinel),
    ("cluster.yaml", Topology::Cluster),
    ("tls.yaml", Topology::Replication),
];

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/samples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(name: &str) -> ValkeyCluster {
    serde_yaml::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_sample_parses_and_validates() {
    for (name, topology) in SAMPLES {
        // Written at the version stored, as users are shown it.
        let raw: serde_json::Value = serde_yaml::from_str(&read(name)).unwrap();
        assert_eq!(raw["apiVersion"], "valkey.logbook.dev/v1beta1", "{name}");
        let vkc = load(name);
        assert_eq!(vkc.metadata.name.as_deref(), Some("demo"), "{name}");
        assert_eq!(vkc.spec.topology, topology, "{name}");
        if let Err(errors) = validate(&vkc.spec, None) {
            panic!(
                "{name}: {}",
                logbook_crds::v1alpha1::validation::describe(&errors)
            );
        }
        // An unchanged re-apply is a valid update.
        assert!(validate(&vkc.spec, Some(&vkc.spec)).is_ok(), "{name}");
    }
}

#[test]
fn every_sample_round_trips_through_yaml_and_json() {
    for (name, _) in SAMPLES {
        let vkc = load(name);
        let yaml = serde_yaml::to_string(&vkc).unwrap();
        let again: ValkeyCluster = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(again, vkc, "{name} via YAML");
        let json = serde_json::to_string(&vkc.spec).unwrap();
        let again: logbook_crds::ValkeyClusterSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(again, vkc.spec, "{name} via JSON");
        // Canonical JSON is stable: serializing the copy gives the same bytes.
        assert_eq!(serde_json::to_string(&again).unwrap(), json, "{name}");
    }
}

#[test]
fn samples_say_what_their_comments_say() {
    let standalone = load("standalone.yaml").spec;
    assert_eq!(standalone.effective_replicas(), 1);
    assert_eq!(standalone.storage.persistence, Persistence::None);

    let replication = load("replication.yaml").spec;
    assert_eq!(replication.effective_replicas(), 3);
    assert_eq!(replication.effective_replicas_per_shard(), 2);
    assert!(replication.storage.persistence.aof() && replication.storage.persistence.rdb());

    let sentinel = load("sentinel.yaml").spec;
    let sentinels = sentinel.effective_sentinel().unwrap();
    assert_eq!((sentinels.replicas, sentinels.effective_quorum()), (3, 2));
    assert_eq!(
        (
            sentinels.failover_timeout_milliseconds,
            sentinels.parallel_syncs
        ),
        (30_000, 1)
    );
    assert_eq!(sentinel.connection_secret_name("demo"), "demo-valkey");

    let cluster = load("cluster.yaml").spec;
    assert_eq!(cluster.effective_shards(), 3);
    assert_eq!(cluster.effective_replicas(), 6);
    assert_eq!(
        cluster.effective_cluster_node_timeout_milliseconds(),
        Some(5000)
    );
    assert_eq!(cluster.connection_secret_name("demo"), "demo-connection");
}

#[test]
fn the_user_sample_is_an_app_user_of_demo_with_its_secret() {
    let text = read("user.yaml");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "a Secret and a ValkeyUser");
    assert_eq!(docs[0]["kind"].as_str(), Some("Secret"));
    assert_eq!(docs[0]["metadata"]["name"].as_str(), Some("app-password"));
    assert!(docs[0]["stringData"]["password"].as_str().is_some());
    let user: logbook_crds::ValkeyUser = serde_yaml::from_value(docs[1].clone()).unwrap();
    assert_eq!(user.metadata.name.as_deref(), Some("app"));
    assert_eq!(user.spec.cluster, "demo");
    assert_eq!(user.spec.password_secret.name, "app-password");
    assert_eq!(user.spec.password_secret.key, "password");
    assert_eq!(user.spec.keys, ["app:*"]);
    assert!(logbook_crds::validate_user("app", &user.spec, None).is_ok());
    assert_eq!(
        user.spec.acl_rules(),
        ["on", "+@all", "-@dangerous", "~app:*"]
    );
}
