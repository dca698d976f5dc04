//! The conformance suite every `JournalStore` backend must pass.
//!
//! Public behind the `conformance` feature so backends living in other
//! crates (the ConfigMap store) run exactly the same checks. A backend
//! supplies a [`Harness`] that can open its storage repeatedly and damage
//! stored frames on purpose; [`run_all`] then drives every case against
//! fresh harnesses and returns the first [`Failure`].
//!
//! Cases: ordering, conflicts, range reads, snapshots, compaction, reopen
//! after drop, stream listing, torn tail + repair, tampering.

use std::future::Future;

use uuid::Uuid;

use crate::codec;
use crate::event::{Event, LinkStatus, Role};
use crate::ids::{ChainHash, ReplId, StreamId};
use crate::reader::{self, ReadError};
use crate::snapshot;
use crate::store::{EncodedEvent, Head, JournalStore, StoreError};
use crate::time::Timestamp;
use crate::verify::{self, ProblemKind, RepairOutcome};
use crate::writer::{NewEvent, StreamWriter, encode_batch};

/// A backend under test: opens its storage and can damage it.
pub trait Harness {
    /// The store type.
    type Store: JournalStore + Clone;

    /// Opens a store over this harness's storage. Called again after the
    /// previous store was dropped, it must see everything written before
    /// (reopen from the same directory, the same shared handle, ...).
    fn open(&mut self) -> impl Future<Output = Result<Self::Store, String>>;

    /// The stored bytes of event `seq`, exactly as kept.
    fn raw_frame(
        &mut self,
        store: &Self::Store,
        stream: &StreamId,
        seq: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, String>>;

    /// Replaces the stored bytes of event `seq` without any check,
    /// simulating a torn write or tampering.
    fn overwrite_frame(
        &mut self,
        store: &Self::Store,
        stream: &StreamId,
        seq: u64,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), String>>;

    /// Replaces the stored snapshot frame without any check.
    fn overwrite_snapshot_frame(
        &mut self,
        store: &Self::Store,
        stream: &StreamId,
        frame: Vec<u8>,
    ) -> impl Future<Output = Result<(), String>>;
}

/// A failed conformance check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The case that failed.
    pub case: &'static str,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conformance case {} failed: {}", self.case, self.message)
    }
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Turns any displayable error into a check failure with context.
trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// A deterministic, realistic event body number `i`.
#[doc(hidden)]
#[must_use]
pub fn sample_event(i: u64) -> Event {
    let pod = format!("demo-{}", i % 3);
    match i % 4 {
        0 => Event::NodeRoleObserved {
            pod,
            role: Role::Replica,
            primary: Some("demo-0".into()),
        },
        1 => Event::ReplicationObserved {
            pod,
            link: LinkStatus::Up,
            offset: 1_000_000u64.saturating_add(i),
            replid: ReplId([u8::try_from(i % 251).unwrap_or(0); 20]),
        },
        2 => Event::IntentSucceeded {
            intent_id: Uuid::from_u64_pair(i, i),
            detail: format!("done {i}"),
        },
        _ => Event::KubeNodeObserved {
            node: format!("node-{}", i % 2),
            ready: i % 8 != 3,
        },
    }
}

/// `NewEvent` number `i` with a fixed id and time (so runs are reproducible).
#[doc(hidden)]
#[must_use]
pub fn sample_new_event(i: u64) -> NewEvent {
    NewEvent {
        id: Uuid::from_u64_pair(0x0190_0000_0000_7000, i),
        at: Timestamp(1_750_000_000_000_000i64.saturating_add(i64::try_from(i).unwrap_or(0))),
        cause: None,
        body: sample_event(i),
    }
}

fn stream(name: &str) -> Result<StreamId, String> {
    StreamId::new(name).ctx("stream id")
}

async fn fill<S: JournalStore + Clone>(
    store: &S,
    stream: &StreamId,
    count: u64,
    batch: u64,
) -> Result<StreamWriter<S>, String> {
    let mut writer = StreamWriter::open(store.clone(), stream.clone(), 1)
        .await
        .ctx("open writer")?;
    let mut i = writer.head().next_seq();
    let end = i.saturating_add(count);
    while i < end {
        let upto = end.min(i.saturating_add(batch.max(1)));
        writer
            .append((i..upto).map(sample_new_event).collect())
            .await
            .ctx("append")?;
        i = upto;
    }
    Ok(writer)
}

