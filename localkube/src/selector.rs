//! Label selectors (equality and set-based, from query strings and from
//! LabelSelector objects) and field selectors with the fields each kind
//! supports, parsed and matched as the real server does.

use std::collections::BTreeMap;

use serde_json::Value;

/// A selector that cannot be parsed or names an unsupported field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector is malformed.
    #[error("unable to parse requirement: {0}")]
    Label(String),
    /// The field selector is malformed.
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
    /// The field is not supported for the resource.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// One label requirement's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    NotExists,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector; the default matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
    nothing: bool,
}

fn valid_value(v: &str) -> bool {
    let b = v.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    b.is_empty()
        || (b.len() <= 63
            && b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter()
                .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.')))
}

fn valid_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(crate::names::is_subdomain) && !name.is_empty() && valid_value(name)
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s.get(start..).unwrap_or(""));
    out
}

fn parse_requirement(raw: &str) -> Result<Requirement, SelectorError> {
    let s = raw.trim();
    let bad = |why: &str| SelectorError::Label(format!("{why}: '{s}'"));
    let req = |key: &str, op: Op, values: Vec<String>| -> Result<Requirement, SelectorError> {
        let key = key.trim();
        if !valid_key(key) {
            return Err(SelectorError::Label(format!(
                "key: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            )));
        }
        if let Some(v) = values.iter().find(|v| !valid_value(v)) {
            return Err(SelectorError::Label(format!(
                "values[0][{key}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            )));
        }
        Ok(Requirement {
            key: key.to_owned(),
            op,
            values,
        })
    };
    if let Some(k) = s.strip_prefix('!') {
        return req(k, Op::NotExists, Vec::new());
    }
    for (tok, op) in [
        ("!=", Op::NotEq),
        ("==", Op::Eq),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
    ] {
        if let Some((k, v)) = s.split_once(tok) {
            let v = v.trim();
            if (op == Op::Gt || op == Op::Lt) && v.parse::<i64>().is_err() {
                return Err(bad(
                    "for 'Gt', 'Lt' operators, the value must be an integer",
                ));
            }
            return req(k, op, vec![v.to_owned()]);
        }
    }
    let words: Vec<&str> = s.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [k] if !k.is_empty() => req(k, Op::Exists, Vec::new()),
        [k, rest] => {
            let rest = rest.trim();
            let (op, set) = if let Some(r) = rest.strip_prefix("notin") {
                (Op::NotIn, r)
            } else if let Some(r) = rest.strip_prefix("in") {
                (Op::In, r)
            } else {
                return Err(bad(
                    "found unexpected token, expected: in, notin, =, ==, !=",
                ));
            };
            let set = set.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| bad("found unexpected token, expected: '('"))?;
            let values: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(bad(
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
            req(k, op, values)
        }
        _ => Err(bad("found '', expected: identifier")),
    }
}

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    ///
    /// # Errors
    /// [`SelectorError::Label`] when malformed.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let reqs = split_top(s)
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            reqs,
            nothing: false,
        })
    }

    /// From a LabelSelector object; `null` selects nothing, `{}` everything.
    pub fn from_object(v: Option<&Value>) -> Self {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Self {
                reqs: Vec::new(),
                nothing: true,
            };
        };
        let mut reqs = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Eq,
                    values: vec![val.as_str().unwrap_or("").to_owned()],
                });
            }
        }
        for e in v
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let values = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let op = match e.get("operator").and_then(Value::as_str) {
                Some("In") => Op::In,
                Some("NotIn") => Op::NotIn,
                Some("Exists") => Op::Exists,
                Some("DoesNotExist") => Op::NotExists,
                // An unknown operator matches nothing, as an invalid selector does.
                _ => {
                    return Self {
                        reqs: Vec::new(),
                        nothing: true,
                    };
                }
            };
            reqs.push(Requirement { key, op, values });
        }
        Self {
            reqs,
            nothing: false,
        }
    }

    /// Whether it matches everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty() && !self.nothing
    }

    /// Whether `labels` match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_by(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the object's labels match (read in place: a controller
    /// matches every pod against every Service's selector each pass).
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.matches_by(|k| {
            labels
                .and_then(|m| m.get(k))
                .map(|v| v.as_str().unwrap_or(""))
        })
    }

    /// Whether labels read through `get` (a key's value, if any) match.
    fn matches_by<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        if self.nothing {
            return false;
        }
        self.reqs.iter().all(|r| {
            let have = get(&r.key);
            let first = r.values.first().map(String::as_str);
            let num = |v: Option<&str>| v.and_then(|s| s.parse::<i64>().ok());
            let listed = |h: &str| r.values.iter().any(|v| v == h);
            match r.op {
                Op::Eq => have.is_some() && have == first,
                Op::NotEq => have != first,
                Op::In => have.is_some_and(listed),
                Op::NotIn => have.is_none_or(|h| !listed(h)),
                Op::Exists => have.is_some(),
                Op::NotExists => have.is_none(),
                Op::Gt => matches!((num(have), num(first)), (Some(a), Some(b)) if a > b),
                Op::Lt => matches!((num(have), num(first)), (Some(a), Some(b)) if a < b),
            }
        })
    }

    /// The query-string form (`a=b,c in (d,e)`), as Scale's `status.selector`.
    pub fn to_query(&self) -> String {
        let mut parts: Vec<String> = self
            .reqs
            .iter()
            .map(|r| match r.op {
                Op::Eq => format!("{}={}", r.key, r.values.join(",")),
                Op::NotEq => format!("{}!={}", r.key, r.values.join(",")),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::NotExists => format!("!{}", r.key),
                Op::Gt => format!("{}>{}", r.key, r.values.join(",")),
                Op::Lt => format!("{}<{}", r.key, r.values.join(",")),
            })
            .collect();
        parts.sort();
        parts.join(",")
    }
}

