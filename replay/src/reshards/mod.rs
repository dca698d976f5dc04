//! `reshards`: what became of each reshard of a Valkey Cluster — one
//! record per spec generation whose `Reshard` decisions moved slots
//! (shards wanted, slots planned, start, end, outcome), and under it
//! each migration (each `MoveSlots`): its slots, source and target, the
//! job's phases as polled, the write pause as far as the journal bounds
//! it ([`pause`]), its outcome and how many times the same move failed
//! before under the same generation. Slots settled after a half-move
//! (`SettleSlot`) and migration jobs no decision of the journal names
//! (another tool's, a person's, or decided before the journal's start)
//! are listed beside them.
//!
//! Every figure follows from the journal: the slot map is the
//! projection's (the nodes' own claims, the higher config epoch winning),
//! a job's times are the executor's `elapsed_ms` or the journal's, never
//! mixed; what the journal cannot know (a pause no poll caught, an
//! outcome not journaled yet) is said so.
//!
//! A reshard is **balanced** once the slot map shows exactly the shards
//! wanted, each with 16384 / shards slots (the first 16384 % shards one
//! more), every slot owned; **superseded** when a newer generation's
//! reshard began before that; **failing** when no move of it is under way
//! and the last move between some source and target failed (and given up
//! when the decider's build, asked through [`GivenUp`], would publish the
//! reshard as `Failing` at that point); otherwise **in progress**.

mod jobs;
mod outcome;
pub mod pause;
mod record;
mod settle;
mod text;

use std::collections::BTreeMap;

use logbook_journal::cluster::slot_count;
use logbook_journal::{
    ClusterState, Envelope, Event, Intent, PlannedIntent, ReasonCode, SlotMigrationJob,
};
use uuid::Uuid;

use crate::error::Result;
use crate::failovers::{Mark, Outcome};
use crate::shard_failovers::NodeRef;
use crate::source::{Flow, Raw, Start, Visit};

pub use outcome::balanced;
pub use pause::{Pause, Phase};
pub use record::{
    FailingPair, Job, Mechanism, Migration, MoveOutcome, Reshard, ReshardOutcome, Row, RowKind,
    Settle,
};
pub use text::{describe_move, describe_outcome, write_text};

/// The last attempts of one move between two nodes under a reshard.
#[derive(Debug, Clone, Default)]
struct Run {
    failures: u32,
    same_error: u32,
    last_error: String,
    /// Failures ever (never reset by a success): the retries count.
    failed_ever: u32,
}

/// Where a decision is in the journal: its event's seq and time.
#[derive(Debug, Clone, Copy)]
struct At {
    seq: u64,
    at: logbook_journal::Timestamp,
}

/// Whether a build would publish the reshard of `state` as given up
/// (`status.reshard.phase: Failing`): the decider's own rule, so that the
/// replay and the status never disagree.
pub type GivenUp = fn(&ClusterState) -> bool;

/// The `reshards` visitor.
#[derive(Debug, Default)]
pub struct Reshards {
    state: ClusterState,
    /// Asks the decider's build whether a reshard is given up.
    given_up: Option<GivenUp>,
    /// Reshards, in order.
    pub records: Vec<Reshard>,
    /// Settled slots, in order.
    pub settles: Vec<Settle>,
    /// Jobs no decision names (yet), by name.
    unplanned: BTreeMap<String, Job>,
    /// Open `MoveSlots` → (record, migration).
    open_moves: BTreeMap<Uuid, (usize, usize)>,
    /// Open `SettleSlot` → settle.
    open_settles: BTreeMap<Uuid, usize>,
    /// Job name → (record, migration) it belongs to.
    job_owner: BTreeMap<String, (usize, usize)>,
    /// (record, source node, target node) → its attempts.
    runs: BTreeMap<(usize, String, String), Run>,
}

