//! The continuous archive's writer: one chain in the bucket (see
//! `segment` for the format), fed with the records of a replication
//! stream, and [`follow`], which runs one connection to one source into
//! it.
//!
//! A segment closes when it has held a data command (anything but `PING`
//! and `REPLCONF`) for [`SEGMENT_HOLD_MS`], reaches [`SEGMENT_MAX_BYTES`],
//! or has been open [`SEGMENT_IDLE_MS`] with only the source's pings (an
//! idle cluster costs one small `PUT` a minute). A closed segment is
//! uploaded, then the index page that lists it is rewritten: a reader
//! never finds an index entry without its segment. Failed uploads stay
//! buffered and are retried while the buffer holds under
//! [`MAX_BUFFERED`]; beyond it the chain ends.
//!
//! The writer must not choose sources or connect: the operator's runtime
//! picks a source and calls [`follow`] again with the same writer.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::segment::{
    ARCHIVE_FORMAT, BASE_NAME, CHAIN_NAME, ChainEnd, ChainStart, END_NAME, INDEX_PAGE_SEGMENTS,
    IndexPage, Record, SegmentEntry, chain_dir, chain_name, command_name, encode_segment,
    index_name, segment_name, sha256_hex,
};
use super::store::{BackupStore, StoreError};
use crate::valkey::{
    FullPayload, Opened, ProbeError, RDB_IDLE_TIMEOUT, RdbAuth, RdbCheck, RdbCheckError,
    ReplPosition, ReplStream, Timeouts, TlsSettings, open_follower, wall_ms,
};

/// A segment closes once it has held a data command this long (ms).
pub const SEGMENT_HOLD_MS: i64 = 1_000;
/// A segment closes at this size.
pub const SEGMENT_MAX_BYTES: usize = 8 * 1024 * 1024;
/// A segment of pings only closes after this long (ms).
pub const SEGMENT_IDLE_MS: i64 = 60_000;
/// Records held for upload beyond this end the chain.
pub const MAX_BUFFERED: usize = 64 * 1024 * 1024;

/// Why the archive could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A bucket operation failed.
    #[error("archive chain {chain}: {step}: {source}")]
    Store {
        /// The chain (its directory).
        chain: String,
        /// What was being done.
        step: String,
        /// The store's error.
        #[source]
        source: Box<StoreError>,
    },
    /// The source failed while the base RDB was read.
    #[error("archive chain {chain}: receiving the base RDB: {source}")]
    Source {
        /// The chain.
        chain: String,
        /// The connection's error.
        #[source]
        source: ProbeError,
    },
    /// The base RDB is not a whole RDB.
    #[error("archive chain {chain}: the base RDB is damaged: {source}")]
    Rdb {
        /// The chain.
        chain: String,
        /// What is wrong with it.
        #[source]
        source: RdbCheckError,
    },
    /// A document of the chain cannot be read.
    #[error("archive object {key}: {detail}")]
    Corrupt {
        /// The object.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The chain has an `end.json`: it cannot be continued.
    #[error("archive chain {chain} has ended; start a new one")]
    Ended {
        /// The chain.
        chain: String,
    },
    /// Records that do not continue the chain's position.
    #[error("archive chain {chain}: a record at offset {found} where {expected} was due")]
    Gap {
        /// The chain.
        chain: String,
        /// The position.
        expected: u64,
        /// The record's offset.
        found: u64,
    },
    /// Uploads failed until the buffer outgrew [`MAX_BUFFERED`].
    #[error(
        "archive chain {chain}: {buffered} bytes wait for upload, more than {MAX_BUFFERED}; last failure: {last}"
    )]
    Overflow {
        /// The chain.
        chain: String,
        /// Bytes buffered.
        buffered: usize,
        /// The last upload failure.
        last: String,
    },
}

/// The cluster a chain belongs to (for `chain.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMeta {
    /// Namespace.
    pub namespace: String,
    /// Cluster name.
    pub cluster: String,
    /// Cluster uid.
    pub uid: String,
    /// Topology (`Replication`, `Cluster`, ...).
    pub topology: String,
}

