//! The one scan the report is drawn from: each pod's role over time, every
//! decision with its intents and their outcomes, the failovers and
//! reshards (through their own visitors, so the report and the
//! `failovers` / `reshards` verbs can never disagree), operator takeovers,
//! and the event list.
//!
//! Memory stays bounded by what the page shows: every decision, outcome
//! and operator record is kept, but only the last [`RECENT_OBSERVATIONS`]
//! observations (plus the one each decision was taken on); a journal of a
//! million probes still gives a page a browser opens. A pod's lane keeps
//! one segment per change of state, not per event ([`Lanes`]).
//!
//! Nothing here writes HTML: the other modules render what this collects.

use std::collections::{HashMap, VecDeque};

use logbook_journal::{ClusterState, Envelope, Event, PlannedIntent, Timestamp};
use uuid::Uuid;

use crate::describe;
use crate::error::Result;
use crate::failovers::{Failover, Failovers};
use crate::reshards::Reshards;
use crate::source::{Flow, Raw, Start, Visit};

use super::lanes::Lanes;

/// How many of the latest observations the event list shows.
pub const RECENT_OBSERVATIONS: usize = 2_000;

/// How an intent was settled.
#[derive(Debug, Clone)]
pub enum Settlement {
    /// `IntentSucceeded`, with what was done.
    Succeeded(String),
    /// `IntentFailed`.
    Failed {
        /// The error.
        error: String,
        /// Whether deciding again may succeed.
        retryable: bool,
    },
    /// `IntentAbandoned`, with why.
    Abandoned(String),
}

/// An intent's outcome event.
#[derive(Debug, Clone)]
pub struct Settled {
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// What it says.
    pub settlement: Settlement,
}

/// One intent of a decision, with its outcome once journaled.
#[derive(Debug, Clone)]
pub struct DecidedIntent {
    /// The intent, its id and reason, as recorded.
    pub planned: PlannedIntent,
    /// Its outcome (`None`: still in flight at the end of the journal).
    pub outcome: Option<Settled>,
}

/// The event a decision was taken on (folded just before it).
#[derive(Debug, Clone)]
pub struct Previous {
    /// Its seq.
    pub seq: u64,
    /// Its kind.
    pub kind: &'static str,
    /// What it says.
    pub summary: String,
}

/// One `Decided` event.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// The writer's epoch.
    pub epoch: u64,
    /// The event folded before it.
    pub after: Option<Previous>,
    /// The intents, in execution order.
    pub intents: Vec<DecidedIntent>,
}

impl Decision {
    /// Whether it hands the primary role (the cluster's, or a Valkey
    /// Cluster shard's) to another pod.
    pub fn changes_primary(&self) -> bool {
        self.intents.iter().any(|i| {
            matches!(
                i.planned.intent,
                logbook_journal::Intent::PromoteReplica { .. }
                    | logbook_journal::Intent::Switchover { .. }
                    | logbook_journal::Intent::ClusterFailover { .. }
            )
        })
    }
}

/// An operator instance taking the stream over (`OperatorStarted`).
#[derive(Debug, Clone)]
pub struct Takeover {
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// The instance.
    pub instance: String,
    /// The epoch it acts under.
    pub epoch: u64,
    /// How long nobody watched before it, when known.
    pub gap_ms: Option<u64>,
}

/// What kind of event a row of the event list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// An observation of Kubernetes or Valkey (the list keeps the last ones).
    Observation,
    /// A `Decided` event.
    Decision,
    /// An intent's outcome.
    Outcome,
    /// Anything else: promotions, policy, operator records (always kept).
    Record,
}

/// Where a row points: the decision it settles or follows from, or the
/// event a decision was taken on.
#[derive(Debug, Clone)]
pub struct ChainRef {
    /// The element id it links to (`decision-<seq>`, `event-<seq>`), when
    /// that is on the page.
    pub link: Option<String>,
    /// For people.
    pub text: String,
}

/// One line of the event list.
#[derive(Debug, Clone)]
pub struct Row {
    /// The event's seq.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
    /// The writer's epoch.
    pub epoch: u64,
    /// The event's catalog name.
    pub kind: &'static str,
    /// Its class in the list.
    pub row: RowKind,
    /// The pod it is about.
    pub pod: Option<String>,
    /// What it says.
    pub summary: String,
    /// What it follows from.
    pub chain: Option<ChainRef>,
}

