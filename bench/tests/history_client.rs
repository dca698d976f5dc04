//! The history client against real `valkey-server` processes on
//! 127.0.0.1: a healthy primary with a replica gives a history the list
//! checker finds clean and the register checker proves linearizable; a
//! real loss of acknowledged data (`FLUSHALL` under the workload) is
//! reported as `LostAppend` on exactly the appends it destroyed; a primary
//! killed mid-run gives `Fail` and `Unknown`, never an `Ok` it could not
//! have given, and the failover to its replica loses nothing acknowledged;
//! a Valkey Cluster's hot keys are spread over, and served by, every shard;
//! a fenced node serving old values shows as stale reads and registers that
//! are not linearizable.
//!
//! No assertion is about how long anything took: these machines are noisy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use logbook_bench::Target;
use logbook_bench::cluster_reference::ReferenceCluster;
use logbook_bench::history_client::{
    HistoryClient, HistoryClientConfig, Route, WaitFor, check_history, read_json_lines, run_for,
    write_json_lines,
};
use logbook_history::{
    AnomalyKind, Function, History, Op, OpId, Outcome, RegisterConfig, check_list, check_registers,
};

// The operator's tests' helper, shared rather than copied.
#[path = "../../tests/valkey_server/mod.rs"]
mod valkey_server;
use valkey_server::Server;

async fn cmd<T: redis::FromRedisValue>(addr: &str, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    let mut conn = redis::Client::open(format!("redis://{addr}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    c.query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{args:?} on {addr}: {e}"))
}

/// Polls `check` every 20 ms for up to 15 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `replicas` replicas acknowledge a write on `primary`.
async fn linked(primary: &Server, replicas: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // WAIT on a fresh connection: that connection's offset is the SET's.
        let mut conn = redis::Client::open(format!("redis://{}", primary.address()))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("link")
            .arg("up")
            .query_async(&mut conn)
            .await
            .unwrap();
        let acked: i64 = redis::cmd("WAIT")
            .arg(replicas)
            .arg(200)
            .query_async(&mut conn)
            .await
            .unwrap();
        if acked >= replicas {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{replicas} replica(s) never linked"
        );
    }
}

/// A primary and its replica, the link up (a write it acknowledges).
async fn primary_with_replica() -> (Server, Server) {
    // No delay before the diskless full sync the replica asks for.
    let primary = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &primary.port()]);
    linked(&primary, 1).await;
    (primary, replica)
}

fn fixed(server: &Server) -> Route {
    Route::Primary(Target::Fixed(server.address()))
}

/// The last `Ok` list read of each key, by invocation: what the list
/// checker judges loss against.
fn final_reads(history: &History) -> HashMap<&str, (OpId, &Op)> {
    let mut last: HashMap<&str, (OpId, &Op)> = HashMap::new();
    for (id, op) in history.iter() {
        if op.ok_list().is_some() {
            let key = op.f.key();
            if last
                .get(key)
                .is_none_or(|(_, l)| l.invoked_at <= op.invoked_at)
            {
                last.insert(key, (id, op));
            }
        }
    }
    last
}

