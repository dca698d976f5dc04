//! Role labels: `valkey.logbook.dev/role=primary` on the pod of every
//! shard primary, `replica` on every other data pod, following what the
//! nodes report (Valkey's elections move primaries; the labels follow).

use logbook_journal::{Intent, ReasonCode, Role};

use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// The pods serving as shard primaries now.
pub fn primary_pods(view: &ClusterView<'_>) -> Vec<String> {
    view.state
        .cluster
        .shards()
        .into_iter()
        .filter(|s| !s.retired && view.pod(s.primary).is_some())
        .map(|s| s.primary.to_owned())
        .collect()
}

/// `SetShardRoleLabels` when a pod's label differs from its node's role.
pub fn decide_labels(view: &ClusterView<'_>) -> Vec<Decision> {
    if view.state.cluster.formed_at.is_none() {
        return Vec::new();
    }
    let primaries = primary_pods(view);
    let stale: Vec<&str> = view
        .pods()
        .into_iter()
        .filter(|p| {
            let want = if primaries.iter().any(|q| q == p.name) {
                Role::Primary
            } else {
                Role::Replica
            };
            p.view.role_label != Some(want)
        })
        .map(|p| p.name)
        .collect();
    if stale.is_empty() {
        return Vec::new();
    }
    vec![Decision::new(
        Intent::SetShardRoleLabels {
            primaries: primaries.clone(),
        },
        ReasonCode::RoleLabelsStale,
        format!(
            "role labels of {} differ from the shard primaries {}",
            stale.join(", "),
            primaries.join(", ")
        ),
    )]
}
