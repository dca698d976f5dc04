//! Self reviews, which `kubectl auth can-i` and `kubectl auth whoami`
//! send: a SelfSubjectAccessReview asks whether the caller may do one
//! thing (answered by the same authorizer that guards requests, without
//! logging it as a use), a SelfSubjectRulesReview lists what the caller
//! may do in a namespace, a SelfSubjectReview (`authentication.k8s.io`)
//! says who the caller is.
//!
//! And the reviews of others, which a server that delegates to this one
//! sends (`system:auth-delegator`): a TokenReview says who a bearer token
//! belongs to, a SubjectAccessReview whether a named user (with its
//! groups) may do one thing.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response};
use serde_json::{Value, json};

use super::App;
use super::guard;
use super::path::Target;
use super::request;
use crate::auth::attributes::ResourceAttributes;
use crate::auth::{Attributes, UserInfo, rbac};
use crate::error::{ApiError, cause};

const GROUP: &str = "authorization.k8s.io";
const ACCESS: &str = "selfsubjectaccessreviews";
const RULES: &str = "selfsubjectrulesreviews";
const AUTHENTICATION: &str = "authentication.k8s.io";
const WHOAMI: &str = "selfsubjectreviews";
const OTHERS_ACCESS: &str = "subjectaccessreviews";
const TOKENS: &str = "tokenreviews";

/// Whether `t` is a review this module serves.
pub(crate) fn serves(t: &Target) -> bool {
    t.group == GROUP
        || (t.group == AUTHENTICATION && (t.resource == WHOAMI || t.resource == TOKENS))
}

/// Answers a review.
pub(crate) fn handle(
    app: &App,
    user: &UserInfo,
    method: &Method,
    t: &Target,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    let known = t.version == "v1"
        && t.namespace.is_none()
        && t.name.is_none()
        && t.sub.is_none()
        && (t.resource == ACCESS
            || t.resource == RULES
            || t.resource == WHOAMI
            || t.resource == OTHERS_ACCESS
            || t.resource == TOKENS);
    let out = if !known {
        Err(ApiError::UnknownResource)
    } else if method != Method::POST {
        Err(ApiError::MethodNotAllowed)
    } else if t.resource == WHOAMI {
        // The body holds nothing the answer depends on.
        Ok(whoami(user))
    } else {
        request::object_body(headers, body).and_then(|review| match t.resource.as_str() {
            ACCESS => access_review(app, user, review, "SelfSubjectAccessReview"),
            OTHERS_ACCESS => subject(&review)
                .and_then(|subject| access_review(app, &subject, review, "SubjectAccessReview")),
            TOKENS => Ok(token_review(app, review)),
            _ => Ok(rules_review(app, user, review)),
        })
    };
    match out {
        Ok(v) => request::json(201, &v),
        Err(e) => request::error(&e),
    }
}

