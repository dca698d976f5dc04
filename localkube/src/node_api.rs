//! How the node's agents (the kubelet, the Service proxy, the volume
//! provisioner) reach the API: localkube's store in process, or an API
//! server over HTTPS with the node's own credentials, as a real kubelet
//! does. The agents are the same code either way; only these seven verbs
//! differ, and each answers with the same [`ApiError`] a caller branches on
//! (404, 409) whichever server refused.

use std::sync::Arc;

use futures::TryStreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::Subject;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::PatchKind;
use crate::store::{DeleteOptions, ListOptions, Store};
use crate::watch::{WatchEvent, WatchRequest};
use crate::{ApiError, WriteCtx};

/// The API a node's agents use.
#[derive(Clone)]
pub enum NodeApi {
    /// localkube's store, in this process.
    Local(Store),
    /// An API server over HTTPS (a kube-rs client from a kubeconfig).
    Remote(kube::Client),
}

impl std::fmt::Debug for NodeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local(_) => "NodeApi::Local",
            Self::Remote(_) => "NodeApi::Remote",
        })
    }
}

/// The field manager the node's writes are recorded under.
const MANAGER: &str = "kubelet";

/// `/api/v1` or `/apis/<group>/<version>`, then the namespace, resource,
/// name and subresource.
fn path(
    api_version: &str,
    plural: &str,
    ns: Option<&str>,
    name: Option<&str>,
    status: bool,
) -> String {
    let mut p = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    if let Some(ns) = ns {
        p.push_str("/namespaces/");
        p.push_str(ns);
    }
    p.push('/');
    p.push_str(plural);
    if let Some(n) = name {
        p.push('/');
        p.push_str(n);
    }
    if status {
        p.push_str("/status");
    }
    p
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// A kube-rs error as the refusal localkube would have answered.
fn refusal(e: kube::Error, api_version: &str, plural: &str, name: &str) -> ApiError {
    let subject = || Subject::new(group_of(api_version), plural, name);
    match e {
        kube::Error::Api(s) => match (s.code, s.reason.as_str()) {
            (404, _) => ApiError::NotFound(subject()),
            (409, "AlreadyExists") => ApiError::AlreadyExists(subject()),
            (409, _) => ApiError::Conflict {
                subject: subject(),
                detail: s.message,
                raw: true,
                causes: Vec::new(),
            },
            (410, _) => ApiError::Gone {
                message: s.message,
                continue_token: None,
            },
            (401, _) => ApiError::Unauthorized,
            (403, _) => ApiError::Forbidden {
                message: s.message,
                subject: subject(),
            },
            (400, _) => ApiError::BadRequest(s.message),
            (code, _) => ApiError::Internal(format!("{code}: {}", s.message)),
        },
        other => ApiError::Internal(format!("cannot reach the API server: {other}")),
    }
}

fn request(
    method: &str,
    uri: &str,
    body: Option<&Value>,
    content_type: &str,
) -> Result<http::Request<Vec<u8>>, ApiError> {
    let bytes = match body {
        Some(b) => serde_json::to_vec(b).map_err(|e| ApiError::Internal(e.to_string()))?,
        None => Vec::new(),
    };
    let mut r = http::Request::builder().method(method).uri(uri);
    if body.is_some() {
        r = r.header(http::header::CONTENT_TYPE, content_type);
    }
    r.body(bytes).map_err(|e| ApiError::Internal(e.to_string()))
}

impl NodeApi {
    /// Whether the store is in this process (localkube without a real
    /// control plane: the kubelet schedules, localkube's controllers run).
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local(_))
    }

    async fn call(
        &self,
        req: http::Request<Vec<u8>>,
        av: &str,
        plural: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let Self::Remote(client) = self else {
            return Err(ApiError::Internal("not a remote API".to_owned()));
        };
        client
            .request::<Value>(req)
            .await
            .map_err(|e| refusal(e, av, plural, name))
    }

    /// Gets one object.
    ///
    /// # Errors
    /// As the server refuses (404 when it does not exist).
    pub async fn get(
        &self,
        av: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        match self {
            Self::Local(store) => store.get(av, plural, ns, name),
            Self::Remote(_) => {
                let req = request("GET", &path(av, plural, ns, Some(name), false), None, "")?;
                self.call(req, av, plural, name).await
            }
        }
    }

    /// Lists (every namespace when `ns` is None), optionally by field.
    ///
    /// # Errors
    /// As the server refuses.
    pub async fn list(
        &self,
        av: &str,
        plural: &str,
        ns: Option<&str>,
        field: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        match self {
            Self::Local(store) => {
                let (res, version) = store.resolve(av, plural)?;
                let opts = ListOptions {
                    field_selector: FieldSelector::parse(
                        field.unwrap_or(""),
                        &res.group,
                        &res.plural,
                    )
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                    ..ListOptions::default()
                };
                Ok(store
                    .list_in(&res, ns, &opts)?
                    .items
                    .iter()
                    .map(|o| crate::store::render(o, &res, &version))
                    .collect())
            }
            Self::Remote(_) => {
                let q = field
                    .map(|f| query(&[("fieldSelector", f)]))
                    .unwrap_or_default();
                let req = request(
                    "GET",
                    &format!("{}{q}", path(av, plural, ns, None, false)),
                    None,
                    "",
                )?;
                let list = self.call(req, av, plural, "").await?;
                Ok(list
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default())
            }
        }
    }

    /// Watches from the current state (every object first as `ADDED`);
    /// the channel closes when the watch ends, after an `ERROR` event
    /// when the server said why.
    ///
    /// # Errors
    /// As the server refuses the watch.
    pub async fn watch(
        &self,
        av: &str,
        plural: &str,
        ns: Option<&str>,
        field: Option<&str>,
    ) -> Result<mpsc::Receiver<WatchEvent>, ApiError> {
        match self {
            Self::Local(store) => {
                let (res, version) = store.resolve(av, plural)?;
                store.watch_request(WatchRequest {
                    group: res.group.clone(),
                    resource: res.plural.clone(),
                    namespace: ns.filter(|_| res.namespaced).map(str::to_owned),
                    label: LabelSelector::default(),
                    field: FieldSelector::parse(field.unwrap_or(""), &res.group, &res.plural)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                    api_version: res.api_version(&version),
                    kind: res.kind.clone(),
                    ..WatchRequest::default()
                })
            }
            Self::Remote(client) => {
                let mut pairs = vec![("watch", "true"), ("allowWatchBookmarks", "true")];
                if let Some(f) = field {
                    pairs.push(("fieldSelector", f));
                }
                let uri = format!("{}{}", path(av, plural, ns, None, false), query(&pairs));
                let req = request("GET", &uri, None, "")?;
                let stream = client
                    .request_events::<Value>(req)
                    .await
                    .map_err(|e| refusal(e, av, plural, ""))?;
                let (tx, rx) = mpsc::channel(256);
                let what = format!("{plural} ({av})");
                tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    loop {
                        // Ends with the watch, or as soon as nobody reads.
                        let next = tokio::select! {
                            next = stream.try_next() => next,
                            () = tx.closed() => return,
                        };
                        let ev = match next {
                            Ok(Some(ev)) => ev,
                            Ok(None) => return,
                            Err(e) => {
                                tracing::debug!(watch = %what, error = %e, "node api: watch ended");
                                return;
                            }
                        };
                        let (etype, object) = match ev {
                            kube::core::WatchEvent::Added(o) => ("ADDED", o),
                            kube::core::WatchEvent::Modified(o) => ("MODIFIED", o),
                            kube::core::WatchEvent::Deleted(o) => ("DELETED", o),
                            kube::core::WatchEvent::Bookmark(_) => continue,
                            kube::core::WatchEvent::Error(s) => (
                                "ERROR",
                                serde_json::json!({"kind": "Status", "code": s.code, "message": s.message, "reason": s.reason}),
                            ),
                        };
                        let done = etype == "ERROR";
                        if tx
                            .send(WatchEvent {
                                etype,
                                object: Arc::new(object),
                            })
                            .await
                            .is_err()
                            || done
                        {
                            return;
                        }
                    }
                });
                Ok(rx)
            }
        }
    }

    /// Creates `body`.
    ///
    /// # Errors
    /// As the server refuses (409 when it exists).
    pub async fn create(
        &self,
        av: &str,
        plural: &str,
        ns: Option<&str>,
        body: Value,
    ) -> Result<Value, ApiError> {
        match self {
            Self::Local(store) => store.create(av, plural, ns, body, &WriteCtx::internal(MANAGER)),
            Self::Remote(_) => {
                let name = crate::obj::name(&body).to_owned();
                let uri = format!(
                    "{}{}",
                    path(av, plural, ns, None, false),
                    query(&[("fieldManager", MANAGER)])
                );
                let req = request("POST", &uri, Some(&body), "application/json")?;
                self.call(req, av, plural, &name).await
            }
        }
    }

    /// Replaces the object named in `body` (`status`: its status
    /// subresource); its resourceVersion is a precondition.
    ///
    /// # Errors
    /// As the server refuses (409 on a stale resourceVersion).
    pub async fn update(
        &self,
        av: &str,
        plural: &str,
        ns: Option<&str>,
        body: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        match self {
            Self::Local(store) => {
                store.update(av, plural, ns, body, status, &WriteCtx::internal(MANAGER))
            }
            Self::Remote(_) => {
                let name = crate::obj::name(&body).to_owned();
                let uri = format!(
                    "{}{}",
                    path(av, plural, ns, Some(&name), status),
                    query(&[("fieldManager", MANAGER)])
                );
                let req = request("PUT", &uri, Some(&body), "application/json")?;
                self.call(req, av, plural, &name).await
            }
        }
    }

    /// Merge-patches `name` (`status`: its status subresource).
    ///
    /// # Errors
    /// As the server refuses.
    pub async fn merge_patch(
        &self,
        av: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        match self {
            Self::Local(store) => store.patch(
                av,
                plural,
                ns,
                name,
                PatchKind::Merge,
                patch,
                status,
                &WriteCtx::internal(MANAGER),
            ),
            Self::Remote(_) => {
                let uri = format!(
                    "{}{}",
                    path(av, plural, ns, Some(name), status),
                    query(&[("fieldManager", MANAGER)])
                );
                let req = request("PATCH", &uri, Some(patch), "application/merge-patch+json")?;
                self.call(req, av, plural, name).await
            }
        }
    }

    /// Deletes `name` with `opts` (grace period, uid precondition).
    ///
    /// # Errors
    /// As the server refuses (404, 409 on a failed precondition).
    pub async fn delete(
        &self,
        av: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        match self {
            Self::Local(store) => store.delete(av, plural, ns, name, opts),
            Self::Remote(_) => {
                let body = serde_json::json!({
                    "apiVersion": "v1", "kind": "DeleteOptions",
                    "gracePeriodSeconds": opts.grace_period,
                    "preconditions": opts.uid.as_ref().map(|uid| serde_json::json!({"uid": uid})),
                });
                let req = request(
                    "DELETE",
                    &path(av, plural, ns, Some(name), false),
                    Some(&body),
                    "application/json",
                )?;
                self.call(req, av, plural, name).await
            }
        }
    }
}

