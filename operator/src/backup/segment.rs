//! The continuous archive's format: what the archiver writes to the
//! bucket and what a point-in-time restore reads back.
//!
//! ```text
//! <prefix>/<ns>/<cluster>/_archive/                  (ARCHIVE_DIR; `_` is in no object name)
//!   <chain>/chain.json      the chain's start: base RDB, replid:offset, source, slots
//!   <chain>/base.rdb        the RDB of the full resynchronisation that began it
//!   <chain>/seg-<start>.seg segments of the write stream, in offset order
//!   <chain>/index-<page>.json  the manifest: every segment, its range, times, SHA-256
//!   <chain>/end.json        written when the chain ended (why, where)
//! ```
//!
//! A **chain** is one unbroken replication history of one shard: it
//! starts with a full resynchronisation (its base RDB at `replid:offset`)
//! and continues while every reconnection is accepted as a partial one
//! (`+CONTINUE`), across failovers and switchovers. Once a position is
//! lost (a full resynchronisation is needed again) the chain ends and a
//! new one begins: a chain never has a gap inside it.
//!
//! A **segment** is a run of whole replication commands, each with the
//! stream offset of its first byte and the wall-clock milliseconds at
//! which the archiver received it:
//!
//! ```text
//! segment = "LBSEG1\n" ‖ record*
//! record  = offset u64 BE ‖ received_ms i64 BE ‖ len u32 BE ‖ bytes[len]
//! ```
//!
//! Records are contiguous (`offset + len` is the next one's offset), and
//! a segment's records run from its index entry's `start` to its `end`.
//! The index lists segments in order; entry `i` starts where `i - 1`
//! ended, and the first starts at the chain's base offset.
//!
//! A restore to time `T` loads the base, then every record received at
//! or before `T` ([`aof_until`]): the replication stream is the commands
//! the primary executed, in the append-only file's own format.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The archive's directory name under a cluster's directory.
pub const ARCHIVE_DIR: &str = "_archive/";
/// The chain's start document.
pub const CHAIN_NAME: &str = "chain.json";
/// The chain's base RDB.
pub const BASE_NAME: &str = "base.rdb";
/// The chain's end document.
pub const END_NAME: &str = "end.json";
/// The archive format this build writes and reads.
pub const ARCHIVE_FORMAT: u32 = 1;
/// Segments per index page.
pub const INDEX_PAGE_SEGMENTS: usize = 1000;
/// The first bytes of every segment.
pub const SEGMENT_MAGIC: &[u8] = b"LBSEG1\n";
/// Bytes of a record's header.
pub const RECORD_HEADER: usize = 8 + 8 + 4;
/// The largest single command accepted in a segment (Valkey's own
/// `proto-max-bulk-len` default is 512 MiB; a replication command above
/// this is refused as corrupt rather than allocated).
pub const MAX_RECORD: usize = 512 * 1024 * 1024;

/// The archive directory of a cluster whose backups go under
/// `cluster_dir` (ending in `/`).
pub fn archive_dir(cluster_dir: &str) -> String {
    format!("{cluster_dir}{ARCHIVE_DIR}")
}

/// A chain's directory.
pub fn chain_dir(archive_dir: &str, chain: &str) -> String {
    format!("{archive_dir}{chain}/")
}

/// A chain's name: its start in milliseconds (so a listing sorts chains
/// by start) and 8 characters of the replication id it began with.
pub fn chain_name(started_ms: i64, replid: &str) -> String {
    let tag: String = replid.chars().take(8).collect();
    format!("{started_ms:013}-{tag}")
}

/// Segment `start`'s object name inside its chain's directory.
pub fn segment_name(start: u64) -> String {
    format!("seg-{start:020}.seg")
}

/// Index page `page`'s object name inside its chain's directory.
pub fn index_name(page: usize) -> String {
    format!("index-{page:06}.json")
}

