//! Reshards for people: one block per reshard with its migrations, then
//! the settled slots and the jobs no decision names; every figure as
//! journaled, and what the journal cannot know said so.

use std::io::Write;

use logbook_journal::cluster::describe_slots;

use super::{Job, Mechanism, Migration, MoveOutcome, Reshard, ReshardOutcome, Reshards};
use crate::cluster_facts::short;
use crate::failovers::{Mark, Outcome};
use crate::shard_failovers::NodeRef;

fn node(n: &NodeRef) -> String {
    match (&n.pod, &n.node_id) {
        (Some(pod), Some(id)) => format!("{pod} ({})", short(id)),
        (Some(pod), None) => pod.clone(),
        (None, Some(id)) => format!("node {} (pod unknown)", short(id)),
        (None, None) => "?".to_owned(),
    }
}

fn mark(m: Option<&Mark>) -> String {
    m.map_or_else(|| "-".to_owned(), |m| format!("{} (#{})", m.at, m.seq))
}

/// A reshard's outcome in a few words.
#[must_use]
pub fn describe_outcome(outcome: &ReshardOutcome) -> String {
    match outcome {
        ReshardOutcome::Balanced { seq, at } => format!("balanced at #{seq} ({at})"),
        ReshardOutcome::Superseded { generation, seq } => {
            format!("superseded by generation {generation}'s reshard at #{seq}, before it balanced")
        }
        ReshardOutcome::InProgress => "in progress".to_owned(),
        ReshardOutcome::Failing { given_up, pairs } => {
            let what: Vec<String> = pairs
                .iter()
                .map(|p| {
                    format!(
                        "{} -> {} failed {} time(s) in a row ({} with the last error: {})",
                        node(&p.from),
                        node(&p.to),
                        p.failures,
                        p.same_error,
                        p.last_error
                    )
                })
                .collect();
            let state = match given_up {
                Some(true) => "failing, given up under this generation",
                Some(false) => "failing, to be retried",
                None => "failing",
            };
            format!("{state}: {}", what.join("; "))
        }
    }
}

/// A move's outcome in a line.
#[must_use]
pub fn describe_move(outcome: &MoveOutcome) -> String {
    match outcome {
        MoveOutcome::Succeeded { detail } => format!("succeeded: {detail}"),
        MoveOutcome::Failed { error, retryable } => format!(
            "failed{}: {error}",
            if *retryable { " (retryable)" } else { "" }
        ),
        MoveOutcome::Ambiguous {
            resolved,
            outcome,
            detail,
        } => format!(
            "ambiguous (the job failed after its source unpaused: it may have moved the slots and lost writes), resolved by ownership: {resolved}; the intent {outcome}: {detail}"
        ),
        MoveOutcome::Abandoned { reason } => format!("abandoned: {reason}"),
        MoveOutcome::LeftRunning { detail } => {
            format!("handed back, its job left running (followed by the next decision): {detail}")
        }
        MoveOutcome::Pending => "no outcome yet".to_owned(),
    }
}

fn write_phases(out: &mut dyn Write, job: &Job, indent: &str) -> std::io::Result<()> {
    for p in &job.phases {
        writeln!(
            out,
            "{indent}{:<10} {:<6} on {:<12} {}{}{}",
            p.when(),
            p.side,
            p.pod,
            p.state,
            if p.remaining_repl_size > 0 {
                format!(", {} bytes of writes still to send", p.remaining_repl_size)
            } else {
                String::new()
            },
            if p.message.is_empty() {
                String::new()
            } else {
                format!(": {}", p.message)
            }
        )?;
    }
    Ok(())
}

