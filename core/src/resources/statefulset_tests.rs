//! Tests of the StatefulSet builder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, NodeAffinity, PodSecurityContext, PodSpec,
    ResourceRequirements, SecurityContext, Toleration, TopologySpreadConstraint,
};
use logbook_crds::{SecretKeyRef, Topology};

use super::super::test_support::meta;
use super::super::{build_config_map, build_password_secret, render_start_script};
use super::*;

fn build(spec: &ValkeyClusterSpec) -> StatefulSet {
    build_statefulset(&meta(), spec, "abc123")
}

fn sts_spec(sts: &StatefulSet) -> &StatefulSetSpec {
    sts.spec.as_ref().unwrap()
}

fn pod(sts: &StatefulSet) -> &PodSpec {
    sts_spec(sts).template.spec.as_ref().unwrap()
}

fn valkey(sts: &StatefulSet) -> &Container {
    &pod(sts).containers[0]
}

#[test]
fn names_selector_and_owner() {
    let sts = build(&ValkeyClusterSpec::default());
    assert_eq!(sts.metadata.name.as_deref(), Some("cache"));
    assert_eq!(sts.metadata.namespace.as_deref(), Some("prod"));
    let owners = sts.metadata.owner_references.as_ref().unwrap();
    assert_eq!(owners[0].uid, "0b6a2f4e-uid");
    let s = sts_spec(&sts);
    assert_eq!(s.service_name.as_deref(), Some("cache-headless"));
    assert_eq!(
        s.selector.match_labels.as_ref().unwrap(),
        &labels::selector("cache")
    );
    let template_labels = s
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    for (k, v) in labels::selector("cache") {
        assert_eq!(template_labels[&k], v, "template must match the selector");
    }
    assert!(!template_labels.contains_key(labels::ROLE));
}

#[test]
fn the_operator_rolls_pods_and_keeps_claims() {
    let sts = build(&ValkeyClusterSpec::default());
    let s = sts_spec(&sts);
    assert_eq!(s.replicas, Some(3));
    assert_eq!(s.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        s.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("OnDelete")
    );
    let retention = s.persistent_volume_claim_retention_policy.as_ref().unwrap();
    assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
    assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
    let standalone = build(&ValkeyClusterSpec::with_topology(Topology::Standalone));
    assert_eq!(sts_spec(&standalone).replicas, Some(1));
}

#[test]
fn template_carries_the_config_hash_and_spec_annotations() {
    let mut spec = ValkeyClusterSpec::default();
    spec.annotations.insert("team".into(), "cache".into());
    let sts = build(&spec);
    let ann = sts_spec(&sts)
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert_eq!(ann[labels::CONFIG_HASH], "abc123");
    assert_eq!(ann["team"], "cache");
    assert_eq!(sts.metadata.annotations.as_ref().unwrap()["team"], "cache");
}

#[test]
fn container_runs_the_start_script_with_the_password_from_the_secret() {
    let sts = build(&ValkeyClusterSpec::default());
    let c = valkey(&sts);
    assert_eq!(c.name, "valkey");
    assert_eq!(c.image.as_deref(), Some("valkey/valkey:9.1"));
    assert_eq!(
        c.command.as_ref().unwrap(),
        &["sh".to_owned(), "/etc/valkey/start.sh".to_owned()]
    );
    assert_eq!(c.args, None);
    let env = c.env.as_ref().unwrap();
    let pod_ip = env.iter().find(|e| e.name == "POD_IP").unwrap();
    assert_eq!(
        pod_ip
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "status.podIP"
    );
    let pw = env.iter().find(|e| e.name == "VALKEY_PASSWORD").unwrap();
    assert_eq!(pw.value, None);
    let key = pw
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("cache-password", "password")
    );

    let mut user = ValkeyClusterSpec::default();
    user.auth.password_secret = Some(SecretKeyRef {
        name: "mine".into(),
        key: "pw".into(),
    });
    let sts = build(&user);
    let env = valkey(&sts).env.as_ref().unwrap();
    let key = env[1]
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!((key.name.as_str(), key.key.as_str()), ("mine", "pw"));

    let mut off = ValkeyClusterSpec::default();
    off.auth.enabled = false;
    let sts = build(&off);
    assert!(
        !valkey(&sts)
            .env
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.name == "VALKEY_PASSWORD")
    );
}

