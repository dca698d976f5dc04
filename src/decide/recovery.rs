//! Recovery: what an intent found without an outcome after a restart
//! already achieved, judged from fresh observations only.
//!
//! The operator that decided it may have carried it out and died before
//! journaling the outcome. When the projection (re-observed since) shows
//! the intent's effect, the intent is resolved as done, saying what shows
//! it; otherwise it is re-run when `decide` still asks for it, or
//! abandoned.

use logbook_journal::{ClusterState, Intent, Role};

/// What shows that `intent` took effect, if the observations do.
pub fn already_done(state: &ClusterState, intent: &Intent) -> Option<String> {
    let role = |pod: &str| state.pods.get(pod).and_then(|v| v.role);
    match intent {
        Intent::PromoteReplica { pod, .. } if role(pod) == Some(Role::Primary) => {
            Some(format!("{pod} is observed as primary"))
        }
        Intent::Switchover { to, .. } if role(to) == Some(Role::Primary) => {
            Some(format!("{to} is observed as primary"))
        }
        Intent::RepointReplica { pod, to } => state
            .pods
            .get(pod)
            .filter(|v| v.role == Some(Role::Replica) && v.replicates.as_deref() == Some(to))
            .map(|_| format!("{pod} is observed replicating from {to}")),
        Intent::SetRoleLabels { primary } => {
            let labelled = state.pods.iter().all(|(name, view)| {
                let want = if primary.as_deref() == Some(name.as_str()) {
                    Role::Primary
                } else {
                    Role::Replica
                };
                view.role_label == Some(want)
            });
            (labelled && !state.pods.is_empty()).then(|| {
                format!(
                    "the role labels name {} primary",
                    primary.as_deref().unwrap_or("no pod")
                )
            })
        }
        Intent::RollPod { pod, revision } => state
            .pods
            .get(pod)
            .filter(|v| v.revision.as_deref() == Some(revision.as_str()))
            .map(|_| format!("{pod} is observed at revision {revision}")),
        Intent::ClearSwitchoverRequest if state.switchover_request.is_none() => {
            Some("no switchover is requested any more".to_owned())
        }
        _ => None,
    }
}
