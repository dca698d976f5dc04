//! The timeline as inline SVG: time runs left to right; one lane per pod
//! shows its role (primary, replica, unknown, down); failovers —
//! Replication's and a Valkey Cluster's shards' ([`super::shards`]) — are
//! vertical lines across the lanes, labelled, each a link to its row of
//! the failovers table; decisions are diamonds on their own lane, each a
//! link to its details; operator takeovers are dotted lines.
//!
//! Lanes are drawn on the columns of [`super::grid`].

use std::io::{self, Write};

use logbook_journal::Timestamp;

use super::collect::Decision;
use super::grid::{
    COLUMNS, Scale, brief_outage, columns, dominant_at, runs, tick_label, tick_step,
};
use super::lanes::{LaneState, Segment};
use super::{Esc, Page};
use crate::failovers::{Failover, Kind};

/// The drawing's width in SVG units (it scales to the page).
const WIDTH: f64 = 1200.0;
/// Room for the lane names.
const LEFT: f64 = 176.0;
const RIGHT: f64 = 24.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;
/// Where the decisions lane starts, below the failover labels.
const DECISIONS_TOP: f64 = 40.0;
const DECISIONS_HEIGHT: f64 = 28.0;
/// Where the pod lanes start.
const LANES_TOP: f64 = 76.0;
const LANE_HEIGHT: f64 = 34.0;
const BAR_HEIGHT: f64 = 20.0;
/// The strip that marks a moment down too short for its column.
const OUTAGE_HEIGHT: f64 = 5.0;

/// Where `at` is drawn.
fn x_of(scale: Scale, at: Timestamp) -> f64 {
    LEFT + scale.fraction(at) * PLOT
}

/// What a failover's line is called.
const fn failover_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Automatic => "failover",
        Kind::Planned => "switchover",
        Kind::Observed => "failover (observed)",
        Kind::Requested => "failover (requested)",
        Kind::Sentinel => "failover (Sentinel)",
    }
}

const fn failover_class(kind: Kind) -> &'static str {
    match kind {
        Kind::Automatic | Kind::Requested => "kind-automatic",
        Kind::Planned => "kind-planned",
        Kind::Observed | Kind::Sentinel => "kind-observed",
    }
}

/// A failover's line across the lanes, whichever kind: when, how it is
/// drawn, what it says, and the table row it links to.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Where it is drawn.
    pub at: Timestamp,
    /// The `<g>`'s classes (the kind's colour and dashes).
    pub class: String,
    /// The `<g>`'s id.
    pub id: String,
    /// The table row's id it links to.
    pub row: String,
    /// The tooltip.
    pub title: String,
    /// The label above the lanes.
    pub label: String,
    /// The label's second part, after an arrow: the new primary.
    pub to: String,
}

/// Each Replication failover as a line.
fn failover_rules(page: &Page<'_>) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (n, f) in page.collect.failovers().iter().enumerate() {
        let Some(at) = failover_at(f) else { continue };
        let number = n.saturating_add(1);
        rules.push(Rule {
            at,
            class: format!("marker-failover {}", failover_class(f.kind)),
            id: format!("marker-failover-{number}"),
            row: format!("failover-{number}"),
            title: format!(
                "{} {number}: {} → {}{}",
                failover_label(f.kind),
                f.old_primary.as_deref().unwrap_or("?"),
                f.new_primary,
                f.promoted
                    .as_ref()
                    .map(|m| format!(", promoted at #{} ({})", m.seq, page.clock.short(m.at)))
                    .unwrap_or_default()
            ),
            label: failover_label(f.kind).to_owned(),
            to: f.new_primary.clone(),
        });
    }
    rules
}

/// When a failover is drawn: at the promotion, else the decision, else
/// its confirmation.
fn failover_at(f: &Failover) -> Option<Timestamp> {
    f.promoted
        .as_ref()
        .map(|m| m.at)
        .or_else(|| f.decided.as_ref().map(|d| d.at))
        .or_else(|| f.confirmed.as_ref().map(|m| m.at))
}

/// The lane's name, cut to fit the left margin.
fn short_name(pod: &str) -> String {
    const MAX: usize = 22;
    if pod.chars().count() <= MAX {
        return pod.to_owned();
    }
    let head: String = pod.chars().take(MAX.saturating_sub(1)).collect();
    format!("{head}…")
}

/// The decision a reader most likely opened the report for: the last one
/// that moved the primary, else the last one.
pub fn default_decision(decisions: &[Decision]) -> Option<u64> {
    decisions
        .iter()
        .rev()
        .find(|d| d.changes_primary())
        .or_else(|| decisions.last())
        .map(|d| d.seq)
}