async fn all_envelopes<S: JournalStore>(
    store: &S,
    stream: &StreamId,
) -> Result<Vec<crate::Envelope>, String> {
    let head = store.head(stream).await.ctx("head")?;
    reader::read_envelopes(store, stream, 1, ChainHash::GENESIS, head.seq)
        .await
        .ctx("read envelopes")
}

async fn ordering<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("order")?;
    let writer = fill(&store, &s, 10, 3).await?;
    let head = store.head(&s).await.ctx("head")?;
    ensure!(
        head == writer.head(),
        "store head {head:?} differs from writer head {:?}",
        writer.head()
    );
    ensure!(head.seq == 10, "head seq {} after 10 appends", head.seq);
    let envelopes = all_envelopes(&store, &s).await?;
    ensure!(
        envelopes.len() == 10,
        "read {} envelopes, expected 10",
        envelopes.len()
    );
    for (i, e) in (1u64..).zip(&envelopes) {
        ensure!(e.seq == i, "envelope {i} has seq {}", e.seq);
        ensure!(e.body == sample_event(i), "envelope {i} body differs");
        ensure!(e.id == sample_new_event(i).id, "envelope {i} id differs");
    }
    ensure!(
        envelopes.last().map(|e| e.hash) == Some(head.hash),
        "head hash is not the last event's hash"
    );
    Ok(())
}

async fn conflicts<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("conflict")?;
    fill(&store, &s, 3, 3).await?;
    let mut a = StreamWriter::open(store.clone(), s.clone(), 1)
        .await
        .ctx("open a")?;
    let mut b = StreamWriter::open(store.clone(), s.clone(), 1)
        .await
        .ctx("open b")?;
    a.append(vec![sample_new_event(4)]).await.ctx("append a")?;
    let before = store.head(&s).await.ctx("head")?;
    match b.append(vec![sample_new_event(40)]).await {
        Err(crate::writer::WriterError::Store(StoreError::Conflict {
            expected: 4,
            actual: 5,
            ..
        })) => {}
        other => {
            return Err(format!(
                "stale writer got {other:?}, expected Conflict {{ expected: 4, actual: 5 }}"
            ));
        }
    }
    ensure!(
        store.head(&s).await.ctx("head")? == before,
        "a conflicting append moved the head"
    );
    ensure!(
        all_envelopes(&store, &s)
            .await?
            .get(3)
            .map(|e| e.body.clone())
            == Some(sample_event(4)),
        "seq 4 was overwritten"
    );
    b.reload().await.ctx("reload")?;
    b.append(vec![sample_new_event(5)])
        .await
        .ctx("append after reload")?;

    // Raw store checks: stale expected seq, a seq from the past, gaps in a batch.
    let (_, frames) = encode_batch(&s, before, 1, vec![sample_new_event(6)]).ctx("encode")?;
    for expected in [1u64, 5, 7, 100] {
        match store.append(&s, expected, &frames).await {
            Err(StoreError::Conflict { .. } | StoreError::NonContiguousBatch { .. }) => {}
            other => {
                return Err(format!(
                    "append at expected {expected} (head 5) gave {other:?}"
                ));
            }
        }
    }
    let head = store.head(&s).await.ctx("head")?;
    let (_, mut frames) =
        encode_batch(&s, head, 1, vec![sample_new_event(6), sample_new_event(7)]).ctx("encode")?;
    if let Some(second) = frames.get_mut(1) {
        second.seq = 8;
    }
    match store.append(&s, 6, &frames).await {
        Err(StoreError::NonContiguousBatch {
            expected: 7,
            found: 8,
            ..
        }) => {}
        other => return Err(format!("gapped batch gave {other:?}")),
    }
    ensure!(
        store.head(&s).await.ctx("head")? == head,
        "a rejected batch changed the head"
    );
    let empty: [EncodedEvent; 0] = [];
    ensure!(
        store.append(&s, 6, &empty).await.ctx("empty append")? == head,
        "empty append changed the head"
    );
    ensure!(
        matches!(
            store.append(&s, 9, &empty).await,
            Err(StoreError::Conflict { .. })
        ),
        "empty append at a wrong seq accepted"
    );
    Ok(())
}

