//! Several real nodes in zones (`LOGBOOK_E2E_NODE=containers`, three
//! kubelets with containerd each, the real scheduler): a Replication
//! cluster's pods placed on three nodes in three zones, then the primary's
//! node drained (the PDB honoured, the primary handed over before its pod
//! goes) and the primary's node partitioned (its pods running, nothing
//! reaching them), each under a writer through the client Service that
//! waits for a replica's acknowledgement (`WAIT 1`): no acknowledged
//! write lost, never two primaries answering at once where the host can
//! see them, and the journal saying what the operator saw and did.
//!
//! Also: the primary's node killed whole (the pod left `Terminating`,
//! said in the status, replaced once a person declares the node gone), a
//! Cluster's zone cut off, a Cluster placed by the real scheduler, and
//! `placement: Preferred` taking the primary back once its node returns.
//!
//! Ignored by default: they need the real nodes. `make test-node` runs the
//! drain and the partition (`LOGBOOK_E2E_NODE=containers ... -- --ignored
//! ...`), `make test-node-suites` all of them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use logbook_journal::{Envelope, Event, Intent};
use operator_common::*;

const NODES: usize = 3;
const BULK: u64 = 2_000;
/// Containers start slower than localkube's processes.
const READY: Duration = Duration::from_secs(240);

/// The fence the partition test runs with, in seconds
/// (`spec.failover.fenceIsolatedPrimarySeconds`).
const FENCE_SECONDS: f64 = 2.0;

/// A cluster on three nodes, Ready, with each pod on a node and in a zone
/// of its own as the real scheduler placed it; returns the placement.
async fn ready_on_three_nodes(env: &Env, yaml: &str) -> BTreeMap<String, (String, Option<String>)> {
    env.apply_yaml(yaml).await;
    let started = Instant::now();
    env.wait_ready("demo", 3, READY).await;
    eprintln!("Ready on {NODES} nodes after {:?}", started.elapsed());
    let mut placed = BTreeMap::new();
    for pod in env.pods("demo").await {
        let node = env.node_of(&pod.name_any()).await;
        let zone = env.zone_of(&node).await;
        placed.insert(pod.name_any(), (node, zone));
    }
    let nodes: BTreeSet<&String> = placed.values().map(|(n, _)| n).collect();
    let zones: BTreeSet<&Option<String>> = placed.values().map(|(_, z)| z).collect();
    assert_eq!(nodes.len(), 3, "two pods share a node: {placed:?}");
    assert_eq!(zones.len(), 3, "two pods share a zone: {placed:?}");
    assert!(zones.iter().all(|z| z.is_some()), "{placed:?}");
    placed
}

/// A writer through `service` (`SET` then `WAIT 1`), once it has
/// acknowledged writes.
async fn writing(env: &Env, service: &str, password: &str) -> logbook_bench::WriteProbe {
    let probe = write_probe(service, password, "probe");
    env.eventually(Duration::from_secs(10), "acknowledged writes", || {
        let n = probe.acked_count();
        async move { n >= 20 }
    })
    .await;
    probe
}

/// `kubectl drain` of `node`, as a person runs it.
async fn drain(env: &Env, node: &str) {
    let (ok, out) = env
        .kubectl_async(&[
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=240s",
        ])
        .await;
    assert!(ok, "kubectl drain {node}: {out}");
}

/// The primary on a node other than the first (the host reaches Services
/// through the first node, scripts/node.sh: a test cuts or kills another
/// so that its writer's path stays), moved there by a requested failover
/// if need be; with the password and the client Service once it reaches
/// that primary (it follows the role labels a moment after the status).
async fn primary_off_the_first_node(
    env: &Env,
    placed: &BTreeMap<String, (String, Option<String>)>,
) -> (String, String, String) {
    let mut old = primary(&env.vkc("demo").await);
    let first = env.nodes()[0].name.clone();
    if placed[&old].0 == first {
        env.patch(
            "demo",
            serde_json::json!({"metadata": {"annotations": {
                "valkey.logbook.dev/failover-requested": "move-off-the-first-node"}}}),
        )
        .await;
        let vkc = env
            .wait_primary_moved("demo", &old, Duration::from_secs(60))
            .await;
        old = primary(&vkc);
        env.wait_ready("demo", 3, READY).await;
    }
    assert_ne!(placed[&old].0, first);
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    env.eventually(
        Duration::from_secs(20),
        "the Service to reach the primary",
        || {
            let (service, password) = (service.clone(), password.clone());
            async move {
                try_role(&service, &password)
                    .await
                    .is_some_and(|(k, _)| k == "master")
            }
        },
    )
    .await;
    (old, password, service)
}

