//! The resharding executors (`move_slots`, `settle_slot`) against real
//! clusters whose nodes sit where pods do: each on its own loopback
//! address of a localkube instance's block, port 6379, so the executors
//! address them through the projection exactly as in production.
//!
//! valkey-server 9.1: a move by atomic slot migration followed to the end
//! (one event per phase), repeated (already moved), and one found running
//! (adopted, never issued twice); a slot left half-moved by hand finished,
//! lone marks cleared, and a clearing that would strand keys refused.
//! redis-server 7.0: a move by the classic pipeline, and one resumed after
//! a crash left its slot half-moved.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use logbook::actuate::{ActError, Target, move_slots, settle_slot};
use logbook::observe::cluster_answer;
use logbook::resources::ClusterMeta;
use logbook::valkey::{Password, SetSlot, Timeouts, ValkeyClient};
use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::cluster::even_split;
use logbook_journal::projection::PodView;
use logbook_journal::projection::cluster::ClusterNode;
use logbook_journal::{ClusterState, Event, MigrationPhase, MigrationSide, SlotRange};
use logbook_localkube::instance::Instance;

use crate::valkey_server;
use valkey_server::{Server, eventually, redis_server_binary};

fn r(start: u16, end: u16) -> SlotRange {
    SlotRange { start, end }
}