impl Reshards {
    /// A visitor that asks no build whether a reshard is given up (a
    /// failing reshard's `given_up` is `None`).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A visitor that asks `given_up` whether a failing reshard is given
    /// up, on the projection right after its last move's outcome.
    #[must_use]
    pub fn with_given_up(given_up: Option<GivenUp>) -> Self {
        Self {
            given_up,
            ..Self::default()
        }
    }

    /// Jobs no decision of the journal names, in the order first seen.
    #[must_use]
    pub fn unplanned(&self) -> Vec<&Job> {
        let mut jobs: Vec<&Job> = self.unplanned.values().collect();
        jobs.sort_by_key(|j| j.phases.first().map_or(0, |p| p.seq));
        jobs
    }

    /// Every row: the reshards, the settled slots, the unnamed jobs.
    #[must_use]
    pub fn rows(&self) -> Vec<Row<'_>> {
        self.records
            .iter()
            .map(Row::Reshard)
            .chain(self.settles.iter().map(Row::Settle))
            .chain(self.unplanned().into_iter().map(Row::Job))
            .collect()
    }

    pub(super) fn node(&self, pod: Option<&str>, node_id: &str) -> NodeRef {
        NodeRef {
            pod: pod
                .map(str::to_owned)
                .or_else(|| self.state.cluster.pod_of(node_id).map(str::to_owned)),
            node_id: Some(node_id.to_owned()),
        }
    }

    /// The record of `generation`: the last one when it is that
    /// generation's, else a new one (superseding the last).
    fn record_for(&mut self, d: At, p: &PlannedIntent) -> usize {
        let (generation, shards, planned) = match &p.reason.code {
            ReasonCode::Reshard {
                generation,
                shards,
                slots_to_move,
            } => (*generation, Some(*shards), *slots_to_move),
            // Not decided for a reshard (none is, today): the reshard under
            // way, or the spec in force's.
            _ => match self.records.len().checked_sub(1) {
                Some(last) => return last,
                None => (
                    self.state.desired.as_ref().map_or(0, |d| d.generation),
                    None,
                    0,
                ),
            },
        };
        if let Some(last) = self.records.len().checked_sub(1)
            && let Some(r) = self.records.get_mut(last)
            && r.generation == generation
        {
            if let Some(shards) = shards {
                r.shards = shards;
            }
            return last;
        }
        if let Some(r) = self.records.last_mut()
            && !matches!(r.outcome, ReshardOutcome::Balanced { .. })
        {
            r.outcome = ReshardOutcome::Superseded {
                generation,
                seq: d.seq,
            };
        }
        let shards = shards.unwrap_or_else(|| {
            self.state
                .desired_spec()
                .and_then(std::result::Result::ok)
                .map_or(0, |s| u32::try_from(s.effective_shards()).unwrap_or(0))
        });
        self.records.push(Reshard {
            kind: RowKind::Reshard,
            generation,
            shards,
            slots_planned: planned,
            slots_moved: 0,
            started: Mark {
                seq: d.seq,
                at: d.at,
                what: p.reason.detail.clone(),
            },
            ended: None,
            outcome: ReshardOutcome::InProgress,
            migrations: Vec::new(),
        });
        self.records.len().saturating_sub(1)
    }

    fn on_decided(&mut self, d: At, p: &PlannedIntent) {
        match &p.intent {
            Intent::MoveSlots {
                from,
                from_node,
                to,
                to_node,
                slots,
            } => {
                let r = self.record_for(d, p);
                // A job for exactly these slots under way: waited for.
                let adopted: Vec<String> = self
                    .state
                    .reshard
                    .migrations
                    .values()
                    .filter(|m| m.job.moves(from_node, to_node, slots))
                    .map(|m| m.job.name.clone())
                    .collect();
                let mut jobs = Vec::new();
                for name in &adopted {
                    if let Some(job) = self.unplanned.remove(name) {
                        jobs.push(job);
                    }
                }
                let retries = self
                    .runs
                    .get(&(r, from_node.clone(), to_node.clone()))
                    .map_or(0, |run| run.failed_ever);
                let migration = Migration {
                    intent_id: p.intent_id,
                    slots: slots.clone(),
                    slot_count: slot_count(slots),
                    source: self.node(Some(from), from_node),
                    target: self.node(Some(to), to_node),
                    decided: Mark {
                        seq: d.seq,
                        at: d.at,
                        what: p.reason.detail.clone(),
                    },
                    adopted: !adopted.is_empty(),
                    mechanism: if jobs.is_empty() {
                        Mechanism::NotObserved
                    } else {
                        Mechanism::AtomicSlotMigration
                    },
                    pause: jobs.last().map(|j| pause::bound(&j.phases)),
                    jobs,
                    ended: None,
                    outcome: MoveOutcome::Pending,
                    target_owned_after: None,
                    retries,
                };
                let Some(record) = self.records.get_mut(r) else {
                    return;
                };
                record.migrations.push(migration);
                let m = record.migrations.len().saturating_sub(1);
                self.open_moves.insert(p.intent_id, (r, m));
                for name in adopted {
                    self.job_owner.insert(name, (r, m));
                }
                self.judge(r);
            }
            Intent::SettleSlot { .. } => self.settle_decided(d, p),
            _ => {}
        }
    }
}

