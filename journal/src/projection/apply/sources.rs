//! The sources family: the resourceVersions the journal's observations
//! were read at, and the stale reads ignored.

use crate::event::Event;
use crate::projection::ClusterState;
use crate::time::Timestamp;

impl ClusterState {
    /// Folds where observations were read: the versions observed (never
    /// lowered), and a stale read ignored (notable: it says the API server
    /// lagged).
    pub(super) fn fold_sources(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::ResourceVersionsObserved { versions } => {
                for (object, version) in versions {
                    self.sources.observe(object, *version);
                }
            }
            Event::StaleReadIgnored {
                object,
                resource_version,
                journaled,
            } => {
                self.sources
                    .ignored
                    .insert(object.clone(), *resource_version);
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "stale read of {object} ignored: resourceVersion {resource_version}, the journal's is {journaled}"
                    ),
                );
            }
            other => self.misrouted(seq, other, "sources"),
        }
    }
}
