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
                // The budget as the disruption controller counts it:
                // pods being deleted left out, and the expected count
                // from the pods' controllers' scale, so a pod deleted
                // and not yet recreated still counts as missing.
                let live: Vec<&Value> = matching
                    .iter()
                    .copied()
                    .filter(|p| !obj::is_deleting(p))
                    .collect();
                let mut controllers = std::collections::BTreeMap::new();
                for p in &live {
                    let Some(r) = p
                        .get("metadata")
                        .and_then(|m| m.get("ownerReferences"))
                        .and_then(Value::as_array)
                        .and_then(|rs| {
                            rs.iter().find(|r| {
                                r.get("controller").and_then(Value::as_bool) == Some(true)
                            })
                        })
                    else {
                        continue;
                    };
                    let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
                    let replicas = match r.get("kind").and_then(Value::as_str) {
                        Some("StatefulSet") => r
                            .get("name")
                            .and_then(Value::as_str)
                            .and_then(|n| {
                                inner.objects.get(&(
                                    "apps".to_owned(),
                                    "statefulsets".to_owned(),
                                    ns.to_owned(),
                                    n.to_owned(),
                                ))
                            })
                            .and_then(|s| s.get("spec")?.get("replicas")?.as_i64())
                            .unwrap_or(1),
                        _ => 1,
                    };
                    controllers.entry(uid.to_owned()).or_insert(replicas);
                }
                let healthy = i64::try_from(live.iter().filter(|p| ready(p)).count()).unwrap_or(0);
                let desired = crate::controllers::pdb::budget(
                    pdb.get("spec"),
                    i64::try_from(live.len()).unwrap_or(i64::MAX),
                    healthy,
                    controllers.values().sum::<i64>(),
                )
                .desired_healthy;
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
