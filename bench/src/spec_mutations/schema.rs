//! The CRDs' schemas: each `spec` walked into a flat list of [`Field`]s,
//! and a validator ([`validate`]) that says what the API server would do
//! with a spec: defaults applied, then the structural schema and the
//! `x-kubernetes-validations` rules checked.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One step of a [`Field`]'s path below `spec`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A property of an object.
    Key(String),
    /// Every item of an array (an index in a concrete spec).
    Items,
    /// Every value of a map (`additionalProperties`; a key in a concrete spec).
    Values,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Key(k) => write!(f, ".{k}"),
            Segment::Items => write!(f, "[]"),
            Segment::Values => write!(f, "{{}}"),
        }
    }
}

/// The type of a [`Field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// `type: string`.
    String,
    /// `type: integer`.
    Integer,
    /// `type: number`.
    Number,
    /// `type: boolean`.
    Boolean,
    /// `type: object` with `properties` (or none at all).
    Object,
    /// `type: array`, with its items' type.
    Array(Box<FieldType>),
    /// `type: object` with an `additionalProperties` schema: a map.
    Map(Box<FieldType>),
    /// `x-kubernetes-int-or-string`.
    IntOrString,
    /// `x-kubernetes-preserve-unknown-fields` or no type: anything.
    Opaque,
}

/// One `x-kubernetes-validations` rule (CEL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The CEL expression.
    pub rule: String,
    /// The message the API server gives when it is false.
    pub message: String,
    /// The field it is reported on, relative to the node (`.replicas`).
    pub field_path: Option<String>,
}

/// A field of a spec, from its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Where it is below `spec`.
    pub path: Vec<Segment>,
    /// Its type.
    pub ty: FieldType,
    /// Its `format` (`int32`, `int64`, `date-time`, ...).
    pub format: Option<String>,
    /// Its `enum` (empty when any value of its type goes).
    pub enum_values: Vec<Value>,
    /// Its `minimum`.
    pub minimum: Option<f64>,
    /// Its `maximum`.
    pub maximum: Option<f64>,
    /// Its `minLength`.
    pub min_length: Option<u64>,
    /// Its `maxLength`.
    pub max_length: Option<u64>,
    /// Its `pattern`.
    pub pattern: Option<String>,
    /// Its `maxItems`.
    pub max_items: Option<u64>,
    /// Whether its parent object lists it as `required`.
    pub required: bool,
    /// Its `nullable`.
    pub nullable: bool,
    /// Its `default`.
    pub default: Option<Value>,
    /// Its `description`.
    pub description: Option<String>,
    /// Its `x-kubernetes-validations`.
    pub rules: Vec<Rule>,
    /// Its schema node as written in the CRD.
    pub schema: Value,
}

impl Field {
    /// The path as a JSON pointer below `spec`, `*` standing for every
    /// item of an array or value of a map: `/affinity/nodeAffinity/…/*/weight`.
    pub fn pointer(&self) -> String {
        self.path
            .iter()
            .map(|s| match s {
                Segment::Key(k) => format!("/{}", escape(k)),
                Segment::Items | Segment::Values => "/*".to_owned(),
            })
            .collect()
    }

    /// The path for people: `affinity.nodeAffinity.…[].weight`.
    pub fn name(&self) -> String {
        let s: String = self.path.iter().map(ToString::to_string).collect();
        s.strip_prefix('.').map(str::to_owned).unwrap_or(s)
    }
}

/// A JSON pointer's escaping of one key (`~` → `~0`, `/` → `~1`).
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// One CRD's kind and the fields of its `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdSchema {
    /// `spec.names.kind`: `ValkeyCluster`.
    pub kind: String,
    /// `spec.group`: `valkey.logbook.dev`.
    pub group: String,
    /// The version whose schema this is (the one asked for if served, else the storage one, else the first served).
    pub version: String,
    /// Every field below `spec`, parents before children.
    pub fields: Vec<Field>,
    /// The schema of `spec` itself, as written in the CRD.
    pub spec_schema: Value,
}

impl CrdSchema {
    /// The field whose [`Field::pointer`] is `pointer`.
    pub fn field(&self, pointer: &str) -> Option<&Field> {
        let len = pointer.matches('/').count();
        let same = |s: &Segment, p: &str| match s {
            Segment::Key(k) if p.contains('~') => escape(k) == p,
            Segment::Key(k) => k == p,
            Segment::Items | Segment::Values => p == "*",
        };
        let is = |f: &&Field| {
            let parts = pointer.split('/').skip(1);
            f.path.len() == len && f.path.iter().zip(parts).all(|(s, p)| same(s, p))
        };
        self.fields.iter().find(is)
    }
}

