//! Gathers the [`Facts`] `plan` decides on for one stream (verify's first
//! problem, the snapshot, the verified event before the problem, how the
//! problem frame fails) and measures a range of events for "what a repair
//! loses" (count and time span).
//!
//! Reads only. Generic over [`JournalStore`], so sled and ConfigMaps are
//! diagnosed by the same code.

use std::collections::BTreeMap;

use logbook_journal::codec;
use logbook_journal::reader::{self, ReadError};
use logbook_journal::verify::{self, VerifyReport};
use logbook_journal::{
    ChainHash, Head, JournalStore, ProblemKind, StoreError, StreamId, Timestamp,
};

use super::plan::{Facts, Problem, SnapshotFacts, Tail};

/// Frames read per store call while measuring a range.
const CHUNK: usize = 1024;

/// What `diagnose` found: the facts, and verify's report when verify ran.
pub struct Diagnosis {
    /// The facts for `plan`.
    pub facts: Facts,
    /// Verify's report (absent when the head or snapshot record was unreadable).
    pub report: Option<VerifyReport>,
}

/// Diagnoses `stream`. `head_problem` is a problem with the head object
/// the store cannot see (a deleted head ConfigMap).
///
/// # Errors
/// Store failures other than unreadable metadata, which are findings.
pub async fn diagnose<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    head_problem: Option<String>,
) -> Result<Diagnosis, StoreError> {
    let mut facts = Facts {
        head: Head::EMPTY,
        floor: None,
        problem: None,
        snapshot: None,
        anchor: None,
        frame_error: None,
        intact_from_genesis: false,
    };
    if let Some(detail) = head_problem {
        facts.problem = Some(Problem::HeadUnreadable { detail });
        return Ok(Diagnosis {
            facts,
            report: None,
        });
    }
    facts.head = match store.head(stream).await {
        Ok(head) => head,
        Err(StoreError::CorruptMeta { what, .. }) => {
            facts.problem = Some(Problem::HeadUnreadable { detail: what });
            return Ok(Diagnosis {
                facts,
                report: None,
            });
        }
        Err(e) => return Err(e),
    };
    facts.floor = store.read(stream, 1, 1).await?.last_seq();
    let stored = match store.get_snapshot(stream).await {
        Ok(stored) => stored,
        Err(StoreError::CorruptMeta { what, .. }) => {
            facts.problem = Some(Problem::SnapshotUnreadable { detail: what });
            facts.intact_from_genesis = intact_from_genesis(store, stream, &facts).await?;
            return Ok(Diagnosis {
                facts,
                report: None,
            });
        }
        Err(e) => return Err(e),
    };
    facts.snapshot = stored.map(|s| SnapshotFacts {
        seq: s.seq,
        hash: s.hash,
        intact: logbook_journal::snapshot::decode(&s).is_ok(),
        tail: Tail::Unchecked,
    });
    let report = verify::verify(store, stream).await?;
    let Some(found) = report.problem.clone() else {
        return Ok(Diagnosis {
            facts,
            report: Some(report),
        });
    };
    let (seq, kind) = (found.seq, found.kind);
    facts.problem = Some(Problem::Frame {
        seq,
        kind,
        detail: found.detail,
    });
    facts.anchor = anchor(store, stream, seq, facts.snapshot.as_ref()).await?;
    let frame = store
        .read(stream, seq, 1)
        .await?
        .iter()
        .find(|(s, _)| *s == seq)
        .map(|(_, f)| f.to_vec());
    facts.frame_error = frame
        .and_then(|f| codec::check_event(&f, seq, facts.anchor.as_ref().map(|a| &a.hash)).err());
    if kind == ProblemKind::BadSnapshot {
        facts.intact_from_genesis = intact_from_genesis(store, stream, &facts).await?;
    }
    let head = facts.head;
    if let Some(snapshot) = facts.snapshot.as_mut().filter(|s| s.intact && seq <= s.seq) {
        snapshot.tail = tail_after(store, stream, snapshot, head).await?;
    }
    Ok(Diagnosis {
        facts,
        report: Some(report),
    })
}

/// The verified seq and hash before `seq`: genesis, the snapshot's, or the
/// stored frame's (verify walked it before finding the problem at `seq`).
async fn anchor<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    seq: u64,
    snapshot: Option<&SnapshotFacts>,
) -> Result<Option<Head>, StoreError> {
    let before = seq.saturating_sub(1);
    if before == 0 {
        return Ok(Some(Head::EMPTY));
    }
    if let Some(s) = snapshot.filter(|s| s.intact && s.seq == before) {
        return Ok(Some(Head {
            seq: s.seq,
            hash: s.hash,
        }));
    }
    let batch = store.read(stream, before, 1).await?;
    Ok(batch
        .iter()
        .find(|(s, _)| *s == before)
        .and_then(|(_, frame)| codec::check_event(frame, before, None).ok())
        .map(|hash| Head { seq: before, hash }))
}

