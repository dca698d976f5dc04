//! Failovers of a Valkey Cluster's shards, whoever made them: the
//! operator's `ClusterFailover` intents (coordinated, forced, takeover)
//! and Valkey's own elections, seen when a replica of a shard's primary
//! claims that primary's slots with a higher config epoch.
//!
//! A record is opened by the decision (operator) or by the ownership
//! change itself (Valkey); the ownership change — the first report in
//! which the new primary claims the slots — is when the shard served
//! again. Detection is the first journaled sign of the old primary's
//! failure ([`crate::cluster_facts`]). Offsets are only those journaled:
//! the lost-writes bound is given with the age of the old primary's
//! offset, or said to be unknown.

use std::collections::BTreeMap;

use logbook_journal::cluster::{describe_slots, merge_slots, slot_count};
use logbook_journal::{
    ClusterFailoverMode, ClusterState, Envelope, Event, FailoverKind, Intent, LinkStatus,
    PlannedIntent, ReasonCode, SlotRange, Timestamp,
};
use serde::Serialize;
use uuid::Uuid;

use crate::cluster_facts::{ClusterFacts, Sign, short};
use crate::failovers::{DecisionInfo, Mark, Outcome};

/// Tells a shard failover apart from a Replication record in `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardKind {
    /// A failover of one shard of a Valkey Cluster.
    Shard,
}

/// Who decided the failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecidedBy {
    /// The operator (a `ClusterFailover` intent).
    Operator,
    /// Valkey's own election, observed in the node reports.
    Valkey,
}

/// How it was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `CLUSTER FAILOVER`: the primary handed over.
    Coordinated,
    /// `CLUSTER FAILOVER FORCE`.
    Force,
    /// `CLUSTER FAILOVER TAKEOVER`.
    Takeover,
    /// Valkey's election, nobody asked.
    Election,
}

impl From<ClusterFailoverMode> for Mode {
    fn from(mode: ClusterFailoverMode) -> Self {
        match mode {
            ClusterFailoverMode::Coordinated => Self::Coordinated,
            ClusterFailoverMode::Force => Self::Force,
            ClusterFailoverMode::Takeover => Self::Takeover,
        }
    }
}

/// A node by pod and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    /// The pod that ran it, when known.
    pub pod: Option<String>,
    /// Its node id (full).
    pub node_id: Option<String>,
}

/// A replica considered, with its offset as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardCandidate {
    /// Pod name.
    pub pod: String,
    /// Its last journaled replication offset.
    pub offset: Option<u64>,
    /// When that offset was journaled (`None`: not in this scan).
    pub offset_at: Option<Timestamp>,
    /// Whether its last probe answered (the decider's view; `None` for
    /// Valkey's election, which the journal does not show).
    pub reachable: Option<bool>,
    /// Whether the decider found it eligible (`None` for an election).
    pub eligible: Option<bool>,
}

/// One shard failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardFailover {
    /// Always `shard`.
    pub kind: ShardKind,
    /// The slots that changed hands (for an operator failover not yet
    /// served: the old primary's slots at the decision).
    pub slots: Vec<SlotRange>,
    /// How many.
    pub slot_count: u32,
    /// The primary replaced.
    pub old_primary: NodeRef,
    /// The primary that took over (the intent's target until served).
    pub new_primary: NodeRef,
    /// Operator or Valkey.
    pub decided_by: DecidedBy,
    /// Automatic, planned or requested (the operator's decision, by the
    /// classification the metrics use too), or observed (Valkey's
    /// election).
    pub cause: FailoverKind,
    /// Coordinated, force, takeover or election.
    pub mode: Mode,
    /// The operator's decision (absent for Valkey's election).
    pub decided: Option<DecisionInfo>,
    /// The decision that carried it on after a takeover cut it: the first
    /// one's intent was found in flight and abandoned (not found done),
    /// and the new leader decided a failover of the same shard to the same
    /// pod afresh (its mode is the one recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redecided: Option<DecisionInfo>,
    /// The first journaled sign of the old primary's failure.
    pub detected: Option<Sign>,
    /// The shard's replicas with their journaled offsets.
    pub candidates: Vec<ShardCandidate>,
    /// The new primary's config epoch when it first claimed the slots.
    pub config_epoch: Option<u64>,
    /// The old primary's config epoch.
    pub old_config_epoch: Option<u64>,
    /// The first report in which the new primary claims the slots.
    pub serving: Option<Mark>,
    /// Milliseconds from detection to serving, when both are journaled.
    pub detection_to_serving_ms: Option<i64>,
    /// The intent's outcome (`None` for Valkey's election).
    pub outcome: Option<Outcome>,
    /// The old primary's last offset journaled while it was a primary.
    pub old_offset: Option<u64>,
    /// When that offset was journaled.
    pub old_offset_at: Option<Timestamp>,
    /// The new primary's offset at the promotion (`ReplicaPromoted`), or
    /// its last offset journaled before it served.
    pub new_offset: Option<u64>,
    /// Replication bytes the old primary had and the new one did not, as
    /// far as the journaled offsets show (`None` when either is unknown).
    pub lost_bytes_bound: Option<u64>,
}

