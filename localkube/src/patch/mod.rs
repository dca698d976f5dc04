//! Patches and field management: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902), strategic merge patch for built-in kinds, and server-side
//! apply with per-manager field ownership in `metadata.managedFields`.
//!
//! Each engine lives in its own file: `jsonpatch` (RFC 6902),
//! `smp`/`smp_list` (strategic merge), `builtin` (the built-in kinds' list
//! types) and [`managed`] (server-side apply and `managedFields`).

use serde_json::Value;

use crate::listtype::ListTypes;

mod builtin;
mod jsonpatch;
mod smp;
mod smp_list;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fuzz;

/// A patch that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (answered 400 BadRequest).
    #[error("{0}")]
    Malformed(String),
    /// The patch is well-formed but cannot apply to this object, or a JSON
    /// patch `test` failed (answered 422 Invalid).
    #[error("{0}")]
    Unprocessable(String),
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    ::json_patch::merge(&mut out, patch);
    out
}

/// RFC 6902 JSON patch (with `test`).
///
/// # Errors
/// [`PatchError`] when malformed or when an operation fails.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    jsonpatch::apply(target, patch)
}

/// Strategic merge patch with the list semantics of `lists` (including the
/// `$patch`, `$setElementOrder/`, `$retainKeys`, `$deleteFromPrimitiveList/`
/// directives kubectl sends).
///
/// # Errors
/// [`PatchError`] when malformed or not applicable.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    lists: &dyn ListTypes,
) -> Result<Value, PatchError> {
    smp::apply(target, patch, lists)
}

/// The list types of a built-in kind's fields (strategic merge keys), by
/// API group and kind; `None` for kinds without a table (every list atomic).
pub fn builtin_list_types(group: &str, kind: &str) -> Option<&'static dyn ListTypes> {
    builtin::for_kind(group, kind)
}

/// Server-side apply and the field ownership of ordinary writes.
pub mod managed;
