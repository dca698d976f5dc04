//! `CLUSTER GETSLOTMIGRATIONS` replies captured byte for byte from
//! valkey-server 9.1.2 on 127.0.0.1 (read back through the redis crate's
//! own parser, so the shapes are the ones the client gets), in RESP2 and
//! RESP3, plus edited copies for the shapes a server should never send.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use logbook_core::replies::{ParseError, parse_slot_migrations};
use logbook_journal::{MigrationPhase, MigrationSide, SlotMigrationJob, SlotRange};

use super::*;

const SOURCE: &str = "35bd672141b51fada20058960eb58ba1a8eefbae";
const TARGET: &str = "c78df111ca6709fdf1c4c8576774e8ba311b19bb";

/// RESP2, on the source: an export whose target was stopped after the
/// source granted it the slots (the ambiguous failure), and one cancelled
/// with `CLUSTER CANCELSLOTMIGRATIONS`.
const RESP2_FINISHED: &[u8] = b"*2\r\n*24\r\n$4\r\nname\r\n$40\r\nbdde7923e1c4d585c13d1d6d39c18f530801330e\r\n$9\r\noperation\r\n$6\r\nEXPORT\r\n$11\r\nslot_ranges\r\n$9\r\n3300-3300\r\n$11\r\ntarget_node\r\n$40\r\nc78df111ca6709fdf1c4c8576774e8ba311b19bb\r\n$11\r\nsource_node\r\n$40\r\n35bd672141b51fada20058960eb58ba1a8eefbae\r\n$11\r\ncreate_time\r\n:1795450262\r\n$16\r\nlast_update_time\r\n:1795450273\r\n$13\r\nlast_ack_time\r\n:1795450262\r\n$5\r\nstate\r\n$6\r\nfailed\r\n$7\r\nmessage\r\n$83\r\nUnpaused before migration completed (migration may have succeeded with lost writes)\r\n$8\r\ncow_size\r\n:0\r\n$19\r\nremaining_repl_size\r\n:0\r\n*24\r\n$4\r\nname\r\n$40\r\ncee8faae43a693ded5f97375e4c296b613487137\r\n$9\r\noperation\r\n$6\r\nEXPORT\r\n$11\r\nslot_ranges\r\n$9\r\n3300-3300\r\n$11\r\ntarget_node\r\n$40\r\nc78df111ca6709fdf1c4c8576774e8ba311b19bb\r\n$11\r\nsource_node\r\n$40\r\n35bd672141b51fada20058960eb58ba1a8eefbae\r\n$11\r\ncreate_time\r\n:1795450205\r\n$16\r\nlast_update_time\r\n:1795450205\r\n$13\r\nlast_ack_time\r\n:1795450205\r\n$5\r\nstate\r\n$9\r\ncancelled\r\n$7\r\nmessage\r\n$0\r\n\r\n$8\r\ncow_size\r\n:0\r\n$19\r\nremaining_repl_size\r\n:0\r\n";

/// RESP3 (after `HELLO 3`), on the source: an export of two ranges, given
/// in that order, snapshotting under writes, then an import it finished
/// earlier.
const RESP3_RUNNING: &[u8] = b"*2\r\n%12\r\n$4\r\nname\r\n$40\r\n6bd7c6e8af59f42c5094bc8586ddedddf9b4776d\r\n$9\r\noperation\r\n$6\r\nEXPORT\r\n$11\r\nslot_ranges\r\n$19\r\n3300-3300 1000-1000\r\n$11\r\ntarget_node\r\n$40\r\nc78df111ca6709fdf1c4c8576774e8ba311b19bb\r\n$11\r\nsource_node\r\n$40\r\n35bd672141b51fada20058960eb58ba1a8eefbae\r\n$11\r\ncreate_time\r\n:1795450443\r\n$16\r\nlast_update_time\r\n:1795450443\r\n$13\r\nlast_ack_time\r\n:1795450443\r\n$5\r\nstate\r\n$12\r\nsnapshotting\r\n$7\r\nmessage\r\n$0\r\n\r\n$8\r\ncow_size\r\n:0\r\n$19\r\nremaining_repl_size\r\n:16392\r\n%12\r\n$4\r\nname\r\n$40\r\nb931c1131c8e045236e71815e52f6ac9eeee0c62\r\n$9\r\noperation\r\n$6\r\nIMPORT\r\n$11\r\nslot_ranges\r\n$9\r\n3300-3300\r\n$11\r\ntarget_node\r\n$40\r\n35bd672141b51fada20058960eb58ba1a8eefbae\r\n$11\r\nsource_node\r\n$40\r\nc78df111ca6709fdf1c4c8576774e8ba311b19bb\r\n$11\r\ncreate_time\r\n:1795450393\r\n$16\r\nlast_update_time\r\n:1795450393\r\n$13\r\nlast_ack_time\r\n:1795450393\r\n$5\r\nstate\r\n$7\r\nsuccess\r\n$7\r\nmessage\r\n$0\r\n\r\n$8\r\ncow_size\r\n:0\r\n$19\r\nremaining_repl_size\r\n:0\r\n";

