//! The journal in the cluster: a `JournalStore` over the ConfigMaps of a
//! namespace, so that journals outlive the operator's pod.
//!
//! Owns the object layout (`layout`) and the API calls and write order
//! (`store`). It must not decode events or decide anything: it stores
//! frames the journal crate encoded. The layout is documented in
//! `docs/journal-format.md` ("ConfigMap layout"). It passes the journal's
//! conformance suite (`tests/configmap_store.rs`), on localkube and on the
//! real API server.

pub mod layout;
mod store;

pub use store::{ConfigMapStore, PinnedStream, Result};

/// How a write of a journal ConfigMap ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteResult {
    /// Written.
    Ok,
    /// `409 Conflict`: the object moved since it was read (the
    /// `resourceVersion` precondition failed), or a create found it taken.
    Conflict,
    /// Any other failure.
    Error,
}

impl WriteResult {
    /// Every result, for removing a cluster's series.
    pub const ALL: [Self; 3] = [Self::Ok, Self::Conflict, Self::Error];

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Conflict => "conflict",
            Self::Error => "error",
        }
    }
}

/// Where a store counts its writes (the operator's metrics,
/// `logbook_configmap_writes_total`); a store without one counts nothing.
pub trait WriteCounter: std::fmt::Debug + Send + Sync {
    /// One write ended with `result`.
    fn record(&self, result: WriteResult);
}
