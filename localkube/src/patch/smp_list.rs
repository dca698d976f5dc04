//! Strategic merge of lists (apimachinery's `mergeSlice`): atomic lists are
//! replaced; lists of scalars merge as sets; lists of maps merge by their
//! merge key with `$patch: delete` / `$patch: replace` elements. The result
//! order follows upstream exactly: patch items in patch order interleaved
//! with server-only items in live order, which puts items new to the list
//! FIRST (unless a `$setElementOrder` says otherwise).

use serde_json::Value;

use super::PatchError;
use super::smp::{self, Ctx, DIRECTIVE};
use crate::listtype::ListType;

/// How list elements are identified: by a merge key field (lists of maps)
/// or by value (lists of scalars).
#[derive(Debug, Clone)]
pub(super) enum Key {
    Field(String),
    Value,
}

impl Key {
    /// Strategic merge uses the single `patchMergeKey`; the contract lists
    /// it first in [`ListType::Map`] (the rest are SSA's extra keys).
    pub(super) fn for_elements<'v>(
        lt: &ListType,
        mut elements: impl Iterator<Item = &'v Value>,
    ) -> Key {
        match lt {
            ListType::Map(keys) if elements.any(Value::is_object) => {
                keys.first().map_or(Key::Value, |k| Key::Field(k.clone()))
            }
            _ => Key::Value,
        }
    }

    /// Whether `a` and `b` are the same element.
    fn same(&self, a: &Value, b: &Value) -> bool {
        match self {
            Key::Value => a == b,
            Key::Field(k) => match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }

    fn position(&self, list: &[Value], item: &Value) -> Option<usize> {
        list.iter().position(|v| self.same(v, item))
    }
}

fn no_merge_key(element: &Value, key: &str) -> PatchError {
    PatchError::Malformed(format!(
        "map: {element} does not contain declared merge key: {key}"
    ))
}

/// Merges a patch list into a live list according to the field's list type.
pub(super) fn merge_list(
    original: &[Value],
    patch: &[Value],
    ctx: &mut Ctx<'_>,
) -> Result<Vec<Value>, PatchError> {
    let lt = ctx.list_type();
    if lt == ListType::Atomic {
        return patch.iter().map(|v| smp::fresh(v, ctx)).collect();
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(Vec::new());
    }
    check_element_kinds(original, patch)?;
    let is_maps = original.iter().chain(patch).any(Value::is_object);
    if !is_maps {
        let mut merged: Vec<Value> = Vec::new();
        for v in original.iter().chain(patch) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        return order_by_patch(merged, patch, original, &Key::Value);
    }
    let ListType::Map(keys) = &lt else {
        return Err(PatchError::Unprocessable(
            "cannot merge lists without merge key for type map".to_owned(),
        ));
    };
    let Some(key) = keys.first() else {
        return Err(PatchError::Unprocessable(
            "cannot merge lists without merge key for type map".to_owned(),
        ));
    };
    let (mut original, plain) = special_elements(original, patch, key)?;
    let Some(plain) = plain else {
        // `$patch: replace` among the elements: the rest of the patch list
        // is the new list.
        return original.iter().map(|v| smp::fresh(v, ctx)).collect();
    };
    let live_order = original.clone();
    for element in &plain {
        let Value::Object(p) = element else {
            return Err(no_merge_key(element, key));
        };
        let Some(wanted) = p.get(key) else {
            return Err(no_merge_key(element, key));
        };
        let found = original.iter_mut().find(|v| v.get(key) == Some(wanted));
        match found {
            Some(Value::Object(o)) => {
                let merged = smp::merge_map(Some(std::mem::take(o)), p, ctx)?;
                *o = merged;
            }
            _ => original.push(smp::fresh(element, ctx)?),
        }
    }
    order_by_patch(original, &plain, &live_order, &Key::Field(key.clone()))
}

