//! `failovers`: one record per change of primary — automatic (the operator
//! judged the primary failed), planned (a switchover), requested (a person
//! asked the operator to fail over, `valkey.logbook.dev/failover-requested`),
//! or observed (Valkey itself, or someone else, made another pod primary) —
//! with what the journal says about each step and the bound on lost writes.
//!
//! The journal is edge-triggered: an observation is recorded when it
//! changes. "Last seen healthy" is therefore the last journaled fact that
//! showed the old primary healthy (reachable, answering as primary, its
//! offset moving) before the failure was first recorded: the primary was
//! healthy at least until then, and at most until the failure.

use std::collections::BTreeMap;
use std::io::Write;

use logbook_journal::{
    Candidate, ClusterState, Envelope, Event, Intent, PodPhase, Reachability, Role, Timestamp,
};
use serde::Serialize;
use uuid::Uuid;

use crate::error::Result;
use crate::shard_failovers::ShardFailovers;
use crate::source::{Flow, Raw, Start, Visit};

/// How a failover came about: the journal's one classification, which
/// the operator's metrics use too (`logbook_failovers_total{kind}`).
pub use logbook_journal::FailoverKind as Kind;

/// What the journal holds of a switch the Sentinels made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentinelInfo {
    /// The configuration epoch of the switch.
    pub epoch: u64,
    /// The Sentinel elected to lead it, when seen.
    pub leader: Option<String>,
    /// The Sentinels seen voting for that leader.
    pub voters: Vec<String>,
    /// The Sentinels naming the new primary when it was journaled.
    pub reported_by: Vec<String>,
    /// Found after the fact: nothing of this epoch was watched, so the
    /// leader and votes are unknown.
    pub after_the_fact: bool,
    /// The data pods as the operator last saw them: pod, offset, whether
    /// it answered and was an in-sync replica.
    pub candidates: Vec<logbook_journal::SwitchCandidate>,
    /// What the Sentinels published before the switch (down, votes,
    /// election, promotion), as journaled.
    pub steps: Vec<Mark>,
}

/// A point in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mark {
    /// The event's seq.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// What it says.
    pub what: String,
}

/// The decision behind an automatic or planned failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionInfo {
    /// Seq of the `Decided` event.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// The promotion's intent id.
    pub intent_id: Uuid,
    /// The reason code's name.
    pub reason: String,
    /// The reason, for people.
    pub detail: String,
    /// Death (refused, terminated, deleted) rather than slowness, when the
    /// reason says.
    pub death: Option<bool>,
    /// Consecutive failed probes, when the reason says.
    pub consecutive_failures: Option<u32>,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "detail")]
pub enum Outcome {
    /// The promotion was carried out.
    Completed,
    /// The promotion failed.
    Failed(String),
    /// The promotion was dropped.
    Abandoned(String),
    /// No outcome in the journal (yet).
    Pending,
}

/// One failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failover {
    /// Automatic, planned, requested or observed.
    pub kind: Kind,
    /// The primary replaced, when known.
    pub old_primary: Option<String>,
    /// The pod promoted.
    pub new_primary: String,
    /// The last journaled fact showing the old primary healthy.
    pub last_healthy: Option<Mark>,
    /// The first journaled sign of its failure (for an automatic failover).
    pub failure_observed: Option<Mark>,
    /// The decision (absent for an observed failover).
    pub decided: Option<DecisionInfo>,
    /// The decision that carried it on after a takeover cut it: the
    /// intents of the first were found in flight and abandoned (not found
    /// done), and the new leader decided the same promotion afresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redecided: Option<DecisionInfo>,
    /// Every pod considered, as the decider saw it.
    pub candidates: Vec<Candidate>,
    /// `ReplicaPromoted`: the promotion as carried out.
    pub promoted: Option<Mark>,
    /// The outcome's event, or the first observation of the new primary
    /// serving as primary, whichever came first after the promotion.
    pub confirmed: Option<Mark>,
    /// How it ended.
    pub outcome: Outcome,
    /// When the old primary was next observed, and as what.
    pub old_returned: Option<Mark>,
    /// The old primary's last replication offset observed while it was
    /// the primary.
    pub old_offset: Option<u64>,
    /// When that offset was journaled (`None` when it came from a
    /// snapshot, whose events are gone): writes the old primary took after
    /// it are not in the journal.
    pub old_offset_at: Option<Timestamp>,
    /// The promoted pod's offset at the promotion.
    pub promoted_offset: Option<u64>,
    /// Bytes of replication stream the old primary had and the new one did
    /// not: an upper bound on acknowledged writes lost, as far as the
    /// journaled offsets show (`None` when either is unknown).
    pub lost_bytes_bound: Option<u64>,
    /// Topology Sentinel: what the journal holds of the Sentinels' switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelInfo>,
}

