//! Tests of the Sentinel builders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use k8s_openapi::api::core::v1::{Probe, Toleration};
use logbook_crds::{SentinelSpec, Topology};

use super::super::test_support::meta;
use super::super::{build_config_map, build_headless_service, build_statefulset};
use super::*;

fn sentinel_spec() -> ValkeyClusterSpec {
    ValkeyClusterSpec::with_topology(Topology::Sentinel)
}

fn build(spec: &ValkeyClusterSpec) -> StatefulSet {
    build_sentinel_statefulset(&meta(), spec, "abc123")
}

fn sts_spec(sts: &StatefulSet) -> &StatefulSetSpec {
    sts.spec.as_ref().unwrap()
}

fn pod(sts: &StatefulSet) -> &PodSpec {
    sts_spec(sts).template.spec.as_ref().unwrap()
}

fn sentinel(sts: &StatefulSet) -> &Container {
    &pod(sts).containers[0]
}

fn data(cm: &ConfigMap) -> &BTreeMap<String, String> {
    cm.data.as_ref().unwrap()
}

#[test]
fn config_map_holds_the_files_and_its_hash_follows_them() {
    let spec = sentinel_spec();
    let (cm, hash) = build_sentinel_config_map(&meta(), &spec);
    assert_eq!(cm.metadata.name.as_deref(), Some("cache-sentinel-config"));
    assert_eq!(cm.metadata.namespace.as_deref(), Some("prod"));
    assert_eq!(cm.metadata.owner_references.as_ref().unwrap().len(), 1);
    assert_eq!(
        cm.metadata.labels.as_ref().unwrap(),
        &labels::sentinel_common("cache", &spec)
    );
    let d = data(&cm);
    assert_eq!(d[SENTINEL_CONF_KEY], render_sentinel_conf(&spec.tls));
    assert_eq!(
        d[SENTINEL_MASTER_CONF_KEY],
        "sentinel down-after-milliseconds cache 5000\n\
         sentinel failover-timeout cache 60000\n\
         sentinel parallel-syncs cache 1\n"
    );
    assert_eq!(
        d[SENTINEL_START_SCRIPT_KEY],
        render_sentinel_start_script("cache", 2, false)
    );
    for ordinal in 0..9 {
        assert_eq!(
            d[&format!("myid-{ordinal}")],
            sentinel_myid(&meta(), ordinal)
        );
    }
    assert_eq!(d.len(), 3 + 9);
    assert_eq!(hash.len(), 16);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(build_sentinel_config_map(&meta(), &spec).1, hash);

    let with = |f: fn(&mut SentinelSpec)| {
        let mut s = spec.clone();
        let mut sentinel = SentinelSpec::default();
        f(&mut sentinel);
        s.sentinel = Some(sentinel);
        build_sentinel_config_map(&meta(), &s).1
    };
    assert_ne!(with(|s| s.down_after_milliseconds = 7000), hash);
    assert_ne!(with(|s| s.failover_timeout_milliseconds = 30_000), hash);
    assert_ne!(with(|s| s.parallel_syncs = 2), hash);
    assert_ne!(with(|s| s.quorum = Some(3)), hash);
    // The Sentinel count alone changes no file: scaling rolls nothing
    // (unless it moves the default quorum, a majority).
    let scaled = with(|s| {
        s.replicas = 5;
        s.quorum = Some(2);
    });
    assert_eq!(scaled, hash);
    assert_ne!(with(|s| s.replicas = 5), hash, "quorum 3 of 5");
}

#[test]
fn config_map_holds_no_password() {
    let (cm, _) = build_sentinel_config_map(&meta(), &sentinel_spec());
    for (key, value) in data(&cm) {
        if key != SENTINEL_START_SCRIPT_KEY {
            assert!(!value.contains("pass"), "{key}: {value}");
        }
    }
}