/// The shard failover collector, fed by [`crate::failovers::Failovers`].
#[derive(Debug, Default)]
pub struct ShardFailovers {
    facts: ClusterFacts,
    /// Per slot, its last owner (never cleared to `None`: a slot forgotten
    /// with its dead owner and then claimed is still a failover).
    owners: Vec<Option<String>>,
    /// Each pod's last offset while primary, and when.
    primary_offset: BTreeMap<String, (u64, Timestamp)>,
    /// Each pod's last offset, and when.
    offset: BTreeMap<String, (u64, Timestamp)>,
    /// Records, in order.
    pub records: Vec<ShardFailover>,
    /// Operator records by intent id, until served.
    open: BTreeMap<Uuid, usize>,
    /// Operator records by intent id, until settled.
    intents: BTreeMap<Uuid, usize>,
    /// Intents found in flight at the last takeover.
    found: Vec<Uuid>,
    /// Records whose failover such a takeover abandoned: the new leader's
    /// next decision may carry them on.
    cut: Vec<usize>,
}

impl ShardFailovers {
    /// Starts from the projection the scan starts with.
    pub fn start(&mut self, base: &ClusterState) {
        self.owners = base
            .cluster
            .slot_owners()
            .into_iter()
            .map(|o| o.map(str::to_owned))
            .collect();
    }

    /// Before `e` is folded into `before`.
    pub fn before(&mut self, before: &ClusterState, e: &Envelope) {
        match &e.body {
            Event::OperatorStarted { .. } => {
                self.found = before.in_flight.keys().copied().collect();
                self.cut.clear();
            }
            Event::Decided { intents } => {
                for p in intents {
                    self.on_decided(before, e, p);
                }
                // Only the new leader's first decision carries one on.
                self.cut.clear();
                self.found.clear();
            }
            Event::IntentSucceeded { intent_id, .. } => {
                self.settle(intent_id, Outcome::Completed);
            }
            Event::IntentFailed {
                intent_id, error, ..
            } => {
                self.settle(intent_id, Outcome::Failed(error.clone()));
            }
            Event::IntentAbandoned { intent_id, reason } => {
                let cut = self.found.contains(intent_id);
                if let Some(index) = self.settle(intent_id, Outcome::Abandoned(reason.clone()))
                    && cut
                {
                    self.cut.push(index);
                }
            }
            Event::ReplicaPromoted { pod, offset, .. } => {
                for r in self.records.iter_mut().rev() {
                    if r.new_primary.pod.as_deref() == Some(pod.as_str()) {
                        if r.decided_by == DecidedBy::Operator {
                            r.new_offset = Some(*offset);
                            r.lost_bytes_bound = r.old_offset.map(|o| o.saturating_sub(*offset));
                        }
                        break;
                    }
                }
            }
            _ => {}
        }
    }

    /// After `e` was folded into `after`.
    pub fn after(&mut self, after: &ClusterState, e: &Envelope) {
        if let Event::ReplicationObserved {
            pod, offset, link, ..
        } = &e.body
        {
            self.offset.insert(pod.clone(), (*offset, e.at));
            let primary = after.cluster.report(pod).is_some_and(|r| r.is_primary());
            if *link == LinkStatus::NotReplica && primary {
                self.primary_offset.insert(pod.clone(), (*offset, e.at));
            }
        }
        let Event::ClusterNodeObserved { .. } = &e.body else {
            self.facts.after(after, e);
            return;
        };
        // The ownership change is judged against the signs known before
        // the report that shows it.
        self.on_owners(after, e);
        self.facts.after(after, e);
    }

    /// Settles the record of intent `id`, returning its index.
    fn settle(&mut self, id: &Uuid, outcome: Outcome) -> Option<usize> {
        let index = self.intents.remove(id)?;
        let r = self.records.get_mut(index)?;
        r.outcome = Some(outcome);
        Some(index)
    }