/// The hash slot of `key` (CRC16/XMODEM of its hash tag, mod 16384).
fn slot_of(key: &str) -> u16 {
    let tag = key
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag)
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in tag.as_bytes() {
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

/// A hash tag whose keys land in `range`, other than those in `but`.
fn tag_in(range: SlotRange, but: &[u16]) -> String {
    (0..)
        .map(|n| format!("t{n}"))
        .find(|t| {
            let s = slot_of(t);
            (range.start..=range.end).contains(&s) && !but.contains(&s)
        })
        .unwrap()
}

/// A cluster of `pods.len()` primaries on pod addresses, and the
/// projection an operator would hold of it.
struct Fixture {
    _instance: Instance,
    servers: Vec<Server>,
    pods: Vec<String>,
    ids: Vec<String>,
    password: Option<String>,
    c: ValkeyClient,
    meta: ClusterMeta,
    spec: ValkeyClusterSpec,
    state: ClusterState,
}

impl Fixture {
    async fn start(binary: &Path, nodes: usize, password: Option<&str>) -> Fixture {
        let instance = Instance::acquire(&Instance::default_lock_dir()).unwrap();
        let mut extra: Vec<&str> = Vec::new();
        if let Some(p) = password {
            extra.extend(["--requirepass", p, "--masterauth", p]);
        }
        let servers: Vec<Server> = (0..nodes)
            .map(|i| {
                let ip: Ipv4Addr = instance.pod_ip(u32::try_from(i).unwrap()).unwrap();
                Server::start_cluster_node_at(binary, ip, &extra)
            })
            .collect();
        let c = ValkeyClient::new(Timeouts::default(), password.map(Password::new));
        let mut ids = Vec::new();
        for (epoch, s) in (1..).zip(&servers) {
            ids.push(c.cluster_myid(s.addr).await.unwrap());
            c.cluster_set_config_epoch(s.addr, epoch).await.unwrap();
        }
        for s in &servers[1..] {
            c.cluster_meet(servers[0].addr, &s.addr.ip().to_string(), 6379)
                .await
                .unwrap();
        }
        for s in &servers {
            eventually("every node to know every other", || async {
                c.cluster_nodes(s.addr)
                    .await
                    .is_ok_and(|n| n.len() == nodes && n.iter().all(|l| !l.handshake))
            })
            .await;
        }
        for (s, range) in servers
            .iter()
            .zip(even_split(u32::try_from(nodes).unwrap()))
        {
            c.cluster_addslotsrange(s.addr, &[range]).await.unwrap();
        }
        for s in &servers {
            eventually("cluster_state:ok", || async {
                c.cluster_info(s.addr).await.is_ok_and(|info| info.state_ok)
            })
            .await;
        }
        let mut fixture = Fixture {
            _instance: instance,
            servers,
            pods: (0..nodes).map(|i| format!("demo-{i}")).collect(),
            ids,
            password: password.map(str::to_owned),
            c,
            meta: ClusterMeta {
                name: "demo".to_owned(),
                namespace: "default".to_owned(),
                uid: "uid-demo".to_owned(),
            },
            spec: ValkeyClusterSpec::with_topology(Topology::Cluster),
            state: ClusterState::default(),
        };
        fixture.observe().await;
        fixture
    }

    /// The projection rebuilt from a fresh probe of every pod.
    async fn observe(&mut self) {
        let mut state = ClusterState::default();
        for (pod, s) in self.pods.iter().zip(&self.servers) {
            state.pods.insert(
                pod.clone(),
                PodView {
                    ip: Some(s.addr.ip().to_string()),
                    ..PodView::default()
                },
            );
            let answer = cluster_answer(&self.c.cluster_probe(s.addr).await.unwrap()).unwrap();
            let id = answer.report.node_id.clone();
            state.cluster.pods.insert(pod.clone(), id.clone());
            state.cluster.nodes.insert(
                id,
                ClusterNode {
                    pod: pod.clone(),
                    report: answer.report,
                },
            );
        }
        self.state = state;
    }

    fn target(&self) -> Target<'_> {
        Target {
            meta: &self.meta,
            spec: &self.spec,
            state: &self.state,
            interrupt: None,
        }
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.servers[i].addr
    }

    async fn conn(&self, i: usize) -> redis::aio::MultiplexedConnection {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@{}", self.addr(i)),
            None => format!("redis://{}", self.addr(i)),
        };
        redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Writes `count` keys tagged `tag` on node `i`.
    async fn fill(&self, i: usize, tag: &str, count: usize) {
        let mut conn = self.conn(i).await;
        let mut pipe = redis::pipe();
        for n in 0..count {
            pipe.cmd("SET")
                .arg(format!("{{{tag}}}:{n}"))
                .arg(n)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.unwrap();
    }

    async fn keys(&self, i: usize, slot: u16) -> u64 {
        self.c
            .cluster_countkeysinslot(self.addr(i), slot)
            .await
            .unwrap()
    }

    /// Whether node `i` claims every slot of `ranges`.
    async fn owns(&self, i: usize, ranges: &[SlotRange]) -> bool {
        let answer = cluster_answer(&self.c.cluster_probe(self.addr(i)).await.unwrap()).unwrap();
        ranges.iter().all(|w| {
            answer
                .report
                .slots
                .iter()
                .any(|o| o.start <= w.start && w.end <= o.end)
        })
    }

    /// Node `i`'s half-moved marks.
    async fn marks(&self, i: usize) -> usize {
        let answer = cluster_answer(&self.c.cluster_probe(self.addr(i)).await.unwrap()).unwrap();
        answer.slot_states.0.len() + answer.slot_states.1.len()
    }

    async fn move_slots(
        &self,
        from: usize,
        to: usize,
        slots: &[SlotRange],
    ) -> Result<logbook::actuate::Done, ActError> {
        move_slots(
            &self.c,
            self.target(),
            &self.pods[from],
            &self.ids[from],
            &self.pods[to],
            &self.ids[to],
            slots,
        )
        .await
    }
}

/// `settle_slot` of `slot`, owned by node 0, finished to node `to` or
/// (`None`) its marks cleared.
async fn settle(
    f: &Fixture,
    slot: u16,
    to: Option<usize>,
) -> Result<logbook::actuate::Done, ActError> {
    settle_slot(
        &f.c,
        f.target(),
        slot,
        &f.pods[0],
        &f.ids[0],
        to.map(|i| f.pods[i].as_str()),
        to.map(|i| f.ids[i].as_str()),
    )
    .await
}

/// The `SlotMigrationObserved` events among `events`.
fn phases(events: &[Event]) -> Vec<(&str, MigrationPhase, Option<u64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SlotMigrationObserved {
                pod,
                job,
                elapsed_ms,
            } => Some((pod.as_str(), job.phase.clone(), *elapsed_ms)),
            _ => None,
        })
        .collect()
}

