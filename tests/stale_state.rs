//! Unobserved and stale state: the operator must not act on what it cannot
//! see as if it had seen it, nor on an older view of the API than the one
//! its journal already holds.
//!
//! The operator runs as a real process (`logbook operator`, ConfigMap
//! journals) whose kubeconfig points at a [`LaggingProxy`] in front of
//! localkube. For each kind it watches, two plans on one Replication
//! cluster (3 pods, a client writing with `WAIT 1` throughout):
//!
//! - **hold** (unobserved state): the proxy withholds the watch events of
//!   one object or of the kind, and answers its GETs and lists as they
//!   were, while a trigger changes it; the plan checks what the operator
//!   did not do meanwhile, then releases the events.
//! - **stale** (stale state): the proxy records the kind's view, the
//!   trigger changes it and the operator journals the change, then the
//!   operator is restarted onto an API server whose view of the kind is
//!   the recorded, older one (Sieve's "time travel"); the plan checks what
//!   it did not do meanwhile, then reconnects it to the live server.
//!
//! After each plan, the oracles: the cluster converges to the spec (Ready
//! on its generation, the status, the role labels and every pod's `ROLE`
//! agreeing on one primary); no acknowledged write is lost; never two
//! primaries (every pod asked `ROLE` every 100 ms over the whole run, but
//! for the moments of a planned switchover); nothing left in flight; the
//! journal verifies and `replay audit` is clean. A failing plan prints the
//! command that runs its kind's plans alone
//! (`LOGBOOK_TEST_STALE_KINDS=<kind>`).
//!
//! The plans, per kind, are listed in `docs/robustness.md` ("Unobserved
//! and stale state"). localkube only: the proxy speaks plain HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "stale_state/bench.rs"]
mod bench;
#[path = "stale_state/lagging_proxy/mod.rs"]
mod lagging_proxy;
use crate::operator_common;
#[path = "stale_state/owned.rs"]
mod owned;
use crate::s3_server;
use crate::sweep;
use crate::topology;
#[path = "stale_state/users.rs"]
mod users;
#[path = "stale_state/workloads.rs"]
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bench::*;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use lagging_proxy::{LaggingProxy, Target, View};
use logbook_bench::WriteProbe;
use logbook_crds::{BackupPhase, ValkeyBackup, ValkeyUser};
use logbook_journal::{Envelope, Event, Intent};
use operator_common::*;
use owned::*;
use sweep::{BUCKET, POLICIES, S3_SECRET, put_password, put_s3_secret, update_revision};
use topology::{ClaimMonitor, Topology};
use users::*;
use workloads::*;

/// The cluster every plan runs on.
const NAME: &str = "demo";
/// Set to kinds (`Pod,Secret`), only their plans run.
const KINDS_ENV: &str = "LOGBOOK_TEST_STALE_KINDS";
/// How long a plan keeps the operator blind, or behind, before it checks
/// what the operator did meanwhile.
const WINDOW: Duration = Duration::from_secs(3);
/// The sample user's password Secret and key (`config/samples/user.yaml`).
const APP_SECRET: &str = "app-password";

/// The kinds the operator watches, in the order their plans run.
const KINDS: [&str; 9] = [
    "ValkeyCluster",
    "Pod",
    "StatefulSet",
    "Service",
    "ConfigMap",
    "PodDisruptionBudget",
    "Secret",
    "ValkeyUser",
    "ValkeyBackup",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unobserved_and_stale_state_of_every_watched_kind() {
    let wanted: Option<Vec<String>> = std::env::var(KINDS_ENV)
        .ok()
        .map(|v| v.split(',').map(|k| k.trim().to_owned()).collect());
    let runs = |kind: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|k| k == kind));
    let started = Instant::now();
    let mut b = Bench::start().await;
    eprintln!("---- setup took {:?}", started.elapsed());
    for kind in KINDS {
        if !runs(kind) {
            continue;
        }
        let lower = kind.to_lowercase();
        let plan = b.begin(kind, &format!("{lower}-hold"));
        let note = match kind {
            "ValkeyCluster" => cluster_hold(&mut b).await,
            "Pod" => pod_hold(&mut b).await,
            "StatefulSet" => statefulset_hold(&mut b).await,
            "Service" => service_hold(&mut b).await,
            "ConfigMap" => configmap_hold(&mut b).await,
            "PodDisruptionBudget" => pdb_hold(&mut b).await,
            "Secret" => secret_hold(&mut b).await,
            "ValkeyUser" => user_hold(&mut b).await,
            _ => backup_hold(&mut b).await,
        };
        b.end(plan, note);
        let plan = b.begin(kind, &format!("{lower}-stale"));
        let note = match kind {
            "ValkeyCluster" => cluster_stale(&mut b).await,
            "Pod" => pod_stale(&mut b).await,
            "StatefulSet" => statefulset_stale(&mut b).await,
            "Service" => service_stale(&mut b).await,
            "ConfigMap" => configmap_stale(&mut b).await,
            "PodDisruptionBudget" => pdb_stale(&mut b).await,
            "Secret" => secret_stale(&mut b).await,
            "ValkeyUser" => user_stale(&mut b).await,
            _ => backup_stale(&mut b).await,
        };
        b.end(plan, note);
    }
    let polls = b.monitor.polls();
    eprintln!(
        "{} plans in {:?}; ROLE asked of every pod {polls} times:",
        b.outcomes.len(),
        started.elapsed()
    );
    for o in &b.outcomes {
        eprintln!("  {:<28} {:>7.1?}  {}", o.plan, o.took, o.note);
    }
    let Bench {
        env,
        operator,
        probe,
        monitor,
        ..
    } = b;
    drop(probe);
    monitor.stop();
    if let Some(op) = operator {
        op.stop(&env, NAME, false).await;
    }
    env.finish().await;
}
