//! The short soak of `make test`: every topology in turn, on localkube with
//! real `valkey-server` pods and a real operator process, under a seeded
//! schedule of faults (process kills, pod deletions, freezes, partitions,
//! wiped volumes, operator kills, scaling, rolls, reshards, switchovers),
//! with every invariant of `logbook_bench::soak` checked, and the recorded
//! history of lists and registers judged against the client promises
//! (`logbook_bench::soak::history`). The long soak is `logbook-bench soak`
//! (docs/robustness.md).
//!
//! `LOGBOOK_SOAK_SEED` and `LOGBOOK_SOAK_SECONDS` change the seed and the
//! seconds of faults per topology; a failure prints the command that
//! runs the same schedule again and keeps the journal and every log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use logbook_bench::soak::schedule::SoakTopology;
use logbook_bench::soak::{SoakConfig, render, run_soak};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topology_keeps_its_invariants_through_a_seeded_soak() {
    let seed = env_u64("LOGBOOK_SOAK_SEED", 20_261_124);
    let seconds = env_u64("LOGBOOK_SOAK_SECONDS", 30);
    let mut reports = Vec::new();
    for topology in SoakTopology::ALL {
        let config = SoakConfig {
            topology,
            seed,
            duration: Duration::from_secs(seconds),
            interval: Duration::from_secs(5),
            binary: env!("CARGO_BIN_EXE_logbook").into(),
            converge: Duration::from_secs(180),
            keep: false,
            control_plane: logbook_bench::soak::ControlPlane::Local,
            history: logbook_bench::soak::history::HistoryLoad::default(),
        };
        let report = run_soak(&config).await.unwrap_or_else(|e| {
            panic!(
                "{}: the soak could not run: {e}\nreproduce: {}",
                topology.name(),
                config.command()
            )
        });
        eprintln!("{}", render(std::slice::from_ref(&report)));
        // A soak that injected nothing proved nothing.
        assert!(
            report.injected.values().sum::<u32>() >= 3,
            "{}: too few faults injected: {:?}",
            topology.name(),
            report.injected
        );
        assert!(
            report.acknowledged > 100,
            "{}: {} writes acknowledged",
            topology.name(),
            report.acknowledged
        );
        // A history too short to show anything proved nothing either.
        let history = report.history.clone().unwrap_or_default();
        assert!(
            history.ops > 1_000 && history.reads > 300,
            "{}: history of {} operations ({} reads)",
            topology.name(),
            history.ops,
            history.reads
        );
        reports.push(report);
    }
    let failed: Vec<_> = reports.iter().filter(|r| !r.passed()).collect();
    assert!(failed.is_empty(), "{}", render(&reports));
}
