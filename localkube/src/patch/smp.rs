//! Strategic merge patch on maps, following k8s.io/apimachinery's
//! `strategicpatch.mergeMap` with the options the apiserver uses
//! (`MergeParallelList`, `IgnoreUnmatchedNulls`): `$patch`, `$retainKeys`,
//! `$setElementOrder/` and `$deleteFromPrimitiveList/` on maps; list merging
//! lives in [`super::smp_list`].

use serde_json::{Map, Value};

use super::PatchError;
use super::smp_list::{self, Key};
use crate::listtype::{ListType, ListTypes};

pub(super) const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList";

/// The list types plus the field-name path of the node being merged.
pub(super) struct Ctx<'a> {
    lists: &'a dyn ListTypes,
    path: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn list_type(&self) -> ListType {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        self.lists.list_type(&path)
    }
}

/// Entry point: both documents must be JSON objects.
pub(super) fn apply(
    target: &Value,
    patch: &Value,
    lists: &dyn ListTypes,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Malformed("invalid JSON document".to_owned()));
    };
    let Value::Object(target) = target else {
        return Err(PatchError::Unprocessable(
            "the object to patch is not a JSON object".to_owned(),
        ));
    };
    let mut ctx = Ctx {
        lists,
        path: Vec::new(),
    };
    merge_map(Some(target.clone()), patch, &mut ctx).map(Value::Object)
}

/// Merges `patch` into `original` (None: nothing to merge with, so the
/// patch is only cleaned of directives and nulls, as the typed decoding of
/// the real server would).
pub(super) fn merge_map(
    original: Option<Map<String, Value>>,
    patch: &Map<String, Value>,
    ctx: &mut Ctx<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                let mut rest = patch.clone();
                rest.remove(DIRECTIVE);
                merge_map(None, &rest, ctx)
            }
            // Upstream empties the map rather than removing the field.
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, patch)),
        };
    }
    let mut original = original.unwrap_or_default();
    retain_keys(&mut original, patch)?;
    let ordered = set_element_order(&mut original, patch, ctx)?;
    delete_from_primitive_lists(&mut original, patch)?;
    for (key, patch_value) in patch {
        // Directives are handled above; unknown `$` keys would be dropped
        // by the typed decoding of a built-in kind, so they are here too.
        if key.starts_with('$') || ordered.contains(key) {
            continue;
        }
        if patch_value.is_null() {
            original.remove(key);
            continue;
        }
        ctx.path.push(key.clone());
        let merged = merge_value(original.remove(key), patch_value, ctx);
        ctx.path.pop();
        original.insert(key.clone(), merged?);
    }
    Ok(original)
}

/// Merges one field's patch value into its original value.
fn merge_value(
    original: Option<Value>,
    patch: &Value,
    ctx: &mut Ctx<'_>,
) -> Result<Value, PatchError> {
    match (original, patch) {
        (Some(Value::Object(o)), Value::Object(p)) => merge_map(Some(o), p, ctx).map(Value::Object),
        (Some(Value::Array(o)), Value::Array(p)) => {
            smp_list::merge_list(&o, p, ctx).map(Value::Array)
        }
        (_, patch) => fresh(patch, ctx),
    }
}

/// A patch value with nothing to merge into (absent or of another type):
/// taken as is, minus directives and nulls.
pub(super) fn fresh(patch: &Value, ctx: &mut Ctx<'_>) -> Result<Value, PatchError> {
    match patch {
        Value::Object(p) => merge_map(None, p, ctx).map(Value::Object),
        Value::Array(p) => smp_list::merge_list(&[], p, ctx).map(Value::Array),
        other => Ok(other.clone()),
    }
}

pub(super) fn bad_patch_type(directive: &Value, patch: &Map<String, Value>) -> PatchError {
    let shown = directive
        .as_str()
        .map_or_else(|| directive.to_string(), str::to_owned);
    PatchError::Malformed(format!(
        "unknown patch type: {shown} in map: {}",
        Value::Object(patch.clone())
    ))
}

/// `$retainKeys`: keeps only the listed keys of the original; every
/// non-null key of the patch must be listed.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(list) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(PatchError::Malformed(
            "invalid patch format of retainKeys".to_owned(),
        ));
    };
    let listed = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    let unlisted = patch.iter().any(|(k, v)| {
        !(k == RETAIN_KEYS
            || v.is_null()
            || k.starts_with(SET_ORDER)
            || k.starts_with(DELETE_PRIMITIVE)
            || listed(k))
    });
    if unlisted {
        return Err(PatchError::Unprocessable(
            "patch content doesn't match retainKeys list".to_owned(),
        ));
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// The field a `$prefix/field` directive key names.
fn directive_field<'k>(key: &'k str, prefix: &str, error: &str) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field),
        _ => Err(PatchError::Malformed(error.to_owned())),
    }
}

const BAD_ORDER: &str = "invalid patch format of setElementOrder list";
const BAD_PRIMITIVE: &str = "invalid patch format of primitive list";

/// `$setElementOrder/<field>`: merges that list now and orders the result
/// (`$setElementOrder` > patch order > live order). Returns the fields done.
fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    ctx: &mut Ctx<'_>,
) -> Result<Vec<String>, PatchError> {
    let mut done = Vec::new();
    for (key, order) in patch.iter().filter(|(k, _)| k.starts_with(SET_ORDER)) {
        let field = directive_field(key, SET_ORDER, BAD_ORDER)?;
        let Value::Array(order) = order else {
            return Err(PatchError::Malformed(BAD_ORDER.to_owned()));
        };
        let as_list = |v: Option<&Value>| match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(_) => Err(PatchError::Malformed(BAD_ORDER.to_owned())),
        };
        let live = as_list(original.get(field))?;
        let patch_list = as_list(patch.get(field))?;
        ctx.path.push(field.to_owned());
        let result = order_one(live, patch_list, order, ctx);
        ctx.path.pop();
        if let Some(list) = result? {
            original.insert(field.to_owned(), Value::Array(list));
        }
        done.push(field.to_owned());
    }
    Ok(done)
}

fn order_one(
    live: Option<Vec<Value>>,
    patch_list: Option<Vec<Value>>,
    order: &[Value],
    ctx: &mut Ctx<'_>,
) -> Result<Option<Vec<Value>>, PatchError> {
    let all = live
        .iter()
        .chain(patch_list.iter())
        .flatten()
        .chain(order.iter());
    let key = Key::for_elements(&ctx.list_type(), all);
    if let Some(p) = &patch_list {
        smp_list::validate_order(p, order, &key)?;
    }
    let merged = match (&live, &patch_list) {
        (_, None) => match &live {
            Some(l) => l.clone(),
            None => return Ok(None),
        },
        (l, Some(p)) => smp_list::merge_list(l.as_deref().unwrap_or_default(), p, ctx)?,
    };
    smp_list::reorder(merged, order, live.as_deref().unwrap_or_default(), &key).map(Some)
}

/// `$deleteFromPrimitiveList/<field>`: removes those values from a list of
/// scalars. Done before the field's own merge so that a value both deleted
/// and added ends up present (upstream's order is map iteration order).
fn delete_from_primitive_lists(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    for (key, doomed) in patch
        .iter()
        .filter(|(k, _)| k.starts_with(DELETE_PRIMITIVE))
    {
        let field = directive_field(key, DELETE_PRIMITIVE, BAD_PRIMITIVE)?;
        let Value::Array(doomed) = doomed else {
            return Err(PatchError::Malformed(BAD_PRIMITIVE.to_owned()));
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            list.retain(|v| !doomed.contains(v));
        }
    }
    Ok(())
}
