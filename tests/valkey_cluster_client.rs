//! The Valkey Cluster commands of the data-plane client against real
//! cluster-enabled valkey-server processes on 127.0.0.1: a cluster formed
//! from nothing (config epochs, MEET, ADDSLOTSRANGE), read back through
//! every parser, then a replica attached, failed over to, and the old
//! primary stopped and forgotten.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use logbook::valkey::{ClusterNodeLine, ProbeError, Role, ShardNodeHealth, Timeouts, ValkeyClient};
use logbook_journal::cluster::even_split;
use logbook_journal::{ClusterFailoverMode, SlotRange};

use crate::valkey_server;
use valkey_server::{Server, eventually};

fn client() -> ValkeyClient {
    ValkeyClient::new(Timeouts::default(), None)
}

async fn raw(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The line for node `id` in `nodes`.
fn line<'a>(nodes: &'a [ClusterNodeLine], id: &str) -> &'a ClusterNodeLine {
    nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no line for {id} in {nodes:#?}"))
}

/// Whether the server at `addr` lists exactly `ids`, none of them still
/// in hand-shake.
async fn knows_exactly(c: &ValkeyClient, addr: SocketAddr, ids: &[String]) -> bool {
    let Ok(nodes) = c.cluster_nodes(addr).await else {
        return false;
    };
    nodes.len() == ids.len()
        && nodes.iter().all(|n| !n.handshake)
        && ids.iter().all(|id| nodes.iter().any(|n| &n.id == id))
}

/// The slot of `key`, asked of the server.
async fn keyslot(addr: SocketAddr, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut raw(addr).await)
        .await
        .unwrap()
}

/// A key whose slot is in `range`, with its slot.
async fn key_in(addr: SocketAddr, range: SlotRange) -> (String, u16) {
    for n in 0.. {
        let key = format!("key{n}");
        let slot = keyslot(addr, &key).await;
        if (range.start..=range.end).contains(&slot) {
            return (key, slot);
        }
    }
    unreachable!()
}

/// Three primaries formed the way the operator does it: distinct config
/// epochs while each is alone, MEET from the first, the slots split evenly
/// with ADDSLOTSRANGE, then wait for `cluster_state:ok` everywhere.
struct Formed {
    servers: Vec<Server>,
    ids: Vec<String>,
    split: Vec<SlotRange>,
}

async fn form(c: &ValkeyClient) -> Formed {
    let servers: Vec<Server> = (0..3).map(|_| Server::start_cluster_node(&[])).collect();
    let mut ids = Vec::new();
    for (epoch, s) in (1..).zip(&servers) {
        ids.push(c.cluster_myid(s.addr).await.unwrap());
        c.cluster_set_config_epoch(s.addr, epoch).await.unwrap();
    }
    for s in &servers[1..] {
        c.cluster_meet(servers[0].addr, "127.0.0.1", s.addr.port())
            .await
            .unwrap();
    }
    // Idempotent: meeting a member again is answered OK.
    c.cluster_meet(servers[0].addr, "127.0.0.1", servers[1].addr.port())
        .await
        .unwrap();
    for s in &servers {
        eventually("every node to know the three", || {
            knows_exactly(c, s.addr, &ids)
        })
        .await;
    }
    let split = even_split(3);
    for (s, range) in servers.iter().zip(&split) {
        c.cluster_addslotsrange(s.addr, &[*range]).await.unwrap();
    }
    for s in &servers {
        eventually("cluster_state:ok", || async {
            c.cluster_info(s.addr).await.is_ok_and(|info| info.state_ok)
        })
        .await;
    }
    Formed {
        servers,
        ids,
        split,
    }
}

