//! Where a journal is read from, and the one scan every verb is built on.
//!
//! A scan hands each event, in seq order, to a [`Visit`], after checking
//! its frame (length, CRC, format version, decoding), its seq and its link
//! in the hash chain: a verb never reports on an event that does not
//! verify. A stream whose first events were compacted away starts from the
//! stored snapshot (the [`Start`] says so). A scan reads the head once and
//! stops there, so a journal a running operator appends to is read at one
//! commit point; [`Input::follow`] then picks up what was appended since.
//!
//! Nothing here writes: a store is only read (`head`, `read`,
//! `get_snapshot`), a file only opened for reading.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use logbook_journal::codec;
use logbook_journal::reader::READ_CHUNK;
use logbook_journal::snapshot;
use logbook_journal::{ChainHash, ClusterState, Envelope, Head, JournalStore, StreamId};

use crate::error::{ReplayError, Result};
use crate::jsonl::{self, Line};

/// A journal to replay.
pub enum Input<S> {
    /// One stream of a journal store (a sled directory, a cluster's
    /// ConfigMaps, a memory store in tests).
    Store {
        /// The store; only read.
        store: S,
        /// The stream.
        stream: StreamId,
        /// `namespace/name` of the cluster, when known.
        cluster: Option<String>,
        /// Where the journal is, for messages.
        place: String,
    },
    /// A JSONL export (`logbook replay export --format jsonl`).
    File(PathBuf),
}

/// What is known of the journal before its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The stream.
    pub stream: StreamId,
    /// `namespace/name` of the cluster, when known.
    pub cluster: Option<String>,
    /// Where the journal is, for messages.
    pub place: String,
    /// The state folding starts from: empty, or the snapshot's when the
    /// events before it were compacted away.
    pub base: ClusterState,
    /// Seq covered by that snapshot, when the scan starts from one.
    pub from_snapshot: Option<u64>,
    /// The digest that snapshot's state carries (format 13 on), checked
    /// by the audit against the journal's `SnapshotRecorded`.
    pub snapshot_digest: Option<logbook_journal::codec::StateDigest>,
    /// The head the scan reads up to.
    pub head: Head,
}

impl Start {
    /// The seq of the first event the scan hands over.
    #[must_use]
    pub const fn first_seq(&self) -> u64 {
        self.base.last_seq.saturating_add(1)
    }
}

/// The stored form of an event, for exports that keep it.
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a> {
    /// The frame's format version.
    pub version: u8,
    /// The frame's bytes, when the source has them.
    pub frame: Option<&'a [u8]>,
}

/// Whether a scan goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Hand over the next event.
    Continue,
    /// Stop here (the point asked for was reached).
    Stop,
}

/// What a verb does with a journal, event by event.
pub trait Visit {
    /// Called once, before the first event.
    ///
    /// # Errors
    /// The verb's own (output) errors.
    fn start(&mut self, start: &Start) -> Result<()> {
        let _ = start;
        Ok(())
    }

    /// Called for each event, in seq order, once it verified.
    ///
    /// # Errors
    /// The verb's own (output) errors.
    fn event(&mut self, envelope: &Envelope, raw: Raw<'_>) -> Result<Flow>;
}

/// Where a scan stopped: what [`Input::follow`] continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Last seq handed over (or the start's base).
    pub seq: u64,
    /// Its chain hash.
    pub hash: ChainHash,
    /// For a file: the byte offset after the last line read.
    offset: u64,
    /// For a file: lines read so far.
    line: u64,
}

impl<S: JournalStore> Input<S> {
    /// Where the journal is, for messages.
    #[must_use]
    pub fn place(&self) -> String {
        match self {
            Self::Store { place, .. } => place.clone(),
            Self::File(path) => format!("export file {}", path.display()),
        }
    }

    /// Reads every event up to the head (or `until`), checking each, and
    /// hands them to `visit`.
    ///
    /// # Errors
    /// [`ReplayError::Corrupt`] / [`ReplayError::BadLine`] at the first
    /// event that does not verify; [`ReplayError::Unreadable`] when the
    /// source is no journal; store errors; the visitor's errors.
    pub async fn scan(&self, until: Option<u64>, visit: &mut dyn Visit) -> Result<Position> {
        match self {
            Self::Store {
                store,
                stream,
                cluster,
                place,
            } => {
                let start = store_start(store, stream, cluster.clone(), place).await?;
                visit.start(&start)?;
                let from = Position {
                    seq: start.base.last_seq,
                    hash: start.base.last_hash,
                    offset: 0,
                    line: 0,
                };
                let last = until.map_or(start.head.seq, |u| u.min(start.head.seq));
                store_events(store, stream, place, from, last, visit).await
            }
            Self::File(path) => file_scan(path, until, visit),
        }
    }

