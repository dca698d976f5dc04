//! A standby (`spec.replicateFrom`): no pod of it is ever made primary
//! while it follows; what would make a primary follows the source; the
//! leader is pointed back at the source when it is not; removing
//! `replicateFrom` promotes it.

use logbook_crds::{ReplicateFrom, SourceCluster};
use logbook_journal::projection::replication::STANDBY_SOURCE;
use logbook_journal::{Event, Intent, LinkStatus, Reachability, ReasonCode, Role};

use super::*;

const HOST: &str = "10.96.0.7";
const SECRET: &str = "prod/shop-internal";

fn standby_spec() -> ValkeyClusterSpec {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.replicate_from = Some(ReplicateFrom {
        cluster: Some(SourceCluster {
            name: "shop".into(),
            namespace: Some("prod".into()),
        }),
        ..ReplicateFrom::default()
    });
    spec
}

/// Three standby pods booted fenced.
fn booted() -> Given {
    let mut g = Given::new();
    g.spec(&standby_spec());
    g.applied(1);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r1".into()),
    });
    for i in 0..3 {
        g.pod(i, "r1");
    }
    g.all_fenced(3);
    g
}

fn observed(g: &mut Given) {
    g.event(Event::StandbyObserved {
        host: Some(HOST.into()),
        port: 6379,
        secret: SECRET.into(),
        offset: None,
        source_offset: Some(500),
        source_replid: None,
        lag: None,
        behind: false,
        error: None,
    });
}

fn follow(i: u32) -> Intent {
    Intent::FollowSource {
        pod: pod(i),
        host: HOST.into(),
        port: 6379,
        secret: SECRET.into(),
    }
}

/// `demo-0` follows the source, the others follow it.
fn following() -> Given {
    let mut g = booted();
    observed(&mut g);
    g.event(Event::SourceFollowed {
        pod: pod(0),
        host: HOST.into(),
        port: 6379,
    });
    g.event(Event::NodeRoleObserved {
        pod: pod(0),
        role: Role::Replica,
        primary: Some(STANDBY_SOURCE.into()),
    });
    g.repl(0, LinkStatus::Up, 500, 7).label(0, Role::Primary);
    for i in 1..3 {
        g.role(i, Role::Replica, Some(0))
            .repl(i, LinkStatus::Up, 500, 7)
            .label(i, Role::Replica);
    }
    g.succeed(Intent::PublishBootConfig {
        primary: Some(pod(0)),
        ip: Some("10.0.0.0".into()),
    });
    g
}

#[test]
fn nothing_is_made_primary_before_the_source_is_known_then_the_first_pod_follows_it() {
    let mut g = booted();
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    observed(&mut g);
    let intents = g.intents();
    assert_eq!(intents.first(), Some(&follow(0)), "{intents:?}");
    assert!(
        !intents
            .iter()
            .any(|i| matches!(i, Intent::PromoteReplica { .. })),
        "{intents:?}"
    );
    assert!(intents.contains(&Intent::RepointReplica {
        pod: pod(1),
        to: pod(0)
    }));
}

#[test]
fn a_following_standby_is_converged_and_its_leader_stays_the_believed_primary() {
    let g = following();
    assert_eq!(g.state.replication.primary.as_deref(), Some("demo-0"));
    assert!(g.intents().is_empty(), "{:?}", g.intents());
}

#[test]
fn a_leader_that_takes_writes_is_pointed_back_at_the_source() {
    let mut g = following();
    g.role(0, Role::Primary, None);
    let decided = g.decide();
    assert_eq!(decided.first().map(|d| &d.intent), Some(&follow(0)));
    assert!(matches!(decided[0].reason.code, ReasonCode::Standby { .. }));
}

#[test]
fn a_dead_leader_is_replaced_by_a_pod_that_follows_the_source() {
    let mut g = following();
    g.event(Event::PodDeleted { pod: pod(0) });
    let intents = g.intents();
    assert!(intents.contains(&follow(1)), "{intents:?}");
    assert!(
        !intents
            .iter()
            .any(|i| matches!(i, Intent::PromoteReplica { .. })),
        "{intents:?}"
    );
}

#[test]
fn removing_replicate_from_promotes_the_leader() {
    let mut g = following();
    let mut spec = standby_spec();
    spec.replicate_from = None;
    g.spec_at(2, &spec);
    g.applied(2);
    let decided = g.decide();
    assert_eq!(
        decided.first().map(|d| &d.intent),
        Some(&Intent::PromoteStandby {
            pod: pod(0),
            host: HOST.into(),
            port: 6379,
            secret: SECRET.into(),
        })
    );
    assert_eq!(decided[0].reason.code, ReasonCode::Promotion { lag: None });
    // Promoted: a primary like any other, nothing more to do.
    g.event(Event::StandbyPromoted {
        pod: pod(0),
        offset: 600,
        source_before: Some(600),
        source_after: Some(640),
        error: None,
    });
    g.event(Event::ReplicaPromoted {
        pod: pod(0),
        from: None,
        offset: 600,
    });
    g.reach(0, Reachability::Reachable)
        .repl(0, LinkStatus::NotReplica, 600, 9);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    assert!(g.state.anomalies.is_empty(), "{:?}", g.state.anomalies);
    let status = g.status();
    let standby = status.standby.expect("status.standby");
    assert_eq!(standby.phase, "Promoted");
    assert!(
        standby.message.contains("between 0 and 40 bytes behind"),
        "{}",
        standby.message
    );
}
