//! A StatefulSet's ControllerRevisions: one per distinct pod template,
//! named `<sts>-<hash>`, holding the template as a strategic-merge patch
//! (`{"spec":{"template":{..., "$patch":"replace"}}}`) and numbered in the
//! order the templates were used, with history trimmed to
//! `revisionHistoryLimit` as the real controller's history does.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::pods::{controlled_by, owner_ref};
use super::{Result, store_err};
use crate::error::ApiError;
use crate::obj;
use crate::store::{DeleteOptions, Store, WriteCtx};

const CONTROLLER: &str = "statefulset-controller";

/// The revisions a StatefulSet's pods are built from.
#[derive(Debug, Clone)]
pub struct Revisions {
    /// The revision the current pods run (`status.currentRevision`).
    pub current: Value,
    /// The revision of `spec.template` (`status.updateRevision`).
    pub update: Value,
    /// `status.collisionCount`.
    pub collision_count: i64,
}

/// The revision data of a StatefulSet: its template as a replace patch.
pub fn template_patch(sts: &Value) -> Value {
    let mut template = sts
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(m) = template.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision holds.
pub fn template_of(revision: &Value) -> Value {
    let mut t = revision
        .get("data")
        .and_then(|d| d.get("spec"))
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    t
}

/// `revision` of a ControllerRevision.
pub fn number(revision: &Value) -> i64 {
    revision
        .get("revision")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// FNV-32a of the data and the collision count, spelled with the
/// consonant-and-digit alphabet the real controller uses (no vowels, so a
/// hash never spells a word).
pub(super) fn hash(data: &Value, collision: i64) -> String {
    let mut h: u32 = 2_166_136_261;
    let text = data.to_string();
    let salt = collision.to_le_bytes();
    let bytes = text
        .as_bytes()
        .iter()
        .chain(salt.iter().take(if collision > 0 { 4 } else { 0 }));
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|d| {
            let i = usize::from(d) % ALPHABET.len();
            ALPHABET.get(i).map_or('x', |c| char::from(*c))
        })
        .collect()
}

/// Finds or creates the revision of `sts`'s template, picks the current
/// one, and trims the history, keeping the revisions `live_hashes` (the
/// pods' `controller-revision-hash`) name.
///
/// # Errors
/// A failed store write.
pub fn sync(store: &Store, sts: &Value, live_hashes: &BTreeSet<String>) -> Result<Revisions> {
    let ns = obj::namespace(sts);
    let name = obj::name(sts);
    let err = |action| store_err(CONTROLLER, action, ns, name);
    let mut history: Vec<Value> = store
        .list_where("apps/v1", "controllerrevisions", Some(ns), |r| {
            controlled_by(r, obj::uid(sts))
        })
        .map_err(err("list controllerrevisions"))?;
    history.sort_by_key(number);
    let data = template_patch(sts);
    let max = history.last().map_or(0, number);
    let status = sts.get("status");
    let mut collision = status
        .and_then(|s| s.get("collisionCount"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let equal_pos = history.iter().position(|r| r.get("data") == Some(&data));
    let update = match equal_pos {
        Some(pos) => {
            let mut r = history.get(pos).cloned().unwrap_or_default();
            // Rolling back to an older template makes it the newest again.
            if number(&r) < max {
                if let Some(m) = r.as_object_mut() {
                    m.insert("revision".into(), json!(max.saturating_add(1)));
                }
                r = store
                    .update(
                        "apps/v1",
                        "controllerrevisions",
                        Some(ns),
                        r,
                        false,
                        &WriteCtx::internal(CONTROLLER),
                    )
                    .map_err(err("update controllerrevision"))?;
                if let Some(slot) = history.get_mut(pos) {
                    *slot = r.clone();
                }
            }
            r
        }
        None => loop {
            let rev_name = format!("{name}-{}", hash(&data, collision));
            let mut labels = sts
                .get("spec")
                .and_then(|s| s.get("template"))
                .and_then(|t| t.get("metadata"))
                .and_then(|m| m.get("labels"))
                .cloned()
                .unwrap_or_else(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert(
                    "controller.kubernetes.io/hash".into(),
                    json!(rev_name.trim_start_matches(&format!("{name}-"))),
                );
            }
            let body = json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": rev_name, "namespace": ns, "labels": labels,
                    "ownerReferences": [owner_ref(sts, "apps/v1", "StatefulSet", true)]},
                "data": data,
                "revision": max.saturating_add(1),
            });
            match store.create(
                "apps/v1",
                "controllerrevisions",
                Some(ns),
                body,
                &WriteCtx::internal(CONTROLLER),
            ) {
                Ok(r) => {
                    history.push(r.clone());
                    break r;
                }
                // The name is taken by a different template (or another
                // owner): a hash collision, resolved as upstream does.
                Err(ApiError::AlreadyExists(_)) => collision = collision.saturating_add(1),
                Err(e) => return Err(err("create controllerrevision")(e)),
            }
        },
    };
    let current_name = status
        .and_then(|s| s.get("currentRevision"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let current = history
        .iter()
        .find(|r| obj::name(r) == current_name)
        .cloned()
        .unwrap_or_else(|| update.clone());
    trim(store, sts, &history, &current, &update, live_hashes)?;
    Ok(Revisions {
        current,
        update,
        collision_count: collision,
    })
}

/// Deletes the oldest revisions nothing uses beyond `revisionHistoryLimit`.
fn trim(
    store: &Store,
    sts: &Value,
    history: &[Value],
    current: &Value,
    update: &Value,
    live: &BTreeSet<String>,
) -> Result<()> {
    let limit = sts
        .get("spec")
        .and_then(|s| s.get("revisionHistoryLimit"))
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0);
    let idle: Vec<&Value> = history
        .iter()
        .filter(|r| {
            let n = obj::name(r);
            n != obj::name(current) && n != obj::name(update) && !live.contains(n)
        })
        .collect();
    let excess = usize::try_from(
        i64::try_from(idle.len())
            .unwrap_or(i64::MAX)
            .saturating_sub(limit),
    )
    .unwrap_or(0);
    for r in idle.into_iter().take(excess) {
        let ns = obj::namespace(r);
        match store.delete(
            "apps/v1",
            "controllerrevisions",
            Some(ns),
            obj::name(r),
            &DeleteOptions::default(),
        ) {
            Ok(_) | Err(ApiError::NotFound(_)) => {}
            Err(e) => {
                return Err(store_err(
                    CONTROLLER,
                    "delete controllerrevision",
                    ns,
                    obj::name(r),
                )(e));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn hash_is_stable_and_changes_with_the_template_and_collisions() {
        let a = json!({"spec": {"template": {"x": 1}}});
        let b = json!({"spec": {"template": {"x": 2}}});
        assert_eq!(hash(&a, 0), hash(&a, 0));
        assert_ne!(hash(&a, 0), hash(&b, 0));
        assert_ne!(hash(&a, 0), hash(&a, 1));
        assert!(hash(&a, 0).chars().all(|c| !"aeiou".contains(c)));
    }

    #[test]
    fn template_round_trips_through_the_patch() {
        let sts = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}});
        let p = template_patch(&sts);
        assert_eq!(p["spec"]["template"]["$patch"], json!("replace"));
        assert_eq!(template_of(&json!({"data": p})), sts["spec"]["template"]);
    }
}
