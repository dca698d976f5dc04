//! What a data node announces when exposed outside Kubernetes
//! (`spec.externalAccess`): the settings the operator sets with
//! `CONFIG SET` (`Announce`) and the lines a node takes at boot from the
//! boot ConfigMap (`announce-<pod>`), rendered here once for both.
//!
//! - A Cluster node announces through `cluster-announce-*`: by node
//!   ports its node's address and node ports to everyone (Valkey
//!   announces one port per node, which its peers also use for the bus
//!   and replication); by load balancer its address to clients only
//!   (`cluster-announce-client-ipv4`/`-ipv6`), its peers keeping its pod
//!   address.
//! - A data node of a Sentinel cluster announces its endpoint to its
//!   primary (`replica-announce-ip`/`-port`), which the Sentinels read:
//!   Sentinel tells clients the address it knows a replica by, so one it
//!   promotes is named where clients outside reach it.
//!
//! Other topologies announce nothing: Replication clients outside use
//! the primary's Service, and a replica announcing another address than
//! it connects from would not be found by `FAILOVER TO` at its pod
//! address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use logbook_crds::{ExternalAccessType, Topology, ValkeyClusterSpec};
use logbook_journal::ExternalEndpoint;

use super::VALKEY_PORT;
use super::external::{
    BUS_PORT_NAME, announce_key, first_ingress, is_external_service, node_port,
    primary_service_name,
};
use super::statefulset::PORT_NAME;

/// In a boot line, the node's address (`HOST_IP` at boot): where a pod is
/// reached by node port, whichever node it came back on.
pub const HOST_PLACEHOLDER: &str = "host";

/// Whether nodes of `topology` announce their external endpoints.
pub fn announces(topology: Topology) -> bool {
    matches!(topology, Topology::Cluster | Topology::Sentinel)
}

/// The `CONFIG SET` pairs that make a node of `topology` announce
/// `endpoint`, or nothing but its own address `own_ip` when `None`; `tls`
/// when clients speak TLS (a Cluster then announces its TLS port).
///
/// # Errors
/// A load balancer's host that is not an IP (a Cluster announces only
/// IPs to clients), or a topology that announces nothing.
pub fn announce_settings(
    topology: Topology,
    own_ip: &str,
    endpoint: Option<&ExternalEndpoint>,
    tls: bool,
) -> Result<Vec<(&'static str, String)>, String> {
    match topology {
        Topology::Cluster => cluster_settings(own_ip, endpoint, tls),
        Topology::Sentinel => Ok(match endpoint {
            Some(e) => vec![
                ("replica-announce-ip", e.host.clone()),
                ("replica-announce-port", e.port.to_string()),
            ],
            None => vec![
                ("replica-announce-ip", String::new()),
                ("replica-announce-port", "0".to_owned()),
            ],
        }),
        Topology::Standalone | Topology::Replication => {
            Err(format!("a {topology:?} node announces nothing"))
        }
    }
}

fn cluster_settings(
    own_ip: &str,
    endpoint: Option<&ExternalEndpoint>,
    tls: bool,
) -> Result<Vec<(&'static str, String)>, String> {
    let port_key = if tls {
        "cluster-announce-tls-port"
    } else {
        "cluster-announce-port"
    };
    let reset = |key: &'static str| (key, String::new());
    let zero = |key: &'static str| (key, "0".to_owned());
    Ok(match endpoint {
        None => vec![
            ("cluster-announce-ip", own_ip.to_owned()),
            zero(port_key),
            zero("cluster-announce-bus-port"),
            reset("cluster-announce-client-ipv4"),
            reset("cluster-announce-client-ipv6"),
        ],
        Some(e) if e.bus_port.is_some() => vec![
            ("cluster-announce-ip", e.host.clone()),
            (port_key, e.port.to_string()),
            (
                "cluster-announce-bus-port",
                e.bus_port.unwrap_or_default().to_string(),
            ),
            reset("cluster-announce-client-ipv4"),
            reset("cluster-announce-client-ipv6"),
        ],
        Some(e) => {
            let ip: IpAddr = e.host.parse().map_err(|_| {
                format!(
                    "{} is not an IP address: only an IP is announced to clients",
                    e.host
                )
            })?;
            let (key, other) = if ip.is_ipv4() {
                (
                    "cluster-announce-client-ipv4",
                    "cluster-announce-client-ipv6",
                )
            } else {
                (
                    "cluster-announce-client-ipv6",
                    "cluster-announce-client-ipv4",
                )
            };
            vec![
                ("cluster-announce-ip", own_ip.to_owned()),
                zero(port_key),
                zero("cluster-announce-bus-port"),
                (key, e.host.clone()),
                reset(other),
            ]
        }
    })
}

