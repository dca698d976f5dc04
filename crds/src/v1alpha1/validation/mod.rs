//! Validation of a [`ValkeyClusterSpec`]: [`validate`].
//!
//! This module owns every rule a spec must satisfy, including those the CRD
//! schema also states (ranges, CEL rules): the schema protects a real API
//! server, while `validate` protects every other path (local mode, a CRD
//! installed without rules, an object written before a rule existed) and
//! gives the operator the reasons for its `SpecValid` condition.
//!
//! `validate` is pure: no I/O, no clock, no panics; it runs every rule and
//! returns every failure, in a stable order.

mod backup;
mod cluster_name;
mod config;
mod error;
mod external;
mod fencing;
mod metadata;
mod names;
mod resources;
mod scheduling;
mod standby;
#[cfg(test)]
mod tests;

pub use backup::validate_backup;
pub use cluster_name::{
    MAX_CLUSTER_NAME, MAX_SENTINEL_CLUSTER_NAME, validate_name, validate_name_for_topology,
};
pub use config::{
    OWNED_DIRECTIVE_PREFIXES, OWNED_DIRECTIVES, PERSISTENCE_DIRECTIVES, owned_directive_reason,
};
pub use error::{FieldError, FieldErrorKind, describe};
pub use external::{MAX_EXTERNAL_CLUSTER_NAME, validate_name_for_spec};
pub use metadata::{OPERATOR_KEY_PREFIX, RESERVED_ANNOTATION_KEYS, RESERVED_LABEL_KEYS};
pub use names::{
    check_dns_label, check_dns_subdomain, check_label_value, check_qualified_name, check_secret_key,
};

use self::error::Errors;
use super::defaults as d;
use super::failover::SentinelSpec;
use super::spec::ValkeyClusterSpec;
use super::topology::Topology;
use crate::quantity::parse_quantity;

/// Check `spec`, and when `old` is given, the change from `old` to `spec`.
///
/// `old` is the spec currently stored (on update); `None` on creation.
///
/// # Errors
///
/// Every rule that fails contributes one [`FieldError`]; the list is in a
/// stable order (by section of the spec, then by key).
pub fn validate(
    spec: &ValkeyClusterSpec,
    old: Option<&ValkeyClusterSpec>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors::default();
    check_image(spec, &mut errors);
    check_shape(spec, &mut errors);
    check_failover(spec, &mut errors);
    resources::check_resources(spec.resources.as_ref(), &mut errors);
    metadata::check_node_selector(&spec.node_selector, &mut errors);
    scheduling::check_scheduling(
        &spec.tolerations,
        &spec.topology_spread_constraints,
        spec.affinity.as_ref(),
        &mut errors,
    );
    check_optional_subdomain(
        "spec.priorityClassName",
        spec.priority_class_name.as_deref(),
        &mut errors,
    );
    if let Some(plan) = &spec.plan
        && let Err(e) = check_dns_label(plan)
    {
        errors.push(
            "spec.plan",
            FieldErrorKind::Invalid,
            format!("plan name {e}"),
        );
    }
    metadata::check_labels(&spec.labels, &mut errors);
    metadata::check_annotations("spec.annotations", &spec.annotations, &mut errors);
    external::check_external(spec, &mut errors);
    check_storage(spec, &mut errors);
    check_placement(spec, &mut errors);
    check_wake(spec, &mut errors);
    standby::check_standby(spec, old, &mut errors);
    check_auth(spec, &mut errors);
    check_tls(spec, &mut errors);
    config::check_config(&spec.config, &mut errors);
    check_policies(spec, &mut errors);
    check_secret_names(spec, &mut errors);
    backup::check_backup(spec, old, &mut errors);
    errors.range(
        "spec.journal.maxEvents",
        spec.journal.max_events,
        d::JOURNAL_MAX_EVENTS_MIN,
        d::JOURNAL_MAX_EVENTS_MAX,
        "journal.maxEvents",
    );
    if let Some(old) = old {
        check_transition(spec, old, &mut errors);
    }
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors.0)
    }
}

/// The paths of every error `validate` gives `spec` on creation (none
/// when it passes), for tests.
#[cfg(test)]
pub(crate) fn error_paths(spec: &ValkeyClusterSpec) -> Vec<String> {
    validate(spec, None)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.path)
        .collect()
}

fn check_image(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    if spec.image.is_empty() {
        errors.push(
            "spec.image",
            FieldErrorKind::Required,
            "image must not be empty",
        );
    } else if spec
        .image
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        errors.push(
            "spec.image",
            FieldErrorKind::Invalid,
            format!("image {:?} must not contain whitespace", spec.image),
        );
    }
    for (i, secret) in spec.image_pull_secrets.iter().enumerate() {
        if let Err(e) = check_dns_subdomain(&secret.name) {
            errors.push(
                format!("spec.imagePullSecrets[{i}].name"),
                FieldErrorKind::Invalid,
                format!("Secret name {e}"),
            );
        }
    }
}

