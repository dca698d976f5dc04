//! Pure mapping between a journal stream and its ConfigMaps: object names,
//! labels, frame keys, and the head record kept in the head ConfigMap.
//!
//! No I/O here: `store.rs` fetches and writes the objects; this file only
//! says what they are called and what their fields mean, so the layout can
//! be tested without an API server.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use logbook_journal::{ChainHash, Head, StreamId};

/// Label naming the stream an object belongs to.
pub const JOURNAL_LABEL: &str = "valkey.logbook.dev/journal";
/// Label saying which kind of journal object this is (`head`, `segment`, `snapshot`).
pub const OBJECT_LABEL: &str = "valkey.logbook.dev/journal-object";
/// `OBJECT_LABEL` value of head objects.
pub const KIND_HEAD: &str = "head";
/// `OBJECT_LABEL` value of sealed segments.
pub const KIND_SEGMENT: &str = "segment";
/// `OBJECT_LABEL` value of snapshot objects.
pub const KIND_SNAPSHOT: &str = "snapshot";
/// `binaryData` key of the snapshot frame.
pub const SNAPSHOT_FRAME_KEY: &str = "frame";
/// Default size at which the open segment is sealed (frame bytes, before
/// base64): far under the 1 MiB object limit even after encoding.
pub const DEFAULT_SEAL_BYTES: usize = 256 * 1024;

const PREFIX: &str = "logbook-journal-";

/// Name of the head ConfigMap of `stream`.
#[must_use]
pub fn head_name(stream: &StreamId) -> String {
    format!("{PREFIX}{stream}-head")
}

/// Name of the snapshot ConfigMap of `stream`.
#[must_use]
pub fn snapshot_name(stream: &StreamId) -> String {
    format!("{PREFIX}{stream}-snapshot")
}

/// Name of sealed segment `index` of `stream`.
#[must_use]
pub fn segment_name(stream: &StreamId, index: u64) -> String {
    format!("{PREFIX}{stream}-{index}")
}

/// The segment number of `name` when it is a segment of `stream`.
#[must_use]
pub fn parse_segment_name(stream: &StreamId, name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(PREFIX)?
        .strip_prefix(stream.as_str())?
        .strip_prefix('-')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `binaryData` key of the frame of `seq`: zero-padded so keys sort in seq
/// order, and a valid ConfigMap key.
#[must_use]
pub fn frame_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// The seq of a frame key, if it is one.
#[must_use]
pub fn parse_frame_key(key: &str) -> Option<u64> {
    (key.len() == 20 && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse().ok())
        .flatten()
}

/// The labels of a journal object.
#[must_use]
pub fn labels(stream: &StreamId, kind: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (JOURNAL_LABEL.to_owned(), stream.as_str().to_owned()),
        (OBJECT_LABEL.to_owned(), kind.to_owned()),
    ])
}

/// A sealed segment as the head lists it: only seqs in `first..=last` of
/// segment `index` belong to the journal; any other key in it is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRange {
    /// The segment's number (its name suffix).
    pub index: u64,
    /// First seq it holds.
    pub first: u64,
    /// Last seq it holds.
    pub last: u64,
}

/// The content of a head ConfigMap: the commit point of a stream.
///
/// Everything the journal holds is named here: sealed segments with their
/// ranges, and the frames of the open segment themselves (so that an append
/// is one compare-and-swap write of this one object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRecord {
    /// Last appended seq.
    pub seq: u64,
    /// Its chain hash.
    pub hash: ChainHash,
    /// Lowest live seq: everything below was compacted.
    pub floor: u64,
    /// Number the next sealed segment will try first.
    pub next_segment: u64,
    /// Sealed segments, in seq order.
    pub segments: Vec<SegmentRange>,
    /// Frames of the open segment, by seq.
    pub open: BTreeMap<u64, Vec<u8>>,
}

