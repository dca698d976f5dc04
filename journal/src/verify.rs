//! Integrity checking (`verify`) and torn-tail repair (`repair_torn_tail`),
//! the engine of `logbook journal verify`.
//!
//! `verify` walks a whole stream and reports the FIRST problem by stream and
//! seq rather than failing: a damaged journal is a finding, not a crash.
//! Repair is deliberately narrow: it removes only a last frame that is
//! partial or unreadable, and refuses anything that could be a valid event
//! or evidence of tampering.

use crate::codec::{self, CodecError};
use crate::ids::{ChainHash, StreamId};
use crate::snapshot;
use crate::store::{EncodedSnapshot, Head, JournalStore, StoreError};

/// Frames checked per store read.
const VERIFY_CHUNK: usize = 4096;

/// Kind of integrity problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The CRC does not match the frame's contents.
    BadCrc,
    /// A frame's length field disagrees with the record (not at the tail),
    /// or is beyond any valid frame.
    BadLength,
    /// The last frame is shorter than its header announces: a write was
    /// cut off. Repairable with [`repair_torn_tail`].
    TornTail,
    /// The recomputed chain hash differs from the stored one, or the head /
    /// snapshot names a different hash: something was altered.
    BadHashLink,
    /// The frame passes its CRC but does not decode (or has an unknown
    /// format version).
    Undecodable,
    /// A seq is missing or out of place.
    SeqGap,
    /// The head disagrees with the last stored event.
    HeadMismatch,
    /// The stored snapshot is corrupt or disagrees with the events.
    BadSnapshot,
}

/// The first problem found in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The stream.
    pub stream: StreamId,
    /// The seq of the offending frame (or of the snapshot / head).
    pub seq: u64,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// Details for humans.
    pub detail: String,
}

/// The result of verifying one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The stream.
    pub stream: StreamId,
    /// Frames that passed every check.
    pub events_checked: u64,
    /// The head recorded by the store.
    pub head: Head,
    /// Seq covered by the stored snapshot, if any.
    pub snapshot_seq: Option<u64>,
    /// The first problem, `None` when the stream is intact.
    pub problem: Option<VerifyProblem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    #[must_use]
    pub const fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Maps a codec failure of the frame at `seq` to a problem kind; `is_tail`
/// tells a torn last write from damage in the middle.
fn classify(err: &CodecError, is_tail: bool) -> ProblemKind {
    match err {
        CodecError::Truncated { .. } if is_tail => ProblemKind::TornTail,
        CodecError::Truncated { .. }
        | CodecError::TrailingBytes { .. }
        | CodecError::TooLong { .. } => ProblemKind::BadLength,
        CodecError::BadCrc { .. } => ProblemKind::BadCrc,
        CodecError::UnsupportedVersion(_) | CodecError::Undecodable(_) | CodecError::Encode(_) => {
            ProblemKind::Undecodable
        }
        CodecError::SeqMismatch { .. } => ProblemKind::SeqGap,
        CodecError::HashMismatch { .. } => ProblemKind::BadHashLink,
    }
}

/// Checks the stored snapshot on its own; returns its seq and hash.
fn check_snapshot(
    stream: &StreamId,
    stored: &EncodedSnapshot,
) -> Result<(u64, ChainHash), VerifyProblem> {
    snapshot::decode(stored)
        .map(|s| (s.seq, s.hash))
        .map_err(|err| VerifyProblem {
            stream: stream.clone(),
            seq: stored.seq,
            kind: ProblemKind::BadSnapshot,
            detail: format!("snapshot: {err}"),
        })
}

