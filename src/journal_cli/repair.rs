//! `logbook journal repair`: prints what is wrong with one stream and the
//! safe repairs with exactly what each loses; with `--apply <repair>`
//! performs that one, verifies again and prints the result.
//!
//! The plan is recomputed right before applying, so a repair listed by an
//! earlier dry run is refused when the journal has moved since. Writes go
//! through the `JournalStore` trait only; a writer racing the repair (an
//! operator still running) makes the store's compare-and-swap fail, and
//! the error says how far the repair got.

use std::io::Write;

use logbook_journal::reader;
use logbook_journal::verify::{self, RepairOutcome};
use logbook_journal::{ChainHash, Head, JournalStore, StreamId, Timestamp};

use super::RepairArgs;
use super::diagnose::{Diagnosis, Span, diagnose, head_record_at_fault, measure};
use super::plan::{Facts, Plan, Problem, Repair, RepairKind, plan};
use crate::cli_error::{Error, Result};
use crate::journal_source::{Journal, StreamInfo};
use crate::journal_store::AnyStore;

/// A diagnosed stream with its plan and the spans its repairs remove.
struct Examined {
    facts: Facts,
    plan: Plan,
    /// The span each listed repair removes, in the plan's order.
    spans: Vec<Option<Span>>,
}

/// Runs `logbook journal repair`.
///
/// # Errors
/// [`Error::StreamRequired`], [`Error::NoSuchStream`],
/// [`Error::AmbiguousCluster`] when the stream cannot be chosen;
/// [`Error::NoSafeRepair`] when nothing applies (after printing what a
/// person can do); [`Error::RepairNotApplicable`] when `--apply` names a
/// repair that does not apply now; [`Error::RepairFailed`];
/// [`Error::StillBroken`] when the stream still fails verification after
/// the repair; store and API failures.
pub async fn run(journal: &Journal, args: &RepairArgs, out: &mut dyn Write) -> Result<()> {
    let info = journal
        .resolve(args.source.cluster.as_deref(), args.stream.as_deref())
        .await?;
    let stream = &info.stream;
    writeln!(out, "journal: {}", journal.place())?;
    writeln!(out, "stream:  {}", info.describe())?;
    let store = journal.repair_store(stream).await?;
    let examined = examine(journal, &store, stream, out).await?;
    let Some(asked) = args.apply else {
        return conclude_dry_run(journal, &info, &examined, out);
    };
    let applicable: Vec<&Repair> = match &examined.plan {
        Plan::Repairs(repairs) => repairs.iter().collect(),
        Plan::Clean | Plan::Nothing(_) => Vec::new(),
    };
    let Some(index) = applicable.iter().position(|r| r.kind == asked) else {
        return Err(Error::RepairNotApplicable {
            journal: journal.place(),
            stream: stream.to_string(),
            asked: asked.to_string(),
            applicable: if applicable.is_empty() {
                "none".to_owned()
            } else {
                applicable
                    .iter()
                    .map(|r| r.kind.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        });
    };
    let span = examined.spans.get(index).cloned().flatten();
    writeln!(out)?;
    writeln!(out, "applying {asked} ...")?;
    apply(journal, &store, stream, asked, &examined.facts, span, out).await?;
    writeln!(out)?;
    writeln!(out, "after the repair:")?;
    let after = examine(journal, &store, stream, out).await?;
    let loaded = reader::load_state(&store, stream).await;
    match (&after.plan, loaded) {
        (Plan::Clean, Ok(loaded)) => {
            writeln!(
                out,
                "the projection loads: {} event(s) folded{}, up to seq {}",
                loaded.folded,
                loaded
                    .snapshot_seq
                    .map(|s| format!(" after the snapshot at seq {s}"))
                    .unwrap_or_default(),
                loaded.state.last_seq
            )?;
            writeln!(
                out,
                "repaired. The operator re-observes the cluster when it next loads the journal."
            )?;
            Ok(())
        }
        (Plan::Clean, Err(e)) => Err(Error::StillBroken {
            journal: journal.place(),
            stream: stream.to_string(),
            repair: asked.to_string(),
            problem: format!("verifies, but the projection does not load: {e}"),
        }),
        (Plan::Repairs(_) | Plan::Nothing(_), _) => {
            conclude_dry_run(journal, &info, &after, out).ok();
            Err(Error::StillBroken {
                journal: journal.place(),
                stream: stream.to_string(),
                repair: asked.to_string(),
                problem: after
                    .facts
                    .problem
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), describe_problem),
            })
        }
    }
}

