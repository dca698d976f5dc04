//! An HTTP proxy between an operator and the local API server that can
//! keep part of the API from the operator's sight, for the unobserved- and
//! stale-state plans (`tests/stale_state.rs`).
//!
//! Everything passes through unchanged until a plan says otherwise, and
//! writes always reach the live server. A plan concerns one [`Target`] (a
//! resource, or some of its objects by name) and does one of two things:
//!
//! - **hold** ([`LaggingProxy::hold`]): from now on the target's watch
//!   events are withheld, and its GETs and the target's items in lists are
//!   answered as they were when the hold began (so the operator cannot see
//!   the change by reading either). [`LaggingProxy::release`] delivers the
//!   withheld events on the streams they were withheld from, in order, and
//!   ends with `410 Gone` the streams that began during the hold (their
//!   first list was the held one), so that they list again.
//! - **stale** ([`LaggingProxy::serve_stale`]): the target is served from a
//!   [`View`] recorded earlier ([`LaggingProxy::record`]), as an API server
//!   whose cache lags would: lists as of the view's resourceVersion, GETs
//!   of the view's objects, watches that deliver nothing; the streams open
//!   at that moment end with `410 Gone`, so that their watchers list again
//!   and see the older view. [`LaggingProxy::reconnect`] goes back to the
//!   live server and ends every stream of the target the same way.
//!
//! Real HTTP to the real local API server: nothing of the operator is
//! mocked. One plan at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod request;
mod watch;

use request::{listed, namespace_name, parse_path, query_param};

type Body = BoxBody<Bytes, Infallible>;

/// The objects a plan concerns: every object of a resource, or those of
/// some names (in any namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Its version (`v1`, `v1alpha1`).
    pub version: &'static str,
    /// The plural resource (`pods`).
    pub resource: &'static str,
    /// Only these objects; `None`: every object of the resource.
    pub names: Option<BTreeSet<String>>,
}

impl Target {
    /// Every object of `group/version` `resource`.
    pub fn kind(group: &'static str, version: &'static str, resource: &'static str) -> Self {
        Self {
            group,
            version,
            resource,
            names: None,
        }
    }

    /// The objects named `name` of this target's resource.
    pub fn named(mut self, name: &str) -> Self {
        self.names = Some(BTreeSet::from([name.to_owned()]));
        self
    }

    pub fn valkey_clusters() -> Self {
        Self::kind("valkey.logbook.dev", "v1beta1", "valkeyclusters")
    }
    pub fn valkey_users() -> Self {
        Self::kind("valkey.logbook.dev", "v1alpha1", "valkeyusers")
    }
    pub fn valkey_backups() -> Self {
        Self::kind("valkey.logbook.dev", "v1alpha1", "valkeybackups")
    }
    pub fn pods() -> Self {
        Self::kind("", "v1", "pods")
    }
    pub fn services() -> Self {
        Self::kind("", "v1", "services")
    }
    pub fn config_maps() -> Self {
        Self::kind("", "v1", "configmaps")
    }
    pub fn secrets() -> Self {
        Self::kind("", "v1", "secrets")
    }
    pub fn stateful_sets() -> Self {
        Self::kind("apps", "v1", "statefulsets")
    }
    pub fn pod_disruption_budgets() -> Self {
        Self::kind("policy", "v1", "poddisruptionbudgets")
    }

    /// `group/resource` (`pods` for the core group).
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// Where its resource is listed across namespaces.
    fn list_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}/{}", self.version, self.resource)
        } else {
            format!("/apis/{}/{}/{}", self.group, self.version, self.resource)
        }
    }

    fn same_resource(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource
    }

    /// Whether the object named `name` is one of the target's.
    fn covers(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|n| n.contains(name))
    }
}

/// The target's objects as the live server showed them at one moment,
/// with the resourceVersion of that list.
#[derive(Debug, Clone)]
pub struct View {
    pub target: Target,
    /// The list's resourceVersion.
    pub resource_version: String,
    /// By (namespace, name), each with its `kind` and `apiVersion` (which
    /// lists leave out per item).
    objects: BTreeMap<(String, String), Value>,
}

impl View {
    /// The object `namespace/name` in the view, if it was there.
    pub fn object(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// The names of the view's objects.
    pub fn names(&self) -> Vec<String> {
        self.objects.keys().map(|(_, n)| n.clone()).collect()
    }
}

/// What a plan does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Hold,
    Stale,
}

#[derive(Debug)]
struct Rule {
    mode: Mode,
    view: View,
    /// Tells streams that began under this rule from older ones.
    epoch: u64,
}

