//! Walks JSON objects the way SMD's typed values are walked without a full
//! schema: every object key is a struct field, lists follow [`ListTypes`].
//! Computes an applied configuration's field set (`ToFieldSet`) and the
//! added / modified / removed fields between two objects (`Compare`).

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, PathElement};
use crate::listtype::{ListType, ListTypes};

/// Tracks the field-name path (list positions left out) for list lookups.
pub(crate) struct Walker<'a> {
    lists: &'a dyn ListTypes,
    names: Vec<String>,
}

/// Fields that differ between two objects.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

/// Go structs that are not pointers: always present in the typed objects
/// the real server compares, so never "added" themselves.
const ALWAYS_PRESENT: &[&[&str]] = &[
    &["metadata"],
    &["spec"],
    &["status"],
    &["spec", "template"],
    &["spec", "template", "metadata"],
    &["spec", "template", "spec"],
    &["spec", "jobTemplate"],
    &["spec", "jobTemplate", "metadata"],
    &["spec", "jobTemplate", "spec"],
    &["spec", "jobTemplate", "spec", "template"],
    &["spec", "jobTemplate", "spec", "template", "metadata"],
    &["spec", "jobTemplate", "spec", "template", "spec"],
];

/// The identity of a list element (`k:` / `v:` / `i:`); errors name a
/// missing key field as SMD does.
pub(crate) fn element_pe(lt: &ListType, index: usize, item: &Value) -> Result<PathElement, String> {
    match lt {
        ListType::Atomic => Ok(PathElement::Index(index)),
        ListType::Set => Ok(PathElement::Value(item.to_string())),
        ListType::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(format!("expected map list element, got {item}"));
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                let v = match (m.get(k), k.as_str()) {
                    (Some(v), _) => v.clone(),
                    // The only defaulted list-map key among the built-in
                    // kinds (ports' `protocol`), as SMD takes schema defaults.
                    (None, "protocol") => Value::String("TCP".to_owned()),
                    (None, _) => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                        ));
                    }
                };
                fields.push((k.clone(), v.to_string()));
            }
            fields.sort();
            Ok(PathElement::Key(fields))
        }
    }
}

impl<'a> Walker<'a> {
    pub(crate) fn new(lists: &'a dyn ListTypes) -> Self {
        Walker {
            lists,
            names: Vec::new(),
        }
    }

    pub(crate) fn list_type(&self) -> ListType {
        let path: Vec<&str> = self.names.iter().map(String::as_str).collect();
        self.lists.list_type(&path)
    }

    /// Whether the map here is atomic (replaced and owned whole).
    pub(crate) fn map_atomic(&self) -> bool {
        let path: Vec<&str> = self.names.iter().map(String::as_str).collect();
        self.lists.map_atomic(&path)
    }

    pub(crate) fn push(&mut self, name: &str) {
        self.names.push(name.to_owned());
    }

    pub(crate) fn pop(&mut self) {
        self.names.pop();
    }

    fn always_present(&self) -> bool {
        ALWAYS_PRESENT
            .iter()
            .any(|p| p.iter().eq(self.names.iter()))
    }

