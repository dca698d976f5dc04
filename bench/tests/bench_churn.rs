//! Smoke run of `logbook-bench churn`: real runtimes journaling into real
//! ConfigMaps of an in-process localkube. Group commit must hold a cluster
//! to about one write per second under 10 observations/s, and the
//! write-through reference must write about once per observation — so the
//! measurement itself is checked, not just its output format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use logbook_bench::churn::{ChurnConfig, render, run_churn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_holds_a_churning_cluster_to_one_write_per_second() {
    let duration = Duration::from_secs(6);
    let report = run_churn(ChurnConfig {
        clusters: 2,
        rate: 10,
        duration,
        group_commit: Duration::from_secs(1),
    })
    .await
    .unwrap();
    eprintln!("{}", render(&report));
    let minutes = duration.as_secs_f64() / 60.0;
    let grouped_writes = report.grouped.appends_per_minute * minutes;
    let through_writes = report.write_through.appends_per_minute * minutes;
    // One write per second, plus the first (nothing to wait for) and the
    // final flush.
    assert!(
        grouped_writes <= duration.as_secs_f64() + 2.0,
        "{grouped_writes} writes per cluster in {duration:?}"
    );
    assert!(grouped_writes >= duration.as_secs_f64() - 1.0);
    // Write-through: one write per observation.
    assert!(
        through_writes >= report.write_through.observations as f64 * 0.9,
        "{through_writes} writes for {} observations",
        report.write_through.observations
    );
    // The API server saw the same writes the runtimes made.
    assert!(
        (report.grouped.api_writes_per_minute - report.grouped.appends_per_minute).abs()
            <= report.grouped.appends_per_minute * 0.2 + 1.0,
        "{report:?}"
    );
}
