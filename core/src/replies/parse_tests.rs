//! Fixtures captured from valkey-server 9.1.2 on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

/// A primary with one replica in steady state.
const PRIMARY: &str = "# Replication\r\n\
role:master\r\n\
connected_slaves:1\r\n\
slave0:ip=127.0.0.1,port=17002,state=online,offset=69,lag=1,type=replica\r\n\
replicas_waiting_psync:0\r\n\
master_failover_state:no-failover\r\n\
master_replid:9da89dab3b64c32471ea4305fdb0386920061074\r\n\
master_replid2:0000000000000000000000000000000000000000\r\n\
master_repl_offset:69\r\n\
second_repl_offset:-1\r\n\
repl_backlog_active:1\r\n\
repl_backlog_size:10485760\r\n\
repl_backlog_first_byte_offset:1\r\n\
repl_backlog_histlen:69\r\n";

/// Its replica, link up.
const REPLICA: &str = "# Replication\r\n\
role:slave\r\n\
master_host:127.0.0.1\r\n\
master_port:17001\r\n\
master_link_status:up\r\n\
master_last_io_seconds_ago:1\r\n\
master_sync_in_progress:0\r\n\
slave_read_repl_offset:69\r\n\
slave_repl_offset:69\r\n\
replicas_repl_buffer_size:0\r\n\
replicas_repl_buffer_peak:0\r\n\
slave_priority:100\r\n\
slave_read_only:1\r\n\
replica_announced:1\r\n\
connected_slaves:0\r\n\
replicas_waiting_psync:0\r\n\
master_failover_state:no-failover\r\n\
master_replid:9da89dab3b64c32471ea4305fdb0386920061074\r\n\
master_replid2:0000000000000000000000000000000000000000\r\n\
master_repl_offset:69\r\n\
second_repl_offset:-1\r\n\
repl_backlog_active:1\r\n\
repl_backlog_size:10485760\r\n\
repl_backlog_first_byte_offset:56\r\n\
repl_backlog_histlen:14\r\n";

/// A replica whose primary does not answer: never heard from it.
const REPLICA_LINK_DOWN: &str = "# Replication\r\n\
role:slave\r\n\
master_host:127.0.0.1\r\n\
master_port:17009\r\n\
master_link_status:down\r\n\
master_last_io_seconds_ago:-1\r\n\
master_sync_in_progress:0\r\n\
slave_read_repl_offset:1\r\n\
slave_repl_offset:1\r\n\
master_link_down_since_seconds:-1\r\n\
connected_slaves:0\r\n\
master_replid:95f2e6de3fd5c85797c39240cbe802a91a1e18d8\r\n\
master_replid2:0000000000000000000000000000000000000000\r\n\
master_repl_offset:0\r\n\
second_repl_offset:-1\r\n";

fn bulk(s: &str) -> Reply {
    Reply::BulkString(s.as_bytes().to_vec())
}

#[test]
fn primary_info_lists_its_replicas() {
    let info = parse_info_replication(PRIMARY).unwrap();
    assert_eq!(info.role, Role::Primary);
    assert_eq!(info.replid, "9da89dab3b64c32471ea4305fdb0386920061074");
    assert_eq!(info.replid2, "0".repeat(40));
    assert_eq!(info.master_repl_offset, 69);
    assert_eq!(info.primary, None);
    assert_eq!(
        info.replicas,
        vec![ConnectedReplica {
            ip: "127.0.0.1".into(),
            port: 17002,
            state: "online".into(),
            offset: 69,
            lag: 1,
        }]
    );
}

#[test]
fn replica_info_describes_its_link() {
    let info = parse_info_replication(REPLICA).unwrap();
    assert_eq!(info.role, Role::Replica);
    assert_eq!(info.replid, "9da89dab3b64c32471ea4305fdb0386920061074");
    assert!(info.replicas.is_empty());
    assert_eq!(
        info.primary,
        Some(PrimaryLink {
            host: "127.0.0.1".into(),
            port: 17001,
            link_up: true,
            last_io_seconds_ago: Some(1),
            sync_in_progress: false,
            replica_offset: 69,
        })
    );
}

#[test]
fn a_link_never_established_has_no_last_io() {
    let link = parse_info_replication(REPLICA_LINK_DOWN)
        .unwrap()
        .primary
        .unwrap();
    assert!(!link.link_up);
    assert_eq!(link.last_io_seconds_ago, None);
    assert_eq!(link.port, 17009);
}

