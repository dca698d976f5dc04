//! `/openapi/v3`: an index of every served group-version and their
//! documents (built by the schema module). Custom resources carry their
//! full schemas; built-in group-versions carry their paths and operations
//! only — enough for kubectl to see that the server validates fields and
//! supports dry run, which it checks before every `apply` and `create`.

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
