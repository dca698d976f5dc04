//! The Deployment controller, as kube-controller-manager's
//! `deployment_controller.go` rolls out: one ReplicaSet per pod template,
//! `<deployment>-<pod-template-hash>`, the hash added to its selector,
//! template and labels; `RollingUpdate` scales the new ReplicaSet up within
//! `maxSurge` and the old ones down within `maxUnavailable` (unhealthy old
//! pods first), `Recreate` scales the old ones to zero and waits for their
//! pods to go before the new one starts; a paused Deployment only reports.
//! Old ReplicaSets scaled to zero beyond `revisionHistoryLimit` are
//! deleted. The status and its `Available` / `Progressing` conditions are
//! in [`super::deploy_status`]; progress deadlines are not enforced and
//! hash collisions are not resolved.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::deploy_status;
use super::pods::{controlled_by, owner_ref, scaled};
use super::revision;
use super::{Reconciler, Result, store_err};
use crate::error::ApiError;
use crate::obj;
use crate::store::{DeleteOptions, Store, WriteCtx};

const CONTROLLER: &str = "deployment-controller";
/// The label (and selector term) naming a ReplicaSet's template.
pub const HASH_LABEL: &str = "pod-template-hash";
/// The revision annotation of Deployments and their ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// The Deployment controller.
pub struct DeploymentController;

impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        CONTROLLER
    }

    fn watches(&self) -> &'static [(&'static str, &'static str)] {
        &[("apps/v1", "deployments"), ("apps/v1", "replicasets")]
    }

    fn reconcile_all(&self, store: &Store) -> Result<Option<Duration>> {
        let all = store
            .list("apps/v1", "deployments", None, None)
            .map_err(store_err(CONTROLLER, "list deployments", "", ""))?;
        let mut first_err = None;
        for d in &all {
            if let Err(e) = reconcile(store, d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(None), Err)
    }
}

fn int(v: Option<&Value>, default: i64) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(default)
}

/// `spec.replicas` of a Deployment or ReplicaSet.
pub fn replicas(o: &Value) -> i64 {
    int(o.get("spec").and_then(|s| s.get("replicas")), 1).max(0)
}

/// A `status` count of a ReplicaSet.
pub fn status_count(o: &Value, field: &str) -> i64 {
    int(o.get("status").and_then(|s| s.get(field)), 0)
}

/// A ReplicaSet's revision annotation.
pub fn revision_of(o: &Value) -> i64 {
    o.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// `(maxSurge, maxUnavailable)` as pod counts (`ResolveFenceposts`).
pub fn fenceposts(d: &Value) -> (i64, i64) {
    let want = replicas(d);
    let ru = d
        .get("spec")
        .and_then(|s| s.get("strategy"))
        .and_then(|s| s.get("rollingUpdate"));
    let surge = ru
        .and_then(|r| r.get("maxSurge"))
        .and_then(|v| scaled(v, want, true))
        .unwrap_or(0);
    let unavailable = ru
        .and_then(|r| r.get("maxUnavailable"))
        .and_then(|v| scaled(v, want, false))
        .unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

/// The template a ReplicaSet of `d` runs: `d`'s, labeled with `hash`.
fn template_with_hash(d: &Value, hash: &str) -> Value {
    let mut t = d
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let meta = obj::meta_mut(&mut t);
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert(HASH_LABEL.into(), json!(hash));
    }
    t
}

/// The ReplicaSet of `d`'s current template, `replicas` strong.
fn build_replicaset(d: &Value, hash: &str, replicas: i64, revision: i64) -> Value {
    let template = template_with_hash(d, hash);
    let mut selector = d
        .get("spec")
        .and_then(|s| s.get("selector"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(s) = selector.as_object_mut() {
        let ml = s.entry("matchLabels").or_insert_with(|| json!({}));
        if let Some(m) = ml.as_object_mut() {
            m.insert(HASH_LABEL.into(), json!(hash));
        }
    }
    let mut spec = Map::new();
    spec.insert("replicas".into(), json!(replicas));
    spec.insert("selector".into(), selector);
    if let Some(m) = d.get("spec").and_then(|s| s.get("minReadySeconds")) {
        spec.insert("minReadySeconds".into(), m.clone());
    }
    spec.insert("template".into(), template.clone());
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{}-{hash}", obj::name(d)), "namespace": obj::namespace(d),
            "labels": template.get("metadata").and_then(|m| m.get("labels")).cloned().unwrap_or_else(|| json!({})),
            "annotations": {REVISION: revision.to_string()},
            "ownerReferences": [owner_ref(d, "apps/v1", "Deployment", true)]},
        "spec": spec})
}

