//! The HTTP server: one fallback handler that authenticates, reads the
//! body within the size limit, parses the path into a [`path::Route`] and
//! hands it to discovery, OpenAPI or the resource handlers. Every failure
//! is answered with a `Status`; nothing a client sends can crash it.

mod admission;
mod conversion;
mod discovery;
pub mod faults;
mod guard;
mod kubelet_slot;
mod openapi;
pub mod path;
pub mod protobuf;
pub mod request;
pub mod requests;
mod resources;
mod reviews;
mod table;
mod token;
mod workloads;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Response, header};
use axum::serve::ListenerExt;
use http_body_util::BodyExt;

use crate::auth::{self, Attributes, AuthzLog, PolicyCache, TokenStore, UserInfo};
use crate::config::{Config, PodLogs};
use crate::error::ApiError;
use crate::store::{Store, StoreError};
use path::Route;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("localkube: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("localkube: {0}")]
    Store(#[from] StoreError),
    /// Workloads need an instance number and none could be had.
    #[error("localkube: cannot run workloads: {0}")]
    Instance(#[source] crate::instance::InstanceError),
    /// The process kubelet could not start.
    #[error("localkube: cannot start the kubelet: {0}")]
    Kubelet(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub(crate) struct App {
    pub store: Store,
    pub requests: requests::RequestLog,
    pub token: Option<String>,
    /// The live ServiceAccount tokens.
    pub tokens: TokenStore,
    /// Whether ServiceAccount requests are authorized by RBAC.
    pub rbac: bool,
    pub policy: PolicyCache,
    pub authz_log: AuthzLog,
    pub max_body: usize,
    pub pod_logs: Option<Arc<dyn PodLogs>>,
    pub addr: SocketAddr,
    /// The kubelet's fault injection, when a kubelet runs.
    pub faults: Option<crate::kubelet::Faults>,
}

/// The entry point.
pub struct LocalKube;

/// A running server.
pub struct RunningServer {
    addr: SocketAddr,
    requests: requests::RequestLog,
    token: Option<String>,
    tokens: TokenStore,
    authz_log: AuthzLog,
    store: Store,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    gc: tokio::task::JoinHandle<()>,
    workloads: Option<workloads::Workloads>,
}

impl LocalKube {
    /// Opens the store, creates the namespaces and `kubernetes` Service a
    /// cluster starts with, and serves until [`RunningServer::shutdown`].
    /// With [`Config::workloads`], it also takes an instance number (whose
    /// block Services get their ClusterIPs from) and runs the controllers,
    /// the Service proxy and the kubelet as asked.
    ///
    /// # Errors
    /// [`Error`] when the address cannot be bound, the state directory
    /// cannot be loaded, no instance number is free or the kubelet cannot
    /// start.
    pub async fn start(mut config: Config) -> Result<RunningServer, Error> {
        let instance = match &config.workloads {
            Some(_) => Some(workloads::acquire_instance()?),
            None => None,
        };
        if config.workloads.as_ref().is_some_and(|w| w.kubelet) {
            // A kubelet finishes deletions after its processes stop.
            config.graceful_pod_deletion = true;
        }
        let store = Store::open(&config, instance.as_ref().map(|i| i.number()))?;
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| Error::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.bind,
            source,
        })?;
        let mut pod_logs = config.pod_logs.clone();
        let workloads = match (&config.workloads, instance) {
            (Some(w), Some(instance)) => {
                let started = workloads::Workloads::start(&store, instance, w).await;
                let (running, logs) = started.inspect_err(|_| store.close())?;
                pod_logs = logs.or(pod_logs);
                Some(running)
            }
            _ => None,
        };
        let requests = requests::RequestLog::default();
        let tokens = TokenStore::default();
        let authz_log = AuthzLog::default();
        let app = Arc::new(App {
            store: store.clone(),
            requests: requests.clone(),
            token: config.token.clone(),
            tokens: tokens.clone(),
            rbac: config.rbac,
            policy: PolicyCache::default(),
            authz_log: authz_log.clone(),
            max_body: config.max_body_bytes,
            pod_logs,
            addr,
            faults: workloads.as_ref().and_then(|w| w.faults()),
        });
        let router = Router::new().fallback(handle).with_state(app);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Watch events are small writes on a long-lived stream: without
        // TCP_NODELAY, Nagle's algorithm holds each one back until the
        // client's delayed ACK (~40 ms on Linux), as a real server avoids.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "localkube: cannot set TCP_NODELAY");
            }
        });
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "localkube: server stopped with an error");
            }
        });
        let gc = store.spawn_gc();
        tracing::info!(%addr, "localkube: serving");
        Ok(RunningServer {
            requests,
            addr,
            token: config.token,
            tokens,
            authz_log,
            store,
            shutdown: tx,
            task,
            gc,
            workloads,
        })
    }
}

