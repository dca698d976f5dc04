//! Every way Kubernetes takes a pod away on one node, each a test of a
//! Replication cluster of 3 whose primary is the victim, under a writer
//! (`SET` then `WAIT 1 1000` every 10 ms through the client Service, and a
//! `ROLE` watch of every address the pods ever had): no acknowledged
//! write lost, never two writable primaries (two `master` answers in two
//! rounds in a row), the time to the first acknowledged write after it
//! and the longest time without one, and the journal explains what the
//! operator saw (the pod terminating, gone or failed) and did (the
//! promotion of a replica, or a switchover before a roll). The table of
//! what each measured is in docs/robustness.md, "How a pod is taken
//! away".
//!
//! - the Eviction API (`policy/v1`), the PodDisruptionBudget honoured: a
//!   second eviction while the first pod is down is refused (429);
//! - `kubectl delete pod --force --grace-period=0`;
//! - `kubectl rollout restart statefulset` (the StatefulSet is
//!   `OnDelete`: the operator rolls the new revision, the primary handed
//!   over before its pod goes);
//! - preemption by a pod of a higher PriorityClass (needs the real
//!   scheduler: `LOGBOOK_E2E_CONTROL_PLANE=kubernetes`; skipped on
//!   localkube, which schedules nothing);
//! - the kubelet's eviction of a pod over its ephemeral-storage limit
//!   (needs the real kubelet: `LOGBOOK_E2E_NODE=containers`);
//! - the ValkeyCluster deleted with propagation `Foreground` (its PVCs
//!   kept: recreated, the cluster has every write it acknowledged, those
//!   acknowledged after the deletion began too) and `Background` with
//!   `delete-pvcs-on-delete` (no PVC left).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, PostParams, PropagationPolicy};
use logbook_journal::{Envelope, Event, Intent, PodPhase, Reachability, ReasonCode};
use operator_common::*;

const BULK: u64 = 2000;
const NAME: &str = "demo";

/// A Replication cluster of 3, Ready, its primary's name.
async fn ready(env: &Env, yaml: &str) -> String {
    env.apply_yaml(yaml).await;
    primary(&env.wait_ready(NAME, 3, Duration::from_secs(120)).await)
}

/// What `e` says of the pod `pod` of uid `uid` leaving or gone, if it
/// says so: terminating, deleted, replaced by a pod of another uid (a
/// forced deletion's pod can be recreated before a watch sees it go),
/// failed (a kubelet eviction), or its port refusing or without an
/// address.
fn saw_leave(e: &Event, pod: &str, uid: &str) -> Option<String> {
    match e {
        Event::PodTerminating { pod: p } if p == pod => Some(format!("PodTerminating {pod}")),
        Event::PodDeleted { pod: p } if p == pod => Some(format!("PodDeleted {pod}")),
        Event::PodObserved {
            pod: p,
            uid: u,
            phase,
            ..
        } if p == pod => {
            if u != uid {
                Some(format!("PodObserved {pod} recreated ({phase:?})"))
            } else if *phase == PodPhase::Failed {
                Some(format!("PodObserved {pod} Failed"))
            } else {
                None
            }
        }
        Event::PodReachabilityObserved {
            pod: p,
            reachability: r @ (Reachability::Refused | Reachability::NoAddress),
        } if p == pod => Some(format!("PodReachabilityObserved {pod} {r:?}")),
        _ => None,
    }
}

