//! Hibernation of a Replication cluster: its data durable first, then no
//! pod; nothing decided while its pods stop, while it sleeps, or while
//! they come back; then the primary it had, with no failover.

use logbook_crds::v1alpha1::ClusterPhase;
use logbook_journal::{Event, Intent, Reachability, Role};

use super::*;

fn spec(hibernated: bool) -> ValkeyClusterSpec {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.hibernated = hibernated;
    spec
}

fn all() -> Vec<String> {
    (0..3).map(pod).collect()
}

#[test]
fn it_sleeps_once_durable_and_wakes_with_the_primary_it_had() {
    let mut g = Given::converged(3);
    g.spec_at(2, &spec(true));
    let persist = Intent::PersistForHibernation {
        primaries: vec![pod(0)],
        pods: all(),
    };
    assert_eq!(g.intents(), vec![persist.clone()]);
    assert_eq!(g.status().phase, Some(ClusterPhase::Hibernating));
    g.succeed(persist);
    // Durable: only then the StatefulSet goes to zero pods.
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 2 }]);
    g.applied(2);
    g.event(Event::StatefulSetObserved {
        replicas: 0,
        update_revision: Some("r1".into()),
    });
    assert!(g.intents().is_empty());
    // The primary stopping is not failed over.
    g.event(Event::PodTerminating { pod: pod(0) });
    g.reach(0, Reachability::Refused);
    g.reach(0, Reachability::Refused);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    for i in 0..3 {
        g.event(Event::PodDeleted { pod: pod(i) });
    }
    assert!(g.intents().is_empty());
    assert_eq!(g.status().phase, Some(ClusterPhase::Hibernated));

    // Woken: the StatefulSet back at its size, then nothing until every
    // pod answers.
    g.spec_at(3, &spec(false));
    assert_eq!(g.status().phase, Some(ClusterPhase::Waking));
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 3 }]);
    g.applied(3);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r1".into()),
    });
    assert!(g.intents().is_empty());
    // demo-1 and demo-2 boot first, fenced: demo-0, not there yet, is not
    // replaced.
    g.pod(1, "r1").pod(2, "r1");
    g.reach(1, Reachability::Reachable)
        .role(1, Role::Replica, None)
        .reach(2, Reachability::Reachable)
        .role(2, Role::Replica, None);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.pod(0, "r1").all_fenced(3);
    let wake = Intent::Wake {
        primary: Some(pod(0)),
        pods: all(),
    };
    assert_eq!(g.intents(), vec![wake.clone()]);
    g.succeed(wake);
    // Its outcome's facts: demo-0 primary, the others following it.
    g.role(0, Role::Primary, None)
        .role(1, Role::Replica, Some(0))
        .role(2, Role::Replica, Some(0));
    let after = g.intents();
    assert!(
        !after.iter().any(|i| matches!(
            i,
            Intent::PromoteReplica { .. } | Intent::FenceNode { .. } | Intent::Switchover { .. }
        )),
        "a failover decided on waking: {after:?}"
    );
    assert!(g.state.hibernation.is_none());
}

#[test]
fn a_roll_under_way_ends_before_it_sleeps() {
    let mut g = Given::converged(3);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    g.spec_at(2, &spec(true));
    let intents = g.intents();
    assert!(
        !intents
            .iter()
            .any(|i| matches!(i, Intent::PersistForHibernation { .. })),
        "{intents:?}"
    );
    let status = g.status();
    assert_eq!(status.phase, Some(ClusterPhase::Hibernating));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready.message.contains("waits for a roll"),
        "{}",
        ready.message
    );
}