/// What a stream's task is told.
#[derive(Debug)]
enum Control {
    /// Deliver what was withheld; end with 410 when the stream began
    /// under the rule of this epoch.
    Release(u64),
    /// End with 410 Gone.
    Gone,
}

struct StreamEntry {
    group: String,
    resource: String,
    control: mpsc::UnboundedSender<Control>,
}

struct Shared {
    upstream: SocketAddr,
    rule: Mutex<Option<Arc<Rule>>>,
    streams: Mutex<Vec<StreamEntry>>,
    epochs: AtomicU64,
    /// Watch events withheld so far.
    withheld: AtomicUsize,
    /// Answers (GETs, lists) doctored so far.
    doctored: AtomicUsize,
}

impl Shared {
    fn rule_for(&self, group: &str, resource: &str) -> Option<Arc<Rule>> {
        self.rule
            .lock()
            .unwrap()
            .clone()
            .filter(|r| r.view.target.same_resource(group, resource))
    }

    fn tell(&self, target: &Target, what: impl Fn() -> Control) {
        self.streams.lock().unwrap().retain(|s| {
            !target.same_resource(&s.group, &s.resource) || s.control.send(what()).is_ok()
        });
    }
}

/// The proxy, serving on 127.0.0.1 until dropped.
pub struct LaggingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LaggingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LaggingProxy {
    /// A proxy in front of the API server at `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| {
                panic!("the proxy needs an http://ip:port upstream, not {upstream}: {e}")
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            rule: Mutex::new(None),
            streams: Mutex::new(Vec::new()),
            epochs: AtomicU64::new(0),
            withheld: AtomicUsize::new(0),
            doctored: AtomicUsize::new(0),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(serve(&shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The target's objects as the live server shows them now (read with
    /// `client`, the test's own).
    pub async fn record(&self, client: &kube::Client, target: Target) -> View {
        let request = http::Request::get(target.list_path())
            .body(Vec::new())
            .unwrap();
        let list: Value = client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("listing {}: {e}", target.resource_name()));
        let kind = list["kind"]
            .as_str()
            .and_then(|k| k.strip_suffix("List"))
            .unwrap_or_default()
            .to_owned();
        let api_version = list["apiVersion"].as_str().unwrap_or_default().to_owned();
        let resource_version = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut objects = BTreeMap::new();
        for mut item in list["items"].as_array().cloned().unwrap_or_default() {
            let (ns, name) = namespace_name(&item);
            if !target.covers(&name) {
                continue;
            }
            item["kind"] = json!(kind);
            item["apiVersion"] = json!(api_version);
            objects.insert((ns, name), item);
        }
        View {
            target,
            resource_version,
            objects,
        }
    }

    /// Holds `target` from now on (see the module's documentation).
    pub async fn hold(&self, client: &kube::Client, target: Target) {
        let view = self.record(client, target).await;
        self.set(Mode::Hold, view);
    }

    /// Delivers what the hold withheld (see the module's documentation).
    pub fn release(&self) {
        let Some(rule) = self.shared.rule.lock().unwrap().take() else {
            return;
        };
        let epoch = rule.epoch;
        self.shared
            .tell(&rule.view.target, || Control::Release(epoch));
    }

    /// Serves `view`'s target from it from now on (see the module's
    /// documentation).
    pub fn serve_stale(&self, view: View) {
        let target = view.target.clone();
        self.set(Mode::Stale, view);
        self.shared.tell(&target, || Control::Gone);
    }

    /// Back to the live server for the stale target: its streams end with
    /// `410 Gone` and its watchers list again, live.
    pub fn reconnect(&self) {
        let Some(rule) = self.shared.rule.lock().unwrap().take() else {
            return;
        };
        self.shared.tell(&rule.view.target, || Control::Gone);
    }

    /// Watch events withheld since the last plan began.
    pub fn withheld(&self) -> usize {
        self.shared.withheld.load(Ordering::Relaxed)
    }

    /// GETs and lists answered from a view since the last plan began.
    pub fn doctored(&self) -> usize {
        self.shared.doctored.load(Ordering::Relaxed)
    }

    fn set(&self, mode: Mode, view: View) {
        self.shared.withheld.store(0, Ordering::Relaxed);
        self.shared.doctored.store(0, Ordering::Relaxed);
        let epoch = self.shared.epochs.fetch_add(1, Ordering::Relaxed) + 1;
        let mut rule = self.shared.rule.lock().unwrap();
        assert!(
            rule.is_none(),
            "one plan at a time: {:?} is in force",
            rule.as_ref().map(|r| (r.mode, r.view.target.clone()))
        );
        *rule = Some(Arc::new(Rule { mode, view, epoch }));
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed())
        .unwrap()
}

fn not_found(resource: &str, name: &str) -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{resource} \"{name}\" not found"),
            "reason": "NotFound", "details": {"name": name, "kind": resource}, "code": 404,
        }),
    )
}

