//! Planning's pure parts: coverage, the segments needed, gaps, slots, the digest.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

fn entry(name: &str, start: u64, end: u64, first_ms: i64, last_ms: i64) -> SegmentEntry {
    SegmentEntry {
        name: name.to_owned(),
        start,
        end,
        first_ms,
        last_ms,
        records: 1,
        bytes: 10,
        sha256: "00".repeat(32),
        replid: "r".repeat(40),
        source: "c-0".to_owned(),
        slots: Vec::new(),
    }
}

fn chain(base_at_ms: i64, entries: Vec<SegmentEntry>) -> Chain {
    Chain {
        name: "0000000000100-abcdefgh".to_owned(),
        dir: "a/_archive/0000000000100-abcdefgh/".to_owned(),
        start: ChainStart {
            format: 1,
            chain: "0000000000100-abcdefgh".to_owned(),
            namespace: "ns".to_owned(),
            cluster: "c".to_owned(),
            uid: "u".to_owned(),
            topology: "Replication".to_owned(),
            source: "c-0".to_owned(),
            primary: "c-0".to_owned(),
            replid: "r".repeat(40),
            offset: 100,
            base_at_ms,
            base_bytes: 1,
            base_sha256: "00".repeat(32),
            rdb_version: 80,
            slots: vec![[0, 16383]],
        },
        entries,
        end: None,
    }
}

#[test]
fn a_chain_covers_its_base_to_its_last_segment_and_needs_the_segments_begun_by_t() {
    let c = chain(
        100,
        vec![
            entry("s1", 100, 200, 110, 150),
            entry("s2", 200, 300, 160, 220),
        ],
    );
    assert!(!c.covers(99));
    assert!(c.covers(100));
    assert!(c.covers(220));
    assert!(!c.covers(221));
    assert_eq!(c.needed(105), 0);
    assert_eq!(c.needed(110), 1);
    assert_eq!(c.needed(159), 1);
    assert_eq!(c.needed(160), 2);
    assert!(c.coverage().contains("(100 ms) to"), "{}", c.coverage());
    assert!(c.coverage().contains("(220 ms)"), "{}", c.coverage());
}

#[test]
fn a_gap_names_the_segment_and_the_offset_due() {
    let entries = vec![entry("s1", 100, 200, 1, 2), entry("s2", 250, 300, 3, 4)];
    let err = check_contiguous("ch", 100, &entries)
        .unwrap_err()
        .to_string();
    assert!(err.contains("chain ch"), "{err}");
    assert!(err.contains("s2 (offsets 250..300"), "{err}");
    assert!(err.contains("200 was due"), "{err}");
    let err = check_contiguous("ch", 90, &entries)
        .unwrap_err()
        .to_string();
    assert!(err.contains("s1"), "{err}");
    assert!(check_contiguous("ch", 100, &entries[..1]).is_ok());
}

#[test]
fn slots_missing_or_held_twice_are_named() {
    let a = chain(1, Vec::new());
    let b = chain(1, Vec::new());
    assert!(check_slots(&[(&a, vec![[0, 8191]]), (&b, vec![[8192, 16383]])], 5).is_ok());
    let err = check_slots(&[(&a, vec![[0, 8191]]), (&b, vec![[8000, 16000]])], 5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no chain holds slots 16001-16383"), "{err}");
    assert!(
        err.contains("slots 8000-8191 are held more than once"),
        "{err}"
    );
}

#[test]
fn the_digest_changes_with_any_entry() {
    let entries = vec![entry("s1", 100, 200, 1, 2), entry("s2", 200, 300, 3, 4)];
    let digest = index_digest(&entries);
    assert_eq!(digest.len(), 64);
    assert_eq!(digest, index_digest(&entries.clone()));
    let mut changed = entries.clone();
    changed[1].sha256 = "11".repeat(32);
    assert_ne!(digest, index_digest(&changed));
    assert_ne!(digest, index_digest(&entries[..1]));
}
