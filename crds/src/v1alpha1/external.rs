//! Access from outside the Kubernetes cluster: [`ExternalAccessSpec`].
//!
//! This module owns the setting and its defaults only; the Services are
//! rendered by `core/src/resources/external.rs`, and what each node
//! announces is decided by the operator from the addresses it observes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How clients outside the Kubernetes cluster reach each data pod.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum ExternalAccessType {
    /// A `NodePort` Service per pod: clients reach a pod at its node's
    /// address and the Service's node port (default). In a Cluster the
    /// bus is exposed the same way, and nodes announce those addresses to
    /// each other too: Valkey announces one port per node, so replication
    /// and the bus go through the node ports.
    #[default]
    NodePort,
    /// A `LoadBalancer` Service per pod: clients reach a pod at its load
    /// balancer's address on the Valkey port. Only the client port is
    /// exposed; replication and a Cluster's bus stay on the pod network.
    LoadBalancer,
}

impl ExternalAccessType {
    /// The Service type Kubernetes takes (`"NodePort"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Access from outside the Kubernetes cluster (off by default).
///
/// Each data pod gets a Service of its own of `type`; each node of a
/// Cluster announces the address a client outside reaches it by, so
/// `MOVED`, `ASK` and `CLUSTER SHARDS` name addresses that work from
/// outside. A Replication or Standalone cluster's primary is reached
/// through `<name>-external`, which follows failovers. The addresses are
/// observed (a load balancer's arrives after the Service is made),
/// journaled, announced without a restart when they change, written to
/// the connection Secret, and named in the certificate the operator
/// issues.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ExternalAccessSpec {
    /// Expose the cluster (default `false`).
    pub enabled: bool,
    /// `NodePort` (default) or `LoadBalancer`.
    #[serde(rename = "type")]
    pub r#type: ExternalAccessType,
    /// Annotations on each external Service, e.g. a cloud's load balancer
    /// settings. Keys under `valkey.logbook.dev/` are refused.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `LoadBalancer` only: the load balancer implementation
    /// (`spec.loadBalancerClass` of each Service); the cluster's default
    /// when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub load_balancer_class: Option<String>,
    /// `LoadBalancer` only: the client networks (CIDRs) a load balancer
    /// admits, where the implementation supports it; all when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub load_balancer_source_ranges: Vec<String>,
    /// `NodePort` only: the node ports to take, for firewalls and clients
    /// that must know them in advance; the API server allocates every
    /// port not named. Each must be free and in the API server's node
    /// port range (30000-32767 unless it was configured otherwise), and
    /// none may be named twice.
    #[serde(skip_serializing_if = "ExternalNodePorts::is_empty")]
    pub node_ports: ExternalNodePorts,
}

/// The node ports chosen for the external Services
/// (`spec.externalAccess.nodePorts`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ExternalNodePorts {
    /// By pod ordinal: entry `i` is for `<name>-<i>-external`, the
    /// Service of data pod `<name>-<i>`. At most one entry per data pod:
    /// before scaling in, remove the entries of the pods that go.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2768))]
    pub pods: Vec<PodNodePorts>,
    /// `<name>-external`, the primary's Service (every topology but
    /// Cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub primary: Option<i32>,
    /// `<name>-sentinel-external`, the Sentinels' Service (topology
    /// Sentinel).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub sentinel: Option<i32>,
}

/// The node ports of one data pod's Service; either may be left to the
/// API server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PodNodePorts {
    /// The client port's (Valkey's 6379 inside).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub client: Option<i32>,
    /// The cluster bus's (16379 inside): topology Cluster only, where the
    /// nodes meet each other through their node ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub bus: Option<i32>,
}

impl ExternalNodePorts {
    /// Whether no port is chosen.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Every chosen port with the Service it is for (`pods[i]`,
    /// `primary`, `sentinel`) and its field under `nodePorts`, in the
    /// order they are written.
    pub fn chosen(&self) -> Vec<ChosenNodePort> {
        let mut out = Vec::new();
        for (i, p) in self.pods.iter().enumerate() {
            for (port, bus, which) in [(p.client, false, "client"), (p.bus, true, "bus")] {
                if let Some(port) = port {
                    out.push(ChosenNodePort {
                        service: NodePortService::Pod(i),
                        bus,
                        field: format!("pods[{i}].{which}"),
                        port,
                    });
                }
            }
        }
        for (port, service, field) in [
            (self.primary, NodePortService::Primary, "primary"),
            (self.sentinel, NodePortService::Sentinel, "sentinel"),
        ] {
            if let Some(port) = port {
                out.push(ChosenNodePort {
                    service,
                    bus: false,
                    field: field.to_owned(),
                    port,
                });
            }
        }
        out
    }
}

/// Which external Service a chosen node port is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodePortService {
    /// The data pod of this ordinal's.
    Pod(usize),
    /// The primary's (`<name>-external`).
    Primary,
    /// The Sentinels' (`<name>-sentinel-external`).
    Sentinel,
}

/// One chosen node port: [`ExternalNodePorts::chosen`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenNodePort {
    /// The Service it is for.
    pub service: NodePortService,
    /// Whether it is a pod's cluster bus port (else a client port).
    pub bus: bool,
    /// Its field under `spec.externalAccess.nodePorts` (`pods[0].bus`).
    pub field: String,
    /// The port.
    pub port: i32,
}

impl ExternalAccessSpec {
    /// The type when external access is on, `None` when off.
    pub fn wanted(&self) -> Option<ExternalAccessType> {
        self.enabled.then_some(self.r#type)
    }

    /// Whether the spec says nothing (skipped when serialized).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
