//! `audit`: is the journal consistent with the operator's rules?
//!
//! 1. Determinism ([`determinism`]): the journal is folded again and, at
//!    every recorded decision, the [`Decider`] is run on the projection as
//!    it was, at the recorded time, under the recorded policy; any
//!    difference from the recorded intents is a finding with both sides.
//!    With the decider of a newer build this answers "would this version
//!    have decided the same?".
//! 2. Missed decisions ([`missed`]): the [`Decider`] is run where no
//!    decision is recorded too, and a decision it asks for where the
//!    runtime decides next (or for longer than any runtime waits) that the
//!    journal never records is a finding.
//! 3. Takeovers ([`takeover`]): each intent a new leader found in flight
//!    is judged found done or not again, with the decider's
//!    [`Decider::already_done`]; the leader decides nothing else that no
//!    `Decided` records.
//! 4. Invariants ([`invariants`]), checked at every step of the fold.
//! 5. The chain: the scan checks every CRC and link and the head.
//!
//! Exit status: 0 clean, 1 findings, 2 unreadable input (the caller maps
//! [`AuditReport::is_clean`] and [`crate::ReplayError::exit_code`]).

mod cluster;
pub mod determinism;
pub mod invariants;
pub mod missed;
mod moves;
mod reshard;
mod slot_claims;
pub mod takeover;

use std::io::Write;

use logbook_journal::{ClusterState, Envelope, Intent, Policy, Reason, Timestamp};
use serde::Serialize;

use crate::error::{ReplayError, Result};
use crate::source::{Flow, Input, Position, Raw, Start, Visit};

/// The decision function under audit: the operator passes its `decide`.
pub trait Decider {
    /// What should be done for `state` at `now` under `policy` (intents
    /// and reasons, in order).
    fn decide(
        &self,
        state: &ClusterState,
        now: Timestamp,
        policy: &Policy,
    ) -> Vec<(Intent, Reason)>;

    /// The build this decider comes from, for the report.
    fn build(&self) -> String;

    /// What shows that `intent`, found without an outcome when a new
    /// leader took the journal over, already took effect in `state` (the
    /// projection re-observed since), or `None` when nothing does. The
    /// operator resolves such an intent as found done exactly when this
    /// says so and abandons it otherwise; the `takeover-resolution` check
    /// judges each resolution again with it.
    fn already_done(&self, state: &ClusterState, intent: &Intent) -> Option<String>;

    /// How this build tells a reshard given up (its status would say
    /// `Failing`), when it can; `reshards` reports a failing reshard's
    /// `given_up` with it.
    fn reshard_given_up(&self) -> Option<crate::reshards::GivenUp> {
        None
    }
}

/// Which rule a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The recomputed decision differs from the recorded one.
    Determinism,
    /// Two pods served as primary of one shard at once.
    TwoPrimaries,
    /// An intent has no outcome although a later operator took over.
    IntentWithoutOutcome,
    /// An outcome names an intent that was never decided (or settled twice).
    OutcomeWithoutIntent,
    /// A writer whose epoch was superseded decided or acted.
    StaleEpoch,
    /// A decision was taken while the cluster was paused, or, unbound, one
    /// other than releasing its objects, or a failover while it hibernated
    /// or woke, or one making a pod of a standby primary before its
    /// promotion.
    ActionWhilePaused,
    /// At a quiet point of a formed Valkey Cluster a slot was served by
    /// no primary, or by two at one config epoch.
    SlotOwnership,
    /// A forced or takeover Cluster failover without the reason and the
    /// journaled death that justify it.
    UnjustifiedFailover,
    /// A forced or takeover Cluster failover to a node that never
    /// replicated the shard (its data wiped, or an empty node).
    WipedNodePromoted,
    /// Two primaries claimed one slot at its highest config epoch, or a
    /// slot that had an owner was claimed by none (after every change of
    /// the nodes' claims).
    SlotClaims,
    /// A `MoveSlots` reported succeeded that the journal does not show
    /// done, or an ambiguous one reported as a plain success.
    MoveOutcome,
    /// A `MoveSlots` decided while a job or another move of overlapping
    /// slots stood.
    MoveIssuedTwice,
    /// An intent found in flight at a takeover resolved otherwise than
    /// the decider judges it (found done or not), or carried out again
    /// under its old id, which no `Decided` orders.
    TakeoverResolution,
    /// `decide` asks for something where the runtime decides next (or for
    /// longer than a leading runtime waits), and no decision is recorded.
    MissedDecision,
    /// The journal does not verify (CRC, link, seq, head).
    Chain,
    /// The snapshot the audit started from (the events before it
    /// compacted away) is not the one the operator journaled taking: its
    /// state's digest differs from `SnapshotRecorded`'s.
    SnapshotDigest,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Self; 16] = [
        Self::Determinism,
        Self::TwoPrimaries,
        Self::IntentWithoutOutcome,
        Self::OutcomeWithoutIntent,
        Self::StaleEpoch,
        Self::ActionWhilePaused,
        Self::SlotOwnership,
        Self::UnjustifiedFailover,
        Self::WipedNodePromoted,
        Self::SlotClaims,
        Self::MoveOutcome,
        Self::MoveIssuedTwice,
        Self::TakeoverResolution,
        Self::MissedDecision,
        Self::Chain,
        Self::SnapshotDigest,
    ];

    /// The check's name in reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Determinism => "determinism",
            Self::TwoPrimaries => "two-primaries",
            Self::IntentWithoutOutcome => "intent-without-outcome",
            Self::OutcomeWithoutIntent => "outcome-without-intent",
            Self::StaleEpoch => "stale-epoch",
            Self::ActionWhilePaused => "action-while-paused",
            Self::SlotOwnership => "slot-ownership",
            Self::UnjustifiedFailover => "unjustified-failover",
            Self::WipedNodePromoted => "wiped-node-promoted",
            Self::SlotClaims => "slot-claims",
            Self::MoveOutcome => "move-outcome",
            Self::MoveIssuedTwice => "move-issued-twice",
            Self::TakeoverResolution => "takeover-resolution",
            Self::MissedDecision => "missed-decision",
            Self::Chain => "chain",
            Self::SnapshotDigest => "snapshot-digest",
        }
    }
}