/// The server being followed, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The pod followed.
    pub pod: String,
    /// The shard's primary.
    pub primary: String,
    /// The shard's slots (Cluster), `[start, end]` pairs.
    pub slots: Vec<[u16; 2]>,
}

/// How far the bucket is behind the stream, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLag {
    /// The age (ms) of the oldest write received and not in the bucket
    /// yet: 0 when every write received is uploaded.
    pub behind_ms: Option<i64>,
    /// Record bytes received but not yet uploaded.
    pub buffered_bytes: usize,
}

/// The segment being filled.
#[derive(Debug)]
struct Building {
    records: Vec<Record>,
    bytes: usize,
    opened_ms: i64,
    first_data_ms: Option<i64>,
    source: SourceInfo,
}

impl Building {
    /// It has held a data command for [`SEGMENT_HOLD_MS`], or pings only
    /// for [`SEGMENT_IDLE_MS`]. (Its size is checked as records come.)
    fn due(&self, now_ms: i64) -> bool {
        self.first_data_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= SEGMENT_HOLD_MS)
            || now_ms.saturating_sub(self.opened_ms) >= SEGMENT_IDLE_MS
    }
}

/// A closed segment waiting for its upload.
#[derive(Debug)]
struct Sealed {
    entry: SegmentEntry,
    body: Bytes,
}

/// One chain being written. See the module's comment.
#[derive(Debug)]
pub struct ChainWriter {
    store: BackupStore,
    dir: String,
    chain: String,
    replid: String,
    /// The offset after the last record accepted.
    position: u64,
    building: Option<Building>,
    sealed: VecDeque<Sealed>,
    page: usize,
    page_entries: Vec<SegmentEntry>,
    index_dirty: bool,
    last_failure: Option<String>,
    /// The chain's `chain.json`.
    start: ChainStart,
}

