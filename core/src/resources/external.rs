//! The Services of external access (`spec.externalAccess`): one per data
//! pod, `<pod>-external`, of type `NodePort` or `LoadBalancer`, for every
//! topology but Cluster `<name>-external`, which selects the pod
//! labelled primary (and so follows a failover), and for topology
//! Sentinel `<name>-sentinel-external`, which selects the Sentinels.
//!
//! A pod's own Service publishes it ready or not: in a Cluster exposed by
//! node ports the nodes reach each other's bus through them, and a node
//! not yet ready must still be met. It keeps the client's address
//! (`externalTrafficPolicy: Local`): the node announced is the pod's own,
//! and a NetworkPolicy can then admit clients by their address. The
//! primary's Service balances across nodes (`Cluster`): a client may use
//! any node's address.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service, ServicePort, ServiceSpec};
use logbook_crds::{ExternalAccessType, Topology, ValkeyClusterSpec};

use super::labels::{self, COMPONENT, ROLE, ROLE_PRIMARY};
use super::statefulset::PORT_NAME;
use super::{ClusterMeta, SENTINEL_PORT, SENTINEL_PORT_NAME, VALKEY_PORT};

/// The cluster bus port of every Valkey Cluster node (the client port
/// plus 10000, Valkey's default).
pub const BUS_PORT: u16 = VALKEY_PORT + 10_000;
/// The name of the bus port on a pod's external Service.
pub const BUS_PORT_NAME: &str = "bus";
/// The [`COMPONENT`] label value of external Services.
pub const COMPONENT_EXTERNAL: &str = "external";
/// The label on a pod's own external Service naming its pod (the
/// StatefulSet controller's pod-name label, which the selector uses).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

/// The label selector (`k=v,...`) of every external Service of
/// `cluster`, for list calls.
pub fn selector_string(cluster: &str) -> String {
    format!(
        "{},{}={COMPONENT_EXTERNAL}",
        labels::selector_string(cluster),
        COMPONENT
    )
}

/// The node port the API server gave `service`'s port `port` (by name).
pub fn node_port(service: &Service, port: &str) -> Option<u16> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some(port)))
        .and_then(|p| p.node_port)
        .and_then(|p| u16::try_from(p).ok())
}

/// The first address a load balancer implementation wrote in `service`'s
/// status, if any.
pub fn first_ingress(service: &Service) -> Option<&LoadBalancerIngress> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|i| i.first())
}

/// The boot ConfigMap's key holding what `pod` announces at boot.
pub fn announce_key(pod: &str) -> String {
    format!("announce-{pod}")
}

/// `<pod>-external`.
pub fn pod_service_name(pod: &str) -> String {
    format!("{pod}-external")
}

/// `<name>-external`, the primary's (not for a Cluster).
pub fn primary_service_name(cluster: &str) -> String {
    format!("{cluster}-external")
}

/// `<name>-sentinel-external`, the Sentinels' (topology Sentinel only).
pub fn sentinel_service_name(cluster: &str) -> String {
    format!("{cluster}-sentinel-external")
}

/// Whether `name` is one of `cluster`'s external Services (the primary's,
/// the Sentinels' or a pod's).
pub fn is_external_service(cluster: &str, name: &str) -> bool {
    name == primary_service_name(cluster)
        || name == sentinel_service_name(cluster)
        || name
            .strip_suffix("-external")
            .and_then(|pod| pod.strip_prefix(&format!("{}-", super::statefulset_name(cluster))))
            .is_some_and(|ordinal| {
                !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit())
            })
}