/// How many published Sentinel events are kept as steps of the next
/// switch.
const SENTINEL_STEPS: usize = 64;

/// What is known of a pod's health, updated as events are folded.
#[derive(Debug, Clone, Default)]
struct Health {
    last_healthy: Option<Mark>,
    failing: Option<Mark>,
}

/// The `failovers` visitor.
#[derive(Debug, Default)]
pub struct Failovers {
    state: ClusterState,
    health: BTreeMap<String, Health>,
    /// Each pod's last offset observed while it was the primary, and when.
    primary_offset: BTreeMap<String, (u64, Timestamp)>,
    /// The last pod known to be primary (the projection forgets it between
    /// a primary's loss and its successor).
    last_primary: Option<String>,
    /// Records, in order.
    pub records: Vec<Failover>,
    /// Index of the record each open promotion intent belongs to.
    open: BTreeMap<Uuid, usize>,
    /// Promotion intents found in flight at the last takeover.
    found: Vec<Uuid>,
    /// Records whose promotion such a takeover abandoned: the new
    /// leader's next decision may carry them on.
    cut: Vec<usize>,
    /// Records waiting for their old primary to be seen again.
    awaiting_return: Vec<usize>,
    /// A Valkey Cluster's shard failovers (its streams have no Replication
    /// records: roles there are per shard).
    pub shards: ShardFailovers,
    /// Topology Sentinel: the events the Sentinels published since the
    /// last switch.
    sentinel_steps: Vec<Mark>,
    /// Topology Sentinel: the record of a hand-over asked of Sentinel
    /// whose switch is not journaled yet (it is after the ask's outcome).
    sentinel_asked: Option<usize>,
    /// Topology Sentinel: the records a switch was journaled for already.
    /// A switch can be journaled before the ask's outcome (the Sentinels'
    /// prober saw it first): that record is not waiting for one, and a
    /// later switch the Sentinels made alone is not its.
    sentinel_switched: std::collections::BTreeSet<usize>,
}

impl Failovers {
    /// An empty collector.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The failovers of `events`, folded from `base` (a journal already
    /// read, as the tests and the metrics' agreement check hold it).
    #[must_use]
    pub fn of_events(base: &ClusterState, events: &[Envelope]) -> Self {
        let mut failovers = Self::new();
        failovers.begin(base);
        for e in events {
            failovers.fold(e);
        }
        failovers
    }

    /// The kind of every change of primary that happened, in journal
    /// order of the records: the decided ones that completed, and every
    /// one nobody here decided (the Sentinels', Valkey's election, a
    /// person's). What `logbook_failovers_total` counts for the same
    /// journal, by kind.
    #[must_use]
    pub fn counted(&self) -> Vec<Kind> {
        let replication = self.records.iter().filter(|r| {
            matches!(r.kind, Kind::Observed | Kind::Sentinel) || r.outcome == Outcome::Completed
        });
        let shards = self.shards.records.iter().filter(|r| {
            r.decided_by == crate::shard_failovers::DecidedBy::Valkey
                || r.outcome == Some(Outcome::Completed)
        });
        replication
            .map(|r| r.kind)
            .chain(shards.map(|r| r.cause))
            .collect()
    }