fn reports_of(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ClusterNodeObserved { pod, .. } => Some(pod.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_atomic_move_is_followed_to_its_end_then_found_done() {
    let mut f = Fixture::start(&logbook_bench::valkey_server_binary(), 3, None).await;
    let slots = [r(0, 99), r(200, 299)];
    let tags = [tag_in(r(0, 99), &[]), tag_in(r(200, 299), &[])];
    for tag in &tags {
        f.fill(0, tag, 500).await;
    }

    let done = f.move_slots(0, 1, &slots).await.unwrap();
    println!("{}", done.detail);
    assert!(
        done.detail.starts_with(
            "moved 200 slots (0-99,200-299) from demo-0 to demo-1 by atomic slot migration"
        ),
        "{}",
        done.detail
    );
    assert!(done.detail.contains("write pause"), "{}", done.detail);
    let seen = phases(&done.events);
    // Bounded: one event per phase seen, never one per poll.
    assert!((2..=12).contains(&seen.len()), "{seen:#?}");
    assert!(seen.windows(2).all(|w| w[0].1 != w[1].1), "{seen:#?}");
    assert!(
        seen.iter()
            .all(|(pod, _, elapsed)| *pod == "demo-0" && elapsed.is_some())
    );
    assert_eq!(seen.last().unwrap().1, MigrationPhase::Succeeded);
    let mut reported = reports_of(&done.events);
    reported.sort_unstable();
    assert_eq!(reported, ["demo-0", "demo-1"]);
    assert!(f.owns(1, &slots).await);
    for tag in &tags {
        assert_eq!(f.keys(1, slot_of(tag)).await, 500);
        assert_eq!(f.keys(0, slot_of(tag)).await, 0);
    }

    // Again, on the projection the first call's reports brought: done.
    f.observe().await;
    let again = f.move_slots(0, 1, &slots).await.unwrap();
    assert!(
        again.detail.starts_with("already moved"),
        "{}",
        again.detail
    );
    assert!(phases(&again.events).is_empty());
    let exports =
        f.c.cluster_getslotmigrations(f.addr(0))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(exports.len(), 1, "one job, issued once: {exports:#?}");

    // A decision on stale ids is refused before anything is sent.
    let stale = move_slots(
        &f.c,
        f.target(),
        &f.pods[1],
        &f.ids[2],
        &f.pods[0],
        &f.ids[0],
        &slots,
    )
    .await;
    assert!(matches!(stale, Err(ActError::Refused(_))), "{stale:?}");
}

#[tokio::test]
async fn a_job_found_running_is_adopted_never_issued_again() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let f = Fixture::start(&logbook_bench::valkey_server_binary(), 3, None).await;
    let slots = [r(5500, 5599)];
    let tag = tag_in(slots[0], &[]);
    f.fill(1, &tag, 2_000).await;
    // The target stopped, the job cannot start; issued as a crashed
    // executor would have left it.
    let target = Pid::from_raw(i32::try_from(f.servers[2].pid()).unwrap());
    kill(target, Signal::SIGSTOP).unwrap();
    f.c.cluster_migrateslots(f.addr(1), &[(slots.to_vec(), f.ids[2].clone())])
        .await
        .unwrap();
    let resume = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        kill(target, Signal::SIGCONT).unwrap();
    });

    let done = f.move_slots(1, 2, &slots).await.unwrap();
    resume.await.unwrap();
    println!("{}", done.detail);
    assert!(done.detail.contains("found running"), "{}", done.detail);
    let seen = phases(&done.events);
    assert!(!seen.is_empty());
    // Not watched from its start: no time since issue.
    assert!(
        seen.iter().all(|(_, _, elapsed)| elapsed.is_none()),
        "{seen:#?}"
    );
    assert_eq!(seen.last().unwrap().1, MigrationPhase::Succeeded);
    let exports: Vec<_> =
        f.c.cluster_getslotmigrations(f.addr(1))
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|j| j.side == MigrationSide::Export)
            .collect();
    assert_eq!(exports.len(), 1, "{exports:#?}");
    assert!(f.owns(2, &slots).await);
    assert_eq!(f.keys(2, slot_of(&tag)).await, 2_000);
}