/// The labels of an object.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed field selector.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

/// The fields a resource can be selected by, beyond metadata name/namespace.
fn supported(group: &str, plural: &str, field: &str) -> bool {
    if field == "metadata.name" || field == "metadata.namespace" {
        return true;
    }
    match (group, plural) {
        ("", "pods") => matches!(
            field,
            "status.phase"
                | "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        ("", "events") => matches!(
            field,
            "involvedObject.kind"
                | "involvedObject.namespace"
                | "involvedObject.name"
                | "involvedObject.uid"
                | "involvedObject.apiVersion"
                | "involvedObject.resourceVersion"
                | "involvedObject.fieldPath"
                | "reason"
                | "reportingComponent"
                | "source"
                | "type"
        ),
        ("", "secrets") => field == "type",
        ("", "namespaces") => field == "status.phase",
        ("", "nodes") => field == "spec.unschedulable",
        _ => false,
    }
}

fn field_value(obj: &Value, field: &str) -> String {
    let path = match field {
        "source" => "source.component",
        f => f,
    };
    let mut cur = obj;
    for p in path.split('.') {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

impl FieldSelector {
    /// Parses a `fieldSelector` for `plural` in `group`.
    ///
    /// # Errors
    /// Malformed, or a field the resource does not support.
    pub fn parse(s: &str, group: &str, plural: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(SelectorError::Field(s.to_owned(), part.to_owned()));
            };
            let k = k.trim();
            if !supported(group, plural, k) {
                return Err(SelectorError::UnsupportedField(k.to_owned()));
            }
            reqs.push((k.to_owned(), eq, v.trim().to_owned()));
        }
        Ok(Self { reqs })
    }

    /// Selects exactly the object named `name`.
    pub fn name(name: &str) -> Self {
        Self {
            reqs: vec![("metadata.name".to_owned(), true, name.to_owned())],
        }
    }

    /// Whether `obj` matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs
            .iter()
            .all(|(k, eq, v)| (field_value(obj, k) == *v) == *eq)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "a")]);
        assert!(LabelSelector::parse("app=web").unwrap().matches(&l));
        assert!(
            LabelSelector::parse("app==web,tier!=b")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelSelector::parse("app in (web, db),tier")
                .unwrap()
                .matches(&l)
        );
        assert!(!LabelSelector::parse("app notin (web)").unwrap().matches(&l));
        assert!(LabelSelector::parse("!missing").unwrap().matches(&l));
        assert!(LabelSelector::parse("app in (").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn object_selectors() {
        let s = LabelSelector::from_object(Some(
            &json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "r", "operator": "Exists"}]}),
        ));
        assert_eq!(s.to_query(), "app=x,r");
        assert!(!LabelSelector::from_object(None).matches(&labels(&[])));
        assert!(LabelSelector::from_object(Some(&json!({}))).matches(&labels(&[])));
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("status.phase=Running", "", "pods")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=p", "", "pods")
                .unwrap()
                .matches(&pod)
        );
        assert_eq!(
            FieldSelector::parse("spec.foo=1", "", "configmaps")
                .unwrap_err()
                .to_string(),
            "field label not supported: spec.foo"
        );
    }
}
