//! The redis crate's values as the core's [`Reply`], which the parsers
//! (`logbook_core::replies`) read.

use logbook_core::replies::Reply;
use redis::Value;

/// `value` as a [`Reply`]. A RESP3 attribute is its data (the attributes
/// are hints the parsers never read), a push its data.
pub fn reply(value: Value) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(n) => Reply::Int(n),
        Value::BulkString(bytes) => Reply::BulkString(bytes),
        Value::Array(items) => Reply::Array(items.into_iter().map(reply).collect()),
        Value::SimpleString(text) => Reply::SimpleString(text),
        Value::Okay => Reply::Okay,
        Value::Map(pairs) => Reply::Map(
            pairs
                .into_iter()
                .map(|(key, value)| (reply(key), reply(value)))
                .collect(),
        ),
        Value::Attribute { data, .. } => reply(*data),
        Value::Set(items) => Reply::Set(items.into_iter().map(reply).collect()),
        Value::Double(x) => Reply::Double(x),
        Value::Boolean(b) => Reply::Boolean(b),
        Value::VerbatimString { format, text } => Reply::VerbatimString {
            format: format.to_string(),
            text,
        },
        Value::BigNumber(digits) => Reply::BigNumber(big_number(&digits)),
        Value::Push { data, .. } => Reply::Array(data.into_iter().map(reply).collect()),
        Value::ServerError(err) => Reply::ServerError(err.to_string()),
        // `Value` is non-exhaustive: a kind a later redis crate adds is
        // kept as its rendering, which every parser refuses by name.
        other => Reply::Other(format!("{other:?}")),
    }
}

fn big_number(digits: &[u8]) -> String {
    String::from_utf8_lossy(digits).into_owned()
}

#[cfg(test)]
#[path = "parse_migrations_tests.rs"]
mod migration_tests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_shape_the_parsers_read_is_kept() {
        let value = redis::parse_redis_value(
            b"*6\r\n:7\r\n$3\r\nabc\r\n+PONG\r\n+OK\r\n%1\r\n$1\r\nk\r\n~1\r\n,1.5\r\n=7\r\ntxt:hey\r\n",
        )
        .unwrap();
        assert_eq!(
            reply(value),
            Reply::Array(vec![
                Reply::Int(7),
                Reply::BulkString(b"abc".to_vec()),
                Reply::SimpleString("PONG".to_owned()),
                Reply::Okay,
                Reply::Map(vec![(
                    Reply::BulkString(b"k".to_vec()),
                    Reply::Set(vec![Reply::Double(1.5)])
                )]),
                Reply::VerbatimString {
                    format: "txt".to_owned(),
                    text: "hey".to_owned()
                },
            ])
        );
    }
}
