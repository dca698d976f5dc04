//! The workers a download hands its pieces to, so that the checks and the
//! file write run beside the download instead of between its reads: the
//! check (SHA-256, the RDB's magic and CRC-64) and, for a fetch to a file,
//! the writer, each on a blocking thread of its own. The writer has the
//! file's pages written back to the disk as it goes (`writeback`), so that
//! the final sync does not start the whole disk write after the download.
//!
//! A piece is shared with the workers, not copied ([`Bytes`]), and each
//! worker's queue holds at most [`PIECES_QUEUED`] pieces: when a worker
//! falls behind, the download waits, so memory stays bounded whatever the
//! object's size. The pieces are the HTTP client's reads (some 400 KiB
//! each on average from moto, none above 700 KiB seen), so about 10 MiB
//! at most are queued, the same pieces for both workers.
//!
//! This module computes and writes; it must not judge. Comparing what the
//! check found with the manifest is the caller's (`transfer`).

use std::io::Write;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use super::writeback::Writeback;
use crate::valkey::{RdbCheck, RdbCheckError, RdbReport};

/// Pieces a worker's queue holds before the download waits for it.
pub const PIECES_QUEUED: usize = 16;

/// What the download tells a worker.
enum Message {
    /// The next bytes of the object.
    Piece(Bytes),
    /// Every piece has been sent: the object is whole (as far as the
    /// download knows).
    End,
}

/// The pieces a worker takes, in order, as an iterator that blocks until
/// the next one comes. It ends at the download's end, or early when the
/// download gave up ([`complete`](Self::complete) then says `false`).
pub struct Pieces {
    queue: mpsc::Receiver<Message>,
    complete: bool,
}

impl Pieces {
    /// Whether the iteration ended because every piece was sent, rather
    /// than because the download gave up (a failure, or the fetch dropped).
    pub fn complete(&self) -> bool {
        self.complete
    }
}

impl Iterator for Pieces {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        match self.queue.blocking_recv() {
            Some(Message::Piece(piece)) => Some(piece),
            Some(Message::End) => {
                self.complete = true;
                None
            }
            None => None,
        }
    }
}

/// A worker on a blocking thread, fed pieces through a bounded queue.
pub struct Worker<T> {
    queue: mpsc::Sender<Message>,
    done: JoinHandle<T>,
}

impl<T> std::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue_free", &self.queue.capacity())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Worker<T> {
    /// Starts `work` on a blocking thread. It takes the pieces sent to the
    /// worker; what it returns is what [`finish`](Self::finish) gives.
    fn spawn(work: impl FnOnce(&mut Pieces) -> T + Send + 'static) -> Self {
        let (queue, receiver) = mpsc::channel(PIECES_QUEUED);
        let done = tokio::task::spawn_blocking(move || {
            let mut pieces = Pieces {
                queue: receiver,
                complete: false,
            };
            work(&mut pieces)
        });
        Worker { queue, done }
    }

    /// Hands `piece` over, waiting while the queue is full. `false` when
    /// the worker takes no more pieces: it stopped early (a failed write);
    /// [`finish`](Self::finish) gives its result.
    pub async fn send(&self, piece: Bytes) -> bool {
        self.queue.send(Message::Piece(piece)).await.is_ok()
    }

    /// Closes the queue and waits for the worker's result. `whole` tells
    /// it whether every piece of the object was sent, or the download gave
    /// up (its result is then of part of the object).
    ///
    /// # Errors
    /// When the worker ended without a result (it panicked, or the runtime
    /// is shutting down).
    pub async fn finish(self, whole: bool) -> Result<T, JoinError> {
        if whole {
            // A worker that stopped early has dropped its queue: there is
            // no one to tell, and its result says why it stopped.
            let _ = self.queue.send(Message::End).await;
        }
        drop(self.queue);
        self.done.await
    }
}

/// What the check found in the bytes it was given.
#[derive(Debug)]
pub struct Checked {
    /// The bytes it was given.
    pub bytes: u64,
    /// Their SHA-256, lowercase hex.
    pub sha256: String,
    /// The RDB check's verdict: its first complaint, or its report.
    pub rdb: Result<RdbReport, RdbCheckError>,
}