async fn range_reads<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("range")?;
    let other = stream("range-other")?;
    fill(&store, &s, 20, 7).await?;
    fill(&store, &other, 2, 2).await?;
    let batch = store.read(&s, 5, 4).await.ctx("read")?;
    let seqs: Vec<u64> = batch.iter().map(|(seq, _)| seq).collect();
    ensure!(seqs == vec![5, 6, 7, 8], "read(5, 4) returned {seqs:?}");
    let raw5 = h.raw_frame(&store, &s, 5).await?;
    ensure!(
        batch.iter().next().map(|(_, f)| f.to_vec()) == raw5,
        "read bytes differ from stored bytes"
    );
    ensure!(
        store.read(&s, 21, 10).await.ctx("read")?.is_empty(),
        "read past the head returned frames"
    );
    ensure!(
        store.read(&s, 0, 1).await.ctx("read")?.last_seq() == Some(1),
        "read from 0 does not start at 1"
    );
    ensure!(
        store.read(&s, 19, 100).await.ctx("read")?.len() == 2,
        "read of the tail is not 2 frames"
    );
    let unknown = stream("never-written")?;
    ensure!(
        store.read(&unknown, 1, 10).await.ctx("read")?.is_empty(),
        "unknown stream has frames"
    );
    ensure!(
        store.head(&unknown).await.ctx("head")? == Head::EMPTY,
        "unknown stream has a head"
    );
    ensure!(
        store
            .get_snapshot(&unknown)
            .await
            .ctx("snapshot")?
            .is_none(),
        "unknown stream has a snapshot"
    );
    let envelopes = reader::read_envelopes(
        &store,
        &s,
        11,
        store
            .read(&s, 10, 1)
            .await
            .ctx("read")?
            .iter()
            .next()
            .and_then(|(_, f)| codec::stored_hash(f).ok())
            .unwrap_or_default(),
        15,
    )
    .await
    .ctx("read 11..=15")?;
    ensure!(
        envelopes.iter().map(|e| e.seq).eq(11..=15),
        "read_envelopes(11..=15) returned the wrong seqs"
    );
    Ok(())
}

async fn snapshots<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("snap")?;
    fill(&store, &s, 30, 10).await?;
    let mut state = crate::ClusterState::new();
    let mut at_20 = None;
    for e in all_envelopes(&store, &s).await? {
        state.apply(&e);
        if e.seq == 20 {
            at_20 = Some(state.clone());
        }
    }
    let at_20 = at_20.ok_or("no state at 20")?;
    snapshot::save(&store, &s, &at_20)
        .await
        .ctx("save snapshot")?;
    let loaded = snapshot::load(&store, &s)
        .await
        .ctx("load snapshot")?
        .ok_or("snapshot missing")?;
    ensure!(
        loaded.seq == 20 && loaded.state == at_20,
        "loaded snapshot differs from the saved one"
    );
    let rebuilt = reader::load_state(&store, &s).await.ctx("load_state")?;
    ensure!(
        rebuilt.snapshot_seq == Some(20) && rebuilt.folded == 10,
        "load_state used snapshot {:?}, folded {}",
        rebuilt.snapshot_seq,
        rebuilt.folded
    );
    ensure!(
        rebuilt.state == state,
        "snapshot + tail differs from the full fold"
    );

    let mut beyond = at_20.clone();
    beyond.last_seq = 31;
    match snapshot::save(&store, &s, &beyond).await {
        Err(snapshot::SnapshotError::Store(StoreError::SnapshotBeyondHead {
            seq: 31,
            head: 30,
            ..
        })) => {}
        other => return Err(format!("snapshot beyond head gave {other:?}")),
    }
    let mut state_10 = crate::ClusterState::new();
    for e in all_envelopes(&store, &s).await?.iter().take(10) {
        state_10.apply(e);
    }
    match snapshot::save(&store, &s, &state_10).await {
        Err(snapshot::SnapshotError::Store(StoreError::SnapshotRegression {
            seq: 10,
            stored: 20,
            ..
        })) => {}
        other => return Err(format!("older snapshot gave {other:?}")),
    }
    snapshot::save(&store, &s, &state)
        .await
        .ctx("save newer snapshot")?;
    ensure!(
        store.get_snapshot(&s).await.ctx("get")?.map(|s| s.seq) == Some(30),
        "newer snapshot not kept"
    );
    ensure!(
        verify::verify(&store, &s).await.ctx("verify")?.is_ok(),
        "verify failed on a healthy stream with a snapshot"
    );
    Ok(())
}

