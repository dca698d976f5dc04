//! Snapshots: a `ClusterState` encoded at the seq it has folded up to.
//!
//! A snapshot is an optimisation, never the truth: it can always be
//! rebuilt by folding the journal from seq 1 (as long as nothing was
//! compacted), and it is only trusted if its frame checks out.

use crate::codec::{self, CodecError, StateDigest};
use crate::ids::{ChainHash, StreamId};
use crate::projection::ClusterState;
use crate::store::{EncodedSnapshot, JournalStore, StoreError};

/// A decoded snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Last seq folded into `state`.
    pub seq: u64,
    /// Chain hash of that event.
    pub hash: ChainHash,
    /// The projection.
    pub state: ClusterState,
    /// The digest of the state as stored.
    pub digest: StateDigest,
}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored snapshot frame is corrupt or disagrees with its record.
    #[error("stream {stream}: corrupt snapshot at seq {seq}")]
    Corrupt {
        /// The stream.
        stream: StreamId,
        /// The seq the store says the snapshot covers.
        seq: u64,
        /// What is wrong.
        #[source]
        source: CodecError,
    },
    /// The state could not be encoded.
    #[error("stream {stream}: cannot encode snapshot at seq {seq}")]
    Encode {
        /// The stream.
        stream: StreamId,
        /// The state's last seq.
        seq: u64,
        /// The codec's reason.
        #[source]
        source: CodecError,
    },
}

/// Encodes `state` as a snapshot at its `last_seq` (pure), with the
/// digest it carries.
///
/// # Errors
/// [`CodecError`] when the state cannot be encoded.
pub fn encode(state: &ClusterState) -> Result<(EncodedSnapshot, StateDigest), CodecError> {
    codec::encode_snapshot(state.last_seq, state.last_hash, state)
}

/// Decodes a stored snapshot, checking that the frame agrees with the
/// store's record of which seq and hash it covers.
///
/// # Errors
/// [`CodecError`] for a corrupt frame; [`CodecError::HashMismatch`] when
/// the frame and the record disagree.
pub fn decode(stored: &EncodedSnapshot) -> Result<Snapshot, CodecError> {
    let (seq, hash, digest, state): (u64, ChainHash, StateDigest, ClusterState) =
        codec::decode_snapshot(&stored.frame)?;
    if seq != stored.seq {
        return Err(CodecError::SeqMismatch {
            expected: stored.seq,
            found: seq,
        });
    }
    if hash != stored.hash || state.last_hash != hash || state.last_seq != seq {
        return Err(CodecError::HashMismatch {
            stored: stored.hash,
            computed: hash,
        });
    }
    Ok(Snapshot {
        seq,
        hash,
        state,
        digest,
    })
}

/// Saves `state` as the snapshot of `stream`; returns it with the
/// digest of its state (which the writer journals in `SnapshotRecorded`).
///
/// # Errors
/// Encoding and store errors.
pub async fn save<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    state: &ClusterState,
) -> Result<(EncodedSnapshot, StateDigest), SnapshotError> {
    let (encoded, digest) = encode(state).map_err(|source| SnapshotError::Encode {
        stream: stream.clone(),
        seq: state.last_seq,
        source,
    })?;
    store.put_snapshot(stream, &encoded).await?;
    Ok((encoded, digest))
}

/// Loads and decodes the snapshot of `stream`, if any.
///
/// # Errors
/// Store errors; [`SnapshotError::Corrupt`].
pub async fn load<S: JournalStore>(
    store: &S,
    stream: &StreamId,
) -> Result<Option<Snapshot>, SnapshotError> {
    let Some(stored) = store.get_snapshot(stream).await? else {
        return Ok(None);
    };
    decode(&stored)
        .map(Some)
        .map_err(|source| SnapshotError::Corrupt {
            stream: stream.clone(),
            seq: stored.seq,
            source,
        })
}