/// Writes the chart (legend, SVG, caption and the decision panel).
pub fn write_chart(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    let c = page.collect;
    let (Some((first_seq, first)), Some((last_seq, last))) = (c.first, c.last) else {
        return writeln!(
            out,
            "<p class=\"none\">The journal holds no event after its start: nothing to draw.</p>"
        );
    };
    let scale = Scale::new(first, last);
    let x = |at: Timestamp| x_of(scale, at);
    // A Valkey Cluster's migrations get a lane of their own, between the
    // decisions and the pods.
    let bars = super::reshards::bars(page);
    let lanes_top = LANES_TOP + super::reshards::lane_height(&bars, &x);
    write_legend(out, !c.shard_failovers().is_empty(), !bars.is_empty())?;
    let lanes_bottom = lanes_top + LANE_HEIGHT * c.lanes.pods.len() as f64;
    let height = lanes_bottom + 28.0;
    writeln!(
        out,
        "<figure class=\"chart\" id=\"chart\"{}>",
        default_decision(&c.decisions)
            .map(|s| format!(" data-default-decision=\"{s}\""))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "<svg id=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" role=\"img\" aria-label=\"Each pod's role over time, with failovers and decisions\">"
    )?;
    // Grid and time axis.
    let step = tick_step(scale.span);
    let mut tick = first
        .0
        .div_euclid(step)
        .saturating_add(1)
        .saturating_mul(step);
    writeln!(out, "<g class=\"axis\">")?;
    while tick <= last.0 {
        let x = x_of(scale, Timestamp(tick));
        // Labels at an edge stay inside the drawing.
        let anchor = if x > LEFT + PLOT - 40.0 {
            "end"
        } else {
            "middle"
        };
        writeln!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{DECISIONS_TOP}\" y2=\"{lanes_bottom}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            lanes_bottom + 18.0,
            Esc(&tick_label(Timestamp(tick), step))
        )?;
        tick = tick.saturating_add(step);
    }
    writeln!(out, "</g>")?;
    // Pod lanes.
    let mut outages = 0usize;
    for (n, (pod, segments)) in c.lanes.pods.iter().enumerate() {
        let top = lanes_top + LANE_HEIGHT * n as f64;
        let drawn = write_lane(out, pod, segments, scale, top, page)?;
        outages = outages.saturating_add(drawn);
    }
    // Operator takeovers.
    for t in &c.takeovers {
        let x = x_of(scale, t.at);
        writeln!(
            out,
            "<g class=\"marker-operator\" data-seq=\"{seq}\"><title>#{seq} operator {} took over at epoch {}{}</title><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{DECISIONS_TOP}\" y2=\"{lanes_bottom}\"/><path d=\"M{:.1},{DECISIONS_TOP} l10,0 l-5,8 z\"/></g>",
            Esc(&t.instance),
            t.epoch,
            t.gap_ms
                .map(|ms| format!(", {ms} ms after the previous event"))
                .unwrap_or_default(),
            x - 5.0,
            seq = t.seq,
        )?;
    }
    // Failovers: a line across the lanes, labelled above them, in time
    // order whatever their kind, so close labels alternate between rows.
    let mut rules = failover_rules(page);
    rules.extend(super::shards::shard_rules(page, c.shard_failovers()));
    rules.sort_by_key(|r| r.at);
    write_rules(out, &rules, scale, lanes_bottom)?;
    // Decisions.
    let mid = DECISIONS_TOP + DECISIONS_HEIGHT / 2.0;
    writeln!(
        out,
        "<g class=\"decisions-lane\"><text class=\"lane-name\" x=\"{:.1}\" y=\"{:.1}\">decisions</text><line class=\"track-line\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{mid}\" y2=\"{mid}\"/>",
        LEFT - 10.0,
        mid + 4.0,
        LEFT + PLOT
    )?;
    for d in &c.decisions {
        write_decision_marker(out, d, x_of(scale, d.at), mid, page)?;
    }
    writeln!(out, "</g>")?;
    super::reshards::write_lane(out, &bars, LANES_TOP - 4.0, LEFT - 10.0, &x)?;
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<figcaption>Time (UTC) from {} (#{first_seq}) to {} (#{last_seq}), {} in all.{} Click a diamond for the decision's details, a failover's line for its row in the table.</figcaption>",
        page.clock.html(first),
        page.clock.html(last),
        super::duration(last.0.saturating_sub(first.0)),
        if outages > 0 {
            " A thin red strip at the foot of a lane marks a pod down too briefly to show at this scale."
        } else {
            ""
        }
    )?;
    writeln!(out, "</figure>")?;
    writeln!(
        out,
        "<div id=\"decision-panel\" class=\"panel\" aria-live=\"polite\"><p class=\"hint\">Click a decision marker (◆) on the chart, or a row of the decisions table, to see what was decided and why.</p></div>"
    )
}

