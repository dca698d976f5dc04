//! The API's refusals: one enum of everything a request can be answered
//! with other than success, each rendered as the `Status` object the real
//! kube-apiserver returns (same `reason`, `code`, message wording and
//! `details`), because kube-rs and kubectl branch on them.

use serde_json::{Value, json};

use crate::schema::Cause;

/// Who a refusal is about: the qualified resource (`pods`,
/// `statefulsets.apps`) and the object's name, as in `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// API group ("" for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Object name.
    pub name: String,
}

impl Subject {
    /// A subject of `resource` in `group` named `name`.
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `pods` or `statefulsets.apps`, as the real server words messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `details` as the real server serializes them: empty fields are
    /// left out (`omitempty`), so a refused list has no `name`.
    fn details(&self) -> Value {
        let mut d = serde_json::Map::new();
        for (k, v) in [
            ("name", &self.name),
            ("group", &self.group),
            ("kind", &self.resource),
        ] {
            if !v.is_empty() {
                d.insert(k.into(), json!(v));
            }
        }
        Value::Object(d)
    }
}

/// Everything a request can fail with; each variant is one `reason` of
/// the real server's `Status`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404 for an object that does not exist.
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Subject),
    /// 404 for a path or resource the server does not serve.
    #[error("the server could not find the requested resource")]
    UnknownResource,
    /// 409 on create of an existing name.
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Subject),
    /// 409 on a stale resourceVersion, a failed precondition, or an apply
    /// conflict; `detail` follows `Operation cannot be fulfilled on ...:`
    /// unless `raw` (apply conflicts have their own wording).
    #[error("{}", conflict_message(.subject, .detail, *.raw))]
    Conflict {
        /// The object.
        subject: Subject,
        /// What failed.
        detail: String,
        /// Whether `detail` is the whole message.
        raw: bool,
        /// Extra `details.causes`.
        causes: Vec<Value>,
    },
    /// 422 with field causes.
    #[error("{}", invalid_message(.kind, .group, .name, .causes))]
    Invalid {
        /// Kind (e.g. `ValkeyCluster`).
        kind: String,
        /// Group of the kind.
        group: String,
        /// Object name.
        name: String,
        /// The field errors.
        causes: Vec<Cause>,
    },
    /// 400 for a malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// 401 without the bearer token.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403, e.g. creating in a terminating namespace.
    #[error("{message}")]
    Forbidden {
        /// The message.
        message: String,
        /// The object refused.
        subject: Subject,
    },
    /// 405 for a verb the resource does not support.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 406 for an Accept header the server cannot satisfy.
    #[error("{0}")]
    NotAcceptable(String),
    /// 410 (reason Expired) for a too old resourceVersion or continue token.
    #[error("{message}")]
    Gone {
        /// The message.
        message: String,
        /// A fresh continue token, for expired list continuations.
        continue_token: Option<String>,
    },
    /// 413 for a body over the limit.
    #[error("Request entity too large: limit is {0}")]
    TooLarge(usize),
    /// 415 for a content type the verb does not accept.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429, e.g. an eviction a disruption budget forbids.
    #[error("{message}")]
    TooManyRequests {
        /// The message.
        message: String,
        /// `details.causes`.
        causes: Vec<Value>,
    },
    /// 500 for a failure of the server itself (storage).
    #[error("{0}")]
    Internal(String),
    /// 504 for a resourceVersion newer than the store's.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// Asked for.
        requested: u64,
        /// The store's.
        current: u64,
    },
}

fn conflict_message(subject: &Subject, detail: &str, raw: bool) -> String {
    if raw {
        detail.to_owned()
    } else {
        format!(
            "Operation cannot be fulfilled on {} \"{}\": {}",
            subject.qualified(),
            subject.name,
            detail
        )
    }
}

fn cause_text(c: &Cause) -> String {
    if c.field.is_empty() {
        c.message.clone()
    } else {
        format!("{}: {}", c.field, c.message)
    }
}

fn invalid_message(kind: &str, group: &str, name: &str, causes: &[Cause]) -> String {
    let what = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let list: Vec<String> = causes.iter().map(cause_text).collect();
    let body = match list.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", list.join(", ")),
    };
    format!("{what} \"{name}\" is invalid: {body}")
}

