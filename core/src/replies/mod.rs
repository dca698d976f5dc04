//! Valkey's replies as the operator reads them, and the parsers that turn
//! them into what the observers fold: `INFO replication` and `ROLE`,
//! `CLUSTER NODES`, `CLUSTER INFO`, `CLUSTER SHARDS` and
//! `CLUSTER GETSLOTMIGRATIONS`, and the Sentinels' `SENTINEL MASTER`,
//! `REPLICAS`, `SENTINELS`, `DEBUG` and their published events.
//!
//! Beside them, what a probe read ([`Probe`], [`ClusterProbe`],
//! [`SentinelProbe`]) and why a call failed ([`ProbeError`], classified
//! into death, slowness and refusals), which the observers fold too.
//!
//! Pure: a [`Reply`] is a RESP2 or RESP3 value as data. The operator's
//! client converts the redis crate's values into it (the parsers need no
//! client), and the tests build replies by hand.

use std::fmt;

mod error;
mod parse;
mod parse_cluster;
mod parse_sentinel;
mod probes;

pub use error::{Phase, ProbeError};
pub use probes::{ClusterProbe, Probe, SentinelProbe};

pub use parse::{
    ARCHIVER_ADDRESS, ConnectedReplica, ParseError, PrimaryLink, ReplicationInfo, Role,
    RoleReplica, RoleReply, parse_info_replication, parse_role,
};
pub use parse_cluster::{
    ClusterInfo, ClusterNodeLine, ClusterShard, ShardNode, ShardNodeHealth, SlotMigration,
    parse_cluster_info, parse_cluster_node_line, parse_cluster_nodes, parse_cluster_shards,
    parse_slot_migrations,
};
pub use parse_sentinel::{
    InstanceDetails, SentinelEvent, SentinelNotice, SentinelPeer, SentinelPrimary, SentinelReplica,
    SwitchMaster, VoteForLeader, parse_instance_details, parse_new_epoch, parse_sentinel_debug,
    parse_sentinel_event, parse_sentinel_master, parse_sentinel_replicas, parse_sentinel_sentinels,
    parse_switch_master, parse_vote_for_leader,
};

/// One reply of a Valkey server or Sentinel, in RESP2 or RESP3.
#[derive(Clone, PartialEq, Default)]
pub enum Reply {
    /// A null (`$-1`, `*-1` or RESP3's `_`).
    #[default]
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk string's bytes.
    BulkString(Vec<u8>),
    /// An array (a RESP3 push's data too).
    Array(Vec<Reply>),
    /// A simple string other than `OK`.
    SimpleString(String),
    /// The simple string `OK`.
    Okay,
    /// A RESP3 map, its pairs in the server's order.
    Map(Vec<(Reply, Reply)>),
    /// A RESP3 set.
    Set(Vec<Reply>),
    /// A RESP3 double.
    Double(f64),
    /// A RESP3 boolean.
    Boolean(bool),
    /// A RESP3 verbatim string: its format (`txt`, `mkd`) and its text.
    VerbatimString {
        /// The three-letter format.
        format: String,
        /// The text.
        text: String,
    },
    /// A RESP3 big number, as the server wrote its digits.
    BigNumber(String),
    /// An error reply inside a value (a RESP3 array may carry one).
    ServerError(String),
    /// A kind of reply the client knows and this type does not, as the
    /// client renders it; every parser refuses it.
    Other(String),
}

/// Replies as an error names them: a string as its text, bytes that are
/// not UTF-8 as bytes, a collection with its elements.
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Nil => f.write_str("nil"),
            Reply::Int(n) => write!(f, "int({n})"),
            Reply::BulkString(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => write!(f, "bulk-string({text:?})"),
                Err(_) => write!(f, "binary-data({bytes:?})"),
            },
            Reply::Array(items) => write!(f, "array({items:?})"),
            Reply::SimpleString(text) => write!(f, "simple-string({text:?})"),
            Reply::Okay => f.write_str("ok"),
            Reply::Map(pairs) => write!(f, "map({pairs:?})"),
            Reply::Set(items) => write!(f, "set({items:?})"),
            Reply::Double(x) => write!(f, "double({x:?})"),
            Reply::Boolean(b) => write!(f, "boolean({b})"),
            Reply::VerbatimString { format, text } => {
                write!(f, "verbatim-string({format:?}, {text:?})")
            }
            Reply::BigNumber(digits) => write!(f, "big-number({digits})"),
            Reply::ServerError(text) => write!(f, "error({text:?})"),
            Reply::Other(text) => write!(f, "other({text})"),
        }
    }
}

impl Reply {
    /// The key/value pairs of a RESP3 map, or of a RESP2 array of even
    /// length read as one (`field value field value ...`); `None` for any
    /// other reply.
    pub fn pairs(&self) -> Option<Pairs<'_>> {
        match self {
            Reply::Array(items) if items.len() % 2 == 0 => Some(Pairs::Flat(items.chunks_exact(2))),
            Reply::Map(pairs) => Some(Pairs::Map(pairs.iter())),
            _ => None,
        }
    }
}

/// The pairs of a reply read as a map ([`Reply::pairs`]), in the
/// server's order.
#[derive(Debug, Clone)]
pub enum Pairs<'a> {
    /// A RESP2 array, two elements at a time.
    Flat(std::slice::ChunksExact<'a, Reply>),
    /// A RESP3 map.
    Map(std::slice::Iter<'a, (Reply, Reply)>),
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a Reply, &'a Reply);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pairs::Flat(chunks) => match chunks.next()? {
                [key, value] => Some((key, value)),
                _ => None,
            },
            Pairs::Map(pairs) => pairs.next().map(|(key, value)| (key, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::BulkString(text.as_bytes().to_vec())
    }

    fn collected(reply: &Reply) -> Option<Vec<(&Reply, &Reply)>> {
        reply.pairs().map(Iterator::collect)
    }

    #[test]
    fn pairs_read_a_flat_array_and_a_map_alike() {
        let flat = Reply::Array(vec![bulk("a"), Reply::Int(1), bulk("b"), Reply::Int(2)]);
        let map = Reply::Map(vec![(bulk("a"), Reply::Int(1)), (bulk("b"), Reply::Int(2))]);
        let (a, b) = (bulk("a"), bulk("b"));
        let want = vec![(&a, &Reply::Int(1)), (&b, &Reply::Int(2))];
        assert_eq!(collected(&flat), Some(want.clone()));
        assert_eq!(collected(&map), Some(want));
        assert_eq!(collected(&Reply::Array(vec![bulk("a")])), None);
        assert_eq!(collected(&Reply::Int(1)), None);
    }

    #[test]
    fn a_reply_in_an_error_reads_as_text() {
        let reply = Reply::Array(vec![
            bulk("role"),
            Reply::Int(3),
            Reply::BulkString(vec![0xff]),
        ]);
        assert_eq!(
            format!("{reply:?}"),
            r#"array([bulk-string("role"), int(3), binary-data([255])])"#
        );
    }
}