/// Verifies every stored frame of `stream`: length, CRC, decoding, seq
/// continuity, the hash chain, and agreement with the head and snapshot.
///
/// # Errors
/// Only store failures; integrity problems are reported in the
/// [`VerifyReport`].
pub async fn verify<S: JournalStore>(
    store: &S,
    stream: &StreamId,
) -> Result<VerifyReport, StoreError> {
    let head = store.head(stream).await?;
    let stored_snapshot = store.get_snapshot(stream).await?;
    let mut report = VerifyReport {
        stream: stream.clone(),
        events_checked: 0,
        head,
        snapshot_seq: stored_snapshot.as_ref().map(|s| s.seq),
        problem: None,
    };
    let problem = |seq: u64, kind: ProblemKind, detail: String| VerifyProblem {
        stream: stream.clone(),
        seq,
        kind,
        detail,
    };
    let snapshot = match stored_snapshot
        .as_ref()
        .map(|s| check_snapshot(stream, s))
        .transpose()
    {
        Ok(snapshot) => snapshot,
        Err(found) => {
            report.problem = Some(found);
            return Ok(report);
        }
    };

    // `prev` is None only before the first frame when its predecessor was
    // compacted away and no snapshot sits exactly before it.
    let mut next: Option<u64> = None;
    let mut prev: Option<ChainHash> = None;
    loop {
        let batch = store.read(stream, next.unwrap_or(1), VERIFY_CHUNK).await?;
        if batch.is_empty() {
            break;
        }
        for (seq, frame) in batch.iter() {
            match next {
                Some(want) if want != seq => {
                    report.problem = Some(problem(
                        want,
                        ProblemKind::SeqGap,
                        format!("seq {want} missing, next stored is {seq}"),
                    ));
                    return Ok(report);
                }
                Some(_) => {}
                None => match snapshot {
                    _ if seq == 1 => prev = Some(ChainHash::GENESIS),
                    Some((covered, hash)) if covered.saturating_add(1) == seq => prev = Some(hash),
                    Some((covered, _)) if covered >= seq => prev = None,
                    _ => {
                        report.problem = Some(problem(
                            seq,
                            ProblemKind::SeqGap,
                            format!(
                                "stream starts at seq {seq} and no snapshot covers the events before it"
                            ),
                        ));
                        return Ok(report);
                    }
                },
            }
            if seq > head.seq {
                report.problem = Some(problem(
                    seq,
                    ProblemKind::HeadMismatch,
                    format!("event stored beyond the head at seq {}", head.seq),
                ));
                return Ok(report);
            }
            match codec::check_event(frame, seq, prev.as_ref()) {
                Ok(hash) => {
                    if let Some((covered, snap_hash)) =
                        snapshot.filter(|(covered, h)| *covered == seq && *h != hash)
                    {
                        report.problem = Some(problem(
                            covered,
                            ProblemKind::BadSnapshot,
                            format!("snapshot hash {snap_hash} differs from the event's {hash}"),
                        ));
                        return Ok(report);
                    }
                    prev = Some(hash);
                    report.events_checked = report.events_checked.saturating_add(1);
                }
                Err(err) => {
                    let kind = classify(&err, seq == head.seq);
                    report.problem = Some(problem(seq, kind, err.to_string()));
                    return Ok(report);
                }
            }
            next = Some(seq.saturating_add(1));
        }
    }

    // The walk ended: it must have ended exactly at the head.
    let last = next.map(|n| n.saturating_sub(1));
    let reached = match (last, snapshot) {
        (Some(last), _) => Some((last, prev.unwrap_or(ChainHash::GENESIS))),
        (None, Some((covered, hash))) => Some((covered, hash)),
        (None, None) => None,
    };
    let mismatch = match reached {
        None if head.seq == 0 => None,
        None => Some((
            1,
            ProblemKind::SeqGap,
            format!("head at seq {} but no event is stored", head.seq),
        )),
        Some((seq, _)) if seq < head.seq => Some((
            seq.saturating_add(1),
            ProblemKind::SeqGap,
            format!("events {}..={} missing", seq.saturating_add(1), head.seq),
        )),
        Some((seq, hash)) if seq == head.seq && hash != head.hash => Some((
            seq,
            ProblemKind::BadHashLink,
            format!(
                "head hash {} differs from the last event's {hash}",
                head.hash
            ),
        )),
        Some((seq, _)) if seq > head.seq => Some((
            seq,
            ProblemKind::HeadMismatch,
            format!("head at seq {} behind the events", head.seq),
        )),
        Some(_) => None,
    };
    report.problem = mismatch.map(|(seq, kind, detail)| problem(seq, kind, detail));
    Ok(report)
}

/// Verifies every stream of the store.
///
/// # Errors
/// Store failures.
pub async fn verify_all<S: JournalStore>(store: &S) -> Result<Vec<VerifyReport>, StoreError> {
    let mut reports = Vec::new();
    for stream in store.list_streams().await? {
        reports.push(verify(store, &stream).await?);
    }
    Ok(reports)
}

/// What `repair_torn_tail` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The last frame is valid (or the stream is empty): nothing removed.
    Intact,
    /// The broken last frame `seq` was removed; the head is now `seq - 1`.
    Removed {
        /// The removed seq.
        seq: u64,
        /// Why it was judged broken.
        kind: ProblemKind,
    },
}

/// Why a repair was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The damage is not a torn tail (a complete frame with a broken link,
    /// an unknown format version, damage before the last frame): removing
    /// it could destroy evidence or a valid event, so a human must look.
    #[error("stream {stream}: refusing to repair seq {seq}: {why}")]
    NotATornTail {
        /// The stream.
        stream: StreamId,
        /// The seq examined.
        seq: u64,
        /// Why it is not removable.
        why: String,
    },
}

