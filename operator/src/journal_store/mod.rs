//! The journal backend the operator was started with (`any`): ConfigMaps
//! (the `logbook-journal-k8s` crate, re-exported here), a local sled
//! directory, or both.

mod any;

pub use any::{AnyStore, JournalBackend};
pub use logbook_journal_k8s::{ConfigMapStore, PinnedStream, layout};
