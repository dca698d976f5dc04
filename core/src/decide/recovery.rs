//! Recovery: what an intent found without an outcome after a restart
//! already achieved, judged from fresh observations only.
//!
//! The operator that decided it may have carried it out and died before
//! journaling the outcome. When the projection (re-observed since) shows
//! the intent's effect, the intent is resolved as done, saying what shows
//! it; otherwise it is abandoned, and what the cluster still needs is
//! decided afresh (a `Decided` like any other). `replay audit` judges the
//! same way again with this function (its `takeover-resolution` check).

use logbook_journal::{ClusterState, Event, Intent, Role};

/// What shows that `intent` took effect, if the observations do.
pub fn already_done(state: &ClusterState, intent: &Intent) -> Option<String> {
    let role = |pod: &str| state.pods.get(pod).and_then(|v| v.role);
    match intent {
        Intent::PromoteReplica { pod, .. } if role(pod) == Some(Role::Primary) => {
            Some(format!("{pod} is observed as primary"))
        }
        // Done once the old primary serves no more: promoted but not yet
        // following, it takes writes again when its pause expires, and
        // those the promoted pod never has.
        Intent::Switchover { from, to }
            if role(to) == Some(Role::Primary) && role(from) != Some(Role::Primary) =>
        {
            Some(format!("{to} is observed as primary, {from} no longer"))
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
        Intent::ClearFailoverRequest if state.failover_request.is_none() => {
            Some("no failover is requested any more".to_owned())
        }
        Intent::ClearRebalanceRequest if state.rebalance_request.is_none() => {
            Some("no rebalance is requested any more".to_owned())
        }
        Intent::MoveSlots {
            to, to_node, slots, ..
        } => {
            let owners = state.cluster.slot_owners();
            let moved = slots.iter().all(|r| {
                (r.start..=r.end).all(|slot| {
                    owners.get(usize::from(slot)).copied().flatten() == Some(to_node.as_str())
                })
            });
            // Nothing of the move may still be under way either.
            let running = state.reshard.jobs_of(to_node).next().is_some();
            (moved && !running && !slots.is_empty()).then(|| {
                format!(
                    "{to} (node {}) is observed owning all {} slots",
                    to_node.get(..8).unwrap_or(to_node),
                    logbook_journal::cluster::slot_count(slots)
                )
            })
        }
        Intent::SettleSlot { slot, .. } => {
            let marked = state.reshard.slot_states.values().any(|s| {
                s.migrating
                    .iter()
                    .chain(s.importing.iter())
                    .any(|p| p.slot == *slot)
            });
            (!marked).then(|| format!("no node marks slot {slot} as half-moved any more"))
        }
        Intent::SentinelFailover { from, .. }
            if state.replication.primary.as_deref() != Some(from.as_str()) =>
        {
            Some(format!(
                "Sentinel is observed to have switched the primary away from {from}"
            ))
        }
        Intent::SentinelMonitor {
            sentinel, primary, ..
        } => state
            .sentinel
            .pods
            .get(sentinel)
            .and_then(|v| v.report.as_ref())
            .and_then(|r| r.monitoring.as_ref())
            .filter(|m| m.primary_pod.as_deref() == Some(primary.as_str()))
            .map(|_| format!("{sentinel} is observed monitoring {primary}")),
        _ => None,
    }
}

/// The `ReplicaPromoted` that a promotion or switchover found done stands
/// for, unless the projection already believes in its pod. An executed
/// promotion journals it with its outcome; one whose outcome was lost (the
/// operator crashed, or lost the Lease mid-intent) must journal it when
/// found done, or the projection keeps the old primary, or none when the
/// old one was seen demoted before the new one was seen promoted, and
/// `decide` promotes another pod beside the live one.
pub fn promotion_found_done(state: &ClusterState, intent: &Intent) -> Option<Event> {
    let (pod, from) = match intent {
        Intent::PromoteReplica { pod, from } => (pod, from.clone()),
        Intent::Switchover { from, to } => (to, Some(from.clone())),
        _ => return None,
    };
    if state.replication.primary.as_deref() == Some(pod.as_str()) {
        return None;
    }
    let offset = state.pods.get(pod).and_then(|v| v.offset).unwrap_or(0);
    Some(Event::ReplicaPromoted {
        pod: pod.clone(),
        from,
        offset,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use logbook_journal::projection::PodView;
    use logbook_journal::{ChainHash, Role};

    use logbook_journal::{Envelope, Timestamp};
    use uuid::Uuid;

    use super::*;

    /// demo-1 was primary; a switchover to demo-0 ran, but its outcome
    /// was lost with the Lease. The next probe round saw demo-0 primary,
    /// then demo-1 a replica: the projection believes in no primary.
    fn after_a_lost_switchover() -> ClusterState {
        let mut state = ClusterState::default();
        for (pod, role) in [("demo-0", Role::Primary), ("demo-1", Role::Replica)] {
            let view = PodView {
                role: Some(role),
                offset: Some(500),
                ..PodView::default()
            };
            state.pods.insert(pod.to_owned(), view);
        }
        state
    }

    fn fold(state: &mut ClusterState, body: Event) {
        state.apply(&Envelope {
            seq: state.last_seq + 1,
            id: Uuid::now_v7(),
            at: Timestamp::now(),
            cause: None,
            epoch: 1,
            body,
            prev: state.last_hash,
            hash: ChainHash::GENESIS,
        });
    }

    #[test]
    fn a_switchover_found_done_journals_the_promotion_it_made() {
        let mut state = after_a_lost_switchover();
        let switchover = Intent::Switchover {
            from: "demo-1".to_owned(),
            to: "demo-0".to_owned(),
        };
        assert!(already_done(&state, &switchover).is_some());
        let promoted = promotion_found_done(&state, &switchover);
        assert_eq!(
            promoted,
            Some(Event::ReplicaPromoted {
                pod: "demo-0".to_owned(),
                from: Some("demo-1".to_owned()),
                offset: 500,
            })
        );
        fold(&mut state, promoted.unwrap());
        assert_eq!(state.replication.primary.as_deref(), Some("demo-0"));
        // Believed now: nothing more to journal.
        assert_eq!(promotion_found_done(&state, &switchover), None);
    }

    /// The switchover promoted demo-0 and died before demo-1 followed
    /// it: demo-1's pause expires and it takes writes again, with the
    /// Service's label. Found done, demo-1 would be repointed at demo-0
    /// and its writes since discarded; abandoned, demo-0 follows demo-1
    /// again.
    #[test]
    fn a_switchover_cut_before_the_old_primary_followed_is_not_done() {
        let mut state = after_a_lost_switchover();
        if let Some(old) = state.pods.get_mut("demo-1") {
            old.role = Some(Role::Primary);
        }
        let switchover = Intent::Switchover {
            from: "demo-1".to_owned(),
            to: "demo-0".to_owned(),
        };
        assert_eq!(already_done(&state, &switchover), None);
    }

    #[test]
    fn only_promotions_stand_for_a_promotion() {
        let state = after_a_lost_switchover();
        let promote = Intent::PromoteReplica {
            pod: "demo-0".to_owned(),
            from: None,
        };
        assert!(matches!(
            promotion_found_done(&state, &promote),
            Some(Event::ReplicaPromoted { from: None, .. })
        ));
        let repoint = Intent::RepointReplica {
            pod: "demo-1".to_owned(),
            to: "demo-0".to_owned(),
        };
        assert_eq!(promotion_found_done(&state, &repoint), None);
    }
}
