//! Counting the API requests of a load: a `tracing` subscriber that sees
//! only kube-rs's per-request `HTTP` span, installed for one untimed pass
//! on a thread of its own so the timed passes pay nothing for it.

use std::sync::Arc;

use super::{LoadMode, RequestCount, Result, Targets, load_pass, setup};

/// Runs one load pass on a thread of its own (a current-thread runtime,
/// so every request is made there) under a dispatcher that counts the
/// client's requests.
pub(super) fn count_requests(
    targets: &Arc<Targets>,
    mode: LoadMode,
    concurrency: usize,
) -> Result<RequestCount> {
    let counter = Arc::new(RequestCounter::default());
    let dispatch = tracing::Dispatch::from(Arc::clone(&counter));
    let targets = Arc::clone(targets);
    let pass = std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| setup("a counting runtime")(e.to_string()))?;
            runtime.block_on(load_pass(&targets, mode, concurrency))
        })
    })
    .join()
    .map_err(|_| setup("a counting thread")("it panicked".to_owned()))?;
    pass?;
    Ok(counter.counts())
}

/// A `tracing` subscriber that sees only kube-rs's `HTTP` span (one per
/// request, with the method and URL) and counts the requests by object.
#[derive(Debug, Default)]
struct RequestCounter {
    counts: std::sync::Mutex<RequestCount>,
}

impl RequestCounter {
    fn counts(&self) -> RequestCount {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn is_request(metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_span() && metadata.name() == "HTTP" && metadata.target().starts_with("kube")
    }
}

/// The method and URL fields of a request span.
#[derive(Default)]
struct RequestFields {
    method: String,
    url: String,
}

impl tracing::field::Visit for RequestFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "http.method" => self.method = format!("{value:?}"),
            "http.url" => self.url = format!("{value:?}"),
            _ => {}
        }
    }
}

impl tracing::Subscriber for RequestCounter {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::is_request(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        Self::is_request(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = RequestFields::default();
        span.record(&mut fields);
        if let Ok(mut counts) = self.counts.lock() {
            let configmap = fields.url.contains("/configmaps/");
            let count = match fields.method.as_str() {
                "GET" if configmap && fields.url.ends_with("-head") => &mut counts.head_gets,
                "GET" if configmap && fields.url.ends_with("-snapshot") => {
                    &mut counts.snapshot_gets
                }
                "GET" if configmap => &mut counts.segment_gets,
                _ => &mut counts.other,
            };
            *count = count.saturating_add(1);
        }
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
