//! Custom resources read and written at a version other than the one
//! stored, converted as the real API server converts them: when the CRD's
//! `spec.conversion.strategy` is `Webhook`, each object crossing between
//! the two versions is sent to its conversion webhook (a
//! `ConversionReview`, `apiextensions.k8s.io/v1`, over HTTPS trusting its
//! `caBundle`; the same client as the validating webhooks'), and a webhook
//! that cannot be called, or answers with a failure, fails the request
//! (500, `conversion webhook for <group/version, Kind> failed: …`) with
//! nothing stored. Strategy `None` keeps localkube's old way (only
//! `apiVersion` changes).
//!
//! Each object keeps the version it was stored at (an object written
//! before its CRD changed its storage version keeps the old one until it
//! is written again), and is converted from it whenever it is read at
//! another. How each verb goes, for a request at version V of a resource
//! stored at S:
//! - get, list, delete: asked at S, each object of the answer converted
//!   to V (one review per answer);
//! - watch: asked at S, each event's object converted to V on its way
//!   (one review per event; a failure ends the stream with an `ERROR`
//!   event, as the real server does);
//! - create and update (and `/status`): at S as they come; at another V
//!   checked first as a dry run at V (V's schema prunes, defaults and
//!   validates, V's messages), then the body converted to S and written
//!   there; the answer converted to V;
//! - merge and JSON patches: the stored object converted to V, the patch
//!   applied there, and the result written as an update at V (as above)
//!   guarded by the resourceVersion it was read at, read again on a
//!   conflict. Server-side apply at V is refused with the reason (its
//!   field ownership is kept per stored object).
//!
//! Differences from the real server: the validating webhooks see the
//! object at S, not at V; a write's transition rules (`oldSelf`) at V
//! read the stored object as S has it; a Table's cells come from S's
//! printer columns.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, header};
use serde_json::{Value, json};

use super::App;
use super::path::Target;
use super::request;
use super::resources::Req;
use crate::error::ApiError;
use crate::registry::ResourceInfo;
use crate::store::Store;

/// How long a conversion webhook has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a patch at V is tried when the object changes under it.
const PATCH_TRIES: usize = 5;

/// A custom resource whose objects a webhook converts, and the version
/// they are stored at.
#[derive(Clone)]
pub(crate) struct Converter {
    res: Arc<ResourceInfo>,
    /// The version objects are stored at.
    pub storage: String,
    /// `{"clientConfig": …}` of the CRD's conversion webhook.
    hook: Value,
    store: Store,
}

/// The converter for a request at `version` of `resource` in `group`, when
/// its CRD converts by webhook (every version: an object keeps the
/// version it was stored at).
pub(crate) fn needed(
    store: &Store,
    group: &str,
    resource: &str,
    version: &str,
) -> Option<Converter> {
    let res = store.resource_info(group, resource)?;
    res.version(version)?;
    let client = res.conversion_webhook.clone()?;
    let storage = res.versions.iter().find(|v| v.storage)?.name.clone();
    Some(Converter {
        res,
        storage,
        hook: json!({"clientConfig": client}),
        store: store.clone(),
    })
}

