//! The record layout: one record per append. The conformance suite
//! covers the trait; these cover damage *inside* a multi-frame record,
//! which only this layout has.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use crate::event::Event;
use crate::ready::now_or_never;
use crate::verify::{self, ProblemKind, RepairOutcome};
use crate::writer::{NewEvent, StreamWriter};

fn store_with_one_batch(events: usize) -> (tempfile::TempDir, SledStore, StreamId) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), Durability::Background).unwrap();
    let stream = StreamId::new("records").unwrap();
    let mut writer = now_or_never(StreamWriter::open(store.clone(), stream.clone(), 1))
        .unwrap()
        .unwrap();
    let batch = (0..events)
        .map(|_| NewEvent::now(Event::ClusterDeleted))
        .collect();
    now_or_never(writer.append(batch)).unwrap().unwrap();
    (dir, store, stream)
}

fn record_at(store: &SledStore, stream: &StreamId, key: u64) -> Vec<u8> {
    store
        .tree(stream)
        .unwrap()
        .get(key.to_be_bytes())
        .unwrap()
        .unwrap()
        .to_vec()
}

fn put_record(store: &SledStore, stream: &StreamId, key: u64, bytes: Vec<u8>) {
    store
        .tree(stream)
        .unwrap()
        .insert(key.to_be_bytes(), bytes)
        .unwrap();
}

#[test]
fn a_batch_is_one_record_and_reads_back_frame_by_frame() {
    let (_dir, store, stream) = store_with_one_batch(5);
    assert_eq!(store.tree(&stream).unwrap().len(), 1);
    let all = now_or_never(store.read(&stream, 1, 100)).unwrap().unwrap();
    assert_eq!(
        all.iter().map(|(seq, _)| seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let middle = now_or_never(store.read(&stream, 3, 2)).unwrap().unwrap();
    assert_eq!(
        middle.iter().map(|(seq, _)| seq).collect::<Vec<_>>(),
        vec![3, 4]
    );
    let joined: Vec<u8> = all.iter().flat_map(|(_, f)| f.to_vec()).collect();
    assert_eq!(joined, record_at(&store, &stream, 1));
}

#[test]
fn a_torn_write_inside_a_record_is_reported_at_its_seq_and_repaired_alone() {
    let (_dir, store, stream) = store_with_one_batch(5);
    let mut record = record_at(&store, &stream, 1);
    record.truncate(record.len() - 10);
    put_record(&store, &stream, 1, record);

    let report = now_or_never(verify::verify(&store, &stream))
        .unwrap()
        .unwrap();
    let problem = report.problem.expect("torn tail detected");
    assert_eq!((problem.seq, problem.kind), (5, ProblemKind::TornTail));

    let outcome = now_or_never(verify::repair_torn_tail(&store, &stream))
        .unwrap()
        .unwrap();
    assert_eq!(
        outcome,
        RepairOutcome::Removed {
            seq: 5,
            kind: ProblemKind::TornTail
        }
    );
    let report = now_or_never(verify::verify(&store, &stream))
        .unwrap()
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, 4);
}

#[test]
fn a_damaged_length_inside_a_record_is_reported_at_that_seq() {
    let (_dir, store, stream) = store_with_one_batch(5);
    let mut record = record_at(&store, &stream, 1);
    let first_len = u32::from_le_bytes(record[..4].try_into().unwrap()) as usize;
    // Frame 2's length field, made shorter than the frame.
    let second = FRAME_HEADER_LEN + first_len;
    record[second] = record[second].wrapping_sub(3);
    put_record(&store, &stream, 1, record);

    let report = now_or_never(verify::verify(&store, &stream))
        .unwrap()
        .unwrap();
    let problem = report.problem.expect("damage detected");
    assert_eq!(problem.seq, 2, "{problem:?}");
    assert_eq!(report.events_checked, 1);
}

#[test]
fn compaction_inside_a_record_keeps_exactly_the_newer_events() {
    let (_dir, store, stream) = store_with_one_batch(6);
    let envelopes = now_or_never(crate::reader::read_envelopes(
        &store,
        &stream,
        1,
        ChainHash::GENESIS,
        6,
    ))
    .unwrap()
    .unwrap();
    let third = &envelopes[2];
    let snapshot = EncodedSnapshot {
        seq: 3,
        hash: third.hash,
        frame: vec![1, 2, 3],
    };
    now_or_never(store.put_snapshot(&stream, &snapshot))
        .unwrap()
        .unwrap();
    let removed = now_or_never(store.compact(&stream, 4)).unwrap().unwrap();
    assert_eq!(removed, 3);
    let rest = now_or_never(store.read(&stream, 1, 100)).unwrap().unwrap();
    assert_eq!(
        rest.iter().map(|(seq, _)| seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
}
