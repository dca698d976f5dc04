//! Pruning of fields the schema does not declare, as the real server does
//! when it reads a custom resource from a request or from storage.

use serde_json::Value;

use super::node::{Additional, Node};

/// Prunes `value` against `node`; `resource_root` marks the object root and
/// embedded resources, whose `apiVersion`, `kind` and `metadata` are kept.
/// Pruned paths are pushed in the server's wording (`.spec.foo`,
/// `.spec.list[0].foo`, `.spec.map.key.foo`).
pub(crate) fn prune(
    value: &mut Value,
    node: &Node,
    resource_root: bool,
    path: &mut String,
    out: &mut Vec<String>,
) {
    match value {
        Value::Object(obj) => {
            let mut dropped = Vec::new();
            for (k, v) in obj.iter_mut() {
                if resource_root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    // Metadata belongs to the server; TypeMeta is never pruned.
                    continue;
                }
                let child = match (node.properties.get(k), &node.additional) {
                    (Some(c), _) => Some(c),
                    (None, Additional::Schema(c)) => Some(c.as_ref()),
                    (None, Additional::Any) => continue,
                    (None, Additional::None) if node.preserve_unknown => continue,
                    (None, Additional::None) => None,
                };
                let len = path.len();
                path.push('.');
                path.push_str(k);
                match child {
                    Some(c) => prune(v, c, c.embedded, path, out),
                    None => {
                        out.push(path.clone());
                        dropped.push(k.clone());
                    }
                }
                path.truncate(len);
            }
            for k in dropped {
                obj.remove(&k);
            }
        }
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                prune(item, item_node, item_node.embedded, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}