#[test]
fn primary_names_are_accepted_too() {
    let text = PRIMARY
        .replace("role:master", "role:primary")
        .replace("master_replid", "primary_replid")
        .replace("master_repl_offset", "primary_repl_offset");
    let info = parse_info_replication(&text).unwrap();
    assert_eq!(info.role, Role::Primary);
    assert_eq!(info.master_repl_offset, 69);
}

#[test]
fn malformed_numbers_name_the_field() {
    let text = REPLICA.replace("slave_repl_offset:69", "slave_repl_offset:6x9");
    assert_eq!(
        parse_info_replication(&text),
        Err(ParseError::Malformed {
            field: "slave_repl_offset".into(),
            value: "6x9".into()
        })
    );
    let text = PRIMARY.replace("lag=1", "lag=-");
    let err = parse_info_replication(&text).unwrap_err();
    assert!(err.to_string().contains("slave0.lag"), "{err}");
}

#[test]
fn a_replica_lag_of_minus_one_is_read_as_zero() {
    // Seen from valkey-server 9.1 under load: the primary's coarse clock
    // one second behind the time it stamped the replica's last ACK with.
    let text = PRIMARY.replace("lag=1", "lag=-1");
    let info = parse_info_replication(&text).unwrap();
    assert_eq!(info.replicas.first().map(|r| r.lag), Some(0));
}

#[test]
fn missing_and_odd_fields_are_errors() {
    let text = PRIMARY.replace("master_repl_offset:69\r\n", "");
    assert_eq!(
        parse_info_replication(&text),
        Err(ParseError::Missing {
            field: "master_repl_offset".into()
        })
    );
    let text = PRIMARY.replace("role:master", "role:sentinel");
    assert!(parse_info_replication(&text).is_err());
    let text = PRIMARY.replace("9da89dab", "zzzzzzzz");
    assert!(parse_info_replication(&text).is_err());
}

#[test]
fn unknown_lines_are_ignored() {
    let text = format!("{PRIMARY}some_future_field:whatever\r\nno colon here\r\n");
    assert_eq!(
        parse_info_replication(&text),
        parse_info_replication(PRIMARY)
    );
}

#[test]
fn role_of_a_primary() {
    let reply = Reply::Array(vec![
        bulk("master"),
        Reply::Int(69),
        Reply::Array(vec![Reply::Array(vec![
            bulk("127.0.0.1"),
            bulk("17002"),
            bulk("69"),
        ])]),
    ]);
    let role = parse_role(&reply).unwrap();
    assert_eq!(role.role(), Role::Primary);
    assert_eq!(
        role,
        RoleReply::Primary {
            offset: 69,
            replicas: vec![RoleReplica {
                ip: "127.0.0.1".into(),
                port: 17002,
                offset: 69
            }]
        }
    );
}

#[test]
fn role_of_a_replica_before_and_after_sync() {
    let connected = Reply::Array(vec![
        bulk("slave"),
        bulk("127.0.0.1"),
        Reply::Int(17001),
        bulk("connected"),
        Reply::Int(69),
    ]);
    assert_eq!(
        parse_role(&connected).unwrap(),
        RoleReply::Replica {
            host: "127.0.0.1".into(),
            port: 17001,
            state: "connected".into(),
            offset: Some(69)
        }
    );
    let connecting = Reply::Array(vec![
        bulk("slave"),
        bulk("127.0.0.1"),
        Reply::Int(17009),
        bulk("connect"),
        Reply::Int(-1),
    ]);
    let RoleReply::Replica { offset, .. } = parse_role(&connecting).unwrap() else {
        panic!("not a replica");
    };
    assert_eq!(offset, None);
}

#[test]
fn role_replies_of_other_shapes_are_errors() {
    let sentinel = Reply::Array(vec![bulk("sentinel"), Reply::Array(vec![])]);
    assert!(parse_role(&sentinel).is_err());
    assert!(parse_role(&Reply::Okay).is_err());
    let short = Reply::Array(vec![bulk("slave"), bulk("h")]);
    assert_eq!(
        parse_role(&short),
        Err(ParseError::Missing {
            field: "role.port".into()
        })
    );
}

#[test]
fn the_archive_follower_is_no_replica() {
    let text = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=10.0.0.2,port=6379,state=online,offset=90,lag=0\r\nslave1:ip=logbook-archive,port=0,state=online,offset=90,lag=0\r\nmaster_failover_state:no-failover\r\nmaster_replid:0123456789012345678901234567890123456789\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:90\r\n";
    let info = parse_info_replication(text).unwrap();
    assert_eq!(info.replicas.len(), 1);
    assert_eq!(info.replicas[0].ip, "10.0.0.2");
}
