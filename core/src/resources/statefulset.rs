//! The StatefulSet of the data pods.
//!
//! The StatefulSet only keeps pods and their volumes in existence; it never
//! rolls them (`OnDelete`: the operator replaces pods itself, replicas
//! first, the primary after a switchover) and never decides roles (the
//! template carries no role label; `start.sh` reads the boot ConfigMap).
//!
//! Immutable after creation, so a spec change there cannot be applied here:
//! `selector`, `serviceName`, `podManagementPolicy` (constant per cluster)
//! and `volumeClaimTemplates` (storage size, class and whether persistence
//! is `None`). The claim template's labels are the selector labels only,
//! so changing `spec.labels` does not touch it; a size change must be made
//! on the claims themselves.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, Lifecycle, LifecycleHandler, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSpec,
    PodTemplateSpec, Probe, SecretKeySelector, SecretVolumeSource, TCPSocketAction,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logbook_crds::{Persistence, ValkeyClusterSpec};

use super::{
    ClusterMeta, VALKEY_PORT, boot_config_map_name, config_map_name, headless_service_name, labels,
    non_empty, statefulset_name,
};

/// Name of the Valkey container.
pub const CONTAINER_NAME: &str = "valkey";
/// Name of the Valkey port on the container and the Services.
pub const PORT_NAME: &str = "valkey";
/// Name of the data volume (and claim template).
pub const DATA_VOLUME: &str = "data";
/// Environment variable holding the pod's IP, which `start.sh` compares
/// with the boot primary.
pub const POD_IP_ENV: &str = "POD_IP";
/// Environment variable holding the password, from the password Secret;
/// `start.sh` writes it into the runtime config.
pub const PASSWORD_ENV: &str = "VALKEY_PASSWORD";
/// The environment variable holding the node's address (external access
/// of a Cluster: see the start script).
pub const HOST_IP_ENV: &str = "HOST_IP";
/// The environment variable holding the pod's name (external access of a
/// Cluster: the start script's announce file is named after it).
pub const POD_NAME_ENV: &str = "POD_NAME";

pub(super) const CONFIG_VOLUME: &str = "config";
const BOOT_VOLUME: &str = "boot";
const RUN_VOLUME: &str = "run";
const TLS_VOLUME: &str = "tls";
const CONFIG_DIR: &str = "/etc/valkey";
pub(super) const BOOT_DIR: &str = "/etc/valkey-boot";
const RUN_DIR: &str = "/run/valkey";
const DATA_DIR: &str = "/data";
const HOSTNAME_TOPOLOGY_KEY: &str = "kubernetes.io/hostname";
const ZONE_TOPOLOGY_KEY: &str = "topology.kubernetes.io/zone";
const TERMINATION_GRACE_SECONDS: i64 = 30;

/// The preStop hook of a Cluster node. The kubelet runs it before it
/// sends SIGTERM: while the node is a shard primary with a replica
/// attached, it holds the shutdown (at most 10 s, well inside the 30 s
/// grace with Valkey's own 10 s `shutdown-timeout`) so the operator can
/// hand the slots over by a coordinated `CLUSTER FAILOVER` while the
/// primary still serves, not race a primary already shutting down (that
/// race made a handover time out and the pod come back as the primary).
/// Once the node is a replica, has no replica, or does not answer, it
/// lets the shutdown go on at once; without an operator it only delays
/// it. The password goes by `REDISCLI_AUTH`, never on a command line. A
/// Redis image has `redis-cli`, not `valkey-cli` (without either the hook
/// would only ever let the shutdown go on at once).
pub const CLUSTER_PRE_STOP: &str = r#"[ -n "${VALKEY_PASSWORD:-}" ] && export REDISCLI_AUTH="$VALKEY_PASSWORD"
cli=valkey-cli
command -v valkey-cli >/dev/null 2>&1 || cli=redis-cli
i=0
while [ "$i" -lt 100 ]; do
  info=$("$cli" --no-auth-warning -h "${POD_IP:-127.0.0.1}" -p 6379 info replication 2>/dev/null) || exit 0
  case "$info" in *role:master*) ;; *) exit 0 ;; esac
  case "$info" in *connected_slaves:0*) exit 0 ;; esac
  sleep 0.1
  i=$((i + 1))
done
"#;

