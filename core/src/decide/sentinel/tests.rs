//! Given events, when `decide` runs, then exactly these intents: the
//! operator never promotes in topology Sentinel, keeps the Sentinels
//! monitoring the primary, and asks them for hand-overs.

use logbook_crds::{Topology, ValkeyClusterSpec};
use logbook_journal::{
    Event, Intent, LinkStatus, PodPhase, Reachability, ReasonCode, Role, SentinelKnown,
    SentinelMonitorReport, SentinelReport, SentinelSettings, SentinelSwitch,
};

use crate::decide::given::Given;

const SETTINGS: SentinelSettings = SentinelSettings {
    quorum: 2,
    down_after_ms: 5000,
    failover_timeout_ms: 60_000,
    parallel_syncs: 1,
};

fn ip(i: u32) -> String {
    format!("10.0.0.{i}")
}

fn sentinel(i: u32) -> String {
    format!("demo-sentinel-{i}")
}

fn report(primary: Option<u32>, epoch: u64) -> SentinelReport {
    SentinelReport {
        myid: "x".into(),
        monitoring: primary.map(|p| SentinelMonitorReport {
            primary_ip: ip(p),
            primary_port: 6379,
            primary_pod: Some(format!("demo-{p}")),
            config_epoch: epoch,
            flags: Vec::new(),
            failover_state: None,
            settings: SETTINGS,
            replicas: (0..3)
                .filter(|r| *r != p)
                .map(|r| SentinelKnown {
                    ip: ip(r),
                    port: 6379,
                    pod: Some(format!("demo-{r}")),
                    run_id: None,
                    flags: Vec::new(),
                })
                .collect(),
            sentinels: (0..3)
                .map(|s| SentinelKnown {
                    ip: format!("10.0.1.{s}"),
                    port: 26379,
                    pod: Some(sentinel(s)),
                    run_id: None,
                    flags: Vec::new(),
                })
                .collect(),
        }),
    }
}

impl Given {
    /// Three data pods, `demo-0` the primary with the others in sync, and
    /// three Sentinel pods that have not answered yet.
    pub(super) fn sentinel_cluster() -> Self {
        let mut g = Given::new();
        let mut spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
        spec.replicas = Some(3);
        g.spec(&spec);
        g.applied(1);
        g.event(Event::StatefulSetObserved {
            replicas: 3,
            update_revision: Some("r1".into()),
        });
        for i in 0..3 {
            g.pod(i, "r1");
            g.reach(i, Reachability::Reachable);
        }
        g.role(0, Role::Primary, None);
        for i in 1..3 {
            g.role(i, Role::Replica, Some(0));
            g.repl(i, LinkStatus::Up, 100, 1);
        }
        g.succeed(Intent::PublishBootConfig {
            primary: Some("demo-0".into()),
            ip: Some(ip(0)),
        });
        for i in 0..3 {
            g.label(i, if i == 0 { Role::Primary } else { Role::Replica });
        }
        for s in 0..3 {
            g.event(Event::SentinelPodObserved {
                pod: sentinel(s),
                uid: format!("s{s}"),
                ip: Some(format!("10.0.1.{s}")),
                phase: PodPhase::Running,
                ready: true,
            });
        }
        g
    }

    fn sentinel_reports(&mut self, s: u32, report: SentinelReport) -> &mut Self {
        self.event(Event::SentinelObserved {
            pod: sentinel(s),
            reachability: Reachability::Reachable,
            report: Some(report),
        })
    }

    /// Every Sentinel monitors `demo-0` with the spec's settings.
    fn monitored() -> Self {
        let mut g = Given::sentinel_cluster();
        for s in 0..3 {
            g.sentinel_reports(s, report(Some(0), 0));
        }
        g
    }
}

#[test]
fn sentinels_that_monitor_nothing_are_pointed_at_the_primary() {
    let mut g = Given::sentinel_cluster();
    g.sentinel_reports(0, report(None, 0))
        .sentinel_reports(1, report(Some(0), 0));
    assert_eq!(
        g.intents(),
        vec![Intent::SentinelMonitor {
            sentinel: sentinel(0),
            primary: "demo-0".into(),
            ip: ip(0),
            settings: SETTINGS,
        }]
    );
}

