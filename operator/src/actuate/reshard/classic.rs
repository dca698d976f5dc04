//! The classic slot-moving pipeline, for servers without atomic slot
//! migration (Redis, Valkey before 9.0), and the settling of slots left
//! half-moved by it.
//!
//! Per slot: `SETSLOT IMPORTING` on the target, `MIGRATING` on the source,
//! `GETKEYSINSLOT`/`MIGRATE REPLACE` batches until the source holds none,
//! `SETSLOT NODE` on the target (which bumps its epoch), then on the source,
//! then on every other primary. Each step reads first what the nodes say
//! or is idempotent, so a crash at any point resumes where it stopped; a
//! batch resent after a crash overwrites its own copy on the target.

use std::collections::BTreeSet;

use super::{ActError, Done, Move, Target, answer, covers, marks, other_primaries, reported};
use super::{describe_slots, merge_slots, slots_text, valkey_err};
use crate::observe::ClusterAnswer;
use crate::valkey::{SetSlot, ValkeyClient};
use logbook_journal::{Event, SlotRange};

/// Keys per `MIGRATE`.
const KEYS_PER_BATCH: u32 = 100;
/// `MIGRATE`'s own timeout: the longest the source waits on the target
/// without progress.
const MIGRATE_TIMEOUT_MS: u64 = 5_000;
/// `MIGRATE` answering `NOKEY` this many times in a row for keys
/// `GETKEYSINSLOT` keeps listing is a contradiction, not progress.
const NOKEY_LIMIT: u32 = 3;

