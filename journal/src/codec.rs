//! The codec: the only place that knows bincode and the frame layout.
//!
//! ```text
//! frame = len u32 LE ‖ crc32c u32 LE ‖ version u8 ‖ payload
//! ```
//! `len` is the number of bytes after the 9-byte header (`|payload|`);
//! `crc32c` covers `version ‖ payload`. An event payload is
//! `bincode(core) ‖ hash[32]`; a snapshot payload is
//! `seq u64 LE ‖ hash[32] ‖ digest[32] ‖ JSON(state)`, where `digest` is
//! the SHA-256 of the JSON bytes that follow it: the state with named
//! fields, so that a field added to the projection reads as its default
//! from an older snapshot, with no copy of the older layout. bincode 2
//! runs with
//! `config::standard()` (little-endian, varint integers) plus a decode
//! limit, which changes no byte of the encoding but stops a corrupt length
//! from requesting a huge allocation. `docs/journal-format.md` spells the
//! encoding out for other readers.
//!
//! Old event format versions are upcast here on read; writers always
//! write the current version.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chain;
use crate::envelope::Envelope;
use crate::event::Event;
use crate::ids::ChainHash;
use crate::store::{EncodedEvent, EncodedSnapshot};
use crate::time::Timestamp;

/// Format version written in every event frame. Version 2 added `epoch`
/// and `gap_ms` to `OperatorStarted`; version-1 frames are upcast on read.
pub const EVENT_FORMAT_VERSION: u8 = 2;
/// The oldest event format version this build still reads.
pub const OLDEST_EVENT_FORMAT_VERSION: u8 = 1;
/// Variant index of `Event::OperatorStarted`, the one event whose shape
/// changed between versions 1 and 2.
const OPERATOR_STARTED_VARIANT: u32 = 16;
/// Format version written in every snapshot frame: the one snapshot
/// format, JSON with named fields and a digest. Snapshots of the
/// positional formats of builds before the first release (6 to 12) are
/// refused as [`CodecError::UnsupportedVersion`]; the projection is then
/// folded again from the journal's events.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 13;
/// Bytes of a snapshot payload before its JSON: seq (8), chain
/// hash (32), state digest (32).
const SNAPSHOT_HEAD_LEN: usize = 8 + HASH_LEN + HASH_LEN;
/// Bytes before the payload: len (4) + crc32c (4) + version (1).
pub const FRAME_HEADER_LEN: usize = 9;
/// Size of the chain hash that ends an event payload.
pub const HASH_LEN: usize = 32;
/// Largest event payload accepted; ConfigMap segments must hold whole
/// frames well under 1 MiB, so anything bigger is corrupt or hostile.
pub const MAX_EVENT_PAYLOAD: usize = 512 * 1024;
/// Largest snapshot payload accepted.
pub const MAX_SNAPSHOT_PAYLOAD: usize = 256 * 1024 * 1024;

const EVENT_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_EVENT_PAYLOAD>,
> = bincode::config::standard().with_limit::<MAX_EVENT_PAYLOAD>();

/// Why bytes could not be turned into (or from) an event or snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than the header, or than the header's length, announce:
    /// a partially written frame when it is the last one.
    #[error("truncated frame: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header says the frame has (or 9 for the header itself).
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },
    /// Bytes follow the frame where none should (one frame per record).
    #[error("{extra} unexpected bytes after the frame")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The length field is beyond any valid frame.
    #[error("frame length {len} exceeds the maximum {max}")]
    TooLong {
        /// Declared length.
        len: usize,
        /// Maximum allowed.
        max: usize,
    },
    /// The CRC does not match the contents: bit rot, a torn write or tampering.
    #[error("crc32c mismatch: stored {stored:08x}, computed {computed:08x}")]
    BadCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// A format version this build cannot read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The payload is not a valid encoding (or the payload is too short to
    /// hold the hash).
    #[error("undecodable payload: {0}")]
    Undecodable(String),
    /// Encoding failed (a value bincode cannot represent).
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The seq inside the payload differs from where the frame is stored.
    #[error("frame holds seq {found} but is stored at seq {expected}")]
    SeqMismatch {
        /// Seq of the storage position.
        expected: u64,
        /// Seq found in the payload.
        found: u64,
    },
    /// The recomputed chain hash differs from the stored one: the event, its
    /// hash or a predecessor was altered.
    #[error("hash chain broken: stored {stored}, computed {computed}")]
    HashMismatch {
        /// Hash stored in the frame.
        stored: ChainHash,
        /// Hash recomputed from `prev` and the core.
        computed: ChainHash,
    },
}

