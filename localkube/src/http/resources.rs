//! The resource verbs over HTTP: get, list, watch, create, update, patch,
//! delete, deletecollection, and the status, scale, log and eviction
//! subresources. Translates requests into store calls and results into
//! the real server's responses (codes, lists, tables, watch streams).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use serde_json::{Value, json};

use super::App;
use super::path::Target;
use super::request::{self, As, Options, Query};
use super::table;
use crate::auth::attributes::ResourceAttributes;
use crate::auth::{Attributes, UserInfo};
use crate::error::{ApiError, success_status};
use crate::registry::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, ListOptions, PatchKind, Propagation, RvMatch, Sub, render};
use crate::watch::WatchRequest;

type Reply = Result<Response<Body>, ApiError>;

/// One resource request, as the handlers take it.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    pub target: &'a Target,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// Who asks (for the checks a handler runs itself).
    pub user: &'a UserInfo,
    /// An update of an object stored at another version than the one it
    /// is written at: the object as stored, converted to that version
    /// (see `WriteCtx::old_converted`; `conversion.rs` sets it).
    pub old_converted: Option<&'a Value>,
}

/// Handles a resource request: a custom resource at a version its
/// conversion webhook converts from the stored one through
/// `conversion.rs`, any other as [`handle_stored`] does.
pub(crate) async fn handle(app: &App, r: &Req<'_>) -> Response<Body> {
    let t = r.target;
    match super::conversion::needed(&app.store, &t.group, &t.resource, &t.version) {
        Some(converter) => super::conversion::handle(app, r, &converter).await,
        None => handle_stored(app, r).await,
    }
}

/// Handles a resource request as its version is stored: the validating
/// webhooks asked first (`admission.rs`), then the store.
pub(crate) async fn handle_stored(app: &App, r: &Req<'_>) -> Response<Body> {
    if let Err(e) = super::admission::check(app, r).await {
        return request::error(&e);
    }
    dispatch_for_admission(app, r)
}

/// Handles a resource request without asking the webhooks (the dry run
/// that computes what they are asked about).
pub(crate) fn dispatch_for_admission(app: &App, r: &Req<'_>) -> Response<Body> {
    match dispatch(app, r) {
        Ok(r) => r,
        Err(e) => request::error(&e),
    }
}

fn resolve(app: &App, t: &Target) -> Result<Arc<ResourceInfo>, ApiError> {
    let res = app
        .store
        .resource_info(&t.group, &t.resource)
        .ok_or(ApiError::UnknownResource)?;
    let version = res.version(&t.version).ok_or(ApiError::UnknownResource)?;
    if t.namespace.is_some() && !res.namespaced {
        return Err(ApiError::UnknownResource);
    }
    // Streaming subresources need a container runtime's exec/attach/port
    // forwarding, which the process kubelet does not offer: refuse them
    // plainly rather than with a bare 404.
    if res.log && matches!(t.sub.as_deref(), Some("exec" | "attach" | "portforward")) {
        return Err(ApiError::BadRequest(format!(
            "localkube does not support pods/{}: its pods are local processes; connect to the pod IP directly, \
             read `kubectl logs`, or inject faults with `logbook local fault`",
            t.sub.as_deref().unwrap_or_default()
        )));
    }
    let sub_ok = match t.sub.as_deref() {
        None => true,
        Some("status") => version.status,
        Some("scale") => version.scale.is_some(),
        Some("log") => res.log,
        Some("eviction") => res.eviction,
        Some("finalize") => res.group.is_empty() && res.plural == "namespaces",
        Some(_) => false,
    };
    if !sub_ok || (t.sub.is_some() && t.name.is_none()) {
        return Err(ApiError::UnknownResource);
    }
    Ok(res)
}

