//! `/openapi/v3`: an index of every served group-version and their
//! documents (built by the schema module). Custom resources carry their
//! full schemas; built-in group-versions carry their paths and operations
//! only — enough for kubectl to see that the server validates fields and
//! supports dry run, which it checks before every `apply` and `create`.
//! `/openapi/v2`: a document with no paths and no definitions ([`v2`]).

use axum::body::Body;
use axum::http::Response;
use serde_json::{Map, Value, json};

use super::App;
use super::request;
use crate::error::ApiError;
use crate::schema::{self, BuiltinKindDoc, CrdKindSchema};

fn document_of(app: &App, group: &str, version: &str) -> Option<Value> {
    let rs: Vec<_> = app
        .store
        .resources()
        .into_iter()
        .filter(|r| r.group == group && r.version(version).is_some())
        .collect();
    if rs.is_empty() {
        return None;
    }
    if rs.iter().all(|r| !r.custom) {
        let kinds: Vec<BuiltinKindDoc<'_>> = rs
            .iter()
            .map(|r| BuiltinKindDoc {
                kind: &r.kind,
                plural: &r.plural,
                namespaced: r.namespaced,
            })
            .collect();
        return Some(schema::openapi_v3_builtin_document(group, version, &kinds));
    }
    let rs: Vec<_> = rs.into_iter().filter(|r| r.custom).collect();
    let empty = json!({});
    let kinds: Vec<CrdKindSchema<'_>> = rs
        .iter()
        .map(|r| CrdKindSchema {
            kind: &r.kind,
            list_kind: &r.list_kind,
            plural: &r.plural,
            namespaced: r.namespaced,
            schema: r
                .version(version)
                .and_then(|v| v.raw_schema.as_ref())
                .unwrap_or(&empty),
        })
        .collect();
    Some(schema::openapi_v3_document(group, version, &kinds))
}

/// A short stable hash of a document (the index's `?hash=`).
fn hash(v: &Value) -> String {
    // FNV-1a: a cache key, not a security property.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`.
pub fn index(app: &App) -> Response<Body> {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> = app
        .store
        .resources()
        .iter()
        .flat_map(|r| {
            r.versions
                .iter()
                .map(|v| (r.group.clone(), v.name.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    gvs.sort();
    gvs.dedup();
    for (g, v) in gvs {
        if let Some(doc) = document_of(app, &g, &v) {
            let key = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&doc))}),
            );
        }
    }
    request::json(200, &json!({"paths": paths}))
}

/// `/openapi/v3/apis/{group}/{version}`.
pub fn document(app: &App, group: &str, version: &str) -> Response<Body> {
    match document_of(app, group, version) {
        Some(doc) => request::json(200, &doc),
        None => request::error(&ApiError::UnknownResource),
    }
}

/// `/openapi/v2`'s media type in protobuf, as the real server names it
/// (kubectl asks for `...spec.v2@v1.0+protobuf`, which is no valid media
/// type to answer with).
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2`: a Swagger 2.0 document with no paths and no
/// definitions, in protobuf (gnostic's `Document` holding only `swagger:
/// "2.0"`, field 1) when asked so, as kubectl asks, else in JSON.
///
/// kubectl validates an object against `/openapi/v3` when the index
/// names its group-version, and reads v2 only for a kind the server does
/// not serve (a CRD not installed: cert-manager's `Certificate`, say).
/// Finding no schema for it there, it goes on as against a real server:
/// that object is refused as unknown ("ensure CRDs are installed first")
/// and the rest of the file is applied. A 404 here made it refuse the
/// whole file ("error validating data: the server could not find the
/// requested resource"), `--validate=false` or not aside.
pub fn v2(headers: &axum::http::HeaderMap) -> Response<Body> {
    let protobuf = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("protobuf"));
    if !protobuf {
        return request::json(
            200,
            &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.35.0"},
                "paths": {}, "definitions": {}}),
        );
    }
    // Field 1 (swagger), wire type 2 (length-delimited): "2.0".
    let body: &'static [u8] = &[0x0a, 0x03, b'2', b'.', b'0'];
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(V2_PROTOBUF),
    );
    r
}
