//! The determinism check: at every recorded decision, run the decider on
//! the projection as it was just before (`decide` ran on the state folded
//! up to the previous event, at that event's time, under the policy in
//! force) and compare intents and reason codes with what was recorded.
//! Intent ids are drawn outside `decide` and the reasons' sentences are
//! for people, so neither is compared.

use logbook_journal::{ClusterState, Envelope, Event, PlannedIntent};

use super::{Check, Compared, Decider, Finding};

/// State of the check across a scan.
pub struct Determinism<'d> {
    decider: &'d dyn Decider,
    findings: Vec<Finding>,
    decisions: u64,
}

impl<'d> Determinism<'d> {
    /// A check with `decider`.
    pub fn new(decider: &'d dyn Decider) -> Self {
        Self {
            decider,
            findings: Vec::new(),
            decisions: 0,
        }
    }

    /// Called with the state before `envelope` is folded.
    pub fn before(&mut self, state: &ClusterState, envelope: &Envelope) {
        let Event::Decided { intents } = &envelope.body else {
            return;
        };
        self.decisions = self.decisions.saturating_add(1);
        let default_policy;
        let policy = match &state.policy {
            Some(p) => p,
            None => {
                default_policy = logbook_journal::Policy::default();
                &default_policy
            }
        };
        let recomputed = self.decider.decide(state, state.last_at, policy);
        let same = recomputed.len() == intents.len()
            && recomputed
                .iter()
                .zip(intents)
                .all(|((intent, reason), p)| *intent == p.intent && reason.code == p.reason.code);
        if same {
            return;
        }
        self.findings.push(Finding {
            check: Check::Determinism,
            seq: envelope.seq,
            at: Some(envelope.at),
            detail: format!(
                "the decision recorded at seq {} differs from what {} decides on the projection at seq {} ({})",
                envelope.seq,
                self.decider.build(),
                state.last_seq,
                state.last_at
            ),
            recorded: intents.iter().map(recorded).collect(),
            recomputed: recomputed
                .into_iter()
                .map(|(intent, reason)| Compared {
                    intent,
                    reason: reason.code.name().to_owned(),
                    detail: reason.detail,
                })
                .collect(),
        });
    }

    /// The findings and the number of decisions recomputed.
    pub fn finish(self) -> (Vec<Finding>, u64) {
        (self.findings, self.decisions)
    }
}

fn recorded(p: &PlannedIntent) -> Compared {
    Compared {
        intent: p.intent.clone(),
        reason: p.reason.code.name().to_owned(),
        detail: p.reason.detail.clone(),
    }
}
