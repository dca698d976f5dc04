//! The failovers table of a Valkey Cluster's report: one row per shard
//! failover, the operator's or Valkey's own, with the same figures as
//! `replay failovers` (both read [`crate::shard_failovers`]).

use std::io::{self, Write};

use logbook_journal::cluster::describe_slots;

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
        let mode = match r.mode {
            Mode::Coordinated => "coordinated",
            Mode::Force => "forced (FORCE)",
            Mode::Takeover => "takeover (TAKEOVER)",
            Mode::Election => "Valkey's election",
        };
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
