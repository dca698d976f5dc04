//! The `logbook` command line: argument parsing and dispatch to the
//! subcommands. Each command writes to the writer it is given, so tests
//! capture its output without spawning a process. Commands never print a
//! secret.
//!
//! This is the only module that knows every subcommand; no subcommand
//! imports it. Each subcommand's module (`journal_cli`, `local`,
//! `operator_cli`, `replay_cli`) depends on the library and on the shared
//! error type in `cli_error` (re-exported here), never on another
//! subcommand: what several share lives in library modules
//! (`kube_client`, `signals`, `journal_source`, `local_cluster`,
//! `replay_decider`, `ui`). The benches are a separate crate (`bench/`,
//! `logbook-bench`).

use std::io::Write;

use clap::{Parser, Subcommand};

pub use crate::cli_error::{Error, Result};

/// Logbook: a Kubernetes operator for Valkey whose memory is an append-only journal.
#[derive(Debug, Parser)]
#[command(name = "logbook", version, about, long_about = None)]
pub struct Cli {
    /// Log format and filter (global: given before or after the command).
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `logbook`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every CustomResourceDefinition Logbook serves, as YAML.
    Crds,
    /// Inspect and repair journals (a sled directory or ConfigMaps).
    #[command(subcommand)]
    Journal(crate::journal_cli::JournalCommand),
    /// Run Logbook's local Kubernetes (localkube) on this machine, with
    /// the operator inside unless `--no-operator`.
    Local(crate::local::LocalArgs),
    /// Run the operator against a Kubernetes cluster.
    Operator(Box<crate::operator_cli::OperatorArgs>),
    /// Replay a cluster's journal: verify, timeline, failovers, reshards,
    /// state at a point, the determinism audit, exports.
    #[command(subcommand)]
    Replay(crate::replay_cli::ReplayCommand),
    /// The restore init container of a cluster created from a backup
    /// (`logbook-operator restore-fetch`, the image's; here so that local
    /// mode runs this executable as the operator's image).
    #[command(hide = true)]
    RestoreFetch(crate::restore_fetch_cli::RestoreFetchArgs),
    /// Serve the web UI on this machine with your kubeconfig: every
    /// cluster you may read, live, and the story of each decision.
    Ui(crate::ui_cli::UiArgs),
}

/// Runs one parsed command, writing its output to `out`.
///
/// # Errors
/// As [`Error`] says: rendering, output, journal access or failed verification.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Crds => print_crds(out),
        Command::Journal(cmd) => crate::journal_cli::run(cmd, out),
        Command::Local(args) => crate::local::run(args, out),
        Command::Operator(args) => crate::operator_cli::run(*args, out),
        Command::Replay(cmd) => crate::replay_cli::run(cmd, out),
        Command::RestoreFetch(args) => crate::restore_fetch_cli::run(args, out),
        Command::Ui(args) => crate::ui_cli::run(args, out),
    }
}

fn print_crds(out: &mut dyn Write) -> Result<()> {
    let yaml = logbook_crds::render_crds_yaml().map_err(|e| Error::RenderCrds(e.to_string()))?;
    out.write_all(yaml.as_bytes())?;
    Ok(())
}
