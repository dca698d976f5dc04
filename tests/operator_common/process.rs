//! `logbook operator` as a real child process of a test, on ConfigMap
//! journals, with its log lines in the test's [`Env::logs`]: for tests that
//! crash it (`LOGBOOK_CRASH_AT_COMMIT`) or run several at once.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use logbook::operator::{CRASH_AT_COMMIT, CRASH_COUNT_FROM};

use super::{Env, NS};

/// Set to a path, the operator processes run that binary rather than
/// this build's `logbook`.
pub const OPERATOR_BIN: &str = "LOGBOOK_TEST_OPERATOR_BIN";

/// How a child operator is armed: to crash at a commit (counted from the
/// first decision of an intent, given one), and environment variables
/// (the effect gate's).
#[derive(Default)]
struct Arming<'a> {
    crash_at: Option<u64>,
    count_from: Option<&'a str>,
    vars: &'a [(&'a str, &'a Path)],
}

/// `logbook operator` as a child process on ConfigMap journals, with the
/// tests' Lease timing (valid 3 s, renewed every second).
pub struct OperatorProcess {
    /// Its instance name.
    pub instance: String,
    child: Child,
    stderr: Option<std::thread::JoinHandle<()>>,
}

impl OperatorProcess {
    /// Starts instance `instance`, armed to crash at commit `crash_at`
    /// when given. Its log lines go to [`Env::logs`], prefixed with its
    /// name (so failure dumps show them).
    pub fn start(
        env: &Env,
        kubeconfig: &Path,
        workdir: &Path,
        instance: &str,
        crash_at: Option<u64>,
    ) -> Self {
        Self::start_with(env, kubeconfig, workdir, instance, crash_at, &[])
    }

    /// [`OperatorProcess::start`], with `extra` arguments after the
    /// others (`--metrics-addr`, `--log-format`, ...).
    pub fn start_with(
        env: &Env,
        kubeconfig: &Path,
        workdir: &Path,
        instance: &str,
        crash_at: Option<u64>,
        extra: &[&str],
    ) -> Self {
        Self::spawn(
            env,
            kubeconfig,
            workdir,
            instance,
            extra,
            Arming {
                crash_at,
                ..Arming::default()
            },
        )
    }

    /// [`OperatorProcess::start`] with the effect gate armed
    /// (`logbook::effects`): every effect recorded in `log` and, given a
    /// plan file, its fault injected.
    pub fn start_with_effects(
        env: &Env,
        kubeconfig: &Path,
        workdir: &Path,
        instance: &str,
        plan: Option<&Path>,
        log: &Path,
    ) -> Self {
        let mut vars = vec![(logbook::effects::EFFECT_LOG, log)];
        if let Some(plan) = plan {
            vars.push((logbook::effects::FAULT_PLAN, plan));
        }
        Self::spawn(
            env,
            kubeconfig,
            workdir,
            instance,
            &[],
            Arming {
                vars: &vars,
                ..Arming::default()
            },
        )
    }

    /// [`OperatorProcess::start`] armed to crash at commit `crash_at`
    /// counted from the first decision of an intent named `count_from`
    /// (`MoveSlots`; see [`CRASH_COUNT_FROM`]) rather than from the first
    /// decision.
    pub fn start_counting_from(
        env: &Env,
        kubeconfig: &Path,
        workdir: &Path,
        instance: &str,
        crash_at: u64,
        count_from: &str,
    ) -> Self {
        Self::spawn(
            env,
            kubeconfig,
            workdir,
            instance,
            &[],
            Arming {
                crash_at: Some(crash_at),
                count_from: Some(count_from),
                vars: &[],
            },
        )
    }

    fn spawn(
        env: &Env,
        kubeconfig: &Path,
        workdir: &Path,
        instance: &str,
        extra: &[&str],
        arming: Arming<'_>,
    ) -> Self {
        let Arming {
            crash_at,
            count_from,
            vars,
        } = arming;
        // A long sweep run from a copy of its binaries names a copy of
        // `logbook` too, so that a rebuild meanwhile changes neither.
        let bin = std::env::var_os(OPERATOR_BIN).map_or_else(
            || env!("CARGO_BIN_EXE_logbook").into(),
            std::path::PathBuf::from,
        );
        let mut command = Command::new(bin);
        command
            .arg("operator")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--journal", "configmap", "--instance", instance])
            .args(["--lease-namespace", NS, "--lease-seconds", "3"])
            .args(["--renew-milliseconds", "1000"])
            .args(extra)
            // Nothing local is read or written with ConfigMap journals;
            // an abort's core file, if any, lands here too.
            .current_dir(workdir)
            .env("RUST_LOG", "info,logbook=debug,kube=warn")
            .env("NO_COLOR", "1")
            .env_remove(CRASH_AT_COMMIT)
            .env_remove(CRASH_COUNT_FROM)
            .env_remove(logbook::effects::EFFECT_LOG)
            .env_remove(logbook::effects::FAULT_PLAN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = crash_at {
            command.env(CRASH_AT_COMMIT, n.to_string());
        }
        if let Some(intent) = count_from {
            command.env(CRASH_COUNT_FROM, intent);
        }
        for (name, value) in vars {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawning logbook operator");
        let stderr = child.stderr.take().unwrap();
        let (logs, prefix) = (env.logs.clone(), format!("[{instance}] "));
        let echo = std::env::var_os("LOGBOOK_TEST_LOG").is_some();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{prefix}{line}");
                }
                logs.append(&format!("{prefix}{line}"));
            }
        });
        let plan = vars
            .iter()
            .find(|(name, _)| *name == logbook::effects::FAULT_PLAN)
            .and_then(|(_, path)| std::fs::read_to_string(path).ok());
        env.logs.append(&format!(
            "==== {instance} started (crash at {crash_at:?}{}{}) ====",
            count_from.map_or(String::new(), |i| format!(" counted from the first {i}")),
            plan.map_or(String::new(), |p| format!(", fault plan {}", p.trim()))
        ));
        Self {
            instance: instance.to_owned(),
            child,
            stderr: Some(reader),
        }
    }

    /// Its exit status once it exited (its log lines are then all read).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().unwrap()?;
        if let Some(reader) = self.stderr.take() {
            let _ = reader.join();
        }
        Some(status)
    }

    /// SIGTERM, and a clean exit (it releases the Lease on the way out),
    /// or with `armed`, the crash injection's abort too (the commit of
    /// what it holds at shutdown may be its crash point). Failures dump
    /// `cluster`.
    pub async fn stop(mut self, env: &Env, cluster: &str, armed: bool) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 20 s of SIGTERM\n{}",
                self.instance,
                env.dump(cluster).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let aborted = status.signal() == Some(nix::sys::signal::Signal::SIGABRT as i32);
        assert!(
            status.success() || (armed && aborted),
            "{} stopped with {status}\n{}",
            self.instance,
            env.dump(cluster).await
        );
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
