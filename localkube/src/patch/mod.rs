//! Patches and field management: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902), strategic merge patch for built-in kinds, and server-side
//! apply with per-manager field ownership in `metadata.managedFields`.
//!
//! INTERFACE PLACEHOLDER: the signatures below are the contract the server
//! is written against; the implementation is being written separately and
//! replaces this file (and adds siblings) wholesale.

use serde_json::Value;

use crate::listtype::ListTypes;

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
    json_patch::merge(&mut out, patch);
    out
}

/// RFC 6902 JSON patch (with `test`).
///
/// # Errors
/// [`PatchError`] when malformed or when an operation fails.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let _ = (target, patch);
    Err(PatchError::Unprocessable(
        "json patch: not yet implemented".to_owned(),
    ))
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
    let _ = (target, patch, lists);
    Err(PatchError::Unprocessable(
        "strategic merge patch: not yet implemented".to_owned(),
    ))
}

/// The list types of a built-in kind's fields (strategic merge keys), by
/// API group and kind; `None` for kinds without a table (every list atomic).
pub fn builtin_list_types(group: &str, kind: &str) -> Option<&'static dyn ListTypes> {
    let _ = (group, kind);
    None
}

/// Server-side apply and the field ownership of ordinary writes.
pub mod managed {
    use serde_json::Value;

    use crate::listtype::ListTypes;

    /// Who is writing, and how (one `managedFields` entry's identity).
    #[derive(Debug, Clone)]
    pub struct Writer<'a> {
        /// The field manager (`fieldManager` query parameter, or derived
        /// from the user agent as the real server does).
        pub manager: &'a str,
        /// `apiVersion` of the object as written.
        pub api_version: &'a str,
        /// RFC 3339 time of the write.
        pub now: &'a str,
        /// `Some("status")` / `Some("scale")` for subresource writes.
        pub subresource: Option<&'a str>,
    }

    /// One field another manager owns that an apply would change.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FieldConflict {
        /// The manager owning it.
        pub manager: String,
        /// The field, as the real server prints it (e.g. `.spec.replicas`).
        pub field: String,
    }

    /// Why an apply was refused.
    #[derive(Debug, thiserror::Error)]
    pub enum ApplyError {
        /// Fields owned by other managers would change (409 Conflict; the
        /// message lists them as the real server does). Retry with force.
        #[error("Apply failed with {} conflict(s)", .0.len())]
        Conflict(Vec<FieldConflict>),
        /// The applied configuration is malformed (400/422).
        #[error("{0}")]
        Invalid(String),
    }

    /// Server-side apply of `config` by `writer` onto `live` (None: create).
    /// Returns the merged object with `metadata.managedFields` updated:
    /// fields this manager applied before and no longer applies are removed
    /// when no other manager owns them.
    ///
    /// # Errors
    /// [`ApplyError::Conflict`] unless `force`; [`ApplyError::Invalid`].
    pub fn apply(
        live: Option<&Value>,
        config: &Value,
        writer: &Writer<'_>,
        force: bool,
        lists: &dyn ListTypes,
    ) -> Result<Value, ApplyError> {
        let _ = (live, config, writer, force, lists);
        Err(ApplyError::Invalid(
            "server-side apply: not yet implemented".to_owned(),
        ))
    }

    /// Records in `new.metadata.managedFields` the fields that an ordinary
    /// write (create, update, non-apply patch: operation `Update`) by
    /// `writer` set or changed relative to `old`, taking them from other
    /// managers.
    pub fn record_update(
        old: Option<&Value>,
        new: &mut Value,
        writer: &Writer<'_>,
        lists: &dyn ListTypes,
    ) {
        let _ = (old, new, writer, lists);
    }
}
