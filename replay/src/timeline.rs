//! `timeline`: one line per event, with the cause chain visible.
//!
//! ```text
//! 2026-11-22T10:00:03.120044Z  #41  e2  PodReachabilityObserved  demo-0 refused (dead)
//! 2026-11-22T10:00:03.131907Z  #42  e2  Decided                  decided: fence demo-0 [PrimaryFailed: …]; promote demo-1 … [PrimaryFailed: …]  (after #41 PodReachabilityObserved)
//! 2026-11-22T10:00:03.201116Z  #43  e2  IntentSucceeded          intent 5e1c9a0b succeeded: …  <- #42 Decided: fence demo-0
//! ```
//!
//! A decision names the observation it was taken on (the event folded
//! just before it: `decide` runs on the projection as of that event); an
//! outcome names its decision and intent; an event with a `cause` names
//! the event it points to.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use logbook_journal::{Envelope, Event, Timestamp};
use uuid::Uuid;

use crate::describe;
use crate::error::{ReplayError, Result};
use crate::source::{Flow, Raw, Start, Visit};

/// Every event kind of the catalog, for `--kinds` checks.
pub const KINDS: [&str; 26] = [
    "SpecChanged",
    "SpecRejected",
    "ClusterDeleted",
    "PodObserved",
    "PodDeleted",
    "KubeNodeObserved",
    "PodReachabilityObserved",
    "NodeRoleObserved",
    "ReplicationObserved",
    "PrimaryUnreachable",
    "ReplicaPromoted",
    "Decided",
    "IntentSucceeded",
    "IntentFailed",
    "IntentAbandoned",
    "PolicyRecorded",
    "OperatorStarted",
    "OperatorStopped",
    "LeadershipAcquired",
    "LeadershipLost",
    "SnapshotTaken",
    "RoleLabelObserved",
    "StatefulSetObserved",
    "SwitchoverRequestObserved",
    "PodTerminating",
    "FailoverRequestObserved",
];

/// Which events a timeline shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events at or before this time.
    pub until: Option<Timestamp>,
    /// Only these kinds (all when empty).
    pub kinds: BTreeSet<String>,
}

impl Filter {
    /// A filter on `kinds` (catalog names, comma-separated lists allowed).
    ///
    /// # Errors
    /// [`ReplayError::BadArgument`] naming an unknown kind and the known ones.
    pub fn with_kinds<I: IntoIterator<Item = String>>(mut self, kinds: I) -> Result<Self> {
        for kind in kinds {
            for kind in kind.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                if !KINDS.contains(&kind) {
                    return Err(ReplayError::BadArgument(format!(
                        "--kinds: unknown event kind {kind:?}; the kinds are {}",
                        KINDS.join(", ")
                    )));
                }
                self.kinds.insert(kind.to_owned());
            }
        }
        Ok(self)
    }

    /// Whether `envelope` passes.
    #[must_use]
    pub fn admits(&self, envelope: &Envelope) -> bool {
        self.since.is_none_or(|t| envelope.at >= t)
            && self.until.is_none_or(|t| envelope.at <= t)
            && (self.kinds.is_empty() || self.kinds.contains(envelope.body.kind()))
    }
}

/// The timeline visitor: writes each admitted event as it is scanned.
pub struct Timeline<'w> {
    out: &'w mut dyn Write,
    filter: Filter,
    /// Decided events by id (what `cause` points to).
    decisions: HashMap<Uuid, u64>,
    /// Intents by id → (seq of their decision, one-line description).
    intents: HashMap<Uuid, (u64, String)>,
    /// The event folded before the current one.
    previous: Option<(u64, &'static str)>,
    /// Lines written.
    pub lines: u64,
}

impl<'w> Timeline<'w> {
    /// A timeline writing to `out`.
    pub fn new(out: &'w mut dyn Write, filter: Filter) -> Self {
        Self {
            out,
            filter,
            decisions: HashMap::new(),
            intents: HashMap::new(),
            previous: None,
            lines: 0,
        }
    }

    fn chain(&self, envelope: &Envelope) -> String {
        let outcome_of = match &envelope.body {
            Event::IntentSucceeded { intent_id, .. }
            | Event::IntentFailed { intent_id, .. }
            | Event::IntentAbandoned { intent_id, .. } => Some(intent_id),
            _ => None,
        };
        if let Some(id) = outcome_of {
            return match self.intents.get(id) {
                Some((seq, what)) => format!("  <- #{seq} Decided: {what}"),
                None => format!(
                    "  <- intent {} (its decision is not in this journal)",
                    describe::short_id(id)
                ),
            };
        }
        if let Event::Decided { .. } = envelope.body {
            return self
                .previous
                .map(|(seq, kind)| format!("  (after #{seq} {kind})"))
                .unwrap_or_default();
        }
        match envelope.cause {
            Some(cause) => match self.decisions.get(&cause) {
                Some(seq) => format!("  <- #{seq} Decided"),
                None => format!("  <- event {}", describe::short_id(&cause)),
            },
            None => String::new(),
        }
    }
}

/// Formats one timeline line (without the cause chain).
#[must_use]
pub fn line(envelope: &Envelope) -> String {
    format!(
        "{}  #{}  e{}  {:<25} {}",
        envelope.at,
        envelope.seq,
        envelope.epoch,
        envelope.body.kind(),
        describe::summary(&envelope.body)
    )
}

impl Visit for Timeline<'_> {
    fn start(&mut self, start: &Start) -> Result<()> {
        if let Some(seq) = start.from_snapshot {
            writeln!(
                self.out,
                "# stream {}: events up to seq {seq} were compacted; the timeline starts after the snapshot at seq {seq}",
                start.stream
            )?;
        }
        // Intents the snapshot holds in flight can still settle later.
        for (id, f) in &start.base.in_flight {
            self.intents
                .insert(*id, (f.decided_seq, f.planned.intent.describe()));
        }
        Ok(())
    }

    fn event(&mut self, envelope: &Envelope, _raw: Raw<'_>) -> Result<Flow> {
        if let Event::Decided { intents } = &envelope.body {
            self.decisions.insert(envelope.id, envelope.seq);
            for p in intents {
                self.intents
                    .insert(p.intent_id, (envelope.seq, p.intent.describe()));
            }
        }
        if self.filter.admits(envelope) {
            let chain = self.chain(envelope);
            writeln!(self.out, "{}{chain}", line(envelope))?;
            self.lines = self.lines.saturating_add(1);
        }
        self.previous = Some((envelope.seq, envelope.body.kind()));
        Ok(Flow::Continue)
    }
}