/// One pass over one Deployment.
///
/// # Errors
/// The first failed store write.
pub fn reconcile(store: &Store, d: &Value) -> Result<()> {
    if obj::is_deleting(d) {
        return Ok(());
    }
    let ns = obj::namespace(d);
    let name = obj::name(d);
    let err = |action| store_err(CONTROLLER, action, ns, name);
    let mut owned: Vec<Value> = store
        .list_where("apps/v1", "replicasets", Some(ns), |rs| {
            controlled_by(rs, obj::uid(d))
        })
        .map_err(err("list replicasets"))?;
    owned.sort_by_key(revision_of);
    let template = d.get("spec").and_then(|s| s.get("template"));
    let hash = revision::hash(template.unwrap_or(&Value::Null), 0);
    let (new, old): (Vec<Value>, Vec<Value>) = owned
        .into_iter()
        .partition(|rs| super::pods::label(rs, HASH_LABEL) == Some(hash.as_str()));
    let mut new = new.into_iter().next();
    let max_old = old.iter().map(revision_of).max().unwrap_or(0);
    let paused = d
        .get("spec")
        .and_then(|s| s.get("paused"))
        .and_then(Value::as_bool)
        == Some(true);
    let rolling = d
        .get("spec")
        .and_then(|s| s.get("strategy"))
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        != Some("Recreate");
    let mut scaler = Scaler {
        store,
        ns,
        name,
        old,
    };
    if !paused {
        if rolling {
            new = scaler.rolling(d, new, &hash, max_old)?;
        } else {
            new = scaler.recreate(d, new, &hash, max_old)?;
        }
        scaler.clean_history(d)?;
    }
    let revision = new.as_ref().map_or(max_old, revision_of);
    if revision > 0 && revision_of(d) != revision {
        let mut body = d.clone();
        let meta = obj::meta_mut(&mut body);
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.insert(REVISION.into(), json!(revision.to_string()));
        }
        match store.update("apps/v1", "deployments", Some(ns), body, false, &ctx()) {
            // A write racing this one: the next pass sees it.
            Ok(_) | Err(ApiError::Conflict { .. }) => {}
            Err(e) => return Err(err("annotate deployment")(e)),
        }
        return Ok(());
    }
    let status = deploy_status::compute(d, new.as_ref(), &scaler.old);
    if d.get("status") != Some(&status) {
        let mut body = d.clone();
        obj::set_field(&mut body, "status", Some(status));
        match store.update("apps/v1", "deployments", Some(ns), body, true, &ctx()) {
            Ok(_) | Err(ApiError::Conflict { .. }) => {}
            Err(e) => return Err(err("update status")(e)),
        }
    }
    Ok(())
}

fn ctx() -> WriteCtx {
    WriteCtx::internal(CONTROLLER)
}

/// Scales one Deployment's ReplicaSets.
struct Scaler<'a> {
    store: &'a Store,
    ns: &'a str,
    name: &'a str,
    /// The old ReplicaSets, oldest revision first, as last written.
    old: Vec<Value>,
}