/// Notifies `changed` on every event of `rx` until the watch ends (closed,
/// or an `ERROR` event): true then; false as soon as `stop` changes.
pub(crate) async fn relay(
    mut rx: mpsc::Receiver<WatchEvent>,
    changed: &tokio::sync::Notify,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(e) if e.etype == "ERROR" => return true,
                Some(_) => changed.notify_one(),
                None => return true,
            },
            _ = stop.changed() => return false,
        }
    }
}

/// Notifies `changed` on every change of `plural` (every namespace),
/// watching again from the current state whenever a watch ends, until
/// `stop` turns true: what the proxy and the provisioner react to.
pub(crate) async fn follow(
    api: NodeApi,
    av: &'static str,
    plural: &'static str,
    changed: std::sync::Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match api.watch(av, plural, None, None).await {
            Ok(rx) => {
                if !relay(rx, &changed, &mut stop).await {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, plural, "node api: cannot watch"),
        }
        // Whatever changed while no watch was open is seen by the next pass.
        changed.notify_one();
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_the_api_servers() {
        assert_eq!(
            path("v1", "pods", Some("a"), Some("p"), true),
            "/api/v1/namespaces/a/pods/p/status"
        );
        assert_eq!(path("v1", "nodes", None, None, false), "/api/v1/nodes");
        assert_eq!(
            path(
                "coordination.k8s.io/v1",
                "leases",
                Some("kube-node-lease"),
                Some("n"),
                false
            ),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n"
        );
        assert_eq!(
            query(&[("fieldSelector", "spec.nodeName=n")]),
            "?fieldSelector=spec.nodeName%3Dn"
        );
    }

    #[test]
    fn refusals_keep_the_code_callers_branch_on() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                reason: reason.to_owned(),
                message: "m".to_owned(),
                ..kube::core::Status::default()
            }))
        };
        assert!(matches!(
            refusal(status(404, "NotFound"), "v1", "pods", "p"),
            ApiError::NotFound(_)
        ));
        assert!(matches!(
            refusal(status(409, "AlreadyExists"), "v1", "pods", "p"),
            ApiError::AlreadyExists(_)
        ));
        assert!(matches!(
            refusal(status(409, "Conflict"), "v1", "pods", "p"),
            ApiError::Conflict { .. }
        ));
        assert_eq!(
            refusal(status(503, "ServiceUnavailable"), "v1", "pods", "p").code(),
            500
        );
    }
}
