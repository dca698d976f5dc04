//! A `valkey-server` child process on a free 127.0.0.1 port, in a
//! temporary working directory (replication writes RDB files even with
//! `--save ""`, and they must not land in the source tree), killed when
//! dropped. Shared by the data-plane client tests (`tests/valkey_client.rs`)
//! and the bench harness tests (`bench/tests/bench_harness.rs`, by path).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts one with `extra` arguments and waits until it accepts
    /// connections.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_free(&logbook_bench::valkey_server_binary(), |_| true, &[], extra)
    }

    /// Starts a Valkey Cluster node (`cluster-enabled yes`, its
    /// `nodes.conf` in its own temporary directory, node timeout 2 s) with
    /// `extra` arguments. Its bus port is the default `port + 10000`, which
    /// `CLUSTER MEET ip port` assumes, so both ports are checked free.
    pub fn start_cluster_node(extra: &[&str]) -> Server {
        Server::start_cluster_node_with(&logbook_bench::valkey_server_binary(), extra)
    }

    /// [`Server::start_cluster_node`] with another server binary (e.g.
    /// [`redis_server_binary`]).
    pub fn start_cluster_node_with(binary: &Path, extra: &[&str]) -> Server {
        Server::start_free(
            binary,
            |port| {
                port.checked_add(10_000)
                    .is_some_and(|bus| TcpListener::bind(("127.0.0.1", bus)).is_ok())
            },
            &cluster_args(),
            extra,
        )
    }

    /// A server on a free 127.0.0.1 port among those `accept` takes. A
    /// port is free when chosen, not when the server binds it: a test
    /// running beside this one may take it in between, and the server
    /// then exits while the port answers (for the other test's server).
    /// So a server that could not bind is started again on another port.
    fn start_free(
        binary: &Path,
        accept: impl Fn(u16) -> bool,
        args: &[&str],
        extra: &[&str],
    ) -> Server {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(extra);
        let mut taken = Vec::new();
        for _ in 0..10 {
            let port = free_port(&accept);
            match Server::try_start(binary, Ipv4Addr::LOCALHOST, port, &all) {
                Ok(server) => return server,
                Err(log) => taken.push(format!("{port}: {}", last_lines(&log, 3))),
            }
        }
        panic!("valkey-server found no free port:\n{}", taken.join("\n"));
    }

    /// A cluster node on `ip`, port 6379 (bus 16379), as a pod is: it
    /// announces that address and connects from it. `ip` must be a
    /// loopback address no one else uses (a localkube instance's block).
    pub fn start_cluster_node_at(binary: &Path, ip: Ipv4Addr, extra: &[&str]) -> Server {
        let ip_text = ip.to_string();
        let mut args: Vec<&str> = cluster_args();
        args.extend_from_slice(&[
            "--cluster-announce-ip",
            &ip_text,
            "--bind-source-addr",
            &ip_text,
        ]);
        args.extend_from_slice(extra);
        Server::start_process(binary, ip, 6379, &args)
    }

    /// A plain server on `ip`, port 6379, as a pod is (`ip` as in
    /// [`Server::start_cluster_node_at`]).
    pub fn start_at(ip: Ipv4Addr, extra: &[&str]) -> Server {
        let ip_text = ip.to_string();
        let mut args: Vec<&str> = vec!["--bind-source-addr", &ip_text];
        args.extend_from_slice(extra);
        Server::start_process(&logbook_bench::valkey_server_binary(), ip, 6379, &args)
    }

    fn start_process(binary: &Path, ip: Ipv4Addr, port: u16, extra: &[&str]) -> Server {
        Server::try_start(binary, ip, port, extra).unwrap_or_else(|log| {
            panic!(
                "valkey-server on {ip}:{port} could not listen:\n{}",
                last_lines(&log, 10)
            )
        })
    }

    /// Starts one and waits until its own log says it accepts
    /// connections (a connection alone could reach another process on
    /// the port); its log when it exited without listening (the port was
    /// taken). Panics when it neither listens nor exits within 10 s.
    fn try_start(binary: &Path, ip: Ipv4Addr, port: u16, extra: &[&str]) -> Result<Server, String> {
        assert!(
            binary.exists(),
            "{} is missing: run `make setup`",
            binary.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut child = Command::new(binary)
            .current_dir(dir.path())
            .arg("--dir")
            .arg(dir.path())
            .args(["--bind", &ip.to_string(), "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--logfile")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::new(ip.into(), port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Ready to accept connections")
                && std::net::TcpStream::connect(addr).is_ok()
            {
                return Ok(Server {
                    addr,
                    child,
                    _dir: dir,
                });
            }
            if child.try_wait().unwrap().is_some() {
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "valkey-server on {addr} did not start in 10 s:\n{}",
                    last_lines(&text, 10)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `host:port` as text.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The port as text (for `--replicaof 127.0.0.1 <port>`).
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Its process id (to stop and continue it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The arguments of every cluster node: `cluster-enabled`, its
/// `nodes.conf` in its own directory, node timeout 2 s.
fn cluster_args() -> Vec<&'static str> {
    vec![
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
    ]
}

/// Debian's `redis-server` 7.0 (no atomic slot migration):
/// `$LOGBOOK_REDIS_SERVER`, else `/usr/bin/redis-server`.
pub fn redis_server_binary() -> PathBuf {
    std::env::var_os("LOGBOOK_REDIS_SERVER")
        .map_or_else(|| PathBuf::from("/usr/bin/redis-server"), PathBuf::from)
}

/// Polls `check` every 20 ms until it holds, for at most 30 s (the bound
/// for a machine loaded by the other lanes of `make test`; it passes much
/// sooner), and panics naming `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A port nothing listens on now, among those `accept` takes.
fn free_port(accept: impl Fn(u16) -> bool) -> u16 {
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if accept(port) {
            return port;
        }
    }
    panic!("no free port found");
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