impl Move<'_> {
    async fn setslot(&self, pod: &str, slot: u16, what: SetSlot<'_>) -> Result<(), ActError> {
        let addr = self.target.addr(pod)?;
        self.valkey
            .cluster_setslot(addr, slot, what)
            .await
            .map_err(valkey_err(format!(
                "CLUSTER SETSLOT {slot} {what} on {pod}"
            )))
    }

    /// Sends every key the source still holds in `slot` to the target;
    /// returns how many were sent.
    async fn drain(&self, slot: u16) -> Result<u64, ActError> {
        let mut sent: u64 = 0;
        let mut nokey = 0;
        loop {
            let keys = self
                .valkey
                .cluster_getkeysinslot(self.from_addr, slot, KEYS_PER_BATCH)
                .await
                .map_err(valkey_err(format!(
                    "listing the keys of slot {slot} on {}",
                    self.from
                )))?;
            if keys.is_empty() {
                return Ok(sent);
            }
            let moved = self
                .valkey
                .migrate(
                    self.from_addr,
                    self.to_addr,
                    &keys,
                    MIGRATE_TIMEOUT_MS,
                    true,
                )
                .await
                .map_err(valkey_err(format!(
                    "migrating {} keys of slot {slot} from {} to {}",
                    keys.len(),
                    self.from,
                    self.to
                )))?;
            if moved {
                nokey = 0;
                sent = sent.saturating_add(u64::try_from(keys.len()).unwrap_or(u64::MAX));
            } else {
                nokey += 1;
                if nokey >= NOKEY_LIMIT {
                    return Err(ActError::NotYet(format!(
                        "{} keeps listing keys of slot {slot} that MIGRATE does not find",
                        self.from
                    )));
                }
            }
        }
    }

    /// The slots of `slots` whose owner the target does not see as the
    /// source (gossip has not told it yet).
    async fn owner_unseen(&self, slots: &[SlotRange]) -> Result<BTreeSet<u16>, ActError> {
        Ok(super::missing(&self.seen_by_target().await?, slots)
            .iter()
            .flat_map(|r| r.start..=r.end)
            .collect())
    }

    /// Moves one slot the source owns and the target does not: marks,
    /// keys, then ownership on the target and the source. Returns the keys
    /// sent.
    async fn move_slot(
        &self,
        slot: u16,
        from_now: &ClusterAnswer,
        to_now: &ClusterAnswer,
        unseen: &BTreeSet<u16>,
    ) -> Result<u64, ActError> {
        let marked = |peers: &[logbook_journal::SlotPeer], node: &str| {
            peers.iter().any(|p| p.slot == slot && p.node_id == node)
        };
        if unseen.contains(&slot) {
            // A node importing a slot ignores news of who owns it: one
            // that marks it before gossip told it the owner never learns,
            // and refuses the keys ("CLUSTERDOWN Hash slot not served").
            self.setslot(self.to, slot, SetSlot::Node(self.from_node))
                .await?;
        }
        if !marked(&to_now.slot_states.1, self.from_node) {
            self.setslot(self.to, slot, SetSlot::Importing(self.from_node))
                .await?;
        }
        if !marked(&from_now.slot_states.0, self.to_node) {
            self.setslot(self.from, slot, SetSlot::Migrating(self.to_node))
                .await?;
        }
        let keys = self.drain(slot).await?;
        self.setslot(self.to, slot, SetSlot::Node(self.to_node))
            .await?;
        self.setslot(self.from, slot, SetSlot::Node(self.to_node))
            .await?;
        Ok(keys)
    }

    /// Tells every other primary that the target owns `slots` (gossip
    /// would, later); returns the pods told and the failures, which do not
    /// fail the move.
    async fn announce(&self, slots: &[u16]) -> (Vec<String>, Vec<String>) {
        let mut told = Vec::new();
        let mut failed = Vec::new();
        if slots.is_empty() {
            return (told, failed);
        }
        'pods: for pod in other_primaries(self.target, &[self.from, self.to]) {
            for &slot in slots {
                if let Err(err) = self.setslot(&pod, slot, SetSlot::Node(self.to_node)).await {
                    failed.push(format!("{pod}: {err}"));
                    continue 'pods;
                }
            }
            told.push(pod);
        }
        (told, failed)
    }

    /// The classic pipeline over `slots`: each slot the target lacks is
    /// moved; a slot it owns already only has the source's own mark, if
    /// any, cleared.
    pub(super) async fn classic(&self, slots: &[SlotRange]) -> Result<Done, ActError> {
        let started = tokio::time::Instant::now();
        let from_now = answer(self.valkey, self.target, self.from).await?;
        let to_now = answer(self.valkey, self.target, self.to).await?;
        let unseen = self.owner_unseen(slots).await?;
        let mut moved: Vec<u16> = Vec::new();
        let mut keys: u64 = 0;
        let mut tidied = 0u32;
        for slot in slots.iter().flat_map(|r| r.start..=r.end) {
            let one = [SlotRange {
                start: slot,
                end: slot,
            }];
            if covers(&to_now.report.slots, &one) {
                if marks(&from_now, slot) || covers(&from_now.report.slots, &one) {
                    self.setslot(self.from, slot, SetSlot::Node(self.to_node))
                        .await?;
                    tidied = tidied.saturating_add(1);
                }
                continue;
            }
            if !covers(&from_now.report.slots, &one) {
                return Err(ActError::Refused(format!(
                    "slot {slot} is owned by neither {} nor {}; moved {} before it",
                    self.from,
                    self.to,
                    describe_slots(&merge_slots(moved))
                )));
            }
            if let Some(why) = self.target.interrupted() {
                let (told, _) = self.announce(&moved).await;
                return Err(ActError::NotYet(format!(
                    "moved {} of {} from {} to {} by the classic pipeline, then stopped so the operator can act on: {why}; the rest is decided again",
                    slots_text(&merge_slots(moved)),
                    slots_text(slots),
                    self.from,
                    self.to
                ))
                .with_facts(self.reports(&told).await));
            }
            keys = keys.saturating_add(self.move_slot(slot, &from_now, &to_now, &unseen).await?);
            moved.push(slot);
        }
        let (told, failed) = self.announce(&moved).await;
        let moved = merge_slots(moved);
        let mut detail = if moved.is_empty() {
            format!(
                "already moved: {} (node {}) owns {}",
                self.to,
                self.to_node,
                slots_text(slots)
            )
        } else {
            format!(
                "moved {} and {keys} keys from {} to {} by the classic SETSLOT/MIGRATE pipeline (the source has no atomic slot migration) in {} ms",
                slots_text(&moved),
                self.from,
                self.to,
                started.elapsed().as_millis()
            )
        };
        if tidied > 0 {
            detail.push_str(&format!(
                "; {tidied} slots the target already owned were cleared on the source"
            ));
        }
        if !failed.is_empty() {
            detail.push_str(&format!("; not told (gossip will): {}", failed.join("; ")));
        }
        Ok(Done {
            detail,
            events: self.reports(&told).await,
            password: None,
        })
    }

    /// Finishes moving `slot` from the source (its owner) to the target,
    /// whatever marks are set already.
    pub(super) async fn finish(&self, slot: u16) -> Result<Done, ActError> {
        let from_now = answer(self.valkey, self.target, self.from).await?;
        let to_now = answer(self.valkey, self.target, self.to).await?;
        let one = [SlotRange {
            start: slot,
            end: slot,
        }];
        let keys = if covers(&to_now.report.slots, &one) {
            // The target claimed it already: only the source (and the
            // others) are left to agree.
            self.setslot(self.from, slot, SetSlot::Node(self.to_node))
                .await?;
            0
        } else if covers(&from_now.report.slots, &one) {
            let unseen = self.owner_unseen(&one).await?;
            self.move_slot(slot, &from_now, &to_now, &unseen).await?
        } else {
            return Err(ActError::Refused(format!(
                "slot {slot} is owned by neither {} nor {}; nothing done",
                self.from, self.to
            )));
        };
        let (told, failed) = self.announce(&[slot]).await;
        let mut detail = format!(
            "finished moving slot {slot} from {} to {} ({keys} keys sent); every primary told",
            self.from, self.to
        );
        if !failed.is_empty() {
            detail.push_str(&format!(" but these (gossip will): {}", failed.join("; ")));
        }
        Ok(Done {
            detail,
            events: self.reports(&told).await,
            password: None,
        })
    }
}

