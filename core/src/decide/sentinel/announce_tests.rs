//! Given events, when `decide` runs, then exactly these intents: a
//! Sentinel cluster exposed outside Kubernetes has its data pods announce
//! their external endpoints, its Sentinels name the primary there and
//! forget the pod addresses they listed replicas at; a converged one
//! decides nothing. Then the observers that resolve what servers report
//! (host and port) to pods.

use std::collections::BTreeMap;
use std::time::Duration;

use logbook_journal::{
    Event, ExternalEndpoint, Intent, Reachability, ReasonCode, Role, SentinelKnown,
    SentinelMonitorReport, SentinelReport, SentinelSettings,
};

use crate::decide::given::Given;
use crate::observe::addresses::pods_by_address;
use crate::observe::sentinel::sentinel_report;
use crate::observe::{LinkEvidence, ProbeObservation, observe_probe};
use crate::replies::{
    Probe, RoleReply, SentinelPeer, SentinelPrimary, SentinelProbe, SentinelReplica,
    parse_info_replication,
};

const SETTINGS: SentinelSettings = SentinelSettings {
    quorum: 2,
    down_after_ms: 5000,
    failover_timeout_ms: 60_000,
    parallel_syncs: 1,
};

/// The one node every pod is reached at, by node port: pods share it.
const NODE: &str = "192.0.2.9";

fn ip(i: u32) -> String {
    format!("10.0.0.{i}")
}

fn sentinel(i: u32) -> String {
    format!("demo-sentinel-{i}")
}

fn pod(i: u32) -> String {
    format!("demo-{i}")
}

/// `demo-i`'s node port.
fn port(i: u32) -> u16 {
    30_000 + u16::try_from(i).unwrap()
}

fn endpoint(i: u32) -> ExternalEndpoint {
    ExternalEndpoint {
        host: NODE.into(),
        port: port(i),
        bus_port: None,
    }
}

/// `demo-i`'s endpoint as announced and as a Sentinel is told it.
fn at(i: u32) -> String {
    format!("{NODE}:{}", port(i))
}

fn known(ip: &str, port: u16, pod: Option<String>) -> SentinelKnown {
    SentinelKnown {
        ip: ip.into(),
        port,
        pod,
        run_id: None,
        flags: Vec::new(),
    }
}

/// `demo-r` listed at its endpoint.
fn outside(r: u32) -> SentinelKnown {
    known(NODE, port(r), Some(pod(r)))
}

/// `demo-r` listed at its pod address.
fn inside(r: u32) -> SentinelKnown {
    known(&ip(r), 6379, Some(pod(r)))
}

/// A Sentinel naming `demo-0` at `host:port`, knowing `replicas` and the
/// three Sentinels.
fn names_demo_0(host: &str, port: u16, epoch: u64, replicas: Vec<SentinelKnown>) -> SentinelReport {
    SentinelReport {
        myid: "x".into(),
        monitoring: Some(SentinelMonitorReport {
            primary_ip: host.into(),
            primary_port: port,
            primary_pod: Some(pod(0)),
            config_epoch: epoch,
            flags: Vec::new(),
            failover_state: None,
            settings: SETTINGS,
            replicas,
            sentinels: (0..3)
                .map(|s| known(&format!("10.0.1.{s}"), 26379, Some(sentinel(s))))
                .collect(),
        }),
    }
}

fn reports(g: &mut Given, s: u32, report: SentinelReport) {
    g.event(Event::SentinelObserved {
        pod: sentinel(s),
        reachability: Reachability::Reachable,
        report: Some(report),
    });
}

fn all_report(g: &mut Given, report: &SentinelReport) {
    for s in 0..3 {
        reports(g, s, report.clone());
    }
}