/// `chain.json`: how a chain began. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainStart {
    /// [`ARCHIVE_FORMAT`].
    pub format: u32,
    /// The chain's name (its directory).
    pub chain: String,
    /// The cluster: namespace, name, uid, topology.
    pub namespace: String,
    /// See `namespace`.
    pub cluster: String,
    /// See `namespace`.
    pub uid: String,
    /// See `namespace`.
    pub topology: String,
    /// The pod the full resynchronisation came from.
    pub source: String,
    /// The shard's primary then.
    pub primary: String,
    /// `+FULLRESYNC <replid> <offset>`: the base holds every write up to
    /// `offset` of history `replid`.
    pub replid: String,
    /// See `replid`.
    pub offset: u64,
    /// When `+FULLRESYNC` arrived (ms since the epoch): the base is the
    /// dataset as the fork saw it, at or after this.
    pub base_at_ms: i64,
    /// The base RDB's size, SHA-256 (hex) and RDB version.
    pub base_bytes: u64,
    /// See `base_bytes`.
    pub base_sha256: String,
    /// See `base_bytes`.
    pub rdb_version: u32,
    /// The shard's slots when it began (Cluster), as `[start, end]` pairs.
    #[serde(default)]
    pub slots: Vec<[u16; 2]>,
}

/// `end.json`: how a chain ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainEnd {
    /// The chain.
    pub chain: String,
    /// The offset after its last archived byte.
    pub end: u64,
    /// When it ended (ms).
    pub at_ms: i64,
    /// Why (the position was lost, archiving was turned off, ...).
    pub reason: String,
}

/// One segment, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentEntry {
    /// Its object name inside the chain's directory.
    pub name: String,
    /// The offset of its first byte.
    pub start: u64,
    /// The offset after its last byte.
    pub end: u64,
    /// When its first and last commands were received (ms).
    pub first_ms: i64,
    /// See `first_ms`.
    pub last_ms: i64,
    /// Records in it.
    pub records: u64,
    /// The object's size and SHA-256 (hex).
    pub bytes: u64,
    /// See `bytes`.
    pub sha256: String,
    /// The replication id the source announced while it was received.
    pub replid: String,
    /// The pod it was received from.
    pub source: String,
    /// The shard's slots as the operator saw them when it was written
    /// (Cluster), as `[start, end]` pairs.
    #[serde(default)]
    pub slots: Vec<[u16; 2]>,
}

/// One index page: up to [`INDEX_PAGE_SEGMENTS`] entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexPage {
    /// [`ARCHIVE_FORMAT`].
    pub format: u32,
    /// The chain.
    pub chain: String,
    /// This page's number (0 first).
    pub page: usize,
    /// Its segments, in offset order.
    pub segments: Vec<SegmentEntry>,
}

/// One command of the replication stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The stream offset of its first byte.
    pub offset: u64,
    /// When the archiver received it (ms since the epoch).
    pub received_ms: i64,
    /// The command, as the primary sent it (a RESP array).
    pub bytes: Vec<u8>,
}

impl Record {
    /// The offset after it.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// What is wrong with a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// It does not start with [`SEGMENT_MAGIC`].
    #[error("not an archive segment (no LBSEG1 header)")]
    Magic,
    /// It ends inside a record.
    #[error("truncated: a record at byte {at} is cut short")]
    Truncated {
        /// Where the record starts in the object.
        at: usize,
    },
    /// A record is larger than [`MAX_RECORD`].
    #[error("a record at byte {at} claims {len} bytes")]
    TooLarge {
        /// Where.
        at: usize,
        /// How large.
        len: usize,
    },
    /// A record does not start where the one before it ended.
    #[error("records not contiguous: offset {found} where {expected} was due")]
    NotContiguous {
        /// The offset due.
        expected: u64,
        /// The offset found.
        found: u64,
    },
    /// Its bytes' SHA-256 is not the index's.
    #[error("SHA-256 {found} where the index says {expected}")]
    Checksum {
        /// The index's.
        expected: String,
        /// The bytes'.
        found: String,
    },
    /// Its records do not span the index entry's range.
    #[error("records span {found_start}..{found_end} where the index says {start}..{end}")]
    Range {
        /// The index's.
        start: u64,
        /// See `start`.
        end: u64,
        /// The records'.
        found_start: u64,
        /// See `found_start`.
        found_end: u64,
    },
    /// A record is not one whole RESP array.
    #[error("the record at offset {offset} is not one whole command")]
    NotACommand {
        /// Its offset.
        offset: u64,
    },
}

