//! Probes: exec (inside the container's mount namespace, with the pod's
//! environment), tcpSocket (a connect to the pod address) and httpGet, with
//! the real timings and thresholds. The startup probe gates the others; a
//! liveness or startup failure asks the container's supervisor to restart
//! it; readiness sets the container's `ready`.
//!
//! One deliberate difference: until a readiness probe first succeeds it
//! is retried every 100 ms rather than every `periodSeconds`, so a pod is
//! Ready as soon as it serves (an observer only sees it become Ready
//! sooner; failures are counted the same way).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

use super::procs;
use super::status::CStatus;

/// What a probe checks.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    Exec(Vec<String>),
    Tcp(u16),
    Http { port: u16, path: String },
}

/// A probe with its timings.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub check: Check,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

fn num(v: &Value, k: &str, default: u64) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(default)
}

fn port(v: Option<&Value>, ports: &[(String, u16)]) -> Option<u16> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s
            .parse()
            .ok()
            .or_else(|| ports.iter().find(|(n, _)| n == s).map(|(_, p)| *p)),
        _ => None,
    }
}

impl Probe {
    /// Parses a probe; `resolve` maps an exec command's argv[0].
    pub fn parse(
        v: Option<&Value>,
        ports: &[(String, u16)],
        resolve: &dyn Fn(&[String]) -> Vec<String>,
    ) -> Option<Self> {
        let v = v?;
        let check = if let Some(cmd) = v.pointer("/exec/command").and_then(Value::as_array) {
            let argv: Vec<String> = cmd
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            Check::Exec(resolve(&argv))
        } else if let Some(t) = v.get("tcpSocket") {
            Check::Tcp(port(t.get("port"), ports)?)
        } else if let Some(h) = v.get("httpGet") {
            Check::Http {
                port: port(h.get("port"), ports)?,
                path: h
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    .to_owned(),
            }
        } else {
            return None;
        };
        Some(Self {
            check,
            initial_delay: Duration::from_secs(num(v, "initialDelaySeconds", 0)),
            period: Duration::from_secs(num(v, "periodSeconds", 10).max(1)),
            timeout: Duration::from_secs(num(v, "timeoutSeconds", 1).max(1)),
            success_threshold: u32::try_from(num(v, "successThreshold", 1).max(1)).unwrap_or(1),
            failure_threshold: u32::try_from(num(v, "failureThreshold", 3).max(1)).unwrap_or(3),
        })
    }

    /// Runs the check once.
    pub async fn check(&self, ip: Ipv4Addr, pid: u32, env: &[(String, String)]) -> bool {
        match &self.check {
            Check::Exec(argv) => {
                matches!(procs::exec_in(pid, argv, env, self.timeout).await, Ok(0))
            }
            Check::Tcp(p) => matches!(
                tokio::time::timeout(
                    self.timeout,
                    tokio::net::TcpStream::connect(SocketAddr::from((ip, *p)))
                )
                .await,
                Ok(Ok(_))
            ),
            Check::Http { port, path } => {
                let fut = async {
                    let mut s = tokio::net::TcpStream::connect(SocketAddr::from((ip, *port)))
                        .await
                        .ok()?;
                    let req = format!(
                        "GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.35\r\n\r\n"
                    );
                    s.write_all(req.as_bytes()).await.ok()?;
                    let mut buf = [0u8; 64];
                    let n = s.read(&mut buf).await.ok()?;
                    let head = String::from_utf8_lossy(buf.get(..n)?).into_owned();
                    let code: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
                    Some((200..400).contains(&code))
                };
                matches!(
                    tokio::time::timeout(self.timeout, fut).await,
                    Ok(Some(true))
                )
            }
        }
    }
}

/// A container's probes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probes {
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    pub startup: Option<Probe>,
}

/// Where a running container's probes report.
pub(crate) struct Target {
    pub ip: Ipv4Addr,
    pub pid: u32,
    pub env: Vec<(String, String)>,
    pub status: Arc<Mutex<CStatus>>,
    pub notify: Arc<Notify>,
    /// A failure that must restart the container, with its message.
    pub restart: mpsc::Sender<String>,
}

impl Target {
    fn set(&self, f: impl FnOnce(&mut CStatus)) {
        let changed = {
            let mut s = self.status.lock();
            let before = s.clone();
            f(&mut s);
            *s != before
        };
        if changed {
            self.notify.notify_one();
        }
    }
}

/// Runs the probes of one container instance until it ends (aborted by
/// its supervisor) or asks for a restart.
pub(crate) async fn run(p: Probes, t: Target) {
    if let Some(sp) = &p.startup {
        tokio::time::sleep(sp.initial_delay).await;
        let mut fails = 0u32;
        while !sp.check(t.ip, t.pid, &t.env).await {
            fails = fails.saturating_add(1);
            if fails >= sp.failure_threshold {
                let _ = t.restart.send("Startup probe failed".into()).await;
                return;
            }
            tokio::time::sleep(sp.period).await;
        }
    }
    let ready_now = p.readiness.is_none();
    t.set(|s| {
        s.started = true;
        s.ready = ready_now;
    });
    let readiness = async {
        let Some(rp) = &p.readiness else {
            return;
        };
        tokio::time::sleep(rp.initial_delay).await;
        let (mut ok, mut bad, mut ever) = (0u32, 0u32, false);
        loop {
            if rp.check(t.ip, t.pid, &t.env).await {
                ok = ok.saturating_add(1);
                bad = 0;
                if ok >= rp.success_threshold {
                    ever = true;
                    t.set(|s| s.ready = true);
                }
            } else {
                bad = bad.saturating_add(1);
                ok = 0;
                if bad >= rp.failure_threshold {
                    t.set(|s| s.ready = false);
                }
            }
            let wait = if ever {
                rp.period
            } else {
                rp.period.min(Duration::from_millis(100))
            };
            tokio::time::sleep(wait).await;
        }
    };
    let liveness = async {
        let Some(lp) = &p.liveness else {
            return;
        };
        tokio::time::sleep(lp.initial_delay).await;
        let mut bad = 0u32;
        loop {
            if lp.check(t.ip, t.pid, &t.env).await {
                bad = 0;
            } else {
                bad = bad.saturating_add(1);
                if bad >= lp.failure_threshold {
                    let _ = t.restart.send("Liveness probe failed".into()).await;
                    return;
                }
            }
            tokio::time::sleep(lp.period).await;
        }
    };
    // Both run until the supervisor aborts this task (the instance ended
    // or a restart was asked for).
    tokio::join!(readiness, liveness);
}
