//! The pods `/eviction` subresource: a delete that a PodDisruptionBudget
//! can refuse (429), computed from the live pods since there is no
//! disruption controller keeping PDB status.

use serde_json::Value;

use super::Store;
use super::delete::DeleteOptions;
use super::write::WriteCtx;
use crate::error::{ApiError, Subject};
use crate::obj;
use crate::selector::LabelSelector;

fn ready(pod: &Value) -> bool {
    !obj::is_deleting(pod)
        && pod
            .get("status")
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
}

/// An int-or-percent scaled against `total` (percent rounded up).
fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => p.trim().parse::<i64>().ok().map(|p| (p * total + 99) / 100),
            None => s.trim().parse().ok(),
        },
        _ => None,
    }
}

impl Store {
    /// Evicts pod `name` unless a disruption budget forbids it.
    ///
    /// # Errors
    /// 404 for a missing pod; 429 when a budget forbids it.
    pub(crate) fn evict(
        &self,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
        ctx: &WriteCtx,
    ) -> Result<(), ApiError> {
        let cfg = &self.shared.config;
        let mut inner = self.shared.inner.lock();
        let pods = inner
            .resource("", "pods")
            .ok_or(ApiError::UnknownResource)?;
        let key = super::key(&pods, ns, name);
        let pod = inner
            .get(&key)
            .ok_or_else(|| ApiError::NotFound(Subject::new("", "pods", name)))?;
        let phase = pod
            .get("status")
            .and_then(|s| s.get("phase"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let exempt = obj::is_deleting(&pod) || matches!(phase, "Succeeded" | "Failed" | "Pending");
        if !exempt {
            let pdbs: Vec<Value> = inner
                .objects
                .iter()
                .filter(|(k, _)| k.0 == "policy" && k.1 == "poddisruptionbudgets" && k.2 == ns)
                .map(|(_, v)| (**v).clone())
                .filter(|p| {
                    LabelSelector::from_object(p.get("spec").and_then(|s| s.get("selector")))
                        .matches_object(&pod)
                })
                .collect();
            if pdbs.len() > 1 {
                return Err(ApiError::Internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
                ));
            }
            if let Some(pdb) = pdbs.first() {
                let sel =
                    LabelSelector::from_object(pdb.get("spec").and_then(|s| s.get("selector")));
                let matching: Vec<&Value> = inner
                    .objects
                    .iter()
                    .filter(|(k, _)| k.0.is_empty() && k.1 == "pods" && k.2 == ns)
                    .map(|(_, v)| v.as_ref())
                    .filter(|p| sel.matches_object(p))
                    .collect();
                let expected = i64::try_from(matching.len()).unwrap_or(i64::MAX);
                let healthy =
                    i64::try_from(matching.iter().filter(|p| ready(p)).count()).unwrap_or(0);
                let spec = pdb.get("spec");
                let desired = if let Some(min) = spec.and_then(|s| s.get("minAvailable")) {
                    scaled(min, expected).unwrap_or(0)
                } else if let Some(max) = spec.and_then(|s| s.get("maxUnavailable")) {
                    (expected - scaled(max, expected).unwrap_or(0)).max(0)
                } else {
                    0
                };
                let allowed = if ready(&pod) {
                    healthy > desired
                } else {
                    healthy >= desired
                };
                if !allowed {
                    return Err(ApiError::TooManyRequests {
                        message:
                            "Cannot evict pod as it would violate the pod's disruption budget."
                                .into(),
                        causes: vec![serde_json::json!({
                            "reason": "DisruptionBudget",
                            "message": format!("The disruption budget {} needs {desired} healthy pods and has {healthy} currently", obj::name(pdb)),
                        })],
                    });
                }
            }
        }
        inner.delete(cfg, ctx, &pods, ns, name, opts)?;
        drop(inner);
        self.shared.gc.notify_one();
        Ok(())
    }
}