#[test]
fn a_converged_sentinel_cluster_decides_nothing() {
    let g = Given::monitored();
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn the_operator_never_promotes_when_the_primary_dies() {
    let mut g = Given::monitored();
    g.reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused)
        .reach(0, Reachability::Refused);
    for i in 1..3 {
        g.repl(i, LinkStatus::Down, 100, 1);
    }
    let intents = g.intents();
    assert!(
        intents.iter().all(|i| !matches!(
            i,
            Intent::PromoteReplica { .. } | Intent::FenceNode { .. } | Intent::Switchover { .. }
        )),
        "{intents:?}"
    );
}

#[test]
fn roles_follow_sentinels_switch_once_they_are_quiet() {
    let mut g = Given::monitored();
    switched_to(&mut g, 2);
    // demo-2 answers as primary; the Sentinels still disagree: nothing.
    g.role(2, Role::Primary, None);
    g.sentinel_reports(0, report(Some(2), 1));
    assert_eq!(g.intents(), Vec::<Intent>::new());
    g.sentinel_reports(1, report(Some(2), 1))
        .sentinel_reports(2, report(Some(2), 1));
    let intents = g.intents();
    assert_eq!(
        intents.first(),
        Some(&Intent::SetRoleLabels {
            primary: Some("demo-2".into())
        })
    );
}

#[test]
fn a_primary_being_deleted_is_fenced_then_handed_to_sentinel() {
    let mut g = Given::monitored();
    g.event(Event::PodTerminating {
        pod: "demo-0".into(),
    });
    assert_eq!(
        g.intents(),
        vec![Intent::FenceNode {
            pod: "demo-0".into()
        }],
        "fenced first: a forced failover would let it take writes its successor never gets"
    );
    // Fenced (a replica of nobody): now the Sentinels are asked, by force.
    g.role(0, Role::Replica, None);
    assert_eq!(
        g.intents(),
        vec![Intent::SentinelFailover {
            from: "demo-0".into(),
            to: None,
        }]
    );
    // Once the Sentinels run a failover, nothing more is asked.
    let mut busy = report(Some(0), 1);
    if let Some(m) = busy.monitoring.as_mut() {
        m.failover_state = Some("wait_promotion".into());
    }
    g.sentinel_reports(0, busy);
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn a_primary_being_deleted_that_no_longer_answers_is_left_to_the_sentinels() {
    let mut g = Given::monitored();
    g.event(Event::PodTerminating {
        pod: "demo-0".into(),
    });
    g.reach(0, Reachability::Refused);
    let intents = g.intents();
    assert!(
        intents.iter().all(|i| !matches!(
            i,
            Intent::FenceNode { .. } | Intent::SentinelFailover { .. }
        )),
        "{intents:?}"
    );
    // A second refusal: its process exited; the Sentinels are asked.
    g.reach(0, Reachability::Refused);
    assert_eq!(
        g.intents(),
        vec![Intent::SentinelFailover {
            from: "demo-0".into(),
            to: None,
        }]
    );
}

/// A killed primary (its port refuses): the Sentinels are asked at the
/// second refusal, not after their own `down-after-milliseconds` or once
/// its restarted process booted fenced; the operator still never
/// promotes.
#[test]
fn a_dead_primary_is_handed_to_sentinel_at_once() {
    let mut g = Given::monitored();
    g.reach(0, Reachability::Refused);
    assert_eq!(
        g.intents(),
        Vec::<Intent>::new(),
        "one refusal is not yet death"
    );
    g.reach(0, Reachability::Refused);
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::SentinelFailover {
            from: "demo-0".into(),
            to: None,
        }]
    );
    assert!(
        matches!(
            decided[0].reason.code,
            ReasonCode::PrimaryFailed {
                death: true,
                consecutive_failures: 2,
                ..
            }
        ),
        "{:?}",
        decided[0].reason
    );
    // A Sentinel already names another primary (a switch not yet
    // journaled): asking again would start a second failover.
    g.sentinel_reports(1, report(Some(2), 1));
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// A Sentinel that asks for `INFO` every 10 s (its default, as after a
/// restart) is set to once a second; one that never said is left alone,
/// and so is one at the operator's period.
#[test]
fn a_sentinel_at_another_info_period_is_tuned() {
    let mut g = Given::monitored();
    assert_eq!(g.intents(), Vec::<Intent>::new(), "none said: nothing");
    g.event(Event::SentinelTimingObserved {
        pod: sentinel(1),
        info_period_ms: 10_000,
    });
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::SentinelTune {
            sentinel: sentinel(1),
            info_period_ms: 1_000,
        }]
    );
    assert_eq!(
        decided[0].reason.code,
        ReasonCode::SentinelInfoPeriod {
            reported_ms: 10_000
        }
    );
    g.event(Event::SentinelTimingObserved {
        pod: sentinel(1),
        info_period_ms: 1_000,
    });
    assert_eq!(g.intents(), Vec::<Intent>::new());
    // A recreated Sentinel's period is forgotten with the old pod.
    g.event(Event::SentinelTimingObserved {
        pod: sentinel(1),
        info_period_ms: 10_000,
    });
    g.event(Event::SentinelPodObserved {
        pod: sentinel(1),
        uid: "s1-new".into(),
        ip: Some("10.0.1.1".into()),
        phase: PodPhase::Running,
        ready: true,
    });
    assert!(!g.intents().contains(&Intent::SentinelTune {
        sentinel: sentinel(1),
        info_period_ms: 1_000,
    }));
}