/// The report's data, gathered in one scan.
#[derive(Default)]
pub struct Collect {
    /// What the scan started from (`None` until it starts).
    pub start: Option<Start>,
    state: ClusterState,
    failovers: Failovers,
    reshards: Reshards,
    /// The first event's seq and time.
    pub first: Option<(u64, Timestamp)>,
    /// The last event's seq and time.
    pub last: Option<(u64, Timestamp)>,
    /// Events scanned.
    pub events: u64,
    /// Each pod's role over time.
    pub lanes: Lanes,
    /// Every decision, in seq order.
    pub decisions: Vec<Decision>,
    /// Intent id → (index in `decisions`, index among its intents).
    intents: HashMap<Uuid, (usize, usize)>,
    /// Envelope id of each decision → its seq (what `cause` points to).
    decision_ids: HashMap<Uuid, u64>,
    /// Intents in flight in the snapshot the scan started from: their
    /// decisions were compacted away → (decided seq, description).
    compacted: HashMap<Uuid, (u64, String)>,
    /// Operator takeovers.
    pub takeovers: Vec<Takeover>,
    /// Rows always listed.
    kept: Vec<Row>,
    /// The latest observations.
    recent: VecDeque<Row>,
    /// Observations scanned.
    pub observations: u64,
    /// Observations kept because a decision was taken on them.
    kept_observations: u64,
    /// Every data pod name observed.
    pod_names: std::collections::BTreeSet<String>,
    previous: Option<Previous>,
    /// Where the journal stopped verifying, and why.
    pub damaged: Option<(u64, String)>,
}

impl Collect {
    /// An empty collector; a failing reshard is judged given up by
    /// `given_up` (the decider's build), when given.
    pub fn new(given_up: Option<crate::reshards::GivenUp>) -> Self {
        Self {
            reshards: Reshards::with_given_up(given_up),
            ..Self::default()
        }
    }

    /// The failovers, as the `failovers` verb reports them.
    pub fn failovers(&self) -> &[Failover] {
        &self.failovers.records
    }

    /// A Valkey Cluster's shard failovers, as the `failovers` verb
    /// reports them.
    pub fn shard_failovers(&self) -> &[crate::shard_failovers::ShardFailover] {
        &self.failovers.shards.records
    }

    /// The cluster's name as its data pods' names give it (a sled journal
    /// names no cluster: its pods are the StatefulSet's, named after the
    /// ValkeyCluster, `<name>-<ordinal>`); `None` unless every pod agrees.
    pub fn name_from_pods(&self) -> Option<String> {
        name_from_pods(self.pod_names.iter().map(String::as_str))
    }

    /// The reshards, settled slots and unnamed jobs, as the `reshards`
    /// verb reports them.
    pub fn reshards(&self) -> &Reshards {
        &self.reshards
    }

    /// The event list, in seq order.
    pub fn rows(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.kept.iter().chain(self.recent.iter()).collect();
        rows.sort_by_key(|r| r.seq);
        rows
    }

    /// Observations the event list leaves out.
    pub fn omitted(&self) -> u64 {
        self.observations
            .saturating_sub(self.kept_observations)
            .saturating_sub(self.recent.len() as u64)
    }

    fn on_decided(&mut self, e: &Envelope, intents: &[PlannedIntent]) {
        let index = self.decisions.len();
        for (i, p) in intents.iter().enumerate() {
            self.intents.insert(p.intent_id, (index, i));
        }
        self.decision_ids.insert(e.id, e.seq);
        self.decisions.push(Decision {
            seq: e.seq,
            at: e.at,
            epoch: e.epoch,
            after: self.previous.clone(),
            intents: intents
                .iter()
                .map(|p| DecidedIntent {
                    planned: p.clone(),
                    outcome: None,
                })
                .collect(),
        });
        // The observation a decision was taken on stays listed, however old.
        let trigger = self.recent.back().is_some_and(|r| {
            self.previous
                .as_ref()
                .is_some_and(|p| p.seq == r.seq && r.seq.saturating_add(1) == e.seq)
        });
        if let Some(row) = trigger.then(|| self.recent.pop_back()).flatten() {
            self.kept.push(row);
            self.kept_observations = self.kept_observations.saturating_add(1);
        }
    }

    /// Records an outcome against its intent; returns what the row chains to.
    fn on_outcome(&mut self, e: &Envelope, id: &Uuid, settlement: Settlement) -> ChainRef {
        let found = self.intents.get(id).copied();
        let Some((d, i)) = found else {
            let text = match self.compacted.get(id) {
                Some((seq, what)) => format!("#{seq} Decided (compacted): {what}"),
                None => format!(
                    "intent {} (its decision is not in this journal)",
                    describe::short_id(id)
                ),
            };
            return ChainRef { link: None, text };
        };
        let Some(decision) = self.decisions.get_mut(d) else {
            return ChainRef {
                link: None,
                text: format!("intent {}", describe::short_id(id)),
            };
        };
        let seq = decision.seq;
        let mut text = format!("#{seq} Decided");
        if let Some(intent) = decision.intents.get_mut(i) {
            text = format!("#{seq} Decided: {}", intent.planned.intent.describe());
            intent.outcome = Some(Settled {
                seq: e.seq,
                at: e.at,
                settlement,
            });
        }
        ChainRef {
            link: Some(format!("decision-{seq}")),
            text,
        }
    }