fn describe_problem(problem: &Problem) -> String {
    match problem {
        Problem::Frame { seq, kind, detail } => format!("seq={seq} {kind:?}: {detail}"),
        Problem::HeadUnreadable { detail } => format!("head unreadable: {detail}"),
        Problem::SnapshotUnreadable { detail } => format!("snapshot unreadable: {detail}"),
    }
}

/// Diagnoses the stream and prints the diagnosis and the plan.
async fn examine(
    journal: &Journal,
    store: &AnyStore,
    stream: &StreamId,
    out: &mut dyn Write,
) -> Result<Examined> {
    let head_problem = journal.head_problem(stream).await?;
    let Diagnosis { facts, report } = diagnose(store, stream, head_problem)
        .await
        .map_err(|e| journal.store_error(e))?;
    let snapshot = match &facts.snapshot {
        None if matches!(facts.problem, Some(Problem::SnapshotUnreadable { .. })) => {
            "unreadable".to_owned()
        }
        None => "none".to_owned(),
        Some(s) if s.intact => format!("seq {}", s.seq),
        Some(s) => format!("seq {} (damaged)", s.seq),
    };
    if !matches!(facts.problem, Some(Problem::HeadUnreadable { .. })) {
        writeln!(
            out,
            "head:    seq {}, snapshot {snapshot}, first stored seq {}",
            facts.head.seq,
            facts
                .floor
                .map_or_else(|| "-".to_owned(), |f| f.to_string())
        )?;
    }
    match &facts.problem {
        None => writeln!(
            out,
            "verify:  ok, {} event(s) checked",
            report.map_or(0, |r| r.events_checked)
        )?,
        Some(problem @ Problem::Frame { seq, kind, .. }) => {
            let in_head = head_record_at_fault(store, stream, *seq, *kind, facts.head)
                .await
                .map_err(|e| journal.store_error(e))?;
            let at = journal
                .location(stream, *seq, *kind, in_head)
                .await
                .map(|l| format!(" in {l}"))
                .unwrap_or_default();
            let text = describe_problem(problem);
            let (head, tail) = text.split_once(':').unwrap_or((text.as_str(), ""));
            writeln!(out, "problem: {head}{at}:{tail}")?;
        }
        Some(problem) => writeln!(out, "problem: {}", describe_problem(problem))?,
    }
    let plan = plan(&facts);
    let mut spans = Vec::new();
    match &plan {
        Plan::Clean => writeln!(out, "nothing to repair.")?,
        Plan::Repairs(repairs) => {
            writeln!(out, "safe repairs (each is an alternative; --apply one):")?;
            for repair in repairs {
                let span = match repair.removes {
                    Some((first, last)) => {
                        let prev = prev_of(&facts, repair, first);
                        Some(
                            measure(store, stream, first, last, prev)
                                .await
                                .map_err(|e| journal.store_error(e))?,
                        )
                    }
                    None => None,
                };
                print_repair(repair, &facts, span.as_ref(), out)?;
                spans.push(span);
            }
        }
        Plan::Nothing(why) => {
            writeln!(out, "no safe repair applies: {why}")?;
            writeln!(out, "what a person can do:")?;
            for line in journal.manual_options(stream) {
                writeln!(out, "  {line}")?;
            }
        }
    }
    Ok(Examined { facts, plan, spans })
}

