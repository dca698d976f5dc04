//! Hand-written schema fragments for fields whose derived schema is wrong for
//! a CRD, and the patterns the schema shares with validation.
//!
//! This module owns only schema shapes. The rules themselves live on the
//! types (`#[x_kube(validation)]`) and in `validation/`.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Regular expression for a DNS-1123 subdomain (Secret, StorageClass and
/// PriorityClass names), as Kubernetes spells it.
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Regular expression for a key inside a Secret's `data`.
pub const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

/// Regular expression for a Kubernetes quantity, as the API server parses it.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// `spec.storage.size`: a quantity written as a string.
///
/// k8s-openapi describes `Quantity` as int-or-string; a bare integer would
/// then reach CEL's `quantity()` as an int and fail the rule with a type
/// error rather than a message, so the field accepts strings only.
pub(crate) fn storage_size_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": QUANTITY_PATTERN,
        // Bounds the CEL cost estimate of the quantity() rules.
        "maxLength": 64,
        "default": super::defaults::STORAGE_SIZE,
        "description": "Size of each data pod's PersistentVolumeClaim (default `1Gi`), e.g. `10Gi`. May only grow; growing needs a StorageClass with `allowVolumeExpansion`.",
    })
}
