//! External access: where a client outside Kubernetes reaches each data
//! pod, read off the external Services and the nodes the pods run on
//! (`ExternalEndpointsObserved`), and what each Cluster node announces,
//! read off its own `CLUSTER NODES` line (`AnnouncedAddressObserved`).
//!
//! By node port, a pod is reached at its node's address (its
//! `ExternalIP`, else its `InternalIP`) and its Service's node port; by
//! load balancer, at the address the implementation wrote in the
//! Service's status, on the Valkey port. An address not known yet is said
//! (`waiting`), never guessed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Service};
use logbook_crds::{ExternalAccessType, Topology, ValkeyClusterSpec};
use logbook_journal::{ClusterState, Event, ExternalEndpoint};

use crate::resources::external::{
    BUS_PORT_NAME, first_ingress, node_port, pod_service_name, primary_service_name,
    sentinel_service_name,
};
use crate::resources::{PORT_NAME, SENTINEL_PORT_NAME};

/// What [`Endpoints::unusable`] entries say.
const NO_IP: &str = "no IP";

/// Where clients outside reach the cluster, as the API shows it now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Each data pod's.
    pub pods: BTreeMap<String, ExternalEndpoint>,
    /// `<name>-external`'s.
    pub primary: Option<ExternalEndpoint>,
    /// `<name>-sentinel-external`'s (topology Sentinel): by node port one
    /// per node running a data pod, sorted.
    pub sentinels: Vec<ExternalEndpoint>,
    /// What has no address yet, and why.
    pub waiting: BTreeMap<String, String>,
    /// Of `waiting`, what will not get a usable address without a change
    /// by a person (a load balancer that gives a host name alone).
    pub unusable: std::collections::BTreeSet<String>,
}

/// The endpoints of cluster `cluster` by `spec`, from its external
/// `services` and the `nodes` its pods run on (by name); empty when the
/// spec asks for no external access.
pub fn external_endpoints(
    spec: &ValkeyClusterSpec,
    cluster: &str,
    state: &ClusterState,
    services: &[Service],
    nodes: &BTreeMap<String, Node>,
) -> Endpoints {
    let mut out = Endpoints::default();
    let Some(kind) = spec.external_access.wanted() else {
        return out;
    };
    let by_name: BTreeMap<&str, &Service> = services
        .iter()
        .filter_map(|s| s.metadata.name.as_deref().map(|n| (n, s)))
        .collect();
    let bus = spec.topology == Topology::Cluster && kind == ExternalAccessType::NodePort;
    // A pod being deleted keeps its Service and its node until it is
    // gone: its endpoint stays, rather than the Secret and the boot
    // ConfigMap being written twice for a restart.
    for (pod, view) in &state.pods {
        let name = pod_service_name(pod);
        let found = match by_name.get(name.as_str()) {
            None => Err(format!("Service {name} is not made yet")),
            Some(service) => match kind {
                ExternalAccessType::NodePort => match view.node.as_deref() {
                    None => Err("not scheduled on a node yet".to_owned()),
                    Some(node) => by_node_port(service, node, nodes, bus),
                },
                ExternalAccessType::LoadBalancer => by_load_balancer(service),
            },
        };
        if let Some(endpoint) = out.found(pod, found) {
            out.pods.insert(pod.clone(), endpoint);
        }
    }
    // The nodes running a data pod, in order: a Service that balances
    // across nodes is reached at any of them.
    let running: std::collections::BTreeSet<&str> = state
        .pods
        .values()
        .filter_map(|v| v.node.as_deref())
        .collect();
    if spec.topology != Topology::Cluster {
        let name = primary_service_name(cluster);
        let found = match by_name.get(name.as_str()) {
            None => Err(format!("Service {name} is not made yet")),
            Some(service) => match kind {
                // Any node's address serves (the Service balances across
                // nodes); the first node running a pod of the cluster,
                // so that it stays while the pods stay.
                ExternalAccessType::NodePort => match running.first() {
                    None => Err("no pod is scheduled on a node yet".to_owned()),
                    Some(node) => by_node_port(service, node, nodes, false),
                },
                ExternalAccessType::LoadBalancer => by_load_balancer(service),
            },
        };
        out.primary = out.found(&name, found);
    }
    if spec.topology == Topology::Sentinel {
        let name = sentinel_service_name(cluster);
        let found = match by_name.get(name.as_str()) {
            None => Err(format!("Service {name} is not made yet")),
            // Any node's address serves (the Service balances across
            // nodes): every node running a data pod, so that a client
            // given them all still finds one when a node is gone.
            Some(service) => match kind {
                ExternalAccessType::NodePort => {
                    let found: Vec<ExternalEndpoint> = running
                        .iter()
                        .filter_map(|node| {
                            at_node_port(service, node, nodes, SENTINEL_PORT_NAME, false).ok()
                        })
                        .collect();
                    if found.is_empty() {
                        Err("no node running a pod has a known address yet".to_owned())
                    } else {
                        Ok(found)
                    }
                }
                ExternalAccessType::LoadBalancer => {
                    at_load_balancer(service, SENTINEL_PORT_NAME).map(|e| vec![e])
                }
            },
        };
        let mut found = out.found(&name, found).unwrap_or_default();
        found.sort();
        found.dedup();
        out.sentinels = found;
    }
    out
}

