//! The missed-decision check: `decide` recomputed where the journal holds
//! no decision, for a decision the runtime should have taken and did not.
//! (The determinism check recomputes the decisions recorded; this one
//! finds those never recorded.)
//!
//! The journal does not mark every place the runtime ran `decide`:
//! observations are group-committed, and a trigger (a probe round, a
//! reconcile) records several of them, then acts once. So `decide` is
//! recomputed at every event boundary with nothing in flight (it asks for
//! nothing while intents are), and what it asks for is judged by two
//! rules on places the journal does show.
//!
//! 1. **Where the runtime decides next.** After these events the runtime
//!    runs `decide` at once, with nothing journaled in between but a
//!    `SnapshotRecorded`:
//!    - the outcome that settles the last intent of a decision all of
//!      whose intents succeeded: the runtime decides again, up to
//!      [`DECISIONS_PER_ACT`] decisions in a row (after the last of them
//!      it waits for its next trigger: not judged);
//!    - the outcome that settles the last intent found in flight at a
//!      takeover (their resolution: the new leader decides next);
//!    - a clock fact (`DeadlinePassed`, `RotationWindowClosed`,
//!      `BackupDue`), journaled just before deciding;
//!    - `DeletionRequested`, unless backing off (below).
//!
//!    If `decide` asks for something there, a `Decided` must come before
//!    an event changes what it asks for (its intents and reason codes): a
//!    finding otherwise, at the place where it was due.
//! 2. **A demand that stands.** Anywhere else, `decide` asking for
//!    something at every boundary for longer than [`STANDING_MS`] of
//!    journal time, with no decision, is a finding: a leading runtime acts
//!    after each trigger, and one comes at least every resync period
//!    (300 s), every probe interval while its pods are probed.
//!
//! Not a missed decision (no finding):
//! - intents in flight: `decide` asks for nothing until their outcomes;
//! - not leading: a takeover (`OperatorStarted`), or an event of a newer
//!   epoch, ends every wait. (A runtime that loses the lead with a decision
//!   due journals a takeover when the lead comes back, even in the same
//!   term, so its silence is explained.)
//! - backing off: after a decision one of whose intents failed or was
//!   abandoned, until the next decision (the back-off lasts at most 30 s;
//!   rule 2 still applies);
//! - before a takeover's probe round: the intents found in flight keep
//!   `decide` quiet until they are resolved;
//! - an event of the same batch as the next: only the places of rule 1 are
//!   certain to end one; elsewhere only rule 2 judges;
//! - the journal's end: a decision may be about to be taken (the check's
//!   note says what was due).
//!
//! Assumed of the runtime, and the check's limit: an act it starts is
//! journaled to its end, or cut by a journaled takeover. A commit that
//! fails (the store unreachable) cuts it without a trace (its staged
//! events are committed with a later trigger's), so a finding of rule 1
//! right after such an outage may be the outage's.

use logbook_journal::{ClusterState, Envelope, Event, Intent, Policy, Reason, Timestamp};

use super::{Check, Compared, Decider, Finding};

/// Decisions the runtime takes in a row in one act before it waits for
/// its next trigger (its `MAX_STEPS`).
pub const DECISIONS_PER_ACT: u32 = 16;

/// How long `decide` may ask for something, anywhere, before no decision
/// is a finding: twice the operator's resync period (300 s), so that a
/// trigger has surely come, and the longest back-off (30 s) with it.
pub const STANDING_MS: i64 = 600_000;

/// Why a decision is due at a place of rule 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// After a decision all of whose intents succeeded.
    Succeeded,
    /// After the resolution of what a takeover found in flight.
    Resolved,
    /// After a clock fact.
    Clock,
    /// After `DeletionRequested`.
    Deletion,
}

impl Due {
    fn what(self) -> &'static str {
        match self {
            Self::Succeeded => "after the last outcome of a decision that succeeded",
            Self::Resolved => "after the intents found in flight at a takeover were resolved",
            Self::Clock => "after a clock fact, journaled just before deciding",
            Self::Deletion => "after the deletion was requested",
        }
    }
}

/// A decision due at a place of rule 1.
#[derive(Debug, Clone)]
struct Waiting {
    seq: u64,
    at: Timestamp,
    why: Due,
    demand: Vec<(Intent, Reason)>,
}

