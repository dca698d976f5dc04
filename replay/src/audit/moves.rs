//! The checks on `MoveSlots`:
//!
//! - **move outcome**: a move reported succeeded must be shown done — its
//!   target owning all its slots in the slot map — by the journal before
//!   the next decision, and the target's next own report must not leave
//!   them out; when a job for it failed ambiguously ("migration may have
//!   succeeded with lost writes"), its success must say so (its detail
//!   mentions `ambiguous`, `may have succeeded` or `lost writes`), never
//!   pass for a plain one. A success the journal ends before confirming
//!   is said not judged (the check's note), not a finding.
//! - **moves issued twice**: a move is never decided while an export job
//!   for overlapping slots is seen under way with other slots or another
//!   target, nor beside another `MoveSlots` of overlapping slots (in
//!   flight, or in the same decision): a job adopted is named exactly,
//!   never started again.

use std::collections::BTreeMap;

use logbook_journal::cluster::{describe_slots, slot_count};
use logbook_journal::{ClusterState, Envelope, Event, Intent, MigrationSide, SlotRange, Timestamp};
use uuid::Uuid;

use super::invariants::finding;
use super::slot_claims::SlotClaims;
use super::{Check, Finding};
use crate::cluster_facts::short;

/// A `MoveSlots` decided and not settled.
#[derive(Debug, Clone)]
struct Move {
    to: String,
    from_node: String,
    to_node: String,
    slots: Vec<SlotRange>,
    /// Seq and name of a job for it seen failing ambiguously.
    ambiguous: Option<(u64, String)>,
}

/// A `MoveSlots` reported succeeded whose target the journal does not
/// show owning its slots yet.
#[derive(Debug, Clone)]
struct Unconfirmed {
    id: Uuid,
    seq: u64,
    at: Timestamp,
    m: Move,
}

/// The move checks across a scan.
#[derive(Debug, Default)]
pub struct MoveChecks {
    pub(super) findings: Vec<Finding>,
    /// Successes examined.
    pub(super) successes: u64,
    /// Decisions of a move examined.
    pub(super) decided: u64,
    moves: BTreeMap<Uuid, Move>,
    unconfirmed: Vec<Unconfirmed>,
}

impl MoveChecks {
    /// Called with the state the scan starts from: its moves in flight.
    pub fn start(&mut self, state: &ClusterState) {
        for (id, f) in &state.in_flight {
            if let Some(m) = move_of(&f.planned.intent) {
                self.moves.insert(*id, m);
            }
        }
    }

    /// Called before `e` is folded into `before`; `claims` as of `before`.
    pub fn before(&mut self, before: &ClusterState, e: &Envelope, claims: &SlotClaims) {
        match &e.body {
            Event::Decided { intents } => {
                self.judge_unconfirmed(e, claims);
                let mut same: Vec<(Uuid, &Vec<SlotRange>)> = Vec::new();
                for p in intents {
                    let Some(m) = move_of(&p.intent) else {
                        continue;
                    };
                    self.decided = self.decided.saturating_add(1);
                    self.check_twice(before, e, p.intent_id, &m, &same);
                    if let Intent::MoveSlots { slots, .. } = &p.intent {
                        same.push((p.intent_id, slots));
                    }
                    self.moves.insert(p.intent_id, m);
                }
            }
            Event::IntentSucceeded { intent_id, detail } => {
                if let Some(m) = self.moves.remove(intent_id) {
                    self.successes = self.successes.saturating_add(1);
                    if let Some((seq, job)) = &m.ambiguous
                        && !says_ambiguous(detail)
                    {
                        self.findings.push(finding(
                            Check::MoveOutcome,
                            e,
                            format!(
                                "MoveSlots of slots {} from {} to {} (intent {intent_id}) is reported a plain success ({detail:?}), but its job {} failed ambiguously at seq {seq} (it may have moved the slots and lost writes): the outcome must say it was resolved by ownership",
                                describe_slots(&m.slots),
                                short(&m.from_node),
                                m.to,
                                short(job)
                            ),
                        ));
                    }
                    self.unconfirmed.push(Unconfirmed {
                        id: *intent_id,
                        seq: e.seq,
                        at: e.at,
                        m,
                    });
                }
            }
            Event::IntentFailed { intent_id, .. } | Event::IntentAbandoned { intent_id, .. } => {
                self.moves.remove(intent_id);
            }
            _ => {}
        }
    }

    /// A move decided while a job or another move for overlapping slots
    /// stands.
    fn check_twice(
        &mut self,
        before: &ClusterState,
        e: &Envelope,
        id: Uuid,
        m: &Move,
        same: &[(Uuid, &Vec<SlotRange>)],
    ) {
        let what = format!(
            "MoveSlots of slots {} from {} to {} (intent {id})",
            describe_slots(&m.slots),
            short(&m.from_node),
            m.to
        );
        for running in before.reshard.migrations.values() {
            let job = &running.job;
            if job.side != MigrationSide::Export
                || !overlaps(&job.slots, &m.slots)
                || job.moves(&m.from_node, &m.to_node, &m.slots)
            {
                continue;
            }
            self.findings.push(finding(
                Check::MoveIssuedTwice,
                e,
                format!(
                    "{what} decided while job {} (listed by {}, {}) moving slots {} from {} to {} is under way: overlapping slots would be moved by two jobs",
                    short(&job.name),
                    running.pod,
                    job.phase.name(),
                    describe_slots(&job.slots),
                    short(&job.source),
                    short(&job.target)
                ),
            ));
        }
        for (other, f) in &before.in_flight {
            if let Intent::MoveSlots { slots, .. } = &f.planned.intent
                && *other != id
                && overlaps(slots, &m.slots)
            {
                self.findings.push(finding(
                    Check::MoveIssuedTwice,
                    e,
                    format!(
                        "{what} decided while MoveSlots of slots {} (intent {other}, decided at seq {}) is in flight",
                        describe_slots(slots),
                        f.decided_seq
                    ),
                ));
            }
        }
        for (other, slots) in same {
            if overlaps(slots, &m.slots) {
                self.findings.push(finding(
                    Check::MoveIssuedTwice,
                    e,
                    format!(
                        "{what} decided beside MoveSlots of slots {} (intent {other}) in the same decision",
                        describe_slots(slots)
                    ),
                ));
            }
        }
    }

