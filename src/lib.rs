//! Logbook, the operator library: the controller, observers, `decide`,
//! actuators and object builders, and the command line over them.
//!
//! The binary in `main.rs` is a thin wrapper over [`cli::run`], so every
//! command can be exercised from tests without spawning a process. Each
//! subcommand's module (`journal_cli`, `local`, `operator_cli`,
//! `replay_cli`) depends on the library and on [`cli_error`], never on
//! `cli` or on another subcommand; what they share is in [`kube_client`],
//! `signals`, `journal_source`, [`local_cluster`] and [`replay_decider`].
//! The benches are the `logbook-bench` crate, which this library never
//! imports; what they use of it is public here: [`kube_client`],
//! [`local_cluster`], [`replay_decider`], and the operator's own modules
//! they drive (`operator`, `leader`, `journal_store`, `decide`, `valkey`).

pub mod actuate;
pub mod backup;
pub mod cli;
pub mod cli_error;
/// The decisions, in their own crate (core/): no I/O, no clock.
pub use logbook_core::decide;
pub mod effects;
mod journal_cli;
mod journal_source;
pub mod journal_store;
pub mod kube_client;
pub mod leader;
pub mod local;
pub mod local_cluster;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod operator;
pub mod operator_cli;
pub mod plugin;
pub mod replay_cli;
pub mod replay_decider;
pub mod resources;
pub mod restore_fetch_cli;
mod signals;
pub mod tls;
pub mod ui;
pub mod ui_cli;
pub mod valkey;
pub mod webhook;
