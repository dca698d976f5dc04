//! JSON → CEL values the way the real server exposes an object to
//! `x-kubernetes-validations`: declared field names escaped, map keys not,
//! `number` fields as doubles, formatted strings as timestamps, durations
//! and bytes, and `metadata` (at the root and in embedded resources)
//! reduced to `name` and `generateName`.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{Context, Program, Value as Cel};
use serde_json::Value;

use super::formats;
use super::node::{Additional, Node};

const RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The server's escaping of property names that are not CEL identifiers.
pub(crate) fn escape(name: &str) -> String {
    if RESERVED.contains(&name) {
        return format!("__{name}__");
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '_' => out.push_str("__"),
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c => out.push(c),
        }
    }
    out
}

fn string(s: &str) -> Cel {
    Cel::String(Arc::new(s.to_string()))
}

fn map(entries: HashMap<Key, Cel>) -> Cel {
    Cel::Map(Map {
        map: Arc::new(entries),
    })
}

/// Runs a one-variable helper program (`timestamp(v)`, `optional.of(v)`,
/// …) so conversions reuse the CEL library's own parsing.
pub(crate) fn helper(ctx: &Context<'_>, program: &Program, v: Cel) -> Option<Cel> {
    let mut scope = ctx.new_inner_scope();
    scope.add_variable_from_value("v", v);
    program.execute(&scope).ok()
}

/// Programs used by the conversions, compiled once per thread.
pub(crate) struct Helpers {
    pub(crate) timestamp: Program,
    pub(crate) duration: Program,
    pub(crate) optional_of: Program,
    pub(crate) optional_none: Program,
}

impl Helpers {
    pub(crate) fn new() -> Option<Self> {
        Some(Self {
            timestamp: Program::compile("timestamp(v)").ok()?,
            duration: Program::compile("duration(v)").ok()?,
            optional_of: Program::compile("optional.of(v)").ok()?,
            optional_none: Program::compile("optional.none()").ok()?,
        })
    }
}

/// Converts `value` described by `node`; `root` marks the object root.
pub(crate) fn to_cel(
    ctx: &Context<'_>,
    h: &Helpers,
    value: &Value,
    node: Option<&Node>,
    root: bool,
) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => number(n, node),
        Value::String(s) => formatted(ctx, h, s, node),
        Value::Array(items) => {
            let items_node = node.and_then(|n| n.items.as_deref());
            Cel::List(Arc::new(
                items
                    .iter()
                    .map(|i| to_cel(ctx, h, i, items_node, false))
                    .collect(),
            ))
        }
        Value::Object(obj) => {
            let is_map = node.is_some_and(|n| !matches!(n.additional, Additional::None));
            let embedded = node.is_some_and(|n| n.embedded);
            let mut out = HashMap::with_capacity(obj.len());
            for (k, v) in obj {
                let child = node.and_then(|n| match (n.properties.get(k), &n.additional) {
                    (Some(c), _) => Some(c),
                    (None, Additional::Schema(c)) => Some(c.as_ref()),
                    _ => None,
                });
                let converted = if (root || embedded) && k == "metadata" {
                    metadata(v)
                } else {
                    to_cel(ctx, h, v, child, false)
                };
                let key = if is_map { k.clone() } else { escape(k) };
                out.insert(Key::String(Arc::new(key)), converted);
            }
            if embedded {
                for (k, empty) in [
                    ("apiVersion", string("")),
                    ("kind", string("")),
                    ("metadata", map(HashMap::new())),
                ] {
                    out.entry(Key::String(Arc::new(k.into()))).or_insert(empty);
                }
            }
            map(out)
        }
    }
}

fn number(n: &serde_json::Number, node: Option<&Node>) -> Cel {
    if node.is_some_and(|n| n.type_ == "number") {
        return Cel::Float(n.as_f64().unwrap_or(f64::NAN));
    }
    if let Some(i) = n.as_i64() {
        Cel::Int(i)
    } else if let Some(u) = n.as_u64() {
        Cel::UInt(u)
    } else {
        Cel::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn formatted(ctx: &Context<'_>, h: &Helpers, s: &str, node: Option<&Node>) -> Cel {
    let format = node
        .filter(|n| !n.int_or_string)
        .and_then(|n| n.format.as_deref());
    let converted = match format {
        Some("date-time") => helper(ctx, &h.timestamp, string(s)),
        Some("duration") => helper(ctx, &h.duration, string(s)),
        Some("byte") => formats::decode_base64(s).map(|b| Cel::Bytes(Arc::new(b))),
        _ => None,
    };
    converted.unwrap_or_else(|| string(s))
}

/// Only `name` and `generateName` of ObjectMeta are visible to rules.
fn metadata(v: &Value) -> Cel {
    let mut out = HashMap::new();
    for k in ["name", "generateName"] {
        if let Some(Value::String(s)) = v.get(k) {
            out.insert(Key::String(Arc::new(k.into())), string(s));
        }
    }
    map(out)
}
