//! `valkey-server` processes started by the references, each on a free
//! 127.0.0.1 port in a temporary directory of its own, owned by a guard
//! that kills it when dropped (even if it is stopped: SIGKILL ends a
//! stopped process too).
//!
//! A port picked by binding port 0 can be taken by someone else before the
//! server binds it, so a server counts as started only when the process on
//! the port reports our child's pid; a start that loses the race is retried
//! on another port.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::BenchError;
use super::conn::query_once;

/// How long a process may take to answer after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts that lose the race for a port before giving up.
const START_ATTEMPTS: usize = 3;

/// The `valkey-server` binary the references run: `$LOGBOOK_VALKEY_SERVER`
/// when set, else the workspace's `.tools/bin/valkey-server` (installed by
/// `make setup`) when it exists, else `valkey-server` from `PATH`.
pub fn valkey_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LOGBOOK_VALKEY_SERVER") {
        return PathBuf::from(path);
    }
    // This crate is `bench/` in the workspace; the tools are at its root.
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/valkey-server");
    if local.exists() {
        local
    } else {
        PathBuf::from("valkey-server")
    }
}

/// How to run a process.
pub(crate) enum Mode {
    /// A data server: `--save ""`, diskless replication without delay, plus
    /// these arguments (`--replicaof host port`).
    Server(Vec<String>),
    /// A Sentinel with these configuration lines (after `port`, `bind` and
    /// `dir`, which are written first).
    Sentinel(Vec<String>),
}

/// A running process; killed when dropped.
pub(crate) struct ValkeyProcess {
    name: String,
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl ValkeyProcess {
    /// Spawns the process and waits until it answers on its port.
    pub(crate) async fn start(name: &str, mode: &Mode) -> Result<ValkeyProcess, BenchError> {
        let mut attempt = 1;
        loop {
            match start_once(name, mode).await {
                Err(BenchError::Exited { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Its working directory (`dir`: where `SAVE` writes `dump.rdb`).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) -> Result<(), BenchError> {
        self.child.kill().map_err(|err| BenchError::Signal {
            what: self.name.clone(),
            pid: self.child.id(),
            signal: "KILL",
            detail: err.to_string(),
        })?;
        let _ = self.child.wait();
        Ok(())
    }

    /// Sends `SIG<signal>` (`STOP`, `CONT`) with the `kill` utility: the
    /// crate forbids `unsafe`, and std can only send SIGKILL.
    pub(crate) fn signal(&self, signal: &'static str) -> Result<(), BenchError> {
        let pid = self.child.id();
        let failed = |detail: String| BenchError::Signal {
            what: self.name.clone(),
            pid,
            signal,
            detail,
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|err| failed(err.to_string()))?;
        if status.success() {
            Ok(())
        } else {
            Err(failed(format!("kill exited with {status}")))
        }
    }

    /// The whole log (stdout and stderr) so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(log_path(self.dir.path())).unwrap_or_default()
    }

    /// The last `lines` lines of the log, prefixed with the process name.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        tail(&self.name, &self.log(), lines)
    }
}

impl Drop for ValkeyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("valkey.log")
}

fn tail(name: &str, log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    let from = all.len().saturating_sub(lines);
    all.get(from..)
        .unwrap_or_default()
        .iter()
        .map(|line| format!("\n  [{name}] {line}"))
        .collect()
}

async fn start_once(name: &str, mode: &Mode) -> Result<ValkeyProcess, BenchError> {
    let io = |what: String| move |source| BenchError::Io { what, source };
    let dir = tempfile::Builder::new()
        .prefix(&format!("logbook-bench-{name}-"))
        .tempdir()
        .map_err(io(format!("a directory for {name}")))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(io(format!("a free port for {name}")))?
        .port();
    let binary = valkey_server_binary();
    let mut command = Command::new(&binary);
    command.current_dir(dir.path());
    match mode {
        Mode::Server(extra) => {
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(dir.path())
                .args(["--save", "", "--appendonly", "no"])
                .args(["--repl-diskless-sync", "yes"])
                .args(["--repl-diskless-sync-delay", "0"])
                .args(extra);
        }
        Mode::Sentinel(lines) => {
            let conf = dir.path().join("sentinel.conf");
            let mut text = format!(
                "port {port}\nbind 127.0.0.1\ndir \"{}\"\n",
                dir.path().display()
            );
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&conf, text).map_err(io(format!("the configuration of {name}")))?;
            command.arg(&conf).arg("--sentinel");
        }
    }
    let log = File::create(log_path(dir.path())).map_err(io(format!("the log of {name}")))?;
    let log2 = log.try_clone().map_err(io(format!("the log of {name}")))?;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(|source| BenchError::Spawn {
            what: name.to_owned(),
            binary: binary.display().to_string(),
            source,
        })?;
    let mut process = ValkeyProcess {
        name: name.to_owned(),
        child,
        port,
        dir,
    };
    wait_until_ready(&mut process).await?;
    Ok(process)
}

/// Waits until the process on the port is our child (`INFO server` shows
/// its pid), or it exits.
async fn wait_until_ready(process: &mut ValkeyProcess) -> Result<(), BenchError> {
    let started = Instant::now();
    let pid = process.child.id().to_string();
    let addr = process.addr();
    loop {
        if let Ok(Some(status)) = process.child.try_wait() {
            return Err(BenchError::Exited {
                what: process.name.clone(),
                status: status.to_string(),
                log: process.log_tail(10),
            });
        }
        let mut info = redis::cmd("INFO");
        info.arg("server");
        let limit = Duration::from_millis(500);
        if let Ok(text) = query_once::<String>(&addr, None, &info, "INFO", limit).await
            && text
                .lines()
                .any(|line| line.trim().strip_prefix("process_id:") == Some(pid.as_str()))
        {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(BenchError::TimedOut {
                what: format!("{} to answer on {addr}", process.name),
                after_ms: START_TIMEOUT.as_millis(),
                detail: process.log_tail(10),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
