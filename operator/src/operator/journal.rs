//! `ClusterJournal`: one cluster's stream with group commit.
//!
//! Events are *staged* (encoded and chained against the staged head, and
//! folded into the projection by the caller) and *committed* in one store
//! append. Observations wait for the group-commit interval (at most one
//! write per interval per cluster under churn); a decision is committed at
//! once before any of its intents runs (write-ahead). Staged events that
//! cannot be committed (the API is away) stay staged up to a bound, then
//! staging refuses (back-pressure) until a commit succeeds. A conflict
//! means another writer extended the stream: the caller must stop writing
//! and reload, never retry the same batch.

use std::time::Duration;

use logbook_journal::writer::{WriterError, encode_batch};
use logbook_journal::{EncodedEvent, Envelope, Head, JournalStore, NewEvent, StoreError, StreamId};
use tokio::time::Instant;

use super::crash;
use crate::journal_store::AnyStore;

/// Most events kept staged while commits fail.
pub const MAX_STAGED_EVENTS: usize = 20_000;
/// Most frame bytes kept staged while commits fail (a ConfigMap append
/// must stay well under the 1 MiB object limit: the store seals segments,
/// but one batch goes into one head write).
pub const MAX_STAGED_BYTES: usize = 512 * 1024;

/// Why staging or committing failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Encoding or the store failed.
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// Too much is staged and uncommitted; the caller drops this batch
    /// (observations are re-made; nothing has been acted on).
    #[error(
        "{staged} events ({bytes} bytes) wait to be committed; refusing more until the journal accepts writes"
    )]
    Backpressure {
        /// Events staged.
        staged: usize,
        /// Their frame bytes.
        bytes: usize,
    },
}

impl JournalError {
    /// Whether another writer extended the stream (this one is fenced out).
    #[must_use]
    pub const fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::Writer(WriterError::Store(StoreError::Conflict { .. }))
        )
    }
}

/// One cluster's stream: a durable head, and events staged past it.
#[derive(Debug)]
pub struct ClusterJournal {
    store: AnyStore,
    stream: StreamId,
    durable: Head,
    staged: Vec<EncodedEvent>,
    staged_head: Head,
    staged_bytes: usize,
    staged_decision: bool,
    epoch: u64,
    group: Duration,
    last_commit: Option<Instant>,
    commits: u64,
}

impl ClusterJournal {
    /// A journal continuing from `head` (the head the projection was
    /// loaded to), stamping `epoch`, committing observations at most once
    /// per `group`.
    pub fn new(store: AnyStore, stream: StreamId, head: Head, epoch: u64, group: Duration) -> Self {
        Self {
            store,
            stream,
            durable: head,
            staged: Vec::new(),
            staged_head: head,
            staged_bytes: 0,
            staged_decision: false,
            epoch,
            group,
            last_commit: None,
            commits: 0,
        }
    }

    /// The store.
    pub const fn store(&self) -> &AnyStore {
        &self.store
    }

    /// Replaces the store (same stream and backend; new owner or labels).
    pub fn set_store(&mut self, store: AnyStore) {
        self.store = store;
    }

    /// The stream.
    pub const fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// Stamps `epoch` on later events.
    pub const fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Whether events wait to be committed.
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Frame bytes staged and not committed yet.
    pub const fn staged_bytes(&self) -> usize {
        self.staged_bytes
    }

    /// Store appends made.
    pub const fn commits(&self) -> u64 {
        self.commits
    }

    /// Encodes `events` after the staged head and stages them; returns
    /// their envelopes for the caller to fold. `decision` marks a batch
    /// that holds a `Decided` event (for crash injection's counting, which
    /// may count only some decisions: see [`crash::counts_as_decision`]).
    ///
    /// # Errors
    /// [`JournalError::Backpressure`] past the staging bounds; encode
    /// errors.
    pub fn stage(
        &mut self,
        events: Vec<NewEvent>,
        decision: bool,
    ) -> Result<Vec<Envelope>, JournalError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if self.staged.len() >= MAX_STAGED_EVENTS || self.staged_bytes >= MAX_STAGED_BYTES {
            return Err(JournalError::Backpressure {
                staged: self.staged.len(),
                bytes: self.staged_bytes,
            });
        }
        let decision = crash::counts_as_decision(decision, &events);
        let (envelopes, encoded) =
            encode_batch(&self.stream, self.staged_head, self.epoch, events)?;
        if let Some(last) = encoded.last() {
            self.staged_head = Head {
                seq: last.seq,
                hash: last.hash,
            };
        }
        self.staged_bytes = self
            .staged_bytes
            .saturating_add(encoded.iter().map(|e| e.frame.len()).sum::<usize>());
        self.staged.extend(encoded);
        self.staged_decision |= decision;
        Ok(envelopes)
    }

    /// Whether the staged observations should be committed now: the group
    /// interval has passed since the last commit.
    pub fn due(&self) -> bool {
        self.has_staged() && self.last_commit.is_none_or(|at| at.elapsed() >= self.group)
    }

    /// Commits everything staged in one append. On a conflict the staged
    /// events stay (the caller reloads and discards them); on a backend
    /// error they stay for the next attempt.
    ///
    /// # Errors
    /// Store errors.
    pub async fn commit(&mut self) -> Result<(), JournalError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let decision = self.staged_decision;
        crash::before_commit(decision);
        let head = self
            .store
            .append(&self.stream, self.durable.next_seq(), &self.staged)
            .await
            .map_err(WriterError::Store)?;
        self.durable = head;
        self.staged.clear();
        self.staged_bytes = 0;
        self.staged_decision = false;
        self.last_commit = Some(Instant::now());
        self.commits = self.commits.saturating_add(1);
        crash::after_commit(decision);
        Ok(())
    }

    /// Drops what is staged (after a conflict, or a lost leadership): the
    /// caller rebuilds its projection from the store.
    pub fn discard_staged(&mut self) {
        self.staged.clear();
        self.staged_bytes = 0;
        self.staged_decision = false;
        self.staged_head = self.durable;
    }

    /// Continues from `head` (after the caller reloaded the projection).
    pub fn reset(&mut self, head: Head) {
        self.discard_staged();
        self.durable = head;
        self.staged_head = head;
    }
}
