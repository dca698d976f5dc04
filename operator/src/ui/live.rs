//! Server-sent events: what changes is pushed to the page as it happens.
//!
//! - `/api/live`: `changed` whenever a ValkeyCluster the reader may see is
//!   added, changed or deleted (a watch on them; the page then reads the
//!   list again);
//! - `/api/clusters/{ns}/{name}/live?after=<seq>`: `journal` with each
//!   event appended after `after` (its row, in seq order; the event's id
//!   is its seq), `cluster` with the cluster's summary each time it
//!   changes (a watch on it), `deleted` when it is gone, `problem` when a
//!   read fails (the stream goes on).
//!
//! The journal is read from the seq the page has, never again from its
//! start: a journal in ConfigMaps is read when a watch on its head says it
//! moved (and every 10 s at most otherwise); a local one is looked at
//! every 200 ms (a read of memory). Each stream ends with its connection.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, KeepAliveStream, Sse};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use logbook_crds::ValkeyCluster;
use logbook_journal::{JournalStore, StreamId};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};

use super::api::{Summary, UiError, clusters_api, get_cluster, may_see, stream_of};
use super::auth::{self, Viewer};
use super::journal::{self, EventRow, MAX_PAGE};
use super::{Journals, Ui};
use crate::journal_store::AnyStore;
use crate::journal_store::layout;

/// Events a slow page may fall behind by before its stream waits.
const BUFFER: usize = 256;

type Events =
    Sse<KeepAliveStream<futures::stream::BoxStream<'static, Result<SseEvent, Infallible>>>>;

/// The page's stream of `rx`, ended when `until` completes (its reader
/// may no longer read what it shows).
fn stream_of_channel(
    rx: mpsc::Receiver<SseEvent>,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> Events {
    let events = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    })
    .take_until(Box::pin(until))
    .boxed();
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Completes once `viewer` may no longer get `ns/name` (asked again
/// every [`auth::LIVE_RECHECK`]), or never when the UI reads with the
/// reader's own client (whose watch the API server ends itself).
fn while_allowed(
    ui: &Arc<Ui>,
    viewer: Option<Viewer>,
    (ns, name): (String, String),
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let ui = ui.clone();
    async move {
        let (Some(reviews), Some(viewer)) = (&ui.reviews, viewer) else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(auth::LIVE_RECHECK).await;
            if !matches!(
                reviews.may(&viewer, "get", &ns, Some(&name)).await,
                Ok(true)
            ) {
                tracing::info!(reader = %viewer.name, "a live UI stream ended: its reader may no longer read it");
                return;
            }
        }
    }
}

type Changes<K> = futures::stream::BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;

/// A watch of `api` under `config`, backing off after errors.
fn watch<K>(api: Api<K>, config: watcher::Config) -> Changes<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    watcher(api, config).default_backoff().boxed()
}

/// The watch's next event; `None` once the page is gone or the watch ended.
async fn next_change<K>(
    changes: &mut Changes<K>,
    tx: &mpsc::Sender<SseEvent>,
) -> Option<Result<watcher::Event<K>, watcher::Error>> {
    tokio::select! {
        () = tx.closed() => None,
        next = changes.next() => next,
    }
}

fn problem(message: impl std::fmt::Display) -> SseEvent {
    SseEvent::default()
        .event("problem")
        .data(message.to_string())
}

fn json_event(name: &str, value: &impl serde::Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(value)
        .unwrap_or_else(|e| problem(format!("cannot encode {name}: {e}")))
}

/// Every change of the ValkeyClusters the reader may see.
pub(super) async fn clusters(
    State(ui): State<Arc<Ui>>,
    viewer: Option<Extension<Viewer>>,
) -> Result<Events, UiError> {
    let viewer = viewer.map(|Extension(v)| v);
    // The reader's right to list them is checked before the stream opens.
    clusters_api(&ui)
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(UiError::kube("listing ValkeyClusters"))?;
    let (tx, rx) = mpsc::channel(BUFFER);
    let api = clusters_api(&ui);
    // Each change is told only once a review says its reader may see that
    // cluster (asked again as the answers age): the stream itself shows
    // nothing to end.
    let shown = ui.clone();
    tokio::spawn(async move {
        let mut changes = watch(api, watcher::Config::default());
        while let Some(next) = next_change(&mut changes, &tx).await {
            let event = match next {
                // A change of a cluster the reader may not see is not
                // told, not even that it happened.
                Ok(watcher::Event::Apply(vkc) | watcher::Event::Delete(vkc)) => {
                    if !may_see(&shown, viewer.as_ref(), &vkc)
                        .await
                        .unwrap_or(false)
                    {
                        continue;
                    }
                    SseEvent::default().event("changed").data("")
                }
                Ok(watcher::Event::InitDone) => SseEvent::default().event("changed").data(""),
                Ok(_) => continue,
                Err(e) => problem(format!("watching ValkeyClusters: {e}")),
            };
            // A page behind by a whole buffer reads the list once anyway.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(event) {
                return;
            }
        }
    });
    Ok(stream_of_channel(rx, std::future::pending()))
}