/// The verified hash before `first`, when known, to decode the removed range.
fn prev_of(facts: &Facts, repair: &Repair, first: u64) -> Option<ChainHash> {
    match repair.kind {
        RepairKind::TruncateTornTail | RepairKind::TruncateFrom(_) => facts
            .anchor
            .filter(|a| a.seq.saturating_add(1) == first)
            .map(|a| a.hash),
        RepairKind::RebuildFromSnapshot | RepairKind::RewriteSnapshot => {
            (first == 1).then_some(ChainHash::GENESIS)
        }
    }
}

/// `seq 9` or `seqs 9..=12`.
fn seq_range(first: u64, last: u64) -> String {
    if first == last {
        format!("seq {first}")
    } else {
        format!("seqs {first}..={last}")
    }
}

fn time(t: Timestamp) -> String {
    t.to_datetime().map_or_else(
        || format!("{} µs after the epoch", t.as_micros()),
        |d| d.to_string(),
    )
}

/// `16 events, from <t> to <t> (1 unreadable)`.
fn describe_span(span: &Span) -> String {
    let times = match (span.earliest, span.latest) {
        (Some(a), Some(b)) if a == b => format!(", at {}", time(a)),
        (Some(a), Some(b)) => format!(", from {} to {}", time(a), time(b)),
        _ => String::new(),
    };
    let unreadable = span.count.saturating_sub(span.readable);
    let note = match unreadable {
        0 => String::new(),
        n if n == span.count => " (none readable)".to_owned(),
        n => format!(" ({n} unreadable)"),
    };
    format!("{} event(s){times}{note}", span.count)
}

fn print_repair(
    repair: &Repair,
    facts: &Facts,
    span: Option<&Span>,
    out: &mut dyn Write,
) -> Result<()> {
    let removed = span.map(describe_span).unwrap_or_default();
    let range = repair
        .removes
        .map(|(a, b)| seq_range(a, b))
        .unwrap_or_default();
    writeln!(out, "  {}", repair.kind)?;
    match repair.kind {
        RepairKind::TruncateTornTail => {
            writeln!(
                out,
                "    removes {range}, the last frame, which is partial or unreadable: {removed}"
            )?;
            writeln!(
                out,
                "    loses: that event, whose write never completed; the head becomes seq {}",
                repair.head_after
            )?;
        }
        RepairKind::TruncateFrom(_) => {
            writeln!(out, "    removes {range} (up to the head): {removed}")?;
            writeln!(
                out,
                "    loses: those events; the head becomes seq {} and the operator \
                 re-observes the cluster after a repair",
                repair.head_after
            )?;
        }
        RepairKind::RebuildFromSnapshot => {
            let snapshot = facts.snapshot.as_ref().map_or(0, |s| s.seq);
            writeln!(
                out,
                "    removes {range}, everything the snapshot at seq {snapshot} covers: {removed}"
            )?;
            writeln!(
                out,
                "    loses: the history before the snapshot (the projection is the snapshot, \
                 which keeps its effect); the {} event(s) after it stay",
                facts.head.seq.saturating_sub(snapshot)
            )?;
        }
        RepairKind::RewriteSnapshot => {
            writeln!(
                out,
                "    replaces the damaged snapshot with one folded from the {} intact event(s)",
                facts.head.seq
            )?;
            writeln!(
                out,
                "    loses: nothing (a snapshot is a cache of the events)"
            )?;
        }
    }
    if let Some(leaves) = &repair.leaves {
        writeln!(out, "    afterwards: {leaves}")?;
    }
    Ok(())
}

/// The end of a dry run: how to apply, or why nothing can be.
fn conclude_dry_run(
    journal: &Journal,
    info: &StreamInfo,
    examined: &Examined,
    out: &mut dyn Write,
) -> Result<()> {
    match &examined.plan {
        Plan::Clean => Ok(()),
        Plan::Repairs(repairs) => {
            writeln!(out, "dry run: nothing was changed. To apply a repair:")?;
            for repair in repairs {
                writeln!(
                    out,
                    "  {}",
                    journal.apply_command(&info.stream, &repair.kind.to_string())
                )?;
            }
            writeln!(
                out,
                "(stop the operator first, or it may append between the check and the repair)"
            )?;
            Ok(())
        }
        Plan::Nothing(_) => Err(Error::NoSafeRepair {
            journal: journal.place(),
            stream: info.stream.to_string(),
        }),
    }
}

