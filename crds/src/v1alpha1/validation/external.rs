//! `spec.externalAccess`: what the schema's CEL rules say, for every path
//! the schema does not cover, and the CIDRs it cannot check.

use super::cluster_name::validate_name_for_topology;
use super::error::{Errors, FieldError, FieldErrorKind};
use super::metadata;
use crate::v1alpha1::external::ExternalAccessType;
use crate::v1alpha1::spec::ValkeyClusterSpec;

/// The longest cluster name with external access on: each pod's Service
/// is `<name>-<ordinal>-external`, at most 63 characters, with room for
/// five-digit ordinals.
pub const MAX_EXTERNAL_CLUSTER_NAME: usize = 48;

/// [`validate_name_for_topology`], and with external access on the
/// tighter bound its per-pod Services need.
///
/// # Errors
/// A [`FieldError`] on `metadata.name` that names the limit broken.
pub fn validate_name_for_spec(name: &str, spec: &ValkeyClusterSpec) -> Result<(), FieldError> {
    validate_name_for_topology(name, spec.topology)?;
    if spec.external_access.enabled && name.len() > MAX_EXTERNAL_CLUSTER_NAME {
        return Err(FieldError {
            path: "metadata.name".into(),
            kind: FieldErrorKind::Invalid,
            message: format!(
                "must be at most {MAX_EXTERNAL_CLUSTER_NAME} characters with externalAccess enabled, got {}: each pod's Service is named <pod>-external, and a Service name is at most 63 characters",
                name.len()
            ),
        });
    }
    Ok(())
}

/// A Sentinel cluster exposed outside may not be closed in place: its
/// Sentinels know the primary and the replicas only at their external
/// endpoints, which closing removes, and moving them back to pod
/// addresses takes a failover that the operator does not run yet.
pub(super) fn check_external_transition(
    spec: &ValkeyClusterSpec,
    old: &ValkeyClusterSpec,
    errors: &mut Errors,
) {
    if spec.topology.uses_sentinel() && old.external_access.enabled && !spec.external_access.enabled
    {
        errors.push(
            "spec.externalAccess.enabled",
            FieldErrorKind::Forbidden,
            "externalAccess cannot be turned off on a Sentinel cluster yet: its Sentinels know the primary and the replicas only at their external endpoints, which turning it off removes; to close it, restrict it (loadBalancerSourceRanges, spec.networkPolicy) or recreate the cluster",
        );
    }
}

pub(super) fn check_external(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let ext = &spec.external_access;
    if ext.r#type != ExternalAccessType::LoadBalancer
        && (ext.load_balancer_class.is_some() || !ext.load_balancer_source_ranges.is_empty())
    {
        errors.push(
            "spec.externalAccess",
            FieldErrorKind::Forbidden,
            "externalAccess.loadBalancerClass and loadBalancerSourceRanges apply only to type LoadBalancer",
        );
    }
    metadata::check_annotations("spec.externalAccess.annotations", &ext.annotations, errors);
    for (i, cidr) in ext.load_balancer_source_ranges.iter().enumerate() {
        if let Err(why) = check_cidr(cidr) {
            errors.push(
                format!("spec.externalAccess.loadBalancerSourceRanges[{i}]"),
                FieldErrorKind::Invalid,
                format!("{cidr:?} is not a CIDR ({why}), e.g. 203.0.113.0/24"),
            );
        }
    }
}

