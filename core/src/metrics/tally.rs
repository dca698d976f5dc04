//! What appended events add to the metrics: a pure fold beside the
//! projection's, with no clock and no I/O.
//!
//! [`Tracker::fold`] folds each envelope into the projection (exactly as
//! `ClusterState::apply` does) and returns the [`Note`]s it adds:
//! a decision per planned intent, an outcome per settled intent, and a
//! failover when a promotion or switchover succeeds, or when a pod the
//! operator did not promote becomes the primary. The kind of a decided
//! failover is [`logbook_journal::failover::decided`], the classification
//! `logbook replay failovers` calls too, so the metrics and the replay of
//! the same journal agree (a test folds the golden journals through both):
//!
//! - **automatic**, **planned**, **requested**: a decided failover, timed
//!   from its `Decided` event (an automatic one from the first journaled
//!   sign of the old primary's failure) to its `IntentSucceeded`;
//! - **observed**: a new primary nobody here decided, timed from the first
//!   journaled sign of the old primary's failure to the event that showed
//!   the new primary (untimed when no failure was journaled);
//! - **sentinel**: the same, for a switch the Sentinels made by themselves.
//!
//! A Valkey Cluster has a primary per shard and no believed primary in
//! the projection: a `ClusterFailover` the operator carried out counts as
//! above (automatic when forced on a dead primary, timed from the first
//! journaled failure of the primary it replaces); a shard whose primary
//! changed with no `ClusterFailover` of that pod decided here (Valkey's own
//! election, a person's `CLUSTER FAILOVER`) is an observed failover. A
//! shard is followed by its first slot, so a reshard is no failover.
//!
//! A Valkey Cluster's slot move (`MoveSlots`) is counted at its outcome
//! by how it ended: succeeded, failed, or ambiguous when a job for it was
//! journaled failing after its source unpaused ("migration may have
//! succeeded with lost writes": ownership decided). An abandoned move is
//! in the intent outcomes only.
//!
//! Notes are taken when events are staged and published only once their
//! batch is committed (see `ClusterMetrics`), so a batch lost to a fenced
//! writer counts nothing.

use std::collections::{BTreeMap, BTreeSet};

use logbook_journal::{
    ClusterState, Envelope, Event, Intent, PlannedIntent, Reachability, Role, Timestamp,
};
use uuid::Uuid;

use logbook_journal::FailoverKind;

use super::{MoveOutcome, Outcome};

/// What one event adds to the metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// An intent was decided (`logbook_decisions_total`).
    Decision {
        /// `Intent::name()`.
        intent: &'static str,
        /// `ReasonCode::name()`.
        reason: &'static str,
    },
    /// An intent ended (`logbook_intent_outcomes_total`).
    Outcome {
        /// `Intent::name()`, or `Unknown` for an outcome of an intent the
        /// projection does not hold (an anomaly).
        intent: &'static str,
        /// How it ended.
        outcome: Outcome,
    },
    /// A slot move ended (`logbook_slot_moves_total`).
    SlotMove {
        /// How.
        outcome: MoveOutcome,
    },
    /// A backup attempt ended (`logbook_backups_total`): `failed` for a
    /// `BackupFailed` (each attempt, retried or not), else `completed`.
    Backup {
        /// Whether it failed.
        failed: bool,
    },
    /// The primary changed hands (`logbook_failovers_total`, and the
    /// duration histogram when `seconds` is known).
    Failover {
        /// How.
        kind: FailoverKind,
        /// From its start to its confirmation, when the journal shows both.
        seconds: Option<f64>,
    },
}

/// A promotion or switchover decided and not settled yet.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Open {
    kind: FailoverKind,
    /// Where its duration starts: for an automatic failover the first
    /// journaled sign of the primary's failure (what the clients lived
    /// through), else the decision.
    since: Timestamp,
}