/// Performs `kind`, which the plan just listed for `facts`.
async fn apply(
    journal: &Journal,
    store: &AnyStore,
    stream: &StreamId,
    kind: RepairKind,
    facts: &Facts,
    span: Option<Span>,
    out: &mut dyn Write,
) -> Result<()> {
    let failed =
        |progress: String, source: Box<dyn std::error::Error + Send + Sync>| Error::RepairFailed {
            journal: journal.place(),
            stream: stream.to_string(),
            repair: kind.to_string(),
            progress,
            source,
        };
    match kind {
        RepairKind::TruncateTornTail => match verify::repair_torn_tail(store, stream).await {
            Ok(RepairOutcome::Removed { seq, kind }) => {
                writeln!(
                    out,
                    "removed seq {seq} ({kind:?}); the head is now seq {}",
                    seq.saturating_sub(1)
                )?;
            }
            Ok(RepairOutcome::Intact) => {
                return Err(failed(
                    "nothing removed".to_owned(),
                    "the last frame verifies now (did the journal change?)".into(),
                ));
            }
            Err(e) => return Err(failed("nothing removed".to_owned(), Box::new(e))),
        },
        RepairKind::TruncateFrom(first) => {
            let Some(anchor) = facts.anchor else {
                return Err(failed(
                    "nothing removed".to_owned(),
                    "no verified event before the cut".into(),
                ));
            };
            let head = facts.head.seq;
            let hashes = span.map(|s| s.hashes).unwrap_or_default();
            // One `remove_last` per event, from the head down. Between
            // steps the head names the stored hash of its frame (or, if
            // unreadable, the anchor's): a crash part-way leaves a journal
            // whose verify points at the same cut, so the repair resumes.
            let mut seq = head;
            while seq >= first && seq > anchor.seq {
                let below = seq.saturating_sub(1);
                let new_head = if below == anchor.seq {
                    anchor
                } else {
                    Head {
                        seq: below,
                        hash: hashes.get(&below).copied().unwrap_or(anchor.hash),
                    }
                };
                if let Err(e) = store.remove_last(stream, seq, new_head).await {
                    let progress = if seq == head {
                        "nothing removed".to_owned()
                    } else {
                        format!(
                            "removed seqs {}..={head}, the head is at seq {seq}",
                            seq.saturating_add(1)
                        )
                    };
                    return Err(failed(
                        format!("{progress}; run the repair again"),
                        Box::new(e),
                    ));
                }
                seq = below;
            }
            writeln!(
                out,
                "removed {} ({} event(s)); the head is now seq {}",
                seq_range(first, head),
                head.saturating_sub(first).saturating_add(1),
                anchor.seq
            )?;
        }
        RepairKind::RebuildFromSnapshot => {
            let covered = facts.snapshot.as_ref().map_or(0, |s| s.seq);
            let removed = store
                .compact(stream, covered.saturating_add(1))
                .await
                .map_err(|e| failed("nothing removed".to_owned(), Box::new(e)))?;
            writeln!(
                out,
                "removed {removed} event(s) up to the snapshot at seq {covered}; the journal now starts at seq {}",
                covered.saturating_add(1)
            )?;
        }
        RepairKind::RewriteSnapshot => {
            let state = reader::load_state_from_start(store, stream)
                .await
                .map_err(|e| failed("nothing written".to_owned(), Box::new(e)))?;
            logbook_journal::snapshot::save(store, stream, &state)
                .await
                .map_err(|e| failed("nothing written".to_owned(), Box::new(e)))?;
            writeln!(out, "wrote a new snapshot at seq {}", state.last_seq)?;
        }
    }
    Ok(())
}
