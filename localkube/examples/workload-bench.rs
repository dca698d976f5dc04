//! localkube's workload speed with real `valkey-server` processes:
//! a StatefulSet of 12 Valkey pods from creation to all Ready, and a killed
//! container noticed (its pod status updated) — measured through the real
//! kube-rs client, as the operator sees it. Needs root and `make setup`.
//!
//! `cargo run --release -p logbook-localkube --example workload-bench`
//! prints one JSON object. Targets (issue 4): 12 pods Ready < 5 s; a kill
//! noticed and the status updated < 500 ms.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use logbook_localkube::{Config, LocalKube, WorkloadsConfig};

fn statefulset(name: &str, replicas: i32, policy: &str) -> Result<StatefulSet> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name, "replicas": replicas, "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                "name": "valkey", "image": "valkey/valkey:9.1",
                "args": ["--save", "", "--appendonly", "no"],
                "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 1}
            }]}}
        }
    }))?)
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Creates a StatefulSet and returns the time until `replicas` pods are Ready.
async fn time_to_ready(
    client: &kube::Client,
    name: &str,
    replicas: i32,
    policy: &str,
) -> Result<Duration> {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let stss: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let rv = pods
        .list_metadata(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = pods
        .watch(
            &WatchParams::default()
                .labels(&format!("app={name}"))
                .timeout(120),
            &rv,
        )
        .await?
        .boxed();
    let started = Instant::now();
    stss.create(
        &PostParams::default(),
        &statefulset(name, replicas, policy)?,
    )
    .await?;
    let mut ready_pods = std::collections::BTreeSet::new();
    while ready_pods.len() < usize::try_from(replicas)? {
        match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
            Ok(Some(Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)))) => {
                let pod_name = p.metadata.name.clone().unwrap_or_default();
                if ready(&p) {
                    ready_pods.insert(pod_name);
                } else {
                    ready_pods.remove(&pod_name);
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("watch error: {e}"),
            Ok(None) => bail!("watch ended"),
            Err(_) => bail!(
                "pods of {name} not Ready within 60 s ({} ready)",
                ready_pods.len()
            ),
        }
    }
    Ok(started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        workloads: Some(WorkloadsConfig {
            state_dir: dir.path().to_path_buf(),
            kubelet: true,
            proxy: true,
            local_images: Vec::new(),
        }),
        ..Config::default()
    };
    let server = LocalKube::start(config)
        .await
        .context("start localkube with workloads (root and `make setup` needed)")?;
    let client = kube::Client::try_from(kube::Config::new(server.url().parse()?))?;

    let parallel = time_to_ready(&client, "par", 12, "Parallel").await?;
    let ordered = time_to_ready(&client, "ord", 12, "OrderedReady").await?;

    // Kill a container and time until its pod's status shows it.
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let faults = server.faults().context("no kubelet")?;
    let mut kills = Vec::new();
    for round in 0..5 {
        let name = format!("par-{round}");
        let before = pods.get(&name).await?;
        let restarts = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .map_or(0, |c| c.restart_count)
        };
        let count = restarts(&before);
        let rv = before.metadata.resource_version.clone().unwrap_or_default();
        let mut stream = pods
            .watch(
                &WatchParams::default()
                    .fields(&format!("metadata.name={name}"))
                    .timeout(60),
                &rv,
            )
            .await?
            .boxed();
        let started = Instant::now();
        faults.kill("default", &name, None).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
                Ok(Some(Ok(WatchEvent::Modified(p)))) if !ready(&p) || restarts(&p) > count => {
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => bail!("watch error: {e}"),
                Ok(None) => bail!("watch ended"),
                Err(_) => bail!("the kill of {name} was not noticed within 30 s"),
            }
        }
        kills.push(started.elapsed());
        // Let it come back before the next round.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    kills.sort();
    let worst_kill = kills.last().copied().unwrap_or_default();
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;

    for name in ["par", "ord"] {
        let stss: Api<StatefulSet> = Api::default_namespaced(client.clone());
        stss.delete(name, &DeleteParams::default()).await?;
    }
    let report = serde_json::json!({
        "parallel_12_pods_ready_ms": ms(parallel),
        "ordered_ready_12_pods_ready_ms": ms(ordered),
        "kill_noticed_ms": kills.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "kill_noticed_worst_ms": ms(worst_kill),
        "target_12_ready_5s": parallel < Duration::from_secs(5) && ordered < Duration::from_secs(5),
        "target_kill_500ms": worst_kill < Duration::from_millis(500),
    });
    println!("{report}");
    server.shutdown().await;
    Ok(())
}
