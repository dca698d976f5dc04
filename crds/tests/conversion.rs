//! `v1alpha1 ↔ v1beta1` conversion is lossless: a property test over
//! generated specs, both ways, on the JSON a conversion webhook is given
//! and on the typed specs; and v1beta1's own rules (CEL, evaluated as an
//! API server would) admit exactly the image fields that convert back
//! unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kube::CustomResourceExt;
use kube::core::cel::Validator;
use logbook_crds::conversion::{
    V1ALPHA1, V1BETA1, convert_object, spec_to_v1alpha1, spec_to_v1beta1, split_image,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Image references of every shape: tagged, untagged, with a registry
/// port, by digest, and ones that do not split (kept whole).
fn image_reference() -> impl Strategy<Value = String> {
    let repository = prop::sample::select(vec![
        "valkey/valkey",
        "valkey",
        "registry.example:5000/valkey/valkey",
        "localhost:5000/v",
        "docker.io/library/redis",
    ]);
    let tag = prop::sample::select(vec!["9.1", "8.0.1", "latest", "9.1-alpine", "_x", "v1.2.3"]);
    prop_oneof![
        (repository.clone(), tag).prop_map(|(r, t)| format!("{r}:{t}")),
        repository.clone().prop_map(str::to_owned),
        repository.prop_map(|r| format!("{r}@sha256:{}", "ab".repeat(32))),
        prop::sample::select(vec!["valkey:", ":9.1", "valkey:-x", "a:b:c", "x/y:"])
            .prop_map(str::to_owned),
        "[a-z0-9:/@._-]{1,24}",
    ]
}

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 ._-]{0,12}".prop_map(Value::String),
        Just(json!({"size": "1Gi"})),
        Just(json!([{"name": "pull"}])),
    ]
}

/// A v1alpha1 spec, whole or partial: any subset of the fields v1beta1
/// moves, beside fields it leaves alone; values may be `null` (a merge
/// patch's deletion).
fn alpha_spec() -> impl Strategy<Value = Map<String, Value>> {
    let moved = prop::collection::vec(
        (
            prop::sample::select(vec![
                "imagePullPolicy",
                "imagePullSecrets",
                "shards",
                "replicasPerShard",
                "clusterNodeTimeoutMilliseconds",
            ]),
            small_value(),
        ),
        0..5,
    );
    let kept = prop::collection::vec(
        (
            prop::sample::select(vec![
                "topology", "replicas", "storage", "config", "labels", "sentinel", "failover",
                "plan", "paused",
            ]),
            small_value(),
        ),
        0..5,
    );
    let image = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        image_reference().prop_map(|r| Some(Value::String(r))),
    ];
    (moved, kept, image).prop_map(|(moved, kept, image)| {
        let mut spec = Map::new();
        for (k, v) in moved.into_iter().chain(kept) {
            spec.insert(k.to_owned(), v);
        }
        if let Some(image) = image {
            spec.insert("image".to_owned(), image);
        }
        spec
    })
}