/// Replica counts, shards and topology-specific sections.
fn check_shape(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let topology = spec.topology;
    match (topology, spec.replicas) {
        (_, None) => {}
        (Topology::Standalone, Some(r)) => {
            if r != d::STANDALONE_REPLICAS {
                errors.push(
                    "spec.replicas",
                    FieldErrorKind::Invalid,
                    format!(
                        "topology Standalone runs exactly one pod: replicas must be 1, got {r}"
                    ),
                );
            }
        }
        (Topology::Replication | Topology::Sentinel, Some(r)) => {
            errors.range(
                "spec.replicas",
                r,
                d::REPLICAS_MIN,
                d::REPLICAS_MAX,
                "replicas",
            );
        }
        (Topology::Cluster, Some(_)) => errors.push(
            "spec.replicas",
            FieldErrorKind::Forbidden,
            "replicas does not apply to topology Cluster; set shards and replicasPerShard",
        ),
    }

    let cluster_fields = [
        (
            "spec.shards",
            spec.shards,
            d::SHARDS_MIN,
            d::SHARDS_MAX,
            "shards",
        ),
        (
            "spec.replicasPerShard",
            spec.replicas_per_shard,
            d::REPLICAS_PER_SHARD_MIN,
            d::REPLICAS_PER_SHARD_MAX,
            "replicasPerShard",
        ),
        (
            "spec.clusterNodeTimeoutMilliseconds",
            spec.cluster_node_timeout_milliseconds,
            d::CLUSTER_NODE_TIMEOUT_MS_MIN,
            d::CLUSTER_NODE_TIMEOUT_MS_MAX,
            "clusterNodeTimeoutMilliseconds",
        ),
    ];
    for (path, value, min, max, what) in cluster_fields {
        let Some(value) = value else { continue };
        if topology.is_cluster() {
            errors.range(path, value, min, max, what);
        } else {
            errors.push(
                path,
                FieldErrorKind::Forbidden,
                format!("{what} applies only to topology Cluster, not {topology}"),
            );
        }
    }

    match (&spec.sentinel, topology.uses_sentinel()) {
        (Some(sentinel), true) => check_sentinel(sentinel, errors),
        (Some(_), false) => errors.push(
            "spec.sentinel",
            FieldErrorKind::Forbidden,
            format!("sentinel applies only to topology Sentinel, not {topology}"),
        ),
        (None, _) => {}
    }
}

fn check_sentinel(sentinel: &SentinelSpec, errors: &mut Errors) {
    let replicas = sentinel.replicas;
    errors.range(
        "spec.sentinel.replicas",
        replicas,
        d::SENTINEL_REPLICAS_MIN,
        d::SENTINEL_REPLICAS_MAX,
        "sentinel.replicas",
    );
    if replicas % 2 == 0 {
        errors.push(
            "spec.sentinel.replicas",
            FieldErrorKind::Invalid,
            format!("sentinel.replicas must be odd so a majority survives a split, got {replicas}"),
        );
    }
    if let Some(quorum) = sentinel.quorum {
        errors.range(
            "spec.sentinel.quorum",
            quorum,
            1,
            replicas.max(1),
            "sentinel.quorum",
        );
    }
    errors.range(
        "spec.sentinel.downAfterMilliseconds",
        sentinel.down_after_milliseconds,
        d::SENTINEL_DOWN_AFTER_MS_MIN,
        d::SENTINEL_DOWN_AFTER_MS_MAX,
        "sentinel.downAfterMilliseconds",
    );
    errors.range(
        "spec.sentinel.failoverTimeoutMilliseconds",
        sentinel.failover_timeout_milliseconds,
        d::SENTINEL_FAILOVER_TIMEOUT_MS_MIN,
        d::SENTINEL_FAILOVER_TIMEOUT_MS_MAX,
        "sentinel.failoverTimeoutMilliseconds",
    );
    errors.range(
        "spec.sentinel.parallelSyncs",
        sentinel.parallel_syncs,
        d::SENTINEL_PARALLEL_SYNCS_MIN,
        d::SENTINEL_PARALLEL_SYNCS_MAX,
        "sentinel.parallelSyncs",
    );
}

