//! `reshards`: one record per slot migration the operator decided —
//! slots, source, target, start, end, outcome.
//!
//! Cluster mode does not exist yet, so no journal holds a `MigrateSlots`
//! decision and the verb reports none, correctly. Moves made outside the
//! operator, and how long writes were paused, need slot observations that
//! Cluster mode will journal; until then they are not reported.

use std::collections::BTreeMap;
use std::io::Write;

use logbook_journal::{Envelope, Event, Intent, SlotRange, Timestamp};
use serde::Serialize;
use uuid::Uuid;

use crate::error::Result;
use crate::source::{Flow, Raw, Visit};

/// One slot migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reshard {
    /// Seq of the decision.
    pub decided_seq: u64,
    /// When it was decided (the migration's start).
    pub started: Timestamp,
    /// Source primary pod.
    pub from: String,
    /// Target primary pod.
    pub to: String,
    /// The slots.
    pub slots: Vec<(u16, u16)>,
    /// When its outcome was journaled.
    pub ended: Option<Timestamp>,
    /// The outcome, for people (`None` while in flight).
    pub outcome: Option<String>,
}

/// The `reshards` visitor.
#[derive(Debug, Default)]
pub struct Reshards {
    /// Records, in decision order.
    pub records: Vec<Reshard>,
    open: BTreeMap<Uuid, usize>,
}

impl Visit for Reshards {
    fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> Result<Flow> {
        let (id, outcome) = match &e.body {
            Event::Decided { intents } => {
                for p in intents {
                    if let Intent::MigrateSlots { from, to, slots } = &p.intent {
                        self.records.push(Reshard {
                            decided_seq: e.seq,
                            started: e.at,
                            from: from.clone(),
                            to: to.clone(),
                            slots: slots
                                .iter()
                                .map(|SlotRange { start, end }| (*start, *end))
                                .collect(),
                            ended: None,
                            outcome: None,
                        });
                        self.open
                            .insert(p.intent_id, self.records.len().saturating_sub(1));
                    }
                }
                return Ok(Flow::Continue);
            }
            Event::IntentSucceeded { intent_id, detail } => {
                (intent_id, format!("completed: {detail}"))
            }
            Event::IntentFailed {
                intent_id, error, ..
            } => (intent_id, format!("failed: {error}")),
            Event::IntentAbandoned { intent_id, reason } => {
                (intent_id, format!("abandoned: {reason}"))
            }
            _ => return Ok(Flow::Continue),
        };
        if let Some(r) = self.open.remove(id).and_then(|i| self.records.get_mut(i)) {
            r.ended = Some(e.at);
            r.outcome = Some(outcome);
        }
        Ok(Flow::Continue)
    }
}

/// Writes the records for people.
///
/// # Errors
/// Output errors.
pub fn write_text(out: &mut dyn Write, records: &[Reshard]) -> std::io::Result<()> {
    if records.is_empty() {
        return writeln!(
            out,
            "no reshards: the journal holds no slot migration (Cluster mode is not in this journal)"
        );
    }
    for r in records {
        let slots: Vec<String> = r.slots.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        writeln!(
            out,
            "reshard #{}: slots {} from {} to {}, started {}, ended {}: {}",
            r.decided_seq,
            slots.join(","),
            r.from,
            r.to,
            r.started,
            r.ended.map_or_else(|| "-".to_owned(), |t| t.to_string()),
            r.outcome.as_deref().unwrap_or("in flight")
        )?;
    }
    Ok(())
}
