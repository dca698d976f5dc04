//! Tests of what the client's errors may say: never a reply's contents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;

use redis::Value;

use super::*;

const HASH: &str = "#a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3";

fn addr() -> SocketAddr {
    "127.0.0.1:6379".parse().unwrap()
}

#[test]
fn an_unexpected_acl_list_reply_is_described_without_its_hashes() {
    let line = format!("user app on {HASH} ~app:* resetchannels -@all +@read");
    let reply = Value::Array(vec![
        Value::BulkString(line.clone().into_bytes()),
        Value::SimpleString(line.clone()),
        Value::Array(vec![Value::BulkString(line.into_bytes())]),
    ]);
    let text = unexpected(addr(), "an array of strings", &reply).to_string();
    let digits = HASH.trim_start_matches('#');
    assert!(!text.contains(digits), "{text}");
    assert!(!text.contains(&digits[..8]), "{text}");
    assert!(!text.contains("app"), "{text}");
    assert!(text.contains("an array of 3 items"), "{text}");
}

#[test]
fn a_reply_is_named_by_its_type_and_size() {
    let cases = [
        (
            Value::BulkString(b"hunter2".to_vec()),
            "a bulk string of 7 bytes",
        ),
        (Value::SimpleString(HASH.to_owned()), "a status of 65 bytes"),
        (
            Value::SimpleString("hunter2".to_owned()),
            "a status of 7 bytes",
        ),
        (Value::SimpleString("QUEUED".to_owned()), "status QUEUED"),
        (Value::Int(42), "an integer"),
        (Value::Nil, "nil"),
        (
            Value::Map(vec![(Value::Nil, Value::BulkString(b"hunter2".to_vec()))]),
            "a map of 1 entry",
        ),
    ];
    for (reply, said) in cases {
        let text = unexpected(addr(), "OK", &reply).to_string();
        assert!(
            text.ends_with(&format!("expected OK, got {said}")),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