/// External access as observed: on with the endpoints of `known` (the
/// others waiting for theirs), or off. The objects are applied again
/// (the connection Secret names the endpoints), as the operator does
/// first, so that the Sentinel concerns are reached.
fn external(g: &mut Given, enabled: bool, known: &[u32]) {
    g.event(Event::ExternalEndpointsObserved {
        enabled,
        pods: known.iter().map(|i| (pod(*i), endpoint(*i))).collect(),
        primary: None,
        waiting: (0..3)
            .filter(|i| enabled && !known.contains(i))
            .map(|i| (pod(i), "its Service has no node port yet".to_owned()))
            .collect(),
    });
    g.applied(1);
}

fn announces(g: &mut Given, i: u32, announced: &str) {
    g.event(Event::AnnouncedAddressObserved {
        pod: pod(i),
        announced: announced.into(),
    });
}

/// Exposed and converged: every pod announces its endpoint, and every
/// Sentinel names `demo-0` and lists the replicas there.
fn converged() -> Given {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 1, 2]);
    for i in 0..3 {
        announces(&mut g, i, &at(i));
    }
    all_report(
        &mut g,
        &names_demo_0(NODE, port(0), 1, vec![outside(1), outside(2)]),
    );
    g
}

fn announce(i: u32, endpoint: Option<ExternalEndpoint>) -> Intent {
    Intent::Announce {
        pod: pod(i),
        pod_ip: ip(i),
        endpoint,
    }
}

fn has_announce(intents: &[Intent]) -> bool {
    intents.iter().any(|i| matches!(i, Intent::Announce { .. }))
}

#[test]
fn a_converged_exposed_cluster_decides_nothing() {
    let g = converged();
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// The replica's announcement is read before anything else of the
/// Sentinels': the Sentinel listing `demo-1` at its endpoint while it
/// announces none would otherwise be reset first.
#[test]
fn a_replica_announcing_no_address_is_told_its_endpoint() {
    let mut g = converged();
    announces(&mut g, 1, "");
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&announce(1, Some(endpoint(1)))]
    );
    assert_eq!(
        decided[0].reason.code,
        ReasonCode::AnnouncedAddressStale {
            announced: String::new(),
            wanted: at(1),
        }
    );
    // Once it announces it: nothing.
    announces(&mut g, 1, &at(1));
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

#[test]
fn a_pod_announcing_another_endpoint_is_told_its_own() {
    let mut g = converged();
    announces(&mut g, 2, &at(1));
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&announce(2, Some(endpoint(2)))]
    );
    assert_eq!(
        decided[0].reason.code,
        ReasonCode::AnnouncedAddressStale {
            announced: at(1),
            wanted: at(2),
        }
    );
}

/// Only pods whose announcement was journaled are considered: a cluster
/// whose pods' announcements were never read decides nothing here.
#[test]
fn a_pod_never_seen_announcing_is_left_alone() {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 1, 2]);
    for i in [0, 2] {
        announces(&mut g, i, &at(i));
    }
    all_report(
        &mut g,
        &names_demo_0(NODE, port(0), 1, vec![outside(1), outside(2)]),
    );
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// External access on, but `demo-1`'s node port not known yet: it keeps
/// announcing no address (it is dialled at its pod address meanwhile).
#[test]
fn a_pod_whose_endpoint_is_not_known_yet_announces_nothing() {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 2]);
    announces(&mut g, 0, &at(0));
    announces(&mut g, 1, "");
    announces(&mut g, 2, &at(2));
    all_report(
        &mut g,
        &names_demo_0(NODE, port(0), 1, vec![inside(1), outside(2)]),
    );
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// The same while it still announces an endpoint of before (its Service
/// was recreated): it is left as it booted until its new one is known,
/// not told to announce its pod address meanwhile.
#[test]
fn a_pod_whose_new_endpoint_is_not_known_yet_keeps_its_old_one() {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 2]);
    announces(&mut g, 0, &at(0));
    announces(&mut g, 1, &format!("{NODE}:31111"));
    announces(&mut g, 2, &at(2));
    // (The Sentinels have not found demo-1 again yet.)
    all_report(&mut g, &names_demo_0(NODE, port(0), 1, vec![outside(2)]));
    assert_eq!(g.intents(), Vec::<Intent>::new());
    // Its endpoint known: it is told.
    external(&mut g, true, &[0, 1, 2]);
    assert_eq!(g.intents(), vec![announce(1, Some(endpoint(1)))]);
}

