//! The writer's cutting rules, without a bucket: when a segment closes,
//! what its index entry says, and that a gap is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use crate::backup::segment::{decode_segment, encode_segment};
use crate::backup::{S3Credentials, S3Target};

/// A store nobody listens behind: these tests never upload.
fn store() -> BackupStore {
    let target = S3Target {
        bucket: "b".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        path_style: true,
    };
    let credentials = S3Credentials {
        access_key_id: "k".to_owned(),
        secret_access_key: "s".to_owned(),
        session_token: None,
    };
    BackupStore::new(&target, &credentials).unwrap()
}

fn start() -> ChainStart {
    ChainStart {
        format: ARCHIVE_FORMAT,
        chain: "c".to_owned(),
        namespace: "ns".to_owned(),
        cluster: "demo".to_owned(),
        uid: "u".to_owned(),
        topology: "Replication".to_owned(),
        source: "r".to_owned(),
        primary: "p".to_owned(),
        replid: "a".repeat(40),
        offset: 100,
        base_at_ms: 0,
        base_bytes: 0,
        base_sha256: String::new(),
        rdb_version: 80,
        slots: Vec::new(),
    }
}

fn writer() -> ChainWriter {
    let position = ReplPosition {
        replid: "a".repeat(40),
        offset: 100,
    };
    ChainWriter::at(store(), "x/c/".to_owned(), start(), position, 0, Vec::new())
}

fn source() -> SourceInfo {
    SourceInfo {
        pod: "r".to_owned(),
        primary: "p".to_owned(),
        slots: Vec::new(),
    }
}

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Records of `cmds` from `offset` on, received at `ms`.
fn records(offset: u64, ms: i64, cmds: &[Vec<u8>]) -> Vec<Record> {
    let mut at = offset;
    cmds.iter()
        .map(|bytes| {
            let r = Record {
                offset: at,
                received_ms: ms,
                bytes: bytes.clone(),
            };
            at = r.end();
            r
        })
        .collect()
}

fn building(w: &ChainWriter) -> &Building {
    w.building.as_ref().unwrap()
}

#[test]
fn a_segment_with_a_write_closes_after_a_second_and_pings_alone_after_a_minute() {
    let mut w = writer();
    w.push(records(100, 1_000, &[cmd(&["PING"])]), &source(), 1_000)
        .unwrap();
    assert!(!building(&w).due(1_000 + SEGMENT_HOLD_MS * 5));
    assert!(building(&w).due(1_000 + SEGMENT_IDLE_MS));
    let at = w.position().offset;
    w.push(
        records(at, 2_000, &[cmd(&["SET", "k", "v"])]),
        &source(),
        2_000,
    )
    .unwrap();
    assert!(!building(&w).due(2_000 + SEGMENT_HOLD_MS - 1));
    assert!(building(&w).due(2_000 + SEGMENT_HOLD_MS));
}

#[test]
fn a_sealed_segment_is_its_records_and_its_entry_says_so() {
    let mut w = writer();
    let rs = records(100, 5, &[cmd(&["SELECT", "0"]), cmd(&["SET", "k", "v"])]);
    w.push(rs.clone(), &source(), 5).unwrap();
    w.seal();
    let sealed = w.sealed.front().unwrap();
    assert_eq!(decode_segment(&sealed.body).unwrap(), rs);
    assert_eq!(sealed.body.as_ref(), encode_segment(&rs).as_slice());
    assert_eq!(sealed.entry.start, 100);
    assert_eq!(sealed.entry.end, rs[1].end());
    assert_eq!(sealed.entry.records, 2);
    assert_eq!(sealed.entry.name, segment_name(100));
    assert_eq!(w.lag(10).buffered_bytes, sealed.body.len());
    // Its first command, received at 5, is at risk until it is uploaded.
    assert_eq!(w.lag(10).behind_ms, Some(5));
}

#[test]
fn a_quiet_streams_pings_put_nothing_at_risk() {
    let mut w = writer();
    let at = w.position().offset;
    w.push(records(at, 1_000, &[cmd(&["PING"])]), &source(), 1_000)
        .unwrap();
    assert_eq!(w.lag(50_000).behind_ms, Some(0));
    let at = w.position().offset;
    w.push(
        records(at, 2_000, &[cmd(&["SET", "k", "v"])]),
        &source(),
        2_000,
    )
    .unwrap();
    assert_eq!(w.lag(2_500).behind_ms, Some(500));
}

#[test]
fn a_big_segment_closes_at_its_size() {
    let mut w = writer();
    let big = "x".repeat(SEGMENT_MAX_BYTES);
    w.push(records(100, 5, &[cmd(&["SET", "k", &big])]), &source(), 5)
        .unwrap();
    assert!(w.building.is_none());
    assert_eq!(w.sealed.len(), 1);
}

#[test]
fn records_that_skip_or_repeat_bytes_are_refused() {
    let mut w = writer();
    let err = w
        .push(records(99, 5, &[cmd(&["PING"])]), &source(), 5)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Gap {
                expected: 100,
                found: 99,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_new_history_id_closes_the_segment_received_under_the_old_one() {
    let mut w = writer();
    w.push(records(100, 5, &[cmd(&["PING"])]), &source(), 5)
        .unwrap();
    w.set_replid(&"b".repeat(40));
    assert_eq!(w.sealed.front().unwrap().entry.replid, "a".repeat(40));
    assert_eq!(w.position().replid, "b".repeat(40));
}
