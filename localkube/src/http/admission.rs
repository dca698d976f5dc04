//! Validating admission webhooks, as the real API server calls them: before
//! a create, update, patch or delete of a resource (not a subresource), each
//! webhook of each stored `ValidatingWebhookConfiguration` whose rules,
//! object selector and namespace selector match is sent an
//! `AdmissionReview` (`admission.k8s.io/v1`) over HTTPS, trusting its
//! `caBundle`; the first that refuses refuses the request (403, `admission
//! webhook "<name>" denied the request: <message>`), and one that cannot
//! be called refuses it too unless its `failurePolicy` is `Ignore`.
//!
//! Differences from the real server: the object a write would store is
//! computed by running the request once as a dry run first, so another
//! write between the two is not seen by the webhook; a `service` client
//! configuration is called at the Service's cluster IP (the name in its
//! certificate is `<service>.<namespace>.svc`); only `matchLabels` and
//! `matchExpressions` selectors; no mutating webhooks.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::App;
use super::resources::Req;
use crate::error::{ApiError, Subject};

/// The webhooks' configurations' resource.
const CONFIGURATIONS: (&str, &str) = (
    "admissionregistration.k8s.io/v1",
    "validatingwebhookconfigurations",
);

/// What a request does, as a webhook rule names it.
fn operation(r: &Req<'_>) -> Option<&'static str> {
    if r.target.sub.is_some() {
        return None;
    }
    match (r.method.as_str(), r.target.name.is_some()) {
        ("POST", false) => Some("CREATE"),
        ("PUT" | "PATCH", true) => Some("UPDATE"),
        ("DELETE", true) => Some("DELETE"),
        _ => None,
    }
}

/// Whether the string list `field` of `rule` holds `value` or `*`.
fn listed(rule: &Value, field: &str, value: &str) -> bool {
    rule.get(field)
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|v| v == value || v == "*"))
}

/// Whether `labels` satisfy the label selector `selector` (absent or
/// empty: everything).
fn selects(selector: Option<&Value>, labels: &Value) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let exact = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        });
    exact && expressions
}

/// Asks every matching webhook about `r`; Err with the refusal.
///
/// # Errors
/// 403 when a webhook refuses, or cannot be called and fails closed.
pub(crate) async fn check(app: &App, r: &Req<'_>) -> Result<(), ApiError> {
    let Some(op) = operation(r) else {
        return Ok(());
    };
    let configurations = match app
        .store
        .list(CONFIGURATIONS.0, CONFIGURATIONS.1, None, None)
    {
        Ok(list) if !list.is_empty() => list,
        _ => return Ok(()),
    };
    let t = r.target;
    let Some(res) = app.store.resource_info(&t.group, &t.resource) else {
        return Ok(());
    };
    let ns = t.namespace.clone().unwrap_or_default();
    let scope = if res.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    };
    let hooks: Vec<Value> = configurations
        .iter()
        .flat_map(|c| {
            c.get("webhooks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter(|w| {
            w.get("rules")
                .and_then(Value::as_array)
                .is_some_and(|rules| {
                    rules.iter().any(|rule| {
                        listed(rule, "operations", op)
                            && listed(rule, "apiGroups", &t.group)
                            && listed(rule, "apiVersions", &t.version)
                            && listed(rule, "resources", &t.resource)
                            && rule
                                .get("scope")
                                .and_then(Value::as_str)
                                .is_none_or(|s| s == "*" || s == scope)
                    })
                })
        })
        .collect();
    if hooks.is_empty() {
        return Ok(());
    }
    let name = t.name.clone().unwrap_or_default();
    let old = match op {
        "CREATE" => Value::Null,
        _ => match app.store.get(
            &res.api_version(&t.version),
            &t.resource,
            t.namespace.as_deref(),
            &name,
        ) {
            Ok(o) => o,
            // Not there: the write itself answers 404.
            Err(_) => return Ok(()),
        },
    };
    let new = match op {
        "DELETE" => Value::Null,
        _ => match dry_run(app, r).await {
            Some(o) => o,
            // Refused on its own: the write itself answers why.
            None => return Ok(()),
        },
    };
    let labels = |o: &Value| o.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
    let namespace_labels = if res.namespaced {
        let mut l = app
            .store
            .get("v1", "namespaces", None, &ns)
            .ok()
            .and_then(|n| n.pointer("/metadata/labels").cloned())
            .unwrap_or(json!({}));
        if let Some(m) = l.as_object_mut() {
            m.insert("kubernetes.io/metadata.name".into(), json!(ns));
        }
        l
    } else {
        json!({})
    };
    let name = if op == "CREATE" {
        new.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    } else {
        name
    };
    for hook in hooks {
        let object_selector = hook.get("objectSelector");
        if !selects(object_selector, &labels(&old)) && !selects(object_selector, &labels(&new)) {
            continue;
        }
        if res.namespaced && !selects(hook.get("namespaceSelector"), &namespace_labels) {
            continue;
        }
        let hook_name = hook
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let uid = uuid::Uuid::new_v4().to_string();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": res.group, "version": t.version, "kind": res.kind},
                "resource": {"group": res.group, "version": t.version, "resource": t.resource},
                "requestKind": {"group": res.group, "version": t.version, "kind": res.kind},
                "requestResource": {"group": res.group, "version": t.version, "resource": t.resource},
                "name": name,
                "namespace": ns,
                "operation": op,
                "userInfo": {"username": r.user.name, "groups": r.user.groups},
                "object": new,
                "oldObject": old,
                "dryRun": r.query.get("dryRun").is_some(),
            },
        });
        let subject = Subject::new(&res.group, &t.resource, &name);
        let timeout = Duration::from_secs(
            hook.get("timeoutSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(10),
        );
        let fail_closed = hook.get("failurePolicy").and_then(Value::as_str) != Some("Ignore");
        match tokio::time::timeout(timeout, call(&app.store, &hook, &review)).await {
            Ok(Ok(answer)) => {
                let response = answer.get("response").cloned().unwrap_or_default();
                if response.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
                    if fail_closed {
                        return Err(ApiError::Forbidden {
                            message: format!(
                                "Internal error occurred: failed calling webhook \"{hook_name}\": the response's uid is not the request's"
                            ),
                            subject,
                        });
                    }
                    continue;
                }
                if response.get("allowed").and_then(Value::as_bool) != Some(true) {
                    let message = response
                        .pointer("/status/message")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    return Err(ApiError::Forbidden {
                        message: format!(
                            "admission webhook \"{hook_name}\" denied the request: {message}"
                        ),
                        subject,
                    });
                }
            }
            Ok(Err(why)) if fail_closed => {
                return Err(ApiError::Forbidden {
                    message: format!(
                        "Internal error occurred: failed calling webhook \"{hook_name}\": {why}"
                    ),
                    subject,
                });
            }
            Err(_) if fail_closed => {
                return Err(ApiError::Forbidden {
                    message: format!(
                        "Internal error occurred: failed calling webhook \"{hook_name}\": timed out after {}s",
                        timeout.as_secs()
                    ),
                    subject,
                });
            }
            _ => {
                tracing::debug!(webhook = %hook_name, "webhook not answered; failurePolicy Ignore")
            }
        }
    }
    Ok(())
}

