//! Fault injection for tests and `logbook local fault`: SIGKILL a
//! container, freeze and thaw a pod (SIGSTOP / SIGCONT of its process
//! groups), wipe a PVC's data, and partition a pod (iptables DROP of all
//! traffic to and from its address, so connections time out rather than
//! being refused). Rules carry a comment naming the instance, so several
//! localkubes never remove each other's.

use std::net::Ipv4Addr;
use std::sync::Arc;

use nix::sys::signal::Signal;

use super::{Shared, procs, volumes};

/// Why a fault could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// No pod of that name runs on this kubelet.
    #[error("pod {namespace}/{pod} is not running on this localkube node")]
    UnknownPod {
        /// The namespace.
        namespace: String,
        /// The pod.
        pod: String,
    },
    /// The pod has no such running container.
    #[error("container {container} of pod {namespace}/{pod} is not running")]
    UnknownContainer {
        /// The namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The container.
        container: String,
    },
    /// The PVC has no data directory here.
    #[error("persistentvolumeclaim {namespace}/{pvc} has no data on this node")]
    UnknownPvc {
        /// The namespace.
        namespace: String,
        /// The claim.
        pvc: String,
    },
    /// Removing files or running iptables failed.
    #[error("fault on {subject} failed: {message}")]
    Failed {
        /// The pod or PVC.
        subject: String,
        /// What went wrong.
        message: String,
    },
}

/// A pod's address and its running containers' (name, pid).
type Found = (Option<Ipv4Addr>, Vec<(String, u32)>);

/// The fault injector of one kubelet.
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