impl Endpoints {
    /// The endpoint of `what` (a pod, or the primary's Service), or why it
    /// has none: said in [`Endpoints::waiting`] (and
    /// [`Endpoints::unusable`] when a person must act).
    fn found<T>(&mut self, what: &str, found: Result<T, String>) -> Option<T> {
        match found {
            Ok(endpoint) => Some(endpoint),
            Err(why) => {
                if why.contains(NO_IP) {
                    self.unusable.insert(what.to_owned());
                }
                self.waiting.insert(what.to_owned(), why);
                None
            }
        }
    }
}

/// `ExternalEndpointsObserved` and `ExternalSentinelsObserved`, each
/// when `now` differs from the projection's.
pub fn observe_external(state: &ClusterState, enabled: bool, now: Endpoints) -> Vec<Event> {
    let known = &state.external;
    let mut out = Vec::new();
    if known.sentinels != now.sentinels {
        out.push(Event::ExternalSentinelsObserved {
            sentinels: now.sentinels,
        });
    }
    let same = known.enabled == enabled
        && known.pods == now.pods
        && known.primary == now.primary
        && known.waiting == now.waiting;
    if !same {
        out.push(Event::ExternalEndpointsObserved {
            enabled,
            pods: now.pods,
            primary: now.primary,
            waiting: now.waiting,
        });
    }
    out
}

/// `AnnouncedAddressObserved` when `pod`'s node announces `announced`
/// (`ip:port@cport`, its own line) and the projection holds another,
/// while external access is on or was.
pub fn observe_announced(state: &ClusterState, pod: &str, announced: &str) -> Option<Event> {
    let known = state.external.announced.get(pod);
    let relevant = state.external.enabled || known.is_some();
    (relevant && known.map(String::as_str) != Some(announced)).then(|| {
        Event::AnnouncedAddressObserved {
            pod: pod.to_owned(),
            announced: announced.to_owned(),
        }
    })
}

fn by_node_port(
    service: &Service,
    node: &str,
    nodes: &BTreeMap<String, Node>,
    bus: bool,
) -> Result<ExternalEndpoint, String> {
    at_node_port(service, node, nodes, PORT_NAME, bus)
}

/// `service`'s node port of its port `port_name` at `node`'s address
/// (with the bus's when `bus`).
fn at_node_port(
    service: &Service,
    node: &str,
    nodes: &BTreeMap<String, Node>,
    port_name: &str,
    bus: bool,
) -> Result<ExternalEndpoint, String> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let node_port = |port: &str| {
        node_port(service, port)
            .ok_or_else(|| format!("Service {name} has no node port for {port} yet"))
    };
    let port = node_port(port_name)?;
    let bus_port = if bus {
        Some(node_port(BUS_PORT_NAME)?)
    } else {
        None
    };
    let host = nodes
        .get(node)
        .ok_or_else(|| format!("node {node} is not readable"))
        .and_then(|n| {
            node_address(n).ok_or_else(|| format!("node {node} has no ExternalIP or InternalIP"))
        })?;
    Ok(ExternalEndpoint {
        host,
        port,
        bus_port,
    })
}

/// A node's `ExternalIP`, else its `InternalIP`.
pub fn node_address(node: &Node) -> Option<String> {
    let addresses = node.status.as_ref()?.addresses.as_ref()?;
    ["ExternalIP", "InternalIP"].iter().find_map(|kind| {
        addresses
            .iter()
            .find(|a| a.type_ == *kind && !a.address.is_empty())
            .map(|a| a.address.clone())
    })
}

fn by_load_balancer(service: &Service) -> Result<ExternalEndpoint, String> {
    at_load_balancer(service, PORT_NAME)
}