/// A demand standing since an event (rule 2).
#[derive(Debug, Clone)]
struct Standing {
    seq: u64,
    at: Timestamp,
    demand: Vec<(Intent, Reason)>,
    reported: bool,
}

/// The decision in flight: whether all its outcomes so far succeeded,
/// and its place among the decisions of one act.
#[derive(Debug, Clone, Copy)]
struct Current {
    succeeded: bool,
    in_a_row: u32,
}

/// State of the check across a scan.
pub struct MissedDecisions<'d> {
    decider: &'d dyn Decider,
    findings: Vec<Finding>,
    /// Boundaries where `decide` was recomputed.
    examined: u64,
    epoch: u64,
    current: Option<Current>,
    /// The last decision settled and the events since are only
    /// `SnapshotRecorded`: a decision now is the same act's next.
    settled_in_a_row: Option<u32>,
    backing_off: bool,
    /// Intents found in flight at a takeover are being resolved.
    resolving: bool,
    waiting: Option<Waiting>,
    standing: Option<Standing>,
}

impl<'d> MissedDecisions<'d> {
    /// A check with `decider`.
    pub fn new(decider: &'d dyn Decider) -> Self {
        Self {
            decider,
            findings: Vec::new(),
            examined: 0,
            epoch: 0,
            current: None,
            settled_in_a_row: None,
            backing_off: false,
            resolving: false,
            waiting: None,
            standing: None,
        }
    }

    /// Called with the state the scan starts from.
    pub fn start(&mut self, state: &ClusterState) {
        self.epoch = state.epoch;
    }

    /// Called with the state before `e` is folded.
    pub fn before(&mut self, state: &ClusterState, e: &Envelope) {
        if let Some(s) = &mut self.standing
            && !s.reported
            && e.at.millis_since(s.at) > STANDING_MS
        {
            s.reported = true;
            let s = s.clone();
            self.findings.push(self.standing_finding(&s, e));
        }
        let takeover = matches!(e.body, Event::OperatorStarted { .. })
            || e.epoch > self.epoch.max(state.epoch);
        self.epoch = self.epoch.max(e.epoch);
        if takeover {
            // Another term: whatever was due is the new leader's to see.
            self.waiting = None;
            self.standing = None;
            self.current = None;
            self.settled_in_a_row = None;
            self.backing_off = false;
        }
        match &e.body {
            Event::OperatorStarted { .. } => {
                self.resolving = !state.in_flight.is_empty();
            }
            Event::Decided { .. } => {
                let in_a_row = self
                    .settled_in_a_row
                    .take()
                    .map_or(1, |n| n.saturating_add(1));
                self.current = Some(Current {
                    succeeded: true,
                    in_a_row,
                });
                self.waiting = None;
                self.standing = None;
                self.backing_off = false;
            }
            Event::IntentFailed { intent_id, .. } | Event::IntentAbandoned { intent_id, .. }
                if !self.resolving && state.in_flight.contains_key(intent_id) =>
            {
                if let Some(c) = &mut self.current {
                    c.succeeded = false;
                }
            }
            // Staged by the runtime right after a commit, before deciding.
            Event::SnapshotRecorded { .. } => {}
            _ => self.settled_in_a_row = None,
        }
    }

    /// Called with the state after `e` was folded.
    pub fn after(&mut self, state: &ClusterState, e: &Envelope) {
        if matches!(
            e.body,
            Event::Decided { .. } | Event::SnapshotRecorded { .. }
        ) {
            return;
        }
        let settled = matches!(
            e.body,
            Event::IntentSucceeded { .. }
                | Event::IntentFailed { .. }
                | Event::IntentAbandoned { .. }
        ) && state.in_flight.is_empty();
        let mut due = None;
        if settled {
            if std::mem::take(&mut self.resolving) {
                due = Some(Due::Resolved);
            } else if let Some(c) = self.current.take() {
                if c.succeeded {
                    self.settled_in_a_row = Some(c.in_a_row);
                    if c.in_a_row < DECISIONS_PER_ACT {
                        due = Some(Due::Succeeded);
                    }
                } else {
                    self.backing_off = true;
                }
            }
        }
        match e.body {
            Event::DeadlinePassed { .. }
            | Event::RotationWindowClosed { .. }
            | Event::BackupDue { .. } => due = Some(Due::Clock),
            Event::DeletionRequested { .. } if !self.backing_off => due = Some(Due::Deletion),
            _ => {}
        }
        if !state.in_flight.is_empty() {
            self.standing = None;
            return;
        }
        self.examined = self.examined.saturating_add(1);
        let demand = self.decide(state);
        if let Some(why) = due {
            // A new place of rule 1 replaces the one waited for (a clock
            // fact journaled before deciding).
            self.waiting = (!demand.is_empty()).then(|| Waiting {
                seq: e.seq,
                at: e.at,
                why,
                demand: demand.clone(),
            });
        } else if let Some(w) = &self.waiting
            && !same(&w.demand, &demand)
        {
            let w = w.clone();
            self.waiting = None;
            self.findings.push(self.waiting_finding(&w, e, &demand));
        }
        if demand.is_empty() {
            self.standing = None;
        } else if self.standing.is_none() {
            self.standing = Some(Standing {
                seq: e.seq,
                at: e.at,
                demand,
                reported: false,
            });
        }
    }

