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
    /// Each time the process was found to have exited by itself.
    pub(super) crashes: Vec<String>,
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
            self.note_exit(&mut child);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 20 s: the journal is then readable.
    pub(super) async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.note_exit(&mut child);
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

impl Operator {
    /// Records `child` as crashed when it exited before being told to.
    fn note_exit(&mut self, child: &mut std::process::Child) {
        if let Ok(Some(status)) = child.try_wait() {
            self.crashes.push(format!(
                "the operator exited by itself ({status}), start {}",
                self.starts
            ));
        }
    }

    /// What went wrong in the process itself: each exit nobody asked for,
    /// and each panic its log holds (with the line after it, which names
    /// where). Empty when none.
    pub(super) fn failures(&self) -> Vec<String> {
        let mut out = self.crashes.clone();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("panicked at") {
                let next = lines.get(i + 1).copied().unwrap_or_default();
                out.push(format!("the operator panicked: {line} {next}"));
            }
        }
        out
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_panic_in_the_log_and_an_exit_nobody_asked_for_are_failures() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("operator.log");
        std::fs::write(
            &log,
            "INFO reconciled\nthread 'tokio-runtime-worker' panicked at src/decide/mod.rs:10:5:\nindex out of bounds\nINFO reconciled\n",
        )
        .unwrap();
        let mut operator = Operator {
            binary: "true".into(),
            kubeconfig: PathBuf::new(),
            journal: PathBuf::new(),
            log,
            child: None,
            starts: 0,
            crashes: Vec::new(),
        };
        let failures = operator.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("index out of bounds"), "{failures:?}");
        // `true` exits at once, by itself.
        operator.start().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        operator.kill();
        assert_eq!(operator.failures().len(), 2);
    }
}