/// One intent and its reason, as compared by the determinism check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compared {
    /// The intent.
    pub intent: Intent,
    /// The reason's code name.
    pub reason: String,
    /// The reason, for people.
    pub detail: String,
}

/// Something the journal shows that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub check: Check,
    /// The seq where it shows.
    pub seq: u64,
    /// The time of that event, when there is one.
    pub at: Option<Timestamp>,
    /// What is wrong, for people.
    pub detail: String,
    /// For a determinism finding: what the journal recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recorded: Vec<Compared>,
    /// For a determinism finding: what the decider computes now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recomputed: Vec<Compared>,
}

/// How much one check looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckSummary {
    /// The check's name.
    pub check: &'static str,
    /// Points it examined (decisions, steps, intents, events).
    pub examined: u64,
    /// Findings it made.
    pub findings: usize,
    /// When it had nothing to examine, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An intent decided and not settled at the head, with no takeover since:
/// the operator may still be carrying it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenIntent {
    /// Seq of its decision.
    pub decided_seq: u64,
    /// The intent.
    pub intent: String,
}

/// The audit's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// The stream.
    pub stream: String,
    /// `namespace/name`, when known.
    pub cluster: Option<String>,
    /// The decider's build.
    pub decider: String,
    /// First seq audited (after a snapshot when the start was compacted).
    pub first_seq: u64,
    /// Last seq audited.
    pub last_seq: u64,
    /// Events audited.
    pub events: u64,
    /// Per check: how much it examined and found.
    pub checks: Vec<CheckSummary>,
    /// Every finding, in seq order.
    pub findings: Vec<Finding>,
    /// Intents still in flight at the head (not findings).
    pub open_intents: Vec<OpenIntent>,
}

impl AuditReport {
    /// Whether nothing was found.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The audit visitor: folds the journal, recomputes each decision and
/// checks the invariants at every step.
pub struct Audit<'d> {
    decider: &'d dyn Decider,
    state: ClusterState,
    determinism: determinism::Determinism<'d>,
    missed: missed::MissedDecisions<'d>,
    takeovers: takeover::Takeovers<'d>,
    invariants: invariants::Invariants,
    first_seq: u64,
    last_seq: u64,
    events: u64,
    head: Option<logbook_journal::Head>,
    /// The stream and its cluster, once the scan started.
    about: Option<(String, Option<String>)>,
    /// The snapshot the scan started from: its seq and the digest its
    /// state carries (none: an older format, or an export).
    snapshot: Option<(u64, Option<logbook_journal::codec::StateDigest>)>,
    /// What the journal said of it: the digest `SnapshotRecorded` gave
    /// for that seq, and where.
    recorded_digest: Option<(u64, Timestamp, logbook_journal::codec::StateDigest)>,
}