    /// After a scan that ended at `position`, waits `poll` between looks
    /// and hands over every event appended since, until the visitor stops
    /// (or the stream records the cluster's deletion).
    ///
    /// # Errors
    /// As [`Input::scan`].
    pub async fn follow<F, Fut>(
        &self,
        mut position: Position,
        poll: Duration,
        visit: &mut dyn Visit,
        sleep: F,
    ) -> Result<()>
    where
        F: Fn(Duration) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut stop = StopAtDeletion {
            inner: visit,
            done: false,
        };
        loop {
            position = match self {
                Self::Store {
                    store,
                    stream,
                    place,
                    ..
                } => {
                    let head = store.head(stream).await.map_err(store_error(place))?;
                    store_events(store, stream, place, position, head.seq, &mut stop).await?
                }
                Self::File(path) => file_tail(path, position, &mut stop)?,
            };
            if stop.done {
                return Ok(());
            }
            sleep(poll).await;
        }
    }
}

/// Passes events on, and ends a follow once the cluster's deletion was
/// handed over (its stream ends there) or the visitor stopped.
struct StopAtDeletion<'a> {
    inner: &'a mut dyn Visit,
    done: bool,
}

impl Visit for StopAtDeletion<'_> {
    fn event(&mut self, envelope: &Envelope, raw: Raw<'_>) -> Result<Flow> {
        let flow = self.inner.event(envelope, raw)?;
        // The stream ends with the deletion: `ClusterDeleted` in older
        // journals, the owned objects all deleted in newer ones.
        let ended = matches!(
            envelope.body,
            logbook_journal::Event::ClusterDeleted
                | logbook_journal::Event::OwnedObjectsDeleted { complete: true, .. }
        );
        if flow == Flow::Stop || ended {
            self.done = true;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }
}

fn store_error(place: &str) -> impl Fn(logbook_journal::StoreError) -> ReplayError + '_ {
    move |source| ReplayError::Store {
        place: place.to_owned(),
        source: Box::new(source),
    }
}

/// The head, and where folding starts: seq 1 when it is stored, else the
/// snapshot that covers what compaction removed.
async fn store_start<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    cluster: Option<String>,
    place: &str,
) -> Result<Start> {
    let head = store.head(stream).await.map_err(store_error(place))?;
    let first = store
        .read(stream, 1, 1)
        .await
        .map_err(store_error(place))?
        .iter()
        .next()
        .map(|(seq, _)| seq);
    let mut start = Start {
        stream: stream.clone(),
        cluster,
        place: place.to_owned(),
        base: ClusterState::new(),
        from_snapshot: None,
        snapshot_digest: None,
        head,
    };
    match first {
        None if head.seq == 0 => Err(ReplayError::Unreadable {
            place: place.to_owned(),
            what: format!("stream {stream} has no events"),
        }),
        Some(1) | None => Ok(start),
        Some(first) => {
            let snapshot = snapshot::load(store, stream)
                .await
                .map_err(|e| ReplayError::Unreadable {
                    place: place.to_owned(),
                    what: format!(
                        "stream {stream}: events before seq {first} were compacted and the snapshot covering them cannot be read: {e}"
                    ),
                })?;
            match snapshot {
                Some(s) if s.seq.saturating_add(1) >= first => {
                    start.from_snapshot = Some(s.seq);
                    start.snapshot_digest = Some(s.digest);
                    start.base = s.state;
                    Ok(start)
                }
                other => Err(ReplayError::Unreadable {
                    place: place.to_owned(),
                    what: format!(
                        "stream {stream}: events before seq {first} were compacted and no snapshot covers them (snapshot: {})",
                        other.map_or_else(|| "none".to_owned(), |s| format!("seq {}", s.seq))
                    ),
                }),
            }
        }
    }
}

/// Hands over the events after `from` up to `last`, checking each.
async fn store_events<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    place: &str,
    from: Position,
    last: u64,
    visit: &mut dyn Visit,
) -> Result<Position> {
    let mut at = from;
    while at.seq < last {
        let next = at.seq.saturating_add(1);
        let want = usize::try_from(last.saturating_sub(at.seq)).unwrap_or(usize::MAX);
        let batch = store
            .read(stream, next, want.min(READ_CHUNK))
            .await
            .map_err(store_error(place))?;
        if batch.is_empty() {
            return Err(ReplayError::Corrupt {
                place: place.to_owned(),
                stream: stream.to_string(),
                seq: next,
                source: Box::new(codec::CodecError::SeqMismatch {
                    expected: next,
                    found: 0,
                }),
            });
        }
        for (seq, frame) in batch.iter() {
            let expected = at.seq.saturating_add(1);
            if seq > last {
                return Ok(at);
            }
            if seq != expected {
                return Err(ReplayError::Corrupt {
                    place: place.to_owned(),
                    stream: stream.to_string(),
                    seq: expected,
                    source: Box::new(codec::CodecError::SeqMismatch {
                        expected,
                        found: seq,
                    }),
                });
            }
            let envelope = codec::decode_event(frame, seq, &at.hash).map_err(|source| {
                ReplayError::Corrupt {
                    place: place.to_owned(),
                    stream: stream.to_string(),
                    seq,
                    source: Box::new(source),
                }
            })?;
            let raw = Raw {
                version: frame
                    .get(codec::FRAME_HEADER_LEN.saturating_sub(1))
                    .copied()
                    .unwrap_or(0),
                frame: Some(frame),
            };
            at.seq = seq;
            at.hash = envelope.hash;
            if visit.event(&envelope, raw)? == Flow::Stop {
                return Ok(at);
            }
        }
    }
    Ok(at)
}

