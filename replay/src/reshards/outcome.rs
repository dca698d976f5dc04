//! How moves end and reshards stand: each outcome settles its migration
//! (ownership right after it resolves an ambiguous job), counts the
//! failures of its source and target in a row, and brings its reshard's
//! outcome up to date; the slot map tells when the last reshard balanced.

use std::collections::BTreeMap;

use logbook_journal::cluster::SLOTS;
use logbook_journal::{ClusterState, Envelope, Event};
use uuid::Uuid;

use super::{FailingPair, MoveOutcome, Phase, ReshardOutcome, Reshards};
use crate::failovers::{Mark, Outcome};

impl Reshards {
    /// Settles a move or a slot; `self.state` already holds the outcome.
    pub(super) fn on_outcome(
        &mut self,
        e: &Envelope,
        intent_id: &Uuid,
        how: Outcome,
        retryable: bool,
    ) {
        if self.settle_outcome(e, intent_id, &how) {
            return;
        }
        let Some((r, m)) = self.open_moves.remove(intent_id) else {
            return;
        };
        let owners = self.state.cluster.slot_owners();
        let Some(record) = self.records.get_mut(r) else {
            return;
        };
        let Some(mig) = record.migrations.get_mut(m) else {
            return;
        };
        let owned = mig.target.node_id.as_deref().map_or(0, |target| {
            mig.slots
                .iter()
                .flat_map(|range| range.start..=range.end)
                .filter(|slot| owners.get(usize::from(*slot)).copied().flatten() == Some(target))
                .count()
        });
        let owned = u32::try_from(owned).unwrap_or(u32::MAX);
        let ambiguous = mig
            .jobs
            .iter()
            .flat_map(|j| j.phases.iter())
            .any(Phase::is_ambiguous);
        let (outcome_name, detail) = match &how {
            Outcome::Completed => ("succeeded", String::new()),
            Outcome::Failed(error) => ("failed", error.clone()),
            Outcome::Abandoned(reason) => ("abandoned", reason.clone()),
            Outcome::Pending => ("pending", String::new()),
        };
        let detail = match &e.body {
            Event::IntentSucceeded { detail, .. } => detail.clone(),
            _ => detail,
        };
        // The projection's own rule: a move whose job is still seen under
        // way has not failed.
        let running = self.state.reshard.migrations.values().any(|m| {
            Some(m.job.source.as_str()) == mig.source.node_id.as_deref()
                && Some(m.job.target.as_str()) == mig.target.node_id.as_deref()
        });
        mig.outcome = match how {
            Outcome::Failed(error) if running && !ambiguous => {
                MoveOutcome::LeftRunning { detail: error }
            }
            Outcome::Completed | Outcome::Failed(_) if ambiguous => MoveOutcome::Ambiguous {
                resolved: if owned == mig.slot_count {
                    "moved"
                } else if owned == 0 {
                    "not moved"
                } else {
                    "partly moved"
                },
                outcome: outcome_name,
                detail,
            },
            Outcome::Completed => MoveOutcome::Succeeded { detail },
            Outcome::Failed(error) => MoveOutcome::Failed { error, retryable },
            Outcome::Abandoned(reason) => MoveOutcome::Abandoned { reason },
            Outcome::Pending => MoveOutcome::Pending,
        };
        mig.target_owned_after = Some(owned);
        mig.ended = Some(Mark {
            seq: e.seq,
            at: e.at,
            what: e.body.kind().to_owned(),
        });
        record.ended.clone_from(&mig.ended);
        let moved = owned == mig.slot_count && outcome_name != "abandoned";
        if moved {
            record.slots_moved = record.slots_moved.saturating_add(mig.slot_count);
        }
        let key = (
            r,
            mig.source.node_id.clone().unwrap_or_default(),
            mig.target.node_id.clone().unwrap_or_default(),
        );
        let run = self.runs.entry(key).or_default();
        match &mig.outcome {
            MoveOutcome::Failed { error, .. } => {
                run.failures = run.failures.saturating_add(1);
                run.same_error = if run.last_error == *error {
                    run.same_error.saturating_add(1)
                } else {
                    1
                };
                run.last_error.clone_from(error);
                run.failed_ever = run.failed_ever.saturating_add(1);
            }
            MoveOutcome::Succeeded { .. } | MoveOutcome::Ambiguous { .. } => {
                run.failures = 0;
                run.same_error = 0;
                run.last_error.clear();
            }
            MoveOutcome::LeftRunning { .. }
            | MoveOutcome::Abandoned { .. }
            | MoveOutcome::Pending => {}
        }
        self.judge(r);
    }

    /// Brings record `r`'s outcome up to date (a balanced or superseded
    /// reshard stays so).
    pub(super) fn judge(&mut self, r: usize) {
        let failing: Vec<FailingPair> = self
            .runs
            .iter()
            .filter(|((rec, _, _), run)| *rec == r && run.failures > 0)
            .map(|((_, from, to), run)| FailingPair {
                from: self.node(None, from),
                to: self.node(None, to),
                failures: run.failures,
                same_error: run.same_error,
                last_error: run.last_error.clone(),
            })
            .collect();
        let given_up = self.given_up.map(|f| f(&self.state));
        let Some(record) = self.records.get_mut(r) else {
            return;
        };
        if matches!(
            record.outcome,
            ReshardOutcome::Balanced { .. } | ReshardOutcome::Superseded { .. }
        ) {
            return;
        }
        let under_way = record
            .migrations
            .iter()
            .any(|m| m.outcome == MoveOutcome::Pending);
        record.outcome = if under_way || failing.is_empty() {
            ReshardOutcome::InProgress
        } else {
            ReshardOutcome::Failing {
                given_up,
                pairs: failing,
            }
        };
    }

    /// The last reshard balanced, if the slot map now says so.
    pub(super) fn check_balance(&mut self, e: &Envelope) {
        let Some(record) = self.records.last_mut() else {
            return;
        };
        if matches!(
            record.outcome,
            ReshardOutcome::Balanced { .. } | ReshardOutcome::Superseded { .. }
        ) {
            return;
        }
        if balanced(&self.state, record.shards) {
            record.outcome = ReshardOutcome::Balanced {
                seq: e.seq,
                at: e.at,
            };
        }
    }
}

/// Whether the slot map shows `shards` owners of an even split, every
/// slot owned.
#[must_use]
pub fn balanced(state: &ClusterState, shards: u32) -> bool {
    if shards == 0 {
        return false;
    }
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for owner in state.cluster.slot_owners() {
        match owner {
            Some(id) => {
                let n = counts.entry(id).or_default();
                *n = n.saturating_add(1);
            }
            None => return false,
        }
    }
    let floor = SLOTS / shards;
    let ceil = floor.saturating_add(u32::from(!SLOTS.is_multiple_of(shards)));
    counts.len() == usize::try_from(shards).unwrap_or(usize::MAX)
        && counts.values().all(|c| *c == floor || *c == ceil)
}