    fn begin(&mut self, base: &ClusterState) {
        self.state = base.clone();
        self.last_primary = self.state.replication.primary.clone();
        self.shards.start(&self.state);
    }

    fn healthy(&mut self, pod: &str, e: &Envelope, what: String) {
        let h = self.health.entry(pod.to_owned()).or_default();
        h.last_healthy = Some(mark(e, what));
        h.failing = None;
    }

    fn failing(&mut self, pod: &str, e: &Envelope, what: String) {
        let h = self.health.entry(pod.to_owned()).or_default();
        if h.failing.is_none() {
            h.failing = Some(mark(e, what));
        }
    }

    /// Updates what is known of the pods' health from `e`, judged against
    /// the pod last known as primary: an answer as a replica is
    /// health for a replica but, from the believed primary, a sign that it
    /// restarted (it boots fenced, as a replica of nobody).
    fn track_health(&mut self, e: &Envelope) {
        // The pod last known as primary: the projection forgets it as soon
        // as it answers as a replica, but what follows is still its failure.
        let is_primary = |pod: &str| self.last_primary.as_deref() == Some(pod);
        match &e.body {
            Event::PodReachabilityObserved { pod, reachability } => match reachability {
                Reachability::Reachable => self.healthy(pod, e, format!("{pod} answered a probe")),
                other => self.failing(pod, e, format!("{pod} probe: {other:?}")),
            },
            Event::NodeRoleObserved { pod, role, .. } => {
                if *role != Role::Primary && is_primary(pod) {
                    self.failing(pod, e, format!("primary {pod} answered as {role:?}"));
                } else {
                    self.healthy(pod, e, format!("{pod} answered as {role:?}"));
                }
            }
            Event::ReplicationObserved {
                pod, offset, link, ..
            } => {
                if is_primary(pod) {
                    if *link == logbook_journal::LinkStatus::NotReplica {
                        self.primary_offset.insert(pod.clone(), (*offset, e.at));
                        self.healthy(pod, e, format!("primary {pod} at offset {offset}"));
                    } else {
                        self.failing(pod, e, format!("primary {pod} reports a replica link"));
                    }
                } else {
                    self.healthy(pod, e, format!("{pod} at offset {offset}"));
                }
            }
            Event::PrimaryUnreachable {
                pod,
                consecutive_failures,
            } => self.failing(
                pod,
                e,
                format!("{pod} unreachable after {consecutive_failures} probes"),
            ),
            Event::PodTerminating { pod } => self.failing(pod, e, format!("pod {pod} terminating")),
            Event::PodDeleted { pod } => self.failing(pod, e, format!("pod {pod} deleted")),
            Event::PodObserved {
                pod, phase, ready, ..
            } if !*ready || matches!(phase, PodPhase::Failed | PodPhase::Unknown) => {
                self.failing(pod, e, format!("pod {pod} {phase:?}, not ready"));
            }
            _ => {}
        }
    }

