//! One background task per pod, following the pod's address: started for
//! a pod that has one, restarted when it moves, aborted when the pod goes
//! away or the set is dropped. The Sentinel event subscriptions and the
//! death watch's held connections each keep one.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::task::JoinHandle;

/// The tasks, by pod name.
#[derive(Debug, Default)]
pub(super) struct PodTasks(BTreeMap<String, PodTask>);

/// A task aborted when dropped.
#[derive(Debug)]
struct PodTask {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for PodTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PodTasks {
    /// One task per pod with an address: `spawn` starts the one of a pod
    /// not followed yet or followed at another address; those of pods gone
    /// or without an address are aborted.
    pub(super) fn sync(
        &mut self,
        pods: &[(String, Option<SocketAddr>)],
        mut spawn: impl FnMut(&str, SocketAddr) -> JoinHandle<()>,
    ) {
        self.0
            .retain(|pod, t| pods.iter().any(|(p, a)| p == pod && *a == Some(t.addr)));
        for (pod, addr) in pods {
            let Some(addr) = *addr else { continue };
            if !self.0.contains_key(pod) {
                let task = spawn(pod, addr);
                self.0.insert(pod.clone(), PodTask { addr, task });
            }
        }
    }

    /// Aborts every task.
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// How many pods are followed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}
