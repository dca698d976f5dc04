//! The store's verbs, as both the HTTP layer and in-process callers
//! (part 2's controllers) use them: resolve a resource, then get, list,
//! create, update, patch (merge, JSON, strategic, apply), delete, and the
//! scale subresource. Each takes the lock once, so a patch is atomic.

use std::sync::Arc;

use serde_json::{Value, json};

use super::delete::Deleted;
pub use super::delete::{DeleteOptions, Propagation};
use super::list::ListOptions;
use super::write::{Outcome, Sub, WriteCtx};
use super::{ListResult, Store};
use crate::error::{ApiError, Subject, cause};
use crate::obj;
use crate::patch::{self, PatchError, managed};
use crate::registry::ResourceInfo;
use crate::selector::LabelSelector;

/// A PATCH's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply {
        /// `force=true`.
        force: bool,
    },
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(av: &str) -> (&str, &str) {
    match av.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", av),
    }
}

/// The object as served in `version` (no conversion: only `apiVersion`).
/// A resource whose CRD converts by webhook keeps the version it was
/// stored at, which its conversion reads (`http/conversion.rs`).
pub(crate) fn render(o: &Value, res: &ResourceInfo, version: &str) -> Value {
    let mut v = o.clone();
    if let Value::Object(m) = &mut v
        && res.conversion_webhook.is_none()
    {
        m.insert("apiVersion".into(), json!(res.api_version(version)));
    }
    v
}

pub(crate) fn patch_error(res: &ResourceInfo, name: &str, e: PatchError) -> ApiError {
    match e {
        PatchError::Malformed(m) => ApiError::BadRequest(m),
        PatchError::Unprocessable(m) => ApiError::invalid_one(
            &res.kind,
            &res.group,
            name,
            cause("FieldValueInvalid", m, ""),
        ),
    }
}

/// The 409 of an apply that would take other managers' fields, worded as
/// the real server words it.
fn apply_conflict(
    res: &ResourceInfo,
    name: &str,
    conflicts: &[managed::FieldConflict],
) -> ApiError {
    let n = conflicts.len();
    let message = match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with \"{}\": {}",
            one.manager, one.field
        ),
        _ => {
            let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
            managers.dedup();
            let mut s = format!("Apply failed with {n} conflicts:");
            for m in managers {
                s.push_str(&format!(" conflicts with \"{m}\":"));
                for c in conflicts.iter().filter(|c| c.manager == m) {
                    s.push_str(&format!("\n- {}", c.field));
                }
            }
            s
        }
    };
    ApiError::Conflict {
        subject: Subject::new(&res.group, &res.plural, name),
        detail: message,
        raw: true,
        causes: conflicts
            .iter()
            .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
            .collect(),
    }
}

fn ns_of<'a>(res: &ResourceInfo, ns: Option<&'a str>) -> &'a str {
    if res.namespaced { ns.unwrap_or("") } else { "" }
}

impl Store {
    /// The resource `resource` of `api_version`, and the version asked for.
    ///
    /// # Errors
    /// 404 when not served.
    pub fn resolve(
        &self,
        api_version: &str,
        resource: &str,
    ) -> Result<(Arc<ResourceInfo>, String), ApiError> {
        let (group, version) = split_api_version(api_version);
        let res = self
            .resource_info(group, resource)
            .ok_or(ApiError::UnknownResource)?;
        if res.version(version).is_none() {
            return Err(ApiError::UnknownResource);
        }
        Ok((res, version.to_owned()))
    }

    pub(crate) fn create_in(
        &self,
        res: &ResourceInfo,
        ns: &str,
        body: Value,
        ctx: &WriteCtx,
    ) -> Result<Outcome, ApiError> {
        let cfg = &self.shared.config;
        self.shared
            .inner
            .lock()
            .create(cfg, ctx, res, ns, body, false)
    }

