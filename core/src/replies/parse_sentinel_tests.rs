//! Fixtures captured from valkey-server 9.1.2 in Sentinel mode on
//! 127.0.0.1 (primary 27001, replica 27002, Sentinels 27003 and 27004),
//! over RESP2 unless the test says RESP3, plus event payloads copied from
//! a `PSUBSCRIBE *` during a forced and a coordinated failover.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

/// A RESP2 flat array of bulk strings, as every field/value list arrives.
fn flat(words: &[&str]) -> Reply {
    Reply::Array(
        words
            .iter()
            .map(|w| Reply::BulkString(w.as_bytes().to_vec()))
            .collect(),
    )
}

/// The same pairs as a RESP3 map.
fn map(words: &[&str]) -> Reply {
    Reply::Map(
        words
            .chunks(2)
            .map(|pair| {
                (
                    Reply::BulkString(pair[0].as_bytes().to_vec()),
                    Reply::BulkString(pair[1].as_bytes().to_vec()),
                )
            })
            .collect(),
    )
}

#[rustfmt::skip]
const MASTER: &[&str] = &[
    "name", "mymaster", "ip", "127.0.0.1", "port", "27001",
    "runid", "b05eebee640cd329775891c08a3b6a33babb0d06", "flags", "master",
    "link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
    "last-ok-ping-reply", "534", "last-ping-reply", "534",
    "down-after-milliseconds", "5000", "info-refresh", "2100",
    "role-reported", "master", "role-reported-time", "95186",
    "config-epoch", "6", "num-slaves", "1", "num-other-sentinels", "1",
    "quorum", "1", "failover-timeout", "10000", "parallel-syncs", "1",
];

/// During `SENTINEL FAILOVER mymaster COORDINATED` (Valkey 9 only).
#[rustfmt::skip]
const MASTER_COORDINATING: &[&str] = &[
    "name", "mymaster", "ip", "127.0.0.1", "port", "27002",
    "runid", "17a796899fff4be84c308f60a458a71f8e873aa6",
    "flags", "master,failover_in_progress,coordinated_failover",
    "link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
    "last-ok-ping-reply", "16", "last-ping-reply", "16",
    "down-after-milliseconds", "1000", "info-refresh", "998",
    "role-reported", "master", "role-reported-time", "7248",
    "config-epoch", "1", "num-slaves", "1", "num-other-sentinels", "0",
    "quorum", "1", "failover-state", "wait_promotion",
    "failover-timeout", "10000", "parallel-syncs", "1",
];

#[rustfmt::skip]
const REPLICA: &[&str] = &[
    "name", "127.0.0.1:27002", "ip", "127.0.0.1", "port", "27002",
    "runid", "17a796899fff4be84c308f60a458a71f8e873aa6", "flags", "slave",
    "link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
    "last-ok-ping-reply", "552", "last-ping-reply", "552",
    "down-after-milliseconds", "5000", "info-refresh", "4653",
    "role-reported", "slave", "role-reported-time", "95204",
    "master-link-down-time", "0", "master-link-status", "ok",
    "master-host", "127.0.0.1", "master-port", "27001",
    "slave-priority", "100", "slave-repl-offset", "27839",
    "replica-announced", "1",
];

/// The old primary just after a forced failover, before Sentinel turned
/// it into a replica: it still reports itself a primary.
#[rustfmt::skip]
const REPLICA_NOT_YET_CONVERTED: &[&str] = &[
    "name", "127.0.0.1:27001", "ip", "127.0.0.1", "port", "27001",
    "runid", "b05eebee640cd329775891c08a3b6a33babb0d06", "flags", "slave",
    "link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
    "last-ok-ping-reply", "320", "last-ping-reply", "320",
    "down-after-milliseconds", "1000", "info-refresh", "320",
    "role-reported", "master", "role-reported-time", "320",
    "master-link-down-time", "0", "master-link-status", "err",
    "master-host", "?", "master-port", "0",
    "slave-priority", "100", "slave-repl-offset", "0",
    "replica-announced", "1",
];