    /// The record a takeover cut that `p` decides again (a failover from
    /// the same pod to the same pod), carried on by it.
    fn carried_on(&mut self, e: &Envelope, p: &PlannedIntent) -> bool {
        let Intent::ClusterFailover { pod, from, mode } = &p.intent else {
            return false;
        };
        let Some(at) = self.cut.iter().position(|i| {
            self.records.get(*i).is_some_and(|r| {
                r.new_primary.pod.as_ref() == Some(pod) && r.old_primary.pod == *from
            })
        }) else {
            return false;
        };
        let index = self.cut.remove(at);
        let Some(r) = self.records.get_mut(index) else {
            return false;
        };
        let old_id = r.decided.as_ref().map(|d| d.intent_id);
        r.mode = (*mode).into();
        r.outcome = Some(Outcome::Pending);
        r.redecided = Some(DecisionInfo {
            seq: e.seq,
            at: e.at,
            intent_id: p.intent_id,
            reason: p.reason.code.name().to_owned(),
            detail: p.reason.detail.clone(),
            death: r.decided.as_ref().and_then(|d| d.death),
            consecutive_failures: r.decided.as_ref().and_then(|d| d.consecutive_failures),
        });
        if let Some(old) = old_id {
            self.open.remove(&old);
        }
        self.open.insert(p.intent_id, index);
        self.intents.insert(p.intent_id, index);
        true
    }

    fn on_decided(&mut self, before: &ClusterState, e: &Envelope, p: &PlannedIntent) {
        let Intent::ClusterFailover { pod, from, mode } = &p.intent else {
            return;
        };
        if self.carried_on(e, p) {
            return;
        }
        let old_id = from
            .as_deref()
            .and_then(|f| {
                // The shard's primary node: the one the target follows, or
                // the node its pod runs.
                before
                    .cluster
                    .report(pod)
                    .and_then(|r| r.primary_id.clone())
                    .filter(|id| before.cluster.pod_of(id) == Some(f))
                    .or_else(|| before.cluster.node_id(f).map(str::to_owned))
            })
            .or_else(|| {
                before
                    .cluster
                    .report(pod)
                    .and_then(|r| r.primary_id.clone())
            });
        let old_report = old_id
            .as_deref()
            .and_then(|id| before.cluster.nodes.get(id))
            .map(|n| &n.report);
        let slots = old_report.map(|r| r.slots.clone()).unwrap_or_default();
        let (death, failures) = match &p.reason.code {
            ReasonCode::PrimaryFailed {
                death,
                consecutive_failures,
                ..
            } => (Some(*death), Some(*consecutive_failures)),
            _ => (None, None),
        };
        let candidates = p
            .reason
            .code
            .candidates()
            .iter()
            .map(|c| ShardCandidate {
                pod: c.pod.clone(),
                offset: c.offset,
                offset_at: self
                    .offset
                    .get(&c.pod)
                    .filter(|(o, _)| Some(*o) == c.offset)
                    .map(|(_, at)| *at),
                reachable: Some(c.reachable),
                eligible: Some(c.eligible),
            })
            .collect();
        let old_pod = from.clone().or_else(|| {
            old_id
                .as_deref()
                .and_then(|id| before.cluster.pod_of(id))
                .map(str::to_owned)
        });
        let record = self.record(
            before,
            &slots,
            old_pod,
            old_id,
            NodeRef {
                pod: Some(pod.clone()),
                node_id: before.cluster.node_id(pod).map(str::to_owned),
            },
            candidates,
        );
        self.records.push(ShardFailover {
            decided_by: DecidedBy::Operator,
            cause: logbook_journal::failover::decided(p, None).unwrap_or(FailoverKind::Automatic),
            mode: (*mode).into(),
            decided: Some(DecisionInfo {
                seq: e.seq,
                at: e.at,
                intent_id: p.intent_id,
                reason: p.reason.code.name().to_owned(),
                detail: p.reason.detail.clone(),
                death,
                consecutive_failures: failures,
            }),
            outcome: Some(Outcome::Pending),
            ..record
        });
        let index = self.records.len().saturating_sub(1);
        self.open.insert(p.intent_id, index);
        self.intents.insert(p.intent_id, index);
    }

    /// A record's common part, before it is served.
    fn record(
        &self,
        state: &ClusterState,
        slots: &[SlotRange],
        old_pod: Option<String>,
        old_id: Option<String>,
        new: NodeRef,
        candidates: Vec<ShardCandidate>,
    ) -> ShardFailover {
        let old = old_pod
            .as_deref()
            .and_then(|p| self.primary_offset.get(p))
            .copied();
        let old_config_epoch = old_id
            .as_deref()
            .and_then(|id| state.cluster.nodes.get(id))
            .map(|n| n.report.config_epoch);
        ShardFailover {
            kind: ShardKind::Shard,
            slots: slots.to_vec(),
            slot_count: slot_count(slots),
            detected: old_id
                .as_deref()
                .and_then(|id| self.facts.first_sign(old_pod.as_deref(), id))
                .cloned(),
            old_primary: NodeRef {
                pod: old_pod,
                node_id: old_id,
            },
            new_primary: new,
            decided_by: DecidedBy::Valkey,
            cause: FailoverKind::Observed,
            mode: Mode::Election,
            decided: None,
            redecided: None,
            candidates,
            config_epoch: None,
            old_config_epoch,
            serving: None,
            detection_to_serving_ms: None,
            outcome: None,
            old_offset: old.map(|(o, _)| o),
            old_offset_at: old.map(|(_, at)| at),
            new_offset: None,
            lost_bytes_bound: None,
        }
    }