/// Checks that a process has no operation after one that ended `Unknown`:
/// its client went on under a new id.
fn unknown_ends_its_process(history: &History) {
    let mut seen_unknown: BTreeSet<u64> = BTreeSet::new();
    for (id, op) in history.iter() {
        assert!(
            !seen_unknown.contains(&op.process),
            "{id} reuses process {} after an unknown outcome",
            op.process
        );
        if matches!(op.outcome, Outcome::Unknown(_)) {
            seen_unknown.insert(op.process);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_primary_gives_a_clean_linearizable_history() {
    let (primary, _replica) = primary_with_replica().await;
    let mut config = HistoryClientConfig::lists(fixed(&primary), "clean");
    config.registers = 3;
    // 0.35 is the default; a little more keeps the observed share above
    // 30 % at a few hundred operations.
    config.read_fraction = 0.4;
    let run = run_for(config, Duration::from_secs(2)).await.unwrap();
    let counts = &run.counts;
    println!("{counts}");
    assert!(counts.ops >= 300, "{counts}");
    assert!(counts.ok >= 300, "{counts}");
    assert!(counts.read_fraction() >= 0.30, "{counts}");
    assert!(counts.processes >= 4, "{counts}");
    let history = &run.history;
    assert!(
        history
            .ops()
            .iter()
            .all(|op| op.server.as_deref() == Some(primary.address().as_str()))
    );
    let touched: BTreeSet<&str> = history.ops().iter().map(|op| op.f.key()).collect();
    assert_eq!(touched.len(), 15, "every list and register is used");
    assert!(
        history
            .ops()
            .iter()
            .any(|op| matches!(op.ok_list(), Some(values) if values.len() >= 5)),
        "lists grow under the workload"
    );

    let lists = check_list(history);
    assert!(lists.valid(), "{:#?}", lists.anomalies);
    assert!(lists.loss_fully_judged(), "the final reads judge every key");
    assert!(lists.counts.ok >= 100, "{:?}", lists.counts);
    let registers = check_registers(history, &RegisterConfig::default());
    assert_eq!(registers.keys.len(), 3);
    assert!(registers.valid(), "{:#?}", registers.keys);
    assert!(registers.keys.iter().all(|k| k.considered >= 5));
    let summary = check_history(history, &RegisterConfig::default());
    assert!(summary.valid());
    println!("{summary}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    write_json_lines(history, &path).unwrap();
    assert_eq!(&read_json_lines(&path).unwrap(), history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_primary_shows_as_lost_appends() {
    let (primary, _replica) = primary_with_replica().await;
    let mut config = HistoryClientConfig::lists(fixed(&primary), "lossy");
    config.read_fraction = 0.4;
    let client = HistoryClient::start(config).await.unwrap();
    eventually("200 ok operations", || client.progress().ok >= 200).await;

    // The loss, for real: the primary (and, replicating the command, its
    // replica) drops every list under the clients' feet.
    let flush_from = client.now();
    let _: () = cmd(&primary.address(), &["FLUSHALL", "SYNC"]).await;
    let flush_to = client.now();
    let before = client.progress().ok;
    eventually("200 more ok operations", || {
        client.progress().ok >= before + 200
    })
    .await;
    let run = client.stop().await.unwrap();
    let history = &run.history;

    let report = check_list(history);
    println!("{}", check_history(history, &RegisterConfig::default()));
    let lost: BTreeMap<u64, &logbook_history::Anomaly> = report
        .of_kind(AnomalyKind::LostAppend)
        .map(|a| (a.values[0], a))
        .collect();
    assert!(!lost.is_empty(), "{:#?}", report.anomalies);

    // Every loss reported is an acknowledged append the flush could have
    // destroyed, judged against the key's final read.
    let finals = final_reads(history);
    for anomaly in lost.values() {
        let append = history.get(anomaly.ops[0]).unwrap();
        assert!(matches!(append.f, Function::Append { .. }), "{anomaly}");
        assert_eq!(append.outcome, Outcome::done(), "{anomaly}");
        assert!(append.invoked_at < flush_to, "{anomaly}");
        assert_eq!(
            Some(anomaly.ops[1]),
            finals.get(anomaly.key.as_str()).map(|(id, _)| *id),
            "{anomaly}"
        );
    }
    // And every append acknowledged before the flush, on a key read after
    // it, is reported.
    let mut expected = 0;
    for op in history.ops() {
        let Function::Append { key, value } = &op.f else {
            continue;
        };
        let acked_before =
            op.outcome == Outcome::done() && op.completed_at.is_some_and(|at| at < flush_from);
        let read_after = finals
            .get(key.as_str())
            .is_some_and(|(_, read)| read.invoked_at > flush_to);
        if acked_before && read_after {
            expected += 1;
            assert!(lost.contains_key(value), "append of {value} not reported");
        }
    }
    assert!(expected >= 50, "only {expected} appends to judge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_gives_no_wrong_ok_and_its_replica_loses_nothing_acknowledged() {
    let (mut primary, replica) = primary_with_replica().await;
    let (p, r) = (primary.address(), replica.address());
    let route = Route::Primary(Target::Role(vec![p.clone(), r.clone()]));
    let mut config = HistoryClientConfig::lists(route, "killed");
    config.registers = 3;
    config.read_fraction = 0.4;
    // Short: once the replica is promoted it has no replica of its own,
    // and every write waits this long to end `Unknown`.
    config.wait = Some(WaitFor {
        replicas: 1,
        timeout: Duration::from_millis(100),
    });
    let client = HistoryClient::start(config).await.unwrap();
    eventually("200 ok operations", || client.progress().ok >= 200).await;

    let kill_to = {
        primary.kill();
        client.now()
    };
    let failed = client.progress().fail;
    eventually("failures without a primary", || {
        client.progress().fail >= failed + 20
    })
    .await;
    let promote_from = client.now();
    let _: () = cmd(&r, &["REPLICAOF", "NO", "ONE"]).await;
    let before = client.progress().ok;
    eventually("20 ok operations on the new primary", || {
        client.progress().ok >= before + 20
    })
    .await;
    let run = client.stop().await.unwrap();
    let history = &run.history;
    println!("{}", run.counts);
    println!("{}", check_history(history, &RegisterConfig::default()));

    // Never a wrong Ok: the old primary answered only before it died, the
    // replica only once promoted, and nobody in between.
    for (id, op) in history.iter() {
        if !matches!(op.outcome, Outcome::Ok(_)) {
            continue;
        }
        let server = op.server.as_deref();
        let on_old = server == Some(p.as_str()) && op.invoked_at < kill_to;
        let on_new =
            server == Some(r.as_str()) && op.completed_at.is_some_and(|at| at > promote_from);
        assert!(on_old || on_new, "{id}: {op:?}");
    }
    let between: Vec<&Op> = history
        .ops()
        .iter()
        .filter(|op| op.invoked_at > kill_to && op.invoked_at < promote_from)
        .collect();
    assert!(between.len() >= 10);
    // A client still holding a connection to the dead primary sends on
    // it and reads no reply: unknown. Once it asks again, no server says
    // primary: failed.
    assert!(
        between
            .iter()
            .all(|op| !matches!(op.outcome, Outcome::Ok(_))),
        "without a primary nothing succeeds: {between:#?}"
    );
    assert!(
        between
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Fail(_)))
            .count()
            >= 10
    );
    assert!(run.counts.fail >= 10 && run.counts.unknown >= 1);
    unknown_ends_its_process(history);
    // The promoted replica has no replica: its writes are applied, never
    // acknowledged.
    let new_writes: Vec<&Op> = history
        .ops()
        .iter()
        .filter(|op| !op.f.is_read() && op.server.as_deref() == Some(r.as_str()))
        .collect();
    assert!(
        new_writes
            .iter()
            .all(|op| !matches!(op.outcome, Outcome::Ok(_))),
        "{new_writes:#?}"
    );
    assert!(
        new_writes
            .iter()
            .any(|op| matches!(&op.outcome, Outcome::Unknown(why) if why.contains("0 of 1"))),
        "{new_writes:#?}"
    );

    // Every append the old primary acknowledged is on the replica it
    // waited for: judged against reads on the new primary, none is lost.
    let report = check_list(history);
    assert_eq!(
        report.count(AnomalyKind::LostAppend),
        0,
        "{:#?}",
        report.anomalies
    );
    assert!(report.loss_fully_judged());
    let finals = final_reads(history);
    assert_eq!(finals.len(), 12);
    assert!(
        finals
            .values()
            .all(|(_, read)| read.server.as_deref() == Some(r.as_str())),
        "every list's loss is judged on the new primary"
    );
    assert!(report.counts.ok >= 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_history_spreads_over_every_shard_and_is_clean() {
    let cluster = ReferenceCluster::start(3, 1, 5000).await.unwrap();
    let primaries: BTreeSet<String> = (0..3).map(|s| cluster.primary(s).unwrap()).collect();
    let route = Route::Cluster {
        seeds: cluster.seeds(),
    };
    let mut config = HistoryClientConfig::lists(route, "sharded");
    config.registers = 3;
    config.read_fraction = 0.4;
    let run = run_for(config, Duration::from_millis(1500)).await.unwrap();
    println!("{}", run.counts);
    assert!(run.counts.ok >= 100, "{}", run.counts);

    let served: BTreeSet<String> = run
        .history
        .ops()
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Ok(_)))
        .filter_map(|op| op.server.clone())
        .collect();
    assert_eq!(served, primaries, "every shard serves hot keys");
    let summary = check_history(&run.history, &RegisterConfig::default());
    println!("{summary}");
    assert!(summary.valid(), "{summary}");
    assert!(summary.lists.loss_fully_judged());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_run_without_replicas_ends_by_itself_and_reads_every_key() {
    let alone = Server::start(&[]);
    let mut config = HistoryClientConfig::lists(fixed(&alone), "bounded");
    config.registers = 3;
    config.wait = None;
    config.max_ops = Some(200);
    config.pace = Duration::from_millis(1);
    let client = HistoryClient::start(config).await.unwrap();
    assert_eq!(client.keys().len(), 15);
    let run = tokio::time::timeout(Duration::from_secs(15), client.join())
        .await
        .expect("the run ends after its operations")
        .unwrap();
    // 200 workload operations, then one final read per key.
    assert_eq!(run.counts.ops, 215, "{}", run.counts);
    assert_eq!(run.counts.ok, 215, "{}", run.counts);
    let (workload, last) = run.history.ops().split_at(200);
    assert!(workload.iter().all(|op| op.process < 4));
    assert!(last.iter().all(|op| op.f.is_read() && op.process == 4));
    let keys: BTreeSet<&str> = last.iter().map(|op| op.f.key()).collect();
    assert_eq!(keys.len(), 15);
    let summary = check_history(&run.history, &RegisterConfig::default());
    assert!(summary.valid(), "{summary}");
    assert!(summary.lists.loss_fully_judged());
}

/// A TCP proxy whose backend can be switched: the connections it carries
/// are cut at a switch, so the client's next connection goes to the new
/// backend (as a Service's does once its endpoints moved).
struct Proxy {
    addr: String,
    backend: std::sync::Arc<parking_lot::Mutex<String>>,
    carried: std::sync::Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(backend: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let backend = std::sync::Arc::new(parking_lot::Mutex::new(backend));
        let carried = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (to, held) = (backend.clone(), carried.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = to.lock().clone();
                held.lock().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            backend,
            carried,
            accept,
        }
    }

    /// New connections go to `to`; the ones carried now are cut.
    fn switch(&self, to: String) {
        *self.backend.lock() = to;
        for task in self.carried.lock().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.switch(String::new());
    }
}

/// The operator's fence, played by hand: a primary's second replica stops
/// following (a replica of an address nobody answers, read-only, keeping
/// what it had), the clients are moved to it for a while, then back. Its
/// reads serve old lists, and the checker reports them as stale reads
/// (each lacks an append acknowledged before it began that a later read
/// has), with no loss; its register reads make the keys not linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serving_old_values_shows_as_stale_reads_and_not_linearizable() {
    let (primary, _replica) = primary_with_replica().await;
    let lagging = Server::start(&["--replicaof", "127.0.0.1", &primary.port()]);
    linked(&primary, 2).await;
    let proxy = Proxy::start(primary.address()).await;
    let mut config =
        HistoryClientConfig::lists(Route::Primary(Target::Fixed(proxy.addr.clone())), "stale");
    config.registers = 3;
    config.read_fraction = 0.5;
    let client = HistoryClient::start(config).await.unwrap();
    eventually("200 ok operations", || client.progress().ok >= 200).await;

    // The fence: the second replica keeps what it has and serves it.
    let _: () = cmd(&lagging.address(), &["REPLICAOF", "192.0.2.1", "6379"]).await;
    let before = client.progress().ok;
    eventually("200 more ok operations on the primary", || {
        client.progress().ok >= before + 200
    })
    .await;
    let stale_from = client.now();
    proxy.switch(lagging.address());
    let before = client.progress().ok;
    eventually("100 ok operations on the fenced node", || {
        client.progress().ok >= before + 100
    })
    .await;
    proxy.switch(primary.address());
    let stale_to = client.now();
    let before = client.progress().ok;
    eventually("200 more ok operations on the primary", || {
        client.progress().ok >= before + 200
    })
    .await;
    let run = client.stop().await.unwrap();
    let history = &run.history;
    let summary = check_history(history, &RegisterConfig::default());
    println!("{summary}");

    let lists = &summary.lists;
    let stale: Vec<_> = lists.of_kind(AnomalyKind::StaleRead).collect();
    assert!(!stale.is_empty(), "{:#?}", lists.anomalies);
    // Each stale read was served while the clients were on the fenced node.
    for anomaly in &stale {
        let read = history.get(anomaly.ops[0]).unwrap();
        assert!(
            read.invoked_at >= stale_from && read.invoked_at <= stale_to,
            "{anomaly}"
        );
    }
    // Nothing acknowledged was lost, nothing invented, nothing reordered:
    // an old list is a prefix of the new one.
    for kind in [
        AnomalyKind::LostAppend,
        AnomalyKind::Phantom,
        AnomalyKind::Duplicate,
        AnomalyKind::AbortedRead,
        AnomalyKind::Reordered,
    ] {
        assert_eq!(lists.count(kind), 0, "{kind}: {:#?}", lists.anomalies);
    }
    assert!(lists.loss_fully_judged());
    // The fenced node's register reads went back in time.
    assert!(
        summary.registers.illegal().next().is_some(),
        "{:#?}",
        summary.registers.keys
    );
}
