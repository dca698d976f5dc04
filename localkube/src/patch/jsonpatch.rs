//! RFC 6902 JSON patch, written here rather than delegated so the error
//! messages read like the ones kube-apiserver relays from evanphx/json-patch
//! (e.g. `testing value /spec/replicas failed: test failed`).

use serde_json::Value;

use super::PatchError;

/// Applies every operation to a copy of `target`; the first failure aborts
/// the whole patch (the real server never stores a partial result).
pub(super) fn apply(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::Malformed(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_kind(patch)
        )));
    };
    let mut doc = target.clone();
    for op in ops {
        let Value::Object(op) = op else {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                go_kind(op)
            )));
        };
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
        let path = || str_field(op, "path", kind);
        match kind {
            "add" => add(&mut doc, path()?, value_field(op, kind)?)?,
            "remove" => {
                let p = path()?;
                remove(&mut doc, p).ok_or_else(|| {
                    missing(format!("Unable to remove nonexistent key: {}", leaf(p)))
                })?;
            }
            "replace" => {
                let p = path()?;
                let value = value_field(op, kind)?;
                let slot = pointer_mut(&mut doc, p).ok_or_else(|| {
                    missing(format!(
                        "replace operation does not apply: doc is missing key: {p}"
                    ))
                })?;
                *slot = value;
            }
            "move" => {
                let from = str_field(op, "from", kind)?;
                let to = path()?;
                if from != to {
                    if to.starts_with(&format!("{from}/")) {
                        return Err(PatchError::Unprocessable(format!(
                            "Unable to move {from} into its own child {to}"
                        )));
                    }
                    let value = remove(&mut doc, from).ok_or_else(|| {
                        missing(format!(
                            "move operation does not apply: doc is missing from path: {from}"
                        ))
                    })?;
                    add(&mut doc, to, value)?;
                }
            }
            "copy" => {
                let from = str_field(op, "from", kind)?;
                let value = pointer(&doc, from).cloned().ok_or_else(|| {
                    missing(format!(
                        "copy operation does not apply: doc is missing from path: {from}"
                    ))
                })?;
                add(&mut doc, path()?, value)?;
            }
            "test" => {
                let p = path()?;
                let expected = value_field(op, kind)?;
                // As evanphx/json-patch: a missing value equals `null`
                // (kube-rs's finalizer helper tests an absent list so).
                let found = pointer(&doc, p).unwrap_or(&Value::Null);
                if found != &expected {
                    return Err(PatchError::Unprocessable(format!(
                        "testing value {p} failed: test failed"
                    )));
                }
            }
            other => {
                return Err(PatchError::Unprocessable(format!(
                    "Unexpected kind: {other}"
                )));
            }
        }
    }
    Ok(doc)
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn missing(what: String) -> PatchError {
    PatchError::Unprocessable(format!("{what}: missing value"))
}

fn str_field<'a>(
    op: &'a serde_json::Map<String, Value>,
    name: &str,
    kind: &str,
) -> Result<&'a str, PatchError> {
    op.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(format!("{kind} operation, missing {name} field")))
}

fn value_field(op: &serde_json::Map<String, Value>, kind: &str) -> Result<Value, PatchError> {
    op.get("value")
        .cloned()
        .ok_or_else(|| missing(format!("{kind} operation, missing value field")))
}

/// The decoded reference tokens of a JSON pointer; `None` when malformed.
fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// The last token, as the real server names a key in its messages.
fn leaf(pointer: &str) -> String {
    tokens(pointer)
        .and_then(|t| t.last().cloned())
        .unwrap_or_default()
}

/// An array index token: decimal, no leading zeros (RFC 6901).
fn index(token: &str) -> Option<usize> {
    if token.is_empty()
        || (token.len() > 1 && token.starts_with('0'))
        || !token.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    token.parse().ok()
}

fn child<'a>(v: &'a Value, token: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(token),
        Value::Array(a) => a.get(index(token)?),
        _ => None,
    }
}

fn child_mut<'a>(v: &'a mut Value, token: &str) -> Option<&'a mut Value> {
    match v {
        Value::Object(m) => m.get_mut(token),
        Value::Array(a) => a.get_mut(index(token)?),
        _ => None,
    }
}

fn pointer<'a>(doc: &'a Value, p: &str) -> Option<&'a Value> {
    tokens(p)?.iter().try_fold(doc, |v, t| child(v, t))
}

fn pointer_mut<'a>(doc: &'a mut Value, p: &str) -> Option<&'a mut Value> {
    tokens(p)?.iter().try_fold(doc, |v, t| child_mut(v, t))
}

/// Splits a pointer into its parent's tokens and the last token.
fn split(p: &str) -> Option<(Vec<String>, String)> {
    let mut t = tokens(p)?;
    let last = t.pop()?;
    Some((t, last))
}

fn parent_mut<'a>(doc: &'a mut Value, parent: &[String]) -> Option<&'a mut Value> {
    parent.iter().try_fold(doc, |v, t| child_mut(v, t))
}

fn add(doc: &mut Value, p: &str, value: Value) -> Result<(), PatchError> {
    let no_path = || {
        missing(format!(
            "add operation does not apply: doc is missing path: \"{p}\""
        ))
    };
    let Some((parent, last)) = split(p) else {
        if p.is_empty() {
            *doc = value;
            return Ok(());
        }
        return Err(no_path());
    };
    match parent_mut(doc, &parent).ok_or_else(no_path)? {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let at = if last == "-" {
                Some(a.len())
            } else {
                index(&last)
            };
            match at {
                Some(i) if i <= a.len() => {
                    a.insert(i, value);
                    Ok(())
                }
                _ => Err(PatchError::Unprocessable(format!(
                    "Unable to access invalid index: {last}: invalid index referenced"
                ))),
            }
        }
        _ => Err(no_path()),
    }
}

/// Removes and returns the value at `p`; `None` when there is none.
fn remove(doc: &mut Value, p: &str) -> Option<Value> {
    let (parent, last) = split(p)?;
    match parent_mut(doc, &parent)? {
        Value::Object(m) => m.remove(&last),
        Value::Array(a) => {
            let i = index(&last)?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}