fn open(path: &PathBuf) -> Result<BufReader<File>> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|e| ReplayError::Unreadable {
            place: format!("export file {}", path.display()),
            what: format!("cannot open it: {e}"),
        })
}

/// Reads an export: the header, the snapshot line if any, then events.
fn file_scan(path: &PathBuf, until: Option<u64>, visit: &mut dyn Visit) -> Result<Position> {
    let place = format!("export file {}", path.display());
    let mut reader = open(path)?;
    let unreadable = |e: std::io::Error| ReplayError::Unreadable {
        place: place.clone(),
        what: format!("cannot read it: {e}"),
    };
    let mut text = String::new();
    let mut offset = reader.read_line(&mut text).map_err(unreadable)? as u64;
    let mut line = 1u64;
    let header = jsonl::parse_header(&text).map_err(|what| ReplayError::Unreadable {
        place: place.clone(),
        what: format!("line 1 is not a Logbook export header: {what}"),
    })?;
    let mut start = Start {
        stream: header.stream.clone(),
        cluster: header.cluster.clone(),
        place: place.clone(),
        base: ClusterState::new(),
        from_snapshot: None,
        // An export carries the state, not the stored frame's digest.
        snapshot_digest: None,
        head: Head {
            seq: header.head_seq,
            hash: header.head_hash,
        },
    };
    // A snapshot line, if any, comes second; anything else there is the
    // first event, read again below with the rest.
    text.clear();
    let n = reader.read_line(&mut text).map_err(unreadable)?;
    if let Ok(Line::Snapshot(snapshot)) = jsonl::parse_line(&text) {
        offset = offset.saturating_add(n as u64);
        line = line.saturating_add(1);
        start.from_snapshot = Some(snapshot.seq);
        start.base = snapshot.state;
    }
    reader.seek(SeekFrom::Start(offset)).map_err(unreadable)?;
    if start.from_snapshot.is_none() && header.first_seq > 1 {
        return Err(ReplayError::Unreadable {
            place,
            what: format!(
                "the export starts at seq {} and carries no snapshot of what came before",
                header.first_seq
            ),
        });
    }
    visit.start(&start)?;
    let mut position = Position {
        seq: start.base.last_seq,
        hash: start.base.last_hash,
        offset,
        line,
    };
    file_lines(
        &place,
        &mut reader,
        &mut position,
        until.unwrap_or(u64::MAX),
        visit,
    )?;
    Ok(position)
}

/// Reads the lines appended to an export since `position`.
fn file_tail(path: &PathBuf, mut position: Position, visit: &mut dyn Visit) -> Result<Position> {
    let place = format!("export file {}", path.display());
    let mut reader = open(path)?;
    reader
        .seek(SeekFrom::Start(position.offset))
        .map_err(|e| ReplayError::Unreadable {
            place: place.clone(),
            what: format!("cannot read it: {e}"),
        })?;
    file_lines(&place, &mut reader, &mut position, u64::MAX, visit)?;
    Ok(position)
}

fn file_lines(
    place: &str,
    reader: &mut BufReader<File>,
    position: &mut Position,
    last: u64,
    visit: &mut dyn Visit,
) -> Result<()> {
    let mut text = String::new();
    while position.seq < last {
        text.clear();
        let n = reader
            .read_line(&mut text)
            .map_err(|e| ReplayError::Unreadable {
                place: place.to_owned(),
                what: format!("cannot read it: {e}"),
            })?;
        // A line still being written (no newline yet) is read again later.
        if n == 0 || !text.ends_with('\n') {
            return Ok(());
        }
        if text.trim().is_empty() {
            position.offset = position.offset.saturating_add(n as u64);
            position.line = position.line.saturating_add(1);
            continue;
        }
        let flow = file_event(place, &text, position, visit)?;
        position.offset = position.offset.saturating_add(n as u64);
        if flow == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

/// Parses, checks and hands over one event line.
fn file_event(
    place: &str,
    text: &str,
    position: &mut Position,
    visit: &mut dyn Visit,
) -> Result<Flow> {
    position.line = position.line.saturating_add(1);
    let expected = position.seq.saturating_add(1);
    let bad = |what: String| ReplayError::BadLine {
        place: place.to_owned(),
        line: position.line,
        what,
        seq: expected,
    };
    let line = match jsonl::parse_line(text) {
        Ok(Line::Event(line)) => line,
        Ok(Line::Snapshot(_)) => {
            return Err(bad(format!(
                "a snapshot line where the event of seq {expected} belongs"
            )));
        }
        Err(what) => {
            return Err(bad(format!(
                "the event of seq {expected} does not parse: {what}"
            )));
        }
    };
    let (envelope, version, frame) = line.into_checked(expected, &position.hash).map_err(bad)?;
    position.seq = envelope.seq;
    position.hash = envelope.hash;
    let raw = Raw {
        version,
        frame: frame.as_deref(),
    };
    visit.event(&envelope, raw)
}