/// A v1beta1 spec as its schema admits it: the image's repository names
/// no tag of its own, a tag comes with a repository not given by digest,
/// and neither group is an empty object.
fn beta_spec() -> impl Strategy<Value = Map<String, Value>> {
    alpha_spec().prop_map(|alpha| spec_to_v1beta1(&alpha).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn alpha_to_beta_to_alpha_is_the_same_spec(alpha in alpha_spec()) {
        let beta = spec_to_v1beta1(&alpha).unwrap();
        prop_assert_eq!(spec_to_v1alpha1(&beta).unwrap(), alpha);
    }

    #[test]
    fn beta_to_alpha_to_beta_is_the_same_spec(beta in beta_spec()) {
        let alpha = spec_to_v1alpha1(&beta).unwrap();
        prop_assert_eq!(spec_to_v1beta1(&alpha).unwrap(), beta);
    }

    #[test]
    fn whole_objects_round_trip_with_metadata_and_status(alpha in alpha_spec(), name in "[a-z]{1,8}") {
        let object = json!({
            "apiVersion": V1ALPHA1, "kind": "ValkeyCluster",
            "metadata": {"name": name, "namespace": "ns", "annotations": {"k": "v"}},
            "spec": Value::Object(alpha),
            "status": {"phase": "Ready", "readyReplicas": 3}});
        let beta = convert_object(&object, V1BETA1).unwrap();
        prop_assert_eq!(&beta["metadata"], &object["metadata"]);
        prop_assert_eq!(&beta["status"], &object["status"]);
        prop_assert_eq!(convert_object(&beta, V1ALPHA1).unwrap(), object);
    }

    /// Each tagged reference v1alpha1 accepts comes out of v1beta1's rules
    /// admitted, so no stored v1alpha1 object converts into one its new
    /// version would refuse.
    #[test]
    fn converted_images_pass_the_v1beta1_rules(reference in image_reference()) {
        let (repository, tag) = split_image(&reference);
        let mut image = json!({"repository": repository});
        if let Some(tag) = tag {
            image["tag"] = json!(tag);
        }
        let failed = beta_failures(json!({"image": image}));
        prop_assert!(failed.is_empty(), "{reference}: {failed:?}");
    }
}

/// The typed specs convert too, defaults included: every field of a
/// default v1alpha1 spec of each topology, and one with every moved
/// field set.
#[test]
fn typed_specs_round_trip() {
    use logbook_crds::v1beta1;
    use logbook_crds::{Topology, ValkeyClusterSpec};
    let mut specs: Vec<ValkeyClusterSpec> = Topology::ALL
        .iter()
        .map(|t| ValkeyClusterSpec::with_topology(*t))
        .collect();
    let mut cluster = ValkeyClusterSpec::with_topology(Topology::Cluster);
    cluster.image = "registry.example:5000/valkey/valkey:8.0.1".to_owned();
    cluster.image_pull_policy = Some(logbook_crds::ImagePullPolicy::Never);
    cluster.shards = Some(5);
    cluster.replicas_per_shard = Some(2);
    cluster.cluster_node_timeout_milliseconds = Some(2000);
    specs.push(cluster);
    for alpha in specs {
        let beta = v1beta1::ValkeyClusterSpec::from_v1alpha1(&alpha).unwrap();
        assert_eq!(beta.to_v1alpha1().unwrap(), alpha);
    }
    let beta = v1beta1::ValkeyClusterSpec::from_v1alpha1(&ValkeyClusterSpec {
        shards: Some(4),
        ..ValkeyClusterSpec::with_topology(Topology::Cluster)
    })
    .unwrap();
    assert_eq!(beta.image.repository.as_deref(), Some("valkey/valkey"));
    assert_eq!(beta.image.tag.as_deref(), Some("9.1"));
    assert_eq!(beta.cluster.and_then(|c| c.shards), Some(4));
}

fn beta_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = serde_json::to_value(logbook_crds::v1beta1::ValkeyCluster::crd()).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    })
}

/// The messages of every v1beta1 rule `spec` fails.
fn beta_failures(spec: Value) -> Vec<String> {
    let object = json!({
        "apiVersion": V1BETA1, "kind": "ValkeyCluster",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": spec,
    });
    match Validator::new().validate(beta_schema(), &object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

#[test]
fn v1beta1_refuses_image_fields_that_would_not_convert_back() {
    let refused = |spec: Value, message: &str| {
        let failed = beta_failures(spec.clone());
        assert!(
            failed.iter().any(|m| m.contains(message)),
            "{spec}: expected {message:?}, got {failed:?}"
        );
    };
    refused(
        json!({"image": {"repository": "valkey/valkey:9.1"}}),
        "image.repository names no tag",
    );
    refused(
        json!({"image": {"tag": "9.1"}}),
        "image.tag needs image.repository",
    );
    refused(
        json!({"image": {"repository": "valkey@sha256:abcd", "tag": "9.1"}}),
        "takes no tag",
    );
    refused(
        json!({"topology": "Replication", "cluster": {"shards": 3}}),
        "cluster applies only to topology Cluster",
    );
    refused(
        json!({"topology": "Cluster", "replicas": 3}),
        "set cluster.shards and cluster.replicasPerShard",
    );
    for admitted in [
        json!({"image": {"repository": "registry:5000/valkey/valkey", "tag": "8.0.1"}}),
        json!({"image": {"repository": "valkey/valkey@sha256:abcd"}}),
        json!({"image": {"pullPolicy": "Never"}}),
        json!({"topology": "Cluster", "cluster": {"shards": 3, "replicasPerShard": 1}}),
    ] {
        let failed = beta_failures(admitted.clone());
        assert!(failed.is_empty(), "{admitted}: {failed:?}");
    }
}
