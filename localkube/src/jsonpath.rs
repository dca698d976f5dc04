//! The simple JSONPath forms CRDs use (`.spec.replicas`,
//! `.status.conditions[0].type`, `.metadata.labels['a.b/c']`): reading
//! and writing one value. Anything richer is not evaluated.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path.trim();
    rest = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(rest);
    rest = rest.strip_prefix('$').unwrap_or(rest);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let (name, tail) = r.split_at(end);
            if name.is_empty() {
                return None;
            }
            steps.push(Step::Field(name.to_owned()));
            rest = tail;
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let (inner, tail) = r.split_at(end);
            let inner = inner.trim();
            if let Some(q) = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            {
                steps.push(Step::Field(q.to_owned()));
            } else {
                steps.push(Step::Index(inner.parse().ok()?));
            }
            rest = tail.strip_prefix(']').unwrap_or(tail);
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The value at `path`, if any.
pub fn get<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for step in parse(path)? {
        cur = match step {
            Step::Field(f) => cur.get(&f)?,
            Step::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// Sets the value at a field-only `path`, creating objects on the way.
/// Returns false when the path cannot be set.
pub fn set(obj: &mut Value, path: &str, value: Value) -> bool {
    let Some(steps) = parse(path) else {
        return false;
    };
    let mut cur = obj;
    let n = steps.len();
    for (i, step) in steps.into_iter().enumerate() {
        let Step::Field(f) = step else { return false };
        if !cur.is_object() {
            *cur = Value::Object(serde_json::Map::new());
        }
        let Some(map) = cur.as_object_mut() else {
            return false;
        };
        if i + 1 == n {
            map.insert(f, value);
            return true;
        }
        cur = map
            .entry(f)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let mut v = json!({"spec": {"a": [{"b": 1}]}, "metadata": {"labels": {"x.y/z": "q"}}});
        assert_eq!(get(&v, ".spec.a[0].b"), Some(&json!(1)));
        assert_eq!(get(&v, ".metadata.labels['x.y/z']"), Some(&json!("q")));
        assert!(set(&mut v, ".spec.replicas", json!(3)));
        assert_eq!(get(&v, ".spec.replicas"), Some(&json!(3)));
    }
}
