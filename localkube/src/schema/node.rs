//! The parsed schema tree: every keyword read once at compile time, so the
//! per-request passes (prune, default, validate) never re-interpret JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::SchemaError;
use super::rules::CompiledRule;
use crate::listtype::ListType;

/// What `additionalProperties` allows.
#[derive(Debug, Clone, Default)]
pub(crate) enum Additional {
    /// Absent: only declared properties are known.
    #[default]
    None,
    /// `true`: any value, kept as is.
    Any,
    /// A schema every map value follows.
    Schema(Box<Node>),
}

/// A compiled `pattern` (the source is kept for the message).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) source: String,
    pub(crate) regex: regex::Regex,
}

/// One schema node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// Declared `type`; empty for int-or-string and untyped preserve nodes.
    pub(crate) type_: String,
    pub(crate) nullable: bool,
    pub(crate) properties: BTreeMap<String, Node>,
    pub(crate) additional: Additional,
    pub(crate) items: Option<Box<Node>>,
    pub(crate) required: Vec<String>,
    pub(crate) enum_values: Option<Vec<Value>>,
    pub(crate) minimum: Option<f64>,
    pub(crate) exclusive_minimum: bool,
    pub(crate) maximum: Option<f64>,
    pub(crate) exclusive_maximum: bool,
    pub(crate) multiple_of: Option<f64>,
    pub(crate) min_length: Option<u64>,
    pub(crate) max_length: Option<u64>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) min_items: Option<u64>,
    pub(crate) max_items: Option<u64>,
    pub(crate) min_properties: Option<u64>,
    pub(crate) max_properties: Option<u64>,
    pub(crate) format: Option<String>,
    pub(crate) default: Option<Value>,
    pub(crate) preserve_unknown: bool,
    pub(crate) int_or_string: bool,
    pub(crate) embedded: bool,
    pub(crate) list_type: Option<ListType>,
    pub(crate) rules: Vec<Arc<CompiledRule>>,
    pub(crate) all_of: Vec<Node>,
    pub(crate) any_of: Vec<Node>,
    pub(crate) one_of: Vec<Node>,
    pub(crate) not: Option<Box<Node>>,
    /// Whether this node or any below it has CEL rules (cached so the CEL
    /// pass can skip rule-free subtrees in constant time).
    pub(crate) subtree_rules: bool,
}

const TYPES: [&str; 6] = ["object", "array", "string", "integer", "number", "boolean"];