/// Adds (`-I`) or deletes (`-D`) the DROP rules of `ip`.
async fn rules(shared: &Shared, op: &str, ip: Ipv4Addr) -> Result<(), String> {
    let tag = shared.rule_tag();
    let ip = ip.to_string();
    for (chain, dir) in [("INPUT", "-d"), ("OUTPUT", "-s")] {
        let out = tokio::process::Command::new("iptables")
            .args([
                "-w",
                op,
                chain,
                dir,
                &ip,
                "-m",
                "comment",
                "--comment",
                &tag,
                "-j",
                "DROP",
            ])
            .output()
            .await
            .map_err(|e| format!("cannot run iptables: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
    }
    Ok(())
}

/// Removes the partition of `ip`, if any.
pub(crate) async fn heal_ip(shared: &Shared, ip: Ipv4Addr) {
    if shared.partitioned.lock().remove(&ip) {
        let _ = rules(shared, "-D", ip).await;
    }
}

/// Removes every partition this kubelet made.
pub(crate) async fn heal_all(shared: &Shared) {
    let ips: Vec<Ipv4Addr> = shared.partitioned.lock().drain().collect();
    for ip in ips {
        let _ = rules(shared, "-D", ip).await;
    }
}

impl Faults {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn unknown(ns: &str, pod: &str) -> FaultError {
        FaultError::UnknownPod {
            namespace: ns.to_owned(),
            pod: pod.to_owned(),
        }
    }

    /// The pod's address and its containers' pids (name, pid).
    fn find(&self, ns: &str, pod: &str) -> Result<Found, FaultError> {
        let pods = self.shared.pods.lock();
        let e = pods
            .values()
            .find(|e| e.namespace == ns && e.name == pod)
            .ok_or_else(|| Self::unknown(ns, pod))?;
        let pids = e.pids.lock().iter().map(|(k, v)| (k.clone(), *v)).collect();
        Ok((e.ip, pids))
    }

    fn signal_all(&self, ns: &str, pod: &str, sig: Signal) -> Result<(), FaultError> {
        let (_, pids) = self.find(ns, pod)?;
        if pids.is_empty() {
            return Err(Self::unknown(ns, pod));
        }
        for (_, pid) in pids {
            procs::signal_group(pid, sig);
        }
        Ok(())
    }

    /// SIGKILLs the container's process group (every container's when
    /// `container` is None); the kubelet restarts it per restartPolicy.
    ///
    /// # Errors
    /// An unknown pod or container.
    pub async fn kill(
        &self,
        ns: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<(), FaultError> {
        let Some(c) = container else {
            return self.signal_all(ns, pod, Signal::SIGKILL);
        };
        let (_, pids) = self.find(ns, pod)?;
        let (_, pid) =
            pids.iter()
                .find(|(n, _)| n == c)
                .ok_or_else(|| FaultError::UnknownContainer {
                    namespace: ns.to_owned(),
                    pod: pod.to_owned(),
                    container: c.to_owned(),
                })?;
        procs::signal_group(*pid, Signal::SIGKILL);
        Ok(())
    }

    /// SIGSTOPs every process of the pod.
    ///
    /// # Errors
    /// An unknown pod.
    pub async fn freeze(&self, ns: &str, pod: &str) -> Result<(), FaultError> {
        self.signal_all(ns, pod, Signal::SIGSTOP)
    }

    /// SIGCONTs every process of the pod.
    ///
    /// # Errors
    /// An unknown pod.
    pub async fn thaw(&self, ns: &str, pod: &str) -> Result<(), FaultError> {
        self.signal_all(ns, pod, Signal::SIGCONT)
    }

    /// Deletes the contents of the PVC's data directory.
    ///
    /// # Errors
    /// No data directory for that claim, or removal failed.
    pub async fn wipe_pvc_data(&self, ns: &str, pvc: &str) -> Result<(), FaultError> {
        let dir = volumes::pvc_dir(&self.shared.config.state_dir, ns, pvc);
        let mut rd = tokio::fs::read_dir(&dir)
            .await
            .map_err(|_| FaultError::UnknownPvc {
                namespace: ns.to_owned(),
                pvc: pvc.to_owned(),
            })?;
        let failed = |e: std::io::Error| FaultError::Failed {
            subject: format!("persistentvolumeclaim {ns}/{pvc}"),
            message: e.to_string(),
        };
        while let Some(e) = rd.next_entry().await.map_err(failed)? {
            let p = e.path();
            let r = if e.file_type().await.map_err(failed)?.is_dir() {
                tokio::fs::remove_dir_all(&p).await
            } else {
                tokio::fs::remove_file(&p).await
            };
            r.map_err(failed)?;
        }
        Ok(())
    }

    /// Writes garbage over every file of the PVC's data directory (see
    /// [`volumes::corrupt_files`]). Returns how many files.
    ///
    /// # Errors
    /// No data directory for that claim, or a file not written.
    pub async fn corrupt_pvc_data(&self, ns: &str, pvc: &str) -> Result<usize, FaultError> {
        let dir = volumes::pvc_dir(&self.shared.config.state_dir, ns, pvc);
        if !dir.is_dir() {
            return Err(FaultError::UnknownPvc {
                namespace: ns.to_owned(),
                pvc: pvc.to_owned(),
            });
        }
        volumes::corrupt_files(&dir).map_err(|e| FaultError::Failed {
            subject: format!("persistentvolumeclaim {ns}/{pvc}"),
            message: e.to_string(),
        })
    }

    /// Drops all traffic to and from the pod's address.
    ///
    /// # Errors
    /// An unknown pod or iptables failing.
    pub async fn partition(&self, ns: &str, pod: &str) -> Result<(), FaultError> {
        let (ip, _) = self.find(ns, pod)?;
        let ip = ip.ok_or_else(|| Self::unknown(ns, pod))?;
        if !self.shared.partitioned.lock().insert(ip) {
            return Ok(());
        }
        rules(&self.shared, "-I", ip).await.map_err(|message| {
            self.shared.partitioned.lock().remove(&ip);
            FaultError::Failed {
                subject: format!("pod {ns}/{pod}"),
                message,
            }
        })
    }

    /// Undoes [`Faults::partition`].
    ///
    /// # Errors
    /// An unknown pod.
    pub async fn heal(&self, ns: &str, pod: &str) -> Result<(), FaultError> {
        let (ip, _) = self.find(ns, pod)?;
        let ip = ip.ok_or_else(|| Self::unknown(ns, pod))?;
        heal_ip(&self.shared, ip).await;
        Ok(())
    }
}
