//! Where each data pod is dialled by its peers and by the Sentinels, and
//! which pod an address some server reports belongs to.
//!
//! A pod is dialled at its own address on the Valkey port, except in a
//! Sentinel cluster exposed outside Kubernetes (`spec.externalAccess`):
//! Sentinel tells its clients the very address it monitors a primary at,
//! and the address each replica announces, so there the data pods
//! announce their external endpoints (`replica-announce-ip`/`-port`),
//! the Sentinels monitor the primary at its endpoint and every replica
//! follows its primary there (a Sentinel "fixes" a replica that follows
//! any other address). Pods whose endpoint is not known yet keep their
//! own address until it is.
//!
//! By node port several pods share one host (their node's address), so a
//! reported address resolves to a pod by host *and* port.

use std::collections::BTreeMap;

use logbook_crds::Topology;
use logbook_journal::{ClusterState, ExternalEndpoint};

use crate::resources::VALKEY_PORT;
use crate::resources::external::BUS_PORT;

/// Whether the data pods of this cluster are dialled at their external
/// endpoints (a Sentinel cluster with external access on).
pub fn dialled_outside(state: &ClusterState) -> bool {
    state.sentinel.enabled && state.external.enabled
}

/// Where `pod` is dialled by its peers and the Sentinels: its external
/// endpoint when [`dialled_outside`] and known, else its own address on
/// the Valkey port; `None` while it has neither.
pub fn peer_address(state: &ClusterState, pod: &str) -> Option<(String, u16)> {
    if dialled_outside(state)
        && let Some(e) = state.external.pods.get(pod)
    {
        return Some((e.host.clone(), e.port));
    }
    let ip = state.pods.get(pod)?.ip.clone()?;
    Some((ip, VALKEY_PORT))
}

/// How a Sentinel is told to monitor `pod` (`SentinelMonitor`'s
/// address): its [`peer_address`], as the IP alone on the Valkey port (as
/// every journal before external access wrote it), else `host:port`.
pub fn monitor_target(state: &ClusterState, pod: &str) -> Option<String> {
    let (host, port) = peer_address(state, pod)?;
    Some(if port == VALKEY_PORT {
        host
    } else {
        logbook_journal::ExternalEndpoint {
            host,
            port,
            bus_port: None,
        }
        .address()
    })
}

/// The host and port of a [`monitor_target`]; `None` when it is neither
/// an IP nor an IP and a port.
pub fn parse_monitor_target(target: &str) -> Option<(String, u16)> {
    if let Ok(ip) = target.parse::<std::net::IpAddr>() {
        return Some((ip.to_string(), VALKEY_PORT));
    }
    let at: std::net::SocketAddr = target.parse().ok()?;
    Some((at.ip().to_string(), at.port()))
}

/// What a data pod should announce to its primary (and so to the
/// Sentinels): its endpoint as `host:port` when [`dialled_outside`] and
/// known, else nothing (`""`: the address its connection comes from).
pub fn wanted_replica_announcement(state: &ClusterState, pod: &str) -> String {
    if !dialled_outside(state) {
        return String::new();
    }
    state
        .external
        .pods
        .get(pod)
        .map(logbook_journal::ExternalEndpoint::address)
        .unwrap_or_default()
}

/// What a data node announces as the journal writes it, from its
/// `replica-announce-ip` and `-port` (`0`: its own port): `host:port`
/// (IPv6 in brackets), or `""` when it announces no address (its primary
/// then lists it at the address its link comes from).
pub fn observed_replica_announcement(ip: &str, port: u16) -> String {
    if ip.is_empty() {
        return String::new();
    }
    logbook_journal::ExternalEndpoint {
        host: ip.to_owned(),
        port: if port == 0 { VALKEY_PORT } else { port },
        bus_port: None,
    }
    .address()
}

/// The line a Cluster node shows in its own `CLUSTER NODES` entry once
/// it announces `endpoint`, or its pod address `pod_ip` when `None`:
/// `ip:port@cport`, as the journal writes it.
pub fn cluster_announcement(pod_ip: &str, endpoint: Option<&ExternalEndpoint>) -> String {
    match endpoint {
        Some(e) => format!("{}:{}@{}", e.host, e.port, e.bus_port.unwrap_or(BUS_PORT)),
        None => format!("{pod_ip}:{VALKEY_PORT}@{BUS_PORT}"),
    }
}

/// What a data node of `topology` announces, as the journal writes it,
/// once told `endpoint` (or its pod address `pod_ip` when `None`):
/// journaled as what an `Announce` changed when its read-back fails.
pub fn announcement_once_set(
    topology: Topology,
    pod_ip: &str,
    endpoint: Option<&ExternalEndpoint>,
) -> String {
    match topology {
        Topology::Cluster => cluster_announcement(pod_ip, endpoint),
        _ => endpoint
            .map(|e| observed_replica_announcement(&e.host, e.port))
            .unwrap_or_default(),
    }
}

