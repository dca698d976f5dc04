//! Shard failovers for people: one block per failover, every figure as
//! journaled, and what the journal cannot know said so.

use std::io::Write;

use logbook_journal::cluster::describe_slots;

use super::{DecidedBy, Mode, NodeRef, ShardFailover};
use crate::cluster_facts::short;
use crate::failovers::{Mark, Outcome};

fn node(n: &NodeRef) -> String {
    match (&n.pod, &n.node_id) {
        (Some(pod), Some(id)) => format!("{pod} ({})", short(id)),
        (Some(pod), None) => format!("{pod} (node not reported)"),
        (None, Some(id)) => format!("node {} (pod unknown)", short(id)),
        (None, None) => "?".to_owned(),
    }
}

fn mark(m: Option<&Mark>) -> String {
    m.map_or_else(
        || "-".to_owned(),
        |m| format!("{} (#{}) {}", m.at, m.seq, m.what),
    )
}

const fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Coordinated => "coordinated CLUSTER FAILOVER",
        Mode::Force => "CLUSTER FAILOVER FORCE",
        Mode::Takeover => "CLUSTER FAILOVER TAKEOVER",
        Mode::Election => "Valkey's own election",
    }
}

/// The lost-writes bound for people, or why it is unknown.
#[must_use]
pub fn describe_bound(r: &ShardFailover) -> String {
    let offset = |o: Option<u64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
    match (r.lost_bytes_bound, r.old_offset, r.new_offset) {
        (Some(b), Some(o), Some(n)) => {
            let failure = r
                .detected
                .as_ref()
                .map(|d| d.at)
                .or(r.decided.as_ref().map(|d| d.at))
                .or(r.serving.as_ref().map(|s| s.at));
            let age = match (r.old_offset_at, failure) {
                (Some(seen), Some(failed)) => format!(
                    "as journaled {} before its failure",
                    crate::export::html::duration(
                        failed.millis_since(seen).max(0).saturating_mul(1000)
                    )
                ),
                (Some(_), None) => "as last journaled".to_owned(),
                (None, _) => "from a snapshot, when journaled not known".to_owned(),
            };
            let new = match r.decided_by {
                DecidedBy::Operator => "at the promotion",
                DecidedBy::Valkey => "as last journaled before it served",
            };
            format!(
                "{b} bytes the old primary had are missing on the new one (old primary at offset {o} {age}, new primary at {n} {new}); writes it took after that offset are not in the journal"
            )
        }
        _ => format!(
            "unknown (old primary offset {}, new primary offset {}: not both journaled)",
            offset(r.old_offset),
            offset(r.new_offset)
        ),
    }
}

/// Writes the shard failovers for people.
///
/// # Errors
/// Output errors.
pub fn write_text(out: &mut dyn Write, records: &[ShardFailover]) -> std::io::Result<()> {
    for (n, r) in records.iter().enumerate() {
        writeln!(
            out,
            "shard failover {}: slots {} ({} slots) {} -> {}",
            n.saturating_add(1),
            describe_slots(&r.slots),
            r.slot_count,
            node(&r.old_primary),
            node(&r.new_primary),
        )?;
        match &r.decided {
            Some(d) => writeln!(
                out,
                "  decided by:         the operator, {} {} (#{} at {}) {}: {}",
                r.cause.as_str(),
                mode(r.mode),
                d.seq,
                d.at,
                d.reason,
                d.detail
            )?,
            None => writeln!(
                out,
                "  decided by:         Valkey ({}), observed in the node reports",
                mode(r.mode)
            )?,
        }
        if let Some(d) = &r.redecided {
            writeln!(
                out,
                "  decided again:      #{} at {} {}: {} (the first cut by a takeover, abandoned)",
                d.seq, d.at, d.reason, d.detail
            )?;
        }
        match &r.detected {
            Some(s) => writeln!(
                out,
                "  detected:           {} (#{}) {} [{}]",
                s.at,
                s.seq,
                s.what,
                serde_json::to_value(s.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )?,
            None => writeln!(
                out,
                "  detected:           - (no journaled sign of the old primary's failure)"
            )?,
        }
        for c in &r.candidates {
            writeln!(
                out,
                "    candidate {:<12} offset {:<12} {}{}{}",
                c.pod,
                c.offset.map_or_else(|| "-".to_owned(), |o| o.to_string()),
                c.offset_at.map_or_else(
                    || "(when: not journaled here)".to_owned(),
                    |t| format!("(journaled {t})")
                ),
                match c.reachable {
                    Some(true) => ", reachable",
                    Some(false) => ", unreachable",
                    None => "",
                },
                match c.eligible {
                    Some(true) => ", eligible",
                    Some(false) => ", not eligible",
                    None => "",
                },
            )?;
        }
        writeln!(
            out,
            "  config epoch:       {} (old primary's {})",
            r.config_epoch
                .map_or_else(|| "-".to_owned(), |e| e.to_string()),
            r.old_config_epoch
                .map_or_else(|| "-".to_owned(), |e| e.to_string())
        )?;
        writeln!(out, "  serving again:      {}", mark(r.serving.as_ref()))?;
        writeln!(
            out,
            "  detection->serving: {}",
            r.detection_to_serving_ms
                .map_or_else(|| "unknown".to_owned(), |ms| format!("{ms} ms"))
        )?;
        if let Some(o) = &r.outcome {
            writeln!(
                out,
                "  outcome:            {}",
                match o {
                    Outcome::Completed => "completed".to_owned(),
                    Outcome::Failed(e) => format!("failed: {e}"),
                    Outcome::Abandoned(e) => format!("abandoned: {e}"),
                    Outcome::Pending => "no outcome yet".to_owned(),
                }
            )?;
        }
        writeln!(out, "  lost writes bound:  {}", describe_bound(r))?;
    }
    Ok(())
}
