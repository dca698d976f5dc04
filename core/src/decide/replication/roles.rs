//! Roles follow decisions: the `role` label the Services select on, the
//! boot primary the pods start as replicas of, and every replica following
//! the decided primary. Also the tail shared by every change of primary.

use logbook_crds::Topology;
use logbook_journal::{Intent, ReasonCode, Role};

use crate::decide::Decision;
use crate::decide::view::ClusterView;

/// An unplanned change of primary from `old` to `chosen`, all under one
/// reason: `old` fenced first while its pod exists (it may still take
/// writes the promoted replica will never have), `chosen` promoted, then
/// [`after_new_primary`].
pub fn replace_primary(
    view: &ClusterView<'_>,
    old: &str,
    chosen: &str,
    code: &ReasonCode,
    detail: &str,
) -> Vec<Decision> {
    let mut out = Vec::new();
    if view.pod(old).is_some() {
        out.push(Decision::new(
            Intent::FenceNode {
                pod: old.to_owned(),
            },
            code.clone(),
            detail,
        ));
    }
    out.push(Decision::new(
        Intent::PromoteReplica {
            pod: chosen.to_owned(),
            from: Some(old.to_owned()),
        },
        code.clone(),
        detail,
    ));
    out.extend(after_new_primary(view, chosen, code, detail));
    out
}

/// The follow-up of a change of primary to `primary`: labels, boot config,
/// and every other usable pod repointed, all under one reason.
pub fn after_new_primary(
    view: &ClusterView<'_>,
    primary: &str,
    code: &ReasonCode,
    detail: &str,
) -> Vec<Decision> {
    let mut out = vec![Decision::new(
        Intent::SetRoleLabels {
            primary: Some(primary.to_owned()),
        },
        code.clone(),
        detail,
    )];
    if view.topology() != Topology::Standalone {
        out.push(Decision::new(
            Intent::PublishBootConfig {
                primary: Some(primary.to_owned()),
                ip: view.pod(primary).and_then(|p| p.view.ip.clone()),
            },
            code.clone(),
            detail,
        ));
    }
    for pod in view.pods() {
        if pod.name != primary && pod.usable() {
            out.push(Decision::new(
                Intent::RepointReplica {
                    pod: pod.name.to_owned(),
                    to: primary.to_owned(),
                },
                code.clone(),
                detail,
            ));
        }
    }
    out
}

/// `PublishBootConfig` when the boot config does not name the healthy
/// primary (and its address): the pods boot as replicas of it, and a
/// Sentinel that lost its state monitors it.
pub fn stale_boot_config(view: &ClusterView<'_>) -> Option<Decision> {
    if view.topology() == Topology::Standalone {
        return None;
    }
    let primary = view.healthy_primary()?;
    let want = (Some(primary.name.to_owned()), primary.view.ip.clone());
    (view.state.replication.boot_primary.as_ref() != Some(&want)).then(|| {
        Decision::new(
            Intent::PublishBootConfig {
                primary: want.0,
                ip: want.1,
            },
            ReasonCode::BootConfigStale,
            format!("pods must boot as replicas of {}", primary.name),
        )
    })
}

/// [`decide_roles`], when a pod other than the healthy primary reports
/// itself primary: two pods serving as primary are ended before anything
/// else is decided (a spec applied, a scale), not after it.
pub fn decide_second_primary(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    let second = view
        .pods()
        .iter()
        .any(|p| p.name != primary.name && p.usable_as(Role::Primary));
    if second {
        decide_roles(view)
    } else {
        Vec::new()
    }
}

/// Keeps labels, boot config and replicas in line with a healthy primary.
pub fn decide_roles(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(primary) = view.healthy_primary() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let stale_labels: Vec<&str> = view
        .pods()
        .into_iter()
        .filter(|p| {
            let want = if p.name == primary.name {
                Role::Primary
            } else {
                Role::Replica
            };
            p.view.role_label != Some(want)
        })
        .map(|p| p.name)
        .collect();
    if !stale_labels.is_empty() {
        out.push(Decision::new(
            Intent::SetRoleLabels {
                primary: Some(primary.name.to_owned()),
            },
            ReasonCode::RoleLabelsStale,
            format!(
                "role labels of {} differ from primary {}",
                stale_labels.join(", "),
                primary.name
            ),
        ));
    }
    if view.topology() != Topology::Standalone {
        out.extend(stale_boot_config(view));
        // The pod the last failover replaced, its role not known since:
        // it may still be a primary holding writes the promoted pod
        // lacks (`failover::old_primary_ahead`); it is repointed once
        // seen again.
        let replaced = view
            .state
            .last_failover
            .as_ref()
            .and_then(|f| f.from.as_deref());
        for pod in view.pods() {
            if pod.name == primary.name
                || !pod.usable()
                || (pod.view.role.is_none() && Some(pod.name) == replaced)
            {
                continue;
            }
            let follows = pod.view.role == Some(Role::Replica)
                && pod.view.replicates.as_deref() == Some(primary.name);
            if !follows {
                let now = match (pod.view.role, pod.view.replicates.as_deref()) {
                    (Some(Role::Primary), _) => "reports itself primary".to_owned(),
                    (Some(Role::Replica), Some(other)) => format!("follows {other}"),
                    (Some(Role::Replica), None) => "follows no pod (fenced)".to_owned(),
                    (Some(Role::Sentinel) | None, _) => "has no known role".to_owned(),
                };
                out.push(Decision::new(
                    Intent::RepointReplica {
                        pod: pod.name.to_owned(),
                        to: primary.name.to_owned(),
                    },
                    ReasonCode::ReplicaMisdirected,
                    format!("{} {now}; primary is {}", pod.name, primary.name),
                ));
            }
        }
    }
    out
}
