//! `x-kubernetes-validations`: each rule compiled once at schema compile
//! time, evaluated per node with `self` (and `oldSelf`) bound, failures
//! worded as the real server's CEL validator words them.

use kube_cel::cel::{Context, Program, Value as Cel};
use serde_json::Value;

use super::celvalue::{Helpers, helper};
use super::{Cause, SchemaError, gofmt};

/// The reasons a rule may declare.
const REASONS: [&str; 4] = [
    "FieldValueInvalid",
    "FieldValueForbidden",
    "FieldValueRequired",
    "FieldValueDuplicate",
];

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) rule: String,
    program: Program,
    message: Option<String>,
    message_expression: Option<Program>,
    field_path: Option<String>,
    reason: Option<String>,
    optional_old_self: bool,
    /// The rule reads `oldSelf`, so it only runs on update.
    pub(crate) transition: bool,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    rule: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_expression: Option<String>,
    #[serde(default)]
    field_path: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    optional_old_self: Option<bool>,
}

fn err(path: String, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        path,
        message: message.into(),
    }
}

/// Compiles a node's `x-kubernetes-validations` list.
pub(crate) fn compile_rules(
    raw: Option<&Value>,
    path: &str,
) -> Result<Vec<std::sync::Arc<CompiledRule>>, SchemaError> {
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = raw.as_array().ok_or_else(|| {
        err(
            format!("{path}.x-kubernetes-validations"),
            "must be an array",
        )
    })?;
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        let r: RawRule =
            serde_json::from_value(item.clone()).map_err(|e| err(at.clone(), e.to_string()))?;
        out.push(std::sync::Arc::new(compile_one(r, &at)?));
    }
    Ok(out)
}

