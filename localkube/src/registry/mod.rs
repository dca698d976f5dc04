//! What the server serves: one [`ResourceInfo`] per resource, from the
//! static table of built-in kinds and from the established CRDs. Lookup
//! only; the objects themselves live in the store.

mod builtin;
pub mod crd;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::listtype::{AllAtomic, ListTypes};
use crate::names::NameRule;
use crate::schema::CompiledSchema;

pub use builtin::builtins;

/// Where a scale subresource reads and writes (JSON paths like
/// `.spec.replicas`).
#[derive(Debug, Clone)]
pub struct ScalePaths {
    /// The desired replicas.
    pub spec_replicas: String,
    /// The observed replicas.
    pub status_replicas: String,
    /// The label selector: a string, or (built-ins) a LabelSelector object.
    pub label_selector: Option<String>,
}

/// One additional printer column of a CRD version.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, ...).
    pub type_: String,
    /// Format.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 shown by default, higher only with `-o wide`.
    pub priority: i64,
    /// Simple JSONPath.
    pub json_path: String,
}

/// One served version of a resource.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// e.g. `v1`.
    pub name: String,
    /// Whether objects are stored in this version.
    pub storage: bool,
    /// A `/status` subresource.
    pub status: bool,
    /// A `/scale` subresource.
    pub scale: Option<ScalePaths>,
    /// The compiled schema (custom resources).
    pub schema: Option<Arc<CompiledSchema>>,
    /// The raw `openAPIV3Schema` (custom resources).
    pub raw_schema: Option<Value>,
    /// `additionalPrinterColumns` (custom resources).
    pub columns: Vec<PrinterColumn>,
}

/// A served resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group ("" for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// List kind.
    pub list_kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular resource name.
    pub singular: String,
    /// Whether namespaced.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Served versions, preferred first.
    pub versions: Vec<VersionInfo>,
    /// Pods' `/log`.
    pub log: bool,
    /// Pods' `/eviction`.
    pub eviction: bool,
    /// Which rule names follow.
    pub name_rule: NameRule,
    /// Defined by a CRD.
    pub custom: bool,
    /// The `clientConfig` of its CRD's conversion webhook, when it
    /// converts between versions by webhook: each object is kept with the
    /// version it was stored at, and converted from it when read
    /// (`http/conversion.rs`).
    pub conversion_webhook: Option<Value>,
}

/// The verbs of every resource here (all are fully writable).
pub const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceInfo {
    /// The served version `version`.
    pub fn version(&self, version: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.name == version)
    }

    /// The storage version (the first served one when none is marked).
    pub fn storage(&self) -> Option<&VersionInfo> {
        self.versions
            .iter()
            .find(|v| v.storage)
            .or_else(|| self.versions.first())
    }

    /// `group/version` or `version` for core.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// The storage `apiVersion`.
    pub fn storage_api_version(&self) -> String {
        let v = self.storage().map(|v| v.name.as_str()).unwrap_or("v1");
        self.api_version(v)
    }

    /// The list types used by patches and managed fields.
    pub fn list_types(&self) -> &dyn ListTypes {
        if let Some(schema) = self.storage().and_then(|v| v.schema.as_deref()) {
            return schema;
        }
        match crate::patch::builtin_list_types(&self.group, &self.kind) {
            Some(l) => l,
            None => &AllAtomic,
        }
    }

    /// Whether any version has a status subresource (built-ins: fixed).
    pub fn has_status(&self) -> bool {
        self.storage().is_some_and(|v| v.status)
    }
}

/// The custom resources being served, by (group, plural).
pub type CustomResources = BTreeMap<(String, String), Arc<ResourceInfo>>;

/// Finds (group, plural) among the built-ins and `custom`.
pub fn lookup(custom: &CustomResources, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
    builtins()
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .cloned()
        .or_else(|| custom.get(&(group.to_owned(), plural.to_owned())).cloned())
}

/// Every served resource: built-ins first, then custom ones.
pub fn all(custom: &CustomResources) -> Vec<Arc<ResourceInfo>> {
    let mut out: Vec<Arc<ResourceInfo>> = builtins().to_vec();
    out.extend(custom.values().cloned());
    out
}

/// Finds a resource by group and kind.
pub fn lookup_kind(custom: &CustomResources, group: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
    all(custom)
        .into_iter()
        .find(|r| r.group == group && r.kind == kind)
}
