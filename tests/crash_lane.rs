//! The crash lane of `make test` (scripts/cargo-test.sh): the crash sweeps
//! of the newer workloads, backups and restores, the chart's checks and the
//! stale-state sweeps, one test binary.
//!
//! Each module is a suite: `cargo test --test crash_lane -- <suite>::` runs one.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "operator_crash/cluster.rs"]
mod cluster;
mod operator_common;
mod s3_server;
#[path = "operator_crash/scenario.rs"]
mod scenario;
#[path = "operator_crash/sweep.rs"]
mod sweep;
#[path = "operator_crash/topology.rs"]
mod topology;

mod helm_chart;
mod operator_backup;
mod operator_crash;
mod operator_pitr;
mod stale_state;
