//! The `/scale` subresource: an autoscaling/v1 Scale read from and
//! written to the replicas and selector paths the kind declares.

use serde_json::{Value, json};

use super::Store;
use super::api::{PatchKind, patch_error};
use super::write::{Sub, WriteCtx};
use crate::error::{ApiError, cause};
use crate::jsonpath;
use crate::obj;
use crate::patch;
use crate::registry::ResourceInfo;
use crate::selector::LabelSelector;

impl Store {
    /// The autoscaling/v1 Scale of `name`.
    pub(crate) fn scale_get(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let o = self.get_in(res, ns, name)?;
        scale_of(res, &o)
    }

    /// Writes a Scale (`body` from PUT, or a patch of the current Scale).
    pub(crate) fn scale_write(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        body: Option<Value>,
        patch: Option<(PatchKind, &Value)>,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let paths = res
            .storage()
            .and_then(|v| v.scale.clone())
            .ok_or(ApiError::UnknownResource)?;
        let old = self.get_in(res, ns, name)?;
        let current = scale_of(res, &old)?;
        let new_scale = match (body, patch) {
            (Some(b), _) => b,
            (None, Some((PatchKind::Json, p))) => {
                patch::json_patch(&current, p).map_err(|e| patch_error(res, name, e))?
            }
            (None, Some((_, p))) => patch::merge_patch(&current, p),
            (None, None) => current,
        };
        let replicas = new_scale
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid_one(
                "Scale",
                "autoscaling",
                name,
                cause(
                    "FieldValueInvalid",
                    format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    "spec.replicas",
                ),
            ));
        }
        let mut o = (*old).clone();
        jsonpath::set(&mut o, &paths.spec_replicas, json!(replicas));
        let want_rv = obj::resource_version(&new_scale);
        let rv = if want_rv.is_empty() {
            obj::resource_version(&old).to_owned()
        } else {
            want_rv.to_owned()
        };
        obj::meta_mut(&mut o).insert("resourceVersion".into(), json!(rv));
        let out = self.replace_in(res, ns, name, o, Sub::Scale, ctx)?;
        scale_of(res, &out.object)
    }
}

/// The Scale of `o`.
fn scale_of(res: &ResourceInfo, o: &Value) -> Result<Value, ApiError> {
    let paths = res
        .storage()
        .and_then(|v| v.scale.clone())
        .ok_or(ApiError::UnknownResource)?;
    let int = |p: &str| jsonpath::get(o, p).and_then(Value::as_i64).unwrap_or(0);
    let selector = paths
        .label_selector
        .as_deref()
        .and_then(|p| jsonpath::get(o, p))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => LabelSelector::from_object(Some(other)).to_query(),
        });
    let m = o.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    let mut status = json!({"replicas": int(&paths.status_replicas)});
    if let (Some(s), Some(map)) = (selector, status.as_object_mut()) {
        map.insert("selector".into(), json!(s));
    }
    let mut meta = json!({"name": pick("name"), "uid": pick("uid"), "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp")});
    if res.namespaced
        && let Some(mm) = meta.as_object_mut()
    {
        mm.insert("namespace".into(), pick("namespace"));
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": int(&paths.spec_replicas)},
        "status": status,
    }))
}
