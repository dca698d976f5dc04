//! `metadata.managedFields` entries: decoding, identity (as the real
//! server's manager identifier), the always-stripped fields, and encoding
//! in the server's sort order.

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, PathElement};

/// One `managedFields` entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: String,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: String,
    pub(crate) set: FieldSet,
}

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";

impl Entry {
    /// Whether this entry is the one for (manager, operation, apiVersion,
    /// subresource); Apply entries are one per manager whatever the version.
    pub(crate) fn is(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == APPLY || self.api_version == api_version)
    }

    fn decode(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").unwrap_or_default(),
            set: v
                .get("fieldsV1")
                .map_or(Some(FieldSet::default()), FieldSet::from_json)?,
        })
    }

    fn encode(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".to_owned(), Value::String(self.manager.clone()));
        m.insert(
            "operation".to_owned(),
            Value::String(self.operation.clone()),
        );
        m.insert(
            "apiVersion".to_owned(),
            Value::String(self.api_version.clone()),
        );
        if let Some(t) = &self.time {
            m.insert("time".to_owned(), Value::String(t.clone()));
        }
        m.insert(
            "fieldsType".to_owned(),
            Value::String("FieldsV1".to_owned()),
        );
        m.insert("fieldsV1".to_owned(), self.set.to_json());
        if !self.subresource.is_empty() {
            m.insert(
                "subresource".to_owned(),
                Value::String(self.subresource.clone()),
            );
        }
        Value::Object(m)
    }
}

/// The entries of an object (unparseable entries are dropped, as the real
/// server resets invalid managed fields rather than failing the write).
pub(crate) fn decode(obj: &Map<String, Value>) -> Vec<Entry> {
    match obj.get("metadata").and_then(|m| m.get("managedFields")) {
        Some(Value::Array(list)) => list.iter().filter_map(Entry::decode).collect(),
        _ => Vec::new(),
    }
}

/// Whether the object carries a `managedFields` list at all.
pub(crate) fn has_list(obj: &Map<String, Value>) -> bool {
    matches!(
        obj.get("metadata").and_then(|m| m.get("managedFields")),
        Some(Value::Array(_))
    )
}

/// A copy without `metadata.managedFields` (never part of field sets).
pub(crate) fn without_managed_fields(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut out = obj.clone();
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        meta.remove("managedFields");
    }
    out
}

/// Fields nobody owns (upstream `stripMetaManager`).
fn strip_set() -> FieldSet {
    let mut s = FieldSet::default();
    for root in ["apiVersion", "kind", "metadata"] {
        s.insert(&[PathElement::Field(root.to_owned())]);
    }
    for meta in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[
            PathElement::Field("metadata".to_owned()),
            PathElement::Field(meta.to_owned()),
        ]);
    }
    s
}

pub(crate) fn strip(set: &FieldSet) -> FieldSet {
    set.difference(&strip_set())
}

/// Writes the entries (empty ones dropped) into `obj`, sorted as the real
/// server sorts them: operation, time, manager, apiVersion, subresource.
pub(crate) fn encode_into(obj: &mut Map<String, Value>, entries: Vec<Entry>) {
    let mut entries: Vec<Entry> = entries
        .into_iter()
        .map(|mut e| {
            e.set = strip(&e.set);
            e
        })
        .filter(|e| !e.set.is_empty())
        .collect();
    entries.sort_by(|a, b| {
        (
            &a.operation,
            a.time.as_deref().unwrap_or(""),
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                b.time.as_deref().unwrap_or(""),
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert(
                "managedFields".to_owned(),
                Value::Array(entries.iter().map(Entry::encode).collect()),
            );
        }
    }
}