    fn decide(&self, state: &ClusterState) -> Vec<(Intent, Reason)> {
        let default_policy;
        let policy = match &state.policy {
            Some(p) => p,
            None => {
                default_policy = Policy::default();
                &default_policy
            }
        };
        self.decider.decide(state, state.last_at, policy)
    }

    fn waiting_finding(&self, w: &Waiting, e: &Envelope, now: &[(Intent, Reason)]) -> Finding {
        let asks = if now.is_empty() {
            "asks for nothing any more".to_owned()
        } else {
            format!("asks for {} instead", describe(now))
        };
        Finding {
            check: Check::MissedDecision,
            seq: w.seq,
            at: Some(w.at),
            detail: format!(
                "{} decides {} at seq {} ({}), where the runtime decides next; but no decision is journaled before seq {} ({}), after which it {asks}",
                self.decider.build(),
                describe(&w.demand),
                w.seq,
                w.why.what(),
                e.seq,
                e.body.kind()
            ),
            recorded: Vec::new(),
            recomputed: compared(&w.demand),
        }
    }

    fn standing_finding(&self, s: &Standing, e: &Envelope) -> Finding {
        let secs = e.at.millis_since(s.at) / 1000;
        Finding {
            check: Check::MissedDecision,
            seq: s.seq,
            at: Some(s.at),
            detail: format!(
                "{} decides {} from seq {} on, and no decision is journaled until seq {} ({}, {}), {secs} s later: a leading operator acts at least once per resync period (300 s)",
                self.decider.build(),
                describe(&s.demand),
                s.seq,
                e.seq,
                e.body.kind(),
                e.at
            ),
            recorded: Vec::new(),
            recomputed: compared(&s.demand),
        }
    }

    /// The findings, the boundaries examined, and what was due at the
    /// head, if anything.
    pub fn finish(self) -> (Vec<Finding>, u64, Option<String>) {
        let note = if let Some(w) = &self.waiting {
            Some(format!(
                "{} was due at seq {} ({}) when the journal ends: not judged",
                describe(&w.demand),
                w.seq,
                w.why.what()
            ))
        } else if let Some(s) = &self.standing
            && !s.reported
        {
            Some(format!(
                "{} asked for since seq {} when the journal ends: not judged",
                describe(&s.demand),
                s.seq
            ))
        } else if self.examined == 0 {
            Some("no boundary with nothing in flight in the journal".to_owned())
        } else {
            None
        };
        (self.findings, self.examined, note)
    }
}

/// Whether two answers of `decide` ask for the same: intents and reason
/// codes (the sentences are for people).
fn same(a: &[(Intent, Reason)], b: &[(Intent, Reason)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ia, ra), (ib, rb))| ia == ib && ra.code == rb.code)
}

fn describe(demand: &[(Intent, Reason)]) -> String {
    let what: Vec<String> = demand.iter().map(|(i, _)| i.describe()).collect();
    let code = demand
        .first()
        .map(|(_, r)| r.code.name())
        .unwrap_or_default();
    format!("[{}] ({code})", what.join(", "))
}

fn compared(demand: &[(Intent, Reason)]) -> Vec<Compared> {
    demand
        .iter()
        .map(|(intent, reason)| Compared {
            intent: intent.clone(),
            reason: reason.code.name().to_owned(),
            detail: reason.detail.clone(),
        })
        .collect()
}
