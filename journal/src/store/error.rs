//! Errors of `JournalStore` backends.

use crate::ids::StreamId;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream's next seq is not the one the writer expected: another
    /// writer appended first, or this writer's head is stale. Retryable
    /// after reloading the head.
    #[error(
        "stream {stream}: append conflict: expected next seq {expected}, stream is at next seq {actual}"
    )]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// The seq the writer expected to append at.
        expected: u64,
        /// The seq the stream actually expects next.
        actual: u64,
    },
    /// A batch's seqs are not consecutive from the expected next seq (a bug
    /// in the caller, not a race).
    #[error("stream {stream}: batch not contiguous: expected seq {expected}, found {found}")]
    NonContiguousBatch {
        /// The stream.
        stream: StreamId,
        /// The seq that should have come next in the batch.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// Compaction would remove events no snapshot covers.
    #[error(
        "stream {stream}: cannot compact before seq {before}: snapshot covers up to seq {snapshot}"
    )]
    CompactionBeyondSnapshot {
        /// The stream.
        stream: StreamId,
        /// Requested compaction bound.
        before: u64,
        /// Seq covered by the stored snapshot (0 when there is none).
        snapshot: u64,
    },
    /// A snapshot claims a seq past the head.
    #[error("stream {stream}: snapshot at seq {seq} is beyond the head at seq {head}")]
    SnapshotBeyondHead {
        /// The stream.
        stream: StreamId,
        /// The snapshot's seq.
        seq: u64,
        /// The stream's head seq.
        head: u64,
    },
    /// A snapshot older than the stored one was offered.
    #[error("stream {stream}: snapshot at seq {seq} is older than the stored one at seq {stored}")]
    SnapshotRegression {
        /// The stream.
        stream: StreamId,
        /// The offered snapshot's seq.
        seq: u64,
        /// The stored snapshot's seq.
        stored: u64,
    },
    /// Removing the last event would cut into what the snapshot covers.
    #[error("stream {stream}: cannot remove seq {seq}: the snapshot covers up to seq {snapshot}")]
    TruncateBelowSnapshot {
        /// The stream.
        stream: StreamId,
        /// The seq to remove.
        seq: u64,
        /// The snapshot's seq.
        snapshot: u64,
    },
    /// Store metadata (head or snapshot record) is unreadable. Fatal.
    #[error("stream {stream}: corrupt store metadata: {what}")]
    CorruptMeta {
        /// The stream.
        stream: StreamId,
        /// What is wrong.
        what: String,
    },
    /// The backend failed (I/O, database, API). Usually retryable.
    #[error("journal backend failed during {context}")]
    Backend {
        /// The operation and stream being worked on.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether retrying (after reloading the head for a conflict) may succeed.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Conflict { .. } | Self::Backend { .. } => true,
            Self::NonContiguousBatch { .. }
            | Self::CompactionBeyondSnapshot { .. }
            | Self::SnapshotBeyondHead { .. }
            | Self::SnapshotRegression { .. }
            | Self::TruncateBelowSnapshot { .. }
            | Self::CorruptMeta { .. } => false,
        }
    }

    /// A short stable label for metrics.
    #[must_use]
    pub const fn metric_label(&self) -> &'static str {
        match self {
            Self::Conflict { .. } => "conflict",
            Self::NonContiguousBatch { .. } => "non_contiguous_batch",
            Self::CompactionBeyondSnapshot { .. } => "compaction_beyond_snapshot",
            Self::SnapshotBeyondHead { .. } => "snapshot_beyond_head",
            Self::SnapshotRegression { .. } => "snapshot_regression",
            Self::TruncateBelowSnapshot { .. } => "truncate_below_snapshot",
            Self::CorruptMeta { .. } => "corrupt_meta",
            Self::Backend { .. } => "backend",
        }
    }
}