/// An IPv4 or IPv6 network in CIDR notation.
fn check_cidr(cidr: &str) -> Result<(), String> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| "no prefix length after '/'".to_owned())?;
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    match len.parse::<u8>() {
        Ok(n) if n <= bits => Ok(()),
        _ => Err(format!("prefix length {len:?} is not 0..={bits}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::v1alpha1::external::ExternalAccessSpec;
    use crate::v1alpha1::topology::Topology;
    use crate::v1alpha1::validation::validate;

    fn spec(topology: Topology, ext: ExternalAccessSpec) -> ValkeyClusterSpec {
        ValkeyClusterSpec {
            topology,
            external_access: ext,
            ..ValkeyClusterSpec::default()
        }
    }

    fn on(r#type: ExternalAccessType) -> ExternalAccessSpec {
        ExternalAccessSpec {
            enabled: true,
            r#type,
            ..ExternalAccessSpec::default()
        }
    }

    use crate::v1alpha1::validation::error_paths as paths;

    #[test]
    fn a_sentinel_cluster_exposed_stays_exposed() {
        let exposed = spec(Topology::Sentinel, on(ExternalAccessType::NodePort));
        let closed = spec(
            Topology::Sentinel,
            ExternalAccessSpec {
                enabled: false,
                ..on(ExternalAccessType::NodePort)
            },
        );
        let err = validate(&closed, Some(&exposed)).unwrap_err();
        assert!(
            err.iter()
                .any(|e| e.path == "spec.externalAccess.enabled" && e.message.contains("Sentinel")),
            "{err:?}"
        );
        // Opening it, or changing how, is allowed.
        assert!(validate(&exposed, Some(&closed)).is_ok());
        let lb = spec(Topology::Sentinel, on(ExternalAccessType::LoadBalancer));
        assert!(validate(&lb, Some(&exposed)).is_ok());
        // Other topologies may close it.
        let repl = spec(Topology::Replication, on(ExternalAccessType::NodePort));
        let repl_closed = spec(Topology::Replication, ExternalAccessSpec::default());
        assert!(validate(&repl_closed, Some(&repl)).is_ok());
    }

    #[test]
    fn every_topology_may_be_exposed() {
        for t in [
            Topology::Standalone,
            Topology::Replication,
            Topology::Sentinel,
        ] {
            let mut s = spec(t, on(ExternalAccessType::NodePort));
            if t == Topology::Standalone {
                s.replicas = Some(1);
            }
            assert!(paths(&s).is_empty(), "{t}: {:?}", validate(&s, None));
        }
        let cluster = ValkeyClusterSpec {
            shards: Some(3),
            ..spec(Topology::Cluster, on(ExternalAccessType::LoadBalancer))
        };
        assert!(paths(&cluster).is_empty(), "{:?}", validate(&cluster, None));
    }

    #[test]
    fn load_balancer_settings_need_a_load_balancer_and_real_cidrs() {
        let mut ext = on(ExternalAccessType::NodePort);
        ext.load_balancer_class = Some("example.com/lb".into());
        assert!(
            paths(&spec(Topology::Replication, ext.clone()))
                .contains(&"spec.externalAccess".to_owned())
        );
        ext.r#type = ExternalAccessType::LoadBalancer;
        ext.load_balancer_source_ranges =
            vec!["10.0.0.0/8".into(), "10.0.0.1".into(), "::/129".into()];
        let p = paths(&spec(Topology::Replication, ext));
        assert_eq!(
            p,
            vec![
                "spec.externalAccess.loadBalancerSourceRanges[1]".to_owned(),
                "spec.externalAccess.loadBalancerSourceRanges[2]".to_owned()
            ]
        );
    }

    #[test]
    fn reserved_annotation_keys_are_refused_on_the_services_too() {
        let mut ext = on(ExternalAccessType::LoadBalancer);
        ext.annotations
            .insert("valkey.logbook.dev/anything".into(), "x".into());
        ext.annotations.insert(
            "service.beta.kubernetes.io/aws-load-balancer-type".into(),
            "nlb".into(),
        );
        let p = paths(&spec(Topology::Replication, ext));
        assert_eq!(
            p,
            vec!["spec.externalAccess.annotations[\"valkey.logbook.dev/anything\"]".to_owned()]
        );
    }

    #[test]
    fn an_exposed_cluster_name_leaves_room_for_its_services() {
        let s = spec(Topology::Replication, on(ExternalAccessType::NodePort));
        assert!(validate_name_for_spec(&"a".repeat(48), &s).is_ok());
        let err = validate_name_for_spec(&"a".repeat(49), &s).unwrap_err();
        assert!(err.message.contains("<pod>-external"), "{err:?}");
        let off = spec(Topology::Replication, ExternalAccessSpec::default());
        assert!(validate_name_for_spec(&"a".repeat(49), &off).is_ok());
    }
}
