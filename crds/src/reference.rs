//! The API reference, `docs/reference/api.md`, rendered from the CRDs the
//! operator serves ([`crate::crds`]): per kind its names, versions, scope
//! and printer columns, then every field of its stored version as a row
//! (path, type, default, allowed values and rules, required, immutable,
//! description), `spec` and `status` apart; for a kind served at more
//! than one version, how the others name what differs.
//!
//! Nested objects and lists of objects are flattened into the paths a user
//! writes (`spec.tls.issuerRef.name`, `spec.image.pullSecrets[].name`). A
//! Kubernetes type passed through whole (`spec.affinity`, a list of
//! `meta/v1` Conditions) is one row naming the type: its fields are
//! Kubernetes' own.
//!
//! The output is deterministic (the schema's maps are sorted, no clock),
//! so it is committed and compared by the components suite
//! (`tests/docs_catalog/api_reference.rs`); `make api-reference` writes it
//! again. Like [`crate::crdgen`], this module writes no file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps,
    JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};
use kube::CustomResourceExt;

/// Where the reference is committed, from the workspace's root.
pub const API_REFERENCE_PATH: &str = "docs/reference/api.md";

/// The command that writes [`API_REFERENCE_PATH`] again.
pub const REGENERATE: &str = "make api-reference";

/// Kubernetes types a spec passes through whole, by path, with the type's
/// name: one row each, not the hundreds of fields Kubernetes documents.
pub const KUBERNETES_TYPES: [(&str, &str); 7] = [
    ("spec.affinity", "core/v1 Affinity"),
    (
        "spec.networkPolicy.allowFrom",
        "networking/v1 NetworkPolicyPeer",
    ),
    ("spec.podSecurityContext", "core/v1 PodSecurityContext"),
    ("spec.resources", "core/v1 ResourceRequirements"),
    ("spec.securityContext", "core/v1 SecurityContext"),
    ("spec.tolerations", "core/v1 Toleration"),
    (
        "spec.topologySpreadConstraints",
        "core/v1 TopologySpreadConstraint",
    ),
];

/// The fields of a `meta/v1` Condition: a list of objects with exactly
/// these is shown as a list of Conditions.
const CONDITION_FIELDS: [&str; 6] = [
    "lastTransitionTime",
    "message",
    "observedGeneration",
    "reason",
    "status",
    "type",
];

/// One field of a schema, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// As a user writes it: `spec.tls.issuerRef.name`, `spec.users[].name`.
    pub path: String,
    /// `string`, `integer`, `[]object`, `map[string]string`, ….
    pub type_: String,
    /// The schema's default, as JSON (strings bare).
    pub default: Option<String>,
    /// Enum, range, length, pattern, and the CEL rules' messages.
    pub rules: Vec<String>,
    /// Its parent object lists it as required.
    pub required: bool,
    /// A CEL rule comparing with `oldSelf` holds it (or an object above
    /// it) as it was.
    pub immutable: bool,
    /// The schema's description, on one line.
    pub description: String,
}

/// The reference of every CRD of the operator, as committed at
/// [`API_REFERENCE_PATH`].
pub fn render_api_reference() -> String {
    render(&crate::crds(), &builtin_crds())
}

/// The ValkeyCluster CRDs as derived, before the spec's defaults are
/// taken out of the served schema (`crdgen`): the built-in values the
/// operator fills in beneath the defaults layers.
fn builtin_crds() -> Vec<CustomResourceDefinition> {
    vec![
        crate::v1alpha1::ValkeyCluster::crd(),
        crate::v1beta1::ValkeyCluster::crd(),
    ]
}

/// The schema of `version`, if it has one.
fn schema(version: &CustomResourceDefinitionVersion) -> Option<&JSONSchemaProps> {
    version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
}

/// The version of `crd` whose fields are shown: the stored one.
fn shown_version(crd: &CustomResourceDefinition) -> Option<&CustomResourceDefinitionVersion> {
    crd.spec
        .versions
        .iter()
        .find(|v| v.storage)
        .or_else(|| crd.spec.versions.first())
}

