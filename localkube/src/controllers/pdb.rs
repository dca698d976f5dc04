//! The disruption controller's PodDisruptionBudget status: expectedPods,
//! currentHealthy, desiredHealthy, disruptionsAllowed, observedGeneration
//! and the `DisruptionAllowed` condition, computed as upstream's
//! `disruption` controller does. Eviction itself is decided by the store
//! from the live pods; this only keeps the status readers see.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, controller_ref, scaled};
use super::{Reconciler, Result, store_err};
use crate::obj;
use crate::selector::LabelSelector;
use crate::store::{Store, WriteCtx};

const CONTROLLER: &str = "disruption-controller";

/// The PodDisruptionBudget status controller.
pub struct DisruptionController;

impl Reconciler for DisruptionController {
    fn name(&self) -> &'static str {
        CONTROLLER
    }

    fn watches(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("policy/v1", "poddisruptionbudgets"),
            ("v1", "pods"),
            ("apps/v1", "statefulsets"),
        ]
    }

    fn reconcile_all(&self, store: &Store) -> Result<Option<Duration>> {
        let err = |a| store_err(CONTROLLER, a, "", "");
        let pdbs = store
            .list("policy/v1", "poddisruptionbudgets", None, None)
            .map_err(err("list poddisruptionbudgets"))?;
        let mut first = None;
        for pdb in &pdbs {
            if let Err(e) = reconcile(store, pdb) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(None), Err)
    }
}

/// The numbers of a budget's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `expectedPods`.
    pub expected: i64,
    /// `currentHealthy`.
    pub current_healthy: i64,
    /// `desiredHealthy`.
    pub desired_healthy: i64,
    /// `disruptionsAllowed`.
    pub allowed: i64,
}

/// The budget of `spec` given the matching pods' count, how many are
/// healthy, and the controllers' desired scale (`scale`: the sum of the
/// replicas of the pods' controllers).
pub fn budget(spec: Option<&Value>, pod_count: i64, healthy: i64, scale: i64) -> Budget {
    let max_unavailable = spec.and_then(|s| s.get("maxUnavailable"));
    let min_available = spec.and_then(|s| s.get("minAvailable"));
    let (expected, desired) = match (max_unavailable, min_available) {
        (Some(mu), _) => {
            let unavailable = scaled(mu, scale, true).unwrap_or(0);
            (scale, scale.saturating_sub(unavailable).max(0))
        }
        // An integer minAvailable needs no controller: the pods are counted.
        (None, Some(Value::Number(n))) => (pod_count, n.as_i64().unwrap_or(0)),
        (None, Some(ma)) => (scale, scaled(ma, scale, true).unwrap_or(0)),
        (None, None) => (pod_count, 0),
    };
    let allowed = if expected <= 0 {
        0
    } else {
        healthy.saturating_sub(desired).max(0)
    };
    Budget {
        expected,
        current_healthy: healthy,
        desired_healthy: desired,
        allowed,
    }
}

fn reconcile(store: &Store, pdb: &Value) -> Result<()> {
    let ns = obj::namespace(pdb);
    let name = obj::name(pdb);
    let err = |a| store_err(CONTROLLER, a, ns, name);
    let spec = pdb.get("spec");
    let sel = LabelSelector::from_object(spec.and_then(|s| s.get("selector")));
    let matching: Vec<Value> = store
        .list_where("v1", "pods", Some(ns), |p| {
            sel.matches_object(p) && !obj::is_deleting(p)
        })
        .map_err(err("list pods"))?;
    let healthy = matching.iter().filter(|p| pods::is_ready(p)).count();
    // Each controller counted once, at its desired replicas.
    let mut controllers: BTreeMap<String, i64> = BTreeMap::new();
    for p in &matching {
        let Some(r) = controller_ref(p) else { continue };
        let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
        if controllers.contains_key(uid) {
            continue;
        }
        let replicas = match r.get("kind").and_then(Value::as_str) {
            Some("StatefulSet") => r
                .get("name")
                .and_then(Value::as_str)
                .and_then(|n| store.get("apps/v1", "statefulsets", Some(ns), n).ok())
                .and_then(|s| s.get("spec")?.get("replicas")?.as_i64())
                .unwrap_or(1),
            _ => 1,
        };
        controllers.insert(uid.to_owned(), replicas);
    }
    let scale = controllers.values().sum::<i64>();
    let pod_count = i64::try_from(matching.len()).unwrap_or(i64::MAX);
    let b = budget(
        spec,
        pod_count,
        i64::try_from(healthy).unwrap_or(i64::MAX),
        scale,
    );
    let generation = pdb
        .get("metadata")
        .and_then(|m| m.get("generation"))
        .cloned()
        .unwrap_or_else(|| json!(1));
    let mut status = obj::object_or_empty(pdb.get("status"));
    let cond_status = if b.allowed > 0 { "True" } else { "False" };
    let reason = if b.allowed > 0 {
        "SufficientPods"
    } else {
        "InsufficientPods"
    };
    let old_cond = status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"))
        })
        .cloned();
    // The transition time moves only when the condition flips.
    let since = old_cond
        .as_ref()
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(cond_status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(crate::names::now()));
    let condition = json!({"type": "DisruptionAllowed", "status": cond_status, "reason": reason,
        "message": "", "observedGeneration": generation, "lastTransitionTime": since});
    for (k, v) in [
        ("observedGeneration", generation.clone()),
        ("expectedPods", json!(b.expected)),
        ("currentHealthy", json!(b.current_healthy)),
        ("desiredHealthy", json!(b.desired_healthy)),
        ("disruptionsAllowed", json!(b.allowed)),
        ("conditions", json!([condition])),
    ] {
        status.insert(k.into(), v);
    }
    let status = Value::Object(status);
    if pdb.get("status") == Some(&status) {
        return Ok(());
    }
    let mut body = pdb.clone();
    obj::set_field(&mut body, "status", Some(status));
    store
        .update(
            "policy/v1",
            "poddisruptionbudgets",
            Some(ns),
            body,
            true,
            &WriteCtx::internal(CONTROLLER),
        )
        .map_err(err("update status"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_round_as_upstream() {
        let b = budget(Some(&json!({"minAvailable": 2})), 3, 3, 3);
        assert_eq!((b.expected, b.desired_healthy, b.allowed), (3, 2, 1));
        let b = budget(Some(&json!({"minAvailable": "50%"})), 3, 3, 3);
        assert_eq!((b.desired_healthy, b.allowed), (2, 1));
        let b = budget(Some(&json!({"maxUnavailable": "50%"})), 3, 2, 3);
        assert_eq!((b.desired_healthy, b.allowed), (1, 1));
        let b = budget(Some(&json!({"maxUnavailable": 1})), 0, 0, 0);
        assert_eq!(b.allowed, 0);
    }
}
