//! A Valkey Cluster's reshards in the report: their section — per
//! reshard its generation, shards, slots planned and moved and outcome,
//! then a row per migration with the same figures as `replay reshards`
//! (both read [`crate::reshards`]); the settled slots and the jobs no
//! decision names — and the migrations' lane on the chart: each a bar
//! from its decision to its outcome, ticked at both ends, coloured by how
//! it ended, linked to its row.

use std::io::{self, Write};

use logbook_journal::Timestamp;
use logbook_journal::cluster::describe_slots;

use super::sections::mark;
use super::{Esc, Page};
use crate::cluster_facts::short;
use crate::reshards::{
    Job, Mechanism, Migration, MoveOutcome, Reshard, ReshardOutcome, describe_move,
    describe_outcome,
};
use crate::shard_failovers::NodeRef;

/// Height of one row of the migrations lane.
const ROW_HEIGHT: f64 = 10.0;
/// The bar's height within its row.
const BAR_HEIGHT: f64 = 6.0;
/// Rows the lane grows to before bars share one.
const MAX_ROWS: usize = 4;
/// Room above and below the rows.
const PADDING: f64 = 6.0;

fn node(n: &NodeRef) -> String {
    format!(
        "<b>{}</b> <code>{}</code>",
        Esc(n.pod.as_deref().unwrap_or("?")),
        Esc(n.node_id.as_deref().map_or("?", short))
    )
}

fn node_text(n: &NodeRef) -> String {
    format!(
        "{} ({})",
        n.pod.as_deref().unwrap_or("?"),
        n.node_id.as_deref().map_or("?", short)
    )
}

/// The class a move's outcome is drawn and listed with.
const fn outcome_class(o: &MoveOutcome) -> &'static str {
    match o {
        MoveOutcome::Succeeded { .. } => "outcome-succeeded",
        MoveOutcome::Failed { .. } => "outcome-failed",
        MoveOutcome::Ambiguous { .. } => "outcome-ambiguous",
        MoveOutcome::Abandoned { .. } => "outcome-abandoned",
        MoveOutcome::LeftRunning { .. } => "outcome-pending",
        MoveOutcome::Pending => "outcome-pending",
    }
}

/// One migration's bar on the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Its decision.
    pub from: Timestamp,
    /// Its outcome, or the journal's end.
    pub to: Timestamp,
    /// The row of the migrations table it links to.
    pub row: String,
    /// The outcome's class.
    pub class: &'static str,
    /// The tooltip.
    pub title: String,
}

/// The migrations' bars, in decision order.
pub fn bars(page: &Page<'_>) -> Vec<Bar> {
    let end = page.collect.last.map(|(_, at)| at);
    let mut bars = Vec::new();
    for (r, reshard) in page.collect.reshards().records.iter().enumerate() {
        for (m, mig) in reshard.migrations.iter().enumerate() {
            let to = mig.ended.as_ref().map(|e| e.at).or(end);
            let Some(to) = to else { continue };
            bars.push(Bar {
                from: mig.decided.at,
                to,
                row: migration_id(r, m),
                class: outcome_class(&mig.outcome),
                title: format!(
                    "migration {}.{} (generation {}): slots {} ({} slots) {} → {}; decided at #{} ({}); {}; write pause: {}",
                    r.saturating_add(1),
                    m.saturating_add(1),
                    reshard.generation,
                    describe_slots(&mig.slots),
                    mig.slot_count,
                    node_text(&mig.source),
                    node_text(&mig.target),
                    mig.decided.seq,
                    page.clock.short(mig.decided.at),
                    match &mig.ended {
                        Some(e) => format!(
                            "{} at #{} ({})",
                            describe_move(&mig.outcome),
                            e.seq,
                            page.clock.short(e.at)
                        ),
                        None => "no outcome by the end of the journal".to_owned(),
                    },
                    mig.pause.as_ref().map_or("-", |p| p.text.as_str())
                ),
            });
        }
    }
    bars
}

/// The element id of migration `m` of reshard `r` (both from 0).
fn migration_id(r: usize, m: usize) -> String {
    format!("migration-{}-{}", r.saturating_add(1), m.saturating_add(1))
}

/// Rows for `bars` (placed left to right, each on the first row free at
/// its start, up to [`MAX_ROWS`]), and each bar's row.
fn rows(bars: &[Bar], x: &dyn Fn(Timestamp) -> f64) -> (usize, Vec<usize>) {
    let mut ends: Vec<f64> = Vec::new();
    let mut placed = Vec::with_capacity(bars.len());
    for b in bars {
        let (start, end) = (x(b.from), x(b.to).max(x(b.from) + 3.0));
        let free = ends.iter().position(|e| *e + 2.0 <= start);
        let row = match free {
            Some(row) => row,
            None if ends.len() < MAX_ROWS => {
                ends.push(f64::NEG_INFINITY);
                ends.len().saturating_sub(1)
            }
            // Every row taken: the one that frees first.
            None => ends
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i),
        };
        if let Some(e) = ends.get_mut(row) {
            *e = end;
        }
        placed.push(row);
    }
    (ends.len(), placed)
}