/// Starts a check: SHA-256 and the RDB check of every piece. Both read a
/// piece while it is in the cache, one after the other.
pub fn spawn_check() -> Worker<Checked> {
    Worker::spawn(|pieces| {
        let mut bytes: u64 = 0;
        let mut sha256 = Sha256::new();
        let mut rdb = RdbCheck::new();
        // The first complaint is kept and the rest still hashed and
        // counted (the RDB check, which stops at its complaint, would
        // count short): the caller reports a SHA-256 mismatch before the
        // RDB's state, which is then only a symptom.
        let mut complaint = None;
        for piece in pieces {
            bytes = bytes.saturating_add(u64::try_from(piece.len()).unwrap_or(u64::MAX));
            sha256.update(&piece);
            if complaint.is_none()
                && let Err(err) = rdb.feed(&piece)
            {
                complaint = Some(err);
            }
        }
        Checked {
            bytes,
            sha256: sha256
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            rdb: match complaint {
                Some(err) => Err(err),
                None => rdb.finish(),
            },
        }
    })
}

/// Why the writer failed: what it was doing, and the error.
#[derive(Debug)]
pub struct WriteFailed {
    /// `"writing"` or `"syncing"`.
    pub action: &'static str,
    /// The failure.
    pub source: std::io::Error,
}

/// Starts a writer: every piece appended to `file`, written back to the
/// disk as it goes (`writeback`), then the file synced once the download
/// says it is whole. A download that gave up leaves the file unsynced (its
/// caller removes it).
pub fn spawn_writer(mut file: std::fs::File) -> Worker<Result<(), WriteFailed>> {
    Worker::spawn(move |pieces| {
        let syncing = |source| WriteFailed {
            action: "syncing",
            source,
        };
        let mut writeback = Writeback::start(&file);
        let mut written = Ok(());
        for piece in pieces.by_ref() {
            if let Err(source) = file.write_all(&piece) {
                written = Err(WriteFailed {
                    action: "writing",
                    source,
                });
                break;
            }
            writeback.wrote(piece.len());
        }
        // The thread is stopped on every path, so that the file is closed
        // when the writer's result is in.
        let early = writeback.stop();
        written?;
        if pieces.complete() {
            early.map_err(syncing)?;
            file.sync_all().map_err(syncing)?;
        }
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A minimal RDB: magic, EOF opcode, CRC-64.
    fn rdb() -> Vec<u8> {
        let mut bytes = b"REDIS0011".to_vec();
        bytes.extend_from_slice(&[0xfa; 1000]);
        bytes.push(0xff);
        let crc = crate::valkey::crc64(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_check_hashes_and_checks_every_piece_in_order() {
        let bytes = rdb();
        let check = spawn_check();
        // More pieces than the queue holds, on a single-threaded runtime:
        // the worker is on its own thread and keeps up.
        for piece in bytes.chunks(7) {
            assert!(check.send(Bytes::copy_from_slice(piece)).await);
        }
        let checked = check.finish(true).await.unwrap();
        assert_eq!(checked.bytes, u64::try_from(bytes.len()).unwrap());
        let expected: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(checked.sha256, expected);
        assert_eq!(checked.rdb.unwrap().rdb_version, 11);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_check_keeps_the_first_complaint_and_still_hashes_all() {
        let mut bytes = rdb();
        bytes[0] = b'X';
        let check = spawn_check();
        for piece in bytes.chunks(100) {
            assert!(check.send(Bytes::copy_from_slice(piece)).await);
        }
        let checked = check.finish(true).await.unwrap();
        assert!(matches!(checked.rdb, Err(RdbCheckError::BadMagic { .. })));
        assert_eq!(checked.bytes, u64::try_from(bytes.len()).unwrap());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_writer_writes_every_piece_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let writer = spawn_writer(std::fs::File::create(&path).unwrap());
        let bytes = rdb();
        for piece in bytes.chunks(3) {
            assert!(writer.send(Bytes::copy_from_slice(piece)).await);
        }
        writer.finish(true).await.unwrap().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_write_stops_the_writer_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, b"").unwrap();
        // Opened for reading only: the first write fails.
        let writer = spawn_writer(std::fs::File::open(&path).unwrap());
        let mut refused = false;
        for _ in 0..(PIECES_QUEUED * 4) {
            if !writer.send(Bytes::from_static(b"piece")).await {
                refused = true;
                break;
            }
        }
        assert!(refused, "a stopped writer still takes pieces");
        let failed = writer.finish(true).await.unwrap().unwrap_err();
        assert_eq!(failed.action, "writing");
    }
}
