//! Logbook's replay tool: what the operator saw, what it decided, why, and
//! whether that was right — read from the journal alone.
//!
//! - [`source`]: where a journal is read from (any `JournalStore`: a sled
//!   directory, a cluster's ConfigMaps; or a JSONL export file) and the one
//!   scan every verb is built on, which checks every CRC and chain link as
//!   it reads;
//! - [`jsonl`]: the export format (`docs/replay.md` documents it) that
//!   another tool can ingest and `--file` reads back;
//! - [`frames`]: raw frame files, the golden fixtures' format;
//! - [`verify`], [`timeline`], [`failovers`], [`reshards`], [`state_at`],
//!   [`audit`], [`export`]: the verbs.
//!
//! Everything here reads: no verb writes to its source. Nothing here knows
//! Kubernetes; the operator's `logbook replay` command opens the sources
//! and passes `decide` in as a [`Decider`].

pub mod audit;
pub mod cluster_facts;
pub mod describe;
mod error;
pub mod export;
pub mod failovers;
pub mod frames;
pub mod jsonl;
pub mod reshards;
pub mod shard_failovers;
pub mod source;
pub mod state_at;
pub mod this_build;
pub mod timeline;
pub mod verify;

pub use audit::{AuditReport, Decider, Finding};
pub use error::{ReplayError, Result};
pub use source::{Flow, Input, Raw, Start, Visit};