/// The envelope core as written: borrowed, so encoding copies nothing.
#[derive(Serialize)]
struct CoreRef<'a> {
    seq: u64,
    id: &'a Uuid,
    at: Timestamp,
    cause: &'a Option<Uuid>,
    epoch: u64,
    body: &'a Event,
}

/// The envelope core as read.
#[derive(Deserialize)]
struct CoreOwned {
    seq: u64,
    id: Uuid,
    at: Timestamp,
    cause: Option<Uuid>,
    epoch: u64,
    body: Event,
}

/// A validated frame: its version and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameView<'a> {
    /// The format version byte.
    pub version: u8,
    /// The payload (after the header).
    pub payload: &'a [u8],
}

fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

/// Parses the first frame in `bytes`, checking length and CRC; returns it
/// and the number of bytes it occupies (so concatenated frames can be walked).
///
/// # Errors
/// [`CodecError::Truncated`], [`CodecError::TooLong`], [`CodecError::BadCrc`].
pub fn parse_frame(bytes: &[u8], max_payload: usize) -> Result<(FrameView<'_>, usize), CodecError> {
    let header = |at| {
        read_u32_le(bytes, at).ok_or(CodecError::Truncated {
            needed: FRAME_HEADER_LEN,
            available: bytes.len(),
        })
    };
    let len = usize::try_from(header(0)?).unwrap_or(usize::MAX);
    let stored = header(4)?;
    if len > max_payload {
        return Err(CodecError::TooLong {
            len,
            max: max_payload,
        });
    }
    let version = *bytes.get(8).ok_or(CodecError::Truncated {
        needed: FRAME_HEADER_LEN,
        available: bytes.len(),
    })?;
    let end = FRAME_HEADER_LEN.saturating_add(len);
    let payload = bytes
        .get(FRAME_HEADER_LEN..end)
        .ok_or(CodecError::Truncated {
            needed: end,
            available: bytes.len(),
        })?;
    let computed = crc32c::crc32c_append(crc32c::crc32c(&[version]), payload);
    if computed != stored {
        return Err(CodecError::BadCrc { stored, computed });
    }
    Ok((FrameView { version, payload }, end))
}

/// Parses a record that must hold exactly one frame.
fn parse_exact(bytes: &[u8], max_payload: usize) -> Result<FrameView<'_>, CodecError> {
    let (view, used) = parse_frame(bytes, max_payload)?;
    match bytes.len().checked_sub(used) {
        Some(0) => Ok(view),
        extra => Err(CodecError::TrailingBytes {
            extra: extra.unwrap_or(0),
        }),
    }
}

/// Writes the header in front of a payload that was encoded after 9
/// placeholder bytes.
fn seal_frame(frame: &mut [u8], version: u8, max_payload: usize) -> Result<(), CodecError> {
    let (header, payload) = frame
        .split_at_mut_checked(FRAME_HEADER_LEN)
        .ok_or(CodecError::Encode("frame shorter than its header".into()))?;
    if payload.len() > max_payload {
        return Err(CodecError::TooLong {
            len: payload.len(),
            max: max_payload,
        });
    }
    let len = u32::try_from(payload.len()).map_err(|_| CodecError::TooLong {
        len: payload.len(),
        max: max_payload,
    })?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[version]), payload);
    let mut head = [0u8; FRAME_HEADER_LEN];
    let (len_bytes, rest) = head.split_at_mut(4);
    let (crc_bytes, ver) = rest.split_at_mut(4);
    len_bytes.copy_from_slice(&len.to_le_bytes());
    crc_bytes.copy_from_slice(&crc.to_le_bytes());
    ver.copy_from_slice(&[version]);
    header.copy_from_slice(&head);
    Ok(())
}