/// About how wide a rule's label is drawn, in SVG units (12 px bold:
/// some 7 units a character, the arrow included).
fn label_width(r: &Rule) -> f64 {
    let chars = r
        .label
        .chars()
        .count()
        .saturating_add(3)
        .saturating_add(r.to.chars().count());
    chars as f64 * 7.0
}

/// Whether a label spanning `start..end` goes on the high row. `ends`
/// holds where the last label of each row (low, high) ends: a label goes
/// on the low row unless it would overlap the one there, then on the
/// high row, and when both would overlap on the row that frees first.
fn label_row(ends: &mut [f64; 2], start: f64, end: f64) -> bool {
    /// Space kept between two labels on one row.
    const GAP: f64 = 8.0;
    let [low, high] = *ends;
    let low_free = low + GAP <= start;
    let high_row = !low_free && (high + GAP <= start || high < low);
    if high_row {
        ends[1] = end;
    } else {
        ends[0] = end;
    }
    high_row
}

/// Draws `rules` (in time order) across the lanes, each labelled above
/// them and linked to its table row.
fn write_rules(
    out: &mut dyn Write,
    rules: &[Rule],
    scale: Scale,
    lanes_bottom: f64,
) -> io::Result<()> {
    let mut ends = [f64::NEG_INFINITY; 2];
    for r in rules {
        let x = x_of(scale, r.at);
        // Labels near an edge grow inwards.
        let anchor = if x > LEFT + PLOT * 0.85 {
            "end"
        } else if x < LEFT + PLOT * 0.15 {
            "start"
        } else {
            "middle"
        };
        let width = label_width(r);
        let (start, end) = match anchor {
            "end" => (x - width, x),
            "start" => (x, x + width),
            _ => (x - width / 2.0, x + width / 2.0),
        };
        let label_y = if label_row(&mut ends, start, end) {
            14.0
        } else {
            32.0
        };
        writeln!(
            out,
            "<a href=\"#{}\" class=\"marker-link\"><g class=\"{}\" id=\"{}\"><title>{}</title><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{lanes_bottom}\"/><text x=\"{x:.1}\" y=\"{label_y}\" text-anchor=\"{anchor}\">{}<tspan class=\"to\"> → {}</tspan></text></g></a>",
            Esc(&r.row),
            Esc(&r.class),
            Esc(&r.id),
            Esc(&r.title),
            label_y + 4.0,
            Esc(&r.label),
            Esc(&r.to)
        )?;
    }
    Ok(())
}

fn write_legend(out: &mut dyn Write, shards: bool, migrations: bool) -> io::Result<()> {
    let roles = [
        LaneState::Primary,
        LaneState::Replica,
        LaneState::Unknown,
        LaneState::Down,
        LaneState::Absent,
    ];
    write!(out, "<div class=\"legend\" id=\"legend\">")?;
    for state in roles {
        write!(
            out,
            "<span><i class=\"swatch {}\"></i>{}</span>",
            state.class(),
            state.label()
        )?;
    }
    write!(
        out,
        "<span><i class=\"rule kind-automatic\"></i>failover</span><span><i class=\"rule kind-planned\"></i>switchover</span><span><i class=\"rule kind-observed\"></i>failover nobody here decided</span>"
    )?;
    if shards {
        write!(
            out,
            "<span><i class=\"rule shard kind-operator\"></i>shard failover, the operator's</span><span><i class=\"rule shard kind-election\"></i>shard failover, Valkey's election</span>"
        )?;
    }
    if migrations {
        write!(
            out,
            "<span><i class=\"bar outcome-succeeded\"></i>slot migration, decided → succeeded</span><span><i class=\"bar outcome-failed\"></i>failed</span><span><i class=\"bar outcome-ambiguous\"></i>ambiguous, settled by ownership</span><span><i class=\"bar outcome-pending\"></i>under way or abandoned</span>"
        )?;
    }
    writeln!(
        out,
        "<span><i class=\"diamond\"></i>decision</span><span><i class=\"diamond changes-primary\"></i>decision that moves the primary</span><span><i class=\"diamond questioned\"></i>decision the audit questions</span><span><i class=\"rule operator\"></i>operator takeover</span></div>"
    )
}