fn parsed(bytes: &[u8]) -> Reply {
    reply(redis::parse_redis_value(bytes).unwrap())
}

fn range(start: u16, end: u16) -> SlotRange {
    SlotRange { start, end }
}

#[test]
fn finished_exports_from_resp2() {
    let jobs = parse_slot_migrations(&parsed(RESP2_FINISHED)).unwrap();
    assert_eq!(jobs.len(), 2);
    let ambiguous = &jobs[0];
    assert_eq!(
        ambiguous,
        &SlotMigrationJob {
            name: "bdde7923e1c4d585c13d1d6d39c18f530801330e".to_owned(),
            side: MigrationSide::Export,
            source: SOURCE.to_owned(),
            target: TARGET.to_owned(),
            slots: vec![range(3300, 3300)],
            phase: MigrationPhase::Failed,
            message: "Unpaused before migration completed (migration may have succeeded with lost writes)".to_owned(),
            remaining_repl_size: 0,
        }
    );
    assert!(ambiguous.ambiguous());
    assert!(ambiguous.moves(SOURCE, TARGET, &[range(3300, 3300)]));
    assert_eq!(jobs[1].phase, MigrationPhase::Cancelled);
    assert!(jobs[1].message.is_empty());
    assert!(!jobs[1].ambiguous());
}

#[test]
fn a_running_export_and_an_import_from_resp3() {
    let value = parsed(RESP3_RUNNING);
    assert!(matches!(&value, Reply::Array(jobs) if matches!(jobs[0], Reply::Map(_))));
    let jobs = parse_slot_migrations(&value).unwrap();
    let export = &jobs[0];
    assert_eq!(export.side, MigrationSide::Export);
    assert_eq!(
        export.phase,
        MigrationPhase::Running {
            state: "snapshotting".to_owned()
        }
    );
    // Listed in the order they were given; `moves` compares them merged.
    assert_eq!(export.slots, vec![range(3300, 3300), range(1000, 1000)]);
    assert!(export.moves(SOURCE, TARGET, &[range(1000, 1000), range(3300, 3300)]));
    assert!(!export.moves(TARGET, SOURCE, &[range(1000, 1000), range(3300, 3300)]));
    assert_eq!(export.remaining_repl_size, 16_392);
    let import = &jobs[1];
    assert_eq!(import.side, MigrationSide::Import);
    assert_eq!(import.phase, MigrationPhase::Succeeded);
    assert_eq!(
        (import.source.as_str(), import.target.as_str()),
        (TARGET, SOURCE)
    );
    assert_eq!(import.key(), format!("{}/import", import.name));
}

