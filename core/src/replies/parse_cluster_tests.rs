//! Fixtures captured from valkey-server 9.1.2 on 127.0.0.1 (three primaries,
//! one replica with `cluster-replica-no-failover yes`, slot 5461 half
//! moved), plus literal lines for shapes a local cluster does not show
//! (`noaddr`, hostnames, IPv6).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

const A: &str = "5c8e054eb9820bdcf3d035305f3b4e7838bf7be1";
const B: &str = "4e85b08814a5471cdd8f4f91367becbc0bd8dab0";
const C: &str = "71c2849cd11225219f1fd6b5dfd870c58d5f7e42";
const D: &str = "797b93f8e2c41e6ec0af804d6b45f0be5f544848";

/// `CLUSTER NODES` on A: D replicates A, A imports slot 5461 from B.
const NODES_ON_A: &str = "\
4e85b08814a5471cdd8f4f91367becbc0bd8dab0 127.0.0.1:21002@31002 master - 0 1795424118083 2 connected 5461-10922
797b93f8e2c41e6ec0af804d6b45f0be5f544848 127.0.0.1:21004@31004 slave,nofailover 5c8e054eb9820bdcf3d035305f3b4e7838bf7be1 0 1795424118083 1 connected
71c2849cd11225219f1fd6b5dfd870c58d5f7e42 127.0.0.1:21003@31003 master - 0 1795424118083 3 connected 10923-16383
5c8e054eb9820bdcf3d035305f3b4e7838bf7be1 127.0.0.1:21001@31001 myself,master - 0 0 1 connected 0-5460 [5461-<-4e85b08814a5471cdd8f4f91367becbc0bd8dab0]
";

/// B's own line at the same moment: it migrates slot 5461 to A and still
/// owns it.
const B_MIGRATING: &str = "4e85b08814a5471cdd8f4f91367becbc0bd8dab0 127.0.0.1:21002@31002 myself,master - 0 0 2 connected 5461-10922 [5461->-5c8e054eb9820bdcf3d035305f3b4e7838bf7be1]";

/// C killed, seen from A: first suspected, then failed.
const C_SUSPECTED: &str = "4e85b08814a5471cdd8f4f91367becbc0bd8dab0 127.0.0.1:21002@31002 master,fail? - 1795424132163 1795424131156 2 disconnected 5461-10922";
const C_FAILED: &str = "71c2849cd11225219f1fd6b5dfd870c58d5f7e42 127.0.0.1:21003@31003 master,fail - 1795424124114 1795424123109 3 disconnected 10923-16383";

/// A node alone: it does not know its own address yet.
const LONE: &str =
    "5c8e054eb9820bdcf3d035305f3b4e7838bf7be1 :21001@31001 myself,master - 0 0 0 connected\n";

/// Just after `CLUSTER MEET`: B under a random placeholder id.
const HANDSHAKE: &str =
    "e55c67bb1d46275be441829bf9f5b496535e0df0 127.0.0.1:21002@31002 handshake - 0 0 0 disconnected";

const INFO_OK: &str = "cluster_state:ok\r\n\
cluster_slots_assigned:16384\r\n\
cluster_slots_ok:16384\r\n\
cluster_slots_pfail:0\r\n\
cluster_slots_fail:0\r\n\
cluster_nodes_pfail:0\r\n\
cluster_nodes_fail:0\r\n\
cluster_voting_nodes_pfail:0\r\n\
cluster_voting_nodes_fail:0\r\n\
cluster_known_nodes:3\r\n\
cluster_size:3\r\n\
cluster_current_epoch:2\r\n\
cluster_my_epoch:2\r\n\
cluster_stats_messages_ping_sent:10\r\n\
total_cluster_links_buffer_limit_exceeded:0\r\n";

/// C failed and B suspected, seen from A.
const INFO_FAILING: &str = "cluster_state:fail\r\n\
cluster_slots_assigned:16384\r\n\
cluster_slots_ok:5461\r\n\
cluster_slots_pfail:5462\r\n\
cluster_slots_fail:5461\r\n\
cluster_nodes_pfail:1\r\n\
cluster_nodes_fail:1\r\n\
cluster_known_nodes:4\r\n\
cluster_size:3\r\n\
cluster_current_epoch:3\r\n\
cluster_my_epoch:1\r\n";

fn range(start: u16, end: u16) -> SlotRange {
    SlotRange { start, end }
}

