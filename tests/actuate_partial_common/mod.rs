//! What the tests of executors failing part-way share
//! (`tests/actuate_partial.rs`, `tests/actuate_partial_secrets.rs`): one
//! intent carried out by an [`Executor`] whose clients pass an armed
//! effect gate, against a localkube API server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use logbook::actuate::{ActError, Executor, Target};
use logbook::effects::{self, Action, Effects, Plan};
use logbook::resources::ClusterMeta;
use logbook::valkey::ValkeyClient;
use logbook_crds::ValkeyClusterSpec;
use logbook_journal::{ClusterState, Event, Intent};
use logbook_localkube::RunningServer;
use uuid::Uuid;

/// The namespace everything is in.
pub const NS: &str = "default";

/// The cluster `demo`.
pub fn meta() -> ClusterMeta {
    ClusterMeta {
        name: "demo".to_owned(),
        namespace: NS.to_owned(),
        uid: "uid-demo".to_owned(),
    }
}

/// The cluster `demo` with an owner that exists in `api`: what the
/// executor writes names the cluster as its owner, and the API server's
/// garbage collector deletes what names an owner uid it does not hold
/// (as a real one does). A ConfigMap stands in for the ValkeyCluster:
/// the collector looks at the uid only. For a test that reads back, after
/// a while, what an executor created.
pub async fn owned_meta(api: &RunningServer) -> ClusterMeta {
    use k8s_openapi::api::core::v1::ConfigMap;
    let owners: kube::Api<ConfigMap> = kube::Api::namespaced(plain_client(api), NS);
    let owner = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("demo-owner".to_owned()),
            ..Default::default()
        },
        ..ConfigMap::default()
    };
    let owner = owners
        .create(&kube::api::PostParams::default(), &owner)
        .await
        .unwrap();
    ClusterMeta {
        uid: owner.metadata.uid.unwrap(),
        ..meta()
    }
}

/// A client of `api` without the gate.
pub fn plain_client(api: &RunningServer) -> kube::Client {
    kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap()
}

/// A plan failing the `nth` effect of intents named `intent`.
pub fn fail(intent: &str, nth: u64) -> Plan {
    Plan {
        intent: Some(intent.to_owned()),
        nth,
        action: Action::Fail,
    }
}

/// Carries `intent` out for `target` with the gate armed with `plan`
/// (none: recording only) and recording to `log`, the Valkey client
/// `valkey` (its TLS settings and passwords) passing the gate too.
/// Returns the outcome (the facts of a success) and whether the plan's
/// fault fired.
pub async fn execute(
    api: &RunningServer,
    target: Target<'_>,
    valkey: &ValkeyClient,
    intent: &Intent,
    plan: Option<Plan>,
    log: &Path,
) -> (Result<Vec<Event>, ActError>, bool) {
    let gate = Effects::armed(plan, Some(log));
    let config = kube::Config::new(api.url().parse().unwrap());
    let client = effects::client_with(config, &gate).unwrap();
    let executor = Executor::new(client, valkey.with_effects(gate.clone()));
    let outcome = effects::within(
        intent.name(),
        Uuid::now_v7(),
        executor.execute(intent, target),
    )
    .await
    .map(|done| done.events);
    (outcome, gate.fired())
}

/// `Target` of `state` for the cluster `meta` with `spec`.
pub fn target<'a>(
    meta: &'a ClusterMeta,
    spec: &'a ValkeyClusterSpec,
    state: &'a ClusterState,
) -> Target<'a> {
    Target {
        meta,
        spec,
        state,
        interrupt: None,
    }
}