/// Why a CRD file could not be read into schemas.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML.
    #[error("{origin} is not YAML: {source}")]
    NotYaml {
        /// The file (or `<text>`).
        origin: String,
        /// The parser's complaint.
        #[source]
        source: serde_yaml::Error,
    },
    /// No document is a `CustomResourceDefinition`.
    #[error("{origin} holds no CustomResourceDefinition ({documents} YAML documents)")]
    NoCrd {
        /// The file (or `<text>`).
        origin: String,
        /// How many documents it has.
        documents: usize,
    },
    /// A CRD lacks something every CRD has.
    #[error("{origin}: CustomResourceDefinition {name:?} has no {what}")]
    Malformed {
        /// The file (or `<text>`).
        origin: String,
        /// `metadata.name`, if any.
        name: String,
        /// What is missing (`spec.names.kind`, `spec.versions`, ...).
        what: &'static str,
    },
    /// A CRD's version has no schema for `spec`.
    #[error("{origin}: {kind} version {version:?} has no {what}")]
    NoSchema {
        /// The file (or `<text>`).
        origin: String,
        /// The CRD's kind.
        kind: String,
        /// The version chosen (the one asked for if served, else the storage one, else the first served).
        version: String,
        /// What is missing.
        what: &'static str,
    },
}

/// Reads the CRDs in a (multi-document) YAML file.
///
/// # Errors
/// [`SchemaError`] naming the file and what is wrong with it.
pub fn load_crds(path: &Path) -> Result<Vec<CrdSchema>, SchemaError> {
    load_crds_at(path, None)
}

/// [`load_crds`], each CRD's schema at `version` where it serves it (the
/// version a client writes at), else at the one it stores.
///
/// # Errors
/// [`SchemaError`] naming the file and what is wrong with it.
pub fn load_crds_at(path: &Path, version: Option<&str>) -> Result<Vec<CrdSchema>, SchemaError> {
    let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &path.display().to_string(), version)
}

/// [`load_crds`] of text already read.
///
/// # Errors
/// [`SchemaError`] with `<text>` as the origin.
pub fn parse_crds(text: &str) -> Result<Vec<CrdSchema>, SchemaError> {
    parse(text, "<text>", None)
}

fn parse(text: &str, origin: &str, version: Option<&str>) -> Result<Vec<CrdSchema>, SchemaError> {
    let not_yaml = |source| SchemaError::NotYaml {
        origin: origin.to_owned(),
        source,
    };
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        // `singleton_map` passes anything but enums straight through; it is
        // how to deserialise one document without naming serde's traits.
        let doc: Value = serde_yaml::with::singleton_map::deserialize(doc).map_err(not_yaml)?;
        docs.push(doc);
    }
    let crds: Vec<&Value> = docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .collect();
    if crds.is_empty() {
        return Err(SchemaError::NoCrd {
            origin: origin.to_owned(),
            documents: docs.iter().filter(|d| !d.is_null()).count(),
        });
    }
    crds.into_iter()
        .map(|crd| one_crd(crd, origin, version))
        .collect()
}

/// The string at a JSON pointer.
fn text_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn one_crd(crd: &Value, origin: &str, version: Option<&str>) -> Result<CrdSchema, SchemaError> {
    let origin = origin.to_owned();
    let name = text_at(crd, "/metadata/name").unwrap_or("").to_owned();
    let malformed = |what| {
        let (origin, name) = (origin.clone(), name.clone());
        SchemaError::Malformed { origin, name, what }
    };
    let text = |p: &str, what| {
        text_at(crd, p)
            .map(str::to_owned)
            .ok_or_else(|| malformed(what))
    };
    let kind = text("/spec/names/kind", "spec.names.kind")?;
    let group = text("/spec/group", "spec.group")?;
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    let flagged = |f: &str| {
        versions?
            .iter()
            .find(|v| v.get(f) == Some(&Value::Bool(true)))
    };
    // The version asked for when it is served (the trials write a
    // ValkeyCluster at v1alpha1: every step crosses the conversion
    // webhook to the stored v1beta1 and back), else the one stored.
    let asked = version.and_then(|want| {
        versions?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(want))
            .filter(|v| v.get("served") == Some(&Value::Bool(true)))
    });
    let chosen = asked
        .or_else(|| flagged("storage"))
        .or_else(|| flagged("served"))
        .ok_or_else(|| malformed("storage or served version in spec.versions"))?;
    let version = text_at(chosen, "/name").unwrap_or("").to_owned();
    let no_schema = |what| {
        let (origin, kind, version) = (origin.clone(), kind.clone(), version.clone());
        SchemaError::NoSchema {
            origin,
            kind,
            version,
            what,
        }
    };
    let object = |p: &str, what| {
        chosen
            .pointer(p)
            .filter(|s| s.is_object())
            .ok_or_else(|| no_schema(what))
    };
    object("/schema/openAPIV3Schema", "schema.openAPIV3Schema")?;
    let spec_schema = object(
        "/schema/openAPIV3Schema/properties/spec",
        "openAPIV3Schema.properties.spec",
    )?
    .clone();
    let mut fields = Vec::new();
    walk(&spec_schema, &mut Vec::new(), &mut fields);
    Ok(CrdSchema {
        kind,
        group,
        version,
        fields,
        spec_schema,
    })
}

