//! The `JournalStore` trait: durable storage of already-encoded frames,
//! per stream, with compare-and-swap appends.
//!
//! A store never decodes events; it checks sequence numbers, keeps the head
//! (last seq and its chain hash) and one snapshot per stream. Encoding, the
//! hash chain and verification live above it (`codec`, `writer`, `verify`).
//! Every backend passes the same `conformance` suite.

mod error;
pub mod memory;
#[cfg(feature = "sled")]
pub mod sled;

use std::future::Future;

pub use error::StoreError;

use crate::ids::{ChainHash, StreamId};

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One event, encoded and chained, ready to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    /// Its seq in the stream.
    pub seq: u64,
    /// Its chain hash (also the last 32 bytes of the frame payload).
    pub hash: ChainHash,
    /// The complete frame `[len][crc32c][version][payload]`.
    pub frame: Vec<u8>,
}

/// A snapshot frame with the position it covers, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSnapshot {
    /// Last seq folded into the snapshot.
    pub seq: u64,
    /// Chain hash of that event: the `prev` of seq + 1.
    pub hash: ChainHash,
    /// The complete snapshot frame.
    pub frame: Vec<u8>,
}

/// The position a stream has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Last appended seq; 0 for an empty stream.
    pub seq: u64,
    /// Its chain hash; [`ChainHash::GENESIS`] for an empty stream.
    pub hash: ChainHash,
}

impl Head {
    /// The head of a stream with no events.
    pub const EMPTY: Self = Self {
        seq: 0,
        hash: ChainHash::GENESIS,
    };

    /// The seq the next append must carry.
    #[must_use]
    pub const fn next_seq(&self) -> u64 {
        self.seq.saturating_add(1)
    }
}

/// Frames read from a stream: one contiguous buffer plus an index, so a
/// range read costs two allocations rather than one per event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameBatch {
    buf: Vec<u8>,
    index: Vec<(u64, usize, usize)>,
}

impl FrameBatch {
    /// An empty batch with room for about `events` frames.
    #[must_use]
    pub fn with_capacity(events: usize) -> Self {
        Self {
            buf: Vec::with_capacity(events.saturating_mul(112)),
            index: Vec::with_capacity(events),
        }
    }

    /// Adds the stored bytes of `seq`.
    pub fn push(&mut self, seq: u64, frame: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(frame);
        self.index.push((seq, start, self.buf.len()));
    }

    /// Number of frames.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no frames.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The seq of the last frame, if any.
    #[must_use]
    pub fn last_seq(&self) -> Option<u64> {
        self.index.last().map(|(seq, _, _)| *seq)
    }

    /// `(seq, stored bytes)` in seq order. The seq is the store's key, not
    /// read from the frame.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.index
            .iter()
            .map(|&(seq, start, end)| (seq, self.buf.get(start..end).unwrap_or_default()))
    }
}

/// Storage of journal streams.
///
/// Methods take `&self` and return `Send` futures so that a backend doing
/// network I/O (ConfigMaps through the Kubernetes API) fits the same trait;
/// local backends complete their futures immediately.
///
/// # Guarantees every backend gives (checked by `conformance`)
/// - `append` is atomic (all of the batch or none) and succeeds only when
///   `expected_next` is the head's seq + 1: a stale writer gets
///   [`StoreError::Conflict`], never an overwrite.
/// - Once `append` returns `Ok`, the events survive a reopen (and, for
///   durable backends, a crash).
/// - `read` returns frames in seq order exactly as appended.
pub trait JournalStore: Send + Sync {
    /// Appends `events` (consecutive seqs starting at `expected_next`) and
    /// returns the new head. An empty batch only checks `expected_next`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stream's next seq differs (reload
    /// and retry); [`StoreError::NonContiguousBatch`] when the batch's seqs
    /// are not consecutive from `expected_next`; backend errors.
    fn append(
        &self,
        stream: &StreamId,
        expected_next: u64,
        events: &[EncodedEvent],
    ) -> impl Future<Output = Result<Head>> + Send;

    /// Reads up to `max` frames with seq ≥ `from`, in seq order. Frames
    /// removed by compaction are simply absent: the caller checks that the
    /// first seq is the one it asked for.
    ///
    /// # Errors
    /// Backend errors.
    fn read(
        &self,
        stream: &StreamId,
        from: u64,
        max: usize,
    ) -> impl Future<Output = Result<FrameBatch>> + Send;

    /// The stream's head ([`Head::EMPTY`] for an unknown stream).
    ///
    /// # Errors
    /// Backend errors; [`StoreError::CorruptMeta`] when the stored head is unreadable.
    fn head(&self, stream: &StreamId) -> impl Future<Output = Result<Head>> + Send;

    /// Stores `snapshot` as the stream's snapshot, replacing an older one.
    ///
    /// # Errors
    /// [`StoreError::SnapshotBeyondHead`] when it claims a seq the stream
    /// has not reached; [`StoreError::SnapshotRegression`] when an existing
    /// snapshot is newer; backend errors.
    fn put_snapshot(
        &self,
        stream: &StreamId,
        snapshot: &EncodedSnapshot,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The stream's latest snapshot, if any.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::CorruptMeta`].
    fn get_snapshot(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<EncodedSnapshot>>> + Send;

    /// Removes every event with seq < `before`; returns how many were
    /// removed. Only events covered by the stored snapshot may go, so the
    /// projection can always be rebuilt.
    ///
    /// # Errors
    /// [`StoreError::CompactionBeyondSnapshot`] when no snapshot covers
    /// `before - 1`; backend errors.
    fn compact(&self, stream: &StreamId, before: u64) -> impl Future<Output = Result<u64>> + Send;

    /// Every stream that has a head, in name order.
    ///
    /// # Errors
    /// Backend errors.
    fn list_streams(&self) -> impl Future<Output = Result<Vec<StreamId>>> + Send;

    /// Removes the last event `seq` (which must be the head) and makes
    /// `new_head` the head. The building block of torn-tail repair: the
    /// caller (`verify::repair_torn_tail`) decides that the frame is broken.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `seq` is not the head;
    /// [`StoreError::TruncateBelowSnapshot`] when the snapshot covers `seq`;
    /// backend errors.
    fn remove_last(
        &self,
        stream: &StreamId,
        seq: u64,
        new_head: Head,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Checks that a batch starting at `expected_next` continues `head`: the
/// compare half of every backend's compare-and-append.
///
/// # Errors
/// [`StoreError::Conflict`] when another writer moved the stream.
pub fn check_next(stream: &StreamId, head: Head, expected_next: u64) -> Result<()> {
    if head.next_seq() == expected_next {
        return Ok(());
    }
    Err(StoreError::Conflict {
        stream: stream.clone(),
        expected: expected_next,
        actual: head.next_seq(),
    })
}

/// Checks that `events` are consecutive from `expected_next`: every
/// backend's first step of `append` (public for backends in other crates).
///
/// # Errors
/// [`StoreError::NonContiguousBatch`] naming the first seq out of place.
pub fn check_contiguous(
    stream: &StreamId,
    expected_next: u64,
    events: &[EncodedEvent],
) -> Result<()> {
    let mut want = expected_next;
    for event in events {
        if event.seq != want {
            return Err(StoreError::NonContiguousBatch {
                stream: stream.clone(),
                expected: want,
                found: event.seq,
            });
        }
        want = want.saturating_add(1);
    }
    Ok(())
}