    fn row(&mut self, e: &Envelope) {
        let (row, chain) = match &e.body {
            Event::Decided { intents } => {
                self.on_decided(e, intents);
                // The event it was taken on is always listed (see `on_decided`).
                let chain = self.previous.as_ref().map(|p| ChainRef {
                    link: Some(format!("event-{}", p.seq)),
                    text: format!("after #{} {}", p.seq, p.kind),
                });
                (RowKind::Decision, chain)
            }
            Event::IntentSucceeded { intent_id, detail } => {
                let settlement = Settlement::Succeeded(detail.clone());
                (
                    RowKind::Outcome,
                    Some(self.on_outcome(e, intent_id, settlement)),
                )
            }
            Event::IntentFailed {
                intent_id,
                error,
                retryable,
            } => {
                let settlement = Settlement::Failed {
                    error: error.clone(),
                    retryable: *retryable,
                };
                (
                    RowKind::Outcome,
                    Some(self.on_outcome(e, intent_id, settlement)),
                )
            }
            Event::IntentAbandoned { intent_id, reason } => {
                let settlement = Settlement::Abandoned(reason.clone());
                (
                    RowKind::Outcome,
                    Some(self.on_outcome(e, intent_id, settlement)),
                )
            }
            body => {
                if let Event::OperatorStarted {
                    instance,
                    epoch,
                    gap_ms,
                    ..
                } = body
                {
                    self.takeovers.push(Takeover {
                        seq: e.seq,
                        at: e.at,
                        instance: instance.clone(),
                        epoch: *epoch,
                        gap_ms: *gap_ms,
                    });
                }
                let chain = e
                    .cause
                    .and_then(|c| self.decision_ids.get(&c))
                    .map(|&seq| ChainRef {
                        link: Some(format!("decision-{seq}")),
                        text: format!("#{seq} Decided"),
                    });
                let row = if describe::is_observation(body) {
                    RowKind::Observation
                } else {
                    RowKind::Record
                };
                (row, chain)
            }
        };
        let summary = match &e.body {
            Event::Decided { intents } => decided_summary(intents),
            body => describe::summary(body),
        };
        self.previous = Some(Previous {
            seq: e.seq,
            kind: e.body.kind(),
            summary: summary.clone(),
        });
        let line = Row {
            seq: e.seq,
            at: e.at,
            epoch: e.epoch,
            kind: e.body.kind(),
            row,
            pod: describe::pod_of(&e.body).map(str::to_owned),
            summary,
            chain,
        };
        if row == RowKind::Observation {
            self.observations = self.observations.saturating_add(1);
            self.recent.push_back(line);
            while self.recent.len() > RECENT_OBSERVATIONS {
                self.recent.pop_front();
            }
        } else {
            self.kept.push(line);
        }
    }
}

/// A decision in one line, each reason once after the intents it applies
/// to (a failover's five intents share one long reason).
fn decided_summary(intents: &[PlannedIntent]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for (n, p) in intents.iter().enumerate() {
        pending.push(p.intent.describe());
        let same_next = intents
            .get(n.saturating_add(1))
            .is_some_and(|q| q.reason == p.reason);
        if !same_next {
            parts.push(format!(
                "{} [{}: {}]",
                pending.join("; "),
                p.reason.code.name(),
                p.reason.detail
            ));
            pending.clear();
        }
    }
    format!("decided: {}", parts.join("; "))
}

impl Visit for Collect {
    fn start(&mut self, start: &Start) -> Result<()> {
        self.state = start.base.clone();
        self.failovers.start(start)?;
        self.reshards.start(start)?;
        // Intents the snapshot holds in flight can still settle here; their
        // decisions were compacted away, so outcomes name them without a link.
        for (id, f) in &start.base.in_flight {
            self.compacted
                .insert(*id, (f.decided_seq, f.planned.intent.describe()));
        }
        self.start = Some(start.clone());
        Ok(())
    }

    fn event(&mut self, e: &Envelope, raw: Raw<'_>) -> Result<Flow> {
        self.failovers.event(e, raw)?;
        self.reshards.event(e, raw)?;
        self.row(e);
        if let Event::PodObserved { pod, .. } = &e.body {
            self.pod_names.insert(pod.clone());
        }
        self.state.apply(e);
        self.lanes.track(&self.state, e);
        if self.first.is_none() {
            self.first = Some((e.seq, e.at));
        }
        self.last = Some((e.seq, e.at));
        self.events = self.events.saturating_add(1);
        Ok(Flow::Continue)
    }
}

/// The one `<name>` every `<name>-<ordinal>` of `pods` shares.
fn name_from_pods<'a>(pods: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut name: Option<&str> = None;
    for pod in pods {
        let (prefix, ordinal) = pod.rsplit_once('-')?;
        if prefix.is_empty() || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match name {
            Some(n) if n != prefix => return None,
            _ => name = Some(prefix),
        }
    }
    name.map(str::to_owned)
}

#[cfg(test)]
mod name_tests {
    use super::name_from_pods;

    #[test]
    fn a_cluster_is_named_by_its_pods_only_when_they_agree() {
        assert_eq!(
            name_from_pods(["shop-0", "shop-1", "shop-10"]).as_deref(),
            Some("shop")
        );
        assert_eq!(
            name_from_pods(["my-db-0", "my-db-2"]).as_deref(),
            Some("my-db")
        );
        assert_eq!(name_from_pods(["shop-0", "cart-1"]), None);
        assert_eq!(name_from_pods(["shop-a"]), None);
        assert_eq!(name_from_pods([]), None);
    }
}
