//! A Deployment's status as the real controller computes it from its
//! ReplicaSets (`calculateStatus`, `syncRolloutStatus`): the replica counts,
//! and the `Available` and `Progressing` conditions, each rewritten only
//! when its status or reason changes, so a steady Deployment sees no
//! status writes.

use serde_json::{Value, json};

use super::deployment::{fenceposts, replicas, status_count};
use crate::obj;

fn condition(kind: &str, status: bool, reason: &str, message: String, now: &str) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" },
        "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// `SetDeploymentCondition`: the same status and reason change nothing;
/// the same status keeps its transition time.
fn set(conditions: &mut Vec<Value>, new: Value) {
    let kind = new.get("type").cloned();
    let pos = conditions
        .iter()
        .position(|c| c.get("type") == kind.as_ref());
    let Some(pos) = pos else {
        conditions.push(new);
        return;
    };
    let Some(current) = conditions.get_mut(pos) else {
        return;
    };
    let same_status = current.get("status") == new.get("status");
    if same_status && current.get("reason") == new.get("reason") {
        return;
    }
    let mut new = new;
    if same_status
        && let (Some(t), Some(m)) = (
            current.get("lastTransitionTime").cloned(),
            new.as_object_mut(),
        )
    {
        m.insert("lastTransitionTime".into(), t);
    }
    *current = new;
}

/// The status `d` should have given its new and old ReplicaSets.
pub fn compute(d: &Value, new: Option<&Value>, old: &[Value]) -> Value {
    let all: Vec<&Value> = old.iter().chain(new).collect();
    let sum = |f: &dyn Fn(&Value) -> i64| all.iter().map(|rs| f(rs)).sum::<i64>();
    let want = replicas(d);
    let available = sum(&|rs| status_count(rs, "availableReplicas"));
    let total = sum(&|rs| status_count(rs, "replicas"));
    let updated = new.map_or(0, |rs| status_count(rs, "replicas"));
    let generation = d
        .get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let mut status = obj::object_or_empty(d.get("status"));
    for (k, v) in [
        ("observedGeneration", generation),
        ("replicas", total),
        ("updatedReplicas", updated),
        (
            "readyReplicas",
            sum(&|rs| status_count(rs, "readyReplicas")),
        ),
        ("availableReplicas", available),
        ("unavailableReplicas", (sum(&replicas) - available).max(0)),
    ] {
        // omitempty, as upstream serializes the status.
        if v == 0 {
            status.remove(k);
        } else {
            status.insert(k.into(), json!(v));
        }
    }
    let rolling = d
        .get("spec")
        .and_then(|s| s.get("strategy"))
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        != Some("Recreate");
    let max_unavailable = if rolling && want > 0 {
        fenceposts(d).1
    } else {
        0
    };
    let now = crate::names::now();
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let minimum = available >= want - max_unavailable;
    set(
        &mut conditions,
        if minimum {
            condition(
                "Available",
                true,
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                &now,
            )
        } else {
            condition(
                "Available",
                false,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                &now,
            )
        },
    );
    if let Some(rs) = new {
        let name = obj::name(rs);
        let complete = updated == want && total == want && available == want;
        set(
            &mut conditions,
            if complete {
                condition(
                    "Progressing",
                    true,
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet {name:?} has successfully progressed."),
                    &now,
                )
            } else {
                condition(
                    "Progressing",
                    true,
                    "ReplicaSetUpdated",
                    format!("ReplicaSet {name:?} is progressing."),
                    &now,
                )
            },
        );
    }
    status.insert("conditions".into(), Value::Array(conditions));
    Value::Object(status)
}
