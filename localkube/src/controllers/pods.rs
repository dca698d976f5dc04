//! What the controllers read off pods and owner references, worded as
//! kube-controller-manager's `podutil` helpers: running, ready, available,
//! controlled by, int-or-percent scaling.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::obj;

/// `status.phase`.
pub fn phase(pod: &Value) -> &str {
    pod.get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The pod's `Ready` condition, when present.
fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
}

/// Whether the `Ready` condition is `True` (terminating or not).
pub fn is_ready(pod: &Value) -> bool {
    ready_condition(pod)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// Running, Ready and not terminating: what OrderedReady waits for.
pub fn is_running_and_ready(pod: &Value) -> bool {
    phase(pod) == "Running" && is_ready(pod) && !obj::is_deleting(pod)
}

/// How long until a running-and-ready pod counts as available after
/// `min_ready` seconds: `Some(0)` when it already does, None when it is
/// not ready at all.
pub fn available_in(pod: &Value, min_ready: i64, now: DateTime<Utc>) -> Option<chrono::Duration> {
    if !is_running_and_ready(pod) {
        return None;
    }
    if min_ready <= 0 {
        return Some(chrono::Duration::zero());
    }
    let since = ready_condition(pod)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Without a transition time the pod cannot be shown to have been
    // ready long enough; upstream treats it as available only then too.
    let Some(since) = since else {
        return Some(chrono::Duration::zero());
    };
    let due = since + chrono::Duration::seconds(min_ready);
    Some((due - now).max(chrono::Duration::zero()))
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(o: &Value) -> Option<&Value> {
    o.get("metadata")?
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// Whether `o` is controlled by the object of uid `uid`.
pub fn controlled_by(o: &Value, uid: &str) -> bool {
    controller_ref(o)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        == Some(uid)
}

/// An owner reference to `owner` (`apiVersion`/`kind` given, since stored
/// objects keep the version they were written in).
pub fn owner_ref(owner: &Value, api_version: &str, kind: &str, controller: bool) -> Value {
    let mut r = json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": obj::name(owner),
        "uid": obj::uid(owner),
        "blockOwnerDeletion": true,
    });
    if controller && let Some(m) = r.as_object_mut() {
        m.insert("controller".into(), json!(true));
    }
    r
}

/// An int-or-string scaled against `total`, rounding up or down as the
/// caller's upstream counterpart does (`GetScaledValueFromIntOrPercent`).
pub fn scaled(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let p: i64 = s.strip_suffix('%')?.trim().parse().ok()?;
            let product = p.checked_mul(total)?;
            Some(if round_up {
                product.saturating_add(99).div_euclid(100)
            } else {
                product.div_euclid(100)
            })
        }
        _ => None,
    }
}

/// A `metadata.labels` value.
pub fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.get("metadata")?.get("labels")?.get(key)?.as_str()
}

/// `status.podIP` when set.
pub fn pod_ip(pod: &Value) -> Option<&str> {
    pod.get("status")?
        .get("podIP")?
        .as_str()
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn percentages_round_as_asked() {
        assert_eq!(scaled(&json!("50%"), 3, true), Some(2));
        assert_eq!(scaled(&json!("50%"), 3, false), Some(1));
        assert_eq!(scaled(&json!(2), 3, true), Some(2));
        assert_eq!(scaled(&json!("x"), 3, true), None);
    }

    #[test]
    fn ready_needs_running_and_not_deleting() {
        let mut p = json!({"metadata": {}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(is_running_and_ready(&p));
        p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert!(!is_running_and_ready(&p));
    }
}