fn s(v: Option<&Value>, k: &str) -> String {
    v.and_then(|v| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// `review` answered: its kind and `group`'s `v1`, with `status`.
fn with_status(mut review: Value, group: &str, kind: &str, status: Value) -> Value {
    if let Some(m) = review.as_object_mut() {
        m.insert("kind".into(), json!(kind));
        m.insert("apiVersion".into(), json!(format!("{group}/v1")));
        m.insert("status".into(), status);
    }
    crate::obj::meta_mut(&mut review)
        .entry("creationTimestamp")
        .or_insert(Value::Null);
    review
}

/// The user a SubjectAccessReview asks about: `spec.user` with
/// `spec.groups` as given (the API server adds no group of its own, not
/// even `system:authenticated`).
fn subject(review: &Value) -> Result<UserInfo, ApiError> {
    let spec = review.get("spec");
    let name = s(spec, "user");
    let groups: Vec<String> = spec
        .and_then(|s| s.get("groups"))
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if name.is_empty() && groups.is_empty() {
        return Err(ApiError::invalid_one(
            "SubjectAccessReview",
            GROUP,
            "",
            cause(
                "FieldValueRequired",
                "Required value: at least one of user or group must be specified",
                "spec.user",
            ),
        ));
    }
    Ok(UserInfo { name, groups })
}

/// Who `spec.token` belongs to: the admin's token or a ServiceAccount's
/// that the TokenRequest API issued and that is still alive. A token this
/// server does not know is answered unauthenticated, with why, as the
/// real server answers (not an error).
fn token_review(app: &App, mut review: Value) -> Value {
    let spec = review.get("spec");
    let token = s(spec, "token");
    let audiences = spec
        .and_then(|s| s.get("audiences"))
        .cloned()
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        .unwrap_or_else(|| json!(["https://kubernetes.default.svc.cluster.local"]));
    let user = guard::user_of_token(app, token.trim());
    let status = match user {
        Some(u) => json!({"authenticated": true,
            "user": {"username": u.name, "groups": u.groups},
            "audiences": audiences}),
        None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
    };
    // The token is not sent back.
    if let Some(spec) = review.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("token");
    }
    with_status(review, AUTHENTICATION, "TokenReview", status)
}

fn access_review(app: &App, user: &UserInfo, review: Value, kind: &str) -> Result<Value, ApiError> {
    let spec = review.get("spec");
    let res = spec
        .and_then(|s| s.get("resourceAttributes"))
        .filter(|v| !v.is_null());
    let non = spec
        .and_then(|s| s.get("nonResourceAttributes"))
        .filter(|v| !v.is_null());
    let invalid = |field: &str, message: &str| {
        ApiError::invalid_one(kind, GROUP, "", cause("FieldValueInvalid", message, field))
    };
    let attrs = match (res, non) {
        (Some(r), None) => Attributes::resource(
            user.clone(),
            &s(Some(r), "verb"),
            ResourceAttributes {
                group: s(Some(r), "group"),
                resource: s(Some(r), "resource"),
                subresource: s(Some(r), "subresource"),
                namespace: s(Some(r), "namespace"),
                name: s(Some(r), "name"),
            },
        ),
        (None, Some(n)) => {
            Attributes::non_resource(user.clone(), &s(Some(n), "verb"), &s(Some(n), "path"))
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "spec.nonResourceAttributes",
                "Invalid value: \"null\": cannot be specified in combination with resourceAttributes",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "spec.resourceAttributes",
                "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
    };
    let decision = guard::decide(app, &attrs);
    let mut status = json!({"allowed": decision.allowed()});
    if !decision.reason().is_empty()
        && let Some(m) = status.as_object_mut()
    {
        m.insert("reason".into(), json!(decision.reason()));
    }
    Ok(with_status(review, GROUP, kind, status))
}

fn whoami(user: &UserInfo) -> Value {
    json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {"username": user.name, "groups": user.groups}}})
}

fn rules_review(app: &App, user: &UserInfo, review: Value) -> Value {
    let namespace = s(review.get("spec"), "namespace");
    let (mut resource, mut non_resource) = (Vec::new(), Vec::new());
    // The admin (and everyone, with RBAC off) is allowed everything by an
    // authorizer ahead of RBAC, which lists itself as these two rules.
    if user.is_admin() || !app.rbac {
        resource.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        non_resource.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    let mut errors = Vec::new();
    if app.rbac {
        let (rules, errs) = app.policy.current(&app.store).rules_for(user, &namespace);
        let (r, n) = rbac::review_rules(&rules);
        resource.extend(r);
        non_resource.extend(n);
        errors = errs;
    }
    let mut status = json!({"resourceRules": resource, "nonResourceRules": non_resource,
        "incomplete": !errors.is_empty()});
    let reason = rbac::errors_reason(&errors);
    if !reason.is_empty()
        && let Some(m) = status.as_object_mut()
    {
        m.insert("evaluationError".into(), json!(reason));
    }
    with_status(review, GROUP, "SelfSubjectRulesReview", status)
}