/// The StatefulSet `<name>` of the data pods; `config_hash` (from
/// [`build_config_map`](super::build_config_map)) is stamped on the pod
/// template.
pub fn build_statefulset(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    config_hash: &str,
) -> StatefulSet {
    let selector = labels::selector(&meta.name);
    let mut template_annotations = spec.annotations.clone();
    template_annotations.insert(labels::CONFIG_HASH.to_owned(), config_hash.to_owned());
    let persistent = spec.storage.persistence != Persistence::None;
    let mut volumes = vec![
        config_map_volume(CONFIG_VOLUME, config_map_name(&meta.name), false),
        // Optional: a pod may start before the operator has written it,
        // and then fences itself.
        config_map_volume(BOOT_VOLUME, boot_config_map_name(&meta.name), true),
        empty_dir(RUN_VOLUME),
    ];
    if !persistent {
        volumes.push(empty_dir(DATA_VOLUME));
    }
    volumes.extend(tls_volume(meta, spec));
    let pod = PodSpec {
        containers: std::iter::once(container(meta, spec))
            .chain(super::exporter::exporter_container(meta, spec, VALKEY_PORT))
            .collect(),
        volumes: Some(volumes),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        affinity: Some(
            spec.affinity
                .clone()
                .unwrap_or_else(|| default_affinity(&selector)),
        ),
        topology_spread_constraints: Some(if spec.topology_spread_constraints.is_empty() {
            default_spread(&selector)
        } else {
            spec.topology_spread_constraints.clone()
        }),
        node_selector: non_empty(spec.node_selector.clone()),
        tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
        priority_class_name: spec.priority_class_name.clone(),
        security_context: spec.pod_security_context.clone(),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty())
            .then(|| spec.image_pull_secrets.clone()),
        // No `<SERVICE>_PORT=tcp://...` variables: a Service named `valkey`
        // in the namespace would otherwise set VALKEY_PORT, which start.sh
        // reads as its port override.
        enable_service_links: Some(false),
        ..PodSpec::default()
    };
    StatefulSet {
        metadata: meta.object_meta(statefulset_name(&meta.name), spec),
        spec: Some(StatefulSetSpec {
            service_name: Some(headless_service_name(&meta.name)),
            replicas: Some(spec.effective_replicas()),
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_owned()),
                rolling_update: None,
            }),
            selector: match_labels(&selector),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::common(&meta.name, spec)),
                    annotations: Some(template_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: persistent
                .then(|| vec![claim_template(&selector, &meta.name, spec)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The Valkey container: `sh /etc/valkey/start.sh`, the password from its
/// Secret through the environment, TCP probes on the Valkey port.
fn container(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Container {
    let mut env = vec![field_env(POD_IP_ENV, "status.podIP")];
    // A node reached by node port announces its node's address.
    if super::announce::announces(spec.topology) && spec.external_access.enabled {
        env.push(field_env(HOST_IP_ENV, "status.hostIP"));
        env.push(field_env(POD_NAME_ENV, "metadata.name"));
    }
    env.extend(password_env(meta, spec));
    env.extend(super::internal_users::internal_env(
        meta,
        &super::internal_users::INTERNAL_USERS.map(|u| u.name),
    ));
    Container {
        lifecycle: spec.topology.is_cluster().then(|| Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        "sh".to_owned(),
                        "-c".to_owned(),
                        CLUSTER_PRE_STOP.to_owned(),
                    ]),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        resources: spec.resources.clone(),
        volume_mounts: Some(
            [
                mount(CONFIG_VOLUME, CONFIG_DIR),
                mount(BOOT_VOLUME, BOOT_DIR),
                mount(RUN_VOLUME, RUN_DIR),
                mount(DATA_VOLUME, DATA_DIR),
            ]
            .into_iter()
            .chain(spec.tls.enabled.then(tls_mount))
            .collect(),
        ),
        ..script_container(
            spec,
            ScriptContainer {
                name: CONTAINER_NAME,
                port_name: PORT_NAME,
                port: VALKEY_PORT,
                config_dir: CONFIG_DIR,
                env,
                readiness_period_seconds: 1,
            },
        )
    }
}

/// What tells one script-run container of the operator's from another.
pub(super) struct ScriptContainer<'a> {
    /// Container name.
    pub name: &'a str,
    /// Its port's name.
    pub port_name: &'a str,
    /// Its port.
    pub port: u16,
    /// Where its ConfigMap (with `start.sh`) is mounted.
    pub config_dir: &'a str,
    /// Its environment.
    pub env: Vec<EnvVar>,
    /// How often readiness is probed.
    pub readiness_period_seconds: i32,
}

/// A container that runs `sh <config_dir>/start.sh` on the spec's image,
/// with TCP probes on its port: ready within two readiness periods of
/// listening (the Services and the operator read it), alive unless it
/// stopped listening for a minute (a server busy loading a large RDB, or a
/// Sentinel between votes, must not be killed). The spec's container
/// security context applies to each (a restricted namespace needs it on
/// every container).
pub(super) fn script_container(spec: &ValkeyClusterSpec, c: ScriptContainer<'_>) -> Container {
    Container {
        name: c.name.to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        command: Some(vec!["sh".to_owned(), format!("{}/start.sh", c.config_dir)]),
        env: Some(c.env),
        security_context: spec.security_context.clone(),
        ..tcp_served(c.port_name, c.port, c.readiness_period_seconds)
    }
}

/// A container serving TCP on `port` (named `port_name`): ready within two
/// readiness periods of listening, alive unless it stopped listening for a
/// minute; when it fails it says why in its status (the tail of its log),
/// which the operator journals and puts in the cluster's.
pub(super) fn tcp_served(port_name: &str, port: u16, readiness_period_seconds: i32) -> Container {
    let tcp = || TCPSocketAction {
        port: IntOrString::Int(i32::from(port)),
        host: None,
    };
    Container {
        ports: Some(vec![ContainerPort {
            name: Some(port_name.to_owned()),
            container_port: i32::from(port),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(tcp()),
            period_seconds: Some(readiness_period_seconds),
            failure_threshold: Some(2),
            ..Probe::default()
        }),
        liveness_probe: Some(Probe {
            tcp_socket: Some(tcp()),
            initial_delay_seconds: Some(10),
            period_seconds: Some(10),
            failure_threshold: Some(6),
            ..Probe::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

/// The environment variable `name` from the pod's field `field_path`
/// (the downward API).
pub(super) fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        value: None,
    }
}

/// [`PASSWORD_ENV`] from the password Secret when auth is on: the only
/// way a password reaches a pod (never a ConfigMap, never an argument).
pub(super) fn password_env(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Option<EnvVar> {
    let secret = spec.auth.effective_password_secret(&meta.name)?;
    Some(EnvVar {
        name: PASSWORD_ENV.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name,
                key: secret.key,
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        value: None,
    })
}

/// The claim template `data`: ReadWriteOnce, `spec.storage.size`, the
/// storage class. Labelled with the selector labels only, and annotated
/// with the ownership annotation (a StatefulSet's claim templates are
/// immutable: one made before the annotation keeps its own,
/// [`keep_claim_templates`]).
fn claim_template(
    selector: &BTreeMap<String, String>,
    cluster: &str,
    spec: &ValkeyClusterSpec,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(selector.clone()),
            annotations: Some(BTreeMap::from([(
                labels::OWNED_BY.to_owned(),
                cluster.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    spec.storage.size.clone(),
                )])),
                limits: None,
            }),
            storage_class_name: spec.storage.storage_class_name.clone(),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Prefer one pod of `selector` per node: losing a node then costs one pod.
pub(super) fn default_affinity(selector: &BTreeMap<String, String>) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: HOSTNAME_TOPOLOGY_KEY.to_owned(),
                        label_selector: Some(match_labels(selector)),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// Spread the pods of `selector` across zones when the nodes have zones.
pub(super) fn default_spread(selector: &BTreeMap<String, String>) -> Vec<TopologySpreadConstraint> {
    vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: ZONE_TOPOLOGY_KEY.to_owned(),
        when_unsatisfiable: "ScheduleAnyway".to_owned(),
        label_selector: Some(match_labels(selector)),
        ..TopologySpreadConstraint::default()
    }]
}

pub(super) fn match_labels(selector: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector.clone()),
        match_expressions: None,
    }
}

pub(super) fn config_map_volume(name: &str, config_map: String, optional: bool) -> Volume {
    Volume {
        name: name.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map,
            optional: optional.then_some(true),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The certificate Secret of a TLS cluster, mounted whole: the kubelet
/// updates the files when the Secret changes, and the server reloads them
/// when the operator asks (no restart). Not optional: a pod must not start
/// without its certificate.
pub(super) fn tls_volume(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Option<Volume> {
    let secret = spec.tls.certificate_secret(&meta.name)?;
    Some(Volume {
        name: TLS_VOLUME.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    })
}

/// Where [`tls_volume`] is mounted.
pub(super) fn tls_mount() -> VolumeMount {
    mount(TLS_VOLUME, super::config::TLS_DIR)
}

pub(super) fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

pub(super) fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

#[cfg(test)]
#[path = "statefulset_tests.rs"]
mod tests;

/// Gives `built` the metadata of the claim templates `existing` has (by
/// name): the API server refuses any change to a StatefulSet's claim
/// templates, and one made by an older operator has no ownership
/// annotation on them (its claims are annotated one by one instead).
pub fn keep_claim_templates(built: &mut StatefulSet, existing: &StatefulSet) {
    let old: BTreeMap<String, ObjectMeta> = existing
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t.metadata.name.clone()?, t.metadata.clone())))
        .collect();
    let templates = built
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut())
        .into_iter()
        .flatten();
    for template in templates {
        if let Some(meta) = template.metadata.name.as_ref().and_then(|n| old.get(n)) {
            template.metadata.annotations.clone_from(&meta.annotations);
            template.metadata.labels.clone_from(&meta.labels);
        }
    }
}
