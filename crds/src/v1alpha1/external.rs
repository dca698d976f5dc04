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