fn check_failover(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    errors.range(
        "spec.failover.probeIntervalMilliseconds",
        spec.failover.probe_interval_milliseconds,
        d::PROBE_INTERVAL_MS_MIN,
        d::PROBE_INTERVAL_MS_MAX,
        "failover.probeIntervalMilliseconds",
    );
    errors.range(
        "spec.failover.failureThreshold",
        spec.failover.failure_threshold,
        d::FAILURE_THRESHOLD_MIN,
        d::FAILURE_THRESHOLD_MAX,
        "failover.failureThreshold",
    );
    if spec.failover.takeover_on_quorum_loss && !spec.topology.is_cluster() {
        errors.push(
            "spec.failover.takeoverOnQuorumLoss",
            FieldErrorKind::Forbidden,
            format!(
                "takeoverOnQuorumLoss applies only to topology Cluster, not {}",
                spec.topology
            ),
        );
    }
    fencing::check_fencing(spec, errors);
}

fn check_optional_subdomain(path: &str, value: Option<&str>, errors: &mut Errors) {
    if let Some(value) = value
        && let Err(e) = check_dns_subdomain(value)
    {
        errors.push(path, FieldErrorKind::Invalid, format!("name {e}"));
    }
}

fn check_placement(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    if spec.placement != Some(super::Placement::Preferred) {
        return;
    }
    let why = match spec.topology {
        Topology::Standalone => "a Standalone cluster has one pod: there is nothing to place",
        Topology::Sentinel => {
            "Sentinel chooses the primary it fails over to: placement Preferred is not supported for Sentinel (yet); use Any"
        }
        Topology::Replication | Topology::Cluster => return,
    };
    errors.push("spec.placement", FieldErrorKind::Invalid, why);
}

fn check_wake(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let Some(seconds) = spec.wake_timeout_seconds else {
        return;
    };
    if matches!(spec.topology, Topology::Replication | Topology::Sentinel) {
        errors.range(
            "spec.wakeTimeoutSeconds",
            seconds,
            super::WAKE_TIMEOUT_SECONDS_MIN,
            super::WAKE_TIMEOUT_SECONDS_MAX,
            "wakeTimeoutSeconds",
        );
    } else {
        errors.push(
            "spec.wakeTimeoutSeconds",
            FieldErrorKind::Forbidden,
            format!(
                "wakeTimeoutSeconds applies only to topologies Replication and Sentinel: a {:?} wakes once every pod is back, each holding its own data",
                spec.topology
            ),
        );
    }
}

fn check_storage(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let size = &spec.storage.size.0;
    match parse_quantity(size) {
        Ok(q) if !q.is_positive() => errors.push(
            "spec.storage.size",
            FieldErrorKind::Invalid,
            format!("storage.size must be greater than zero, got {size:?}"),
        ),
        Ok(_) => {}
        Err(e) => errors.push("spec.storage.size", FieldErrorKind::Invalid, e.to_string()),
    }
    if spec.hibernated && spec.storage.persistence == super::storage::Persistence::None {
        errors.push(
            "spec.hibernated",
            FieldErrorKind::Invalid,
            "hibernation needs storage.persistence Rdb, Aof or RdbAndAof: with None the data lives only in the pods' memory and would not survive them",
        );
    }
    // "" is meaningful to Kubernetes (no class, static provisioning only).
    if let Some(class) = spec.storage.storage_class_name.as_deref()
        && !class.is_empty()
        && let Err(e) = check_dns_subdomain(class)
    {
        errors.push(
            "spec.storage.storageClassName",
            FieldErrorKind::Invalid,
            format!("StorageClass name {e}"),
        );
    }
}

fn check_auth(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    if !(0..=86_400).contains(&spec.auth.rotation_window_seconds) {
        errors.push(
            "spec.auth.rotationWindowSeconds",
            FieldErrorKind::OutOfRange,
            format!(
                "must be 0 to 86400 (a day), got {}",
                spec.auth.rotation_window_seconds
            ),
        );
    }
    let Some(secret) = &spec.auth.password_secret else {
        return;
    };
    if !spec.auth.enabled {
        errors.push(
            "spec.auth.passwordSecret",
            FieldErrorKind::Forbidden,
            "auth.passwordSecret is set but auth.enabled is false; remove it or enable auth",
        );
    }
    if let Err(e) = check_dns_subdomain(&secret.name) {
        errors.push(
            "spec.auth.passwordSecret.name",
            FieldErrorKind::Invalid,
            format!("Secret name {e}"),
        );
    }
    if let Err(e) = check_secret_key(&secret.key) {
        errors.push(
            "spec.auth.passwordSecret.key",
            FieldErrorKind::Invalid,
            format!("Secret key {e}"),
        );
    }
}