/// Every external Service the spec asks for, given the data pods' names
/// (each pod gets one); empty when external access is off.
pub fn build_external_services(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    pods: &[String],
) -> Vec<Service> {
    let Some(kind) = spec.external_access.wanted() else {
        return Vec::new();
    };
    let cluster = spec.topology == Topology::Cluster;
    // Chosen node ports (validated: by node ports only, each for a
    // Service made here); the API server allocates the others.
    let chosen = &spec.external_access.node_ports;
    let mut out: Vec<Service> = pods
        .iter()
        .enumerate()
        .map(|(i, pod)| {
            let mut selector = labels::selector(&meta.name);
            selector.insert(POD_NAME_LABEL.to_owned(), pod.clone());
            let mine = chosen.pods.get(i).copied().unwrap_or_default();
            let mut ports = vec![port(PORT_NAME, VALKEY_PORT, mine.client)];
            // Valkey announces one port per node, for its peers too: by
            // node ports, the bus must be reachable where it is announced.
            if cluster && kind == ExternalAccessType::NodePort {
                ports.push(port(BUS_PORT_NAME, BUS_PORT, mine.bus));
            }
            service(
                meta,
                spec,
                pod_service_name(pod),
                selector,
                ports,
                ServiceSpec {
                    publish_not_ready_addresses: Some(true),
                    external_traffic_policy: Some("Local".to_owned()),
                    ..ServiceSpec::default()
                },
            )
        })
        .collect();
    // Sentinel clients ask any Sentinel: one Service balances across
    // them, reached at any node's address.
    if spec.topology == Topology::Sentinel {
        out.push(service(
            meta,
            spec,
            sentinel_service_name(&meta.name),
            labels::sentinel_selector(&meta.name),
            vec![port(SENTINEL_PORT_NAME, SENTINEL_PORT, chosen.sentinel)],
            ServiceSpec {
                external_traffic_policy: Some("Cluster".to_owned()),
                ..ServiceSpec::default()
            },
        ));
    }
    if !cluster {
        let mut selector = labels::selector(&meta.name);
        selector.insert(ROLE.to_owned(), ROLE_PRIMARY.to_owned());
        out.push(service(
            meta,
            spec,
            primary_service_name(&meta.name),
            selector,
            vec![port(PORT_NAME, VALKEY_PORT, chosen.primary)],
            ServiceSpec {
                external_traffic_policy: Some("Cluster".to_owned()),
                ..ServiceSpec::default()
            },
        ));
    }
    out
}

/// A Service port, its node port chosen or (`None`) left to the API
/// server.
fn port(name: &str, number: u16, node_port: Option<i32>) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: i32::from(number),
        node_port,
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