/// The little the metrics remember across events, beyond the projection:
/// the last primary (the projection forgets it between a primary's loss
/// and its successor) and the first sign of its failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracker {
    last_primary: Option<String>,
    failing_since: Option<Timestamp>,
    open: BTreeMap<Uuid, Open>,
    /// Valkey Cluster: each shard's primary pod, by the shard's first slot.
    shard_primaries: BTreeMap<u16, String>,
    /// Valkey Cluster: the pods `ClusterFailover` intents decided here
    /// promote, until their outcome: their taking a shard over is counted
    /// at that outcome, not as observed.
    promoting: BTreeMap<Uuid, String>,
    /// Valkey Cluster: `MoveSlots` in flight a job of which was seen
    /// failing ambiguously, until their outcome.
    ambiguous: BTreeSet<Uuid>,
    /// Sentinel: a hand-over asked of Sentinel succeeded and its switch
    /// is not journaled yet (it is, by the next probe round): that switch
    /// was counted at the ask's outcome.
    sentinel_asked: bool,
}

/// The kind of every failover the metrics count for `events`, folded from
/// `base`, in the order they are counted: what `logbook_failovers_total`
/// adds for that journal. `logbook replay failovers` counts the same
/// (`Failovers::counted`); the tests hold the two to it.
pub fn counted_failovers(base: &ClusterState, events: &[Envelope]) -> Vec<FailoverKind> {
    let mut state = base.clone();
    let mut tracker = Tracker::new(&state);
    events
        .iter()
        .flat_map(|e| tracker.fold(&mut state, e))
        .filter_map(|note| match note {
            Note::Failover { kind, .. } => Some(kind),
            _ => None,
        })
        .collect()
}

/// Seconds from `from` to `to`, never negative (clocks of two writers).
fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    let micros = to.as_micros().saturating_sub(from.as_micros()).max(0);
    // Exact below 2^53 µs (285 years).
    #[allow(clippy::cast_precision_loss)]
    let micros = micros as f64;
    micros / 1_000_000.0
}

impl Tracker {
    /// A tracker resuming at `state` (a loaded or refreshed projection).
    pub fn new(state: &ClusterState) -> Self {
        let mut tracker = Self::default();
        tracker.resume(state);
        tracker
    }

    /// Starts again from `state` after the projection was reloaded (a
    /// takeover): the intents in flight there are the open ones; the last
    /// primary is kept when the projection has none.
    pub fn resume(&mut self, state: &ClusterState) {
        if let Some(primary) = &state.replication.primary {
            if self.last_primary.as_ref() != Some(primary) {
                self.failing_since = None;
            }
            self.last_primary = Some(primary.clone());
        }
        self.open = state
            .in_flight
            .iter()
            .filter_map(|(id, f)| {
                let kind = self.classify(&f.planned)?;
                Some((
                    *id,
                    Open {
                        kind,
                        since: self.start_of(state, &f.planned.intent, kind, f.decided_at),
                    },
                ))
            })
            .collect();
        self.promoting = state
            .in_flight
            .iter()
            .filter_map(|(id, f)| cluster_promotes(&f.planned.intent).map(|pod| (*id, pod)))
            .collect();
        self.shard_primaries = shard_primaries(state);
        // The jobs of a move in flight were folded before the takeover;
        // the projection keeps no failed job: the move counts by its
        // outcome alone.
        self.ambiguous.clear();
    }

    /// Where the duration of a `kind` failover by `intent` decided at
    /// `decided_at` starts: for an automatic one, the first journaled
    /// failure of the primary it replaces (in a Valkey Cluster, that
    /// shard's primary pod).
    fn start_of(
        &self,
        state: &ClusterState,
        intent: &Intent,
        kind: FailoverKind,
        decided_at: Timestamp,
    ) -> Timestamp {
        match kind {
            FailoverKind::Automatic => match intent {
                Intent::ClusterFailover {
                    from: Some(from), ..
                } => state
                    .pods
                    .get(from)
                    .and_then(|p| p.failing_since)
                    .unwrap_or(decided_at),
                _ => self.failing_since.unwrap_or(decided_at),
            },
            FailoverKind::Planned
            | FailoverKind::Requested
            | FailoverKind::Observed
            | FailoverKind::Sentinel => decided_at,
        }
    }

    /// The failover `p` would be, if any.
    fn classify(&self, p: &PlannedIntent) -> Option<FailoverKind> {
        logbook_journal::failover::decided(p, self.last_primary.as_deref())
    }