impl Converter {
    /// `objects` as `version`: those at another version by the webhook,
    /// in one review; the others as they are.
    ///
    /// # Errors
    /// 500 naming the webhook's failure.
    pub(crate) async fn convert(
        &self,
        mut objects: Vec<Value>,
        version: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let desired = self.res.api_version(version);
        let stale: Vec<usize> = objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.get("apiVersion").and_then(Value::as_str) != Some(&desired))
            .map(|(i, _)| i)
            .collect();
        if stale.is_empty() {
            return Ok(objects);
        }
        let sent: Vec<Value> = stale
            .iter()
            .filter_map(|i| objects.get(*i).cloned())
            .collect();
        let converted = self.review(sent, &desired).await?;
        for (i, o) in stale.into_iter().zip(converted) {
            if let Some(slot) = objects.get_mut(i) {
                *slot = o;
            }
        }
        Ok(objects)
    }

    /// For an update (`PUT` of a named object, not a subresource's), the
    /// object as stored converted to the stored version, when it is
    /// stored at an older one: what its `generation` is judged against.
    /// `None` for anything else, or an object already at the stored
    /// version (or not found: the write says so).
    ///
    /// # Errors
    /// 500 naming the webhook's failure.
    async fn old_at_storage(&self, r: &Req<'_>) -> Result<Option<Value>, ApiError> {
        let t = r.target;
        let (true, Some(name), None) = (r.method == Method::PUT, t.name.as_deref(), &t.sub) else {
            return Ok(None);
        };
        let desired = self.res.api_version(&self.storage);
        let Ok(current) = self
            .store
            .get(&desired, &t.resource, t.namespace.as_deref(), name)
        else {
            return Ok(None);
        };
        if current.get("apiVersion").and_then(Value::as_str) == Some(&desired) {
            return Ok(None);
        }
        Ok(self.review(vec![current], &desired).await?.pop())
    }

    /// One `ConversionReview` of `objects` to `desired` (an `apiVersion`).
    async fn review(&self, objects: Vec<Value>, desired: &str) -> Result<Vec<Value>, ApiError> {
        let failed = |why: String| {
            ApiError::Internal(format!(
                "conversion webhook for {}, Kind={} failed: {why}",
                self.res.api_version(&self.storage),
                self.res.kind
            ))
        };
        let uid = uuid::Uuid::new_v4().to_string();
        let count = objects.len();
        let review = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {
                "uid": uid,
                "desiredAPIVersion": desired,
                "objects": objects,
            },
        });
        let answer = tokio::time::timeout(
            TIMEOUT,
            super::admission::call(&self.store, &self.hook, &review),
        )
        .await
        .map_err(|_| failed(format!("timed out after {}s", TIMEOUT.as_secs())))?
        .map_err(failed)?;
        let response = answer.get("response").cloned().unwrap_or_default();
        if response.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
            return Err(failed("the response's uid is not the request's".into()));
        }
        if response.pointer("/result/status").and_then(Value::as_str) != Some("Success") {
            let message = response
                .pointer("/result/message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(failed(message.to_owned()));
        }
        let converted = response
            .get("convertedObjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if converted.len() != count {
            return Err(failed(format!(
                "returned {} objects for {count}",
                converted.len()
            )));
        }
        Ok(converted)
    }

    /// `response` (an answer at the stored version) with the objects it
    /// holds, one or a list, converted to `version`; anything else (a
    /// Status, a Table, a failure) as it is.
    async fn answer_at(&self, response: Response<Body>, version: &str) -> Response<Body> {
        if !response.status().is_success() {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
            return request::error(&ApiError::Internal(
                "reading the stored object's answer".into(),
            ));
        };
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            return Response::from_parts(parts, Body::from(bytes));
        };
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let converted = if kind == self.res.kind {
            self.convert(vec![value], version)
                .await
                .map(|mut v| v.pop().unwrap_or_default())
        } else if kind == self.res.list_kind {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match self.convert(items, version).await {
                Ok(items) => {
                    if let Value::Object(list) = &mut value {
                        list.insert("items".to_owned(), Value::Array(items));
                        list.insert(
                            "apiVersion".to_owned(),
                            json!(self.res.api_version(version)),
                        );
                    }
                    Ok(value)
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(value)
        };
        match converted {
            Ok(v) => {
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(
                    parts,
                    Body::from(serde_json::to_vec(&v).unwrap_or_default()),
                )
            }
            Err(e) => request::error(&e),
        }
    }
}

/// Answers `r`, a request at a version `c` converts from the stored one.
pub(crate) async fn handle(app: &App, r: &Req<'_>, c: &Converter) -> Response<Body> {
    let t = r.target;
    let stored = Target {
        version: c.storage.clone(),
        ..t.clone()
    };
    let watching = t.watch_prefix || r.query.flag("watch");
    match r.method.as_str() {
        // Watches convert in their stream (`resources.rs`); a Scale is
        // the same object at every version.
        _ if watching || t.sub.as_deref() == Some("scale") => {
            super::resources::handle_stored(app, r).await
        }
        "GET" | "HEAD" | "DELETE" => {
            let at_storage = Req {
                target: &stored,
                ..*r
            };
            let answer = super::resources::handle_stored(app, &at_storage).await;
            c.answer_at(answer, &t.version).await
        }
        // Written at the stored version: nothing to convert on the way in
        // (an update of an object stored at an older version is judged
        // against it converted).
        "POST" | "PUT" if t.version == c.storage => {
            let old = match c.old_at_storage(r).await {
                Ok(old) => old,
                Err(e) => return request::error(&e),
            };
            let r = Req {
                old_converted: old.as_ref(),
                ..*r
            };
            let answer = super::resources::handle_stored(app, &r).await;
            c.answer_at(answer, &t.version).await
        }
        "POST" | "PUT" => match request::object_body(r.headers, r.body) {
            Ok(object) => write(app, r, c, &stored, object).await,
            Err(e) => request::error(&e),
        },
        "PATCH" => patch(app, r, c, &stored).await,
        _ => super::resources::handle_stored(app, r).await,
    }
}

