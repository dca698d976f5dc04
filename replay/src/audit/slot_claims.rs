//! Slot claims, after every event that changes the nodes' claims (a node
//! report, an outcome — a node forgotten): every slot has exactly one
//! owner among the nodes' own claims at the highest config epoch, over
//! every node the projection holds, as its slot map is made.
//!
//! - Two primaries claiming one slot at its highest epoch is a finding,
//!   once per episode, where it begins: Valkey has no epoch to decide by.
//! - A slot that had an owner and then has none is a finding once no node
//!   has claimed it again for ten probe intervals (at least ten seconds)
//!   of the time the operator was watching (a takeover starts the clock
//!   again). Two nodes are probed a moment apart, so the old owner's
//!   report can drop a slot just before the report of the node that took
//!   it is journaled; the next round shows the claim. A slot still
//!   unclaimed when the journal ends sooner than that is said too soon to
//!   judge (the check's note), not a finding.

use std::collections::{BTreeMap, BTreeSet};

use logbook_journal::cluster::{SLOTS, describe_slots, merge_slots, slot_count};
use logbook_journal::{ClusterState, Envelope, SlotRange, Timestamp};

use super::invariants::finding;
use super::{Check, Finding};
use crate::cluster_facts::short;

/// Probe intervals a slot may stay unclaimed after losing its owner.
const HOLE_ROUNDS: u64 = 10;
/// And at least this long, in milliseconds.
const HOLE_MIN_MS: u64 = 10_000;

/// A slot whose owner's claim went with no other claim since.
#[derive(Debug, Clone)]
struct Hole {
    /// Where it lost its owner.
    seq: u64,
    at: Timestamp,
    /// The owner it had (interned node id).
    owner: u32,
    /// Reported already.
    reported: bool,
}

/// The claims on every slot: its owner (the highest config epoch; of
/// equal ones the greater node id, as in the projection's slot map), and
/// the slots two or more nodes claim at their highest epoch.
struct Claims {
    owner: Vec<Option<u32>>,
    tied: BTreeMap<u16, (u64, Vec<u32>)>,
}

/// The slot-claims check across a scan; also what the move checks ask
/// of the slot map.
#[derive(Debug, Default)]
pub struct SlotClaims {
    pub(super) findings: Vec<Finding>,
    /// Evaluations.
    pub(super) examined: u64,
    /// Node ids, interned.
    ids: Vec<String>,
    index: BTreeMap<String, u32>,
    /// Each slot's owner at the last evaluation (`None` before the first).
    owners: Option<Vec<Option<u32>>>,
    /// Tie episodes standing: (epoch, claimants).
    ties: BTreeSet<(u64, Vec<u32>)>,
    holes: BTreeMap<u16, Hole>,
    /// The last takeover: time nobody watched does not count for a hole.
    takeover: Option<Timestamp>,
}

impl SlotClaims {
    fn intern(&mut self, id: &str) -> u32 {
        if let Some(i) = self.index.get(id) {
            return *i;
        }
        let i = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        i
    }

