//! The page around the chart: the document, its header, the failover and
//! reshard tables and the event list.

use std::io::{self, Write};

use super::collect::{RECENT_OBSERVATIONS, RowKind};
use super::{Esc, Page, assets, chart, decisions, duration};
use crate::failovers::{Failover, Kind, Mark, Outcome};

/// Writes the whole document.
pub fn write_page(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    let c = page.collect;
    let start = c.start.as_ref();
    let name = start
        .and_then(|s| s.cluster.clone())
        .or_else(|| c.name_from_pods())
        .or_else(|| start.map(|s| format!("stream {}", s.stream)))
        .unwrap_or_else(|| "journal".to_owned());
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">")?;
    writeln!(
        out,
        "<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(out, "<title>Logbook report: {}</title>", Esc(&name))?;
    writeln!(out, "<style>{}</style></head>", assets::CSS)?;
    writeln!(out, "<body>")?;
    write_header(out, page, &name)?;
    writeln!(out, "<main>")?;
    writeln!(out, "<section id=\"timeline-section\"><h2>Timeline</h2>")?;
    chart::write_chart(out, page)?;
    writeln!(out, "</section>")?;
    write_failovers(out, page)?;
    write_reshards(out, page)?;
    decisions::write_audit(out, page)?;
    decisions::write_decisions(out, page)?;
    write_events(out, page)?;
    writeln!(out, "</main>")?;
    writeln!(
        out,
        "<footer>Written by <code>logbook replay export --format html</code> from the journal alone; every event shown verified (CRC and hash chain). Decisions recomputed with {}.</footer>",
        Esc(&page.build)
    )?;
    writeln!(out, "<script>{}</script>", assets::SCRIPT)?;
    writeln!(out, "</body>\n</html>")
}

fn write_header(out: &mut dyn Write, page: &Page<'_>, name: &str) -> io::Result<()> {
    let c = page.collect;
    let start = c.start.as_ref();
    writeln!(out, "<header class=\"top\">")?;
    writeln!(
        out,
        "<h1><span class=\"brand\">Logbook</span> journal report <span class=\"name\">{}</span></h1>",
        Esc(name)
    )?;
    writeln!(out, "<dl class=\"facts\">")?;
    let fact = |out: &mut dyn Write, term: &str, value: &str| -> io::Result<()> {
        writeln!(out, "<div><dt>{term}</dt><dd>{value}</dd></div>")
    };
    fact(
        out,
        "Cluster",
        &match (start.and_then(|s| s.cluster.as_deref()), c.name_from_pods()) {
            (Some(known), _) => Esc(known).to_string(),
            // A sled journal records no name; the pods' do.
            (None, Some(name)) => format!(
                "{} <span class=\"what\">(from its pods' names; the namespace is not journaled)</span>",
                Esc(&name)
            ),
            (None, None) => "unknown".to_owned(),
        },
    )?;
    fact(
        out,
        "Stream",
        &start.map_or_else(String::new, |s| {
            format!("<code>{}</code>", Esc(s.stream.as_str()))
        }),
    )?;
    fact(
        out,
        "Source",
        &start.map_or_else(String::new, |s| Esc(&s.place).to_string()),
    )?;
    let events = match (c.first, c.last) {
        (Some((a, _)), Some((b, _))) => format!("{} (seq {a} – {b})", c.events),
        _ => "none".to_owned(),
    };
    fact(out, "Events", &events)?;
    if let (Some((_, a)), Some((_, b))) = (c.first, c.last) {
        fact(out, "First", &page.clock.html(a))?;
        fact(out, "Last", &page.clock.html(b))?;
        fact(out, "Span", &duration(b.0.saturating_sub(a.0)))?;
    }
    let findings = page.audit.findings.len();
    fact(
        out,
        "Audit",
        &if findings == 0 {
            "<a class=\"badge ok\" href=\"#audit\">clean</a>".to_owned()
        } else {
            format!("<a class=\"badge bad\" href=\"#audit\">{findings} finding(s)</a>")
        },
    )?;
    let (mut failovers, mut switchovers) = (c.shard_failovers().len(), 0usize);
    for f in c.failovers() {
        match f.kind {
            Kind::Automatic | Kind::Observed | Kind::Requested | Kind::Sentinel => {
                failovers = failovers.saturating_add(1);
            }
            Kind::Planned => switchovers = switchovers.saturating_add(1),
        }
    }
    fact(
        out,
        "Primary changes",
        &format!("<a href=\"#failovers\">{failovers} failover(s), {switchovers} switchover(s)</a>"),
    )?;
    let intents: usize = c.decisions.iter().map(|d| d.intents.len()).sum();
    fact(
        out,
        "Decisions",
        &format!(
            "<a href=\"#decisions\">{} ({intents} intents)</a>",
            c.decisions.len()
        ),
    )?;
    fact(out, "Decider build", &Esc(&page.build).to_string())?;
    writeln!(out, "</dl>")?;
    if let Some(seq) = start.and_then(|s| s.from_snapshot) {
        writeln!(
            out,
            "<p class=\"note\">Events up to seq {seq} were compacted away: this report starts from the snapshot at seq {seq}.</p>"
        )?;
    }
    if let Some((seq, why)) = &c.damaged {
        writeln!(
            out,
            "<p class=\"banner\">The journal does not verify at seq {seq}: {}. This report covers the events before it; <code>logbook replay verify</code> names the first broken link.</p>",
            Esc(why)
        )?;
    }
    writeln!(
        out,
        "<nav><a href=\"#timeline-section\">Timeline</a><a href=\"#failovers\">Failovers</a><a href=\"#reshards\">Reshards</a><a href=\"#audit\">Audit</a><a href=\"#decisions\">Decisions</a><a href=\"#events\">Events</a></nav>"
    )?;
    writeln!(out, "</header>")
}

