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
//! - `source`: where the journal is; `clusters`: which stream is which
//!   cluster's;
//! - `inspect`: `verify` and `streams`;
//! - `diagnose` (reads) and `plan` (pure): what is wrong and what applies;
//! - `repair`: printing the plan and applying one repair.

mod clusters;
mod diagnose;
mod inspect;
mod plan;
mod repair;
mod source;

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

pub use plan::RepairKind;

use crate::cli::{Error, JournalCommand, Result};
pub(crate) use source::Journal;

/// Which journal a command reads: `--dir` or `--namespace`.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// A local sled journal directory.
    #[arg(
        long,
        required_unless_present = "namespace",
        conflicts_with_all = ["namespace", "kubeconfig", "cluster"]
    )]
    pub dir: Option<PathBuf>,
    /// The namespace whose ConfigMaps hold the journals (the clusters'
    /// namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// The kubeconfig to use with `--namespace` (default: `KUBECONFIG`,
    /// `~/.kube/config`, or the in-cluster service account).
    #[arg(long, requires = "namespace")]
    pub kubeconfig: Option<PathBuf>,
    /// Only the journals of this ValkeyCluster: found by its uid, or, once
    /// the cluster is deleted, by the `valkey.logbook.dev/cluster` label of
    /// a retained journal.
    #[arg(long, requires = "namespace")]
    pub cluster: Option<String>,
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