    fn start_record(
        &mut self,
        kind: Kind,
        old: Option<String>,
        new: &str,
        decision: Option<(&logbook_journal::PlannedIntent, &Envelope)>,
    ) -> usize {
        let health = old.as_ref().and_then(|o| self.health.get(o)).cloned();
        let last = old
            .as_ref()
            .and_then(|o| self.primary_offset.get(o))
            .copied();
        let old_offset = last.map(|(offset, _)| offset);
        let old_offset_at = last.map(|(_, at)| at);
        let (decided, candidates) = match decision {
            Some((p, d)) => {
                let (death, failures) = match &p.reason.code {
                    logbook_journal::ReasonCode::PrimaryFailed {
                        death,
                        consecutive_failures,
                        ..
                    } => (Some(*death), Some(*consecutive_failures)),
                    logbook_journal::ReasonCode::PrimaryUnreachable {
                        consecutive_failures,
                    } => (Some(false), Some(*consecutive_failures)),
                    logbook_journal::ReasonCode::PrimaryDead => (Some(true), None),
                    _ => (None, None),
                };
                (
                    Some(DecisionInfo {
                        seq: d.seq,
                        at: d.at,
                        intent_id: p.intent_id,
                        reason: p.reason.code.name().to_owned(),
                        detail: p.reason.detail.clone(),
                        death,
                        consecutive_failures: failures,
                    }),
                    p.reason.code.candidates().to_vec(),
                )
            }
            None => (None, Vec::new()),
        };
        let failure_observed = match kind {
            Kind::Automatic | Kind::Observed | Kind::Sentinel => {
                health.as_ref().and_then(|h| h.failing.clone())
            }
            // Asked for, not failed: the fence that began it is no failure.
            Kind::Planned | Kind::Requested => None,
        };
        self.records.push(Failover {
            kind,
            old_primary: old,
            new_primary: new.to_owned(),
            last_healthy: health.and_then(|h| h.last_healthy),
            failure_observed,
            decided,
            redecided: None,
            candidates,
            promoted: None,
            confirmed: None,
            outcome: Outcome::Pending,
            old_returned: None,
            old_offset,
            old_offset_at,
            promoted_offset: None,
            lost_bytes_bound: None,
            sentinel: None,
        });
        self.records.len().saturating_sub(1)
    }

    fn record_for(&self, pod: &str) -> Option<usize> {
        self.open
            .values()
            .copied()
            .filter(|&i| self.records.get(i).is_some_and(|r| r.new_primary == pod))
            .max()
    }

    fn on_decided(&mut self, e: &Envelope, intents: &[logbook_journal::PlannedIntent]) {
        for p in intents {
            let Some(kind) = logbook_journal::failover::decided(p, self.last_primary.as_deref())
            else {
                continue;
            };
            let (old, new) = match &p.intent {
                Intent::PromoteReplica { pod, from } => (
                    from.clone().or_else(|| self.last_primary.clone()),
                    pod.clone(),
                ),
                Intent::Switchover { from, to } => (Some(from.clone()), to.clone()),
                // The Sentinels choose; the record learns whom at the switch.
                Intent::SentinelFailover { from, to } => (
                    Some(from.clone()),
                    to.clone().unwrap_or_else(|| SENTINEL_CHOICE.to_owned()),
                ),
                // A Valkey Cluster's shards: `shard_failovers`.
                _ => continue,
            };
            if let Some(index) = self.carried_on(kind, old.as_deref(), &new, p, e) {
                self.open.insert(p.intent_id, index);
                continue;
            }
            let index = self.start_record(kind, old, &new, Some((p, e)));
            self.open.insert(p.intent_id, index);
        }
        // Only the new leader's first decision carries a cut one on.
        self.cut.clear();
        self.found.clear();
    }

    /// The record of a failover a takeover cut (its promotion abandoned
    /// when found in flight) that `p`, the new leader's first decision,
    /// decides again — the same kind, from and to the same pods — now
    /// carried on by it.
    fn carried_on(
        &mut self,
        kind: Kind,
        old: Option<&str>,
        new: &str,
        p: &logbook_journal::PlannedIntent,
        e: &Envelope,
    ) -> Option<usize> {
        let at = self.cut.iter().position(|i| {
            self.records.get(*i).is_some_and(|r| {
                r.kind == kind && r.old_primary.as_deref() == old && r.new_primary == new
            })
        })?;
        let index = self.cut.remove(at);
        let r = self.records.get_mut(index)?;
        r.outcome = Outcome::Pending;
        r.redecided = Some(DecisionInfo {
            seq: e.seq,
            at: e.at,
            intent_id: p.intent_id,
            reason: p.reason.code.name().to_owned(),
            detail: p.reason.detail.clone(),
            death: r.decided.as_ref().and_then(|d| d.death),
            consecutive_failures: r.decided.as_ref().and_then(|d| d.consecutive_failures),
        });
        Some(index)
    }

