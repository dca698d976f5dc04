//! Watching a cluster's pods while a change runs.
#[allow(unused_imports)]
use super::*;

/// What a [`PodMonitor`] saw.
#[derive(Debug, Default, Clone)]
pub struct PodHistory {
    /// The most pods missing, terminating or not Ready at one moment.
    pub max_down: usize,
    /// Pods seen terminating (or gone) while labelled primary.
    pub deleted_while_primary: Vec<String>,
    /// Pods in the order they were replaced (a new uid appeared).
    pub replaced: Vec<String>,
    /// Polls made.
    pub polls: usize,
}

/// Polls a cluster's pods every 50 ms while a change runs.
pub struct PodMonitor {
    history: Arc<Mutex<PodHistory>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodMonitor {
    /// Watches the pods of `name` expecting `want` of them.
    pub fn start(env: &Env, name: &str, want: usize) -> Self {
        let history = Arc::new(Mutex::new(PodHistory::default()));
        let shared = history.clone();
        let api: Api<Pod> = env.api();
        let selector = format!("valkey.logbook.dev/cluster={name}");
        let task = tokio::spawn(async move {
            let mut uids: BTreeMap<String, String> = BTreeMap::new();
            let mut primary_labelled: BTreeMap<String, bool> = BTreeMap::new();
            loop {
                if let Ok(list) = api.list(&ListParams::default().labels(&selector)).await {
                    let mut h = shared.lock().unwrap();
                    h.polls += 1;
                    let mut up = 0;
                    let mut seen = Vec::new();
                    for pod in &list.items {
                        let pod_name = pod.name_any();
                        seen.push(pod_name.clone());
                        let terminating = pod.metadata.deletion_timestamp.is_some();
                        let ready = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            });
                        if ready && !terminating {
                            up += 1;
                        }
                        let is_primary = pod
                            .labels()
                            .get("valkey.logbook.dev/role")
                            .map(String::as_str)
                            == Some("primary");
                        let uid = pod.metadata.uid.clone().unwrap_or_default();
                        if let Some(old) = uids.insert(pod_name.clone(), uid.clone())
                            && old != uid
                        {
                            h.replaced.push(pod_name.clone());
                        }
                        if terminating && is_primary && !h.deleted_while_primary.contains(&pod_name)
                        {
                            h.deleted_while_primary.push(pod_name.clone());
                        }
                        primary_labelled.insert(pod_name, is_primary && !terminating);
                    }
                    // A pod that vanished between two polls while labelled
                    // primary counts too.
                    for (pod_name, was_primary) in &primary_labelled {
                        if *was_primary
                            && !seen.contains(pod_name)
                            && !h.deleted_while_primary.contains(pod_name)
                        {
                            h.deleted_while_primary.push(pod_name.clone());
                        }
                    }
                    primary_labelled.retain(|k, _| seen.contains(k));
                    h.max_down = h.max_down.max(want.saturating_sub(up));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { history, task }
    }

    /// Stops and returns what was seen.
    pub fn stop(self) -> PodHistory {
        self.task.abort();
        self.history.lock().unwrap().clone()
    }
}
