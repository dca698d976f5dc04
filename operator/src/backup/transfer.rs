//! The two data paths of a backup: a node's RDB streamed into the bucket
//! ([`backup_node`]), and an object streamed back out, checked against
//! what the manifest says, to nowhere ([`verify_object`]) or to a file
//! ([`fetch_to_file`]).
//!
//! Every byte passes through the RDB check (magic, CRC-64) and SHA-256 on
//! the way, so a bad snapshot is never stored as good and a damaged object
//! is never restored. On the way out the checks and the file write run on
//! threads of their own beside the download (`piece_workers`), so a
//! checked restore takes about as long as a bare download. Nothing here
//! names keys, writes manifests or decides when to run: the callers do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::piece_workers::{self, Checked};
use super::store::{BackupStore, StoreError};
use crate::valkey::{
    FullResync, ProbeError, RdbAuth, RdbCheck, RdbCheckError, RdbCrc, Timeouts, TlsSettings,
    open_rdb_stream,
};

/// What [`backup_node`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBackup {
    /// The object's length.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the object.
    pub sha256: String,
    /// The RDB format version (11 for Valkey 8, 80 for Valkey 9).
    pub rdb_version: u32,
    /// The RDB's own checksum, verified (or absent: `rdbchecksum no`).
    pub crc: RdbCrc,
    /// The replication position of the snapshot; `None` when the server
    /// took `SYNC` only (it announces none).
    pub resync: Option<FullResync>,
}

/// What [`verify_object`] and [`fetch_to_file`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVerified {
    /// The object's length, as the manifest says.
    pub bytes: u64,
    /// Its SHA-256, as the manifest says.
    pub sha256: String,
    /// The RDB format version.
    pub rdb_version: u32,
    /// The RDB's own checksum.
    pub crc: RdbCrc,
}

/// Why a backup or a fetch failed. Messages name the key (and the node or
/// file) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The node could not give its RDB (unreachable, refused, cut off).
    #[error("backup to {key}: {source}")]
    Source {
        /// The object that was being written.
        key: String,
        /// The node's failure; names its address.
        #[source]
        source: ProbeError,
    },
    /// What the node sent is not a whole, intact RDB.
    #[error("backup to {key}: the RDB streamed from {addr} is bad: {source}")]
    BadSnapshot {
        /// The object that was being written.
        key: String,
        /// The node.
        addr: SocketAddr,
        /// What is wrong with it.
        #[source]
        source: RdbCheckError,
    },
    /// The bucket failed (names bucket and key).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object's size is not the manifest's.
    #[error("object {key} is {actual} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// The object.
        key: String,
        /// Its size.
        actual: u64,
        /// The manifest's.
        expected: u64,
    },
    /// The object's bytes are not those the manifest recorded.
    #[error(
        "object {key}: SHA-256 mismatch: the manifest says {expected}, the object's bytes give {actual}"
    )]
    ShaMismatch {
        /// The object.
        key: String,
        /// The SHA-256 of its bytes.
        actual: String,
        /// The manifest's.
        expected: String,
    },
    /// The object matches the manifest but is not an intact RDB.
    #[error("object {key} is not an intact RDB: {source}")]
    BadObject {
        /// The object.
        key: String,
        /// What is wrong with it.
        #[source]
        source: RdbCheckError,
    },
    /// The local file could not be written.
    #[error("{action} {path}: {source}")]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The thread checking or writing the object beside its download ended
    /// without a result: it panicked, or the runtime is shutting down.
    #[error("object {key}: the {worker} beside the download ended without a result: {source}")]
    WorkerLost {
        /// The object.
        key: String,
        /// `"check"` or `"writer"`.
        worker: &'static str,
        /// How it ended.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Streams the RDB of the server at `addr` into `key`: the replication
/// stream, through the RDB check and SHA-256, into a streaming upload.
///
/// # Guarantees
/// On any failure the upload is aborted: nothing new is left under `key`.
///
/// # Errors
/// [`TransferError::Source`] when the server cannot be streamed from;
/// [`TransferError::BadSnapshot`] when its RDB fails the check;
/// [`TransferError::Store`] when the bucket fails.
pub async fn backup_node(
    store: &BackupStore,
    key: &str,
    addr: SocketAddr,
    auth: RdbAuth<'_>,
    tls: Option<&TlsSettings>,
    timeouts: Timeouts,
) -> Result<NodeBackup, TransferError> {
    let source = |source| TransferError::Source {
        key: key.to_owned(),
        source,
    };
    let mut stream = open_rdb_stream(addr, auth, tls, timeouts)
        .await
        .map_err(source)?;
    let mut upload = store.upload(key).await?;
    let mut check = RdbCheck::new();
    let streamed = async {
        while let Some(chunk) = stream.next_chunk().await.map_err(source)? {
            check
                .feed(&chunk)
                .map_err(|source| TransferError::BadSnapshot {
                    key: key.to_owned(),
                    addr,
                    source,
                })?;
            upload.write(chunk).await?;
        }
        Ok::<_, TransferError>(())
    }
    .await;
    let report = streamed.and_then(|()| {
        check.finish().map_err(|source| TransferError::BadSnapshot {
            key: key.to_owned(),
            addr,
            source,
        })
    });
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            // The first failure is the one to report; a failed abort
            // leaves only parts, which expire.
            let _ = upload.abort().await;
            return Err(err);
        }
    };
    let receipt = upload.finish().await?;
    Ok(NodeBackup {
        bytes: receipt.bytes,
        sha256: receipt.sha256,
        rdb_version: report.rdb_version,
        crc: report.crc,
        resync: stream.snapshot().resync.clone(),
    })
}

