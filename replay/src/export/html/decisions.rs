//! The decisions (each a `<details>` element: its intents grouped by
//! reason, the candidates a promotion was chosen among, every outcome)
//! and the audit's result.

use std::io::{self, Write};

use logbook_journal::{Candidate, Intent, ReasonCode};

use super::collect::{DecidedIntent, Decision, Settlement};
use super::{Esc, Page, esc};
use crate::audit::{Check, Compared};
use crate::describe;

/// The reason code's own facts, for people (empty when it has none).
fn reason_fields(code: &ReasonCode) -> String {
    match code {
        ReasonCode::SpecChanged { generation } => format!("generation {generation}"),
        ReasonCode::PrimaryUnreachable {
            consecutive_failures,
        } => format!("{consecutive_failures} consecutive failed probes"),
        ReasonCode::PrimaryFailed {
            death,
            consecutive_failures,
            ..
        } => format!(
            "{}, {consecutive_failures} consecutive failed probes",
            if *death {
                "death (refused, terminated or deleted)"
            } else {
                "slowness (timed out)"
            }
        ),
        ReasonCode::ScaleIn { from, to } => format!("replicas {from} → {to}"),
        ReasonCode::SlotsUnassigned { unassigned } => format!("{unassigned} slots without owner"),
        ReasonCode::NodeRetired { node_id } => format!("node {node_id}"),
        ReasonCode::QuorumLost {
            primaries_lost,
            shards,
            ..
        } => format!("{primaries_lost} of {shards} shard primaries lost"),
        ReasonCode::PrimaryBehindReplica { primary_offset, .. } => {
            format!("the primary is behind another that holds more, at offset {primary_offset}")
        }
        ReasonCode::Reshard {
            generation,
            shards,
            slots_to_move,
        } => format!("{slots_to_move} slots to move for {shards} shards (generation {generation})"),
        ReasonCode::SlotStuck { slot } => format!("slot {slot} left half-moved"),
        ReasonCode::SentinelStaleEntries { stale } => format!("stale entries {}", stale.join(", ")),
        ReasonCode::SentinelInfoPeriod { reported_ms } => {
            format!("INFO every {reported_ms} ms")
        }
        ReasonCode::UsersOutOfSync {
            missing,
            differing,
            deleted,
        } => format!(
            "missing [{}], differing [{}], deleted [{}]",
            missing.join(", "),
            differing.join(", "),
            deleted.join(", ")
        ),
        ReasonCode::CertificateDue { not_after } => match not_after {
            Some(t) => format!("the certificate expires at {t}"),
            None => "no certificate of the operator's CA yet".to_owned(),
        },
        ReasonCode::CertificateChanged { served } => format!(
            "serving another certificate: {}",
            served
                .iter()
                .map(|(pod, fp)| format!(
                    "{pod} ({})",
                    fp.as_deref().and_then(|f| f.get(..16)).unwrap_or("unseen")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ReasonCode::BackupRetry { failed } => format!("attempt {failed} failed"),
        ReasonCode::BackupScheduled { at } => format!("the schedule fired at {at}"),
        ReasonCode::RetentionExpired { newer, completed } => {
            format!("completed at {completed}, {newer} newer backups kept")
        }
        ReasonCode::Unbound { by: Some(by) } => format!("annotation removed by {by}"),
        ReasonCode::Drift { objects } => format!("changed by hand: {}", objects.join(", ")),
        ReasonCode::FailBack { pod } => format!("back to preferred pod {pod}"),
        ReasonCode::Standby { source } => format!("standby of {source}"),
        ReasonCode::Rebalance { pod } => format!("rebalance requested: back to {pod}"),
        ReasonCode::RestartRequested { requested } => {
            format!("restart requested ({requested}): every pod rolled once")
        }
        ReasonCode::Promotion { lag: Some(lag) } => {
            format!("promoted, {lag} bytes behind at the last observation")
        }
        ReasonCode::Promotion { lag: None } => "promoted; lag unknown".to_owned(),
        ReasonCode::BackupRequested
        | ReasonCode::Hibernate
        | ReasonCode::Wake
        | ReasonCode::Upgrade
        | ReasonCode::Unbound { by: None }
        | ReasonCode::ObjectsUnmarked
        | ReasonCode::Rebound
        | ReasonCode::RestoreLoaded
        | ReasonCode::ClusterDeleted
        | ReasonCode::FingerprintKeyMissing
        | ReasonCode::Bootstrap { .. }
        | ReasonCode::PrimaryDead
        | ReasonCode::NoPrimary
        | ReasonCode::ReplicaMisdirected
        | ReasonCode::RevisionOutdated
        | ReasonCode::ResumeAfterRestart
        | ReasonCode::StatusStale
        | ReasonCode::Requested
        | ReasonCode::RoleLabelsStale
        | ReasonCode::BootConfigStale
        | ReasonCode::PrimaryOutdated
        | ReasonCode::SentinelNotMonitoring
        | ReasonCode::SentinelSettingsDrift
        | ReasonCode::PrimaryRestartedFenced
        | ReasonCode::UserRemoved
        | ReasonCode::UserConnectionStale
        | ReasonCode::NodeNotJoined
        | ReasonCode::ShardNeedsReplica
        | ReasonCode::ArchiveRequested
        | ReasonCode::ArchiveNotRequested
        | ReasonCode::ForeignSlotsClaimed => String::new(),
        ReasonCode::ArchiveExpired { ended } => format!("ended {ended}"),
        ReasonCode::ExternalEndpointsChanged { hosts } => hosts.join(", "),
        ReasonCode::AnnouncedAddressStale { announced, wanted } => {
            format!("announces {announced}, should {wanted}")
        }
    }
}

/// The pod an intent makes primary, if it does.
fn promotes(intent: &Intent) -> Option<&str> {
    match intent {
        Intent::PromoteReplica { pod, .. } => Some(pod),
        Intent::Switchover { to, .. } | Intent::ClusterFailover { pod: to, .. } => Some(to),
        _ => None,
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "<td class=\"yes\">yes</td>"
    } else {
        "<td class=\"no\">no</td>"
    }
}

fn write_candidates(
    out: &mut dyn Write,
    candidates: &[Candidate],
    chosen: Option<&str>,
) -> io::Result<()> {
    writeln!(
        out,
        "<table class=\"candidates\"><caption>Candidates, as the decider saw them</caption><thead><tr><th>pod</th><th>offset</th><th>reachable</th><th>same history</th><th>eligible</th><th></th></tr></thead><tbody>"
    )?;
    for c in candidates {
        let picked = chosen == Some(c.pod.as_str());
        writeln!(
            out,
            "<tr class=\"candidate{}\"><td><b>{}</b></td><td class=\"num\">{}</td>{}{}{}<td>{}</td></tr>",
            if picked { " chosen" } else { "" },
            Esc(&c.pod),
            c.offset.map_or_else(|| "–".to_owned(), |o| o.to_string()),
            yes_no(c.reachable),
            yes_no(c.same_history),
            yes_no(c.eligible),
            if picked { "promoted" } else { "" }
        )?;
    }
    writeln!(out, "</tbody></table>")
}

fn settlement(page: &Page<'_>, i: &DecidedIntent) -> String {
    let Some(o) = &i.outcome else {
        return "<span class=\"warn\">no outcome in the journal</span>".to_owned();
    };
    let (class, word, text) = match &o.settlement {
        Settlement::Succeeded(detail) => ("ok", "succeeded", esc(detail)),
        Settlement::Failed { error, retryable } => (
            "bad",
            if *retryable {
                "failed (retryable)"
            } else {
                "failed"
            },
            esc(error),
        ),
        Settlement::Abandoned(reason) => ("warn", "abandoned", esc(reason)),
    };
    format!(
        "<span class=\"{class}\">{word}</span> at <a href=\"#event-{seq}\">#{seq}</a> {}<div class=\"what\">{text}</div>",
        page.clock.html(o.at),
        seq = o.seq
    )
}

/// What a decision's outcomes add up to, for its summary line.
fn outcomes(d: &Decision) -> String {
    let (mut ok, mut failed, mut abandoned, mut open) = (0usize, 0usize, 0usize, 0usize);
    for i in &d.intents {
        let n = match i.outcome.as_ref().map(|o| &o.settlement) {
            Some(Settlement::Succeeded(_)) => &mut ok,
            Some(Settlement::Failed { .. }) => &mut failed,
            Some(Settlement::Abandoned(_)) => &mut abandoned,
            None => &mut open,
        };
        *n = n.saturating_add(1);
    }
    let mut parts = Vec::new();
    for (n, what, class) in [
        (ok, "succeeded", "ok"),
        (failed, "failed", "bad"),
        (abandoned, "abandoned", "warn"),
        (open, "in flight", "warn"),
    ] {
        if n > 0 {
            parts.push(format!("<span class=\"{class}\">{n} {what}</span>"));
        }
    }
    parts.join(", ")
}

/// The body of a decision's details (also copied into the chart's panel,
/// so it holds no element id).
fn write_body(out: &mut dyn Write, page: &Page<'_>, d: &Decision) -> io::Result<()> {
    writeln!(out, "<div class=\"decision-body\">")?;
    if let Some(p) = &d.after {
        writeln!(
            out,
            "<p class=\"after\">Decided on the projection as of <a href=\"#event-{seq}\">#{seq} {}</a>: {}</p>",
            p.kind,
            Esc(&p.summary),
            seq = p.seq
        )?;
    }
    // Intents sharing a reason (as all of one failover's do) are grouped
    // under it, so the reason and its candidates are shown once.
    let mut groups: Vec<Vec<&DecidedIntent>> = Vec::new();
    for i in &d.intents {
        match groups.last_mut() {
            Some(group)
                if group
                    .first()
                    .is_some_and(|g| g.planned.reason == i.planned.reason) =>
            {
                group.push(i);
            }
            _ => groups.push(vec![i]),
        }
    }
    for group in groups {
        let Some(first) = group.first() else { continue };
        let reason = &first.planned.reason;
        let fields = reason_fields(&reason.code);
        writeln!(
            out,
            "<div class=\"reason\"><p><span class=\"code\">{}</span>{}</p><p class=\"sentence\">{}</p>",
            reason.code.name(),
            if fields.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"fields\">{}</span>", Esc(&fields))
            },
            Esc(&reason.detail)
        )?;
        let candidates = reason.code.candidates();
        if !candidates.is_empty() {
            let chosen = group.iter().find_map(|i| promotes(&i.planned.intent));
            write_candidates(out, candidates, chosen)?;
        }
        writeln!(
            out,
            "<table class=\"intents\"><thead><tr><th>intent</th><th>kind</th><th>id</th><th>outcome</th></tr></thead><tbody>"
        )?;
        for i in group {
            writeln!(
                out,
                "<tr><td><b>{}</b></td><td><code>{}</code></td><td><code title=\"{id}\">{}</code></td><td>{}</td></tr>",
                Esc(&i.planned.intent.describe()),
                i.planned.intent.name(),
                describe::short_id(&i.planned.intent_id),
                settlement(page, i),
                id = i.planned.intent_id
            )?;
        }
        writeln!(out, "</tbody></table></div>")?;
    }
    writeln!(out, "</div>")
}

/// Writes the decisions section.
pub fn write_decisions(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    let decisions = &page.collect.decisions;
    writeln!(
        out,
        "<section id=\"decisions\"><h2>Decisions <span class=\"count\">{}</span></h2>",
        decisions.len()
    )?;
    if decisions.is_empty() {
        return writeln!(
            out,
            "<p class=\"none\">none: the operator decided nothing in this journal.</p></section>"
        );
    }
    writeln!(
        out,
        "<div class=\"decision-list\"><div class=\"decision-head\"><span>seq</span><span>time</span><span>epoch</span><span>intents</span><span>reason</span><span>outcomes</span></div>"
    )?;
    for d in decisions {
        let mut class = String::from("decision");
        if d.changes_primary() {
            class.push_str(" changes-primary");
        }
        if page.findings.contains(&d.seq) {
            class.push_str(" questioned");
        }
        let what = match d.intents.as_slice() {
            [] => "nothing".to_owned(),
            [one] => esc(&one.planned.intent.describe()),
            [first, rest @ ..] => format!(
                "{} <span class=\"more\">+{} more</span>",
                esc(&first.planned.intent.describe()),
                rest.len()
            ),
        };
        let mut reasons: Vec<&str> = d
            .intents
            .iter()
            .map(|i| i.planned.reason.code.name())
            .collect();
        reasons.dedup();
        writeln!(
            out,
            "<details class=\"{class}\" id=\"decision-{seq}\" data-seq=\"{seq}\" data-when=\"{}\"><summary><span>#{seq}</span><span>{}</span><span>e{}</span><span>{what}</span><span><code>{}</code></span><span>{}</span></summary>",
            Esc(&page.clock.short(d.at)),
            page.clock.html(d.at),
            d.epoch,
            reasons.join(", "),
            outcomes(d),
            seq = d.seq
        )?;
        write_body(out, page, d)?;
        writeln!(out, "</details>")?;
    }
    writeln!(out, "</div></section>")
}

fn write_compared(out: &mut dyn Write, side: &str, list: &[Compared]) -> io::Result<()> {
    write!(out, "<div class=\"side\"><b>{side}</b>")?;
    if list.is_empty() {
        write!(out, " <span class=\"none\">nothing</span>")?;
    } else {
        write!(out, "<ul>")?;
        for c in list {
            write!(
                out,
                "<li>{} <code>{}</code><div class=\"what\">{}</div></li>",
                Esc(&c.intent.describe()),
                Esc(&c.reason),
                Esc(&c.detail)
            )?;
        }
        write!(out, "</ul>")?;
    }
    writeln!(out, "</div>")
}

/// Writes the audit section.
pub fn write_audit(out: &mut dyn Write, page: &Page<'_>) -> io::Result<()> {
    let a = page.audit;
    writeln!(out, "<section id=\"audit\"><h2>Audit</h2>")?;
    if a.is_clean() {
        writeln!(
            out,
            "<p class=\"verdict ok\" id=\"audit-verdict\">Clean: no finding in {} events (seq {} – {}); decisions recomputed with {}.</p>",
            a.events,
            a.first_seq,
            a.last_seq,
            Esc(&a.decider)
        )?;
    } else {
        writeln!(
            out,
            "<p class=\"verdict bad\" id=\"audit-verdict\">{} finding(s) in {} events (seq {} – {}); decisions recomputed with {}.</p>",
            a.findings.len(),
            a.events,
            a.first_seq,
            a.last_seq,
            Esc(&a.decider)
        )?;
    }
    writeln!(
        out,
        "<table class=\"checks\"><thead><tr><th>check</th><th>examined</th><th>findings</th><th>note</th></tr></thead><tbody>"
    )?;
    for c in &a.checks {
        writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num {}\">{}</td><td>{}</td></tr>",
            c.check,
            c.examined,
            if c.findings == 0 { "ok" } else { "bad" },
            c.findings,
            Esc(c.note.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    let decided: std::collections::BTreeSet<u64> =
        page.collect.decisions.iter().map(|d| d.seq).collect();
    for (n, f) in a.findings.iter().enumerate() {
        let target = if decided.contains(&f.seq) {
            format!("decision-{}", f.seq)
        } else {
            format!("event-{}", f.seq)
        };
        writeln!(
            out,
            "<div class=\"finding\" id=\"finding-{}\" data-check=\"{}\" data-seq=\"{seq}\"><p><span class=\"check\">{}</span> at <a href=\"#{target}\">seq {seq}</a>{}: {}</p>",
            n.saturating_add(1),
            f.check.name(),
            f.check.name(),
            f.at.map(|t| format!(" ({})", page.clock.html(t)))
                .unwrap_or_default(),
            Esc(&f.detail),
            seq = f.seq
        )?;
        if f.check == Check::Determinism {
            write_compared(out, "recorded", &f.recorded)?;
            write_compared(out, "recomputed", &f.recomputed)?;
        }
        writeln!(out, "</div>")?;
    }
    if !a.open_intents.is_empty() {
        writeln!(
            out,
            "<p class=\"note\">In flight at the head (not findings: the operator may still be carrying them out):</p><ul>"
        )?;
        for o in &a.open_intents {
            writeln!(
                out,
                "<li>{} (decided at <a href=\"#decision-{seq}\">#{seq}</a>)</li>",
                Esc(&o.intent),
                seq = o.decided_seq
            )?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}
