//! Valkey Cluster resharding: move slots from one primary to another
//! (`MoveSlots`) and settle a slot left half-moved (`SettleSlot`).
//!
//! A move goes by atomic slot migration when the source has it (Valkey
//! 9.0 and later: one `CLUSTER MIGRATESLOTS` job, one snapshot, one short
//! write pause), else by the classic pipeline, slot by slot (`SETSLOT
//! IMPORTING` / `MIGRATING`, `MIGRATE` batches, `SETSLOT NODE`). Both are
//! resumable: a job already running for these slots is followed, never
//! started twice (jobs are found by source, target and ranges: the command
//! that starts one does not name it); every classic step checks what the
//! nodes already say and is safe to repeat. The truth at the end is slot
//! ownership as the target claims it, never the job's word alone.
//!
//! Nothing here decides: a move the nodes contradict (slots owned by
//! neither end, another job holding them) fails with the reason, and
//! `decide` looks again on the fresh reports returned.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::cluster::{
    covers, describe_slots, merge_ranges, merge_slots, overlaps, slot_count,
};
use logbook_journal::{Event, MigrationSide, SlotRange};
use tokio::time::Instant;

use super::cluster::{POLL, answer, reported, slots_seen};
use super::valkey_err;
use super::{ActError, Done, Target};
use crate::observe::ClusterAnswer;
use crate::valkey::ValkeyClient;

mod atomic;
mod classic;

use atomic::Following;

/// How long gossip is given to show the target owning the slots after a
/// job that succeeded, ended ambiguously or vanished.
const OWNERSHIP_WAIT: Duration = Duration::from_secs(5);

/// Checks that `pod` runs node `node_id`, the one the decision named: an
/// action is never carried out on another node that took the pod's place.
async fn expect_running(
    valkey: &ValkeyClient,
    pod: &str,
    addr: SocketAddr,
    node_id: &str,
) -> Result<(), ActError> {
    let actual = valkey
        .cluster_myid(addr)
        .await
        .map_err(valkey_err(format!("reading the node id of {pod}")))?;
    if actual != node_id {
        return Err(ActError::Refused(format!(
            "{pod} runs node {actual}, not node {node_id} the decision was made for; nothing done until it is observed"
        )));
    }
    Ok(())
}

/// The slots of `wanted` not in `owned`.
pub(super) fn missing(owned: &[SlotRange], wanted: &[SlotRange]) -> Vec<SlotRange> {
    let slots = wanted
        .iter()
        .flat_map(|r| r.start..=r.end)
        .filter(|&s| !owned.iter().any(|o| o.start <= s && s <= o.end))
        .collect();
    merge_slots(slots)
}

/// `N slots (ranges)`.
fn slots_text(ranges: &[SlotRange]) -> String {
    format!("{} slots ({})", slot_count(ranges), describe_slots(ranges))
}

/// One move, as decided, with both ends' addresses.
#[derive(Clone, Copy)]
struct Move<'a> {
    valkey: &'a ValkeyClient,
    target: Target<'a>,
    from: &'a str,
    from_node: &'a str,
    from_addr: SocketAddr,
    to: &'a str,
    to_node: &'a str,
    to_addr: SocketAddr,
}

/// Fresh reports of `pods` (those differing from the projection), for
/// moves that ran at once: each move's own reports were read when it
/// ended, and a source giving slots to several targets reports
/// differently at each end; folded in decision order, an earlier reading
/// could stand last. Read once after all of them, they are the state the
/// moves left.
pub async fn reports_of(valkey: &ValkeyClient, target: Target<'_>, pods: &[String]) -> Vec<Event> {
    let mut events = Vec::new();
    for pod in pods {
        if let Ok(now) = answer(valkey, target, pod).await {
            events.extend(reported(target, pod, &now));
        }
    }
    events
}