/// Upstream's `sliceElementType`: one JSON kind per list, never lists.
fn check_element_kinds(original: &[Value], patch: &[Value]) -> Result<(), PatchError> {
    let kind = |v: &Value| std::mem::discriminant(v);
    let mut all = original.iter().chain(patch);
    let Some(first) = all.next() else {
        return Ok(());
    };
    if first.is_array() {
        return Err(PatchError::Unprocessable(
            "lists of lists are not supported".to_owned(),
        ));
    }
    if all.any(|v| kind(v) != kind(first)) {
        return Err(PatchError::Unprocessable(format!(
            "list element types are not identical: {}",
            Value::Array(original.iter().chain(patch).cloned().collect())
        )));
    }
    Ok(())
}

/// Applies `$patch` elements: deletions remove live elements by key;
/// `replace` makes the remaining patch elements the list (returned as the
/// first value with `None` as the second).
fn special_elements(
    original: &[Value],
    patch: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Option<Vec<Value>>), PatchError> {
    let mut original = original.to_vec();
    let mut plain = Vec::new();
    let mut replace = false;
    for element in patch {
        let Some(directive) = element.get(DIRECTIVE) else {
            plain.push(element.clone());
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let wanted = element.get(key).ok_or_else(|| no_merge_key(element, key))?;
                original.retain(|v| v.get(key) != Some(wanted));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::Unprocessable(
                    "merging lists cannot yet be specified in the patch".to_owned(),
                ));
            }
            _ => {
                let map = element.as_object().cloned().unwrap_or_default();
                return Err(smp::bad_patch_type(directive, &map));
            }
        }
    }
    if replace {
        return Ok((plain, None));
    }
    Ok((original, Some(plain)))
}

/// Orders a merged list: items present in `patch` in patch order, the
/// others in live order, interleaved (upstream `normalizeElementOrder`).
fn order_by_patch(
    merged: Vec<Value>,
    patch: &[Value],
    live: &[Value],
    key: &Key,
) -> Result<Vec<Value>, PatchError> {
    let patch: Vec<Value> = patch
        .iter()
        .filter(|v| v.get(DIRECTIVE).is_none())
        .cloned()
        .collect();
    reorder(merged, &patch, live, key)
}

/// Splits `merged` by presence in `order`, sorts each part (by `order`,
/// resp. `live`) and interleaves them using the live order.
pub(super) fn reorder(
    merged: Vec<Value>,
    order: &[Value],
    live: &[Value],
    key: &Key,
) -> Result<Vec<Value>, PatchError> {
    if let Key::Field(k) = key
        && let Some(bad) = merged.iter().chain(order).find(|v| v.get(k).is_none())
    {
        return Err(no_merge_key(bad, k));
    }
    let (mut in_order, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| key.position(order, v).is_some());
    in_order.sort_by_key(|v| key.position(order, v).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| key.position(live, v).unwrap_or(usize::MAX));
    Ok(interleave(server_only, in_order, live, key))
}

/// Upstream `mergeSortedSlice`: a server-only item goes before the next
/// patch item only when both are in the live list and it came first there.
fn interleave(left: Vec<Value>, right: Vec<Value>, live: &[Value], key: &Key) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (key.position(live, l), key.position(live, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Upstream `validatePatchWithSetOrderList`: the patch items (deletions
/// aside) must appear in the `$setElementOrder` list, in the same order.
pub(super) fn validate_order(
    patch: &[Value],
    order: &[Value],
    key: &Key,
) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = patch
        .iter()
        .filter(|v| v.get(DIRECTIVE).is_none())
        .collect();
    let mut at = 0;
    for wanted in order {
        let Some(item) = items.get(at) else { break };
        if let Key::Field(k) = key {
            if item.get(k).is_none() {
                return Err(no_merge_key(item, k));
            }
            if wanted.get(k).is_none() {
                return Err(no_merge_key(wanted, k));
            }
        }
        if key.same(item, wanted) {
            at += 1;
        }
    }
    if at < items.len() {
        return Err(PatchError::Malformed(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}