fn write_migration(out: &mut dyn Write, n: usize, m: &Migration) -> std::io::Result<()> {
    writeln!(
        out,
        "  migration {n}: slots {} ({} slots) {} -> {}",
        describe_slots(&m.slots),
        m.slot_count,
        node(&m.source),
        node(&m.target)
    )?;
    writeln!(
        out,
        "    decided:     {} (#{}){}: {}",
        m.decided.at,
        m.decided.seq,
        if m.adopted {
            ", waiting for a job already under way"
        } else {
            ""
        },
        m.decided.what
    )?;
    match m.mechanism {
        Mechanism::AtomicSlotMigration => {
            for job in &m.jobs {
                writeln!(
                    out,
                    "    job {} (atomic slot migration), as polled (+ms since issued by the executor, #seq when seen by a probe):",
                    short(&job.name)
                )?;
                write_phases(out, job, "      ")?;
            }
        }
        Mechanism::NotObserved => writeln!(
            out,
            "    job:         {}",
            if m.outcome == MoveOutcome::Pending {
                "none observed yet"
            } else {
                "none observed (the outcome's detail says how the slots moved)"
            }
        )?,
    }
    if let Some(p) = &m.pause {
        writeln!(out, "    write pause: {}", p.text)?;
    }
    writeln!(out, "    ended:       {}", mark(m.ended.as_ref()))?;
    writeln!(out, "    outcome:     {}", describe_move(&m.outcome))?;
    if let Some(owned) = m.target_owned_after {
        writeln!(
            out,
            "    target owns: {owned} of its {} slots right after",
            m.slot_count
        )?;
    }
    writeln!(
        out,
        "    retries:     {}",
        if m.retries == 0 {
            "none (no earlier failure of this source -> target under this generation)".to_owned()
        } else {
            format!(
                "{} earlier failure(s) of this source -> target under this generation",
                m.retries
            )
        }
    )
}

fn write_reshard(out: &mut dyn Write, r: &Reshard) -> std::io::Result<()> {
    writeln!(
        out,
        "reshard of generation {}: {} shards wanted, {} slots planned, {} moved; started {} (#{}), ended {}: {}",
        r.generation,
        r.shards,
        r.slots_planned,
        r.slots_moved,
        r.started.at,
        r.started.seq,
        mark(r.ended.as_ref()),
        describe_outcome(&r.outcome)
    )?;
    writeln!(out, "  plan: {}", r.started.what)?;
    for (n, m) in r.migrations.iter().enumerate() {
        write_migration(out, n.saturating_add(1), m)?;
    }
    Ok(())
}

/// Writes the reshards, settled slots and unnamed jobs for people.
///
/// # Errors
/// Output errors.
pub fn write_text(out: &mut dyn Write, reshards: &Reshards) -> std::io::Result<()> {
    if reshards.records.is_empty() {
        writeln!(
            out,
            "no reshards: the journal holds no slot move decided by the operator"
        )?;
    }
    for r in &reshards.records {
        write_reshard(out, r)?;
    }
    if !reshards.settles.is_empty() {
        writeln!(out, "settled slots (left half-moved):")?;
    }
    for s in &reshards.settles {
        writeln!(
            out,
            "  slot {}: {}; decided {} (#{}) {}{}",
            s.slot,
            s.action,
            s.decided.at,
            s.decided.seq,
            s.decided.what,
            if s.markers.is_empty() {
                String::new()
            } else {
                format!(" [marked: {}]", s.markers.join(", "))
            }
        )?;
        writeln!(
            out,
            "    {} at {}{}",
            match &s.outcome {
                Outcome::Completed => "done".to_owned(),
                Outcome::Failed(e) => format!("failed: {e}"),
                Outcome::Abandoned(e) => format!("abandoned: {e}"),
                Outcome::Pending => "no outcome yet".to_owned(),
            },
            mark(s.ended.as_ref()),
            s.owner_after
                .as_ref()
                .map(|o| format!("; owned by {o} after"))
                .unwrap_or_default()
        )?;
    }
    let unplanned = reshards.unplanned();
    if !unplanned.is_empty() {
        writeln!(
            out,
            "migration jobs no decision in this journal names (another tool's or a person's, or decided before the journal's start):"
        )?;
    }
    for job in unplanned {
        writeln!(
            out,
            "  job {}: slots {} {} -> {}{}",
            short(&job.name),
            describe_slots(&job.slots),
            node(&job.source),
            node(&job.target),
            if job.before_start {
                " (under way before the journal's first event)"
            } else {
                ""
            }
        )?;
        write_phases(out, job, "    ")?;
    }
    Ok(())
}
