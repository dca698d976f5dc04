//! A local S3 endpoint for the backup tests: moto's server (`python3 -m
//! moto.server`, installed by `make setup`) on a free port of 127.0.0.1
//! (or 127.0.0.3, which localkube's pods reach),
//! killed when dropped. It keeps everything in memory and, unless started
//! with [`S3Server::start_checking_credentials`], does not check request
//! signatures: any key pair works and buckets are made with a plain PUT.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logbook::backup::{S3Credentials, S3Target};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct S3Server {
    addr: SocketAddr,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// Starts one and waits until it answers HTTP.
    ///
    /// # Panics
    /// When moto is not installed (run `make setup`), or it does not start.
    pub fn start() -> S3Server {
        S3Server::start_with(&[])
    }

    /// One that localkube's pods reach too: on 127.0.0.3 (a pod's own
    /// 127.0.0.1 is itself).
    pub fn start_for_pods() -> S3Server {
        S3Server::start_on([127, 0, 0, 3], &[])
    }

    /// One that checks credentials as AWS does (moto's IAM emulation:
    /// every key it has not issued is refused with `InvalidAccessKeyId`).
    pub fn start_checking_credentials() -> S3Server {
        S3Server::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])
    }

    fn start_with(env: &[(&str, &str)]) -> S3Server {
        S3Server::start_on([127, 0, 0, 1], env)
    }

    fn start_on(ip: [u8; 4], env: &[(&str, &str)]) -> S3Server {
        let host = std::net::Ipv4Addr::from(ip).to_string();
        let port = TcpListener::bind((host.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        S3Server::start_at(ip, port, env)
    }

    /// One on `ip:port` (the samples' `http://127.0.0.3:9000`).
    pub fn start_at(ip: [u8; 4], port: u16, env: &[(&str, &str)]) -> S3Server {
        let host = std::net::Ipv4Addr::from(ip).to_string();
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "moto's S3 server is not installed (python3 -c 'import moto.server' fails): run `make setup`"
        );
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", &host, "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut server = S3Server {
            addr: SocketAddr::from((ip, port)),
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.request("GET", "/").is_none() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto's S3 server exited ({status}): {}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "moto's S3 server on {} did not answer within 30 s: {}",
                server.addr,
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://<address>:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A path-style target for `bucket` on this server.
    pub fn target(&self, bucket: &str) -> S3Target {
        S3Target {
            bucket: bucket.to_owned(),
            region: REGION.to_owned(),
            endpoint: Some(self.endpoint()),
            path_style: true,
        }
    }

    /// Creates `bucket` (moto takes an unsigned PUT).
    pub fn create_bucket(&self, bucket: &str) {
        let status = self
            .request("PUT", &format!("/{bucket}"))
            .unwrap_or_else(|| panic!("no answer to PUT /{bucket}"));
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "PUT /{bucket}: {status}"
        );
    }

    /// How many multipart uploads of `bucket` are started and neither
    /// completed nor aborted.
    pub fn open_multipart_uploads(&self, bucket: &str) -> usize {
        let reply = self
            .exchange("GET", &format!("/{bucket}?uploads"))
            .unwrap_or_else(|| panic!("no answer to GET /{bucket}?uploads"));
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        reply.matches("<Upload>").count()
    }

    /// The status line of a bodiless request, `None` when nothing answers.
    fn request(&self, method: &str, path: &str) -> Option<String> {
        let reply = self.exchange(method, path)?;
        let status = reply.lines().next()?.to_owned();
        status.starts_with("HTTP/").then_some(status)
    }

    /// The whole reply to a bodiless request, `None` when nothing answers.
    fn exchange(&self, method: &str, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).ok()?;
        Some(String::from_utf8_lossy(&reply).into_owned())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

/// The key pair the tests sign with (moto takes any).
pub fn credentials() -> S3Credentials {
    S3Credentials {
        access_key_id: "test".to_owned(),
        secret_access_key: "test".to_owned(),
        session_token: None,
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
