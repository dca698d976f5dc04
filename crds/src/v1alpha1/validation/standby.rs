//! `spec.replicateFrom`: what a standby may be, and when it may be set.

use super::error::{Errors, FieldErrorKind};
use super::{check_dns_label, check_dns_subdomain};
use crate::v1alpha1::spec::ValkeyClusterSpec;
use crate::v1alpha1::standby::ReplicateFrom;
use crate::v1alpha1::topology::Topology;

const PATH: &str = "spec.replicateFrom";

/// The rules of `replicateFrom` alone, and against the spec in force
/// (`old`): set only when the cluster is created, never changed to another
/// source, removed to promote.
pub(super) fn check_standby(
    spec: &ValkeyClusterSpec,
    old: Option<&ValkeyClusterSpec>,
    errors: &mut Errors,
) {
    if let Some(old) = old {
        match (&old.replicate_from, &spec.replicate_from) {
            (None, Some(_)) => errors.push(
                PATH,
                FieldErrorKind::Forbidden,
                "a running cluster cannot become a standby (its data would be replaced by the source's): replicateFrom is set only when the cluster is created; create a new cluster as the standby",
            ),
            (Some(was), Some(now)) if !was.same_source(now) => errors.push(
                PATH,
                FieldErrorKind::Immutable,
                "the source of a standby cannot change: remove replicateFrom to promote this cluster, or create another standby",
            ),
            _ => {}
        }
    }
    check_standby_namespaces(&spec.standby_namespaces, errors);
    let Some(from) = &spec.replicate_from else {
        return;
    };
    check_source(from, errors);
    let unsupported = match spec.topology {
        Topology::Standalone | Topology::Replication => None,
        Topology::Sentinel => Some(
            "a Sentinel standby is not supported yet (its Sentinels would fail over to a writable primary): use Replication, and Sentinel once promoted is a new cluster",
        ),
        Topology::Cluster => Some(
            "a Valkey Cluster standby is not supported yet (it would need one source shard per shard): use Standalone or Replication",
        ),
    };
    if let Some(why) = unsupported {
        errors.push(PATH, FieldErrorKind::NotSupported, why);
    }
    if spec.tls.enabled {
        errors.push(
            PATH,
            FieldErrorKind::NotSupported,
            "a standby over TLS is not supported yet: replication to the source would need the source's CA; leave spec.tls disabled on the standby",
        );
    }
    if spec.hibernated {
        errors.push(
            "spec.hibernated",
            FieldErrorKind::Forbidden,
            "a standby cannot hibernate: it would stop following its source; promote it first",
        );
    }
    if spec.placement == Some(crate::v1alpha1::Placement::Preferred) {
        errors.push(
            "spec.placement",
            FieldErrorKind::Forbidden,
            "a standby has no primary to place (its first pod follows the source); set placement once promoted",
        );
    }
    if spec.restore_from.is_some() {
        errors.push(
            PATH,
            FieldErrorKind::Forbidden,
            "a standby takes its data from its source: restoreFrom and replicateFrom cannot both be set",
        );
    }
}

fn check_source(from: &ReplicateFrom, errors: &mut Errors) {
    match (&from.cluster, &from.endpoint) {
        (Some(_), Some(_)) => errors.push(
            PATH,
            FieldErrorKind::Invalid,
            "name the source either as a cluster or as an endpoint, not both",
        ),
        (None, None) => errors.push(
            PATH,
            FieldErrorKind::Required,
            "name the source: cluster (a ValkeyCluster of this Kubernetes) or endpoint (an address and a credentials Secret)",
        ),
        (Some(c), None) => {
            if let Err(e) = check_dns_label(&c.name) {
                errors.push(
                    format!("{PATH}.cluster.name"),
                    FieldErrorKind::Invalid,
                    format!("cluster name {e}"),
                );
            }
            if let Some(ns) = &c.namespace
                && let Err(e) = check_dns_label(ns)
            {
                errors.push(
                    format!("{PATH}.cluster.namespace"),
                    FieldErrorKind::Invalid,
                    format!("namespace {e}"),
                );
            }
        }
        (None, Some(e)) => {
            if e.host.is_empty() || e.host.chars().any(|c| c.is_whitespace() || c.is_control()) {
                errors.push(
                    format!("{PATH}.endpoint.host"),
                    FieldErrorKind::Invalid,
                    format!("host {:?} must be a host name or an IP address", e.host),
                );
            }
            if let Some(port) = e.port
                && !(1..=65535).contains(&port)
            {
                errors.push(
                    format!("{PATH}.endpoint.port"),
                    FieldErrorKind::OutOfRange,
                    format!("port {port} must be 1..=65535"),
                );
            }
            if let Err(err) = check_dns_subdomain(&e.credentials_secret) {
                errors.push(
                    format!("{PATH}.endpoint.credentialsSecret"),
                    FieldErrorKind::Invalid,
                    format!("Secret name {err}"),
                );
            }
        }
    }
    if let Some(bytes) = from.max_lag_bytes
        && bytes < 1
    {
        errors.push(
            format!("{PATH}.maxLagBytes"),
            FieldErrorKind::OutOfRange,
            format!("maxLagBytes {bytes} must be at least 1"),
        );
    }
}

/// `spec.standbyNamespaces`: namespaces by name, each once (`*` or a
/// pattern would hand the replication password to any tenant).
fn check_standby_namespaces(namespaces: &[String], errors: &mut Errors) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let path = format!("spec.standbyNamespaces[{i}]");
        if let Err(e) = check_dns_label(ns) {
            errors.push(
                path,
                FieldErrorKind::Invalid,
                format!("namespace {e} (name each namespace; there is no wildcard)"),
            );
        } else if !seen.insert(ns.as_str()) {
            errors.push(
                path,
                FieldErrorKind::Duplicate,
                format!("namespace {ns:?} is listed twice"),
            );
        }
    }
}
