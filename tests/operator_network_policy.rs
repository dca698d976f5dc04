//! `spec.networkPolicy` enforced by a real policy engine: on the real node
//! (`LOGBOOK_E2E_NODE=containers`), kube-network-policies (kind's engine,
//! docs/node.md) decides every new connection to and from the pods. For
//! each topology with the policy on: the cluster becomes Ready (the
//! operator, replication, the Cluster bus and Sentinel all get through);
//! a client pod carrying the allowed label connects and writes; a pod
//! without it times out, on the Service and on the pods (and on Sentinel's
//! port), until it is given the label; the primary's pod is deleted, the
//! failover completes under the policy, and the allowed client writes
//! again while the other pod still cannot connect.
//!
//! The operator runs on the host in these tests, not in a pod: its
//! connections reach the pods from the host's end of the node's link,
//! which no pod or namespace selector can name. The policy admits it by
//! an `ipBlock` of that one address in `allowFrom`, as a user running the
//! operator outside the cluster must; an operator in a pod is admitted by
//! the policy's own operator rule (`scripts/test-node.sh`: the Cluster
//! sample, which enables the policy, Ready under the chart's operator).
//!
//! Elsewhere (localkube's process kubelet) nothing enforces a policy: the
//! tests say so and pass without running.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::process::Command;
use std::time::{Duration, Instant};

use operator_common::*;

/// The label the policy's `allowFrom` admits.
const LABEL: &str = "logbook.test/client";
/// The client pod carrying it.
const INSIDE: &str = "client-allowed";
/// The pod without it.
const OUTSIDE: &str = "client-outside";
/// The Valkey image: `valkey-cli`, `sh` and `timeout`.
const IMAGE: &str = "docker.io/valkey/valkey:9.1";
/// How long a connection the policy drops is given before it counts as
/// blocked: a refused or reset one fails at once, an allowed one takes
/// milliseconds.
const BLOCKED_AFTER_SECONDS: &str = "4";

fn skipped(what: &str) -> bool {
    if on_containers() {
        return false;
    }
    eprintln!(
        "network policy ({what}): skipped: no policy engine runs on localkube's process kubelet; run with LOGBOOK_E2E_NODE=containers (the real node runs kube-network-policies)"
    );
    true
}

/// `yaml` with the policy on, admitting pods labelled [`LABEL`]`=yes`
/// and the host the operator runs on.
fn with_policy(env: &Env, yaml: &str) -> String {
    let [a, b, c, d] = env.host_for_pods();
    yaml.replace(
        "  storage:\n",
        &format!(
            "  networkPolicy:\n    enabled: true\n    allowFrom:\n      - podSelector:\n          matchLabels:\n            {LABEL}: \"yes\"\n      - ipBlock:\n          cidr: {a}.{b}.{c}.{d}/32\n  storage:\n"
        ),
    )
}

/// The two client pods, Running: one with the allowed label, one with
/// another value of it.
async fn start_clients(env: &Env) {
    for (pod, value) in [(INSIDE, "yes"), (OUTSIDE, "no")] {
        kubectl_apply(
            env,
            NS,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  labels:\n    {LABEL}: \"{value}\"\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n    - name: cli\n      image: {IMAGE}\n      imagePullPolicy: Never\n      command: [\"sleep\", \"86400\"]\n"
            ),
            pod,
        );
    }
    for pod in [INSIDE, OUTSIDE] {
        kubectl(
            env,
            NS,
            &[
                "wait",
                "--for=condition=Ready",
                &format!("pod/{pod}"),
                "--timeout=120s",
            ],
        );
    }
}

/// What a `valkey-cli` run in a client pod ended with.
#[derive(Debug, PartialEq, Eq)]
enum Cli {
    /// It ran; its output.
    Ran(String),
    /// `timeout` ended it: the connection never opened.
    TimedOut,
    /// Anything else (exit code, output).
    Failed(i32, String),
}

