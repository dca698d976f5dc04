//! Container states and the pod status computed from them, in the shape
//! the real kubelet reports: container states (waiting / running /
//! terminated, lastState, restartCount, ready, started), the phase, and
//! the four conditions with lastTransitionTime kept while unchanged.

use serde_json::{Value, json};

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CState {
    /// Not running: ContainerCreating, CrashLoopBackOff, ErrImagePull, ...
    Waiting {
        reason: String,
        message: Option<String>,
    },
    /// Its process runs.
    Running { started_at: String },
    /// Its process ended.
    Terminated {
        exit_code: i32,
        reason: String,
        /// The termination message (`FallbackToLogsOnError`: the tail of
        /// the log of a container that failed).
        message: Option<String>,
        started_at: String,
        finished_at: String,
    },
}

impl CState {
    pub fn waiting(reason: &str, message: Option<String>) -> Self {
        Self::Waiting {
            reason: reason.to_owned(),
            message,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let (Some(m), Some(o)) = (message, w.as_object_mut()) {
                    o.insert("message".into(), json!(m));
                }
                json!({"waiting": w})
            }
            Self::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            Self::Terminated {
                exit_code,
                reason,
                message,
                started_at,
                finished_at,
            } => {
                let mut t = json!({
                    "exitCode": exit_code, "reason": reason,
                    "startedAt": started_at, "finishedAt": finished_at,
                });
                if let (Some(m), Some(o)) = (message, t.as_object_mut()) {
                    o.insert("message".into(), json!(m));
                }
                json!({"terminated": t})
            }
        }
    }
}

/// A container's status as the kubelet tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CStatus {
    pub name: String,
    pub image: String,
    pub state: CState,
    pub last: Option<CState>,
    pub restart_count: u32,
    pub ready: bool,
    pub started: bool,
    /// Its supervisor has finished: it will not run again.
    pub done: bool,
}

impl CStatus {
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: image.to_owned(),
            state: CState::waiting("ContainerCreating", None),
            last: None,
            restart_count: 0,
            ready: false,
            started: false,
            done: false,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "containerID": format!("localkube://{}", self.name),
            "state": self.state.to_json(),
            "lastState": self.last.as_ref().map(CState::to_json).unwrap_or_else(|| json!({})),
            "restartCount": self.restart_count,
            "ready": self.ready,
            "started": self.started,
        })
    }

    fn running(&self) -> bool {
        matches!(self.state, CState::Running { .. })
    }

    fn never_ran(&self) -> bool {
        matches!(self.state, CState::Waiting { .. }) && self.last.is_none()
    }

    fn exit_code(&self) -> Option<i32> {
        match &self.state {
            CState::Terminated { exit_code, .. } => Some(*exit_code),
            CState::Waiting { .. } | CState::Running { .. } => None,
        }
    }
}

/// Everything the pod status is computed from.
pub(crate) struct PodView<'a> {
    pub previous: &'a Value,
    pub ip: Option<std::net::Ipv4Addr>,
    /// The node's address (`status.hostIP`).
    pub host_ip: std::net::Ipv4Addr,
    pub init: &'a [CStatus],
    pub main: &'a [CStatus],
    pub initialized: bool,
    /// A pod-level problem (missing PVC): reason and message.
    pub problem: Option<(String, String)>,
    pub now: &'a str,
}

fn phase(v: &PodView<'_>) -> &'static str {
    if v.init
        .iter()
        .any(|c| c.done && c.exit_code().is_some_and(|e| e != 0))
    {
        return "Failed";
    }
    if !v.initialized || v.main.iter().any(CStatus::never_ran) {
        return "Pending";
    }
    if v.main.iter().any(CStatus::running) {
        return "Running";
    }
    if !v.main.is_empty() && v.main.iter().all(|c| c.done) {
        if v.main.iter().all(|c| c.exit_code() == Some(0)) {
            return "Succeeded";
        }
        return "Failed";
    }
    "Running"
}

fn condition(previous: &Value, kind: &str, ok: bool, now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if !ok
        && kind != "PodScheduled"
        && let Some(o) = c.as_object_mut()
    {
        let reason = match kind {
            "Initialized" => "ContainersNotInitialized",
            _ => "ContainersNotReady",
        };
        o.insert("reason".into(), json!(reason));
    }
    c
}

/// The pod's status.
pub(crate) fn pod_status(v: &PodView<'_>) -> Value {
    let ready = v.initialized && !v.main.is_empty() && v.main.iter().all(|c| c.ready);
    let phase = phase(v);
    // A finished pod's containers are not ready, but Succeeded is not
    // "unready" in the Initialized sense.
    let start = v
        .previous
        .get("startTime")
        .cloned()
        .unwrap_or_else(|| json!(v.now));
    let mut s = json!({
        "phase": phase,
        "hostIP": v.host_ip.to_string(),
        "hostIPs": [{"ip": v.host_ip.to_string()}],
        "startTime": start,
        "qosClass": v.previous.get("qosClass").cloned().unwrap_or_else(|| json!("BestEffort")),
        "conditions": [
            condition(v.previous, "PodScheduled", true, v.now),
            condition(v.previous, "Initialized", v.initialized, v.now),
            condition(v.previous, "ContainersReady", ready, v.now),
            condition(v.previous, "Ready", ready, v.now),
        ],
        "containerStatuses": v.main.iter().map(CStatus::to_json).collect::<Vec<_>>(),
    });
    if let Some(o) = s.as_object_mut() {
        if let Some(ip) = v.ip {
            o.insert("podIP".into(), json!(ip.to_string()));
            o.insert("podIPs".into(), json!([{"ip": ip.to_string()}]));
        }
        if !v.init.is_empty() {
            o.insert(
                "initContainerStatuses".into(),
                json!(v.init.iter().map(CStatus::to_json).collect::<Vec<_>>()),
            );
        }
        if let Some((reason, message)) = &v.problem {
            o.insert("reason".into(), json!(reason));
            o.insert("message".into(), json!(message));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_crashed_container_keeps_the_pod_running_and_a_transition_time_stays() {
        let mut c = CStatus::new("a", "img");
        c.state = CState::waiting("CrashLoopBackOff", None);
        c.last = Some(CState::Terminated {
            exit_code: 3,
            reason: "Error".into(),
            message: None,
            started_at: "t0".into(),
            finished_at: "t1".into(),
        });
        c.restart_count = 1;
        let prev = json!({"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "old"}]});
        let main = [c];
        let s = pod_status(&PodView {
            previous: &prev,
            ip: None,
            host_ip: std::net::Ipv4Addr::new(127, 16, 255, 254),
            init: &[],
            main: &main,
            initialized: true,
            problem: None,
            now: "now",
        });
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["conditions"][3]["lastTransitionTime"], "old");
        assert_eq!(
            s["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
            3
        );
    }
}