fn dispatch(app: &App, r: &Req<'_>) -> Reply {
    let (method, t, q, headers, body) = (r.method, r.target, r.query, r.headers, r.body);
    let res = resolve(app, t)?;
    let ns = t.namespace.clone().unwrap_or_default();
    let watching = t.watch_prefix || q.flag("watch");
    let sub = t.sub.as_deref();
    match (method.as_str(), t.name.as_deref(), sub) {
        ("GET" | "HEAD", None, None) if watching => watch(app, &res, t, q, headers, None),
        ("GET" | "HEAD", None, None) => list(app, &res, t, q, headers),
        ("GET" | "HEAD", Some(name), None) if watching => {
            watch(app, &res, t, q, headers, Some(name))
        }
        ("GET" | "HEAD", Some(name), None | Some("status")) => {
            let o = app.store.get_in(&res, &ns, name)?;
            one(&res, &t.version, &o, headers, q, 200)
        }
        ("GET" | "HEAD", Some(name), Some("scale")) => {
            Ok(request::json(200, &app.store.scale_get(&res, &ns, name)?))
        }
        ("GET" | "HEAD", Some(name), Some("log")) => logs(app, &ns, name, q),
        ("POST", None, None) => {
            if res.namespaced && t.namespace.is_none() {
                return Err(ApiError::MethodNotAllowed);
            }
            let obj = request::object_body(headers, body)?;
            check_type(&res, &t.version, &obj)?;
            let mut ctx = request::write_ctx(q, headers, Options::Create)?;
            ctx.version = Some(t.version.clone());
            let out = app.store.create_in(&res, &ns, obj, &ctx)?;
            let r = one(&res, &t.version, &out.object, headers, q, 201)?;
            Ok(request::with_warnings(r, &out.warnings))
        }
        ("POST", Some(name), Some("eviction")) => {
            let ev = request::object_body(headers, body)?;
            let kind = ev.get("kind").and_then(Value::as_str).unwrap_or("Eviction");
            if kind != "Eviction" {
                return Err(ApiError::BadRequest(format!("{kind} is not an Eviction")));
            }
            let opts = delete_options(ev.get("deleteOptions"), &Query::default())?;
            let mut ctx = request::write_ctx(q, headers, Options::Create)?;
            if let Some(d) = ev.get("deleteOptions") {
                ctx.dry_run = ctx.dry_run || dry_run_in_body(d.to_string().as_bytes())?;
            }
            app.store.evict(&ns, name, &opts, &ctx)?;
            Ok(request::json(201, &success_status(201)))
        }
        ("PUT", Some(name), None | Some("status") | Some("finalize")) => {
            let obj = request::object_body(headers, body)?;
            check_type(&res, &t.version, &obj)?;
            let mut ctx = request::write_ctx(q, headers, Options::Update)?;
            // A subresource's write keeps the stored spec: checked as stored.
            ctx.version = sub.is_none().then(|| t.version.clone());
            ctx.old_converted = r.old_converted.cloned();
            let s = if sub == Some("status") {
                Sub::Status
            } else {
                Sub::Main
            };
            let out = app.store.replace_in(&res, &ns, name, obj, s, &ctx)?;
            let r = one(&res, &t.version, &out.object, headers, q, 200)?;
            Ok(request::with_warnings(r, &out.warnings))
        }
        ("PUT", Some(name), Some("scale")) => {
            let obj = request::object_body(headers, body)?;
            let ctx = request::write_ctx(q, headers, Options::Update)?;
            Ok(request::json(
                200,
                &app.store
                    .scale_write(&res, &ns, name, Some(obj), None, &ctx)?,
            ))
        }
        ("PATCH", Some(name), None | Some("status") | Some("scale")) => {
            patch(app, r, &res, &ns, name)
        }
        ("DELETE", Some(name), None) => {
            let opts = delete_options(delete_body(headers, body)?.as_ref(), q)?;
            let mut ctx = request::write_ctx(q, headers, Options::Delete)?;
            ctx.dry_run = ctx.dry_run || dry_run_in_body(body)?;
            let out = app.store.delete_in(&res, &ns, name, &opts, &ctx)?;
            let code = if out.pending && opts.propagation == Some(Propagation::Foreground) {
                202
            } else {
                200
            };
            if out.pending || res.custom || (res.group.is_empty() && res.plural == "pods") {
                return Ok(request::json(code, &render(&out.object, &res, &t.version)));
            }
            let mut s = success_status(200);
            if let Some(m) = s.as_object_mut() {
                let mut details =
                    json!({"name": name, "kind": res.plural, "uid": crate::obj::uid(&out.object)});
                if !res.group.is_empty()
                    && let Some(d) = details.as_object_mut()
                {
                    d.insert("group".into(), json!(res.group));
                }
                m.insert("details".into(), details);
            }
            Ok(request::json(200, &s))
        }
        ("DELETE", None, None) => {
            let opts = delete_options(delete_body(headers, body)?.as_ref(), q)?;
            let mut ctx = request::write_ctx(q, headers, Options::Delete)?;
            ctx.dry_run = ctx.dry_run || dry_run_in_body(body)?;
            let lo = list_options(&res, q)?;
            let items =
                app.store
                    .delete_collection_in(&res, t.namespace.as_deref(), &lo, &opts, &ctx)?;
            let items: Vec<Value> = items.iter().map(|o| render(o, &res, &t.version)).collect();
            Ok(request::json(
                200,
                &json!({"kind": res.list_kind, "apiVersion": res.api_version(&t.version), "metadata": {}, "items": items}),
            ))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// 400 when the body's apiVersion or kind is not the URL's.
fn check_type(res: &ResourceInfo, version: &str, obj: &Value) -> Result<(), ApiError> {
    let want = res.api_version(version);
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && av != want
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({want})"
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != res.kind
    {
        return Err(ApiError::BadRequest(format!(
            "{k} in version \"{version}\" cannot be handled as a {}: the object kind does not match",
            res.kind
        )));
    }
    Ok(())
}

fn one(
    res: &ResourceInfo,
    version: &str,
    o: &Value,
    headers: &HeaderMap,
    q: &Query,
    code: u16,
) -> Reply {
    let rendered = render(o, res, version);
    Ok(match request::accept(headers) {
        As::Table => request::json(
            code,
            &table::table(res, &[rendered], q.get("includeObject"), None, None),
        ),
        As::Metadata => request::json(code, &table::partial(&rendered)),
        _ => request::json(code, &rendered),
    })
}

fn list_options(res: &ResourceInfo, q: &Query) -> Result<ListOptions, ApiError> {
    let bad = |e: crate::selector::SelectorError| ApiError::BadRequest(e.to_string());
    Ok(ListOptions {
        label_selector: LabelSelector::parse(q.get("labelSelector").unwrap_or("")).map_err(bad)?,
        field_selector: FieldSelector::parse(
            q.get("fieldSelector").unwrap_or(""),
            &res.group,
            &res.plural,
        )
        .map_err(bad)?,
        limit: q.int("limit")?.and_then(|l| usize::try_from(l).ok()),
        continue_token: q.get("continue").map(str::to_owned),
        resource_version: q.get("resourceVersion").map(str::to_owned),
        rv_match: match q.get("resourceVersionMatch") {
            None | Some("") => None,
            Some("Exact") => Some(RvMatch::Exact),
            Some("NotOlderThan") => Some(RvMatch::NotOlderThan),
            Some(o) => {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch: Unsupported value: \"{o}\": supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        },
    })
}

fn list(app: &App, res: &ResourceInfo, t: &Target, q: &Query, headers: &HeaderMap) -> Reply {
    let opts = list_options(res, q)?;
    let out = app.store.list_in(res, t.namespace.as_deref(), &opts)?;
    let items: Vec<Value> = out
        .items
        .iter()
        .map(|o| render(o, res, &t.version))
        .collect();
    let mut meta = json!({"resourceVersion": out.resource_version.to_string()});
    if let (Some(c), Some(m)) = (&out.continue_token, meta.as_object_mut()) {
        m.insert("continue".into(), json!(c));
        if let Some(r) = out.remaining {
            m.insert("remainingItemCount".into(), json!(r));
        }
    }
    Ok(match request::accept(headers) {
        As::Table => request::json(
            200,
            &table::table(res, &items, q.get("includeObject"), Some(meta), None),
        ),
        As::Metadata => request::json(
            200,
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "items": items.iter().map(table::partial).collect::<Vec<_>>()}),
        ),
        _ => request::json(
            200,
            &json!({"kind": res.list_kind, "apiVersion": res.api_version(&t.version), "metadata": meta, "items": items}),
        ),
    })
}

fn watch(
    app: &App,
    res: &ResourceInfo,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    name: Option<&str>,
) -> Reply {
    let opts = list_options(res, q)?;
    let field = match name {
        Some(n) => FieldSelector::name(n),
        None => opts.field_selector,
    };
    let rv = q.get("resourceVersion").filter(|s| !s.is_empty());
    if let Some(rv) = rv {
        crate::store::list_parse_rv(rv)?;
    }
    let send_initial = q.flag("sendInitialEvents");
    if send_initial && opts.rv_match != Some(RvMatch::NotOlderThan) {
        return Err(ApiError::BadRequest(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
        ));
    }
    if send_initial && !q.flag("allowWatchBookmarks") {
        return Err(ApiError::BadRequest("allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true".into()));
    }
    let timeout = q
        .int("timeoutSeconds")?
        .filter(|s| *s > 0)
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs);
    let rx = app.store.watch_request(WatchRequest {
        group: res.group.clone(),
        resource: res.plural.clone(),
        namespace: t.namespace.clone(),
        label: opts.label_selector,
        field,
        resource_version: rv.map(str::to_owned),
        bookmarks: q.flag("allowWatchBookmarks"),
        timeout,
        send_initial_events: send_initial,
        api_version: res.api_version(&t.version),
        kind: res.kind.clone(),
    })?;
    let mode = request::accept(headers);
    let res2 = res.clone();
    let version = t.version.clone();
    let include = q.get("includeObject").map(str::to_owned);
    // A version its conversion webhook converts from the stored one: each
    // event's object converted on its way; a failure ends the watch with
    // an ERROR event, as the real server ends it.
    let converter = super::conversion::needed(&app.store, &res.group, &res.plural, &t.version);
    let stream = futures::stream::unfold((rx, false), move |(mut rx, ended)| {
        let res = res2.clone();
        let version = version.clone();
        let include = include.clone();
        let converter = converter.clone();
        async move {
            if ended {
                return None;
            }
            let ev = rx.recv().await?;
            let mut failed = None;
            let object = match ev.etype {
                "ERROR" | "BOOKMARK" => (*ev.object).clone(),
                _ => {
                    let o = match &converter {
                        None => render(&ev.object, &res, &version),
                        Some(c) => {
                            let stored = render(&ev.object, &res, &c.storage);
                            match c.convert(vec![stored], &version).await {
                                Ok(mut converted) => converted.pop().unwrap_or_default(),
                                Err(e) => {
                                    failed = Some(e.status());
                                    Value::Null
                                }
                            }
                        }
                    };
                    match mode {
                        As::Table => {
                            table::table(&res, &[o], include.as_deref(), None, Some(ev.etype))
                        }
                        As::Metadata => table::partial(&o),
                        _ => o,
                    }
                }
            };
            let event = match &failed {
                Some(status) => json!({"type": "ERROR", "object": status}),
                None => json!({"type": ev.etype, "object": object}),
            };
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            Some((
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line)),
                (rx, failed.is_some()),
            ))
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn patch(app: &App, r: &Req<'_>, res: &ResourceInfo, ns: &str, name: &str) -> Reply {
    let (t, q, headers, body) = (r.target, r.query, r.headers, r.body);
    let ct = request::content_type(headers);
    let kind = match ct.as_str() {
        "application/merge-patch+json" => PatchKind::Merge,
        "application/json-patch+json" => PatchKind::Json,
        "application/strategic-merge-patch+json" if !res.custom => PatchKind::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" if ct.ends_with("yaml") => {
            PatchKind::Apply {
                force: q.flag("force"),
            }
        }
        _ => {
            let smp = if res.custom {
                ""
            } else {
                ", application/strategic-merge-patch+json"
            };
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{smp}"
            )));
        }
    };
    let patch = match kind {
        PatchKind::Apply { .. } => request::yaml_body(body)?,
        _ => request::json_body(body)?,
    };
    let mut ctx = request::write_ctx(q, headers, Options::Patch)?;
    ctx.version = t.sub.is_none().then(|| t.version.clone());
    if let PatchKind::Apply { .. } = kind {
        if q.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::BadRequest(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            ));
        }
        if !patch.is_object() {
            return Err(ApiError::BadRequest(
                "the applied configuration must be an object".into(),
            ));
        }
        if t.sub.as_deref() != Some("scale") {
            check_type(res, &t.version, &patch)?;
        }
        if t.sub.is_none() && app.store.get_in(res, ns, name).is_err() {
            // An apply that creates needs `create` too, checked inside the
            // handler as the apiserver checks a create-on-update.
            let a = Attributes::resource(
                r.user.clone(),
                "create",
                ResourceAttributes {
                    group: res.group.clone(),
                    resource: res.plural.clone(),
                    subresource: String::new(),
                    namespace: t.namespace.clone().unwrap_or_default(),
                    name: name.to_owned(),
                },
            );
            super::guard::authorize_create_on_write(app, &a)?;
        }
    } else if q.get("force").is_some() {
        return Err(ApiError::BadRequest(
            "force: Forbidden: may not be specified for non-apply patch".into(),
        ));
    }
    if t.sub.as_deref() == Some("scale") {
        return Ok(request::json(
            200,
            &app.store
                .scale_write(res, ns, name, None, Some((kind, &patch)), &ctx)?,
        ));
    }
    let sub = if t.sub.as_deref() == Some("status") {
        Sub::Status
    } else {
        Sub::Main
    };
    let out = app
        .store
        .patch_in(res, &t.version, ns, name, kind, &patch, sub, &ctx)?;
    let code = if out.created { 201 } else { 200 };
    let r = one(res, &t.version, &out.object, headers, q, code)?;
    Ok(request::with_warnings(r, &out.warnings))
}