/// The `valkey.conf` lines a node of `topology` reached at `endpoint`
/// takes at boot: the settings of [`announce_settings`] that set
/// something (the others are the boot defaults).
pub fn boot_announce_lines(topology: Topology, endpoint: &ExternalEndpoint, tls: bool) -> String {
    announce_settings(topology, "", Some(endpoint), tls)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| !v.is_empty() && v != "0")
        .map(|(k, v)| format!("{k} {v}\n"))
        .collect()
}

/// The boot ConfigMap's announce keys, from the external Services as the
/// API server gave them back (`applied`: node ports allocated, a load
/// balancer's address once it has one): one per pod while external
/// access is on, none once it is off (`was_exposed`: the projection knows
/// of external access). `None` for a topology that announces nothing and
/// for a cluster never exposed. Taken from the Services rather than from
/// where the pods were last seen, so that a pod away for a moment
/// (deleted, recreated) keeps its line.
pub fn boot_announcements(
    spec: &ValkeyClusterSpec,
    cluster: &str,
    applied: &[Service],
    was_exposed: bool,
) -> Option<BTreeMap<String, String>> {
    if !announces(spec.topology) || (!spec.external_access.enabled && !was_exposed) {
        return None;
    }
    let mut out = BTreeMap::new();
    if !spec.external_access.enabled {
        return Some(out);
    }
    let tls = spec.tls.enabled;
    let bus = spec.topology == Topology::Cluster;
    for service in applied {
        let Some(name) = service.metadata.name.as_deref() else {
            continue;
        };
        let Some(pod) = name.strip_suffix("-external") else {
            continue;
        };
        if !is_external_service(cluster, name) || name == primary_service_name(cluster) {
            continue;
        }
        let endpoint = match spec.external_access.r#type {
            ExternalAccessType::NodePort => {
                let bus_port = if bus {
                    node_port(service, BUS_PORT_NAME).map(Some)
                } else {
                    Some(None)
                };
                match (node_port(service, PORT_NAME), bus_port) {
                    (Some(port), Some(bus_port)) => Some(ExternalEndpoint {
                        host: HOST_PLACEHOLDER.to_owned(),
                        port,
                        bus_port,
                    }),
                    _ => None,
                }
            }
            ExternalAccessType::LoadBalancer => first_ingress(service)
                .and_then(|i| i.ip.clone())
                .filter(|ip| ip.parse::<IpAddr>().is_ok())
                .map(|host| ExternalEndpoint {
                    host,
                    port: VALKEY_PORT,
                    bus_port: None,
                }),
        };
        if let Some(e) = endpoint {
            out.insert(
                announce_key(pod),
                boot_announce_lines(spec.topology, &e, tls),
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::external::build_external_services;
    use super::super::external::tests::{exposed, pods};
    use super::super::test_support::meta;
    use super::*;

    fn keys(s: &[(&str, String)]) -> Vec<String> {
        s.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    fn allocated(services: &mut [Service]) {
        // As the API server gives them back: node ports allocated.
        let mut next = 30_001;
        for s in services {
            for p in s.spec.as_mut().unwrap().ports.as_mut().unwrap() {
                p.node_port = Some(next);
                next += 1;
            }
        }
    }

    #[test]
    fn by_node_port_everyone_is_told_the_nodes_address_and_ports() {
        let e = ExternalEndpoint {
            host: "192.0.2.1".into(),
            port: 30001,
            bus_port: Some(30002),
        };
        assert_eq!(
            keys(&announce_settings(Topology::Cluster, "10.0.0.1", Some(&e), true).unwrap()),
            [
                "cluster-announce-ip=192.0.2.1",
                "cluster-announce-tls-port=30001",
                "cluster-announce-bus-port=30002",
                "cluster-announce-client-ipv4=",
                "cluster-announce-client-ipv6=",
            ]
        );
    }

    #[test]
    fn by_load_balancer_only_clients_are_told() {
        let e = ExternalEndpoint {
            host: "198.51.100.7".into(),
            port: 6379,
            bus_port: None,
        };
        assert_eq!(
            keys(&announce_settings(Topology::Cluster, "10.0.0.1", Some(&e), false).unwrap()),
            [
                "cluster-announce-ip=10.0.0.1",
                "cluster-announce-port=0",
                "cluster-announce-bus-port=0",
                "cluster-announce-client-ipv4=198.51.100.7",
                "cluster-announce-client-ipv6=",
            ]
        );
        let v6 = ExternalEndpoint {
            host: "2001:db8::7".into(),
            ..e.clone()
        };
        assert!(
            keys(&announce_settings(Topology::Cluster, "10.0.0.1", Some(&v6), false).unwrap())
                .contains(&"cluster-announce-client-ipv6=2001:db8::7".to_owned())
        );
        let named = ExternalEndpoint {
            host: "lb.example.com".into(),
            ..e
        };
        assert!(
            announce_settings(Topology::Cluster, "10.0.0.1", Some(&named), false)
                .unwrap_err()
                .contains("lb.example.com")
        );
    }

    #[test]
    fn off_the_pod_address_is_announced_again() {
        assert_eq!(
            keys(&announce_settings(Topology::Cluster, "10.0.0.1", None, false).unwrap()),
            [
                "cluster-announce-ip=10.0.0.1",
                "cluster-announce-port=0",
                "cluster-announce-bus-port=0",
                "cluster-announce-client-ipv4=",
                "cluster-announce-client-ipv6=",
            ]
        );
        assert_eq!(
            keys(&announce_settings(Topology::Sentinel, "10.0.0.1", None, false).unwrap()),
            ["replica-announce-ip=", "replica-announce-port=0"]
        );
    }

    #[test]
    fn a_sentinel_clusters_node_announces_its_endpoint_to_its_primary() {
        let e = ExternalEndpoint {
            host: "192.0.2.1".into(),
            port: 30001,
            bus_port: None,
        };
        assert_eq!(
            keys(&announce_settings(Topology::Sentinel, "10.0.0.1", Some(&e), true).unwrap()),
            [
                "replica-announce-ip=192.0.2.1",
                "replica-announce-port=30001"
            ]
        );
        assert!(announce_settings(Topology::Replication, "10.0.0.1", Some(&e), true).is_err());
        let mut spec = exposed(Topology::Sentinel, ExternalAccessType::NodePort);
        spec.tls.enabled = true;
        let mut services = build_external_services(&meta(), &spec, &pods());
        allocated(&mut services);
        let keys = boot_announcements(&spec, "cache", &services, true).unwrap();
        assert_eq!(
            keys["announce-cache-1"],
            "replica-announce-ip host\nreplica-announce-port 30002\n"
        );
    }

    #[test]
    fn a_booting_node_announces_what_its_service_says() {
        let mut spec = exposed(Topology::Cluster, ExternalAccessType::NodePort);
        let mut services = build_external_services(&meta(), &spec, &pods());
        allocated(&mut services);
        let keys = boot_announcements(&spec, "cache", &services, true).unwrap();
        assert_eq!(
            keys["announce-cache-0"],
            "cluster-announce-ip host\ncluster-announce-port 30001\ncluster-announce-bus-port 30002\n"
        );
        spec.tls.enabled = true;
        assert!(
            boot_announcements(&spec, "cache", &services, true).unwrap()["announce-cache-1"]
                .contains("cluster-announce-tls-port 30003")
        );
        // By load balancer: its address once it has one, to clients only.
        let lb = exposed(Topology::Cluster, ExternalAccessType::LoadBalancer);
        let mut services = build_external_services(&meta(), &lb, &pods());
        services[0].status = Some(k8s_openapi::api::core::v1::ServiceStatus {
            load_balancer: Some(k8s_openapi::api::core::v1::LoadBalancerStatus {
                ingress: Some(vec![k8s_openapi::api::core::v1::LoadBalancerIngress {
                    ip: Some("198.51.100.7".into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        });
        let keys = boot_announcements(&lb, "cache", &services, true).unwrap();
        assert_eq!(
            keys,
            BTreeMap::from([(
                "announce-cache-0".to_owned(),
                "cluster-announce-client-ipv4 198.51.100.7\n".to_owned()
            )])
        );
        // Turned off: the keys go; never exposed, or a topology that
        // announces nothing: the boot ConfigMap is not the announcements'.
        spec.external_access.enabled = false;
        assert_eq!(
            boot_announcements(&spec, "cache", &[], true),
            Some(BTreeMap::new())
        );
        assert_eq!(boot_announcements(&spec, "cache", &[], false), None);
        let repl = exposed(Topology::Replication, ExternalAccessType::NodePort);
        assert_eq!(boot_announcements(&repl, "cache", &services, true), None);
    }
}
