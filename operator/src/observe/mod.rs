//! Observers: turn what Kubernetes and Valkey show into journal events,
//! only where it differs from what the projection already believes. The
//! folds are the core's (`logbook_core::observe`, re-exported here); the
//! observers of the users' passwords and ACLs are here, because their
//! keyed fingerprints need `ring` and the cluster's fingerprint key.

pub use logbook_core::observe::*;

pub mod fingerprints;
pub mod users;
