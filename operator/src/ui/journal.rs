//! The journal as the UI reads it: a page of events newest first (a
//! journal of 100,000 events opens at its head, reading only that page's
//! frames), each checked (length, CRC, version, seq, and the chain link to
//! the event before it where that is at hand), and the events appended
//! since a seq, for the live timeline.

use logbook_journal::codec::{decode_event, decode_event_unlinked, stored_hash};
use logbook_journal::{ChainHash, Envelope, JournalStore, StreamId};
use serde::Serialize;

/// Most events one page holds.
pub const MAX_PAGE: u64 = 500;

/// One event as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Its seq.
    pub seq: u64,
    /// When it was appended (RFC 3339, UTC: the browser shows its zone).
    pub at: String,
    /// The writer's leadership epoch.
    pub epoch: u64,
    /// `Decided`, `PodObserved`, ...
    pub kind: &'static str,
    /// One line for people (`replay timeline`'s).
    pub summary: String,
    /// Its id (the first 8 characters), for causes.
    pub id: String,
    /// The seq of the event that caused it, when on this page or earlier
    /// (by id: `cause`).
    pub cause: Option<String>,
    /// Whether it is a decision, an outcome, an observation, or the
    /// operator's own (for the timeline's colours).
    pub class: &'static str,
}

impl EventRow {
    /// The row of `e`.
    #[must_use]
    pub fn of(e: &Envelope) -> Self {
        Self {
            seq: e.seq,
            at: e.at.to_string(),
            epoch: e.epoch,
            kind: e.body.kind(),
            summary: logbook_replay::describe::summary(&e.body),
            id: logbook_replay::describe::short_id(&e.id),
            cause: e.cause.as_ref().map(logbook_replay::describe::short_id),
            class: class_of(e.body.kind()),
        }
    }
}

/// The timeline's colour class of an event kind.
fn class_of(kind: &str) -> &'static str {
    match kind {
        "Decided" => "decision",
        "IntentSucceeded" | "IntentFailed" | "IntentAbandoned" => "outcome",
        "SpecChanged" | "SpecRejected" | "ClusterDeleted" | "DeletionRequested" => "spec",
        "OperatorStarted" | "OperatorStopped" | "LeadershipAcquired" | "LeadershipLost"
        | "SnapshotTaken" | "SnapshotRecorded" | "PolicyRecorded" => "operator",
        _ => "observation",
    }
}

/// A page of the journal, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The head's seq when read.
    pub head: u64,
    /// The events, newest first.
    pub events: Vec<EventRow>,
    /// The `before` of the next (older) page; `None` at the oldest event
    /// the journal holds.
    pub older: Option<u64>,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The store failed.
    #[error("the journal could not be read: {0}")]
    Store(#[from] logbook_journal::StoreError),
    /// A frame failed its checks.
    #[error("the journal is damaged at seq {seq}: {problem} (run `logbook replay verify`)")]
    Corrupt {
        /// Where.
        seq: u64,
        /// What.
        problem: String,
    },
}

/// The events of `stream` with seq below `before` (the head's when
/// `None`), at most `limit`, newest first.
///
/// # Errors
/// [`PageError`].
pub async fn page<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    before: Option<u64>,
    limit: u64,
) -> Result<Page, PageError> {
    let head = store.head(stream).await?.seq;
    let top = before.map_or(head, |b| b.saturating_sub(1).min(head));
    let limit = limit.clamp(1, MAX_PAGE);
    if top == 0 {
        return Ok(Page {
            head,
            events: Vec::new(),
            older: None,
        });
    }
    let from = top.saturating_sub(limit - 1).max(1);
    let mut events = read_range(store, stream, from, top).await?;
    let oldest = events.first().map(|e| e.seq);
    events.reverse();
    Ok(Page {
        head,
        events: events.iter().map(EventRow::of).collect(),
        // Older events exist when the page starts after seq 1 and the
        // store still holds the one before it (compaction removes the
        // oldest).
        older: oldest.filter(|&s| s > 1 && s == from),
    })
}