/// The journal's explanation of a failover away from `old`: it saw `old`
/// leave (terminating, deleted or failed), then decided the promotion of
/// a replica replacing it for `PrimaryFailed`, and journaled the
/// promotion. Panics naming what is missing. Returns the observation and
/// the decisions from it to the promotion, as one line.
fn explain_failover(events: &[Envelope], old: &str, uid: &str) -> String {
    let promoted = journal_decisions(events)
        .into_iter()
        .find(|(_, i, _)| matches!(i, Intent::PromoteReplica { from: Some(f), .. } if f == old))
        .unwrap_or_else(|| {
            panic!(
                "no promotion replacing {old} decided: {:?}",
                decided_names(events)
            )
        });
    let (at, intent, reason) = &promoted;
    assert!(
        matches!(reason, ReasonCode::PrimaryFailed { death: true, .. }),
        "the promotion replacing {old} was decided for {reason:?}, not its death"
    );
    // From the last sight of the pod whole (its uid, Running and Ready).
    let whole = events[..*at]
        .iter()
        .rposition(|e| {
            matches!(&e.body, Event::PodObserved { pod, uid: u, ready: true, .. }
                if pod == old && u == uid)
        })
        .unwrap_or(0);
    let seen: Vec<(usize, String)> = events[whole..*at]
        .iter()
        .enumerate()
        .filter_map(|(i, e)| saw_leave(&e.body, old, uid).map(|s| (whole + i, s)))
        .collect();
    let Some((saw, _)) = seen.first().cloned() else {
        let about: Vec<String> = events[whole..*at]
            .iter()
            .rev()
            .take(40)
            .map(|e| format!("{:?}", e.body))
            .collect();
        panic!(
            "the promotion replacing {old} ({intent:?}) follows no observation of it leaving; the events before it, newest first:\n{}",
            about.join("\n")
        )
    };
    let mut seen: Vec<String> = seen.into_iter().map(|(_, s)| s).collect();
    seen.dedup();
    let Intent::PromoteReplica { pod: to, .. } = intent else {
        unreachable!()
    };
    assert!(
        events[*at..]
            .iter()
            .any(|e| matches!(&e.body, Event::ReplicaPromoted { pod, .. } if pod == to)),
        "the promotion of {to} was decided but never journaled as done"
    );
    let did = decided_names(&events[saw..=*at]).join(", ");
    format!("{} -> {did} -> ReplicaPromoted {to}", seen.join(", "))
}

/// The journal of `NAME` once the operator stopped.
async fn journal(env: &mut Env) -> Vec<Envelope> {
    let stream = env.stream(NAME).await;
    env.stop_operator(Stop::Graceful).await;
    env.journal_events(&stream).await
}