#[test]
fn a_switchover_request_is_asked_of_sentinel_then_cleared() {
    let mut g = Given::monitored();
    g.event(Event::SwitchoverRequestObserved {
        target: Some("demo-1".into()),
    });
    assert_eq!(
        g.intents(),
        vec![
            Intent::SentinelFailover {
                from: "demo-0".into(),
                to: Some("demo-1".into()),
            },
            Intent::ClearSwitchoverRequest,
        ]
    );
}

#[test]
fn a_hand_over_waits_for_a_sentinel_quorum() {
    let mut g = Given::monitored();
    for s in 1..3 {
        g.event(Event::SentinelObserved {
            pod: sentinel(s),
            reachability: Reachability::TimedOut,
            report: None,
        });
    }
    g.event(Event::SwitchoverRequestObserved {
        target: Some("auto".into()),
    });
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn an_outdated_primary_is_handed_over_by_sentinel_after_the_replicas_rolled() {
    let mut g = Given::monitored();
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::RollPod {
            pod: "demo-2".into(),
            revision: "r2".into()
        }]
    );
    g.pod(2, "r2").pod(1, "r2");
    g.reach(1, Reachability::Reachable)
        .reach(2, Reachability::Reachable)
        .role(1, Role::Replica, Some(0))
        .role(2, Role::Replica, Some(0))
        .repl(1, LinkStatus::Up, 200, 1)
        .repl(2, LinkStatus::Up, 200, 1)
        .label(1, Role::Replica)
        .label(2, Role::Replica);
    let decisions = g.decide();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(
        decisions[0].intent,
        Intent::SentinelFailover {
            from: "demo-0".into(),
            to: None
        }
    );
    assert_eq!(decisions[0].reason.code, ReasonCode::PrimaryOutdated);
}

#[test]
fn a_replica_down_on_an_outdated_revision_is_rolled_without_waiting_for_it() {
    // An image the data could not load crashed demo-2 on r2; the image
    // was set back (r3): the spec trials found the roll waiting for it
    // for ever, as Replication's once did.
    let mut g = Given::monitored();
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    g.event(Event::PodObserved {
        pod: "demo-2".into(),
        uid: "uid-2-r2".into(),
        ip: Some("10.0.0.2".into()),
        phase: logbook_journal::PodPhase::Running,
        ready: false,
        node: None,
        revision: Some("r2".into()),
    });
    g.reach(2, Reachability::Refused).label(2, Role::Replica);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r3".into()),
    });
    assert_eq!(
        g.decide()
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::RollPod {
            pod: "demo-2".into(),
            revision: "r3".into()
        }]
    );
}

#[test]
fn stale_entries_are_reset_one_sentinel_at_a_time() {
    let mut g = Given::monitored();
    let mut stale = report(Some(0), 0);
    if let Some(m) = stale.monitoring.as_mut() {
        m.replicas.push(SentinelKnown {
            ip: "10.9.9.9".into(),
            port: 6379,
            pod: None,
            run_id: None,
            flags: vec!["s_down".into()],
        });
    }
    g.sentinel_reports(1, stale.clone())
        .sentinel_reports(2, stale);
    let decisions = g.decide();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d.intent.clone())
            .collect::<Vec<_>>(),
        vec![Intent::SentinelReset {
            sentinel: sentinel(1)
        }]
    );
}

#[test]
fn settings_that_drift_from_the_spec_are_set_again() {
    let mut g = Given::monitored();
    let mut other = report(Some(0), 0);
    if let Some(m) = other.monitoring.as_mut() {
        m.settings.down_after_ms = 30_000;
    }
    g.sentinel_reports(2, other);
    assert_eq!(
        g.intents(),
        vec![Intent::SentinelConfigure {
            sentinel: sentinel(2),
            settings: SETTINGS,
        }]
    );
}