/// The lane's height for `bars` (0 without any).
pub fn lane_height(bars: &[Bar], x: &dyn Fn(Timestamp) -> f64) -> f64 {
    let (n, _) = rows(bars, x);
    if n == 0 {
        0.0
    } else {
        n as f64 * ROW_HEIGHT + 2.0 * PADDING
    }
}

/// Draws the migrations lane from `top`, its name in the margin.
pub fn write_lane(
    out: &mut dyn Write,
    bars: &[Bar],
    top: f64,
    name_x: f64,
    x: &dyn Fn(Timestamp) -> f64,
) -> io::Result<()> {
    let (n, placed) = rows(bars, x);
    if n == 0 {
        return Ok(());
    }
    let height = n as f64 * ROW_HEIGHT;
    writeln!(
        out,
        "<g class=\"migrations-lane\"><text class=\"lane-name\" x=\"{name_x:.1}\" y=\"{:.1}\">migrations</text>",
        top + PADDING + height / 2.0 + 4.0
    )?;
    for (b, row) in bars.iter().zip(placed) {
        let y = top + PADDING + row as f64 * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2.0;
        let (x0, x1) = (x(b.from), x(b.to).max(x(b.from) + 3.0));
        writeln!(
            out,
            "<a href=\"#{row}\" class=\"marker-link\"><g class=\"marker-migration {class}\" id=\"marker-{row}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR_HEIGHT}\"/><line class=\"start\" x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><line class=\"end\" x1=\"{x1:.1}\" x2=\"{x1:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/></g></a>",
            Esc(&b.title),
            x1 - x0,
            y - 2.0,
            y + BAR_HEIGHT + 2.0,
            y - 2.0,
            y + BAR_HEIGHT + 2.0,
            row = Esc(&b.row),
            class = b.class,
        )?;
    }
    writeln!(out, "</g>")
}

/// Writes the section.
pub fn write_reshards(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    let all = page.collect.reshards();
    let unplanned = all.unplanned();
    writeln!(
        out,
        "<section id=\"reshards\"><h2>Reshards <span class=\"count\">{}</span></h2>",
        all.records.len()
    )?;
    if all.records.is_empty() && all.settles.is_empty() && unplanned.is_empty() {
        return writeln!(
            out,
            "<p class=\"none\">none: the journal holds no slot move (no reshard decided, no migration job observed).</p></section>"
        );
    }
    for (r, reshard) in all.records.iter().enumerate() {
        write_reshard(out, page, r, reshard)?;
    }
    if !all.settles.is_empty() {
        write_settles(out, page)?;
    }
    if !unplanned.is_empty() {
        writeln!(
            out,
            "<h3>Migration jobs no decision here names</h3><p class=\"note\">Another tool's or a person's, or decided before the journal's start.</p>"
        )?;
        writeln!(
            out,
            "<div class=\"scroll\"><table class=\"migrations\"><thead><tr><th>job</th><th>slots</th><th>source → target</th><th>phases</th></tr></thead><tbody>"
        )?;
        for job in unplanned {
            writeln!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td class=\"pair\">{} →<br>{}</td><td>{}</td></tr>",
                Esc(short(&job.name)),
                if job.before_start {
                    "<div class=\"what\">under way before the journal's first event</div>"
                } else {
                    ""
                },
                Esc(&describe_slots(&job.slots)),
                node(&job.source),
                node(&job.target),
                phases(job)
            )?;
        }
        writeln!(out, "</tbody></table></div>")?;
    }
    writeln!(out, "</section>")
}

fn outcome_html(o: &ReshardOutcome) -> String {
    let class = match o {
        ReshardOutcome::Balanced { .. } => "ok",
        ReshardOutcome::Failing { .. } => "bad",
        ReshardOutcome::Superseded { .. } | ReshardOutcome::InProgress => "warn",
    };
    format!(
        "<span class=\"{class}\">{}</span>",
        Esc(&describe_outcome(o))
    )
}

fn write_reshard(
    out: &mut dyn Write,
    page: &Page<'_>,
    r: usize,
    reshard: &Reshard,
) -> io::Result<()> {
    writeln!(
        out,
        "<h3 id=\"reshard-{n}\">Reshard {n}: generation {}, {} shards wanted</h3>",
        reshard.generation,
        reshard.shards,
        n = r.saturating_add(1)
    )?;
    writeln!(
        out,
        "<p class=\"reshard-facts\">{} slots planned, {} moved; started <a href=\"#decision-{seq}\">#{seq}</a> {}, ended {}: {}</p><p class=\"what\">{}</p>",
        reshard.slots_planned,
        reshard.slots_moved,
        page.clock.html(reshard.started.at),
        reshard.ended.as_ref().map_or_else(
            || "<span class=\"none\">–</span>".to_owned(),
            |e| format!(
                "<a href=\"#event-{seq}\">#{seq}</a> {}",
                page.clock.html(e.at),
                seq = e.seq
            )
        ),
        outcome_html(&reshard.outcome),
        Esc(&reshard.started.what),
        seq = reshard.started.seq
    )?;
    writeln!(
        out,
        "<div class=\"scroll\"><table class=\"migrations\"><thead><tr><th>#</th><th>slots</th><th>source → target</th><th>decided</th><th>job phases (+ms since issued, #seq by a probe)</th><th>write pause</th><th>ended</th><th>outcome</th><th>retries</th></tr></thead><tbody>"
    )?;
    for (m, mig) in reshard.migrations.iter().enumerate() {
        write_migration_row(out, page, r, m, mig)?;
    }
    writeln!(out, "</tbody></table></div>")
}

