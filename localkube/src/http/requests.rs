//! A bounded log of the requests the API server answered (method and
//! path), so a test can tell exactly which verbs a client used — e.g. that
//! a read-only tool only ever sent GETs. Keeps the last [`KEPT`] requests
//! and counts all of them, so a long-running `logbook local` does not grow.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

/// Requests kept.
pub const KEPT: usize = 20_000;

/// One request: its number (from 0), method and path with query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Its number in arrival order, from 0.
    pub number: u64,
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, ...
    pub method: String,
    /// Path and query, e.g. `/api/v1/namespaces/default/configmaps?labelSelector=...`.
    pub uri: String,
}

#[derive(Debug, Default)]
struct Inner {
    total: u64,
    kept: VecDeque<LoggedRequest>,
}

/// The log (cheap to clone; clones share it).
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Inner>>);

impl RequestLog {
    pub(crate) fn push(&self, method: &str, uri: &str) {
        let mut inner = self.0.lock();
        let number = inner.total;
        inner.total = inner.total.saturating_add(1);
        inner.kept.push_back(LoggedRequest {
            number,
            method: method.to_owned(),
            uri: uri.to_owned(),
        });
        while inner.kept.len() > KEPT {
            inner.kept.pop_front();
        }
    }

    /// How many requests were answered so far (a mark for [`Self::since`]).
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.lock().total
    }

    /// The kept requests numbered `mark` or later.
    #[must_use]
    pub fn since(&self, mark: u64) -> Vec<LoggedRequest> {
        self.0
            .lock()
            .kept
            .iter()
            .filter(|r| r.number >= mark)
            .cloned()
            .collect()
    }
}