/// Every address a data pod may be reported at, with the pod: its own on
/// the Valkey port, its external endpoint, and what it was last seen
/// announcing (a server may still name an endpoint that changed or went).
pub fn pods_by_address(state: &ClusterState) -> BTreeMap<(String, u16), String> {
    let mut out: BTreeMap<(String, u16), String> = BTreeMap::new();
    for (name, line) in &state.external.announced {
        if let Some(at) = announced_at(line) {
            out.insert(at, name.clone());
        }
    }
    for (name, e) in &state.external.pods {
        out.insert((e.host.clone(), e.port), name.clone());
    }
    // A pod's own address wins over a stale endpoint at the same place.
    for (name, v) in &state.pods {
        if let Some(ip) = v.ip.as_ref() {
            out.insert((ip.clone(), VALKEY_PORT), name.clone());
        }
    }
    out
}

/// The host and port of an announcement as journaled; `None` for none
/// (an empty announcement, or no port).
fn announced_at(line: &str) -> Option<(String, u16)> {
    let (host, port) = logbook_journal::split_announced(line)?;
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use logbook_journal::ExternalEndpoint;
    use logbook_journal::projection::PodView;

    use super::*;

    /// The pod [`pods_by_address`] resolves `host:port` to.
    fn pod_at(state: &ClusterState, host: &str, port: u16) -> Option<String> {
        pods_by_address(state)
            .get(&(host.to_owned(), port))
            .cloned()
    }

    fn state(sentinel: bool, external: bool) -> ClusterState {
        let mut s = ClusterState::default();
        s.sentinel.enabled = sentinel;
        s.external.enabled = external;
        for (pod, ip, port) in [("c-0", "10.0.0.1", 30001), ("c-1", "10.0.0.2", 30002)] {
            s.pods.insert(
                pod.to_owned(),
                PodView {
                    ip: Some(ip.to_owned()),
                    ..PodView::default()
                },
            );
            s.external.pods.insert(
                pod.to_owned(),
                ExternalEndpoint {
                    host: "192.0.2.9".to_owned(),
                    port,
                    bus_port: None,
                },
            );
        }
        s
    }

    #[test]
    fn a_sentinel_cluster_exposed_outside_is_dialled_at_its_endpoints() {
        let s = state(true, true);
        assert_eq!(
            peer_address(&s, "c-1"),
            Some(("192.0.2.9".to_owned(), 30002))
        );
        assert_eq!(wanted_replica_announcement(&s, "c-1"), "192.0.2.9:30002");
        assert_eq!(
            observed_replica_announcement("192.0.2.9", 30002),
            wanted_replica_announcement(&s, "c-1")
        );
        assert_eq!(
            observed_replica_announcement("2001:db8::1", 0),
            "[2001:db8::1]:6379"
        );
        assert_eq!(observed_replica_announcement("", 30002), "");
        let target = monitor_target(&s, "c-1").unwrap();
        assert_eq!(target, "192.0.2.9:30002");
        assert_eq!(
            parse_monitor_target(&target),
            Some(("192.0.2.9".to_owned(), 30002))
        );
        // Two pods on one node: told apart by port.
        assert_eq!(pod_at(&s, "192.0.2.9", 30001).as_deref(), Some("c-0"));
        assert_eq!(pod_at(&s, "192.0.2.9", 30002).as_deref(), Some("c-1"));
        assert_eq!(pod_at(&s, "192.0.2.9", 6379).as_deref(), None);
        assert_eq!(pod_at(&s, "10.0.0.2", 6379).as_deref(), Some("c-1"));
        // An endpoint that went still names its pod while the pod is
        // seen announcing it.
        let mut gone = s.clone();
        gone.external.pods.clear();
        gone.external
            .announced
            .insert("c-1".to_owned(), "192.0.2.9:30002".to_owned());
        assert_eq!(pod_at(&gone, "192.0.2.9", 30002).as_deref(), Some("c-1"));
        assert_eq!(pod_at(&gone, "192.0.2.9", 30001).as_deref(), None);
        assert_eq!(
            pods_by_address(&gone)[&("192.0.2.9".to_owned(), 30002)],
            "c-1"
        );
        assert_eq!(
            announced_at("[2001:db8::1]:30001"),
            Some(("2001:db8::1".to_owned(), 30001))
        );
        assert_eq!(
            announced_at("10.0.0.1:6379@16379"),
            Some(("10.0.0.1".to_owned(), 6379))
        );
        assert_eq!(announced_at(""), None);
        let all = pods_by_address(&s);
        assert_eq!(all.len(), 4);
        assert_eq!(all[&("192.0.2.9".to_owned(), 30001)], "c-0");
    }

    #[test]
    fn otherwise_pods_are_dialled_at_their_own_address() {
        for s in [state(false, true), state(true, false)] {
            assert_eq!(peer_address(&s, "c-0"), Some(("10.0.0.1".to_owned(), 6379)));
            // As every journal before external access wrote it.
            assert_eq!(monitor_target(&s, "c-0").unwrap(), "10.0.0.1");
            assert_eq!(
                parse_monitor_target("10.0.0.1"),
                Some(("10.0.0.1".to_owned(), 6379))
            );
            assert_eq!(wanted_replica_announcement(&s, "c-0"), "");
        }
        let mut waiting = state(true, true);
        waiting.external.pods.remove("c-0");
        assert_eq!(
            peer_address(&waiting, "c-0"),
            Some(("10.0.0.1".to_owned(), 6379))
        );
        assert_eq!(peer_address(&waiting, "c-9"), None);
    }
}
