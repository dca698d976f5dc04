//! Applying a configuration onto a live object (SMD `Merge`) and removing
//! the fields an applier gave up (SMD `prune`).

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, PathElement};
use super::walk::Walker;
use crate::listtype::ListType;

impl Walker<'_> {
    /// The config's values override live for the fields it sets; lists
    /// merge per list type. A `null` in the config removes the field (the
    /// typed decoding of the real server drops it).
    pub(crate) fn merge_maps(
        &mut self,
        live: &Map<String, Value>,
        config: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let mut out = live.clone();
        for (k, v) in config {
            if v.is_null() {
                out.remove(k);
                continue;
            }
            self.push(k);
            let merged = self.merge_value(live.get(k), v);
            self.pop();
            out.insert(k.clone(), merged?);
        }
        Ok(out)
    }

    fn merge_value(&mut self, live: Option<&Value>, config: &Value) -> Result<Value, String> {
        match (live, config) {
            (Some(Value::Object(_)), Value::Object(_)) if self.map_atomic() => Ok(config.clone()),
            (Some(Value::Object(l)), Value::Object(c)) => self.merge_maps(l, c).map(Value::Object),
            (Some(Value::Array(l)), Value::Array(c)) => {
                let lt = self.list_type();
                if lt == ListType::Atomic {
                    return Ok(config.clone());
                }
                self.merge_lists(&lt, l, c).map(Value::Array)
            }
            _ => Ok(config.clone()),
        }
    }

    fn merge_item(
        &mut self,
        live: Option<&Value>,
        config: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        match (live, config) {
            (l, Some(c)) => self.merge_value(l, c).map(Some),
            (Some(l), None) => Ok(Some(l.clone())),
            (None, None) => Ok(None),
        }
    }

    /// SMD's list merge: shared items take the config's order, live-only
    /// items keep their place relative to them, new items follow where the
    /// config puts them.
    fn merge_lists(
        &mut self,
        lt: &ListType,
        live: &[Value],
        config: &[Value],
    ) -> Result<Vec<Value>, String> {
        let rpes = self.element_pes(lt, config, true)?;
        let lpes = self.element_pes(lt, live, false)?;
        let at = |pes: &[PathElement], pe: &PathElement| pes.iter().position(|p| p == pe);
        let mut shared = rpes
            .iter()
            .filter(|pe| at(&lpes, pe).is_some())
            .cloned()
            .collect::<Vec<_>>()
            .into_iter();
        let mut next_shared = shared.next();
        let mut merged_rhs: Vec<PathElement> = Vec::new();
        let mut out = Vec::with_capacity(live.len().max(config.len()));
        let (mut li, mut ri) = (0, 0);
        while li < lpes.len() || ri < rpes.len() {
            if let (Some(lpe), Some(rpe)) = (lpes.get(li), rpes.get(ri)) {
                if lpe == rpe {
                    merged_rhs.push(lpe.clone());
                    let l = at(&lpes, lpe).and_then(|i| live.get(i));
                    let r = at(&rpes, lpe).and_then(|i| config.get(i));
                    out.extend(self.merge_item(l, r)?);
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if at(&rpes, lpe).is_some() && next_shared.as_ref().is_some_and(|n| n != lpe) {
                    // Shared, but not the one due now: it is placed when
                    // the config reaches it.
                    li += 1;
                    continue;
                }
            }
            if let Some(lpe) = lpes.get(li) {
                if at(&rpes, lpe).is_none() {
                    out.extend(live.get(li).cloned());
                    li += 1;
                    continue;
                }
                if merged_rhs.contains(lpe) {
                    li += 1;
                    continue;
                }
            }
            if let Some(rpe) = rpes.get(ri) {
                merged_rhs.push(rpe.clone());
                let l = at(&lpes, rpe).and_then(|i| live.get(i));
                out.extend(self.merge_item(l, config.get(ri))?);
                ri += 1;
                if next_shared.as_ref() == Some(rpe) {
                    next_shared = shared.next();
                }
            }
        }
        Ok(out)
    }

    /// Removes the members of `doomed` from `obj`; containers emptied by
    /// the removal go too (as `omitempty` would drop them).
    pub(crate) fn remove_fields(&mut self, obj: &mut Map<String, Value>, doomed: &FieldSet) {
        for pe in &doomed.members {
            if let PathElement::Field(k) = pe {
                obj.remove(k);
            }
        }
        for (pe, sub) in &doomed.children {
            let PathElement::Field(k) = pe else { continue };
            let Some(child) = obj.get_mut(k) else {
                continue;
            };
            self.push(k);
            let emptied = self.remove_in(child, sub);
            self.pop();
            if emptied {
                obj.remove(k);
            }
        }
    }

    /// Returns whether `v` was non-empty and is now empty.
    fn remove_in(&mut self, v: &mut Value, doomed: &FieldSet) -> bool {
        match v {
            Value::Object(m) => {
                let before = m.len();
                self.remove_fields(m, doomed);
                before > 0 && m.is_empty()
            }
            Value::Array(items) => {
                let lt = self.list_type();
                let Ok(pes) = self.element_pes(&lt, items, false) else {
                    return false;
                };
                let before = items.len();
                let mut kept = Vec::with_capacity(before);
                for (pe, mut item) in pes.into_iter().zip(items.drain(..)) {
                    if doomed.members.contains(&pe) {
                        continue;
                    }
                    if let (Some(sub), Value::Object(m)) = (doomed.child(&pe), &mut item) {
                        self.remove_fields(m, sub);
                    }
                    kept.push(item);
                }
                *items = kept;
                before > 0 && items.is_empty()
            }
            _ => false,
        }
    }
}

/// What an applier gave up and nobody else owns: `last` minus `owned`,
/// where a field with owned subfields counts as owned (SMD's
/// `EnsureNamedFieldsAreMembers`).
pub(crate) fn removable(last: &FieldSet, owned: &FieldSet) -> FieldSet {
    let members = last
        .members
        .iter()
        .filter(|pe| {
            let named_with_owned_children =
                matches!(pe, PathElement::Field(_)) && owned.children.contains_key(pe);
            !(owned.members.contains(pe) || named_with_owned_children)
        })
        .cloned()
        .collect();
    let children = last
        .children
        .iter()
        .filter_map(|(pe, sub)| {
            let rest = match owned.child(pe) {
                Some(o) => removable(sub, o),
                None => sub.clone(),
            };
            (!rest.is_empty()).then(|| (pe.clone(), rest))
        })
        .collect();
    FieldSet { members, children }
}
