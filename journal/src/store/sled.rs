//! `SledStore`: the local file `JournalStore` on sled.
//!
//! Layout (see `docs/journal-format.md`):
//! - one tree per stream, named `stream/<id>`, key = seq of the first event
//!   of a record as u64 big-endian (so byte order is seq order), value = the
//!   record: the frames of one append, concatenated (frame i is seq key + i);
//! - a `meta` tree with `head/<id>` → `seq u64 BE ‖ hash[32]` and
//!   `snapshot/<id>` → `seq u64 BE ‖ hash[32] ‖ snapshot frame`.
//!
//! Appends run as one sled transaction over the stream tree and `meta`, so
//! the frames and the head move together and the expected-seq check is a
//! real compare-and-swap even with several writers in the process. With
//! [`Durability::Flush`] (the default) every successful append is flushed
//! to disk before it returns: the append is the commit point.

use std::future::{Future, ready};
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use super::{
    EncodedEvent, EncodedSnapshot, FrameBatch, Head, JournalStore, Result, StoreError,
    check_contiguous, check_next,
};
use crate::codec::FRAME_HEADER_LEN;
use crate::ids::{ChainHash, StreamId};

const META_TREE: &str = "meta";
const STREAM_TREE_PREFIX: &str = "stream/";
const HEAD_PREFIX: &str = "head/";
const SNAPSHOT_PREFIX: &str = "snapshot/";
const POSITION_LEN: usize = 8 + ChainHash::LEN;

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Flush after every append, before it returns (the journal contract).
    #[default]
    Flush,
    /// Leave flushing to sled's background thread (every 500 ms): faster,
    /// but a crash loses the last appends. For caches and benchmarks only.
    Background,
}

/// A journal in a sled database directory. Clones share the database.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    meta: Tree,
    durability: Durability,
}

fn backend(context: impl FnOnce() -> String) -> impl FnOnce(sled::Error) -> StoreError {
    move |source| StoreError::Backend {
        context: context(),
        source: Box::new(source),
    }
}

fn head_key(stream: &StreamId) -> String {
    format!("{HEAD_PREFIX}{stream}")
}

fn snapshot_key(stream: &StreamId) -> String {
    format!("{SNAPSHOT_PREFIX}{stream}")
}

fn encode_position(seq: u64, hash: &ChainHash) -> [u8; POSITION_LEN] {
    let mut out = [0u8; POSITION_LEN];
    let (seq_bytes, hash_bytes) = out.split_at_mut(8);
    seq_bytes.copy_from_slice(&seq.to_be_bytes());
    hash_bytes.copy_from_slice(&hash.0);
    out
}

/// Splits `seq ‖ hash ‖ rest`.
fn decode_position(stream: &StreamId, bytes: &[u8]) -> Result<(u64, ChainHash, Vec<u8>)> {
    let corrupt = || StoreError::CorruptMeta {
        stream: stream.clone(),
        what: format!("position record of {} bytes", bytes.len()),
    };
    let seq: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let hash: [u8; 32] = bytes
        .get(8..POSITION_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let rest = bytes.get(POSITION_LEN..).unwrap_or_default().to_vec();
    Ok((u64::from_be_bytes(seq), ChainHash(hash), rest))
}

fn decode_head(stream: &StreamId, bytes: Option<&[u8]>) -> Result<Head> {
    match bytes {
        None => Ok(Head::EMPTY),
        Some(bytes) if bytes.len() == POSITION_LEN => {
            let (seq, hash, _) = decode_position(stream, bytes)?;
            Ok(Head { seq, hash })
        }
        Some(bytes) => Err(StoreError::CorruptMeta {
            stream: stream.clone(),
            what: format!("head record of {} bytes", bytes.len()),
        }),
    }
}

fn seq_of_key(stream: &StreamId, key: &[u8]) -> Result<u64> {
    let raw: [u8; 8] = key.try_into().map_err(|_| StoreError::CorruptMeta {
        stream: stream.clone(),
        what: format!("event key of {} bytes", key.len()),
    })?;
    Ok(u64::from_be_bytes(raw))
}

/// How long `open` waits for a directory lock still held by a handle being
/// dropped in this process (sled's background threads release it shortly
/// after the last `Db` goes away).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens `config`, retrying while sled reports the directory lock as taken,
/// up to [`LOCK_WAIT`]. A lock held by another live process is reported
/// after that wait, with sled's message naming the directory.
fn open_waiting_for_lock(config: &sled::Config) -> sled::Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Err(sled::Error::Io(err))
                if err.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Splits a stored record — the frames of one append, concatenated — into
/// `(seq, frame)` pairs, the first frame carrying `first_seq`.
///
/// Only the length field of each frame header is read. When a length runs
/// past the end of the record (a torn write, or a damaged length), the rest
/// of the record is returned as one frame so the codec reports the problem
/// at that seq; nothing is ever skipped silently. `limit` is the key of the
/// next record: a record can only hold seqs below it, so when damage makes
/// the bytes look like more frames than that, the frame at `limit - 1` takes
/// the rest — the seq labels never collide with the next record's.
fn split_record(first_seq: u64, record: &[u8], limit: Option<u64>) -> Vec<(u64, &[u8])> {
    let mut frames = Vec::with_capacity(record.len() / 100 + 1);
    let mut rest = record;
    let mut seq = first_seq;
    while !rest.is_empty() {
        let last_allowed = limit.is_some_and(|limit| seq.saturating_add(1) >= limit);
        let declared = rest
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_le_bytes(b) as usize);
        let end = declared
            .map(|len| FRAME_HEADER_LEN.saturating_add(len))
            .filter(|end| *end <= rest.len() && !last_allowed)
            .unwrap_or(rest.len());
        let Some((frame, tail)) = rest.split_at_checked(end) else {
            break;
        };
        frames.push((seq, frame));
        rest = tail;
        seq = seq.saturating_add(1);
    }
    frames
}

