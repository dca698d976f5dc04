//! The ReplicaSet controller, as kube-controller-manager's
//! `replica_set.go`: keeps `spec.replicas` active pods (not terminating,
//! not finished) stamped from the template with `<rs>-<random>` names and a
//! controller reference, deletes the surplus least-established first
//! (unscheduled, then pending, then not ready, then the youngest), and
//! reports replicas, fully labeled, ready and available pods. It only
//! counts pods it controls: it adopts and releases nothing.

use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, available_in, controlled_by, owner_ref};
use super::{Reconciler, Result, store_err};
use crate::error::ApiError;
use crate::obj;
use crate::selector::LabelSelector;
use crate::store::{DeleteOptions, Store, WriteCtx};

const CONTROLLER: &str = "replicaset-controller";

/// The ReplicaSet controller.
pub struct ReplicaSetController;

impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        CONTROLLER
    }

    fn watches(&self) -> &'static [(&'static str, &'static str)] {
        &[("apps/v1", "replicasets"), ("v1", "pods")]
    }

    fn reconcile_all(&self, store: &Store) -> Result<Option<Duration>> {
        let sets = store
            .list("apps/v1", "replicasets", None, None)
            .map_err(store_err(CONTROLLER, "list replicasets", "", ""))?;
        let mut first_err = None;
        let mut next: Option<Duration> = None;
        for rs in &sets {
            match reconcile(store, rs) {
                Ok(Some(d)) => next = Some(next.map_or(d, |n| n.min(d))),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(next), Err)
    }
}

fn is_active(p: &Value) -> bool {
    !obj::is_deleting(p) && !matches!(pods::phase(p), "Succeeded" | "Failed")
}

/// The pod a ReplicaSet stamps out (named by `generateName`).
pub fn build_pod(rs: &Value) -> Value {
    let template = rs
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut meta = obj::object_or_empty(template.get("metadata"));
    meta.remove("name");
    meta.insert("generateName".into(), json!(format!("{}-", obj::name(rs))));
    meta.insert("namespace".into(), json!(obj::namespace(rs)));
    meta.insert(
        "ownerReferences".into(),
        json!([owner_ref(rs, "apps/v1", "ReplicaSet", true)]),
    );
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

/// Deletion order (`ActivePods` sort): unscheduled, pending, not ready,
/// then the most recently created first.
fn deletion_rank(p: &Value) -> (u8, u8, u8, std::cmp::Reverse<String>) {
    let scheduled = p
        .get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = match pods::phase(p) {
        "Pending" => 0,
        "Running" => 2,
        _ => 1,
    };
    let created = obj::meta_str(p, "creationTimestamp")
        .unwrap_or("")
        .to_owned();
    (
        u8::from(scheduled),
        phase,
        u8::from(pods::is_ready(p)),
        std::cmp::Reverse(created),
    )
}

/// One pass over one ReplicaSet.
///
/// # Errors
/// The first failed store write.
pub fn reconcile(store: &Store, rs: &Value) -> Result<Option<Duration>> {
    let ns = obj::namespace(rs);
    let name = obj::name(rs);
    let err = |action| store_err(CONTROLLER, action, ns, name);
    let owned: Vec<Value> = store
        .list_where("v1", "pods", Some(ns), |p| controlled_by(p, obj::uid(rs)))
        .map_err(err("list pods"))?;
    let mut active: Vec<&Value> = owned.iter().filter(|p| is_active(p)).collect();
    if !obj::is_deleting(rs) {
        let want = rs
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0);
        let have = i64::try_from(active.len()).unwrap_or(i64::MAX);
        let ctx = WriteCtx::internal(CONTROLLER);
        for _ in have..want {
            store
                .create("v1", "pods", Some(ns), build_pod(rs), &ctx)
                .map_err(err("create pod"))?;
        }
        if have > want {
            active.sort_by_key(|p| deletion_rank(p));
            let surplus = usize::try_from(have - want).unwrap_or(0);
            for p in active.iter().take(surplus) {
                let opts = DeleteOptions {
                    uid: Some(obj::uid(p).to_owned()),
                    ..DeleteOptions::default()
                };
                match store.delete("v1", "pods", Some(ns), obj::name(p), &opts) {
                    Ok(_) | Err(ApiError::NotFound(_) | ApiError::Conflict { .. }) => {}
                    Err(e) => return Err(err("delete pod")(e)),
                }
            }
        }
    }
    let (status, requeue) = status(rs, &active, chrono::Utc::now());
    if rs.get("status") != Some(&status) {
        let mut body = rs.clone();
        obj::set_field(&mut body, "status", Some(status));
        store
            .update(
                "apps/v1",
                "replicasets",
                Some(ns),
                body,
                true,
                &WriteCtx::internal(CONTROLLER),
            )
            .map_err(err("update status"))?;
    }
    Ok(requeue)
}

