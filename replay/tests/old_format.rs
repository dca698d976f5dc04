//! A journal whose first event was written by frame format version 1 (an
//! `OperatorStarted` of the old shape, upcast on read) replays, and its
//! JSONL export keeps that frame so the export still verifies and reads
//! back to the same events: re-encoding the upcast event with the current
//! format would not give its stored hash back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use logbook_journal::codec::FRAME_HEADER_LEN;
use logbook_journal::writer::encode_batch;
use logbook_journal::{
    ChainHash, EncodedEvent, Event, Head, JournalStore, MemoryStore, NewEvent, StreamId, Timestamp,
    chain,
};
use logbook_replay::Input;
use logbook_replay::source::{Flow, Raw, Visit};
use uuid::Uuid;

/// Seq 1 as format version 1 wrote it: `OperatorStarted` with only the
/// version and instance (variant 16).
fn v1_operator_started() -> EncodedEvent {
    let core = (
        1u64,
        Uuid::from_u128(7),
        Timestamp(1_700_000_000_000_000),
        Option::<Uuid>::None,
        4u64,
        (16u32, "0.0.9".to_owned(), "logbook-0".to_owned()),
    );
    let config = bincode::config::standard();
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    bincode::serde::encode_into_std_write(&core, &mut frame, config).unwrap();
    let hash = chain::link(&ChainHash::GENESIS, 1, &frame[FRAME_HEADER_LEN..]);
    frame.extend_from_slice(&hash.0);
    let len = u32::try_from(frame.len() - FRAME_HEADER_LEN).unwrap();
    frame[8] = 1;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[1]), &frame[FRAME_HEADER_LEN..]);
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    EncodedEvent {
        seq: 1,
        hash,
        frame,
    }
}

#[derive(Default)]
struct Collect(Vec<(logbook_journal::Envelope, u8)>);

impl Visit for Collect {
    fn event(
        &mut self,
        e: &logbook_journal::Envelope,
        raw: Raw<'_>,
    ) -> logbook_replay::Result<Flow> {
        self.0.push((e.clone(), raw.version));
        Ok(Flow::Continue)
    }
}

#[test]
fn a_version_1_frame_replays_and_survives_the_jsonl_round_trip() {
    futures::executor::block_on(async {
        let store = MemoryStore::new();
        let stream = StreamId::new("old").unwrap();
        let first = v1_operator_started();
        store
            .append(&stream, 1, std::slice::from_ref(&first))
            .await
            .unwrap();
        let head = Head {
            seq: 1,
            hash: first.hash,
        };
        let next = NewEvent {
            id: Uuid::now_v7(),
            at: Timestamp(1_700_000_000_100_000),
            cause: None,
            body: Event::PodDeleted { pod: "p-0".into() },
        };
        let (_, encoded) = encode_batch(&stream, head, 4, vec![next]).unwrap();
        store.append(&stream, 2, &encoded).await.unwrap();
        let input = Input::Store {
            store,
            stream,
            cluster: None,
            place: "test".to_owned(),
        };
        let mut from_store = Collect::default();
        input.scan(None, &mut from_store).await.unwrap();
        assert_eq!(from_store.0.len(), 2);
        assert_eq!(from_store.0[0].1, 1, "seq 1 is a version-1 frame");
        assert_eq!(
            from_store.0[0].0.body,
            Event::OperatorStarted {
                version: "0.0.9".into(),
                instance: "logbook-0".into(),
                epoch: 4,
                gap_ms: None,
            }
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.jsonl");
        let mut out = Vec::new();
        logbook_replay::export::jsonl(&input, &mut out, "test".into())
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("\"frame\":"), "{}", lines[1]);
        assert!(!lines[2].contains("\"frame\":"), "{}", lines[2]);
        std::fs::write(&path, &text).unwrap();
        let file = Input::<MemoryStore>::File(path.clone());
        let verified = logbook_replay::verify::verify(&file).await.unwrap();
        assert!(verified.problem.is_none(), "{verified:?}");
        let mut from_file = Collect::default();
        file.scan(None, &mut from_file).await.unwrap();
        assert_eq!(from_file.0, from_store.0);

        // The old frame is what is checked: altering the JSON beside it is
        // caught.
        let altered = text.replacen("logbook-0", "logbook-X", 1);
        std::fs::write(&path, altered).unwrap();
        let verified = logbook_replay::verify::verify(&file).await.unwrap();
        let problem = verified.problem.unwrap();
        assert_eq!(problem.seq, 1);
        assert!(
            problem.detail.contains("differs from its stored frame"),
            "{problem:?}"
        );
    });
}