/// Waits for the primary to have moved off `old` and the cluster Ready
/// with 3 pods again; the new primary's `ip:port`.
async fn settled_off(env: &Env, old: &str, within: Duration) -> (String, String) {
    env.wait_primary_moved(NAME, old, within).await;
    let vkc = env.wait_ready(NAME, 3, Duration::from_secs(120)).await;
    let new = primary(&vkc);
    assert_ne!(new, old, "the primary came back to {old}");
    let addr = env.pod_addr(&new).await;
    (new, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_eviction_api_on_the_primary_hands_it_over_and_the_budget_refuses_a_second() {
    let mut env = Env::start("evict").await;
    let old = ready(&env, &replication_yaml(NAME, 3)).await;
    let writer = UnderWriter::start(&env, NAME, BULK).await;
    let uids = pod_uids(&env, NAME).await;
    let pods: Api<Pod> = env.api();
    // On the real control plane the disruption controller fills the
    // budget's status a moment after the pods are Ready: until then an
    // eviction is refused, rightly.
    let deadline = Instant::now() + Duration::from_secs(30);
    let fault = loop {
        let asked = Instant::now();
        match pods.evict(&old, &EvictParams::default()).await {
            Ok(_) => break asked,
            Err(kube::Error::Api(s)) if s.code == 429 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("evicting the primary {old}: {e}"),
        }
    };
    // While the primary's pod is down, the budget (maxUnavailable 1)
    // allows no other eviction.
    let other = uids.keys().find(|p| **p != old).unwrap().clone();
    let evicted = pods.get_opt(&old).await.unwrap();
    eprintln!(
        "evict: {old} {:?} after the eviction: uid {:?} (was {:?}), deleting {}",
        fault.elapsed(),
        evicted.as_ref().and_then(ResourceExt::uid),
        uids.get(&old),
        evicted
            .as_ref()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
    );
    // Through the real kubectl, which does not retry the refusal (the
    // client of this test would, until the budget allows it).
    let (code, _, said) = kubectl_ran(
        &env,
        &[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/{NS}/pods/{other}/eviction"),
            "-f",
            "-",
        ],
        &serde_json::json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": other, "namespace": NS}
        })
        .to_string(),
    );
    assert!(
        code != 0 && (said.contains("TooManyRequests") || said.contains("429")),
        "a second eviction ({other}) while {old} is down was not refused (exit {code}): {said}"
    );
    eprintln!(
        "evict: a second eviction ({other}) refused: {}",
        said.trim()
    );
    let (new, at) = settled_off(&env, &old, Duration::from_secs(30)).await;
    assert_eq!(
        pod_uids(&env, NAME).await.get(&other),
        uids.get(&other),
        "{other} was replaced: the refused eviction took it"
    );
    let measured = writer
        .check(&env, fault, "a write after the eviction", &at)
        .await;
    let events = journal(&mut env).await;
    let why = explain_failover(&events, &old, &uids[&old]);
    eprintln!("evict: {old} -> {new}: {measured}\nevict: journal: {why}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forced_deletion_of_the_primary_fails_over_without_two_primaries() {
    let mut env = Env::start("force-delete").await;
    let old = ready(&env, &replication_yaml(NAME, 3)).await;
    let writer = UnderWriter::start(&env, NAME, BULK).await;
    let uid = pod_uids(&env, NAME).await[&old].clone();
    let fault = Instant::now();
    let said = kubectl(
        &env,
        NS,
        &["delete", "pod", &old, "--force", "--grace-period=0"],
    );
    assert!(said.contains("force deleted"), "{said}");
    let (new, at) = settled_off(&env, &old, Duration::from_secs(30)).await;
    let measured = writer
        .check(&env, fault, "a write after the forced deletion", &at)
        .await;
    let events = journal(&mut env).await;
    let why = explain_failover(&events, &old, &uid);
    eprintln!("force-delete: {old} -> {new}: {measured}\nforce-delete: journal: {why}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_rollout_restart_replaces_every_pod_the_primary_handed_over_first() {
    let mut env = Env::start("rollout-restart").await;
    let old = ready(&env, &replication_yaml(NAME, 3)).await;
    let writer = UnderWriter::start(&env, NAME, BULK).await;
    let before = pod_uids(&env, NAME).await;
    let fault = Instant::now();
    kubectl(
        &env,
        NS,
        &["rollout", "restart", &format!("statefulset/{NAME}")],
    );
    env.eventually(
        Duration::from_secs(180),
        "every pod replaced after kubectl rollout restart",
        || {
            let (env, before) = (&env, &before);
            async move {
                let now = pod_uids(env, NAME).await;
                now.len() == 3 && now.iter().all(|(p, uid)| before.get(p) != Some(uid))
            }
        },
    )
    .await;
    let vkc = env.wait_ready(NAME, 3, Duration::from_secs(120)).await;
    let new = primary(&vkc);
    let at = env.pod_addr(&new).await;
    let measured = writer
        .check(&env, fault, "a write after the rollout", &at)
        .await;
    let events = journal(&mut env).await;
    let decided = journal_decisions(&events);
    let handover = decided
        .iter()
        .position(|(_, i, _)| matches!(i, Intent::Switchover { from, .. } if *from == old))
        .unwrap_or_else(|| {
            panic!(
                "no switchover from {old} decided: {:?}",
                decided_names(&events)
            )
        });
    let roll_old = decided
        .iter()
        .position(|(_, i, _)| matches!(i, Intent::RollPod { pod, .. } if *pod == old))
        .unwrap_or_else(|| panic!("no roll of {old} decided: {:?}", decided_names(&events)));
    assert!(
        handover < roll_old,
        "{old} was rolled before it handed over: {:?}",
        decided_names(&events)
    );
    let rolled: std::collections::BTreeSet<&str> = decided
        .iter()
        .filter_map(|(_, i, _)| match i {
            Intent::RollPod { pod, .. } => Some(pod.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rolled.len(), 3, "rolled {rolled:?}");
    let failovers: Vec<_> = decided
        .iter()
        .filter(|(_, _, r)| matches!(r, ReasonCode::PrimaryFailed { .. }))
        .collect();
    assert!(
        failovers.is_empty(),
        "a failover during the roll: {failovers:?}"
    );
    let restart = decided
        .iter()
        .find(|(_, i, _)| matches!(i, Intent::RollPod { .. }))
        .map(|(_, _, r)| r.name())
        .unwrap();
    eprintln!(
        "rollout-restart: {old} -> {new}: {measured}\nrollout-restart: journal: {} (first roll's reason {restart}), rolled {rolled:?}",
        decided_names(&events[decided[handover].0..=decided[roll_old].0]).join(", ")
    );
    env.finish().await;
}

/// CPU in millicores from a quantity (`2`, `1500m`, `0.5`).
fn millicores(q: &str) -> i64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => (q.parse::<f64>().unwrap() * 1000.0).round() as i64,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn preemption_of_the_primary_by_a_higher_priority_pod_fails_over() {
    if !on_kubernetes() {
        eprintln!(
            "preemption: skipped: localkube has no scheduler (pods are bound by the workload controllers), so nothing preempts; run with LOGBOOK_E2E_CONTROL_PLANE=kubernetes"
        );
        return;
    }
    const VALKEY_CPU: i64 = 300;
    let mut env = Env::start("preemption").await;
    let yaml = replication_yaml(NAME, 3).replace(
        "  storage:\n",
        &format!("  resources:\n    requests:\n      cpu: {VALKEY_CPU}m\n      memory: 64Mi\n  storage:\n"),
    );
    ready(&env, &yaml).await;
    // Which pod the scheduler takes: it sorts the candidates most
    // important first (of one priority, the one started first), counts
    // them against the budget in that order (maxUnavailable 1: the first
    // fits, the others would violate it), puts back the violating ones
    // first, and takes what it could not put back: the pod started
    // first. So the others are recreated (started later, each a second
    // apart at least: start times have whole seconds) and the one left
    // is made the primary.
    let victim = format!("{NAME}-0");
    for other in [format!("{NAME}-1"), format!("{NAME}-2")] {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let uid = pod_uids(&env, NAME).await[&other].clone();
        env.delete_pod(&other).await;
        env.eventually(
            Duration::from_secs(60),
            "the pod recreated and Ready",
            || {
                let env = &env;
                let (other, uid) = (other.clone(), uid.clone());
                async move {
                    env.pods(NAME).await.iter().any(|p| {
                        p.name_any() == other
                            && p.uid().as_deref() != Some(uid.as_str())
                            && p.status
                                .as_ref()
                                .and_then(|s| s.conditions.as_ref())
                                .is_some_and(|cs| {
                                    cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                                })
                    })
                }
            },
        )
        .await;
        env.wait_ready(NAME, 3, Duration::from_secs(120)).await;
    }
    env.wait_ready(NAME, 3, Duration::from_secs(120)).await;
    if primary(&env.vkc(NAME).await) != victim {
        request_switchover(&env, NAME, &victim).await;
        env.wait_status(
            NAME,
            Duration::from_secs(60),
            "switched to the victim",
            |v| switchover_cleared(v) && is_ready(v, 3) && primary(v) == victim,
        )
        .await;
    }
    let old = victim.clone();
    let writer = UnderWriter::start(&env, NAME, BULK).await;
    let uids = pod_uids(&env, NAME).await;

    // A preemptor that fits only once one Valkey pod is gone.
    let pods: Api<Pod> = env.api();
    let vpod = pods.get(&old).await.unwrap();
    let node = vpod.spec.as_ref().unwrap().node_name.clone().unwrap();
    let image = vpod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(env.client.clone());
    let allocatable = nodes
        .get(&node)
        .await
        .unwrap()
        .status
        .unwrap()
        .allocatable
        .unwrap()["cpu"]
        .0
        .clone();
    let all: Api<Pod> = Api::all(env.client.clone());
    let requested: i64 = all
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .flat_map(|p| p.spec.as_ref().unwrap().containers.clone())
        .filter_map(|c| c.resources?.requests?.get("cpu").map(|q| millicores(&q.0)))
        .sum();
    let free = millicores(&allocatable) - requested;
    let want = free + VALKEY_CPU / 2;
    eprintln!(
        "preemption: node {node} allocatable {allocatable}, requested {requested}m, free {free}m: the preemptor asks {want}m"
    );
    assert!(free >= 0 && want > 0, "the node is already over-committed");
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> =
        Api::all(env.client.clone());
    classes
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "disruptions-high"},
                "value": 1_000_000,
                "preemptionPolicy": "PreemptLowerPriority",
                "description": "tests/operator_disruptions.rs: preempts a Valkey pod"
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let fault = Instant::now();
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({
            "metadata": {"name": "preemptor"},
            "spec": {
                "priorityClassName": "disruptions-high",
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "hog",
                    "image": image,
                    "command": ["valkey-server", "--port", "7777", "--save", ""],
                    "resources": {"requests": {"cpu": format!("{want}m"), "memory": "16Mi"}}
                }]
            }
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    // The victim's pod is the one preempted: its DisruptionTarget
    // condition says by whom, while it terminates.
    let mut reason = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match pods.get_opt(&old).await.unwrap() {
            Some(p) if p.uid() == uids.get(&old).cloned() => {
                if let Some(c) = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget"))
                {
                    reason = c.reason.clone();
                }
            }
            _ => break,
        }
        assert!(
            Instant::now() < deadline,
            "{old} not preempted within 60 s\n{}",
            env.dump(NAME).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (pod, uid) in &uids {
        if *pod != old {
            assert_eq!(
                pods.get(pod).await.unwrap().uid().as_ref(),
                Some(uid),
                "{pod} was preempted, not the primary {old}"
            );
        }
    }
    let moved = env
        .wait_primary_moved(NAME, &old, Duration::from_secs(30))
        .await;
    let new = primary(&moved);
    let at = env.pod_addr(&new).await;
    // The replacement pod waits for room; writes go on with 2 pods.
    env.wait_acked_after(
        &writer.probe,
        Instant::now(),
        "a write with the victim pending",
    )
    .await;
    let pending = pods.get(&old).await.unwrap();
    let waits = pending.status.as_ref().and_then(|s| s.phase.clone());
    pods.delete("preemptor", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_ready(NAME, 3, Duration::from_secs(120)).await;
    assert_eq!(
        primary(&env.vkc(NAME).await),
        new,
        "the primary moved again"
    );
    let measured = writer
        .check(&env, fault, "a write after the preemption", &at)
        .await;
    let events = journal(&mut env).await;
    let why = explain_failover(&events, &old, &uids[&old]);
    classes
        .delete("disruptions-high", &DeleteParams::default())
        .await
        .unwrap();
    eprintln!(
        "preemption: {old} -> {new} (DisruptionTarget {reason:?}; its replacement {waits:?} until the preemptor left): {measured}\npreemption: journal: {why}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kubelet_evicting_the_primary_over_its_ephemeral_storage_fails_over() {
    if !on_containers() {
        eprintln!(
            "kubelet eviction: skipped: localkube's kubelet has no eviction manager; run with LOGBOOK_E2E_NODE=containers (the real kubelet)"
        );
        return;
    }
    let mut env = Env::start("kubelet-eviction").await;
    // Each pod may use 64 MiB of the node's disk outside its volume (the
    // run directory, an emptyDir; its writable layer; its logs).
    let yaml = replication_yaml(NAME, 3).replace(
        "  storage:\n",
        "  resources:\n    requests:\n      ephemeral-storage: 16Mi\n    limits:\n      ephemeral-storage: 64Mi\n  storage:\n",
    );
    let old = ready(&env, &yaml).await;
    let writer = UnderWriter::start(&env, NAME, BULK).await;
    let pods: Api<Pod> = env.api();
    let uid = pods.get(&old).await.unwrap().uid();
    // 96 MiB into the primary's emptyDir: over its limit, which the
    // kubelet's eviction manager finds at its next pass (every 10 s).
    kubectl(
        &env,
        NS,
        &[
            "exec",
            &old,
            "-c",
            "valkey",
            "--",
            "dd",
            "if=/dev/zero",
            "of=/run/valkey/fill",
            "bs=1M",
            "count=96",
        ],
    );
    let fault = Instant::now();
    let mut evicted = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    while evicted.is_none() {
        match pods.get_opt(&old).await.unwrap() {
            Some(p) if p.uid() == uid => {
                let status = p.status.unwrap_or_default();
                if status.phase.as_deref() == Some("Failed") {
                    evicted = Some((status.reason, status.message));
                }
            }
            // Gone or recreated before a poll saw it failed: the
            // journal still must have seen why.
            _ => evicted = Some((None, None)),
        }
        assert!(
            Instant::now() < deadline,
            "the kubelet did not evict {old} within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (reason, message) = evicted.unwrap();
    assert!(
        reason.is_none() || reason.as_deref() == Some("Evicted"),
        "{old} failed for {reason:?}: {message:?}"
    );
    // The kubelet's own word that it evicted the pod (the StatefulSet's
    // controller may have replaced the failed pod before a poll saw it).
    let events: Api<k8s_openapi::api::core::v1::Event> = env.api();
    let mut said = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while said.is_none() {
        said = events
            .list(
                &ListParams::default().fields(&format!("involvedObject.name={old},reason=Evicted")),
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| e.involved_object.uid == uid)
            .map(|e| {
                format!(
                    "{} ({}): {}",
                    e.reason.unwrap_or_default(),
                    e.source.and_then(|s| s.component).unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            });
        assert!(
            Instant::now() < deadline,
            "no Evicted event for {old}: it was not the kubelet's eviction"
        );
        if said.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let said = said.unwrap();
    assert!(
        said.contains("ephemeral"),
        "evicted for another reason: {said}"
    );
    let (new, at) = settled_off(&env, &old, Duration::from_secs(60)).await;
    let measured = writer
        .check(&env, fault, "a write after the kubelet's eviction", &at)
        .await;
    let events = journal(&mut env).await;
    let why = explain_failover(&events, &old, uid.as_deref().unwrap());
    eprintln!(
        "kubelet eviction: {old} -> {new} (phase Failed seen: {reason:?}; {said}): {measured}\nkubelet eviction: journal: {why}"
    );
    env.finish().await;
}

/// The ValkeyCluster deleted under a writer with `policy`; with
/// `delete_pvcs` its PVCs must go, else they must stay and a cluster
/// created again on them must hold every write the first acknowledged.
async fn delete_the_owner(policy: PropagationPolicy, delete_pvcs: bool) {
    let label = format!("owner-{policy:?}");
    let mut env = Env::start(&label).await;
    let mut yaml = replication_yaml(NAME, 3);
    if delete_pvcs {
        yaml = yaml.replace(
            "metadata:\n  name: demo\n",
            "metadata:\n  name: demo\n  annotations:\n    valkey.logbook.dev/delete-pvcs-on-delete: \"true\"\n",
        );
    }
    ready(&env, &yaml).await;
    let stream = env.stream(NAME).await;
    let writer = UnderWriter::start(&env, NAME, BULK).await;
    let claims: Api<PersistentVolumeClaim> = env.api();
    let selector = format!("valkey.logbook.dev/cluster={NAME}");
    let before = claims
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(before, 3, "PVCs before the deletion");
    // A second of writes before it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fault = Instant::now();
    env.vkcs()
        .delete(
            NAME,
            &DeleteParams {
                propagation_policy: Some(policy.clone()),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let vkc = env.vkcs().get_opt(NAME).await.unwrap();
        let pods = env.pods(NAME).await;
        if vkc.is_none() && pods.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let claims: Api<PersistentVolumeClaim> = env.api();
            let owned = |m: &kube::api::ObjectMeta| {
                format!(
                    "{} finalizers {:?} deleting {} owners {:?}",
                    m.name.clone().unwrap_or_default(),
                    m.finalizers,
                    m.deletion_timestamp.is_some(),
                    m.owner_references
                        .iter()
                        .flatten()
                        .map(|o| format!(
                            "{} {} block {:?}",
                            o.kind, o.name, o.block_owner_deletion
                        ))
                        .collect::<Vec<_>>()
                )
            };
            let left: Vec<String> = vkc
                .iter()
                .map(|v| owned(&v.metadata))
                .chain(pods.iter().map(|p| owned(&p.metadata)))
                .chain(
                    claims
                        .list(&ListParams::default())
                        .await
                        .unwrap()
                        .items
                        .iter()
                        .map(|c| owned(&c.metadata)),
                )
                .collect();
            let (_, everything, _) = kubectl_ran(
                &env,
                &[
                    "get",
                    "all,configmaps,secrets,poddisruptionbudgets,endpointslices,controllerrevisions,leases,serviceaccounts,roles,rolebindings,networkpolicies",
                    "-o",
                    "custom-columns=KIND:.kind,NAME:.metadata.name,OWNERS:.metadata.ownerReferences[*].name,DELETING:.metadata.deletionTimestamp,FINALIZERS:.metadata.finalizers",
                ],
                "",
            );
            panic!(
                "{policy:?}: the ValkeyCluster or its pods still there 90 s after the deletion:\n{}\n{everything}\n--- operator log ---\n{}",
                left.join("\n"),
                env.logs.tail(30).join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = fault.elapsed();
    let log = writer.stop().await;
    let acked = log.acked_keys();
    let after: Vec<_> = log
        .attempts
        .iter()
        .filter(|a| a.acked && a.started > fault)
        .collect();
    let last_ack = after
        .iter()
        .map(|a| a.ended)
        .max()
        .map(|t| t.duration_since(fault));
    let left = claims
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items;
    let kept = if delete_pvcs {
        env.eventually(Duration::from_secs(60), "the PVCs deleted", || {
            let claims = claims.clone();
            let selector = selector.clone();
            async move {
                claims
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .all(|c| c.metadata.deletion_timestamp.is_some())
            }
        })
        .await;
        "none kept (delete-pvcs-on-delete)".to_owned()
    } else {
        assert_eq!(
            left.len(),
            3,
            "PVCs after the deletion: {:?}",
            left.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
        );
        assert!(
            left.iter().all(|c| c.metadata.deletion_timestamp.is_none()),
            "a PVC is being deleted"
        );
        // The same cluster again on the kept claims: every write the
        // first one acknowledged, before and after its deletion began.
        ready(&env, &replication_yaml(NAME, 3)).await;
        let password = env.password(NAME).await;
        let at = env.pod_addr(&primary(&env.vkc(NAME).await)).await;
        let missing = logbook_bench::missing_keys(
            &at,
            Some(&logbook::valkey::Password::new(&password)),
            &log.prefix,
            &acked,
        )
        .await
        .unwrap();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged writes not on the kept volumes ({} of them acknowledged after the deletion began): {:?}",
            missing.len(),
            acked.len(),
            after.len(),
            &missing[..missing.len().min(20)]
        );
        assert_eq!(count_missing(&at, &password, "bulk", BULK).await, 0);
        "3 kept, recreated: every acknowledged write there".to_owned()
    };
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let requested = first_event(&events, |e| matches!(e, Event::DeletionRequested { .. }))
        .expect("DeletionRequested journaled");
    assert!(
        matches!(events[requested].body, Event::DeletionRequested { delete_pvcs: d } if d == delete_pvcs),
        "{:?}",
        events[requested].body
    );
    let done = events[requested..]
        .iter()
        .filter_map(|e| match &e.body {
            Event::OwnedObjectsDeleted { objects, complete } => Some((objects.clone(), *complete)),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(
        done.last().is_some_and(|(_, complete)| *complete),
        "the deletion never completed: {done:?}"
    );
    let failovers: Vec<_> = journal_decisions(&events[requested..])
        .into_iter()
        .filter(|(_, i, _)| matches!(i, Intent::PromoteReplica { .. }))
        .collect();
    assert!(
        failovers.is_empty(),
        "a promotion decided while the cluster was being deleted: {failovers:?}"
    );
    let objects: Vec<String> = done.into_iter().flat_map(|(o, _)| o).collect();
    eprintln!(
        "{label}: gone after {gone:?}; {} writes acknowledged, {} after the deletion began (the last {last_ack:?} after), {}; PVCs: {kept}; journal: DeletionRequested {{ delete_pvcs: {delete_pvcs} }} -> OwnedObjectsDeleted {objects:?}",
        acked.len(),
        after.len(),
        log.failed_writes()
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_deleted_in_the_foreground_keeps_its_volumes_and_every_acknowledged_write() {
    delete_the_owner(PropagationPolicy::Foreground, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_deleted_in_the_background_with_delete_pvcs_leaves_no_volume() {
    delete_the_owner(PropagationPolicy::Background, true).await;
}
