//! `kubectl valkey events <name> [--limit N]`: the operator's recent
//! decisions from the cluster's journal — each intent, its reason and its
//! outcome. Unlike Kubernetes Events, which expire after an hour, the
//! journal keeps them as long as the cluster's journal retention does.

use std::io::Write;

use logbook_journal::Timestamp;

use super::connect::Kube;
use super::error::Result;
use super::format::age;
use super::journal::{self, DecisionRecord, JournalView};

/// Runs `events`.
///
/// # Errors
/// API errors; the journal's.
pub async fn run(kube: &Kube, name: &str, limit: usize, out: &mut dyn Write) -> Result<()> {
    let cluster = kube.cluster(name).await?;
    let view = journal::read(kube, &cluster).await?;
    write(out, &view, limit, Timestamp::now())?;
    Ok(())
}

/// Writes the last `limit` decisions, oldest first.
///
/// # Errors
/// Output errors.
pub fn write(out: &mut dyn Write, view: &JournalView, limit: usize, now: Timestamp) -> Result<()> {
    let total = view.decisions.len();
    if total == 0 {
        writeln!(
            out,
            "No decisions in the journal yet (head at seq {}).",
            view.state.last_seq
        )?;
        return Ok(());
    }
    let shown = total.min(limit);
    writeln!(
        out,
        "The last {shown} of {total} decisions in the journal (head at seq {}):",
        view.state.last_seq
    )?;
    for decision in view.decisions.iter().skip(total.saturating_sub(limit)) {
        write_decision(out, decision, now)?;
    }
    Ok(())
}

fn write_decision(out: &mut dyn Write, d: &DecisionRecord, now: Timestamp) -> Result<()> {
    let after = d
        .after
        .map(|(seq, kind)| format!(", on #{seq} {kind}"))
        .unwrap_or_default();
    writeln!(out, "\n#{} {} ({} ago){after}", d.seq, d.at, age(d.at, now))?;
    for intent in &d.intents {
        writeln!(
            out,
            "  {}  [{}] {}",
            intent.what, intent.code, intent.detail
        )?;
        match &intent.outcome {
            Some(o) => writeln!(out, "    -> {} (#{}): {}", o.kind, o.seq, o.detail)?,
            None => writeln!(out, "    -> no outcome yet (in flight)")?,
        }
    }
    Ok(())
}