impl Scaler<'_> {
    /// Sets `rs`'s replicas (no write when already so); returns it as stored.
    fn scale(&self, rs: &Value, to: i64) -> Result<Value> {
        if replicas(rs) == to {
            return Ok(rs.clone());
        }
        let mut body = rs.clone();
        if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), json!(to));
        }
        self.store
            .update("apps/v1", "replicasets", Some(self.ns), body, false, &ctx())
            .map_err(store_err(
                CONTROLLER,
                "scale replicaset",
                self.ns,
                obj::name(rs),
            ))
    }

    /// The new ReplicaSet at `to` replicas: created, or scaled and made the
    /// newest revision when an old template came back.
    fn ensure_new(
        &self,
        d: &Value,
        new: Option<Value>,
        hash: &str,
        max_old: i64,
        to: i64,
    ) -> Result<Value> {
        let Some(rs) = new else {
            let body = build_replicaset(d, hash, to, max_old.saturating_add(1));
            return match self
                .store
                .create("apps/v1", "replicasets", Some(self.ns), body, &ctx())
            {
                Ok(v) => Ok(v),
                Err(e) => Err(store_err(
                    CONTROLLER,
                    "create replicaset",
                    self.ns,
                    self.name,
                )(e)),
            };
        };
        if revision_of(&rs) <= max_old {
            let mut body = rs.clone();
            let meta = obj::meta_mut(&mut body);
            let ann = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = ann.as_object_mut() {
                a.insert(
                    REVISION.into(),
                    json!(max_old.saturating_add(1).to_string()),
                );
            }
            if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(to));
            }
            return self
                .store
                .update("apps/v1", "replicasets", Some(self.ns), body, false, &ctx())
                .map_err(store_err(
                    CONTROLLER,
                    "update replicaset",
                    self.ns,
                    obj::name(&rs),
                ));
        }
        self.scale(&rs, to)
    }

    /// `rolloutRolling`: the new ReplicaSet up within the surge, the old
    /// ones down within the unavailability budget.
    fn rolling(
        &mut self,
        d: &Value,
        new: Option<Value>,
        hash: &str,
        max_old: i64,
    ) -> Result<Option<Value>> {
        let want = replicas(d);
        let (surge, unavailable) = fenceposts(d);
        let old_total: i64 = self.old.iter().map(replicas).sum();
        let new_now = new.as_ref().map_or(0, replicas);
        // NewRSNewReplicas.
        let new_want = if new_now >= want {
            want
        } else {
            let room = want
                .saturating_add(surge)
                .saturating_sub(old_total.saturating_add(new_now));
            new_now.saturating_add(room.clamp(0, want - new_now))
        };
        let new = self.ensure_new(d, new, hash, max_old, new_want)?;
        // reconcileOldReplicaSets.
        let all: i64 = self.old.iter().map(replicas).sum::<i64>() + replicas(&new);
        let min_available = want.saturating_sub(unavailable);
        let new_unavailable = replicas(&new) - status_count(&new, "availableReplicas");
        let mut budget = all - min_available - new_unavailable;
        // Unhealthy old pods go first: they count against availability anyway.
        for i in 0..self.old.len() {
            let Some(rs) = self.old.get(i) else { break };
            if budget <= 0 {
                break;
            }
            let unhealthy = (replicas(rs) - status_count(rs, "availableReplicas")).max(0);
            let cut = unhealthy.min(budget);
            if cut > 0 {
                let scaled = self.scale(rs, replicas(rs) - cut)?;
                budget -= cut;
                if let Some(slot) = self.old.get_mut(i) {
                    *slot = scaled;
                }
            }
        }
        let available: i64 = self
            .old
            .iter()
            .chain(std::iter::once(&new))
            .map(|rs| status_count(rs, "availableReplicas"))
            .sum();
        let mut budget = available - min_available;
        for i in 0..self.old.len() {
            let Some(rs) = self.old.get(i) else { break };
            if budget <= 0 {
                break;
            }
            let cut = replicas(rs).min(budget);
            if cut > 0 {
                let scaled = self.scale(rs, replicas(rs) - cut)?;
                budget -= cut;
                if let Some(slot) = self.old.get_mut(i) {
                    *slot = scaled;
                }
            }
        }
        Ok(Some(new))
    }

    /// `rolloutRecreate`: old ReplicaSets to zero, and the new one only once
    /// their pods are gone.
    fn recreate(
        &mut self,
        d: &Value,
        new: Option<Value>,
        hash: &str,
        max_old: i64,
    ) -> Result<Option<Value>> {
        for i in 0..self.old.len() {
            let Some(rs) = self.old.get(i) else { break };
            let scaled = self.scale(rs, 0)?;
            if let Some(slot) = self.old.get_mut(i) {
                *slot = scaled;
            }
        }
        let old_pods: i64 = self.old.iter().map(|rs| status_count(rs, "replicas")).sum();
        if old_pods > 0 {
            return Ok(new);
        }
        self.ensure_new(d, new, hash, max_old, replicas(d))
            .map(Some)
    }

    /// Deletes old ReplicaSets scaled to zero beyond `revisionHistoryLimit`.
    fn clean_history(&mut self, d: &Value) -> Result<()> {
        let limit = int(
            d.get("spec").and_then(|s| s.get("revisionHistoryLimit")),
            10,
        )
        .max(0);
        let idle: Vec<&Value> = self
            .old
            .iter()
            .filter(|rs| replicas(rs) == 0 && status_count(rs, "replicas") == 0)
            .collect();
        let excess = usize::try_from(i64::try_from(idle.len()).unwrap_or(0) - limit).unwrap_or(0);
        let doomed: Vec<String> = idle
            .iter()
            .take(excess)
            .map(|rs| obj::name(rs).to_owned())
            .collect();
        for rs in &doomed {
            match self.store.delete(
                "apps/v1",
                "replicasets",
                Some(self.ns),
                rs,
                &DeleteOptions::default(),
            ) {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(store_err(CONTROLLER, "delete replicaset", self.ns, rs)(e)),
            }
        }
        self.old
            .retain(|rs| !doomed.iter().any(|n| n == obj::name(rs)));
        Ok(())
    }
}
