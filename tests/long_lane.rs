//! The long lane of `make test` (scripts/cargo-test.sh): the short effect
//! sweeps (one test at a time), the short soak, the longest end-to-end
//! suites, and every sample of config/samples/ applied and waited for
//! (`samples`), one test binary.
//!
//! Each module is a suite: `cargo test --test long_lane -- <suite>::` runs one.
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

mod effect_faults;
mod operator_cluster;
mod operator_exporter;
mod operator_external;
mod operator_external_lb;
mod operator_network_policy;
mod operator_reshard_classic;
mod samples;
mod soak;
mod spec_trials;
