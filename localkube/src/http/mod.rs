//! The HTTP server: one fallback handler that authenticates, reads the
//! body within the size limit, parses the path into a [`path::Route`] and
//! hands it to discovery, OpenAPI or the resource handlers. Every failure
//! is answered with a `Status`; nothing a client sends can crash it.

mod discovery;
mod faults;
mod kubelet_slot;
mod openapi;
pub mod path;
pub mod request;
pub mod requests;
mod resources;
mod table;
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
        let app = Arc::new(App {
            store: store.clone(),
            requests: requests.clone(),
            token: config.token.clone(),
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

fn authorized(app: &App, req: &Request) -> bool {
    let Some(token) = &app.token else { return true };
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == token)
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
    let open = matches!(route, Route::Health | Route::Version);
    if !open && !authorized(&app, &req) {
        return request::error(&ApiError::Unauthorized);
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
    let query = request::Query::parse(parts.uri.query());
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let accept = request::accept(&parts.headers);
    match route {
        Route::Health if get => request::text(200, "ok".into()),
        Route::Version if get => request::json(200, &discovery::version()),
        Route::Api if get => discovery::api(&app, accept),
        Route::Apis if get => discovery::apis(&app, accept),
        Route::Group(g) if get => discovery::group(&app, &g),
        Route::ResourceList(g, v) if get => discovery::resource_list(&app, &g, &v),
        Route::OpenApiV3 if get => openapi::index(&app),
        Route::OpenApiV3Gv(g, v) if get => openapi::document(&app, &g, &v),
        Route::Resource(t) => {
            resources::handle(&app, &parts.method, &t, &query, &parts.headers, &body).await
        }
        Route::Fault(action) if parts.method == Method::POST => {
            faults::handle(&app, &action, &body).await
        }
        Route::OpenApiV2 | Route::NotFound => request::error(&ApiError::UnknownResource),
        _ => request::error(&ApiError::MethodNotAllowed),
    }
}
