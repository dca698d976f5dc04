//! Starting and signalling container processes: each container is
//! `setpriv --pdeathsig KILL unshare --mount ... /bin/sh -c '<mounts>; exec
//! "$@"'`, in its own process group, its output appended to its log file;
//! exec probes and hooks enter its mount namespace with `nsenter`. Also the
//! sweep that kills processes a crashed kubelet left behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The environment marker naming the kubelet's state dir.
pub const MARKER: &str = "LOCALKUBE_KUBELET";

/// A bind mount in a container's namespace.
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// What a container process is started with.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub log: PathBuf,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The shell script that sets up the mount namespace, then execs.
fn script(l: &Launch) -> String {
    let mut s = String::from("set -e\n");
    for m in &l.mounts {
        let t = quote(&m.target);
        if m.source.is_dir() {
            s.push_str(&format!("mkdir -p {t}\n"));
        } else {
            s.push_str(&format!(
                "mkdir -p \"$(dirname {t})\"; [ -e {t} ] || : > {t}\n"
            ));
        }
        s.push_str(&format!(
            "mount --bind {} {t}\n",
            quote(&m.source.to_string_lossy())
        ));
        if m.read_only {
            s.push_str(&format!("mount -o remount,bind,ro {t}\n"));
        }
    }
    if let Some(w) = &l.working_dir {
        s.push_str(&format!("mkdir -p {w}; cd {w}\n", w = quote(w)));
    }
    s.push_str("exec \"$@\"\n");
    s
}

/// Starts a container process.
///
/// The death signal fires when the spawning *thread* exits, not the
/// process: call this from async tasks only (tokio's worker threads live as
/// long as the runtime), never from `spawn_blocking` or `block_in_place`,
/// whose threads come and go.
///
/// # Errors
/// The log file cannot be opened or the process not started.
pub(crate) fn spawn(l: &Launch) -> std::io::Result<Child> {
    if let Some(parent) = l.log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&l.log)?;
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--pdeathsig",
        "KILL",
        "--",
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
    ])
    .arg(script(l))
    .arg("sh")
    .args(&l.argv)
    .env_clear()
    .envs(l.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    .stdin(Stdio::null())
    .stdout(Stdio::from(log.try_clone()?))
    .stderr(Stdio::from(log))
    .process_group(0)
    .kill_on_drop(true);
    cmd.spawn()
}

/// Runs `argv` inside the mount namespace of `pid` (exec probes and
/// hooks), bounded by `timeout`: Ok(exit code) or Err(reason).
pub(crate) async fn exec_in(
    pid: u32,
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<i32, String> {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "--", "nsenter", "-t"])
        .arg(pid.to_string())
        .args(["-m", "--"])
        .args(argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => Ok(st.code().unwrap_or(-1)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            if let Some(p) = child.id() {
                signal_group(p, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            Err(format!(
                "command timed out after {}s",
                timeout.as_secs_f64()
            ))
        }
    }
}

fn pid_of(p: u32) -> Option<Pid> {
    i32::try_from(p).ok().map(Pid::from_raw)
}

/// Signals the process `pid` only (SIGTERM goes to the main process, as
/// the real runtime sends it to PID 1).
pub(crate) fn signal(pid: u32, sig: Signal) {
    if let Some(p) = pid_of(pid) {
        let _ = kill(p, sig);
    }
}

/// Signals the process group led by `pid`.
pub(crate) fn signal_group(pid: u32, sig: Signal) {
    if let Some(p) = pid_of(pid) {
        let _ = killpg(p, sig);
    }
}

/// The processes (pid) carrying the marker of `state_dir`.
pub fn leftover_processes(state_dir: &Path) -> Vec<i32> {
    let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let needle = format!("{MARKER}={}", dir.display());
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// SIGKILLs every process (and its group) carrying the marker of
/// `state_dir`: the guard against processes outliving their kubelet.
pub fn kill_leftovers(state_dir: &Path) {
    // SIGKILL is asynchronous: a killed process lingers until the kernel has
    // torn it down, longer on a loaded machine. Keep killing and looking
    // until none is left, so "stopped" means gone (bounded: a process stuck
    // in uninterruptible sleep must not hang a shutdown forever).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = leftover_processes(state_dir);
        if left.is_empty() || std::time::Instant::now() >= deadline {
            if !left.is_empty() {
                tracing::warn!(pids = ?left, "localkube kubelet: processes survived SIGKILL");
            }
            return;
        }
        for pid in left {
            let p = Pid::from_raw(pid);
            let _ = kill(p, Signal::SIGCONT);
            let _ = killpg(p, Signal::SIGKILL);
            let _ = kill(p, Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