/// A journal point in a cell: seq (linked), time, and what it says.
pub(super) fn mark(page: &Page<'_>, m: Option<&Mark>) -> String {
    m.map_or_else(
        || "<span class=\"none\">–</span>".to_owned(),
        |m| {
            format!(
                "<a href=\"#event-{seq}\">#{seq}</a> {}<div class=\"what\">{}</div>",
                page.clock.html(m.at),
                Esc(&m.what),
                seq = m.seq
            )
        },
    )
}

pub(super) fn offset(o: Option<u64>) -> String {
    o.map_or_else(|| "–".to_owned(), |o| o.to_string())
}

pub(super) fn outcome(o: &Outcome) -> String {
    match o {
        Outcome::Completed => "<span class=\"ok\">completed</span>".to_owned(),
        Outcome::Failed(e) => format!("<span class=\"bad\">failed</span>: {}", Esc(e)),
        Outcome::Abandoned(e) => format!("<span class=\"warn\">abandoned</span>: {}", Esc(e)),
        Outcome::Pending => "<span class=\"warn\">no outcome yet</span>".to_owned(),
    }
}

fn write_failovers(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    let records = page.collect.failovers();
    let shards = page.collect.shard_failovers();
    if !shards.is_empty() && records.is_empty() {
        return super::shards::write_shard_failovers(out, page, shards);
    }
    writeln!(
        out,
        "<section id=\"failovers\"><h2>Failovers <span class=\"count\">{}</span></h2>",
        records.len()
    )?;
    if records.is_empty() {
        return writeln!(
            out,
            "<p class=\"none\">none: the primary never changed hands in this journal.</p></section>"
        );
    }
    writeln!(
        out,
        "<div class=\"scroll\"><table class=\"failovers\"><thead><tr><th>#</th><th>kind</th><th>old → new primary</th><th>last seen healthy</th><th>failure observed</th><th>decided</th><th>candidates</th><th>promoted</th><th>confirmed</th><th>outcome</th><th>old primary back</th><th>lost writes (bound)</th></tr></thead><tbody>"
    )?;
    for (n, f) in records.iter().enumerate() {
        write_failover_row(out, page, n.saturating_add(1), f)?;
    }
    writeln!(out, "</tbody></table></div></section>")
}

