//! A standby (`spec.replicateFrom`): its believed primary, the leader,
//! follows the source instead of taking writes; removing `replicateFrom`
//! promotes it.
//!
//! Every concern of a Replication decides as it would for a primary; what
//! would make a pod primary becomes following the source instead
//! ([`for_standby`]): the bootstrap's first primary, a failover's
//! replacement, a switchover's target. So a standby fails over within
//! itself as a Replication does, and no pod of it ever takes a write
//! before the promotion.

use logbook_journal::projection::replication::STANDBY_SOURCE;
use logbook_journal::{Intent, ReasonCode, Role};

use super::Decision;
use super::replication::after_new_primary;
use super::view::{ClusterView, best, describe};

/// The source the standby follows, as last observed: `(host, port,
/// secret)`; `None` before the observer resolved it.
fn source(view: &ClusterView<'_>) -> Option<(String, u16, String)> {
    let standby = view.state.standby.as_ref()?;
    let (host, port) = standby.address.clone()?;
    Some((host, port, standby.secret.clone()))
}

/// The standby's source for people (`namespace/name` or `host:port`),
/// while the spec names one. A source named without its namespace is in
/// the standby's, which is the namespace of the Secret the journal names
/// then.
pub(super) fn described_source(view: &ClusterView<'_>) -> Option<String> {
    let own_ns = view
        .state
        .standby
        .as_ref()
        .and_then(|s| s.secret.split_once('/'))
        .map_or("", |(ns, _)| ns);
    view.spec
        .replicate_from
        .as_ref()
        .map(|f| f.describe(own_ns))
}

/// The standby's source for people, in a sentence.
fn source_name(view: &ClusterView<'_>) -> String {
    described_source(view).unwrap_or_else(|| "its source".to_owned())
}

/// Whether `pod` follows the source at the address it should.
fn follows_source(view: &ClusterView<'_>, pod: &str) -> bool {
    let Some(p) = view.pod(pod) else {
        return false;
    };
    let Some((host, port, _)) = source(view) else {
        return false;
    };
    let at = view
        .state
        .standby
        .as_ref()
        .and_then(|s| s.leader.as_ref())
        .is_some_and(|(l, h, pt)| l == pod && *h == host && *pt == port);
    p.usable_as(Role::Replica) && p.view.replicates.as_deref() == Some(STANDBY_SOURCE) && at
}

/// The standby's leader following its source again when it does not (it
/// restarted in place, someone ran `REPLICAOF`, the source's address
/// changed), and the promotion once `replicateFrom` is removed.
pub fn decide_standby(view: &ClusterView<'_>) -> Vec<Decision> {
    let leading = view.state.standby.as_ref().and_then(|s| s.leader.as_ref());
    if view.spec.replicate_from.is_none() {
        return promotion(
            view,
            leading.map(|(pod, host, port)| (pod.as_str(), host, *port)),
        );
    }
    let Some((host, port, secret)) = source(view) else {
        return Vec::new();
    };
    let Some(leader) = view.primary().and_then(|p| view.pod(p)) else {
        return Vec::new();
    };
    if !leader.usable() || follows_source(view, leader.name) {
        return Vec::new();
    }
    let now = match (leader.view.role, leader.view.replicates.as_deref()) {
        (Some(Role::Primary), _) => "takes writes".to_owned(),
        (Some(Role::Replica), Some(STANDBY_SOURCE)) => {
            "follows the source's old address".to_owned()
        }
        (Some(Role::Replica), Some(other)) => format!("follows {other}"),
        (Some(Role::Replica), None) => "follows nothing (fenced)".to_owned(),
        (Some(Role::Sentinel) | None, _) => "has no known role".to_owned(),
    };
    vec![Decision::new(
        Intent::FollowSource {
            pod: leader.name.to_owned(),
            host: host.clone(),
            port,
            secret,
        },
        ReasonCode::Standby {
            source: source_name(view),
        },
        format!(
            "{} leads the standby but {now}; it follows the source at {host}:{port}",
            leader.name
        ),
    )]
}

/// `replicateFrom` is gone while a pod still follows the source: it is
/// promoted, or, when it is not usable, the best of the others.
fn promotion(view: &ClusterView<'_>, leading: Option<(&str, &String, u16)>) -> Vec<Decision> {
    let Some((leader, host, port)) = leading else {
        return Vec::new();
    };
    let Some(standby) = view.state.standby.as_ref() else {
        return Vec::new();
    };
    let usable = view.pod(leader).is_some_and(|p| p.usable());
    let code = ReasonCode::Promotion { lag: standby.lag };
    let lag = standby
        .lag
        .map_or_else(|| "unknown".to_owned(), |l| format!("{l} bytes"));
    let pod = if usable {
        leader.to_owned()
    } else {
        let candidates = view.rank_candidates(Some(leader), false);
        let Some(chosen) = best(&candidates) else {
            return Vec::new();
        };
        chosen.pod.clone()
    };
    let detail = format!(
        "replicateFrom removed: {pod} stops following the source at {host}:{port} and takes writes; lag at the last observation: {lag}{}",
        if usable {
            String::new()
        } else {
            format!(
                "; {leader}, which followed it, is not usable; candidates: {}",
                describe(&view.rank_candidates(Some(leader), false))
            )
        }
    );
    let mut out = vec![Decision::new(
        Intent::PromoteStandby {
            pod: pod.clone(),
            host: host.clone(),
            port,
            secret: standby.secret.clone(),
        },
        code.clone(),
        detail.clone(),
    )];
    if !usable {
        out.extend(after_new_primary(view, &pod, &code, &detail));
    }
    out
}

/// `decisions` as a standby carries them out: what would make a pod
/// primary makes it follow the source. Before the source's address is
/// known nothing that would make a primary is decided at all.
pub fn for_standby(view: &ClusterView<'_>, decisions: Vec<Decision>) -> Vec<Decision> {
    if view.spec.replicate_from.is_none() {
        return decisions;
    }
    let makes_primary = |d: &Decision| {
        matches!(
            d.intent,
            Intent::PromoteReplica { .. } | Intent::Switchover { .. }
        )
    };
    let Some((host, port, secret)) = source(view) else {
        return if decisions.iter().any(makes_primary) {
            Vec::new()
        } else {
            decisions
        };
    };
    let mut out = Vec::new();
    for d in decisions {
        match d.intent {
            Intent::PromoteReplica { pod, .. } => out.push(Decision {
                intent: Intent::FollowSource {
                    pod,
                    host: host.clone(),
                    port,
                    secret: secret.clone(),
                },
                reason: d.reason,
            }),
            // A planned hand-over: the target follows the source, the old
            // leader the target, and the labels and boot config move.
            Intent::Switchover { from, to } => {
                out.push(Decision {
                    intent: Intent::FollowSource {
                        pod: to.clone(),
                        host: host.clone(),
                        port,
                        secret: secret.clone(),
                    },
                    reason: d.reason.clone(),
                });
                out.extend(
                    after_new_primary(view, &to, &d.reason.code, &d.reason.detail)
                        .into_iter()
                        .filter(|a| match &a.intent {
                            Intent::RepointReplica { pod, .. } => *pod == from,
                            _ => true,
                        }),
                );
            }
            intent => out.push(Decision {
                intent,
                reason: d.reason,
            }),
        }
    }
    out
}
