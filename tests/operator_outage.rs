//! The Kubernetes API goes away for 30 s under a running operator with
//! ConfigMap journals: the operator does not crash, its liveness endpoint
//! keeps answering, readiness drops (it cannot renew its Lease), nothing
//! it journaled is lost, and when the API returns it leads again at the
//! same epoch and fails over as before.
//!
//! The outage is real: the operator reaches the API server only through a
//! TCP relay that this test cuts (every connection closed, new ones
//! dropped) and restores.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use logbook::journal_store::{ConfigMapStore, JournalBackend};
use logbook_crds::ValkeyCluster;
use logbook_journal::reader::load_state;
use logbook_journal::{Event, JournalStore, StreamId};
use logbook_localkube::{Config, LocalKube, WorkloadsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const NS: &str = "default";
const OUTAGE: Duration = Duration::from_secs(30);

/// A TCP relay to `upstream` that can be cut and restored.
struct Relay {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, watch_up) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !*watch_up.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut = watch_up.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = pipe(client, server) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Relay { addr, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

async fn pipe(a: TcpStream, b: TcpStream) {
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    let one = tokio::io::copy(&mut ar, &mut bw);
    let two = tokio::io::copy(&mut br, &mut aw);
    tokio::select! {
        _ = one => {}
        _ = two => {}
    }
    let _ = aw.shutdown().await;
    let _ = bw.shutdown().await;
}

/// `GET path` on the health endpoint: the status code, or `None` when it
/// does not answer within a second.
async fn health(addr: SocketAddr, path: &str) -> Option<u16> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out);
        text.split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
}

async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

fn ready(vkc: &ValkeyCluster) -> bool {
    vkc.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn primary(vkc: &ValkeyCluster) -> Option<String> {
    vkc.status.as_ref().and_then(|s| s.primary.clone())
}

/// The operator runs in this test's runtime, whose threads get the
/// operator's stack (`THREAD_STACK_BYTES`), as in its binary: a debug
/// build's reconcile overflows tokio's default 2 MiB.
#[test]
fn an_api_outage_of_30_s_loses_nothing_and_the_operator_carries_on() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(logbook::operator::THREAD_STACK_BYTES)
        .enable_all()
        .build()
        .unwrap()
        .block_on(outage());
}

async fn outage() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = std::fs::canonicalize(dir.path()).unwrap().join("workloads");
    std::fs::create_dir_all(&state_dir).unwrap();
    let server = LocalKube::start(Config {
        workloads: Some(WorkloadsConfig {
            state_dir: state_dir.clone(),
            kubelet: true,
            proxy: true,
            local_images: Vec::new(),
        }),
        ..Config::default()
    })
    .await
    .unwrap();
    logbook::local_cluster::install_crds(&server).unwrap();
    let upstream: SocketAddr = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let direct = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let relay = Relay::start(upstream).await;
    let through_relay = kube::Client::try_from(kube::Config::new(
        format!("http://{}", relay.addr).parse().unwrap(),
    ))
    .unwrap();

    // The operator, through the relay, with a health endpoint.
    let health_addr: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut config = logbook::operator::OperatorConfig::new(
        JournalBackend::ConfigMap,
        dir.path().join("unused"),
        "outage-0".to_owned(),
        NS,
    );
    config.lease.lease_duration = Duration::from_secs(3);
    config.lease.renew_every = Duration::from_secs(1);
    config.health_addr = Some(health_addr);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(logbook::operator::run(through_relay, config, async move {
        let _ = stop_rx.await;
    }));

    let vkcs: Api<ValkeyCluster> = Api::namespaced(direct.clone(), NS);
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples/replication.yaml"),
    )
    .unwrap();
    let vkc: ValkeyCluster = serde_yaml::from_str(&sample).unwrap();
    vkcs.patch(
        "demo",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&vkc),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(60), "the cluster Ready", || async {
        vkcs.get("demo").await.is_ok_and(|v| ready(&v))
    })
    .await;
    eventually(Duration::from_secs(10), "/readyz 200", || async {
        health(health_addr, "/readyz").await == Some(200)
    })
    .await;
    let uid = vkcs.get("demo").await.unwrap().metadata.uid.unwrap();
    let stream = StreamId::new(uid).unwrap();
    let store = ConfigMapStore::new(direct.clone(), NS);
    let before = load_state(&store, &stream).await.unwrap().state;
    let epoch_before = before.epoch;

    // The outage: a replica dies meanwhile, so there is something to see.
    relay.set(false);
    let cut = Instant::now();
    let old_primary = primary(&vkcs.get("demo").await.unwrap()).unwrap();
    let mut saw_unready = false;
    while cut.elapsed() < OUTAGE {
        assert_eq!(
            health(health_addr, "/healthz").await,
            Some(200),
            "liveness must not depend on the API server ({:?} into the outage)",
            cut.elapsed()
        );
        saw_unready |= health(health_addr, "/readyz").await == Some(503);
        assert!(
            !operator.is_finished(),
            "the operator stopped during the outage: {:?}",
            cut.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        saw_unready,
        "readiness should drop while the Lease cannot be renewed"
    );
    relay.set(true);
    let restored = Instant::now();

    // It leads again (same holder, same epoch: nobody else took over) and
    // the journal continues the same chain.
    eventually(Duration::from_secs(20), "/readyz 200 again", || async {
        health(health_addr, "/readyz").await == Some(200)
    })
    .await;
    eprintln!(
        "ready again {:?} after the API returned",
        restored.elapsed()
    );

    // It acts again: the primary dies and it fails over.
    let faults = server.faults().unwrap();
    faults.kill(NS, &old_primary, None).await.unwrap();
    eventually(
        Duration::from_secs(40),
        "a failover after the outage",
        || async {
            vkcs.get("demo")
                .await
                .is_ok_and(|v| primary(&v).is_some_and(|p| p != old_primary) && ready(&v))
        },
    )
    .await;

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(20), operator)
        .await
        .expect("the operator stops")
        .unwrap()
        .unwrap();

    // Nothing lost: one verified chain from before the outage to after it.
    let report = logbook_journal::verify::verify(&store, &stream)
        .await
        .unwrap();
    assert!(report.problem.is_none(), "journal damaged: {report:?}");
    let after = load_state(&store, &stream).await.unwrap().state;
    assert!(after.last_seq > before.last_seq);
    assert!(
        after.in_flight.is_empty(),
        "in flight: {:?}",
        after.in_flight
    );
    let events = logbook_journal::reader::read_envelopes(
        &store,
        &stream,
        before.last_seq + 1,
        before.last_hash,
        after.last_seq,
    )
    .await
    .unwrap();
    assert!(
        events.iter().all(|e| e.epoch == epoch_before),
        "the same holder re-acquired its Lease: the epoch stays {epoch_before}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, Event::ReplicaPromoted { from: Some(from), .. } if *from == old_primary)),
        "the failover is journaled"
    );
    let head = store.head(&stream).await.unwrap();
    assert_eq!(head.seq, after.last_seq);
    server.shutdown().await;
    logbook_localkube::kubelet::kill_leftovers(&state_dir);
}