#[tokio::test]
async fn a_cluster_formed_from_nothing_reads_back_through_every_parser() {
    let c = client();
    let Formed {
        servers,
        ids,
        split,
    } = form(&c).await;
    assert_eq!(
        split,
        vec![
            SlotRange {
                start: 0,
                end: 5461
            },
            SlotRange {
                start: 5462,
                end: 10922
            },
            SlotRange {
                start: 10923,
                end: 16383
            },
        ]
    );

    for (i, s) in servers.iter().enumerate() {
        let nodes = c.cluster_nodes(s.addr).await.unwrap();
        assert_eq!(nodes.len(), 3);
        let me: Vec<_> = nodes.iter().filter(|n| n.myself).collect();
        assert_eq!(me.len(), 1);
        assert_eq!(me[0].id, ids[i]);
        for (j, id) in ids.iter().enumerate() {
            let n = line(&nodes, id);
            assert!(n.primary && !n.replica && n.connected, "{n:?}");
            assert!(!(n.failed || n.suspected || n.noaddr || n.handshake));
            assert_eq!(n.primary_id, None);
            assert_eq!(n.ip.as_deref(), Some("127.0.0.1"));
            assert_eq!(n.port, servers[j].addr.port());
            assert_eq!(n.cport, servers[j].addr.port() + 10_000);
            assert_eq!(n.slots, vec![split[j]]);
            assert!(n.migrating.is_empty() && n.importing.is_empty());
            assert_eq!(n.config_epoch, j as u64 + 1, "SET-CONFIG-EPOCH kept");
        }

        let info = c.cluster_info(s.addr).await.unwrap();
        assert!(info.state_ok);
        assert_eq!(
            (
                info.slots_assigned,
                info.slots_ok,
                info.slots_pfail,
                info.slots_fail
            ),
            (16_384, 16_384, 0, 0)
        );
        assert_eq!((info.known_nodes, info.size), (3, 3));
        assert_eq!((info.current_epoch, info.my_epoch), (3, i as u64 + 1));

        let mut shards = c.cluster_shards(s.addr).await.unwrap();
        shards.sort_by_key(|shard| shard.slots.first().map(|r| r.start));
        assert_eq!(shards.len(), 3);
        for (j, shard) in shards.iter().enumerate() {
            assert_eq!(shard.slots, vec![split[j]]);
            assert_eq!(shard.nodes.len(), 1);
            let n = &shard.nodes[0];
            assert_eq!(n.id, ids[j]);
            assert_eq!(n.role, Role::Primary);
            assert_eq!(n.health, ShardNodeHealth::Online);
            assert_eq!(n.port, Some(servers[j].addr.port()));
            assert_eq!(n.ip.as_deref(), Some("127.0.0.1"));
        }

        let probe = c.cluster_probe(s.addr).await.unwrap();
        let mut seen: Vec<_> = probe.nodes.iter().map(|n| n.id.clone()).collect();
        seen.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(probe.info.size, 3);
        assert_eq!(probe.replication.role, Role::Primary);
    }

    // A slot owned twice is refused, before anything is assigned.
    let err = c
        .cluster_addslotsrange(servers[0].addr, &[split[1]])
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
    c.cluster_addslotsrange(servers[0].addr, &[]).await.unwrap();

    // Keys are counted where they are stored.
    let slot = keyslot(servers[2].addr, "logbook").await;
    let owner = split
        .iter()
        .position(|r| (r.start..=r.end).contains(&slot))
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("logbook")
        .arg("1")
        .query_async(&mut raw(servers[owner].addr).await)
        .await
        .unwrap();
    assert_eq!(
        c.cluster_countkeysinslot(servers[owner].addr, slot)
            .await
            .unwrap(),
        1
    );
    let other = (owner + 1) % 3;
    assert_eq!(
        c.cluster_countkeysinslot(servers[other].addr, slot)
            .await
            .unwrap(),
        0
    );
    let err = c
        .cluster_countkeysinslot(servers[0].addr, 16_384)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn a_replica_is_attached_failed_over_to_and_its_old_primary_forgotten() {
    let c = client();
    let Formed {
        mut servers,
        mut ids,
        split,
    } = form(&c).await;
    let (a, a_id) = (servers[0].addr, ids[0].clone());

    // A key in the first shard, so the replica's offset is past 0.
    let (key, slot) = key_in(a, split[0]).await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v")
        .query_async(&mut raw(a).await)
        .await
        .unwrap();

    let d_server = Server::start_cluster_node(&[]);
    let d = d_server.addr;
    let d_id = c.cluster_myid(d).await.unwrap();
    c.cluster_meet(a, "127.0.0.1", d.port()).await.unwrap();
    servers.push(d_server);
    ids.push(d_id.clone());
    for s in &servers {
        eventually("every node to know the four", || {
            knows_exactly(&c, s.addr, &ids)
        })
        .await;
    }

    c.cluster_replicate(d, &a_id).await.unwrap();
    // Idempotent for its current primary.
    c.cluster_replicate(d, &a_id).await.unwrap();
    eventually("every node to see d replicate a", || async {
        for s in &servers {
            let Ok(nodes) = c.cluster_nodes(s.addr).await else {
                return false;
            };
            let n = line(&nodes, &d_id);
            if !(n.replica && n.primary_id.as_deref() == Some(a_id.as_str())) {
                return false;
            }
        }
        true
    })
    .await;
    eventually("d's link to a and its shard online", || async {
        let probe = c.cluster_probe(d).await.unwrap();
        let link_up = probe
            .replication
            .primary
            .is_some_and(|link| link.link_up && link.port == a.port());
        let shards = c.cluster_shards(a).await.unwrap();
        let online = shards.iter().any(|shard| {
            shard.slots == vec![split[0]]
                && shard.nodes.len() == 2
                && shard
                    .nodes
                    .iter()
                    .all(|n| n.health == ShardNodeHealth::Online)
                && shard
                    .nodes
                    .iter()
                    .any(|n| n.id == d_id && n.role == Role::Replica)
        });
        link_up && online
    })
    .await;
    let probe = c.cluster_probe(d).await.unwrap();
    assert_eq!(probe.replication.role, Role::Replica);
    let me = probe.nodes.iter().find(|n| n.myself).unwrap();
    assert!(me.replica && me.slots.is_empty());
    assert_eq!(
        probe.info.my_epoch, 1,
        "a replica shows its primary's epoch"
    );

    // FAILOVER is for replicas.
    let err = c
        .cluster_failover(a, ClusterFailoverMode::Coordinated)
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");

    c.cluster_failover(d, ClusterFailoverMode::Coordinated)
        .await
        .unwrap();
    eventually("the roles to swap on every node", || async {
        for s in &servers {
            let Ok(nodes) = c.cluster_nodes(s.addr).await else {
                return false;
            };
            let (old, new) = (line(&nodes, &a_id), line(&nodes, &d_id));
            let swapped = new.primary
                && new.slots == vec![split[0]]
                && old.replica
                && old.primary_id.as_deref() == Some(d_id.as_str());
            if !swapped {
                return false;
            }
        }
        true
    })
    .await;
    eventually("INFO replication to agree", || async {
        let (old, new) = (c.cluster_probe(a).await, c.cluster_probe(d).await);
        matches!((old, new), (Ok(old), Ok(new))
            if old.replication.role == Role::Replica && new.replication.role == Role::Primary)
    })
    .await;
    let new = c.cluster_probe(d).await.unwrap();
    assert!(new.info.state_ok);
    assert!(
        new.info.my_epoch > 3,
        "the new primary took a new epoch: {:?}",
        new.info
    );
    assert_eq!(c.cluster_countkeysinslot(d, slot).await.unwrap(), 1);

    // Stop the old primary (now d's replica) and forget it everywhere.
    servers[0].kill();
    let remaining: Vec<SocketAddr> = servers[1..].iter().map(|s| s.addr).collect();
    for &addr in &remaining {
        c.cluster_forget(addr, &a_id).await.unwrap();
    }
    // Again: it is banned, or gone, there.
    for &addr in &remaining {
        c.cluster_forget(addr, &a_id).await.unwrap();
    }
    let rest: Vec<String> = ids[1..].to_vec();
    for &addr in &remaining {
        assert!(
            knows_exactly(&c, addr, &rest).await,
            "{addr} still lists {a_id}"
        );
        let info = c.cluster_info(addr).await.unwrap();
        assert_eq!(info.known_nodes, 3);
        assert!(info.state_ok);
    }
    // Gossip among the remaining nodes does not bring it back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for &addr in &remaining {
        assert!(knows_exactly(&c, addr, &rest).await, "{addr} re-learned it");
    }

    // A node cannot forget itself.
    let err = c.cluster_forget(d, &d_id).await.unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn config_epochs_and_resets_of_a_lone_node() {
    let c = client();
    let server = Server::start_cluster_node(&[]);
    let addr = server.addr;

    let nodes = c.cluster_nodes(addr).await.unwrap();
    assert_eq!(nodes.len(), 1);
    // Alone, a node does not know its own address.
    assert_eq!(nodes[0].ip, None);
    assert_eq!(nodes[0].port, addr.port());
    assert_eq!(nodes[0].config_epoch, 0);
    let info = c.cluster_info(addr).await.unwrap();
    assert!(!info.state_ok);
    assert_eq!((info.known_nodes, info.slots_assigned), (1, 0));

    c.cluster_set_config_epoch(addr, 7).await.unwrap();
    assert_eq!(c.cluster_nodes(addr).await.unwrap()[0].config_epoch, 7);
    let err = c.cluster_set_config_epoch(addr, 8).await.unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");

    let id = c.cluster_myid(addr).await.unwrap();
    c.cluster_reset(addr, false).await.unwrap();
    assert_eq!(
        c.cluster_myid(addr).await.unwrap(),
        id,
        "a soft reset keeps the id"
    );
    assert_eq!(c.cluster_info(addr).await.unwrap().my_epoch, 7);

    c.cluster_reset(addr, true).await.unwrap();
    let new_id = c.cluster_myid(addr).await.unwrap();
    assert_ne!(new_id, id, "a hard reset gives a new id");
    let info = c.cluster_info(addr).await.unwrap();
    assert_eq!((info.current_epoch, info.my_epoch), (0, 0));

    // A primary holding keys is not reset.
    c.cluster_addslotsrange(
        addr,
        &[SlotRange {
            start: 0,
            end: 16383,
        }],
    )
    .await
    .unwrap();
    // The node marks its state ok on its next cron tick, not at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut raw(addr).await)
            .await;
        match set {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("SET on a lone node owning every slot: {e}"),
        }
    }
    let err = c.cluster_reset(addr, true).await.unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
    assert_eq!(c.cluster_myid(addr).await.unwrap(), new_id);

    // Once it knows another node, its epoch is no longer set by hand.
    let other = Server::start_cluster_node(&[]);
    c.cluster_meet(other.addr, "127.0.0.1", addr.port())
        .await
        .unwrap();
    eventually("the other node to be known", || async {
        c.cluster_info(other.addr)
            .await
            .is_ok_and(|info| info.known_nodes == 2)
    })
    .await;
    let err = c.cluster_set_config_epoch(other.addr, 9).await.unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_without_cluster_support_refuses_and_keeps_its_connection() {
    let server = Server::start(&[]);
    let c = client();
    for _ in 0..2 {
        let err = c.cluster_probe(server.addr).await.unwrap_err();
        match &err {
            ProbeError::Rejected { command, .. } => assert_eq!(*command, "CLUSTER NODES"),
            other => panic!("{other:?}"),
        }
        assert!(!err.is_retryable());
    }
    let err = c.cluster_myid(server.addr).await.unwrap_err();
    assert!(matches!(err, ProbeError::Rejected { .. }), "{err:?}");
    c.probe(server.addr).await.unwrap();

    // A refusal inside the pipeline did not cost the connection: ours is
    // still the only one besides this checking connection.
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut raw(server.addr).await)
        .await
        .unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
}
