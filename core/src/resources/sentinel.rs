//! The Sentinel objects of topology Sentinel: the ConfigMap
//! `<name>-sentinel-config` (see `sentinel_script.rs` for its files), the
//! StatefulSet `<name>-sentinel`, its headless Service `<name>-sentinel-hl`
//! (stable pod DNS names), the client Service `<name>-sentinel` (for
//! Sentinel-aware clients) and the PodDisruptionBudget `<name>-sentinel`.
//!
//! Every one carries the Sentinel labels ([`labels::sentinel_common`]) and
//! selects on [`labels::sentinel_selector`], never matching a data pod, so
//! that the data Services, PDB and the operator's pod lists never see a
//! Sentinel, and the other way round.
//!
//! Unlike the data pods, the Sentinels are rolled by the StatefulSet
//! controller itself (`RollingUpdate`, one at a time, each waiting for the
//! previous to be ready): a Sentinel holds no data, and the operator does
//! not decide anything about it. They have no volume claim: a Sentinel's
//! state lives in its config file on an emptyDir, which outlives container
//! restarts; a replaced pod relearns it from its peers.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PodSpec, PodTemplateSpec, ResourceRequirements, Service, ServicePort,
    ServiceSpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logbook_crds::ValkeyClusterSpec;
use logbook_crds::v1alpha1::defaults::SENTINEL_REPLICAS_MAX;

use super::config::hash_parts;
use super::sentinel_script::{
    SENTINEL_CONF_KEY, SENTINEL_MASTER_CONF_KEY, SENTINEL_MYID_KEY_PREFIX,
    SENTINEL_START_SCRIPT_KEY, render_sentinel_conf, render_sentinel_master_conf,
    render_sentinel_start_script, sentinel_myid,
};
use super::statefulset::{
    BOOT_DIR, POD_IP_ENV, POD_NAME_ENV, ScriptContainer, config_map_volume, default_affinity,
    default_spread, empty_dir, field_env, match_labels, mount, password_env, script_container,
};
use super::{
    ClusterMeta, SENTINEL_PORT, boot_config_map_name, labels, non_empty, sentinel_config_map_name,
    sentinel_headless_service_name, sentinel_master_name, sentinel_pdb_name, sentinel_service_name,
    sentinel_statefulset_name,
};

/// Name of the Sentinel container.
pub const SENTINEL_CONTAINER_NAME: &str = "sentinel";
/// Name of the Sentinel port on the container and the Services.
pub const SENTINEL_PORT_NAME: &str = "sentinel";

const CONFIG_VOLUME: &str = "sentinel-config";
const BOOT_VOLUME: &str = "boot";
const RUN_VOLUME: &str = "run";
const CONFIG_DIR: &str = "/etc/sentinel";
const RUN_DIR: &str = "/run/sentinel";
/// Sentinel holds no data and writes its state as it changes: there is
/// nothing to flush on the way out.
const TERMINATION_GRACE_SECONDS: i64 = 10;
/// Seconds a restarted Sentinel must stay ready before the rolling update
/// stops the next one: peers announce themselves every 2 s, so by then it
/// knows them again, and two Sentinels are never relearning at once.
const MIN_READY_SECONDS: i32 = 10;
/// A Sentinel is a small event loop: a few MiB and a sliver of a core.
const CPU_REQUEST: &str = "50m";
const MEMORY_REQUEST: &str = "32Mi";

