//! Logbook's pure decision core. [`decide`] turns the journal's
//! projection of a cluster and its spec into intents with their reasons,
//! and renders the status; the few names, certificate rules and schedule
//! times it needs live beside it. Nothing here does I/O, reads a clock,
//! or links tokio, a Kubernetes client, redis or an object store: the
//! operator runs these decisions and carries their intents out, and
//! `logbook replay` runs the same ones again over a journal.

pub mod backup_target;
pub mod certificates;
pub mod credentials;
pub mod decide;
pub mod metrics;
pub mod names;
pub mod observe;
pub mod replies;
pub mod resources;
pub mod schedule;
