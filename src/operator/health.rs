//! The operator's health endpoints, for the kubelet's probes:
//!
//! - `GET /healthz` (liveness): answered by the process's own event loop,
//!   without any Kubernetes API call, so a slow or unreachable API server
//!   never gets the operator restarted;
//! - `GET /readyz` (readiness): `200` while this instance leads and every
//!   cluster's journal can be trusted, `503` with the reason otherwise (a
//!   follower is alive but not ready).
//!
//! A deliberately small HTTP/1.1 responder: one request per connection,
//! request heads up to 8 KiB, a 5 s limit per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Context;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time allowed to one connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr`.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the endpoints on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%err, "health endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &ctx)).await;
        });
    }
}

/// The path of a request head's first line, when it is a GET.
fn requested_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => Some(path.split('?').next().unwrap_or(path)),
        _ => None,
    }
}

/// Whether the instance is ready, or why not.
async fn readiness(ctx: &Context) -> Result<String, String> {
    let leadership = *ctx.deps.leadership.borrow();
    let Some(epoch) = leadership.epoch() else {
        return Err("not leading: another instance holds the Lease".to_owned());
    };
    let unhealthy = ctx.unhealthy.lock().await;
    if !unhealthy.is_empty() {
        return Err(format!(
            "leading at epoch {epoch}, but {} cluster journal(s) cannot be trusted",
            unhealthy.len()
        ));
    }
    Ok(format!("leading at epoch {epoch}"))
}

async fn answer(mut stream: TcpStream, ctx: &Context) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let (status, body) = match requested_path(&head) {
        Some("/healthz" | "/livez") => ("200 OK", "ok\n".to_owned()),
        Some("/readyz") => match readiness(ctx).await {
            Ok(why) => ("200 OK", format!("{why}\n")),
            Err(why) => ("503 Service Unavailable", format!("{why}\n")),
        },
        Some(_) => ("404 Not Found", "not found\n".to_owned()),
        None => ("400 Bad Request", "bad request\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::requested_path;

    #[test]
    fn the_path_of_a_get() {
        assert_eq!(
            requested_path(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n"),
            Some("/readyz")
        );
        assert_eq!(
            requested_path(b"GET /healthz?verbose HTTP/1.1\r\n\r\n"),
            Some("/healthz")
        );
        assert_eq!(requested_path(b"POST /readyz HTTP/1.1\r\n\r\n"), None);
        assert_eq!(requested_path(b"\xff\xfe"), None);
        assert_eq!(requested_path(b""), None);
    }
}
