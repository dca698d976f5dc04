//! `logbook journal ...`: inspecting and repairing journals, in a local sled
//! directory or in the ConfigMaps of a namespace.
//!
//! `verify` and `streams` only read. `repair` reads and prints the safe
//! repairs with what each loses; only `--apply <repair>` writes, and then
//! only through the `JournalStore` trait (`remove_last`, `compact`,
//! `put_snapshot`), never by editing objects, so a repair keeps every
//! invariant the store keeps. A sled directory that does not exist is
//! refused rather than created (sled would silently make an empty journal).
//!
//! Where the journal is and which stream is which cluster's is the
//! library's `journal_source`, shared with `logbook replay`. Here:
//!
//! - `inspect`: `verify` and `streams`;
//! - `diagnose` (reads) and `plan` (pure): what is wrong and what applies;
//! - `repair`: printing the plan and applying one repair.

mod diagnose;
mod inspect;
mod plan;
mod repair;

use std::io::Write;

use clap::{Args, Subcommand};

pub use plan::RepairKind;

use crate::cli_error::{Error, Result};
use crate::journal_source::{Journal, SourceArgs};

/// `logbook journal ...`: a journal in a sled directory (`--dir`) or in
/// the ConfigMaps of a namespace (`--namespace`, `--kubeconfig`).
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check every frame's CRC and every hash link of every stream; name
    /// the stream, cluster, seq, kind and (for ConfigMaps) the object and
    /// key of each problem.
    Verify(SourceArgs),
    /// List the streams with their head (last seq and hash prefix).
    Streams(SourceArgs),
    /// Verify one stream and list the safe repairs with what each loses;
    /// `--apply <repair>` performs one and verifies again.
    Repair(RepairArgs),
}

/// `logbook journal repair` options.
#[derive(Debug, Clone, Args)]
pub struct RepairArgs {
    /// The journal.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The stream to repair (a cluster's uid); needed with `--dir`, and
    /// with `--cluster` when several retained journals carry its name.
    #[arg(long)]
    pub stream: Option<String>,
    /// Perform this repair, as a dry run listed it: `truncate-torn-tail`,
    /// `truncate-from:<seq>`, `rebuild-from-snapshot` or `rewrite-snapshot`.
    /// Without it nothing is changed.
    #[arg(long, value_name = "REPAIR")]
    pub apply: Option<RepairKind>,
}

/// Runs one `logbook journal` command.
///
/// # Errors
/// [`Error::NoJournal`], [`Error::Journal`], [`Error::ConfigMapJournal`],
/// [`Error::JournalApi`] when the journal cannot be opened or read;
/// [`Error::VerifyFailed`] / [`Error::VerifyFailedInNamespace`] when verify
/// finds a problem (after printing it); the repair errors of
/// [`repair::run`].
pub fn run(cmd: JournalCommand, out: &mut dyn Write) -> Result<()> {
    // One-shot commands: a current-thread runtime is enough, with I/O and
    // timers for the Kubernetes client.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    rt.block_on(async {
        match cmd {
            JournalCommand::Verify(source) => {
                let journal = Journal::open(&source).await?;
                inspect::verify(&journal, source.cluster.as_deref(), out).await
            }
            JournalCommand::Streams(source) => {
                let journal = Journal::open(&source).await?;
                inspect::streams(&journal, source.cluster.as_deref(), out).await
            }
            JournalCommand::Repair(args) => {
                let journal = Journal::open(&args.source).await?;
                repair::run(&journal, &args, out).await
            }
        }
    })
}