impl<'d> Audit<'d> {
    /// An audit with `decider`.
    pub fn new(decider: &'d dyn Decider) -> Self {
        Self {
            decider,
            state: ClusterState::new(),
            determinism: determinism::Determinism::new(decider),
            missed: missed::MissedDecisions::new(decider),
            takeovers: takeover::Takeovers::new(decider),
            invariants: invariants::Invariants::default(),
            first_seq: 1,
            last_seq: 0,
            events: 0,
            head: None,
            about: None,
            snapshot: None,
            recorded_digest: None,
        }
    }

    /// The snapshot check: the digest the starting snapshot carries
    /// against the one the journal recorded for it (examined: 1 when both
    /// are known).
    fn snapshot_check(&self) -> (Vec<Finding>, CheckSummary) {
        let mut findings = Vec::new();
        let note = match (self.snapshot, self.recorded_digest) {
            (None, _) => Some("the audit started at seq 1, from no snapshot".to_owned()),
            (Some((seq, None)), _) => Some(format!(
                "the snapshot at seq {seq} carries no digest (written before format 13)"
            )),
            (Some((seq, Some(_))), None) => Some(format!(
                "no SnapshotRecorded for the snapshot at seq {seq} among the events kept"
            )),
            (Some((seq, Some(stored))), Some((at_seq, at, recorded))) => {
                if stored != recorded {
                    findings.push(Finding {
                        check: Check::SnapshotDigest,
                        seq: at_seq,
                        at: Some(at),
                        detail: format!(
                            "the snapshot at seq {seq} holds a state with digest {stored}, but the operator journaled {recorded} when it took it: the audit started from a state the operator never had"
                        ),
                        recorded: Vec::new(),
                        recomputed: Vec::new(),
                    });
                }
                None
            }
        };
        let summary = CheckSummary {
            check: Check::SnapshotDigest.name(),
            examined: u64::from(note.is_none()),
            findings: findings.len(),
            note,
        };
        (findings, summary)
    }
}

impl Visit for Audit<'_> {
    fn start(&mut self, start: &Start) -> Result<()> {
        self.state = start.base.clone();
        self.first_seq = start.first_seq();
        self.last_seq = start.base.last_seq;
        self.head = Some(start.head);
        self.about = Some((start.stream.to_string(), start.cluster.clone()));
        self.snapshot = start.from_snapshot.map(|seq| (seq, start.snapshot_digest));
        self.invariants.start(&self.state);
        self.missed.start(&self.state);
        Ok(())
    }

    fn event(&mut self, envelope: &Envelope, _raw: Raw<'_>) -> Result<Flow> {
        if let logbook_journal::Event::SnapshotRecorded { seq, digest, .. } = &envelope.body
            && self.snapshot.is_some_and(|(from, _)| from == *seq)
        {
            self.recorded_digest = Some((envelope.seq, envelope.at, *digest));
        }
        self.determinism.before(&self.state, envelope);
        self.missed.before(&self.state, envelope);
        self.takeovers.before(&self.state, envelope);
        self.invariants.before(&self.state, envelope);
        self.state.apply(envelope);
        self.invariants.after(&self.state, envelope);
        self.missed.after(&self.state, envelope);
        self.last_seq = envelope.seq;
        self.events = self.events.saturating_add(1);
        Ok(Flow::Continue)
    }
}

/// Audits `input` with `decider`.
///
/// # Errors
/// [`ReplayError::Unreadable`] / [`ReplayError::Store`] when the input
/// cannot be read at all; a damaged journal is a finding, not an error
/// (the events before the damage are audited).
pub async fn audit<S: logbook_journal::JournalStore>(
    input: &Input<S>,
    decider: &dyn Decider,
) -> Result<AuditReport> {
    let mut run = Audit::new(decider);
    let scanned = input.scan(None, &mut run).await;
    run.report(scanned)
}