/// `?after=<seq>`: the last seq the page shows.
#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    after: Option<u64>,
}

/// The cluster's journal as it grows, and its summary as it changes.
pub(super) async fn cluster(
    State(ui): State<Arc<Ui>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LiveQuery>,
    viewer: Option<Extension<Viewer>>,
) -> Result<Events, UiError> {
    let until = while_allowed(
        &ui,
        viewer.map(|Extension(v)| v),
        (ns.clone(), name.clone()),
    );
    let vkc = get_cluster(&ui, &ns, &name).await?;
    let stream = stream_of(&vkc)?;
    let (tx, rx) = mpsc::channel(BUFFER);
    let wake = Arc::new(Notify::new());
    if let Journals::ConfigMaps(client) = &ui.journals {
        tokio::spawn(watch_head(
            Api::namespaced(client.clone(), &ns),
            layout::head_name(&stream),
            wake.clone(),
            tx.clone(),
        ));
    }
    tokio::spawn(follow_journal(
        ui.journals.store(&ns),
        stream,
        q.after,
        ui.journals.poll(),
        wake,
        tx.clone(),
    ));
    tokio::spawn(watch_cluster(
        Api::namespaced(ui.client.clone(), &ns),
        name,
        tx,
    ));
    Ok(stream_of_channel(rx, until))
}

/// Wakes `wake` whenever the journal's head object changes.
async fn watch_head(
    api: Api<ConfigMap>,
    head: String,
    wake: Arc<Notify>,
    tx: mpsc::Sender<SseEvent>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={head}"));
    let mut changes = watch(api, config);
    while let Some(next) = next_change(&mut changes, &tx).await {
        match next {
            Ok(_) => wake.notify_one(),
            Err(e) => {
                let said = problem(format!("watching the journal's head {head}: {e}"));
                if tx.send(said).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends each event appended after `after` (the head when `None`).
async fn follow_journal(
    store: AnyStore,
    stream: StreamId,
    after: Option<u64>,
    poll: std::time::Duration,
    wake: Arc<Notify>,
    tx: mpsc::Sender<SseEvent>,
) {
    let mut last = after;
    loop {
        // When the head cannot be read nothing is known of it: wait, and
        // never take 0 for it (that would resend the journal from its
        // start).
        let head = match store.head(&stream).await {
            Ok(head) => Some(head.seq),
            Err(e) => {
                if tx
                    .send(problem(format!("reading the journal's head: {e}")))
                    .await
                    .is_err()
                {
                    return;
                }
                None
            }
        };
        if let Some(head) = head {
            let seen = *last.get_or_insert(head);
            if head > seen {
                let to = head.min(seen.saturating_add(MAX_PAGE));
                match journal::read_range(&store, &stream, seen + 1, to).await {
                    Ok(events) => {
                        for e in &events {
                            let row = json_event("journal", &EventRow::of(e)).id(e.seq.to_string());
                            if tx.send(row).await.is_err() {
                                return;
                            }
                        }
                        last = Some(events.last().map_or(to, |e| e.seq));
                        continue;
                    }
                    Err(e) => {
                        if tx.send(problem(e)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        tokio::select! {
            () = tx.closed() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Sends the cluster's summary whenever it changes.
async fn watch_cluster(api: Api<ValkeyCluster>, name: String, tx: mpsc::Sender<SseEvent>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut changes = watch(api, config);
    let mut sent: Option<Summary> = None;
    while let Some(next) = next_change(&mut changes, &tx).await {
        let event = match next {
            Ok(watcher::Event::Apply(vkc) | watcher::Event::InitApply(vkc)) => {
                let summary = Summary::of(&vkc);
                if sent.as_ref() == Some(&summary) {
                    continue;
                }
                let event = json_event("cluster", &summary);
                sent = Some(summary);
                event
            }
            Ok(watcher::Event::Delete(_)) => {
                sent = None;
                SseEvent::default().event("deleted").data(name.clone())
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
            Err(e) => problem(format!("watching ValkeyCluster {name}: {e}")),
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}
