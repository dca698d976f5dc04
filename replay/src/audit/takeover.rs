//! The takeover-resolution check: what a new leader did with the intents
//! it found without an outcome when it took the journal over.
//!
//! The operator takes no decision at a takeover that the journal does not
//! record as one. Each intent it finds in flight is either **found done**
//! — the observations made since show its effect, as the decider's
//! [`Decider::already_done`] tells — and journaled `IntentSucceeded`, or
//! it is **abandoned**; whatever the cluster still needs is then decided
//! afresh, in a `Decided` the determinism check recomputes. So the first
//! outcome of each intent in flight at an `OperatorStarted` is judged on
//! the projection just before it:
//!
//! - `IntentSucceeded`: the decider must find it done there;
//! - `IntentAbandoned`: the decider must not (the operator would have
//!   found it done);
//! - `IntentFailed`, or a success the decider does not find done: the
//!   intent was carried out again under its old id — an action no
//!   `Decided` of the new leader orders. (Builds before this rule resumed
//!   an intent `decide` still asked for so; audited with this build,
//!   their journals report each resumption here.)
//!
//! The operator judges them all on the projection as its probe round left
//! it, before the first event of their resolution (an outcome of one of
//! them, or the `ReplicaPromoted` a promotion found done journals first):
//! that projection is the one they are judged on here. When they must be
//! settled (before the new leader's next decision) is the
//! `intent-without-outcome` check's; those left past it are not judged.

use std::collections::BTreeMap;

use logbook_journal::{ClusterState, Envelope, Event, Intent};
use uuid::Uuid;

use super::invariants::finding;
use super::{Check, Decider, Finding};

/// An intent found in flight at a takeover, not resolved yet.
#[derive(Debug, Clone)]
struct Found {
    takeover_seq: u64,
    decided_seq: u64,
    intent: Intent,
}

/// State of the check across a scan.
pub struct Takeovers<'d> {
    decider: &'d dyn Decider,
    findings: Vec<Finding>,
    found: BTreeMap<Uuid, Found>,
    /// The projection just before the resolution's first event, once it
    /// began.
    resolving: Option<ClusterState>,
    /// Resolutions judged.
    judged: u64,
}

impl<'d> Takeovers<'d> {
    /// A check with `decider`.
    pub fn new(decider: &'d dyn Decider) -> Self {
        Self {
            decider,
            findings: Vec::new(),
            found: BTreeMap::new(),
            resolving: None,
            judged: 0,
        }
    }

    /// Called with the state before `e` is folded.
    pub fn before(&mut self, state: &ClusterState, e: &Envelope) {
        let resolution = match &e.body {
            Event::ReplicaPromoted { .. } => true,
            Event::IntentSucceeded { intent_id, .. }
            | Event::IntentFailed { intent_id, .. }
            | Event::IntentAbandoned { intent_id, .. } => self.found.contains_key(intent_id),
            _ => false,
        };
        if resolution && !self.found.is_empty() && self.resolving.is_none() {
            self.resolving = Some(state.clone());
        }
        let judged_on = self.resolving.as_ref().unwrap_or(state);
        match &e.body {
            Event::OperatorStarted { .. } => {
                self.resolving = None;
                self.found = state
                    .in_flight
                    .iter()
                    .map(|(id, f)| {
                        let found = Found {
                            takeover_seq: e.seq,
                            decided_seq: f.decided_seq,
                            intent: f.planned.intent.clone(),
                        };
                        (*id, found)
                    })
                    .collect();
            }
            // Past the new leader's first decision, what is left is
            // overdue (`intent-without-outcome`), not resolved.
            Event::Decided { .. } => {
                self.resolving = None;
                self.found.clear();
            }
            Event::IntentSucceeded { intent_id, detail } => {
                let Some(f) = self.found.remove(intent_id) else {
                    return;
                };
                self.judged = self.judged.saturating_add(1);
                if self.decider.already_done(judged_on, &f.intent).is_none() {
                    let said = if detail.starts_with("found done") {
                        "reported found done"
                    } else {
                        "carried out again under its old id (no Decided orders it)"
                    };
                    self.findings.push(finding(
                        Check::TakeoverResolution,
                        e,
                        format!(
                            "{} is {said}: {detail:?}; but {} does not find it done on the projection at seq {}",
                            f.describe(intent_id),
                            self.decider.build(),
                            judged_on.last_seq
                        ),
                    ));
                }
            }
            Event::IntentFailed {
                intent_id, error, ..
            } => {
                let Some(f) = self.found.remove(intent_id) else {
                    return;
                };
                self.judged = self.judged.saturating_add(1);
                self.findings.push(finding(
                    Check::TakeoverResolution,
                    e,
                    format!(
                        "{} failed ({error}): it was carried out again under its old id, an action no Decided orders; an intent found in flight is found done or abandoned, and decided afresh",
                        f.describe(intent_id)
                    ),
                ));
            }
            Event::IntentAbandoned { intent_id, .. } => {
                let Some(f) = self.found.remove(intent_id) else {
                    return;
                };
                self.judged = self.judged.saturating_add(1);
                if let Some(evidence) = self.decider.already_done(judged_on, &f.intent) {
                    self.findings.push(finding(
                        Check::TakeoverResolution,
                        e,
                        format!(
                            "{} was abandoned, but {} finds it done on the projection at seq {} ({evidence}): it must be resolved found done",
                            f.describe(intent_id),
                            self.decider.build(),
                            judged_on.last_seq
                        ),
                    ));
                }
            }
            _ => {}
        }
        if self.found.is_empty() {
            self.resolving = None;
        }
    }

    /// The findings, the resolutions judged and, when none, why.
    pub fn finish(self) -> (Vec<Finding>, u64, Option<String>) {
        let note = (self.judged == 0).then(|| {
            if self.found.is_empty() {
                "no intent found in flight at a takeover".to_owned()
            } else {
                "the intents found in flight at a takeover are not resolved yet".to_owned()
            }
        });
        (self.findings, self.judged, note)
    }
}

impl Found {
    fn describe(&self, id: &Uuid) -> String {
        format!(
            "intent {id} ({}, decided at seq {}, found in flight at the takeover at seq {})",
            self.intent.describe(),
            self.decided_seq,
            self.takeover_seq
        )
    }
}