fn phases(job: &Job) -> String {
    let items: Vec<String> = job
        .phases
        .iter()
        .map(|p| {
            format!(
                "<li class=\"{}\"><span class=\"what\">{} {} on {}</span> {}{}</li>",
                if p.is_paused() { "paused" } else { "" },
                Esc(&p.when()),
                p.side,
                Esc(&p.pod),
                Esc(&p.state),
                if p.message.is_empty() {
                    String::new()
                } else {
                    format!("<div class=\"what\">{}</div>", Esc(&p.message))
                }
            )
        })
        .collect();
    format!("<ul class=\"plain phases\">{}</ul>", items.concat())
}

fn write_migration_row(
    out: &mut dyn Write,
    page: &Page<'_>,
    r: usize,
    m: usize,
    mig: &Migration,
) -> io::Result<()> {
    let jobs = match mig.mechanism {
        Mechanism::AtomicSlotMigration => mig
            .jobs
            .iter()
            .map(|j| format!("<code>{}</code>{}", Esc(short(&j.name)), phases(j)))
            .collect::<Vec<_>>()
            .concat(),
        Mechanism::NotObserved if mig.outcome == MoveOutcome::Pending => {
            "<span class=\"none\">no job observed yet</span>".to_owned()
        }
        Mechanism::NotObserved => {
            "<span class=\"none\">no job observed (the outcome says how the slots moved)</span>"
                .to_owned()
        }
    };
    let verdict = match &mig.outcome {
        MoveOutcome::Succeeded { .. } => "ok",
        MoveOutcome::Failed { .. } => "bad",
        MoveOutcome::Ambiguous { .. }
        | MoveOutcome::Abandoned { .. }
        | MoveOutcome::LeftRunning { .. }
        | MoveOutcome::Pending => "warn",
    };
    writeln!(
        out,
        "<tr id=\"{id}\" class=\"{}\"><td>{}.{}</td><td>{} <span class=\"what\">({} slots)</span></td><td class=\"pair\">{} →<br>{}</td><td><a href=\"#decision-{seq}\">#{seq}</a> {}{}<div class=\"what\">{}</div></td><td>{jobs}</td><td>{}</td><td>{}</td><td><span class=\"{verdict}\">{}</span>{}</td><td class=\"num\">{}</td></tr>",
        outcome_class(&mig.outcome),
        r.saturating_add(1),
        m.saturating_add(1),
        Esc(&describe_slots(&mig.slots)),
        mig.slot_count,
        node(&mig.source),
        node(&mig.target),
        page.clock.html(mig.decided.at),
        if mig.adopted {
            " <span class=\"what\">(waits for a job already under way)</span>"
        } else {
            ""
        },
        Esc(&mig.decided.what),
        mig.pause
            .as_ref()
            .map_or_else(|| "–".to_owned(), |p| Esc(&p.text).to_string()),
        mark(page, mig.ended.as_ref()),
        Esc(&describe_move(&mig.outcome)),
        mig.target_owned_after
            .map(|n| format!(
                "<div class=\"what\">the target owned {n} of its {} slots right after</div>",
                mig.slot_count
            ))
            .unwrap_or_default(),
        mig.retries,
        id = migration_id(r, m),
        seq = mig.decided.seq,
    )
}

fn write_settles(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    writeln!(
        out,
        "<h3>Slots settled after a half-move</h3><div class=\"scroll\"><table class=\"migrations\"><thead><tr><th>slot</th><th>what was done</th><th>markers seen</th><th>decided</th><th>ended</th><th>outcome</th><th>owner after</th></tr></thead><tbody>"
    )?;
    for s in &page.collect.reshards().settles {
        writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td><a href=\"#decision-{seq}\">#{seq}</a> {}<div class=\"what\">{}</div></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.slot,
            Esc(&s.action),
            if s.markers.is_empty() {
                "<span class=\"none\">none journaled</span>".to_owned()
            } else {
                Esc(&s.markers.join(", ")).to_string()
            },
            page.clock.html(s.decided.at),
            Esc(&s.decided.what),
            mark(page, s.ended.as_ref()),
            super::sections::outcome(&s.outcome),
            Esc(s.owner_after.as_deref().unwrap_or("–")),
            seq = s.decided.seq
        )?;
    }
    writeln!(out, "</tbody></table></div>")
}