/// Encodes `envelope` (ignoring its `hash` field) as the frame of an event
/// whose predecessor's hash is `envelope.prev`; returns the frame with the
/// computed hash, which the caller stores back into the envelope.
///
/// # Errors
/// [`CodecError::Encode`] / [`CodecError::TooLong`] for values that cannot
/// be encoded within the limits.
pub fn encode_event(envelope: &Envelope) -> Result<EncodedEvent, CodecError> {
    let core = CoreRef {
        seq: envelope.seq,
        id: &envelope.id,
        at: envelope.at,
        cause: &envelope.cause,
        epoch: envelope.epoch,
        body: &envelope.body,
    };
    let mut frame = Vec::with_capacity(128);
    frame.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    bincode::serde::encode_into_std_write(&core, &mut frame, EVENT_CONFIG)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    let hash = chain::link(
        &envelope.prev,
        envelope.seq,
        frame.get(FRAME_HEADER_LEN..).unwrap_or_default(),
    );
    frame.extend_from_slice(&hash.0);
    seal_frame(&mut frame, EVENT_FORMAT_VERSION, MAX_EVENT_PAYLOAD)?;
    Ok(EncodedEvent {
        seq: envelope.seq,
        hash,
        frame,
    })
}

/// A frame split into its decoded core, the core's bytes and the stored hash.
struct DecodedParts<'a> {
    core: CoreOwned,
    core_bytes: &'a [u8],
    stored: ChainHash,
}

/// Decodes a version-1 core: identical to version 2 except that
/// `OperatorStarted` had only `version` and `instance`; it is upcast with
/// the envelope's epoch and no gap.
fn decode_core_v1(core_bytes: &[u8]) -> Result<(CoreOwned, usize), CodecError> {
    let undecodable = |e: bincode::error::DecodeError| CodecError::Undecodable(e.to_string());
    type Prefix = (u64, Uuid, Timestamp, Option<Uuid>, u64);
    let ((seq, id, at, cause, epoch), prefix): (Prefix, usize) =
        bincode::serde::decode_from_slice(core_bytes, EVENT_CONFIG).map_err(undecodable)?;
    let body_bytes = core_bytes.get(prefix..).unwrap_or_default();
    let (variant, _): (u32, usize) =
        bincode::serde::decode_from_slice(body_bytes, EVENT_CONFIG).map_err(undecodable)?;
    if variant != OPERATOR_STARTED_VARIANT {
        return bincode::serde::decode_from_slice(core_bytes, EVENT_CONFIG).map_err(undecodable);
    }
    let ((_, version, instance), body_len): ((u32, String, String), usize) =
        bincode::serde::decode_from_slice(body_bytes, EVENT_CONFIG).map_err(undecodable)?;
    let core = CoreOwned {
        seq,
        id,
        at,
        cause,
        epoch,
        body: Event::OperatorStarted {
            version,
            instance,
            epoch,
            gap_ms: None,
        },
    };
    Ok((core, prefix.saturating_add(body_len)))
}

