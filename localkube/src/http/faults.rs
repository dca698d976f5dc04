//! `POST /localkube/v1/faults/{action}`: fault injection for tests and
//! demonstrations (`logbook local fault ...`). Not a Kubernetes API: a real
//! cluster answers 404 here, which the CLI reports as "not a localkube".
//!
//! Body: `{"namespace": "default", "pod": "demo-0", "container": null}` for
//! `kill`, `freeze`, `thaw`, `partition`, `heal`; `{"namespace", "pvc"}` for
//! `wipe-pvc`. Answers 200 with a one-line text, 404 for an unknown pod or
//! claim, 400 for a malformed body, 503 when no kubelet runs.

use axum::body::Body;
use axum::http::Response;
use serde_json::Value;

use super::{App, request};
use crate::error::ApiError;
use crate::kubelet::{FaultError, Faults};

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("fault request: `{name}` is required")))
}

/// Runs one fault.
pub(crate) async fn handle(app: &App, action: &str, body: &[u8]) -> Response<Body> {
    run(app.faults.clone(), action, body).await
}

/// Serves the fault API alone on `bind`, for a kubelet that is the node of
/// a real control plane (whose API server has no such path): `POST
/// /localkube/v1/faults/{action}` with `Authorization: Bearer <token>`;
/// anything else is 404, a missing or wrong token 401.
///
/// # Errors
/// `bind` cannot be listened on.
pub async fn serve(
    faults: Faults,
    token: String,
    bind: std::net::SocketAddr,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::extract::Path;
    use axum::http::HeaderMap;
    let want = format!("Bearer {token}");
    let app = axum::Router::new().route(
        "/localkube/v1/faults/{action}",
        axum::routing::post(
            move |Path(action): Path<String>, headers: HeaderMap, body: bytes::Bytes| {
                let faults = faults.clone();
                let authorized = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    == Some(want.as_str());
                async move {
                    if !authorized {
                        return request::error(&ApiError::Unauthorized);
                    }
                    run(Some(faults), &action, &body).await
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "localkube fault API stopped");
        }
    });
    Ok((addr, task))
}

async fn run(faults: Option<Faults>, action: &str, body: &[u8]) -> Response<Body> {
    let Some(faults) = faults else {
        return request::text(
            503,
            "no kubelet runs in this localkube (started --api-only)\n".into(),
        );
    };
    let body = match request::json_body(body) {
        Ok(v) => v,
        Err(e) => return request::error(&e),
    };
    let ns = body
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let outcome = match action {
        "wipe-pvc" => match field(&body, "pvc") {
            Ok(pvc) => faults
                .wipe_pvc_data(ns, pvc)
                .await
                .map(|()| format!("wiped the data of pvc {ns}/{pvc}")),
            Err(e) => return request::error(&e),
        },
        "kill" | "freeze" | "thaw" | "partition" | "heal" => {
            let pod = match field(&body, "pod") {
                Ok(p) => p,
                Err(e) => return request::error(&e),
            };
            let container = body.get("container").and_then(Value::as_str);
            let done = match action {
                "kill" => faults.kill(ns, pod, container).await,
                "freeze" => faults.freeze(ns, pod).await,
                "thaw" => faults.thaw(ns, pod).await,
                "partition" => faults.partition(ns, pod).await,
                _ => faults.heal(ns, pod).await,
            };
            done.map(|()| format!("{action}: pod {ns}/{pod}"))
        }
        other => {
            return request::error(&ApiError::BadRequest(format!(
                "unknown fault {other:?}: one of kill, freeze, thaw, partition, heal, wipe-pvc"
            )));
        }
    };
    match outcome {
        Ok(line) => request::text(200, format!("{line}\n")),
        Err(
            e @ (FaultError::UnknownPod { .. }
            | FaultError::UnknownContainer { .. }
            | FaultError::UnknownPvc { .. }),
        ) => request::text(404, format!("{e}\n")),
        Err(e) => request::text(500, format!("{e}\n")),
    }
}