#[test]
fn port_and_probes() {
    let sts = build(&ValkeyClusterSpec::default());
    let c = valkey(&sts);
    let port = &c.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.container_port, port.name.as_deref()),
        (6379, Some("valkey"))
    );
    let r = c.readiness_probe.as_ref().unwrap();
    assert_eq!(r.tcp_socket.as_ref().unwrap().port, IntOrString::Int(6379));
    assert_eq!((r.period_seconds, r.failure_threshold), (Some(1), Some(2)));
    let l = c.liveness_probe.as_ref().unwrap();
    assert_eq!(
        (
            l.initial_delay_seconds,
            l.period_seconds,
            l.failure_threshold
        ),
        (Some(10), Some(10), Some(6))
    );
    assert_eq!(pod(&sts).termination_grace_period_seconds, Some(30));
}

#[test]
fn volumes_and_mounts() {
    let sts = build(&ValkeyClusterSpec::default());
    let mounts: Vec<(&str, &str)> = valkey(&sts)
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("config", "/etc/valkey"),
            ("boot", "/etc/valkey-boot"),
            ("run", "/run/valkey"),
            ("data", "/data")
        ]
    );
    let vols = pod(&sts).volumes.as_ref().unwrap();
    let cm = |n: &str| {
        vols.iter()
            .find(|v| v.name == n)
            .and_then(|v| v.config_map.clone())
            .unwrap()
    };
    assert_eq!(cm("config").name, "cache-config");
    assert_eq!(cm("config").optional, None);
    assert_eq!(cm("boot").name, "cache-boot");
    assert_eq!(cm("boot").optional, Some(true));
    assert!(!vols.iter().any(|v| v.name == "data"), "data is a claim");
    let claims = sts_spec(&sts).volume_claim_templates.as_ref().unwrap();
    let claim = claims[0].spec.as_ref().unwrap();
    assert_eq!(claims[0].metadata.name.as_deref(), Some("data"));
    assert_eq!(claim.access_modes.as_ref().unwrap(), &["ReadWriteOnce"]);
    assert_eq!(
        claim.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "1Gi"
    );

    let mut ephemeral = ValkeyClusterSpec::default();
    ephemeral.storage.persistence = Persistence::None;
    let sts = build(&ephemeral);
    assert_eq!(sts_spec(&sts).volume_claim_templates, None);
    let data = pod(&sts)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "data");
    assert!(data.unwrap().empty_dir.is_some());
}

#[test]
fn scheduling_defaults_and_overrides() {
    let sts = build(&ValkeyClusterSpec::default());
    let p = pod(&sts);
    let anti = p
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    let term = &anti
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()[0];
    assert_eq!(term.weight, 100);
    assert_eq!(
        term.pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    let spread = &p.topology_spread_constraints.as_ref().unwrap()[0];
    assert_eq!(spread.topology_key, "topology.kubernetes.io/zone");
    assert_eq!(spread.when_unsatisfiable, "ScheduleAnyway");
    assert_eq!(p.node_selector, None);
    assert_eq!(p.tolerations, None);

    let mut spec = ValkeyClusterSpec::default();
    let affinity = Affinity {
        node_affinity: Some(NodeAffinity::default()),
        ..Affinity::default()
    };
    spec.affinity = Some(affinity.clone());
    spec.node_selector.insert("disk".into(), "ssd".into());
    spec.tolerations.push(Toleration {
        key: Some("dedicated".into()),
        ..Toleration::default()
    });
    spec.priority_class_name = Some("critical".into());
    let sts = build(&spec);
    let p = pod(&sts);
    assert_eq!(p.affinity.as_ref(), Some(&affinity));
    assert_eq!(p.node_selector.as_ref().unwrap()["disk"], "ssd");
    assert_eq!(p.tolerations.as_ref().unwrap().len(), 1);
    assert_eq!(p.priority_class_name.as_deref(), Some("critical"));
}

#[test]
fn no_password_in_any_config_map_or_statefulset() {
    let password = "Sup3rSecretPassw0rdThatMustNotLeak";
    let mut spec = ValkeyClusterSpec::default();
    spec.config.insert("hz".into(), "20".into());
    let (cm, hash) = build_config_map(&meta(), &spec);
    let sts = build_statefulset(&meta(), &spec, &hash);
    // The only object holding the password is its Secret.
    assert!(build_password_secret(&meta(), &spec, password).is_some());
    for json in [
        serde_json::to_string(&cm).unwrap(),
        serde_json::to_string(&sts).unwrap(),
    ] {
        assert!(!json.contains(password));
        assert!(!json.contains("requirepass \""), "{json}");
    }
    let script = render_start_script(spec.topology);
    assert!(!script.contains(password));
}

#[test]
fn serializes_as_an_apps_v1_statefulset() {
    let v = serde_json::to_value(build(&ValkeyClusterSpec::default())).unwrap();
    assert_eq!(v["apiVersion"], "apps/v1");
    assert_eq!(v["kind"], "StatefulSet");
    assert_eq!(v["spec"]["updateStrategy"]["type"], "OnDelete");
}

#[test]
fn only_cluster_nodes_hold_their_shutdown_for_a_handover_on_the_valkey_port() {
    let meta = meta();
    for topology in Topology::ALL {
        let spec = ValkeyClusterSpec::with_topology(topology);
        let sts = build_statefulset(&meta, &spec, "h");
        let pod = sts.spec.unwrap().template.spec.unwrap();
        let hook = pod.containers[0]
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.exec.as_ref())
            .and_then(|e| e.command.clone());
        if topology == Topology::Cluster {
            let hook = hook.expect("a Cluster node has a preStop hook");
            assert_eq!(hook[..2], ["sh".to_owned(), "-c".to_owned()]);
            assert!(
                hook[2].contains(&format!("-p {VALKEY_PORT} ")),
                "{}",
                hook[2]
            );
            assert!(!hook[2].contains(" -a "), "no password on a command line");
        } else {
            assert_eq!(hook, None, "{topology}");
        }
    }
}