/// Length, CRC, version, decoding and seq checks: everything but the link.
fn decode_parts(frame: &[u8], seq: u64) -> Result<DecodedParts<'_>, CodecError> {
    let view = parse_exact(frame, MAX_EVENT_PAYLOAD)?;
    if !(OLDEST_EVENT_FORMAT_VERSION..=EVENT_FORMAT_VERSION).contains(&view.version) {
        return Err(CodecError::UnsupportedVersion(view.version));
    }
    let core_len = view.payload.len().checked_sub(HASH_LEN).ok_or_else(|| {
        CodecError::Undecodable(format!(
            "payload of {} bytes cannot hold a hash",
            view.payload.len()
        ))
    })?;
    let (core_bytes, hash_bytes) = view.payload.split_at_checked(core_len).unwrap_or_default();
    let (core, used): (CoreOwned, usize) = if view.version == 1 {
        decode_core_v1(core_bytes)?
    } else {
        bincode::serde::decode_from_slice(core_bytes, EVENT_CONFIG)
            .map_err(|e| CodecError::Undecodable(e.to_string()))?
    };
    if used != core_bytes.len() {
        return Err(CodecError::Undecodable(format!(
            "{} bytes between the envelope and the hash",
            core_bytes.len().saturating_sub(used)
        )));
    }
    if core.seq != seq {
        return Err(CodecError::SeqMismatch {
            expected: seq,
            found: core.seq,
        });
    }
    let stored = ChainHash(
        hash_bytes
            .try_into()
            .map_err(|_| CodecError::Undecodable("bad hash length".into()))?,
    );
    Ok(DecodedParts {
        core,
        core_bytes,
        stored,
    })
}

fn check_link(parts: &DecodedParts<'_>, seq: u64, prev: &ChainHash) -> Result<(), CodecError> {
    let computed = chain::link(prev, seq, parts.core_bytes);
    if computed == parts.stored {
        Ok(())
    } else {
        Err(CodecError::HashMismatch {
            stored: parts.stored,
            computed,
        })
    }
}

/// Decodes and verifies the event frame stored at `seq`, whose predecessor's
/// hash is `prev`: length, CRC, version, decoding, seq and chain link.
///
/// # Errors
/// Any [`CodecError`] describing the first check that failed.
pub fn decode_event(frame: &[u8], seq: u64, prev: &ChainHash) -> Result<Envelope, CodecError> {
    let parts = decode_parts(frame, seq)?;
    check_link(&parts, seq, prev)?;
    Ok(envelope(parts, *prev))
}

/// The envelope of checked `parts`, linked to `prev`.
fn envelope(parts: DecodedParts, prev: ChainHash) -> Envelope {
    let DecodedParts { core, stored, .. } = parts;
    Envelope {
        seq: core.seq,
        id: core.id,
        at: core.at,
        cause: core.cause,
        epoch: core.epoch,
        body: core.body,
        prev,
        hash: stored,
    }
}

/// Decodes the event frame stored at `seq` with every check of
/// [`decode_event`] but the chain link: for a reader that starts where no
/// predecessor is at hand (the first event left after a compaction, in a
/// page read from the middle of a stream). Its `prev` is all zeros.
///
/// # Errors
/// Any [`CodecError`] describing the first check that failed.
pub fn decode_event_unlinked(frame: &[u8], seq: u64) -> Result<Envelope, CodecError> {
    Ok(envelope(decode_parts(frame, seq)?, ChainHash::GENESIS))
}

/// Runs every check of [`decode_event`] (the link only when `prev` is
/// known, e.g. not for the first event left after compaction) and returns
/// the frame's chain hash.
///
/// # Errors
/// Any [`CodecError`] describing the first check that failed.
pub fn check_event(
    frame: &[u8],
    seq: u64,
    prev: Option<&ChainHash>,
) -> Result<ChainHash, CodecError> {
    let parts = decode_parts(frame, seq)?;
    if let Some(prev) = prev {
        check_link(&parts, seq, prev)?;
    }
    Ok(parts.stored)
}