/// The ConfigMap `<name>-sentinel-config` (`sentinel.conf`, `master.conf`,
/// `start.sh` and one `myid-<ordinal>` per possible Sentinel) and its hash,
/// which [`build_sentinel_statefulset`] stamps on the pod template so that
/// a change of any file rolls the Sentinels.
///
/// Ids are rendered for every ordinal up to the largest Sentinel count, so
/// scaling the Sentinels changes no file (and rolls no Sentinel).
pub fn build_sentinel_config_map(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
) -> (ConfigMap, String) {
    let sentinel = spec.effective_sentinel().unwrap_or_default();
    let master = sentinel_master_name(&meta.name);
    let mut data = BTreeMap::from([
        (
            SENTINEL_CONF_KEY.to_owned(),
            render_sentinel_conf(&spec.tls),
        ),
        (
            SENTINEL_MASTER_CONF_KEY.to_owned(),
            render_sentinel_master_conf(&master, &sentinel),
        ),
        (
            SENTINEL_START_SCRIPT_KEY.to_owned(),
            render_sentinel_start_script(
                &master,
                sentinel.effective_quorum(),
                spec.metrics.enabled,
            ),
        ),
    ]);
    for ordinal in 0..SENTINEL_REPLICAS_MAX {
        data.insert(
            format!("{SENTINEL_MYID_KEY_PREFIX}{ordinal}"),
            sentinel_myid(meta, ordinal),
        );
    }
    let parts: Vec<&str> = data
        .iter()
        .flat_map(|(k, v)| [k.as_str(), v.as_str()])
        .collect();
    let hash = hash_parts(&parts);
    let cm = ConfigMap {
        metadata: sentinel_meta(meta, sentinel_config_map_name(&meta.name), spec),
        data: Some(data),
        ..ConfigMap::default()
    };
    (cm, hash)
}

/// The StatefulSet `<name>-sentinel`: `sentinel.replicas` Sentinels, rolled
/// one at a time by the StatefulSet controller; `config_hash` (from
/// [`build_sentinel_config_map`]) is stamped on the pod template.
///
/// Scheduling follows the data pods' node selector, tolerations, priority
/// class, pod security context and pull secrets; `spec.affinity` and
/// `spec.topologySpreadConstraints` are the data pods' own, so Sentinels
/// always get the default spread over nodes and zones.
pub fn build_sentinel_statefulset(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    config_hash: &str,
) -> StatefulSet {
    let selector = labels::sentinel_selector(&meta.name);
    let sentinel = spec.effective_sentinel().unwrap_or_default();
    let mut template_annotations = spec.annotations.clone();
    template_annotations.insert(labels::CONFIG_HASH.to_owned(), config_hash.to_owned());
    let pod = PodSpec {
        containers: std::iter::once(container(meta, spec))
            .chain(super::exporter::exporter_container(
                meta,
                spec,
                SENTINEL_PORT,
            ))
            .collect(),
        volumes: Some(
            vec![
                config_map_volume(CONFIG_VOLUME, sentinel_config_map_name(&meta.name), false),
                // Optional, as for the data pods: a Sentinel started before the
                // operator decided a primary monitors nothing yet.
                config_map_volume(BOOT_VOLUME, boot_config_map_name(&meta.name), true),
                empty_dir(RUN_VOLUME),
            ]
            .into_iter()
            // The cluster's certificate: the Sentinel serves it and presents
            // it to the data nodes.
            .chain(super::statefulset::tls_volume(meta, spec))
            .collect(),
        ),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        affinity: Some(default_affinity(&selector)),
        topology_spread_constraints: Some(default_spread(&selector)),
        node_selector: non_empty(spec.node_selector.clone()),
        tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
        priority_class_name: spec.priority_class_name.clone(),
        security_context: spec.pod_security_context.clone(),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty())
            .then(|| spec.image_pull_secrets.clone()),
        // Service links would put `<SERVICE>_PORT=tcp://...` variables in
        // the environment, and a Service named `sentinel` or `valkey` in
        // the namespace would collide with the script's overrides.
        enable_service_links: Some(false),
        // A Sentinel never talks to the API server.
        automount_service_account_token: Some(false),
        ..PodSpec::default()
    };
    StatefulSet {
        metadata: sentinel_meta(meta, sentinel_statefulset_name(&meta.name), spec),
        spec: Some(StatefulSetSpec {
            service_name: Some(sentinel_headless_service_name(&meta.name)),
            replicas: Some(sentinel.replicas),
            pod_management_policy: Some("Parallel".to_owned()),
            // Partition 0 said outright: without `rollingUpdate`,
            // localkube's controller keeps the pods counted current on
            // their old revision (Kubernetes applies that rule only to the
            // pods it recreates), and a new template (a restart's
            // `restarted-at` among them) must reach every Sentinel.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: None,
                }),
            }),
            min_ready_seconds: Some(MIN_READY_SECONDS),
            selector: match_labels(&selector),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::sentinel_common(&meta.name, spec)),
                    annotations: Some(template_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The Sentinel container: `sh /etc/sentinel/start.sh` on the data pods'
/// image, the password from its Secret through the environment, TCP
/// probes on the Sentinel port.
fn container(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Container {
    let mut env = vec![
        field_env(POD_IP_ENV, "status.podIP"),
        field_env(POD_NAME_ENV, "metadata.name"),
    ];
    env.extend(password_env(meta, spec));
    let mut users = vec![
        super::internal_users::OPERATOR_USER,
        super::internal_users::SENTINEL_USER,
    ];
    if spec.metrics.enabled {
        // The exporter beside it reads the Sentinel as this user.
        users.push(super::internal_users::METRICS_USER);
    }
    env.extend(super::internal_users::internal_env(meta, &users));
    Container {
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity(CPU_REQUEST.to_owned())),
                ("memory".to_owned(), Quantity(MEMORY_REQUEST.to_owned())),
            ])),
            ..ResourceRequirements::default()
        }),
        // Sentinel writes only to its emptyDir.
        volume_mounts: Some(
            [
                mount(CONFIG_VOLUME, CONFIG_DIR),
                mount(BOOT_VOLUME, BOOT_DIR),
                mount(RUN_VOLUME, RUN_DIR),
            ]
            .into_iter()
            .chain(spec.tls.enabled.then(super::statefulset::tls_mount))
            .collect(),
        ),
        // Ready means listening (the rolling update and the Sentinel
        // Service read it); a command probe would need the password on a
        // command line.
        ..script_container(
            spec,
            ScriptContainer {
                name: SENTINEL_CONTAINER_NAME,
                port_name: SENTINEL_PORT_NAME,
                port: SENTINEL_PORT,
                config_dir: CONFIG_DIR,
                env,
                readiness_period_seconds: 2,
            },
        )
    }
}