/// A create or an update at the version asked for: checked there as a
/// dry run, then `object` converted and written at the stored version.
async fn write(
    app: &App,
    r: &Req<'_>,
    c: &Converter,
    stored: &Target,
    object: Value,
) -> Response<Body> {
    let dry = r.query.with("dryRun", "All");
    let body = serde_json::to_vec(&object).unwrap_or_default();
    let headers = json_headers(r.headers);
    let check = Req {
        query: &dry,
        headers: &headers,
        body: &body,
        ..*r
    };
    let checked = super::resources::dispatch_for_admission(app, &check);
    if !checked.status().is_success() {
        return checked;
    }
    let converted = match c.convert(vec![object], &c.storage).await {
        Ok(mut v) => v.pop().unwrap_or_default(),
        Err(e) => return request::error(&e),
    };
    let body = serde_json::to_vec(&converted).unwrap_or_default();
    let old = match c.old_at_storage(r).await {
        Ok(old) => old,
        Err(e) => return request::error(&e),
    };
    let at_storage = Req {
        target: stored,
        headers: &headers,
        body: &body,
        old_converted: old.as_ref(),
        ..*r
    };
    let answer = super::resources::handle_stored(app, &at_storage).await;
    c.answer_at(answer, &r.target.version).await
}

/// A merge or JSON patch at the version asked for: applied to the stored
/// object as that version shows it, written back as an update guarded by
/// the resourceVersion it was read at.
async fn patch(app: &App, r: &Req<'_>, c: &Converter, stored: &Target) -> Response<Body> {
    let t = r.target;
    let ct = request::content_type(r.headers);
    let apply: fn(&Value, &Value) -> Result<Value, ApiError> = match ct.as_str() {
        "application/merge-patch+json" => |o, p| Ok(crate::patch::merge_patch(o, p)),
        "application/json-patch+json" => {
            |o, p| crate::patch::json_patch(o, p).map_err(|e| ApiError::BadRequest(e.to_string()))
        }
        _ => {
            // Strategic merge and server-side apply: refused as at the
            // stored version (the former for every custom resource), or
            // because apply's field ownership is kept at the stored one.
            if ct.starts_with("application/apply-patch") && t.version != c.storage {
                return request::error(&ApiError::UnsupportedMediaType(format!(
                    "localkube applies server-side at the stored version only: apply {} at {}, or patch at {}",
                    t.resource, c.storage, t.version
                )));
            }
            return super::resources::handle_stored(app, r).await;
        }
    };
    let Ok(patch) = serde_json::from_slice::<Value>(r.body) else {
        return request::error(&ApiError::BadRequest("the patch is not JSON".to_owned()));
    };
    let Some(name) = t.name.as_deref() else {
        return request::error(&ApiError::MethodNotAllowed);
    };
    let put = Method::PUT;
    let mut outcome = request::error(&ApiError::Internal("no try made".into()));
    for _ in 0..PATCH_TRIES {
        let current = match c.store.get(
            &c.res.api_version(&c.storage),
            &t.resource,
            t.namespace.as_deref(),
            name,
        ) {
            Ok(o) => o,
            Err(e) => return request::error(&e),
        };
        let at_version = match c.convert(vec![current], &t.version).await {
            Ok(mut v) => v.pop().unwrap_or_default(),
            Err(e) => return request::error(&e),
        };
        let patched = match apply(&at_version, &patch) {
            Ok(p) => p,
            Err(e) => return request::error(&e),
        };
        let update = Req { method: &put, ..*r };
        outcome = write(app, &update, c, stored, patched).await;
        // Changed under it: read again, unless the patch itself named the
        // resourceVersion it expects.
        let pinned = patch.pointer("/metadata/resourceVersion").is_some();
        if outcome.status().as_u16() != 409 || pinned {
            break;
        }
    }
    outcome
}

/// `headers` with a JSON body.
fn json_headers(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.remove(header::CONTENT_LENGTH);
    h
}
