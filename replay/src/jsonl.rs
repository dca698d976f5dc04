//! The JSONL export format, version 1: one self-describing JSON object per
//! line (`docs/replay.md` is its reference).
//!
//! ```text
//! line 1   {"logbook_export":1,"stream":…,"cluster":…,"source":…,"first_seq":…,"head_seq":…,"head_hash":…,"event_format":2,"exported_by":…}
//! line 2   {"snapshot":{"seq":…,"hash":…,"state":{…}}}            only when the events before first_seq were compacted
//! then     {"seq":1,"id":…,"at":…,"epoch":…,"cause":…,"kind":…,"event":{…},"prev":…,"hash":…}   one per event, in seq order
//! ```
//!
//! `event` is the event in serde's externally tagged form
//! (`{"PodObserved":{"pod":"demo-0",…}}`, `"ClusterDeleted"` for the one
//! event without fields): variant and field names are the catalog's, never
//! renamed. Digests are lowercase hex, times RFC 3339 UTC with
//! microseconds. `hash` is the chain hash of the stored frame; a reader
//! re-encodes the event to check it, so an export is as tamper-evident as
//! the journal. An event stored in an older frame format also carries
//! `frame`, its stored bytes in base64, from which it is checked.
//!
//! Field names are stable: new fields may be added; none is renamed or
//! removed within version 1.

use std::io::Write;

use base64::Engine;
use logbook_journal::codec::{self, EVENT_FORMAT_VERSION};
use logbook_journal::{ChainHash, ClusterState, Envelope, Event, StreamId, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The export format version this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The export format version ([`EXPORT_VERSION`]).
    pub logbook_export: u32,
    /// The stream exported.
    pub stream: StreamId,
    /// `namespace/name` of the cluster, when known.
    pub cluster: Option<String>,
    /// Where the journal was read from.
    pub source: String,
    /// Seq of the first event line.
    pub first_seq: u64,
    /// Seq of the last event line (the head when the export was read).
    pub head_seq: u64,
    /// Its chain hash.
    pub head_hash: ChainHash,
    /// The journal's current frame format version.
    pub event_format: u8,
    /// The build that wrote the export.
    pub exported_by: String,
}

/// The snapshot line: the projection the events after `seq` continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotLine {
    /// Last seq folded into `state`.
    pub seq: u64,
    /// Chain hash of that event.
    pub hash: ChainHash,
    /// The projection at `seq`.
    pub state: ClusterState,
}

#[derive(Serialize, Deserialize)]
struct SnapshotWrapper<T> {
    snapshot: T,
}

/// An event line as read.
#[derive(Debug, Clone, Deserialize)]
pub struct EventLine {
    seq: u64,
    id: Uuid,
    at: Timestamp,
    epoch: u64,
    cause: Option<Uuid>,
    kind: String,
    event: Event,
    prev: ChainHash,
    hash: ChainHash,
    #[serde(default)]
    frame: Option<String>,
}

#[derive(Serialize)]
struct EventLineRef<'a> {
    seq: u64,
    id: &'a Uuid,
    at: Timestamp,
    epoch: u64,
    cause: &'a Option<Uuid>,
    kind: &'static str,
    event: &'a Event,
    prev: &'a ChainHash,
    hash: &'a ChainHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<String>,
}

/// A line after the header.
#[derive(Debug, Clone)]
pub enum Line {
    /// The snapshot the events continue.
    Snapshot(Box<SnapshotLine>),
    /// One event.
    Event(Box<EventLine>),
}

/// Parses the header line.
///
/// # Errors
/// What is wrong with it, for people.
pub fn parse_header(text: &str) -> Result<Header, String> {
    let header: Header = serde_json::from_str(text.trim_end()).map_err(|e| e.to_string())?;
    if header.logbook_export != EXPORT_VERSION {
        return Err(format!(
            "export format version {} (this build reads version {EXPORT_VERSION})",
            header.logbook_export
        ));
    }
    StreamId::new(header.stream.as_str()).map_err(|e| e.to_string())?;
    Ok(header)
}