/// Every field under the top-level property `section` (`spec`, `status`)
/// of the schema `root`.
pub fn fields(root: &JSONSchemaProps, section: &str) -> Vec<Field> {
    let mut out = Vec::new();
    let Some(node) = root.properties.as_ref().and_then(|p| p.get(section)) else {
        return out;
    };
    let required = root
        .required
        .as_ref()
        .is_some_and(|r| r.iter().any(|n| n == section));
    walk(
        node,
        section,
        Context {
            required,
            immutable: false,
            from_parent: Vec::new(),
        },
        &mut out,
    );
    out
}

/// What a field's parent says of it.
struct Context<'a> {
    required: bool,
    immutable: bool,
    /// The parent's rules aimed at this field (`fieldPath: .name`, or
    /// naming `oldSelf.name`).
    from_parent: Vec<&'a ValidationRule>,
}

fn rules_of(node: &JSONSchemaProps) -> &[ValidationRule] {
    node.x_kubernetes_validations.as_deref().unwrap_or_default()
}

/// The rules of `parent` aimed at its property `name`: those with
/// `fieldPath: .name`, and those without a field path that compare
/// `oldSelf.name` (immutability said on the parent, to catch setting and
/// unsetting).
fn aimed_at<'a>(parent: &'a JSONSchemaProps, name: &str) -> Vec<&'a ValidationRule> {
    let field_path = format!(".{name}");
    let old = format!("oldSelf.{name}");
    rules_of(parent)
        .iter()
        .filter(|r| match r.field_path.as_deref() {
            Some(path) => path == field_path,
            None => r.rule.contains(&old) && !r.rule.contains("oldSelf.spec"),
        })
        .collect()
}

/// A rule said of the field itself: its own without a field path, and the
/// parent's aimed at it.
fn own_rules<'a>(node: &'a JSONSchemaProps, context: &Context<'a>) -> Vec<&'a ValidationRule> {
    rules_of(node)
        .iter()
        .filter(|r| r.field_path.is_none())
        .chain(context.from_parent.iter().copied())
        .collect()
}

fn items(node: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match node.items.as_ref() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => Some(item),
        Some(JSONSchemaPropsOrArray::Schemas(list)) => list.first(),
        None => None,
    }
}

fn map_values(node: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match node.additional_properties.as_ref() {
        Some(JSONSchemaPropsOrBool::Schema(value)) => Some(value),
        _ => None,
    }
}

fn is_conditions(node: &JSONSchemaProps) -> bool {
    items(node)
        .and_then(|i| i.properties.as_ref())
        .is_some_and(|p| p.keys().map(String::as_str).eq(CONDITION_FIELDS))
}

fn kubernetes_type(path: &str) -> Option<&'static str> {
    KUBERNETES_TYPES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, name)| *name)
}

fn walk<'a>(node: &'a JSONSchemaProps, path: &str, context: Context<'a>, out: &mut Vec<Field>) {
    let own = own_rules(node, &context);
    // Held as it was: by a rule of its own `self == oldSelf`, by its
    // parent's aimed at it that compares with `oldSelf`, or as a part of
    // an object so held.
    let immutable = context.immutable
        || rules_of(node)
            .iter()
            .any(|r| r.field_path.is_none() && r.rule.replace(' ', "") == "self==oldSelf")
        || context
            .from_parent
            .iter()
            .any(|r| r.rule.contains("oldSelf"));
    let mut rules = constraints(node);
    let item = items(node);
    if let Some(item) = item
        && item.properties.is_none()
    {
        rules.extend(constraints(item).into_iter().map(|c| format!("each: {c}")));
    }
    if let Some(value) = map_values(node)
        && value.properties.is_none()
    {
        rules.extend(
            constraints(value)
                .into_iter()
                .map(|c| format!("each value: {c}")),
        );
    }
    for rule in &own {
        rules.push(rule_text(rule));
    }
    let whole =
        kubernetes_type(path).or_else(|| is_conditions(node).then_some("meta/v1 Condition"));
    let type_ = match whole {
        Some(name) if node.type_.as_deref() == Some("array") => format!("[]{name}"),
        Some(name) => name.to_owned(),
        None => type_name(node),
    };
    // The fields under it: an object's, a list's elements', a map's values'.
    let (object, prefix) = match (item, map_values(node)) {
        (Some(item), _) => (item, format!("{path}[]")),
        (None, Some(value)) => (value, format!("{path}.<key>")),
        (None, None) => (node, path.to_owned()),
    };
    if !std::ptr::eq(object, node) {
        // The rules of an element (or value) are said of the list.
        rules.extend(
            rules_of(object)
                .iter()
                .filter(|r| r.field_path.is_none())
                .map(|r| format!("each: {}", rule_text(r))),
        );
    }
    out.push(Field {
        path: path.to_owned(),
        type_,
        default: node.default.as_ref().map(|d| json_text(&d.0)),
        rules,
        required: context.required,
        immutable,
        description: node.description.clone().unwrap_or_default(),
    });
    if whole.is_some() {
        return;
    }
    let Some(properties) = object.properties.as_ref() else {
        return;
    };
    let required: BTreeSet<&str> = object
        .required
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    for (name, child) in properties {
        walk(
            child,
            &format!("{prefix}.{name}"),
            Context {
                required: required.contains(name.as_str()),
                immutable,
                from_parent: aimed_at(object, name),
            },
            out,
        );
    }
}

