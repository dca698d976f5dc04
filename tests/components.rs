//! The tests of the parts on their own (the Valkey client and actuators
//! on real servers, the journal stores, the CLI, the chart's install, the
//! images, the start script, replay's golden journals), one test binary
//! run in the main lane of `make test` (scripts/cargo-test.sh).
//!
//! Each module is a suite: `cargo test --test components -- <suite>::` runs one.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod actuate_partial_common;
mod s3_server;
mod valkey_server;

mod actuate_partial;
mod actuate_partial_secrets;
mod actuate_reshard;
mod actuate_sentinel;
mod archive_follow;
mod backup_manifest_fence;
mod backup_transfer;
mod cli;
mod controller_on_localkube;
mod docs_catalog;
mod helm_install;
mod images;
mod journal_both;
mod journal_repair;
mod lead_regained;
mod leader_election;
mod local_cluster;
mod operator_outage;
mod pitr_restore;
mod replay_golden;
mod spec_objects;
mod start_script;
mod valkey_client;
mod valkey_cluster_client;
mod valkey_cluster_migrate;
mod valkey_sentinel;
mod valkey_tls;