    fn on_promoted(&mut self, e: &Envelope, pod: &str, from: Option<&String>, offset: u64) {
        let index = match self.record_for(pod) {
            Some(i) => i,
            None => {
                let old = from.cloned().or_else(|| self.last_primary.clone());
                if old.is_none() || old.as_deref() == Some(pod) {
                    // A first primary, or a promotion journaled again
                    // (adopted): nothing changed hands.
                    return;
                }
                let i = self.start_record(Kind::Observed, old, pod, None);
                self.awaiting_return.push(i);
                i
            }
        };
        if let Some(r) = self.records.get_mut(index)
            && r.promoted.is_none()
        {
            r.promoted = Some(mark(e, format!("{pod} promoted at offset {offset}")));
            r.promoted_offset = Some(offset);
            r.lost_bytes_bound = r.old_offset.map(|o| o.saturating_sub(offset));
        }
    }

    fn on_outcome(&mut self, e: &Envelope, intent_id: &Uuid, outcome: Outcome) {
        let Some(index) = self.open.remove(intent_id) else {
            return;
        };
        let asked_sentinel = self
            .state
            .in_flight
            .get(intent_id)
            .is_some_and(|f| matches!(f.planned.intent, Intent::SentinelFailover { .. }));
        if asked_sentinel
            && outcome == Outcome::Completed
            && !self.sentinel_switched.contains(&index)
        {
            self.sentinel_asked = Some(index);
        }
        let cut = matches!(outcome, Outcome::Abandoned(_)) && self.found.contains(intent_id);
        if let Some(r) = self.records.get_mut(index) {
            if r.confirmed.is_none() && outcome == Outcome::Completed {
                r.confirmed = Some(mark(e, "promotion intent succeeded".to_owned()));
            }
            r.outcome = outcome;
        }
        if cut {
            // Abandoned by a takeover that did not find it done: the new
            // leader may decide it again.
            self.cut.push(index);
        } else {
            self.awaiting_return.push(index);
        }
    }

    fn on_role(&mut self, e: &Envelope, pod: &str, role: Role, primary: Option<&String>) {
        // The old primary seen again, after its successor was promoted.
        let mut returned = Vec::new();
        for &i in &self.awaiting_return {
            if let Some(r) = self.records.get_mut(i)
                && r.old_primary.as_deref() == Some(pod)
                && r.old_returned.is_none()
            {
                let what = match (role, primary) {
                    (Role::Replica, Some(p)) => format!("{pod} returned as a replica of {p}"),
                    (role, _) => format!("{pod} returned as {role:?}"),
                };
                r.old_returned = Some(mark(e, what));
                returned.push(i);
            }
        }
        self.awaiting_return.retain(|i| !returned.contains(i));
        if role != Role::Primary {
            return;
        }
        if let Some(i) = self.record_for(pod) {
            if let Some(r) = self.records.get_mut(i)
                && r.confirmed.is_none()
                && r.promoted.is_some()
            {
                r.confirmed = Some(mark(e, format!("{pod} answered as primary")));
            }
            return;
        }
        // Topology Sentinel: a pod promoted by Sentinel answers as primary
        // before the switch is journaled; the switch makes the record.
        if self.state.sentinel.enabled {
            return;
        }
        // A pod serving as primary that nobody here decided: Valkey's own
        // failover (or a person's REPLICAOF NO ONE).
        let decided_here = self
            .records
            .last()
            .is_some_and(|r| r.new_primary == pod && r.kind != Kind::Observed);
        let old = self.last_primary.clone();
        if !decided_here && old.is_some() && old.as_deref() != Some(pod) {
            let i = self.start_record(Kind::Observed, old, pod, None);
            if let Some(r) = self.records.get_mut(i) {
                r.promoted_offset = self.state.pods.get(pod).and_then(|p| p.offset);
                r.lost_bytes_bound = r
                    .old_offset
                    .zip(r.promoted_offset)
                    .map(|(o, n)| o.saturating_sub(n));
                r.confirmed = Some(mark(e, format!("{pod} answered as primary")));
                r.outcome = Outcome::Completed;
            }
            self.awaiting_return.push(i);
        }
    }
}