impl HeadRecord {
    /// The record of a stream that has no head object yet.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            seq: 0,
            hash: ChainHash::GENESIS,
            floor: 1,
            next_segment: 1,
            segments: Vec::new(),
            open: BTreeMap::new(),
        }
    }

    /// The stream's position.
    #[must_use]
    pub const fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// Bytes of frames in the open segment.
    #[must_use]
    pub fn open_bytes(&self) -> usize {
        self.open.values().map(Vec::len).sum()
    }

    /// Reads a head ConfigMap.
    ///
    /// # Errors
    /// What is missing or malformed, for `StoreError::CorruptMeta`.
    pub fn from_config_map(cm: &ConfigMap) -> Result<Self, String> {
        let data = cm.data.as_ref().ok_or("head has no data")?;
        let field = |key: &str| {
            data.get(key)
                .map(String::as_str)
                .ok_or_else(|| format!("head has no {key:?}"))
        };
        let number = |key: &str| {
            field(key)?
                .parse::<u64>()
                .map_err(|e| format!("head {key:?}: {e}"))
        };
        let hash = ChainHash::from_hex(field("hash")?).map_err(|e| format!("head hash: {e}"))?;
        let mut segments = Vec::new();
        for entry in field("segments")?.split(',').filter(|e| !e.is_empty()) {
            segments.push(parse_segment(entry)?);
        }
        let mut open = BTreeMap::new();
        for (key, value) in cm.binary_data.iter().flatten() {
            let seq = parse_frame_key(key).ok_or_else(|| format!("head key {key:?}"))?;
            open.insert(seq, value.0.clone());
        }
        Ok(Self {
            seq: number("seq")?,
            hash,
            floor: number("floor")?,
            next_segment: number("next-segment")?,
            segments,
            open,
        })
    }

    /// The `data` and `binaryData` of the head ConfigMap.
    #[must_use]
    pub fn to_fields(&self) -> (BTreeMap<String, String>, BTreeMap<String, ByteString>) {
        let segments: Vec<String> = self
            .segments
            .iter()
            .map(|s| format!("{}:{}-{}", s.index, s.first, s.last))
            .collect();
        let data = BTreeMap::from([
            ("seq".to_owned(), self.seq.to_string()),
            ("hash".to_owned(), self.hash.to_hex()),
            ("floor".to_owned(), self.floor.to_string()),
            ("next-segment".to_owned(), self.next_segment.to_string()),
            ("segments".to_owned(), segments.join(",")),
        ]);
        let binary = self
            .open
            .iter()
            .map(|(seq, frame)| (frame_key(*seq), ByteString(frame.clone())))
            .collect();
        (data, binary)
    }
}

fn parse_segment(entry: &str) -> Result<SegmentRange, String> {
    let bad = || format!("head segment entry {entry:?}");
    let (index, range) = entry.split_once(':').ok_or_else(bad)?;
    let (first, last) = range.split_once('-').ok_or_else(bad)?;
    Ok(SegmentRange {
        index: index.parse().map_err(|_| bad())?,
        first: first.parse().map_err(|_| bad())?,
        last: last.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn frame_keys_sort_in_seq_order_and_parse_back() {
        assert!(frame_key(9) < frame_key(10));
        assert_eq!(parse_frame_key(&frame_key(12_345)), Some(12_345));
        assert_eq!(parse_frame_key("frame"), None);
        assert_eq!(parse_frame_key(&frame_key(u64::MAX)), Some(u64::MAX));
    }

    #[test]
    fn names_follow_the_documented_layout() {
        let s = StreamId::new("operator").unwrap();
        assert_eq!(head_name(&s), "logbook-journal-operator-head");
        assert_eq!(snapshot_name(&s), "logbook-journal-operator-snapshot");
        assert_eq!(segment_name(&s, 3), "logbook-journal-operator-3");
        assert_eq!(
            parse_segment_name(&s, "logbook-journal-operator-30"),
            Some(30)
        );
        assert_eq!(
            parse_segment_name(&s, "logbook-journal-operator-head"),
            None
        );
    }

    #[test]
    fn a_head_record_survives_its_config_map() {
        let record = HeadRecord {
            seq: 7,
            hash: ChainHash([7; 32]),
            floor: 2,
            next_segment: 4,
            segments: vec![
                SegmentRange {
                    index: 2,
                    first: 1,
                    last: 4,
                },
                SegmentRange {
                    index: 3,
                    first: 5,
                    last: 5,
                },
            ],
            open: BTreeMap::from([(6, vec![1, 2]), (7, vec![3])]),
        };
        let (data, binary) = record.to_fields();
        let cm = ConfigMap {
            data: Some(data),
            binary_data: Some(binary),
            ..ConfigMap::default()
        };
        assert_eq!(HeadRecord::from_config_map(&cm).unwrap(), record);
        assert_eq!(record.open_bytes(), 3);
    }

    #[test]
    fn a_damaged_head_is_refused() {
        let (mut data, _) = HeadRecord::empty().to_fields();
        data.insert("segments".into(), "1:x-2".into());
        let cm = ConfigMap {
            data: Some(data),
            ..ConfigMap::default()
        };
        assert!(HeadRecord::from_config_map(&cm).is_err());
    }
}
