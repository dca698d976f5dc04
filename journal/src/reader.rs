//! Reading streams back: range read → decode → verify the chain → hand each
//! envelope to a fold. `load_state` rebuilds a projection from the latest
//! snapshot plus the tail, which is what the operator does on start.
//!
//! A reader never repairs or skips: the first corrupt frame or missing seq
//! stops it with an error naming the stream and seq (fatal; run `verify`).

use crate::codec::CodecError;
use crate::envelope::Envelope;
use crate::ids::{ChainHash, StreamId};
use crate::projection::ClusterState;
use crate::snapshot::{self, SnapshotError};
use crate::store::{JournalStore, StoreError};

/// Frames fetched per store read: large enough to amortise a round trip,
/// small enough to bound memory (~450 KiB of typical frames).
pub const READ_CHUNK: usize = 4096;

/// Why a stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed (usually retryable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The snapshot could not be loaded.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A frame failed a check. Fatal: the journal is damaged.
    #[error("stream {stream}: corrupt event at seq {seq}")]
    Corrupt {
        /// The stream.
        stream: StreamId,
        /// Seq of the bad frame.
        seq: u64,
        /// The failed check.
        #[source]
        source: CodecError,
    },
    /// An expected seq is not stored (compacted without a covering snapshot,
    /// or lost). Fatal.
    #[error("stream {stream}: seq {expected} missing (next stored: {found:?})")]
    Missing {
        /// The stream.
        stream: StreamId,
        /// The seq that should have been read.
        expected: u64,
        /// The seq found instead, if any.
        found: Option<u64>,
    },
}

impl ReadError {
    /// Whether retrying may succeed (only backend failures).
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Store(err) => err.is_retryable(),
            Self::Snapshot(SnapshotError::Store(err)) => err.is_retryable(),
            Self::Snapshot(SnapshotError::Corrupt { .. } | SnapshotError::Encode { .. })
            | Self::Corrupt { .. }
            | Self::Missing { .. } => false,
        }
    }
}

/// Where a fold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    /// Last seq handed to the fold (the `from - 1` when there was none).
    pub last_seq: u64,
    /// Its chain hash.
    pub last_hash: ChainHash,
    /// Number of events handed to the fold.
    pub events: u64,
}

/// Reads seqs `from..=until` of `stream`, verifying each frame and its link
/// to `prev` (the hash of `from - 1`), and calls `fold` on each envelope in
/// order.
///
/// # Errors
/// [`ReadError::Corrupt`] on the first bad frame, [`ReadError::Missing`]
/// when a seq is absent, store errors.
pub async fn fold<S, F>(
    store: &S,
    stream: &StreamId,
    from: u64,
    prev: ChainHash,
    until: u64,
    mut fold: F,
) -> Result<Folded, ReadError>
where
    S: JournalStore,
    F: FnMut(&Envelope),
{
    let mut next = from;
    let mut prev = prev;
    let mut events = 0u64;
    while next <= until {
        let remaining =
            usize::try_from(until.saturating_sub(next).saturating_add(1)).unwrap_or(usize::MAX);
        let batch = store.read(stream, next, remaining.min(READ_CHUNK)).await?;
        if batch.is_empty() {
            return Err(ReadError::Missing {
                stream: stream.clone(),
                expected: next,
                found: None,
            });
        }
        for (seq, frame) in batch.iter() {
            if seq != next {
                return Err(ReadError::Missing {
                    stream: stream.clone(),
                    expected: next,
                    found: Some(seq),
                });
            }
            let envelope = crate::codec::decode_event(frame, seq, &prev).map_err(|source| {
                ReadError::Corrupt {
                    stream: stream.clone(),
                    seq,
                    source,
                }
            })?;
            fold(&envelope);
            prev = envelope.hash;
            events = events.saturating_add(1);
            next = next.saturating_add(1);
        }
    }
    Ok(Folded {
        last_seq: next.saturating_sub(1),
        last_hash: prev,
        events,
    })
}

/// Reads and verifies seqs `from..=until` into memory (for replay and tests;
/// projections should use [`fold`]).
///
/// # Errors
/// As [`fold`].
pub async fn read_envelopes<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    from: u64,
    prev: ChainHash,
    until: u64,
) -> Result<Vec<Envelope>, ReadError> {
    let mut out = Vec::new();
    fold(store, stream, from, prev, until, |e| out.push(e.clone())).await?;
    Ok(out)
}

/// A projection rebuilt from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The projection, folded up to the head.
    pub state: ClusterState,
    /// Seq of the snapshot it started from, if any.
    pub snapshot_seq: Option<u64>,
    /// Events folded after the snapshot.
    pub folded: u64,
}

/// Rebuilds the projection of `stream`: latest snapshot (if any) plus
/// every event after it up to the current head.
///
/// # Errors
/// As [`fold`]; snapshot errors.
pub async fn load_state<S: JournalStore>(
    store: &S,
    stream: &StreamId,
) -> Result<Loaded, ReadError> {
    let head = store.head(stream).await?;
    let (mut state, snapshot_seq) = match snapshot::load(store, stream).await? {
        Some(snapshot) => (snapshot.state, Some(snapshot.seq)),
        None => (ClusterState::new(), None),
    };
    let folded = fold(
        store,
        stream,
        state.next_seq(),
        state.last_hash,
        head.seq,
        |e| state.apply(e),
    )
    .await?;
    Ok(Loaded {
        state,
        snapshot_seq,
        folded: folded.events,
    })
}

/// Rebuilds the projection of `stream` from seq 1, ignoring any snapshot
/// (to cross-check a snapshot, or when it is suspect).
///
/// # Errors
/// As [`fold`]; [`ReadError::Missing`] when the start was compacted away.
pub async fn load_state_from_start<S: JournalStore>(
    store: &S,
    stream: &StreamId,
) -> Result<ClusterState, ReadError> {
    let head = store.head(stream).await?;
    let mut state = ClusterState::new();
    fold(store, stream, 1, ChainHash::GENESIS, head.seq, |e| {
        state.apply(e)
    })
    .await?;
    Ok(state)
}
