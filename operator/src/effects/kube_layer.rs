//! The gate under the operator's Kubernetes client: a tower layer that
//! sees every request, lets reads through untouched, and passes every
//! write or delete through [`Effects`].
//!
//! kube's client puts its service behind a `Buffer`, whose worker task
//! calls [`tower::Service::call`]; the future it returns is polled by the
//! caller's own task. So the gate runs inside that future (where the
//! intent's task-local scope is visible), and a request failed before it
//! is sent is one whose inner future is dropped unpolled: every service of
//! kube's stack sends on the first poll, not in `call`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::{Body, ClientBuilder, DynBody};
use tower::{BoxError, Layer, Service};

use super::{Class, Effects};

type GenericService = tower::util::BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// The layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct EffectLayer(pub Effects);

impl Layer<GenericService> for EffectLayer {
    type Service = EffectService;

    fn layer(&self, inner: GenericService) -> Self::Service {
        EffectService {
            inner,
            effects: self.0.clone(),
        }
    }
}

/// The service the layer makes.
pub struct EffectService {
    inner: GenericService,
    effects: Effects,
}

impl Service<Request<Body>> for EffectService {
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let class = classify(request.method(), request.uri().path());
        let what = format!("{} {}", request.method(), request.uri().path());
        let effects = self.effects.clone();
        let inner = self.inner.call(request);
        Box::pin(async move {
            let Some(class) = class else {
                return inner.await;
            };
            let ticket = match effects.before(class, || what) {
                Ok(ticket) => ticket,
                Err(injected) => return Ok(unavailable(&injected.to_string())),
            };
            let response = inner.await;
            match Effects::after(ticket) {
                Ok(()) => response,
                Err(injected) => Err(injected.to_string().into()),
            }
        })
    }
}

/// What a request is, for the gate (none: a read).
///
/// The operator writes ConfigMaps only as its journal's frames (segments,
/// head and snapshot are created with `POST` and named
/// `logbook-journal-…`); the objects it owns are applied with `PATCH`.
fn classify(method: &Method, path: &str) -> Option<Class> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let collection = |name: &str| segments.contains(&name);
    Some(if collection("leases") {
        Class::Lease
    } else if collection("events") || segments.last() == Some(&"status") {
        Class::Publish
    } else if *method == Method::PATCH && segments.get(2) == Some(&"valkey.logbook.dev") {
        // A ValkeyCluster's, ValkeyUser's or ValkeyBackup's own metadata:
        // the operator writes nothing there but its finalizer.
        Class::Finalizer
    } else if collection("configmaps")
        && (*method == Method::POST
            || segments
                .last()
                .is_some_and(|n| n.starts_with("logbook-journal-")))
    {
        Class::Journal
    } else {
        Class::Effect
    })
}

/// The reply of an API server that could not take the write: 500 with a
/// `Status`, which kube reports as an API error (retryable).
fn unavailable(message: &str) -> Response<Box<DynBody>> {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    });
    let body = http_body_util::Full::new(Bytes::from(status.to_string()))
        .map_err(|never| -> BoxError { match never {} });
    let mut response = Response::new(Box::new(body) as Box<DynBody>);
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A client from `config` whose writes pass `effects` (unarmed: the plain
/// client, with no layer at all).
///
/// # Errors
/// kube's, when the client cannot be built from `config`.
pub fn client_with(config: kube::Config, effects: &Effects) -> Result<kube::Client, kube::Error> {
    let builder = ClientBuilder::try_from(config)?;
    if !effects.is_armed() {
        return Ok(builder.build());
    }
    Ok(builder.with_layer(&EffectLayer(effects.clone())).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_and_writes_are_classified() {
        let c = |m: Method, p: &str| classify(&m, p);
        assert_eq!(c(Method::GET, "/api/v1/namespaces/a/pods"), None);
        assert_eq!(
            c(Method::PATCH, "/api/v1/namespaces/a/pods/demo-0"),
            Some(Class::Effect)
        );
        assert_eq!(
            c(
                Method::DELETE,
                "/apis/apps/v1/namespaces/a/statefulsets/demo"
            ),
            Some(Class::Effect)
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/logbook.dev/v1alpha1/namespaces/a/valkeyclusters/demo/status"
            ),
            Some(Class::Publish)
        );
        assert_eq!(
            c(Method::POST, "/api/v1/namespaces/a/events"),
            Some(Class::Publish)
        );
        assert_eq!(
            c(
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/logbook"
            ),
            Some(Class::Lease)
        );
        assert_eq!(
            c(Method::POST, "/api/v1/namespaces/a/configmaps"),
            Some(Class::Journal)
        );
        assert_eq!(
            c(
                Method::PUT,
                "/api/v1/namespaces/a/configmaps/logbook-journal-demo-head"
            ),
            Some(Class::Journal)
        );
        assert_eq!(
            c(Method::PATCH, "/api/v1/namespaces/a/configmaps/demo-config"),
            Some(Class::Effect)
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/valkey.logbook.dev/v1alpha1/namespaces/a/valkeyusers/app"
            ),
            Some(Class::Finalizer)
        );
        // Another group's object of the same name is the cluster's.
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/example.com/v1/namespaces/a/valkeyusers/app"
            ),
            Some(Class::Effect)
        );
    }
}