impl ChainWriter {
    /// Starts a chain from a full resynchronisation: uploads `payload` as
    /// `base.rdb` (checked, hashed), then `chain.json`.
    ///
    /// # Errors
    /// [`ArchiveError::Source`], [`ArchiveError::Rdb`] or
    /// [`ArchiveError::Store`]; nothing of the chain is then usable (no
    /// `chain.json` was written).
    pub async fn start(
        store: &BackupStore,
        archive_dir: &str,
        meta: &ChainMeta,
        source: &SourceInfo,
        position: &ReplPosition,
        payload: &mut FullPayload,
    ) -> Result<ChainWriter, ArchiveError> {
        let base_at_ms = wall_ms();
        let chain = chain_name(base_at_ms, &position.replid);
        let dir = chain_dir(archive_dir, &chain);
        let store_err = |step: &str, source: StoreError| ArchiveError::Store {
            chain: chain.clone(),
            step: step.to_owned(),
            source: Box::new(source),
        };
        let base_key = format!("{dir}{BASE_NAME}");
        let mut upload = store
            .upload(&base_key)
            .await
            .map_err(|e| store_err("uploading base.rdb", e))?;
        let mut check = RdbCheck::new();
        let received = loop {
            let chunk = match payload.next_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break Ok(()),
                Err(source) => {
                    break Err(ArchiveError::Source {
                        chain: chain.clone(),
                        source,
                    });
                }
            };
            if let Err(source) = check.feed(&chunk) {
                break Err(ArchiveError::Rdb {
                    chain: chain.clone(),
                    source,
                });
            }
            if let Err(e) = upload.write(chunk).await {
                break Err(store_err("uploading base.rdb", e));
            }
        };
        if let Err(err) = received {
            // The upload's own failure is not the story: the first error is.
            let _ = upload.abort().await;
            return Err(err);
        }
        let report = match check.finish() {
            Ok(report) => report,
            Err(source) => {
                let _ = upload.abort().await;
                return Err(ArchiveError::Rdb {
                    chain: chain.clone(),
                    source,
                });
            }
        };
        let receipt = upload
            .finish()
            .await
            .map_err(|e| store_err("uploading base.rdb", e))?;
        let start = ChainStart {
            format: ARCHIVE_FORMAT,
            chain: chain.clone(),
            namespace: meta.namespace.clone(),
            cluster: meta.cluster.clone(),
            uid: meta.uid.clone(),
            topology: meta.topology.clone(),
            source: source.pod.clone(),
            primary: source.primary.clone(),
            replid: position.replid.clone(),
            offset: position.offset,
            base_at_ms,
            base_bytes: report.bytes,
            base_sha256: receipt.sha256,
            rdb_version: report.rdb_version,
            slots: source.slots.clone(),
        };
        put_json(store, &format!("{dir}{CHAIN_NAME}"), &start)
            .await
            .map_err(|e| store_err("writing chain.json", e))?;
        Ok(ChainWriter::at(
            store.clone(),
            dir,
            start,
            position.clone(),
            0,
            Vec::new(),
        ))
    }

    /// Reopens a chain another writer left: reads `chain.json` and every
    /// index page, and positions the writer after the last segment.
    ///
    /// # Errors
    /// [`ArchiveError::Ended`] when the chain has an `end.json`;
    /// [`ArchiveError::Corrupt`] for an unreadable document or an index
    /// whose segments do not follow each other; [`ArchiveError::Store`].
    pub async fn resume(store: &BackupStore, chain_dir: &str) -> Result<ChainWriter, ArchiveError> {
        let key = format!("{chain_dir}{CHAIN_NAME}");
        let start: ChainStart = get_json(store, &key).await?;
        let store_err = |step: String, source: StoreError| ArchiveError::Store {
            chain: start.chain.clone(),
            step,
            source: Box::new(source),
        };
        let objects = store
            .list(chain_dir)
            .await
            .map_err(|e| store_err(format!("listing {chain_dir}"), e))?;
        if objects.iter().any(|o| o.key.ends_with(END_NAME)) {
            return Err(ArchiveError::Ended {
                chain: start.chain.clone(),
            });
        }
        let mut pages: Vec<&str> = objects
            .iter()
            .map(|o| o.key.as_str())
            .filter(|k| {
                k.rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with("index-") && n.ends_with(".json"))
            })
            .collect();
        pages.sort_unstable();
        let mut position = ReplPosition {
            replid: start.replid.clone(),
            offset: start.offset,
        };
        let mut last = (0, Vec::new());
        for (n, key) in pages.iter().enumerate() {
            let page: IndexPage = get_json(store, key).await?;
            if page.page != n {
                return Err(corrupt(
                    key,
                    format!("page {} where {n} was due", page.page),
                ));
            }
            for entry in &page.segments {
                if entry.start != position.offset {
                    return Err(corrupt(
                        key,
                        format!(
                            "segment {} starts at {} where {} was due",
                            entry.name, entry.start, position.offset
                        ),
                    ));
                }
                position = ReplPosition {
                    replid: entry.replid.clone(),
                    offset: entry.end,
                };
            }
            last = (n, page.segments);
        }
        Ok(ChainWriter::at(
            store.clone(),
            chain_dir.to_owned(),
            start,
            position,
            last.0,
            last.1,
        ))
    }

    fn at(
        store: BackupStore,
        dir: String,
        start: ChainStart,
        position: ReplPosition,
        page: usize,
        page_entries: Vec<SegmentEntry>,
    ) -> ChainWriter {
        ChainWriter {
            store,
            dir,
            chain: start.chain.clone(),
            replid: position.replid,
            position: position.offset,
            building: None,
            sealed: VecDeque::new(),
            page,
            page_entries,
            index_dirty: false,
            last_failure: None,
            start,
        }
    }

    /// The chain's `chain.json`: how it began.
    pub fn chain_start(&self) -> &ChainStart {
        &self.start
    }

    /// The chain's name.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// The chain's directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Where the stream continues: the history's id and the offset after
    /// the last record accepted (buffered or uploaded).
    pub fn position(&self) -> ReplPosition {
        ReplPosition {
            replid: self.replid.clone(),
            offset: self.position,
        }
    }

    /// The source announced a new history id with `+CONTINUE`.
    pub fn set_replid(&mut self, replid: &str) {
        if self.replid != replid {
            // Segments carry one id: the one they were received under.
            self.seal();
            replid.clone_into(&mut self.replid);
        }
    }

    /// How far the bucket is behind.
    pub fn lag(&self, now_ms: i64) -> ArchiveLag {
        // What is at risk: the oldest command received and not in the
        // bucket yet (a closed segment waiting for its upload, else the
        // first write of the one being filled). A quiet stream's pings
        // wait a minute in their segment and risk nothing.
        let oldest = self
            .sealed
            .front()
            .map(|s| s.entry.first_ms)
            .or_else(|| self.building.as_ref().and_then(|b| b.first_data_ms));
        ArchiveLag {
            behind_ms: Some(oldest.map_or(0, |t| now_ms.saturating_sub(t).max(0))),
            buffered_bytes: self.buffered(),
        }
    }

    fn buffered(&self) -> usize {
        let sealed: usize = self.sealed.iter().map(|s| s.body.len()).sum();
        sealed.saturating_add(self.building.as_ref().map_or(0, |b| b.bytes))
    }

    /// Takes records received from `source` (at `now_ms`).
    ///
    /// # Errors
    /// [`ArchiveError::Gap`] when they do not continue the position.
    pub fn push(
        &mut self,
        records: Vec<Record>,
        source: &SourceInfo,
        now_ms: i64,
    ) -> Result<(), ArchiveError> {
        for record in records {
            if record.offset != self.position {
                return Err(ArchiveError::Gap {
                    chain: self.chain.clone(),
                    expected: self.position,
                    found: record.offset,
                });
            }
            if self.building.as_ref().is_some_and(|b| &b.source != source) {
                self.seal();
            }
            let building = self.building.get_or_insert_with(|| Building {
                records: Vec::new(),
                bytes: 0,
                opened_ms: now_ms,
                first_data_ms: None,
                source: source.clone(),
            });
            let data = !matches!(
                command_name(&record.bytes).as_deref(),
                Some("ping" | "replconf")
            );
            if data && building.first_data_ms.is_none() {
                building.first_data_ms = Some(record.received_ms);
            }
            self.position = record.end();
            building.bytes = building.bytes.saturating_add(record.bytes.len());
            building.records.push(record);
            if building.bytes >= SEGMENT_MAX_BYTES {
                self.seal();
            }
        }
        Ok(())
    }

    /// Closes the segment being filled, if any.
    fn seal(&mut self) {
        let Some(b) = self.building.take() else {
            return;
        };
        let (Some(first), Some(last)) = (b.records.first(), b.records.last()) else {
            return;
        };
        let body = encode_segment(&b.records);
        let entry = SegmentEntry {
            name: segment_name(first.offset),
            start: first.offset,
            end: last.end(),
            first_ms: first.received_ms,
            last_ms: last.received_ms,
            records: u64::try_from(b.records.len()).unwrap_or(u64::MAX),
            bytes: u64::try_from(body.len()).unwrap_or(u64::MAX),
            sha256: sha256_hex(&body),
            replid: self.replid.clone(),
            source: b.source.pod,
            slots: b.source.slots,
        };
        self.sealed.push_back(Sealed {
            entry,
            body: Bytes::from(body),
        });
    }

    /// Closes the segment being filled when it is due (see the module's
    /// comment), then uploads what is closed.
    ///
    /// # Errors
    /// [`ArchiveError::Overflow`] when uploads keep failing and the buffer
    /// outgrew [`MAX_BUFFERED`]; [`ArchiveError::Store`] for a failure
    /// retrying cannot fix (the chain should end).
    pub async fn flush(&mut self, now_ms: i64) -> Result<(), ArchiveError> {
        if self.building.as_ref().is_some_and(|b| b.due(now_ms)) {
            self.seal();
        }
        self.upload_sealed().await
    }

    /// Closes the segment being filled and uploads everything.
    ///
    /// # Errors
    /// As [`flush`](Self::flush); an upload that failed and may be retried
    /// is [`ArchiveError::Store`] here, since nothing is left to wait for.
    pub async fn flush_all(&mut self) -> Result<(), ArchiveError> {
        self.seal();
        self.upload_sealed().await?;
        match self.last_failure.take() {
            Some(last) if !self.sealed.is_empty() || self.index_dirty => {
                Err(ArchiveError::Overflow {
                    chain: self.chain.clone(),
                    buffered: self.buffered(),
                    last,
                })
            }
            _ => Ok(()),
        }
    }

    async fn upload_sealed(&mut self) -> Result<(), ArchiveError> {
        loop {
            if self.index_dirty {
                if let Err(e) = self.put_index().await {
                    return self.failed(e, "writing the index");
                }
                self.index_dirty = false;
            }
            let Some(next) = self.sealed.front() else {
                self.last_failure = None;
                return Ok(());
            };
            let key = format!("{}{}", self.dir, next.entry.name);
            if let Err(e) = self.store.put_bytes(&key, next.body.clone()).await {
                return self.failed(e, "uploading a segment");
            }
            let Some(done) = self.sealed.pop_front() else {
                return Ok(());
            };
            if self.page_entries.len() >= INDEX_PAGE_SEGMENTS {
                self.page = self.page.saturating_add(1);
                self.page_entries.clear();
            }
            self.page_entries.push(done.entry);
            self.index_dirty = true;
        }
    }

    /// A failed upload: kept for a retry unless it cannot succeed or the
    /// buffer is full.
    fn failed(&mut self, err: StoreError, step: &str) -> Result<(), ArchiveError> {
        let buffered = self.buffered();
        if !err.is_retryable() {
            return Err(ArchiveError::Store {
                chain: self.chain.clone(),
                step: step.to_owned(),
                source: Box::new(err),
            });
        }
        if buffered > MAX_BUFFERED {
            return Err(ArchiveError::Overflow {
                chain: self.chain.clone(),
                buffered,
                last: err.to_string(),
            });
        }
        self.last_failure = Some(err.to_string());
        Ok(())
    }

    async fn put_index(&self) -> Result<(), StoreError> {
        let page = IndexPage {
            format: ARCHIVE_FORMAT,
            chain: self.chain.clone(),
            page: self.page,
            segments: self.page_entries.clone(),
        };
        put_json(
            &self.store,
            &format!("{}{}", self.dir, index_name(self.page)),
            &page,
        )
        .await
    }

    /// Ends the chain: uploads what it can, then writes `end.json` at the
    /// offset after the last uploaded byte.
    ///
    /// # Errors
    /// [`ArchiveError::Store`] when `end.json` cannot be written.
    pub async fn end(mut self, reason: &str) -> Result<ChainEnd, ArchiveError> {
        // What cannot be uploaded now is lost to this chain: the end
        // says where the archive really stops.
        let _ = self.flush_all().await;
        let end = ChainEnd {
            chain: self.chain.clone(),
            end: self.page_entries.last().map_or_else(
                || self.sealed.front().map_or(self.position, |s| s.entry.start),
                |e| e.end,
            ),
            at_ms: wall_ms(),
            reason: reason.to_owned(),
        };
        put_json(&self.store, &format!("{}{END_NAME}", self.dir), &end)
            .await
            .map_err(|source| ArchiveError::Store {
                chain: self.chain.clone(),
                step: "writing end.json".to_owned(),
                source: Box::new(source),
            })?;
        Ok(end)
    }
}