/// The new primary of a hand-over asked of Sentinel, until it chooses.
const SENTINEL_CHOICE: &str = "(Sentinel's choice)";

impl Failovers {
    /// A switch the Sentinels made: it completes the hand-over the
    /// operator asked of them, or is a failover of their own.
    fn on_switch(&mut self, e: &Envelope, switch: &logbook_journal::SentinelSwitch) {
        let asked = self.sentinel_asked.take().or_else(|| {
            self.open
                .iter()
                .filter(|(_, i)| {
                    self.records.get(**i).is_some_and(|r| {
                        r.old_primary == switch.from
                            && (r.new_primary == SENTINEL_CHOICE || r.new_primary == switch.to)
                    })
                })
                .map(|(_, i)| *i)
                .max()
        });
        let index = match asked {
            Some(i) => i,
            None => {
                let i = self.start_record(Kind::Sentinel, switch.from.clone(), &switch.to, None);
                if let Some(r) = self.records.get_mut(i) {
                    r.outcome = Outcome::Completed;
                }
                self.awaiting_return.push(i);
                i
            }
        };
        self.sentinel_switched.insert(index);
        let steps = std::mem::take(&mut self.sentinel_steps);
        let promoted_offset = switch
            .candidates
            .iter()
            .find(|c| c.pod == switch.to)
            .and_then(|c| c.offset);
        if let Some(r) = self.records.get_mut(index) {
            r.new_primary.clone_from(&switch.to);
            r.promoted = Some(mark(
                e,
                format!(
                    "the Sentinels switched to {} ({}) at epoch {}",
                    switch.to, switch.to_ip, switch.epoch
                ),
            ));
            r.confirmed = Some(mark(
                e,
                format!("named primary by {}", switch.reported_by.join(", ")),
            ));
            r.promoted_offset = promoted_offset;
            r.lost_bytes_bound = r
                .old_offset
                .zip(promoted_offset)
                .map(|(o, n)| o.saturating_sub(n));
            r.sentinel = Some(SentinelInfo {
                epoch: switch.epoch,
                leader: switch.leader.clone(),
                voters: switch.voters.clone(),
                reported_by: switch.reported_by.clone(),
                after_the_fact: switch.after_the_fact,
                candidates: switch.candidates.clone(),
                steps,
            });
        }
    }

    fn on_sentinel_event(&mut self, e: &Envelope, pod: &str, channel: &str, payload: &str) {
        if self.sentinel_steps.len() >= SENTINEL_STEPS {
            self.sentinel_steps.remove(0);
        }
        self.sentinel_steps
            .push(mark(e, format!("{pod} {channel} {payload}")));
    }
}

fn mark(e: &Envelope, what: String) -> Mark {
    Mark {
        seq: e.seq,
        at: e.at,
        what,
    }
}

impl Visit for Failovers {
    fn start(&mut self, start: &Start) -> Result<()> {
        self.begin(&start.base);
        Ok(())
    }

    fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> Result<Flow> {
        self.fold(e);
        Ok(Flow::Continue)
    }
}

