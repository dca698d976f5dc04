//! Randomized checks of `validate`: it never panics, is deterministic, puts
//! every error under `spec.`, never refuses an unchanged update for a reason
//! creation would not, and whatever it accepts has sane effective values.
//!
//! Reproduce a failure with the seed proptest prints (or from
//! `proptest-regressions/`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use logbook_crds::*;
use proptest::prelude::*;

fn topology() -> impl Strategy<Value = Topology> {
    prop_oneof![
        Just(Topology::Standalone),
        Just(Topology::Replication),
        Just(Topology::Sentinel),
        Just(Topology::Cluster),
    ]
}

/// Mostly plausible numbers with the occasional extreme.
fn int() -> impl Strategy<Value = i32> {
    prop_oneof![4 => -2i32..12, 1 => any::<i32>(), 1 => 0i32..1_000_000]
}

fn maybe_int() -> impl Strategy<Value = Option<i32>> {
    prop::option::of(int())
}

fn quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,4}(Ki|Mi|Gi|Ti|m|k|M|G|)",
        "-?[0-9]{0,3}\\.?[0-9]{0,3}([eE][-+]?[0-9]{1,3})?",
        ".{0,12}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9][a-z0-9.-]{0,20}", ".{0,10}"]
}

fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        Just("port".to_owned()),
        Just("save".to_owned()),
        Just("TLS-port".to_owned()),
        Just("maxmemory".to_owned()),
        Just("valkey.logbook.dev/x".to_owned()),
        Just("app.kubernetes.io/managed-by".to_owned()),
        "[a-z./-]{0,12}",
        ".{0,8}",
    ];
    prop::collection::btree_map(key, ".{0,8}", 0..4)
}

prop_compose! {
    fn sentinel()(replicas in int(), quorum in maybe_int(), down in int(), timeout in int(), syncs in int()) -> SentinelSpec {
        SentinelSpec {
            replicas,
            quorum,
            down_after_milliseconds: down,
            failover_timeout_milliseconds: timeout,
            parallel_syncs: syncs,
        }
    }
}

prop_compose! {
    fn spec()(
        (topology, replicas, shards, replicas_per_shard, timeout) in (topology(), maybe_int(), maybe_int(), maybe_int(), maybe_int()),
        sentinel in prop::option::of(sentinel()),
        (probe, threshold, automatic) in (int(), int(), any::<bool>()),
        (size, class) in (quantity(), prop::option::of(name())),
        (auth_enabled, password) in (any::<bool>(), prop::option::of((name(), name()))),
        (tls_enabled, issuer, tls_secret) in (any::<bool>(), prop::option::of(name()), prop::option::of(name())),
        (config, labels, annotations) in (string_map(), string_map(), string_map()),
        (metrics, monitor, max_unavailable, max_events) in (any::<bool>(), any::<bool>(), int(), any::<i64>()),
        (connection, image, paused) in (prop::option::of(name()), name(), any::<bool>()),
    ) -> ValkeyClusterSpec {
        let mut s = ValkeyClusterSpec::with_topology(topology);
        s.replicas = replicas;
        s.shards = shards;
        s.replicas_per_shard = replicas_per_shard;
        s.cluster_node_timeout_milliseconds = timeout;
        s.sentinel = sentinel;
        s.failover = FailoverSpec { probe_interval_milliseconds: probe, failure_threshold: threshold, automatic, takeover_on_quorum_loss: false, fence_isolated_primary_seconds: None };
        s.storage.size = Quantity(size);
        s.storage.storage_class_name = class;
        s.auth.enabled = auth_enabled;
        s.auth.password_secret = password.map(|(name, key)| SecretKeyRef { name, key });
        s.tls.enabled = tls_enabled;
        s.tls.issuer_ref = issuer.map(|name| IssuerRef { name, kind: "Issuer".into(), group: "cert-manager.io".into() });
        s.tls.secret_name = tls_secret;
        s.config = config;
        s.labels = labels;
        s.annotations = annotations;
        s.metrics = MetricsSpec { enabled: metrics, service_monitor: monitor, image: None };
        s.pod_disruption_budget.max_unavailable = max_unavailable;
        s.journal.max_events = max_events;
        s.connection_secret = connection;
        s.image = image;
        s.paused = paused;
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn validate_is_total_and_deterministic(new in spec(), old in prop::option::of(spec())) {
        let first = validate(&new, old.as_ref());
        let second = validate(&new, old.as_ref());
        prop_assert_eq!(&first, &second);
        if let Err(errors) = &first {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(e.path.starts_with("spec."), "{}", e);
                prop_assert!(!e.message.is_empty());
                prop_assert!(!e.message.contains('\n') || e.path.contains("\\n"), "{}", e);
            }
        }
    }

    #[test]
    fn unchanged_update_adds_no_errors(s in spec()) {
        prop_assert_eq!(validate(&s, Some(&s)), validate(&s, None));
    }

    #[test]
    fn accepted_specs_have_sane_effective_values(s in spec()) {
        if validate(&s, None).is_ok() {
            let pods = s.effective_replicas();
            prop_assert!((1..=3000).contains(&pods), "{pods}");
            prop_assert!((1..=500).contains(&s.effective_shards()));
            prop_assert!(s.effective_replicas_per_shard() >= 0);
            if let Some(sentinel) = s.effective_sentinel() {
                prop_assert!(sentinel.replicas % 2 == 1);
                prop_assert!((1..=sentinel.replicas).contains(&sentinel.effective_quorum()));
                prop_assert!((1_000..=3_600_000).contains(&sentinel.failover_timeout_milliseconds));
                prop_assert!((1..=16).contains(&sentinel.parallel_syncs));
            }
            prop_assert!(parse_quantity(&s.storage.size.0).unwrap().is_positive());
            prop_assert!(!s.config.keys().any(|k| k.contains(['\n', ' '])));
        }
    }

    #[test]
    fn spec_round_trips_through_json(s in spec()) {
        let json = serde_json::to_string(&s).unwrap();
        let again: ValkeyClusterSpec = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(serde_json::to_string(&again).unwrap(), json);
        prop_assert_eq!(again, s);
    }
}
