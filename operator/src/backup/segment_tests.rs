//! The segment codec and the cut at a time, on handmade streams.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn stream(start: u64, cmds: &[(i64, Vec<u8>)]) -> Vec<Record> {
    let mut offset = start;
    cmds.iter()
        .map(|(ms, bytes)| {
            let r = Record {
                offset,
                received_ms: *ms,
                bytes: bytes.clone(),
            };
            offset = r.end();
            r
        })
        .collect()
}

#[test]
fn a_segment_round_trips_and_is_checked_against_its_entry() {
    let records = stream(
        100,
        &[
            (1, cmd(&["SELECT", "0"])),
            (2, cmd(&["SET", "k", "v"])),
            (3, cmd(&["PING"])),
        ],
    );
    let bytes = encode_segment(&records);
    assert_eq!(decode_segment(&bytes).unwrap(), records);
    let mut entry = SegmentEntry {
        name: segment_name(100),
        start: 100,
        end: records.last().unwrap().end(),
        first_ms: 1,
        last_ms: 3,
        records: 3,
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
        replid: "r".into(),
        source: "p".into(),
        slots: vec![],
    };
    assert_eq!(check_segment(&entry, &bytes).unwrap(), records);
    let mut bad = bytes.clone();
    let last = bad.len() - 3;
    bad[last] ^= 1;
    assert!(matches!(
        check_segment(&entry, &bad),
        Err(SegmentError::Checksum { .. })
    ));
    entry.end += 1;
    assert!(matches!(
        check_segment(&entry, &bytes),
        Err(SegmentError::Range { .. })
    ));
    assert!(matches!(
        decode_segment(&bytes[..bytes.len() - 1]),
        Err(SegmentError::Truncated { .. })
    ));
    assert_eq!(decode_segment(b"nope"), Err(SegmentError::Magic));
}

#[test]
fn records_that_skip_bytes_or_are_no_command_are_refused() {
    let mut records = stream(
        0,
        &[(1, cmd(&["SET", "a", "1"])), (2, cmd(&["SET", "b", "2"]))],
    );
    records[1].offset += 1;
    assert!(matches!(
        decode_segment(&encode_segment(&records)),
        Err(SegmentError::NotContiguous { .. })
    ));
    let half = Record {
        offset: 0,
        received_ms: 1,
        bytes: b"*2\r\n$3\r\nSET\r\n".to_vec(),
    };
    assert!(matches!(
        decode_segment(&encode_segment(&[half])),
        Err(SegmentError::NotACommand { offset: 0 })
    ));
}

#[test]
fn the_cut_keeps_what_was_received_by_then_and_no_half_transaction() {
    let records = stream(
        0,
        &[
            (10, cmd(&["SELECT", "0"])),
            (11, cmd(&["SET", "a", "1"])),
            (12, cmd(&["PING"])),
            (13, cmd(&["REPLCONF", "GETACK", "*"])),
            (13, cmd(&["CLUSTER", "SYNCSLOTS", "ACK"])),
            (20, cmd(&["MULTI"])),
            (20, cmd(&["SET", "b", "2"])),
            (21, cmd(&["EXEC"])),
            (30, cmd(&["SET", "c", "3"])),
        ],
    );
    let run = |until: i64| {
        let mut cut = AofCut::default();
        let mut aof = Vec::new();
        aof_until(&records[..5], until, &mut cut, &mut aof);
        aof_until(&records[5..], until, &mut cut, &mut aof);
        (finish_aof(cut, &mut aof), aof)
    };
    let (cut, aof) = run(15);
    assert_eq!(
        aof,
        [cmd(&["SELECT", "0"]), cmd(&["SET", "a", "1"])].concat()
    );
    assert_eq!(
        (cut.commands, cut.end, cut.last_ms, cut.left_out),
        (2, records[5].offset, Some(13), 4)
    );
    // The cut inside the transaction (its EXEC came later) leaves it all out.
    let (cut, aof) = run(20);
    assert_eq!(
        aof,
        [cmd(&["SELECT", "0"]), cmd(&["SET", "a", "1"])].concat()
    );
    assert_eq!((cut.end, cut.last_ms), (records[5].offset, Some(13)));
    let (cut, aof) = run(25);
    assert!(aof.ends_with(&cmd(&["EXEC"])));
    assert_eq!(cut.commands, 3);
    let (cut, _) = run(30);
    assert_eq!((cut.end, cut.left_out), (records[8].end(), 0));
}

#[test]
fn command_framing_reads_whole_commands_only() {
    let c = cmd(&["SET", "key", "value"]);
    assert_eq!(command_len(&c), Some(c.len()));
    assert_eq!(command_len(&c[..c.len() - 1]), None);
    assert_eq!(command_name(&c).as_deref(), Some("set"));
    assert_eq!(
        command_args(&c).unwrap(),
        vec![&b"SET"[..], b"key", b"value"]
    );
    assert_eq!(command_len(b"+OK\r\n"), None);
}

#[test]
fn names_sort_as_their_numbers() {
    assert!(segment_name(9) < segment_name(10));
    assert!(index_name(2) < index_name(10));
    assert_eq!(
        chain_name(1_700_000_000_000, "abcdef0123456789"),
        "1700000000000-abcdef01"
    );
    assert_eq!(archive_dir("p/ns/c/"), "p/ns/c/_archive/");
}
