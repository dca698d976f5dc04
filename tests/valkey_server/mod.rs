//! A `valkey-server` child process on a free 127.0.0.1 port, in a
//! temporary working directory (replication writes RDB files even with
//! `--save ""`, and they must not land in the source tree), killed when
//! dropped. Shared by the data-plane client and bench harness tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener};
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
        let binary = logbook::bench::valkey_server_binary();
        assert!(
            binary.exists(),
            "{} is missing: run `make setup`",
            binary.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .current_dir(dir.path())
            .arg("--dir")
            .arg(dir.path())
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "valkey-server on {addr} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            addr,
            child,
            _dir: dir,
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

    /// Kills it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
