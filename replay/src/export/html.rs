//! HTML export: one self-contained page for people — the cluster's
//! timeline drawn as a chart (a lane per pod with its role over time,
//! failovers and decisions marked on it), the failover and reshard tables,
//! the audit's result, every decision with its intents, reasons, candidates
//! and outcomes, and the events (the latest observations, every decision
//! and outcome).
//!
//! The page references nothing outside itself (inline CSS, inline SVG, a
//! few lines of vanilla script), so it opens offline from a `file://` URL
//! and can be attached to an incident report as is. Without the script it
//! still reads: decisions are `<details>` elements and markers are links.
//!
//! Every text that comes from the journal is HTML-escaped ([`Esc`]). The
//! journal holds no secret and this module adds none.
//!
//! - [`collect`]: the one scan the page is drawn from;
//! - [`chart`]: the timeline as inline SVG;
//! - [`grid`]: the chart's time scale, columns and ticks;
//! - [`lanes`]: each pod's role over time;
//! - [`sections`]: the header and the tables;
//! - [`shards`], [`reshards`]: a Valkey Cluster's shard failovers and
//!   reshards, their tables and their marks on the chart;
//! - [`decisions`]: the decisions and the audit;
//! - [`assets`]: the stylesheet and the script.

mod assets;
mod chart;
mod collect;
mod decisions;
mod grid;
mod lanes;
mod reshards;
mod sections;
mod shards;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;

use logbook_journal::{Envelope, JournalStore, Timestamp};

use crate::audit::{Audit, AuditReport, Decider};
use crate::error::{ReplayError, Result};
use crate::source::{Flow, Input, Raw, Start, Visit};

use collect::Collect;

/// Writes the report of `input` to `out`: one scan collects the timeline,
/// decisions, failovers and events, and audits with `decider`.
///
/// # Guarantees
/// The page loads nothing from anywhere (no URL at all); every journal
/// text in it is escaped. A journal damaged part-way is reported up to
/// the damage, with a banner naming the seq.
///
/// # Errors
/// [`ReplayError::Unreadable`] / [`ReplayError::Store`] when the input
/// cannot be read at all; [`ReplayError::Output`] when writing fails.
pub async fn export<S: JournalStore>(
    input: &Input<S>,
    decider: &dyn Decider,
    out: &mut dyn Write,
) -> Result<()> {
    let mut collect = Collect::new(decider.reshard_given_up());
    let mut audit = Audit::new(decider);
    let scanned = input
        .scan(
            None,
            &mut Both {
                collect: &mut collect,
                audit: &mut audit,
            },
        )
        .await;
    match &scanned {
        Err(ReplayError::Corrupt { seq, source, .. }) if collect.start.is_some() => {
            collect.damaged = Some((*seq, source.to_string()));
        }
        Err(ReplayError::BadLine {
            seq, what, line, ..
        }) if collect.start.is_some() => {
            collect.damaged = Some((*seq, format!("line {line}: {what}")));
        }
        Ok(_) | Err(_) => {}
    }
    // The audit reports damage after the start as a finding, and returns
    // the error only when the input could not be read at all.
    let audit = audit.report(scanned)?;
    let page = Page::new(&collect, &audit, decider.build());
    sections::write_page(out, &page)?;
    out.flush()?;
    Ok(())
}

/// One scan for both: the page's collector and the audit.
struct Both<'a, 'd> {
    collect: &'a mut Collect,
    audit: &'a mut Audit<'d>,
}

impl Visit for Both<'_, '_> {
    fn start(&mut self, start: &Start) -> Result<()> {
        self.collect.start(start)?;
        self.audit.start(start)
    }

    fn event(&mut self, envelope: &Envelope, raw: Raw<'_>) -> Result<Flow> {
        // The collector reads every event, as the audit does.
        self.collect.event(envelope, raw)?;
        self.audit.event(envelope, raw)
    }
}

/// What every section is drawn from.
struct Page<'a> {
    collect: &'a Collect,
    audit: &'a AuditReport,
    build: String,
    clock: Clock,
    /// Seqs the audit has a finding at.
    findings: BTreeSet<u64>,
}

