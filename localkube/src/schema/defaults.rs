//! Defaulting as the real server applies it when reading a request: nulls
//! in non-nullable fields are dropped (then defaulted if a default exists),
//! absent properties get their `default`, and the walk is top-down so a
//! defaulted object receives its children's defaults too.

use serde_json::Value;

use super::node::{Additional, Node};

/// A `null` the schema does not allow.
fn non_nullable_null(v: &Value, node: &Node) -> bool {
    v.is_null() && !node.nullable
}

/// Applies defaults below `value`; `skip_metadata` at the object root,
/// whose metadata the server owns.
pub(crate) fn apply(value: &mut Value, node: &Node, skip_metadata: bool) {
    match value {
        Value::Object(obj) => {
            for (k, prop) in &node.properties {
                if skip_metadata && k == "metadata" {
                    continue;
                }
                let present = obj.get(k).is_some_and(|v| !non_nullable_null(v, prop));
                if present {
                    continue;
                }
                match &prop.default {
                    Some(d) => {
                        obj.insert(k.clone(), d.clone());
                    }
                    None => {
                        obj.remove(k);
                    }
                }
            }
            if let Additional::Schema(values) = &node.additional {
                let nulls: Vec<String> = obj
                    .iter()
                    .filter(|(_, v)| non_nullable_null(v, values))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in nulls {
                    match &values.default {
                        Some(d) => obj.insert(k, d.clone()),
                        None => obj.remove(&k),
                    };
                }
            }
            for (k, v) in obj.iter_mut() {
                if skip_metadata && k == "metadata" {
                    continue;
                }
                match (node.properties.get(k), &node.additional) {
                    (Some(child), _) => apply(v, child, child.embedded),
                    (None, Additional::Schema(child)) => apply(v, child, child.embedded),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            for item in items.iter_mut() {
                if non_nullable_null(item, item_node)
                    && let Some(d) = &item_node.default
                {
                    *item = d.clone();
                }
                apply(item, item_node, item_node.embedded);
            }
        }
        _ => {}
    }
}
