//! Logbook's tools, the commands people run on their machines: `logbook`
//! (local mode, the journal, replay and UI commands, and the operator
//! itself) and `kubectl-valkey`, the kubectl plugin. The only crate of
//! the workspace that depends on localkube.
//!
//! The operator's library (`logbook-operator`, operator/) is re-exported
//! whole, so `logbook::operator`, `logbook::resources` and the rest name
//! the same items as `logbook_operator::...`. The binary in `main.rs` is
//! a thin wrapper over [`cli::run`], so every command can be exercised
//! from tests without spawning a process. Each subcommand's module
//! (`journal_cli`, `local`, `replay_cli`, `ui_cli`) depends on the
//! libraries and on [`cli_error`], never on `cli` or on another
//! subcommand; what they share is in `journal_source` and
//! [`local_cluster`]. The benches are the `logbook-bench` crate, which
//! this library never imports.

pub use logbook_operator::*;

pub mod cli;
mod journal_cli;
mod journal_source;
pub mod local;
pub mod local_cluster;
pub mod plugin;
pub mod replay_cli;
pub mod ui_cli;