impl Audit<'_> {
    /// The report, once the scan this audit visited ended with `scanned`.
    ///
    /// # Errors
    /// The scan's error when the input could not be read at all; damage
    /// after the start is a chain finding.
    pub fn report(mut self, scanned: Result<Position>) -> Result<AuditReport> {
        let mut chain: Vec<Finding> = Vec::new();
        match scanned {
            Ok(position) => {
                if let Some(head) = self.head
                    && position.seq == head.seq
                    && position.hash != head.hash
                {
                    chain.push(Finding {
                        check: Check::Chain,
                        seq: head.seq,
                        at: None,
                        detail: format!(
                            "the head names hash {} but the event at seq {} hashes to {}",
                            head.hash, head.seq, position.hash
                        ),
                        recorded: Vec::new(),
                        recomputed: Vec::new(),
                    });
                }
            }
            Err(ReplayError::Corrupt { seq, source, .. }) => chain.push(Finding {
                check: Check::Chain,
                seq,
                at: None,
                detail: format!(
                    "the journal does not verify at seq {seq}: {source}; audited up to seq {}",
                    seq.saturating_sub(1)
                ),
                recorded: Vec::new(),
                recomputed: Vec::new(),
            }),
            Err(ReplayError::BadLine {
                seq, what, line, ..
            }) if self.about.is_some() => chain.push(Finding {
                check: Check::Chain,
                seq,
                at: None,
                detail: format!(
                    "line {line}: {what}; audited up to seq {}",
                    seq.saturating_sub(1)
                ),
                recorded: Vec::new(),
                recomputed: Vec::new(),
            }),
            Err(other) => return Err(other),
        }
        let (stream, cluster) = self.about.take().unwrap_or_default();
        let (snapshot_findings, snapshot_summary) = self.snapshot_check();
        let (det_findings, decisions) = self.determinism.finish();
        let (missed_findings, boundaries, missed_note) = self.missed.finish();
        let (takeover_findings, resolutions, takeover_note) = self.takeovers.finish();
        let inv = self.invariants.finish(&self.state);
        let mut findings: Vec<Finding> = det_findings;
        findings.extend(missed_findings);
        findings.extend(takeover_findings);
        findings.extend(inv.findings);
        findings.extend(chain);
        findings.extend(snapshot_findings);
        findings.sort_by(|a, b| a.seq.cmp(&b.seq).then(a.check.cmp(&b.check)));
        let count = |check: Check| findings.iter().filter(|f| f.check == check).count();
        let mut checks = vec![CheckSummary {
            check: Check::Determinism.name(),
            examined: decisions,
            findings: count(Check::Determinism),
            note: (decisions == 0).then(|| "no decision in the journal".to_owned()),
        }];
        let more = [
            (Check::TakeoverResolution, resolutions, takeover_note),
            (Check::MissedDecision, boundaries, missed_note),
        ];
        for (check, examined, note) in inv.examined.into_iter().chain(more) {
            checks.push(CheckSummary {
                check: check.name(),
                examined,
                findings: count(check),
                note,
            });
        }
        checks.push(CheckSummary {
            check: Check::Chain.name(),
            examined: self.events,
            findings: count(Check::Chain),
            note: None,
        });
        checks.push(snapshot_summary);
        Ok(AuditReport {
            stream,
            cluster,
            decider: self.decider.build(),
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            events: self.events,
            checks,
            findings,
            open_intents: inv.open,
        })
    }
}

/// Writes the report for people.
///
/// # Errors
/// Output errors.
pub fn write_text(out: &mut dyn Write, report: &AuditReport) -> std::io::Result<()> {
    writeln!(
        out,
        "audit of stream {}{}: seq {}..={} ({} events), decisions recomputed with {}",
        report.stream,
        report
            .cluster
            .as_ref()
            .map(|c| format!(" (cluster {c})"))
            .unwrap_or_default(),
        report.first_seq,
        report.last_seq,
        report.events,
        report.decider
    )?;
    for c in &report.checks {
        writeln!(
            out,
            "  {:<24} {:>9} examined  {}{}",
            c.check,
            c.examined,
            if c.findings == 0 {
                "ok".to_owned()
            } else {
                format!("{} FINDINGS", c.findings)
            },
            c.note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        )?;
    }
    for f in &report.findings {
        writeln!(
            out,
            "FINDING {} at seq {}{}: {}",
            f.check.name(),
            f.seq,
            f.at.map(|t| format!(" ({t})")).unwrap_or_default(),
            f.detail
        )?;
        for r in &f.recorded {
            writeln!(
                out,
                "    recorded:   {} [{}: {}]",
                r.intent.describe(),
                r.reason,
                r.detail
            )?;
        }
        if matches!(f.check, Check::Determinism | Check::MissedDecision) && f.recorded.is_empty() {
            writeln!(out, "    recorded:   (nothing)")?;
        }
        for r in &f.recomputed {
            writeln!(
                out,
                "    recomputed: {} [{}: {}]",
                r.intent.describe(),
                r.reason,
                r.detail
            )?;
        }
        if f.check == Check::Determinism && f.recomputed.is_empty() {
            writeln!(out, "    recomputed: (nothing)")?;
        }
    }
    for o in &report.open_intents {
        writeln!(
            out,
            "  open at the head: {} (decided at seq {})",
            o.intent, o.decided_seq
        )?;
    }
    writeln!(
        out,
        "{}",
        if report.is_clean() {
            "audit: clean".to_owned()
        } else {
            format!("audit: {} finding(s)", report.findings.len())
        }
    )
}