/// The stale-object conflict every optimistic-concurrency write reports.
pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

impl ApiError {
    /// A 409 stale-object conflict on `subject`.
    pub fn stale(subject: Subject) -> Self {
        Self::Conflict {
            subject,
            detail: MODIFIED.to_owned(),
            raw: false,
            causes: Vec::new(),
        }
    }

    /// A 422 with one cause.
    pub fn invalid_one(kind: &str, group: &str, name: &str, cause: Cause) -> Self {
        Self::Invalid {
            kind: kind.to_owned(),
            group: group.to_owned(),
            name: name.to_owned(),
            causes: vec![cause],
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound(_) | Self::UnknownResource => 404,
            Self::AlreadyExists(_) | Self::Conflict { .. } => 409,
            Self::Invalid { .. } => 422,
            Self::BadRequest(_) => 400,
            Self::Unauthorized => 401,
            Self::Forbidden { .. } => 403,
            Self::MethodNotAllowed => 405,
            Self::NotAcceptable(_) => 406,
            Self::Gone { .. } => 410,
            Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::TooManyRequests { .. } => 429,
            Self::Internal(_) => 500,
            Self::TooLargeResourceVersion { .. } => 504,
        }
    }

    /// The `reason` of the `Status`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) | Self::UnknownResource => "NotFound",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::Gone { .. } => "Expired",
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::TooManyRequests { .. } => "TooManyRequests",
            Self::Internal(_) => "InternalError",
            Self::TooLargeResourceVersion { .. } => "Timeout",
        }
    }

    /// The `Status` object, as the real server sends it.
    pub fn status(&self) -> Value {
        let details = match self {
            Self::NotFound(s) | Self::AlreadyExists(s) | Self::Forbidden { subject: s, .. } => {
                Some(s.details())
            }
            Self::Conflict {
                subject, causes, ..
            } => {
                let mut d = subject.details();
                if !causes.is_empty()
                    && let Some(m) = d.as_object_mut()
                {
                    m.insert("causes".into(), Value::Array(causes.clone()));
                }
                Some(d)
            }
            Self::Invalid {
                kind,
                group,
                name,
                causes,
            } => {
                let mut d = json!({"name": name, "kind": kind, "causes": causes});
                if !group.is_empty()
                    && let Some(m) = d.as_object_mut()
                {
                    m.insert("group".into(), json!(group));
                }
                Some(d)
            }
            Self::TooManyRequests { causes, .. } => Some(json!({"causes": causes})),
            Self::TooLargeResourceVersion { .. } => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1
            })),
            Self::UnknownResource => Some(json!({})),
            _ => None,
        };
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(m) = status.as_object_mut() {
            if let Some(d) = details {
                m.insert("details".into(), d);
            }
            if let Self::Gone {
                continue_token: Some(t),
                ..
            } = self
            {
                m.insert("metadata".into(), json!({"continue": t}));
            }
        }
        status
    }
}

/// A `Status` of success (`code` 200 or 201), as deletecollection-less
/// deletes and evictions answer.
pub fn success_status(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// A cause with `reason`, `message` and `field`.
pub fn cause(reason: &str, message: impl Into<String>, field: &str) -> Cause {
    Cause {
        reason: reason.to_owned(),
        message: message.into(),
        field: field.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn not_found_is_worded_as_the_real_server() {
        let e = ApiError::NotFound(Subject::new("", "pods", "x"));
        let s = e.status();
        assert_eq!(s["message"], "pods \"x\" not found");
        assert_eq!(s["details"], json!({"name": "x", "kind": "pods"}));
        assert_eq!(s["code"], 404);
        let e = ApiError::NotFound(Subject::new("apps", "statefulsets", "x"));
        assert_eq!(e.status()["message"], "statefulsets.apps \"x\" not found");
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::Invalid {
            kind: "ValkeyCluster".into(),
            group: "valkey.logbook.dev".into(),
            name: "demo".into(),
            causes: vec![cause(
                "FieldValueInvalid",
                "Invalid value: 0: must be at least 1",
                "spec.replicas",
            )],
        };
        assert_eq!(
            e.to_string(),
            "ValkeyCluster.valkey.logbook.dev \"demo\" is invalid: spec.replicas: Invalid value: 0: must be at least 1"
        );
    }
}
