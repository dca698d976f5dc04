//! Plain HTTP/1.1 to a server a test started (the web UI): one exchange
//! per connection, read to its end.

use std::io::{Read, Write};
use std::time::Duration;

/// One HTTP/1.1 exchange with `addr`: the status, the head and the body.
pub fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    // A live stream is cut by the timeout: what came is its answer.
    let _ = stream.read_to_string(&mut reply);
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// A port nothing listens on now, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The operator's webhooks served on 127.0.0.1:`port` (the API server,
/// real or localkube, calls them by a `url` client configuration), their
/// CA in the Secret `logbook-webhook-tls` and written into
/// `configuration` and `conversion_crds`; the operator's identity is the
/// chart's ServiceAccount in `super::NS`.
pub fn local_webhook(
    port: u16,
    configuration: Option<&str>,
    conversion_crds: &[&str],
) -> logbook::webhook::WebhookConfig {
    logbook::webhook::WebhookConfig {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        namespace: super::NS.to_owned(),
        secret: "logbook-webhook-tls".to_owned(),
        names: vec!["127.0.0.1".to_owned()],
        configuration: configuration.map(str::to_owned),
        conversion_crds: conversion_crds.iter().map(|c| (*c).to_owned()).collect(),
        migrate: true,
        operator_user: super::operator_user(super::NS),
        // Looked at every second: a test makes it fall due.
        renew_every: std::time::Duration::from_secs(1),
    }
}

/// The fingerprint of the certificate `addr` serves (`openssl s_client`;
/// none when it does not answer a handshake).
pub fn served_certificate(addr: &str) -> Option<String> {
    // (`timeout`: a frozen server accepts the connection and says nothing.)
    let out = std::process::Command::new("timeout")
        .args(["5", "openssl", "s_client", "-connect", addr])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = text.find(begin)?;
    let stop = text[start..].find(end)? + start + end.len();
    logbook::valkey::pem_fingerprint(&text[start..stop])
}
