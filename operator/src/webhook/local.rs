//! The conversion webhook of local mode: `logbook local` (and the tests
//! and benches that start a localkube or a control plane of their own)
//! is both the control plane and the operator, so it serves the
//! ValkeyCluster CRD's conversion itself, as the chart's operator does in
//! a cluster: `v1alpha1` stays served, converted through
//! [`super::conversion`], whatever operator runs or does not run.
//!
//! One server per process, made on first use and kept until the process
//! ends: on `127.0.0.1` (the API servers it serves run on this machine),
//! a port the system picks, its own CA made in memory (nothing stored:
//! each process trusts its own), on a thread of its own so that it
//! answers whatever runtime its callers run on or stop. The conversion is
//! pure, so one server serves every API server of the process.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig;

use super::{TlsListener, WebhookError, conversion_router, server_config};
use crate::tls::issue;

/// How long the local CA and its certificate are valid: longer than any
/// local session.
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Where local mode's conversion webhook answers, and the CA to trust.
#[derive(Debug, Clone)]
pub struct LocalConversion {
    /// `https://127.0.0.1:<port>/convert`.
    pub url: String,
    /// The CA of its certificate (PEM).
    pub ca_pem: String,
}

impl LocalConversion {
    /// The CRD's `conversion.webhook.clientConfig` calling it.
    pub fn client_config(&self) -> WebhookClientConfig {
        WebhookClientConfig {
            url: Some(self.url.clone()),
            ca_bundle: Some(ByteString(self.ca_pem.as_bytes().to_vec())),
            ..WebhookClientConfig::default()
        }
    }
}

static SERVER: OnceLock<Result<LocalConversion, String>> = OnceLock::new();

/// This process's conversion webhook, started on first use.
///
/// # Errors
///
/// [`WebhookError::Certificate`] when its certificate could not be made,
/// [`WebhookError::Bind`] when no port could be bound, or its thread not
/// started (then as `Certificate`, with the reason): the same error on
/// every later call.
pub fn local_conversion() -> Result<LocalConversion, WebhookError> {
    SERVER
        .get_or_init(|| start().map_err(|e| e.to_string()))
        .clone()
        .map_err(WebhookError::Certificate)
}

/// Makes the CA and certificate, binds the port, and serves on a thread
/// of its own.
fn start() -> Result<LocalConversion, WebhookError> {
    let now = logbook_journal::Timestamp::now();
    let ca = issue::new_ca("local-conversion", "local", now, VALIDITY)
        .map_err(|e| WebhookError::Certificate(e.to_string()))?;
    let leaf = issue::issue_leaf(&ca, &["127.0.0.1".to_owned()], now, VALIDITY)
        .map_err(|e| WebhookError::Certificate(e.to_string()))?;
    let tls = server_config(&leaf.cert_pem, &leaf.key_pem)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| WebhookError::Bind { addr, source })?;
    let bound = std_listener
        .local_addr()
        .map_err(|source| WebhookError::Bind { addr, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|source| WebhookError::Bind { addr, source })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WebhookError::Certificate(format!("its runtime: {e}")))?;
    std::thread::Builder::new()
        .name("local-conversion".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let tcp = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(tcp) => tcp,
                    Err(err) => {
                        tracing::warn!(%err, "local mode's conversion webhook cannot listen");
                        return;
                    }
                };
                let listener =
                    match TlsListener::new(tcp, tokio_rustls::TlsAcceptor::from(Arc::new(tls))) {
                        Ok(listener) => listener,
                        Err(err) => {
                            tracing::warn!(%err, "local mode's conversion webhook cannot listen");
                            return;
                        }
                    };
                if let Err(err) = axum::serve(listener, conversion_router()).await {
                    tracing::warn!(%err, "local mode's conversion webhook stopped");
                }
            });
        })
        .map_err(|e| WebhookError::Certificate(format!("its thread: {e}")))?;
    Ok(LocalConversion {
        url: format!("https://{bound}/convert"),
        ca_pem: ca.cert_pem,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::local_conversion;

    /// A client that connects and never speaks holds up no other: the
    /// handshake runs beside the others (it once ran inside `accept()`,
    /// and one idle connection stalled every admission and conversion
    /// call for the handshake's 10 s).
    #[tokio::test]
    async fn an_idle_connection_holds_up_no_conversion() {
        let server = local_conversion().unwrap();
        let addr: std::net::SocketAddr = server
            .url
            .trim_start_matches("https://")
            .trim_end_matches("/convert")
            .parse()
            .unwrap();
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                rustls_pki_types::CertificateDer::from_pem_slice(server.ca_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        // Well inside the handshake limit the idle ones hold.
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            let body = "{}";
            tls.write_all(
                format!(
                    "POST /convert HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            let mut reply = String::new();
            tls.read_to_string(&mut reply).await.unwrap();
            reply
        })
        .await
        .expect("the conversion webhook did not answer while idle connections were open");
        assert!(reply_is_http(&answered), "{answered}");
        drop(idle);
    }

    fn reply_is_http(reply: &str) -> bool {
        reply.starts_with("HTTP/1.1 ")
    }
}