impl Failovers {
    fn fold(&mut self, e: &Envelope) {
        let cluster = !self.state.cluster.pods.is_empty()
            || matches!(e.body, Event::ClusterNodeObserved { .. });
        if cluster {
            // A Valkey Cluster: promotions and roles are per shard, which
            // only the shard records can tell.
            self.shards.before(&self.state, e);
            self.state.apply(e);
            self.shards.after(&self.state, e);
            return;
        }
        match &e.body {
            Event::OperatorStarted { .. } => {
                self.found = self.state.in_flight.keys().copied().collect();
                self.cut.clear();
            }
            Event::Decided { intents } => self.on_decided(e, intents),
            Event::ReplicaPromoted { pod, from, offset } => {
                self.on_promoted(e, pod, from.as_ref(), *offset);
            }
            Event::IntentSucceeded { intent_id, .. } => {
                self.on_outcome(e, intent_id, Outcome::Completed);
            }
            Event::IntentFailed {
                intent_id, error, ..
            } => self.on_outcome(e, intent_id, Outcome::Failed(error.clone())),
            Event::IntentAbandoned { intent_id, reason } => {
                self.on_outcome(e, intent_id, Outcome::Abandoned(reason.clone()));
            }
            Event::NodeRoleObserved { pod, role, primary } => {
                self.on_role(e, pod, *role, primary.as_ref());
            }
            Event::SentinelSwitchObserved { switch } => self.on_switch(e, switch),
            Event::SentinelEventObserved {
                pod,
                channel,
                payload,
            } => self.on_sentinel_event(e, pod, channel, payload),
            _ => {}
        }
        self.track_health(e);
        self.state.apply(e);
        if let Some(primary) = &self.state.replication.primary {
            self.last_primary = Some(primary.clone());
        }
    }
}

/// How long before the failure the old primary's offset was journaled,
/// for people: the bound says nothing of what it took after that.
#[must_use]
pub fn offset_age(r: &Failover) -> String {
    let failure = r
        .failure_observed
        .as_ref()
        .map(|m| m.at)
        .or(r.decided.as_ref().map(|d| d.at))
        .or(r.promoted.as_ref().map(|m| m.at));
    match (r.old_offset_at, failure) {
        (Some(seen), Some(failed)) => {
            let us = failed.millis_since(seen).max(0).saturating_mul(1000);
            format!(
                "as journaled {} before its failure",
                crate::export::html::duration(us)
            )
        }
        (Some(_), None) => "as last journaled".to_owned(),
        (None, _) => "from a snapshot, when journaled not known".to_owned(),
    }
}

fn at(mark: Option<&Mark>) -> String {
    mark.map_or_else(
        || "-".to_owned(),
        |m| format!("{} (#{}) {}", m.at, m.seq, m.what),
    )
}

/// One `--json` row: a Replication record, or a shard failover (which
/// carries `"kind": "shard"`).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum Row<'a> {
    /// A change of the one primary of a Replication cluster.
    Replication(&'a Failover),
    /// A failover of one shard of a Valkey Cluster.
    Shard(&'a crate::shard_failovers::ShardFailover),
}

impl Failovers {
    /// Every record as one list: the Replication ones, then the shards'.
    #[must_use]
    pub fn rows(&self) -> Vec<Row<'_>> {
        self.records
            .iter()
            .map(Row::Replication)
            .chain(self.shards.records.iter().map(Row::Shard))
            .collect()
    }
}

/// Writes every record for people: the Replication ones, then the
/// shards'.
///
/// # Errors
/// Output errors.
pub fn write_report(out: &mut dyn Write, failovers: &Failovers) -> std::io::Result<()> {
    if failovers.shards.records.is_empty() || !failovers.records.is_empty() {
        write_text(out, &failovers.records)?;
    }
    crate::shard_failovers::write_text(out, &failovers.shards.records)
}

