//! Go-style rendering of values and the `field.Error` constructors of
//! `k8s.io/apimachinery/pkg/util/validation/field`: the real server formats
//! its messages with Go's `fmt` verbs, so clients comparing messages (and
//! humans reading them) see identical text only if we mimic those verbs.

use serde_json::{Number, Value};

use super::Cause;

/// Go's `strconv.Quote` (the `%q` verb) for the strings we meet in practice.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a `float64`: shortest digits, switching to exponent form
/// (`1e+06`) at the same thresholds as `strconv.FormatFloat(f, 'g', -1, 64)`.
pub(crate) fn float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // strconv uses precision 6 for this decision when printing shortest.
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// `%v` of a JSON number as decoded by the server: integers are `int64`,
/// everything else `float64`.
pub(crate) fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        float(n.as_f64().unwrap_or(0.0))
    }
}

/// How `field.Error.ErrorBody` renders a bad value (`%v` for scalars, `%q`
/// for strings, `%#v` for maps and slices).
pub(crate) fn bad_value(v: &Value) -> String {
    match v {
        Value::Null => quote("null"),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        Value::Array(_) | Value::Object(_) => sharp_v(v),
    }
}

/// Go's `%#v` of an `interface{}` holding decoded JSON.
pub(crate) fn sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(sharp_v).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            // Go's fmt prints map keys sorted; serde_json's map is ordered by
            // key already unless preserve_order is on, so sort explicitly.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .filter_map(|k| {
                    map.get(k)
                        .map(|val| format!("{}:{}", quote(k), sharp_v(val)))
                })
                .collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// The JSON type name the OpenAPI validator reports for a value.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn cause(reason: &str, message: String, field: &str) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

/// `field.Invalid(path, value, detail)` with the value already rendered.
pub(crate) fn invalid_rendered(field: &str, value: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        format!("Invalid value: {value}")
    } else {
        format!("Invalid value: {value}: {detail}")
    };
    cause("FieldValueInvalid", message, field)
}

/// `field.Invalid(path, value, detail)`.
pub(crate) fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    invalid_rendered(field, &bad_value(value), detail)
}

/// `field.TypeInvalid(path, value, detail)`.
pub(crate) fn type_invalid(field: &str, value: &Value, detail: &str) -> Cause {
    cause(
        "FieldValueTypeInvalid",
        format!("Invalid value: {}: {detail}", bad_value(value)),
        field,
    )
}

/// `field.Required(path, detail)`.
pub(crate) fn required(field: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    cause("FieldValueRequired", message, field)
}

/// `field.Forbidden(path, detail)`.
pub(crate) fn forbidden(field: &str, detail: &str) -> Cause {
    cause("FieldValueForbidden", format!("Forbidden: {detail}"), field)
}

/// `field.Duplicate(path, value)` with the value already rendered.
pub(crate) fn duplicate_rendered(field: &str, value: &str) -> Cause {
    cause(
        "FieldValueDuplicate",
        format!("Duplicate value: {value}"),
        field,
    )
}

/// `field.NotSupported(path, value, validValues)`.
pub(crate) fn not_supported(field: &str, value: &Value, valid: &[String]) -> Cause {
    let quoted: Vec<String> = valid.iter().map(|v| quote(v)).collect();
    cause(
        "FieldValueNotSupported",
        format!(
            "Unsupported value: {}: supported values: {}",
            bad_value(value),
            quoted.join(", ")
        ),
        field,
    )
}

/// `field.TooLong(path, value, max)` (the value is never printed).
pub(crate) fn too_long(field: &str, max: u64) -> Cause {
    let unit = if max == 1 { "byte" } else { "bytes" };
    cause(
        "FieldValueTooLong",
        format!("Too long: may not be more than {max} {unit}"),
        field,
    )
}

/// `field.TooMany(path, actual, max)`; used for maxItems and (as the real
/// server does) for maxProperties too, hence "items" either way.
pub(crate) fn too_many(field: &str, actual: usize, max: u64) -> Cause {
    let unit = if max == 1 { "item" } else { "items" };
    cause(
        "FieldValueTooMany",
        format!("Too many: {actual}: must have at most {max} {unit}"),
        field,
    )
}
