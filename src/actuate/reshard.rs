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

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::cluster::{describe_slots, merge_ranges, merge_slots, slot_count};
use logbook_journal::{Event, MigrationPhase, MigrationSide, SlotMigrationJob, SlotRange};
use tokio::time::Instant;

use super::cluster::{POLL, answer, reported, valkey_err};
use super::{ActError, Done, Target};
use crate::observe::ClusterAnswer;
use crate::valkey::ValkeyClient;

mod classic;

/// How often a running job is polled: `GETSLOTMIGRATIONS` is one cheap
/// read, and the write pause of a job lasts tens of milliseconds.
const JOB_POLL: Duration = Duration::from_millis(15);
/// A job whose phase and progress stand still this long is left running
/// and reported not done yet: the next decision adopts it.
const STALL: Duration = Duration::from_secs(60);
/// The longest one action follows a job that keeps progressing, so the
/// cluster's runtime is not held indefinitely; the next decision adopts
/// it.
const FOLLOW_MAX: Duration = Duration::from_secs(600);
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

/// Whether every slot of `wanted` is in `owned`.
fn covers(owned: &[SlotRange], wanted: &[SlotRange]) -> bool {
    let owned = merge_ranges(owned);
    wanted
        .iter()
        .all(|w| owned.iter().any(|o| o.start <= w.start && w.end <= o.end))
}

/// The slots of `wanted` not in `owned`.
fn missing(owned: &[SlotRange], wanted: &[SlotRange]) -> Vec<SlotRange> {
    let slots = wanted
        .iter()
        .flat_map(|r| r.start..=r.end)
        .filter(|&s| !owned.iter().any(|o| o.start <= s && s <= o.end))
        .collect();
    merge_slots(slots)
}

fn overlaps(a: &[SlotRange], b: &[SlotRange]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.start <= y.end && y.start <= x.end))
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