fn compile_one(r: RawRule, at: &str) -> Result<CompiledRule, SchemaError> {
    if r.rule.trim().is_empty() {
        return Err(err(format!("{at}.rule"), "Required value"));
    }
    let program = Program::compile(&r.rule)
        .map_err(|e| err(format!("{at}.rule"), format!("compilation failed: {e}")))?;
    let transition = program.references().has_variable("oldSelf");
    let message_expression = match r.message_expression.as_deref() {
        Some(src) => Some(Program::compile(src).map_err(|e| {
            err(
                format!("{at}.messageExpression"),
                format!("compilation failed: {e}"),
            )
        })?),
        None => None,
    };
    if r.message.as_deref().is_some_and(|m| m.contains('\n')) {
        return Err(err(
            format!("{at}.message"),
            "message must not contain line breaks",
        ));
    }
    if let Some(reason) = r.reason.as_deref().filter(|r| !REASONS.contains(r)) {
        return Err(err(
            format!("{at}.reason"),
            format!(
                "Unsupported value: {}: supported values: {}",
                gofmt::quote(reason),
                quoted(&REASONS)
            ),
        ));
    }
    let optional_old_self = r.optional_old_self.unwrap_or(false);
    if optional_old_self && !transition {
        return Err(err(
            format!("{at}.optionalOldSelf"),
            "may not be set if rule does not use oldSelf",
        ));
    }
    Ok(CompiledRule {
        rule: r.rule,
        program,
        message: r.message,
        message_expression,
        field_path: r.field_path,
        reason: r.reason,
        optional_old_self,
        transition,
    })
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| gofmt::quote(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the rule is evaluated.
pub(crate) struct Site<'a> {
    pub(crate) ctx: &'a Context<'a>,
    pub(crate) helpers: &'a Helpers,
    /// Field path of the node (`<nil>` at the root).
    pub(crate) field: &'a str,
    /// The node's declared type, the "value" the server prints.
    pub(crate) type_name: &'a str,
}

impl CompiledRule {
    /// Evaluates the rule; `old` is `None` on create or when uncorrelated.
    pub(crate) fn evaluate(
        &self,
        site: &Site<'_>,
        this: &Cel,
        old: Option<&Cel>,
        out: &mut Vec<Cause>,
    ) {
        if self.transition && old.is_none() && !self.optional_old_self {
            return;
        }
        let mut scope = site.ctx.new_inner_scope();
        scope.add_variable_from_value("self", this.clone());
        if self.optional_old_self {
            // With optionalOldSelf the server binds oldSelf as an optional.
            let bound = match old {
                Some(o) => helper(site.ctx, &site.helpers.optional_of, o.clone()),
                None => helper(site.ctx, &site.helpers.optional_none, Cel::Null),
            };
            scope.add_variable_from_value("oldSelf", bound.unwrap_or(Cel::Null));
        } else if let Some(o) = old {
            scope.add_variable_from_value("oldSelf", o.clone());
        }
        let field = self.error_field(site.field);
        let type_value = gofmt::quote(site.type_name);
        match self.program.execute(&scope) {
            Ok(Cel::Bool(true)) => {}
            Ok(Cel::Bool(false)) => {
                let detail = self.failure_message(&scope);
                out.push(self.cause_for_reason(&field, &type_value, &detail));
            }
            Ok(other) => out.push(gofmt::invalid_rendered(
                &field,
                &type_value,
                &format!(
                    "rule did not evaluate to a bool but to {:?}: {}",
                    other.type_of(),
                    self.rule_string()
                ),
            )),
            Err(e) => {
                let e = e.to_string();
                let detail = if e.starts_with("no such overload")
                    || e.contains("Unsupported binary operator")
                {
                    format!(
                        "'{e}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                        self.rule_string()
                    )
                } else {
                    format!("{e} evaluating rule: {}", self.rule_string())
                };
                out.push(gofmt::invalid_rendered(&field, &type_value, &detail));
            }
        }
    }

    /// `ruleErrorString`: the message if set, else the rule.
    fn rule_string(&self) -> String {
        match self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(m) => m.to_string(),
            None => self.rule.trim().to_string(),
        }
    }

    /// `ruleMessageOrDefault`, preceded by the messageExpression if it
    /// yields a usable string.
    fn failure_message(&self, scope: &Context<'_>) -> String {
        if let Some(expr) = &self.message_expression
            && let Ok(Cel::String(s)) = expr.execute(scope)
            && !s.trim().is_empty()
            && !s.contains('\n')
        {
            return s.trim().to_string();
        }
        match self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(m) => m.to_string(),
            None => format!("failed rule: {}", self.rule.trim()),
        }
    }

    /// `fieldErrorForReason`.
    fn cause_for_reason(&self, field: &str, type_value: &str, detail: &str) -> Cause {
        match self.reason.as_deref() {
            Some("FieldValueForbidden") => gofmt::forbidden(field, detail),
            Some("FieldValueRequired") => gofmt::required(field, detail),
            Some("FieldValueDuplicate") => gofmt::duplicate_rendered(field, type_value),
            _ => gofmt::invalid_rendered(field, type_value, detail),
        }
    }

    /// The node's path extended by the rule's `fieldPath` (`.a.b`,
    /// `['a.b']`, `[0]`), as the server does for reporting.
    fn error_field(&self, base: &str) -> String {
        let Some(fp) = self.field_path.as_deref().filter(|f| !f.is_empty()) else {
            return base.to_string();
        };
        let mut out = if base == "<nil>" {
            String::new()
        } else {
            base.to_string()
        };
        for seg in split_field_path(fp) {
            if seg.starts_with('[') {
                out.push_str(&seg);
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&seg);
            }
        }
        if out.is_empty() {
            base.to_string()
        } else {
            out
        }
    }
}

/// Splits `.a['b.c'][0].d` into `a`, `b.c`, `[0]`, `d`.
fn split_field_path(fp: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = fp;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let (name, tail) = r.split_at(end);
            out.push(name.to_string());
            rest = tail;
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            let (name, tail) = r.split_at(end);
            out.push(name.to_string());
            rest = tail.strip_prefix("']").unwrap_or("");
        } else if rest.starts_with('[') {
            let end = rest.find(']').map_or(rest.len(), |i| i + 1);
            let (idx, tail) = rest.split_at(end);
            out.push(idx.to_string());
            rest = tail;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let (name, tail) = rest.split_at(end);
            out.push(name.to_string());
            rest = tail;
        }
    }
    out
}