    /// Element identities of a list; live data that cannot be keyed falls
    /// back to positions (`strict` off) instead of failing the write.
    pub(crate) fn element_pes(
        &self,
        lt: &ListType,
        items: &[Value],
        strict: bool,
    ) -> Result<Vec<PathElement>, String> {
        let mut out: Vec<PathElement> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let pe = match element_pe(lt, i, item) {
                Ok(pe) if out.contains(&pe) && strict => {
                    return Err(format!("duplicate entries for key {}", pe));
                }
                Ok(pe) => pe,
                Err(e) if strict => return Err(e),
                Err(_) => PathElement::Index(i),
            };
            out.push(pe);
        }
        Ok(out)
    }

    /// The fields an applied configuration sets (SMD `ToFieldSet`): leaves,
    /// empty maps, atomic lists and every list element.
    pub(crate) fn field_set(&mut self, config: &Map<String, Value>) -> Result<FieldSet, String> {
        let mut out = FieldSet::default();
        self.object_set(config, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    fn object_set(
        &mut self,
        m: &Map<String, Value>,
        prefix: &mut Vec<PathElement>,
        out: &mut FieldSet,
    ) -> Result<(), String> {
        for (k, v) in m {
            prefix.push(PathElement::Field(k.clone()));
            self.push(k);
            let r = self.value_set(v, prefix, out);
            self.pop();
            prefix.pop();
            r?;
        }
        Ok(())
    }

    fn value_set(
        &mut self,
        v: &Value,
        prefix: &mut Vec<PathElement>,
        out: &mut FieldSet,
    ) -> Result<(), String> {
        match v {
            Value::Object(c) if !c.is_empty() && !self.map_atomic() => {
                self.object_set(c, prefix, out)
            }
            Value::Array(items) => {
                let lt = self.list_type();
                if lt == ListType::Atomic {
                    out.insert(prefix);
                    return Ok(());
                }
                let pes = self.element_pes(&lt, items, true)?;
                for (pe, item) in pes.into_iter().zip(items) {
                    prefix.push(pe);
                    out.insert(prefix);
                    let r = match item {
                        Value::Object(c) if matches!(lt, ListType::Map(_)) => {
                            self.object_set(c, prefix, out)
                        }
                        _ => Ok(()),
                    };
                    prefix.pop();
                    r?;
                }
                Ok(())
            }
            _ => {
                out.insert(prefix);
                Ok(())
            }
        }
    }

    /// SMD `Compare` of two objects (the root is present on both sides).
    pub(crate) fn compare(
        &mut self,
        lhs: &Map<String, Value>,
        rhs: &Map<String, Value>,
    ) -> Comparison {
        let mut cmp = Comparison::default();
        self.compare_maps(Some(lhs), Some(rhs), &mut Vec::new(), &mut cmp);
        cmp
    }

    fn compare_maps(
        &mut self,
        lhs: Option<&Map<String, Value>>,
        rhs: Option<&Map<String, Value>>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        let keys: std::collections::BTreeSet<&String> = lhs
            .iter()
            .chain(rhs.iter())
            .flat_map(|m| m.keys())
            .collect();
        for k in keys {
            path.push(PathElement::Field(k.clone()));
            self.push(k);
            self.compare_node(
                lhs.and_then(|m| m.get(k)),
                rhs.and_then(|m| m.get(k)),
                path,
                cmp,
            );
            self.pop();
            path.pop();
        }
    }

    fn compare_node(
        &mut self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        let empty = |v: Option<&Value>| match v {
            None => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        let descended = match (lhs, rhs) {
            (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None)
                if !(self.map_atomic() || (empty(lhs) && empty(rhs))) =>
            {
                self.compare_maps(
                    lhs.and_then(Value::as_object),
                    rhs.and_then(Value::as_object),
                    path,
                    cmp,
                );
                true
            }
            (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None)
                if !(empty(lhs) && empty(rhs)) =>
            {
                let lt = self.list_type();
                lt != ListType::Atomic && {
                    self.compare_lists(&lt, lhs, rhs, path, cmp);
                    true
                }
            }
            _ => false,
        };
        if !descended {
            match (lhs, rhs) {
                (None, Some(_)) => cmp.added.insert(path),
                (Some(_), None) => cmp.removed.insert(path),
                (Some(l), Some(r)) if l != r => cmp.modified.insert(path),
                _ => {}
            }
            return;
        }
        if self.always_present() {
            return;
        }
        match (lhs, rhs) {
            (None, Some(_)) => cmp.added.insert(path),
            (Some(_), None) => cmp.removed.insert(path),
            _ => {}
        }
    }

    fn compare_lists(
        &mut self,
        lt: &ListType,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        let items = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
        let (l, r) = (items(lhs), items(rhs));
        let lpes = self.element_pes(lt, &l, false).unwrap_or_default();
        let rpes = self.element_pes(lt, &r, false).unwrap_or_default();
        let find = |pes: &[PathElement], items: &[Value], pe: &PathElement| {
            pes.iter()
                .position(|p| p == pe)
                .and_then(|i| items.get(i))
                .cloned()
        };
        let mut seen: Vec<&PathElement> = Vec::new();
        for pe in lpes.iter().chain(rpes.iter()) {
            if seen.contains(&pe) {
                continue;
            }
            seen.push(pe);
            let (lc, rc) = (find(&lpes, &l, pe), find(&rpes, &r, pe));
            path.push(pe.clone());
            self.compare_node(lc.as_ref(), rc.as_ref(), path, cmp);
            path.pop();
        }
    }
}
