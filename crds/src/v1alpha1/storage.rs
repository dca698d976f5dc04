//! Persistent storage of the data pods: [`StorageSpec`] and [`Persistence`].
//!
//! This module owns the storage settings, their defaults and the CEL rules a
//! real API server enforces on them (size only grows, class immutable). It
//! must not render volume claims; the resource builders do that.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::defaults::serde_fns;
use super::schema::storage_size_schema;

/// Which Valkey persistence mechanisms are on. The operator owns the `save`
/// and `appendonly` directives and renders them from this value.
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
    schemars::JsonSchema,
)]
pub enum Persistence {
    /// No persistence: `save ""` and `appendonly no`. A restarted pod starts
    /// empty and resynchronises from its primary.
    None,
    /// Periodic RDB snapshots with Valkey's default `save` schedule.
    #[default]
    Rdb,
    /// Append-only file (`appendonly yes`), no RDB snapshots.
    Aof,
    /// Both RDB snapshots and the append-only file.
    RdbAndAof,
}

impl Persistence {
    /// `true` when RDB snapshots are written.
    pub fn rdb(self) -> bool {
        matches!(self, Persistence::Rdb | Persistence::RdbAndAof)
    }

    /// `true` when the append-only file is written.
    pub fn aof(self) -> bool {
        matches!(self, Persistence::Aof | Persistence::RdbAndAof)
    }
}

/// The volume of each data pod.
///
/// Transition rules (those reading `oldSelf`) run only on update, and on an
/// optional field only when both the old and the new object set it; that is
/// why `storageClassName` immutability is a rule on this struct, which
/// always exists, rather than on the field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)"
).message("storage.storageClassName is immutable").field_path(".storageClassName"))]
pub struct StorageSpec {
    /// Size of each data pod's PersistentVolumeClaim (default `1Gi`). Fixed
    /// once the cluster runs: this operator version refuses a change in
    /// the status (its claims would keep their size), and setting the size
    /// back undoes it. (No "may only grow" rule: it would forbid that
    /// undo while no growth is carried out.)
    #[serde(default = "serde_fns::storage_size")]
    #[schemars(schema_with = "storage_size_schema")]
    #[x_kube(validation = Rule::new("quantity(self).isGreaterThan(quantity('0'))").message("storage.size must be greater than zero"))]
    pub size: Quantity,

    /// StorageClass of the claims; the cluster's default class when unset.
    /// Immutable: a claim cannot move to another class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,

    /// Valkey persistence: `None`, `Rdb` (default), `Aof` or `RdbAndAof`.
    #[serde(default)]
    pub persistence: Persistence,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: serde_fns::storage_size(),
            storage_class_name: None,
            persistence: Persistence::default(),
        }
    }
}
