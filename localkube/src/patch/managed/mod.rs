//! Server-side apply and the field ownership of ordinary writes, with the
//! semantics of sigs.k8s.io/structured-merge-diff's `merge.Updater` as
//! kube-apiserver's field manager drives it: field sets per manager in
//! `metadata.managedFields` (FieldsV1), conflicts on fields another manager
//! owns, pruning of fields an applier stops applying.

use serde_json::{Map, Value};

use crate::listtype::ListTypes;

mod entries;
mod fieldpath;
mod merge;
#[cfg(test)]
mod tests;
mod walk;

use entries::{APPLY, Entry, UPDATE};
use fieldpath::FieldSet;
use walk::Walker;

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

/// The manager that owns every field of an object that had no managed
/// fields when first applied to (upstream's name).
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

fn as_object(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => entries::without_managed_fields(m),
        _ => Map::new(),
    }
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
    let Value::Object(config) = config else {
        return Err(ApplyError::Invalid(
            "the applied configuration must be a JSON object".to_owned(),
        ));
    };
    if matches!(config.get("metadata").and_then(|m| m.get("managedFields")), Some(v) if !v.is_null())
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".to_owned(),
        ));
    }
    let config = entries::without_managed_fields(config);
    let live_obj = as_object(live);
    let mut managers = match live {
        Some(Value::Object(m)) => entries::decode(m),
        _ => Vec::new(),
    };
    let mut walker = Walker::new(lists);
    if live.is_some() && managers.is_empty() {
        // Upstream attributes an unmanaged object's fields to a pseudo
        // manager so a first apply cannot silently take them over.
        let set = walker.field_set(&live_obj).map_err(ApplyError::Invalid)?;
        managers.push(Entry {
            manager: BEFORE_FIRST_APPLY.to_owned(),
            operation: UPDATE.to_owned(),
            api_version: writer.api_version.to_owned(),
            time: None,
            subresource: writer.subresource.unwrap_or_default().to_owned(),
            set: entries::strip(&set),
        });
    }
    let subresource = writer.subresource.unwrap_or_default();
    let config_set = entries::strip(&walker.field_set(&config).map_err(ApplyError::Invalid)?);
    let mine = managers
        .iter()
        .position(|e| e.is(writer.manager, APPLY, "", subresource));
    let last = mine
        .and_then(|i| managers.get(i))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut merged = walker
        .merge_maps(&live_obj, &config)
        .map_err(ApplyError::Invalid)?;
    let mine = match mine {
        Some(i) => i,
        None => {
            managers.push(Entry {
                manager: writer.manager.to_owned(),
                operation: APPLY.to_owned(),
                api_version: String::new(),
                time: None,
                subresource: subresource.to_owned(),
                set: FieldSet::default(),
            });
            managers.len().saturating_sub(1)
        }
    };
    if let Some(e) = managers.get_mut(mine) {
        e.set = config_set;
        e.api_version = writer.api_version.to_owned();
    }
    let owned = managers
        .iter()
        .fold(FieldSet::default(), |acc, e| acc.union(&e.set));
    walker.remove_fields(&mut merged, &merge::removable(&last, &owned));

    let cmp = walker.compare(&live_obj, &merged);
    let changed = cmp.added.union(&cmp.modified);
    let mut conflicts = Vec::new();
    for (i, e) in managers.iter_mut().enumerate() {
        if i == mine {
            continue;
        }
        let taken = e.set.intersection(&changed);
        conflicts.extend(taken.paths().iter().map(|p| FieldConflict {
            manager: e.manager.clone(),
            field: fieldpath::display(p),
        }));
        e.set = e.set.difference(&taken).difference(&cmp.removed);
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.manager.cmp(&b.manager));
        return Err(ApplyError::Conflict(conflicts));
    }
    // Like upstream, a no-op apply leaves the entry's time alone.
    if (merged != live_obj || live.is_none())
        && let Some(e) = managers.get_mut(mine)
    {
        e.time = Some(writer.now.to_owned());
    }
    entries::encode_into(&mut merged, managers);
    Ok(Value::Object(merged))
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
    let Value::Object(new_map) = new else {
        return;
    };
    // A write that carries managedFields sets them (as upstream); one
    // that leaves them out keeps the stored ones.
    let mut managers = if entries::has_list(new_map) {
        entries::decode(new_map)
    } else {
        match old {
            Some(Value::Object(m)) => entries::decode(m),
            _ => Vec::new(),
        }
    };
    let before = as_object(old);
    let after = entries::without_managed_fields(new_map);
    let mut walker = Walker::new(lists);
    let cmp = walker.compare(&before, &after);
    let changed = entries::strip(&cmp.added.union(&cmp.modified));
    for e in &mut managers {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    if !changed.is_empty() {
        let subresource = writer.subresource.unwrap_or_default();
        let existing = managers
            .iter_mut()
            .find(|e| e.is(writer.manager, UPDATE, writer.api_version, subresource));
        match existing {
            Some(e) => {
                e.set = e.set.union(&changed);
                e.time = Some(writer.now.to_owned());
            }
            None => managers.push(Entry {
                manager: writer.manager.to_owned(),
                operation: UPDATE.to_owned(),
                api_version: writer.api_version.to_owned(),
                time: Some(writer.now.to_owned()),
                subresource: subresource.to_owned(),
                set: changed,
            }),
        }
    }
    entries::encode_into(new_map, managers);
}