fn type_name(node: &JSONSchemaProps) -> String {
    if node.x_kubernetes_int_or_string == Some(true) {
        return "int or string".to_owned();
    }
    match node.type_.as_deref() {
        Some("array") => format!(
            "[]{}",
            items(node).map_or_else(|| "any".to_owned(), type_name)
        ),
        Some("object") => match (map_values(node), node.properties.as_ref()) {
            (Some(value), None) => format!("map[string]{}", type_name(value)),
            (None, None) if node.x_kubernetes_preserve_unknown_fields == Some(true) => {
                "object (any fields)".to_owned()
            }
            _ => "object".to_owned(),
        },
        Some("string") => match node.format.as_deref() {
            Some(format @ ("date-time" | "byte" | "date")) => format!("string ({format})"),
            _ => "string".to_owned(),
        },
        Some(other) => other.to_owned(),
        None if node.x_kubernetes_preserve_unknown_fields == Some(true) => "any".to_owned(),
        None => "any".to_owned(),
    }
}

/// A JSON value as the reference shows it: a string bare, anything else
/// as compact JSON.
fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A number of the schema (kept as `f64` by the CRD types) as written.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

/// Enum, range, length, item count and pattern of `node`.
fn constraints(node: &JSONSchemaProps) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(values) = node.enum_.as_ref() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", json_text(&v.0)))
            .collect();
        out.push(format!("one of {}", values.join(", ")));
    }
    let bound = |n: f64, exclusive: Option<bool>, inclusive: &str, strict: &str| {
        format!(
            "{} {}",
            if exclusive == Some(true) {
                strict
            } else {
                inclusive
            },
            number(n)
        )
    };
    match (node.minimum, node.maximum) {
        (Some(min), Some(max))
            if node.exclusive_minimum != Some(true) && node.exclusive_maximum != Some(true) =>
        {
            out.push(format!("{} to {}", number(min), number(max)));
        }
        (min, max) => {
            if let Some(min) = min {
                out.push(bound(min, node.exclusive_minimum, "≥", ">"));
            }
            if let Some(max) = max {
                out.push(bound(max, node.exclusive_maximum, "≤", "<"));
            }
        }
    }
    match (node.min_length, node.max_length) {
        (Some(min), Some(max)) => out.push(format!("length {min} to {max}")),
        (Some(min), None) => out.push(format!("length ≥ {min}")),
        (None, Some(max)) => out.push(format!("length ≤ {max}")),
        (None, None) => {}
    }
    match (node.min_items, node.max_items) {
        (Some(min), Some(max)) => out.push(format!("{min} to {max} items")),
        (Some(min), None) => out.push(format!("at least {min} items")),
        (None, Some(max)) => out.push(format!("at most {max} items")),
        (None, None) => {}
    }
    if node.unique_items == Some(true) {
        out.push("no item twice".to_owned());
    }
    if let Some(pattern) = node.pattern.as_ref() {
        out.push(format!("pattern {}", html_code(pattern)));
    }
    out
}