/// The object `r` would store: the request run as a dry run; `None` when
/// it is refused.
async fn dry_run(app: &App, r: &Req<'_>) -> Option<Value> {
    let query = r.query.with("dryRun", "All");
    let dry = Req {
        method: r.method,
        target: r.target,
        query: &query,
        headers: r.headers,
        body: r.body,
        user: r.user,
        old_converted: r.old_converted,
    };
    let response = super::resources::dispatch_for_admission(app, &dry);
    if !response.status().is_success() {
        return None;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Sends `review` to `hook` (an object holding a `clientConfig`, as a
/// validating webhook or a CRD's conversion webhook does) over HTTPS; its
/// answer. A `service` client configuration is resolved in `store`.
pub(super) async fn call(
    store: &crate::store::Store,
    hook: &Value,
    review: &Value,
) -> Result<Value, String> {
    let config = hook.get("clientConfig").cloned().unwrap_or_default();
    let (host, port, path, server_name) = match (config.get("url"), config.get("service")) {
        (Some(url), _) => {
            let url = url.as_str().ok_or("clientConfig.url is not a string")?;
            let rest = url
                .strip_prefix("https://")
                .ok_or_else(|| format!("clientConfig.url {url} is not https"))?;
            let (authority, path) = rest
                .split_once('/')
                .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse::<u16>()
                        .map_err(|e| format!("port of {url}: {e}"))?,
                ),
                None => (authority.to_owned(), 443),
            };
            (host.clone(), port, path, host)
        }
        (None, Some(service)) => {
            let name = service.get("name").and_then(Value::as_str).unwrap_or("");
            let namespace = service
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            let svc = store
                .get("v1", "services", Some(namespace), name)
                .map_err(|e| format!("service {namespace}/{name}: {e}"))?;
            let ip = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("service {namespace}/{name} has no cluster IP"))?
                .to_owned();
            let port = service
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443);
            let path = service
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_owned();
            (ip, port, path, format!("{name}.{namespace}.svc"))
        }
        _ => return Err("clientConfig has neither url nor service".to_owned()),
    };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(bundle) = config.get("caBundle").and_then(Value::as_str) {
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(bundle)
            .map_err(|e| format!("caBundle: {e}"))?;
        use rustls::pki_types::pem::PemObject as _;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| format!("caBundle: {e}"))?)
                .map_err(|e| format!("caBundle: {e}"))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from(server_name.clone())
        .map_err(|e| format!("{server_name}: {e}"))?;
    let mut stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
    let body = review.to_string();
    let request = format!(
        "POST {path}?timeout=10s HTTP/1.1\r\nHost: {server_name}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    // A server that closes without TLS close_notify still said it all.
    let _ = stream.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or("the webhook's answer has no body")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "the webhook answered {}",
            head.lines().next().unwrap_or("")
        ));
    }
    serde_json::from_str(body.trim()).map_err(|e| format!("the webhook's answer: {e}"))
}
