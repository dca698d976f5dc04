//! `spec.externalAccess`: what the schema's CEL rules say, for every path
//! the schema does not cover, and the CIDRs it cannot check.

use super::cluster_name::validate_name_for_topology;
use super::error::{Errors, FieldError, FieldErrorKind};
use super::metadata;
use crate::v1alpha1::external::{ExternalAccessType, NodePortService};
use crate::v1alpha1::spec::ValkeyClusterSpec;
use crate::v1alpha1::topology::Topology;

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
    // The API server refuses a node port another Service still holds,
    // and the Services are applied one at a time: a port that moves
    // between them in one change would be refused half-way.
    let before = old.external_access.node_ports.chosen();
    for now in spec.external_access.node_ports.chosen() {
        if let Some(was) = before
            .iter()
            .find(|b| b.port == now.port && b.service != now.service)
        {
            errors.push(
                format!("spec.externalAccess.nodePorts.{}", now.field),
                FieldErrorKind::Forbidden,
                format!(
                    "node port {} moves from nodePorts.{} to nodePorts.{} in one change, which the API server refuses while the first Service still holds it: give nodePorts.{} another port (or none) first, then this one",
                    now.port, was.field, now.field, was.field
                ),
            );
        }
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
    check_node_ports(spec, errors);
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

/// `spec.externalAccess.nodePorts`: by node ports only, each for a
/// Service the spec makes, each a port number, none twice.
fn check_node_ports(spec: &ValkeyClusterSpec, errors: &mut Errors) {
    let ext = &spec.external_access;
    let chosen = ext.node_ports.chosen();
    if chosen.is_empty() {
        return;
    }
    const AT: &str = "spec.externalAccess.nodePorts";
    if ext.r#type != ExternalAccessType::NodePort {
        errors.push(
            AT,
            FieldErrorKind::Forbidden,
            "externalAccess.nodePorts applies only to type NodePort",
        );
        return;
    }
    let pods = usize::try_from(spec.effective_replicas()).unwrap_or(0);
    if ext.node_ports.pods.len() > pods {
        errors.push(
            format!("{AT}.pods"),
            FieldErrorKind::Invalid,
            format!(
                "names {} pods, and the spec makes {pods} (ordinals 0 to {}): remove the entries of the pods that are not there",
                ext.node_ports.pods.len(),
                pods.saturating_sub(1)
            ),
        );
    }
    let mut seen: std::collections::BTreeMap<i32, &str> = std::collections::BTreeMap::new();
    for c in &chosen {
        let at = format!("{AT}.{}", c.field);
        let misplaced = match c.service {
            NodePortService::Pod(_) if c.bus => (spec.topology != Topology::Cluster)
                .then_some("a bus port applies only to topology Cluster"),
            NodePortService::Pod(_) => None,
            NodePortService::Primary => (spec.topology == Topology::Cluster).then_some(
                "a Cluster has no primary's Service: its clients reach every node at its own",
            ),
            NodePortService::Sentinel => (spec.topology != Topology::Sentinel)
                .then_some("the Sentinels' Service is made only for topology Sentinel"),
        };
        if let Some(why) = misplaced {
            errors.push(at, FieldErrorKind::Forbidden, why);
            continue;
        }
        if !(1..=65535).contains(&c.port) {
            errors.push(
                at,
                FieldErrorKind::OutOfRange,
                format!("must be a port, 1 to 65535, got {}", c.port),
            );
            continue;
        }
        match seen.entry(c.port) {
            std::collections::btree_map::Entry::Occupied(first) => errors.push(
                at,
                FieldErrorKind::Duplicate,
                format!(
                    "node port {} is already nodePorts.{}: a node port serves one Service port",
                    c.port,
                    first.get()
                ),
            ),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(&c.field);
            }
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
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::v1alpha1::external::{ExternalAccessSpec, ExternalNodePorts, PodNodePorts};
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

    fn ports(pods: &[(Option<i32>, Option<i32>)]) -> ExternalNodePorts {
        ExternalNodePorts {
            pods: pods
                .iter()
                .map(|&(client, bus)| PodNodePorts { client, bus })
                .collect(),
            ..ExternalNodePorts::default()
        }
    }

    fn errors_of(s: &ValkeyClusterSpec, old: Option<&ValkeyClusterSpec>) -> Vec<(String, String)> {
        validate(s, old)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    #[test]
    fn chosen_node_ports_are_checked_against_the_services_the_spec_makes() {
        let mut ext = on(ExternalAccessType::NodePort);
        ext.node_ports = ports(&[(Some(31000), Some(31001)), (Some(31002), None)]);
        let mut cluster = ValkeyClusterSpec {
            shards: Some(3),
            ..spec(Topology::Cluster, ext.clone())
        };
        assert!(
            errors_of(&cluster, None).is_empty(),
            "{:?}",
            errors_of(&cluster, None)
        );
        // A Cluster has no primary's Service nor Sentinels.
        cluster.external_access.node_ports.primary = Some(31500);
        cluster.external_access.node_ports.sentinel = Some(31501);
        let e = errors_of(&cluster, None);
        assert_eq!(
            e.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            [
                "spec.externalAccess.nodePorts.primary",
                "spec.externalAccess.nodePorts.sentinel"
            ],
            "{e:?}"
        );
        // Outside a Cluster there is no bus; more entries than pods, a
        // port twice and one out of range are each named.
        let mut repl = spec(Topology::Replication, ext);
        repl.replicas = Some(2);
        repl.external_access.node_ports.pods.push(PodNodePorts {
            client: Some(31002),
            bus: None,
        });
        repl.external_access.node_ports.primary = Some(70000);
        let e = errors_of(&repl, None);
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.externalAccess.nodePorts.pods",
                "spec.externalAccess.nodePorts.pods[0].bus",
                "spec.externalAccess.nodePorts.pods[2].client",
                "spec.externalAccess.nodePorts.primary",
            ],
            "{e:?}"
        );
        assert!(
            e[0].1.contains("names 3 pods, and the spec makes 2"),
            "{e:?}"
        );
        assert!(e[2].1.contains("already nodePorts.pods[1].client"), "{e:?}");
        assert!(e[3].1.contains("70000"), "{e:?}");
        // Not by load balancers.
        let mut lb = on(ExternalAccessType::LoadBalancer);
        lb.node_ports.primary = Some(31000);
        assert_eq!(
            paths_of(&spec(Topology::Replication, lb)),
            ["spec.externalAccess.nodePorts"]
        );
    }

    fn paths_of(s: &ValkeyClusterSpec) -> Vec<String> {
        errors_of(s, None).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn a_node_port_moves_between_services_in_two_changes() {
        let mut ext = on(ExternalAccessType::NodePort);
        ext.node_ports = ports(&[(Some(31000), None), (Some(31001), None)]);
        let old = spec(Topology::Replication, ext.clone());
        // Swapped: each would be refused while the other holds it.
        ext.node_ports = ports(&[(Some(31001), None), (Some(31000), None)]);
        let swapped = spec(Topology::Replication, ext.clone());
        let e = errors_of(&swapped, Some(&old));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].1
                .contains("moves from nodePorts.pods[1].client to nodePorts.pods[0].client"),
            "{e:?}"
        );
        // Given up first, then taken: each step is allowed.
        ext.node_ports = ports(&[(Some(31002), None), (Some(31003), None)]);
        let freed = spec(Topology::Replication, ext);
        assert!(errors_of(&freed, Some(&old)).is_empty());
        assert!(errors_of(&swapped, Some(&freed)).is_empty());
        // Within one Service (client and bus swapped) it is one update.
        let mut c = on(ExternalAccessType::NodePort);
        c.node_ports = ports(&[(Some(31000), Some(31001))]);
        let before = ValkeyClusterSpec {
            shards: Some(3),
            ..spec(Topology::Cluster, c.clone())
        };
        c.node_ports = ports(&[(Some(31001), Some(31000))]);
        let after = ValkeyClusterSpec {
            shards: Some(3),
            ..spec(Topology::Cluster, c)
        };
        assert!(errors_of(&after, Some(&before)).is_empty());
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
