//! Watch streams through the proxy: each one a task that delivers the
//! live server's events, withholds those a hold covers (delivered on
//! release, in order), or ends the stream with `410 Gone` so that its
//! watcher lists again.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::request::{ApiPath, namespace_name};
use super::{
    Body, Control, Mode, Shared, StreamEntry, bad_gateway, collect, forward, gone_line, rebuild,
};

/// A watch: every one goes through a task that can withhold its events,
/// end it, or (stale) never connect it upstream at all.
pub(super) async fn watch(
    shared: &Arc<Shared>,
    parts: &http::request::Parts,
    path: &ApiPath,
) -> Response<Body> {
    let rule = shared.rule_for(&path.group, &path.resource);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let began_under = rule.as_ref().map(|r| r.epoch);
    let upstream = match &rule {
        Some(r) if r.mode == Mode::Stale => None,
        _ => match forward(shared, parts, Bytes::new()).await {
            Ok(response) if response.status().is_success() => Some(response.into_body()),
            Ok(response) => {
                return match collect(response).await {
                    Ok((head, bytes)) => rebuild(head, bytes),
                    Err(why) => bad_gateway(&why),
                };
            }
            Err(why) => return bad_gateway(&why),
        },
    };
    shared.streams.lock().unwrap().push(StreamEntry {
        group: path.group.clone(),
        resource: path.resource.clone(),
        control: control_tx,
    });
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    let pipe = Pipe {
        shared: shared.clone(),
        group: path.group.clone(),
        resource: path.resource.clone(),
        began_under,
        tx,
        held: Vec::new(),
    };
    tokio::spawn(pipe.run(upstream, control_rx));
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

/// One watch stream's task.
struct Pipe {
    shared: Arc<Shared>,
    group: String,
    resource: String,
    /// The epoch of the rule in force when it began, if any.
    began_under: Option<u64>,
    tx: mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    /// Event lines withheld, in order.
    held: Vec<Bytes>,
}

impl Pipe {
    async fn run(
        mut self,
        upstream: Option<Incoming>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut upstream = upstream;
        let mut buffer = BytesMut::new();
        loop {
            let frame = async {
                match upstream.as_mut() {
                    Some(body) => body.frame().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = control.recv() => match message {
                    Some(Control::Release(epoch)) => {
                        if !self.flush().await {
                            return;
                        }
                        if self.began_under == Some(epoch) {
                            let _ = self.send(gone_line()).await;
                            return;
                        }
                    }
                    Some(Control::Gone) | None => {
                        let _ = self.send(gone_line()).await;
                        return;
                    }
                },
                frame = frame => {
                    let Some(Ok(frame)) = frame else {
                        // The server ended the watch: so does the client's.
                        let _ = self.flush().await;
                        return;
                    };
                    let Ok(data) = frame.into_data() else { continue };
                    buffer.extend_from_slice(&data);
                    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                        let line = buffer.split_to(end + 1).freeze();
                        if !self.pass(line).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Withholds `line` when a hold covers its object, else delivers it
    /// (after what was withheld, once no hold is in force).
    async fn pass(&mut self, line: Bytes) -> bool {
        let rule = self.shared.rule_for(&self.group, &self.resource);
        let covered = rule.as_ref().is_some_and(|rule| {
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                return false;
            };
            let name = namespace_name(&event["object"]).1;
            match rule.mode {
                Mode::Hold => event["type"] != "BOOKMARK" && rule.view.target.covers(&name),
                // A stale stream never reaches here; one begun live when a
                // stale view took over is being ended.
                Mode::Stale => true,
            }
        });
        if covered {
            self.shared.withheld.fetch_add(1, Ordering::Relaxed);
            self.held.push(line);
            return true;
        }
        if rule.is_none() && !self.flush().await {
            return false;
        }
        self.send(line).await
    }

    async fn flush(&mut self) -> bool {
        for line in std::mem::take(&mut self.held) {
            if !self.send(line).await {
                return false;
            }
        }
        true
    }

    async fn send(&self, line: Bytes) -> bool {
        self.tx.send(Ok(Frame::data(line))).await.is_ok()
    }
}
