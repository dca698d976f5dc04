//! Access from outside Kubernetes (`spec.externalAccess`): where a client
//! outside reaches each data pod, as the operator observed it
//! (`ExternalEndpointsObserved`), and what each Cluster node announces,
//! as its own `CLUSTER NODES` line shows it (`AnnouncedAddressObserved`),
//! and where clients outside reach a Sentinel cluster's Sentinels
//! (`ExternalSentinelsObserved`).
//!
//! PERSISTED TYPES — append-only: never reorder, rename or remove fields
//! or variants; add new optional fields only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a client outside Kubernetes reaches one data pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExternalEndpoint {
    /// The address: a node's (`NodePort`) or a load balancer's IP.
    pub host: String,
    /// The client port there (the node port, or the Valkey port).
    pub port: u16,
    /// `NodePort` in a Cluster: the bus's node port. The node then
    /// announces `host`, `port` and this to its peers too (Valkey
    /// announces one port per node, which replication also uses).
    /// `None`: only clients are told `host` (`cluster-announce-client-ipv4`);
    /// the bus and replication stay on the pod network.
    pub bus_port: Option<u16>,
}

impl ExternalEndpoint {
    /// `host:port`, or `host:port@bus` when the bus is announced too.
    pub fn describe(&self) -> String {
        match self.bus_port {
            Some(bus) => format!("{}:{}@{bus}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// `host:port` (IPv6 in brackets), as a client dials it.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What the projection knows of external access.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalPart {
    /// Whether the spec asks for it (as last observed).
    pub enabled: bool,
    /// Each data pod's endpoint, once known.
    pub pods: BTreeMap<String, ExternalEndpoint>,
    /// The primary's Service (`<name>-external`; not for a Cluster),
    /// once its address is known.
    pub primary: Option<ExternalEndpoint>,
    /// Each pod (or `<name>-external`) with no address yet, and why.
    pub waiting: BTreeMap<String, String>,
    /// What each Cluster node announces, as its own line shows it
    /// (`AnnouncedAddressObserved`): `ip:port@cport`; what each data pod
    /// of a Sentinel cluster announces to its primary: `host:port`, or
    /// empty.
    pub announced: BTreeMap<String, String>,
    /// The endpoints changed since the cluster's objects were last
    /// applied (the connection Secret and a cert-manager Certificate
    /// carry them): they are applied again.
    pub unpublished: bool,
    /// The external hosts changed since the operator's CA last issued the
    /// certificate (which names them): it is issued again.
    pub uncertified: bool,
    /// Sentinel: where clients outside reach the Sentinels
    /// (`ExternalSentinelsObserved`).
    pub sentinels: Vec<ExternalEndpoint>,
}

impl ExternalPart {
    /// Whether nothing is known (skipped when serialized).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The endpoint `pod` should announce: its own when external access
    /// is on and its address is known, else none (the pod's own address).
    pub fn wanted(&self, pod: &str) -> Option<&ExternalEndpoint> {
        if !self.enabled {
            return None;
        }
        self.pods.get(pod)
    }

    /// Every external host, sorted and once each: what the certificate
    /// names besides the cluster's own names.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .pods
            .values()
            .chain(self.primary.iter())
            .chain(self.sentinels.iter())
            .map(|e| e.host.clone())
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// The addresses, besides its pod's, at which `pod`'s node may be
    /// listed by its peers: what it announces and where clients outside
    /// reach it (its peers learn a new announcement by gossip, a second or
    /// so after it).
    pub fn listed_at(&self, pod: &str) -> Vec<&str> {
        self.announced_ip(pod)
            .into_iter()
            .chain(self.pods.get(pod).map(|e| e.host.as_str()))
            .collect()
    }

    /// The address `pod`'s node announces (its line's `ip`), when
    /// observed.
    pub fn announced_ip(&self, pod: &str) -> Option<&str> {
        split_announced(self.announced.get(pod)?).map(|(ip, _)| ip)
    }
}

/// The host and port of an announcement as journaled (`host:port`,
/// `[v6]:port`, or a Cluster node's `ip:port@cport`), the port as
/// written; `None` when it names no address.
pub fn split_announced(line: &str) -> Option<(&str, &str)> {
    let addr = line.split('@').next().unwrap_or(line);
    addr.rsplit_once(':')
        .map(|(ip, port)| (ip.trim_start_matches('[').trim_end_matches(']'), port))
}