/// Every pod's address.
async fn pod_addrs(env: &Env) -> Vec<String> {
    let mut addrs = Vec::new();
    for pod in env.pods("demo").await {
        addrs.push(env.pod_addr(&pod.name_any()).await);
    }
    addrs
}

/// The journal's decisions that moved the primary away from `old`.
fn moves_from(events: &[Envelope], old: &str) -> Vec<(Intent, String)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().filter_map(|p| match &p.intent {
                Intent::PromoteReplica { from: Some(f), .. }
                | Intent::Switchover { from: f, .. }
                    if f == old =>
                {
                    Some((p.intent.clone(), p.reason.code.name().to_owned()))
                }
                _ => None,
            })),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node-suites)"]
async fn draining_the_primarys_node_hands_the_primary_over_first() {
    let mut env = Env::start_on_nodes("drain", NODES).await;
    let placed = ready_on_three_nodes(&env, &replication_yaml("demo", 3)).await;
    let vkc = env.vkc("demo").await;
    let old = primary(&vkc);
    let node = placed[&old].0.clone();
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "bulk", BULK).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_roles(pod_addrs(&env).await, password.clone(), stop.clone());
    let probe = writing(&env, &service, &password).await;

    // `kubectl drain` evicts through the Eviction API: the PDB allows one
    // pod down; the primary's pod holds its shutdown (preStop) until the
    // operator has handed the primary over.
    let fault = Instant::now();
    drain(&env, &node).await;
    let drained = fault.elapsed();
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(60))
        .await;
    let new = primary(&moved);
    let new_addr = env.pod_addr(&new).await;
    env.wait_acked_after(&probe, fault, "a write acknowledged after the drain began")
        .await;
    assert_ne!(
        placed[&new].0, node,
        "the new primary is on the drained node"
    );
    // The evicted pod cannot come back while its node is cordoned: its
    // volume is in that node's zone, and the other nodes hold a pod of
    // the cluster each. Uncordoned, it returns as a replica.
    let (ok, out) = env.kubectl_async(&["uncordon", &node]).await;
    assert!(ok, "kubectl uncordon {node}: {out}");
    let vkc = env.wait_ready("demo", 3, READY).await;
    assert_eq!(primary(&vkc), new, "the primary moved again");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = probe.stop().await;
    stop.store(true, Ordering::Relaxed);
    let doubles = sampler.await.unwrap();
    assert!(doubles.is_empty(), "two primaries at once: {doubles:?}");

    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, &password).await;
    let pause = log.longest_gap_from(fault);
    eprintln!(
        "drain of {node}: {acked} acknowledged writes kept, {failed} failed; drain took {drained:?}; \
         longest time without a successful write {pause:?}"
    );
    assert_eq!(count_missing(&new_addr, &password, "bulk", BULK).await, 0);

    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, Event::PodTerminating { pod } if *pod == old)),
        "the journal does not show {old} terminating"
    );
    // Handed over, not failed over blind: the leaving primary fenced
    // (it takes no write the new one would not have), then the replica
    // with the freshest offset after the fence promoted.
    let decided: Vec<Intent> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().map(|p| p.intent.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    let fenced = decided
        .iter()
        .position(|i| matches!(i, Intent::FenceNode { pod } if *pod == old));
    let promoted = decided.iter().position(
        |i| matches!(i, Intent::PromoteReplica { pod, from: Some(f) } if *pod == new && *f == old),
    );
    assert!(
        matches!((fenced, promoted), (Some(f), Some(p)) if f < p),
        "{old} was not fenced before {new} was promoted: {decided:?}"
    );
    let failovers = env.replay_dir("demo", &["failovers"]).await.unwrap();
    assert!(failovers.contains(&old), "{failovers}");
    eprintln!("{failovers}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node-suites)"]
async fn a_partitioned_primarys_node_is_failed_over_and_rejoins_as_a_replica() {
    let mut env = Env::start_on_nodes("partition", NODES).await;
    let fenced = replication_yaml("demo", 3).replace(
        "    failureThreshold: 3\n",
        &format!("    failureThreshold: 3\n    fenceIsolatedPrimarySeconds: {FENCE_SECONDS}\n"),
    );
    let placed = ready_on_three_nodes(&env, &fenced).await;
    let (old, password, service) = primary_off_the_first_node(&env, &placed).await;
    let node = placed[&old].0.clone();
    write_keys(&service, &password, "bulk", BULK).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_roles(pod_addrs(&env).await, password.clone(), stop.clone());
    let probe = writing(&env, &service, &password).await;

    // A client on the primary's side of the cut: a pod on its node that
    // writes to it directly, logging each reply with the time.
    let old_ip = env
        .pod_addr(&old)
        .await
        .rsplit_once(':')
        .unwrap()
        .0
        .to_owned();
    start_side_client(&env, &node, &old_ip, &password, "side").await;

    let fault = Instant::now();
    let cut_at = unix_now();
    env.partition_node(&node, true).await;
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(60))
        .await;
    let new = primary(&moved);
    let new_addr = env.pod_addr(&new).await;
    let moved_after = fault.elapsed();
    env.wait_acked_after(&probe, fault, "a write acknowledged after the partition")
        .await;
    // Stay cut a while, as a real partition does, then heal.
    tokio::time::sleep(Duration::from_secs(5)).await;
    env.partition_node(&node, false).await;
    let healed = Instant::now();
    let vkc = env.wait_ready("demo", 3, READY).await;
    assert_eq!(primary(&vkc), new, "the primary moved again");
    let rejoined = healed.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = probe.stop().await;
    stop.store(true, Ordering::Relaxed);
    let doubles = sampler.await.unwrap();

    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, &password).await;
    // The client on the wrong side: what the isolated primary took after
    // the cut (lost: its successor never had it) and when it began to
    // refuse, against the fence.
    let (taken_after_cut, last_ok, first_refused) = side_after(&env, cut_at).await;
    let promoted_at = env
        .vkc("demo")
        .await
        .status
        .and_then(|s| s.last_failover)
        .and_then(|f| f.at)
        .map(|at| at.0.as_millisecond() as f64 / 1000.0);
    eprintln!(
        "client on {node}'s side: {} writes taken by the isolated primary after the cut, the last {:?} s \
         after it; NOREPLICAS from {:?} s; the new primary promoted at {:?} s",
        taken_after_cut,
        last_ok.map(|t| t - cut_at),
        first_refused.map(|t| t - cut_at),
        promoted_at.map(|t| t - cut_at),
    );
    let first_refused = first_refused.expect("the isolated primary never refused a write");
    assert!(
        first_refused - cut_at <= FENCE_SECONDS + 2.5,
        "the isolated primary was fenced {:.2} s after the cut (fence {FENCE_SECONDS} s + 2 s slack)",
        first_refused - cut_at
    );
    if let Some(promoted_at) = promoted_at {
        assert!(
            first_refused < promoted_at,
            "the new primary was promoted ({promoted_at}) before the old one was fenced ({first_refused})"
        );
    }
    let pause = log.longest_gap_from(fault);
    eprintln!(
        "partition of {node}: {old} -> {new} published after {moved_after:?}; {acked} acknowledged \
         writes kept, {failed} failed; writes paused {pause:?}; Ready again {rejoined:?} after the heal; \
         samples with two masters: {doubles:?}"
    );
    assert_eq!(count_missing(&new_addr, &password, "bulk", BULK).await, 0);
    // Back, the old primary follows the new one.
    let old_addr = env.pod_addr(&old).await;
    let new_ip = new_addr.rsplit_once(':').unwrap().0.to_owned();
    let (kind, follows) = role(&old_addr, &password).await;
    assert_eq!(
        (kind.as_str(), follows.as_deref()),
        ("slave", Some(new_ip.as_str()))
    );
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let moves = moves_from(&events, &old);
    assert!(
        moves
            .iter()
            .any(|(i, _)| matches!(i, Intent::PromoteReplica { pod, .. } if *pod == new)),
        "no promotion of {new} from {old} journaled: {moves:?}"
    );
    let failovers = env.replay_dir("demo", &["failovers"]).await.unwrap();
    assert!(failovers.contains(&old), "{failovers}");
    eprintln!("{failovers}");
    env.finish().await;
}

