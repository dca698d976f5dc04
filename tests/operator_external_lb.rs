//! External access by load balancer on localkube (`type: LoadBalancer`,
//! served by localkube's own implementation: an address per Service from
//! its block, written to the Service's status, forwarded by its proxy).
//! Each Cluster node tells clients its load balancer's address
//! (`cluster-announce-client-ipv4`) on the Valkey port, while the bus and
//! replication stay on the pod network; a client outside that may dial
//! only the load balancers' addresses writes through a shard failover
//! with nothing acknowledged lost. Annotations and the load balancer's
//! class reach the Services.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;
use crate::operator_common::external::OutsideClient;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use operator_common::*;

/// Each pod's load balancer address, once every pod has one.
async fn ingress(env: &Env, pods: usize) -> Option<BTreeMap<String, String>> {
    let services: Api<Service> = env.api();
    let mut out = BTreeMap::new();
    for pod in env.pods("shop").await {
        let name = pod.metadata.name.clone().unwrap();
        let svc = services.get_opt(&format!("{name}-external")).await.ok()??;
        let ip = svc.status?.load_balancer?.ingress?.first()?.ip.clone()?;
        out.insert(name, ip);
    }
    (out.len() == pods).then_some(out)
}

fn shards_ips(seed: &str, password: &str) -> Vec<String> {
    let (host, port) = seed.rsplit_once(':').unwrap();
    let out = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "--no-auth-warning", "-a", password])
        .args(["cluster", "shards"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut ips: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0] == "ip")
        .map(|w| w[1].to_owned())
        .collect();
    ips.sort();
    ips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_by_load_balancers_tells_clients_their_addresses_and_keeps_its_bus_inside() {
    let env = Env::start("external-lb").await;
    let mut yaml = cluster_yaml("shop");
    yaml.push_str(
        "  externalAccess:
    enabled: true
    type: LoadBalancer
    annotations:
      example.com/load-balancer: internal
    loadBalancerSourceRanges: [\"127.0.0.0/8\"]
",
    );
    env.apply_yaml(&yaml).await;
    env.wait_status("shop", Duration::from_secs(120), "formed", |v| {
        balanced(v, 3)
    })
    .await;
    let password = env.password("shop").await;

    // Every pod's Service is a load balancer with the spec's annotation
    // and ranges, exposing the client port only.
    let services: Api<Service> = env.api();
    let svc = services.get("shop-0-external").await.unwrap();
    assert_eq!(
        svc.metadata.annotations.as_ref().unwrap()["example.com/load-balancer"],
        "internal"
    );
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(
        spec.ports.as_ref().unwrap().len(),
        1,
        "the bus is not exposed"
    );
    assert_eq!(
        spec.load_balancer_source_ranges.as_deref(),
        Some(&["127.0.0.0/8".to_owned()][..])
    );

    // Each node announces its load balancer's address to clients.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let lbs: BTreeMap<String, String> = loop {
        if let Some(found) = ingress(&env, 6).await {
            let mut want: Vec<String> = found.values().cloned().collect();
            want.sort();
            let seed = format!("{}:6379", want[0]);
            let shown = shards_ips(&seed, &password);
            if shown == want {
                break found;
            }
            eprintln!("CLUSTER SHARDS names {shown:?}, want {want:?}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never announced the load balancers"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The bus stays on the pod network: each node's own address for its
    // peers is its pod's.
    for pod in env.pods("shop").await {
        let name = pod.metadata.name.clone().unwrap();
        let addr = env.pod_addr(&name).await;
        let got = redis_cli(&addr, &password, &["config", "get", "cluster-announce-ip"]);
        let ip = pod.status.unwrap().pod_ip.unwrap();
        assert!(got.contains(&ip), "{name}: {got}");
        let client = redis_cli(
            &addr,
            &password,
            &["config", "get", "cluster-announce-client-ipv4"],
        );
        assert!(client.contains(&lbs[&name]), "{name}: {client}");
    }

    let seeds: Vec<String> = lbs.values().map(|ip| format!("{ip}:6379")).collect();
    let allow: Vec<String> = lbs.values().cloned().collect();
    let mut client = OutsideClient::start(&[], "cluster", &seeds, &allow, &password, None, &[]);
    client
        .wait_more(100, "writes acknowledged from outside")
        .await;
    let vkc = env.vkc("shop").await;
    let primary = primaries(&vkc).into_iter().next().unwrap();
    env.delete_pod(&primary).await;
    env.wait_status("shop", Duration::from_secs(120), "failed over", |v| {
        balanced(v, 3) && !primaries(v).contains(&primary)
    })
    .await;
    client
        .wait_more(100, "writes acknowledged after the failover")
        .await;
    let report = client.finish().await;
    eprintln!("outside client: {report:?}");
    crate::operator_common::external::assert_outside_only(&report, &allow, 100);
    env.finish().await;
}