/// The events of `stream` from `from` to `to` (inclusive) that the store
/// holds, in seq order, each checked; linked to the one before where that
/// is at hand.
///
/// # Errors
/// [`PageError`].
pub async fn read_range<S: JournalStore>(
    store: &S,
    stream: &StreamId,
    from: u64,
    to: u64,
) -> Result<Vec<Envelope>, PageError> {
    if to < from {
        return Ok(Vec::new());
    }
    let start = from.saturating_sub(1).max(1);
    let want = usize::try_from(to - start + 1).unwrap_or(usize::MAX);
    let batch = store.read(stream, start, want).await?;
    let mut prev: Option<ChainHash> = (from == 1).then_some(ChainHash::GENESIS);
    let mut out = Vec::with_capacity(want);
    for (seq, frame) in batch.iter() {
        if seq > to {
            break;
        }
        let corrupt = |e: logbook_journal::codec::CodecError| PageError::Corrupt {
            seq,
            problem: e.to_string(),
        };
        if seq < from {
            prev = Some(stored_hash(frame).map_err(corrupt)?);
            continue;
        }
        let envelope = match &prev {
            Some(p) => decode_event(frame, seq, p),
            None => decode_event_unlinked(frame, seq),
        }
        .map_err(corrupt)?;
        prev = Some(envelope.hash);
        out.push(envelope);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use logbook_journal::{Event, MemoryStore, NewEvent, StreamWriter};

    use super::*;

    async fn journal(events: u64) -> (MemoryStore, StreamId) {
        let store = MemoryStore::default();
        let stream = StreamId::new("ui-test").unwrap();
        let mut writer = StreamWriter::open(store.clone(), stream.clone(), 1)
            .await
            .unwrap();
        for i in 0..events {
            writer
                .append(vec![NewEvent::now(Event::PodDeleted {
                    pod: format!("demo-{i}"),
                })])
                .await
                .unwrap();
        }
        (store, stream)
    }

    /// The first page of a 100,000-event sled journal, timed beside a
    /// read of the whole journal in the same run (docs/benchmarks.md):
    /// `cargo test --release --lib ui::journal -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "a benchmark: run it with --ignored --nocapture"]
    async fn the_first_page_of_a_journal_of_100_000_events() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            logbook_journal::SledStore::open(dir.path(), logbook_journal::Durability::Flush)
                .unwrap();
        let stream = StreamId::new("ui-bench").unwrap();
        let mut writer = StreamWriter::open(store.clone(), stream.clone(), 1)
            .await
            .unwrap();
        for chunk in 0..100u64 {
            let batch = (0..1000u64)
                .map(|i| {
                    NewEvent::now(Event::PodDeleted {
                        pod: format!("demo-{}", chunk * 1000 + i),
                    })
                })
                .collect();
            writer.append(batch).await.unwrap();
        }
        let started = std::time::Instant::now();
        let first = page(&store, &stream, None, 200).await.unwrap();
        let paged = started.elapsed();
        assert_eq!((first.head, first.events.len()), (100_000, 200));
        let started = std::time::Instant::now();
        let all = read_range(&store, &stream, 1, 100_000).await.unwrap();
        let whole = started.elapsed();
        assert_eq!(all.len(), 100_000);
        println!(
            "first page of 200 of 100,000 events: {paged:?}; the whole journal read and checked: {whole:?} ({:.0}x)",
            whole.as_secs_f64() / paged.as_secs_f64()
        );
    }

    #[tokio::test]
    async fn pages_go_newest_first_and_end_at_the_first_event() {
        let (store, stream) = journal(25).await;
        let first = page(&store, &stream, None, 10).await.unwrap();
        assert_eq!(first.head, 25);
        let seqs: Vec<u64> = first.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (16..=25).rev().collect::<Vec<_>>());
        assert_eq!(first.older, Some(16));
        assert!(
            first.events[0].summary.contains("demo-24"),
            "{}",
            first.events[0].summary
        );
        let second = page(&store, &stream, first.older, 10).await.unwrap();
        assert_eq!(second.events.first().map(|e| e.seq), Some(15));
        let last = page(&store, &stream, Some(6), 10).await.unwrap();
        let seqs: Vec<u64> = last.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![5, 4, 3, 2, 1]);
        assert_eq!(last.older, None);
        let empty = page(&store, &StreamId::new("none").unwrap(), None, 10)
            .await
            .unwrap();
        assert!(empty.events.is_empty());
    }
}