/// Seconds since the epoch, as the side client's `date +%s.%N` prints.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A pod on `node` writing `side:<i>` to `ip` every 10 ms, each reply
/// logged as `<time> <i> <reply>`.
async fn start_side_client(env: &Env, node: &str, ip: &str, password: &str, key: &str) {
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "side-client"},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "client",
                "image": "docker.io/valkey/valkey:9.1",
                "imagePullPolicy": "Never",
                "env": [{"name": "VALKEYCLI_AUTH", "value": password}, {"name": "REDISCLI_AUTH", "value": password}],
                "command": ["sh", "-c", format!(
                    "i=0; while true; do r=$(valkey-cli -h {ip} -t 1 SET {key}:$i $i 2>&1 | head -n 1); \
                     echo \"$(date +%s.%N) $i $r\"; i=$((i+1)); sleep 0.01; done"
                )],
            }],
        },
    });
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
    env.api::<k8s_openapi::api::core::v1::Pod>()
        .create(&Default::default(), &pod)
        .await
        .unwrap();
    env.eventually(
        Duration::from_secs(60),
        "the side client's first write",
        || async { side_client_log(env).await.iter().any(|(_, _, r)| r == "OK") },
    )
    .await;
}

/// What the side client saw after `cut_at`: how many writes the isolated
/// primary took, the time of the last, and of its first refusal.
async fn side_after(env: &Env, cut_at: f64) -> (usize, Option<f64>, Option<f64>) {
    let side = side_client_log(env).await;
    let after: Vec<&(f64, u64, String)> = side.iter().filter(|(t, _, _)| *t > cut_at).collect();
    let taken: Vec<f64> = after
        .iter()
        .filter(|(_, _, r)| r == "OK")
        .map(|(t, _, _)| *t)
        .collect();
    let first_refused = after
        .iter()
        .find(|(_, _, r)| r.contains("NOREPLICAS"))
        .map(|(t, _, _)| *t);
    (
        taken.len(),
        taken.into_iter().reduce(f64::max),
        first_refused,
    )
}

