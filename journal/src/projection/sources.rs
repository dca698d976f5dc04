//! Where the journal's observations were read: for each API object
//! (`Pod/demo-0`, `ValkeyCluster`, `Secret/app-password`), the
//! resourceVersion of the newest read (or write) of it whose observations
//! the journal holds, and the stale reads ignored since.
//!
//! The observer compares a read with it: a read older than the journal's
//! comes from an API server that lags, and what it shows is not observed
//! (`observe/freshness.rs` in the operator). The projection only records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many objects the part keeps. Past it, the objects with the oldest
/// versions go first: a view so old that it predates them all is no
/// longer judged stale for them (bounded, like the history).
pub const SOURCES_LIMIT: usize = 512;

/// The resourceVersions observed, by object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourcesPart {
    /// By object, the resourceVersion of the newest read or write of it
    /// the journal's observations come from (`ResourceVersionsObserved`).
    pub versions: BTreeMap<String, u64>,
    /// By object, the resourceVersion of the last stale read ignored
    /// (`StaleReadIgnored`), until a newer read of it is journaled.
    pub ignored: BTreeMap<String, u64>,
}

impl SourcesPart {
    /// Nothing observed yet (a journal from before the part existed, or
    /// one without observations): the part is not serialized then, so a
    /// snapshot's digest is what it was before the part existed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.ignored.is_empty()
    }

    /// The journaled resourceVersion of `object`, if any.
    #[must_use]
    pub fn version(&self, object: &str) -> Option<u64> {
        self.versions.get(object).copied()
    }

    /// Records `version` for `object` (never lowering what is kept), and
    /// drops what was ignored of it.
    pub fn observe(&mut self, object: &str, version: u64) {
        let kept = self.versions.entry(object.to_owned()).or_insert(version);
        *kept = (*kept).max(version);
        self.ignored.remove(object);
        while self.versions.len() > SOURCES_LIMIT {
            let Some(oldest) = self
                .versions
                .iter()
                .min_by_key(|(name, v)| (**v, (*name).clone()))
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            self.versions.remove(&oldest);
            self.ignored.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn versions_only_grow_and_a_newer_read_clears_what_was_ignored() {
        let mut part = SourcesPart::default();
        assert!(part.is_empty());
        part.observe("Pod/demo-0", 10);
        part.ignored.insert("Pod/demo-0".into(), 5);
        part.observe("Pod/demo-0", 7);
        assert_eq!(part.version("Pod/demo-0"), Some(10));
        assert!(part.ignored.is_empty());
    }

    #[test]
    fn the_oldest_objects_go_first_past_the_limit() {
        let mut part = SourcesPart::default();
        for n in 0..=SOURCES_LIMIT {
            part.observe(&format!("ValkeyBackup/b{n}"), 100 + n as u64);
        }
        assert_eq!(part.versions.len(), SOURCES_LIMIT);
        assert_eq!(part.version("ValkeyBackup/b0"), None);
        assert_eq!(part.version("ValkeyBackup/b1"), Some(101));
    }
}
