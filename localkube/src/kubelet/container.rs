//! One container's supervisor: starts its process, runs its probes, and
//! restarts it by the pod's restartPolicy with the real kubelet's
//! crash-loop backoff (first restart at once, then 10 s doubling to
//! 5 min, reset after 10 min of running), until the pod stops it.
//! Stopping runs the preStop hook, SIGTERM, the grace period, SIGKILL.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use parking_lot::Mutex;
use tokio::process::Child;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::probe::{self, Probes};
use super::procs::{self, Launch};
use super::status::{CState, CStatus};
use crate::names;

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// When a container is started again after it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    Always,
    OnFailure,
    Never,
}

impl Restart {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("Never") => Self::Never,
            Some("OnFailure") => Self::OnFailure,
            _ => Self::Always,
        }
    }

    fn again(self, code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => code != 0,
            Self::Never => false,
        }
    }
}

/// Everything a supervisor needs.
pub(crate) struct Container {
    pub name: String,
    pub launch: Launch,
    pub probes: Probes,
    pub pre_stop: Option<Vec<String>>,
    pub restart: Restart,
    pub ip: Ipv4Addr,
    /// Grace for a liveness restart (terminationGracePeriodSeconds).
    pub grace: Duration,
    pub status: Arc<Mutex<CStatus>>,
    pub notify: Arc<Notify>,
    pub pids: Arc<Mutex<HashMap<String, u32>>>,
    /// `terminationMessagePolicy: FallbackToLogsOnError`: a failed
    /// instance's message is the tail of its log (no termination-log file
    /// is emulated, so it is always the fallback).
    pub message_from_log: bool,
}

impl Container {
    fn set(&self, f: impl FnOnce(&mut CStatus)) {
        f(&mut self.status.lock());
        self.notify.notify_one();
    }
}

fn exit_code(st: std::io::Result<std::process::ExitStatus>) -> i32 {
    match st {
        Ok(s) => s
            .code()
            .or_else(|| s.signal().map(|n| 128_i32.saturating_add(n)))
            .unwrap_or(-1),
        Err(_) => -1,
    }
}

/// Ends a running instance: preStop (bounded by the grace), SIGTERM to
/// the main process, the rest of the grace, SIGKILL to the group.
pub(crate) async fn terminate(
    child: &mut Child,
    pid: u32,
    pre_stop: Option<&[String]>,
    env: &[(String, String)],
    grace: Duration,
) -> i32 {
    let deadline = Instant::now() + grace;
    // A frozen process must be able to run its hook and handle SIGTERM.
    procs::signal_group(pid, Signal::SIGCONT);
    if let Some(cmd) = pre_stop
        && !grace.is_zero()
    {
        let _ = procs::exec_in(pid, cmd, env, grace).await;
    }
    procs::signal(pid, Signal::SIGTERM);
    let code = match tokio::time::timeout_at(deadline, child.wait()).await {
        Ok(st) => exit_code(st),
        Err(_) => {
            procs::signal_group(pid, Signal::SIGKILL);
            exit_code(child.wait().await)
        }
    };
    // Whatever the main process left in its group goes with it.
    procs::signal_group(pid, Signal::SIGKILL);
    code
}

/// How an instance ended.
enum Ended {
    Exited(i32),
    Stopped,
}