/// The headless Service `<name>-sentinel-hl` governing the Sentinel
/// StatefulSet: every Sentinel pod, ready or not, gets a stable DNS name
/// (`<name>-sentinel-<i>.<name>-sentinel-hl`).
pub fn build_sentinel_headless_service(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Service {
    sentinel_service(
        meta,
        spec,
        sentinel_headless_service_name(&meta.name),
        ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        },
    )
}

/// The client Service `<name>-sentinel`: every ready Sentinel, on 26379,
/// for Sentinel-aware clients, which ask it where the primary is.
pub fn build_sentinel_service(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> Service {
    sentinel_service(
        meta,
        spec,
        sentinel_service_name(&meta.name),
        ServiceSpec::default(),
    )
}

/// The PodDisruptionBudget `<name>-sentinel`: at most one Sentinel
/// voluntarily down at a time, so a drain never takes the majority that
/// elects a failover leader. Not subject to `spec.podDisruptionBudget`,
/// which is about the data pods: losing Sentinels costs no data, but two
/// of three down means no failover at all.
pub fn build_sentinel_pdb(meta: &ClusterMeta, spec: &ValkeyClusterSpec) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: sentinel_meta(meta, sentinel_pdb_name(&meta.name), spec),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(match_labels(&labels::sentinel_selector(&meta.name))),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// A Service on port 26379 named `sentinel` over the Sentinel pods. The
/// protocol is explicit because server-side apply keys Service ports by
/// port and protocol.
fn sentinel_service(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    name: String,
    base: ServiceSpec,
) -> Service {
    Service {
        metadata: sentinel_meta(meta, name, spec),
        spec: Some(ServiceSpec {
            selector: Some(labels::sentinel_selector(&meta.name)),
            ports: Some(vec![ServicePort {
                name: Some(SENTINEL_PORT_NAME.to_owned()),
                port: i32::from(SENTINEL_PORT),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..base
        }),
        ..Service::default()
    }
}

/// Metadata of a Sentinel object: as every owned object's, with the
/// Sentinel labels in place of the data ones.
fn sentinel_meta(meta: &ClusterMeta, name: String, spec: &ValkeyClusterSpec) -> ObjectMeta {
    ObjectMeta {
        labels: Some(labels::sentinel_common(&meta.name, spec)),
        ..meta.object_meta(name, spec)
    }
}

#[cfg(test)]
#[path = "sentinel_tests.rs"]
mod tests;
