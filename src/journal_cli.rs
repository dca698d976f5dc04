//! `logbook journal ...`: read-only inspection of a local sled journal.
//!
//! These commands never append: they open the store, read, and report. A
//! directory that does not exist is refused rather than created, because
//! sled would otherwise silently make an empty journal there.

use std::io::Write;
use std::path::Path;

use logbook_journal::{JournalStore, SledStore, StoreError, verify};

use crate::cli::{Error, JournalCommand, Result};

/// Runs one `logbook journal` command.
///
/// # Errors
/// [`Error::Journal`] when the store cannot be opened or read;
/// [`Error::VerifyFailed`] when `verify` finds a problem (after printing it).
pub fn run(cmd: JournalCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        JournalCommand::Verify { dir } => {
            let store = open(&dir)?;
            let reports = block_on(verify::verify_all(&store))?.map_err(journal_err(&dir))?;
            let mut problems = 0usize;
            for report in &reports {
                match &report.problem {
                    None => writeln!(
                        out,
                        "ok      {}  events={} head={} snapshot={}",
                        report.stream,
                        report.events_checked,
                        report.head.seq,
                        report
                            .snapshot_seq
                            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    )?,
                    Some(problem) => {
                        problems = problems.saturating_add(1);
                        writeln!(
                            out,
                            "BROKEN  {}  seq={} {:?}: {}",
                            problem.stream, problem.seq, problem.kind, problem.detail
                        )?;
                    }
                }
            }
            writeln!(
                out,
                "{} stream(s) checked, {} with problems",
                reports.len(),
                problems
            )?;
            if problems > 0 {
                return Err(Error::VerifyFailed { dir, problems });
            }
            Ok(())
        }
        JournalCommand::Streams { dir } => {
            let store = open(&dir)?;
            let streams = block_on(store.list_streams())?.map_err(journal_err(&dir))?;
            for stream in streams {
                let head = block_on(store.head(&stream))?.map_err(journal_err(&dir))?;
                let hash: String = head.hash.to_hex().chars().take(12).collect();
                writeln!(out, "{stream}  seq={} hash={hash}", head.seq)?;
            }
            Ok(())
        }
    }
}

fn open(dir: &Path) -> Result<SledStore> {
    if !dir.is_dir() {
        return Err(Error::NoJournal(dir.to_path_buf()));
    }
    SledStore::open(dir, logbook_journal::Durability::Flush).map_err(journal_err(dir))
}

fn journal_err(dir: &Path) -> impl FnOnce(StoreError) -> Error + '_ {
    move |source| Error::Journal {
        dir: dir.to_path_buf(),
        source,
    }
}

/// The sled store completes its futures immediately; a current-thread
/// runtime is all these one-shot commands need.
fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(Error::Runtime)?;
    Ok(rt.block_on(fut))
}
