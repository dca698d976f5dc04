//! Restart on request (`kubectl valkey restart`, the annotation
//! `valkey.logbook.dev/restart-requested`): the request's value is stamped
//! on every pod template (`RestartPods`), which gives the StatefulSets a
//! new revision; the roll every change of template takes then replaces
//! each pod once, with its own rules (replicas first, the primary last
//! after a switchover to an in-sync replica, a Cluster shard by shard,
//! never two data pods at once; the Sentinels by their StatefulSet, one at
//! a time).
//!
//! A value is carried out once: the projection keeps the last one stamped
//! (`restarted_at`), and the same value again asks for nothing. While the
//! cluster is paused or hibernated nothing is decided; the request waits,
//! and the status says so ([`deferred`]).

use logbook_crds::Topology;
use logbook_journal::{Intent, ReasonCode};

use super::Decision;
use super::view::ClusterView;

/// The value of a restart asked for and not carried out yet.
fn pending<'v>(view: &'v ClusterView<'_>) -> Option<&'v str> {
    let request = view.state.restart_request.as_deref()?;
    (view.state.restarted_at.as_deref() != Some(request)).then_some(request)
}

/// `RestartPods` for a restart asked for and not carried out yet, once
/// the objects of the generation in force are applied (a refused apply is
/// not tried again until the spec changes: it would be refused the same).
pub fn decide_restart(view: &ClusterView<'_>) -> Vec<Decision> {
    let Some(requested) = pending(view) else {
        return Vec::new();
    };
    if view.state.applied_generation != Some(view.generation)
        || view
            .state
            .apply_refused
            .as_ref()
            .is_some_and(|(g, _)| *g == view.generation)
    {
        return Vec::new();
    }
    let how = match view.topology() {
        Topology::Standalone => "its one pod is replaced (it serves nothing meanwhile)",
        Topology::Replication => {
            "every pod is rolled once, replicas first, the primary last after a switchover to an in-sync replica, never two at once"
        }
        Topology::Sentinel => {
            "every data pod is rolled once, replicas first, the primary last after a coordinated Sentinel failover, never two at once; the Sentinels one at a time by their StatefulSet"
        }
        Topology::Cluster => {
            "every node is rolled once, shard by shard, replicas first, each shard's primary after a coordinated failover, never two at once"
        }
    };
    vec![Decision::new(
        Intent::RestartPods {
            requested: requested.to_owned(),
            generation: view.generation,
        },
        ReasonCode::RestartRequested {
            requested: requested.to_owned(),
        },
        format!(
            "restart requested ({requested}): the pod templates are stamped with it, then {how}"
        ),
    )]
}

/// What the status says of a restart that waits for the cluster to be
/// resumed or woken: nothing is decided meanwhile.
pub fn deferred(view: &ClusterView<'_>) -> Option<String> {
    let requested = pending(view)?;
    let why = if view.spec.paused {
        "the cluster is paused"
    } else if view.spec.hibernated || view.state.hibernation.is_some() {
        "the cluster is hibernated"
    } else {
        return None;
    };
    Some(format!(
        "restart requested ({requested}) waits: {why}; it is carried out once the cluster is back"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use logbook_crds::ValkeyClusterSpec;
    use logbook_journal::{Event, Intent, ReasonCode};

    use crate::decide::given::Given;

    const AT: &str = "2026-11-30T12:00:00Z";

    fn applied() -> (Given, ValkeyClusterSpec) {
        let mut g = Given::new();
        let spec = ValkeyClusterSpec::default();
        g.spec(&spec);
        g.succeed(Intent::ApplyResources { generation: 1 });
        (g, spec)
    }

    fn restart() -> Intent {
        Intent::RestartPods {
            requested: AT.to_owned(),
            generation: 1,
        }
    }

    #[test]
    fn a_request_is_carried_out_once_with_its_reason() {
        let (mut g, _) = applied();
        assert!(!g.intents().contains(&restart()));
        g.event(Event::RestartRequestObserved {
            request: Some(AT.to_owned()),
        });
        let decided = g.decide();
        let d = decided
            .iter()
            .find(|d| d.intent == restart())
            .unwrap_or_else(|| panic!("no RestartPods in {decided:?}"));
        assert_eq!(
            d.reason.code,
            ReasonCode::RestartRequested {
                requested: AT.to_owned()
            }
        );
        g.succeed(restart());
        // Carried out: the same value asks for nothing more, even seen
        // again after it was removed.
        assert!(!g.intents().contains(&restart()));
        g.event(Event::RestartRequestObserved { request: None });
        g.event(Event::RestartRequestObserved {
            request: Some(AT.to_owned()),
        });
        assert!(!g.intents().contains(&restart()));
        // A new value is a new restart.
        g.event(Event::RestartRequestObserved {
            request: Some("2026-11-30T13:00:00Z".to_owned()),
        });
        assert!(g.intents().iter().any(
            |i| matches!(i, Intent::RestartPods { requested, .. } if requested == "2026-11-30T13:00:00Z")
        ));
    }

    #[test]
    fn a_paused_cluster_defers_the_restart_and_says_so() {
        let (mut g, mut spec) = applied();
        spec.paused = true;
        g.spec_at(2, &spec);
        g.succeed(Intent::ApplyResources { generation: 2 });
        g.event(Event::RestartRequestObserved {
            request: Some(AT.to_owned()),
        });
        assert!(g.intents().is_empty());
        let ready = g
            .status()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert!(
            ready.message.contains("waits: the cluster is paused"),
            "{}",
            ready.message
        );
        // Resumed: carried out.
        spec.paused = false;
        g.spec_at(3, &spec);
        g.succeed(Intent::ApplyResources { generation: 3 });
        assert!(g.intents().iter().any(|i| matches!(
            i,
            Intent::RestartPods { requested, generation: 3 } if requested == AT
        )));
    }

    #[test]
    fn a_refused_restart_is_not_tried_again_until_the_spec_changes() {
        let (mut g, spec) = applied();
        g.event(Event::RestartRequestObserved {
            request: Some(AT.to_owned()),
        });
        g.decide_and_fail(restart(), "refused", false);
        assert!(!g.intents().contains(&restart()));
        g.spec_at(2, &spec);
        g.succeed(Intent::ApplyResources { generation: 2 });
        assert!(
            g.intents()
                .iter()
                .any(|i| matches!(i, Intent::RestartPods { generation: 2, .. }))
        );
    }
}