/// Writes the records for people.
///
/// # Errors
/// Output errors.
pub fn write_text(out: &mut dyn Write, records: &[Failover]) -> std::io::Result<()> {
    if records.is_empty() {
        return writeln!(out, "no failovers");
    }
    for (n, r) in records.iter().enumerate() {
        writeln!(
            out,
            "failover {}: {:?} {} -> {} ({})",
            n.saturating_add(1),
            r.kind,
            r.old_primary.as_deref().unwrap_or("?"),
            r.new_primary,
            match &r.outcome {
                Outcome::Completed => "completed".to_owned(),
                Outcome::Failed(e) => format!("failed: {e}"),
                Outcome::Abandoned(e) => format!("abandoned: {e}"),
                Outcome::Pending => "no outcome yet".to_owned(),
            }
        )?;
        writeln!(out, "  last seen healthy:  {}", at(r.last_healthy.as_ref()))?;
        writeln!(
            out,
            "  failure observed:   {}",
            at(r.failure_observed.as_ref())
        )?;
        match &r.decided {
            Some(d) => writeln!(
                out,
                "  decided:            {} (#{}) {}: {}",
                d.at, d.seq, d.reason, d.detail
            )?,
            None => writeln!(out, "  decided:            - (not decided by the operator)")?,
        }
        if let Some(d) = &r.redecided {
            writeln!(
                out,
                "  decided again:      {} (#{}) {}: {} (the first cut by a takeover, abandoned)",
                d.at, d.seq, d.reason, d.detail
            )?;
        }
        for c in &r.candidates {
            writeln!(
                out,
                "    candidate {:<12} offset {:<12} {}{}{}",
                c.pod,
                c.offset.map_or_else(|| "-".to_owned(), |o| o.to_string()),
                if c.reachable {
                    "reachable"
                } else {
                    "unreachable"
                },
                if c.same_history {
                    ", same history"
                } else {
                    ", other history"
                },
                if c.eligible {
                    ", eligible"
                } else {
                    ", not eligible"
                },
            )?;
        }
        if let Some(info) = &r.sentinel {
            write_sentinel(out, info)?;
        }
        writeln!(out, "  promoted:           {}", at(r.promoted.as_ref()))?;
        writeln!(out, "  confirmed:          {}", at(r.confirmed.as_ref()))?;
        writeln!(out, "  old primary back:   {}", at(r.old_returned.as_ref()))?;
        writeln!(
            out,
            "  lost writes bound:  {}",
            match (r.lost_bytes_bound, r.old_offset, r.promoted_offset) {
                (Some(b), Some(o), Some(p)) => format!(
                    "{b} bytes the old primary had are missing on the new one (old primary at offset {o} {}, promoted at {p}); writes it took after that offset are not in the journal",
                    offset_age(r)
                ),
                _ => format!(
                    "unknown (old primary offset {}, promoted offset {})",
                    r.old_offset
                        .map_or_else(|| "-".to_owned(), |o| o.to_string()),
                    r.promoted_offset
                        .map_or_else(|| "-".to_owned(), |o| o.to_string())
                ),
            }
        )?;
    }
    Ok(())
}

/// The Sentinels' part of a record, for people: only what the journal
/// holds, and what it cannot know said as such.
fn write_sentinel(out: &mut dyn Write, info: &SentinelInfo) -> std::io::Result<()> {
    if info.after_the_fact {
        writeln!(
            out,
            "  sentinel:           epoch {}, found after the fact: the operator was not watching, so who led it and who voted is unknown",
            info.epoch
        )?;
    } else {
        writeln!(
            out,
            "  sentinel:           epoch {}, leader {}, votes from {}",
            info.epoch,
            info.leader.as_deref().unwrap_or("(not seen)"),
            if info.voters.is_empty() {
                "(none seen)".to_owned()
            } else {
                info.voters.join(", ")
            }
        )?;
    }
    writeln!(
        out,
        "  named by:           {}",
        if info.reported_by.is_empty() {
            "-".to_owned()
        } else {
            info.reported_by.join(", ")
        }
    )?;
    for c in &info.candidates {
        writeln!(
            out,
            "    candidate {:<12} offset {:<12} {}{}",
            c.pod,
            c.offset.map_or_else(|| "-".to_owned(), |o| o.to_string()),
            if c.reachable {
                "reachable"
            } else {
                "unreachable"
            },
            if c.in_sync {
                ", in sync"
            } else {
                ", not in sync"
            },
        )?;
    }
    for step in &info.steps {
        writeln!(out, "    step {} (#{}) {}", step.at, step.seq, step.what)?;
    }
    Ok(())
}