/// The [`FieldType`] of a schema node.
pub(crate) fn field_type(node: &Value) -> FieldType {
    let flag = |f: &str| node.get(f).and_then(Value::as_bool) == Some(true);
    if flag("x-kubernetes-int-or-string") {
        return FieldType::IntOrString;
    }
    match node.get("type").and_then(Value::as_str) {
        Some("string") => FieldType::String,
        Some("integer") => FieldType::Integer,
        Some("number") => FieldType::Number,
        Some("boolean") => FieldType::Boolean,
        Some("array") => match node.get("items") {
            Some(items) => FieldType::Array(Box::new(field_type(items))),
            None => FieldType::Array(Box::new(FieldType::Opaque)),
        },
        Some("object") => match node.get("additionalProperties") {
            Some(ap) if ap.is_object() => FieldType::Map(Box::new(field_type(ap))),
            _ if flag("x-kubernetes-preserve-unknown-fields")
                && node.get("properties").is_none() =>
            {
                FieldType::Opaque
            }
            _ => FieldType::Object,
        },
        _ => FieldType::Opaque,
    }
}

fn walk(node: &Value, path: &mut Vec<Segment>, out: &mut Vec<Field>) {
    let required = node.get("required").and_then(Value::as_array);
    let required = |k: &str| required.is_some_and(|r| r.iter().any(|x| x.as_str() == Some(k)));
    let props = node.get("properties").and_then(Value::as_object);
    let mut children: Vec<(Segment, &Value, bool)> = props
        .into_iter()
        .flatten()
        .map(|(k, child)| (Segment::Key(k.clone()), child, required(k)))
        .collect();
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        children.push((Segment::Items, items, false));
    }
    if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
        children.push((Segment::Values, ap, false));
    }
    for (segment, child, required) in children {
        path.push(segment);
        out.push(field(child, path.clone(), required));
        walk(child, path, out);
        path.pop();
    }
}

fn field(node: &Value, path: Vec<Segment>, required: bool) -> Field {
    let num = |k: &str| node.get(k).and_then(Value::as_f64);
    let int = |k: &str| node.get(k).and_then(Value::as_u64);
    let text = |k: &str| node.get(k).and_then(Value::as_str).map(str::to_owned);
    let enum_values = node.get("enum").and_then(Value::as_array);
    Field {
        path,
        ty: field_type(node),
        format: text("format"),
        enum_values: enum_values.cloned().unwrap_or_default(),
        minimum: num("minimum"),
        maximum: num("maximum"),
        min_length: int("minLength"),
        max_length: int("maxLength"),
        pattern: text("pattern"),
        max_items: int("maxItems"),
        required,
        nullable: nullable(node),
        default: node.get("default").cloned(),
        description: text("description"),
        rules: rules(node),
        schema: node.clone(),
    }
}

fn rules(node: &Value) -> Vec<Rule> {
    let list = node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array);
    let rule = |r: &Value| {
        let rule = text_at(r, "/rule")?.to_owned();
        let message =
            text_at(r, "/message").map_or_else(|| format!("failed: {rule}"), str::to_owned);
        let field_path = text_at(r, "/fieldPath").map(str::to_owned);
        Some(Rule {
            rule,
            message,
            field_path,
        })
    };
    list.into_iter().flatten().filter_map(rule).collect()
}

