//! The operator's one small HTTP/1.1 server, for the kubelet's probes and
//! Prometheus: one request per connection, request heads up to 8 KiB, a
//! 5 s limit per connection, GET only.
//!
//! Each listener serves a set of [`Endpoints`]: `--health-addr` the health
//! endpoints (see `health.rs`), `--metrics-addr` `/metrics`, one address
//! given for both serves both. No endpoint waits on the Kubernetes API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Context, health};
use crate::metrics::Format;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time allowed to one connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// `Content-Type` of the plain answers.
const TEXT: &str = "text/plain; charset=utf-8";

/// What one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Endpoints {
    /// `/healthz`, `/livez` and `/readyz`.
    pub health: bool,
    /// `/metrics`.
    pub metrics: bool,
}

/// Binds `addr`.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `endpoints` on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, endpoints: Endpoints) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%err, "HTTP endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &ctx, endpoints)).await;
        });
    }
}

/// A GET request, as far as the endpoints read it.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    /// The path, without the query.
    path: &'a str,
    /// The `Accept` header's value, if any.
    accept: Option<&'a str>,
}

/// The request in a head, when it is a GET.
fn parse_head(head: &[u8]) -> Option<Request<'_>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let mut parts = lines.next()?.trim_end().split(' ');
    let path = match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => path.split('?').next().unwrap_or(path),
        _ => return None,
    };
    let accept = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("accept")
            .then(|| value.trim())
    });
    Some(Request { path, accept })
}

/// Status line, content type and body of the answer to `request`.
async fn route(
    request: Option<Request<'_>>,
    ctx: &Context,
    endpoints: Endpoints,
) -> (&'static str, &'static str, String) {
    let Some(request) = request else {
        return ("400 Bad Request", TEXT, "bad request\n".to_owned());
    };
    match request.path {
        "/healthz" | "/livez" if endpoints.health => ("200 OK", TEXT, "ok\n".to_owned()),
        "/readyz" if endpoints.health => match health::readiness(ctx).await {
            Ok(why) => ("200 OK", TEXT, format!("{why}\n")),
            Err(why) => ("503 Service Unavailable", TEXT, format!("{why}\n")),
        },
        "/metrics" if endpoints.metrics => {
            let format = Format::negotiate(request.accept);
            (
                "200 OK",
                format.content_type(),
                ctx.deps.metrics.encode(format),
            )
        }
        _ => ("404 Not Found", TEXT, "not found\n".to_owned()),
    }
}

async fn answer(mut stream: TcpStream, ctx: &Context, endpoints: Endpoints) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let (status, content_type, body) = route(parse_head(&head), ctx, endpoints).await;
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::{Request, parse_head};

    #[test]
    fn the_path_and_accept_header_of_a_get() {
        assert_eq!(
            parse_head(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n"),
            Some(Request {
                path: "/readyz",
                accept: None
            })
        );
        assert_eq!(
            parse_head(b"GET /metrics?x HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n"),
            Some(Request {
                path: "/metrics",
                accept: Some("application/openmetrics-text; version=1.0.0")
            })
        );
        assert_eq!(parse_head(b"POST /readyz HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_head(b"\xff\xfe"), None);
        assert_eq!(parse_head(b""), None);
    }
}