fn err(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Whether the node sits in the structural part of the tree (where the real
/// server requires types) or inside a value-validation junctor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Structural,
    ValueValidation,
}

impl Node {
    /// Parses `schema` found at `path` (e.g. `openAPIV3Schema.properties[spec]`).
    pub(crate) fn parse(schema: &Value, path: &str, mode: Mode) -> Result<Self, SchemaError> {
        let obj = schema
            .as_object()
            .ok_or_else(|| err(path, "must be an object"))?;
        let mut node = Node {
            nullable: flag(obj, "nullable", path)?,
            preserve_unknown: flag(obj, "x-kubernetes-preserve-unknown-fields", path)?,
            int_or_string: flag(obj, "x-kubernetes-int-or-string", path)?,
            embedded: flag(obj, "x-kubernetes-embedded-resource", path)?,
            exclusive_minimum: flag(obj, "exclusiveMinimum", path)?,
            exclusive_maximum: flag(obj, "exclusiveMaximum", path)?,
            minimum: float_kw(obj, "minimum", path)?,
            maximum: float_kw(obj, "maximum", path)?,
            multiple_of: float_kw(obj, "multipleOf", path)?,
            min_length: count_kw(obj, "minLength", path)?,
            max_length: count_kw(obj, "maxLength", path)?,
            min_items: count_kw(obj, "minItems", path)?,
            max_items: count_kw(obj, "maxItems", path)?,
            min_properties: count_kw(obj, "minProperties", path)?,
            max_properties: count_kw(obj, "maxProperties", path)?,
            format: str_kw(obj, "format", path)?,
            default: obj.get("default").cloned(),
            ..Node::default()
        };
        node.type_ = str_kw(obj, "type", path)?.unwrap_or_default();
        if !node.type_.is_empty() && !TYPES.contains(&node.type_.as_str()) {
            return Err(err(
                &format!("{path}.type"),
                format!("unsupported type {:?}", node.type_),
            ));
        }
        if mode == Mode::Structural {
            node.check_structural(path)?;
        }
        if node.multiple_of.is_some_and(|m| m <= 0.0) {
            return Err(err(
                &format!("{path}.multipleOf"),
                "must be greater than zero",
            ));
        }
        if obj.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
            // The real server refuses this: uniqueness is quadratic to check.
            return Err(err(
                &format!("{path}.uniqueItems"),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ));
        }
        if let Some(source) = str_kw(obj, "pattern", path)? {
            let regex = regex::Regex::new(&source)
                .map_err(|e| err(&format!("{path}.pattern"), format!("invalid pattern: {e}")))?;
            node.pattern = Some(Pattern { source, regex });
        }
        if let Some(values) = obj.get("enum") {
            let values = values
                .as_array()
                .ok_or_else(|| err(&format!("{path}.enum"), "must be an array"))?;
            node.enum_values = Some(values.clone());
        }
        node.required = string_list(obj, "required", path)?;
        node.parse_children(obj, path, mode)?;
        node.list_type = super::listtypes::parse_list_type(obj, &node, path)?;
        node.rules = super::rules::compile_rules(obj.get("x-kubernetes-validations"), path)?;
        node.subtree_rules = !node.rules.is_empty()
            || node.properties.values().any(|c| c.subtree_rules)
            || node.items.as_deref().is_some_and(|c| c.subtree_rules)
            || matches!(&node.additional, Additional::Schema(c) if c.subtree_rules);
        if node.int_or_string && node.any_of.is_empty() {
            // The real server validates int-or-string as this anyOf.
            for t in ["integer", "string"] {
                node.any_of.push(Node {
                    type_: t.into(),
                    ..Node::default()
                });
            }
        }
        Ok(node)
    }

    fn check_structural(&self, path: &str) -> Result<(), SchemaError> {
        if self.type_.is_empty() && !self.int_or_string && !self.preserve_unknown {
            return Err(err(
                &format!("{path}.type"),
                "must not be empty for specified object fields",
            ));
        }
        if self.int_or_string && !self.type_.is_empty() {
            return Err(err(
                &format!("{path}.type"),
                "must be empty if x-kubernetes-int-or-string is true",
            ));
        }
        if self.embedded && self.type_ != "object" {
            return Err(err(
                &format!("{path}.type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
        Ok(())
    }

    fn parse_children(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        mode: Mode,
    ) -> Result<(), SchemaError> {
        if let Some(props) = obj.get("properties") {
            let props = props
                .as_object()
                .ok_or_else(|| err(&format!("{path}.properties"), "must be an object"))?;
            for (name, sub) in props {
                let child = Node::parse(sub, &format!("{path}.properties[{name}]"), mode)?;
                self.properties.insert(name.clone(), child);
            }
        }
        match obj.get("additionalProperties") {
            None => {}
            Some(Value::Bool(true)) => self.additional = Additional::Any,
            Some(Value::Bool(false)) => {
                return Err(err(
                    &format!("{path}.additionalProperties"),
                    "must not be false",
                ));
            }
            Some(sub) => {
                if !self.properties.is_empty() {
                    return Err(err(
                        &format!("{path}.additionalProperties"),
                        "additionalProperties and properties are mutual exclusive",
                    ));
                }
                let child = Node::parse(sub, &format!("{path}.additionalProperties"), mode)?;
                self.additional = Additional::Schema(Box::new(child));
            }
        }
        if let Some(items) = obj.get("items") {
            if items.is_array() {
                return Err(err(
                    &format!("{path}.items"),
                    "items must be a schema object and not an array",
                ));
            }
            self.items = Some(Box::new(Node::parse(
                items,
                &format!("{path}.items"),
                mode,
            )?));
        } else if self.type_ == "array" && mode == Mode::Structural {
            return Err(err(&format!("{path}.items"), "must be specified"));
        }
        for (key, target) in [
            ("allOf", &mut self.all_of),
            ("anyOf", &mut self.any_of),
            ("oneOf", &mut self.one_of),
        ] {
            if let Some(branches) = obj.get(key) {
                let branches = branches
                    .as_array()
                    .ok_or_else(|| err(&format!("{path}.{key}"), "must be an array"))?;
                for (i, b) in branches.iter().enumerate() {
                    target.push(Node::parse(
                        b,
                        &format!("{path}.{key}[{i}]"),
                        Mode::ValueValidation,
                    )?);
                }
            }
        }
        if let Some(not) = obj.get("not") {
            self.not = Some(Box::new(Node::parse(
                not,
                &format!("{path}.not"),
                Mode::ValueValidation,
            )?));
        }
        Ok(())
    }

    /// The declared type as CEL errors report it (`sv.Type` in the server).
    pub(crate) fn type_name(&self) -> &str {
        &self.type_
    }

    /// Whether the node or anything below it carries CEL rules.
    pub(crate) fn has_rules(&self) -> bool {
        self.subtree_rules
    }
}

fn flag(obj: &Map<String, Value>, key: &str, path: &str) -> Result<bool, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be a boolean")),
    }
}

fn float_kw(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be a number")),
    }
}

fn count_kw(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| err(&format!("{path}.{key}"), "must be a non-negative integer")),
    }
}

fn str_kw(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be a string")),
    }
}

pub(crate) fn string_list(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Vec<String>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(&format!("{path}.{key}"), "must be strings"))
            })
            .collect(),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be an array of strings")),
    }
}