async fn put_json<T: serde::Serialize>(
    store: &BackupStore,
    key: &str,
    doc: &T,
) -> Result<(), StoreError> {
    // Serializing these plain structs cannot fail; an empty body would
    // be refused by any reader.
    let body = serde_json::to_vec_pretty(doc).unwrap_or_default();
    store.put_bytes(key, Bytes::from(body)).await
}

async fn get_json<T: serde::de::DeserializeOwned>(
    store: &BackupStore,
    key: &str,
) -> Result<T, ArchiveError> {
    let bytes = store
        .get_bytes(key)
        .await
        .map_err(|e| corrupt(key, format!("cannot be read: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| corrupt(key, format!("not valid: {e}")))
}

fn corrupt(key: &str, detail: String) -> ArchiveError {
    ArchiveError::Corrupt {
        key: key.to_owned(),
        detail,
    }
}

/// The server [`follow`] connects to.
#[derive(Debug, Clone)]
pub struct FollowTarget<'a> {
    /// Its address.
    pub addr: SocketAddr,
    /// Who to authenticate as.
    pub auth: RdbAuth<'a>,
    /// TLS, when the cluster uses it.
    pub tls: Option<&'a TlsSettings>,
    /// Connect and handshake timeouts.
    pub timeouts: Timeouts,
    /// How long the stream may stay silent.
    pub idle: Duration,
    /// What the index records of it.
    pub source: SourceInfo,
}

/// What [`follow`] reports while it runs, for the journal and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowNote {
    /// A chain began (its `chain.json` is written).
    Started(Box<ChainStart>),
    /// The chain's position was accepted by a source (`+CONTINUE`).
    Continued {
        /// The chain.
        chain: String,
        /// The history id from here on.
        replid: String,
        /// The offset it continues from.
        offset: u64,
    },
    /// A chain ended (its `end.json` is written).
    Ended(ChainEnd),
    /// The archive's lag ([`ArchiveLag::behind_ms`]), at most once a
    /// second.
    Lag(Option<i64>),
}

/// How often [`FollowNote::Lag`] is sent.
const LAG_EVERY_MS: i64 = 1_000;

/// How often a quiet stream's segment is looked at: one due while no
/// record arrives (the source pings only every `repl-ping-replica-period`)
/// closes at most this late, and a failed upload is retried as often.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// How one [`follow`] ended.
#[derive(Debug)]
pub enum FollowEnd {
    /// `stop` fired; everything received was uploaded.
    Stopped,
    /// The connection could not be made or broke: pick a source (maybe
    /// the same) and call again with the same writer.
    SourceLost(ProbeError),
    /// The chain could not go on (bucket failures, a damaged base, a
    /// gap); it was ended where possible and the writer is gone.
    ArchiveFailed(ArchiveError),
}

/// What one [`follow`] did.
#[derive(Debug)]
pub struct FollowReport {
    /// How it ended.
    pub end: FollowEnd,
    /// Chains it started (a fresh start, or after a lost position).
    pub started: Vec<String>,
    /// Chains it ended, with why.
    pub ended: Vec<ChainEnd>,
    /// The history id announced by `+CONTINUE`, when it continued.
    pub continued: Option<String>,
}

/// Follows `target` into `writer`'s chain until the connection ends or
/// `stop` fires. With no writer it starts a chain from a full
/// resynchronisation; with one it asks to continue its position, and a
/// `+FULLRESYNC` answer ends that chain (the position was lost) and
/// starts a new one from it. `writer` is left holding the chain to
/// continue with, or `None` after [`FollowEnd::ArchiveFailed`]. Each
/// chain started, continued or ended is also sent to `notes` as it
/// happens (a closed receiver is ignored), with the lag now and then.
pub async fn follow(
    store: &BackupStore,
    archive_dir: &str,
    meta: &ChainMeta,
    target: &FollowTarget<'_>,
    writer: &mut Option<ChainWriter>,
    stop: impl Future<Output = ()>,
    notes: &UnboundedSender<FollowNote>,
) -> FollowReport {
    let mut report = FollowReport {
        end: FollowEnd::Stopped,
        started: Vec::new(),
        ended: Vec::new(),
        continued: None,
    };
    let from = writer.as_ref().map(ChainWriter::position);
    let opened = open_follower(
        target.addr,
        target.auth,
        target.tls,
        target.timeouts,
        from.as_ref(),
        target.idle.max(RDB_IDLE_TIMEOUT),
    )
    .await;
    let stream = match opened {
        Err(err) => {
            report.end = FollowEnd::SourceLost(err);
            return report;
        }
        Ok(Opened::Continue { replid, stream }) => {
            if let Some(w) = writer.as_mut() {
                w.set_replid(&replid);
                let _ = notes.send(FollowNote::Continued {
                    chain: w.chain.clone(),
                    replid: replid.clone(),
                    offset: w.position,
                });
            }
            report.continued = Some(replid);
            stream
        }
        Ok(Opened::Full {
            replid,
            offset,
            mut payload,
        }) => {
            if let Some(old) = writer.take() {
                let reason = format!(
                    "position lost: {} answered the continuation of {}:{} with a full resynchronisation",
                    target.source.pod, old.replid, old.position
                );
                if let Ok(end) = old.end(&reason).await {
                    let _ = notes.send(FollowNote::Ended(end.clone()));
                    report.ended.push(end);
                }
            }
            let position = ReplPosition { replid, offset };
            let started = ChainWriter::start(
                store,
                archive_dir,
                meta,
                &target.source,
                &position,
                &mut payload,
            )
            .await;
            match started {
                Ok(w) => {
                    let _ = notes.send(FollowNote::Started(Box::new(w.start.clone())));
                    report.started.push(w.chain.clone());
                    *writer = Some(w);
                }
                Err(err) => {
                    report.end = FollowEnd::ArchiveFailed(err);
                    return report;
                }
            }
            match payload.into_stream().await {
                Ok(stream) => stream,
                Err(err) => {
                    report.end = FollowEnd::SourceLost(err);
                    return report;
                }
            }
        }
    };
    let Some(w) = writer.as_mut() else {
        return report;
    };
    let mut stream = stream;
    stream.set_idle(target.idle);
    report.end = pump(stream, w, &target.source, stop, notes).await;
    if let FollowEnd::ArchiveFailed(err) = &report.end
        && let Some(w) = writer.take()
        && let Ok(end) = w.end(&err.to_string()).await
    {
        let _ = notes.send(FollowNote::Ended(end.clone()));
        report.ended.push(end);
    }
    report
}

/// Moves records from `stream` into `writer` until one of them stops.
async fn pump(
    mut stream: ReplStream,
    writer: &mut ChainWriter,
    source: &SourceInfo,
    stop: impl Future<Output = ()>,
    notes: &UnboundedSender<FollowNote>,
) -> FollowEnd {
    let mut stop = std::pin::pin!(stop);
    let mut lag_sent_ms = i64::MIN;
    loop {
        // Without a deadline a segment due now would wait for the next
        // record: up to a ping period with a quiet source. A deadline, not
        // a timer branch here: cancelling `next_records` could drop
        // records it took or cut an ACK in half.
        let until = Instant::now()
            .checked_add(FLUSH_EVERY)
            .unwrap_or_else(Instant::now);
        let next = tokio::select! {
            biased;
            () = &mut stop => None,
            next = stream.next_records(until) => Some(next),
        };
        match next {
            None => {
                return match writer.flush_all().await {
                    Ok(()) => FollowEnd::Stopped,
                    Err(err) => FollowEnd::ArchiveFailed(err),
                };
            }
            Some(Err(err)) => {
                // The buffered records stay with the writer for the next
                // source; a retry of their upload is the next flush's.
                return FollowEnd::SourceLost(err);
            }
            Some(Ok(records)) => {
                if !records.is_empty()
                    && let Err(err) = writer.push(records, source, wall_ms())
                {
                    return FollowEnd::ArchiveFailed(err);
                }
                let now_ms = wall_ms();
                if let Err(err) = writer.flush(now_ms).await {
                    return FollowEnd::ArchiveFailed(err);
                }
                if now_ms.saturating_sub(lag_sent_ms) >= LAG_EVERY_MS {
                    lag_sent_ms = now_ms;
                    let _ = notes.send(FollowNote::Lag(writer.lag(now_ms).behind_ms));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "archiver_tests.rs"]
mod tests;