fn bad_gateway(why: &str) -> Response<Body> {
    json_response(
        StatusCode::BAD_GATEWAY,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("lagging proxy: {why}"), "reason": "ServiceUnavailable", "code": 502}),
    )
}

/// The `ERROR` watch event that makes a watcher list again.
fn gone_line() -> Bytes {
    let event = json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version (the lagging proxy ended this watch)",
        "reason": "Expired", "code": 410,
    }});
    Bytes::from(format!("{event}\n"))
}

/// Sends `req` (its body read already) to the upstream server.
async fn forward(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<Response<Incoming>, String> {
    let stream = tokio::net::TcpStream::connect(shared.upstream)
        .await
        .map_err(|e| format!("connecting to {}: {e}", shared.upstream))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::ACCEPT_ENCODING {
            builder = builder.header(name, value);
        }
    }
    builder = builder.header(hyper::header::HOST, shared.upstream.to_string());
    let request = builder
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))
}

async fn collect(response: Response<Incoming>) -> Result<(http::response::Parts, Bytes), String> {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok((parts, bytes))
}

fn rebuild(parts: http::response::Parts, body: Bytes) -> Response<Body> {
    let mut response = Response::from_parts(parts, Full::new(body).boxed());
    response.headers_mut().remove(hyper::header::CONTENT_LENGTH);
    response
        .headers_mut()
        .remove(hyper::header::TRANSFER_ENCODING);
    response
}

async fn serve(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return bad_gateway("reading the request");
    };
    let path = parse_path(parts.uri.path());
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let watching = path.as_ref().is_some_and(|p| p.watch_prefix)
        || matches!(query_param(&query, "watch").as_deref(), Some("true" | "1"));
    let reading = parts.method == hyper::Method::GET;
    let Some(path) = path.filter(|p| reading && p.subresource.is_none()) else {
        return passthrough(shared, &parts, body).await;
    };
    if watching {
        return watch::watch(shared, &parts, &path).await;
    }
    let Some(rule) = shared.rule_for(&path.group, &path.resource) else {
        return passthrough(shared, &parts, body).await;
    };
    let view = &rule.view;
    if let Some(name) = &path.name {
        if !view.target.covers(name) {
            return passthrough(shared, &parts, body).await;
        }
        shared.doctored.fetch_add(1, Ordering::Relaxed);
        let ns = path.namespace.clone().unwrap_or_default();
        return match view.object(&ns, name) {
            Some(obj) => json_response(StatusCode::OK, obj),
            None => not_found(&path.resource, name),
        };
    }
    // A list: the target's items as the view has them.
    let response = match forward(shared, &parts, body).await {
        Ok(r) => r,
        Err(why) => return bad_gateway(&why),
    };
    let (mut head, bytes) = match collect(response).await {
        Ok(r) => r,
        Err(why) => return bad_gateway(&why),
    };
    if !head.status.is_success() {
        return rebuild(head, bytes);
    }
    let Ok(mut list) = serde_json::from_slice::<Value>(&bytes) else {
        return rebuild(head, bytes);
    };
    let labels = query_param(&query, "labelSelector");
    let fields = query_param(&query, "fieldSelector");
    let mut items: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|item| !view.target.covers(&namespace_name(item).1))
        .collect();
    items.extend(
        view.objects
            .values()
            .filter(|o| {
                listed(
                    o,
                    path.namespace.as_deref(),
                    labels.as_deref(),
                    fields.as_deref(),
                )
            })
            .cloned(),
    );
    list["items"] = Value::Array(items);
    if rule.mode == Mode::Stale {
        list["metadata"]["resourceVersion"] = json!(view.resource_version);
    }
    shared.doctored.fetch_add(1, Ordering::Relaxed);
    head.status = StatusCode::OK;
    rebuild(head, Bytes::from(list.to_string()))
}

async fn passthrough(shared: &Shared, parts: &http::request::Parts, body: Bytes) -> Response<Body> {
    match forward(shared, parts, body).await {
        Ok(response) => match collect(response).await {
            Ok((head, bytes)) => rebuild(head, bytes),
            Err(why) => bad_gateway(&why),
        },
        Err(why) => bad_gateway(&why),
    }
}