#[test]
fn data_pods_get_no_service_link_variables() {
    // A Service named `valkey` would set VALKEY_PORT=tcp://..., which
    // start.sh reads as its port.
    let sts = build(&ValkeyClusterSpec::default());
    assert_eq!(pod(&sts).enable_service_links, Some(false));
}

/// A spec as a user writes it.
fn spec_from(yaml: &str) -> ValkeyClusterSpec {
    serde_yaml::from_str(yaml).unwrap()
}

/// The value at `pointer` of `yaml`'s JSON, read back as a `T`: what the
/// pod must carry when the spec says `yaml`.
fn part<T: k8s_openapi::serde::de::DeserializeOwned>(yaml: &str, pointer: &str) -> T {
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    serde_json::from_value(value.pointer(pointer).unwrap().clone()).unwrap()
}

#[test]
fn the_pod_pulls_the_specs_image_with_its_policy_and_secrets() {
    let yaml = "image: registry.example/valkey:9.1.2
imagePullPolicy: Always
imagePullSecrets:
  - name: regcred
  - name: mirror
";
    let sts = build(&spec_from(yaml));
    let c = valkey(&sts);
    assert_eq!(c.image.as_deref(), Some("registry.example/valkey:9.1.2"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    let secrets: Vec<LocalObjectReference> = part(yaml, "/imagePullSecrets");
    assert_eq!(pod(&sts).image_pull_secrets.as_ref(), Some(&secrets));
    // Unset: Kubernetes' own default, and no secrets.
    let plain = build(&ValkeyClusterSpec::default());
    assert_eq!(valkey(&plain).image_pull_policy, None);
    assert_eq!(pod(&plain).image_pull_secrets, None);
}

/// The Kubernetes types the spec passes through reach the pod whole:
/// every field of each, not only the ones the operator knows of.
#[test]
fn kubernetes_types_reach_the_valkey_pod_whole() {
    let yaml = r#"
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: disk, operator: In, values: [ssd, nvme]}
          matchFields:
            - {key: metadata.name, operator: NotIn, values: [node-9]}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 30
        preference:
          matchExpressions: [{key: zone, operator: Exists}]
  podAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 10
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {app: web}}
          namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [shop]}]}
          namespaces: [web]
          matchLabelKeys: [pod-template-hash]
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: topology.kubernetes.io/zone
        labelSelector: {matchLabels: {valkey.logbook.dev/cluster: cache}}
        mismatchLabelKeys: [tenant]
tolerations:
  - {key: dedicated, operator: Equal, value: cache, effect: NoExecute, tolerationSeconds: 300}
  - {operator: Exists, effect: NoSchedule}
topologySpreadConstraints:
  - maxSkew: 2
    minDomains: 3
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels: {valkey.logbook.dev/cluster: cache}
      matchExpressions: [{key: tier, operator: NotIn, values: [batch]}]
    matchLabelKeys: [controller-revision-hash]
    nodeAffinityPolicy: Honor
    nodeTaintsPolicy: Ignore