#[test]
fn statefulset_names_selector_and_owner() {
    let spec = sentinel_spec();
    let sts = build(&spec);
    assert_eq!(sts.metadata.name.as_deref(), Some("cache-sentinel"));
    assert_eq!(sts.metadata.namespace.as_deref(), Some("prod"));
    assert_eq!(sts.metadata.owner_references.as_ref().unwrap().len(), 1);
    let s = sts_spec(&sts);
    assert_eq!(s.service_name.as_deref(), Some("cache-sentinel-hl"));
    assert_eq!(s.replicas, Some(3));
    assert_eq!(s.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        s.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    // Every Sentinel rolls on a new template (a restart among them).
    assert_eq!(
        s.update_strategy
            .as_ref()
            .unwrap()
            .rolling_update
            .as_ref()
            .and_then(|r| r.partition),
        Some(0)
    );
    assert!(s.volume_claim_templates.is_none());
    let selector = s.selector.match_labels.as_ref().unwrap();
    assert_eq!(selector, &labels::sentinel_selector("cache"));
    let template = s.template.metadata.as_ref().unwrap();
    let template_labels = template.labels.as_ref().unwrap();
    for (k, v) in selector {
        assert_eq!(&template_labels[k], v, "template must match the selector");
    }
    // The data StatefulSet's selector must not adopt the Sentinel pods.
    let data_selector = labels::selector("cache");
    assert!(
        !data_selector
            .iter()
            .all(|(k, v)| template_labels.get(k) == Some(v))
    );
    assert_eq!(
        template.annotations.as_ref().unwrap()[labels::CONFIG_HASH],
        "abc123"
    );

    let mut five = spec;
    five.sentinel = Some(SentinelSpec {
        replicas: 5,
        ..SentinelSpec::default()
    });
    assert_eq!(sts_spec(&build(&five)).replicas, Some(5));
}

#[test]
fn the_container_runs_the_script_on_the_data_image() {
    let mut spec = sentinel_spec();
    spec.image = "registry.example/valkey:9".into();
    spec.image_pull_policy = Some(logbook_crds::ImagePullPolicy::Always);
    let sts = build(&spec);
    let c = sentinel(&sts);
    let data_sts = build_statefulset(&meta(), &spec, "x");
    let data_c = &data_sts
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(c.name, "sentinel");
    assert_eq!(c.image, data_c.image);
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        c.command.as_ref().unwrap(),
        &["sh".to_owned(), "/etc/sentinel/start.sh".to_owned()]
    );
    let port = &c.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.container_port),
        (Some("sentinel"), 26379)
    );
    let tcp_port = |p: &Option<Probe>| {
        p.as_ref()
            .unwrap()
            .tcp_socket
            .as_ref()
            .unwrap()
            .port
            .clone()
    };
    assert_eq!(tcp_port(&c.readiness_probe), IntOrString::Int(26379));
    assert_eq!(tcp_port(&c.liveness_probe), IntOrString::Int(26379));
    assert_eq!(c.readiness_probe.as_ref().unwrap().period_seconds, Some(2));
    let requests = c.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "50m");
    assert_eq!(requests["memory"].0, "32Mi");
    assert_eq!(pod(&sts).termination_grace_period_seconds, Some(10));
    assert_eq!(pod(&sts).enable_service_links, Some(false));
}

#[test]
fn the_password_comes_from_its_secret_and_only_with_auth() {
    let spec = sentinel_spec();
    let sts = build(&spec);
    let env = sentinel(&sts).env.as_ref().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "POD_IP",
            "POD_NAME",
            "VALKEY_PASSWORD",
            "LOGBOOK_OPERATOR_PASSWORD",
            "LOGBOOK_SENTINEL_PASSWORD"
        ]
    );
    let field = |i: usize| {
        env[i]
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path
            .clone()
    };
    assert_eq!(field(0), "status.podIP");
    assert_eq!(field(1), "metadata.name");
    let secret = env[2]
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("cache-password", "password")
    );
    assert!(env.iter().all(|e| e.value.is_none()));

    let mut open = spec;
    open.auth.enabled = false;
    let sts = build(&open);
    let env = sentinel(&sts).env.as_ref().unwrap();
    assert!(env.iter().all(|e| e.name != "VALKEY_PASSWORD"));
}

