//! A healthy idle cluster costs nothing: over one idle minute, no API write
//! and no journal append. In a file of its own so that no other test runs
//! beside it (cargo runs test binaries one at a time): a probe timing out
//! because the machine is busy is a real observation, and would be journaled.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use operator_common::*;

/// The kinds whose objects the idle check lists.
fn kinds() -> Vec<ApiResource> {
    let core = |kind: &str, plural: &str| ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let grouped = |group: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    };
    vec![
        core("Pod", "pods"),
        core("Service", "services"),
        core("Endpoints", "endpoints"),
        core("ConfigMap", "configmaps"),
        core("Secret", "secrets"),
        core("PersistentVolumeClaim", "persistentvolumeclaims"),
        core("Event", "events"),
        grouped("apps", "StatefulSet", "statefulsets"),
        grouped("apps", "ControllerRevision", "controllerrevisions"),
        grouped("policy", "PodDisruptionBudget", "poddisruptionbudgets"),
        grouped("events.k8s.io", "Event", "events"),
        grouped("discovery.k8s.io", "EndpointSlice", "endpointslices"),
        grouped("coordination.k8s.io", "Lease", "leases"),
        ApiResource {
            group: "valkey.logbook.dev".into(),
            version: "v1beta1".into(),
            api_version: "valkey.logbook.dev/v1beta1".into(),
            kind: "ValkeyCluster".into(),
            plural: "valkeyclusters".into(),
        },
        ApiResource {
            group: "valkey.logbook.dev".into(),
            version: "v1alpha1".into(),
            api_version: "valkey.logbook.dev/v1alpha1".into(),
            kind: "ValkeyUser".into(),
            plural: "valkeyusers".into(),
        },
        ApiResource {
            group: "valkey.logbook.dev".into(),
            version: "v1alpha1".into(),
            api_version: "valkey.logbook.dev/v1alpha1".into(),
            kind: "ValkeyBackup".into(),
            plural: "valkeybackups".into(),
        },
    ]
}

/// Every object of [`kinds`]: `Kind namespace/name` → (resourceVersion,
/// field managers), and the global resourceVersion (of the lists).
async fn objects(env: &Env) -> (u64, BTreeMap<String, (u64, Vec<String>)>) {
    let mut global = 0;
    let mut all = BTreeMap::new();
    for ar in kinds() {
        let api: Api<DynamicObject> = Api::all_with(env.client.clone(), &ar);
        let Ok(list) = api.list(&ListParams::default()).await else {
            continue;
        };
        let rv: u64 = list
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        global = global.max(rv);
        for obj in list.items {
            let rv: u64 = obj
                .resource_version()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let managers: Vec<String> = obj
                .managed_fields()
                .iter()
                .filter_map(|m| {
                    let sub = m
                        .subresource
                        .clone()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default();
                    Some(format!("{}{sub}", m.manager.clone()?))
                })
                .collect();
            let key = format!(
                "{} {}/{}",
                ar.kind,
                obj.namespace().unwrap_or_default(),
                obj.name_any()
            );
            all.insert(key, (rv, managers));
        }
    }
    (global, all)
}

/// The heartbeats of processes, not of clusters — the only writes allowed
/// while idle: the kubelet renews its node Lease every few seconds, as a
/// real kubelet does, and the operator renews its leader-election Lease
/// every renew period whether it runs one cluster or none.
fn is_node_heartbeat(key: &str) -> bool {
    key.starts_with("Lease kube-node-lease/") || key == "Lease default/logbook-operator"
}