/// The status of `rs` given its active pods (as observed before this
/// pass's changes, as upstream reports), and when a ready pod next becomes
/// available.
fn status(
    rs: &Value,
    active: &[&Value],
    now: chrono::DateTime<chrono::Utc>,
) -> (Value, Option<Duration>) {
    let spec = rs.get("spec");
    let min_ready = spec
        .and_then(|s| s.get("minReadySeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let template_labels = LabelSelector::from_object(Some(&json!({
        "matchLabels": spec.and_then(|s| s.get("template")).and_then(|t| t.get("metadata")).and_then(|m| m.get("labels")).cloned().unwrap_or_else(|| json!({}))
    })));
    let (mut labeled, mut ready, mut available) = (0i64, 0i64, 0i64);
    let mut due: Option<chrono::Duration> = None;
    for p in active {
        if template_labels.matches_object(p) {
            labeled += 1;
        }
        if pods::phase(p) == "Running" && pods::is_ready(p) {
            ready += 1;
        }
        match available_in(p, min_ready, now) {
            Some(d) if d <= chrono::Duration::zero() => available += 1,
            Some(d) => due = Some(due.map_or(d, |x| x.min(d))),
            None => {}
        }
    }
    let mut status = obj::object_or_empty(rs.get("status"));
    let generation = rs
        .get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    for (k, v) in [
        ("replicas", i64::try_from(active.len()).unwrap_or(i64::MAX)),
        ("fullyLabeledReplicas", labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("observedGeneration", generation),
    ] {
        // Upstream omits zero counts (omitempty), except replicas.
        if v == 0 && k != "replicas" {
            status.remove(k);
        } else {
            status.insert(k.into(), json!(v));
        }
    }
    let requeue = due.and_then(|d| d.to_std().ok());
    (Value::Object(status), requeue)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn pods_are_stamped_from_the_template_and_owned() {
        let rs = json!({"metadata": {"name": "web-abc", "namespace": "d", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}});
        let p = build_pod(&rs);
        assert_eq!(p["metadata"]["generateName"], "web-abc-");
        assert_eq!(p["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["spec"]["containers"][0]["name"], "c");
    }

    #[test]
    fn the_least_established_pods_go_first() {
        let pod = |node: &str, phase: &str, ready: bool, created: &str| {
            json!({"metadata": {"creationTimestamp": created}, "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
        };
        let mut ps = [
            pod("n", "Running", true, "2024-01-01T00:00:00Z"),
            pod("n", "Running", true, "2024-01-02T00:00:00Z"),
            pod("n", "Running", false, "2024-01-01T00:00:00Z"),
            pod("", "Pending", false, "2024-01-01T00:00:00Z"),
            pod("n", "Pending", false, "2024-01-01T00:00:00Z"),
        ];
        ps.sort_by_key(deletion_rank);
        assert_eq!(ps[0]["spec"]["nodeName"], "");
        assert_eq!(ps[1]["status"]["phase"], "Pending");
        assert_eq!(ps[2]["status"]["conditions"][0]["status"], "False");
        assert_eq!(
            ps[3]["metadata"]["creationTimestamp"],
            "2024-01-02T00:00:00Z"
        );
    }
}