impl Move<'_> {
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
    /// [`OWNERSHIP_WAIT`]; returns whether it does. A target that does not
    /// answer meanwhile (the very reason a job can end ambiguously) is
    /// asked again until the wait is over; then its last failure is the
    /// error.
    async fn target_owns(&self, slots: &[SlotRange]) -> Result<bool, ActError> {
        let deadline = Instant::now() + OWNERSHIP_WAIT;
        loop {
            let failure = match answer(self.valkey, self.target, self.to).await {
                Ok(now) if covers(&now.report.slots, slots) => return Ok(true),
                Ok(_) => None,
                Err(err) => Some(err),
            };
            if Instant::now() >= deadline {
                return failure.map_or(Ok(false), Err);
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
    let owned_by_target = answer(valkey, target, to).await?.report.slots;
    let remaining = missing(&owned_by_target, &slots);
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
        return Ok(Done {
            detail: format!(
                "already moved: {to} (node {to_node}) owns {}",
                slots_text(&slots)
            ),
            events: mv.reports(&[]).await,
            password: None,
        });
    }
    mv.atomic(&jobs, &remaining).await
}

/// The job followed: one this call issued (found as the new job moving
/// these slots, not listed before), or one found running.
enum Following {
    Issued { known: HashSet<String> },
    Adopted(String),
}

/// How a followed job ended.
enum Ended {
    /// Listed over (success, failed, cancelled).
    Over(SlotMigrationJob),
    /// No longer listed, or the source stopped answering: its process
    /// went away with the job.
    Vanished(Option<SlotMigrationJob>),
}

/// Phases as first seen, with the milliseconds since the follow began.
struct Timeline {
    started: Instant,
    seen: Vec<(String, u128)>,
}

impl Timeline {
    fn at(&self, phase: &str) -> Option<u128> {
        self.seen
            .iter()
            .find(|(p, _)| p == phase)
            .map(|(_, ms)| *ms)
    }

    fn describe(&self) -> String {
        self.seen
            .iter()
            .map(|(p, ms)| format!("{p} at {ms} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What the polls let one say of the source's write pause: it holds
    /// writes from `failover-paused` until the job ends.
    fn pause(&self, end: &str) -> String {
        let start = self
            .at("failover-paused")
            .or_else(|| self.at("failover-granted"));
        match (start, self.at(end)) {
            (Some(s), Some(e)) => format!("write pause observed between {s} and {e} ms"),
            _ => format!(
                "write pause not seen by the polls (shorter than their ~{} ms interval)",
                JOB_POLL.as_millis()
            ),
        }
    }
}

impl Move<'_> {
    /// Issues one `CLUSTER MIGRATESLOTS` for `slots` and follows the job.
    async fn atomic(
        &self,
        before: &[SlotMigrationJob],
        slots: &[SlotRange],
    ) -> Result<Done, ActError> {
        if let Some(busy) = before.iter().find(|j| {
            j.side == MigrationSide::Export && !j.phase.is_over() && overlaps(&j.slots, slots)
        }) {
            return Err(ActError::NotYet(format!(
                "{} is already exporting slots {} to node {} (job {}, {}); waiting for it to end",
                self.from,
                describe_slots(&busy.slots),
                busy.target,
                busy.name,
                busy.phase.name()
            )));
        }
        let known = before.iter().map(|j| j.name.clone()).collect();
        self.valkey
            .cluster_migrateslots(self.from_addr, &[(slots.to_vec(), self.to_node.to_owned())])
            .await
            .map_err(valkey_err(format!(
                "starting the migration of {} from {} to {}",
                slots_text(slots),
                self.from,
                self.to
            )))?;
        self.follow(Following::Issued { known }, slots).await
    }

    /// Polls the source's job list until the job ends, journaling each
    /// change of phase, then settles the outcome by ownership.
    async fn follow(&self, following: Following, slots: &[SlotRange]) -> Result<Done, ActError> {
        let (mut name, known, issued) = match following {
            Following::Issued { known } => (None, known, true),
            Following::Adopted(name) => (Some(name), HashSet::new(), false),
        };
        let mut timeline = Timeline {
            started: Instant::now(),
            seen: Vec::new(),
        };
        let mut events = Vec::new();
        let mut last: Option<SlotMigrationJob> = None;
        let mut progressed = timeline.started;
        let ended = loop {
            let listing = match self.valkey.cluster_getslotmigrations(self.from_addr).await {
                Ok(listing) => listing,
                Err(err) if err.is_death() => break Ended::Vanished(last),
                Err(source) => {
                    return Err(ActError::Valkey {
                        what: format!("following the slot migration on {}", self.from),
                        source,
                    });
                }
            };
            let found = listing.iter().flatten().find(|j| match &name {
                Some(name) => &j.name == name,
                None => {
                    j.side == MigrationSide::Export
                        && !known.contains(&j.name)
                        && j.moves(self.from_node, self.to_node, slots)
                }
            });
            let Some(job) = found.cloned() else {
                break Ended::Vanished(last);
            };
            name = Some(job.name.clone());
            let elapsed = timeline.started.elapsed();
            let changed = last
                .as_ref()
                .is_none_or(|l| l.phase != job.phase || l.message != job.message);
            if changed {
                timeline
                    .seen
                    .push((job.phase.name().to_owned(), elapsed.as_millis()));
                events.push(Event::SlotMigrationObserved {
                    pod: self.from.to_owned(),
                    job: job.clone(),
                    elapsed_ms: issued
                        .then(|| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
                });
            }
            if changed
                || last
                    .as_ref()
                    .is_some_and(|l| l.remaining_repl_size != job.remaining_repl_size)
            {
                progressed = Instant::now();
            }
            if job.phase.is_over() {
                break Ended::Over(job);
            }
            last = Some(job);
            if progressed.elapsed() >= STALL || timeline.started.elapsed() >= FOLLOW_MAX {
                let name = name.as_deref().unwrap_or("?");
                let phase = last.as_ref().map_or("?", |j| j.phase.name());
                return Err(ActError::NotYet(format!(
                    "slot migration job {name} from {} to {} is still {phase} after {} s ({}); left running, to be followed again",
                    self.from,
                    self.to,
                    timeline.started.elapsed().as_secs(),
                    if progressed.elapsed() >= STALL {
                        "no progress for a minute"
                    } else {
                        "longer than one action waits"
                    }
                )));
            }
            tokio::time::sleep(JOB_POLL).await;
        };
        self.settle_job(ended, slots, &timeline, events, issued)
            .await
    }

    /// The outcome of a job that ended, checked against ownership.
    async fn settle_job(
        &self,
        ended: Ended,
        slots: &[SlotRange],
        timeline: &Timeline,
        mut events: Vec<Event>,
        issued: bool,
    ) -> Result<Done, ActError> {
        let what = format!("{} from {} to {}", slots_text(slots), self.from, self.to);
        let how = |name: &str| {
            if issued {
                format!("by atomic slot migration (job {name})")
            } else {
                format!("by atomic slot migration (job {name}, found running: times from then)")
            }
        };
        let done = |detail: String, events: Vec<Event>| Done {
            detail,
            events,
            password: None,
        };
        match ended {
            Ended::Over(job) if job.phase == MigrationPhase::Succeeded => {
                if !self.target_owns(slots).await? {
                    return Err(ActError::NotYet(format!(
                        "slot migration job {} reported success, but {} does not claim {} after {} s",
                        job.name,
                        self.to,
                        describe_slots(slots),
                        OWNERSHIP_WAIT.as_secs()
                    )));
                }
                events.extend(self.reports(&[]).await);
                let total = timeline.at("success").unwrap_or_default();
                Ok(done(
                    format!(
                        "moved {what} {} in {total} ms; {}; phases: {}",
                        how(&job.name),
                        timeline.pause("success"),
                        timeline.describe()
                    ),
                    events,
                ))
            }
            Ended::Over(job) if job.ambiguous() => {
                if self.target_owns(slots).await? {
                    events.extend(self.reports(&[]).await);
                    Ok(done(
                        format!(
                            "moved {what} {}: ambiguous job ({}) resolved by ownership: the target owns the slots; writes the source took after unpausing may be lost; phases: {}",
                            how(&job.name),
                            job.message,
                            timeline.describe()
                        ),
                        events,
                    ))
                } else {
                    Err(ActError::NotYet(format!(
                        "slot migration job {} moving {what} ended ambiguously ({}) and {} does not own the slots after {} s: not moved",
                        job.name,
                        job.message,
                        self.to,
                        OWNERSHIP_WAIT.as_secs()
                    )))
                }
            }
            Ended::Over(job) => Err(ActError::NotYet(format!(
                "slot migration job {} moving {what} {}: {}",
                job.name,
                if job.phase == MigrationPhase::Cancelled {
                    "was cancelled"
                } else {
                    "failed"
                },
                if job.message.is_empty() {
                    "no message"
                } else {
                    job.message.as_str()
                }
            ))),
            Ended::Vanished(last) => {
                if let Some(job) = last {
                    events.push(Event::SlotMigrationObserved {
                        pod: self.from.to_owned(),
                        job: SlotMigrationJob {
                            phase: MigrationPhase::Vanished,
                            ..job
                        },
                        elapsed_ms: issued.then(|| {
                            u64::try_from(timeline.started.elapsed().as_millis())
                                .unwrap_or(u64::MAX)
                        }),
                    });
                }
                if self.target_owns(slots).await? {
                    events.extend(self.reports(&[]).await);
                    Ok(done(
                        format!(
                            "moved {what}: the job vanished from {} (its process restarted), resolved by ownership: the target owns the slots",
                            self.from
                        ),
                        events,
                    ))
                } else {
                    Err(ActError::NotYet(format!(
                        "the slot migration of {what} vanished from {} (its process restarted) and {} does not own the slots: not moved",
                        self.from, self.to
                    )))
                }
            }
        }
    }
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
    fn coverage_and_what_is_missing() {
        let owned = [r(0, 99), r(100, 199), r(500, 500)];
        assert!(covers(&owned, &[r(50, 150), r(500, 500)]));
        assert!(!covers(&owned, &[r(150, 250)]));
        assert!(covers(&owned, &[]));
        assert_eq!(
            missing(&owned, &[r(150, 250), r(499, 501)]),
            vec![r(200, 250), r(499, 499), r(501, 501)]
        );
        assert!(missing(&owned, &[r(0, 10)]).is_empty());
        assert!(overlaps(&[r(0, 10)], &[r(10, 20)]));
        assert!(!overlaps(&[r(0, 10)], &[r(11, 20)]));
    }

    #[test]
    fn the_pause_is_stated_only_when_seen() {
        let seen = |phases: &[(&str, u128)]| Timeline {
            started: Instant::now(),
            seen: phases
                .iter()
                .map(|(p, ms)| ((*p).to_owned(), *ms))
                .collect(),
        };
        let t = seen(&[
            ("snapshotting", 3),
            ("failover-paused", 800),
            ("success", 1_000),
        ]);
        assert_eq!(
            t.pause("success"),
            "write pause observed between 800 and 1000 ms"
        );
        assert_eq!(
            t.describe(),
            "snapshotting at 3 ms, failover-paused at 800 ms, success at 1000 ms"
        );
        let quick = seen(&[("snapshotting", 3), ("success", 40)]);
        assert!(quick.pause("success").contains("not seen"));
    }
}
