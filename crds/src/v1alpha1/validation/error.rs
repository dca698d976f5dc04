//! The refusal of a spec: [`FieldError`] and [`FieldErrorKind`].
//!
//! This module owns how a validation failure is described: which field
//! (a path a person can find in their YAML), what kind of failure, and a
//! message naming the offending value and what is allowed. It must not
//! decide what is valid.

use std::fmt;

/// What is wrong with a field, mirroring Kubernetes' `field.ErrorType`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldErrorKind {
    /// The value is malformed (bad name, bad quantity, contradictory settings).
    Invalid,
    /// A value must be given (or must not be empty).
    Required,
    /// The field may not be set here (wrong topology, owned by the operator).
    Forbidden,
    /// The field may not change after creation.
    Immutable,
    /// A number outside its allowed range.
    OutOfRange,
    /// A value outside the supported set.
    NotSupported,
    /// The same key appears twice (e.g. config directives differing in case).
    Duplicate,
}

impl FieldErrorKind {
    /// A stable name for machine consumers (`"OutOfRange"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid => "Invalid",
            FieldErrorKind::Required => "Required",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Immutable => "Immutable",
            FieldErrorKind::OutOfRange => "OutOfRange",
            FieldErrorKind::NotSupported => "NotSupported",
            FieldErrorKind::Duplicate => "Duplicate",
        }
    }
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason a spec is refused.
///
/// Displays as `"<path>: <message>"`, e.g.
/// `spec.sentinel.replicas: must be odd, got 4`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Path of the field from the object root, e.g. `spec.sentinel.replicas`
    /// or `spec.config["port"]`.
    pub path: String,
    /// What kind of failure.
    pub kind: FieldErrorKind,
    /// What is wrong and what is allowed, for a person.
    pub message: String,
}

impl FieldError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, kind: FieldErrorKind, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind,
            message: message.into(),
        }
    }
}

/// All errors on one line, `"; "`-separated, for a condition message or a
/// log line.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects errors while the rules run, so that every rule reports.
#[derive(Debug, Default)]
pub(super) struct Errors(pub(super) Vec<FieldError>);

impl Errors {
    pub(super) fn push(
        &mut self,
        path: impl Into<String>,
        kind: FieldErrorKind,
        message: impl Into<String>,
    ) {
        self.0.push(FieldError::new(path, kind, message));
    }

    /// Refuse `value` at `path` unless `min <= value <= max`.
    pub(super) fn range<T>(&mut self, path: &str, value: T, min: T, max: T, what: &str)
    where
        T: PartialOrd + fmt::Display + Copy,
    {
        if value < min || value > max {
            self.push(
                path,
                FieldErrorKind::OutOfRange,
                format!("{what} must be between {min} and {max}, got {value}"),
            );
        }
    }

    /// Refuse `value` at `path` unless `value >= min`.
    pub(super) fn at_least<T>(&mut self, path: &str, value: T, min: T, what: &str)
    where
        T: PartialOrd + fmt::Display + Copy,
    {
        if value < min {
            self.push(
                path,
                FieldErrorKind::OutOfRange,
                format!("{what} must be at least {min}, got {value}"),
            );
        }
    }
}
