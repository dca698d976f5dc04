//! The invariants checked at every step of the fold:
//!
//! - never two primaries of one shard at once: two pods whose last
//!   observed role is primary, that are not known dead (refused, no
//!   address, terminating) and that serve: labelled primary (the Service
//!   sends them clients) or followed by a replica whose link is up (they
//!   could acknowledge a `WAIT` write). A pod the operator fenced by its
//!   label that comes back claiming primary with no replica is a stale
//!   claim, not a second primary. Reported once per episode, where it
//!   begins: at once when a decision's outcome began it; when an
//!   observation began it (a stale primary seen again, which nobody could
//!   have prevented), only if it outlives the next decision, which must
//!   end it;
//! - every intent gets an outcome, or is abandoned after a restart: an
//!   intent found in flight at a takeover must be settled before the new
//!   leader's next decision (the operator resolves those first) and
//!   before the takeover after; an outcome must name an intent in flight;
//! - no decision or outcome from a writer whose epoch was superseded;
//! - no decision while the cluster is paused;
//! - the Valkey Cluster invariants ([`super::cluster`]): every slot owned
//!   once at quiet points, forced failovers justified, no wiped node
//!   promoted; and its reshards' ([`super::reshard`]): one owner per slot
//!   after every change of claims, moves reported done shown done, no
//!   move issued twice. A Replication journal has nothing for them to
//!   examine, which they report rather than a pass.

use std::collections::BTreeMap;

use logbook_journal::{ClusterState, Envelope, Event, Reachability, Role};
use uuid::Uuid;

use super::{Check, Finding, OpenIntent};

/// An intent found in flight at a takeover.
#[derive(Debug, Clone)]
struct Found {
    decided_seq: u64,
    takeover_seq: u64,
    intent: String,
}

/// State of the invariant checks across a scan.
#[derive(Debug, Default)]
pub struct Invariants {
    findings: Vec<Finding>,
    steps: u64,
    in_two_primaries: bool,
    /// An episode an observation began: its finding, and the decisions
    /// taken since it began.
    pending_two: Option<(Finding, u32)>,
    max_epoch: u64,
    epoch_checked: u64,
    outcomes: u64,
    decisions: u64,
    found: BTreeMap<Uuid, Found>,
    takeovers: Vec<u64>,
    cluster: super::cluster::ClusterInvariants,
    reshard: super::reshard::ReshardInvariants,
}

/// What the checks found and examined.
pub struct Summary {
    /// Findings, in seq order within each check.
    pub findings: Vec<Finding>,
    /// Per check: points examined and a note when there were none.
    pub examined: Vec<(Check, u64, Option<String>)>,
    /// Intents in flight at the head that no takeover left behind.
    pub open: Vec<OpenIntent>,
}

pub(super) fn finding(check: Check, e: &Envelope, detail: String) -> Finding {
    Finding {
        check,
        seq: e.seq,
        at: Some(e.at),
        detail,
        recorded: Vec::new(),
        recomputed: Vec::new(),
    }
}