/// `text` as inline HTML code, every character Markdown or a table could
/// read escaped: a regular expression holds `](`, `|`, `*`, `\\`, which
/// a code span would keep but link checkers and table splitters misread.
fn html_code(text: &str) -> String {
    let mut out = String::from("<code>");
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '[' | ']' | '*' | '_' | '\\' | '`' | '~' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push_str("</code>");
    out
}

/// A CEL rule as the reference says it: its message, else the rule.
fn rule_text(rule: &ValidationRule) -> String {
    match rule.message.as_deref() {
        Some(message) if !message.trim().is_empty() => format!("rule: {}", message.trim()),
        _ => format!("rule: `{}`", rule.rule),
    }
}

/// `text` fit for a table cell: on one line, `|` escaped, and `<` escaped
/// outside code spans (else `<name>` would be taken for HTML).
pub fn cell(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(line.len());
    for (i, part) in line.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let part = part.replace('|', "\\|");
        if i % 2 == 0 {
            // Markup of our own (`html_code`) stays; any other `<` is text.
            out.push_str(
                &part
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace("&lt;code&gt;", "<code>")
                    .replace("&lt;/code&gt;", "</code>"),
            );
        } else {
            out.push_str(&part);
        }
    }
    out
}

/// The built-in defaults of the ValkeyCluster's spec, by (version, path).
fn builtin_defaults(builtin: &[CustomResourceDefinition]) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for crd in builtin {
        for version in &crd.spec.versions {
            let Some(root) = schema(version) else {
                continue;
            };
            for field in fields(root, "spec") {
                if let Some(default) = field.default {
                    out.insert(
                        (
                            format!("{}/{}", crd.spec.names.kind, version.name),
                            field.path,
                        ),
                        default,
                    );
                }
            }
        }
    }
    out
}

