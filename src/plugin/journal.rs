//! The operator's belief about one cluster, read from its ConfigMap
//! journal with the replay crate's scan (every CRC and chain link checked,
//! read at one commit point): the projection folded to the head, and every
//! decision with its intents, reasons and outcomes.
//!
//! Only reads (get and list of ConfigMaps). An operator running with a
//! sled journal (`--journal=sled`) keeps none in ConfigMaps; the error
//! says so.

use std::collections::HashMap;

use logbook_crds::ValkeyCluster;
use logbook_journal::{ClusterState, Envelope, Event, StreamId, Timestamp};
use logbook_replay::{Flow, Input, Raw, Start, Visit};
use uuid::Uuid;

use super::connect::Kube;
use super::error::{PluginError, Result};
use crate::journal_store::ConfigMapStore;

/// What became of one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Seq of the outcome event.
    pub seq: u64,
    /// `succeeded`, `failed`, `failed (will retry)` or `abandoned`.
    pub kind: &'static str,
    /// What the executor said.
    pub detail: String,
}

/// One intent of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRecord {
    /// The intent's catalog name (`PromoteReplica`).
    pub name: &'static str,
    /// One line for people.
    pub what: String,
    /// The reason code's name.
    pub code: &'static str,
    /// The reason, for people.
    pub detail: String,
    /// Its outcome, once journaled.
    pub outcome: Option<Outcome>,
}

/// One `Decided` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    /// Its seq.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// The event it was taken on (folded just before it).
    pub after: Option<(u64, &'static str)>,
    /// The intents, in execution order.
    pub intents: Vec<IntentRecord>,
}

/// The journal as the plugin shows it.
#[derive(Debug, Clone)]
pub struct JournalView {
    /// The projection at the head.
    pub state: ClusterState,
    /// Every decision, oldest first.
    pub decisions: Vec<DecisionRecord>,
}

/// Folds the state and collects the decisions.
#[derive(Default)]
struct Collect {
    state: ClusterState,
    decisions: Vec<DecisionRecord>,
    /// Intent id → (decision index, intent index).
    index: HashMap<Uuid, (usize, usize)>,
    previous: Option<(u64, &'static str)>,
}

impl Collect {
    fn settle(&mut self, id: &Uuid, outcome: Outcome) {
        if let Some((d, i)) = self.index.get(id).copied()
            && let Some(intent) = self
                .decisions
                .get_mut(d)
                .and_then(|decision| decision.intents.get_mut(i))
        {
            intent.outcome = Some(outcome);
        }
    }
}

impl Visit for Collect {
    fn start(&mut self, start: &Start) -> logbook_replay::Result<()> {
        self.state = start.base.clone();
        Ok(())
    }

    fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> logbook_replay::Result<Flow> {
        match &e.body {
            Event::Decided { intents } => {
                let d = self.decisions.len();
                let mut records = Vec::new();
                for (i, p) in intents.iter().enumerate() {
                    self.index.insert(p.intent_id, (d, i));
                    records.push(IntentRecord {
                        name: p.intent.name(),
                        what: p.intent.describe(),
                        code: p.reason.code.name(),
                        detail: p.reason.detail.clone(),
                        outcome: None,
                    });
                }
                self.decisions.push(DecisionRecord {
                    seq: e.seq,
                    at: e.at,
                    after: self.previous,
                    intents: records,
                });
            }
            Event::IntentSucceeded { intent_id, detail } => {
                let outcome = Outcome {
                    seq: e.seq,
                    kind: "succeeded",
                    detail: detail.clone(),
                };
                self.settle(intent_id, outcome);
            }
            Event::IntentFailed {
                intent_id,
                error,
                retryable,
            } => {
                let outcome = Outcome {
                    seq: e.seq,
                    kind: if *retryable {
                        "failed (will retry)"
                    } else {
                        "failed"
                    },
                    detail: error.clone(),
                };
                self.settle(intent_id, outcome);
            }
            Event::IntentAbandoned { intent_id, reason } => {
                let outcome = Outcome {
                    seq: e.seq,
                    kind: "abandoned",
                    detail: reason.clone(),
                };
                self.settle(intent_id, outcome);
            }
            _ => {}
        }
        self.state.apply(e);
        self.previous = Some((e.seq, e.body.kind()));
        Ok(Flow::Continue)
    }
}

/// Reads the journal of `cluster` from its namespace's ConfigMaps.
///
/// # Errors
/// [`PluginError::Journal`] when it cannot be read or does not verify.
pub async fn read(kube: &Kube, cluster: &ValkeyCluster) -> Result<JournalView> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let label = format!("{}/{name}", kube.namespace);
    let journal_error = |detail: String| PluginError::Journal {
        cluster: label.clone(),
        detail,
    };
    let uid = cluster
        .metadata
        .uid
        .clone()
        .ok_or_else(|| journal_error("the object has no uid".to_owned()))?;
    let stream = StreamId::new(&uid).map_err(|e| journal_error(format!("stream {uid}: {e}")))?;
    let store = ConfigMapStore::new(kube.client.clone(), &kube.namespace);
    let pinned = store.pin(&stream).await.map_err(|e| {
        journal_error(format!(
            "cannot read its ConfigMaps in namespace {}: {e}",
            kube.namespace
        ))
    })?;
    let input = Input::Store {
        store: pinned,
        stream,
        cluster: Some(label.clone()),
        place: format!("ConfigMap journal in namespace {}", kube.namespace),
    };
    let mut collect = Collect::default();
    input.scan(None, &mut collect).await.map_err(|e| {
        let hint = match &e {
            logbook_replay::ReplayError::Unreadable { .. } => {
                " (the operator keeps a cluster's journal in ConfigMaps with --journal=configmap or both)"
            }
            _ => "",
        };
        journal_error(format!("{e}{hint}"))
    })?;
    Ok(JournalView {
        state: collect.state,
        decisions: collect.decisions,
    })
}