#[test]
fn volumes_are_the_config_the_boot_file_and_a_run_dir() {
    let sts = build(&sentinel_spec());
    let p = pod(&sts);
    let volumes = p.volumes.as_ref().unwrap();
    let cm = |i: usize| volumes[i].config_map.as_ref().unwrap();
    assert_eq!(cm(0).name, "cache-sentinel-config");
    assert_eq!(cm(0).optional, None);
    assert_eq!(cm(1).name, "cache-boot");
    assert_eq!(cm(1).optional, Some(true));
    assert!(volumes[2].empty_dir.is_some());
    assert_eq!(volumes.len(), 3);
    let mounts: Vec<(&str, &str)> = sentinel(&sts)
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("sentinel-config", "/etc/sentinel"),
            ("boot", "/etc/valkey-boot"),
            ("run", "/run/sentinel"),
        ]
    );
}

#[test]
fn scheduling_follows_the_data_pods_but_spreads_on_the_sentinel_selector() {
    let mut spec = sentinel_spec();
    spec.node_selector.insert("pool".into(), "cache".into());
    spec.tolerations.push(Toleration {
        key: Some("dedicated".into()),
        operator: Some("Exists".into()),
        ..Toleration::default()
    });
    spec.priority_class_name = Some("high".into());
    let sts = build(&spec);
    let p = pod(&sts);
    assert_eq!(p.node_selector.as_ref().unwrap()["pool"], "cache");
    assert_eq!(p.tolerations.as_ref().unwrap().len(), 1);
    assert_eq!(p.priority_class_name.as_deref(), Some("high"));
    let sentinel_selector = labels::sentinel_selector("cache");
    let anti = p
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap()
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(
        anti[0]
            .pod_affinity_term
            .label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap(),
        &sentinel_selector
    );
    let spread = p.topology_spread_constraints.as_ref().unwrap();
    assert_eq!(
        spread[0]
            .label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap(),
        &sentinel_selector
    );
}

#[test]
fn services_select_every_sentinel_on_its_port() {
    let spec = sentinel_spec();
    let headless = build_sentinel_headless_service(&meta(), &spec);
    let client = build_sentinel_service(&meta(), &spec);
    for (svc, name) in [
        (&headless, "cache-sentinel-hl"),
        (&client, "cache-sentinel"),
    ] {
        assert_eq!(svc.metadata.name.as_deref(), Some(name));
        let s = svc.spec.as_ref().unwrap();
        assert_eq!(
            s.selector.as_ref().unwrap(),
            &labels::sentinel_selector("cache")
        );
        let port = &s.ports.as_ref().unwrap()[0];
        assert_eq!(port.port, 26379);
        assert_eq!(port.name.as_deref(), Some("sentinel"));
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert_eq!(
            svc.metadata.labels.as_ref().unwrap()[labels::COMPONENT],
            "sentinel"
        );
    }
    let h = headless.spec.as_ref().unwrap();
    assert_eq!(h.cluster_ip.as_deref(), Some("None"));
    assert_eq!(h.publish_not_ready_addresses, Some(true));
    let c = client.spec.as_ref().unwrap();
    assert_eq!(c.cluster_ip, None);
    assert_eq!(c.publish_not_ready_addresses, None);
    // The data headless Service must not list Sentinels.
    let data_headless = build_headless_service(&meta(), &spec);
    assert_ne!(
        data_headless.spec.unwrap().selector,
        headless.spec.unwrap().selector
    );
}

#[test]
fn pdb_allows_one_sentinel_down() {
    let mut spec = sentinel_spec();
    spec.pod_disruption_budget.enabled = false;
    let pdb = build_sentinel_pdb(&meta(), &spec);
    assert_eq!(pdb.metadata.name.as_deref(), Some("cache-sentinel"));
    let s = pdb.spec.unwrap();
    assert_eq!(s.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        s.selector.unwrap().match_labels.unwrap(),
        labels::sentinel_selector("cache")
    );
}

#[test]
fn the_data_objects_are_unchanged_by_the_sentinel_ones() {
    // The Sentinel hash is its own: the data pods do not roll when only
    // a Sentinel setting changes.
    let spec = sentinel_spec();
    let data_hash = build_config_map(&meta(), &spec).1;
    let mut changed = spec.clone();
    changed.sentinel = Some(SentinelSpec {
        parallel_syncs: 3,
        ..SentinelSpec::default()
    });
    assert_eq!(build_config_map(&meta(), &changed).1, data_hash);
    assert_ne!(
        build_sentinel_config_map(&meta(), &changed).1,
        build_sentinel_config_map(&meta(), &spec).1
    );
}
