//! The `logbook` command line: argument parsing and the commands that exist
//! today. Each command writes to the writer it is given, so tests capture its
//! output without spawning a process. Commands never print a secret.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Errors of the command line. Each says what was asked and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CRDs could not be rendered as YAML.
    #[error("cannot render the CustomResourceDefinitions: {0}")]
    RenderCrds(String),
    /// Writing the command's output failed (a closed pipe, a full disk).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The journal directory does not exist (it is never created by a read).
    #[error("no journal at {0}: the directory does not exist")]
    NoJournal(PathBuf),
    /// The journal could not be opened or read.
    #[error("journal at {dir}: {source}")]
    Journal {
        /// The journal directory given on the command line.
        dir: PathBuf,
        /// What the store reported.
        #[source]
        source: logbook_journal::StoreError,
    },
    /// `logbook local` failed: the server could not start or its
    /// kubeconfig could not be written.
    #[error("{0}")]
    Local(String),
    /// The async runtime for store access could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Verification found a broken frame or hash link.
    #[error("journal at {dir}: {problems} stream(s) failed verification")]
    VerifyFailed {
        /// The journal directory given on the command line.
        dir: PathBuf,
        /// How many streams have a problem.
        problems: usize,
    },
}

/// `pub type Result` in the kube-runtime style.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Logbook: a Kubernetes operator for Valkey whose memory is an append-only journal.
#[derive(Debug, Parser)]
#[command(name = "logbook", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `logbook`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every CustomResourceDefinition Logbook serves, as YAML.
    Crds,
    /// Inspect a local (sled) journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Run Logbook's local Kubernetes (localkube) on this machine, with
    /// the operator inside unless `--no-operator`.
    Local(crate::local::LocalArgs),
    /// Run the operator against a Kubernetes cluster.
    Operator(crate::operator_cli::OperatorArgs),
    /// Measure failovers and switchovers against references.
    #[command(subcommand)]
    Bench(crate::bench_cli::BenchCommand),
}

/// `logbook journal ...`
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check every frame's CRC and every hash link of every stream.
    Verify {
        /// The sled journal directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// List the streams with their head (last seq and hash prefix).
    Streams {
        /// The sled journal directory.
        #[arg(long)]
        dir: PathBuf,
    },
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
        Command::Operator(args) => crate::operator_cli::run(args, out),
        Command::Bench(cmd) => crate::bench_cli::run(cmd, out),
    }
}

fn print_crds(out: &mut dyn Write) -> Result<()> {
    let yaml = logbook_crds::render_crds_yaml().map_err(|e| Error::RenderCrds(e.to_string()))?;
    out.write_all(yaml.as_bytes())?;
    Ok(())
}
