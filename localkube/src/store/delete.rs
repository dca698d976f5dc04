//! Deletion as the real server does it: preconditions, finalizers keeping
//! an object with `deletionTimestamp` set, propagation policies
//! (Background, Foreground via the `foregroundDeletion` finalizer, Orphan),
//! graceful pod deletion, namespaces that terminate, and CRDs whose
//! removal takes their objects with them.

use serde_json::{Value, json};

use super::write::WriteCtx;
use super::{Inner, Key, StoreConfig};
use crate::error::{ApiError, Subject};
use crate::names;
use crate::obj;
use crate::registry::ResourceInfo;

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// The owner goes at once; the collector deletes dependents after.
    Background,
    /// Dependents first, the owner (holding `foregroundDeletion`) last.
    Foreground,
    /// Dependents lose their owner reference and stay.
    Orphan,
}

/// The options of a delete (DeleteOptions).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy` (default Background).
    pub propagation: Option<Propagation>,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// The result of a delete.
#[derive(Debug, Clone)]
pub struct Deleted {
    /// The object's last state.
    pub object: Value,
    /// Still there (finalizers, graceful deletion, terminating namespace).
    pub pending: bool,
}

/// The finalizer a foreground deletion holds the owner with.
pub const FOREGROUND: &str = "foregroundDeletion";

fn is(res: &ResourceInfo, group: &str, plural: &str) -> bool {
    res.group == group && res.plural == plural
}

impl Inner {
    /// Deletes `name`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn delete(
        &mut self,
        cfg: &StoreConfig,
        ctx: &WriteCtx,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let subject = Subject::new(&res.group, &res.plural, name);
        let key = super::key(res, namespace, name);
        let Some(old) = self.get(&key) else {
            return Err(ApiError::NotFound(subject));
        };
        if let Some(uid) = &opts.uid
            && uid != obj::uid(&old)
        {
            return Err(ApiError::Conflict {
                detail: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    obj::uid(&old)
                ),
                subject,
                raw: false,
                causes: Vec::new(),
            });
        }
        if let Some(rv) = &opts.resource_version
            && rv != obj::resource_version(&old)
        {
            return Err(ApiError::Conflict {
                detail: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    obj::resource_version(&old)
                ),
                subject,
                raw: false,
                causes: Vec::new(),
            });
        }
        let deleting = obj::is_deleting(&old);
        let mut new = (*old).clone();
        if is(res, "", "namespaces") {
            if deleting {
                return Ok(Deleted {
                    object: new,
                    pending: true,
                });
            }
            obj::meta_mut(&mut new).insert("deletionTimestamp".into(), json!(ctx.now));
            obj::meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            obj::set_field(&mut new, "status", Some(json!({"phase": "Terminating"})));
            return self.mark(ctx, key, new);
        }
        let pod_on_node = is(res, "", "pods")
            && cfg.graceful_pod_deletion
            && new
                .get("spec")
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
        if pod_on_node {
            let grace = opts
                .grace_period
                .or_else(|| {
                    new.get("spec")
                        .and_then(|s| s.get("terminationGracePeriodSeconds"))
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30)
                .max(0);
            let current = new
                .get("metadata")
                .and_then(|m| m.get("deletionGracePeriodSeconds"))
                .and_then(Value::as_i64);
            // A grace period can only be shortened, as on the real server.
            if current.is_none_or(|c| grace < c) {
                let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
                let m = obj::meta_mut(&mut new);
                m.insert("deletionTimestamp".into(), json!(names::timestamp(at)));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if grace > 0 || !obj::finalizers(&new).is_empty() {
                if new == *old {
                    return Ok(Deleted {
                        object: new,
                        pending: true,
                    });
                }
                return self.mark(ctx, key, new);
            }
        }
        if !deleting {
            match opts.propagation.unwrap_or(Propagation::Background) {
                Propagation::Orphan => {
                    if !ctx.dry_run {
                        self.orphan_dependents(obj::uid(&old))?;
                    }
                }
                Propagation::Foreground => {
                    let mut f = obj::finalizers(&new);
                    if !f.iter().any(|x| x == FOREGROUND) {
                        f.push(FOREGROUND.to_owned());
                    }
                    obj::set_finalizers(&mut new, &f);
                }
                Propagation::Background => {}
            }
        }
        if !obj::finalizers(&new).is_empty() {
            if deleting && new == *old {
                return Ok(Deleted {
                    object: new,
                    pending: true,
                });
            }
            let m = obj::meta_mut(&mut new);
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), json!(ctx.now));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                m.insert("generation".into(), json!(g.saturating_add(1)));
            }
            return self.mark(ctx, key, new);
        }
        if ctx.dry_run {
            return Ok(Deleted {
                object: new,
                pending: false,
            });
        }
        let last = self.finish_delete(cfg, res, &key)?;
        Ok(Deleted {
            object: last,
            pending: false,
        })
    }

    fn mark(&mut self, ctx: &WriteCtx, key: Key, new: Value) -> Result<Deleted, ApiError> {
        if ctx.dry_run {
            return Ok(Deleted {
                object: new,
                pending: true,
            });
        }
        let stored = self.put(key, new)?;
        Ok(Deleted {
            object: (*stored).clone(),
            pending: true,
        })
    }

    /// Removes the owner reference to `owner_uid` from every dependent.
    pub(crate) fn orphan_dependents(&mut self, owner_uid: &str) -> Result<(), ApiError> {
        let dependents: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|(_, o)| obj::owner_uids(o).iter().any(|u| u == owner_uid))
            .map(|(k, o)| (k.clone(), (**o).clone()))
            .collect();
        for (k, mut o) in dependents {
            obj::remove_owner(&mut o, owner_uid);
            self.put(k, o)?;
        }
        Ok(())
    }

    /// Removes `key` for good; a CRD takes its objects with it.
    pub(crate) fn finish_delete(
        &mut self,
        cfg: &StoreConfig,
        res: &ResourceInfo,
        key: &Key,
    ) -> Result<Value, ApiError> {
        let _ = cfg;
        let Some(last) = self.remove(key)? else {
            return Err(ApiError::NotFound(Subject::new(
                &res.group,
                &res.plural,
                &key.3,
            )));
        };
        if is(res, "apiextensions.k8s.io", "customresourcedefinitions") {
            let spec = last.get("spec");
            let group = spec
                .and_then(|s| s.get("group"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let plural = spec
                .and_then(|s| s.get("names"))
                .and_then(|n| n.get("plural"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let keys: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.0 == group && k.1 == plural)
                .cloned()
                .collect();
            for k in keys {
                self.remove(&k)?;
            }
            self.custom.remove(&(group, plural));
        }
        Ok((*last).clone())
    }
}
