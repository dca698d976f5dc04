//! The StatefulSet controller: pods `<sts>-<ordinal>` created, replaced,
//! scaled and updated as kube-controller-manager's `stateful_set_control`
//! does — `OrderedReady` (one at a time, each waiting for its
//! predecessors to be Running and Ready; scale down highest first, waiting
//! for each termination) or `Parallel`; `RollingUpdate` from the highest
//! ordinal down to `partition`, one pod at a time, or `OnDelete`; PVCs
//! from `volumeClaimTemplates` created before their pod and owned per the
//! retention policy. It never deletes PVCs itself: the garbage collector
//! does, through the owner references the policy sets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, controlled_by, owner_ref};
use super::revision::{self, Revisions};
use super::sts_pods::{self as build, REVISION_LABEL};
use super::{Reconciler, Result, store_err, sts_status};
use crate::error::ApiError;
use crate::obj;
use crate::store::{DeleteOptions, Store, WriteCtx};

const CONTROLLER: &str = "statefulset-controller";

/// The StatefulSet controller.
pub struct StatefulSetController;

impl Reconciler for StatefulSetController {
    fn name(&self) -> &'static str {
        CONTROLLER
    }

    fn watches(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("apps/v1", "statefulsets"),
            ("v1", "pods"),
            ("apps/v1", "controllerrevisions"),
            ("v1", "persistentvolumeclaims"),
        ]
    }

    fn reconcile_all(&self, store: &Store) -> Result<Option<Duration>> {
        let sets = store
            .list("apps/v1", "statefulsets", None, None)
            .map_err(store_err(CONTROLLER, "list statefulsets", "", ""))?;
        let mut first_err = None;
        let mut next: Option<Duration> = None;
        for sts in &sets {
            match reconcile(store, sts) {
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

/// The parts of a StatefulSet's spec a pass decides with.
struct Plan<'a> {
    sts: &'a Value,
    revs: &'a Revisions,
    start: i64,
    replicas: i64,
    ordered: bool,
    rolling: bool,
    /// Ordinals below this keep the current revision (RollingUpdate).
    keep_current_below: i64,
}

fn int(v: Option<&Value>, default: i64) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(default)
}

/// One pass over one StatefulSet.
///
/// # Errors
/// The first failed store write.
pub fn reconcile(store: &Store, sts: &Value) -> Result<Option<Duration>> {
    if obj::is_deleting(sts) {
        return Ok(None);
    }
    let ns = obj::namespace(sts);
    let name = obj::name(sts);
    let owned: Vec<Value> = store
        .list_where("v1", "pods", Some(ns), |p| controlled_by(p, obj::uid(sts)))
        .map_err(store_err(CONTROLLER, "list pods", ns, name))?;
    let live: BTreeSet<String> = owned
        .iter()
        .filter_map(|p| pods::label(p, REVISION_LABEL).map(str::to_owned))
        .collect();
    let revs = revision::sync(store, sts, &live)?;
    let spec = sts.get("spec");
    let strategy = spec.and_then(|s| s.get("updateStrategy"));
    let rolling = strategy
        .and_then(|u| u.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let start = int(
        spec.and_then(|s| s.get("ordinals"))
            .and_then(|o| o.get("start")),
        0,
    );
    let keep = match strategy.and_then(|u| u.get("rollingUpdate")) {
        Some(ru) => int(ru.get("partition"), 0),
        // Upstream: without rollingUpdate, the pods counted current stay so.
        None => int(sts.get("status").and_then(|s| s.get("currentReplicas")), 0),
    };
    let plan = Plan {
        sts,
        revs: &revs,
        start,
        replicas: int(spec.and_then(|s| s.get("replicas")), 1).max(0),
        ordered: spec
            .and_then(|s| s.get("podManagementPolicy"))
            .and_then(Value::as_str)
            != Some("Parallel"),
        rolling,
        keep_current_below: start.saturating_add(keep),
    };
    let by_ordinal: BTreeMap<i64, &Value> = owned
        .iter()
        .filter_map(|p| build::ordinal_of(name, obj::name(p)).map(|o| (o, p)))
        .collect();
    // Only this set's claims (`<template>-<set>-<ordinal>`) are copied.
    let templates = build::claim_templates(sts);
    let claims: BTreeMap<String, Value> = if templates.is_empty() {
        BTreeMap::new()
    } else {
        let prefixes: Vec<String> = templates
            .iter()
            .map(|t| format!("{}-{name}-", obj::name(t)))
            .collect();
        store
            .list_where("v1", "persistentvolumeclaims", Some(ns), |c| {
                let claim = obj::name(c);
                prefixes.iter().any(|p| claim.starts_with(p.as_str()))
            })
            .map_err(store_err(
                CONTROLLER,
                "list persistentvolumeclaims",
                ns,
                name,
            ))?
            .into_iter()
            .map(|c| (obj::name(&c).to_owned(), c))
            .collect()
    };
    act(store, &plan, &by_ordinal, &claims)?;
    let (status, requeue) = sts_status::compute(sts, &owned, &revs, chrono::Utc::now());
    if sts.get("status") != Some(&status) {
        let mut body = sts.clone();
        obj::set_field(&mut body, "status", Some(status));
        store
            .update(
                "apps/v1",
                "statefulsets",
                Some(ns),
                body,
                true,
                &WriteCtx::internal(CONTROLLER),
            )
            .map_err(store_err(CONTROLLER, "update status", ns, name))?;
    }
    Ok(requeue)
}

impl Plan<'_> {
    fn is_target(&self, ordinal: i64) -> bool {
        ordinal >= self.start && ordinal < self.start.saturating_add(self.replicas)
    }

    /// The revision a new pod of `ordinal` is built from.
    fn revision_for(&self, ordinal: i64) -> &Value {
        if self.rolling && ordinal < self.keep_current_below {
            &self.revs.current
        } else {
            &self.revs.update
        }
    }
}

/// Creates, deletes and replaces pods; returns early where the policy
/// says to wait for the cluster to catch up.
fn act(
    store: &Store,
    plan: &Plan<'_>,
    by_ordinal: &BTreeMap<i64, &Value>,
    claims: &BTreeMap<String, Value>,
) -> Result<()> {
    let sts = plan.sts;
    let ns = obj::namespace(sts);
    // Claims of every pod, condemned ones included, get the owners the
    // retention policy asks for before any pod goes.
    for ordinal in by_ordinal.keys() {
        sync_claims(store, plan, *ordinal, claims, false)?;
    }
    let end = plan.start.saturating_add(plan.replicas);
    for ordinal in plan.start..end {
        match by_ordinal.get(&ordinal) {
            None => {
                sync_claims(store, plan, ordinal, claims, true)?;
                let pod = build::build_pod(sts, plan.revision_for(ordinal), ordinal);
                match store.create("v1", "pods", Some(ns), pod, &WriteCtx::internal(CONTROLLER)) {
                    Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                    Err(e) => {
                        return Err(store_err(CONTROLLER, "create pod", ns, obj::name(sts))(e));
                    }
                }
                if plan.ordered {
                    return Ok(());
                }
            }
            Some(p) if obj::is_deleting(p) => {
                if plan.ordered {
                    return Ok(());
                }
            }
            Some(p) if matches!(pods::phase(p), "Failed" | "Succeeded") => {
                // A finished pod is replaced: deleted now, recreated next pass.
                delete_pod(store, p)?;
                if plan.ordered {
                    return Ok(());
                }
            }
            Some(p) => {
                sync_claims(store, plan, ordinal, claims, true)?;
                if plan.ordered && !pods::is_running_and_ready(p) {
                    return Ok(());
                }
            }
        }
    }
    let condemned: Vec<&Value> = by_ordinal
        .iter()
        .rev()
        .filter(|(o, _)| !plan.is_target(**o))
        .map(|(_, p)| *p)
        .collect();
    for p in condemned {
        if obj::is_deleting(p) {
            if plan.ordered {
                return Ok(());
            }
            continue;
        }
        delete_pod(store, p)?;
        if plan.ordered {
            return Ok(());
        }
    }
    if !plan.rolling {
        return Ok(());
    }
    let update = obj::name(&plan.revs.update);
    let floor = plan.keep_current_below.max(plan.start);
    for ordinal in (floor..end).rev() {
        let Some(p) = by_ordinal.get(&ordinal) else {
            return Ok(());
        };
        if pods::label(p, REVISION_LABEL) != Some(update) && !obj::is_deleting(p) {
            delete_pod(store, p)?;
            return Ok(());
        }
        if !pods::is_running_and_ready(p) {
            return Ok(());
        }
    }
    Ok(())
}

fn delete_pod(store: &Store, p: &Value) -> Result<()> {
    let ns = obj::namespace(p);
    let opts = DeleteOptions {
        uid: Some(obj::uid(p).to_owned()),
        ..DeleteOptions::default()
    };
    match store.delete("v1", "pods", Some(ns), obj::name(p), &opts) {
        Ok(_) | Err(ApiError::NotFound(_) | ApiError::Conflict { .. }) => Ok(()),
        Err(e) => Err(store_err(CONTROLLER, "delete pod", ns, obj::name(p))(e)),
    }
}

/// The owner references a claim of `ordinal` should carry besides others'
/// (upstream `updateClaimOwnerRefForSetAndPod`): the set when
/// `whenDeleted: Delete`, the pod when `whenScaled: Delete` and the
/// ordinal is being scaled away.
fn claim_owners(store: &Store, plan: &Plan<'_>, ordinal: i64) -> Vec<Value> {
    let sts = plan.sts;
    let mut owners = Vec::new();
    if build::retention_deletes(sts, "whenDeleted") {
        owners.push(owner_ref(sts, "apps/v1", "StatefulSet", false));
    }
    if !plan.is_target(ordinal) && build::retention_deletes(sts, "whenScaled") {
        let pod_name = format!("{}-{ordinal}", obj::name(sts));
        if let Ok(pod) = store.get("v1", "pods", Some(obj::namespace(sts)), &pod_name) {
            owners.push(owner_ref(&pod, "v1", "Pod", false));
        }
    }
    owners
}

/// Creates the missing claims of `ordinal` (when `create`), binds them,
/// and sets their owner references; writes nothing already so.
fn sync_claims(
    store: &Store,
    plan: &Plan<'_>,
    ordinal: i64,
    claims: &BTreeMap<String, Value>,
    create: bool,
) -> Result<()> {
    let sts = plan.sts;
    let ns = obj::namespace(sts);
    let templates = build::claim_templates(sts);
    if templates.is_empty() {
        return Ok(());
    }
    let owners = claim_owners(store, plan, ordinal);
    let ctx = WriteCtx::internal(CONTROLLER);
    for t in &templates {
        let cname = build::claim_name(t, sts, ordinal);
        let err = |action| store_err(CONTROLLER, action, ns, &cname);
        let claim = match claims.get(&cname) {
            Some(c) => c.clone(),
            None if create => {
                let body = build::build_claim(sts, t, ordinal, &owners);
                match store.create("v1", "persistentvolumeclaims", Some(ns), body, &ctx) {
                    Ok(c) => c,
                    Err(ApiError::AlreadyExists(_)) => continue,
                    Err(e) => return Err(err("create persistentvolumeclaim")(e)),
                }
            }
            None => continue,
        };
        if obj::is_deleting(&claim) {
            continue;
        }
        let claim = set_claim_owners(store, sts, claim, &owners, &ctx)
            .map_err(err("update persistentvolumeclaim"))?;
        let bound = build::bound_status(&claim);
        if claim.get("status").and_then(|s| s.get("phase")) != Some(&json!("Bound")) {
            let mut body = claim.clone();
            obj::set_field(&mut body, "status", Some(bound));
            store
                .update("v1", "persistentvolumeclaims", Some(ns), body, true, &ctx)
                .map_err(err("bind persistentvolumeclaim"))?;
        }
    }
    Ok(())
}

/// Replaces this set's and its pods' owner references on `claim` with
/// `owners`, keeping everyone else's; writes only on a change.
fn set_claim_owners(
    store: &Store,
    sts: &Value,
    claim: Value,
    owners: &[Value],
    ctx: &WriteCtx,
) -> std::result::Result<Value, ApiError> {
    let prefix = format!("{}-", obj::name(sts));
    let existing: Vec<Value> = claim
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ours = |r: &Value| {
        let kind = r.get("kind").and_then(Value::as_str);
        let rname = r.get("name").and_then(Value::as_str).unwrap_or("");
        (kind == Some("StatefulSet") && r.get("uid").and_then(Value::as_str) == Some(obj::uid(sts)))
            || (kind == Some("Pod") && rname.starts_with(&prefix))
    };
    let mut wanted: Vec<Value> = existing.iter().filter(|r| !ours(r)).cloned().collect();
    wanted.extend(owners.iter().cloned());
    if wanted == existing {
        return Ok(claim);
    }
    let mut body = claim;
    let meta = obj::meta_mut(&mut body);
    if wanted.is_empty() {
        meta.remove("ownerReferences");
    } else {
        meta.insert("ownerReferences".into(), Value::Array(wanted));
    }
    store.update(
        "v1",
        "persistentvolumeclaims",
        Some(obj::namespace(&body).to_owned().as_str()),
        body,
        false,
        ctx,
    )
}
