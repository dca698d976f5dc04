//! A local S3 endpoint for the backup bench and tests: moto's server
//! (`python3 -m moto.server`, installed by `make setup`) on an address and
//! port of the caller's choice, killed when dropped. It keeps everything
//! in memory and, unless started with `INITIAL_NO_AUTH_ACTION_COUNT=0` in
//! its environment, does not check request signatures: any key pair works
//! and buckets are made with a plain PUT.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logbook::backup::{S3Credentials, S3Target};

use crate::BenchError;

/// The region every user of this server names.
pub const REGION: &str = "us-east-1";

/// A running moto server.
#[derive(Debug)]
pub struct S3Server {
    addr: SocketAddr,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// Starts one on `ip:port` (a free port when `None`), with `env` in
    /// its environment, and waits until it answers HTTP.
    ///
    /// # Errors
    /// [`BenchError::Spawn`] when moto is not installed (run `make
    /// setup`); [`BenchError::Exited`] or [`BenchError::TimedOut`] when
    /// it does not start.
    pub fn start_at(
        ip: [u8; 4],
        port: Option<u16>,
        env: &[(&str, &str)],
    ) -> Result<S3Server, BenchError> {
        let host = std::net::Ipv4Addr::from(ip).to_string();
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| BenchError::Io { what, source }
        };
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return Err(BenchError::Spawn {
                what: "moto's S3 server".to_owned(),
                binary: "python3 -m moto.server".to_owned(),
                source: std::io::Error::other(
                    "python3 -c 'import moto.server' fails: run `make setup`",
                ),
            });
        }
        let port = match port {
            Some(p) => p,
            None => TcpListener::bind((host.as_str(), 0))
                .and_then(|l| l.local_addr())
                .map_err(io("a free port"))?
                .port(),
        };
        let log = tempfile::NamedTempFile::new().map_err(io("moto's log file"))?;
        let out = log.reopen().map_err(io("moto's log file"))?;
        let err = log.reopen().map_err(io("moto's log file"))?;
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", &host, "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                what: "moto's S3 server".to_owned(),
                binary: "python3".to_owned(),
                source,
            })?;
        let mut server = S3Server {
            addr: SocketAddr::from((ip, port)),
            child,
            log,
        };
        let started = Instant::now();
        while server.request("GET", "/").is_none() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(BenchError::Exited {
                    what: "moto's S3 server".to_owned(),
                    status: status.to_string(),
                    log: server.log_text(),
                });
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(BenchError::TimedOut {
                    what: format!("moto's S3 server on {}", server.addr),
                    after_ms: started.elapsed().as_millis(),
                    detail: format!("\n{}", server.log_text()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
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
    ///
    /// # Errors
    /// [`BenchError::Protocol`] when the server does not say 200.
    pub fn create_bucket(&self, bucket: &str) -> Result<(), BenchError> {
        let status = self.request("PUT", &format!("/{bucket}"));
        match status {
            Some(s) if s.starts_with("HTTP/1.1 200") => Ok(()),
            other => Err(self.protocol("PUT bucket", format!("{other:?}"))),
        }
    }

    /// How many multipart uploads of `bucket` are started and neither
    /// completed nor aborted.
    ///
    /// # Errors
    /// [`BenchError::Protocol`] when the server does not answer 200.
    pub fn open_multipart_uploads(&self, bucket: &str) -> Result<usize, BenchError> {
        match self.exchange("GET", &format!("/{bucket}?uploads")) {
            Some(reply) if reply.starts_with("HTTP/1.1 200") => {
                Ok(reply.matches("<Upload>").count())
            }
            other => Err(self.protocol("list uploads", format!("{other:?}"))),
        }
    }

    /// What the server logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn protocol(&self, command: &'static str, detail: String) -> BenchError {
        BenchError::Protocol {
            addr: self.addr.to_string(),
            command,
            detail,
        }
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
}

/// The key pair to sign with (moto takes any).
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
