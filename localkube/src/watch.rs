//! Watches: from a resourceVersion, every later change of the watched
//! resource delivered in order and none missed (the feed is subscribed
//! under the store lock before the history is read), selectors applied
//! with the real server's ADDED/DELETED on selector moves, 410 Gone when
//! the history no longer reaches back, bookmarks, `sendInitialEvents`,
//! timeouts, and a bounded buffer per watcher so a slow one never holds
//! up writers (it is ended with 410 and relists).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType, Store};

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// API group.
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Only this namespace (None: all).
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub label: LabelSelector,
    /// `fieldSelector`.
    pub field: FieldSelector,
    /// `resourceVersion` ("" or "0": start with the current objects).
    pub resource_version: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `apiVersion` of bookmark objects.
    pub api_version: String,
    /// `kind` of bookmark objects.
    pub kind: String,
}

/// One event of a watch stream.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub etype: &'static str,
    /// The object (a `Status` for `ERROR`).
    pub object: Arc<Value>,
}

const BUFFER: usize = 256;

impl WatchRequest {
    fn matches(&self, o: &Value) -> bool {
        self.label.matches_object(o) && self.field.matches(o)
    }

    /// The watch event an change is seen as, if any.
    fn translate(&self, ev: &Event) -> Option<WatchEvent> {
        if ev.group != self.group || ev.resource != self.resource {
            return None;
        }
        if let Some(ns) = &self.namespace
            && &ev.namespace != ns
        {
            return None;
        }
        let now = self.matches(&ev.object);
        let etype = match ev.etype {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => {
                let before = ev.old.as_deref().is_some_and(|o| self.matches(o));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (true, false) => Some("DELETED"),
                    (false, true) => Some("ADDED"),
                    (false, false) => None,
                }
            }
        }?;
        Some(WatchEvent {
            etype,
            object: ev.object.clone(),
        })
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> WatchEvent {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end && let Some(m) = meta.as_object_mut() {
            m.insert(
                "annotations".into(),
                json!({"k8s.io/initial-events-end": "true"}),
            );
        }
        WatchEvent {
            etype: "BOOKMARK",
            object: Arc::new(
                json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": meta}),
            ),
        }
    }
}

fn gone(requested: u64, oldest: u64) -> WatchEvent {
    let status = ApiError::Gone {
        message: format!("too old resource version: {requested} ({oldest})"),
        continue_token: None,
    }
    .status();
    WatchEvent {
        etype: "ERROR",
        object: Arc::new(status),
    }
}

impl Store {
    /// Starts a watch; events arrive on the receiver until it ends.
    ///
    /// # Errors
    /// 400 for a malformed resourceVersion.
    pub fn watch_request(&self, req: WatchRequest) -> Result<mpsc::Receiver<WatchEvent>, ApiError> {
        let rv_param = req
            .resource_version
            .clone()
            .filter(|s| !s.is_empty() && s != "0");
        let from = rv_param
            .as_deref()
            .map(crate::store::list_parse_rv)
            .transpose()?;
        let (tx, out) = mpsc::channel(BUFFER);
        let mut initial = Vec::new();
        let (feed, start) = {
            let inner = self.shared.inner.lock();
            let feed = inner.feed.subscribe();
            match from {
                Some(r) if !req.send_initial_events => {
                    if r < inner.compacted {
                        initial.push(gone(r, inner.compacted.saturating_add(1)));
                        return Ok(spawn_finished(tx, out, initial));
                    }
                    initial.extend(
                        inner
                            .history
                            .iter()
                            .filter(|e| e.rv > r)
                            .filter_map(|e| req.translate(e)),
                    );
                }
                _ => {
                    let lower = (
                        req.group.clone(),
                        req.resource.clone(),
                        req.namespace.clone().unwrap_or_default(),
                        String::new(),
                    );
                    for (k, o) in inner.objects.range(lower..) {
                        if k.0 != req.group || k.1 != req.resource {
                            break;
                        }
                        if req.namespace.as_ref().is_some_and(|ns| &k.2 != ns) {
                            break;
                        }
                        if req.matches(o) {
                            initial.push(WatchEvent {
                                etype: "ADDED",
                                object: o.clone(),
                            });
                        }
                    }
                    if req.send_initial_events {
                        initial.push(req.bookmark(inner.rv, true));
                    }
                }
            }
            (feed, inner.rv)
        };
        let shutdown = self.shared.shutdown.subscribe();
        let interval = self.shared.config.bookmark_interval;
        tokio::spawn(run(req, tx, feed, initial, start, shutdown, interval));
        Ok(out)
    }

    /// Watches `resource` of `api_version` from `resource_version` (None:
    /// the current objects first, as ADDED).
    ///
    /// # Errors
    /// 404 for an unknown resource, 400 for a malformed selector or version.
    pub fn watch(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        resource_version: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<mpsc::Receiver<WatchEvent>, ApiError> {
        let (res, version) = self.resolve(api_version, resource)?;
        self.watch_request(WatchRequest {
            group: res.group.clone(),
            resource: res.plural.clone(),
            namespace: namespace.filter(|_| res.namespaced).map(str::to_owned),
            label: LabelSelector::parse(label_selector.unwrap_or(""))
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
            resource_version: resource_version.map(str::to_owned),
            api_version: res.api_version(&version),
            kind: res.kind.clone(),
            ..WatchRequest::default()
        })
    }
}

fn spawn_finished(
    tx: mpsc::Sender<WatchEvent>,
    out: mpsc::Receiver<WatchEvent>,
    events: Vec<WatchEvent>,
) -> mpsc::Receiver<WatchEvent> {
    tokio::spawn(async move {
        for e in events {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    });
    out
}

async fn run(
    req: WatchRequest,
    tx: mpsc::Sender<WatchEvent>,
    mut feed: broadcast::Receiver<Arc<Event>>,
    initial: Vec<WatchEvent>,
    start: u64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    interval: Duration,
) {
    let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
    let sleep_until = async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    for e in initial {
        tokio::select! {
            r = tx.send(e) => if r.is_err() { return },
            () = &mut sleep_until => return,
            _ = shutdown.changed() => return,
        }
    }
    let mut progress = start;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            r = feed.recv() => match r {
                Ok(ev) => {
                    if ev.rv <= progress {
                        continue;
                    }
                    progress = ev.rv;
                    if let Some(w) = req.translate(&ev)
                        && tx.send(w).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind: the client must relist, as after a
                    // compaction on the real server.
                    let _ = tx.send(gone(progress, progress.saturating_add(1))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick() => {
                if req.bookmarks && tx.send(req.bookmark(progress, false)).await.is_err() {
                    return;
                }
            }
            () = &mut sleep_until => return,
            _ = shutdown.changed() => return,
            () = tx.closed() => return,
        }
    }
}