    /// Slots whose owner changed from a primary to a node that had
    /// followed it: one failover per (old, new) pair.
    fn on_owners(&mut self, after: &ClusterState, e: &Envelope) {
        let now = after.cluster.slot_owners();
        let mut moved: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
        for (slot, owner) in (0u16..).zip(now.iter()) {
            let Some(new) = owner else { continue };
            let Some(last) = self.owners.get_mut(usize::from(slot)) else {
                continue;
            };
            if let Some(old) = last.as_deref()
                && old != *new
                && self.facts.followed_since(new, old).is_some()
            {
                moved
                    .entry((old.to_owned(), (*new).to_owned()))
                    .or_default()
                    .push(slot);
            }
            *last = Some((*new).to_owned());
        }
        if self.owners.is_empty() {
            self.owners = now.iter().map(|o| o.map(str::to_owned)).collect();
        }
        for ((old, new), slots) in moved {
            self.served(after, e, &old, &new, merge_slots(slots));
        }
    }

    fn served(
        &mut self,
        after: &ClusterState,
        e: &Envelope,
        old: &str,
        new: &str,
        slots: Vec<SlotRange>,
    ) {
        let new_pod = after.cluster.pod_of(new).map(str::to_owned);
        let epoch = after.cluster.nodes.get(new).map(|n| n.report.config_epoch);
        // The operator's record for this target, not served yet.
        let open = self
            .open
            .iter()
            .filter(|(_, i)| {
                self.records.get(**i).is_some_and(|r| {
                    r.serving.is_none() && r.new_primary.pod == new_pod && new_pod.is_some()
                })
            })
            .map(|(id, &i)| (*id, i))
            .max_by_key(|(_, i)| *i);
        let index = match open {
            Some((id, i)) => {
                self.open.remove(&id);
                i
            }
            None => {
                let old_pod = after.cluster.pod_of(old).map(str::to_owned);
                let candidates = after
                    .cluster
                    .pods
                    .iter()
                    .filter(|(_, id)| self.facts.followed_since(id, old).is_some())
                    .map(|(pod, _)| {
                        let offset = self.offset.get(pod).copied();
                        ShardCandidate {
                            pod: pod.clone(),
                            offset: offset.map(|(o, _)| o),
                            offset_at: offset.map(|(_, at)| at),
                            reachable: None,
                            eligible: None,
                        }
                    })
                    .collect();
                let record = self.record(
                    after,
                    &slots,
                    old_pod,
                    Some(old.to_owned()),
                    NodeRef {
                        pod: new_pod.clone(),
                        node_id: Some(new.to_owned()),
                    },
                    candidates,
                );
                let new_offset = new_pod
                    .as_deref()
                    .and_then(|p| self.offset.get(p))
                    .map(|(o, _)| *o);
                self.records.push(ShardFailover {
                    new_offset,
                    lost_bytes_bound: record
                        .old_offset
                        .zip(new_offset)
                        .map(|(o, n)| o.saturating_sub(n)),
                    ..record
                });
                self.records.len().saturating_sub(1)
            }
        };
        let what = format!(
            "{} (node {}) claims slots {} at config epoch {}",
            new_pod.as_deref().unwrap_or("?"),
            short(new),
            describe_slots(&slots),
            epoch.map_or_else(|| "?".to_owned(), |e| e.to_string())
        );
        if let Some(r) = self.records.get_mut(index) {
            r.slot_count = slot_count(&slots);
            r.slots = slots;
            r.new_primary.node_id = Some(new.to_owned());
            r.config_epoch = epoch;
            r.serving = Some(Mark {
                seq: e.seq,
                at: e.at,
                what,
            });
            r.detection_to_serving_ms = r.detected.as_ref().map(|d| e.at.millis_since(d.at));
        }
    }

    /// The history kept beside the projection.
    #[must_use]
    pub fn facts(&self) -> &ClusterFacts {
        &self.facts
    }
}

mod text;
pub use text::{describe_bound, write_text};