    fn claims(&mut self, state: &ClusterState) -> Claims {
        let mut best: Vec<Option<(u64, u32)>> = vec![None; SLOTS as usize];
        let mut tied: BTreeMap<u16, (u64, Vec<u32>)> = BTreeMap::new();
        for (id, node) in &state.cluster.nodes {
            let report = &node.report;
            if !report.is_primary() {
                continue;
            }
            let me = self.intern(id);
            let epoch = report.config_epoch;
            for range in &report.slots {
                for slot in range.start..=range.end {
                    let Some(cell) = best.get_mut(usize::from(slot)) else {
                        continue;
                    };
                    match *cell {
                        None => *cell = Some((epoch, me)),
                        Some((e, _)) if epoch > e => {
                            *cell = Some((epoch, me));
                            tied.remove(&slot);
                        }
                        Some((e, other)) if epoch == e => {
                            tied.entry(slot)
                                .or_insert_with(|| (e, vec![other]))
                                .1
                                .push(me);
                            // Node ids come in order: the greater wins, as
                            // in the projection's slot map.
                            *cell = Some((epoch, me));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Claims {
            owner: best.into_iter().map(|c| c.map(|(_, id)| id)).collect(),
            tied,
        }
    }

    /// A node for people: its pod and short id.
    fn name(&self, state: &ClusterState, node: u32) -> String {
        let id = self
            .ids
            .get(usize::try_from(node).unwrap_or(usize::MAX))
            .map_or("?", String::as_str);
        match state.cluster.pod_of(id) {
            Some(pod) => format!("{pod} (node {})", short(id)),
            None => format!("node {}", short(id)),
        }
    }

    /// How many of `slots` the node `node_id` owned at the last
    /// evaluation.
    pub(super) fn owned(&self, node_id: &str, slots: &[SlotRange]) -> u32 {
        let (Some(node), Some(owners)) = (self.index.get(node_id), &self.owners) else {
            return 0;
        };
        let n = slots
            .iter()
            .flat_map(|r| r.start..=r.end)
            .filter(|s| owners.get(usize::from(*s)).copied().flatten() == Some(*node))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Called with the state the scan starts from: its claims are known,
    /// not judged (no event of this scan made them).
    pub fn start(&mut self, state: &ClusterState) {
        if !state.cluster.nodes.is_empty() {
            let claims = self.claims(state);
            self.ties = tie_groups(&claims).into_keys().collect();
            self.owners = Some(claims.owner);
        }
    }

    /// A takeover at `at`.
    pub fn took_over(&mut self, at: Timestamp) {
        self.takeover = Some(at);
    }

    /// Called after `e`, which changed the claims, was folded into
    /// `after`.
    pub fn evaluate(&mut self, after: &ClusterState, e: &Envelope) {
        self.examined = self.examined.saturating_add(1);
        let claims = self.claims(after);
        self.check_ties(after, e, &claims);
        self.track_holes(e, &claims);
        self.owners = Some(claims.owner);
    }

    fn check_ties(&mut self, state: &ClusterState, e: &Envelope, claims: &Claims) {
        let groups = tie_groups(claims);
        for ((epoch, nodes), slots) in &groups {
            if self.ties.contains(&(*epoch, nodes.clone())) {
                continue;
            }
            let names: Vec<String> = nodes.iter().map(|n| self.name(state, *n)).collect();
            self.findings.push(finding(
                Check::SlotClaims,
                e,
                format!(
                    "slots {} ({} slots) are claimed by {} all at config epoch {epoch}, their highest claim: two owners and no epoch decides",
                    describe_slots(slots),
                    slot_count(slots),
                    names.join(" and ")
                ),
            ));
        }
        self.ties = groups.into_keys().collect();
    }

    fn track_holes(&mut self, e: &Envelope, claims: &Claims) {
        let Some(before) = &self.owners else {
            return;
        };
        for (slot, (was, now)) in (0u16..).zip(before.iter().zip(claims.owner.iter())) {
            match (was, now) {
                (_, Some(_)) => {
                    self.holes.remove(&slot);
                }
                (Some(owner), None) => {
                    self.holes.entry(slot).or_insert(Hole {
                        seq: e.seq,
                        at: e.at,
                        owner: *owner,
                        reported: false,
                    });
                }
                (None, None) => {}
            }
        }
    }

    /// How long a slot may stay unclaimed under the policy in force.
    fn window_ms(state: &ClusterState) -> u64 {
        let interval = state.policy.as_ref().map_or(1_000, |p| p.probe_interval_ms);
        interval.saturating_mul(HOLE_ROUNDS).max(HOLE_MIN_MS)
    }

    /// Milliseconds a hole opened at `opened` has been watched by `now`.
    fn watched(&self, opened: Timestamp, now: Timestamp) -> u64 {
        let from = match self.takeover {
            Some(t) if t > opened => t,
            _ => opened,
        };
        u64::try_from(now.millis_since(from)).unwrap_or(0)
    }

    /// Reports the holes unclaimed long enough by `now` (seq `seq_now`).
    pub fn judge_holes(&mut self, state: &ClusterState, seq_now: u64, now: Timestamp) {
        if self.holes.values().all(|h| h.reported) {
            return;
        }
        let window = Self::window_ms(state);
        let due: Vec<u16> = self
            .holes
            .iter()
            .filter(|(_, h)| !h.reported && self.watched(h.at, now) >= window)
            .map(|(s, _)| *s)
            .collect();
        let mut groups: BTreeMap<(u64, u32), (Timestamp, Vec<u16>)> = BTreeMap::new();
        for slot in due {
            if let Some(h) = self.holes.get_mut(&slot) {
                h.reported = true;
                groups
                    .entry((h.seq, h.owner))
                    .or_insert_with(|| (h.at, Vec::new()))
                    .1
                    .push(slot);
            }
        }
        for ((seq, owner), (at, slots)) in groups {
            let ranges = merge_slots(slots);
            self.findings.push(Finding {
                check: Check::SlotClaims,
                seq,
                at: Some(at),
                detail: format!(
                    "slots {} ({} slots) had an owner, {}, until seq {seq} and no node claims them at seq {seq_now}, {} ms later: a slot lost its owner",
                    describe_slots(&ranges),
                    slot_count(&ranges),
                    self.name(state, owner),
                    now.millis_since(at)
                ),
                recorded: Vec::new(),
                recomputed: Vec::new(),
            });
        }
    }

    /// Judges the holes at the head; says which were too recent to.
    pub fn finish(&mut self, state: &ClusterState) -> Option<String> {
        self.judge_holes(state, state.last_seq, state.last_at);
        let early: Vec<(u16, u64)> = self
            .holes
            .iter()
            .filter(|(_, h)| !h.reported)
            .map(|(slot, h)| (*slot, h.seq))
            .collect();
        (!early.is_empty()).then(|| {
            let first = early.iter().map(|(_, seq)| *seq).min().unwrap_or(0);
            let slots: Vec<u16> = early.into_iter().map(|(s, _)| s).collect();
            format!(
                "slots {} lost their owner from seq {first} on, too close to the journal's end to judge",
                describe_slots(&merge_slots(slots))
            )
        })
    }
}

/// Tied slots by (epoch, claimants), as ranges.
fn tie_groups(claims: &Claims) -> BTreeMap<(u64, Vec<u32>), Vec<SlotRange>> {
    let mut groups: BTreeMap<(u64, Vec<u32>), Vec<u16>> = BTreeMap::new();
    for (slot, (epoch, nodes)) in &claims.tied {
        let mut nodes = nodes.clone();
        nodes.sort_unstable();
        nodes.dedup();
        groups.entry((*epoch, nodes)).or_default().push(*slot);
    }
    groups
        .into_iter()
        .map(|(k, slots)| (k, merge_slots(slots)))
        .collect()
}