async fn compaction<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("compact")?;
    fill(&store, &s, 40, 16).await?;
    match store.compact(&s, 2).await {
        Err(StoreError::CompactionBeyondSnapshot { snapshot: 0, .. }) => {}
        other => return Err(format!("compaction without snapshot gave {other:?}")),
    }
    let full = reader::load_state_from_start(&store, &s)
        .await
        .ctx("full fold")?;
    let mut at_25 = crate::ClusterState::new();
    for e in all_envelopes(&store, &s).await?.iter().take(25) {
        at_25.apply(e);
    }
    snapshot::save(&store, &s, &at_25).await.ctx("save")?;
    ensure!(
        matches!(
            store.compact(&s, 27).await,
            Err(StoreError::CompactionBeyondSnapshot { snapshot: 25, .. })
        ),
        "compaction past the snapshot accepted"
    );
    let removed = store.compact(&s, 20).await.ctx("compact 20")?;
    ensure!(removed == 19, "compact(20) removed {removed}, expected 19");
    ensure!(
        verify::verify(&store, &s).await.ctx("verify")?.is_ok(),
        "verify failed after partial compaction"
    );
    let removed = store.compact(&s, 26).await.ctx("compact 26")?;
    ensure!(removed == 6, "compact(26) removed {removed}, expected 6");
    ensure!(
        store.read(&s, 1, 1).await.ctx("read")?.last_seq() == Some(26),
        "first stored seq is not 26"
    );
    let loaded = reader::load_state(&store, &s).await.ctx("load_state")?;
    ensure!(
        loaded.state == full,
        "snapshot + tail after compaction differs from the full fold"
    );
    ensure!(
        matches!(
            reader::load_state_from_start(&store, &s).await,
            Err(ReadError::Missing { expected: 1, .. })
        ),
        "fold from seq 1 did not report the compacted start"
    );
    let report = verify::verify(&store, &s).await.ctx("verify")?;
    ensure!(
        report.is_ok() && report.events_checked == 15,
        "verify after compaction: {report:?}"
    );
    ensure!(
        store.compact(&s, 26).await.ctx("compact again")? == 0,
        "repeated compaction removed events"
    );
    Ok(())
}

async fn reopen<H: Harness>(h: &mut H) -> Check {
    let s = stream("reopen")?;
    let (head, state) = {
        let store = h.open().await?;
        fill(&store, &s, 12, 5).await?;
        let state = reader::load_state(&store, &s).await.ctx("load")?.state;
        snapshot::save(&store, &s, &state).await.ctx("save")?;
        (store.head(&s).await.ctx("head")?, state)
    };
    let store = h.open().await?;
    ensure!(
        store.head(&s).await.ctx("head")? == head,
        "head changed across reopen"
    );
    ensure!(
        store.get_snapshot(&s).await.ctx("snapshot")?.map(|x| x.seq) == Some(12),
        "snapshot lost across reopen"
    );
    ensure!(
        reader::load_state_from_start(&store, &s)
            .await
            .ctx("fold")?
            == state,
        "events changed across reopen"
    );
    ensure!(
        store.list_streams().await.ctx("list")?.contains(&s),
        "stream not listed after reopen"
    );
    fill(&store, &s, 3, 3).await?;
    ensure!(
        store.head(&s).await.ctx("head")?.seq == 15,
        "cannot continue after reopen"
    );
    Ok(())
}

async fn listing<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let names = ["b-stream", "a-stream", "operator"];
    for name in names {
        fill(&store, &stream(name)?, 1, 1).await?;
    }
    let listed: Vec<String> = store
        .list_streams()
        .await
        .ctx("list")?
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    ensure!(
        listed == vec!["a-stream", "b-stream", "operator"],
        "listed {listed:?}"
    );
    Ok(())
}