#[test]
fn a_steady_cluster_with_a_replica_and_an_import() {
    let nodes = parse_cluster_nodes(NODES_ON_A).unwrap();
    assert_eq!(nodes.len(), 4);

    let me = nodes.iter().find(|n| n.myself).unwrap();
    assert_eq!(me.id, A);
    assert_eq!(me.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!((me.port, me.cport), (21001, 31001));
    assert_eq!(me.hostname, None);
    assert!(me.primary && !me.replica && !me.failed && !me.suspected);
    assert_eq!(me.role(), Some(Role::Primary));
    assert_eq!(me.primary_id, None);
    assert_eq!((me.ping_sent, me.pong_recv, me.config_epoch), (0, 0, 1));
    assert!(me.connected);
    // The import marker is not ownership.
    assert_eq!(me.slots, vec![range(0, 5460)]);
    assert_eq!(me.slot_count(), 5461);
    assert_eq!(
        me.importing,
        vec![SlotMigration {
            slot: 5461,
            node_id: B.to_owned()
        }]
    );
    assert!(me.migrating.is_empty());

    let replica = nodes.iter().find(|n| n.id == D).unwrap();
    assert!(replica.replica && replica.nofailover && !replica.primary && !replica.myself);
    assert_eq!(replica.role(), Some(Role::Replica));
    assert_eq!(replica.primary_id.as_deref(), Some(A));
    assert_eq!(replica.pong_recv, 1_795_424_118_083);
    assert_eq!(
        replica.config_epoch, 1,
        "a replica shows its primary's epoch"
    );
    assert!(replica.slots.is_empty());
    assert_eq!(replica.slot_count(), 0);

    let c = nodes.iter().find(|n| n.id == C).unwrap();
    assert_eq!(c.slots, vec![range(10923, 16383)]);
    assert!(c.migrating.is_empty() && c.importing.is_empty());
    let total: u32 = nodes.iter().map(ClusterNodeLine::slot_count).sum();
    assert_eq!(total, 16_384);
}

#[test]
fn a_migrating_slot_is_still_owned() {
    let b = parse_cluster_node_line(B_MIGRATING).unwrap();
    assert_eq!(b.slots, vec![range(5461, 10922)]);
    assert_eq!(
        b.migrating,
        vec![SlotMigration {
            slot: 5461,
            node_id: A.to_owned()
        }]
    );
    assert!(b.importing.is_empty());
}

#[test]
fn suspected_then_failed() {
    let b = parse_cluster_node_line(C_SUSPECTED).unwrap();
    assert!(b.suspected && !b.failed && b.primary && !b.connected);
    assert_eq!(b.ping_sent, 1_795_424_132_163);
    let c = parse_cluster_node_line(C_FAILED).unwrap();
    assert!(c.failed && !c.suspected && !c.connected);
    assert_eq!(
        c.slots,
        vec![range(10923, 16383)],
        "a failed node keeps its slots"
    );
}

#[test]
fn a_lone_node_and_a_handshake() {
    let lone = parse_cluster_nodes(LONE).unwrap();
    assert_eq!(lone.len(), 1);
    assert_eq!(lone[0].ip, None);
    assert_eq!((lone[0].port, lone[0].cport), (21001, 31001));
    assert!(lone[0].myself && lone[0].primary);

    let h = parse_cluster_node_line(HANDSHAKE).unwrap();
    assert!(h.handshake && !h.primary && !h.replica && !h.connected);
    assert_eq!(h.role(), None);
    assert_eq!(h.ip.as_deref(), Some("127.0.0.1"));
}

#[test]
fn no_address_hostnames_ipv6_and_no_flags() {
    let text = format!(
        "{A} :0@0 master,fail,noaddr - 1700000000000 1699999999000 7 disconnected 0 2-3 5\n\
         \n\
         {B} 10.0.0.2:6379@16379,valkey-1.valkey.ns.svc slave {A} 0 1700000000000 7 connected\n\
         {C} fd00::1:6380@16380,host master - 0 0 9 connected 16383\n\
         {D} 10.0.0.4:6379@16379 noflags - 0 0 0 connected\n\
         {D} 10.0.0.4:6379@16379, myself,slave {A} 0 0 0 connected\n"
    );
    let nodes = parse_cluster_nodes(&text).unwrap();
    assert_eq!(nodes.len(), 5, "blank lines are skipped");

    let gone = &nodes[0];
    assert_eq!(gone.ip, None);
    assert_eq!((gone.port, gone.cport), (0, 0));
    assert!(gone.noaddr && gone.failed && gone.primary);
    assert_eq!(gone.slots, vec![range(0, 0), range(2, 3), range(5, 5)]);
    assert_eq!(gone.slot_count(), 4);

    assert_eq!(nodes[1].hostname.as_deref(), Some("valkey-1.valkey.ns.svc"));
    assert_eq!(nodes[1].ip.as_deref(), Some("10.0.0.2"));

    assert_eq!(nodes[2].ip.as_deref(), Some("fd00::1"));
    assert_eq!((nodes[2].port, nodes[2].cport), (6380, 16380));
    assert_eq!(nodes[2].slots, vec![range(16383, 16383)]);

    let n = &nodes[3];
    assert!(
        !(n.myself
            || n.primary
            || n.replica
            || n.suspected
            || n.failed
            || n.handshake
            || n.noaddr
            || n.nofailover)
    );
    // An empty hostname after the comma is no hostname.
    assert_eq!(nodes[4].hostname, None);
}

#[test]
fn unknown_flags_are_ignored() {
    let line = format!("{A} 10.0.0.1:6379@16379 myself,master,someday - 0 0 1 connected");
    let n = parse_cluster_node_line(&line).unwrap();
    assert!(n.myself && n.primary);
}

#[test]
fn malformed_lines_are_errors_naming_the_field() {
    let good_tail = "master - 0 0 1 connected";
    for (line, field) in [
        (format!("nothex 10.0.0.1:6379@16379 {good_tail}"), "id"),
        (format!("{A}0 10.0.0.1:6379@16379 {good_tail}"), "id"),
        (format!("{A} 10.0.0.1:6379 {good_tail}"), "address"),
        (format!("{A} 10.0.0.1@16379 {good_tail}"), "address"),
        (format!("{A} 10.0.0.1:x@16379 {good_tail}"), "address"),
        (format!("{A} 10.0.0.1:6379@99999 {good_tail}"), "address"),
        (
            format!("{A} 10.0.0.1:6379@16379 slave zz 0 0 1 connected"),
            "master",
        ),
        (
            format!("{A} 10.0.0.1:6379@16379 master - -1 0 1 connected"),
            "ping-sent",
        ),
        (
            format!("{A} 10.0.0.1:6379@16379 master - 0 x 1 connected"),
            "pong-recv",
        ),
        (
            format!("{A} 10.0.0.1:6379@16379 master - 0 0 x connected"),
            "config-epoch",
        ),
        (
            format!("{A} 10.0.0.1:6379@16379 master - 0 0 1 up"),
            "link-state",
        ),
        (format!("{A} 10.0.0.1:6379@16379 {good_tail} 16384"), "slot"),
        (format!("{A} 10.0.0.1:6379@16379 {good_tail} 9-3"), "slot"),
        (format!("{A} 10.0.0.1:6379@16379 {good_tail} 1-2-3"), "slot"),
        (format!("{A} 10.0.0.1:6379@16379 {good_tail} -5"), "slot"),
        (
            format!("{A} 10.0.0.1:6379@16379 {good_tail} [5461]"),
            "slot",
        ),
        (
            format!("{A} 10.0.0.1:6379@16379 {good_tail} [5461->-{B}"),
            "slot",
        ),
        (
            format!("{A} 10.0.0.1:6379@16379 {good_tail} [5461->-zz]"),
            "slot",
        ),
        (
            format!("{A} 10.0.0.1:6379@16379 {good_tail} [x-<-{B}]"),
            "slot",
        ),
    ] {
        match parse_cluster_node_line(&line) {
            Err(ParseError::Malformed { field: f, .. }) => assert_eq!(f, field, "{line}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    for line in [
        A.to_owned(),
        format!("{A} 10.0.0.1:6379@16379 master - 0 0 1"),
    ] {
        assert!(
            matches!(
                parse_cluster_node_line(&line),
                Err(ParseError::Missing { .. })
            ),
            "{line}"
        );
    }
}

#[test]
fn an_error_in_a_reply_names_its_line() {
    let text = format!("{LONE}{A} 10.0.0.1:6379@16379 master - 0 0 1 connected 70000\n");
    match parse_cluster_nodes(&text) {
        Err(ParseError::Malformed { field, value }) => {
            assert_eq!(field, "line 2: slot");
            assert_eq!(value, "70000");
        }
        other => panic!("{other:?}"),
    }
}

/// Every prefix of every fixture line, cut at any character, parses or
/// fails: never a panic.
#[test]
fn truncated_and_garbled_lines_never_panic() {
    let lines: Vec<&str> = NODES_ON_A
        .lines()
        .chain([B_MIGRATING, C_SUSPECTED, HANDSHAKE, LONE.trim()])
        .collect();
    for line in lines {
        for (cut, _) in line.char_indices() {
            let _ = parse_cluster_node_line(&line[..cut]);
            let garbled = format!("{}é[]@:,-{}", &line[..cut], &line[cut..]);
            let _ = parse_cluster_node_line(&garbled);
        }
    }
}

#[test]
fn cluster_info_ok_and_failing() {
    let ok = parse_cluster_info(INFO_OK).unwrap();
    assert_eq!(
        ok,
        ClusterInfo {
            state_ok: true,
            slots_assigned: 16_384,
            slots_ok: 16_384,
            slots_pfail: 0,
            slots_fail: 0,
            known_nodes: 3,
            size: 3,
            current_epoch: 2,
            my_epoch: 2,
        }
    );
    let failing = parse_cluster_info(INFO_FAILING).unwrap();
    assert!(!failing.state_ok);
    assert_eq!(
        (failing.slots_ok, failing.slots_pfail, failing.slots_fail),
        (5461, 5462, 5461)
    );
    assert_eq!((failing.known_nodes, failing.current_epoch), (4, 3));
}

#[test]
fn cluster_info_missing_or_malformed_fields_are_errors() {
    assert_eq!(
        parse_cluster_info("cluster_known_nodes:1\n"),
        Err(ParseError::Missing {
            field: "cluster_state".to_owned()
        })
    );
    let without_size = INFO_OK.replace("cluster_size:3\r\n", "");
    assert_eq!(
        parse_cluster_info(&without_size),
        Err(ParseError::Missing {
            field: "cluster_size".to_owned()
        })
    );
    let bad_state = INFO_OK.replace("cluster_state:ok", "cluster_state:maybe");
    assert!(matches!(
        parse_cluster_info(&bad_state),
        Err(ParseError::Malformed { field, .. }) if field == "cluster_state"
    ));
    let bad_epoch = INFO_OK.replace("cluster_my_epoch:2", "cluster_my_epoch:-2");
    assert!(matches!(
        parse_cluster_info(&bad_epoch),
        Err(ParseError::Malformed { field, .. }) if field == "cluster_my_epoch"
    ));
}

fn bulk(s: &str) -> Reply {
    Reply::BulkString(s.as_bytes().to_vec())
}

/// A RESP2 map: a flat key/value array.
fn flat(pairs: Vec<(&str, Reply)>) -> Reply {
    Reply::Array(pairs.into_iter().flat_map(|(k, v)| [bulk(k), v]).collect())
}

fn shard_node(
    id: &str,
    port: i64,
    role: &str,
    offset: i64,
    health: &str,
) -> Vec<(&'static str, Reply)> {
    vec![
        ("id", bulk(id)),
        ("port", Reply::Int(port)),
        ("ip", bulk("127.0.0.1")),
        ("endpoint", bulk("127.0.0.1")),
        ("role", bulk(role)),
        ("replication-offset", Reply::Int(offset)),
        ("health", bulk(health)),
    ]
}

/// `CLUSTER SHARDS` on A after C failed, as RESP2 sends it.
fn shards_on_a() -> Reply {
    Reply::Array(vec![
        flat(vec![
            ("slots", Reply::Array(vec![Reply::Int(0), Reply::Int(5460)])),
            (
                "nodes",
                Reply::Array(vec![
                    flat(shard_node(A, 21001, "master", 14, "online")),
                    flat(shard_node(D, 21004, "replica", 14, "online")),
                ]),
            ),
            ("id", bulk("76acb29a86931ab209e66b3d774f0c9d0ea385bb")),
        ]),
        flat(vec![
            (
                "slots",
                Reply::Array(vec![Reply::Int(10923), Reply::Int(16383)]),
            ),
            (
                "nodes",
                Reply::Array(vec![flat(shard_node(C, 21003, "master", 0, "fail"))]),
            ),
            ("id", bulk("e5f6d853e50ec1974262a421c3d5c05061bca72a")),
        ]),
    ])
}

#[test]
fn cluster_shards_from_resp2() {
    let shards = parse_cluster_shards(&shards_on_a()).unwrap();
    assert_eq!(shards.len(), 2);
    assert_eq!(
        shards[0].id.as_deref(),
        Some("76acb29a86931ab209e66b3d774f0c9d0ea385bb")
    );
    assert_eq!(shards[0].slots, vec![range(0, 5460)]);
    assert_eq!(
        shards[0].nodes,
        vec![
            ShardNode {
                id: A.to_owned(),
                ip: Some("127.0.0.1".to_owned()),
                endpoint: Some("127.0.0.1".to_owned()),
                hostname: None,
                port: Some(21001),
                tls_port: None,
                role: Role::Primary,
                replication_offset: 14,
                health: ShardNodeHealth::Online,
            },
            ShardNode {
                id: D.to_owned(),
                ip: Some("127.0.0.1".to_owned()),
                endpoint: Some("127.0.0.1".to_owned()),
                hostname: None,
                port: Some(21004),
                tls_port: None,
                role: Role::Replica,
                replication_offset: 14,
                health: ShardNodeHealth::Online,
            },
        ]
    );
    assert_eq!(shards[1].nodes[0].health, ShardNodeHealth::Failed);
}

#[test]
fn cluster_shards_from_resp3_and_unusual_nodes() {
    let mut node = shard_node(B, 0, "replica", 0, "loading");
    node.retain(|(k, _)| *k != "port" && *k != "ip" && *k != "endpoint");
    node.push(("tls-port", bulk("6380")));
    node.push(("ip", bulk("")));
    node.push(("endpoint", bulk("?")));
    node.push(("hostname", bulk("valkey-1")));
    node.push(("availability-zone", bulk("zone-b")));
    let map = |pairs: Vec<(&str, Reply)>| {
        Reply::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect())
    };
    let reply = Reply::Array(vec![map(vec![
        ("slots", Reply::Array(vec![])),
        ("nodes", Reply::Array(vec![map(node)])),
    ])]);
    let shards = parse_cluster_shards(&reply).unwrap();
    assert_eq!(shards[0].id, None);
    assert!(shards[0].slots.is_empty());
    let n = &shards[0].nodes[0];
    assert_eq!((n.port, n.tls_port), (None, Some(6380)));
    assert_eq!((n.ip.as_deref(), n.endpoint.as_deref()), (None, None));
    assert_eq!(n.hostname.as_deref(), Some("valkey-1"));
    assert_eq!(n.health, ShardNodeHealth::Loading);
}

/// A `CLUSTER SHARDS` node as key/value pairs, edited by a test.
type NodeFields = Vec<(&'static str, Reply)>;

#[test]
fn malformed_shards_are_errors_naming_the_path() {
    let with = |edit: &dyn Fn(&mut NodeFields)| {
        let mut node = shard_node(A, 21001, "master", 14, "online");
        edit(&mut node);
        Reply::Array(vec![flat(vec![
            ("slots", Reply::Array(vec![Reply::Int(0), Reply::Int(5460)])),
            ("nodes", Reply::Array(vec![flat(node)])),
        ])])
    };
    let set = |key: &'static str, value: Reply| {
        move |node: &mut Vec<(&'static str, Reply)>| {
            for (k, v) in node.iter_mut() {
                if *k == key {
                    *v = value.clone();
                }
            }
        }
    };
    for (reply, field) in [
        (
            with(&set("health", bulk("sleepy"))),
            "shards[0].nodes[0].health",
        ),
        (with(&set("role", bulk("boss"))), "shards[0].nodes[0].role"),
        (with(&set("id", bulk("short"))), "shards[0].nodes[0].id"),
        (
            with(&set("port", Reply::Int(70_000))),
            "shards[0].nodes[0].port",
        ),
        (
            with(&set("replication-offset", Reply::Int(-1))),
            "shards[0].nodes[0].replication-offset",
        ),
        (with(&set("ip", Reply::Nil)), "shards[0].nodes[0].ip"),
        (bulk("nope"), "shards"),
        (Reply::Array(vec![bulk("x")]), "shards[0]"),
    ] {
        match parse_cluster_shards(&reply) {
            Err(ParseError::Malformed { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    for (reply, field) in [
        (
            with(&|n: &mut Vec<(&'static str, Reply)>| n.retain(|(k, _)| *k != "health")),
            "shards[0].nodes[0].health",
        ),
        (
            with(&|n: &mut Vec<(&'static str, Reply)>| n.retain(|(k, _)| *k != "port")),
            "shards[0].nodes[0].port",
        ),
        (
            Reply::Array(vec![flat(vec![("nodes", Reply::Array(vec![]))])]),
            "shards[0].slots",
        ),
    ] {
        assert_eq!(
            parse_cluster_shards(&reply),
            Err(ParseError::Missing {
                field: field.to_owned()
            })
        );
    }
    for slots in [
        vec![Reply::Int(0)],
        vec![Reply::Int(9), Reply::Int(3)],
        vec![Reply::Int(0), Reply::Int(16_384)],
        vec![Reply::Int(0), bulk("x")],
    ] {
        let reply = Reply::Array(vec![flat(vec![
            ("slots", Reply::Array(slots.clone())),
            ("nodes", Reply::Array(vec![])),
        ])]);
        assert!(
            matches!(
                parse_cluster_shards(&reply),
                Err(ParseError::Malformed { field, .. }) if field == "shards[0].slots"
            ),
            "{slots:?}"
        );
    }
}
