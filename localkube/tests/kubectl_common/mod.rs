//! The kubectl harness of the localkube tests: a running localkube, a
//! kubeconfig for it, and the real `kubectl` (v1.35, installed by
//! `make setup` under `.tools/bin`) run against it as a bounded child
//! process — as the admin, or with another kubeconfig (a ServiceAccount's).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use logbook_localkube::{Config, LocalKube, RunningServer};

/// A running localkube plus a kubeconfig for it.
pub struct Cluster {
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    pub fn start() -> Self {
        Self::start_with(Config::default())
    }

    pub fn start_with(config: Config) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(LocalKube::start(config)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Self {
            runtime: Some(runtime),
            server: Some(server),
            dir,
            kubeconfig,
        }
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.as_ref().unwrap().block_on(f)
    }

    /// Writes a kubeconfig that authenticates with `token` (e.g. a
    /// ServiceAccount's) and returns its path.
    pub fn kubeconfig_for_token(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{name}"));
        self.server()
            .write_kubeconfig_with_token(&path, token)
            .unwrap();
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(&self.kubeconfig, args)
    }

    pub fn command_in(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl());
        cmd.args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", self.dir.path())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl to completion (bounded), returning its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_as(&self.kubeconfig, args, stdin)
    }

    /// Runs kubectl with `kubeconfig` (bounded), returning its output.
    pub fn run_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command_in(kubeconfig, args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        wait_bounded(child, Duration::from_secs(60), args)
    }

    /// Runs kubectl and insists on success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_as(&self.kubeconfig, args)
    }

    /// Runs kubectl with `kubeconfig`, insisting on success.
    pub fn ok_as(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.run_as(kubeconfig, args, None);
        assert!(
            out.status.success(),
            "kubectl {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with_stdin(args, Some(stdin));
        assert!(
            out.status.success(),
            "kubectl {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl expecting failure, returning stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_as(&self.kubeconfig, args)
    }

    /// Runs kubectl with `kubeconfig` expecting failure, returning stderr.
    pub fn fails_as(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.run_as(kubeconfig, args, None);
        assert!(
            !out.status.success(),
            "kubectl {} unexpectedly succeeded:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let (Some(rt), Some(server)) = (self.runtime.as_ref(), self.server.take()) {
            rt.block_on(server.shutdown());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// `.tools/bin/kubectl` (installed by `make setup`), else `kubectl` on PATH.
pub fn kubectl() -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/kubectl");
    if local.exists() {
        return local;
    }
    match Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
    {
        Ok(out) if out.status.success() => PathBuf::from("kubectl"),
        _ => panic!("kubectl not found: run `make setup` (installs it under .tools/bin)"),
    }
}

pub fn wait_bounded(mut child: Child, limit: Duration, args: &[&str]) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "kubectl {} did not finish in {limit:?}:\nstdout: {}\nstderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}