/// The side client's log: (time, i, reply).
async fn side_client_log(env: &Env) -> Vec<(f64, u64, String)> {
    let text = env
        .api::<k8s_openapi::api::core::v1::Pod>()
        .logs("side-client", &Default::default())
        .await
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                f.next().unwrap_or_default().trim().to_owned(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node-suites)"]
async fn a_clusters_shards_are_spread_by_the_real_scheduler() {
    let env = Env::start_on_nodes("spread", NODES).await;
    env.apply_yaml(&cluster_yaml("demo")).await;
    let vkc = env
        .wait_status(
            "demo",
            READY,
            "3 shards of a primary and a replica",
            cluster_ready,
        )
        .await;
    let mut node_of = BTreeMap::new();
    for pod in env.pods("demo").await {
        let node = env.node_of(&pod.name_any()).await;
        node_of.insert(pod.name_any(), node);
    }
    let shards = &vkc.status.as_ref().unwrap().shards;
    let mut primaries_on = BTreeSet::new();
    for shard in shards {
        let primary = shard.primary.clone().unwrap();
        let on = &node_of[&primary];
        primaries_on.insert(on.clone());
        for replica in &shard.replicas {
            assert_ne!(
                &node_of[replica], on,
                "shard {}: the replica {replica} is beside its primary {primary}: {node_of:?}",
                shard.index
            );
        }
    }
    eprintln!("placement: {node_of:?}; primaries on {primaries_on:?}");
    assert_eq!(
        primaries_on.len(),
        3,
        "two shard primaries on one node: losing it would cost two shards: {node_of:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node-suites)"]
async fn a_dead_primarys_node_is_failed_over_and_a_person_replaces_its_pod() {
    let mut env = Env::start_on_nodes("dead-node", NODES).await;
    // Pods leave an unreachable node after 5 s rather than the default
    // 300 s, as a user may ask with the spec's tolerations.
    let yaml = replication_yaml("demo", 3).replace(
        "  storage:\n",
        "  tolerations:\n  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}\n  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}\n  storage:\n",
    );
    let placed = ready_on_three_nodes(&env, &yaml).await;
    let (old, password, service) = primary_off_the_first_node(&env, &placed).await;
    let node = placed[&old].0.clone();
    write_keys(&service, &password, "bulk", BULK).await;
    let probe = writing(&env, &service, &password).await;

    let fault = Instant::now();
    env.stop_node(&node).await;
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(60))
        .await;
    let new = primary(&moved);
    let new_addr = env.pod_addr(&new).await;
    eprintln!(
        "{old} on the dead {node}: {new} promoted after {:?}",
        fault.elapsed()
    );
    env.wait_acked_after(&probe, fault, "a write acknowledged after the node died")
        .await;
    // Kubernetes cannot replace the pod by itself: evicted from the
    // unreachable node, it stays Terminating, as no kubelet confirms.
    env.eventually(
        Duration::from_secs(120),
        "the dead node's pod Terminating",
        || async {
            env.api::<k8s_openapi::api::core::v1::Pod>()
                .get(&old)
                .await
                .is_ok_and(|p| p.metadata.deletion_timestamp.is_some())
        },
    )
    .await;
    // The status says which pod, on which node, and what a person does;
    // a Warning Event says it too.
    let vkc = env
        .wait_status(
            "demo",
            Duration::from_secs(60),
            "Degraded: PodNotExiting",
            |v| {
                v.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "Degraded"
                            && c.reason == "PodNotExiting"
                            && c.message.contains(&format!("kubectl taint nodes {node}"))
                    })
                })
            },
        )
        .await;
    let status = vkc.status.clone().unwrap();
    eprintln!(
        "while {node} is dead: phase {:?}, conditions {:?}",
        status.phase,
        status
            .conditions
            .iter()
            .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
            .collect::<Vec<_>>()
    );
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    env.eventually(
        Duration::from_secs(30),
        "a PodNotExiting Warning Event",
        || async {
            events.list(&Default::default()).await.is_ok_and(|l| {
                l.items.iter().any(|e| {
                    e.reason.as_deref() == Some("PodNotExiting")
                        && e.type_.as_deref() == Some("Warning")
                })
            })
        },
    )
    .await;
    assert_eq!(primary(&vkc), new);
    // What a person does (docs/guide/operations.md, "A node that does
    // not come back"): declares the node out of service, so Kubernetes
    // deletes its pods; the volume was in the dead node's zone, so its
    // claim goes too, and the pod starts elsewhere, empty, and is
    // re-seeded from the primary.
    let (ok, out) = env
        .kubectl_async(&[
            "taint",
            "nodes",
            &node,
            "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute",
        ])
        .await;
    assert!(ok, "kubectl taint: {out}");
    let claim = format!("data-{old}");
    let (ok, out) = env
        .kubectl_async(&["delete", "pvc", &claim, "--wait=false"])
        .await;
    assert!(ok, "kubectl delete pvc {claim}: {out}");
    let replaced = Instant::now();
    env.eventually(
        Duration::from_secs(120),
        "the dead node's pod gone",
        || async {
            env.api::<k8s_openapi::api::core::v1::Pod>()
                .get(&old)
                .await
                .is_ok_and(|p| p.spec.and_then(|s| s.node_name).as_deref() != Some(node.as_str()))
        },
    )
    .await;
    // A recreated pod may be placed before its old claim is gone: delete
    // it once so that its claim is made anew.
    let pending = env
        .api::<k8s_openapi::api::core::v1::Pod>()
        .get(&old)
        .await
        .is_ok_and(|p| p.status.and_then(|s| s.phase).as_deref() == Some("Pending"));
    if pending {
        env.delete_pod(&old).await;
    }
    let vkc = env.wait_ready("demo", 3, READY).await;
    eprintln!(
        "{old} replaced and in sync {:?} after the person acted",
        replaced.elapsed()
    );
    assert_eq!(primary(&vkc), new, "the primary moved again");
    let log = probe.stop().await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, &password).await;
    eprintln!(
        "dead {node}: {acked} acknowledged writes kept, {failed} failed; longest time without a \
         successful write {:?}",
        log.longest_gap_from(fault)
    );
    let old_addr = env.pod_addr(&old).await;
    assert_ne!(env.node_of(&old).await, node);
    assert_eq!(
        count_missing(&old_addr, &password, "bulk", BULK).await,
        0,
        "{old} not re-seeded"
    );
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let moves = moves_from(&events, &old);
    assert!(
        moves
            .iter()
            .any(|(i, _)| matches!(i, Intent::PromoteReplica { pod, .. } if *pod == new)),
        "no promotion of {new} from {old} journaled: {moves:?}"
    );
    eprintln!("{}", env.replay_dir("demo", &["failovers"]).await.unwrap());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node-suites)"]