/// Encodes `records` as one segment.
pub fn encode_segment(records: &[Record]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| RECORD_HEADER + r.bytes.len()).sum();
    let mut out = Vec::with_capacity(SEGMENT_MAGIC.len() + size);
    out.extend_from_slice(SEGMENT_MAGIC);
    for r in records {
        out.extend_from_slice(&r.offset.to_be_bytes());
        out.extend_from_slice(&r.received_ms.to_be_bytes());
        out.extend_from_slice(
            &u32::try_from(r.bytes.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&r.bytes);
    }
    out
}

/// Decodes a segment's records, checking the framing and that they are
/// contiguous (not the index: see [`check_segment`]).
///
/// # Errors
/// [`SegmentError`] naming what is wrong.
pub fn decode_segment(bytes: &[u8]) -> Result<Vec<Record>, SegmentError> {
    let body = bytes
        .strip_prefix(SEGMENT_MAGIC)
        .ok_or(SegmentError::Magic)?;
    let mut out: Vec<Record> = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        let head = body
            .get(at..at + RECORD_HEADER)
            .ok_or(SegmentError::Truncated { at })?;
        let (off, rest) = head.split_at(8);
        let (ms, len) = rest.split_at(8);
        let offset =
            u64::from_be_bytes(off.try_into().map_err(|_| SegmentError::Truncated { at })?);
        let received_ms =
            i64::from_be_bytes(ms.try_into().map_err(|_| SegmentError::Truncated { at })?);
        let len = u32::from_be_bytes(len.try_into().map_err(|_| SegmentError::Truncated { at })?);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_RECORD {
            return Err(SegmentError::TooLarge { at, len });
        }
        let start = at + RECORD_HEADER;
        let data = body
            .get(start..start + len)
            .ok_or(SegmentError::Truncated { at })?;
        if let Some(prev) = out.last()
            && prev.end() != offset
        {
            return Err(SegmentError::NotContiguous {
                expected: prev.end(),
                found: offset,
            });
        }
        if command_len(data) != Some(data.len()) {
            return Err(SegmentError::NotACommand { offset });
        }
        out.push(Record {
            offset,
            received_ms,
            bytes: data.to_vec(),
        });
        at = start + len;
    }
    Ok(out)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a segment's bytes against its index entry (checksum, range)
/// and decodes it.
///
/// # Errors
/// [`SegmentError`] naming what is wrong.
pub fn check_segment(entry: &SegmentEntry, bytes: &[u8]) -> Result<Vec<Record>, SegmentError> {
    let found = sha256_hex(bytes);
    if found != entry.sha256 {
        return Err(SegmentError::Checksum {
            expected: entry.sha256.clone(),
            found,
        });
    }
    let records = decode_segment(bytes)?;
    let found_start = records.first().map_or(entry.start, |r| r.offset);
    let found_end = records.last().map_or(entry.start, Record::end);
    if found_start != entry.start || found_end != entry.end {
        return Err(SegmentError::Range {
            start: entry.start,
            end: entry.end,
            found_start,
            found_end,
        });
    }
    Ok(records)
}

/// The length of the one whole RESP command (`*N\r\n` then `N` bulk
/// strings) at the start of `buf`, or `None` while it is incomplete or
/// when it is not one.
pub fn command_len(buf: &[u8]) -> Option<usize> {
    let (count, mut at) = header(buf, b'*')?;
    for _ in 0..count {
        let (len, body) = header(buf.get(at..)?, b'$')?;
        let end = at + body + len + 2;
        if buf.get(end - 2..end)? != b"\r\n" {
            return None;
        }
        at = end;
    }
    Some(at)
}

