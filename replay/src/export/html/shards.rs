//! A Valkey Cluster's shard failovers in the report: their table, one row
//! per shard failover, the operator's or Valkey's own, with the same
//! figures as `replay failovers` (both read [`crate::shard_failovers`]);
//! and their lines on the chart, drawn by [`super::chart`] beside
//! Replication's but in their own colour, dashed by who decided.

use std::io::{self, Write};

use logbook_journal::cluster::describe_slots;

use super::chart::Rule;
use super::sections::{mark, offset, outcome};
use super::{Esc, Page};
use crate::cluster_facts::short;
use crate::shard_failovers::{DecidedBy, Mode, NodeRef, ShardFailover, describe_bound};

fn node(n: &NodeRef) -> String {
    format!(
        "<b>{}</b> <code>{}</code>",
        Esc(n.pod.as_deref().unwrap_or("?")),
        Esc(n.node_id.as_deref().map_or("?", short))
    )
}

/// A node for a tooltip: `shop-4 (d5890238)`.
fn node_text(n: &NodeRef) -> String {
    format!(
        "{} ({})",
        n.pod.as_deref().unwrap_or("?"),
        n.node_id.as_deref().map_or("?", short)
    )
}

const fn mode_text(mode: Mode) -> &'static str {
    match mode {
        Mode::Coordinated => "coordinated",
        Mode::Force => "forced (FORCE)",
        Mode::Takeover => "takeover (TAKEOVER)",
        Mode::Election => "Valkey's election",
    }
}

/// Each shard failover as a line on the chart, linked to its row: drawn
/// when the new primary was first seen claiming the slots (the shard
/// served again), else — not served by the end of the journal — at the
/// decision. Labelled with the slots and the new primary; the tooltip
/// gives old → new primary and who decided, how and when.
pub fn shard_rules(page: &Page<'_>, records: &[ShardFailover]) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (n, r) in records.iter().enumerate() {
        let Some(at) = r
            .serving
            .as_ref()
            .map(|m| m.at)
            .or_else(|| r.decided.as_ref().map(|d| d.at))
        else {
            continue;
        };
        let number = n.saturating_add(1);
        let slots = describe_slots(&r.slots);
        let decided = match (&r.decided, r.decided_by) {
            (Some(d), _) => format!(
                "decided by the operator, {} (#{} {}, {})",
                mode_text(r.mode),
                d.seq,
                d.reason,
                page.clock.short(d.at)
            ),
            (None, DecidedBy::Valkey | DecidedBy::Operator) => {
                "decided by Valkey's election, seen in the node reports".to_owned()
            }
        };
        let serving = r.serving.as_ref().map_or_else(
            || "not serving by the end of the journal".to_owned(),
            |m| format!("serving at #{} ({})", m.seq, page.clock.short(m.at)),
        );
        rules.push(Rule {
            at,
            class: format!(
                "marker-shard {}",
                match r.decided_by {
                    DecidedBy::Operator => "kind-operator",
                    DecidedBy::Valkey => "kind-election",
                }
            ),
            id: format!("marker-shard-failover-{number}"),
            row: format!("failover-{number}"),
            title: format!(
                "shard failover {number}: slots {slots} ({} slots): {} → {}; {decided}; {serving}",
                r.slot_count,
                node_text(&r.old_primary),
                node_text(&r.new_primary),
            ),
            label: format!("slots {slots}"),
            to: r.new_primary.pod.clone().unwrap_or_else(|| "?".to_owned()),
        });
    }
    rules
}

/// Writes the section.
pub fn write_shard_failovers(
    out: &mut dyn Write,
    page: &Page<'_>,
    records: &[ShardFailover],
) -> io::Result<()> {
    writeln!(
        out,
        "<section id=\"failovers\"><h2>Shard failovers <span class=\"count\">{}</span></h2>",
        records.len()
    )?;
    writeln!(
        out,
        "<div class=\"scroll\"><table class=\"failovers\"><thead><tr><th>#</th><th>shard (slots)</th><th>old → new primary</th><th>decided by</th><th>detected</th><th>candidates</th><th>config epoch</th><th>serving again</th><th>detection → serving</th><th>outcome</th><th>lost writes (bound)</th></tr></thead><tbody>"
    )?;
    for (n, r) in records.iter().enumerate() {
        let number = n.saturating_add(1);
        let mode = mode_text(r.mode);
        let decided = match (&r.decided, r.decided_by) {
            (Some(d), _) => format!(
                "operator, {mode}: <a href=\"#decision-{seq}\">#{seq}</a> {} <code>{}</code><div class=\"what\">{}</div>",
                page.clock.html(d.at),
                Esc(&d.reason),
                Esc(&d.detail),
                seq = d.seq
            ),
            (None, DecidedBy::Valkey | DecidedBy::Operator) => {
                format!("Valkey ({mode}), observed in the node reports")
            }
        };
        let detected = r.detected.as_ref().map_or_else(
            || "<span class=\"none\">no journaled sign</span>".to_owned(),
            |s| {
                format!(
                    "<a href=\"#event-{seq}\">#{seq}</a> {}<div class=\"what\">{}</div>",
                    page.clock.html(s.at),
                    Esc(&s.what),
                    seq = s.seq
                )
            },
        );
        let candidates: Vec<String> = r
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "<li class=\"{}\"><b>{}</b> offset {}{}{}</li>",
                    if r.new_primary.pod.as_deref() == Some(c.pod.as_str()) {
                        "chosen"
                    } else {
                        ""
                    },
                    Esc(&c.pod),
                    offset(c.offset),
                    if c.reachable == Some(false) {
                        ", unreachable"
                    } else {
                        ""
                    },
                    if c.eligible == Some(false) {
                        ", not eligible"
                    } else {
                        ""
                    },
                )
            })
            .collect();
        writeln!(
            out,
            "<tr id=\"failover-{number}\" class=\"{}\"><td>{number}</td><td>{} <span class=\"what\">({} slots)</span></td><td class=\"pair\">{} →<br>{}</td><td class=\"decided\">{decided}</td><td>{detected}</td><td class=\"candidates\"><ul class=\"plain\">{}</ul></td><td>{} <span class=\"what\">(was {})</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            match r.decided_by {
                DecidedBy::Operator => "kind-automatic",
                DecidedBy::Valkey => "kind-observed",
            },
            Esc(&describe_slots(&r.slots)),
            r.slot_count,
            node(&r.old_primary),
            node(&r.new_primary),
            candidates.concat(),
            offset(r.config_epoch),
            offset(r.old_config_epoch),
            mark(page, r.serving.as_ref()),
            r.detection_to_serving_ms
                .map_or_else(|| "unknown".to_owned(), |ms| format!("{ms} ms")),
            r.outcome
                .as_ref()
                .map_or_else(|| "observed".to_owned(), outcome),
            Esc(&describe_bound(r)),
        )?;
    }
    writeln!(out, "</tbody></table></div></section>")
}
