//! Executors that fail part-way journal what they already changed: each
//! test runs one intent's executor against real servers on pod addresses
//! and a localkube API server, with the effect gate (`logbook::effects`)
//! failing one of its effects, and checks that the failure carries every
//! fact the servers and the API show — nothing the projection would then
//! believe less than.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use logbook::actuate::ActError;
use logbook::effects::{self, Plan};
use logbook::resources::ClusterMeta;
use logbook::valkey::{Timeouts, ValkeyClient};
use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::projection::PodView;
use logbook_journal::{ClusterState, Event, Intent, Role};
use logbook_localkube::instance::Instance;
use logbook_localkube::{Config, LocalKube, RunningServer};

use crate::actuate_partial_common;
use crate::valkey_server;
use actuate_partial_common::{self as common, NS, fail, plain_client};
use valkey_server::Server;

/// A primary and a replica on pod addresses, their Pod objects labelled
/// as the operator left them, and the projection an operator holds.
struct Fixture {
    _instance: Instance,
    api: RunningServer,
    servers: Vec<Server>,
    meta: ClusterMeta,
    spec: ValkeyClusterSpec,
    state: ClusterState,
}

impl Fixture {
    async fn start() -> Fixture {
        let instance = Instance::acquire(&Instance::default_lock_dir()).unwrap();
        let servers: Vec<Server> = (0..2)
            .map(|i| Server::start_at(instance.pod_ip(i).unwrap(), &[]))
            .collect();
        let admin = patient();
        admin
            .replicaof(servers[1].addr, Some(servers[0].addr))
            .await
            .unwrap();
        let api = LocalKube::start(Config::default()).await.unwrap();
        let client = plain_client(&api);
        let pods: Api<Pod> = Api::namespaced(client, NS);
        let mut state = ClusterState::default();
        for (i, (server, role)) in servers
            .iter()
            .zip([Role::Primary, Role::Replica])
            .enumerate()
        {
            let name = format!("demo-{i}");
            let label = if role == Role::Primary {
                "primary"
            } else {
                "replica"
            };
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "labels": { logbook::resources::labels::ROLE: label },
                },
                "spec": { "containers": [{ "name": "valkey", "image": "valkey" }] },
            }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
            state.pods.insert(
                name,
                PodView {
                    ip: Some(server.addr.ip().to_string()),
                    role: Some(role),
                    role_label: Some(role),
                    reachability: Some(logbook_journal::Reachability::Reachable),
                    ..PodView::default()
                },
            );
        }
        eventually_synced(&admin, &servers[1]).await;
        Fixture {
            _instance: instance,
            api,
            servers,
            meta: common::meta(),
            spec: ValkeyClusterSpec::with_topology(Topology::Replication),
            state,
        }
    }

    /// Carries `intent` out with the gate armed with `plan`; returns the
    /// outcome and whether the plan's fault fired.
    async fn execute(
        &self,
        intent: &Intent,
        plan: Plan,
        log: &Path,
    ) -> (Result<Vec<Event>, ActError>, bool) {
        let valkey = ValkeyClient::new(Timeouts::default(), None);
        let target = common::target(&self.meta, &self.spec, &self.state);
        common::execute(&self.api, target, &valkey, intent, Some(plan), log).await
    }

    async fn role_labels(&self) -> BTreeMap<String, String> {
        let pods: Api<Pod> = Api::namespaced(plain_client(&self.api), NS);
        let mut labels = BTreeMap::new();
        for name in ["demo-0", "demo-1"] {
            let pod = pods.get(name).await.unwrap();
            let role = pod
                .metadata
                .labels
                .unwrap_or_default()
                .get(logbook::resources::labels::ROLE)
                .cloned()
                .unwrap_or_default();
            labels.insert(name.to_owned(), role);
        }
        labels
    }

    async fn roles(&self) -> Vec<String> {
        let admin = patient();
        let mut roles = Vec::new();
        for s in &self.servers {
            let info = admin.info_replication(s.addr).await.unwrap();
            roles.push(
                if info.primary.is_some() {
                    "replica"
                } else {
                    "primary"
                }
                .to_owned(),
            );
        }
        roles
    }
}

/// A client for the test's own checks: as patient as a busy shared
/// machine needs (the client under test keeps the operator's timeouts).
fn patient() -> ValkeyClient {
    ValkeyClient::new(
        Timeouts {
            connect: std::time::Duration::from_secs(5),
            command: std::time::Duration::from_secs(10),
        },
        None,
    )
}

