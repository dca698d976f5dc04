//! Writing a file's pages back to the disk while it is still being written,
//! so that the sync that makes it durable at the end has little left to
//! do, and the page cache does not fill with a whole object's dirty pages.
//!
//! A restore writes an RDB of any size from the network; synced once at the
//! end, all of it goes to the disk then, after the download, and meanwhile
//! it sits dirty in the memory the pod is charged for. `sync_file_range`
//! would start the writeback without waiting, but nix does not offer it
//! and this workspace forbids the `unsafe` of calling libc: a thread of its
//! own calls `fdatasync` instead, each time the writer has added
//! [`WRITEBACK_STEP`] bytes, while the writer goes on.
//!
//! This module only paces the writeback. The final sync, which alone
//! makes the file durable, stays the writer's; an early sync's failure is
//! kept and reported, since a later sync may not report it again.

use std::fs::File;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes written between two requests to write back.
pub const WRITEBACK_STEP: u64 = 16 * 1024 * 1024;

/// A thread writing back one file's dirty pages when asked.
#[derive(Debug)]
pub struct Writeback {
    /// `None` when no thread could be started: writing goes on, and the
    /// final sync does all the work, as it would without this.
    running: Option<(SyncSender<()>, JoinHandle<std::io::Result<()>>)>,
    /// Bytes written since the last request.
    pending: u64,
}

impl Writeback {
    /// Starts the thread for `file` (a second handle on it).
    pub fn start(file: &File) -> Writeback {
        let running = file.try_clone().ok().and_then(|handle| {
            // One request waits while one sync runs: more would only sync
            // the same pages again.
            let (ask, asked) = sync_channel(1);
            std::thread::Builder::new()
                .name("writeback".to_owned())
                .spawn(move || write_back(&handle, &asked))
                .ok()
                .map(|thread| (ask, thread))
        });
        Writeback {
            running,
            pending: 0,
        }
    }

    /// Counts `bytes` more written, and asks for a writeback every
    /// [`WRITEBACK_STEP`]. Never waits: when a sync is already asked for,
    /// the next one will take these pages too.
    pub fn wrote(&mut self, bytes: usize) {
        self.pending = self
            .pending
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        if self.pending < WRITEBACK_STEP {
            return;
        }
        self.pending = 0;
        if let Some((ask, _)) = &self.running {
            let _ = ask.try_send(());
        }
    }

    /// Stops the thread, once its sync under way is done.
    ///
    /// # Errors
    /// The first early sync that failed (the pages it could not write may
    /// be reported by no later sync), or the thread's end without a result.
    pub fn stop(self) -> std::io::Result<()> {
        let Some((ask, thread)) = self.running else {
            return Ok(());
        };
        drop(ask);
        thread.join().unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the writeback thread ended without a result",
            ))
        })
    }
}

/// The thread: a `fdatasync` per request, until the writer is done or one
/// fails.
fn write_back(file: &File, asked: &Receiver<()>) -> std::io::Result<()> {
    while asked.recv().is_ok() {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_written_past_several_steps_is_whole_and_the_thread_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut file = File::create(&path).unwrap();
        let mut writeback = Writeback::start(&file);
        assert!(writeback.running.is_some());
        let piece = vec![0x5a_u8; 1 << 20];
        let pieces = 3 * (WRITEBACK_STEP >> 20) + 1;
        for _ in 0..pieces {
            file.write_all(&piece).unwrap();
            writeback.wrote(piece.len());
        }
        writeback.stop().unwrap();
        file.sync_all().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), pieces << 20);
    }

    #[test]
    fn a_failed_early_sync_is_reported() {
        // fdatasync fails on a pipe (EINVAL): it stands in for a disk
        // that fails.
        let (reader, _writer) = std::io::pipe().unwrap();
        let handle = File::from(std::os::fd::OwnedFd::from(reader));
        let mut writeback = Writeback::start(&handle);
        writeback.wrote(usize::try_from(WRITEBACK_STEP).unwrap());
        assert!(writeback.stop().is_err());
    }
}
