//! The span every log line about a cluster is emitted in: `cluster` with
//! its `namespace`, its `name`, and the journal `seq` the work concerns.
//!
//! A span is made per piece of work (a reconcile, a probe round) with the
//! seq of the cluster's projection when it starts; lines logged after an
//! append carry the new seq as their own field. Spans are never updated
//! with `record`: a long-lived span that is (tracing-subscriber's `fmt`
//! appends every recorded value to the span's text, so its lines would
//! grow with the journal).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The span of cluster `namespace/name` at `seq` (absent before the
/// cluster's journal was read).
pub fn cluster_span(namespace: &str, name: &str, seq: Option<u64>) -> tracing::Span {
    let span = tracing::info_span!(
        "cluster",
        namespace = %namespace,
        name = %name,
        seq = tracing::field::Empty
    );
    if let Some(seq) = seq {
        span.record("seq", seq);
    }
    span
}

/// Makes spans of one cluster at the seq its projection is at, without
/// taking the runtime's lock (a reconcile starts while the prober acts).
/// Clones share the seq.
#[derive(Debug, Clone)]
pub struct ClusterSpan {
    namespace: String,
    name: String,
    seq: Arc<AtomicU64>,
}

impl ClusterSpan {
    /// Spans of cluster `namespace/name`, at `seq` until told otherwise.
    pub fn new(namespace: &str, name: &str, seq: u64) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            seq: Arc::new(AtomicU64::new(seq)),
        }
    }

    /// The projection moved to `seq`.
    pub fn set_seq(&self, seq: u64) {
        self.seq.store(seq, Ordering::Relaxed);
    }

    /// The seq last set.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// A new span at the seq last set.
    pub fn span(&self) -> tracing::Span {
        cluster_span(&self.namespace, &self.name, Some(self.seq()))
    }
}