/// Removes the last frame of `stream` if, and only if, it is partial or
/// unreadable (truncated, bad CRC, garbage length, undecodable) while the
/// frame before it is intact.
///
/// # Guarantees
/// Never removes a frame that passes every check, nor one that decodes
/// but breaks the chain (tampering is evidence), nor one written in a
/// newer format version.
///
/// # Errors
/// [`RepairError::NotATornTail`] when the damage is of another kind; store errors.
pub async fn repair_torn_tail<S: JournalStore>(
    store: &S,
    stream: &StreamId,
) -> Result<RepairOutcome, RepairError> {
    let head = store.head(stream).await?;
    if head.seq == 0 {
        return Ok(RepairOutcome::Intact);
    }
    let refuse = |seq: u64, why: String| RepairError::NotATornTail {
        stream: stream.clone(),
        seq,
        why,
    };
    let prev_seq = head.seq.saturating_sub(1);
    let batch = store.read(stream, prev_seq.max(1), 2).await?;
    let mut frames = batch.iter();
    let prev = if prev_seq == 0 {
        ChainHash::GENESIS
    } else {
        match (frames.next(), store.get_snapshot(stream).await?) {
            (Some((seq, frame)), _) if seq == prev_seq => codec::stored_hash(frame)
                .and_then(|hash| codec::check_event(frame, seq, None).map(|_| hash))
                .map_err(|err| {
                    refuse(
                        seq,
                        format!("the frame before the tail is damaged too: {err}"),
                    )
                })?,
            (_, Some(snapshot)) if snapshot.seq == prev_seq => snapshot.hash,
            _ => {
                return Err(refuse(
                    head.seq,
                    format!("seq {prev_seq} is missing, cannot re-anchor the head"),
                ));
            }
        }
    };
    let last = batch
        .iter()
        .find(|(seq, _)| *seq == head.seq)
        .map(|(_, frame)| frame);
    let Some(frame) = last else {
        return Err(refuse(
            head.seq,
            "the head's frame is missing, not torn".into(),
        ));
    };
    let kind = match codec::check_event(frame, head.seq, Some(&prev)) {
        Ok(_) => return Ok(RepairOutcome::Intact),
        Err(err) => match err {
            CodecError::Truncated { .. } => ProblemKind::TornTail,
            CodecError::TooLong { .. } => ProblemKind::BadLength,
            CodecError::BadCrc { .. } => ProblemKind::BadCrc,
            CodecError::Undecodable(_) => ProblemKind::Undecodable,
            CodecError::UnsupportedVersion(_)
            | CodecError::TrailingBytes { .. }
            | CodecError::SeqMismatch { .. }
            | CodecError::HashMismatch { .. }
            | CodecError::Encode(_) => {
                return Err(refuse(head.seq, format!("not a torn write: {err}")));
            }
        },
    };
    tracing::warn!(%stream, seq = head.seq, ?kind, "removing torn tail frame");
    store
        .remove_last(
            stream,
            head.seq,
            Head {
                seq: prev_seq,
                hash: prev,
            },
        )
        .await?;
    Ok(RepairOutcome::Removed {
        seq: head.seq,
        kind,
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::conformance::sample_new_event;
    use crate::ready::now_or_never;
    use crate::store::memory::MemoryStore;
    use crate::writer::StreamWriter;

    fn stream_of(count: u64) -> (MemoryStore, StreamId) {
        let store = MemoryStore::new();
        let stream = StreamId::new("p").unwrap();
        let mut writer = now_or_never(StreamWriter::open(store.clone(), stream.clone(), 1))
            .unwrap()
            .unwrap();
        now_or_never(writer.append((1..=count).map(sample_new_event).collect()))
            .unwrap()
            .unwrap();
        (store, stream)
    }

    /// One damage step: `(seq, position, xor mask, mode)`; mode 0 truncates
    /// at the position, 1 appends a byte, anything else flips the byte.
    type Damage = (u64, prop::sample::Index, u8, u8);

    fn damage_strategy() -> impl Strategy<Value = Vec<Damage>> {
        proptest::collection::vec(
            (1u64..=12, any::<prop::sample::Index>(), 1u8..=255, 0u8..10),
            1..4,
        )
    }

    /// Applies `damage` through the store's raw accessors, then checks that
    /// verify reports the first damaged seq and nothing panics.
    fn check_corruption_is_detected<S: JournalStore>(
        store: &S,
        stream: &StreamId,
        damage: Vec<Damage>,
        raw_get: impl Fn(u64) -> Vec<u8>,
        raw_put: impl Fn(u64, Vec<u8>),
    ) -> Result<(), TestCaseError> {
        let mut originals = std::collections::BTreeMap::new();
        for (seq, pos, xor, mode) in damage {
            let mut frame = raw_get(seq);
            originals.entry(seq).or_insert_with(|| frame.clone());
            // A frame already truncated to nothing can only grow.
            let mode = if frame.is_empty() { 1 } else { mode };
            match mode {
                0 => frame.truncate(pos.index(frame.len())),
                1 => frame.push(xor),
                _ => {
                    let at = pos.index(frame.len());
                    frame[at] ^= xor;
                }
            }
            raw_put(seq, frame);
        }
        // Steps on one frame can undo each other (a byte appended, then
        // the frame truncated back to its length): only a frame that
        // differs from what was written is damaged.
        let Some(first) = originals
            .iter()
            .filter(|(seq, original)| raw_get(**seq) != **original)
            .map(|(seq, _)| *seq)
            .min()
        else {
            return Ok(());
        };
        let report = now_or_never(verify(store, stream)).unwrap().unwrap();
        let problem = report.problem.expect("corruption not detected");
        prop_assert_eq!(problem.seq, first);
        prop_assert_eq!(report.events_checked, first - 1);
        prop_assert!(
            now_or_never(crate::reader::load_state(store, stream))
                .unwrap()
                .is_err()
        );
        let _ = now_or_never(repair_torn_tail(store, stream)).unwrap();
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Random corruption of stored frames (flips, truncation, appended
        /// garbage) is always reported, at the first damaged seq, and
        /// neither verify, the reader nor repair panics.
        #[test]
        fn stored_frame_corruption_is_always_detected(damage in damage_strategy()) {
            let (store, stream) = stream_of(12);
            check_corruption_is_detected(
                &store,
                &stream,
                damage,
                |seq| store.raw_get(&stream, seq).unwrap_or_default(),
                |seq, frame| store.raw_overwrite(&stream, seq, Some(frame)),
            )?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

        /// The same in sled, where frames share records (12 events appended
        /// in batches of 5, so damage lands inside multi-frame records).
        #[cfg(feature = "sled")]
        #[test]
        fn stored_frame_corruption_is_always_detected_in_sled(damage in damage_strategy()) {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::store::sled::SledStore::open(
                dir.path(),
                crate::store::sled::Durability::Background,
            )
            .unwrap();
            let stream = StreamId::new("p").unwrap();
            let mut writer =
                now_or_never(StreamWriter::open(store.clone(), stream.clone(), 1)).unwrap().unwrap();
            for chunk in (1..=12u64).collect::<Vec<_>>().chunks(5) {
                now_or_never(writer.append(chunk.iter().copied().map(sample_new_event).collect()))
                    .unwrap()
                    .unwrap();
            }
            check_corruption_is_detected(
                &store,
                &stream,
                damage,
                |seq| store.raw_get(&stream, seq).unwrap().unwrap_or_default(),
                |seq, frame| store.raw_overwrite(&stream, seq, Some(frame)).unwrap(),
            )?;
        }
    }

    #[test]
    fn an_empty_store_verifies_clean() {
        let store = MemoryStore::new();
        let stream = StreamId::new("none").unwrap();
        let report = now_or_never(verify(&store, &stream)).unwrap().unwrap();
        assert!(report.is_ok());
        assert_eq!(report.events_checked, 0);
        assert_eq!(
            now_or_never(repair_torn_tail(&store, &stream))
                .unwrap()
                .unwrap(),
            RepairOutcome::Intact
        );
        assert!(
            now_or_never(verify_all(&store))
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_missing_middle_event_is_a_seq_gap() {
        let (store, stream) = stream_of(5);
        store.raw_overwrite(&stream, 3, None);
        let problem = now_or_never(verify(&store, &stream))
            .unwrap()
            .unwrap()
            .problem
            .unwrap();
        assert_eq!((problem.seq, problem.kind), (3, ProblemKind::SeqGap));
    }

    #[test]
    fn a_lost_tail_is_a_seq_gap_against_the_head() {
        let (store, stream) = stream_of(5);
        store.raw_overwrite(&stream, 5, None);
        let problem = now_or_never(verify(&store, &stream))
            .unwrap()
            .unwrap()
            .problem
            .unwrap();
        assert_eq!((problem.seq, problem.kind), (5, ProblemKind::SeqGap));
    }
}
