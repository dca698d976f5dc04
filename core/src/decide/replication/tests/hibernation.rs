//! Hibernation of a Replication cluster: its data durable first, then no
//! pod; nothing decided while its pods stop, while it sleeps, or while
//! they come back; then the primary it had, with no failover.

use logbook_crds::v1alpha1::ClusterPhase;
use logbook_journal::{Event, Intent, Reachability, Role, Timestamp};

use super::*;

fn spec(hibernated: bool) -> ValkeyClusterSpec {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.hibernated = hibernated;
    spec
}

/// The status's Degraded condition.
fn degraded(
    status: &logbook_crds::v1alpha1::ValkeyClusterStatus,
) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("a Degraded condition")
}

/// The message of the status's Ready condition.
fn ready_message(status: &logbook_crds::v1alpha1::ValkeyClusterStatus) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
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
    let ready = ready_message(&status);
    assert!(ready.contains("waits for a roll"), "{ready}");
}

fn data(i: u32, replid: u8, offset: u64, keys: u64, persisted: bool) -> Event {
    Event::PodDataObserved {
        pod: pod(i),
        replid: logbook_journal::ReplId([replid; 20]),
        offset,
        keys,
        persisted,
    }
}

/// Asleep with `demo-0` its primary and 1000 keys at offset 5000 on every
/// pod; every pod back and answering, fenced.
/// Made durable (generation 2), its pods gone, then asked to wake
/// (generation 3): the StatefulSet back at 3 pods, none answering yet.
fn asleep_then_asked_to_wake(g: &mut Given) {
    g.applied(2);
    for i in 0..3 {
        g.event(Event::PodDeleted { pod: pod(i) });
    }
    g.spec_at(3, &spec(false));
    g.applied(3);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r1".into()),
    });
}

fn woken_given() -> Given {
    let mut g = Given::converged(3);
    g.spec_at(2, &spec(true));
    g.succeed_with(
        Intent::PersistForHibernation {
            primaries: vec![pod(0)],
            pods: all(),
        },
        (0..3).map(|i| data(i, 0xaa, 5000, 1000, true)).collect(),
    );
    asleep_then_asked_to_wake(&mut g);
    g.pod(0, "r1").pod(1, "r1").pod(2, "r1").all_fenced(3);
    g
}

#[test]
fn a_primary_whose_volume_was_lost_asleep_is_not_given_writes_at_wake() {
    let mut g = woken_given();
    // Nothing read yet: the primary it slept with (Wake reads every pod
    // before it changes anything, and refuses one that holds less).
    let first = Intent::Wake {
        primary: Some(pod(0)),
        pods: all(),
    };
    assert_eq!(g.intents(), vec![first.clone()]);
    // Its outcome: demo-0 back with a new history and no key.
    g.event(data(0, 0x01, 0, 0, false));
    g.event(data(1, 0xaa, 5000, 1000, false));
    g.event(data(2, 0xaa, 4000, 990, false));
    g.decide_and_fail(first, "demo-0 holds less", true);
    assert_eq!(
        g.intents(),
        vec![Intent::Wake {
            primary: Some(pod(1)),
            pods: all(),
        }]
    );
    let status = g.status();
    let ready = ready_message(&status);
    assert!(ready.contains("demo-1 will be primary"), "{ready}");
}

#[test]
fn no_pod_is_given_writes_when_none_holds_what_was_made_durable() {
    let mut g = woken_given();
    for i in 0..3 {
        g.event(data(i, 0x01 + u8::try_from(i).unwrap(), 0, 0, false));
    }
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    let status = g.status();
    assert_eq!(status.phase, Some(ClusterPhase::Waking));
    let ready = ready_message(&status);
    assert!(
        ready.contains("no pod holds what was made durable"),
        "{ready}"
    );
    // A failure a person must act on: Degraded, reason DataLost (the
    // shell raises it as a Warning Event too).
    let degraded = degraded(&status);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "DataLost")
    );
}

#[test]
fn after_an_append_only_restart_keys_say_what_a_pod_holds() {
    // A server that loads an append-only file starts a new history at
    // offset 0: its keys are compared instead.
    let mut g = woken_given();
    g.event(data(0, 0x01, 0, 1000, false));
    g.event(data(1, 0x02, 0, 1000, false));
    g.event(data(2, 0x03, 0, 0, false));
    assert_eq!(
        g.intents(),
        vec![Intent::Wake {
            primary: Some(pod(0)),
            pods: all(),
        }]
    );
}

/// Slept (demo-0 primary) and asked to wake: the StatefulSet back at 3,
/// demo-0 and demo-1 answering, fenced; demo-2 never comes back.
fn waking_without_demo_2() -> Given {
    waking_with(&[0, 1])
}

/// Slept (demo-0 primary) and asked to wake, the StatefulSet back at 3:
/// the pods `back` answering, fenced; the others never come back.
fn waking_with(back: &[u32]) -> Given {
    let mut g = Given::converged(3);
    g.spec_at(2, &spec(true));
    g.succeed(Intent::PersistForHibernation {
        primaries: vec![pod(0)],
        pods: all(),
    });
    asleep_then_asked_to_wake(&mut g);
    for &i in back {
        g.pod(i, "r1");
        g.reach(i, Reachability::Reachable)
            .role(i, Role::Replica, None);
    }
    g
}