/// While a Sentinel fails over, announcements are left as they are.
#[test]
fn nothing_is_announced_while_a_sentinel_fails_over() {
    let mut g = converged();
    announces(&mut g, 1, "");
    let mut busy = names_demo_0(NODE, port(0), 1, vec![outside(1), outside(2)]);
    if let Some(m) = busy.monitoring.as_mut() {
        m.failover_state = Some("wait_promotion".into());
        m.flags = vec!["failover_in_progress".into()];
    }
    reports(&mut g, 2, busy);
    let intents = g.intents();
    assert!(!has_announce(&intents), "{intents:?}");
}

/// External access off, the pods still announce their endpoints: each is
/// told to announce its pod address again (here the Sentinels already
/// name the primary at its pod address, so they are quiet).
#[test]
fn external_access_off_makes_every_pod_announce_its_pod_address() {
    let mut g = converged();
    external(&mut g, false, &[]);
    all_report(
        &mut g,
        &names_demo_0(&ip(0), 6379, 1, vec![inside(1), inside(2)]),
    );
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&announce(0, None), &announce(1, None), &announce(2, None)]
    );
    assert_eq!(
        decided[1].reason.code,
        ReasonCode::AnnouncedAddressStale {
            announced: at(1),
            wanted: String::new(),
        }
    );
    for i in 0..3 {
        announces(&mut g, i, "");
    }
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

/// External access turned off as it happens (the spec refuses this in
/// place; the decisions must still read such a projection right): the
/// Sentinels still name the primary at its former endpoint, which now
/// resolves through what the pods were seen announcing, so the pods are
/// told to announce their own addresses.
#[test]
fn external_access_turned_off_moves_the_cluster_back_to_the_pod_network() {
    let mut g = converged();
    external(&mut g, false, &[]);
    // What the observer makes of the Sentinels' unchanged answers now.
    for s in 0..3 {
        let probe = sentinel_probe((NODE, port(0)), 1, &[(NODE, port(1)), (NODE, port(2))]);
        let report = sentinel_report(&g.state, &probe);
        reports(&mut g, s, report);
    }
    let intents = g.intents();
    assert!(
        intents.iter().any(|i| matches!(
            i,
            Intent::Announce { endpoint: None, .. } | Intent::SentinelMonitor { .. }
        )),
        "the Sentinels name an endpoint that is gone and the pods announce it: {intents:?}"
    );
}

/// Exposed with the Sentinels naming `demo-0` at its pod address, none
/// of them ever failed over (config epoch 0): the first is pointed at its
/// endpoint, one at a time.
#[test]
fn sentinels_that_never_failed_over_are_readdressed_one_at_a_time() {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 1, 2]);
    all_report(
        &mut g,
        &names_demo_0(&ip(0), 6379, 0, vec![inside(1), inside(2)]),
    );
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::SentinelMonitor {
            sentinel: sentinel(0),
            primary: pod(0),
            ip: at(0),
            settings: SETTINGS,
        }]
    );
    assert_eq!(decided[0].reason.code, ReasonCode::SentinelNotMonitoring);
    // The first moved: the next.
    reports(
        &mut g,
        0,
        names_demo_0(NODE, port(0), 0, vec![inside(1), inside(2)]),
    );
    assert_eq!(
        g.intents(),
        vec![Intent::SentinelMonitor {
            sentinel: sentinel(1),
            primary: pod(0),
            ip: at(0),
            settings: SETTINGS,
        }]
    );
}