/// The reference of `crds`, each field's default taken from `builtin` (the
/// same kind and version, as derived) when the served schema has none.
pub fn render(crds: &[CustomResourceDefinition], builtin: &[CustomResourceDefinition]) -> String {
    let defaults = builtin_defaults(builtin);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- Generated from the CRDs' schemas by crds/src/reference.rs: do not edit. Regenerate with `{REGENERATE}`. -->\n"
    );
    out.push_str("# API reference\n\n");
    out.push_str("Every field of every resource the Logbook operator serves, generated from the OpenAPI schemas of its CRDs (`crds/valkeycluster.yaml`, the chart's `charts/logbook/crds/`). What each phase, condition and reason means, with examples: [crd-reference.md](../crd-reference.md).\n\n");
    out.push_str("How to read the tables:\n\n");
    out.push_str("- **field**: the path as written in YAML. `[]` is an element of a list (`spec.image.pullSecrets[].name`), `<key>` a key of a map.\n");
    out.push_str("- **default**: the schema's default. For a ValkeyCluster's spec, the API server writes only `spec.topology`'s; the others (marked *built-in*) are filled in by the operator beneath the defaults layers of a `ValkeyOperatorDefaults` and a plan ([defaults.md](../defaults.md)), so a value you write always wins. Where none is shown, the description says the built-in value.\n");
    out.push_str("- **allowed**: enum values, ranges (inclusive), lengths, patterns, and the message of each CEL rule the API server checks. The operator checks more (what is refused in the status, `SpecValid`): see [crd-reference.md](../crd-reference.md).\n");
    out.push_str(
        "- **immutable**: a CEL rule refuses a change after creation (`kubectl apply` fails).\n",
    );
    out.push_str("- A Kubernetes type passed through whole (`spec.affinity`, a list of Conditions) is one row: its fields are Kubernetes' own.\n\n");
    out.push_str("| kind | group | versions | scope | short names |\n|---|---|---|---|---|\n");
    for crd in crds {
        let names = &crd.spec.names;
        let versions: Vec<String> = crd
            .spec
            .versions
            .iter()
            .map(|v| {
                if v.storage {
                    format!("`{}` (stored)", v.name)
                } else {
                    format!("`{}`", v.name)
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "| [{kind}](#{anchor}) | `{}` | {} | {} | {} |",
            crd.spec.group,
            versions.join(", "),
            crd.spec.scope,
            code_list(names.short_names.as_deref().unwrap_or_default()),
            kind = names.kind,
            anchor = names.kind.to_lowercase(),
        );
    }
    for crd in crds {
        render_kind(&mut out, crd, &defaults);
    }
    out
}

fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        return "—".to_owned();
    }
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_kind(
    out: &mut String,
    crd: &CustomResourceDefinition,
    defaults: &BTreeMap<(String, String), String>,
) {
    let names = &crd.spec.names;
    let _ = writeln!(out, "\n## {}\n", names.kind);
    let Some(version) = shown_version(crd) else {
        out.push_str("No version is served.\n");
        return;
    };
    let root = schema(version);
    // kube's derive says "Auto-generated derived type for …" of a type
    // without a doc comment: nothing for a reader.
    if let Some(description) = root
        .and_then(|r| r.description.as_ref())
        .filter(|d| !d.starts_with("Auto-generated derived type"))
    {
        let _ = writeln!(out, "{}\n", cell(description));
    }
    out.push_str("| | |\n|---|---|\n");
    let _ = writeln!(
        out,
        "| apiVersion | `{}/{}` |",
        crd.spec.group, version.name
    );
    for other in crd.spec.versions.iter().filter(|v| v.name != version.name) {
        let _ = writeln!(
            out,
            "| also served | `{}/{}`{} ([below](#{}-{})) |",
            crd.spec.group,
            other.name,
            if crd.spec.conversion.is_some() {
                ", converted by the operator's webhook"
            } else {
                ""
            },
            names.kind.to_lowercase(),
            other.name
        );
    }
    let _ = writeln!(out, "| scope | {} |", crd.spec.scope);
    let _ = writeln!(out, "| plural | `{}` |", names.plural);
    if let Some(singular) = names.singular.as_ref() {
        let _ = writeln!(out, "| singular | `{singular}` |");
    }
    let _ = writeln!(
        out,
        "| short names | {} |",
        code_list(names.short_names.as_deref().unwrap_or_default())
    );
    let _ = writeln!(
        out,
        "| categories | {} |",
        code_list(names.categories.as_deref().unwrap_or_default())
    );
    let _ = writeln!(
        out,
        "| status subresource | {} |",
        if version
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some())
        {
            "yes"
        } else {
            "no"
        }
    );
    if let Some(columns) = version.additional_printer_columns.as_ref() {
        let _ = writeln!(
            out,
            "\n`kubectl get {}` shows:\n",
            names
                .short_names
                .as_ref()
                .and_then(|s| s.first())
                .unwrap_or(&names.plural)
        );
        out.push_str("| column | type | JSONPath |\n|---|---|---|\n");
        for column in columns {
            let wide = if column.priority.unwrap_or(0) > 0 {
                " (`-o wide`)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "| {}{wide} | {} | `{}` |",
                column.name,
                column.type_,
                column.json_path.replace('|', "\\|")
            );
        }
    }
    let Some(root) = root else {
        out.push_str("\nNo schema.\n");
        return;
    };
    let object_rules: Vec<String> = rules_of(root).iter().map(rule_text).collect();
    if !object_rules.is_empty() {
        out.push_str("\nRules on the whole object:\n\n");
        for rule in object_rules {
            let _ = writeln!(out, "- {}", cell(&rule));
        }
    }
    let key = format!("{}/{}", names.kind, version.name);
    let sections: Vec<&String> = root
        .properties
        .iter()
        .flatten()
        .map(|(name, _)| name)
        .filter(|name| !matches!(name.as_str(), "apiVersion" | "kind" | "metadata"))
        .collect();
    for section in sections {
        let title = match section.as_str() {
            "spec" => "Spec",
            "status" => "Status",
            other => other,
        };
        let _ = writeln!(out, "\n### {title} ({})\n", version.name);
        let mut rows = fields(root, section);
        if section != "spec" {
            // A status's defaults are the operator's serde defaults: they
            // say nothing to a reader.
            for row in &mut rows {
                row.default = None;
            }
        }
        field_table(out, &rows, &key, defaults);
    }
    for other in crd.spec.versions.iter().filter(|v| v.name != version.name) {
        render_other_version(out, crd, version, other);
    }
}

