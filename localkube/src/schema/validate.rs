//! The OpenAPI (non-CEL) checks, worded as kube-openapi words them and
//! converted to causes as `apiextensions-apiserver` converts them. Paths in
//! these messages follow kube-openapi: `spec.list[0].name`, `spec.map.key`.
//!
//! On update, a subtree equal to its correlated old value is not checked:
//! the real server ratchets validation so unchanged invalid data may stay.

use serde_json::Value;

use super::listtypes::{check_list, map_key};
use super::node::{Additional, Node};
use super::{Cause, gofmt};
use crate::listtype::ListType;

/// Causes of one validation walk, kept apart so they can be emitted in the
/// server's order: schema, embedded resources, then list sets/maps.
#[derive(Default)]
pub(crate) struct Findings {
    pub(crate) schema: Vec<Cause>,
    pub(crate) embedded: Vec<Cause>,
    pub(crate) lists: Vec<Cause>,
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The old item correlated to `item` in a list at `node` (only list-type
/// map items can be correlated, by their keys).
pub(crate) fn correlate_item<'a>(
    node: &Node,
    item: &Value,
    old_list: Option<&'a Value>,
) -> Option<&'a Value> {
    let Some(ListType::Map(keys)) = &node.list_type else {
        return None;
    };
    let key = map_key(item, keys)?;
    old_list?
        .as_array()?
        .iter()
        .find(|o| map_key(o, keys).as_ref() == Some(&key))
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn type_matches(type_: &str, v: &Value) -> bool {
    match type_ {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        // A float with no fraction (e.g. `2.0`) is an integer to the server.
        "integer" => {
            v.as_i64().is_some()
                || v.as_u64().is_some()
                || v.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "number" => v.is_number(),
        _ => true,
    }
}

/// Validates `value` at `path` against `node`.
pub(crate) fn walk(node: &Node, value: &Value, old: Option<&Value>, path: &str, f: &mut Findings) {
    if old.is_some_and(|o| o == value) {
        return;
    }
    if value.is_null() {
        if !node.nullable && !node.type_.is_empty() {
            let msg = format!("{path} in body must be of type {}: \"null\"", node.type_);
            f.schema.push(gofmt::type_invalid(
                path,
                &Value::String("null".into()),
                &msg,
            ));
        }
        return;
    }
    if !type_matches(&node.type_, value) {
        let actual = gofmt::json_type(value);
        let msg = format!(
            "{path} in body must be of type {}: {}",
            node.type_,
            gofmt::quote(actual)
        );
        f.schema.push(gofmt::type_invalid(
            path,
            &Value::String(actual.into()),
            &msg,
        ));
        return;
    }
    if let Some(values) = &node.enum_values
        && !values.iter().any(|e| numbers_equal(e, value))
    {
        let allowed: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        f.schema.push(gofmt::not_supported(path, value, &allowed));
    }
    match value {
        Value::Number(n) => number_checks(node, n.as_f64().unwrap_or(0.0), value, path, f),
        Value::String(s) => string_checks(node, s, value, path, f),
        Value::Array(items) => array_checks(node, items, old, path, f),
        Value::Object(obj) => object_checks(node, obj, old, path, f),
        Value::Bool(_) | Value::Null => {}
    }
    junctors(node, value, path, f);
}

fn number_checks(node: &Node, v: f64, value: &Value, path: &str, f: &mut Findings) {
    if let Some(max) = node.maximum {
        let (bad, word) = if node.exclusive_maximum {
            (v >= max, "less than")
        } else {
            (v > max, "less than or equal to")
        };
        if bad {
            let msg = format!("{path} in body should be {word} {}", gofmt::float(max));
            f.schema.push(gofmt::invalid(path, value, &msg));
        }
    }
    if let Some(min) = node.minimum {
        let (bad, word) = if node.exclusive_minimum {
            (v <= min, "greater than")
        } else {
            (v < min, "greater than or equal to")
        };
        if bad {
            let msg = format!("{path} in body should be {word} {}", gofmt::float(min));
            f.schema.push(gofmt::invalid(path, value, &msg));
        }
    }
    if let Some(m) = node.multiple_of {
        let q = v / m;
        if q.fract() != 0.0 {
            let msg = format!("{path} in body should be a multiple of {}", gofmt::float(m));
            f.schema.push(gofmt::invalid(path, value, &msg));
        }
    }
}

fn string_checks(node: &Node, s: &str, value: &Value, path: &str, f: &mut Findings) {
    let len = u64::try_from(s.chars().count()).unwrap_or(u64::MAX);
    if let Some(max) = node.max_length
        && len > max
    {
        f.schema.push(gofmt::too_long(path, max));
    }
    if let Some(min) = node.min_length
        && len < min
    {
        let msg = format!("{path} in body should be at least {min} chars long");
        f.schema.push(gofmt::invalid(path, value, &msg));
    }
    if let Some(p) = &node.pattern
        && !p.regex.is_match(s)
    {
        let msg = format!("{path} in body should match '{}'", p.source);
        f.schema.push(gofmt::invalid(path, value, &msg));
    }
    if let Some(format) = node.format.as_deref()
        && !super::formats::check(format, s)
    {
        let msg = format!(
            "{path} in body must be of type {format}: {}",
            gofmt::quote(s)
        );
        f.schema.push(gofmt::type_invalid(path, value, &msg));
    }
}

fn array_checks(node: &Node, items: &[Value], old: Option<&Value>, path: &str, f: &mut Findings) {
    let len = items.len();
    if let Some(min) = node.min_items
        && (len as u64) < min
    {
        let msg = format!("{path} in body should have at least {min} items");
        f.schema.push(gofmt::invalid(path, &Value::from(len), &msg));
    }
    if let Some(max) = node.max_items
        && (len as u64) > max
    {
        f.schema.push(gofmt::too_many(path, len, max));
    }
    check_list(node, items, path, &mut f.lists);
    let Some(item_node) = node.items.as_deref() else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let old_item = correlate_item(node, item, old);
        walk(item_node, item, old_item, &format!("{path}[{i}]"), f);
    }
}

fn object_checks(
    node: &Node,
    obj: &serde_json::Map<String, Value>,
    old: Option<&Value>,
    path: &str,
    f: &mut Findings,
) {
    for key in &node.required {
        if !obj.contains_key(key) {
            f.schema.push(gofmt::required(&child(path, key), ""));
        }
    }
    let len = obj.len();
    if let Some(min) = node.min_properties
        && (len as u64) < min
    {
        let msg = format!("{path} in body should have at least {min} properties");
        f.schema.push(gofmt::invalid(path, &Value::from(len), &msg));
    }
    if let Some(max) = node.max_properties
        && (len as u64) > max
    {
        f.schema.push(gofmt::too_many(path, len, max));
    }
    if node.embedded {
        for key in ["apiVersion", "kind"] {
            if !obj.contains_key(key) {
                f.embedded
                    .push(gofmt::required(&child(path, key), "must not be empty"));
            }
        }
    }
    for (k, v) in obj {
        let sub = match (node.properties.get(k), &node.additional) {
            (Some(c), _) => c,
            (None, Additional::Schema(c)) => c.as_ref(),
            _ => continue,
        };
        walk(sub, v, old.and_then(|o| o.get(k)), &child(path, k), f);
    }
}

/// allOf / anyOf / oneOf / not, which only carry value validations.
fn junctors(node: &Node, value: &Value, path: &str, f: &mut Findings) {
    let run = |branch: &Node| {
        let mut sub = Findings::default();
        walk(branch, value, None, path, &mut sub);
        sub.schema
    };
    for branch in &node.all_of {
        f.schema.extend(run(branch));
    }
    let empty = Value::String(String::new());
    if !node.any_of.is_empty() {
        let results: Vec<Vec<Cause>> = node.any_of.iter().map(run).collect();
        if results.iter().all(|r| !r.is_empty()) {
            let msg = format!("{path} must validate at least one schema (anyOf)");
            f.schema.push(gofmt::invalid(path, &empty, &msg));
            if let Some(best) = results.into_iter().min_by_key(Vec::len) {
                f.schema.extend(best);
            }
        }
    }
    if !node.one_of.is_empty() {
        let valid = node.one_of.iter().filter(|b| run(b).is_empty()).count();
        if valid != 1 {
            let extra = if valid > 1 {
                format!("Found {valid} valid alternatives")
            } else {
                String::new()
            };
            let msg = format!("{path} must validate one and only one schema (oneOf). {extra}");
            f.schema.push(gofmt::invalid(path, &empty, msg.trim_end()));
        }
    }
    if let Some(not) = &node.not
        && run(not).is_empty()
    {
        let msg = format!("{path} must not validate the schema (not)");
        f.schema.push(gofmt::invalid(path, &empty, &msg));
    }
}
