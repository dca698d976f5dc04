//! The runtime's journal: events staged for a group commit or written
//! through, the commit (the append is the commit point: nothing acts on
//! what is not in the journal), and snapshots with compaction.

use super::*;

impl ClusterRuntime {
    fn new_events(events: Vec<Event>, cause: Option<Uuid>) -> Vec<NewEvent> {
        events
            .into_iter()
            .map(|e| {
                let event = NewEvent::now(e);
                match cause {
                    Some(c) => event.caused_by(c),
                    None => event,
                }
            })
            .collect()
    }

    /// Stages `events` (caused by `cause`), folds them, and commits when
    /// the group-commit interval has passed. Only a leading runtime
    /// records; otherwise nothing is recorded (a follower does not write).
    ///
    /// # Errors
    /// Back-pressure (too much uncommitted), a conflict (this runtime is
    /// now fenced), encode errors. A backend failure is not an error here:
    /// the events stay staged for the next commit.
    pub async fn record(
        &mut self,
        events: Vec<Event>,
        cause: Option<Uuid>,
    ) -> Result<Vec<Envelope>, OperatorError> {
        let envelopes = self.stage(events, cause, false)?;
        self.flush_due().await?;
        Ok(envelopes)
    }

    /// Stages `events` and commits at once, with everything staged before
    /// them (write-ahead: used for decisions and takeovers).
    ///
    /// # Errors
    /// As [`ClusterRuntime::commit`]; also when the store is unavailable,
    /// since the caller must not act on what is not durable, and
    /// [`OperatorError::NotLeading`] for a decision this runtime no longer
    /// leads to journal.
    pub async fn record_now(
        &mut self,
        events: Vec<Event>,
        cause: Option<Uuid>,
    ) -> Result<Vec<Envelope>, OperatorError> {
        let decision = events.iter().any(|e| matches!(e, Event::Decided { .. }));
        let envelopes = self.stage(events, cause, decision)?;
        if decision && envelopes.is_empty() {
            // The lead was lost since the caller looked: nothing was
            // journaled, so nothing may act on it, and no Event may
            // announce it.
            return Err(OperatorError::NotLeading {
                cluster: self.cluster(),
            });
        }
        self.commit().await?;
        Ok(envelopes)
    }

    pub(super) fn stage(
        &mut self,
        events: Vec<Event>,
        cause: Option<Uuid>,
        decision: bool,
    ) -> Result<Vec<Envelope>, OperatorError> {
        if events.is_empty() || !self.leading() {
            return Ok(Vec::new());
        }
        let cluster = self.cluster();
        let envelopes = self
            .journal
            .stage(Self::new_events(events, cause), decision)
            .map_err(|source| OperatorError::Journal {
                cluster,
                source: Box::new(source),
            })?;
        self.metrics.fold(&mut self.state, &envelopes);
        self.log.set_seq(self.state.last_seq);
        Ok(envelopes)
    }