fn check_tls(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let tls = &spec.tls;
    // Neither is fine: the operator's own CA issues the certificate.
    if tls.issuer_ref.is_some() && tls.secret_name.is_some() {
        errors.push(
            "spec.tls",
            FieldErrorKind::Forbidden,
            "set either tls.issuerRef or tls.secretName, not both",
        );
    }
    if let Some(issuer) = &tls.issuer_ref {
        if issuer.name.is_empty() {
            errors.push(
                "spec.tls.issuerRef.name",
                FieldErrorKind::Required,
                "issuer name must not be empty",
            );
        }
        if issuer.kind.is_empty() {
            errors.push(
                "spec.tls.issuerRef.kind",
                FieldErrorKind::Required,
                "issuer kind must not be empty (e.g. Issuer or ClusterIssuer)",
            );
        }
        if let Err(e) = check_dns_subdomain(&issuer.group) {
            errors.push(
                "spec.tls.issuerRef.group",
                FieldErrorKind::Invalid,
                format!("API group {e}"),
            );
        }
    }
    check_optional_subdomain("spec.tls.secretName", tls.secret_name.as_deref(), errors);
}

fn check_policies(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    if spec.metrics.service_monitor && !spec.metrics.enabled {
        errors.push(
            "spec.metrics.serviceMonitor",
            FieldErrorKind::Invalid,
            "metrics.serviceMonitor requires metrics.enabled: a ServiceMonitor needs the exporter",
        );
    }
    errors.at_least(
        "spec.podDisruptionBudget.maxUnavailable",
        spec.pod_disruption_budget.max_unavailable,
        d::PDB_MAX_UNAVAILABLE_MIN,
        "podDisruptionBudget.maxUnavailable",
    );
    for (i, peer) in spec.network_policy.allow_from.iter().enumerate() {
        let path = format!("spec.networkPolicy.allowFrom[{i}]");
        let selectors = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
        match &peer.ip_block {
            None if !selectors => errors.push(
                path,
                FieldErrorKind::Required,
                "a peer must set podSelector, namespaceSelector or ipBlock",
            ),
            Some(_) if selectors => errors.push(
                path,
                FieldErrorKind::Forbidden,
                "ipBlock may not be combined with podSelector or namespaceSelector",
            ),
            Some(block) if block.cidr.is_empty() => errors.push(
                format!("{path}.ipBlock.cidr"),
                FieldErrorKind::Required,
                "ipBlock.cidr must not be empty",
            ),
            _ => {}
        }
    }
}

/// The connection Secret is written by the operator; it must not be a
/// Secret the user provides, or the operator would overwrite it.
fn check_secret_names(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let Some(name) = spec.connection_secret.as_deref() else {
        return;
    };
    if let Err(e) = check_dns_subdomain(name) {
        errors.push(
            "spec.connectionSecret",
            FieldErrorKind::Invalid,
            format!("Secret name {e}"),
        );
        return;
    }
    let user_secrets = [
        (
            "auth.passwordSecret.name",
            spec.auth.password_secret.as_ref().map(|s| s.name.as_str()),
        ),
        ("tls.secretName", spec.tls.secret_name.as_deref()),
    ];
    for (what, other) in user_secrets {
        if other == Some(name) {
            errors.push(
                "spec.connectionSecret",
                FieldErrorKind::Invalid,
                format!("connectionSecret {name:?} is the same Secret as {what}; the operator would overwrite it"),
            );
        }
    }
}

fn check_transition(spec: &ValkeyClusterSpec, old: &ValkeyClusterSpec, errors: &mut Errors) {
    backup::check_restore_transition(spec, old, errors);
    if old.hibernated && spec.image != old.image {
        errors.push(
            "spec.image",
            FieldErrorKind::Forbidden,
            format!(
                "the image cannot change while the cluster is hibernated, nor as it wakes: every pod would boot on {} with no preflight and no canary (a version that cannot read the files would set them aside and wake empty); wake it on {} first, then change the image",
                spec.image, old.image
            ),
        );
    }
    external::check_external_transition(spec, old, errors);
    if spec.topology != old.topology {
        errors.push(
            "spec.topology",
            FieldErrorKind::Immutable,
            format!(
                "topology is immutable: it was {} and may not become {}",
                old.topology, spec.topology
            ),
        );
    }
    if spec.storage.storage_class_name != old.storage.storage_class_name {
        let show = |c: &Option<String>| {
            c.as_deref()
                .map_or_else(|| "unset".to_owned(), |c| format!("{c:?}"))
        };
        errors.push(
            "spec.storage.storageClassName",
            FieldErrorKind::Immutable,
            format!(
                "storage.storageClassName is immutable: it was {} and may not become {}",
                show(&old.storage.storage_class_name),
                show(&spec.storage.storage_class_name)
            ),
        );
    }
    // An unparsable old size cannot be compared; the new size's own check
    // already reports a bad new value.
    if let (Ok(new), Ok(previous)) = (
        parse_quantity(&spec.storage.size.0),
        parse_quantity(&old.storage.size.0),
    ) && new < previous
    {
        errors.push(
            "spec.storage.size",
            FieldErrorKind::Forbidden,
            format!(
                "storage.size may only grow: it was {:?} and may not shrink to {:?}",
                old.storage.size.0, spec.storage.size.0
            ),
        );
    }
}