impl<'a> Page<'a> {
    fn new(collect: &'a Collect, audit: &'a AuditReport, build: String) -> Self {
        let span = collect
            .first
            .zip(collect.last)
            .map_or(0, |((_, a), (_, b))| b.0.saturating_sub(a.0));
        Self {
            collect,
            audit,
            build,
            clock: Clock {
                with_date: span >= DAY_US,
            },
            findings: audit.findings.iter().map(|f| f.seq).collect(),
        }
    }
}

const SECOND_US: i64 = 1_000_000;
const DAY_US: i64 = 86_400 * SECOND_US;

/// Formats times in tables: the time of day (UTC) to the millisecond, with
/// the date when the journal spans more than a day; the full RFC 3339 time
/// is in the element's `datetime` and `title`.
#[derive(Debug, Clone, Copy)]
struct Clock {
    with_date: bool,
}

impl Clock {
    fn short(self, at: Timestamp) -> String {
        let format = if self.with_date {
            "%m-%d %H:%M:%S%.3f"
        } else {
            "%H:%M:%S%.3f"
        };
        at.to_datetime()
            .map_or_else(|| at.to_string(), |t| t.format(format).to_string())
    }

    /// A `<time>` element.
    fn html(self, at: Timestamp) -> String {
        format!(
            "<time datetime=\"{full}\" title=\"{full}\">{}</time>",
            self.short(at),
            full = Esc(&at.to_string())
        )
    }
}

/// A duration for people: `2.498 s`, `3 min 12 s`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn duration(us: i64) -> String {
    let us = us.max(0);
    let s = us / SECOND_US;
    if s < 60 {
        let ms = us / 1000;
        return format!("{}.{:03} s", ms / 1000, ms % 1000);
    }
    if s < 3600 {
        return format!("{} min {} s", s / 60, s % 60);
    }
    if s < 86_400 {
        return format!("{} h {} min", s / 3600, (s % 3600) / 60);
    }
    format!("{} d {} h", s / 86_400, (s % 86_400) / 3600)
}

/// HTML-escapes its text (`& < > " '`) as it is written, for element
/// content and quoted attribute values alike.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((plain, tail)) = rest
            .find(['&', '<', '>', '"', '\''])
            .and_then(|at| rest.split_at_checked(at))
        {
            f.write_str(plain)?;
            let mut chars = tail.chars();
            let entity = match chars.next() {
                Some('&') => "&amp;",
                Some('<') => "&lt;",
                Some('>') => "&gt;",
                Some('"') => "&quot;",
                Some('\'') => "&#39;",
                _ => "",
            };
            f.write_str(entity)?;
            rest = chars.as_str();
        }
        f.write_str(rest)
    }
}

/// `text` escaped, as a `String`.
fn esc(text: &str) -> String {
    Esc(text).to_string()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_characters() {
        assert_eq!(
            esc(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(esc("plain – ünïcode"), "plain – ünïcode");
        assert_eq!(esc(""), "");
        assert_eq!(esc("&&"), "&amp;&amp;");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(2_498_000), "2.498 s");
        assert_eq!(duration(192 * SECOND_US), "3 min 12 s");
        assert_eq!(duration(7500 * SECOND_US), "2 h 5 min");
        assert_eq!(duration(3 * DAY_US + 4 * 3600 * SECOND_US), "3 d 4 h");
        assert_eq!(duration(-5), "0.000 s");
    }

    #[test]
    fn clock_shows_the_date_only_for_long_journals() {
        let at = Timestamp::parse("2026-11-22T12:51:10.850835Z").unwrap();
        assert_eq!(Clock { with_date: false }.short(at), "12:51:10.850");
        assert_eq!(Clock { with_date: true }.short(at), "11-22 12:51:10.850");
        assert!(
            Clock { with_date: false }
                .html(at)
                .contains("2026-11-22T12:51:10.850835Z")
        );
    }
}