fn field_table(
    out: &mut String,
    rows: &[Field],
    key: &str,
    defaults: &BTreeMap<(String, String), String>,
) {
    out.push_str(
        "| field | type | default | allowed | required | immutable | description |\n|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let default = match (
            &row.default,
            defaults.get(&(key.to_owned(), row.path.clone())),
        ) {
            (Some(d), _) => format!("`{}`", d.replace('|', "\\|")),
            (None, Some(d)) => format!("`{}` *built-in*", d.replace('|', "\\|")),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {default} | {} | {} | {} | {} |",
            row.path,
            cell(&row.type_),
            cell(&row.rules.join("; ")),
            if row.required { "yes" } else { "" },
            if row.immutable { "yes" } else { "" },
            cell(&row.description),
        );
    }
}

/// How `other` differs from the version shown: the paths of its spec that
/// are not the shown version's, with the path the shown version gives
/// them (`crate::conversion`), and whether the status is the same.
fn render_other_version(
    out: &mut String,
    crd: &CustomResourceDefinition,
    shown: &CustomResourceDefinitionVersion,
    other: &CustomResourceDefinitionVersion,
) {
    let kind = &crd.spec.names.kind;
    let _ = writeln!(out, "\n### {kind} {}\n", other.name);
    let (Some(shown_root), Some(other_root)) = (schema(shown), schema(other)) else {
        out.push_str("No schema.\n");
        return;
    };
    let shown_spec = fields(shown_root, "spec");
    let other_spec = fields(other_root, "spec");
    let shown_types: BTreeMap<&str, &str> = shown_spec
        .iter()
        .map(|f| (f.path.as_str(), f.type_.as_str()))
        .collect();
    let differing: Vec<&Field> = other_spec
        .iter()
        .filter(|f| shown_types.get(f.path.as_str()) != Some(&f.type_.as_str()))
        .collect();
    let mapped: BTreeSet<String> = differing
        .iter()
        .map(|f| crate::conversion::path_to_v1beta1(&f.path))
        .collect();
    let _ = writeln!(
        out,
        "`{}/{}` is served too{}. Its fields are those of `{}` above but for these, each with the name `{}` gives it:\n",
        crd.spec.group,
        other.name,
        if crd.spec.conversion.is_some() {
            ", each object converted to and from the stored version by the operator's conversion webhook"
        } else {
            ""
        },
        shown.name,
        shown.name
    );
    // One line each, naming both versions: a reader (and the docs' check
    // of v1beta1 paths) sees at once that the old name is the old one's.
    for field in differing {
        let target = crate::conversion::path_to_v1beta1(&field.path);
        let there = match shown_types.get(target.as_str()) {
            Some(t) if *t == field.type_ => format!("`{target}` in {}", shown.name),
            Some(t) => {
                // The same name, another shape: the new fields under it
                // that no other field of `other` becomes.
                let children: Vec<String> = shown_spec
                    .iter()
                    .filter(|f| {
                        f.path.starts_with(&format!("{target}."))
                            && !mapped
                                .iter()
                                .any(|m| *m != target && f.path.starts_with(m.as_str()))
                            && !f
                                .path
                                .trim_start_matches(&format!("{target}."))
                                .contains('.')
                    })
                    .map(|f| format!("`{}`", f.path))
                    .collect();
                format!(
                    "{} in {}, where `{target}` is of type {}",
                    children.join(", "),
                    shown.name,
                    cell(t)
                )
            }
            None => format!("not in {}", shown.name),
        };
        let _ = writeln!(
            out,
            "- {} `{}` ({}): {there}.",
            other.name,
            field.path,
            cell(&field.type_)
        );
    }
    let status = |root| {
        fields(root, "status")
            .into_iter()
            .map(|f| (f.path, f.type_))
            .collect::<Vec<_>>()
    };
    if status(shown_root) == status(other_root) {
        let _ = writeln!(out, "\nIts status is the same as `{}`'s.", shown.name);
    } else {
        let _ = writeln!(
            out,
            "\nIts status differs from `{}`'s: read its schema (`kubectl explain {}.status --api-version={}/{}`).",
            shown.name, crd.spec.names.plural, crd.spec.group, other.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_rows() -> Vec<Field> {
        let crds = crate::crds();
        let crd = crds
            .iter()
            .find(|c| c.spec.names.kind == "ValkeyCluster")
            .unwrap_or_else(|| unreachable!("no ValkeyCluster CRD"));
        let version = shown_version(crd).unwrap_or_else(|| unreachable!("no version"));
        assert_eq!(version.name, "v1beta1");
        fields(
            schema(version).unwrap_or_else(|| unreachable!("no schema")),
            "spec",
        )
    }

    fn row<'a>(rows: &'a [Field], path: &str) -> &'a Field {
        rows.iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| unreachable!("no {path} in {rows:?}"))
    }

    #[test]
    fn fields_are_flattened_into_the_paths_users_write() {
        let rows = cluster_rows();
        assert_eq!(row(&rows, "spec.cluster.shards").type_, "integer");
        assert_eq!(row(&rows, "spec.image.pullSecrets").type_, "[]object");
        assert!(
            rows.iter()
                .any(|f| f.path == "spec.image.pullSecrets[].name")
        );
        assert_eq!(row(&rows, "spec.affinity").type_, "core/v1 Affinity");
        assert_eq!(row(&rows, "spec.tolerations").type_, "[]core/v1 Toleration");
        assert!(!rows.iter().any(|f| f.path.starts_with("spec.affinity.")));
        assert_eq!(
            row(&rows, "spec.cluster.shards").rules,
            vec![format!(
                "{} to {}",
                crate::v1alpha1::defaults::SHARDS_MIN,
                crate::v1alpha1::defaults::SHARDS_MAX
            )]
        );
    }

    #[test]
    fn immutability_is_read_from_the_cel_rules() {
        let rows = cluster_rows();
        assert!(row(&rows, "spec.topology").immutable);
        assert!(row(&rows, "spec.storage.storageClassName").immutable);
        assert!(row(&rows, "spec.restoreFrom").immutable);
        assert!(row(&rows, "spec.restoreFrom.backup").immutable);
        assert!(!row(&rows, "spec.storage.size").immutable);
        assert!(!row(&rows, "spec.cluster.shards").immutable);
    }

    #[test]
    fn every_kubernetes_type_named_is_a_field_of_a_crd() {
        let crds = crate::crds();
        for (path, name) in KUBERNETES_TYPES {
            let found = crds.iter().any(|crd| {
                crd.spec.versions.iter().any(|v| {
                    schema(v).is_some_and(|root| {
                        fields(root, "spec")
                            .iter()
                            .any(|f| f.path == path && f.type_.ends_with(name))
                    })
                })
            });
            assert!(
                found,
                "{path} ({name}) is no field of any CRD: rename or remove it"
            );
        }
    }

    #[test]
    fn the_reference_is_deterministic_and_covers_every_kind() {
        let a = render_api_reference();
        assert_eq!(a, render_api_reference());
        for crd in crate::crds() {
            assert!(
                a.contains(&format!("\n## {}\n", crd.spec.names.kind)),
                "{}",
                crd.spec.names.kind
            );
        }
        assert!(a.contains("| `spec.topology` | string | `Replication` |"));
        assert!(a.contains("| `spec.storage.size` | string | `1Gi` *built-in* |"));
        assert!(
            a.contains("- v1alpha1 `spec.shards` (integer): `spec.cluster.shards` in v1beta1.\n")
        );
    }

    #[test]
    fn a_pattern_is_code_no_markdown_reader_misreads() {
        let code = html_code(r"^[a-z]([-a-z]*)?$|\.x_y<z>&`");
        assert_eq!(
            code,
            "<code>^&#91;a-z&#93;(&#91;-a-z&#93;&#42;)?$&#124;&#92;.x&#95;y&lt;z&gt;&amp;&#96;</code>"
        );
        assert!(!code.contains("]("));
        assert_eq!(cell(&code), code, "a cell keeps it whole");
    }

    #[test]
    fn a_cell_keeps_to_one_line_and_its_markup() {
        assert_eq!(
            cell("a <name>\n  b | `x|<y>`"),
            "a &lt;name&gt; b \\| `x\\|<y>`"
        );
    }
}
