//! The operator's end-to-end suites of the main lane of `make test`
//! (scripts/cargo-test.sh), one test binary: each suite a module, the
//! harness (`operator_common`) compiled once.
//!
//! Each module is a suite: `cargo test --test main_lane -- <suite>::` runs one.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod operator_common;

mod cluster_surface;
mod conversion_webhook;
mod kubectl_plugin;
mod kubectl_plugin_certificate;
mod node_outside;
mod operator_binding;
mod operator_changes;
mod operator_defaults;
mod operator_disruptions;
mod operator_external_nodes;
mod operator_failover_request;
mod operator_fencing;
mod operator_hibernate;
mod operator_idle;
mod operator_internal_users;
mod operator_journal;
mod operator_lifecycle;
mod operator_logs;
mod operator_metrics;
mod operator_nodes;
mod operator_placement;
mod operator_replication;
mod operator_reshard;
mod operator_restart;
mod operator_restart_request;
mod operator_sentinel;
mod operator_standby;
mod operator_tls;
mod operator_upgrade;
mod operator_users;
mod replay_golden_record;
mod replay_live;
// `kubectl valkey backup` (kubectl_plugin) backs up to moto's S3.
mod s3_server;
mod tenant;
mod ui;
mod ui_auth;