/// The seq bound of a record starting at `first` whose successor starts at
/// `next`: the last record below the head ends at the head. A record wholly
/// beyond the head (which verify reports) is left unbounded.
fn bounded_by_head(first: u64, next: Option<u64>, head: Head) -> Option<u64> {
    next.or_else(|| (first < head.next_seq()).then_some(head.next_seq()))
}

/// Concatenates frames into one record.
fn join_frames<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut record = Vec::new();
    for frame in frames {
        record.extend_from_slice(frame);
    }
    record
}

/// Unwraps a transaction result, keeping our own abort errors as they are.
fn finish<T>(
    stream: &StreamId,
    op: &str,
    result: std::result::Result<T, TransactionError<StoreError>>,
) -> Result<T> {
    match result {
        Ok(value) => Ok(value),
        Err(TransactionError::Abort(err)) => Err(err),
        Err(TransactionError::Storage(err)) => {
            Err(backend(|| format!("{op} on stream {stream}"))(err))
        }
    }
}

/// Reads the head inside a transaction.
fn tx_head(
    meta: &TransactionalTree,
    stream: &StreamId,
) -> std::result::Result<Head, ConflictableTransactionError<StoreError>> {
    let raw = meta.get(head_key(stream))?;
    decode_head(stream, raw.as_deref()).map_err(ConflictableTransactionError::Abort)
}

impl SledStore {
    /// Opens (creating if needed) the journal in directory `dir`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when sled cannot open the directory (in use
    /// by another process, permissions, corrupt files).
    pub fn open(dir: impl AsRef<Path>, durability: Durability) -> Result<Self> {
        let dir = dir.as_ref();
        let config = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // With `Flush` every append flushes itself: sled's periodic
            // flusher thread would only add a holder of the directory lock.
            .flush_every_ms(match durability {
                Durability::Flush => None,
                Durability::Background => Some(500),
            });
        let db = open_waiting_for_lock(&config).map_err(backend(|| {
            format!("opening sled journal at {}", dir.display())
        }))?;
        let meta = db
            .open_tree(META_TREE)
            .map_err(backend(|| "opening the meta tree".to_owned()))?;
        Ok(Self {
            db,
            meta,
            durability,
        })
    }

