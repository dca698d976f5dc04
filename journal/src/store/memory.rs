//! `MemoryStore`: an in-process `JournalStore` for tests and tools.
//!
//! Clones share the same data, so "reopening" is taking another clone.
//! Everything happens under one mutex; futures complete immediately.

use std::collections::BTreeMap;
use std::future::Future;
use std::future::ready;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    EncodedEvent, EncodedSnapshot, FrameBatch, Head, JournalStore, Result, StoreError,
    check_contiguous, check_next,
};
use crate::ids::StreamId;

#[derive(Debug, Default)]
struct StreamData {
    frames: BTreeMap<u64, Vec<u8>>,
    head: Option<Head>,
    snapshot: Option<EncodedSnapshot>,
}

/// An in-memory journal; clones share storage.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    streams: Arc<Mutex<BTreeMap<StreamId, StreamData>>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<StreamId, StreamData>> {
        // Every mutation below is completed before the guard drops, so a
        // panic elsewhere while holding it cannot leave half an append.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces (or with `None` removes) the stored bytes of `seq` without
    /// any check, to simulate corruption in tests. Not for production use.
    #[doc(hidden)]
    pub fn raw_overwrite(&self, stream: &StreamId, seq: u64, bytes: Option<Vec<u8>>) {
        let mut streams = self.lock();
        let data = streams.entry(stream.clone()).or_default();
        match bytes {
            Some(bytes) => data.frames.insert(seq, bytes),
            None => data.frames.remove(&seq),
        };
    }

    /// The stored bytes of `seq`, unchecked (tests).
    #[doc(hidden)]
    #[must_use]
    pub fn raw_get(&self, stream: &StreamId, seq: u64) -> Option<Vec<u8>> {
        self.lock()
            .get(stream)
            .and_then(|d| d.frames.get(&seq).cloned())
    }

    /// Replaces the stored snapshot frame without checks (tests).
    #[doc(hidden)]
    pub fn raw_overwrite_snapshot(&self, stream: &StreamId, frame: Vec<u8>) {
        if let Some(snapshot) = self
            .lock()
            .get_mut(stream)
            .and_then(|d| d.snapshot.as_mut())
        {
            snapshot.frame = frame;
        }
    }

    fn append_now(
        &self,
        stream: &StreamId,
        expected_next: u64,
        events: &[EncodedEvent],
    ) -> Result<Head> {
        check_contiguous(stream, expected_next, events)?;
        let mut streams = self.lock();
        let data = streams.entry(stream.clone()).or_default();
        let head = data.head.unwrap_or(Head::EMPTY);
        check_next(stream, head, expected_next)?;
        let Some(last) = events.last() else {
            return Ok(head);
        };
        for event in events {
            data.frames.insert(event.seq, event.frame.clone());
        }
        let head = Head {
            seq: last.seq,
            hash: last.hash,
        };
        data.head = Some(head);
        Ok(head)
    }

    fn read_now(&self, stream: &StreamId, from: u64, max: usize) -> FrameBatch {
        let streams = self.lock();
        let Some(data) = streams.get(stream) else {
            return FrameBatch::default();
        };
        let mut batch = FrameBatch::with_capacity(max.min(data.frames.len()));
        for (seq, frame) in data.frames.range(from..).take(max) {
            batch.push(*seq, frame);
        }
        batch
    }

    fn put_snapshot_now(&self, stream: &StreamId, snapshot: &EncodedSnapshot) -> Result<()> {
        let mut streams = self.lock();
        let data = streams.entry(stream.clone()).or_default();
        let head = data.head.unwrap_or(Head::EMPTY);
        if snapshot.seq > head.seq {
            return Err(StoreError::SnapshotBeyondHead {
                stream: stream.clone(),
                seq: snapshot.seq,
                head: head.seq,
            });
        }
        if let Some(stored) = data.snapshot.as_ref().filter(|s| s.seq > snapshot.seq) {
            return Err(StoreError::SnapshotRegression {
                stream: stream.clone(),
                seq: snapshot.seq,
                stored: stored.seq,
            });
        }
        data.snapshot = Some(snapshot.clone());
        Ok(())
    }

    fn compact_now(&self, stream: &StreamId, before: u64) -> Result<u64> {
        let mut streams = self.lock();
        let Some(data) = streams.get_mut(stream) else {
            return Ok(0);
        };
        let covered = data.snapshot.as_ref().map_or(0, |s| s.seq);
        if before > covered.saturating_add(1) {
            return Err(StoreError::CompactionBeyondSnapshot {
                stream: stream.clone(),
                before,
                snapshot: covered,
            });
        }
        let kept = data.frames.split_off(&before);
        let removed = std::mem::replace(&mut data.frames, kept).len();
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }

    fn remove_last_now(&self, stream: &StreamId, seq: u64, new_head: Head) -> Result<()> {
        let mut streams = self.lock();
        let data = streams.entry(stream.clone()).or_default();
        let head = data.head.unwrap_or(Head::EMPTY);
        if head.seq != seq || seq == 0 || new_head.seq.saturating_add(1) != seq {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected: seq.saturating_add(1),
                actual: head.next_seq(),
            });
        }
        if let Some(snapshot) = data.snapshot.as_ref().filter(|s| s.seq >= seq) {
            return Err(StoreError::TruncateBelowSnapshot {
                stream: stream.clone(),
                seq,
                snapshot: snapshot.seq,
            });
        }
        data.frames.remove(&seq);
        data.head = Some(new_head);
        Ok(())
    }
}

impl JournalStore for MemoryStore {
    fn append(
        &self,
        stream: &StreamId,
        expected_next: u64,
        events: &[EncodedEvent],
    ) -> impl Future<Output = Result<Head>> + Send {
        ready(self.append_now(stream, expected_next, events))
    }

    fn read(
        &self,
        stream: &StreamId,
        from: u64,
        max: usize,
    ) -> impl Future<Output = Result<FrameBatch>> + Send {
        ready(Ok(self.read_now(stream, from, max)))
    }

    fn head(&self, stream: &StreamId) -> impl Future<Output = Result<Head>> + Send {
        ready(Ok(self
            .lock()
            .get(stream)
            .and_then(|d| d.head)
            .unwrap_or(Head::EMPTY)))
    }

    fn put_snapshot(
        &self,
        stream: &StreamId,
        snapshot: &EncodedSnapshot,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.put_snapshot_now(stream, snapshot))
    }

    fn get_snapshot(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<EncodedSnapshot>>> + Send {
        ready(Ok(self.lock().get(stream).and_then(|d| d.snapshot.clone())))
    }

    fn compact(&self, stream: &StreamId, before: u64) -> impl Future<Output = Result<u64>> + Send {
        ready(self.compact_now(stream, before))
    }

    fn list_streams(&self) -> impl Future<Output = Result<Vec<StreamId>>> + Send {
        ready(Ok(self
            .lock()
            .iter()
            .filter(|(_, d)| d.head.is_some())
            .map(|(s, _)| s.clone())
            .collect()))
    }

    fn remove_last(
        &self,
        stream: &StreamId,
        seq: u64,
        new_head: Head,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.remove_last_now(stream, seq, new_head))
    }
}
