//! The reshard invariants of a Valkey Cluster, checked at every step of
//! the fold:
//!
//! - [`super::slot_claims`]: every slot has exactly one owner among the
//!   nodes' own claims at the highest config epoch, after every change of
//!   the claims;
//! - [`super::moves`]: a `MoveSlots` reported succeeded is shown done,
//!   an ambiguous one never passes for a plain success, and no move is
//!   issued twice.
//!
//! A Replication journal has nothing for them to examine, which their
//! summaries say rather than a pass.

use logbook_journal::{ClusterState, Envelope, Event};

use super::Finding;
use super::moves::MoveChecks;
use super::slot_claims::SlotClaims;

/// State of the reshard checks across a scan.
#[derive(Debug, Default)]
pub struct ReshardInvariants {
    pub(super) claims: SlotClaims,
    pub(super) moves: MoveChecks,
}

/// What the checks say at the head beside their findings.
pub struct Notes {
    /// Slots lost too recently to judge.
    pub claims: Option<String>,
    /// Successes not confirmed by the end.
    pub moves: Option<String>,
}

impl ReshardInvariants {
    /// Called with the state the scan starts from.
    pub fn start(&mut self, state: &ClusterState) {
        self.claims.start(state);
        self.moves.start(state);
    }

    /// Called before `e` is folded into `before`.
    pub fn before(&mut self, before: &ClusterState, e: &Envelope) {
        if matches!(e.body, Event::OperatorStarted { .. }) {
            self.claims.took_over(e.at);
        }
        self.moves.before(before, e, &self.claims);
    }

    /// Called after `e` was folded into `after`.
    pub fn after(&mut self, after: &ClusterState, e: &Envelope) {
        // The claims change with a node's report, and with an outcome (a
        // node forgotten).
        let changed = matches!(
            e.body,
            Event::ClusterNodeObserved { .. } | Event::IntentSucceeded { .. }
        ) && !after.cluster.nodes.is_empty();
        if changed {
            self.claims.evaluate(after, e);
        }
        self.moves.after(e, &self.claims, changed);
        self.claims.judge_holes(after, e.seq, e.at);
    }

    /// The findings, and what is left to say at the head.
    pub fn finish(mut self, state: &ClusterState) -> (Vec<Finding>, Notes, (u64, u64, u64)) {
        let notes = Notes {
            claims: self.claims.finish(state),
            moves: self.moves.finish(),
        };
        let examined = (
            self.claims.examined,
            self.moves.successes,
            self.moves.decided,
        );
        let mut findings = self.claims.findings;
        findings.extend(self.moves.findings);
        (findings, notes, examined)
    }
}