impl RunningServer {
    /// The log of the requests this server answered.
    #[must_use]
    pub fn requests(&self) -> requests::RequestLog {
        self.requests.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for this server (cluster, user and context
    /// `localkube`, namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        crate::kubeconfig::render(&self.url(), self.token.as_deref())
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path` (mode 0600 on Unix: it
    /// may hold the token).
    ///
    /// # Errors
    /// The I/O error.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        crate::kubeconfig::write(path, &self.kubeconfig_yaml())
    }

    /// A bearer token for the ServiceAccount `name` of `namespace`, valid
    /// for `ttl` (the TokenRequest API's 10-minute minimum does not apply,
    /// so a test can watch one expire). Pair it with
    /// [`Self::kubeconfig_with_token`] or a client's bearer token.
    ///
    /// # Errors
    /// 404 when the ServiceAccount does not exist.
    pub fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<String, ApiError> {
        let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        self.tokens
            .issue(&self.store, namespace, name, seconds, chrono::Utc::now())
            .map(|t| t.token)
    }

    /// A kubeconfig for this server that authenticates with `token` (e.g.
    /// a ServiceAccount's), otherwise as [`Self::kubeconfig_yaml`].
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        crate::kubeconfig::render(&self.url(), Some(token))
    }

    /// Writes [`Self::kubeconfig_with_token`] to `path` (mode 0600).
    ///
    /// # Errors
    /// The I/O error.
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> std::io::Result<()> {
        crate::kubeconfig::write(path, &self.kubeconfig_with_token(token))
    }

    /// Every distinct access RBAC allowed a ServiceAccount so far (with
    /// [`Config::rbac`]; sorted, object names left out): the permissions a
    /// client really used.
    #[must_use]
    pub fn authorizations(&self) -> Vec<auth::Access> {
        self.authz_log.allowed_accesses()
    }

    /// Every request RBAC refused so far, oldest first, with the 403's
    /// message (which names the missing permission).
    #[must_use]
    pub fn denials(&self) -> Vec<auth::Denial> {
        self.authz_log.denials()
    }

    /// The authorization log itself (e.g. to [`AuthzLog::clear`] it
    /// between phases of a test).
    #[must_use]
    pub fn authz_log(&self) -> AuthzLog {
        self.authz_log.clone()
    }

    /// The in-process store handle.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The instance number held while workloads run.
    pub fn instance(&self) -> Option<Arc<crate::instance::Instance>> {
        self.workloads.as_ref().map(|w| w.instance.clone())
    }

    /// Fault injection into pods, when the kubelet runs.
    pub fn faults(&self) -> Option<crate::kubelet::Faults> {
        self.workloads
            .as_ref()
            .and_then(workloads::Workloads::faults)
    }

    /// Stops serving: the kubelet (and every process it started), the
    /// proxy and the controllers stop first, then open watches end and
    /// persistence is flushed.
    pub async fn shutdown(self) {
        if let Some(w) = self.workloads {
            w.shutdown().await;
        }
        self.store.close();
        let _ = self.shutdown.send(());
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
        self.gc.abort();
    }
}

async fn read_body(app: &App, body: Body) -> Result<bytes::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, app.max_body);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::TooLarge(app.max_body))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "reading the request body: {e}"
        ))),
    }
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response<Body> {
    app.requests.push(
        req.method().as_str(),
        req.uri().path_and_query().map_or("", |p| p.as_str()),
    );
    let route = path::parse(req.uri().path());
    let query = request::Query::parse(req.uri().query());
    let open = matches!(route, Route::Health | Route::Version);
    let user = if open {
        UserInfo::anonymous()
    } else {
        let user = guard::authenticate(&app, req.headers())
            .and_then(|u| guard::impersonate(&app, u, req.headers()));
        match user {
            Ok(u) => u,
            Err(e) => return request::error(&e),
        }
    };
    if !open {
        let attrs = Attributes::of_request(
            user.clone(),
            req.method().as_str(),
            req.uri().path(),
            &route,
            &query,
        );
        // Before the body is read and before a watch starts, as the
        // apiserver's authorization filter runs.
        if let Err(e) = guard::authorize(&app, &attrs) {
            return request::error(&e);
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > app.max_body) {
        return request::error(&ApiError::TooLarge(app.max_body));
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(&app, body).await {
        Ok(b) => b,
        Err(e) => return request::error(&e),
    };
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let accept = request::accept(&parts.headers);
    match route {
        Route::Health if get => request::text(200, "ok".into()),
        Route::Version if get => request::json(200, &discovery::version()),
        Route::Api if get => discovery::api(&app, accept),
        Route::Apis if get => discovery::apis(&app, accept),
        Route::Group(g) if get => discovery::group(&app, &g),
        Route::ResourceList(g, v) if get => discovery::resource_list(&app, &g, &v),
        Route::OpenApiV2 if get => openapi::v2(&parts.headers),
        Route::OpenApiV3 if get => openapi::index(&app),
        Route::OpenApiV3Gv(g, v) if get => openapi::document(&app, &g, &v),
        Route::Resource(t) if token::serves(&t) => {
            token::handle(&app, &parts.method, &t, &query, &parts.headers, &body)
        }
        Route::Resource(t) if reviews::serves(&t) => {
            reviews::handle(&app, &user, &parts.method, &t, &parts.headers, &body)
        }
        Route::Resource(t) => {
            let req = resources::Req {
                method: &parts.method,
                target: &t,
                query: &query,
                headers: &parts.headers,
                body: &body,
                user: &user,
                old_converted: None,
            };
            resources::handle(&app, &req).await
        }
        Route::Fault(action) if parts.method == Method::POST => {
            faults::handle(&app, &action, &body).await
        }
        Route::NotFound => request::error(&ApiError::UnknownResource),
        _ => request::error(&ApiError::MethodNotAllowed),
    }
}