    /// Flushes everything written so far to disk.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    pub fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map(drop)
            .map_err(backend(|| "flushing the sled journal".to_owned()))
    }

    /// Bytes sled currently uses on disk.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failure.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db
            .size_on_disk()
            .map_err(backend(|| "measuring the sled journal".to_owned()))
    }

    fn tree(&self, stream: &StreamId) -> Result<Tree> {
        self.db
            .open_tree(format!("{STREAM_TREE_PREFIX}{stream}"))
            .map_err(backend(|| format!("opening the tree of stream {stream}")))
    }

    fn durable(&self, stream: &StreamId) -> Result<()> {
        match self.durability {
            Durability::Flush => self
                .db
                .flush()
                .map(drop)
                .map_err(backend(|| format!("flushing stream {stream}"))),
            Durability::Background => Ok(()),
        }
    }

    /// Replaces (or with `None` removes) the stored bytes of `seq` without
    /// any check, to simulate corruption in tests. Not for production use.
    ///
    /// # Errors
    /// Backend errors.
    #[doc(hidden)]
    pub fn raw_overwrite(&self, stream: &StreamId, seq: u64, bytes: Option<Vec<u8>>) -> Result<()> {
        self.isolate_and_replace(stream, seq, bytes)
    }

    /// The stored bytes of `seq`, unchecked (tests).
    ///
    /// # Errors
    /// Backend errors.
    #[doc(hidden)]
    pub fn raw_get(&self, stream: &StreamId, seq: u64) -> Result<Option<Vec<u8>>> {
        let tree = self.tree(stream)?;
        let Some((first, record)) = self.record_containing(&tree, stream, seq)? else {
            return Ok(None);
        };
        let limit = self.record_limit(&tree, stream, first)?;
        Ok(split_record(first, &record, limit)
            .into_iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, frame)| frame.to_vec()))
    }

    /// Replaces the stored snapshot frame without checks (tests).
    ///
    /// # Errors
    /// Backend errors.
    #[doc(hidden)]
    pub fn raw_overwrite_snapshot(&self, stream: &StreamId, frame: Vec<u8>) -> Result<()> {
        let key = snapshot_key(stream);
        let Some(raw) = self
            .meta
            .get(&key)
            .map_err(backend(|| "raw snapshot read".to_owned()))?
        else {
            return Ok(());
        };
        let mut record = raw.get(..POSITION_LEN).unwrap_or_default().to_vec();
        record.extend_from_slice(&frame);
        self.meta
            .insert(key, record)
            .map(drop)
            .map_err(backend(|| "raw snapshot write".to_owned()))
    }

    fn append_now(
        &self,
        stream: &StreamId,
        expected_next: u64,
        events: &[EncodedEvent],
    ) -> Result<Head> {
        check_contiguous(stream, expected_next, events)?;
        let tree = self.tree(stream)?;
        let key = head_key(stream);
        let record = join_frames(events.iter().map(|e| e.frame.as_slice()));
        let result = (&tree, &self.meta).transaction(|(tree, meta)| {
            let head = tx_head(meta, stream)?;
            check_next(stream, head, expected_next).map_err(ConflictableTransactionError::Abort)?;
            let Some(last) = events.last() else {
                return Ok((head, false));
            };
            // One record per append, keyed by its first seq: a batch of 256
            // events is one tree insert instead of 256.
            tree.insert(&expected_next.to_be_bytes(), record.as_slice())?;
            meta.insert(key.as_bytes(), &encode_position(last.seq, &last.hash)[..])?;
            Ok((
                Head {
                    seq: last.seq,
                    hash: last.hash,
                },
                true,
            ))
        });
        let (head, wrote) = finish(stream, "append", result)?;
        if wrote {
            self.durable(stream)?;
        }
        Ok(head)
    }

    fn read_now(&self, stream: &StreamId, from: u64, max: usize) -> Result<FrameBatch> {
        let tree = self.tree(stream)?;
        let mut batch = FrameBatch::with_capacity(max.min(4096));
        if max == 0 {
            return Ok(batch);
        }
        let head = self.head_now(stream)?;
        let start = self
            .record_containing(&tree, stream, from)?
            .map_or(from, |(first, _)| first);
        let mut records = tree.range(start.to_be_bytes()..).peekable();
        while let Some(item) = records.next() {
            let context = || format!("reading stream {stream} from seq {from}");
            let (key, record) = item.map_err(backend(context))?;
            let first = seq_of_key(stream, &key)?;
            let next = match records.peek() {
                Some(Ok((next, _))) => Some(seq_of_key(stream, next)?),
                _ => None,
            };
            let limit = bounded_by_head(first, next, head);
            for (seq, frame) in split_record(first, &record, limit) {
                if seq >= from {
                    batch.push(seq, frame);
                    if batch.len() >= max {
                        return Ok(batch);
                    }
                }
            }
        }
        Ok(batch)
    }

    /// The record whose seq range starts at or before `seq` (the one that
    /// holds `seq`, if any does), as `(first seq, bytes)`.
    fn record_containing(
        &self,
        tree: &Tree,
        stream: &StreamId,
        seq: u64,
    ) -> Result<Option<(u64, sled::IVec)>> {
        match tree.range(..=seq.to_be_bytes()).next_back() {
            None => Ok(None),
            Some(item) => {
                let (key, record) =
                    item.map_err(backend(|| format!("locating seq {seq} of stream {stream}")))?;
                Ok(Some((seq_of_key(stream, &key)?, record)))
            }
        }
    }

    /// The exclusive upper seq bound of the record starting at `first`: the
    /// key of the next record, or for the last record the head's next seq.
    fn record_limit(&self, tree: &Tree, stream: &StreamId, first: u64) -> Result<Option<u64>> {
        let after = (
            std::ops::Bound::Excluded(first.to_be_bytes()),
            std::ops::Bound::Unbounded,
        );
        let next = match tree.range(after).next() {
            None => None,
            Some(item) => {
                let (key, _) = item.map_err(backend(|| format!("scanning stream {stream}")))?;
                Some(seq_of_key(stream, &key)?)
            }
        };
        Ok(bounded_by_head(first, next, self.head_now(stream)?))
    }

    /// Replaces the record holding `seq` by up to three records — the frames
    /// before it, `replacement` (if any) on its own, and the frames after
    /// it — so each keeps its seq whatever the replacement's length.
    fn isolate_and_replace(
        &self,
        stream: &StreamId,
        seq: u64,
        replacement: Option<Vec<u8>>,
    ) -> Result<()> {
        let tree = self.tree(stream)?;
        let Some((first, record)) = self.record_containing(&tree, stream, seq)? else {
            return Ok(());
        };
        let limit = self.record_limit(&tree, stream, first)?;
        let frames = split_record(first, &record, limit);
        if !frames.iter().any(|(s, _)| *s == seq) {
            return Ok(());
        }
        let before = join_frames(frames.iter().filter(|(s, _)| *s < seq).map(|(_, f)| *f));
        let after = join_frames(frames.iter().filter(|(s, _)| *s > seq).map(|(_, f)| *f));
        let mut batch = sled::Batch::default();
        batch.remove(&first.to_be_bytes());
        if !before.is_empty() {
            batch.insert(&first.to_be_bytes(), before);
        }
        if let Some(bytes) = replacement {
            batch.insert(&seq.to_be_bytes(), bytes);
        }
        if !after.is_empty() {
            batch.insert(&seq.saturating_add(1).to_be_bytes(), after);
        }
        tree.apply_batch(batch)
            .map_err(backend(|| format!("raw overwrite on {stream}")))
    }

    fn head_now(&self, stream: &StreamId) -> Result<Head> {
        let raw = self
            .meta
            .get(head_key(stream))
            .map_err(backend(|| format!("reading the head of {stream}")))?;
        decode_head(stream, raw.as_deref())
    }

    fn put_snapshot_now(&self, stream: &StreamId, snapshot: &EncodedSnapshot) -> Result<()> {
        let mut record = encode_position(snapshot.seq, &snapshot.hash).to_vec();
        record.extend_from_slice(&snapshot.frame);
        let key = snapshot_key(stream);
        let result = self.meta.transaction(|meta| {
            let head = tx_head(meta, stream)?;
            if snapshot.seq > head.seq {
                return Err(ConflictableTransactionError::Abort(
                    StoreError::SnapshotBeyondHead {
                        stream: stream.clone(),
                        seq: snapshot.seq,
                        head: head.seq,
                    },
                ));
            }
            if let Some(stored) = meta.get(key.as_bytes())? {
                let (stored, _, _) = decode_position(stream, &stored)
                    .map_err(ConflictableTransactionError::Abort)?;
                if stored > snapshot.seq {
                    return Err(ConflictableTransactionError::Abort(
                        StoreError::SnapshotRegression {
                            stream: stream.clone(),
                            seq: snapshot.seq,
                            stored,
                        },
                    ));
                }
            }
            meta.insert(key.as_bytes(), record.as_slice())?;
            Ok(())
        });
        finish(stream, "put_snapshot", result)?;
        self.durable(stream)
    }

    fn get_snapshot_now(&self, stream: &StreamId) -> Result<Option<EncodedSnapshot>> {
        let raw = self
            .meta
            .get(snapshot_key(stream))
            .map_err(backend(|| format!("reading the snapshot of {stream}")))?;
        let Some(raw) = raw else { return Ok(None) };
        let (seq, hash, frame) = decode_position(stream, &raw)?;
        Ok(Some(EncodedSnapshot { seq, hash, frame }))
    }

    fn compact_now(&self, stream: &StreamId, before: u64) -> Result<u64> {
        // Snapshots only move forward (put_snapshot refuses regressions), so
        // checking once before deleting cannot be invalidated meanwhile.
        let covered = self.get_snapshot_now(stream)?.map_or(0, |s| s.seq);
        if before > covered.saturating_add(1) {
            return Err(StoreError::CompactionBeyondSnapshot {
                stream: stream.clone(),
                before,
                snapshot: covered,
            });
        }
        let tree = self.tree(stream)?;
        let mut batch = sled::Batch::default();
        let mut removed = 0u64;
        for item in tree.range(..before.to_be_bytes()) {
            let (key, record) = item.map_err(backend(|| format!("compacting stream {stream}")))?;
            let first = seq_of_key(stream, &key)?;
            let limit = self.record_limit(&tree, stream, first)?;
            let frames = split_record(first, &record, limit);
            let gone = frames.iter().filter(|(seq, _)| *seq < before).count();
            removed = removed.saturating_add(gone as u64);
            batch.remove(key);
            // A record straddling `before` keeps its newer frames, re-keyed
            // at `before`, so compaction removes exactly the events asked.
            let kept = join_frames(
                frames
                    .iter()
                    .filter(|(seq, _)| *seq >= before)
                    .map(|(_, f)| *f),
            );
            if !kept.is_empty() {
                batch.insert(&before.to_be_bytes(), kept);
            }
        }
        tree.apply_batch(batch)
            .map_err(backend(|| format!("compacting stream {stream}")))?;
        self.durable(stream)?;
        Ok(removed)
    }

    fn list_streams_now(&self) -> Result<Vec<StreamId>> {
        let mut out = Vec::new();
        for key in self.meta.scan_prefix(HEAD_PREFIX).keys() {
            let key = key.map_err(backend(|| "listing streams".to_owned()))?;
            let name = key.get(HEAD_PREFIX.len()..).unwrap_or_default();
            // Keys were written from valid StreamIds; skip anything else
            // rather than failing the whole listing.
            if let Some(stream) = std::str::from_utf8(name)
                .ok()
                .and_then(|n| StreamId::new(n).ok())
            {
                out.push(stream);
            }
        }
        Ok(out)
    }

    fn remove_last_now(&self, stream: &StreamId, seq: u64, new_head: Head) -> Result<()> {
        let tree = self.tree(stream)?;
        // The record holding the head; rewritten without its last frame
        // inside the transaction, which re-checks the head.
        let located = match self.record_containing(&tree, stream, seq)? {
            Some((first, _)) => Some((first, self.record_limit(&tree, stream, first)?)),
            None => None,
        };
        let hkey = head_key(stream);
        let skey = snapshot_key(stream);
        let result = (&tree, &self.meta).transaction(|(tree, meta)| {
            let head = tx_head(meta, stream)?;
            if head.seq != seq || seq == 0 || new_head.seq.saturating_add(1) != seq {
                return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                    stream: stream.clone(),
                    expected: seq.saturating_add(1),
                    actual: head.next_seq(),
                }));
            }
            if let Some(raw) = meta.get(skey.as_bytes())? {
                let (covered, _, _) =
                    decode_position(stream, &raw).map_err(ConflictableTransactionError::Abort)?;
                if covered >= seq {
                    return Err(ConflictableTransactionError::Abort(
                        StoreError::TruncateBelowSnapshot {
                            stream: stream.clone(),
                            seq,
                            snapshot: covered,
                        },
                    ));
                }
            }
            if let Some((first, limit)) = located {
                let key = first.to_be_bytes();
                let record = tree.get(key)?.unwrap_or_default();
                let kept = join_frames(
                    split_record(first, &record, limit)
                        .iter()
                        .filter(|(s, _)| *s < seq)
                        .map(|(_, f)| *f),
                );
                if kept.is_empty() {
                    tree.remove(&key)?;
                } else {
                    tree.insert(&key, kept)?;
                }
            }
            meta.insert(
                hkey.as_bytes(),
                &encode_position(new_head.seq, &new_head.hash)[..],
            )?;
            Ok(())
        });
        finish(stream, "remove_last", result)?;
        self.durable(stream)
    }
}

impl JournalStore for SledStore {
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
        ready(self.read_now(stream, from, max))
    }

    fn head(&self, stream: &StreamId) -> impl Future<Output = Result<Head>> + Send {
        ready(self.head_now(stream))
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
        ready(self.get_snapshot_now(stream))
    }

    fn compact(&self, stream: &StreamId, before: u64) -> impl Future<Output = Result<u64>> + Send {
        ready(self.compact_now(stream, before))
    }

    fn list_streams(&self) -> impl Future<Output = Result<Vec<StreamId>>> + Send {
        ready(self.list_streams_now())
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

#[cfg(test)]
#[path = "sled_tests.rs"]
mod tests;