async fn a_zone_lost_whole_leaves_every_shard_a_primary() {
    let mut env = Env::start_on_nodes("zone-lost", NODES).await;
    env.apply_yaml(&cluster_yaml("shop").replace(
        "  storage:\n",
        &format!("  failover:\n    fenceIsolatedPrimarySeconds: {FENCE_SECONDS}\n  storage:\n"),
    ))
    .await;
    let vkc = env
        .wait_status(
            "shop",
            READY,
            "3 shards of a primary and a replica",
            cluster_ready,
        )
        .await;
    let password = env.password("shop").await;
    let mut seeds = Vec::new();
    for i in 0..6 {
        seeds.push(env.pod_addr(&format!("shop-{i}")).await);
    }
    let mut config = logbook_bench::cluster_writer::ClusterProbeConfig::new(seeds.clone(), "w");
    config.password = Some(logbook::valkey::Password::new(password.clone()));
    let probe = logbook_bench::cluster_writer::start_cluster_probe(config);
    env.eventually(Duration::from_secs(20), "acknowledged writes", || {
        let n = probe.acked_count();
        async move { n >= 50 }
    })
    .await;
    // A zone other than the first node's (the host's way to Services):
    // each zone is one node here, holding one shard's primary and another
    // shard's replica.
    let first = env.nodes()[0].name.clone();
    let mut lost = None;
    for shard in &vkc.status.as_ref().unwrap().shards {
        let p = shard.primary.clone().unwrap();
        let on = env.node_of(&p).await;
        if on != first {
            lost = Some((on, p));
            break;
        }
    }
    let (lost, lost_primary) = lost.expect("a shard primary off the first node");
    let zone = env.zone_of(&lost).await;
    // A client beside the lost primary, in its zone, writing keys of its
    // slots to it directly.
    let lost_addr = env.pod_addr(&lost_primary).await;
    let tag = tag_served_by(&lost_addr, &password);
    let lost_ip = lost_addr.rsplit_once(':').unwrap().0.to_owned();
    start_side_client(&env, &lost, &lost_ip, &password, &format!("side:{{{tag}}}")).await;
    let fault = Instant::now();
    let cut_at = unix_now();
    env.partition_node(&lost, true).await;
    // Every shard has a primary again, none in the lost zone.
    let mut primaries_on = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let vkc = env.vkc("shop").await;
        primaries_on.clear();
        for shard in &vkc.status.as_ref().unwrap().shards {
            if let Some(p) = &shard.primary {
                primaries_on.push(env.node_of(p).await);
            }
        }
        if primaries_on.len() == 3 && !primaries_on.contains(&lost) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after losing {zone:?} the primaries are on {primaries_on:?}\n{}",
            env.dump("shop").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let served = fault.elapsed();
    let served_at = unix_now();
    env.eventually(
        Duration::from_secs(30),
        "writes taken (SET answered OK) after the loss: acknowledged by a replica only in the shard that kept both its members",
        || {
            let after = probe
                .snapshot()
                .attempts
                .iter()
                .filter(|a| a.succeeded() && a.started > fault + served)
                .count();
            async move { after >= 10 }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.partition_node(&lost, false).await;
    env.wait_status("shop", READY, "Ready again after the heal", cluster_ready)
        .await;
    eventually_clean(&env, &password, 6, Duration::from_secs(90)).await;
    let log = probe.stop().await;
    let acked = log.acked_keys();
    let pw = logbook::valkey::Password::new(password.clone());
    let mut now = Vec::new();
    for i in 0..6 {
        now.push(env.pod_addr(&format!("shop-{i}")).await);
    }
    let missing = logbook_bench::cluster_client::missing_in_cluster(&now, Some(&pw), "w", &acked)
        .await
        .unwrap();
    eprintln!(
        "zone {zone:?} ({lost}) lost: every shard served again after {served:?}; {} acknowledged \
         writes, {} missing; longest time without a successful write {:?}",
        acked.len(),
        missing.len(),
        log.longest_gap_from(fault)
    );
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    let (taken, last_ok, first_refused) = side_after(&env, cut_at).await;
    eprintln!(
        "client beside {lost_primary} in {zone:?}: {taken} writes taken after the cut, the last \
         {:?} s after it; NOREPLICAS from {:?} s; every shard served outside the zone at {:.2} s",
        last_ok.map(|t| t - cut_at),
        first_refused.map(|t| t - cut_at),
        served_at - cut_at
    );
    let first_refused = first_refused.expect("the isolated shard primary never refused a write");
    assert!(
        first_refused < served_at,
        "the shard was served elsewhere ({served_at}) before its isolated primary was fenced ({first_refused})"
    );
    // The journal explains it: the lost primary's shard failed over to
    // its replica by the operator.
    let stream = env.stream("shop").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let over: Vec<&Intent> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => Some(intents.iter().map(|p| &p.intent)),
            _ => None,
        })
        .flatten()
        .filter(
            |i| matches!(i, Intent::ClusterFailover { from: Some(f), .. } if *f == lost_primary),
        )
        .collect();
    assert!(
        !over.is_empty(),
        "no ClusterFailover of {lost_primary}'s shard journaled"
    );
    eprintln!("journaled: {over:?}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node-suites)"]
async fn placement_preferred_takes_the_primary_back_when_its_node_returns() {
    let mut env = Env::start_on_nodes("fail-back", NODES).await;
    let yaml =
        replication_yaml("demo", 3).replace("  storage:\n", "  placement: Preferred\n  storage:\n");
    let placed = ready_on_three_nodes(&env, &yaml).await;
    let preferred = "demo-0".to_owned();
    let vkc = env.vkc("demo").await;
    assert_eq!(primary(&vkc), preferred, "bootstrap onto the preferred pod");
    let node = placed[&preferred].0.clone();
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let probe = writing(&env, &service, &password).await;
    let fault = Instant::now();
    drain(&env, &node).await;
    let moved = env
        .wait_primary_moved("demo", &preferred, Duration::from_secs(60))
        .await;
    eprintln!(
        "{preferred} drained off {node}: {} primary",
        primary(&moved)
    );
    let (ok, out) = env.kubectl_async(&["uncordon", &node]).await;
    assert!(ok, "kubectl uncordon {node}: {out}");
    let returned = Instant::now();
    // Back on its node and in sync past the hold-down, the preferred pod
    // takes the primary back by a planned hand-over.
    let vkc = env
        .wait_status(
            "demo",
            Duration::from_secs(180),
            "the primary back on demo-0",
            |v| v.status.as_ref().and_then(|s| s.primary.as_deref()) == Some("demo-0"),
        )
        .await;
    eprintln!(
        "{preferred} primary again {:?} after its node was uncordoned",
        returned.elapsed()
    );
    assert_eq!(env.node_of(&preferred).await, node);
    env.wait_ready("demo", 3, READY).await;
    let log = probe.stop().await;
    let at = env.pod_addr(&primary(&vkc)).await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &at, &password).await;
    eprintln!("fail-back: {acked} acknowledged writes kept, {failed} failed");
    // Journaled as a planned hand-over for the reason `FailBack`.
    let stream = env.stream("demo").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let back = events.iter().any(|e| match &e.body {
        Event::Decided { intents } => intents.iter().any(|p| {
            matches!(&p.intent, Intent::Switchover { to, .. } if *to == preferred)
                && matches!(&p.reason.code, logbook_journal::ReasonCode::FailBack { pod } if *pod == preferred)
        }),
        _ => false,
    });
    assert!(back, "no FailBack switchover to {preferred} journaled");
    env.finish().await;
}

/// A hash tag whose slot the Cluster node at `addr` serves (its own line
/// of `CLUSTER NODES`).
fn tag_served_by(addr: &str, password: &str) -> u32 {
    let nodes = redis_cli(addr, password, &["cluster", "nodes"]);
    let mine = nodes
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap_or_else(|| panic!("no myself line in {nodes}"));
    let ranges: Vec<(u16, u16)> = mine
        .split_whitespace()
        .skip(8)
        .filter_map(|r| match r.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => r.parse().ok().map(|a| (a, a)),
        })
        .collect();
    (0..100_000)
        .find(|t| {
            let slot = logbook_bench::slots::key_slot(format!("{{{t}}}").as_bytes());
            ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot))
        })
        .unwrap_or_else(|| panic!("no tag in {ranges:?}"))
}