#[tokio::test]
async fn redis_7_moves_by_the_classic_pipeline_and_resumes_a_half_moved_slot() {
    let mut f = Fixture::start(&redis_server_binary(), 3, Some("classic-secret")).await;
    let a = tag_in(r(0, 5460), &[]);
    let b = tag_in(r(0, 5460), &[slot_of(&a)]);
    let (sa, sb) = (slot_of(&a), slot_of(&b));
    f.fill(0, &a, 250).await;
    f.fill(0, &b, 30).await;

    let done = f
        .move_slots(0, 1, &[r(sa, sa), r(sb, sb), r(16, 18)])
        .await
        .unwrap();
    println!("{}", done.detail);
    assert!(done.detail.contains("classic"), "{}", done.detail);
    assert!(done.detail.contains("and 280 keys"), "{}", done.detail);
    assert!(phases(&done.events).is_empty());
    assert!(reports_of(&done.events).contains(&"demo-1"));
    assert!(f.owns(1, &[r(sa, sa), r(sb, sb), r(16, 18)]).await);
    assert_eq!((f.keys(1, sa).await, f.keys(1, sb).await), (250, 30));
    assert_eq!((f.marks(0).await, f.marks(1).await), (0, 0));
    eventually("the third primary to learn", || async {
        let nodes = f.c.cluster_nodes(f.addr(2)).await.unwrap();
        nodes
            .iter()
            .any(|n| n.id == f.ids[1] && n.slots.iter().any(|s| s.start <= sa && sa <= s.end))
    })
    .await;

    // A crash half-way: marks set, some keys sent. Resumed from there.
    let c = tag_in(r(5461, 10922), &[]);
    let sc = slot_of(&c);
    f.fill(1, &c, 120).await;
    f.c.cluster_setslot(f.addr(2), sc, SetSlot::Importing(&f.ids[1]))
        .await
        .unwrap();
    f.c.cluster_setslot(f.addr(1), sc, SetSlot::Migrating(&f.ids[2]))
        .await
        .unwrap();
    let some = f.c.cluster_getkeysinslot(f.addr(1), sc, 50).await.unwrap();
    assert!(
        f.c.migrate(f.addr(1), f.addr(2), &some, 5_000, true)
            .await
            .unwrap()
    );
    f.observe().await;
    let resumed = f.move_slots(1, 2, &[r(sc, sc)]).await.unwrap();
    assert!(resumed.detail.contains("and 70 keys"), "{}", resumed.detail);
    assert_eq!(f.keys(2, sc).await, 120);
    assert_eq!((f.marks(1).await, f.marks(2).await), (0, 0));

    f.observe().await;
    let again = f.move_slots(1, 2, &[r(sc, sc)]).await.unwrap();
    assert!(
        again.detail.starts_with("already moved"),
        "{}",
        again.detail
    );
}