    pub(crate) fn replace_in(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        body: Value,
        sub: Sub,
        ctx: &WriteCtx,
    ) -> Result<Outcome, ApiError> {
        let cfg = &self.shared.config;
        let out = self
            .shared
            .inner
            .lock()
            .replace(cfg, ctx, res, ns, name, body, sub, false);
        self.shared.gc.notify_one();
        out
    }

    /// Applies a patch of `kind` to `name` (apply creates it when absent).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch_in(
        &self,
        res: &ResourceInfo,
        version: &str,
        ns: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        sub: Sub,
        ctx: &WriteCtx,
    ) -> Result<Outcome, ApiError> {
        let cfg = &self.shared.config;
        let av = res.api_version(version);
        let writer = managed::Writer {
            manager: &ctx.manager,
            api_version: &av,
            now: &ctx.now,
            subresource: match sub {
                Sub::Main => None,
                Sub::Status => Some("status"),
                Sub::Scale => Some("scale"),
            },
        };
        let mut inner = self.shared.inner.lock();
        let key = super::key(res, ns, name);
        let Some(old) = inner.get(&key) else {
            if let PatchKind::Apply { force } = kind {
                if sub != Sub::Main {
                    return Err(ApiError::NotFound(Subject::new(
                        &res.group,
                        &res.plural,
                        name,
                    )));
                }
                let mut created = managed::apply(None, patch, &writer, force, res.list_types())
                    .map_err(|e| match e {
                        managed::ApplyError::Conflict(c) => apply_conflict(res, name, &c),
                        managed::ApplyError::Invalid(m) => ApiError::BadRequest(m),
                    })?;
                obj::meta_mut(&mut created).insert("name".into(), json!(name));
                return inner.create(cfg, ctx, res, ns, created, true);
            }
            return Err(ApiError::NotFound(Subject::new(
                &res.group,
                &res.plural,
                name,
            )));
        };
        let current = render(&old, res, version);
        let (patched, managed_done) = match kind {
            PatchKind::Merge => (patch::merge_patch(&current, patch), false),
            PatchKind::Json => (
                patch::json_patch(&current, patch).map_err(|e| patch_error(res, name, e))?,
                false,
            ),
            PatchKind::Strategic => {
                if res.custom {
                    return Err(ApiError::UnsupportedMediaType(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                    ));
                }
                (
                    patch::strategic_merge_patch(&current, patch, res.list_types())
                        .map_err(|e| patch_error(res, name, e))?,
                    false,
                )
            }
            PatchKind::Apply { force } => (
                managed::apply(Some(&current), patch, &writer, force, res.list_types()).map_err(
                    |e| match e {
                        managed::ApplyError::Conflict(c) => apply_conflict(res, name, &c),
                        managed::ApplyError::Invalid(m) => ApiError::BadRequest(m),
                    },
                )?,
                true,
            ),
        };
        let out = inner.replace(cfg, ctx, res, ns, name, patched, sub, managed_done);
        drop(inner);
        self.shared.gc.notify_one();
        out
    }

    pub(crate) fn delete_in(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
        ctx: &WriteCtx,
    ) -> Result<Deleted, ApiError> {
        let cfg = &self.shared.config;
        let out = self
            .shared
            .inner
            .lock()
            .delete(cfg, ctx, res, ns, name, opts);
        self.shared.gc.notify_one();
        out
    }

    pub(crate) fn delete_collection_in(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
        ctx: &WriteCtx,
    ) -> Result<Vec<Value>, ApiError> {
        let cfg = &self.shared.config;
        let mut inner = self.shared.inner.lock();
        let items = inner.list(res, ns, list)?.items;
        let mut out = Vec::new();
        for o in items {
            match inner.delete(cfg, ctx, res, obj::namespace(&o), obj::name(&o), opts) {
                Ok(d) => out.push(d.object),
                Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        drop(inner);
        self.shared.gc.notify_one();
        Ok(out)
    }

    pub(crate) fn get_in(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.shared
            .inner
            .lock()
            .get(&super::key(res, ns, name))
            .ok_or_else(|| ApiError::NotFound(Subject::new(&res.group, &res.plural, name)))
    }

    pub(crate) fn list_in(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult, ApiError> {
        self.shared.inner.lock().list(res, ns, opts)
    }

    /// Gets `name` of `resource` in `api_version`.
    ///
    /// # Errors
    /// 404 when the resource or the object does not exist.
    pub fn get(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        let o = self.get_in(&res, ns_of(&res, namespace), name)?;
        self.copied(1);
        Ok(render(&o, &res, &version))
    }

    /// How many objects the in-process reads ([`Self::get`], [`Self::list`],
    /// [`Self::list_where`]) have copied out so far: what the controllers'
    /// passes cost, which must grow with the objects, not with their square.
    #[must_use]
    pub fn copies(&self) -> u64 {
        self.shared
            .copies
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn copied(&self, n: usize) {
        self.shared.copies.fetch_add(
            u64::try_from(n).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Lists `resource` (every namespace when `namespace` is None).
    ///
    /// # Errors
    /// 404 for an unknown resource, 400 for a malformed selector.
    pub fn list(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        let opts = ListOptions {
            label_selector: LabelSelector::parse(label_selector.unwrap_or(""))
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
            ..ListOptions::default()
        };
        let items: Vec<Value> = self
            .list_in(&res, namespace, &opts)?
            .items
            .iter()
            .map(|o| render(o, &res, &version))
            .collect();
        self.copied(items.len());
        Ok(items)
    }

    /// Lists the objects of `resource` in `namespace` that `keep`
    /// accepts, copying only those: the controllers' per-object lists (the
    /// pods of one StatefulSet, of one budget) would otherwise copy every
    /// object of the namespace for each owner, a pass costing owners ×
    /// objects, which at a hundred clusters took both cores and left the
    /// API unanswered for seconds.
    ///
    /// # Errors
    /// 404 for an unknown resource.
    pub fn list_where(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        let items: Vec<Value> = self
            .list_in(&res, namespace, &ListOptions::default())?
            .items
            .iter()
            .filter(|o| keep(o))
            .map(|o| render(o, &res, &version))
            .collect();
        self.copied(items.len());
        Ok(items)
    }

    /// Creates `body`.
    ///
    /// # Errors
    /// As the HTTP API (409 AlreadyExists, 422 Invalid, ...).
    pub fn create(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        body: Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        let out = self.create_in(&res, ns_of(&res, namespace), body, ctx)?;
        Ok(render(&out.object, &res, &version))
    }

    /// Replaces the object named in `body` (`status`: the status
    /// subresource). A resourceVersion in `body` is a precondition.
    ///
    /// # Errors
    /// As the HTTP API (404, 409 Conflict, 422 Invalid, ...).
    pub fn update(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        body: Value,
        status: bool,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        let name = obj::name(&body).to_owned();
        let sub = if status { Sub::Status } else { Sub::Main };
        let out = self.replace_in(&res, ns_of(&res, namespace), &name, body, sub, ctx)?;
        Ok(render(&out.object, &res, &version))
    }

    /// Patches `name` (`status`: the status subresource).
    ///
    /// # Errors
    /// As the HTTP API.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        status: bool,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        let sub = if status { Sub::Status } else { Sub::Main };
        let out = self.patch_in(
            &res,
            &version,
            ns_of(&res, namespace),
            name,
            kind,
            patch,
            sub,
            ctx,
        )?;
        Ok(render(&out.object, &res, &version))
    }

    /// Deletes `name`; returns its last state (still there when finalizers
    /// or graceful deletion keep it).
    ///
    /// # Errors
    /// 404, 409 on a failed precondition.
    pub fn delete(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        let ctx = WriteCtx::internal("localkube");
        let out = self.delete_in(&res, ns_of(&res, namespace), name, opts, &ctx)?;
        Ok(render(&out.object, &res, &version))
    }
}