async fn torn_tail<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("torn")?;
    fill(&store, &s, 6, 6).await?;
    ensure!(
        verify::repair_torn_tail(&store, &s).await.ctx("repair")? == RepairOutcome::Intact,
        "repair touched an intact stream"
    );
    let last = h.raw_frame(&store, &s, 6).await?.ok_or("seq 6 missing")?;
    let half = last.get(..last.len() / 2).unwrap_or_default().to_vec();
    h.overwrite_frame(&store, &s, 6, half).await?;
    let report = verify::verify(&store, &s).await.ctx("verify")?;
    let problem = report.problem.ok_or("torn tail not detected")?;
    ensure!(
        problem.seq == 6 && problem.kind == ProblemKind::TornTail && problem.stream == s,
        "torn tail reported as {problem:?}"
    );
    ensure!(
        report.events_checked == 5,
        "checked {} before the torn tail",
        report.events_checked
    );
    ensure!(
        matches!(
            reader::load_state(&store, &s).await,
            Err(ReadError::Corrupt { seq: 6, .. })
        ),
        "reader accepted a torn frame"
    );
    let outcome = verify::repair_torn_tail(&store, &s).await.ctx("repair")?;
    ensure!(
        outcome
            == RepairOutcome::Removed {
                seq: 6,
                kind: ProblemKind::TornTail
            },
        "repair gave {outcome:?}"
    );
    let report = verify::verify(&store, &s).await.ctx("verify")?;
    ensure!(
        report.is_ok() && report.head.seq == 5,
        "after repair: {report:?}"
    );
    fill(&store, &s, 1, 1).await?;
    ensure!(
        verify::verify(&store, &s).await.ctx("verify")?.is_ok(),
        "append after repair broke the chain"
    );

    // Damage in the middle is not a torn tail: repair leaves it alone.
    let third = h.raw_frame(&store, &s, 3).await?.ok_or("seq 3 missing")?;
    h.overwrite_frame(&store, &s, 3, third.get(..10).unwrap_or_default().to_vec())
        .await?;
    let problem = verify::verify(&store, &s)
        .await
        .ctx("verify")?
        .problem
        .ok_or("middle damage not detected")?;
    ensure!(
        problem.seq == 3 && problem.kind == ProblemKind::BadLength,
        "middle truncation reported as {problem:?}"
    );
    ensure!(
        verify::repair_torn_tail(&store, &s).await.ctx("repair")? == RepairOutcome::Intact,
        "repair removed a valid last event"
    );
    h.overwrite_frame(&store, &s, 3, third).await?;

    Ok(())
}