#[tokio::test]
async fn settle_slot_finishes_a_half_move_and_clears_lone_marks() {
    let mut f = Fixture::start(&logbook_bench::valkey_server_binary(), 3, None).await;

    // Half-moved by hand, some keys sent, then abandoned: finished.
    let a = tag_in(r(0, 5460), &[]);
    let sa = slot_of(&a);
    f.fill(0, &a, 100).await;
    f.c.cluster_setslot(f.addr(1), sa, SetSlot::Importing(&f.ids[0]))
        .await
        .unwrap();
    f.c.cluster_setslot(f.addr(0), sa, SetSlot::Migrating(&f.ids[1]))
        .await
        .unwrap();
    let some = f.c.cluster_getkeysinslot(f.addr(0), sa, 40).await.unwrap();
    assert!(
        f.c.migrate(f.addr(0), f.addr(1), &some, 5_000, true)
            .await
            .unwrap()
    );
    f.observe().await;
    let done = settle(&f, sa, Some(1)).await.unwrap();
    println!("{}", done.detail);
    assert!(done.detail.contains("60 keys"), "{}", done.detail);
    assert!(f.owns(1, &[r(sa, sa)]).await);
    assert_eq!((f.keys(1, sa).await, f.keys(0, sa).await), (100, 0));
    assert_eq!((f.marks(0).await, f.marks(1).await), (0, 0));
    assert!(!reports_of(&done.events).is_empty());

    // Lone marks, no key moved: cleared where they stand.
    let b = tag_in(r(0, 5460), &[sa]);
    let sb = slot_of(&b);
    f.fill(0, &b, 10).await;
    f.c.cluster_setslot(f.addr(0), sb, SetSlot::Migrating(&f.ids[2]))
        .await
        .unwrap();
    f.c.cluster_setslot(f.addr(2), sb, SetSlot::Importing(&f.ids[0]))
        .await
        .unwrap();
    f.observe().await;
    let cleared = settle(&f, sb, None).await.unwrap();
    println!("{}", cleared.detail);
    assert!(cleared.detail.contains("demo-0") && cleared.detail.contains("demo-2"));
    assert_eq!((f.marks(0).await, f.marks(2).await), (0, 0));
    assert!(f.owns(0, &[r(sb, sb)]).await);
    assert_eq!(f.keys(0, sb).await, 10);
    // Nothing left to clear: a no-op.
    let noop = settle(&f, sb, None).await.unwrap();
    assert!(
        noop.detail.starts_with("no primary marks"),
        "{}",
        noop.detail
    );

    // The importing side took a write (ASKING): clearing would strand it.
    f.c.cluster_setslot(f.addr(2), sb, SetSlot::Importing(&f.ids[0]))
        .await
        .unwrap();
    let mut conn = f.conn(2).await;
    let _: () = redis::pipe()
        .cmd("ASKING")
        .ignore()
        .cmd("SET")
        .arg(format!("{{{b}}}:stray"))
        .arg(1)
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    f.observe().await;
    let refused = settle(&f, sb, None).await;
    match refused {
        Err(ActError::Refused(why)) => {
            assert!(why.contains("demo-2") && why.contains("1 keys"), "{why}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(f.marks(2).await, 1, "nothing cleared");
}

#[tokio::test]
async fn an_ambiguous_job_is_resolved_by_ownership() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let f = Fixture::start(&logbook_bench::valkey_server_binary(), 3, None).await;
    let slots = [r(11_000, 11_009)];
    let tag = tag_in(slots[0], &[]);
    f.fill(2, &tag, 5_000).await;
    // The target stopped the moment the source grants it the slots: the
    // source gives up its write pause after 10 s and fails the job "may
    // have succeeded"; resumed, the target takes the slots it was granted.
    let target = Pid::from_raw(i32::try_from(f.servers[1].pid()).unwrap());
    let (c, source) = (f.c.clone(), f.addr(2));
    let watcher = tokio::spawn(async move {
        loop {
            let jobs = c.cluster_getslotmigrations(source).await.unwrap().unwrap();
            if jobs.iter().any(|j| j.phase.name() == "failover-granted") {
                kill(target, Signal::SIGSTOP).unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_secs(12)).await;
        kill(target, Signal::SIGCONT).unwrap();
    });
    let done = f.move_slots(2, 1, &slots).await;
    watcher.await.unwrap();
    let done = done.unwrap();
    println!("{}", done.detail);
    assert!(done.detail.contains("ambiguous job"), "{}", done.detail);
    assert!(done.detail.contains("may be lost"), "{}", done.detail);
    let last = phases(&done.events).last().cloned().unwrap();
    assert_eq!(last.1, MigrationPhase::Failed);
    assert!(f.owns(1, &slots).await);
}

#[tokio::test]
async fn a_job_that_vanishes_with_its_source_is_not_taken_for_a_move() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let f = Fixture::start(&logbook_bench::valkey_server_binary(), 3, None).await;
    let slots = [r(100, 109)];
    let pid = |i: usize| Pid::from_raw(i32::try_from(f.servers[i].pid()).unwrap());
    let (source, target) = (pid(0), pid(1));
    let c = f.c.clone();
    let source_addr = f.addr(0);
    // Once the job is listed, the target is stopped (the job waits on it)
    // and the source killed: the job goes with it.
    let chaos = async {
        loop {
            let jobs = c
                .cluster_getslotmigrations(source_addr)
                .await
                .unwrap()
                .unwrap();
            if !jobs.is_empty() {
                kill(target, Signal::SIGSTOP).unwrap();
                kill(source, Signal::SIGKILL).unwrap();
                kill(target, Signal::SIGCONT).unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let (moved, ()) = tokio::join!(f.move_slots(0, 1, &slots), chaos);
    match moved {
        Err(mut err) => {
            // The job's phases seen before it vanished go with the error.
            let facts = err.take_facts();
            let why = err.to_string();
            assert!(err.is_retryable(), "{why}");
            assert!(why.contains("vanished from demo-0"), "{why}");
            assert!(why.contains("does not own"), "{why}");
            // When the move's own poll saw the job before the kill, the
            // last phase journaled is Vanished; when the kill came first
            // (the chaos polls every millisecond, the move every 15), the
            // move never knew the job's name and journals no phase.
            let seen = phases(&facts);
            if let Some(last) = seen.last() {
                assert_eq!(last.1, MigrationPhase::Vanished, "{facts:?}");
            }
        }
        other => panic!("expected not yet, got {other:?}"),
    }
    assert!(!f.owns(1, &slots).await);
}