#[test]
fn the_wake_waits_as_long_as_the_spec_says() {
    let mut g = Given::converged(3);
    g.spec_at(2, &spec(true));
    g.succeed(Intent::PersistForHibernation {
        primaries: vec![pod(0)],
        pods: all(),
    });
    g.applied(2);
    for i in 0..3 {
        g.event(Event::PodDeleted { pod: pod(i) });
    }
    let mut woken = spec(false);
    woken.wake_timeout_seconds = Some(30);
    g.spec_at(3, &woken);
    let deadline = crate::decide::next_deadline(&g.state).expect("the wake's deadline");
    let asked = g.state.hibernation.as_ref().unwrap().waking_since.unwrap();
    assert_eq!(deadline.0 - asked.0, 30_000_000);
    g.applied(3);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r1".into()),
    });
    for i in [0, 1] {
        g.pod(i, "r1");
        g.reach(i, Reachability::Reachable)
            .role(i, Role::Replica, None);
    }
    let ready = ready_message(&g.status());
    assert!(ready.contains("30 s after it was asked"), "{ready}");
}

#[test]
fn a_pod_that_never_comes_back_holds_the_wake_only_until_its_deadline() {
    let mut g = waking_without_demo_2();
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    let status = g.status();
    assert_eq!(status.phase, Some(ClusterPhase::Waking));
    let deadline = crate::decide::next_deadline(&g.state).expect("the wake's deadline");
    let asked = g.state.hibernation.as_ref().unwrap().waking_since.unwrap();
    // The default: 120 s.
    assert_eq!(deadline.0 - asked.0, 120_000_000);
    let ready = ready_message(&status);
    assert!(ready.contains("demo-2"), "{ready}");
    // Just before it: still waiting.
    g.event(Event::DeadlinePassed {
        deadline: Timestamp(deadline.0 - 1_000_000),
    });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // Past it: awake with the pods back, the primary it slept with.
    g.every_ms(120_000);
    g.event(Event::DeadlinePassed { deadline });
    let wake = Intent::Wake {
        primary: Some(pod(0)),
        pods: vec![pod(0), pod(1)],
    };
    assert_eq!(g.intents(), vec![wake.clone()]);
    g.succeed(wake);
    assert!(g.state.hibernation.is_none());
    assert_eq!(crate::decide::next_deadline(&g.state), None);
}

#[test]
fn a_wake_past_its_deadline_never_gives_writes_to_a_pod_not_back() {
    // demo-0, the primary it slept with, is the pod that does not come
    // back: nothing is given writes (its data is not known to be anywhere
    // else), and the status says what holds it.
    let mut g = waking_with(&[1, 2]);
    let deadline = crate::decide::next_deadline(&g.state).unwrap();
    g.every_ms(200_000);
    g.event(Event::DeadlinePassed { deadline });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    let ready = ready_message(&g.status());
    assert!(ready.contains("waking held"), "{ready}");
    assert_eq!(
        crate::decide::next_deadline(&g.state),
        None,
        "nothing more to wait for"
    );
}

/// A Standalone asleep with 1000 keys at offset 5000, asked to wake, its
/// pod back (a Standalone boots as a primary: it has no one to follow).
fn standalone_woken() -> Given {
    let mut standalone = ValkeyClusterSpec::with_topology(Topology::Standalone);
    standalone.replicas = Some(1);
    let mut g = Given::new();
    g.spec(&standalone);
    g.applied(1);
    g.event(Event::StatefulSetObserved {
        replicas: 1,
        update_revision: Some("r1".into()),
    });
    g.pod(0, "r1");
    g.reach(0, Reachability::Reachable)
        .role(0, Role::Primary, None)
        .label(0, Role::Primary);
    standalone.hibernated = true;
    g.spec_at(2, &standalone);
    g.succeed_with(
        Intent::PersistForHibernation {
            primaries: vec![pod(0)],
            pods: vec![pod(0)],
        },
        vec![data(0, 0xaa, 5000, 1000, true)],
    );
    g.applied(2);
    g.event(Event::PodDeleted { pod: pod(0) });
    standalone.hibernated = false;
    g.spec_at(3, &standalone);
    g.applied(3);
    g.event(Event::StatefulSetObserved {
        replicas: 1,
        update_revision: Some("r1".into()),
    });
    g.pod(0, "r1");
    g.reach(0, Reachability::Reachable)
        .role(0, Role::Primary, None);
    g
}

#[test]
fn a_standalone_whose_volume_was_lost_asleep_is_not_given_clients_at_wake() {
    let mut g = standalone_woken();
    // Its data is read before it is labelled primary (which puts it
    // behind the client Service).
    let wake = Intent::Wake {
        primary: Some(pod(0)),
        pods: vec![pod(0)],
    };
    assert_eq!(g.intents(), vec![wake.clone()]);
    // Back with a new history and no key: refused, and nothing else is
    // decided (no role label).
    g.event(data(0, 0x01, 0, 0, false));
    g.decide_and_fail(wake, "demo-0 holds less", true);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    let status = g.status();
    assert_eq!(status.phase, Some(ClusterPhase::Waking));
    let degraded = degraded(&status);
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "DataLost");
    assert!(
        degraded
            .message
            .contains("no pod holds what was made durable"),
        "{}",
        degraded.message
    );
}

#[test]
fn a_standalone_that_holds_its_data_wakes_as_it_was() {
    let mut g = standalone_woken();
    let wake = Intent::Wake {
        primary: Some(pod(0)),
        pods: vec![pod(0)],
    };
    assert_eq!(g.intents(), vec![wake.clone()]);
    g.event(data(0, 0xaa, 5000, 1000, false));
    g.succeed(wake);
    let status = g.status();
    assert_ne!(status.phase, Some(ClusterPhase::Waking));
}

#[test]
fn no_data_is_said_lost_before_any_pod_is_back() {
    let mut g = woken_given();
    for i in 0..3 {
        g.event(Event::PodDeleted { pod: pod(i) });
    }
    let status = g.status();
    let degraded = degraded(&status);
    assert_ne!(degraded.reason, "DataLost", "{}", degraded.message);
}