    /// Folds `e` into `state` and returns what it adds to the metrics.
    pub fn fold(&mut self, state: &mut ClusterState, e: &Envelope) -> Vec<Note> {
        let mut notes = Vec::new();
        match &e.body {
            Event::Decided { intents } => {
                for p in intents {
                    notes.push(Note::Decision {
                        intent: p.intent.name(),
                        reason: p.reason.code.name(),
                    });
                    if let Some(kind) = self.classify(p) {
                        let since = self.start_of(state, &p.intent, kind, e.at);
                        self.open.insert(p.intent_id, Open { kind, since });
                    }
                    if let Some(pod) = cluster_promotes(&p.intent) {
                        self.promoting.insert(p.intent_id, pod);
                    }
                }
            }
            Event::IntentSucceeded { intent_id, .. } => {
                if state
                    .in_flight
                    .get(intent_id)
                    .is_some_and(|f| matches!(f.planned.intent, Intent::SentinelFailover { .. }))
                {
                    self.sentinel_asked = true;
                }
                notes.push(outcome(state, intent_id, Outcome::Succeeded));
                notes.extend(self.slot_move(state, intent_id, MoveOutcome::Succeeded));
                if let Some(open) = self.open.remove(intent_id) {
                    notes.push(Note::Failover {
                        kind: open.kind,
                        seconds: Some(seconds_between(open.since, e.at)),
                    });
                }
            }
            Event::IntentFailed { intent_id, .. } => {
                notes.push(outcome(state, intent_id, Outcome::Failed));
                notes.extend(self.slot_move(state, intent_id, MoveOutcome::Failed));
                self.open.remove(intent_id);
            }
            Event::IntentAbandoned { intent_id, .. } => {
                notes.push(outcome(state, intent_id, Outcome::Abandoned));
                self.ambiguous.remove(intent_id);
                self.open.remove(intent_id);
            }
            Event::BackupCompleted { .. } => notes.push(Note::Backup { failed: false }),
            Event::BackupFailed { .. } => notes.push(Note::Backup { failed: true }),
            Event::SlotMigrationObserved { job, .. } if job.ambiguous() => {
                for (id, f) in &state.in_flight {
                    if let Intent::MoveSlots {
                        from_node,
                        to_node,
                        slots,
                        ..
                    } = &f.planned.intent
                        && job.moves(from_node, to_node, slots)
                    {
                        self.ambiguous.insert(*id);
                    }
                }
            }
            _ => {}
        }
        self.track_failure(e);
        // A promotion the operator carries out is counted at its outcome;
        // only a new primary nobody here decided is an observed failover.
        let decided_here = match &e.body {
            Event::ReplicaPromoted { pod, .. } => state
                .in_flight
                .values()
                .any(|f| promotes(&f.planned.intent) == Some(pod.as_str())),
            // A switch the operator asked Sentinel for is counted at the
            // ask's outcome; one Sentinel made by itself is observed.
            Event::SentinelSwitchObserved { .. } => {
                std::mem::take(&mut self.sentinel_asked)
                    || state
                        .in_flight
                        .values()
                        .any(|f| matches!(f.planned.intent, Intent::SentinelFailover { .. }))
            }
            _ => false,
        };
        state.apply(e);
        if matches!(
            e.body,
            Event::ClusterNodeObserved { .. } | Event::IntentSucceeded { .. }
        ) {
            notes.extend(self.follow_shards(state, e.at));
        }
        if let Some(intent_id) = settled(&e.body) {
            // After the shards were followed: the outcome's own reports
            // come before it in the journal.
            self.promoting.remove(intent_id);
        }
        if let Some(new) = &state.replication.primary
            && self.last_primary.as_ref() != Some(new)
        {
            if self.last_primary.is_some() && !decided_here {
                // A switch the Sentinels made by themselves is theirs.
                let kind = if matches!(e.body, Event::SentinelSwitchObserved { .. }) {
                    FailoverKind::Sentinel
                } else {
                    FailoverKind::Observed
                };
                notes.push(Note::Failover {
                    kind,
                    seconds: self.failing_since.map(|since| seconds_between(since, e.at)),
                });
            }
            self.last_primary = Some(new.clone());
            self.failing_since = None;
        }
        notes
    }