impl Visit for Reshards {
    fn start(&mut self, start: &Start) -> Result<()> {
        self.state = start.base.clone();
        // Jobs a snapshot holds under way: their earlier phases were
        // compacted away.
        let running: Vec<SlotMigrationJob> = self
            .state
            .reshard
            .migrations
            .values()
            .map(|m| m.job.clone())
            .collect();
        for job in running {
            let known = self.job_of(&job, true);
            self.unplanned.entry(job.name.clone()).or_insert(known);
        }
        // Moves and settles the snapshot holds in flight can still end
        // here; their decisions were compacted away but are in the
        // projection.
        let mut open: Vec<(u64, logbook_journal::Timestamp, PlannedIntent)> = self
            .state
            .in_flight
            .values()
            .filter(|f| {
                matches!(
                    f.planned.intent,
                    Intent::MoveSlots { .. } | Intent::SettleSlot { .. }
                )
            })
            .map(|f| (f.decided_seq, f.decided_at, f.planned.clone()))
            .collect();
        open.sort_by_key(|(seq, _, p)| (*seq, p.intent_id));
        for (seq, at, p) in open {
            self.on_decided(At { seq, at }, &p);
            // Its job may be under way in the snapshot because this very
            // move started it: whether one was at its decision is gone.
            if let Some(mig) = self
                .open_moves
                .get(&p.intent_id)
                .and_then(|(r, m)| self.records.get_mut(*r)?.migrations.get_mut(*m))
            {
                mig.adopted = false;
            }
        }
        Ok(())
    }

    fn event(&mut self, e: &Envelope, _raw: Raw<'_>) -> Result<Flow> {
        if let Event::Decided { intents } = &e.body {
            let d = At {
                seq: e.seq,
                at: e.at,
            };
            for p in intents {
                self.on_decided(d, p);
            }
        }
        self.state.apply(e);
        match &e.body {
            Event::SlotMigrationObserved {
                pod,
                job,
                elapsed_ms,
            } => self.on_job(e, pod, job, *elapsed_ms),
            Event::IntentSucceeded { intent_id, .. } => {
                self.on_outcome(e, intent_id, Outcome::Completed, false);
            }
            Event::IntentFailed {
                intent_id,
                error,
                retryable,
            } => self.on_outcome(e, intent_id, Outcome::Failed(error.clone()), *retryable),
            Event::IntentAbandoned { intent_id, reason } => {
                self.on_outcome(e, intent_id, Outcome::Abandoned(reason.clone()), false);
            }
            _ => {}
        }
        if matches!(
            e.body,
            Event::ClusterNodeObserved { .. } | Event::IntentSucceeded { .. }
        ) {
            self.check_balance(e);
        }
        Ok(Flow::Continue)
    }
}