async fn eventually_synced(admin: &ValkeyClient, replica: &Server) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // A replica loading its first sync may miss a deadline on a busy
        // machine: only the overall deadline fails the test.
        let info = admin.info_replication(replica.addr).await;
        if info
            .as_ref()
            .is_ok_and(|i| i.primary.as_ref().is_some_and(|l| l.link_up))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never synced: {info:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn switchover() -> Intent {
    Intent::Switchover {
        from: "demo-0".to_owned(),
        to: "demo-1".to_owned(),
    }
}

fn promoted(facts: &[Event]) -> bool {
    facts.iter().any(|e| {
        matches!(e, Event::ReplicaPromoted { pod, from, .. }
            if pod == "demo-1" && from.as_deref() == Some("demo-0"))
    })
}

fn labelled(facts: &[Event], pod: &str, role: Role) -> bool {
    facts.iter().any(|e| {
        matches!(e, Event::RoleLabelObserved { pod: p, label } if p == pod && *label == Some(role))
    })
}

/// The effects of a switchover, in order: `CLIENT PAUSE` (1), `REPLICAOF
/// NO ONE` on the target (2), `REPLICAOF` of the old primary (3), the old
/// primary's label (4), the new one's (5), `CLIENT UNPAUSE` (6). A failure
/// at 4 or 5 comes after the promotion: it must carry it, and that the old
/// primary follows the new one. A failure at 3 is tried again at once (an
/// idempotent `REPLICAOF`), and the switchover carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_that_fails_after_the_promotion_journals_it() {
    let dir = tempfile::tempdir().unwrap();
    for nth in [3, 4, 5] {
        let fixture = Fixture::start().await;
        if nth == 3 {
            let log = dir.path().join("effects-3.jsonl");
            let (outcome, fired) = fixture
                .execute(&switchover(), fail("Switchover", 3), &log)
                .await;
            assert!(fired);
            let what: Vec<String> = effects::read_log(&log)
                .into_iter()
                .map(|r| r.what)
                .collect();
            assert!(
                outcome.is_ok() && what[3].starts_with("REPLICAOF"),
                "a failed repointing is tried again: {what:?}"
            );
            assert_eq!(fixture.roles().await, ["replica", "primary"]);
            continue;
        }
        let log = dir.path().join(format!("effects-{nth}.jsonl"));
        let (outcome, fired) = fixture
            .execute(&switchover(), fail("Switchover", nth), &log)
            .await;
        assert!(fired, "effect {nth} of a switchover was never reached");
        let records = effects::read_log(&log);
        let what: Vec<&str> = records.iter().map(|r| r.what.as_str()).collect();
        let mut err = outcome.expect_err("an injected failure must fail the switchover");
        let facts = err.take_facts();
        assert!(
            promoted(&facts),
            "effect {nth} ({}) failed after demo-1 was promoted, and the failure does not say so: {facts:?}",
            what[nth as usize - 1]
        );
        // The servers agree with the facts: demo-1 is a primary; demo-0
        // follows it unless its repointing failed (3), and the facts say
        // which.
        let roles = fixture.roles().await;
        assert_eq!(roles[1], "primary");
        let follows = facts.iter().any(|e| {
            matches!(e, Event::NodeRoleObserved { pod, role: Role::Replica, primary }
                if pod == "demo-0" && primary.as_deref() == Some("demo-1"))
        });
        assert_eq!(roles[0] == "replica", follows, "effect {nth}: {facts:?}");
        assert!(follows, "effect {nth}: {facts:?}");
        // Its writes are released only once it follows: never on a second
        // primary. (The unpause is the effect after the failure.)
        let unpaused = what.iter().any(|w| w.starts_with("CLIENT UNPAUSE"));
        assert_eq!(unpaused, follows, "effect {nth}: effects {what:?}");
        // What the labels show is what the facts say, no more, no less:
        // a failed write was not sent.
        let labels = fixture.role_labels().await;
        assert_eq!(
            labelled(&facts, "demo-0", Role::Replica),
            labels["demo-0"] == "replica"
        );
        assert_eq!(
            labelled(&facts, "demo-1", Role::Primary),
            labels["demo-1"] == "primary"
        );
        assert_eq!(
            labels["demo-0"] == "replica",
            nth > 4,
            "effect {nth}: {labels:?}"
        );
    }
}

