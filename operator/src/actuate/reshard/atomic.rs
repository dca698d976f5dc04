//! Moves by atomic slot migration (Valkey 9.0 and later): one `CLUSTER
//! MIGRATESLOTS` per move, then the source's `CLUSTER GETSLOTMIGRATIONS`
//! polled until the job ends, each change of phase journaled once, and
//! the outcome checked against the target's own claim on the slots.
//!
//! The job is found by source, target and ranges among the jobs not
//! listed before it was issued (the command does not name it, and finished
//! jobs stay listed: a job that moved the same slots earlier must not be
//! taken for it). A job that stalls or runs longer than one action waits
//! is left running, never cancelled: the next decision adopts it.

use std::collections::HashSet;
use std::time::Duration;

use logbook_journal::cluster::describe_slots;
use logbook_journal::{Event, MigrationPhase, MigrationSide, SlotMigrationJob, SlotRange};
use tokio::time::Instant;

use super::{ActError, Done, Move, OWNERSHIP_WAIT, overlaps, slots_text, valkey_err};

/// How often a running job is polled: `GETSLOTMIGRATIONS` is one cheap
/// read, and the write pause of a job lasts tens of milliseconds.
const JOB_POLL: Duration = Duration::from_millis(15);

/// How long a job waits for its target to learn the source's slots.
const SLOT_MAP_WAIT: Duration = Duration::from_secs(3);
/// A job whose phase and progress stand still this long is left running
/// and reported not done yet: the next decision adopts it.
const STALL: Duration = Duration::from_secs(60);
/// The longest one action follows a job that keeps progressing, so the
/// cluster's runtime is not held indefinitely; the next decision adopts
/// it.
const FOLLOW_MAX: Duration = Duration::from_secs(600);

/// The job followed: one this call issued (found as the new job moving
/// these slots, not listed before), or one found running.
pub(super) enum Following {
    /// Issued at `at`, when the jobs named in `known` were listed.
    Issued { known: HashSet<String>, at: Instant },
    /// Found running under this name.
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

/// Phases as first seen, with the milliseconds since the job was issued
/// (or found running).
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
    pub(super) async fn atomic(
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
        self.target_sees_source_owning(slots).await?;
        let known = before.iter().map(|j| j.name.clone()).collect();
        let at = Instant::now();
        self.valkey
            .cluster_migrateslots(self.from_addr, &[(slots.to_vec(), self.to_node.to_owned())])
            .await
            .map_err(valkey_err(format!(
                "starting the migration of {} from {} to {}",
                slots_text(slots),
                self.from,
                self.to
            )))?;
        self.follow(Following::Issued { known, at }, slots).await
    }

    /// Waits (at most [`SLOT_MAP_WAIT`]) until the target's slot map
    /// shows the source owning every slot of `slots`: a target that just
    /// joined learns who owns what by gossip, and refuses a job for slots
    /// it sees no owner of ("Slot 4096 has no node served"), failing it at
    /// once.
    ///
    /// # Errors
    ///
    /// [`ActError::NotYet`] when it still does not (or cannot be read).
    async fn target_sees_source_owning(&self, slots: &[SlotRange]) -> Result<(), ActError> {
        let deadline = Instant::now() + SLOT_MAP_WAIT;
        loop {
            let lacking = super::missing(&self.seen_by_target().await?, slots);
            if lacking.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline || self.target.interrupted().is_some() {
                return Err(ActError::NotYet(format!(
                    "{} does not see {} owning {} yet (gossip); nothing issued",
                    self.to,
                    self.from,
                    describe_slots(&lacking)
                )));
            }
            tokio::time::sleep(super::POLL).await;
        }
    }

    /// Polls the source's job list until the job ends, journaling each
    /// change of phase, then settles the outcome by ownership.
    pub(super) async fn follow(
        &self,
        following: Following,
        slots: &[SlotRange],
    ) -> Result<Done, ActError> {
        let (mut name, known, issued, started) = match following {
            Following::Issued { known, at } => (None, known, true, at),
            Following::Adopted(name) => (Some(name), HashSet::new(), false, Instant::now()),
        };
        let mut timeline = Timeline {
            started,
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
            let why = if progressed.elapsed() >= STALL {
                Some("no progress for a minute".to_owned())
            } else if timeline.started.elapsed() >= FOLLOW_MAX {
                Some("longer than one action waits".to_owned())
            } else {
                self.target
                    .interrupted()
                    .map(|why| format!("the operator stopped waiting to act on: {why}"))
            };
            if let Some(why) = why {
                let name = name.as_deref().unwrap_or("?");
                let phase = last.as_ref().map_or("?", |j| j.phase.name());
                return Err(ActError::NotYet(format!(
                    "slot migration job {name} from {} to {} is still {phase} after {} s ({why}); left running, to be followed again",
                    self.from,
                    self.to,
                    timeline.started.elapsed().as_secs(),
                ))
                .with_facts(events));
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
                let claim = match self.target_owns(slots).await {
                    Ok(claim) => claim,
                    Err(err) => return Err(err.with_facts(events)),
                };
                let Some(claim) = claim else {
                    return Err(ActError::NotYet(format!(
                        "slot migration job {} reported success, but {} does not claim {} after {} s",
                        job.name,
                        self.to,
                        describe_slots(slots),
                        OWNERSHIP_WAIT.as_secs()
                    ))
                    .with_facts(events));
                };
                events.extend(claim);
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
                let claim = match self.target_owns(slots).await {
                    Ok(claim) => claim,
                    Err(err) => return Err(err.with_facts(events)),
                };
                if let Some(claim) = claim {
                    events.extend(claim);
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
                    ))
                    .with_facts(events))
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
            ))
            .with_facts(events)),
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
                let claim = match self.target_owns(slots).await {
                    Ok(claim) => claim,
                    Err(err) => return Err(err.with_facts(events)),
                };
                if let Some(claim) = claim {
                    events.extend(claim);
                    Ok(done(
                        format!(
                            "moved {what}: the job vanished from {} (its process restarted or died), resolved by ownership: the target owns the slots",
                            self.from
                        ),
                        events,
                    ))
                } else {
                    Err(ActError::NotYet(format!(
                        "the slot migration of {what} vanished from {} (its process restarted or died) and {} does not own the slots: not moved",
                        self.from, self.to
                    ))
                    .with_facts(events))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