#[rustfmt::skip]
const PEER: &[&str] = &[
    "name", "7b06f5e7cfecb3dea0af1d9adc08cc9e072a659e",
    "ip", "127.0.0.1", "port", "27004",
    "runid", "7b06f5e7cfecb3dea0af1d9adc08cc9e072a659e", "flags", "sentinel",
    "link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0",
    "last-ok-ping-reply", "816", "last-ping-reply", "816",
    "down-after-milliseconds", "5000", "last-hello-message", "960",
    "voted-leader", "?", "voted-leader-epoch", "0",
];

#[test]
fn a_steady_primary() {
    let primary = parse_sentinel_master(&flat(MASTER)).unwrap();
    assert_eq!(
        primary,
        SentinelPrimary {
            name: "mymaster".to_owned(),
            ip: "127.0.0.1".to_owned(),
            port: 27001,
            run_id: Some("b05eebee640cd329775891c08a3b6a33babb0d06".to_owned()),
            flags: vec!["master".to_owned()],
            failover_state: None,
            config_epoch: 6,
            num_slaves: 1,
            num_other_sentinels: 1,
            quorum: 1,
            down_after_ms: 5000,
            failover_timeout_ms: 10_000,
            parallel_syncs: 1,
        }
    );
    assert!(primary.has_flag("master"));
    assert!(!primary.has_flag("s_down"));
}

#[test]
fn resp3_map_reads_the_same() {
    assert_eq!(
        parse_sentinel_master(&map(MASTER)).unwrap(),
        parse_sentinel_master(&flat(MASTER)).unwrap()
    );
    assert_eq!(
        parse_sentinel_replicas(&Reply::Array(vec![map(REPLICA)])).unwrap(),
        parse_sentinel_replicas(&Reply::Array(vec![flat(REPLICA)])).unwrap()
    );
}

#[test]
fn a_coordinated_failover_in_progress() {
    let primary = parse_sentinel_master(&flat(MASTER_COORDINATING)).unwrap();
    assert_eq!(primary.failover_state.as_deref(), Some("wait_promotion"));
    assert_eq!(
        primary.flags,
        ["master", "failover_in_progress", "coordinated_failover"]
    );
    assert!(primary.has_flag("coordinated_failover"));
}

#[test]
fn failover_state_none_and_empty_runid_are_absent() {
    let mut words = MASTER.to_vec();
    words.extend(["failover-state", "none"]);
    let runid = words.iter().position(|w| *w == "runid").unwrap();
    words[runid + 1] = "";
    let primary = parse_sentinel_master(&flat(&words)).unwrap();
    assert_eq!(primary.failover_state, None);
    assert_eq!(primary.run_id, None);
}

#[test]
fn a_missing_or_malformed_field_is_named() {
    let without_quorum: Vec<&str> = MASTER
        .chunks(2)
        .filter(|pair| pair[0] != "quorum")
        .flatten()
        .copied()
        .collect();
    assert_eq!(
        parse_sentinel_master(&flat(&without_quorum)),
        Err(ParseError::Missing {
            field: "quorum".to_owned()
        })
    );
    let mut words = MASTER.to_vec();
    words[5] = "99999";
    assert_eq!(
        parse_sentinel_master(&flat(&words)),
        Err(ParseError::Malformed {
            field: "port".to_owned(),
            value: "99999".to_owned()
        })
    );
    // An odd-length list is not a field/value list.
    assert!(parse_sentinel_master(&flat(&MASTER[1..])).is_err());
    assert!(parse_sentinel_master(&Reply::Nil).is_err());
}

