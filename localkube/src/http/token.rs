//! The TokenRequest API, `POST /api/v1/namespaces/{ns}/serviceaccounts/
//! {name}/token` (what `kubectl create token` calls): checks the request
//! as the apiserver's TokenREST does (names, expiration bounds, the
//! ServiceAccount exists) and answers the TokenRequest with the token the
//! [`crate::auth::TokenStore`] issued. Bound object references are kept in
//! the answer but not checked or bound to.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response};
use serde_json::{Value, json};

use super::App;
use super::path::Target;
use super::request::{self, Options, Query};
use crate::error::{ApiError, cause};

/// The default lifetime of a token (`spec.expirationSeconds`), an hour.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;
const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The audience of the tokens of a kubeadm or kind cluster.
const AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
const GROUP_KIND: (&str, &str) = ("TokenRequest", "authentication.k8s.io");

/// Whether `t` is the token subresource this module serves.
pub(crate) fn serves(t: &Target) -> bool {
    t.group.is_empty() && t.resource == "serviceaccounts" && t.sub.as_deref() == Some("token")
}

/// Answers a token request.
pub(crate) fn handle(
    app: &App,
    method: &Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    match create(app, method, t, q, headers, body) {
        Ok(v) => request::json(201, &v),
        Err(e) => request::error(&e),
    }
}

fn invalid(name: &str, field: &str, message: String) -> ApiError {
    ApiError::invalid_one(
        GROUP_KIND.0,
        GROUP_KIND.1,
        name,
        cause("FieldValueInvalid", message, field),
    )
}

fn create(
    app: &App,
    method: &Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    let (Some(ns), Some(name)) = (t.namespace.as_deref(), t.name.as_deref()) else {
        return Err(ApiError::UnknownResource);
    };
    if t.version != "v1" {
        return Err(ApiError::UnknownResource);
    }
    if method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let dry_run = request::dry_run(q.get("dryRun").as_slice(), Options::Create)?;
    let mut req = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        request::object_body(headers, body)?
    };
    if let Some(k) = req.get("kind").and_then(Value::as_str)
        && k != GROUP_KIND.0
    {
        return Err(ApiError::BadRequest(format!(
            "{k} in version \"v1\" cannot be handled as a TokenRequest: the object kind does not match"
        )));
    }
    let meta = |k: &str| crate::obj::meta_str(&req, k).unwrap_or("").to_owned();
    let (body_name, body_ns) = (meta("name"), meta("namespace"));
    if !body_name.is_empty() && body_name != name {
        return Err(invalid(
            name,
            "metadata.name",
            format!(
                "Invalid value: {body_name:?}: must match the service account name if specified"
            ),
        ));
    }
    if !body_ns.is_empty() && body_ns != ns {
        return Err(invalid(
            name,
            "metadata.namespace",
            format!(
                "Invalid value: {body_ns:?}: must match the service account namespace if specified"
            ),
        ));
    }
    // The ServiceAccount first: a missing one is a 404 whatever the spec.
    app.store.get("v1", "serviceaccounts", Some(ns), name)?;
    let spec = req.get("spec").cloned().unwrap_or_else(|| json!({}));
    let seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::BadRequest(format!("spec.expirationSeconds: {v} is not an integer"))
        })?,
    };
    if seconds < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
        ));
    }
    if seconds > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            format!(
                "Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let audiences = match spec.get("audiences").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => Value::Array(a.clone()),
        _ => json!([AUDIENCE]),
    };
    let now = chrono::Utc::now();
    let (token, expires) = if dry_run {
        (String::new(), now + chrono::Duration::seconds(seconds))
    } else {
        let issued = app.tokens.issue(&app.store, ns, name, seconds, now)?;
        (issued.token, issued.expires)
    };
    let mut out_spec = json!({"audiences": audiences, "expirationSeconds": seconds,
        "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null)});
    if let (Some(m), Some(a)) = (out_spec.as_object_mut(), spec.get("attestations")) {
        m.insert("attestations".into(), a.clone());
    }
    if let Some(m) = req.as_object_mut() {
        m.insert("kind".into(), json!(GROUP_KIND.0));
        m.insert("apiVersion".into(), json!("authentication.k8s.io/v1"));
        m.insert("spec".into(), out_spec);
        m.insert(
            "status".into(),
            json!({"token": token, "expirationTimestamp": crate::names::timestamp(expires)}),
        );
    }
    let m = crate::obj::meta_mut(&mut req);
    m.insert("name".into(), json!(name));
    m.insert("namespace".into(), json!(ns));
    m.entry("creationTimestamp").or_insert(Value::Null);
    Ok(req)
}
