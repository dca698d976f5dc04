//! Request parsing and response building shared by the handlers: query
//! parameters, the Accept header's `as=Table` / `as=PartialObjectMetadata`
//! / aggregated-discovery forms, body decoding (JSON or YAML, with the
//! real server's 400 and 415 answers), and JSON / Status responses.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::Value;

use crate::error::ApiError;
use crate::store::{FieldValidation, WriteCtx};

/// The query parameters of a request.
#[derive(Debug, Default, Clone)]
pub struct Query {
    map: HashMap<String, String>,
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let map = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Self { map }
    }

    /// A parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    /// These parameters with `k` set to `v`.
    #[must_use]
    pub fn with(&self, k: &str, v: &str) -> Self {
        let mut map = self.map.clone();
        map.insert(k.to_owned(), v.to_owned());
        Self { map }
    }

    /// A boolean parameter (`true` or `1`).
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }

    /// An integer parameter.
    ///
    /// # Errors
    /// 400 when not an integer.
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest(format!("{k}: Invalid value: \"{s}\": must be an integer"))
                })
            })
            .transpose()
    }
}

/// What representation the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// The objects.
    Object,
    /// A meta.k8s.io/v1 Table.
    Table,
    /// PartialObjectMetadata(List).
    Metadata,
    /// apidiscovery.k8s.io/v2 APIGroupDiscoveryList.
    DiscoveryV2,
    /// apidiscovery.k8s.io/v2beta1 APIGroupDiscoveryList.
    DiscoveryV2Beta1,
}

/// Reads the Accept header: the first alternative this server can give.
pub fn accept(headers: &HeaderMap) -> As {
    let Some(a) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return As::Object;
    };
    for alt in a.split(',') {
        let mut parts = alt.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: HashMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
        if media != "application/json" && media != "*/*" && media != "application/*" {
            continue;
        }
        match (
            params.get("as").copied(),
            params.get("g").copied(),
            params.get("v").copied(),
        ) {
            (None, _, _) => return As::Object,
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => return As::Table,
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1" | "v1beta1"),
            ) => {
                return As::Metadata;
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return As::DiscoveryV2;
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                return As::DiscoveryV2Beta1;
            }
            _ => continue,
        }
    }
    As::Object
}

/// The media type of the body (without parameters).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes a JSON document.
///
/// # Errors
/// 400 with the parser's message.
pub fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// Decodes a YAML (or JSON) document.
///
/// # Errors
/// 400 with the parser's message.
pub fn yaml_body(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: yaml: {e}")))?;
    Ok(v)
}

/// Decodes the body of a create or update by its content type.
///
/// # Errors
/// 400 when malformed, 415 for other media types (and for protobuf of a
/// kind [`super::protobuf`] has no table for).
pub fn object_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = content_type(headers);
    let v = match ct.as_str() {
        "" | "application/json" => json_body(body)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => yaml_body(body)?,
        "application/vnd.kubernetes.protobuf" => {
            super::protobuf::decode(body).map_err(|e| match e {
                super::protobuf::ProtobufError::UnknownKind { .. } => {
                    ApiError::UnsupportedMediaType(e.to_string())
                }
                other => ApiError::BadRequest(other.to_string()),
            })?
        }
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf".into(),
            ));
        }
    };
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "Object 'Kind' is missing in the request body: the body must be an object".into(),
        ));
    }
    Ok(v)
}

/// The options kind a verb's query parameters decode into, as named in
/// the 422 refusing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Options {
    /// POST (create, eviction).
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Options {
    fn kind(self) -> &'static str {
        match self {
            Self::Create => "CreateOptions",
            Self::Update => "UpdateOptions",
            Self::Patch => "PatchOptions",
            Self::Delete => "DeleteOptions",
        }
    }
}

/// Whether `values` (the `dryRun` parameter) ask for a dry run.
///
/// # Errors
/// 422 for a value other than `All`, worded as the real server's options
/// validation (`CreateOptions.meta.k8s.io "" is invalid: dryRun:
/// Unsupported value: []string{"x"}: supported values: "All"`).
pub fn dry_run(values: &[&str], options: Options) -> Result<bool, ApiError> {
    let values: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
    if values.iter().all(|v| *v == "All") {
        return Ok(!values.is_empty());
    }
    // Go's %#v of a []string.
    let listed: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    Err(ApiError::invalid_one(
        options.kind(),
        "meta.k8s.io",
        "",
        crate::error::cause(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: []string{{{}}}: supported values: \"All\"",
                listed.join(", ")
            ),
            "dryRun",
        ),
    ))
}

/// The write context of a request: `dryRun`, `fieldManager` (or the user
/// agent's first segment, as the real server), `fieldValidation`.
///
/// # Errors
/// 422 for an unsupported `dryRun`, 400 for other unsupported values.
pub fn write_ctx(q: &Query, headers: &HeaderMap, options: Options) -> Result<WriteCtx, ApiError> {
    let dry_run = dry_run(q.get("dryRun").as_slice(), options)?;
    let manager = match q.get("fieldManager").filter(|s| !s.is_empty()) {
        Some(m) => m.to_owned(),
        None => {
            let ua = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let first = ua.split('/').next().unwrap_or("").trim();
            let m: String = first.chars().take(128).collect();
            if m.is_empty() {
                "unknown".to_owned()
            } else {
                m
            }
        }
    };
    let field_validation = match q.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    };
    Ok(WriteCtx {
        dry_run,
        manager,
        field_validation,
        now: crate::names::now(),
        version: None,
        old_converted: None,
    })
}

/// A JSON response.
pub fn json(code: u16, v: &Value) -> Response<Body> {
    json_typed(code, v, "application/json")
}

/// A JSON response with a given content type.
pub fn json_typed(code: u16, v: &Value, ctype: &str) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if let Ok(h) = HeaderValue::from_str(ctype) {
        r.headers_mut().insert(header::CONTENT_TYPE, h);
    }
    r
}

/// A plain-text response.
pub fn text(code: u16, s: String) -> Response<Body> {
    let mut r = Response::new(Body::from(s));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The `Status` response of an error.
pub fn error(e: &ApiError) -> Response<Body> {
    json(e.code(), &e.status())
}

/// Adds `Warning: 299 - "..."` headers.
pub fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(h) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            r.headers_mut().append(header::WARNING, h);
        }
    }
    r
}