fn write_failover_row(
    out: &mut dyn Write,
    page: &Page<'_>,
    number: usize,
    f: &Failover,
) -> io::Result<()> {
    let kind = match f.kind {
        Kind::Automatic => "automatic",
        Kind::Planned => "planned (switchover)",
        Kind::Observed => "observed (not decided here)",
        Kind::Requested => "requested (operator-driven on request)",
        Kind::Sentinel => "Sentinel (decided by the Sentinels' vote)",
    };
    let decided = f.decided.as_ref().map_or_else(
        || "<span class=\"none\">not decided by the operator</span>".to_owned(),
        |d| {
            let mut facts = Vec::new();
            if let Some(death) = d.death {
                facts.push(if death { "death" } else { "slowness" }.to_owned());
            }
            if let Some(n) = d.consecutive_failures {
                facts.push(format!("{n} failed probes"));
            }
            format!(
                "<a href=\"#decision-{seq}\">#{seq}</a> {} <code>{}</code>{}<div class=\"what\">{}</div>",
                page.clock.html(d.at),
                Esc(&d.reason),
                if facts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", facts.join(", "))
                },
                Esc(&d.detail),
                seq = d.seq
            )
        },
    );
    let candidates = if f.candidates.is_empty() {
        "<span class=\"none\">–</span>".to_owned()
    } else {
        let rows: Vec<String> = f
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "<li class=\"{}\"><b>{}</b> offset {}{}{}{}</li>",
                    if c.pod == f.new_primary { "chosen" } else { "" },
                    Esc(&c.pod),
                    offset(c.offset),
                    if c.reachable { "" } else { ", unreachable" },
                    if c.same_history {
                        ""
                    } else {
                        ", other history"
                    },
                    if c.eligible { "" } else { ", not eligible" },
                )
            })
            .collect();
        format!("<ul class=\"plain\">{}</ul>", rows.concat())
    };
    let lost = match (f.lost_bytes_bound, f.old_offset, f.promoted_offset) {
        (Some(b), Some(o), Some(p)) => format!(
            "<b>{b} bytes</b><div class=\"what\">missing on the new primary: old primary at offset {o} {}, promoted at {p}; writes it took after that offset are not in the journal</div>",
            Esc(&crate::failovers::offset_age(f))
        ),
        _ => format!(
            "unknown<div class=\"what\">old primary offset {}, promoted offset {}</div>",
            offset(f.old_offset),
            offset(f.promoted_offset)
        ),
    };
    writeln!(
        out,
        "<tr id=\"failover-{number}\" class=\"{}\"><td>{number}</td><td>{kind}</td><td class=\"pair\"><b>{}</b> →<br><b>{}</b></td><td>{}</td><td>{}</td><td class=\"decided\">{decided}</td><td class=\"candidates\">{candidates}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{lost}</td></tr>",
        match f.kind {
            // A requested failover is drawn like an automatic one: the
            // same promotion, asked for by a person.
            Kind::Automatic | Kind::Requested => "kind-automatic",
            Kind::Planned => "kind-planned",
            Kind::Observed | Kind::Sentinel => "kind-observed",
        },
        Esc(f.old_primary.as_deref().unwrap_or("?")),
        Esc(&f.new_primary),
        mark(page, f.last_healthy.as_ref()),
        mark(page, f.failure_observed.as_ref()),
        mark(page, f.promoted.as_ref()),
        mark(page, f.confirmed.as_ref()),
        outcome(&f.outcome),
        mark(page, f.old_returned.as_ref()),
    )
}

fn write_reshards(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    super::reshards::write_reshards(out, page)
}

fn write_events(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    let c = page.collect;
    let rows = c.rows();
    let omitted = c.omitted();
    writeln!(
        out,
        "<section id=\"events\"><h2>Events <span class=\"count\">{}</span></h2>",
        rows.len()
    )?;
    if omitted == 0 {
        writeln!(
            out,
            "<p class=\"note\" id=\"events-omitted\" data-omitted=\"0\">All {} events are listed.</p>",
            c.events
        )?;
    } else {
        writeln!(
            out,
            "<p class=\"note\" id=\"events-omitted\" data-omitted=\"{omitted}\">{omitted} of {} observations are left out: listed are every decision, outcome and operator record, the observation each decision was taken on, and the last {RECENT_OBSERVATIONS} observations. <code>logbook replay timeline</code> lists them all.</p>",
            c.observations
        )?;
    }
    writeln!(
        out,
        "<div class=\"scroll\"><table class=\"events\"><thead><tr><th>seq</th><th>time</th><th>epoch</th><th>event</th><th>pod</th><th>what</th><th>follows</th></tr></thead><tbody>"
    )?;
    // Starts before the first event, so observations left out at the start
    // show as a gap too.
    let mut previous: Option<u64> = c.first.map(|(seq, _)| seq.saturating_sub(1));
    for r in rows {
        // A gap where observations were left out.
        if previous.is_some_and(|p| p.saturating_add(1) < r.seq) {
            writeln!(
                out,
                "<tr class=\"gap\"><td colspan=\"7\">… {} events left out …</td></tr>",
                r.seq
                    .saturating_sub(previous.unwrap_or(0))
                    .saturating_sub(1)
            )?;
        }
        previous = Some(r.seq);
        let class = match r.row {
            RowKind::Observation => "ev-observation",
            RowKind::Decision => "ev-decision",
            RowKind::Outcome => "ev-outcome",
            RowKind::Record => "ev-record",
        };
        let kind = if r.row == RowKind::Decision {
            format!("<a href=\"#decision-{}\">{}</a>", r.seq, r.kind)
        } else {
            r.kind.to_owned()
        };
        let chain = r
            .chain
            .as_ref()
            .map_or_else(String::new, |ch| match &ch.link {
                Some(link) => format!("<a href=\"#{link}\">{}</a>", Esc(&ch.text)),
                None => Esc(&ch.text).to_string(),
            });
        writeln!(
            out,
            "<tr id=\"event-{seq}\" class=\"{class}\"><td>{seq}</td><td>{}</td><td>{}</td><td>{kind}</td><td>{}</td><td>{}</td><td>{chain}</td></tr>",
            page.clock.html(r.at),
            r.epoch,
            Esc(r.pod.as_deref().unwrap_or("")),
            Esc(&r.summary),
            seq = r.seq
        )?;
    }
    writeln!(out, "</tbody></table></div></section>")
}