/// Once a Sentinel failed over (epoch > 0), one monitoring anew would
/// take its peers' older address back: a coordinated failover moves it,
/// once every replica announces where it is reached.
#[test]
fn sentinels_that_failed_over_are_readdressed_by_a_failover() {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 1, 2]);
    for i in 0..3 {
        announces(&mut g, i, &at(i));
    }
    all_report(
        &mut g,
        &names_demo_0(&ip(0), 6379, 1, vec![outside(1), outside(2)]),
    );
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::SentinelFailover {
            from: pod(0),
            to: None,
        }]
    );
    assert_eq!(
        decided[0].reason.code,
        ReasonCode::AnnouncedAddressStale {
            announced: format!("{}:6379", ip(0)),
            wanted: at(0),
        }
    );
}

/// The primary's own announcement is not waited for: Sentinel promotes
/// a replica, named where the replica announces itself.
#[test]
fn a_failover_to_readdress_waits_for_the_replicas_only() {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 1, 2]);
    announces(&mut g, 1, &at(1));
    announces(&mut g, 2, &at(2));
    all_report(
        &mut g,
        &names_demo_0(&ip(0), 6379, 2, vec![outside(1), outside(2)]),
    );
    assert_eq!(
        g.intents(),
        vec![Intent::SentinelFailover {
            from: pod(0),
            to: None,
        }]
    );
}

#[test]
fn no_failover_to_readdress_before_every_replica_announces() {
    let mut g = Given::sentinel_cluster();
    external(&mut g, true, &[0, 1, 2]);
    announces(&mut g, 0, &at(0));
    announces(&mut g, 1, &at(1));
    // demo-2 never seen announcing: nothing at all.
    all_report(
        &mut g,
        &names_demo_0(&ip(0), 6379, 1, vec![outside(1), inside(2)]),
    );
    assert_eq!(g.intents(), Vec::<Intent>::new());
    // Seen announcing no address: it is told, no failover.
    announces(&mut g, 2, "");
    assert_eq!(g.intents(), vec![announce(2, Some(endpoint(2)))]);
}

/// A Sentinel still lists a replica at its pod address beside its
/// announced endpoint: the pod-address entry is stale and the Sentinel
/// is reset.
#[test]
fn a_replica_listed_at_its_pod_address_and_its_endpoint_is_reset() {
    let mut g = converged();
    reports(
        &mut g,
        1,
        names_demo_0(NODE, port(0), 1, vec![inside(1), outside(1), outside(2)]),
    );
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::SentinelReset {
            sentinel: sentinel(1)
        }]
    );
    assert_eq!(
        decided[0].reason.code,
        ReasonCode::SentinelStaleEntries {
            stale: vec![format!("{}:6379", ip(1))],
        }
    );
}

/// External access off: the endpoint entries a Sentinel still lists
/// beside the pod addresses are the stale ones.
#[test]
fn external_access_off_resets_the_endpoint_entries() {
    let mut g = converged();
    external(&mut g, false, &[]);
    for i in 0..3 {
        announces(&mut g, i, "");
    }
    all_report(
        &mut g,
        &names_demo_0(&ip(0), 6379, 1, vec![inside(1), inside(2)]),
    );
    // The endpoint entry resolves to no pod any more (the observer
    // knows no endpoint): stale as any unknown address.
    let mut listed = names_demo_0(&ip(0), 6379, 1, vec![inside(1), inside(2)]);
    if let Some(m) = listed.monitoring.as_mut() {
        m.replicas.push(known(NODE, port(1), None));
    }
    reports(&mut g, 0, listed);
    let decided = g.decide();
    assert_eq!(
        decided.iter().map(|d| &d.intent).collect::<Vec<_>>(),
        vec![&Intent::SentinelReset {
            sentinel: sentinel(0)
        }]
    );
    assert_eq!(
        decided[0].reason.code,
        ReasonCode::SentinelStaleEntries { stale: vec![at(1)] }
    );
}