/// JSON equality with numbers compared by value (`1 == 1.0`), as CEL and
/// the API server compare them.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// What the API server's validation says about a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It passes the structural schema and every rule.
    Valid,
    /// It is refused; the first reason, as `spec.path: why`.
    Invalid(String),
    /// Nothing refuses it, but a rule or pattern could not be evaluated here.
    Undecided(String),
}

/// What the API server would say to `new` as an update of `old` (or, with
/// no `old`, as a creation): defaults applied to both, then types, enums,
/// bounds, lengths, patterns, item counts, required fields, and the
/// `x-kubernetes-validations` rules (transition rules only with `old`).
pub fn validate(schema: &CrdSchema, old: Option<&Value>, new: &Value) -> Verdict {
    let node = &schema.spec_schema;
    let new = with_defaults(node, new);
    let old = old.map(|o| with_defaults(node, o));
    let mut out = (None, None);
    check(node, &new, old.as_ref(), "spec", &mut out);
    match out {
        (Some(why), _) => Verdict::Invalid(why),
        (None, Some(why)) => Verdict::Undecided(why),
        (None, None) => Verdict::Valid,
    }
}

/// Why the API server would refuse to create an object with this spec, if
/// it would (a rule it cannot evaluate here does not count).
pub fn violates(schema: &CrdSchema, spec: &Value) -> Option<String> {
    match validate(schema, None, spec) {
        Verdict::Invalid(why) => Some(why),
        Verdict::Valid | Verdict::Undecided(_) => None,
    }
}

fn nullable(node: &Value) -> bool {
    node.get("nullable").and_then(Value::as_bool) == Some(true)
}

/// `value` with the schema's defaults applied as the API server applies
/// them: a property absent (or null and not nullable) takes its default,
/// recursively, and a null that is not nullable is pruned.
pub(crate) fn with_defaults(node: &Value, value: &Value) -> Value {
    let mut v = value.clone();
    default_into(node, &mut v);
    v
}

fn default_into(node: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                for (k, prop) in props {
                    if map.get(k).is_some_and(|v| v.is_null() && !nullable(prop)) {
                        map.remove(k);
                    }
                    if let (false, Some(d)) = (map.contains_key(k), prop.get("default")) {
                        map.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = map.get_mut(k) {
                        default_into(prop, child);
                    }
                }
            }
            if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
                map.values_mut().for_each(|v| default_into(ap, v));
            }
        }
        Value::Array(items) => {
            if let Some(schema) = node.get("items") {
                items.iter_mut().for_each(|v| default_into(schema, v));
            }
        }
        _ => {}
    }
}

/// The first refusal and the first undecidable check met.
type Findings = (Option<String>, Option<String>);

fn check(node: &Value, v: &Value, old: Option<&Value>, at: &str, out: &mut Findings) {
    if out.0.is_some() || v.is_null() {
        return;
    }
    if let Err(why) = check_node(node, v, old, at, out) {
        out.0 = Some(format!("{at}: {why}"));
        return;
    }
    let list = node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array);
    for r in list.into_iter().flatten() {
        let rule = text_at(r, "/rule").unwrap_or("");
        let verdict = super::cel::check(rule, v, old);
        if verdict == Some(true) {
            continue;
        }
        let at = format!("{at}{}", text_at(r, "/fieldPath").unwrap_or(""));
        match (verdict, text_at(r, "/message")) {
            (Some(false), Some(message)) => out.0.get_or_insert(format!("{at}: {message}")),
            (Some(false), None) => out.0.get_or_insert(format!("{at}: failed: {rule}")),
            _ => out
                .1
                .get_or_insert(format!("{at}: cannot evaluate rule `{rule}`")),
        };
    }
}

/// Schema keywords the validator does not evaluate: a value under one is
/// undecided (so are a string `format` and duplicates in a set or map list).
const UNSUPPORTED: [&str; 7] = [
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "multipleOf",
    "minProperties",
    "maxProperties",
];

