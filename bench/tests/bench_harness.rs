//! The bench harness against real valkey-server processes on 127.0.0.1,
//! and a tiny run of the restart bench (localkube only).
//!
//! No assertion is about how long anything took: these machines are noisy.
//! The tests check that windows exist, are positive, and that no
//! acknowledged write is lost; the restart run, that every load gives the
//! seeded projection with the requests each load path should send.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use logbook_bench::{
    BenchError, Fault, RunResult, Switch, Target, WriteProbe, WriteProbeConfig, missing_keys,
    run_failover_to_reference, run_sentinel_reference, run_switchover_reference,
};

// The operator's tests' helper, shared rather than copied.
#[path = "../../tests/valkey_server/mod.rs"]
mod valkey_server;
use valkey_server::Server;

async fn raw(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Polls `check` every 20 ms for up to 15 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_records_acknowledged_writes_that_read_back() {
    let server = Server::start(&[]);
    let probe = WriteProbe::start(WriteProbeConfig::fixed(server.address(), "probe"));
    eventually("50 acknowledged writes", || probe.acked_count() >= 50).await;
    let log = probe.stop().await;

    let acked = log.acked_keys();
    assert!(acked.len() >= 50);
    assert_eq!(log.prefix, "probe");
    assert_eq!(log.successful_writes(), acked.len(), "no WAIT: ok is acked");
    assert!(
        log.attempts
            .iter()
            .all(|a| a.server.as_deref() == Some(server.address().as_str()))
    );
    let missing = missing_keys(&server.address(), None, "probe", &acked)
        .await
        .unwrap();
    assert_eq!(missing, Vec::<u64>::new());

    // A key that is gone, or holds another value, is reported.
    let mut conn = raw(&server.address()).await;
    let gone = acked[3];
    let changed = acked[7];
    let _: () = redis::cmd("DEL")
        .arg(format!("probe:{gone}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("probe:{changed}"))
        .arg("other")
        .query_async(&mut conn)
        .await
        .unwrap();
    let missing = missing_keys(&server.address(), None, "probe", &acked)
        .await
        .unwrap();
    assert_eq!(missing, vec![gone, changed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_writer_acknowledges_only_replicated_writes() {
    let alone = Server::start(&[]);
    let mut config = WriteProbeConfig::fixed(alone.address(), "lonely");
    config.wait_replicas = true;
    let probe = WriteProbe::start(config);
    eventually("3 attempts", || probe.snapshot().attempts.len() >= 3).await;
    let log = probe.stop().await;
    assert!(log.successful_writes() >= 1, "SET works without replicas");
    assert_eq!(log.acked_keys(), Vec::<u64>::new(), "WAIT 1 returns 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_around_a_killed_primary_ends_on_the_promoted_replica() {
    let mut primary = Server::start(&[]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &primary.port()]);
    let mut config = WriteProbeConfig::new(
        Target::Role(vec![primary.address(), replica.address()]),
        "killed",
    );
    config.wait_replicas = true;
    let probe = WriteProbe::start(config);
    eventually("20 acknowledged writes", || probe.acked_count() >= 20).await;

    let fault = Instant::now();
    primary.kill();
    // Promote only once a write has failed: with no primary, writes must
    // fail, and promoting at once could race the probe's next attempt.
    eventually("a failed write while no primary", || {
        probe.snapshot().failed_writes() >= 1
    })
    .await;
    let mut conn = raw(&replica.address()).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually("a write on the promoted replica", || {
        probe
            .first_success_after(fault, Some(&primary.address()))
            .is_some()
    })
    .await;
    let log = probe.stop().await;

    let window = log.window_around(fault).expect("a window");
    assert!(window > Duration::ZERO);
    assert_eq!(log.pause_around(fault, &replica.address()), Some(window));
    assert!(log.failed_writes() >= 1, "writes failed while no primary");
    let missing = missing_keys(&replica.address(), None, "killed", &log.acked_keys())
        .await
        .unwrap();
    assert_eq!(missing, Vec::<u64>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_after_a_kill_loses_no_acknowledged_write() {
    let results = tokio::time::timeout(
        Duration::from_secs(60),
        run_sentinel_reference(Fault::Kill, 1000, 1),
    )
    .await
    .expect("the run to finish within 60 s")
    .unwrap();
    assert_eq!(results.len(), 1);
    let run = results[0];
    eprintln!("sentinel kill D=1000: {run:?}");
    assert!(run.window > Duration::ZERO);
    assert!(run.acked >= 50);
    assert_eq!(run.lost_acked, 0);
    assert!(run.failovers >= 1);
}

/// Two runs of a switchover under the writer, each one failover with no
/// acknowledged write lost.
async fn two_clean_switchovers(
    runs: impl std::future::Future<Output = Result<Vec<RunResult>, BenchError>>,
    label: &str,
) {
    let results = tokio::time::timeout(Duration::from_secs(60), runs)
        .await
        .expect("the runs to finish within 60 s")
        .unwrap();
    assert_eq!(results.len(), 2);
    for run in results {
        eprintln!("{label}: {run:?}");
        assert!(run.window > Duration::ZERO);
        assert!(run.acked >= 50);
        assert_eq!(run.lost_acked, 0);
        assert_eq!(run.failovers, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_to_switchover_loses_no_acknowledged_write() {
    two_clean_switchovers(run_failover_to_reference(2), "FAILOVER TO").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switchover_by_hand_loses_no_acknowledged_write() {
    two_clean_switchovers(run_switchover_reference(Switch::ByHand, 2), "by hand").await;
}

/// The quick table: `cargo test -p logbook-bench --test bench_harness -- --ignored
/// --nocapture`. Ignored because it takes about a minute, not because it
/// asserts anything about time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn quick_numbers() {
    use logbook_bench::{Row, render_table};
    let mut rows = Vec::new();
    for (fault, down_after, runs) in [
        (Fault::Kill, 1000, 3),
        (Fault::Kill, 5000, 1),
        (Fault::Freeze, 1000, 1),
    ] {
        let results = run_sentinel_reference(fault, down_after, runs)
            .await
            .unwrap();
        eprintln!("sentinel {} D={down_after}: {results:?}", fault.name());
        rows.push(Row::from_results(
            format!("sentinel {} D={down_after}", fault.name()),
            &results,
        ));
    }
    let results = run_failover_to_reference(5).await.unwrap();
    eprintln!("FAILOVER TO: {results:?}");
    rows.push(Row::from_results("FAILOVER TO", &results));
    eprintln!("{}", render_table(&rows));
}

/// `logbook-bench restart` at a tiny size (3 clusters x 300 events, a
/// snapshot every 100, segments sealed at 2 KiB so loads read sealed
/// segments too). The run itself fails when a load differs from the
/// seeded projection; here, the requests of each load path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restart_bench_loads_every_seeded_projection() {
    use logbook_bench::restart::{LoadMode, RestartConfig, run_restart};
    let config = RestartConfig {
        clusters: 3,
        events: 300,
        snapshot_every: 100,
        repetitions: 1,
        concurrency: 2,
        seal_bytes: 2048,
    };
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        run_restart(config, &mut |line| eprintln!("{line}")),
    )
    .await
    .expect("the run to finish within 60 s")
    .unwrap();
    eprintln!("{}", report.render());
    assert!(report.seed.snapshots >= 3, "{:?}", report.seed);
    assert!(report.seed.segments >= 3, "{:?}", report.seed);
    let runs = |mode| report.modes.iter().find(|r| r.mode == mode).unwrap();
    for mode in LoadMode::ALL {
        let runs = runs(mode);
        assert_eq!(runs.passes.len(), 1);
        assert_eq!(runs.passes[0].clusters.len(), 3);
        assert_eq!(runs.requests.other, 0, "{mode:?}: {:?}", runs.requests);
    }
    // Every stream has a snapshot. The store reads the head for `head` and
    // again for the `read` of the tail; a pinned view reads it once.
    let plain = &runs(LoadMode::Snapshot).requests;
    let pinned = &runs(LoadMode::Pinned).requests;
    assert_eq!((plain.head_gets, plain.snapshot_gets), (6, 3));
    assert_eq!((pinned.head_gets, pinned.snapshot_gets), (3, 3));
    assert_eq!(pinned.segment_gets, plain.segment_gets);
    let from_start = runs(LoadMode::FromStart);
    assert!(from_start.requests.segment_gets >= 3);
    assert!(
        from_start.passes[0]
            .clusters
            .iter()
            .all(|c| c.folded == 300)
    );
}