/// A monitored cluster exposed, step by step as the executors would
/// report each outcome: every pod announces its endpoint, each Sentinel
/// forgets the pod addresses it listed the replicas at, one at a time,
/// then is pointed at the primary's endpoint, one at a time; then
/// nothing.
#[test]
fn exposing_a_monitored_cluster_converges_one_step_at_a_time() {
    let mut g = Given::sentinel_cluster();
    all_report(
        &mut g,
        &names_demo_0(&ip(0), 6379, 0, vec![inside(1), inside(2)]),
    );
    for i in 0..3 {
        announces(&mut g, i, "");
    }
    assert_eq!(g.intents(), Vec::<Intent>::new(), "not exposed: nothing");
    external(&mut g, true, &[0, 1, 2]);
    assert_eq!(
        g.intents(),
        (0..3)
            .map(|i| announce(i, Some(endpoint(i))))
            .collect::<Vec<_>>()
    );
    for i in 0..3 {
        let intent = announce(i, Some(endpoint(i)));
        g.succeed_with(
            intent,
            vec![Event::AnnouncedAddressObserved {
                pod: pod(i),
                announced: at(i),
            }],
        );
    }
    // The primary lists its replicas at their endpoints now: the
    // Sentinels add them beside the pod-address entries.
    let both = names_demo_0(
        &ip(0),
        6379,
        0,
        vec![inside(1), inside(2), outside(1), outside(2)],
    );
    all_report(&mut g, &both);
    for s in 0..3 {
        assert_eq!(
            g.intents(),
            vec![Intent::SentinelReset {
                sentinel: sentinel(s)
            }],
            "reset {s}"
        );
        g.succeed(Intent::SentinelReset {
            sentinel: sentinel(s),
        });
        reports(
            &mut g,
            s,
            names_demo_0(&ip(0), 6379, 0, vec![outside(1), outside(2)]),
        );
    }
    for s in 0..3 {
        let monitor = Intent::SentinelMonitor {
            sentinel: sentinel(s),
            primary: pod(0),
            ip: at(0),
            settings: SETTINGS,
        };
        assert_eq!(g.intents(), vec![monitor.clone()], "monitor {s}");
        g.succeed(monitor);
        reports(
            &mut g,
            s,
            names_demo_0(NODE, port(0), 0, vec![outside(1), outside(2)]),
        );
    }
    assert_eq!(g.intents(), Vec::<Intent>::new());
}

// Observers: what servers report, resolved to pods by host and port.

/// A Sentinel's answers naming the primary at `primary` and the replicas
/// at `replicas`.
fn sentinel_probe(primary: (&str, u16), epoch: u64, replicas: &[(&str, u16)]) -> SentinelProbe {
    SentinelProbe {
        myid: "x".into(),
        primary: Some(SentinelPrimary {
            name: "demo".into(),
            ip: primary.0.into(),
            port: primary.1,
            run_id: None,
            flags: vec!["master".into()],
            failover_state: None,
            config_epoch: epoch,
            num_slaves: u32::try_from(replicas.len()).unwrap(),
            num_other_sentinels: 2,
            quorum: SETTINGS.quorum,
            down_after_ms: SETTINGS.down_after_ms,
            failover_timeout_ms: SETTINGS.failover_timeout_ms,
            parallel_syncs: SETTINGS.parallel_syncs,
        }),
        replicas: replicas
            .iter()
            .map(|(host, port)| SentinelReplica {
                ip: (*host).into(),
                port: *port,
                run_id: None,
                flags: vec!["slave".into()],
                master_host: Some(primary.0.into()),
                master_link_ok: true,
                replica_priority: Some(100),
                repl_offset: Some(100),
            })
            .collect(),
        sentinels: (1..3)
            .map(|s| SentinelPeer {
                ip: format!("10.0.1.{s}"),
                port: 26379,
                run_id: format!("id{s}"),
                flags: vec!["sentinel".into()],
            })
            .collect(),
        info_period_ms: None,
        latency: Duration::from_millis(1),
    }
}

