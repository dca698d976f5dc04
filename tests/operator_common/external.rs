//! External access (`spec.externalAccess`, issue 61) seen from outside:
//! the outside client (`tests/clients/outside.py`), and what a Cluster
//! named `shop` announces checked against its Services' node ports and
//! its pods' nodes. Shared by `operator_external` (localkube, the host is
//! "outside") and `operator_external_nodes` (the real nodes, the client in
//! a network namespace that reaches the nodes only): `wrap` runs a client
//! inside that namespace (`ip netns exec <netns>`), empty for none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service};
use kube::api::Api;

use super::Env;

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

/// The address of the node each pod runs on, and each pod's external
/// Service's node ports (client, bus).
pub async fn expected_endpoints(env: &Env) -> BTreeMap<String, (String, u16, Option<u16>)> {
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
        let port = |n: &str| logbook_core::resources::external::node_port(&svc, n);
        out.insert(name, (host, port("valkey").unwrap(), port("bus")));
    }
    out
}

/// The connection Secret's string `key`.
pub async fn secret_key(env: &Env, key: &str) -> Option<String> {
    let secrets: Api<Secret> = env.api();
    let s = secrets.get_opt("shop-connection").await.ok()??;
    s.data?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// `CLUSTER SHARDS` asked at `seed` (an external address) by `redis-cli`
/// run in `wrap`, as `ip:port` of every node it names (the TLS port with
/// TLS); given 10 s (an address that does not answer names nothing).
pub fn announced(wrap: &[String], seed: &str, password: &str, tls: bool) -> Vec<String> {
    let (host, port) = seed.rsplit_once(':').unwrap();
    let mut argv: Vec<String> = wrap.to_vec();
    argv.extend(["timeout", "10", "redis-cli"].map(str::to_owned));
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
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
/// Secret and `CLUSTER SHARDS`, asked from outside (in `wrap`), names
/// exactly those.
pub async fn wait_announced(
    env: &Env,
    wrap: &[String],
    password: &str,
    tls: bool,
    pods: usize,
) -> Vec<String> {
    poll(
        Duration::from_secs(180),
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
            let shown = announced(wrap, &listed[0], password, tls);
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
pub async fn poll<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
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

/// The addresses of the nodes the pods run on.
pub async fn node_hosts(env: &Env) -> Vec<String> {
    let mut hosts: Vec<String> = expected_endpoints(env)
        .await
        .into_values()
        .map(|(h, _, _)| h)
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The outside client's report: at least `least` writes acknowledged,
/// none lost, nothing dialled but `allow`'s hosts (none refused).
pub fn assert_outside_only(report: &ClientReport, allow: &[String], least: u64) {
    assert!(report.acked >= least, "{report:?}");
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
        "dialled something but a node: {report:?}"
    );
}

/// An exposed Sentinel cluster's addresses from its connection Secret,
/// once every one is known: the Sentinels' (`externalSentinels`), the
/// name they know the primary by, and every data pod's (`externalNodes`,
/// sorted), each checked against its Service's node port.
pub async fn sentinel_cluster_addresses(
    env: &Env,
    pods: usize,
) -> (Vec<String>, String, Vec<String>) {
    let (sentinels, master) = poll(
        Duration::from_secs(120),
        "externalSentinels and sentinelMasterName in the connection Secret",
        || async {
            listed(env, "externalSentinels")
                .await
                .zip(secret_key(env, "sentinelMasterName").await)
        },
    )
    .await;
    // Every data pod listed at its node's address and its Service's node
    // port.
    let nodes = poll(
        Duration::from_secs(120),
        "externalNodes naming every data pod's endpoint",
        || async {
            let listed = listed(env, "externalNodes").await?;
            let mut want: Vec<String> = expected_endpoints(env)
                .await
                .values()
                .map(|(h, p, _)| format!("{h}:{p}"))
                .collect();
            want.sort();
            if want.len() == pods && listed == want {
                Some(listed)
            } else {
                eprintln!("externalNodes {listed:?}, the Services say {want:?}");
                None
            }
        },
    )
    .await;
    (sentinels, master, nodes)
}

/// `host` of `host:port` (brackets of an IPv6 host dropped).
pub fn host_of(addr: &str) -> String {
    let (host, _) = addr.rsplit_once(':').unwrap();
    host.trim_matches(|c| c == '[' || c == ']').to_owned()
}

/// The comma-separated list of `key` in the connection Secret, sorted,
/// once it names something.
pub async fn listed(env: &Env, key: &str) -> Option<Vec<String>> {
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

/// `redis-cli` run in `wrap` against `addr` (stdout and stderr
/// together), given 10 s.
pub fn redis_cli_in(wrap: &[String], addr: &str, password: &str, args: &[&str]) -> String {
    redis_cli_over(wrap, addr, password, None, args)
}

/// `redis-cli` run in `wrap` against `addr`, over TLS trusting the CA at
/// `ca` (a PEM file) when given (stdout and stderr together), given 10 s.
pub fn redis_cli_over(
    wrap: &[String],
    addr: &str,
    password: &str,
    ca: Option<&Path>,
    args: &[&str],
) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut argv: Vec<String> = wrap.to_vec();
    argv.extend(["timeout", "10", "redis-cli"].map(str::to_owned));
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .args(["-h", host, "-p", port, "--no-auth-warning", "-a", password]);
    if let Some(ca) = ca {
        cmd.arg("--tls").arg("--cacert").arg(ca);
    }
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?} redis-cli: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A Sentinel asked from outside: its external address, run in `wrap`,
/// over TLS trusting the CA at `ca` (a PEM file) when given.
pub struct SentinelAt<'a> {
    pub wrap: &'a [String],
    pub addr: &'a str,
    pub password: &'a str,
    pub ca: Option<&'a Path>,
}

/// Whether a TLS handshake from `wrap` with `addr` verifies against the
/// CA at `ca` with the host dialled (an IP address or a name) in the
/// certificate; `Err` carries what `openssl s_client` said.
pub fn verifies_host(wrap: &[String], addr: &str, ca: &Path) -> Result<(), String> {
    let host = host_of(addr);
    let check = if host.parse::<std::net::IpAddr>().is_ok() {
        "-verify_ip"
    } else {
        "-verify_hostname"
    };
    let mut argv: Vec<String> = wrap.to_vec();
    argv.extend(["timeout", "10", "openssl", "s_client"].map(str::to_owned));
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .args([
            "-connect",
            addr,
            "-verify_return_error",
            "-brief",
            "-CAfile",
        ])
        .arg(ca)
        .args([check, host.as_str()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?} openssl s_client: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.contains("Verification: OK") {
        Ok(())
    } else {
        Err(format!(
            "openssl s_client -connect {addr} {check} {host}: {said}; it serves {}",
            served_certificate(wrap, addr)
        ))
    }
}

/// The names, validity and fingerprint of the certificate served at
/// `addr` (asked from `wrap`), for a failure's message.
pub fn served_certificate(wrap: &[String], addr: &str) -> String {
    let script = format!(
        "openssl s_client -connect {addr} </dev/null 2>/dev/null \
         | openssl x509 -noout -ext subjectAltName -startdate -fingerprint -sha256"
    );
    let mut argv: Vec<String> = wrap.to_vec();
    argv.extend(["timeout", "10", "sh", "-c"].map(str::to_owned));
    argv.push(script);
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .replace('\n', " ")
}

/// What a Sentinel, asked at `sentinel` (an external address) by
/// `redis-cli` run in `wrap`, names for `master`: the primary (`SENTINEL
/// get-master-addr-by-name`, `None` for no answer) and every replica
/// (`SENTINEL replicas`), as `ip:port`, and its raw answers (for a
/// failure's message).
pub fn sentinel_names(
    wrap: &[String],
    sentinel: &str,
    password: &str,
    master: &str,
) -> (Option<String>, Vec<String>, String) {
    let at = SentinelAt {
        wrap,
        addr: sentinel,
        password,
        ca: None,
    };
    sentinel_names_at(&at, master)
}

/// `sentinel_names` asked of the Sentinel `at` (over TLS with its CA).
pub fn sentinel_names_at(
    at: &SentinelAt<'_>,
    master: &str,
) -> (Option<String>, Vec<String>, String) {
    let ask = |args: &[&str]| redis_cli_over(at.wrap, at.addr, at.password, at.ca, args);
    let primary_text = ask(&["SENTINEL", "get-master-addr-by-name", master]);
    let primary = match primary_text.lines().collect::<Vec<_>>()[..] {
        [ip, port] if port.parse::<u16>().is_ok() => Some(format!("{ip}:{port}")),
        _ => None,
    };
    let replicas_text = ask(&["SENTINEL", "replicas", master]);
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

/// Waits (up to 3 minutes: containers restart slowly) until the Sentinel at `sentinel`, asked from
/// `wrap`, names `primary` (a data pod) at its external endpoint, and
/// every other data pod as a replica at its external endpoint, every
/// address one of `nodes` (`externalNodes`) and none a pod's own address.
/// Returns the primary's endpoint.
pub async fn wait_sentinel_names_external(
    env: &Env,
    wrap: &[String],
    sentinel: &str,
    password: &str,
    master: &str,
    primary: &str,
    nodes: &[String],
) -> String {
    let at = SentinelAt {
        wrap,
        addr: sentinel,
        password,
        ca: None,
    };
    wait_sentinel_names_at(env, &at, master, primary, nodes).await
}

/// `wait_sentinel_names_external` asking the Sentinel `at` (over TLS with
/// its CA).
pub async fn wait_sentinel_names_at(
    env: &Env,
    sentinel_at: &SentinelAt<'_>,
    master: &str,
    primary: &str,
    nodes: &[String],
) -> String {
    let sentinel = sentinel_at.addr;
    let limit = Duration::from_secs(180);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let endpoints = expected_endpoints(env).await;
        let at = |pod: &str| endpoints.get(pod).map(|(h, p, _)| format!("{h}:{p}"));
        let pods: Api<Pod> = env.api();
        let pod_ips: Vec<String> = pods
            .list(&Default::default())
            .await
            .unwrap()
            .items
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
        let (named, replicas, raw) = sentinel_names_at(sentinel_at, master);
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
