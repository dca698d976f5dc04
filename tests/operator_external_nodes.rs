//! External access (issue 61) on the real nodes
//! (`LOGBOOK_E2E_NODE=containers`, three kubelets with containerd and
//! kube-proxy): a 3-shard Cluster with `externalAccess: {type: NodePort}`
//! used from a network namespace on the nodes' link that reaches the
//! nodes' addresses and nothing else (`LocalContainers::outside`, as in
//! `node_outside`): no pod address, no ClusterIP.
//!
//! Every address the Cluster announces (`CLUSTER SHARDS` asked from that
//! namespace, the connection Secret's `externalNodes`) is the InternalIP
//! of the pod's node and its Service's node port; redis-py's
//! `RedisCluster` (`tests/clients/outside.py`, run in the namespace and
//! allowed to dial the node addresses only) writes through a shard
//! primary deleted and a reshard 3 → 4 (8 pods on 3 nodes: the pods'
//! anti-affinity is preferred, not required), losing no acknowledged
//! write and dialling nothing but the nodes. On localkube the same is
//! `operator_external`.
//!
//! A Sentinel cluster exposed the same way: the data pods announce their
//! node's address and node port to the Sentinels, which name only those
//! (asked from the namespace), and redis-py's `Sentinel` there, given the
//! Sentinels' node ports (`externalSentinels`), follows the primary
//! through its deletion.
//!
//! Ignored by default: it needs the real nodes. `make test-node` runs it
//! (`LOGBOOK_E2E_NODE=containers ... -- --ignored operator_external_nodes::`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use logbook::local::containers::LocalContainers;
use operator_common::external::{
    OutsideClient, assert_outside_only, expected_endpoints, host_of, node_hosts, secret_key,
    sentinel_cluster_addresses, wait_announced, wait_sentinel_names_external,
};
use operator_common::*;

const NODES: usize = 3;
/// Containers start slower than localkube's processes.
const READY: Duration = Duration::from_secs(240);

fn containers(env: &Env) -> &LocalContainers {
    match &env.server {
        Some(Backend::Containers(c)) => c,
        _ => panic!("this test needs the real nodes (LOGBOOK_E2E_NODE=containers)"),
    }
}

/// Every pod's own address: none may be announced.
async fn pod_ips(env: &Env) -> Vec<String> {
    env.api::<Pod>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.status.and_then(|s| s.pod_ip))
        .collect()
}

/// What is announced is the pod's node's InternalIP (as the outside
/// namespace reaches it) and its Service's node port, for every pod; the
/// connection Secret and `CLUSTER SHARDS` asked from outside name exactly
/// those (`wait_announced`), no pod address among them.
async fn announced_from_outside(
    env: &Env,
    outside: &logbook::local::containers::OutsideClient,
    wrap: &[String],
    password: &str,
    pods: usize,
) -> Vec<String> {
    let seeds = wait_announced(env, wrap, password, false, pods).await;
    let expected = expected_endpoints(env).await;
    for (pod, (host, port, bus)) in &expected {
        let node = env.node_of(pod).await;
        let reached = outside
            .node(&node)
            .unwrap_or_else(|| panic!("{pod}'s node {node} is not reached from outside"));
        assert_eq!(
            host,
            &reached.internal_ip.to_string(),
            "{pod} on {node} announces {host}:{port}"
        );
        assert!(bus.is_some(), "{pod}'s Service has no bus node port");
    }
    let own = pod_ips(env).await;
    assert!(
        seeds
            .iter()
            .all(|s| !own.iter().any(|ip| s.starts_with(&format!("{ip}:")))),
        "a pod address announced: {seeds:?} (pods {own:?})"
    );
    seeds
}

/// `cmd` given 10 s: what it printed, or that it did not end.
async fn run(mut cmd: tokio::process::Command) -> String {
    cmd.kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(10), cmd.output()).await {
        Ok(Ok(out)) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(Err(e)) => format!("cannot run: {e}"),
        Err(_) => "no answer in 10 s".to_owned(),
    }
}

