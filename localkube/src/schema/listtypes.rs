//! `x-kubernetes-list-type` / `x-kubernetes-list-map-keys`: parsed at
//! compile time, answered to the patch engines through [`ListTypes`], and
//! enforced on writes (no duplicate set elements or map keys), as
//! `structurallisttype.ValidateListSetsAndMaps` does in the real server.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::node::{Additional, Node, string_list};
use super::{Cause, CompiledSchema, SchemaError, gofmt};
use crate::listtype::{ListType, ListTypes};

fn err(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Reads the list markers of a node whose children are already parsed.
pub(crate) fn parse_list_type(
    obj: &Map<String, Value>,
    node: &Node,
    path: &str,
) -> Result<Option<ListType>, SchemaError> {
    let keys = string_list(obj, "x-kubernetes-list-map-keys", path)?;
    let kind = match obj.get("x-kubernetes-list-type") {
        None | Some(Value::Null) => {
            if !keys.is_empty() {
                return Err(err(
                    &format!("{path}.x-kubernetes-list-map-keys"),
                    "must only be set if x-kubernetes-list-type is map",
                ));
            }
            return Ok(None);
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(err(
                &format!("{path}.x-kubernetes-list-type"),
                "must be a string",
            ));
        }
    };
    if node.type_ != "array" {
        return Err(err(
            &format!("{path}.x-kubernetes-list-type"),
            "must only be used if type is array",
        ));
    }
    match kind {
        "atomic" | "set" if !keys.is_empty() => Err(err(
            &format!("{path}.x-kubernetes-list-map-keys"),
            "must only be set if x-kubernetes-list-type is map",
        )),
        "atomic" => Ok(Some(ListType::Atomic)),
        "set" => Ok(Some(ListType::Set)),
        "map" => {
            if keys.is_empty() {
                return Err(err(
                    &format!("{path}.x-kubernetes-list-map-keys"),
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
            let items = node.items.as_deref();
            if items.is_some_and(|i| i.type_ != "object") {
                return Err(err(
                    &format!("{path}.items.type"),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            }
            for key in &keys {
                let prop = items.and_then(|i| i.properties.get(key));
                if !prop.is_some_and(|p| {
                    matches!(
                        p.type_.as_str(),
                        "string" | "integer" | "number" | "boolean"
                    ) || p.int_or_string
                }) {
                    return Err(err(
                        &format!("{path}.items.properties[{key}]"),
                        "must be a scalar property named in x-kubernetes-list-map-keys",
                    ));
                }
            }
            Ok(Some(ListType::Map(keys)))
        }
        other => Err(err(
            &format!("{path}.x-kubernetes-list-type"),
            format!(
                "Unsupported value: {}: supported values: \"atomic\", \"map\", \"set\"",
                gofmt::quote(other)
            ),
        )),
    }
}

impl ListTypes for CompiledSchema {
    fn list_type(&self, path: &[&str]) -> ListType {
        let mut node = &self.root;
        for segment in path {
            // List positions are left out of the path, so step through items.
            while node.type_ == "array" {
                match node.items.as_deref() {
                    Some(items) => node = items,
                    None => return ListType::Atomic,
                }
            }
            node = match (node.properties.get(*segment), &node.additional) {
                (Some(child), _) => child,
                (None, Additional::Schema(values)) => values,
                _ => return ListType::Atomic,
            };
        }
        node.list_type.clone().unwrap_or(ListType::Atomic)
    }
}

/// The key of a list-map item: the values of its key fields (absent as null).
pub(crate) fn map_key(item: &Value, keys: &[String]) -> Option<Vec<Value>> {
    let obj = item.as_object()?;
    Some(
        keys.iter()
            .map(|k| obj.get(k).cloned().unwrap_or(Value::Null))
            .collect(),
    )
}

/// Duplicate set elements / map keys in the list at `field`.
pub(crate) fn check_list(node: &Node, list: &[Value], field: &str, out: &mut Vec<Cause>) {
    match &node.list_type {
        Some(ListType::Set) => {
            let mut seen = HashSet::new();
            for (i, item) in list.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    out.push(gofmt::duplicate_rendered(
                        &format!("{field}[{i}]"),
                        &gofmt::bad_value(item),
                    ));
                }
            }
        }
        Some(ListType::Map(keys)) => {
            let mut seen = HashSet::new();
            for (i, item) in list.iter().enumerate() {
                let Some(key) = map_key(item, keys) else {
                    continue;
                };
                if !seen.insert(Value::Array(key.clone()).to_string()) {
                    // The server reports the key fields as a Go map.
                    let shown: Map<String, Value> = keys.iter().cloned().zip(key).collect();
                    let shown = gofmt::sharp_v(&Value::Object(shown));
                    out.push(gofmt::duplicate_rendered(&format!("{field}[{i}]"), &shown));
                }
            }
        }
        _ => {}
    }
}
