//! Slots settled after a half-move (`SettleSlot`): what was to be done,
//! the markers the journal showed on the slot when it was decided, and
//! who owned the slot right after the outcome.

use logbook_journal::{Envelope, Intent, PlannedIntent};
use uuid::Uuid;

use super::{At, Reshards, RowKind, Settle};
use crate::failovers::{Mark, Outcome};
use crate::shard_failovers::NodeRef;

impl Reshards {
    /// A `SettleSlot` decided at `d` (the projection before it).
    pub(super) fn settle_decided(&mut self, d: At, p: &PlannedIntent) {
        let Intent::SettleSlot {
            slot,
            owner,
            owner_node,
            to,
            to_node,
        } = &p.intent
        else {
            return;
        };
        let markers = self.markers(*slot);
        let target = match (to, to_node) {
            (to, Some(id)) => Some(self.node(to.as_deref(), id)),
            (Some(pod), None) => Some(NodeRef {
                pod: Some(pod.clone()),
                node_id: None,
            }),
            (None, None) => None,
        };
        let action = match &target {
            Some(t) => format!(
                "finish the move: keys left on {owner} go to {}, every primary told it owns the slot",
                t.pod.as_deref().unwrap_or("?")
            ),
            None => format!("clear the half-move markers where they stand (owner {owner})"),
        };
        self.settles.push(Settle {
            kind: RowKind::Settle,
            intent_id: p.intent_id,
            slot: *slot,
            owner: self.node(Some(owner), owner_node),
            to: target,
            action,
            markers,
            decided: Mark {
                seq: d.seq,
                at: d.at,
                what: format!("{}: {}", p.reason.code.name(), p.reason.detail),
            },
            ended: None,
            outcome: Outcome::Pending,
            owner_after: None,
        });
        self.open_settles
            .insert(p.intent_id, self.settles.len().saturating_sub(1));
    }

    /// The half-move markers the projection holds on `slot`.
    fn markers(&self, slot: u16) -> Vec<String> {
        let short = crate::cluster_facts::short;
        let mut out = Vec::new();
        for (pod, s) in &self.state.reshard.slot_states {
            for m in s.migrating.iter().filter(|m| m.slot == slot) {
                out.push(format!("{pod} migrating -> {}", short(&m.node_id)));
            }
            for m in s.importing.iter().filter(|m| m.slot == slot) {
                out.push(format!("{pod} importing <- {}", short(&m.node_id)));
            }
        }
        out
    }

    /// Settles a `SettleSlot` with `how` (the projection holds the
    /// outcome); whether `intent_id` was one.
    pub(super) fn settle_outcome(&mut self, e: &Envelope, intent_id: &Uuid, how: &Outcome) -> bool {
        let Some(i) = self.open_settles.remove(intent_id) else {
            return false;
        };
        let owner_after = self.settles.get(i).and_then(|s| {
            let owners = self.state.cluster.slot_owners();
            let id = owners.get(usize::from(s.slot)).copied().flatten()?;
            Some(
                self.state
                    .cluster
                    .pod_of(id)
                    .map_or_else(|| id.to_owned(), str::to_owned),
            )
        });
        if let Some(s) = self.settles.get_mut(i) {
            s.ended = Some(Mark {
                seq: e.seq,
                at: e.at,
                what: e.body.kind().to_owned(),
            });
            s.outcome = how.clone();
            s.owner_after = owner_after;
        }
        true
    }
}