    /// Called after `e` was folded; `claims` evaluated after it when it
    /// changed them (`changed`).
    pub fn after(&mut self, e: &Envelope, claims: &SlotClaims, changed: bool) {
        if let Event::SlotMigrationObserved { job, .. } = &e.body
            && job.ambiguous()
        {
            for m in self.moves.values_mut() {
                if job.moves(&m.from_node, &m.to_node, &m.slots) {
                    m.ambiguous = Some((e.seq, job.name.clone()));
                }
            }
        }
        if changed {
            self.confirm(e, claims);
        }
    }

    /// Successes whose target owns all their slots are confirmed; the
    /// target's own report leaving some out is a finding at once.
    fn confirm(&mut self, e: &Envelope, claims: &SlotClaims) {
        for u in std::mem::take(&mut self.unconfirmed) {
            let owned = claims.owned(&u.m.to_node, &u.m.slots);
            if owned == slot_count(&u.m.slots) {
                continue;
            }
            let own_report = match &e.body {
                Event::ClusterNodeObserved { report, .. } => report.node_id == u.m.to_node,
                _ => false,
            };
            if own_report {
                self.findings.push(unconfirmed_finding(
                    &u,
                    owned,
                    &format!("{}'s own report at seq {}", u.m.to, e.seq),
                ));
            } else {
                self.unconfirmed.push(u);
            }
        }
    }

    /// Successes still unconfirmed at the decision `e` are findings.
    fn judge_unconfirmed(&mut self, e: &Envelope, claims: &SlotClaims) {
        for u in std::mem::take(&mut self.unconfirmed) {
            let owned = claims.owned(&u.m.to_node, &u.m.slots);
            if owned < slot_count(&u.m.slots) {
                self.findings.push(unconfirmed_finding(
                    &u,
                    owned,
                    &format!("the next decision (seq {})", e.seq),
                ));
            }
        }
    }

    /// The successes the journal ends before confirming, for the note.
    pub fn finish(&self) -> Option<String> {
        (!self.unconfirmed.is_empty()).then(|| {
            let what: Vec<String> = self
                .unconfirmed
                .iter()
                .map(|u| format!("intent {} reported succeeded at seq {}", u.id, u.seq))
                .collect();
            format!(
                "the journal ends before it shows the target owning the slots of {}",
                what.join(", ")
            )
        })
    }
}

fn unconfirmed_finding(u: &Unconfirmed, owned: u32, by: &str) -> Finding {
    Finding {
        check: Check::MoveOutcome,
        seq: u.seq,
        at: Some(u.at),
        detail: format!(
            "MoveSlots of slots {} ({} slots) from {} to {} (intent {}) is reported succeeded at seq {}, but the journal shows {} owning {owned} of them by {by}",
            describe_slots(&u.m.slots),
            slot_count(&u.m.slots),
            short(&u.m.from_node),
            u.m.to,
            u.id,
            u.seq,
            u.m.to
        ),
        recorded: Vec::new(),
        recomputed: Vec::new(),
    }
}

/// The move an intent orders, if it is a `MoveSlots`.
fn move_of(intent: &Intent) -> Option<Move> {
    match intent {
        Intent::MoveSlots {
            to,
            from_node,
            to_node,
            slots,
            ..
        } => Some(Move {
            to: to.clone(),
            from_node: from_node.clone(),
            to_node: to_node.clone(),
            slots: slots.clone(),
            ambiguous: None,
        }),
        _ => None,
    }
}

/// Whether two sets of ranges share a slot.
fn overlaps(a: &[SlotRange], b: &[SlotRange]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.start <= y.end && y.start <= x.end))
}

/// Whether a success's detail says its job was ambiguous.
fn says_ambiguous(detail: &str) -> bool {
    let detail = detail.to_lowercase();
    ["ambiguous", "may have succeeded", "lost writes"]
        .iter()
        .any(|w| detail.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_overlap_when_they_share_a_slot() {
        let r = |start, end| SlotRange { start, end };
        assert!(overlaps(&[r(0, 10)], &[r(10, 20)]));
        assert!(!overlaps(&[r(0, 9)], &[r(10, 20)]));
        assert!(overlaps(&[r(0, 1), r(50, 60)], &[r(55, 55)]));
    }

    #[test]
    fn an_ambiguous_outcome_is_told_by_its_words() {
        assert!(says_ambiguous(
            "slots moved by atomic slot migration; the job was AMBIGUOUS, resolved by ownership"
        ));
        assert!(says_ambiguous(
            "the migration may have succeeded with lost writes; the target owns them"
        ));
        assert!(!says_ambiguous("moved 100 slots by atomic slot migration"));
    }
}