/// Clears `slot`'s importing/migrating marks on every primary that has
/// one, once no primary but `owner` is seen holding keys of the slot
/// (clearing the marks would strand them: no client would be sent there
/// again).
pub(super) async fn clear_marks(
    valkey: &ValkeyClient,
    target: Target<'_>,
    slot: u16,
    owner: &str,
    owner_node: &str,
) -> Result<Done, ActError> {
    let mut pods = other_primaries(target, &[owner]);
    pods.push(owner.to_owned());
    let mut marking = Vec::new();
    for pod in &pods {
        let now = answer(valkey, target, pod).await.map_err(|err| {
            ActError::NotYet(format!(
                "cannot read {pod} ({err}): its keys and marks for slot {slot} are unknown"
            ))
        })?;
        if !now.report.is_primary() {
            continue;
        }
        if now.report.node_id != owner_node {
            let addr = target.addr(pod)?;
            let held = valkey
                .cluster_countkeysinslot(addr, slot)
                .await
                .map_err(valkey_err(format!(
                    "counting the keys of slot {slot} on {pod}"
                )))?;
            if held > 0 {
                return Err(ActError::Refused(format!(
                    "{pod} (node {}) holds {held} keys of slot {slot}, which {owner} owns: clearing the marks would strand them; the move must be finished instead",
                    now.report.node_id
                )));
            }
        }
        if marks(&now, slot) {
            marking.push(pod.clone());
        }
    }
    let mut events: Vec<Event> = Vec::new();
    for pod in &marking {
        let addr = target.addr(pod)?;
        valkey
            .cluster_setslot(addr, slot, SetSlot::Stable)
            .await
            .map_err(valkey_err(format!(
                "CLUSTER SETSLOT {slot} STABLE on {pod}"
            )))?;
        if let Ok(now) = answer(valkey, target, pod).await {
            events.extend(reported(target, pod, &now));
        }
    }
    let detail = if marking.is_empty() {
        format!("no primary marks slot {slot} as half-moved (owner {owner})")
    } else {
        format!(
            "cleared slot {slot}'s half-move marks on {} (owner {owner}; no other primary holds its keys)",
            marking.join(", ")
        )
    };
    Ok(Done {
        detail,
        events,
        password: None,
    })
}
