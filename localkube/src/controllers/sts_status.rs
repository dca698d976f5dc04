//! A StatefulSet's status as the real controller computes it from its
//! pods, and when the next pass is due for `availableReplicas`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::pods::{self, available_in};
use super::revision::Revisions;
use super::sts_pods::REVISION_LABEL;
use crate::obj;

/// The status `sts` should have given its `pods`, and how long until a
/// ready pod becomes available (`minReadySeconds`).
pub fn compute(
    sts: &Value,
    owned: &[Value],
    revs: &Revisions,
    now: DateTime<Utc>,
) -> (Value, Option<std::time::Duration>) {
    let spec = sts.get("spec");
    let min_ready = spec
        .and_then(|s| s.get("minReadySeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let rolling = spec
        .and_then(|s| s.get("updateStrategy"))
        .and_then(|u| u.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let current_name = obj::name(&revs.current);
    let update_name = obj::name(&revs.update);
    let (mut replicas, mut ready, mut available, mut current, mut updated) =
        (0i64, 0i64, 0i64, 0i64, 0i64);
    let mut due: Option<chrono::Duration> = None;
    for p in owned {
        replicas += 1;
        // Upstream counts terminating pods as ready while they still are.
        if pods::phase(p) == "Running" && pods::is_ready(p) {
            ready += 1;
        }
        match available_in(p, min_ready, now) {
            Some(d) if d <= chrono::Duration::zero() => available += 1,
            Some(d) => due = Some(due.map_or(d, |x| x.min(d))),
            None => {}
        }
        if !obj::is_deleting(p) {
            let rev = pods::label(p, REVISION_LABEL).unwrap_or("");
            if rev == current_name {
                current += 1;
            }
            if rev == update_name {
                updated += 1;
            }
        }
    }
    let mut current_revision = current_name.to_owned();
    // completeRollingUpdate: every pod updated and ready ends the rollout.
    if rolling && updated == replicas && ready == replicas {
        current = updated;
        current_revision = update_name.to_owned();
    }
    let mut status = obj::object_or_empty(sts.get("status"));
    let generation = obj::meta_str(sts, "generation")
        .and_then(|g| g.parse::<i64>().ok())
        .or_else(|| {
            sts.get("metadata")
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
        })
        .unwrap_or(1);
    for (k, v) in [
        ("observedGeneration", json!(generation)),
        ("replicas", json!(replicas)),
        ("readyReplicas", json!(ready)),
        ("currentReplicas", json!(current)),
        ("updatedReplicas", json!(updated)),
        ("availableReplicas", json!(available)),
        ("currentRevision", json!(current_revision)),
        ("updateRevision", json!(update_name)),
        ("collisionCount", json!(revs.collision_count)),
    ] {
        status.insert(k.into(), v);
    }
    // A small margin: the pod must have been ready a full minReadySeconds.
    let requeue = due
        .and_then(|d| d.to_std().ok())
        .map(|d| d + std::time::Duration::from_millis(20));
    (Value::Object(status), requeue)
}