/// What each pod sees (`CLUSTER NODES`, `INFO replication`, asked from
/// the host at its pod address) and whether every announced endpoint
/// answers from inside a pod, from each node and from outside: printed
/// when the Cluster does not form, to tell a network from a product fault.
async fn diagnose(env: &Env, outside: &logbook::local::containers::OutsideClient, password: &str) {
    let expected = expected_endpoints(env).await;
    let pods = env.pods("shop").await;
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap();
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        for what in [&["cluster", "nodes"][..], &["info", "replication"][..]] {
            let mut cmd = tokio::process::Command::new("redis-cli");
            cmd.args(["-h", &ip, "--no-auth-warning", "-a", password])
                .args(what);
            eprintln!("--- {name} ({ip}) {what:?}:\n{}", run(cmd).await);
        }
    }
    let from = pods
        .first()
        .and_then(|p| p.metadata.name.clone())
        .unwrap_or_default();
    for (pod, (host, port, bus)) in &expected {
        let mut targets = vec![(*port, "client")];
        if let Some(b) = bus {
            targets.push((*b, "bus"));
        }
        for (port, kind) in targets {
            let port = port.to_string();
            let mut lines = Vec::new();
            let mut cmd = tokio::process::Command::new(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl"),
            );
            cmd.arg("--kubeconfig")
                .arg(env.write_kubeconfig())
                .args(["exec", &from, "-c", "valkey", "--"])
                .args([
                    "timeout",
                    "5",
                    "valkey-cli",
                    "-h",
                    host,
                    "-p",
                    &port,
                    "ping",
                ]);
            lines.push(format!("from pod {from}: {}", run(cmd).await));
            for node in env.nodes() {
                let mut cmd = tokio::process::Command::new("ip");
                cmd.args(["netns", "exec", &node.name, "timeout", "5", "redis-cli"])
                    .args(["-h", host, "-p", &port, "ping"]);
                lines.push(format!("from node {}: {}", node.name, run(cmd).await));
            }
            let mut cmd = outside.command("timeout");
            cmd.args(["5", "redis-cli", "-h", host, "-p", &port, "ping"]);
            lines.push(format!("from outside: {}", run(cmd).await));
            eprintln!("--- {pod}'s {kind} {host}:{port}: {}", lines.join("; "));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node)"]
async fn a_cluster_by_node_ports_serves_a_client_outside_the_nodes_through_a_failover_and_a_reshard()
 {
    let started = Instant::now();
    let env = Env::start_on_nodes("external-nodes", NODES).await;
    let outside = containers(&env).outside("client").await.unwrap();
    let wrap: Vec<String> = ["ip", "netns", "exec", outside.netns()]
        .map(str::to_owned)
        .to_vec();
    let reachable: Vec<String> = outside
        .node_addresses()
        .iter()
        .map(ToString::to_string)
        .collect();

    let mut yaml = cluster_yaml("shop");
    yaml.push_str("  externalAccess:\n    enabled: true\n    type: NodePort\n");
    env.apply_yaml(&yaml).await;
    let deadline = Instant::now() + Duration::from_secs(150);
    let formed = loop {
        if balanced(&env.vkc("shop").await, 3) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if !formed {
        diagnose(&env, &outside, &env.password("shop").await).await;
    }
    env.wait_status("shop", Duration::from_secs(1), "formed", |v| balanced(v, 3))
        .await;
    eprintln!("formed on {NODES} nodes after {:?}", started.elapsed());
    let password = env.password("shop").await;
    let seeds = announced_from_outside(&env, &outside, &wrap, &password, 6).await;
    let allow = node_hosts(&env).await;
    assert!(
        allow.iter().all(|h| reachable.contains(h)),
        "announced nodes {allow:?}, the outside reaches {reachable:?}"
    );
    let url = secret_key(&env, "externalUrl").await.unwrap();
    assert!(
        url.starts_with("redis://") && allow.iter().any(|h| url.contains(h.as_str())),
        "externalUrl {url:?}"
    );
    eprintln!("announced from outside: {seeds:?}");

    let mut client = OutsideClient::start(&wrap, "cluster", &seeds, &allow, &password, None, &[]);
    client
        .wait_more(100, "writes acknowledged from outside")
        .await;

    // A shard primary goes: the operator hands the shard over first.
    let primary = primaries(&env.vkc("shop").await)
        .into_iter()
        .next()
        .unwrap();
    eprintln!(
        "deleting shard primary {primary} on {}",
        env.node_of(&primary).await
    );
    env.delete_pod(&primary).await;
    env.wait_status("shop", READY, "failed over and back to 6", |v| {
        balanced(v, 3) && !primaries(v).contains(&primary)
    })
    .await;
    announced_from_outside(&env, &outside, &wrap, &password, 6).await;
    client
        .wait_more(100, "writes acknowledged after the failover")
        .await;
    eprintln!("failed over after {:?}", started.elapsed());

    // A fourth shard: its pods get Services, node addresses and announce
    // them; the client follows the slots moved to it.
    reshard_to(&env, &password, 4, READY).await;
    announced_from_outside(&env, &outside, &wrap, &password, 8).await;
    client
        .wait_more(100, "writes acknowledged after the reshard")
        .await;
    eprintln!("resharded after {:?}", started.elapsed());

    let report = client.finish().await;
    eprintln!("outside client: {report:?}");
    assert_outside_only(&report, &allow, 300);

    outside.shutdown().await.unwrap();
    env.finish().await;
}

/// A Sentinel cluster by node ports: a client in the outside namespace
/// finds the primary through the Sentinels' node ports and follows it
/// through the primary's deletion; every address a Sentinel names (asked
/// from that namespace) is a data pod's node address and node port.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node)"]
async fn a_sentinel_cluster_by_node_ports_serves_a_client_outside_the_nodes_through_a_failover() {
    let started = Instant::now();
    let env = Env::start_on_nodes("external-sentinel-nodes", NODES).await;
    let outside = containers(&env).outside("client").await.unwrap();
    let wrap: Vec<String> = ["ip", "netns", "exec", outside.netns()]
        .map(str::to_owned)
        .to_vec();
    let reachable: Vec<String> = outside
        .node_addresses()
        .iter()
        .map(ToString::to_string)
        .collect();

    let mut yaml = sentinel_yaml("shop");
    yaml.push_str("  externalAccess:\n    enabled: true\n    type: NodePort\n");
    env.apply_yaml(&yaml).await;
    env.wait_ready("shop", 3, READY).await;
    eprintln!("ready on {NODES} nodes after {:?}", started.elapsed());
    for pod in env
        .api::<Pod>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
    {
        let name = pod.metadata.name.clone().unwrap();
        eprintln!("{name} on {}", env.node_of(&name).await);
    }
    let password = env.password("shop").await;
    let (sentinels, master, nodes) = sentinel_cluster_addresses(&env, 3).await;
    let mut allow = node_hosts(&env).await;
    allow.extend(sentinels.iter().map(|s| host_of(s)));
    allow.sort();
    allow.dedup();
    assert!(
        allow.iter().all(|h| reachable.contains(h)),
        "Sentinels {sentinels:?} and data pods {nodes:?} on hosts {allow:?}, \
         the outside reaches {reachable:?}"
    );
    let own = pod_ips(&env).await;
    assert!(
        sentinels
            .iter()
            .chain(&nodes)
            .all(|a| !own.contains(&host_of(a))),
        "a pod address in the connection Secret: Sentinels {sentinels:?}, nodes {nodes:?} \
         (pods {own:?})"
    );
    eprintln!("Sentinels {sentinels:?} (master {master:?}), nodes {nodes:?}, allow {allow:?}");

    let mut client = OutsideClient::start(
        &wrap,
        "sentinel",
        &sentinels,
        &allow,
        &password,
        None,
        &["--master", &master],
    );
    client
        .wait_more(100, "writes acknowledged from outside")
        .await;
    eprintln!(
        "{} writes acknowledged from outside after {:?}",
        client.acked(),
        started.elapsed()
    );

    let old = primary(&env.vkc("shop").await);
    let named =
        wait_sentinel_names_external(&env, &wrap, &sentinels[0], &password, &master, &old, &nodes)
            .await;
    eprintln!("Sentinel names {old} at {named}");

    eprintln!("deleting primary {old} on {}", env.node_of(&old).await);
    let deleted = Instant::now();
    env.delete_pod(&old).await;
    let vkc = env.wait_primary_moved("shop", &old, READY).await;
    let new = primary(&vkc);
    eprintln!(
        "primary moved to {new} on {} {:?} after the deletion",
        env.node_of(&new).await,
        deleted.elapsed()
    );
    client
        .wait_more(100, "writes acknowledged after the failover")
        .await;
    eprintln!(
        "{} writes acknowledged, 100 more {:?} after the deletion",
        client.acked(),
        deleted.elapsed()
    );
    let named =
        wait_sentinel_names_external(&env, &wrap, &sentinels[0], &password, &master, &new, &nodes)
            .await;
    eprintln!(
        "Sentinel names the new primary {new} at {named} {:?} after the deletion",
        deleted.elapsed()
    );

    let report = client.finish().await;
    eprintln!("outside client: {report:?}; {:?} in all", started.elapsed());
    assert_outside_only(&report, &allow, 200);

    outside.shutdown().await.unwrap();
    env.finish().await;
}