#[test]
fn a_sentinel_spec_makes_the_projection_follow_sentinel() {
    let g = Given::sentinel_cluster();
    assert!(g.state.sentinel.enabled);
}

#[test]
fn a_hand_over_waits_until_every_sentinel_found_the_replicas() {
    let mut g = Given::monitored();
    let mut blind = report(Some(0), 0);
    if let Some(m) = blind.monitoring.as_mut() {
        m.replicas.clear();
    }
    g.sentinel_reports(1, blind);
    g.event(Event::SwitchoverRequestObserved {
        target: Some("auto".into()),
    });
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// The Sentinels switched the primary from `demo-0` to `demo-{to}` at
/// epoch 1, found after the fact.
fn switched_to(g: &mut Given, to: u32) {
    g.event(Event::SentinelSwitchObserved {
        switch: SentinelSwitch {
            from: Some("demo-0".into()),
            to: format!("demo-{to}"),
            to_ip: ip(to),
            epoch: 1,
            leader: None,
            voters: Vec::new(),
            candidates: Vec::new(),
            reported_by: vec![sentinel(0)],
            after_the_fact: true,
        },
    });
}

/// Sentinels that came back from their boot config naming `demo-0`, a
/// pod the operator had made a replica of `demo-1` (a wake after the
/// Sentinels switched the primary while the boot config still named the
/// old one): at config epoch 0 they made no failover, they see their
/// "primary" down and cannot fail it over (it has no replica to give
/// them). Each is pointed at the real primary, even while it sees its
/// own down: left alone, no pod would ever take writes through them.
#[test]
fn sentinels_that_booted_naming_a_replica_are_pointed_at_the_primary() {
    let mut g = Given::monitored();
    switched_to(&mut g, 1);
    g.role(1, Role::Primary, None)
        .role(0, Role::Replica, Some(1))
        .role(2, Role::Replica, Some(1));
    g.repl(0, LinkStatus::Up, 100, 2)
        .repl(2, LinkStatus::Up, 100, 2);
    g.succeed(Intent::PublishBootConfig {
        primary: Some("demo-1".into()),
        ip: Some(ip(1)),
    });
    for i in 0..3 {
        g.label(i, if i == 1 { Role::Primary } else { Role::Replica });
    }
    let mut booted = report(Some(0), 0);
    if let Some(m) = booted.monitoring.as_mut() {
        m.flags = vec!["master".into(), "s_down".into(), "o_down".into()];
        m.replicas.clear();
    }
    for s in 0..3 {
        g.sentinel_reports(s, booted.clone());
    }
    let want: Vec<Intent> = (0..3)
        .map(|s| Intent::SentinelMonitor {
            sentinel: sentinel(s),
            primary: "demo-1".into(),
            ip: ip(1),
            settings: SETTINGS,
        })
        .collect();
    assert_eq!(g.intents(), want);
    // One in a failover attempt is left to it until the attempt ends.
    let mut trying = booted.clone();
    if let Some(m) = trying.monitoring.as_mut() {
        m.failover_state = Some("select_slave".into());
    }
    g.sentinel_reports(2, trying);
    assert_eq!(g.intents(), want[..2].to_vec());
    // One that failed over (config epoch 1) is the Sentinels' to settle.
    g.sentinel_reports(2, report(Some(0), 1));
    assert_eq!(g.intents(), want[..2].to_vec());
}

/// A hibernation asked right after the Sentinels switched the primary,
/// before the boot config followed: the boot config is published first,
/// so that the Sentinels, which lose their state asleep, come back
/// naming the primary that went to sleep (their replacement boots from
/// it).
#[test]
fn a_hibernation_publishes_the_boot_primary_before_it_persists() {
    let mut g = Given::monitored();
    switched_to(&mut g, 1);
    // Mid-failover: demo-1 promoted, demo-0 not yet made its replica, a
    // Sentinel still reconfiguring. Nothing persists (the old primary,
    // still labelled primary, would take writes once its pause ends).
    g.role(1, Role::Primary, None)
        .role(2, Role::Replica, Some(1));
    g.role(0, Role::Primary, None);
    let mut reconf = report(Some(1), 1);
    if let Some(m) = reconf.monitoring.as_mut() {
        m.failover_state = Some("reconf_slaves".into());
    }
    g.sentinel_reports(0, reconf);
    for s in 1..3 {
        g.sentinel_reports(s, report(Some(1), 1));
    }
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
    spec.replicas = Some(3);
    spec.hibernated = true;
    g.spec_at(2, &spec);
    let persists = |g: &Given| {
        g.intents()
            .iter()
            .any(|i| matches!(i, Intent::PersistForHibernation { .. }))
    };
    let waits_for = |g: &Given, what: &str| {
        g.status()
            .conditions
            .iter()
            .any(|c| c.message.contains(&format!("hibernation waits for {what}")))
    };
    assert!(!persists(&g), "{:?}", g.intents());
    assert!(waits_for(&g, "a Sentinel failover"), "{:?}", g.status());
    g.applied(2);
    g.sentinel_reports(0, report(Some(1), 1));
    assert!(!persists(&g), "{:?}", g.intents());
    assert!(waits_for(&g, "a change of primary"), "{:?}", g.status());
    // Settled: the old primary follows the new one; the boot config
    // names it, then the data is made durable.
    g.role(0, Role::Replica, Some(1));
    let publish = Intent::PublishBootConfig {
        primary: Some("demo-1".into()),
        ip: Some(ip(1)),
    };
    assert_eq!(g.intents(), vec![publish.clone()]);
    g.succeed(publish);
    hold_failovers(&mut g, Some(1));
    assert_eq!(
        g.intents(),
        vec![Intent::PersistForHibernation {
            primaries: vec!["demo-1".into()],
            pods: (0..3).map(|i| format!("demo-{i}")).collect(),
        }]
    );
}

/// A spec change observed together with a switch whose old primary still
/// reports itself primary (its writes were paused when the Sentinels
/// failed it over): the old primary follows the new one before the spec
/// is applied. Two pods serving as primary come before anything else
/// (the audit counts every decision taken meanwhile).
#[test]
fn a_second_primary_is_repointed_before_a_spec_is_applied() {
    let mut g = Given::monitored();
    switched_to(&mut g, 2);
    g.role(2, Role::Primary, None)
        .role(1, Role::Replica, Some(2));
    g.role(0, Role::Primary, None);
    for s in 0..3 {
        g.sentinel_reports(s, report(Some(2), 1));
    }
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
    spec.replicas = Some(3);
    spec.hibernated = true;
    g.spec_at(2, &spec);
    let intents = g.intents();
    assert!(
        intents.contains(&Intent::RepointReplica {
            pod: "demo-0".into(),
            to: "demo-2".into(),
        }),
        "{intents:?}"
    );
    assert!(
        !intents
            .iter()
            .any(|i| matches!(i, Intent::ApplyResources { .. })),
        "{intents:?}"
    );
}

/// The settings every Sentinel is given before a hibernation pauses the
/// primary's writes.
const HELD: SentinelSettings = SentinelSettings {
    down_after_ms: logbook_journal::HIBERNATE_DOWN_AFTER_MS,
    ..SETTINGS
};

/// `SentinelConfigure` with `settings` for Sentinels `sentinels`.
fn configure(sentinels: std::ops::Range<u32>, settings: SentinelSettings) -> Vec<Intent> {
    sentinels
        .map(|s| Intent::SentinelConfigure {
            sentinel: sentinel(s),
            settings,
        })
        .collect()
}

/// A Sentinel's report naming `demo-<primary>` at `epoch`, with [`HELD`].
fn held_report(primary: Option<u32>, epoch: u64) -> SentinelReport {
    let mut held = report(primary, epoch);
    if let Some(m) = held.monitoring.as_mut() {
        m.settings = HELD;
    }
    held
}

/// Expects the Sentinels to be given [`HELD`], then has each report them
/// (monitoring `demo-<primary>`).
fn hold_failovers(g: &mut Given, primary: Option<u32>) {
    let want = configure(0..3, HELD);
    assert_eq!(g.intents(), want);
    for (s, intent) in (0..3).zip(want) {
        g.succeed(intent);
        g.sentinel_reports(s, held_report(primary, 1));
    }
}

/// A Sentinel takes a primary whose writes are paused for down (its
/// `PUBLISH` to the hello channel waits, and its `PING` behind it): before
/// a hibernation pauses them, every Sentinel is given a down-after longer
/// than the pause can last, and the persist starts only once too few
/// Sentinels could still fail the primary over to make a quorum. Until
/// then the status says which; once the hibernation is undone, the
/// spec's settings come back. Otherwise a pause longer than the
/// down-after lets the Sentinels fail the primary over, and the old
/// primary, still labelled primary, takes writes once a failed persist
/// lifts its pause.
#[test]
fn a_hibernation_holds_sentinel_failovers_before_it_pauses_writes() {
    let mut g = Given::monitored();
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
    spec.replicas = Some(3);
    spec.hibernated = true;
    g.spec_at(2, &spec);
    g.applied(2);
    let persist = Intent::PersistForHibernation {
        primaries: vec!["demo-0".into()],
        pods: (0..3).map(|i| format!("demo-{i}")).collect(),
    };
    let want = configure(0..3, HELD);
    assert_eq!(g.intents(), want);
    let waits = |g: &Given| {
        g.status().conditions.iter().any(|c| {
            c.message
                .contains("hibernation waits for the Sentinels to hold their failovers")
        })
    };
    assert!(waits(&g), "{:?}", g.status());
    // One holds: the two others still make a quorum of 2.
    let held = held_report(Some(0), 0);
    g.sentinel_reports(0, held.clone());
    assert_eq!(g.intents(), want[1..].to_vec());
    // Two hold: the third alone cannot see the primary down for a quorum.
    g.sentinel_reports(1, held.clone());
    assert_eq!(g.intents(), vec![persist.clone()]);
    assert!(!waits(&g), "{:?}", g.status());
    // A Sentinel that does not answer may still fail it over: with one
    // holding, the persist waits, and the status says why.
    g.event(Event::SentinelObserved {
        pod: sentinel(1),
        reachability: Reachability::TimedOut,
        report: None,
    });
    assert_eq!(g.intents(), vec![want[2].clone()]);
    assert!(
        g.status()
            .conditions
            .iter()
            .any(|c| c.message.contains("1 Sentinel(s) not answering")),
        "{:?}",
        g.status()
    );
    g.sentinel_reports(1, held);
    // Asked to wake before it slept: the spec's settings come back.
    spec.hibernated = false;
    g.spec_at(3, &spec);
    g.applied(3);
    assert_eq!(g.intents(), configure(0..2, SETTINGS));
}

/// A Sentinel cannot reload its certificate: one serving another than
/// the Secret's is restarted, one at a time, only while every Sentinel
/// answers, and not again before it is seen serving.
#[test]
fn a_sentinel_serving_an_old_certificate_is_restarted_one_at_a_time() {
    use crate::decide::tls::decide_reload;
    use logbook_journal::CertificateRecord;
    let mut g = Given::monitored();
    let mut spec = g.state.desired_spec().unwrap().unwrap();
    spec.tls.enabled = true;
    g.spec(&spec);
    g.event(Event::CertificateObserved {
        certificate: CertificateRecord {
            secret: "demo-tls".into(),
            fingerprint: Some("new".into()),
            ca_fingerprint: Some("ca".into()),
            not_after: None,
            source: crate::certificates::SOURCE_INTERNAL.into(),
            problem: None,
        },
    });
    for pod in ["demo-0", "demo-1", "demo-2"] {
        g.event(Event::CertificateServed {
            pod: pod.into(),
            fingerprint: "new".into(),
        });
    }
    for s in 0..3 {
        g.event(Event::CertificateServed {
            pod: sentinel(s),
            fingerprint: if s == 0 { "new" } else { "old" }.into(),
        });
    }
    fn view(g: &Given) -> crate::decide::view::ClusterView<'_> {
        crate::decide::view::ClusterView::new(&g.state).unwrap()
    }
    let restart = Intent::ReloadCertificate {
        pods: vec![sentinel(1)],
        fingerprint: "new".into(),
    };
    assert_eq!(decide_reload(&view(&g)).unwrap().intent, restart);
    // Asked: not again, and not the next one, until it is seen again.
    g.succeed(restart.clone());
    assert!(decide_reload(&view(&g)).is_none());
    g.event(Event::CertificateServed {
        pod: sentinel(1),
        fingerprint: "new".into(),
    });
    let next = decide_reload(&view(&g)).unwrap();
    assert_eq!(
        next.intent,
        Intent::ReloadCertificate {
            pods: vec![sentinel(2)],
            fingerprint: "new".into(),
        }
    );
    // A Sentinel not answering: nobody is restarted (a quorum stays).
    g.event(Event::SentinelObserved {
        pod: sentinel(0),
        reachability: Reachability::Refused,
        report: None,
    });
    assert!(decide_reload(&view(&g)).is_none());
}
