//! Logbook, the operator library: the command line today; the controller,
//! observers, `decide`, actuators and object builders as they land.
//!
//! The binary in `main.rs` is a thin wrapper over [`cli::run`], so every
//! command can be exercised from tests without spawning a process.

pub mod actuate;
pub mod bench;
mod bench_cli;
pub mod cli;
pub mod decide;
mod fault_cli;
mod journal_cli;
pub mod journal_store;
pub mod leader;
pub mod local;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod operator;
mod operator_cli;
pub mod plugin;
pub mod replay_cli;
pub mod resources;
pub mod valkey;
