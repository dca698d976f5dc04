//! The operator process of a soak: a real `logbook operator` with a
//! sled journal, killed (`SIGKILL`) and started again.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::BenchError;

/// The operator process: killed and started again by the soak.
pub(super) struct Operator {
    pub(super) binary: PathBuf,
    pub(super) kubeconfig: PathBuf,
    pub(super) journal: PathBuf,
    pub(super) log: PathBuf,
    pub(super) child: Option<std::process::Child>,
    pub(super) starts: u32,
}

impl Operator {
    pub(super) fn start(&mut self) -> Result<(), BenchError> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| BenchError::Io {
                what: "the operator log".into(),
                source,
            })?;
        let child = std::process::Command::new(&self.binary)
            .args(["operator", "--journal", "sled", "--instance", "soak"])
            .arg("--journal-dir")
            .arg(&self.journal)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|source| BenchError::Spawn {
                what: "the operator".into(),
                binary: self.binary.display().to_string(),
                source,
            })?;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL: no clean-up of any kind.
    pub(super) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 20 s: the journal is then readable.
    pub(super) async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
