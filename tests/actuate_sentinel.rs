//! `SentinelFailover` against real processes on pod addresses: a primary,
//! two replicas and one Sentinel (quorum 1). `SENTINEL FAILOVER` names no
//! primary, so an intent decided on a report the Sentinels have since
//! outdated must not be carried out: asked anyway, the Sentinel would fail
//! over the primary it promoted itself (found by CI: a restarted operator
//! moved the primary a second time).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logbook::actuate::ActError;
use logbook::resources::{SENTINEL_PORT, sentinel_master_name};
use logbook::valkey::{Timeouts, ValkeyClient};
use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::projection::PodView;
use logbook_journal::projection::sentinel::SentinelPodView;
use logbook_journal::{
    ClusterState, Event, Intent, Reachability, Role, SentinelMonitorReport, SentinelReport,
    SentinelSettings,
};
use logbook_localkube::instance::Instance;
use logbook_localkube::{Config, LocalKube};

use crate::actuate_partial_common;
use crate::valkey_server;
use actuate_partial_common as common;
use valkey_server::{Server, eventually};

/// A Sentinel on `ip`:26379 monitoring `primary`, killed when dropped.
struct Sentinel {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    fn start(ip: Ipv4Addr, name: &str, primary: SocketAddr) -> Sentinel {
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            "port {SENTINEL_PORT}\nbind {ip}\ndir \"{}\"\n\
             sentinel monitor {name} {} {} 1\n\
             sentinel down-after-milliseconds {name} 60000\n\
             sentinel failover-timeout {name} 60000\n",
            dir.path().display(),
            primary.ip(),
            primary.port(),
        );
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(logbook_bench::valkey_server_binary())
            .current_dir(dir.path())
            .arg(&path)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from((ip, SENTINEL_PORT));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "Sentinel on {addr} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sentinel {
            addr,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Sentinel's primary, as an IP.
async fn named(client: &ValkeyClient, sentinel: &Sentinel, name: &str) -> Option<String> {
    client
        .sentinel_master(sentinel.addr, name)
        .await
        .ok()
        .flatten()
        .map(|m| m.ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_decided_on_an_outdated_report_is_not_asked_of_the_sentinel() {
    let instance = Instance::acquire(&Instance::default_lock_dir()).unwrap();
    let sync = [
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ];
    let servers: Vec<Server> = (0..3)
        .map(|i| Server::start_at(instance.pod_ip(i).unwrap(), &sync))
        .collect();
    let client = ValkeyClient::new(Timeouts::default(), None);
    for replica in &servers[1..] {
        client
            .replicaof(replica.addr, Some(servers[0].addr))
            .await
            .unwrap();
    }
    let meta = common::meta();
    let name = sentinel_master_name(&meta.name);
    let sentinel_ip = instance.pod_ip(3).unwrap();
    let sentinel = Sentinel::start(sentinel_ip, &name, servers[0].addr);
    // `INFO` every second (as the operator tunes it), not every 10 s.
    client
        .sentinel_debug_set(sentinel.addr, "info-period", 1000)
        .await
        .unwrap();
    // The Sentinel knows both replicas (from the primary's INFO) before
    // it is asked to fail over.
    eventually("the Sentinel to find both replicas", || async {
        client
            .sentinel_replicas(sentinel.addr, &name)
            .await
            .is_ok_and(|r| r.len() == 2)
    })
    .await;
    // The projection the decision rested on: the Sentinel names demo-0.
    let ip = |i: usize| servers[i].addr.ip().to_string();
    let mut state = ClusterState::default();
    for (i, role) in [Role::Primary, Role::Replica, Role::Replica]
        .into_iter()
        .enumerate()
    {
        state.pods.insert(
            format!("demo-{i}"),
            PodView {
                ip: Some(ip(i)),
                role: Some(role),
                reachability: Some(Reachability::Reachable),
                ..PodView::default()
            },
        );
    }
    state.replication.primary = Some("demo-0".to_owned());
    state.sentinel.enabled = true;
    state.sentinel.pods.insert(
        "demo-sentinel-0".to_owned(),
        SentinelPodView {
            ip: Some(sentinel_ip.to_string()),
            phase: Some(logbook_journal::PodPhase::Running),
            ready: true,
            reachability: Some(Reachability::Reachable),
            report: Some(SentinelReport {
                myid: "unknown".to_owned(),
                monitoring: Some(SentinelMonitorReport {
                    primary_ip: ip(0),
                    primary_port: 6379,
                    primary_pod: Some("demo-0".to_owned()),
                    config_epoch: 0,
                    flags: vec!["master".to_owned()],
                    failover_state: None,
                    settings: SentinelSettings {
                        quorum: 1,
                        down_after_ms: 60_000,
                        failover_timeout_ms: 60_000,
                        parallel_syncs: 1,
                    },
                    replicas: Vec::new(),
                    sentinels: Vec::new(),
                }),
            }),
            ..SentinelPodView::default()
        },
    );
    // Since that report, the Sentinel switched on its own.
    // (It answers NOGOODSLAVE until it has read each replica's INFO.)
    eventually("the Sentinel to accept a failover", || async {
        client
            .sentinel_failover(sentinel.addr, &name, false)
            .await
            .is_ok()
    })
    .await;
    eventually("the Sentinel's own switch", || async {
        named(&client, &sentinel, &name)
            .await
            .is_some_and(|now| now != ip(0))
    })
    .await;
    let promoted = named(&client, &sentinel, &name).await.unwrap();
    eventually("the Sentinel's switch to finish", || async {
        client
            .sentinel_master(sentinel.addr, &name)
            .await
            .ok()
            .flatten()
            .is_some_and(|m| m.failover_state.is_none())
    })
    .await;

    // And could fail the new primary over again: both others are its
    // replicas, linked, in the Sentinel's tables (what a Sentinel that
    // switched while the operator was down has had time to see).
    eventually("the Sentinel to see the new primary's replicas", || async {
        client
            .sentinel_replicas(sentinel.addr, &name)
            .await
            .is_ok_and(|r| {
                r.iter()
                    .filter(|r| {
                        r.master_link_ok
                            && r.master_host.as_deref() == Some(promoted.as_str())
                            && !r.has_flag("s_down")
                            && !r.has_flag("disconnected")
                    })
                    .count()
                    == 2
            })
    })
    .await;

    let api = LocalKube::start(Config::default()).await.unwrap();
    let spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
    let target = common::target(&meta, &spec, &state);
    let dir = tempfile::tempdir().unwrap();
    let intent = Intent::SentinelFailover {
        from: "demo-0".to_owned(),
        to: None,
    };
    let (outcome, _) = common::execute(
        &api,
        target,
        &client,
        &intent,
        None,
        &dir.path().join("effects.jsonl"),
    )
    .await;
    let Err(err) = outcome else {
        panic!("the failover was asked of a Sentinel that named {promoted}: {outcome:?}");
    };
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("names {promoted} primary")),
        "{err}"
    );
    // The Sentinel's fresh report is journaled with the refusal, so the
    // next decision sees the switch.
    let ActError::WithFacts { facts, .. } = &err else {
        panic!("the refusal carries no fresh report: {err:?}");
    };
    assert!(
        facts.iter().any(|e| matches!(
            e,
            Event::SentinelObserved { pod, report: Some(r), .. }
                if pod == "demo-sentinel-0"
                    && r.monitoring.as_ref().is_some_and(|m| m.primary_ip == promoted)
        )),
        "{facts:?}"
    );
    // And nothing moved: the primary the Sentinel promoted stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let master = client
        .sentinel_master(sentinel.addr, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(master.ip, promoted);
    assert!(master.failover_state.is_none(), "{master:?}");
}