/// A failure before the promotion changes nothing, and says nothing was
/// promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_that_fails_before_the_promotion_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::start().await;
    let log = dir.path().join("effects.jsonl");
    let (outcome, fired) = fixture
        .execute(&switchover(), fail("Switchover", 2), &log)
        .await;
    assert!(fired);
    let mut err = outcome.unwrap_err();
    assert!(!promoted(&err.take_facts()));
    assert_eq!(fixture.roles().await, ["primary", "replica"]);
    // Writes were released.
    let mut conn = redis::Client::open(format!("redis://{}", fixture.servers[0].addr))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let set: redis::RedisResult<()> = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut conn)
        .await;
    assert!(
        set.is_ok(),
        "writes still held after the failed switchover: {set:?}"
    );
}

/// A pod the projection still holds but the API server no longer does
/// (deleted, its deletion not yet seen by the watch): labelling it finds
/// it gone, and the outcome journals its deletion, so the next pass does
/// not decide to label it again (a scale-in once did, every 250 ms, until
/// the watch caught up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelling_a_pod_that_is_gone_journals_that_it_is_gone() {
    let mut fixture = Fixture::start().await;
    fixture.state.pods.insert(
        "demo-2".to_owned(),
        PodView {
            role_label: Some(Role::Primary),
            ..PodView::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let valkey = ValkeyClient::new(Timeouts::default(), None);
    let target = common::target(&fixture.meta, &fixture.spec, &fixture.state);
    let intent = Intent::SetRoleLabels {
        primary: Some("demo-1".to_owned()),
    };
    let (outcome, _) = common::execute(
        &fixture.api,
        target,
        &valkey,
        &intent,
        None,
        &dir.path().join("effects.jsonl"),
    )
    .await;
    let facts = outcome.expect("a pod that is gone is not a failure");
    assert!(
        facts
            .iter()
            .any(|e| matches!(e, Event::PodDeleted { pod } if pod == "demo-2")),
        "demo-2 is gone and the outcome does not say so: {facts:?}"
    );
    assert!(labelled(&facts, "demo-1", Role::Primary), "{facts:?}");
    assert!(labelled(&facts, "demo-0", Role::Replica), "{facts:?}");
    let labels = fixture.role_labels().await;
    assert_eq!(labels["demo-0"], "replica");
    assert_eq!(labels["demo-1"], "primary");
}

/// `Announce` telling demo-1, at `pod_ip`, to announce a node port.
fn announce_outside(pod_ip: String) -> Intent {
    Intent::Announce {
        pod: "demo-1".to_owned(),
        pod_ip,
        endpoint: Some(logbook_journal::ExternalEndpoint {
            host: "192.0.2.10".to_owned(),
            port: 31_000,
            bus_port: None,
        }),
    }
}

fn announced(facts: &[Event]) -> Option<&str> {
    facts.iter().find_map(|e| match e {
        Event::AnnouncedAddressObserved { pod, announced } if pod == "demo-1" => {
            Some(announced.as_str())
        }
        _ => None,
    })
}

/// The effects of `Announce` on a replica of an exposed Sentinel cluster:
/// `CONFIG SET replica-announce-*` (1), then `CLIENT KILL TYPE master`
/// (2), which makes its primary learn it. A failure at 2 comes after the
/// settings took: the failure carries what the replica announces now, as
/// the server shows it. A failure at 1 set nothing and says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announce_that_fails_after_its_settings_journals_them() {
    let dir = tempfile::tempdir().unwrap();
    for nth in [1, 2] {
        let mut fixture = Fixture::start().await;
        fixture.spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
        fixture.state.external.enabled = true;
        let intent = announce_outside(fixture.servers[1].addr.ip().to_string());
        let log = dir.path().join(format!("announce-{nth}.jsonl"));
        let (outcome, fired) = fixture.execute(&intent, fail("Announce", nth), &log).await;
        assert!(fired, "effect {nth} of an Announce was never reached");
        let what: Vec<String> = effects::read_log(&log)
            .into_iter()
            .map(|r| r.what)
            .collect();
        assert!(
            what.iter().any(|w| w.starts_with("CLIENT KILL")) == (nth == 2),
            "the replica's reconnection is an effect: {what:?}"
        );
        let mut err = outcome.expect_err("an injected failure must fail the Announce");
        let facts = err.take_facts();
        let admin = patient();
        let shown = admin
            .config_get_matching(fixture.servers[1].addr, "replica-announce-ip")
            .await
            .unwrap();
        if nth == 1 {
            assert_eq!(announced(&facts), None, "{facts:?}");
            assert_eq!(shown["replica-announce-ip"], "");
        } else {
            assert_eq!(
                announced(&facts),
                Some("192.0.2.10:31000"),
                "effect 2 failed after the settings took, and the failure does not say so: {facts:?}"
            );
            assert_eq!(shown["replica-announce-ip"], "192.0.2.10");
        }
    }
}