#[test]
fn an_empty_list_and_unknown_fields() {
    assert_eq!(
        parse_slot_migrations(&Reply::Array(Vec::new())).unwrap(),
        Vec::new()
    );
    // A field a later server adds is ignored; numbers may come as text.
    let Reply::Array(mut jobs) = parsed(RESP2_FINISHED) else {
        panic!()
    };
    let Reply::Array(fields) = &mut jobs[0] else {
        panic!()
    };
    fields.push(Reply::BulkString(b"shard_id".to_vec()));
    fields.push(Reply::Int(7));
    for (i, f) in fields.clone().iter().enumerate() {
        if f == &Reply::BulkString(b"remaining_repl_size".to_vec()) {
            fields[i + 1] = Reply::BulkString(b"42".to_vec());
        }
    }
    let parsed = parse_slot_migrations(&Reply::Array(jobs)).unwrap();
    assert_eq!(parsed[0].remaining_repl_size, 42);
}

/// The RESP2 reply with the value of `field` in its first job replaced,
/// or the field removed when `value` is `None`.
fn edited(field: &str, value: Option<Reply>) -> Reply {
    let Reply::Array(mut jobs) = parsed(RESP2_FINISHED) else {
        panic!()
    };
    let Reply::Array(fields) = &jobs[0] else {
        panic!()
    };
    let mut out = Vec::new();
    for pair in fields.chunks(2) {
        if pair[0] == Reply::BulkString(field.as_bytes().to_vec()) {
            if let Some(v) = &value {
                out.push(pair[0].clone());
                out.push(v.clone());
            }
        } else {
            out.extend(pair.iter().cloned());
        }
    }
    jobs[0] = Reply::Array(out);
    Reply::Array(jobs)
}

#[test]
fn a_missing_field_is_an_error_naming_it() {
    for field in [
        "name",
        "operation",
        "slot_ranges",
        "state",
        "message",
        "remaining_repl_size",
    ] {
        assert_eq!(
            parse_slot_migrations(&edited(field, None)),
            Err(ParseError::Missing {
                field: format!("migrations[0].{field}")
            }),
            "{field}"
        );
    }
    // A replica lists its primary's imports without their two ends.
    for field in ["source_node", "target_node"] {
        let jobs = parse_slot_migrations(&edited(field, None)).unwrap();
        assert!(!jobs.is_empty(), "{field}");
    }
    // The times and the copy-on-write size are not relied on.
    for field in [
        "create_time",
        "last_update_time",
        "last_ack_time",
        "cow_size",
    ] {
        assert!(
            parse_slot_migrations(&edited(field, None)).is_ok(),
            "{field}"
        );
    }
}

#[test]
fn a_malformed_field_is_an_error_naming_it() {
    let text = |s: &str| Some(Reply::BulkString(s.as_bytes().to_vec()));
    for (field, value) in [
        ("name", text("job-1")),
        ("operation", text("MOVE")),
        ("slot_ranges", text("")),
        ("slot_ranges", text("10-5")),
        ("slot_ranges", text("0-16384")),
        ("slot_ranges", text("0-99,200-299")),
        ("source_node", text("nobody")),
        ("target_node", Some(Reply::Nil)),
        ("state", text("")),
        ("remaining_repl_size", Some(Reply::Int(-1))),
    ] {
        assert!(
            matches!(
                parse_slot_migrations(&edited(field, value.clone())),
                Err(ParseError::Malformed { field: f, .. }) if f == format!("migrations[0].{field}")
            ),
            "{field} = {value:?}"
        );
    }
    for shape in [
        Reply::BulkString(b"nope".to_vec()),
        Reply::Array(vec![Reply::Int(1)]),
    ] {
        assert!(
            matches!(
                parse_slot_migrations(&shape),
                Err(ParseError::Malformed { .. })
            ),
            "{shape:?}"
        );
    }
}

#[test]
fn states_map_to_phases() {
    for (state, phase) in [
        (
            "connecting",
            MigrationPhase::Running {
                state: "connecting".to_owned(),
            },
        ),
        (
            "failover-granted",
            MigrationPhase::Running {
                state: "failover-granted".to_owned(),
            },
        ),
        ("success", MigrationPhase::Succeeded),
        ("failed", MigrationPhase::Failed),
        ("cancelled", MigrationPhase::Cancelled),
    ] {
        let jobs = parse_slot_migrations(&edited(
            "state",
            Some(Reply::BulkString(state.as_bytes().to_vec())),
        ))
        .unwrap();
        assert_eq!(jobs[0].phase, phase);
    }
}
