//! A client outside the cluster on the real nodes
//! (`LOGBOOK_E2E_NODE=containers`; `scripts/node.sh outside`): a network
//! namespace on the nodes' link that reaches the nodes and nothing else.
//! Through it, a plain `type: NodePort` Service in front of a Valkey pod
//! answers `PING` on every node's address (the `InternalIP` its Node
//! reports, and its place on the link), while the pod's own address and
//! the Service's ClusterIP, which answer inside the cluster, do not
//! answer it; a LoadBalancer Service's address, routed by a second client
//! through a node, answers that client. What `spec.externalAccess` (issue
//! 61) is to be proved with.
//!
//! Ignored by default: they need the real nodes. `make test-node` runs
//! them (`LOGBOOK_E2E_NODE=containers ... -- --ignored node_outside::`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use logbook::local::containers::{LocalContainers, OutsideClient};
use operator_common::*;

/// The pod and its Service.
const TARGET: &str = "outside-target";
/// A Valkey pod without a password (protected mode off, so that a client
/// not on its loopback is answered), and a NodePort Service in front.
const TARGET_YAML: &str = "apiVersion: v1
kind: Pod
metadata:
  name: outside-target
  labels: { app: outside-target }
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: valkey
      image: docker.io/valkey/valkey:9.1
      imagePullPolicy: Never
      command: [valkey-server, --protected-mode, 'no', --save, '', --appendonly, 'no']
      ports: [{ containerPort: 6379 }]
      readinessProbe: { tcpSocket: { port: 6379 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata:
  name: outside-target
spec:
  type: NodePort
  selector: { app: outside-target }
  ports: [{ port: 6379, targetPort: 6379 }]
";
/// A LoadBalancer Service in front of the same pod; its address is set
/// in its status by the test, as a load-balancer implementation does.
const LB_YAML: &str = "apiVersion: v1
kind: Service
metadata:
  name: outside-lb
spec:
  type: LoadBalancer
  selector: { app: outside-target }
  ports: [{ port: 6379, targetPort: 6379 }]
";
/// The load-balancer block routed to a node, and the Service's address in
/// it (TEST-NET-2, used by nothing here).
const LB_BLOCK: &str = "198.51.100.0/24";
const LB_IP: &str = "198.51.100.10";
/// Containers start slower than processes.
const READY: Duration = Duration::from_secs(180);
/// How long a packet that goes nowhere is given: an unreachable address
/// fails at once, an answer takes milliseconds.
const NO_ANSWER_AFTER: Duration = Duration::from_secs(5);

fn containers(env: &Env) -> &LocalContainers {
    match &env.server {
        Some(Backend::Containers(c)) => c,
        _ => panic!("this test needs the real nodes (LOGBOOK_E2E_NODE=containers)"),
    }
}

fn valkey_cli() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/valkey-cli-8.0")
}

/// `valkey-cli -h host -p port PING` run by `cmd` (the host's or the
/// outside client's): what it printed, or that it did not end in time.
async fn ping(mut cmd: tokio::process::Command, host: &str, port: u16) -> String {
    cmd.args(["-h", host, "-p", &port.to_string(), "PING"]);
    match tokio::time::timeout(NO_ANSWER_AFTER, cmd.output()).await {
        Ok(Ok(out)) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(Err(e)) => panic!("cannot run valkey-cli: {e}"),
        Err(_) => format!("no answer in {NO_ANSWER_AFTER:?}"),
    }
}

async fn ping_outside(outside: &OutsideClient, host: &str, port: u16) -> String {
    ping(outside.command(valkey_cli()), host, port).await
}

/// From inside the cluster: in node `node`'s network namespace (its name
/// is the Node's), where kube-proxy's rules are. Not from the host, whose
/// own addresses could shadow a pod's or a ClusterIP's.
async fn ping_on_node(node: &str, host: &str, port: u16) -> String {
    let mut cmd = tokio::process::Command::new("ip");
    cmd.args(["netns", "exec", node]).arg(valkey_cli());
    ping(cmd, host, port).await
}

/// The target Ready; its pod IP, ClusterIP and nodePort.
async fn target_ready(env: &Env) -> (String, String, u16) {
    kubectl_apply(
        env,
        NS,
        TARGET_YAML,
        "the target pod and its NodePort Service",
    );
    env.eventually(READY, "the target pod Ready", || async {
        env.api::<Pod>().get(TARGET).await.is_ok_and(|p| {
            p.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let pod_ip = env
        .api::<Pod>()
        .get(TARGET)
        .await
        .unwrap()
        .status
        .and_then(|s| s.pod_ip)
        .expect("the pod has an address");
    let spec = env
        .api::<Service>()
        .get(TARGET)
        .await
        .unwrap()
        .spec
        .unwrap();
    let cluster_ip = spec.cluster_ip.expect("a ClusterIP");
    let node_port = spec.ports.unwrap()[0].node_port.expect("a nodePort");
    (pod_ip, cluster_ip, u16::try_from(node_port).unwrap())
}

/// Every Node's `InternalIP`, by name.
async fn internal_ips(env: &Env) -> Vec<(String, Ipv4Addr)> {
    let nodes = kube::Api::<Node>::all(env.client.clone())
        .list(&Default::default())
        .await
        .unwrap();
    nodes
        .items
        .into_iter()
        .map(|n| {
            let ip = n
                .status
                .and_then(|s| s.addresses)
                .unwrap_or_default()
                .into_iter()
                .find(|a| a.type_ == "InternalIP")
                .expect("an InternalIP")
                .address;
            (n.metadata.name.unwrap(), ip.parse().unwrap())
        })
        .collect()
}

/// On `count` nodes: the NodePort answers the outside client on each
/// node's addresses, the pod and the ClusterIP do not; then nothing of the
/// client is left.
async fn nodeport_answers_outside_only(count: usize) {
    let env = Env::start_without_operator_on(&format!("outside-{count}"), count).await;
    let outside = containers(&env).outside("client").await.unwrap();
    let netns = Path::new("/run/netns").join(outside.netns());
    assert!(netns.exists(), "{netns:?}");
    assert_eq!(outside.nodes().len(), count, "{:?}", outside.nodes());

    // What the nodes announce is what the client reaches.
    for (name, ip) in internal_ips(&env).await {
        let node = outside
            .node(&name)
            .unwrap_or_else(|| panic!("node {name} not reached from outside"));
        assert_eq!(node.internal_ip, ip, "{name}'s InternalIP");
    }

    let (pod_ip, cluster_ip, node_port) = target_ready(&env).await;
    eprintln!("the pod {pod_ip} is on {}", env.node_of(TARGET).await);
    // The pod and the Service answer inside the cluster: what fails from
    // outside fails for the network's sake. kube-proxy writes a Service's
    // rules within a second or so of its endpoint turning Ready (until
    // then it rejects).
    let inside = containers(&env).nodes()[0].name.clone();
    for addr in [&pod_ip, &cluster_ip] {
        env.eventually(
            Duration::from_secs(30),
            &format!("PONG from {addr}:6379 on {inside}"),
            || async { ping_on_node(&inside, addr, 6379).await == "PONG" },
        )
        .await;
    }

    let started = Instant::now();
    for node in outside.nodes() {
        for addr in [node.internal_ip, node.fabric] {
            let addr = addr.to_string();
            env.eventually(
                Duration::from_secs(30),
                &format!("PONG from {addr}:{node_port}"),
                || {
                    let (outside, addr) = (&outside, addr.clone());
                    async move { ping_outside(outside, &addr, node_port).await == "PONG" }
                },
            )
            .await;
        }
    }
    eprintln!(
        "the NodePort {node_port} answered outside on every node's addresses after {:?}",
        started.elapsed()
    );

    load_balancer_answers_outside(&env).await;

    for (what, addr, port) in [
        ("the pod", &pod_ip, 6379),
        ("the ClusterIP", &cluster_ip, 6379),
        (
            "the host",
            &containers(&env).host_address().to_string(),
            node_port,
        ),
    ] {
        let said = ping_outside(&outside, addr, port).await;
        assert!(
            !said.contains("PONG"),
            "{what} ({addr}:{port}) answered the outside client: {said}"
        );
        eprintln!("{what} ({addr}:{port}) from outside: {said}");
    }

    let index = outside.netns().split('-').nth(2).unwrap().to_owned();
    outside.shutdown().await.unwrap();
    assert!(!netns.exists(), "{netns:?} left behind");
    env.finish().await;
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n == &format!("logbook-fabric-{index}")
                        || n.starts_with(&format!("logbook-outside-{index}-"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

/// A LoadBalancer Service's address, routed by a second outside client
/// to the last node (on two, possibly not the pod's), answers that client
/// through the node's kube-proxy; then the client is dropped.
async fn load_balancer_answers_outside(env: &Env) {
    kubectl_apply(env, NS, LB_YAML, "the LoadBalancer Service");
    let status = serde_json::json!({
        "status": { "loadBalancer": { "ingress": [{ "ip": LB_IP, "ipMode": "VIP" }] } }
    });
    env.api::<Service>()
        .patch_status(
            "outside-lb",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&status),
        )
        .await
        .unwrap();
    let via = containers(env).nodes().last().unwrap().name.clone();
    let client = containers(env)
        .outside_with_load_balancer("lb", LB_BLOCK, &via)
        .await
        .unwrap();
    env.eventually(
        Duration::from_secs(30),
        &format!("PONG from {LB_IP}:6379 routed through {via}"),
        || async { ping_outside(&client, LB_IP, 6379).await == "PONG" },
    )
    .await;
    let gone = Path::new("/run/netns").join(client.netns());
    drop(client);
    assert!(!gone.exists(), "{gone:?} left behind after a drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real node: LOGBOOK_E2E_NODE=containers (make test-node)"]
async fn a_nodeport_answers_a_client_outside_one_node_and_nothing_else_does() {
    nodeport_answers_outside_only(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs several real nodes: LOGBOOK_E2E_NODE=containers (make test-node)"]
async fn a_nodeport_answers_a_client_outside_on_every_node() {
    nodeport_answers_outside_only(2).await;
}
