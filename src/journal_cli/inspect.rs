//! `logbook journal verify` and `logbook journal streams`: read-only.
//!
//! One line per stream, so the output greps: `ok` or `BROKEN`, the stream,
//! the cluster's name when known, and for a problem its seq, kind, and (for
//! ConfigMaps) the object and key holding the bad frame.

use std::io::Write;

use logbook_journal::verify;
use logbook_journal::{JournalStore, StoreError, StreamId};

use super::diagnose::head_record_at_fault;
use crate::cli_error::{Error, Result};
use crate::journal_source::{Journal, StreamInfo};
use crate::journal_store::AnyStore;

/// `cluster=<name>  ` when the cluster is known, else nothing.
fn cluster_column(info: &StreamInfo) -> String {
    info.cluster
        .as_ref()
        .map(|c| format!("cluster={c}  "))
        .unwrap_or_default()
}

/// Verifies `stream` as of one read of its head: a ConfigMap journal that a
/// running operator appends to meanwhile is checked at that commit point,
/// never reported as holding events "beyond the head".
async fn verify_at_one_head(
    store: &AnyStore,
    stream: &StreamId,
) -> std::result::Result<verify::VerifyReport, StoreError> {
    match store.config_maps() {
        Some(config_maps) => verify::verify(&config_maps.pin(stream).await?, stream).await,
        None => verify::verify(store, stream).await,
    }
}

/// Verifies every stream (of `cluster`, when given) and prints one line each.
///
/// # Errors
/// [`Error::VerifyFailed`] / [`Error::VerifyFailedInNamespace`] when a
/// stream has a problem (after printing it); [`Error::NoSuchStream`] when
/// `cluster` has no journal; store and API failures.
pub async fn verify(journal: &Journal, cluster: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let streams = journal.streams(cluster).await?;
    let headless = journal.headless(cluster).await?;
    if let Some(name) = cluster
        && streams.is_empty()
        && headless.is_empty()
    {
        return Err(Error::NoSuchStream {
            journal: journal.place(),
            what: format!("no journal of cluster {name}"),
        });
    }
    let store = journal.store();
    let mut problems = 0usize;
    for info in &streams {
        let stream = &info.stream;
        let cluster = cluster_column(info);
        let report = match verify_at_one_head(&store, stream).await {
            Ok(report) => report,
            Err(StoreError::CorruptMeta { what, .. }) => {
                problems = problems.saturating_add(1);
                writeln!(out, "BROKEN  {stream}  {cluster}unreadable record: {what}")?;
                continue;
            }
            Err(e) => return Err(journal.store_error(e)),
        };
        match &report.problem {
            None => writeln!(
                out,
                "ok      {stream}  {cluster}events={} head={} snapshot={}",
                report.events_checked,
                report.head.seq,
                report
                    .snapshot_seq
                    .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            )?,
            Some(problem) => {
                problems = problems.saturating_add(1);
                let in_head =
                    head_record_at_fault(&store, stream, problem.seq, problem.kind, report.head)
                        .await
                        .map_err(|e| journal.store_error(e))?;
                let at = journal
                    .location(stream, problem.seq, problem.kind, in_head)
                    .await
                    .map(|l| format!(" in {l}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "BROKEN  {stream}  {cluster}seq={} {:?}{at}: {}",
                    problem.seq, problem.kind, problem.detail
                )?;
            }
        }
    }
    for (info, objects) in &headless {
        problems = problems.saturating_add(1);
        writeln!(
            out,
            "BROKEN  {}  {}head missing: {objects} object(s) of the journal remain without it",
            info.stream,
            cluster_column(info)
        )?;
    }
    writeln!(
        out,
        "{} stream(s) checked, {} with problems",
        streams.len().saturating_add(headless.len()),
        problems
    )?;
    if problems == 0 {
        return Ok(());
    }
    Err(match journal {
        Journal::Sled { dir, .. } => Error::VerifyFailed {
            dir: dir.clone(),
            problems,
        },
        Journal::ConfigMaps { namespace, .. } => Error::VerifyFailedInNamespace {
            namespace: namespace.clone(),
            problems,
        },
    })
}

/// Lists the streams (of `cluster`, when given) with their heads.
///
/// # Errors
/// Store and API failures.
pub async fn streams(journal: &Journal, cluster: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let store = journal.store();
    for info in journal.streams(cluster).await? {
        let stream = &info.stream;
        let cluster = info
            .cluster
            .as_ref()
            .map(|c| format!("  cluster={c}"))
            .unwrap_or_default();
        match store.head(stream).await {
            Ok(head) => {
                let hash: String = head.hash.to_hex().chars().take(12).collect();
                writeln!(out, "{stream}  seq={} hash={hash}{cluster}", head.seq)?;
            }
            Err(StoreError::CorruptMeta { what, .. }) => {
                writeln!(out, "{stream}  head unreadable: {what}{cluster}")?;
            }
            Err(e) => return Err(journal.store_error(e)),
        }
    }
    Ok(())
}
