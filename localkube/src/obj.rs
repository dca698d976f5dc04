//! Reading and writing the metadata of objects held as JSON values, so
//! the rest of the server never indexes into a `Value` by hand.

use serde_json::{Map, Value};

/// `metadata` as a map (created when missing or not an object).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable_map()
    };
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    match m {
        Value::Object(map) => map,
        _ => unreachable_map(),
    }
}

// Both callers above have just made the value an object.
fn unreachable_map() -> ! {
    unreachable!("value was just made an object")
}

/// The JSON object `v` holds, cloned; empty when `v` is absent or not an
/// object (e.g. `object_or_empty(pod.get("status"))`).
pub fn object_or_empty(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

/// A metadata string field.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata.name` ("" when absent).
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// `metadata.namespace` ("" when absent).
pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

/// `metadata.uid` ("" when absent).
pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or("")
}

/// `metadata.resourceVersion` ("" when absent).
pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion").unwrap_or("")
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `metadata.finalizers` (removing the field when empty).
pub fn set_finalizers(obj: &mut Value, f: &[String]) {
    let m = meta_mut(obj);
    if f.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), Value::from(f.to_vec()));
    }
}

/// The uids of `metadata.ownerReferences`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the owner reference to `owner_uid`.
pub fn remove_owner(obj: &mut Value, owner_uid: &str) {
    let m = meta_mut(obj);
    let keep: Vec<Value> = m
        .get("ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if keep.is_empty() {
        m.remove("ownerReferences");
    } else {
        m.insert("ownerReferences".into(), Value::Array(keep));
    }
}

/// Sets or removes a top-level field.
pub fn set_field(obj: &mut Value, f: &str, v: Option<Value>) {
    if let Value::Object(m) = obj {
        match v {
            Some(v) => {
                m.insert(f.to_owned(), v);
            }
            None => {
                m.remove(f);
            }
        }
    }
}

/// The object without `metadata` (and without `status` when asked): what
/// a generation bump compares.
pub fn body_without(obj: &Value, drop_status: bool) -> Value {
    let mut v = obj.clone();
    if let Value::Object(m) = &mut v {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if drop_status {
            m.remove("status");
        }
    }
    v
}

/// The object with the volatile metadata a no-op check ignores removed.
pub fn comparable(obj: &Value) -> Value {
    let mut v = obj.clone();
    let m = meta_mut(&mut v);
    m.remove("managedFields");
    m.remove("resourceVersion");
    v
}