/// `service`'s load balancer's IP with its port `port_name`.
fn at_load_balancer(service: &Service, port_name: &str) -> Result<ExternalEndpoint, String> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let ingress = first_ingress(service)
        .ok_or_else(|| format!("the load balancer of Service {name} has no address yet"))?;
    let host = match (&ingress.ip, &ingress.hostname) {
        (Some(ip), _) if !ip.is_empty() => ip.clone(),
        (_, Some(host)) if !host.is_empty() => {
            return Err(format!(
                "the load balancer of Service {name} gave a host name ({host}) and {NO_IP}: a Cluster node announces an IP to clients, so this load balancer cannot be used yet (choose an implementation or class that gives an IP)"
            ));
        }
        _ => {
            return Err(format!(
                "the load balancer of Service {name} has no address yet"
            ));
        }
    };
    let port = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some(port_name)))
        .and_then(|p| u16::try_from(p.port).ok())
        .ok_or_else(|| format!("Service {name} has no {port_name} port"))?;
    Ok(ExternalEndpoint {
        host,
        port,
        bus_port: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::resources::external::build_external_services;
    use crate::resources::test_support::meta;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, NodeAddress, NodeStatus, ServiceStatus,
    };
    use logbook_crds::ExternalAccessSpec;
    use logbook_journal::projection::PodView;

    fn spec(topology: Topology, r#type: ExternalAccessType) -> ValkeyClusterSpec {
        ValkeyClusterSpec {
            topology,
            external_access: ExternalAccessSpec {
                enabled: true,
                r#type,
                ..ExternalAccessSpec::default()
            },
            ..ValkeyClusterSpec::default()
        }
    }

    fn state(pods: &[(&str, Option<&str>)]) -> ClusterState {
        let mut s = ClusterState::default();
        for (pod, node) in pods {
            s.pods.insert(
                (*pod).to_owned(),
                PodView {
                    node: node.map(str::to_owned),
                    ..PodView::default()
                },
            );
        }
        s
    }

    fn node(name: &str, addresses: &[(&str, &str)]) -> (String, Node) {
        let mut n = Node::default();
        n.metadata.name = Some(name.to_owned());
        n.status = Some(NodeStatus {
            addresses: Some(
                addresses
                    .iter()
                    .map(|(t, a)| NodeAddress {
                        type_: (*t).to_owned(),
                        address: (*a).to_owned(),
                    })
                    .collect(),
            ),
            ..NodeStatus::default()
        });
        (name.to_owned(), n)
    }

    /// The Services as the API server gives them back: node ports
    /// allocated from 30000 in order.
    fn allocated(mut services: Vec<Service>) -> Vec<Service> {
        let mut next = 30_000;
        for s in &mut services {
            for p in s.spec.as_mut().unwrap().ports.as_mut().unwrap() {
                p.node_port = Some(next);
                next += 1;
            }
        }
        services
    }

    #[test]
    fn by_node_port_a_pod_is_at_its_nodes_address_and_ports() {
        let spec = spec(Topology::Cluster, ExternalAccessType::NodePort);
        let pods = vec![
            "cache-0".to_owned(),
            "cache-1".to_owned(),
            "cache-2".to_owned(),
        ];
        let services = allocated(build_external_services(&meta(), &spec, &pods));
        let state = state(&[
            ("cache-0", Some("a")),
            ("cache-1", Some("b")),
            ("cache-2", None),
        ]);
        let nodes = BTreeMap::from([
            node(
                "a",
                &[("InternalIP", "10.0.0.1"), ("ExternalIP", "203.0.113.1")],
            ),
            node("b", &[("Hostname", "b"), ("InternalIP", "10.0.0.2")]),
        ]);
        let e = external_endpoints(&spec, "cache", &state, &services, &nodes);
        assert_eq!(e.pods["cache-0"].describe(), "203.0.113.1:30000@30001");
        assert_eq!(e.pods["cache-1"].describe(), "10.0.0.2:30002@30003");
        assert_eq!(e.waiting["cache-2"], "not scheduled on a node yet");
        assert_eq!(e.primary, None, "a Cluster has no primary Service");
        // A Service whose node port is not allocated yet waits.
        let bare = build_external_services(&meta(), &spec, &pods);
        let e = external_endpoints(&spec, "cache", &state, &bare, &nodes);
        assert!(
            e.waiting["cache-0"].contains("no node port for valkey yet"),
            "{e:?}"
        );
    }

    #[test]
    fn a_sentinel_clusters_sentinels_are_at_every_node_running_a_pod() {
        let spec = spec(Topology::Sentinel, ExternalAccessType::NodePort);
        let pods = vec![
            "cache-0".to_owned(),
            "cache-1".to_owned(),
            "cache-2".to_owned(),
        ];
        // Ports from 30000: three pods, then the Sentinels' (30003).
        let services = allocated(build_external_services(&meta(), &spec, &pods));
        let state = state(&[
            ("cache-0", Some("a")),
            ("cache-1", Some("b")),
            ("cache-2", Some("a")),
        ]);
        let nodes = BTreeMap::from([
            node("a", &[("InternalIP", "10.0.0.1")]),
            node("b", &[("InternalIP", "10.0.0.2")]),
        ]);
        let e = external_endpoints(&spec, "cache", &state, &services, &nodes);
        let at: Vec<String> = e.sentinels.iter().map(ExternalEndpoint::address).collect();
        assert_eq!(at, ["10.0.0.1:30003", "10.0.0.2:30003"]);
        assert_eq!(e.pods["cache-2"].address(), "10.0.0.1:30002");
        // Not made yet: said, as for any other Service.
        let without: Vec<Service> = services
            .into_iter()
            .filter(|s| s.metadata.name.as_deref() != Some("cache-sentinel-external"))
            .collect();
        let e = external_endpoints(&spec, "cache", &state, &without, &nodes);
        assert!(e.sentinels.is_empty());
        assert!(
            e.waiting["cache-sentinel-external"].contains("not made yet"),
            "{e:?}"
        );
    }

    #[test]
    fn replication_by_node_port_has_no_bus_and_a_primary_endpoint() {
        let spec = spec(Topology::Replication, ExternalAccessType::NodePort);
        let pods = vec!["cache-0".to_owned()];
        let services = allocated(build_external_services(&meta(), &spec, &pods));
        let state = state(&[("cache-0", Some("a"))]);
        let nodes = BTreeMap::from([node("a", &[("InternalIP", "10.0.0.1")])]);
        let e = external_endpoints(&spec, "cache", &state, &services, &nodes);
        assert_eq!(e.pods["cache-0"].describe(), "10.0.0.1:30000");
        assert_eq!(e.primary.unwrap().describe(), "10.0.0.1:30001");
        assert!(e.waiting.is_empty());
    }

    #[test]
    fn by_load_balancer_a_pod_is_at_its_ingress_ip_until_it_has_one() {
        let spec = spec(Topology::Cluster, ExternalAccessType::LoadBalancer);
        let pods = vec!["cache-0".to_owned(), "cache-1".to_owned()];
        let mut services = build_external_services(&meta(), &spec, &pods);
        services[0].status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    ip: Some("198.51.100.7".into()),
                    ..LoadBalancerIngress::default()
                }]),
            }),
            ..ServiceStatus::default()
        });
        let state = state(&[("cache-0", Some("a")), ("cache-1", Some("a"))]);
        let e = external_endpoints(&spec, "cache", &state, &services, &BTreeMap::new());
        assert_eq!(e.pods["cache-0"].describe(), "198.51.100.7:6379");
        assert!(e.waiting["cache-1"].contains("has no address yet"), "{e:?}");
        // A host name alone is said, not used.
        services[1].status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    hostname: Some("lb.example.com".into()),
                    ..LoadBalancerIngress::default()
                }]),
            }),
            ..ServiceStatus::default()
        });
        let e = external_endpoints(&spec, "cache", &state, &services, &BTreeMap::new());
        assert!(e.waiting["cache-1"].contains("lb.example.com"), "{e:?}");
        assert!(
            e.unusable.contains("cache-1") && !e.unusable.contains("cache-0"),
            "{e:?}"
        );
    }

    #[test]
    fn journaled_only_when_it_changes() {
        let mut g = crate::decide::given::Given::new();
        g.state = state(&[("cache-0", Some("a"))]);
        assert_eq!(observe_external(&g.state, false, Endpoints::default()), []);
        let mut now = Endpoints::default();
        now.pods.insert(
            "cache-0".into(),
            ExternalEndpoint {
                host: "10.0.0.1".into(),
                port: 30000,
                bus_port: None,
            },
        );
        let events = observe_external(&g.state, true, now.clone());
        assert_eq!(events.len(), 1, "{events:?}");
        for e in events {
            g.event(e);
        }
        assert!(observe_external(&g.state, true, now.clone()).is_empty());
        // The Sentinels' addresses: their own event, and the Secret is
        // written again.
        g.state.external.unpublished = false;
        now.sentinels = vec![ExternalEndpoint {
            host: "10.0.0.1".into(),
            port: 30010,
            bus_port: None,
        }];
        let events = observe_external(&g.state, true, now.clone());
        assert!(
            matches!(events.as_slice(), [Event::ExternalSentinelsObserved { sentinels }] if sentinels.len() == 1),
            "{events:?}"
        );
        for e in events {
            g.event(e);
        }
        assert!(g.state.external.unpublished);
        assert!(observe_external(&g.state, true, now).is_empty());
        // The announced address is journaled once it matters.
        let seen = observe_announced(&g.state, "cache-0", "10.0.0.1:30000@30001").unwrap();
        g.event(seen);
        assert_eq!(g.state.external.announced_ip("cache-0"), Some("10.0.0.1"));
        assert_eq!(
            observe_announced(&g.state, "cache-0", "10.0.0.1:30000@30001"),
            None
        );
        assert!(observe_announced(&ClusterState::default(), "cache-0", "x:1@2").is_none());
    }
}