fn check_node(
    node: &Value,
    v: &Value,
    old: Option<&Value>,
    at: &str,
    out: &mut Findings,
) -> Result<(), String> {
    let string_format = v.is_string() && node.get("format").is_some();
    let many = v.as_array().is_some_and(|a| a.len() > 1);
    let set = many
        && node
            .get("x-kubernetes-list-type")
            .is_some_and(|t| t != "atomic");
    let unsupported = UNSUPPORTED.iter().find(|k| node.get(**k).is_some());
    if let Some(k) = unsupported
        .or(string_format.then_some(&"format"))
        .or(set.then_some(&"list-type"))
    {
        out.1.get_or_insert(format!("{at}: cannot evaluate {k}"));
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| json_eq(a, v))
    {
        return Err(format!(
            "{v} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }
    let integral = v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0);
    match field_type(node) {
        FieldType::IntOrString if !(integral || v.is_string()) => {
            Err(format!("{v} is neither an integer nor a string"))
        }
        FieldType::String => {
            let s = v.as_str().ok_or_else(|| format!("{v} is not a string"))?;
            match string_problem(node, s) {
                Some(Problem::Refused(why)) => Err(why),
                Some(Problem::Unknown(why)) => {
                    out.1.get_or_insert(format!("{at}: {why}"));
                    Ok(())
                }
                None => Ok(()),
            }
        }
        FieldType::Integer if !integral => Err(format!("{v} is not an integer")),
        FieldType::Number if !v.is_number() => Err(format!("{v} is not a number")),
        FieldType::Integer | FieldType::Number => bounds(node, v.as_f64().unwrap_or(0.0)),
        FieldType::Boolean if !v.is_boolean() => Err(format!("{v} is not a boolean")),
        FieldType::Array(_) => {
            let items = v.as_array().ok_or_else(|| format!("{v} is not an array"))?;
            let n = items.len() as u64;
            let limit = |k: &str| node.get(k).and_then(Value::as_u64);
            if let Some(max) = limit("maxItems").filter(|m| n > *m) {
                return Err(format!("{n} items, more than maxItems {max}"));
            }
            if let Some(min) = limit("minItems").filter(|m| n < *m) {
                return Err(format!("{n} items, fewer than minItems {min}"));
            }
            if let Some(schema) = node.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(schema, item, None, &format!("{at}[{i}]"), out);
                }
            }
            Ok(())
        }
        FieldType::Object | FieldType::Map(_) => {
            let map = v
                .as_object()
                .ok_or_else(|| format!("{v} is not an object"))?;
            let required = node.get("required").and_then(Value::as_array);
            for k in required.into_iter().flatten().filter_map(Value::as_str) {
                // Defaults are applied and non-nullable nulls pruned: absent is absent.
                if !map.contains_key(k) {
                    return Err(format!("required field {k:?} is missing"));
                }
            }
            let props = node.get("properties").and_then(Value::as_object);
            let ap = node.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in map {
                let old_child = old.and_then(|o| o.get(k)).filter(|o| !o.is_null());
                match (props.and_then(|p| p.get(k)), ap) {
                    (Some(prop), _) => check(prop, child, old_child, &format!("{at}.{k}"), out),
                    (None, Some(ap)) => check(ap, child, old_child, &format!("{at}[{k:?}]"), out),
                    // Unknown fields are pruned, not refused.
                    (None, None) => {}
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn bounds(node: &Value, x: f64) -> Result<(), String> {
    let flag = |k: &str| node.get(k).and_then(Value::as_bool) == Some(true);
    if let Some(min) = node.get("minimum").and_then(Value::as_f64)
        && (x < min || (flag("exclusiveMinimum") && x == min))
    {
        return Err(format!("{x} is below the minimum {min}"));
    }
    if let Some(max) = node.get("maximum").and_then(Value::as_f64)
        && (x > max || (flag("exclusiveMaximum") && x == max))
    {
        return Err(format!("{x} is above the maximum {max}"));
    }
    Ok(())
}

/// Whether a string passes its schema node's lengths and pattern.
pub(crate) fn string_ok(node: &Value, s: &str) -> bool {
    string_problem(node, s).is_none()
}

/// What is wrong with a string for its schema node.
enum Problem {
    Refused(String),
    Unknown(String),
}

fn string_problem(node: &Value, s: &str) -> Option<Problem> {
    let len = s.chars().count() as u64;
    let limit = |k: &str| node.get(k).and_then(Value::as_u64);
    if let Some(min) = limit("minLength").filter(|m| len < *m) {
        return Some(Problem::Refused(format!(
            "{len} characters, fewer than minLength {min}"
        )));
    }
    if let Some(max) = limit("maxLength").filter(|m| len > *m) {
        return Some(Problem::Refused(format!(
            "{len} characters, more than maxLength {max}"
        )));
    }
    let pattern = node.get("pattern").and_then(Value::as_str)?;
    match super::pattern::matches(pattern, s) {
        Some(true) => None,
        Some(false) => Some(Problem::Refused(format!("{s:?} does not match {pattern}"))),
        None => Some(Problem::Unknown(format!(
            "cannot evaluate pattern {pattern}"
        ))),
    }
}
