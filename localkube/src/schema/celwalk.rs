//! The CEL pass: walks nodes that carry `x-kubernetes-validations`, binds
//! `self` (and the correlated `oldSelf`) and runs their rules. Paths follow
//! the server's CEL validator: `<nil>` at the root, `spec.list[0]`,
//! `spec.map[key]`.

use kube_cel::KubeCelExt;
use kube_cel::cel::Context;
use serde_json::Value;

use super::Cause;
use super::celvalue::{Helpers, to_cel};
use super::node::{Additional, Node};
use super::rules::Site;
use super::validate::correlate_item;

/// The server's field path for the object root.
pub(crate) const ROOT: &str = "<nil>";

thread_local! {
    // Registering the Kubernetes library is not free, so once per thread.
    static BASE: Context<'static> = Context::default().with_all();
    static HELPERS: Option<Helpers> = Helpers::new();
}

fn child(path: &str, name: &str) -> String {
    if path == ROOT {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Runs every rule of the tree below `root`.
pub(crate) fn run(root: &Node, value: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    BASE.with(|ctx| {
        HELPERS.with(|helpers| {
            if let Some(helpers) = helpers {
                walk(&Walk { ctx, helpers }, root, value, old, ROOT, true, out);
            }
        });
    });
}

struct Walk<'a> {
    ctx: &'a Context<'static>,
    helpers: &'a Helpers,
}

fn walk(
    w: &Walk<'_>,
    node: &Node,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    out: &mut Vec<Cause>,
) {
    if !node.has_rules() {
        return;
    }
    if !node.rules.is_empty() {
        // Ratcheting: unchanged values skip their non-transition rules.
        let unchanged = old.is_some_and(|o| o == value);
        let this = to_cel(w.ctx, w.helpers, value, Some(node), root);
        let old_cel = old.map(|o| to_cel(w.ctx, w.helpers, o, Some(node), root));
        let site = Site {
            ctx: w.ctx,
            helpers: w.helpers,
            field: path,
            type_name: node.type_name(),
        };
        for rule in &node.rules {
            if unchanged && !rule.transition {
                continue;
            }
            rule.evaluate(&site, &this, old_cel.as_ref(), out);
        }
    }
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                let (sub, sub_path) = match (node.properties.get(k), &node.additional) {
                    (Some(c), _) => (c, child(path, k)),
                    (None, Additional::Schema(c)) => (
                        c.as_ref(),
                        format!("{}[{k}]", if path == ROOT { "" } else { path }),
                    ),
                    _ => continue,
                };
                walk(w, sub, v, old.and_then(|o| o.get(k)), &sub_path, false, out);
            }
        }
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            let base = if path == ROOT { "" } else { path };
            for (i, item) in items.iter().enumerate() {
                let old_item = correlate_item(node, item, old);
                walk(
                    w,
                    item_node,
                    item,
                    old_item,
                    &format!("{base}[{i}]"),
                    false,
                    out,
                );
            }
        }
        _ => {}
    }
}
