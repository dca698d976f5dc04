//! `SledStore`: the local file `JournalStore` on sled.
//!
//! Layout (see `docs/journal-format.md`):
//! - one tree per stream, named `stream/<id>`, key = seq as u64 big-endian
//!   (so byte order is seq order), value = one frame;
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
    check_contiguous,
};
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
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(backend(|| {
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
        let tree = self.tree(stream)?;
        let key = seq.to_be_bytes();
        let done = match bytes {
            Some(bytes) => tree.insert(key, bytes),
            None => tree.remove(key),
        };
        done.map(drop)
            .map_err(backend(|| format!("raw overwrite on {stream}")))
    }

    /// The stored bytes of `seq`, unchecked (tests).
    ///
    /// # Errors
    /// Backend errors.
    #[doc(hidden)]
    pub fn raw_get(&self, stream: &StreamId, seq: u64) -> Result<Option<Vec<u8>>> {
        let tree = self.tree(stream)?;
        let value = tree
            .get(seq.to_be_bytes())
            .map_err(backend(|| format!("raw read on {stream}")))?;
        Ok(value.map(|v| v.to_vec()))
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
        let result = (&tree, &self.meta).transaction(|(tree, meta)| {
            let head = tx_head(meta, stream)?;
            if head.next_seq() != expected_next {
                return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                    stream: stream.clone(),
                    expected: expected_next,
                    actual: head.next_seq(),
                }));
            }
            let Some(last) = events.last() else {
                return Ok((head, false));
            };
            for event in events {
                tree.insert(&event.seq.to_be_bytes(), event.frame.as_slice())?;
            }
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
        for item in tree.range(from.to_be_bytes()..).take(max) {
            let (key, value) = item.map_err(backend(|| {
                format!("reading stream {stream} from seq {from}")
            }))?;
            batch.push(seq_of_key(stream, &key)?, &value);
        }
        Ok(batch)
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
        for key in tree.range(..before.to_be_bytes()).keys() {
            batch.remove(key.map_err(backend(|| format!("compacting stream {stream}")))?);
            removed = removed.saturating_add(1);
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
            tree.remove(&seq.to_be_bytes())?;
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