/// The chain hash stored at the end of an event frame, after checking the
/// frame's length and CRC but without decoding it.
///
/// # Errors
/// Frame errors; [`CodecError::Undecodable`] when the payload is shorter than a hash.
pub fn stored_hash(frame: &[u8]) -> Result<ChainHash, CodecError> {
    let view = parse_exact(frame, MAX_EVENT_PAYLOAD)?;
    let start = view
        .payload
        .len()
        .checked_sub(HASH_LEN)
        .ok_or_else(|| CodecError::Undecodable("payload cannot hold a hash".into()))?;
    let bytes: [u8; HASH_LEN] = view
        .payload
        .get(start..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CodecError::Undecodable("payload cannot hold a hash".into()))?;
    Ok(ChainHash(bytes))
}

/// The SHA-256 of a projection's encoding in a snapshot: what
/// `SnapshotRecorded` journals, so that the audit can check a snapshot it
/// starts from is the one the operator took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct StateDigest(pub [u8; 32]);

impl std::fmt::Display for StateDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The digest of `state` as a snapshot encodes it.
///
/// # Errors
/// [`CodecError::Encode`].
pub fn state_digest<S: Serialize>(state: &S) -> Result<StateDigest, CodecError> {
    let json = serde_json::to_vec(state).map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(digest_of(&json))
}

fn digest_of(json: &[u8]) -> StateDigest {
    use sha2::Digest as _;
    StateDigest(sha2::Sha256::digest(json).into())
}

/// Encodes a projection `state` that has folded every event up to `seq`
/// (whose chain hash is `hash`) as a snapshot frame of the current format;
/// returns it with the state's digest.
///
/// # Errors
/// [`CodecError::Encode`] / [`CodecError::TooLong`].
pub fn encode_snapshot<S: Serialize>(
    seq: u64,
    hash: ChainHash,
    state: &S,
) -> Result<(EncodedSnapshot, StateDigest), CodecError> {
    let json = serde_json::to_vec(state).map_err(|e| CodecError::Encode(e.to_string()))?;
    let digest = digest_of(&json);
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + SNAPSHOT_HEAD_LEN + json.len());
    frame.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    frame.extend_from_slice(&seq.to_le_bytes());
    frame.extend_from_slice(&hash.0);
    frame.extend_from_slice(&digest.0);
    frame.extend_from_slice(&json);
    seal_frame(&mut frame, SNAPSHOT_FORMAT_VERSION, MAX_SNAPSHOT_PAYLOAD)?;
    Ok((EncodedSnapshot { seq, hash, frame }, digest))
}

/// Decodes a snapshot frame of the current format into `(seq, hash,
/// digest, state)`, checking the digest against the bytes.
///
/// # Errors
/// Any [`CodecError`] describing the first check that failed;
/// [`CodecError::Undecodable`] when the state does not match its digest.
pub fn decode_snapshot<S: DeserializeOwned>(
    frame: &[u8],
) -> Result<(u64, ChainHash, StateDigest, S), CodecError> {
    let view = parse_exact(frame, MAX_SNAPSHOT_PAYLOAD)?;
    if view.version != SNAPSHOT_FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion(view.version));
    }
    let short = || CodecError::Undecodable("snapshot payload shorter than its head".into());
    let (seq, rest) = view.payload.split_first_chunk::<8>().ok_or_else(short)?;
    let (hash, rest) = rest.split_first_chunk::<HASH_LEN>().ok_or_else(short)?;
    let (digest, json) = rest.split_first_chunk::<HASH_LEN>().ok_or_else(short)?;
    let digest = StateDigest(*digest);
    if digest_of(json) != digest {
        return Err(CodecError::Undecodable(format!(
            "snapshot state does not match its digest {digest}"
        )));
    }
    let state = serde_json::from_slice(json).map_err(|e| CodecError::Undecodable(e.to_string()))?;
    Ok((u64::from_le_bytes(*seq), ChainHash(*hash), digest, state))
}

/// The format version of a snapshot frame, once the frame checks out.
///
/// # Errors
/// Any [`CodecError`] of the frame itself.
pub fn snapshot_version(frame: &[u8]) -> Result<u8, CodecError> {
    Ok(parse_exact(frame, MAX_SNAPSHOT_PAYLOAD)?.version)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
pub(crate) mod tests;