/// `<kind><n>\r\n` at the start of `buf`: `(n, bytes of the header)`.
fn header(buf: &[u8], kind: u8) -> Option<(usize, usize)> {
    if *buf.first()? != kind {
        return None;
    }
    let nl = buf.iter().take(32).position(|&b| b == b'\n')?;
    if nl < 2 || buf.get(nl - 1) != Some(&b'\r') {
        return None;
    }
    let n: usize = std::str::from_utf8(buf.get(1..nl - 1)?)
        .ok()?
        .parse()
        .ok()?;
    Some((n, nl + 1))
}

/// The command's name (its first argument), lowercased.
pub fn command_name(cmd: &[u8]) -> Option<String> {
    let (_, at) = header(cmd, b'*')?;
    let (len, body) = header(cmd.get(at..)?, b'$')?;
    let name = cmd.get(at + body..at + body + len)?;
    Some(String::from_utf8_lossy(name).to_ascii_lowercase())
}

/// The commands' arguments (for filters that need a key).
pub fn command_args(cmd: &[u8]) -> Option<Vec<&[u8]>> {
    let (count, mut at) = header(cmd, b'*')?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, body) = header(cmd.get(at..)?, b'$')?;
        out.push(cmd.get(at + body..at + body + len)?);
        at += body + len + 2;
    }
    Some(out)
}

/// What [`aof_until`] kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cut {
    /// Commands written to the append-only file.
    pub commands: u64,
    /// The offset after the last record taken (the stream's position the
    /// restored dataset corresponds to).
    pub end: u64,
    /// When the last record taken was received (ms), if any.
    pub last_ms: Option<i64>,
    /// Records received after the cut and left out.
    pub left_out: u64,
}

/// Appends to `aof` every command of `records` received at or before
/// `until_ms`, as an append-only file increment: the stream's own
/// replication-only commands (`PING`, `REPLCONF`, `CLUSTER SYNCSLOTS`)
/// are left out, and a
/// transaction the cut would split (`MULTI` without its `EXEC`) is left
/// out whole. `cut` carries the state across calls (one per segment, in
/// order); [`finish_aof`] drops an unfinished transaction at the end.
pub fn aof_until(records: &[Record], until_ms: i64, cut: &mut AofCut, aof: &mut Vec<u8>) {
    for r in records {
        if r.received_ms > until_ms {
            cut.done = true;
        }
        if cut.done {
            cut.cut.left_out += 1;
            continue;
        }
        let name = command_name(&r.bytes).unwrap_or_default();
        let before_ms = cut.cut.last_ms;
        cut.cut.end = r.end();
        cut.cut.last_ms = Some(r.received_ms);
        match name.as_str() {
            // The stream's own: keepalives, acknowledgements, and the
            // framing of an atomic slot migration (`CLUSTER SYNCSLOTS`
            // around the imported keys, which come as ordinary writes).
            "ping" | "replconf" | "cluster" => {}
            "multi" => {
                cut.open = Some((aof.len(), r.offset, before_ms));
                aof.extend_from_slice(&r.bytes);
            }
            "exec" => {
                cut.open = None;
                aof.extend_from_slice(&r.bytes);
                cut.cut.commands += 1;
            }
            _ => {
                aof.extend_from_slice(&r.bytes);
                if cut.open.is_none() {
                    cut.cut.commands += 1;
                }
            }
        }
    }
}

/// The running state of [`aof_until`].
#[derive(Debug, Clone, Default)]
pub struct AofCut {
    /// What was kept so far.
    pub cut: Cut,
    /// Where an open `MULTI` begins in the output, its offset, and the
    /// time of the record before it.
    open: Option<(usize, u64, Option<i64>)>,
    /// A record past the cut was seen: every later one is left out.
    done: bool,
}

/// Ends an [`aof_until`] run: a transaction still open at the cut is
/// removed from `aof` (its `EXEC` came after `T`, so none of it had
/// happened by then).
pub fn finish_aof(mut cut: AofCut, aof: &mut Vec<u8>) -> Cut {
    if let Some((at, offset, before_ms)) = cut.open.take() {
        aof.truncate(at);
        cut.cut.end = offset;
        cut.cut.last_ms = before_ms;
    }
    cut.cut
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