fn delete_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    request::object_body(headers, body).map(Some)
}

/// A DeleteOptions body's `dryRun`, validated as the query parameter is.
fn dry_run_in_body(body: &[u8]) -> Result<bool, ApiError> {
    let Some(values) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("dryRun").and_then(Value::as_array).cloned())
    else {
        return Ok(false);
    };
    let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    request::dry_run(&values, Options::Delete)
}

fn delete_options(body: Option<&Value>, q: &Query) -> Result<DeleteOptions, ApiError> {
    let s = |k: &str| {
        body.and_then(|b| b.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| q.get(k).map(str::to_owned))
    };
    let propagation = match s("propagationPolicy").as_deref() {
        None | Some("") => {
            let orphan = body
                .and_then(|b| b.get("orphanDependents"))
                .and_then(Value::as_bool)
                .or_else(|| q.get("orphanDependents").map(|v| v == "true"));
            match orphan {
                Some(true) => Some(Propagation::Orphan),
                Some(false) => Some(Propagation::Background),
                None => None,
            }
        }
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(o) => {
            return Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: \"{o}\": supported values: \"Background\", \"Foreground\", \"Orphan\""
            )));
        }
    };
    let grace_period = match body.and_then(|b| b.get("gracePeriodSeconds")) {
        Some(v) => v.as_i64(),
        None => q.int("gracePeriodSeconds")?,
    };
    let pre = body.and_then(|b| b.get("preconditions"));
    let pre_s = |k: &str| {
        pre.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(DeleteOptions {
        propagation,
        grace_period,
        uid: pre_s("uid"),
        resource_version: pre_s("resourceVersion"),
    })
}

fn logs(app: &App, ns: &str, name: &str, q: &Query) -> Reply {
    let pods = app
        .store
        .resource_info("", "pods")
        .ok_or(ApiError::UnknownResource)?;
    let pod = app.store.get_in(&pods, ns, name)?;
    let container = q.get("container").filter(|c| !c.is_empty());
    let first = pod
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(source) = &app.pod_logs else {
        let c = container.unwrap_or(&first);
        return Err(ApiError::BadRequest(format!(
            "container \"{c}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    match source.logs(ns, name, container, q.int("tailLines")?) {
        Ok(text) => Ok(request::text(200, text)),
        Err(m) => Err(ApiError::BadRequest(m)),
    }
}