/// Objects created, changed or deleted between two [`objects`] snapshots,
/// the node heartbeat excepted.
fn changes(
    before: &BTreeMap<String, (u64, Vec<String>)>,
    after: &BTreeMap<String, (u64, Vec<String>)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (key, (rv, managers)) in after {
        if is_node_heartbeat(key) {
            continue;
        }
        match before.get(key) {
            None => out.push(format!("created {key} rv={rv} managers={managers:?}")),
            Some((old, _)) if old != rv => {
                out.push(format!(
                    "changed {key} rv {old}->{rv} managers={managers:?}"
                ));
            }
            Some(_) => {}
        }
    }
    for key in before.keys() {
        if !after.contains_key(key) && !is_node_heartbeat(key) {
            out.push(format!("deleted {key}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_healthy_cluster_writes_nothing_for_a_minute() {
    idle(&replication_yaml("demo", 3), 5, 60, true).await;
}

/// Topology Sentinel: the Sentinels' reports, their published events and
/// their pods change nothing while nothing happens (30 s: three of their
/// replicas' `INFO` periods, fifteen hello periods).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sentinel_cluster_writes_nothing() {
    let yaml = r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Sentinel
  replicas: 3
  storage:
    size: 1Gi
"#;
    // Settled once the Sentinel StatefulSet's minReadySeconds (10) have
    // passed: its controller then records them available.
    idle(yaml, 12, 30, false).await;
}

/// External access (`spec.externalAccess`): reading the Services and the
/// nodes every reconcile, and each node's announced address every probe,
/// journals and writes nothing while nothing changes (a Cluster of 3
/// shards without replicas, 3 pods, by node ports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_cluster_exposed_by_node_ports_writes_nothing() {
    let yaml = r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Cluster
  shards: 3
  replicasPerShard: 0
  storage:
    size: 1Gi
  externalAccess:
    enabled: true
    type: NodePort
"#;
    idle(yaml, 8, 30, false).await;
}

/// A Sentinel cluster exposed by node ports: the data pods' announcements
/// read every probe, the Sentinels' reports naming external endpoints,
/// and the Sentinels' Service journal and write nothing while nothing
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sentinel_cluster_exposed_by_node_ports_writes_nothing() {
    let yaml = r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Sentinel
  replicas: 3
  storage:
    size: 1Gi
  externalAccess:
    enabled: true
    type: NodePort
"#;
    idle(yaml, 12, 30, false).await;
}

/// `demo` Ready on 3 pods (a Cluster has no single primary whose role
/// label `wait_ready` checks).
async fn ready(env: &Env, limit: Duration) -> logbook_crds::ValkeyCluster {
    if env.vkc("demo").await.spec.topology == logbook_crds::Topology::Cluster {
        env.wait_status("demo", limit, "Ready on 3 pods", |v| is_ready(v, 3))
            .await
    } else {
        env.wait_ready("demo", 3, limit).await
    }
}

/// Applies `yaml` (a 3-pod cluster `demo`) and, `with_user`, the ACL user
/// of `config/samples/user.yaml` (its status and its ACL reads must cost
/// nothing either), waits until nothing is written for `settle` seconds,
/// then checks that nothing but node heartbeats is written for `seconds`.
async fn idle(yaml: &str, settle: u64, seconds: u64, with_user: bool) {
    let mut env = Env::start("idle").await;
    env.apply_yaml(yaml).await;
    ready(&env, Duration::from_secs(40)).await;
    if with_user {
        create_user_sample(&env).await;
        let users: Api<logbook_crds::ValkeyUser> = env.api();
        env.eventually(Duration::from_secs(30), "the sample user Ready", || {
            let users = users.clone();
            async move {
                users.get("app").await.unwrap().status.is_some_and(|s| {
                    s.phase == Some(logbook_crds::UserPhase::Ready)
                        && s.nodes.as_deref() == Some("3/3")
                })
            }
        })
        .await;
    }
    let stream = env.stream("demo").await;
    // Settle: Ready, and nothing but the node heartbeat written for a few
    // seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (_, mut settled) = objects(&env).await;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(settle) {
        assert!(
            Instant::now() < deadline,
            "never settled\n{}",
            env.dump("demo").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, now) = objects(&env).await;
        if !changes(&settled, &now).is_empty() {
            quiet_since = Instant::now();
        }
        settled = now;
    }
    let vkc = ready(&env, Duration::from_secs(5)).await;
    let seq = journal_seq(&vkc);
    let (rv, before) = objects(&env).await;
    let lines = env.logs.tail(usize::MAX).len();
    eprintln!("settled at resourceVersion {rv}, journal seq {seq}; idling for {seconds} s");

    let start = Instant::now();
    let mut global = rv;
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (now_rv, now) = objects(&env).await;
        let changed = changes(&before, &now);
        if !changed.is_empty() {
            // What the operator saw that made it write: the events
            // appended since it settled (readable once it has stopped).
            env.stop_operator(Stop::Graceful).await;
            let appended: Vec<String> = env
                .journal_events(&stream)
                .await
                .into_iter()
                .filter(|e| i64::try_from(e.seq).unwrap_or(i64::MAX) > seq)
                .map(|e| format!("#{} {:?}", e.seq, e.body))
                .collect();
            // Why a probe failed (the log's tail may not reach back).
            let failed_probes = env.logs.grep("probe failed");
            panic!(
                "API writes while idle after {:?}: {changed:#?}\nevents appended meanwhile: {appended:#?}\nprobe failures: {failed_probes:#?}\n{}",
                start.elapsed(),
                env.dump("demo").await
            );
        }
        global = now_rv;
        let vkc = env.vkc("demo").await;
        assert_eq!(
            journal_seq(&vkc),
            seq,
            "journal appends while idle\n{}",
            env.dump("demo").await
        );
    }
    let new_lines: Vec<String> = env.logs.tail(usize::MAX).into_iter().skip(lines).collect();

    // The journal's head after stopping is where it was before the minute.
    env.stop_operator(Stop::Graceful).await;
    let head = env.journal_head(&stream).await;
    assert_eq!(
        i64::try_from(head).unwrap(),
        seq,
        "journal appends while idle"
    );
    eprintln!(
        "idle {seconds} s: no write but the node heartbeat (global resourceVersion {rv} -> {global}), journal head {head} unchanged; {} operator log lines meanwhile",
        new_lines.len()
    );
    env.finish().await;
}