#[test]
fn a_sentinel_report_tells_pods_on_one_node_apart_by_port() {
    let g = converged();
    let probe = sentinel_probe(
        (NODE, port(0)),
        1,
        &[
            (NODE, port(2)),
            (NODE, port(1)),
            (&ip(1), 6379),
            (NODE, 6379),
        ],
    );
    let report = sentinel_report(&g.state, &probe);
    let m = report.monitoring.unwrap();
    assert_eq!(m.primary_pod.as_deref(), Some("demo-0"));
    assert_eq!(
        m.replicas
            .iter()
            .map(|k| (k.ip.as_str(), k.port, k.pod.as_deref()))
            .collect::<Vec<_>>(),
        // (sorted by address)
        vec![
            ("10.0.0.1", 6379, Some("demo-1")),
            // The node itself on the Valkey port is no pod.
            (NODE, 6379, None),
            (NODE, port(1), Some("demo-1")),
            (NODE, port(2), Some("demo-2")),
        ]
    );
    // A Sentinel naming the primary at its pod address: the same pod.
    let inside = sentinel_probe((&ip(0), 6379), 1, &[]);
    let m = sentinel_report(&g.state, &inside).monitoring.unwrap();
    assert_eq!(m.primary_pod.as_deref(), Some("demo-0"));
    // At a port no endpoint has: none.
    let nowhere = sentinel_probe((NODE, 30_999), 1, &[]);
    let m = sentinel_report(&g.state, &nowhere).monitoring.unwrap();
    assert_eq!(m.primary_pod, None);
}

/// `INFO replication` of a replica following `host:port`.
fn replica_of(host: &str, port: u16) -> Probe {
    let text = format!(
        "# Replication\r\nrole:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:1\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:100\r\nslave_repl_offset:100\r\nslave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:100\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:1\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:100\r\n",
        "01".repeat(20),
        "0".repeat(40)
    );
    Probe {
        info: parse_info_replication(&text).unwrap(),
        role: RoleReply::Replica {
            host: host.into(),
            port,
            state: "connected".into(),
            offset: Some(100),
        },
        latency: Duration::from_millis(1),
    }
}

/// What `demo-1` is observed to follow when its `INFO` names `host:port`
/// (the prober's map is `pods_by_address`).
fn follows(g: &Given, host: &str, port: u16) -> Vec<Event> {
    let probe = replica_of(host, port);
    let by_address: BTreeMap<(String, u16), String> = pods_by_address(&g.state);
    observe_probe(
        &g.state,
        "demo-1",
        &ProbeObservation::Answered(&probe),
        &by_address,
        3,
        false,
        LinkEvidence::default(),
    )
    .into_iter()
    .filter(|e| matches!(e, Event::NodeRoleObserved { .. }))
    .collect()
}

#[test]
fn a_replica_following_a_node_port_resolves_to_the_pod_behind_it() {
    let g = converged();
    // demo-1 follows demo-0 at its endpoint: as journaled, nothing new.
    assert_eq!(follows(&g, NODE, port(0)), Vec::<Event>::new());
    // At its pod address: the same.
    assert_eq!(follows(&g, &ip(0), 6379), Vec::<Event>::new());
    // Same node, demo-2's port: it follows demo-2.
    assert_eq!(
        follows(&g, NODE, port(2)),
        vec![Event::NodeRoleObserved {
            pod: pod(1),
            role: Role::Replica,
            primary: Some(pod(2)),
        }]
    );
    // The node on a port no pod has: it follows no pod.
    assert_eq!(
        follows(&g, NODE, 6379),
        vec![Event::NodeRoleObserved {
            pod: pod(1),
            role: Role::Replica,
            primary: None,
        }]
    );
}