/// Supervises the container until it will not run again; returns its
/// last exit code (None when it never ran or was stopped).
pub(crate) async fn supervise(
    c: Container,
    mut stop: watch::Receiver<Option<Duration>>,
) -> Option<i32> {
    let mut backoff: Option<Duration> = None;
    let mut last_code = None;
    let mut first = true;
    loop {
        if stop.borrow().is_some() {
            break;
        }
        let started = Instant::now();
        let started_at = names::now();
        let mut child = match procs::spawn(&c.launch) {
            Ok(ch) => ch,
            Err(e) => {
                tracing::warn!(container = %c.name, error = %e, "kubelet: cannot start container");
                c.set(|s| s.state = CState::waiting("RunContainerError", Some(e.to_string())));
                tokio::select! {
                    () = tokio::time::sleep(BACKOFF_START) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        let Some(pid) = child.id() else {
            continue;
        };
        c.pids.lock().insert(c.name.clone(), pid);
        // restartCount counts instances started after the first, as the
        // real kubelet's does (it stays put while backing off).
        let again = !std::mem::replace(&mut first, false);
        c.set(|s| {
            if again {
                s.restart_count = s.restart_count.saturating_add(1);
            }
            s.state = CState::Running {
                started_at: started_at.clone(),
            };
            s.ready = false;
            s.started = false;
        });
        let (restart_tx, mut restart_rx) = mpsc::channel(1);
        let probes = tokio::spawn(probe::run(
            c.probes.clone(),
            probe::Target {
                ip: c.ip,
                pid,
                env: c.launch.env.clone(),
                status: c.status.clone(),
                notify: c.notify.clone(),
                restart: restart_tx,
            },
        ));
        let ended = tokio::select! {
            st = child.wait() => {
                procs::signal_group(pid, Signal::SIGKILL);
                Ended::Exited(exit_code(st))
            }
            Some(why) = restart_rx.recv() => {
                tracing::info!(container = %c.name, reason = %why, "kubelet: restarting container");
                Ended::Exited(terminate(&mut child, pid, c.pre_stop.as_deref(), &c.launch.env, c.grace).await)
            }
            _ = stop.changed() => {
                let grace = stop.borrow().unwrap_or_default();
                let code = terminate(&mut child, pid, c.pre_stop.as_deref(), &c.launch.env, grace).await;
                last_code = Some(code);
                Ended::Stopped
            }
        };
        probes.abort();
        c.pids.lock().remove(&c.name);
        let code = match ended {
            Ended::Exited(code) => code,
            Ended::Stopped => {
                let code = last_code.unwrap_or(137);
                c.set(|s| {
                    s.state = terminated(&c, code, &started_at);
                    s.ready = false;
                });
                break;
            }
        };
        last_code = Some(code);
        let state = terminated(&c, code, &started_at);
        if !c.restart.again(code) {
            c.set(|s| {
                s.state = state;
                s.ready = false;
            });
            break;
        }
        if started.elapsed() >= BACKOFF_RESET {
            backoff = None;
        }
        // The first restart is immediate; later ones wait, doubling.
        let delay = backoff.unwrap_or(Duration::ZERO);
        backoff = Some(match backoff {
            None => BACKOFF_START,
            Some(b) => (b * 2).min(BACKOFF_MAX),
        });
        let name = c.name.clone();
        c.set(|s| {
            s.last = Some(state);
            s.ready = false;
            s.started = false;
            s.state = CState::waiting(
                "CrashLoopBackOff",
                Some(format!(
                    "back-off {}s restarting failed container={name}",
                    delay.as_secs()
                )),
            );
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
    c.set(|s| s.done = true);
    last_code
}

/// The real kubelet's bounds on a message taken from the log.
const MESSAGE_LINES: usize = 80;
const MESSAGE_BYTES: u64 = 2048;

fn terminated(c: &Container, code: i32, started_at: &str) -> CState {
    CState::Terminated {
        exit_code: code,
        reason: if code == 0 { "Completed" } else { "Error" }.to_owned(),
        message: (code != 0 && c.message_from_log)
            .then(|| log_tail(&c.launch.log))
            .flatten(),
        started_at: started_at.to_owned(),
        finished_at: names::now(),
    }
}

/// The last [`MESSAGE_LINES`] lines of the log, at most [`MESSAGE_BYTES`]
/// bytes, as the real kubelet's fallback takes them; `None` when empty.
fn log_tail(log: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(MESSAGE_BYTES)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines
        .get(lines.len().saturating_sub(MESSAGE_LINES)..)
        .unwrap_or_default()
        .join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}
