//! `StreamWriter`: turns event bodies into chained envelopes and appends
//! them at the head it tracks.
//!
//! The writer is the shell around the store: it reads the clock and draws
//! UUIDs (through [`NewEvent::now`]) so nothing downstream has to. Its head
//! only moves after a successful append; on [`StoreError::Conflict`]
//! another writer got there first — [`StreamWriter::reload`] and decide
//! again, never blindly retry the same batch.

use uuid::Uuid;

use crate::codec::{self, CodecError};
use crate::envelope::Envelope;
use crate::event::Event;
use crate::ids::StreamId;
use crate::store::{EncodedEvent, Head, JournalStore, StoreError};
use crate::time::Timestamp;

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The store refused or failed (see [`StoreError::is_retryable`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be encoded (too large, unrepresentable).
    #[error("stream {stream}: cannot encode event seq {seq}")]
    Encode {
        /// The stream.
        stream: StreamId,
        /// Seq the event would have had.
        seq: u64,
        /// The codec's reason.
        #[source]
        source: CodecError,
    },
}

impl WriterError {
    /// Whether reloading the head and retrying may succeed.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Store(err) => err.is_retryable(),
            Self::Encode { .. } => false,
        }
    }
}

/// An event to append, before it has a seq and a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its UUID v7.
    pub id: Uuid,
    /// Its timestamp.
    pub at: Timestamp,
    /// The event that caused it.
    pub cause: Option<Uuid>,
    /// The fact.
    pub body: Event,
}

impl NewEvent {
    /// `body` stamped with a fresh UUID v7 and the current time.
    #[must_use]
    pub fn now(body: Event) -> Self {
        Self {
            id: Uuid::now_v7(),
            at: Timestamp::now(),
            cause: None,
            body,
        }
    }

    /// Sets the causing event.
    #[must_use]
    pub const fn caused_by(mut self, cause: Uuid) -> Self {
        self.cause = Some(cause);
        self
    }
}

/// Builds the envelopes and frames for `events` continuing from `head`,
/// without touching any store (pure).
///
/// # Errors
/// [`WriterError::Encode`] when an event cannot be encoded.
pub fn encode_batch(
    stream: &StreamId,
    head: Head,
    epoch: u64,
    events: Vec<NewEvent>,
) -> Result<(Vec<Envelope>, Vec<EncodedEvent>), WriterError> {
    let mut envelopes = Vec::with_capacity(events.len());
    let mut encoded = Vec::with_capacity(events.len());
    let mut prev = head.hash;
    let mut seq = head.seq;
    for event in events {
        seq = seq.saturating_add(1);
        let mut envelope = Envelope {
            seq,
            id: event.id,
            at: event.at,
            cause: event.cause,
            epoch,
            body: event.body,
            prev,
            hash: prev,
        };
        let frame = codec::encode_event(&envelope).map_err(|source| WriterError::Encode {
            stream: stream.clone(),
            seq,
            source,
        })?;
        envelope.hash = frame.hash;
        prev = frame.hash;
        envelopes.push(envelope);
        encoded.push(frame);
    }
    Ok((envelopes, encoded))
}

/// Appends to one stream, tracking its head.
#[derive(Debug, Clone)]
pub struct StreamWriter<S> {
    store: S,
    stream: StreamId,
    head: Head,
    epoch: u64,
}

impl<S: JournalStore> StreamWriter<S> {
    /// A writer for `stream` stamping `epoch` (the leadership epoch) on
    /// every envelope, starting from the store's current head.
    ///
    /// # Errors
    /// Store errors while reading the head.
    pub async fn open(store: S, stream: StreamId, epoch: u64) -> Result<Self, WriterError> {
        let head = store.head(&stream).await?;
        Ok(Self {
            store,
            stream,
            head,
            epoch,
        })
    }

    /// The head as of the last append or reload.
    #[must_use]
    pub const fn head(&self) -> Head {
        self.head
    }

    /// The stream written to.
    #[must_use]
    pub const fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The store written to.
    #[must_use]
    pub const fn store(&self) -> &S {
        &self.store
    }

    /// Changes the epoch stamped on later envelopes (after a new Lease term).
    pub const fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Re-reads the head from the store (after a conflict).
    ///
    /// # Errors
    /// Store errors.
    pub async fn reload(&mut self) -> Result<Head, WriterError> {
        self.head = self.store.head(&self.stream).await?;
        Ok(self.head)
    }

    /// Appends `events` atomically after the tracked head and returns their
    /// envelopes (to fold into the projection).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] (wrapped) when the stream moved since the
    /// last append or reload; encode and store errors. On error the head
    /// does not move.
    pub async fn append(&mut self, events: Vec<NewEvent>) -> Result<Vec<Envelope>, WriterError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (envelopes, encoded) = encode_batch(&self.stream, self.head, self.epoch, events)?;
        self.head = self
            .store
            .append(&self.stream, self.head.next_seq(), &encoded)
            .await?;
        Ok(envelopes)
    }

    /// Appends one event.
    ///
    /// # Errors
    /// As [`StreamWriter::append`].
    pub async fn append_one(&mut self, event: NewEvent) -> Result<Envelope, WriterError> {
        let seq = self.head.next_seq();
        let mut envelopes = self.append(vec![event]).await?;
        envelopes
            .pop()
            .ok_or(WriterError::Store(StoreError::NonContiguousBatch {
                stream: self.stream.clone(),
                expected: seq,
                found: 0,
            }))
    }
}
