//! The Logbook operator: what runs in a cluster. The controller and its
//! observers, the actuators and object builders over the decisions of
//! `logbook-core`, the Valkey client, backups, TLS, the webhooks,
//! leadership, the effect gate, the metrics and the UI.
//!
//! It never depends on the tools people run on their machines (local
//! mode, the kubectl plugin, the journal and replay commands: the
//! `logbook` package), nor on localkube; its binary (`main.rs`) is the
//! image's only executable: `logbook-operator [operator] ...` runs the
//! operator, `logbook-operator restore-fetch ...` a restore's init
//! container. What the tools share with it is public here:
//! [`cli_error`], [`kube_client`], [`signals`], [`replay_decider`].

pub mod actuate;
pub mod backup;
pub mod cli_error;
pub mod credentials;
/// The decisions, in their own crate (core/): no I/O, no clock.
pub use logbook_core::decide;
pub mod effects;
pub mod journal_store;
pub mod kube_client;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod operator;
pub mod operator_cli;
pub mod replay_decider;
pub use logbook_core::resources;
pub mod restore_fetch_cli;
#[cfg(test)]
mod sentinel_run_tests;
pub mod signals;
pub mod tls;
pub mod ui;
pub mod valkey;
pub mod webhook;