/// Parses a line after the header.
///
/// # Errors
/// What is wrong with it, for people.
pub fn parse_line(text: &str) -> Result<Line, String> {
    let text = text.trim_end();
    match serde_json::from_str::<EventLine>(text) {
        Ok(line) => Ok(Line::Event(Box::new(line))),
        Err(event_err) => match serde_json::from_str::<SnapshotWrapper<SnapshotLine>>(text) {
            Ok(wrapper) => Ok(Line::Snapshot(Box::new(wrapper.snapshot))),
            Err(_) => Err(event_err.to_string()),
        },
    }
}

impl EventLine {
    /// Checks the line as the event of seq `expected` whose predecessor's
    /// hash is `prev`, and returns it with its frame format version and,
    /// when the line carried it, its stored frame.
    ///
    /// # Errors
    /// What differs, naming the seq: a seq out of place (an event removed
    /// or moved), a broken link, an event altered since it was hashed.
    pub fn into_checked(
        self,
        expected: u64,
        prev: &ChainHash,
    ) -> Result<(Envelope, u8, Option<Vec<u8>>), String> {
        if self.seq != expected {
            return Err(format!(
                "seq {} where seq {expected} belongs: an event is missing or out of order",
                self.seq
            ));
        }
        if self.prev != *prev {
            return Err(format!(
                "seq {expected}: prev {} differs from the hash of seq {} ({prev})",
                self.prev,
                expected.saturating_sub(1)
            ));
        }
        if self.kind != self.event.kind() {
            return Err(format!(
                "seq {expected}: kind {} but the event is {}",
                self.kind,
                self.event.kind()
            ));
        }
        let envelope = Envelope {
            seq: self.seq,
            id: self.id,
            at: self.at,
            cause: self.cause,
            epoch: self.epoch,
            body: self.event,
            prev: self.prev,
            hash: self.hash,
        };
        if let Some(encoded) = self.frame {
            let frame = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| format!("seq {expected}: frame is not base64: {e}"))?;
            let stored = codec::decode_event(&frame, expected, prev)
                .map_err(|e| format!("seq {expected}: stored frame: {e}"))?;
            if stored != envelope {
                return Err(format!(
                    "seq {expected}: the event differs from its stored frame: it was altered"
                ));
            }
            let version = frame
                .get(codec::FRAME_HEADER_LEN.saturating_sub(1))
                .copied()
                .unwrap_or(0);
            return Ok((envelope, version, Some(frame)));
        }
        let computed = codec::encode_event(&envelope)
            .map_err(|e| format!("seq {expected}: cannot be encoded: {e}"))?
            .hash;
        if computed != envelope.hash {
            return Err(format!(
                "seq {expected}: hash {} recorded but the event hashes to {computed}: it was altered",
                envelope.hash
            ));
        }
        Ok((envelope, EVENT_FORMAT_VERSION, None))
    }
}

/// Writes the header line.
///
/// # Errors
/// Output errors.
pub fn write_header(out: &mut dyn Write, header: &Header) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")
}

/// Writes the snapshot line.
///
/// # Errors
/// Output errors.
pub fn write_snapshot(out: &mut dyn Write, snapshot: &SnapshotLine) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &SnapshotWrapper { snapshot })?;
    out.write_all(b"\n")
}

/// Writes one event line; `frame` (the stored bytes) is kept when its
/// format version is older than the current one, since re-encoding the
/// event would not give its hash back.
///
/// # Errors
/// Output errors.
pub fn write_event(
    out: &mut dyn Write,
    envelope: &Envelope,
    version: u8,
    frame: Option<&[u8]>,
) -> std::io::Result<()> {
    let frame = frame
        .filter(|_| version != EVENT_FORMAT_VERSION)
        .map(|f| base64::engine::general_purpose::STANDARD.encode(f));
    let line = EventLineRef {
        seq: envelope.seq,
        id: &envelope.id,
        at: envelope.at,
        epoch: envelope.epoch,
        cause: &envelope.cause,
        kind: envelope.body.kind(),
        event: &envelope.body,
        prev: &envelope.prev,
        hash: &envelope.hash,
        frame,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}