/// `valkey-cli -h host -p port args` in `pod`, given
/// [`BLOCKED_AFTER_SECONDS`] to finish.
fn cli(env: &Env, pod: &str, addr: &str, password: &str, args: &[&str]) -> Cli {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join(".tools/bin/kubectl"))
        .arg("--kubeconfig")
        .arg(env.write_kubeconfig())
        .args(["--namespace", NS, "exec", pod, "-c", "cli", "--"])
        .args([
            "timeout",
            BLOCKED_AFTER_SECONDS,
            "valkey-cli",
            "-h",
            host,
            "-p",
            port,
        ])
        .args(["-a", password, "--no-auth-warning"])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) if !text.contains("ERR") && !text.contains("Could not connect") => Cli::Ran(text),
        Some(124) => Cli::TimedOut,
        code => Cli::Failed(code.unwrap_or(-1), text),
    }
}

/// Waits (`timeout`) for `SET key value` from `pod` through `addr` to be
/// acknowledged; how long it took.
async fn writes(
    env: &Env,
    pod: &str,
    addr: &str,
    password: &str,
    cluster: bool,
    key: &str,
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    let mut args = vec!["SET", key, "v"];
    if cluster {
        args.insert(0, "-c");
    }
    loop {
        let got = cli(env, pod, addr, password, &args);
        if matches!(&got, Cli::Ran(text) if text.trim() == "OK") {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{pod} could not write {key} through {addr} within {timeout:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `PING` from the outside pod to each of `addrs` times out.
fn blocked(env: &Env, addrs: &[String], password: &str, when: &str) {
    for addr in addrs {
        let got = cli(env, OUTSIDE, addr, password, &["PING"]);
        assert_eq!(
            got,
            Cli::TimedOut,
            "{when}: {OUTSIDE} (not in allowFrom) reached {addr}"
        );
    }
}

/// Gives the outside pod the allowed label, waits for it to reach `addr`,
/// and takes the label back (new connections blocked again).
async fn admitted_once_labelled(env: &Env, addr: &str, password: &str, cluster: bool) -> Duration {
    kubectl(
        env,
        NS,
        &[
            "label",
            "--overwrite",
            "pod",
            OUTSIDE,
            &format!("{LABEL}=yes"),
        ],
    );
    let took = writes(
        env,
        OUTSIDE,
        addr,
        password,
        cluster,
        "labelled",
        Duration::from_secs(30),
    )
    .await;
    kubectl(
        env,
        NS,
        &[
            "label",
            "--overwrite",
            "pod",
            OUTSIDE,
            &format!("{LABEL}=no"),
        ],
    );
    let started = Instant::now();
    while cli(env, OUTSIDE, addr, password, &["PING"]) != Cli::TimedOut {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{OUTSIDE} still reaches {addr} 30 s after its label was taken back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    took
}

/// The policy the operator applied, with its allowed peers.
async fn policy_applied(env: &Env, name: &str) {
    let policies: kube::Api<k8s_openapi::api::networking::v1::NetworkPolicy> = env.api();
    let policy = policies.get(name).await.unwrap();
    let rules = policy.spec.unwrap().ingress.unwrap_or_default();
    assert_eq!(
        rules.len(),
        3,
        "own pods, the operator and allowFrom: {rules:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_under_a_network_policy() {
    if skipped("Replication") {
        return;
    }
    let env = Env::start("netpol-replication").await;
    let started = Instant::now();
    env.apply_yaml(&with_policy(&env, &replication_yaml("demo", 3)))
        .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(180)).await;
    eprintln!(
        "Replication Ready under the policy after {:?}",
        started.elapsed()
    );
    policy_applied(&env, "demo").await;
    start_clients(&env).await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let old = primary(&vkc);
    let took = writes(
        &env,
        INSIDE,
        &service,
        &password,
        false,
        "k1",
        Duration::from_secs(30),
    )
    .await;
    eprintln!("the allowed client wrote through {service} ({took:?})");
    let mut addrs = vec![service.clone()];
    for pod in env.pods("demo").await {
        addrs.push(env.pod_addr(&pod.metadata.name.unwrap()).await);
    }
    blocked(&env, &addrs, &password, "before the failover");
    let took = admitted_once_labelled(&env, &service, &password, false).await;
    eprintln!("the outside pod, labelled, got in after {took:?}, and out again once unlabelled");

    let fault = Instant::now();
    env.delete_pod(&old).await;
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(60))
        .await;
    eprintln!("{old} -> {} after {:?}", primary(&moved), fault.elapsed());
    let took = writes(
        &env,
        INSIDE,
        &service,
        &password,
        false,
        "k2",
        Duration::from_secs(60),
    )
    .await;
    eprintln!("the allowed client wrote again {took:?} after the new primary was published");
    env.wait_ready("demo", 3, Duration::from_secs(120)).await;
    blocked(&env, &[service], &password, "after the failover");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_under_a_network_policy() {
    if skipped("Sentinel") {
        return;
    }
    let env = Env::start("netpol-sentinel").await;
    let started = Instant::now();
    env.apply_yaml(&with_policy(&env, &sentinel_yaml("demo")))
        .await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(180)).await;
    eprintln!(
        "Sentinel Ready under the policy after {:?}",
        started.elapsed()
    );
    policy_applied(&env, "demo").await;
    start_clients(&env).await;
    let password = env.password("demo").await;
    let sentinels = sentinel_addrs(&env, "demo").await;
    assert_eq!(sentinels.len(), 3, "three Sentinels: {sentinels:?}");
    // A client finds the primary through Sentinel, then writes to it.
    let ask = |sentinel: &str| match cli(
        &env,
        INSIDE,
        sentinel,
        &password,
        &["SENTINEL", "get-master-addr-by-name", "demo"],
    ) {
        Cli::Ran(text) => {
            let mut lines = text.lines();
            format!(
                "{}:{}",
                lines.next().unwrap().trim(),
                lines.next().unwrap().trim()
            )
        }
        other => panic!("the allowed client asking {sentinel}: {other:?}"),
    };
    let at = ask(&sentinels[0]);
    let took = writes(
        &env,
        INSIDE,
        &at,
        &password,
        false,
        "k1",
        Duration::from_secs(30),
    )
    .await;
    eprintln!("the allowed client found {at} through Sentinel and wrote ({took:?})");
    let mut addrs = sentinels.clone();
    addrs.push(env.service_addr("demo").await);
    for pod in env.pods("demo").await {
        addrs.push(env.pod_addr(&pod.metadata.name.unwrap()).await);
    }
    blocked(&env, &addrs, &password, "before the failover");
    let took = admitted_once_labelled(&env, &at, &password, false).await;
    eprintln!("the outside pod, labelled, got in after {took:?}, and out again once unlabelled");

    let old = primary(&vkc);
    let fault = Instant::now();
    env.delete_pod(&old).await;
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(60))
        .await;
    eprintln!("{old} -> {} after {:?}", primary(&moved), fault.elapsed());
    let new_at = env.pod_addr(&primary(&moved)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ask(&sentinels[1]) != new_at {
        assert!(Instant::now() < deadline, "Sentinel never named {new_at}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = writes(
        &env,
        INSIDE,
        &new_at,
        &password,
        false,
        "k2",
        Duration::from_secs(60),
    )
    .await;
    eprintln!("the allowed client found {new_at} through Sentinel and wrote again ({took:?})");
    env.wait_ready("demo", 3, Duration::from_secs(120)).await;
    blocked(&env, &sentinels, &password, "after the failover");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_under_a_network_policy() {
    if skipped("Cluster") {
        return;
    }
    let env = Env::start("netpol-cluster").await;
    let started = Instant::now();
    env.apply_yaml(&with_policy(&env, &cluster_yaml("shop")))
        .await;
    let vkc = env
        .wait_status(
            "shop",
            Duration::from_secs(240),
            "3 shards of 1 primary and 1 replica, Ready",
            cluster_ready,
        )
        .await;
    eprintln!(
        "Cluster Ready under the policy (the bus let through) after {:?}",
        started.elapsed()
    );
    policy_applied(&env, "shop").await;
    start_clients(&env).await;
    let password = env.password("shop").await;
    let seed = env.pod_addr(&primaries(&vkc)[0]).await;
    // Keys of every shard, redirected (-c) to each slot's owner.
    for key in ["k1", "k2", "k3", "k4", "k5", "k6"] {
        writes(
            &env,
            INSIDE,
            &seed,
            &password,
            true,
            key,
            Duration::from_secs(30),
        )
        .await;
    }
    let mut addrs = Vec::new();
    for pod in env.pods("shop").await {
        addrs.push(env.pod_addr(&pod.metadata.name.unwrap()).await);
    }
    blocked(&env, &addrs, &password, "before the failover");
    let took = admitted_once_labelled(&env, &seed, &password, true).await;
    eprintln!("the outside pod, labelled, got in after {took:?}, and out again once unlabelled");

    let victim = primaries(&vkc)[1].clone();
    let fault = Instant::now();
    env.delete_pod(&victim).await;
    env.wait_status(
        "shop",
        Duration::from_secs(60),
        "another primary for the deleted pod's shard",
        |v| {
            let p = primaries(v);
            p.len() == 3 && !p.contains(&victim)
        },
    )
    .await;
    eprintln!("{victim}'s shard failed over after {:?}", fault.elapsed());
    let vkc = env
        .wait_status(
            "shop",
            Duration::from_secs(120),
            "Ready again with the pod back as a replica",
            cluster_ready,
        )
        .await;
    let seed = env.pod_addr(&primaries(&vkc)[0]).await;
    for key in ["k1", "k2", "k3", "k4", "k5", "k6", "k7"] {
        writes(
            &env,
            INSIDE,
            &seed,
            &password,
            true,
            key,
            Duration::from_secs(60),
        )
        .await;
    }
    eprintln!("the allowed client wrote to every shard after the failover");
    blocked(&env, &[seed], &password, "after the failover");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standalone_under_a_network_policy() {
    if skipped("Standalone") {
        return;
    }
    let env = Env::start("netpol-standalone").await;
    let yaml = "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyCluster\nmetadata:\n  name: demo\nspec:\n  topology: Standalone\n  storage:\n    size: 1Gi\n";
    let started = Instant::now();
    env.apply_yaml(&with_policy(&env, yaml)).await;
    env.wait_ready("demo", 1, Duration::from_secs(180)).await;
    eprintln!(
        "Standalone Ready under the policy after {:?}",
        started.elapsed()
    );
    policy_applied(&env, "demo").await;
    start_clients(&env).await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    let took = writes(
        &env,
        INSIDE,
        &service,
        &password,
        false,
        "k1",
        Duration::from_secs(30),
    )
    .await;
    eprintln!("the allowed client wrote through {service} ({took:?})");
    let pod = env.pod_addr("demo-0").await;
    blocked(
        &env,
        &[service.clone(), pod],
        &password,
        "before the restart",
    );
    // The pod replaced (its new address under the same policy): the
    // operator reaches it again, the allowed client writes, the outside
    // pod is still kept out.
    env.delete_pod("demo-0").await;
    let vkc = env.wait_ready("demo", 1, Duration::from_secs(120)).await;
    let took = writes(
        &env,
        INSIDE,
        &service,
        &password,
        false,
        "k2",
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "after the pod was replaced the allowed client wrote again ({took:?}); primary {}",
        primary(&vkc)
    );
    blocked(&env, &[service], &password, "after the restart");
    env.finish().await;
}
