//! External access: each node is told to announce where clients outside
//! reach it, and its peers listing it at that address (or its pod's) is
//! not taken for a stale address.

use std::collections::BTreeMap;

use logbook_journal::{Event, ExternalEndpoint, Intent, PeerHealth, ReasonCode};

use super::*;

fn node_port(i: u32) -> ExternalEndpoint {
    ExternalEndpoint {
        host: format!("192.0.2.{}", i % 2),
        port: 30_000 + u16::try_from(i).unwrap(),
        bus_port: Some(31_000 + u16::try_from(i).unwrap()),
    }
}

/// The formed cluster with external access on by node ports, the objects
/// applied again for them (the connection Secret), every node announcing
/// its pod address.
fn exposed() -> Given {
    let mut g = Given::formed();
    g.event(Event::ExternalEndpointsObserved {
        enabled: true,
        pods: (0..6).map(|i| (pod(i), node_port(i))).collect(),
        primary: None,
        waiting: BTreeMap::new(),
    });
    // New endpoints: the connection Secret is written again first.
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 1 }]);
    g.succeed(Intent::ApplyResources { generation: 1 });
    for i in 0..6 {
        g.event(Event::AnnouncedAddressObserved {
            pod: pod(i),
            announced: format!("10.0.0.{i}:6379@16379"),
        });
    }
    g
}

/// Every node's line shows its node's address and node ports.
fn announce_node_ports(g: &mut Given) {
    for i in 0..6 {
        let e = node_port(i);
        g.event(Event::AnnouncedAddressObserved {
            pod: pod(i),
            announced: format!("{}:{}@{}", e.host, e.port, e.bus_port.unwrap()),
        });
    }
}

#[test]
fn each_node_is_told_where_clients_outside_reach_it() {
    let g = exposed();
    let decisions = g.decide();
    let intents: Vec<Intent> = decisions.iter().map(|d| d.intent.clone()).collect();
    assert_eq!(
        intents,
        (0..6)
            .map(|i| Intent::Announce {
                pod: pod(i),
                pod_ip: format!("10.0.0.{i}"),
                endpoint: Some(node_port(i)),
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        decisions[1].reason.code,
        ReasonCode::AnnouncedAddressStale {
            announced: "10.0.0.1:6379@16379".into(),
            wanted: "192.0.2.1:30001@31001".into(),
        }
    );
}

#[test]
fn once_announced_and_listed_there_nothing_is_decided() {
    let mut g = exposed();
    announce_node_ports(&mut g);
    assert_eq!(g.intents(), Vec::<Intent>::new());
    // Peers listing demo-2 at an address that is none of its own are
    // stale.
    let everyone: Vec<_> = (0..6).map(|i| (i, 0, PeerHealth::Ok)).collect();
    for i in [0_u32, 1] {
        g.report(&formed_primary(i), &everyone, &[2]);
    }
    assert_eq!(
        g.intents(),
        vec![Intent::MeetNode {
            pod: pod(2),
            from: vec![pod(0), pod(1)]
        }]
    );
}

#[test]
fn turned_off_every_node_announces_its_pod_address_again() {
    let mut g = exposed();
    g.event(Event::AnnouncedAddressObserved {
        pod: pod(4),
        announced: "192.0.2.0:30004@31004".into(),
    });
    g.event(Event::ExternalEndpointsObserved {
        enabled: false,
        pods: BTreeMap::new(),
        primary: None,
        waiting: BTreeMap::new(),
    });
    g.succeed(Intent::ApplyResources { generation: 1 });
    assert_eq!(
        g.intents(),
        vec![Intent::Announce {
            pod: pod(4),
            pod_ip: "10.0.0.4".into(),
            endpoint: None,
        }]
    );
}

#[test]
fn a_node_whose_address_is_not_known_yet_is_left_as_it_booted() {
    let mut g = exposed();
    // demo-5's endpoint goes unknown (its Service is made again, say):
    // it is not told to announce its pod address meanwhile.
    let mut pods: BTreeMap<String, ExternalEndpoint> =
        (0..5).map(|i| (pod(i), node_port(i))).collect();
    g.event(Event::ExternalEndpointsObserved {
        enabled: true,
        pods: pods.clone(),
        primary: None,
        waiting: BTreeMap::from([(pod(5), "Service demo-5-external is not made yet".into())]),
    });
    g.succeed(Intent::ApplyResources { generation: 1 });
    announce_node_ports(&mut g);
    assert_eq!(g.intents(), Vec::<Intent>::new());
    pods.insert(pod(5), node_port(9));
    g.event(Event::ExternalEndpointsObserved {
        enabled: true,
        pods,
        primary: None,
        waiting: BTreeMap::new(),
    });
    g.succeed(Intent::ApplyResources { generation: 1 });
    assert_eq!(
        g.intents(),
        vec![Intent::Announce {
            pod: pod(5),
            pod_ip: "10.0.0.5".into(),
            endpoint: Some(node_port(9)),
        }]
    );
}

#[test]
fn a_cluster_never_exposed_decides_nothing_about_addresses() {
    let g = Given::formed();
    assert!(g.state.external.is_empty());
    assert_eq!(g.intents(), Vec::<Intent>::new());
}