/// Pods serving as primary: last observed role primary, not known dead,
/// and labelled primary or followed by a replica whose link is up.
fn serving_primaries(state: &ClusterState) -> Vec<&str> {
    let followed = |name: &str| {
        state.pods.values().any(|r| {
            r.role == Some(Role::Replica)
                && r.replicates.as_deref() == Some(name)
                && r.link == Some(logbook_journal::LinkStatus::Up)
        })
    };
    let serving: Vec<&str> = state
        .pods
        .iter()
        .filter(|(name, p)| {
            p.role == Some(Role::Primary)
                && !p.terminating
                && !matches!(
                    p.reachability,
                    Some(Reachability::Refused | Reachability::NoAddress)
                )
                && (p.role_label != Some(Role::Replica) || followed(name))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if state.cluster.pods.is_empty() {
        return serving;
    }
    // A Valkey Cluster has a primary per shard: two primaries at once are
    // two serving nodes that both claim one slot at one config epoch,
    // which Valkey cannot settle. Claims at different epochs are a
    // handover Valkey settles by the epoch: the stale claimant (say a
    // primary restarted in place while its replica took over by FORCE)
    // steps down at its next gossip; the clients' window is what `replay
    // failovers` reports.
    let claims: Vec<(&str, &[logbook_journal::SlotRange], u64)> = serving
        .iter()
        .filter_map(|pod| {
            let report = state.cluster.report(pod)?;
            report
                .is_primary()
                .then_some((*pod, report.slots.as_slice(), report.config_epoch))
        })
        .collect();
    for (i, (a, mine, mine_epoch)) in claims.iter().enumerate() {
        for (b, theirs, their_epoch) in claims.iter().skip(i.saturating_add(1)) {
            if mine_epoch != their_epoch {
                continue;
            }
            let overlap = mine
                .iter()
                .any(|x| theirs.iter().any(|y| x.start <= y.end && y.start <= x.end));
            if overlap {
                return vec![*a, *b];
            }
        }
    }
    Vec::new()
}

impl Invariants {
    /// Called with the state the scan starts from.
    pub fn start(&mut self, state: &ClusterState) {
        self.max_epoch = state.epoch;
        self.in_two_primaries = serving_primaries(state).len() > 1;
        self.reshard.start(state);
    }

    /// Called with the state before `e` is folded.
    pub fn before(&mut self, state: &ClusterState, e: &Envelope) {
        self.cluster.before(state, e);
        self.reshard.before(state, e);
        let acting = matches!(
            e.body,
            Event::Decided { .. }
                | Event::IntentSucceeded { .. }
                | Event::IntentFailed { .. }
                | Event::IntentAbandoned { .. }
        );
        if acting {
            self.epoch_checked = self.epoch_checked.saturating_add(1);
            if e.epoch < self.max_epoch {
                self.findings.push(finding(
                    Check::StaleEpoch,
                    e,
                    format!(
                        "{} written at epoch {} after epoch {} had taken over",
                        e.body.kind(),
                        e.epoch,
                        self.max_epoch
                    ),
                ));
            }
        }
        self.max_epoch = self.max_epoch.max(e.epoch);
        match &e.body {
            Event::OperatorStarted { epoch, .. } => {
                self.max_epoch = self.max_epoch.max(*epoch);
                // What a previous takeover left unresolved passes to this
                // one: with no decision between them, its instance died or
                // lost the lead before it could resolve anything (a crash
                // right after its `OperatorStarted`). It is overdue only
                // at a decision made while it is unresolved.
                for (id, f) in &state.in_flight {
                    self.found.insert(
                        *id,
                        Found {
                            decided_seq: f.decided_seq,
                            takeover_seq: e.seq,
                            intent: f.planned.intent.describe(),
                        },
                    );
                }
                self.takeovers.push(e.seq);
            }
            Event::Decided { intents } => {
                self.decisions = self.decisions.saturating_add(1);
                self.overdue(state, e, "the new leader's next decision");
                if state.binding.as_ref().is_some_and(|b| b.unbound())
                    && intents
                        .iter()
                        .any(|p| p.intent != logbook_journal::Intent::ReleaseObjects)
                {
                    self.findings.push(finding(
                        Check::ActionWhilePaused,
                        e,
                        "a decision other than releasing its objects was recorded while the cluster was unbound"
                            .to_owned(),
                    ));
                }
                // Hibernating (durable), asleep or waking: a primary
                // stopping or not back yet is never failed over.
                if state.hibernation.is_some()
                    && let Some(failover) = intents.iter().find(|p| {
                        matches!(
                            p.intent,
                            logbook_journal::Intent::FenceNode { .. }
                                | logbook_journal::Intent::PromoteReplica { .. }
                                | logbook_journal::Intent::Switchover { .. }
                                | logbook_journal::Intent::ClusterFailover { .. }
                                | logbook_journal::Intent::SentinelFailover { .. }
                        )
                    })
                {
                    self.findings.push(finding(
                        Check::ActionWhilePaused,
                        e,
                        format!(
                            "{} decided while the cluster hibernates or wakes",
                            failover.intent.describe()
                        ),
                    ));
                }
                // A standby: none of its pods takes writes before the
                // spec that removes replicateFrom.
                if let Some(Ok(spec)) = state.desired_spec()
                    && let Some(from) = &spec.replicate_from
                    && let Some(write) = intents.iter().find(|p| {
                        matches!(
                            p.intent,
                            logbook_journal::Intent::PromoteReplica { .. }
                                | logbook_journal::Intent::Switchover { .. }
                                | logbook_journal::Intent::PromoteStandby { .. }
                        )
                    })
                {
                    self.findings.push(finding(
                        Check::ActionWhilePaused,
                        e,
                        format!(
                            "{} decided while the cluster is a standby of {} (none of its pods takes writes before replicateFrom is removed)",
                            write.intent.describe(),
                            from.describe("")
                        ),
                    ));
                }
                if let Some(Ok(spec)) = state.desired_spec()
                    && spec.paused
                {
                    self.findings.push(finding(
                        Check::ActionWhilePaused,
                        e,
                        format!(
                            "a decision was recorded while spec generation {} pauses the cluster",
                            state.desired.as_ref().map_or(0, |d| d.generation)
                        ),
                    ));
                }
            }
            Event::IntentSucceeded { intent_id, .. }
            | Event::IntentFailed { intent_id, .. }
            | Event::IntentAbandoned { intent_id, .. } => {
                self.outcomes = self.outcomes.saturating_add(1);
                self.found.remove(intent_id);
                if !state.in_flight.contains_key(intent_id) {
                    self.findings.push(finding(
                        Check::OutcomeWithoutIntent,
                        e,
                        format!(
                            "{} for intent {intent_id}, which is not in flight (never decided, or settled before)",
                            e.body.kind()
                        ),
                    ));
                }
            }
            _ => {}
        }
    }

    /// Intents found in flight at a takeover and still unresolved at `e`.
    fn overdue(&mut self, state: &ClusterState, e: &Envelope, what: &str) {
        let late: Vec<(Uuid, Found)> = self
            .found
            .iter()
            .filter(|(id, f)| f.takeover_seq < e.seq && state.in_flight.contains_key(id))
            .map(|(id, f)| (*id, f.clone()))
            .collect();
        for (id, f) in late {
            self.found.remove(&id);
            self.findings.push(finding(
                Check::IntentWithoutOutcome,
                e,
                format!(
                    "intent {id} ({}, decided at seq {}) was found in flight at the takeover at seq {} and was neither completed nor abandoned before {what}",
                    f.intent, f.decided_seq, f.takeover_seq
                ),
            ));
        }
    }

    /// Called with the state after `e` was folded.
    pub fn after(&mut self, state: &ClusterState, e: &Envelope) {
        self.cluster.after(state, e);
        self.reshard.after(state, e);
        self.steps = self.steps.saturating_add(1);
        let serving = serving_primaries(state);
        let two = serving.len() > 1;
        if two && !self.in_two_primaries {
            let found = finding(
                Check::TwoPrimaries,
                e,
                format!(
                    "{} served as primary at once ({})",
                    serving.join(" and "),
                    crate::describe::summary(&e.body)
                ),
            );
            if e.cause.is_some() {
                // A decision's outcome made it.
                self.findings.push(found);
            } else {
                self.pending_two = Some((found, 0));
            }
        } else if two
            && matches!(e.body, Event::Decided { .. })
            // Two primaries while a Sentinel fails over are the
            // Sentinels' to settle, and the operator leaves them to it
            // (`decide/sentinel`): its decisions meanwhile do not count.
            && !state.sentinel.failing_over()
            && let Some((found, decisions)) = self.pending_two.take()
        {
            if decisions >= 1 {
                self.findings.push(found);
            } else {
                self.pending_two = Some((found, decisions + 1));
            }
        }
        if !two {
            self.pending_two = None;
        }
        self.in_two_primaries = two;
    }

    /// The findings, what was examined, and the intents open at the head.
    pub fn finish(self, state: &ClusterState) -> Summary {
        let (reshard_findings, notes, (claims, successes, moves)) = self.reshard.finish(state);
        let mut open = Vec::new();
        for (id, f) in &state.in_flight {
            let intent = f.planned.intent.describe();
            match self.found.get(id) {
                Some(found) => open.push(OpenIntent {
                    decided_seq: f.decided_seq,
                    intent: format!(
                        "{intent} (found in flight at the takeover at seq {}, not resolved yet)",
                        found.takeover_seq
                    ),
                }),
                None => open.push(OpenIntent {
                    decided_seq: f.decided_seq,
                    intent,
                }),
            }
        }
        let examined = vec![
            (Check::TwoPrimaries, self.steps, None),
            (
                Check::IntentWithoutOutcome,
                u64::try_from(self.takeovers.len()).unwrap_or(u64::MAX),
                self.takeovers
                    .is_empty()
                    .then(|| "no takeover in the journal".to_owned()),
            ),
            (Check::OutcomeWithoutIntent, self.outcomes, None),
            (Check::StaleEpoch, self.epoch_checked, None),
            (Check::ActionWhilePaused, self.decisions, None),
            (
                Check::SlotOwnership,
                self.cluster.quiet,
                (self.cluster.quiet == 0)
                    .then(|| "no quiet point of a formed Valkey Cluster in the journal".to_owned()),
            ),
            (
                Check::UnjustifiedFailover,
                self.cluster.forced,
                (self.cluster.forced == 0)
                    .then(|| "no forced or takeover Cluster failover in the journal".to_owned()),
            ),
            (
                Check::WipedNodePromoted,
                self.cluster.forced,
                (self.cluster.forced == 0)
                    .then(|| "no forced or takeover Cluster failover in the journal".to_owned()),
            ),
            (
                Check::SlotClaims,
                claims,
                notes.claims.or_else(|| {
                    (claims == 0).then(|| "no Valkey Cluster node report in the journal".to_owned())
                }),
            ),
            (
                Check::MoveOutcome,
                successes,
                notes.moves.or_else(|| {
                    (successes == 0).then(|| "no MoveSlots succeeded in the journal".to_owned())
                }),
            ),
            (
                Check::MoveIssuedTwice,
                moves,
                (moves == 0).then(|| "no MoveSlots decided in the journal".to_owned()),
            ),
        ];
        let mut findings = self.findings;
        findings.extend(self.cluster.findings);
        findings.extend(reshard_findings);
        Summary {
            findings,
            examined,
            open,
        }
    }
}