    /// The slot move note of `intent_id`'s outcome `how`, when it is a
    /// `MoveSlots` in flight in `state`.
    fn slot_move(
        &mut self,
        state: &ClusterState,
        intent_id: &Uuid,
        how: MoveOutcome,
    ) -> Option<Note> {
        let ambiguous = self.ambiguous.remove(intent_id);
        let is_move = state
            .in_flight
            .get(intent_id)
            .is_some_and(|f| matches!(f.planned.intent, Intent::MoveSlots { .. }));
        is_move.then_some(Note::SlotMove {
            outcome: if ambiguous {
                MoveOutcome::Ambiguous
            } else {
                how
            },
        })
    }

    /// Valkey Cluster: compares each shard's primary with the last one
    /// seen; a new primary that no `ClusterFailover` decided here promotes
    /// is an observed failover, timed from the old primary pod's first
    /// journaled failure when there was one.
    fn follow_shards(&mut self, state: &ClusterState, at: Timestamp) -> Vec<Note> {
        if state.cluster.pods.is_empty() && self.shard_primaries.is_empty() {
            return Vec::new();
        }
        let now = shard_primaries(state);
        let mut notes = Vec::new();
        for (first, pod) in &now {
            let Some(old) = self.shard_primaries.get(first) else {
                continue;
            };
            if old == pod {
                continue;
            }
            let decided = self
                .promoting
                .iter()
                .find(|(_, p)| *p == pod)
                .map(|(id, _)| *id);
            match decided {
                Some(id) => {
                    self.promoting.remove(&id);
                }
                None => notes.push(Note::Failover {
                    kind: FailoverKind::Observed,
                    seconds: state
                        .pods
                        .get(old)
                        .and_then(|p| p.failing_since)
                        .map(|since| seconds_between(since, at)),
                }),
            }
        }
        self.shard_primaries = now;
        notes
    }

    /// Keeps the first journaled sign of the last primary's failure, and
    /// forgets it when the primary is seen healthy again.
    fn track_failure(&mut self, e: &Envelope) {
        let Some(primary) = self.last_primary.as_deref() else {
            return;
        };
        let failing = match &e.body {
            Event::PodReachabilityObserved { pod, reachability } if pod == primary => {
                Some(*reachability != Reachability::Reachable)
            }
            Event::NodeRoleObserved { pod, role, .. } if pod == primary => {
                Some(*role != Role::Primary)
            }
            Event::PrimaryUnreachable { pod, .. }
            | Event::PodTerminating { pod }
            | Event::PodDeleted { pod }
                if pod == primary =>
            {
                Some(true)
            }
            _ => None,
        };
        match failing {
            Some(true) => {
                self.failing_since.get_or_insert(e.at);
            }
            Some(false) => self.failing_since = None,
            None => {}
        }
    }
}

/// The pod `intent` makes primary, if it promotes one.
fn promotes(intent: &Intent) -> Option<&str> {
    match intent {
        Intent::PromoteReplica { pod, .. } => Some(pod),
        Intent::Switchover { to, .. } => Some(to),
        _ => None,
    }
}

/// The pod a `ClusterFailover` makes a shard primary.
fn cluster_promotes(intent: &Intent) -> Option<String> {
    match intent {
        Intent::ClusterFailover { pod, .. } => Some(pod.clone()),
        _ => None,
    }
}

/// The intent an outcome event settles.
fn settled(body: &Event) -> Option<&Uuid> {
    match body {
        Event::IntentSucceeded { intent_id, .. }
        | Event::IntentFailed { intent_id, .. }
        | Event::IntentAbandoned { intent_id, .. } => Some(intent_id),
        _ => None,
    }
}

/// Each Valkey Cluster shard's primary pod, by the shard's first slot.
fn shard_primaries(state: &ClusterState) -> BTreeMap<u16, String> {
    if state.cluster.pods.is_empty() {
        return BTreeMap::new();
    }
    state
        .cluster
        .shards()
        .iter()
        .filter_map(|s| Some((s.slots.first()?.start, s.primary.to_owned())))
        .collect()
}

/// The outcome note of `intent_id`, named after the intent in flight.
fn outcome(state: &ClusterState, intent_id: &Uuid, outcome: Outcome) -> Note {
    Note::Outcome {
        intent: state
            .in_flight
            .get(intent_id)
            .map_or("Unknown", |f| f.planned.intent.name()),
        outcome,
    }
}

#[cfg(test)]
#[path = "tally_tests.rs"]
mod tests;