    /// Commits what is staged when the group-commit interval has passed.
    /// A backend failure is logged and retried at the next call.
    ///
    /// # Errors
    /// A conflict (this runtime is now fenced).
    pub async fn flush_due(&mut self) -> Result<(), OperatorError> {
        if !self.journal.due() {
            return Ok(());
        }
        match self.commit().await {
            Ok(()) => Ok(()),
            Err(OperatorError::Journal { source, .. }) if !source.is_conflict() => {
                tracing::warn!(seq = self.state.last_seq, err = %source, "journal commit failed; the events stay staged");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Commits everything staged now (while leading), then snapshots and
    /// compacts when due.
    ///
    /// # Errors
    /// Store errors; a conflict fences this runtime.
    pub async fn commit(&mut self) -> Result<(), OperatorError> {
        if !self.journal.has_staged() {
            return Ok(());
        }
        if !self.leading() {
            return Err(OperatorError::NotLeading {
                cluster: self.cluster(),
            });
        }
        let cluster = self.cluster();
        let bytes = self.journal.staged_bytes();
        match self.journal.commit().await {
            Ok(()) => {
                self.metrics.committed(bytes, self.state.last_seq);
                self.maybe_snapshot().await;
                Ok(())
            }
            Err(source) => {
                if source.is_conflict() {
                    let reason = format!("another writer extended the journal: {source}");
                    tracing::error!(seq = self.state.last_seq, %reason, "fenced: this instance stops writing to the cluster's journal");
                    self.fenced = Some((reason, Instant::now()));
                }
                Err(OperatorError::Journal {
                    cluster,
                    source: Box::new(source),
                })
            }
        }
    }

    /// Stores a snapshot every [`SNAPSHOT_EVERY`] committed events and
    /// journals that it did, then compacts what `journal.maxEvents` no
    /// longer keeps — only ever below a durable snapshot. A failed
    /// snapshot costs only a longer fold at the next start, so it is
    /// logged, not raised.
    async fn maybe_snapshot(&mut self) {
        let covered = self.state.last_snapshot.map_or(0, |(seq, _)| seq);
        if self.journal.has_staged() || self.state.last_seq.saturating_sub(covered) < SNAPSHOT_EVERY
        {
            return;
        }
        let (seq, hash) = (self.state.last_seq, self.state.last_hash);
        let saved = logbook_journal::snapshot::save(
            self.journal.store(),
            self.journal.stream(),
            &self.state,
        )
        .await;
        let digest = match saved {
            Ok((_, digest)) => digest,
            Err(err) => {
                tracing::warn!(seq = self.state.last_seq, %err, "cannot store a snapshot");
                return;
            }
        };
        // With its digest: the audit checks that a snapshot it starts
        // from (the events before it compacted away) is this one.
        let recorded = Event::SnapshotRecorded { seq, hash, digest };
        if let Err(err) = self.stage(vec![recorded], None, false) {
            tracing::warn!(seq = self.state.last_seq, %err, "cannot journal a snapshot");
        }
        let before = compact_before(seq, self.state.last_seq, self.max_events);
        if before > 1 {
            match self
                .journal
                .store()
                .compact(self.journal.stream(), before)
                .await
            {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(
                        seq = self.state.last_seq,
                        removed,
                        before,
                        "journal compacted"
                    )
                }
                Err(err) => {
                    tracing::warn!(seq = self.state.last_seq, %err, "cannot compact the journal")
                }
            }
        }
    }
}

/// How many events `journal.maxEvents` keeps. Validation refuses a number
/// below its range; were one accepted anyway, zero still keeps the last
/// event and a negative number keeps them all, never fewer.
pub(super) fn events_kept(max_events: i64) -> u64 {
    u64::try_from(max_events).unwrap_or(u64::MAX).max(1)
}

/// The first seq compaction keeps, the stream ending at `last_seq` with a
/// durable snapshot at `snapshot_seq`: the newest `kept` events, and never
/// an event the snapshot does not cover. Nothing is compacted when it is 1.
pub(super) fn compact_before(snapshot_seq: u64, last_seq: u64, kept: u64) -> u64 {
    snapshot_seq
        .saturating_add(1)
        .min(last_seq.saturating_sub(kept).saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::{compact_before, events_kept};
    use logbook_crds::ValkeyClusterSpec;

    /// `journal.maxEvents` is the number of events compaction keeps: after
    /// a snapshot at 5000 (and its `SnapshotRecorded` at 5001) the stream
    /// keeps exactly that many, the oldest compacted.
    #[test]
    fn journal_max_events_is_the_number_of_events_compaction_keeps() {
        let mut spec = ValkeyClusterSpec::default();
        for max_events in [1_000, 2_000, 4_500] {
            spec.journal.max_events = max_events;
            let before = compact_before(5_000, 5_001, events_kept(spec.journal.max_events));
            assert_eq!(5_001 - before + 1, u64::try_from(max_events).unwrap_or(0));
        }
        // More than the stream holds (the default, 100000): nothing goes.
        let kept = events_kept(ValkeyClusterSpec::default().journal.max_events);
        assert_eq!(compact_before(5_000, 5_001, kept), 1);
        // Never past the snapshot: the events after it are kept whatever
        // the bound.
        spec.journal.max_events = 1_000;
        assert_eq!(
            compact_before(3_000, 5_001, events_kept(spec.journal.max_events)),
            3_001
        );
        // A bound below one (never accepted): zero keeps the last event, a
        // negative number everything.
        assert_eq!(compact_before(5_000, 5_001, events_kept(0)), 5_001);
        assert_eq!(compact_before(5_000, 5_001, events_kept(-5)), 1);
    }
}