#[test]
fn replicas_in_the_servers_order() {
    let reply = Reply::Array(vec![flat(REPLICA), flat(REPLICA_NOT_YET_CONVERTED)]);
    let replicas = parse_sentinel_replicas(&reply).unwrap();
    assert_eq!(
        replicas[0],
        SentinelReplica {
            ip: "127.0.0.1".to_owned(),
            port: 27002,
            run_id: Some("17a796899fff4be84c308f60a458a71f8e873aa6".to_owned()),
            flags: vec!["slave".to_owned()],
            master_host: Some("127.0.0.1".to_owned()),
            master_link_ok: true,
            replica_priority: Some(100),
            repl_offset: Some(27839),
        }
    );
    assert_eq!(replicas[1].port, 27001);
    assert_eq!(replicas[1].master_host, None);
    assert!(!replicas[1].master_link_ok);
    assert!(
        parse_sentinel_replicas(&Reply::Array(vec![]))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_replica_error_names_its_element() {
    let mut words = REPLICA.to_vec();
    let status = words
        .iter()
        .position(|w| *w == "master-link-status")
        .unwrap();
    words[status + 1] = "maybe";
    let reply = Reply::Array(vec![flat(REPLICA), flat(&words)]);
    assert_eq!(
        parse_sentinel_replicas(&reply),
        Err(ParseError::Malformed {
            field: "[1].master-link-status".to_owned(),
            value: "maybe".to_owned()
        })
    );
}

#[test]
fn replica_priority_under_its_new_name() {
    let words: Vec<&str> = REPLICA
        .iter()
        .map(|w| match *w {
            "slave-priority" => "replica-priority",
            other => other,
        })
        .collect();
    let replicas = parse_sentinel_replicas(&Reply::Array(vec![flat(&words)])).unwrap();
    assert_eq!(replicas[0].replica_priority, Some(100));
}

#[test]
fn peers() {
    let peers = parse_sentinel_sentinels(&Reply::Array(vec![flat(PEER)])).unwrap();
    assert_eq!(
        peers,
        [SentinelPeer {
            ip: "127.0.0.1".to_owned(),
            port: 27004,
            run_id: "7b06f5e7cfecb3dea0af1d9adc08cc9e072a659e".to_owned(),
            flags: vec!["sentinel".to_owned()],
        }]
    );
}

fn event(channel: &str, payload: &str) -> SentinelEvent {
    SentinelEvent {
        channel: channel.to_owned(),
        payload: payload.to_owned(),
    }
}

#[test]
fn switch_master() {
    let notice = parse_sentinel_event(&event(
        "+switch-master",
        "mymaster 127.0.0.1 27001 127.0.0.1 27002",
    ));
    assert_eq!(
        notice,
        Some(SentinelNotice::SwitchMaster(SwitchMaster {
            master: "mymaster".to_owned(),
            old_ip: "127.0.0.1".to_owned(),
            old_port: 27001,
            new_ip: "127.0.0.1".to_owned(),
            new_port: 27002,
        }))
    );
    assert_eq!(
        parse_switch_master("mymaster 127.0.0.1 27001 127.0.0.1"),
        None
    );
}

#[test]
fn votes_and_epochs() {
    assert_eq!(
        parse_sentinel_event(&event(
            "+vote-for-leader",
            "55132e95561a702a84a5ceec87025f4f85a0cd83 1"
        )),
        Some(SentinelNotice::VoteForLeader(VoteForLeader {
            run_id: "55132e95561a702a84a5ceec87025f4f85a0cd83".to_owned(),
            epoch: 1,
        }))
    );
    assert_eq!(
        parse_sentinel_event(&event("+new-epoch", "3")),
        Some(SentinelNotice::NewEpoch(3))
    );
    assert_eq!(parse_new_epoch("three"), None);
}

#[test]
fn instance_details_with_and_without_a_master() {
    assert_eq!(
        parse_instance_details(
            "slave 127.0.0.1:27002 127.0.0.1 27002 @ mymaster 127.0.0.1 27001 new reported role is master"
        ),
        Some(InstanceDetails {
            kind: "slave".to_owned(),
            name: "127.0.0.1:27002".to_owned(),
            ip: "127.0.0.1".to_owned(),
            port: 27002,
            master: Some(("mymaster".to_owned(), "127.0.0.1".to_owned(), 27001)),
        })
    );
    let odown = parse_sentinel_event(&event(
        "+odown",
        "master mymaster 127.0.0.1 27001 #quorum 1/1",
    ));
    assert_eq!(
        odown,
        Some(SentinelNotice::Instance(InstanceDetails {
            kind: "master".to_owned(),
            name: "mymaster".to_owned(),
            ip: "127.0.0.1".to_owned(),
            port: 27001,
            master: None,
        }))
    );
    // A truncated master part is refused, not half-read.
    assert_eq!(
        parse_instance_details("slave 127.0.0.1:27002 127.0.0.1 27002 @ mymaster"),
        None
    );
    assert_eq!(
        parse_sentinel_event(&event("+tilt", "#tilt mode entered")),
        None
    );
    assert_eq!(
        parse_sentinel_event(&event(
            "__sentinel__:hello",
            "127.0.0.1,27003,55132e95561a702a84a5ceec87025f4f85a0cd83,1,mymaster,127.0.0.1,27002,1"
        )),
        None
    );
}

/// A deterministic generator (xorshift), so a failure reproduces.
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self) -> String {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "master", "slave", "sentinel", "@", "127.0.0.1", "::1", "27001", "65536", "-1",
            "0", "18446744073709551616", "", " ", "é", "\u{0}", "mymaster", "#quorum",
        ];
        let n = self.next() as usize % 4;
        let glue = if self.next().is_multiple_of(2) {
            " "
        } else {
            ""
        };
        (0..n)
            .map(|_| PIECES[self.next() as usize % PIECES.len()])
            .collect::<Vec<_>>()
            .join(glue)
    }

    fn value(&mut self, depth: u32) -> Reply {
        match self.next() % 7 {
            0 => Reply::Nil,
            1 => Reply::Int(self.next() as i64),
            2 => Reply::BulkString(self.word().into_bytes()),
            3 => Reply::BulkString(vec![0xff, 0xfe]),
            4 if depth < 3 => {
                let n = self.next() as usize % 6;
                Reply::Array((0..n).map(|_| self.value(depth + 1)).collect())
            }
            5 if depth < 3 => {
                let n = self.next() as usize % 4;
                Reply::Map(
                    (0..n)
                        .map(|_| (self.value(depth + 1), self.value(depth + 1)))
                        .collect(),
                )
            }
            _ => Reply::SimpleString(self.word()),
        }
    }
}