podSecurityContext:
  runAsUser: 999
  runAsGroup: 999
  runAsNonRoot: true
  fsGroup: 999
  fsGroupChangePolicy: OnRootMismatch
  supplementalGroups: [4000]
  supplementalGroupsPolicy: Strict
  seccompProfile: {type: RuntimeDefault}
  appArmorProfile: {type: Localhost, localhostProfile: valkey}
  seLinuxOptions: {level: "s0:c123,c456", role: r, type: t, user: u}
  seLinuxChangePolicy: MountOption
  sysctls: [{name: net.core.somaxconn, value: "1024"}]
  windowsOptions: {gmsaCredentialSpecName: spec, gmsaCredentialSpec: cred, runAsUserName: valkey, hostProcess: false}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  privileged: false
  procMount: Default
  runAsUser: 999
  runAsGroup: 999
  runAsNonRoot: true
  capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
  seccompProfile: {type: Localhost, localhostProfile: profiles/valkey.json}
  appArmorProfile: {type: RuntimeDefault}
  seLinuxOptions: {level: s0, role: r, type: t, user: u}
  windowsOptions: {gmsaCredentialSpecName: spec, gmsaCredentialSpec: cred, runAsUserName: valkey, hostProcess: false}
resources:
  requests: {cpu: 250m, memory: 1Gi}
  limits: {memory: 2Gi, hugepages-2Mi: 64Mi}
  claims: [{name: gpu, request: first}]
"#;
    let sts = build(&spec_from(yaml));
    let p = pod(&sts);
    let affinity: Affinity = part(yaml, "/affinity");
    assert_eq!(p.affinity.as_ref(), Some(&affinity));
    let tolerations: Vec<Toleration> = part(yaml, "/tolerations");
    assert_eq!(p.tolerations.as_ref(), Some(&tolerations));
    let spread: Vec<TopologySpreadConstraint> = part(yaml, "/topologySpreadConstraints");
    assert_eq!(p.topology_spread_constraints.as_ref(), Some(&spread));
    let pod_context: PodSecurityContext = part(yaml, "/podSecurityContext");
    assert_eq!(p.security_context.as_ref(), Some(&pod_context));
    let context: SecurityContext = part(yaml, "/securityContext");
    assert_eq!(valkey(&sts).security_context.as_ref(), Some(&context));
    let resources: ResourceRequirements = part(yaml, "/resources");
    assert_eq!(valkey(&sts).resources.as_ref(), Some(&resources));
    // Each deserialized whole: no field of the YAML was lost on the way
    // (a field the type does not know would be dropped, and the
    // comparison above would pass without it).
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    for (pointer, typed) in [
        ("/affinity", serde_json::to_value(&affinity).unwrap()),
        ("/tolerations", serde_json::to_value(&tolerations).unwrap()),
        (
            "/topologySpreadConstraints",
            serde_json::to_value(&spread).unwrap(),
        ),
        (
            "/podSecurityContext",
            serde_json::to_value(&pod_context).unwrap(),
        ),
        ("/securityContext", serde_json::to_value(&context).unwrap()),
        ("/resources", serde_json::to_value(&resources).unwrap()),
    ] {
        assert_eq!(value.pointer(pointer), Some(&typed), "{pointer}");
    }
}

#[test]
fn the_claim_asks_for_the_specs_size_and_class() {
    let sts = build(&spec_from(
        "storage: {size: 5Gi, storageClassName: fast-ssd, persistence: Aof}\n",
    ));
    let claims = sts_spec(&sts).volume_claim_templates.as_ref().unwrap();
    let claim = claims[0].spec.as_ref().unwrap();
    assert_eq!(
        claim.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "5Gi"
    );
    assert_eq!(claim.storage_class_name.as_deref(), Some("fast-ssd"));
    // Unset: the cluster's default class.
    let plain = build(&ValkeyClusterSpec::default());
    let claims = sts_spec(&plain).volume_claim_templates.as_ref().unwrap();
    assert_eq!(claims[0].spec.as_ref().unwrap().storage_class_name, None);
}

#[test]
fn the_specs_labels_are_on_the_statefulset_its_pods_and_its_config() {
    let spec = spec_from("labels: {team: payments, tier: gold}\n");
    let sts = build(&spec);
    let (cm, _) = build_config_map(&meta(), &spec);
    let template = sts_spec(&sts).template.metadata.as_ref().unwrap();
    for (what, labels) in [
        ("the StatefulSet", sts.metadata.labels.as_ref()),
        ("its pods", template.labels.as_ref()),
        ("the ConfigMap", cm.metadata.labels.as_ref()),
    ] {
        let labels = labels.unwrap();
        assert_eq!(labels["team"], "payments", "{what}");
        assert_eq!(labels["tier"], "gold", "{what}");
    }
}
