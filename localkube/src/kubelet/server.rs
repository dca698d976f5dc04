//! The kubelet's own API, for a node of a real control plane: the API
//! server calls it for pod logs (`kubectl logs`): `GET
//! /containerLogs/{namespace}/{pod}/{container}` with `tailLines`, over
//! HTTPS, from a client whose certificate the cluster CA signed (the API
//! server's `--kubelet-client-certificate`); a client without one cannot
//! connect. Every other path is 404 (no exec, attach or port-forward: the
//! processes have no terminal to attach to). localkube serves logs from its
//! own API server instead.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::PodLogs;

/// The kubelet API's certificate and whom it accepts.
#[derive(Debug, Clone)]
pub struct KubeletTls {
    /// Its serving certificate (PEM), for `127.0.0.1`.
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// The CA whose client certificates it accepts (PEM).
    pub client_ca: PathBuf,
}

fn config(tls: &KubeletTls) -> Result<rustls::ServerConfig, String> {
    let read = |what: &str, p: &PathBuf, e: &dyn std::fmt::Display| {
        format!("kubelet API {what} {}: {e}", p.display())
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| read("certificate", &tls.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read("certificate", &tls.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| read("key", &tls.key, &e))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&tls.client_ca)
        .map_err(|e| read("client CA", &tls.client_ca, &e))?
    {
        roots
            .add(ca.map_err(|e| read("client CA", &tls.client_ca, &e))?)
            .map_err(|e| read("client CA", &tls.client_ca, &e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("kubelet API client verifier: {e}"))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("kubelet API TLS: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("kubelet API certificate: {e}"))
}

fn text(code: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn answer(logs: &dyn PodLogs, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::GET {
        return text(405, "method not allowed\n".into());
    }
    let parts: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let ["containerLogs", ns, pod, container] = parts.as_slice() else {
        return text(404, "404 page not found\n".into());
    };
    let tail = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "tailLines")
            .and_then(|(_, v)| v.parse::<i64>().ok())
    });
    match logs.logs(ns, pod, Some(container), tail) {
        Ok(t) => text(200, t),
        Err(e) => text(404, format!("{e}\n")),
    }
}

/// Serves the kubelet API on `127.0.0.1` (any port) until `stop`;
/// returns the port.
///
/// # Errors
/// The certificates are unusable or no port can be bound.
pub(crate) async fn serve(
    logs: Arc<dyn PodLogs>,
    tls: &KubeletTls,
    mut stop: watch::Receiver<bool>,
) -> Result<(u16, JoinHandle<()>), String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config(tls)?));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("kubelet API: cannot listen: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("kubelet API: {e}"))?
        .port();
    let task = tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => continue,
                },
                _ = stop.changed() => return,
            };
            let acceptor = acceptor.clone();
            let logs = logs.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    let r = answer(logs.as_ref(), &req);
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((port, task))
}
