//! Cluster-level policy objects the operator renders next to the pods:
//! [`PodDisruptionBudgetSpec`] and [`NetworkPolicySpec`].
//!
//! This module owns their settings and defaults only; building the
//! Kubernetes objects is the resource builders' job.

use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::defaults;

/// The PodDisruptionBudget over the data pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PodDisruptionBudgetSpec {
    /// Create a PodDisruptionBudget (default `true`).
    pub enabled: bool,
    /// Data pods a voluntary disruption may take down at once (default 1,
    /// at least 1: 0 would block node drains forever). For Cluster the budget
    /// is per shard.
    #[schemars(range(min = defaults::PDB_MAX_UNAVAILABLE_MIN))]
    pub max_unavailable: i32,
}

impl Default for PodDisruptionBudgetSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            max_unavailable: defaults::PDB_MAX_UNAVAILABLE,
        }
    }
}

/// A NetworkPolicy admitting clients to Valkey.
///
/// Traffic between the cluster's own pods (replication, cluster bus,
/// Sentinel) and from the operator is always admitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkPolicySpec {
    /// Create a NetworkPolicy (default `false`).
    pub enabled: bool,
    /// Peers allowed to reach the client port. Empty with `enabled` admits
    /// only the cluster's own pods and the operator.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<NetworkPolicyPeer>,
}
