//! Migration jobs as journaled (`SlotMigrationObserved`): each
//! observation filed under the move it carries out — by its name once
//! known, else the open `MoveSlots` naming exactly its source, target and
//! slots — or, when none does, under the jobs no decision names.

use logbook_journal::{Envelope, SlotMigrationJob};

use super::pause::{self, Phase};
use super::{Job, Mechanism, Reshards, RowKind};

impl Reshards {
    /// `job`'s record, before any observation is filed under it.
    pub(super) fn job_of(&self, job: &SlotMigrationJob, before_start: bool) -> Job {
        Job {
            kind: RowKind::MigrationJob,
            name: job.name.clone(),
            source: self.node(None, &job.source),
            target: self.node(None, &job.target),
            slots: job.slots.clone(),
            before_start,
            phases: Vec::new(),
        }
    }

    /// Files one observation of `job`, listed by `pod`.
    pub(super) fn on_job(
        &mut self,
        e: &Envelope,
        pod: &str,
        job: &SlotMigrationJob,
        elapsed: Option<u64>,
    ) {
        let phase = Phase {
            seq: e.seq,
            at: e.at,
            pod: pod.to_owned(),
            side: job.side.name(),
            state: job.phase.name().to_owned(),
            elapsed_ms: elapsed,
            message: job.message.clone(),
            remaining_repl_size: job.remaining_repl_size,
        };
        let owner = self.job_owner.get(&job.name).copied().or_else(|| {
            // The move it carries out, still open.
            self.open_moves.values().copied().find(|(r, m)| {
                self.records
                    .get(*r)
                    .and_then(|rec| rec.migrations.get(*m))
                    .is_some_and(|mig| {
                        mig.source
                            .node_id
                            .as_deref()
                            .zip(mig.target.node_id.as_deref())
                            .is_some_and(|(s, t)| job.moves(s, t, &mig.slots))
                    })
            })
        });
        let Some((r, m)) = owner else {
            let fresh = self.job_of(job, false);
            self.unplanned
                .entry(job.name.clone())
                .or_insert(fresh)
                .phases
                .push(phase);
            return;
        };
        self.job_owner.insert(job.name.clone(), (r, m));
        let fresh = self.job_of(job, false);
        let Some(mig) = self
            .records
            .get_mut(r)
            .and_then(|rec| rec.migrations.get_mut(m))
        else {
            return;
        };
        mig.mechanism = Mechanism::AtomicSlotMigration;
        let index = match mig.jobs.iter().position(|j| j.name == job.name) {
            Some(i) => i,
            None => {
                mig.jobs.push(fresh);
                mig.jobs.len().saturating_sub(1)
            }
        };
        if let Some(j) = mig.jobs.get_mut(index) {
            j.phases.push(phase);
        }
        mig.pause = mig.jobs.last().map(|j| pause::bound(&j.phases));
    }
}