fn write_lane(
    out: &mut dyn Write,
    pod: &str,
    segments: &[Segment],
    scale: Scale,
    top: f64,
    page: &Page<'_>,
) -> io::Result<usize> {
    let bar = top + (LANE_HEIGHT - BAR_HEIGHT) / 2.0;
    writeln!(
        out,
        "<g class=\"lane\" id=\"lane-{pod}\" data-pod=\"{pod}\"><text class=\"lane-name\" x=\"{:.1}\" y=\"{:.1}\"><title>{pod}</title>{}</text><rect class=\"track\" x=\"{LEFT}\" y=\"{bar:.1}\" width=\"{PLOT}\" height=\"{BAR_HEIGHT}\"/>",
        LEFT - 10.0,
        bar + BAR_HEIGHT / 2.0 + 4.5,
        Esc(&short_name(pod)),
        pod = Esc(pod),
    )?;
    let col_width = PLOT / COLUMNS as f64;
    let cols = columns(segments, scale);
    let mut outages = 0usize;
    for (strip, (from, to, state, k)) in runs(&cols, dominant_at)
        .into_iter()
        .map(|run| (false, run))
        .chain(runs(&cols, brief_outage).into_iter().map(|run| (true, run)))
    {
        if state == LaneState::Absent {
            continue;
        }
        let x = LEFT + from as f64 * col_width;
        let width = (to.saturating_sub(from).saturating_add(1)) as f64 * col_width;
        let (y, height, brief) = if strip {
            outages = outages.saturating_add(1);
            (bar + BAR_HEIGHT - OUTAGE_HEIGHT, OUTAGE_HEIGHT, " briefly")
        } else {
            (bar, BAR_HEIGHT, "")
        };
        let since = segments
            .get(k)
            .map(|s| format!(" from #{} ({})", s.seq, page.clock.short(s.at)))
            .unwrap_or_default();
        writeln!(
            out,
            "<rect class=\"{}{}\" x=\"{x:.2}\" y=\"{y:.1}\" width=\"{width:.2}\" height=\"{height}\"><title>{}: {}{brief}{since}</title></rect>",
            state.class(),
            if strip { " outage" } else { "" },
            Esc(pod),
            state.label()
        )?;
    }
    writeln!(out, "</g>")?;
    Ok(outages)
}

fn write_decision_marker(
    out: &mut dyn Write,
    d: &Decision,
    x: f64,
    mid: f64,
    page: &Page<'_>,
) -> io::Result<()> {
    let mut class = String::from("marker-decision");
    if d.changes_primary() {
        class.push_str(" changes-primary");
    }
    if page.findings.contains(&d.seq) {
        class.push_str(" questioned");
    }
    let what: Vec<String> = d
        .intents
        .iter()
        .map(|i| i.planned.intent.describe())
        .collect();
    let reasons: Vec<&str> = {
        let mut r: Vec<&str> = d
            .intents
            .iter()
            .map(|i| i.planned.reason.code.name())
            .collect();
        r.dedup();
        r
    };
    writeln!(
        out,
        "<a href=\"#decision-{seq}\" class=\"marker-link\"><path class=\"{class}\" data-seq=\"{seq}\" d=\"M{x:.1},{:.1} l8,8 l-8,8 l-8,-8 z\"><title>#{seq} {}: {} [{}]</title></path></a>",
        mid - 8.0,
        page.clock.short(d.at),
        Esc(&what.join("; ")),
        Esc(&reasons.join(", ")),
        seq = d.seq,
    )
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use logbook_journal::{Intent, PlannedIntent, Reason, ReasonCode};

    use super::super::collect::DecidedIntent;
    use super::*;

    #[test]
    fn labels_that_would_overlap_take_the_other_row() {
        let mut ends = [f64::NEG_INFINITY; 2];
        // Far apart: both low.
        assert!(!label_row(&mut ends, 100.0, 200.0));
        assert!(!label_row(&mut ends, 300.0, 400.0));
        // Overlapping the last low one: high; the next, clear of the low
        // row again, low.
        assert!(label_row(&mut ends, 350.0, 520.0));
        assert!(!label_row(&mut ends, 410.0, 500.0));
        // Overlapping both: the row that frees first (the low, at 500).
        assert!(!label_row(&mut ends, 505.0, 600.0));
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(short_name("demo-0"), "demo-0");
        let long = "a-very-long-statefulset-name-0";
        assert_eq!(short_name(long).chars().count(), 22);
        assert!(short_name(long).ends_with('…'));
    }

    fn decision(seq: u64, intent: Intent) -> Decision {
        Decision {
            seq,
            at: Timestamp(0),
            epoch: 1,
            after: None,
            intents: vec![DecidedIntent {
                planned: PlannedIntent {
                    intent_id: uuid::Uuid::nil(),
                    intent,
                    reason: Reason {
                        code: ReasonCode::NoPrimary,
                        detail: String::new(),
                    },
                },
                outcome: None,
            }],
        }
    }

    #[test]
    fn the_decision_shown_first_is_the_last_that_moved_the_primary() {
        let promote = Intent::PromoteReplica {
            pod: "a".to_owned(),
            from: None,
        };
        let decisions = [
            decision(3, Intent::ApplyResources { generation: 1 }),
            decision(9, promote),
            decision(12, Intent::UpdateStatus),
        ];
        assert_eq!(default_decision(&decisions), Some(9));
        assert_eq!(default_decision(&decisions[2..]), Some(12));
        assert_eq!(default_decision(&[]), None);
    }
}