fn service(
    meta: &ClusterMeta,
    spec: &ValkeyClusterSpec,
    name: String,
    selector: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
    base: ServiceSpec,
) -> Service {
    let ext = &spec.external_access;
    let mut metadata = meta.object_meta(name, spec);
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(COMPONENT.to_owned(), COMPONENT_EXTERNAL.to_owned());
    if !ext.annotations.is_empty() {
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(ext.annotations.clone());
    }
    let balanced = ext.r#type == ExternalAccessType::LoadBalancer;
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(ext.r#type.as_str().to_owned()),
            selector: Some(selector),
            ports: Some(ports),
            load_balancer_class: ext.load_balancer_class.clone().filter(|_| balanced),
            load_balancer_source_ranges: (balanced && !ext.load_balancer_source_ranges.is_empty())
                .then(|| ext.load_balancer_source_ranges.clone()),
            ..base
        }),
        ..Service::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::test_support::meta;
    use super::*;
    use logbook_crds::{ExternalAccessSpec, ExternalNodePorts, PodNodePorts};

    pub(crate) fn exposed(topology: Topology, r#type: ExternalAccessType) -> ValkeyClusterSpec {
        ValkeyClusterSpec {
            topology,
            external_access: ExternalAccessSpec {
                enabled: true,
                r#type,
                annotations: BTreeMap::from([("example.com/lb".into(), "internal".into())]),
                load_balancer_class: Some("example.com/class".into()),
                load_balancer_source_ranges: vec!["203.0.113.0/24".into()],
                node_ports: ExternalNodePorts::default(),
            },
            ..ValkeyClusterSpec::default()
        }
    }

    pub(crate) fn pods() -> Vec<String> {
        vec!["cache-0".into(), "cache-1".into()]
    }

    fn names(s: &[Service]) -> Vec<&str> {
        s.iter()
            .map(|s| s.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn nothing_is_exposed_by_default() {
        assert!(
            build_external_services(&meta(), &ValkeyClusterSpec::default(), &pods()).is_empty()
        );
    }

    #[test]
    fn a_cluster_by_node_ports_exposes_each_pod_and_its_bus() {
        let s = build_external_services(
            &meta(),
            &exposed(Topology::Cluster, ExternalAccessType::NodePort),
            &pods(),
        );
        assert_eq!(names(&s), ["cache-0-external", "cache-1-external"]);
        let spec = s[1].spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.selector.as_ref().unwrap()[POD_NAME_LABEL], "cache-1");
        assert_eq!(spec.selector.as_ref().unwrap()[labels::CLUSTER], "cache");
        let ports: Vec<(&str, i32)> = spec
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.name.as_deref().unwrap(), p.port))
            .collect();
        assert_eq!(ports, [("valkey", 6379), ("bus", 16379)]);
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        // Load balancer settings only go to load balancers.
        assert_eq!(spec.load_balancer_class, None);
        assert_eq!(spec.load_balancer_source_ranges, None);
        let meta = &s[0].metadata;
        assert_eq!(meta.labels.as_ref().unwrap()[COMPONENT], "external");
        assert_eq!(
            meta.annotations.as_ref().unwrap()["example.com/lb"],
            "internal"
        );
    }

    fn node_ports(s: &Service) -> Vec<(&str, Option<i32>)> {
        s.spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.name.as_deref().unwrap(), p.node_port))
            .collect()
    }

    #[test]
    fn chosen_node_ports_go_on_their_services_and_the_rest_are_left_open() {
        let mut spec = exposed(Topology::Cluster, ExternalAccessType::NodePort);
        spec.external_access.node_ports.pods = vec![PodNodePorts {
            client: Some(31000),
            bus: Some(31001),
        }];
        let s = build_external_services(&meta(), &spec, &pods());
        assert_eq!(
            node_ports(&s[0]),
            [("valkey", Some(31000)), ("bus", Some(31001))]
        );
        assert_eq!(node_ports(&s[1]), [("valkey", None), ("bus", None)]);
        let mut spec = exposed(Topology::Sentinel, ExternalAccessType::NodePort);
        spec.external_access.node_ports = ExternalNodePorts {
            pods: vec![
                PodNodePorts::default(),
                PodNodePorts {
                    client: Some(31002),
                    bus: None,
                },
            ],
            primary: Some(31003),
            sentinel: Some(31004),
        };
        let s = build_external_services(&meta(), &spec, &pods());
        let by_name: BTreeMap<&str, Vec<(&str, Option<i32>)>> = s
            .iter()
            .map(|s| (s.metadata.name.as_deref().unwrap(), node_ports(s)))
            .collect();
        assert_eq!(by_name["cache-0-external"], [("valkey", None)]);
        assert_eq!(by_name["cache-1-external"], [("valkey", Some(31002))]);
        assert_eq!(by_name["cache-external"], [("valkey", Some(31003))]);
        assert_eq!(
            by_name["cache-sentinel-external"],
            [("sentinel", Some(31004))]
        );
    }

    #[test]
    fn a_cluster_by_load_balancers_keeps_its_bus_inside() {
        let s = build_external_services(
            &meta(),
            &exposed(Topology::Cluster, ExternalAccessType::LoadBalancer),
            &pods(),
        );
        let spec = s[0].spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.ports.as_ref().unwrap().len(), 1);
        assert_eq!(
            spec.load_balancer_class.as_deref(),
            Some("example.com/class")
        );
        assert_eq!(
            spec.load_balancer_source_ranges.as_deref(),
            Some(&["203.0.113.0/24".to_owned()][..])
        );
    }

    #[test]
    fn replication_also_exposes_its_primary_by_role() {
        let s = build_external_services(
            &meta(),
            &exposed(Topology::Replication, ExternalAccessType::NodePort),
            &pods(),
        );
        assert_eq!(
            names(&s),
            ["cache-0-external", "cache-1-external", "cache-external"]
        );
        let spec = s[2].spec.as_ref().unwrap();
        assert_eq!(spec.selector.as_ref().unwrap()[ROLE], "primary");
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.ports.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn a_sentinel_cluster_also_exposes_its_sentinels() {
        let s = build_external_services(
            &meta(),
            &exposed(Topology::Sentinel, ExternalAccessType::NodePort),
            &pods(),
        );
        assert_eq!(
            names(&s),
            [
                "cache-0-external",
                "cache-1-external",
                "cache-sentinel-external",
                "cache-external"
            ]
        );
        let spec = s[2].spec.as_ref().unwrap();
        assert_eq!(
            spec.selector.as_ref().unwrap(),
            &labels::sentinel_selector("cache")
        );
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
        let ports = spec.ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 26379);
        assert_eq!(ports[0].name.as_deref(), Some("sentinel"));
        assert!(is_external_service("cache", "cache-sentinel-external"));
    }

    #[test]
    fn external_services_are_told_apart_from_the_others() {
        assert!(is_external_service("cache", "cache-external"));
        assert!(is_external_service("cache", "cache-12-external"));
        assert!(!is_external_service("cache", "cache-x-external"));
        assert!(!is_external_service("cache", "cache-read"));
        assert!(!is_external_service("cache", "other-0-external"));
    }
}