impl Move<'_> {
    /// The slots the target's slot map shows the source owning: a target
    /// that just joined learns who owns what by gossip.
    async fn seen_by_target(&self) -> Result<Vec<SlotRange>, ActError> {
        slots_seen(self.valkey, self.to_addr, self.from_node)
            .await
            .map_err(valkey_err(format!("reading the slot map of {}", self.to)))
    }

    /// Fresh reports of both ends (and `others`), as the facts the move
    /// established.
    async fn reports(&self, others: &[String]) -> Vec<Event> {
        let mut events = Vec::new();
        let pods = [self.from, self.to]
            .into_iter()
            .chain(others.iter().map(String::as_str));
        for pod in pods {
            if let Ok(now) = answer(self.valkey, self.target, pod).await {
                events.extend(reported(self.target, pod, &now));
            }
        }
        events
    }

    /// Polls the target until it claims every slot of `slots`, for at most
    /// [`OWNERSHIP_WAIT`]; returns, when it does, the facts that show it:
    /// its report claiming them (journaled even if it dies right after,
    /// so the journal never calls a move done without the claim), then a
    /// fresh report of the source. A target that does not answer
    /// meanwhile (the very reason a job can end ambiguously) is asked
    /// again until the wait is over; then its last failure is the error.
    async fn target_owns(&self, slots: &[SlotRange]) -> Result<Option<Vec<Event>>, ActError> {
        let deadline = Instant::now() + OWNERSHIP_WAIT;
        loop {
            let failure = match answer(self.valkey, self.target, self.to).await {
                Ok(now) if covers(&now.report.slots, slots) => {
                    let mut facts: Vec<Event> =
                        reported(self.target, self.to, &now).into_iter().collect();
                    facts.extend(
                        reports_of(self.valkey, self.target, &[self.from.to_owned()]).await,
                    );
                    return Ok(Some(facts));
                }
                Ok(_) => None,
                Err(err) => Some(err),
            };
            if Instant::now() >= deadline {
                return failure.map_or(Ok(None), Err);
            }
            if let Some(why) = self.target.interrupted() {
                return Err(ActError::NotYet(format!(
                    "{} not seen claiming {} before the operator stopped waiting to act on: {why}",
                    self.to,
                    describe_slots(slots)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Moves `slots` from the primary in `from` (node `from_node`) to the one
/// in `to` (node `to_node`).
///
/// # Guarantees
///
/// Idempotent and resumable: slots the target owns already are done; an
/// export job running on the source for exactly these slots (or exactly
/// those the target lacks) to `to_node` is followed, never issued again;
/// at most one `CLUSTER MIGRATESLOTS` is sent per call. Returns fresh
/// reports of both ends, and one `SlotMigrationObserved` per phase of the
/// job it followed.
///
/// # Errors
///
/// [`ActError::Refused`] when a pod runs another node than decided or a
/// slot is owned by neither end; [`ActError::NotYet`] (retryable) when the
/// job failed, was cancelled, stalled, or ended ambiguously with the
/// source still owning the slots; [`ActError::Valkey`] when a node does
/// not answer.
pub async fn move_slots(
    valkey: &ValkeyClient,
    target: Target<'_>,
    from: &str,
    from_node: &str,
    to: &str,
    to_node: &str,
    slots: &[SlotRange],
) -> Result<Done, ActError> {
    let slots = merge_ranges(slots);
    if from_node == to_node {
        return Err(ActError::Refused(format!(
            "moving slots from node {from_node} to itself"
        )));
    }
    let from_addr = target.addr(from)?;
    let to_addr = target.addr(to)?;
    expect_running(valkey, from, from_addr, from_node).await?;
    expect_running(valkey, to, to_addr, to_node).await?;
    let mv = Move {
        valkey,
        target,
        from,
        from_node,
        from_addr,
        to,
        to_node,
        to_addr,
    };
    let listed = valkey
        .cluster_getslotmigrations(from_addr)
        .await
        .map_err(valkey_err(format!("listing the slot migrations of {from}")))?;
    let to_now = answer(valkey, target, to).await?;
    let owned_by_target = &to_now.report.slots;
    let remaining = missing(owned_by_target, &slots);
    if let Some(job) = listed.iter().flatten().find(|j| {
        j.side == MigrationSide::Export
            && !j.phase.is_over()
            && (j.moves(from_node, to_node, &slots) || j.moves(from_node, to_node, &remaining))
    }) {
        let job_slots = merge_ranges(&job.slots);
        return mv
            .follow(Following::Adopted(job.name.clone()), &job_slots)
            .await;
    }
    let owned_by_source = answer(valkey, target, from).await?.report.slots;
    let stray = missing(&owned_by_source, &remaining);
    if !stray.is_empty() {
        return Err(ActError::Refused(format!(
            "slots {} are owned by neither {from} nor {to}; nothing moved",
            describe_slots(&stray)
        )));
    }
    let Some(jobs) = listed else {
        // Also when the target owns them all: a crash may have left the
        // source's own mark on a slot it gave away.
        return mv.classic(&slots).await;
    };
    if remaining.is_empty() {
        // The report that shows the claim, whatever happens to the
        // target next; and how the jobs the journal may still hold as
        // under way on either end ended (else the next decision would
        // wait for them again, and be answered "already moved" again).
        let mut events: Vec<Event> = reported(target, to, &to_now).into_iter().collect();
        events.extend(reports_of(valkey, target, &[from.to_owned()]).await);
        events.extend(crate::observe::observe_migrations(
            target.state,
            from,
            Some(&jobs),
        ));
        if let Ok(on_target) = valkey.cluster_getslotmigrations(to_addr).await {
            events.extend(crate::observe::observe_migrations(
                target.state,
                to,
                on_target.as_deref(),
            ));
        }
        return Ok(Done {
            detail: format!(
                "already moved: {to} (node {to_node}) owns {}",
                slots_text(&slots)
            ),
            events,
            password: None,
        });
    }
    mv.atomic(&jobs, &remaining).await
}
/// Settles `slot`, left importing/migrating with no job running: with
/// `to`/`to_node`, finishes the move from `owner` to it (remaining keys
/// sent with `MIGRATE REPLACE`, every primary told the new owner);
/// without, clears the marks (`SETSLOT STABLE`) on every primary that has
/// one, once no primary but the owner is seen holding keys of the slot.
///
/// # Errors
///
/// [`ActError::Refused`] when a pod runs another node than decided, the
/// slot is owned by neither end, or (clearing) another primary holds keys
/// of the slot; [`ActError::NotYet`] when a primary cannot be read;
/// [`ActError::Valkey`] when a command fails.
pub async fn settle_slot(
    valkey: &ValkeyClient,
    target: Target<'_>,
    slot: u16,
    owner: &str,
    owner_node: &str,
    to: Option<&str>,
    to_node: Option<&str>,
) -> Result<Done, ActError> {
    let owner_addr = target.addr(owner)?;
    expect_running(valkey, owner, owner_addr, owner_node).await?;
    match (to, to_node) {
        (Some(to), Some(to_node)) => {
            let to_addr = target.addr(to)?;
            expect_running(valkey, to, to_addr, to_node).await?;
            let mv = Move {
                valkey,
                target,
                from: owner,
                from_node: owner_node,
                from_addr: owner_addr,
                to,
                to_node,
                to_addr,
            };
            mv.finish(slot).await
        }
        (None, None) => classic::clear_marks(valkey, target, slot, owner, owner_node).await,
        _ => Err(ActError::Refused(format!(
            "settling slot {slot}: a target pod without its node id, or the reverse"
        ))),
    }
}

/// The primaries of the projection other than `except`, by pod.
fn other_primaries(target: Target<'_>, except: &[&str]) -> Vec<String> {
    target
        .state
        .cluster
        .pods
        .keys()
        .filter(|pod| !except.contains(&pod.as_str()))
        .filter(|pod| {
            target
                .state
                .cluster
                .report(pod)
                .is_some_and(|r| r.is_primary())
        })
        .cloned()
        .collect()
}

/// Whether `answer` marks `slot` as migrating or importing.
fn marks(answer: &ClusterAnswer, slot: u16) -> bool {
    let (migrating, importing) = &answer.slot_states;
    migrating.iter().chain(importing).any(|p| p.slot == slot)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn r(start: u16, end: u16) -> SlotRange {
        SlotRange { start, end }
    }

    #[test]
    fn what_is_missing() {
        let owned = [r(0, 99), r(100, 199), r(500, 500)];
        assert_eq!(
            missing(&owned, &[r(150, 250), r(499, 501)]),
            vec![r(200, 250), r(499, 499), r(501, 501)]
        );
        assert!(missing(&owned, &[r(0, 10)]).is_empty());
    }
}
