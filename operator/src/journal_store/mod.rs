//! The journal in the cluster: a `JournalStore` over ConfigMaps.
//!
//! Owns the object layout (`layout`) and the API calls and write order
//! (`store`). It must not decode events or decide anything: it stores
//! frames the journal crate encoded. The layout is documented in
//! `docs/journal-format.md` ("ConfigMap layout").

mod any;
pub mod layout;
mod store;

pub use any::{AnyStore, JournalBackend};
pub use store::{ConfigMapStore, PinnedStream};
