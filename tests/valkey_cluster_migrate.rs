//! The resharding commands of the data-plane client against real
//! three-node clusters on 127.0.0.1: atomic slot migration on
//! valkey-server 9.1 (two jobs from one command, found by their ranges at
//! both ends; a job cancelled while its target is stopped), and on Debian's
//! redis-server 7.0, which has none, the refusal read as "no atomic slot
//! migration" and a slot moved with its keys (binary ones included) by the
//! classic SETSLOT / GETKEYSINSLOT / MIGRATE pipeline, with a password.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use logbook::observe::cluster_answer;
use logbook::valkey::{Password, ProbeError, SetSlot, Timeouts, ValkeyClient};
use logbook_journal::cluster::even_split;
use logbook_journal::{MigrationPhase, MigrationSide, SlotMigrationJob, SlotPeer, SlotRange};

use crate::valkey_server;
use valkey_server::{Server, eventually, redis_server_binary};

fn r(start: u16, end: u16) -> SlotRange {
    SlotRange { start, end }
}

/// The hash slot of `key` (CRC16/XMODEM of its hash tag, mod 16384).
fn slot_of(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&len| len > 0)
                .map(|len| &rest[..len])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in tag {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

/// A hash tag whose keys land in `range`.
fn tag_in(range: SlotRange) -> String {
    (0..)
        .map(|n| format!("t{n}"))
        .find(|t| (range.start..=range.end).contains(&slot_of(t.as_bytes())))
        .unwrap()
}

async fn raw(addr: SocketAddr, password: Option<&str>) -> redis::aio::MultiplexedConnection {
    let url = match password {
        Some(p) => format!("redis://:{p}@{addr}"),
        None => format!("redis://{addr}"),
    };
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Forms `servers` into one cluster the way the operator does (distinct
/// config epochs, MEET, an even split), waits for `cluster_state:ok`
/// everywhere and returns the node ids.
async fn form(c: &ValkeyClient, servers: &[Server]) -> Vec<String> {
    let mut ids = Vec::new();
    for (epoch, s) in (1..).zip(servers) {
        ids.push(c.cluster_myid(s.addr).await.unwrap());
        c.cluster_set_config_epoch(s.addr, epoch).await.unwrap();
    }
    for s in &servers[1..] {
        c.cluster_meet(servers[0].addr, &s.addr.ip().to_string(), s.addr.port())
            .await
            .unwrap();
    }
    let split = even_split(u32::try_from(servers.len()).unwrap());
    for s in servers {
        eventually("every node to know every other", || async {
            c.cluster_nodes(s.addr)
                .await
                .is_ok_and(|n| n.len() == servers.len() && n.iter().all(|l| !l.handshake))
        })
        .await;
    }
    for (s, range) in servers.iter().zip(&split) {
        c.cluster_addslotsrange(s.addr, &[*range]).await.unwrap();
    }
    for s in servers {
        eventually("cluster_state:ok", || async {
            c.cluster_info(s.addr).await.is_ok_and(|info| info.state_ok)
        })
        .await;
    }
    ids
}

/// Whether the node at `addr` claims every slot of `ranges` itself.
async fn owns(c: &ValkeyClient, addr: SocketAddr, ranges: &[SlotRange]) -> bool {
    let Ok(nodes) = c.cluster_nodes(addr).await else {
        return false;
    };
    let Some(me) = nodes.iter().find(|n| n.myself) else {
        return false;
    };
    ranges
        .iter()
        .all(|w| (w.start..=w.end).all(|s| me.slots.iter().any(|o| o.start <= s && s <= o.end)))
}

fn rejected(result: Result<impl std::fmt::Debug, ProbeError>, needle: &str) {
    match result {
        Err(ProbeError::Rejected { message, .. }) if message.contains(needle) => {}
        other => panic!("expected a refusal saying {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn atomic_slot_migration_moves_ranges_and_each_job_is_found_by_its_ranges() {
    let c = ValkeyClient::new(Timeouts::default(), None);
    let servers: Vec<Server> = (0..3).map(|_| Server::start_cluster_node(&[])).collect();
    let ids = form(&c, &servers).await;
    let (a, b, cc) = (servers[0].addr, servers[1].addr, servers[2].addr);
    let to_b = vec![r(0, 99), r(200, 299)];
    let to_c = vec![r(300, 399)];

    // Keys in both of B's ranges and in C's.
    let mut conn = raw(a, None).await;
    let tags = [tag_in(r(0, 99)), tag_in(r(200, 299)), tag_in(r(300, 399))];
    for tag in &tags {
        for n in 0..20 {
            let _: () = redis::cmd("SET")
                .arg(format!("{{{tag}}}:{n}"))
                .arg(n)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }

    assert_eq!(
        c.cluster_getslotmigrations(a).await.unwrap(),
        Some(Vec::new())
    );
    // Nothing to move sends nothing.
    c.cluster_migrateslots(a, &[]).await.unwrap();
    c.cluster_migrateslots(
        a,
        &[
            (to_b.clone(), ids[1].clone()),
            (to_c.clone(), ids[2].clone()),
        ],
    )
    .await
    .unwrap();
    // Both jobs are listed at once, by the command's reply.
    let listed = c.cluster_getslotmigrations(a).await.unwrap().unwrap();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(
        listed
            .iter()
            .all(|j| j.side == MigrationSide::Export && j.source == ids[0])
    );

    let find =
        |jobs: &[SlotMigrationJob], to: &str, ranges: &[SlotRange]| -> Option<SlotMigrationJob> {
            jobs.iter().find(|j| j.moves(&ids[0], to, ranges)).cloned()
        };
    eventually("both exports to succeed", || async {
        let jobs = c.cluster_getslotmigrations(a).await.unwrap().unwrap();
        [(&ids[1], &to_b), (&ids[2], &to_c)]
            .iter()
            .all(|(to, ranges)| {
                find(&jobs, to, ranges).is_some_and(|j| j.phase == MigrationPhase::Succeeded)
            })
    })
    .await;
    let jobs = c.cluster_getslotmigrations(a).await.unwrap().unwrap();
    let export = find(&jobs, &ids[1], &to_b).unwrap();
    assert!(export.message.is_empty() && !export.ambiguous());
    // The target lists the same job, by the same name, as an import.
    let on_b = c.cluster_getslotmigrations(b).await.unwrap().unwrap();
    let import = on_b.iter().find(|j| j.name == export.name).unwrap();
    assert_eq!(import.side, MigrationSide::Import);
    assert_eq!(import.phase, MigrationPhase::Succeeded);
    assert!(import.moves(&ids[0], &ids[1], &to_b));
    assert!(owns(&c, b, &to_b).await && owns(&c, cc, &to_c).await);
    eventually("A to give the slots up", || async {
        !owns(&c, a, &[r(0, 0)]).await && !owns(&c, a, &[r(300, 300)]).await
    })
    .await;
    for (tag, addr) in [(&tags[0], b), (&tags[1], b), (&tags[2], cc)] {
        let slot = slot_of(tag.as_bytes());
        assert_eq!(c.cluster_countkeysinslot(addr, slot).await.unwrap(), 20);
        assert_eq!(c.cluster_countkeysinslot(a, slot).await.unwrap(), 0);
    }

    // The per-interval probe carries the same list; a finished job stays.
    let probe = c.cluster_probe(a).await.unwrap();
    assert_eq!(probe.migrations.as_ref().map(Vec::len), Some(2));
    let answer = cluster_answer(&probe).unwrap();
    assert_eq!(answer.migrations, probe.migrations);
    assert_eq!(answer.slot_states, (Vec::new(), Vec::new()));

    // Refusals, as the server words them.
    rejected(
        c.cluster_migrateslots(a, &[(to_b.clone(), ids[1].clone())])
            .await,
        "not served",
    );
    rejected(
        c.cluster_migrateslots(a, &[(vec![r(1000, 1000)], "0".repeat(40))])
            .await,
        "Unknown node",
    );
    rejected(
        c.cluster_migrateslots(
            a,
            &[
                (vec![r(1000, 1099)], ids[1].clone()),
                (vec![r(1050, 1060)], ids[2].clone()),
            ],
        )
        .await,
        "overlap",
    );
    assert!(!c.cluster_cancelslotmigrations(a).await.unwrap());
}

#[tokio::test]
async fn a_job_whose_target_is_stopped_runs_until_cancelled() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let c = ValkeyClient::new(Timeouts::default(), None);
    let servers: Vec<Server> = (0..3).map(|_| Server::start_cluster_node(&[])).collect();
    let ids = form(&c, &servers).await;
    let a = servers[0].addr;
    let target = Pid::from_raw(i32::try_from(servers[1].pid()).unwrap());
    kill(target, Signal::SIGSTOP).unwrap();
    c.cluster_migrateslots(a, &[(vec![r(10, 19)], ids[1].clone())])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let jobs = c.cluster_getslotmigrations(a).await.unwrap().unwrap();
    assert!(
        matches!(&jobs[0].phase, MigrationPhase::Running { .. }),
        "{jobs:#?}"
    );
    rejected(
        c.cluster_migrateslots(a, &[(vec![r(15, 15)], ids[2].clone())])
            .await,
        "already migrating",
    );
    assert!(c.cluster_cancelslotmigrations(a).await.unwrap());
    kill(target, Signal::SIGCONT).unwrap();
    let jobs = c.cluster_getslotmigrations(a).await.unwrap().unwrap();
    assert_eq!(jobs[0].phase, MigrationPhase::Cancelled);
    assert!(jobs[0].moves(&ids[0], &ids[1], &[r(10, 19)]));
    assert!(owns(&c, a, &[r(10, 19)]).await);
}

#[tokio::test]
async fn redis_7_moves_a_slot_with_its_keys_the_classic_way() {
    const PASSWORD: &str = "s3cret-for-migrate";
    let c = ValkeyClient::new(Timeouts::default(), Some(Password::new(PASSWORD)));
    let auth = ["--requirepass", PASSWORD, "--masterauth", PASSWORD];
    let servers: Vec<Server> = (0..3)
        .map(|_| Server::start_cluster_node_with(&redis_server_binary(), &auth))
        .collect();
    let ids = form(&c, &servers).await;
    let (a, b, cc) = (servers[0].addr, servers[1].addr, servers[2].addr);

    // No atomic slot migration: None, not an error, in both reads.
    assert_eq!(c.cluster_getslotmigrations(a).await.unwrap(), None);
    assert_eq!(c.cluster_probe(a).await.unwrap().migrations, None);
    rejected(
        c.cluster_migrateslots(a, &[(vec![r(0, 0)], ids[1].clone())])
            .await,
        "unknown subcommand",
    );

    // 250 keys in one slot of A, one of them not UTF-8.
    let tag = tag_in(r(100, 5000));
    let slot = slot_of(tag.as_bytes());
    let binary_key = [format!("{{{tag}}}").into_bytes(), vec![0xff, 0x00, 0xfe]].concat();
    assert_eq!(slot_of(&binary_key), slot);
    let mut conn = raw(a, Some(PASSWORD)).await;
    for n in 0..249 {
        let _: () = redis::cmd("SET")
            .arg(format!("{{{tag}}}:{n}"))
            .arg(n)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg(&binary_key)
        .arg("binary")
        .query_async(&mut conn)
        .await
        .unwrap();

    c.cluster_setslot(b, slot, SetSlot::Importing(&ids[0]))
        .await
        .unwrap();
    c.cluster_setslot(a, slot, SetSlot::Migrating(&ids[1]))
        .await
        .unwrap();
    // Idempotent.
    c.cluster_setslot(a, slot, SetSlot::Migrating(&ids[1]))
        .await
        .unwrap();
    let marks = |addr| {
        let c = c.clone();
        async move {
            cluster_answer(&c.cluster_probe(addr).await.unwrap())
                .unwrap()
                .slot_states
        }
    };
    let peer = |node: &str| SlotPeer {
        slot,
        node_id: node.to_owned(),
    };
    assert_eq!(marks(a).await, (vec![peer(&ids[1])], Vec::new()));
    assert_eq!(marks(b).await, (Vec::new(), vec![peer(&ids[0])]));

    let mut sent = 0;
    let mut saw_binary = false;
    loop {
        let keys = c.cluster_getkeysinslot(a, slot, 100).await.unwrap();
        if keys.is_empty() {
            break;
        }
        saw_binary |= keys.contains(&binary_key);
        assert!(c.migrate(a, b, &keys, 5_000, true).await.unwrap());
        sent += keys.len();
    }
    assert_eq!(sent, 250);
    assert!(saw_binary);
    // Keys no longer there: NOKEY; nothing: nothing sent.
    assert!(
        !c.migrate(a, b, std::slice::from_ref(&binary_key), 5_000, true)
            .await
            .unwrap()
    );
    assert!(!c.migrate(a, b, &[], 5_000, true).await.unwrap());

    for addr in [b, a, cc] {
        c.cluster_setslot(addr, slot, SetSlot::Node(&ids[1]))
            .await
            .unwrap();
    }
    assert_eq!(marks(a).await, (Vec::new(), Vec::new()));
    assert_eq!(marks(b).await, (Vec::new(), Vec::new()));
    for addr in [a, b, cc] {
        eventually("every node to see B own the slot", || async {
            let Ok(nodes) = c.cluster_nodes(addr).await else {
                return false;
            };
            nodes
                .iter()
                .any(|n| n.id == ids[1] && n.slots.iter().any(|s| s.start <= slot && slot <= s.end))
        })
        .await;
    }
    assert_eq!(c.cluster_countkeysinslot(b, slot).await.unwrap(), 250);
    assert_eq!(c.cluster_countkeysinslot(a, slot).await.unwrap(), 0);
    let value: String = redis::cmd("GET")
        .arg(&binary_key)
        .query_async(&mut raw(b, Some(PASSWORD)).await)
        .await
        .unwrap();
    assert_eq!(value, "binary");
    // Nothing marked: STABLE is a no-op.
    c.cluster_setslot(a, slot, SetSlot::Stable).await.unwrap();
}