#[test]
fn junk_never_panics() {
    let seed = 0x5eed_5e47_1e10_u64;
    let mut junk = Junk(seed);
    for _ in 0..20_000 {
        let text = (0..junk.next() % 10)
            .map(|_| junk.word())
            .collect::<Vec<_>>()
            .join(" ");
        let channel = [
            "+switch-master",
            "+vote-for-leader",
            "+new-epoch",
            "+sdown",
            "x",
        ][junk.next() as usize % 5];
        let _ = parse_sentinel_event(&event(channel, &text));
        let _ = parse_instance_details(&text);
        let value = junk.value(0);
        let _ = parse_sentinel_master(&value);
        let _ = parse_sentinel_replicas(&value);
        let _ = parse_sentinel_sentinels(&value);
    }
    // Real field lists with junk values: errors, never panics.
    for _ in 0..2_000 {
        let mut words: Vec<String> = MASTER.iter().map(|w| (*w).to_owned()).collect();
        let i = junk.next() as usize % words.len();
        words[i] = junk.word();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let _ = parse_sentinel_master(&flat(&refs));
        let _ = parse_sentinel_replicas(&Reply::Array(vec![flat(&refs)]));
    }
}

/// `SENTINEL DEBUG` names its parameters in capitals, as a flat array
/// (RESP2) or a map (RESP3); one left out is `None`, a value that is no
/// number an error naming it.
#[test]
fn the_debug_periods_are_read_in_any_case() {
    let words = ["INFO-PERIOD", "1000", "PING-PERIOD", "1000"];
    for reply in [flat(&words), map(&words)] {
        assert_eq!(
            parse_sentinel_debug(&reply, "info-period").unwrap(),
            Some(1000)
        );
        assert_eq!(parse_sentinel_debug(&reply, "tilt-period").unwrap(), None);
    }
    let err = parse_sentinel_debug(&flat(&["INFO-PERIOD", "soon"]), "info-period").unwrap_err();
    assert!(err.to_string().contains("INFO-PERIOD"), "{err}");
}