/// Flips one byte of every stored frame in turn (every position of the
/// first, a spread of positions of the others) and requires `verify` to
/// name that seq.
async fn tampering<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("tamper")?;
    fill(&store, &s, 4, 4).await?;
    for seq in 1..=4u64 {
        let original = h.raw_frame(&store, &s, seq).await?.ok_or("frame missing")?;
        let step = if seq == 1 { 1 } else { 7 };
        for pos in (0..original.len()).step_by(step) {
            let mut damaged = original.clone();
            if let Some(byte) = damaged.get_mut(pos) {
                *byte ^= 0x5a;
            }
            h.overwrite_frame(&store, &s, seq, damaged).await?;
            let report = verify::verify(&store, &s).await.ctx("verify")?;
            let problem = report
                .problem
                .ok_or_else(|| format!("flipped byte {pos} of seq {seq} not detected"))?;
            ensure!(
                problem.seq == seq,
                "flipped byte {pos} of seq {seq} reported at seq {}",
                problem.seq
            );
        }
        h.overwrite_frame(&store, &s, seq, original).await?;
    }
    ensure!(
        verify::verify(&store, &s).await.ctx("verify")?.is_ok(),
        "restored stream fails verify: {:?}",
        verify::verify(&store, &s).await.ctx("verify")?.problem
    );

    // A forged event with a valid CRC and a correct link to its predecessor
    // still breaks the link of its successor.
    let envelopes = all_envelopes(&store, &s).await?;
    let second = envelopes.get(1).ok_or("seq 2 missing")?;
    let mut forged = second.clone();
    forged.body = Event::ClusterDeleted;
    let forged = codec::encode_event(&forged).ctx("encode forged")?;
    h.overwrite_frame(&store, &s, 2, forged.frame).await?;
    let problem = verify::verify(&store, &s)
        .await
        .ctx("verify")?
        .problem
        .ok_or("forged event not detected")?;
    ensure!(
        problem.seq == 3 && problem.kind == ProblemKind::BadHashLink,
        "forged seq 2 reported as {problem:?}"
    );
    let original = codec::encode_event(second).ctx("re-encode")?;
    h.overwrite_frame(&store, &s, 2, original.frame).await?;

    // Forging the last event is caught by the head.
    let fourth = envelopes.get(3).ok_or("seq 4 missing")?;
    let mut forged = fourth.clone();
    forged.body = Event::ClusterDeleted;
    h.overwrite_frame(
        &store,
        &s,
        4,
        codec::encode_event(&forged).ctx("encode")?.frame,
    )
    .await?;
    let problem = verify::verify(&store, &s)
        .await
        .ctx("verify")?
        .problem
        .ok_or("forged last event not detected")?;
    ensure!(
        problem.seq == 4 && problem.kind == ProblemKind::BadHashLink,
        "forged seq 4 reported as {problem:?}"
    );
    let outcome = verify::repair_torn_tail(&store, &s).await.ctx("repair")?;
    ensure!(
        outcome == RepairOutcome::Intact && store.head(&s).await.ctx("head")?.seq == 4,
        "repair removed a forged (well-formed) last event: {outcome:?}"
    );
    h.overwrite_frame(
        &store,
        &s,
        4,
        codec::encode_event(fourth).ctx("encode")?.frame,
    )
    .await?;

    // Snapshot bytes are covered too.
    let state = reader::load_state(&store, &s).await.ctx("load")?.state;
    let (saved, _) = snapshot::save(&store, &s, &state).await.ctx("save")?;
    for pos in (0..saved.frame.len()).step_by(13) {
        let mut damaged = saved.frame.clone();
        if let Some(byte) = damaged.get_mut(pos) {
            *byte ^= 0x01;
        }
        h.overwrite_snapshot_frame(&store, &s, damaged).await?;
        let problem = verify::verify(&store, &s)
            .await
            .ctx("verify")?
            .problem
            .ok_or_else(|| format!("snapshot byte {pos} not detected"))?;
        ensure!(
            problem.kind == ProblemKind::BadSnapshot,
            "snapshot damage reported as {problem:?}"
        );
    }
    h.overwrite_snapshot_frame(&store, &s, saved.frame).await?;
    ensure!(
        verify::verify(&store, &s).await.ctx("verify")?.is_ok(),
        "restored stream fails verify: {:?}",
        verify::verify(&store, &s).await.ctx("verify")?.problem
    );
    Ok(())
}

async fn remove_last_guards<H: Harness>(h: &mut H) -> Check {
    let store = h.open().await?;
    let s = stream("guards")?;
    fill(&store, &s, 5, 5).await?;
    let head4 = Head {
        seq: 4,
        hash: ChainHash::GENESIS,
    };
    ensure!(
        matches!(
            store
                .remove_last(
                    &s,
                    4,
                    Head {
                        seq: 3,
                        hash: ChainHash::GENESIS
                    }
                )
                .await,
            Err(StoreError::Conflict { .. })
        ),
        "remove_last of a non-head seq accepted"
    );
    let state = reader::load_state(&store, &s).await.ctx("load")?.state;
    snapshot::save(&store, &s, &state).await.ctx("save")?;
    ensure!(
        matches!(
            store.remove_last(&s, 5, head4).await,
            Err(StoreError::TruncateBelowSnapshot { .. })
        ),
        "remove_last under the snapshot accepted"
    );
    Ok(())
}

/// Runs every case, each against a fresh harness from `make`; returns the
/// first failure.
///
/// # Errors
/// The first [`Failure`].
pub async fn run_all<H, F>(mut make: F) -> Result<(), Failure>
where
    H: Harness,
    F: FnMut() -> H,
{
    macro_rules! case {
        ($name:ident) => {
            $name(&mut make()).await.map_err(|message| Failure {
                case: stringify!($name),
                message,
            })?;
        };
    }
    case!(ordering);
    case!(conflicts);
    case!(range_reads);
    case!(snapshots);
    case!(compaction);
    case!(reopen);
    case!(listing);
    case!(torn_tail);
    case!(tampering);
    case!(remove_last_guards);
    Ok(())
}

#[cfg(test)]
#[path = "conformance_tests.rs"]
mod tests;