/// Whether the events after an intact snapshot verify from its hash to the head.
async fn tail_after<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    snapshot: &SnapshotFacts,
    head: Head,
) -> Result<Tail, StoreError> {
    let from = snapshot.seq.saturating_add(1);
    match reader::fold(store, stream, from, snapshot.hash, head.seq, |_| {}).await {
        Ok(folded) if folded.last_hash == head.hash => Ok(Tail::Clean),
        Ok(folded) => Ok(Tail::Broken {
            seq: folded.last_seq,
            detail: format!(
                "the head's hash {} differs from the last event's {}",
                head.hash, folded.last_hash
            ),
        }),
        Err(ReadError::Store(e)) => Err(e),
        Err(ReadError::Corrupt { seq, source, .. }) => Ok(Tail::Broken {
            seq,
            detail: source.to_string(),
        }),
        Err(ReadError::Missing { expected, .. }) => Ok(Tail::Broken {
            seq: expected,
            detail: "missing".to_owned(),
        }),
        Err(ReadError::Snapshot(e)) => Ok(Tail::Broken {
            seq: from,
            detail: e.to_string(),
        }),
    }
}

/// Whether every event from seq 1 is stored, verifies, and ends at the head.
async fn intact_from_genesis<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    facts: &Facts,
) -> Result<bool, StoreError> {
    if facts.head.seq > 0 && facts.floor != Some(1) {
        return Ok(false);
    }
    match reader::fold(store, stream, 1, ChainHash::GENESIS, facts.head.seq, |_| {}).await {
        Ok(folded) => Ok(folded.last_hash == facts.head.hash),
        Err(ReadError::Store(e)) => Err(e),
        Err(ReadError::Corrupt { .. } | ReadError::Missing { .. } | ReadError::Snapshot(_)) => {
            Ok(false)
        }
    }
}

/// Whether a `BadHashLink` at the head lies in the head record rather than
/// in a frame: the last frame verifies against its predecessor, yet the
/// head names another hash (someone edited the head).
///
/// # Errors
/// Store failures.
pub async fn head_record_at_fault<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    seq: u64,
    kind: ProblemKind,
    head: Head,
) -> Result<bool, StoreError> {
    if kind != ProblemKind::BadHashLink || seq != head.seq || seq == 0 {
        return Ok(false);
    }
    let before = seq.saturating_sub(1);
    let batch = store.read(stream, before.max(1), 2).await?;
    let prev = if before == 0 {
        Some(ChainHash::GENESIS)
    } else {
        batch
            .iter()
            .find(|(s, _)| *s == before)
            .and_then(|(_, frame)| codec::stored_hash(frame).ok())
    };
    Ok(batch
        .iter()
        .find(|(s, _)| *s == seq)
        .and_then(|(_, frame)| codec::check_event(frame, seq, prev.as_ref()).ok())
        .is_some_and(|hash| hash != head.hash))
}

/// A range of events as far as it is readable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Span {
    /// Seqs in the range.
    pub count: u64,
    /// Events whose frame decoded (so their time is known).
    pub readable: u64,
    /// The earliest readable event's time.
    pub earliest: Option<Timestamp>,
    /// The latest readable event's time.
    pub latest: Option<Timestamp>,
    /// The chain hash stored in each frame that has a readable one.
    pub hashes: BTreeMap<u64, ChainHash>,
}

/// Measures seqs `first..=last` of `stream`; `prev` is the verified hash of
/// `first - 1` when known. A frame decodes only when its predecessor's hash
/// is known, so the frame right after an unreadable one has no time.
///
/// # Errors
/// Store failures.
pub async fn measure<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    first: u64,
    last: u64,
    mut prev: Option<ChainHash>,
) -> Result<Span, StoreError> {
    let mut span = Span {
        count: last.saturating_sub(first).saturating_add(1),
        ..Span::default()
    };
    let mut next = first;
    while next <= last {
        let batch = store.read(stream, next, CHUNK).await?;
        let Some(end) = batch.last_seq() else {
            break;
        };
        for (seq, frame) in batch.iter().filter(|(s, _)| *s <= last) {
            let decoded = prev.and_then(|p| codec::decode_event(frame, seq, &p).ok());
            prev = match decoded {
                Some(envelope) => {
                    span.readable = span.readable.saturating_add(1);
                    span.earliest = Some(span.earliest.map_or(envelope.at, |t| t.min(envelope.at)));
                    span.latest = Some(span.latest.map_or(envelope.at, |t| t.max(envelope.at)));
                    Some(envelope.hash)
                }
                None => codec::stored_hash(frame).ok(),
            };
            if let Some(hash) = prev {
                span.hashes.insert(seq, hash);
            }
        }
        next = end.saturating_add(1);
    }
    Ok(span)
}