/// Streams `key` and checks it against the manifest's size and SHA-256,
/// and as an RDB (magic, CRC-64), writing nothing.
///
/// # Errors
/// [`TransferError::SizeMismatch`], [`TransferError::ShaMismatch`],
/// [`TransferError::BadObject`], or [`TransferError::Store`] (not found,
/// unreachable, ...).
pub async fn verify_object(
    store: &BackupStore,
    key: &str,
    expected_bytes: u64,
    expected_sha256: &str,
) -> Result<NodeVerified, TransferError> {
    stream_checked(store, key, expected_bytes, expected_sha256, None).await
}

/// Downloads `key` to `dest`, checking it as [`verify_object`] does.
///
/// # Guarantees
/// The bytes go to `<dest>.partial`, which is synced and renamed to `dest`
/// only when every check passed: a bad or interrupted download never
/// leaves a file at `dest` (and removes its partial file).
///
/// # Errors
/// As [`verify_object`]; [`TransferError::File`] when the file cannot be
/// written.
pub async fn fetch_to_file(
    store: &BackupStore,
    key: &str,
    expected_bytes: u64,
    expected_sha256: &str,
    dest: &Path,
) -> Result<NodeVerified, TransferError> {
    let partial = partial_path(dest);
    let file_error = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| TransferError::File {
            action,
            path,
            source,
        }
    };
    let file = tokio::fs::File::create(&partial)
        .await
        .map_err(file_error("creating", &partial))?
        .into_std()
        .await;
    let fetched = async {
        // The writer syncs the file once the download is whole.
        let verified = stream_checked(
            store,
            key,
            expected_bytes,
            expected_sha256,
            Some((file, &partial)),
        )
        .await?;
        tokio::fs::rename(&partial, dest)
            .await
            .map_err(file_error("renaming to its final name", &partial))?;
        Ok(verified)
    }
    .await;
    match fetched {
        Ok(verified) => {
            // The rename is durable once the directory is synced.
            if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty())
                && let Ok(dir) = tokio::fs::File::open(dir).await
            {
                let _ = dir.sync_all().await;
            }
            Ok(verified)
        }
        Err(err) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(err)
        }
    }
}

/// `<dest>.partial`.
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Downloads `key`, has each piece written to `file` when there is one,
/// and checks size, SHA-256 and RDB against the manifest. The checks and
/// the write run beside the download (`piece_workers`); the verdict waits
/// for both.
///
/// # Guarantees
/// When this returns, the workers have stopped: the file is closed, and
/// synced when the result is `Ok`.
async fn stream_checked(
    store: &BackupStore,
    key: &str,
    expected_bytes: u64,
    expected_sha256: &str,
    file: Option<(std::fs::File, &Path)>,
) -> Result<NodeVerified, TransferError> {
    let mut download = store.download(key).await?;
    if download.info().size != expected_bytes {
        return Err(TransferError::SizeMismatch {
            key: key.to_owned(),
            actual: download.info().size,
            expected: expected_bytes,
        });
    }
    let check = piece_workers::spawn_check();
    let writer = file.map(|(file, path)| (piece_workers::spawn_writer(file), path));
    // Whether every piece went to the workers: a worker refuses one only
    // when it has stopped (a failed write), and then says why.
    let sent = async {
        while let Some(piece) = download.next_chunk().await? {
            if let Some((writer, _)) = &writer
                && !writer.send(piece.clone()).await
            {
                return Ok(false);
            }
            if !check.send(piece).await {
                return Ok(false);
            }
        }
        Ok::<_, StoreError>(true)
    }
    .await;
    let whole = matches!(sent, Ok(true));
    let written = async {
        match writer {
            Some((writer, path)) => Some((writer.finish(whole).await, path)),
            None => None,
        }
    };
    let (checked, written) = tokio::join!(check.finish(whole), written);
    let lost = |worker, source| TransferError::WorkerLost {
        key: key.to_owned(),
        worker,
        source,
    };
    // The download's own failure first: the workers only saw part of it.
    sent?;
    let checked = checked.map_err(|source| lost("check", source))?;
    let written = match written {
        Some((Err(source), _)) => return Err(lost("writer", source)),
        Some((Ok(written), path)) => written.map_err(|failed| TransferError::File {
            action: failed.action,
            path: path.to_path_buf(),
            source: failed.source,
        }),
        None => Ok(()),
    };
    match (whole, written) {
        // A write that failed halfway stopped the download: that is the
        // finding, not the size the check then saw.
        (false, Err(err)) => Err(err),
        // The checks' finding comes before a failed sync: the file would
        // be removed either way, and a bad object is the thing to know.
        (_, written) => {
            let verified = verdict(key, expected_bytes, expected_sha256, checked)?;
            written.map(|()| verified)
        }
    }
}

/// What the check found, against the manifest: size first, then SHA-256,
/// then the RDB. When the manifest's hash does not match, that is the
/// finding; the RDB's state is then a symptom.
fn verdict(
    key: &str,
    expected_bytes: u64,
    expected_sha256: &str,
    checked: Checked,
) -> Result<NodeVerified, TransferError> {
    if checked.bytes != expected_bytes {
        return Err(TransferError::SizeMismatch {
            key: key.to_owned(),
            actual: checked.bytes,
            expected: expected_bytes,
        });
    }
    if !checked.sha256.eq_ignore_ascii_case(expected_sha256) {
        return Err(TransferError::ShaMismatch {
            key: key.to_owned(),
            actual: checked.sha256,
            expected: expected_sha256.to_owned(),
        });
    }
    let report = checked.rdb.map_err(|source| TransferError::BadObject {
        key: key.to_owned(),
        source,
    })?;
    Ok(NodeVerified {
        bytes: checked.bytes,
        sha256: checked.sha256,
        rdb_version: report.rdb_version,
        crc: report.crc,
    })
}
