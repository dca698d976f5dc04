//! The Valkey Cluster series, from projections folded from events: each
//! shard by its first slot, the cluster's slots, formation and state; a
//! reshard or a change of topology removes what no longer exists; the
//! probe measures each replica against its own shard's primary; and a
//! shard's failover counts once, as the operator's or as observed.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use logbook_journal::{
    ClusterFailoverMode, ClusterState, Intent, Reachability, ReasonCode, Role, SlotRange,
};
use uuid::Uuid;

use super::fixture::{Fixture, pod};
use super::*;

fn shop() -> ClusterLabels {
    ClusterLabels::new("default", "shop")
}

fn has(body: &str, line: &str) -> bool {
    body.lines().any(|l| l == line)
}

fn shard(name: &str, shard: &str, value: i64) -> String {
    format!(
        "logbook_shard_{name}{{namespace=\"default\",valkeycluster=\"shop\",shard=\"{shard}\"}} {value}"
    )
}

fn whole(name: &str, value: i64) -> String {
    format!("logbook_cluster_{name}{{namespace=\"default\",valkeycluster=\"shop\"}} {value}")
}

#[test]
fn a_formed_cluster_exports_each_shard_by_its_first_slot() {
    let metrics = Metrics::new();
    let f = Fixture::formed();
    metrics.set_cluster_shards(&shop(), summarize_cluster(&f.state).as_ref());
    let body = metrics.encode(Format::Prometheus);
    for line in [
        whole("formed", 1),
        whole("slots_owned", 16_384),
        whole("state_ok", 1),
        whole("shards_desired", 3),
        shard("slots", "0", 5462),
        shard("slots", "5462", 5461),
        shard("slots", "10923", 5461),
        shard("served", "0", 1),
        shard("served", "5462", 1),
        shard("served", "10923", 1),
        shard("replicas", "5462", 1),
        shard("replicas_in_sync", "10923", 1),
    ] {
        assert!(has(&body, &line), "{line} not in\n{body}");
    }
    assert_eq!(
        body.lines()
            .filter(|l| l.starts_with("logbook_shard_slots{"))
            .count(),
        3,
        "{body}"
    );
    assert!(!body.contains("shard=\"shop-"), "never a pod as shard");
}

#[test]
fn a_dead_primary_and_a_broken_link_show_in_their_shard_only() {
    let metrics = Metrics::new();
    let mut f = Fixture::formed();
    f.reach(1, Reachability::Refused);
    f.link(5, logbook_journal::LinkStatus::Down);
    metrics.set_cluster_shards(&shop(), summarize_cluster(&f.state).as_ref());
    let body = metrics.encode(Format::Prometheus);
    for line in [
        shard("served", "0", 1),
        shard("served", "5462", 0),
        shard("replicas_in_sync", "10923", 0),
        shard("replicas", "10923", 1),
        shard("replicas_in_sync", "5462", 1),
        whole("slots_owned", 16_384),
    ] {
        assert!(has(&body, &line), "{line} not in\n{body}");
    }
}

#[test]
fn a_forming_cluster_is_not_formed_and_owns_what_it_owns() {
    let metrics = Metrics::new();
    let mut f = Fixture::cluster();
    f.primary(0, 0, vec![SlotRange { start: 0, end: 99 }], 1);
    metrics.set_cluster_shards(&shop(), summarize_cluster(&f.state).as_ref());
    let body = metrics.encode(Format::Prometheus);
    assert!(has(&body, &whole("formed", 0)), "{body}");
    assert!(has(&body, &whole("slots_owned", 100)), "{body}");
    assert!(has(&body, &shard("slots", "0", 100)), "{body}");
}

#[test]
fn a_resharded_away_shard_and_a_replication_cluster_export_no_shard_series() {
    let metrics = Metrics::new();
    let f = Fixture::formed();
    metrics.set_cluster_shards(&shop(), summarize_cluster(&f.state).as_ref());
    // shop-0 takes over shard 5462's slots (a reshard): that shard is gone.
    let mut g = Fixture::formed();
    g.primary(
        0,
        0,
        vec![SlotRange {
            start: 0,
            end: 10_922,
        }],
        9,
    );
    g.primary(1, 0, Vec::new(), 2);
    metrics.set_cluster_shards(&shop(), summarize_cluster(&g.state).as_ref());
    let body = metrics.encode(Format::Prometheus);
    assert!(has(&body, &shard("slots", "0", 10_923)), "{body}");
    assert!(!body.contains("shard=\"5462\""), "{body}");
    // A Replication cluster's summary is none: no Cluster series at all.
    assert!(summarize_cluster(&Fixture::replication().state).is_none());
    metrics.set_cluster_shards(&shop(), None);
    let body = metrics.encode(Format::Prometheus);
    assert!(!body.contains("valkeycluster=\"shop\""), "{body}");
    // And a forgotten cluster shows nothing either.
    metrics.set_cluster_shards(&shop(), summarize_cluster(&f.state).as_ref());
    metrics.forget_cluster(&shop());
    let body = metrics.encode(Format::Prometheus);
    assert!(!body.contains("valkeycluster=\"shop\""), "{body}");
}

#[test]
fn a_probe_measures_each_replica_against_its_own_shards_primary() {
    let metrics = Metrics::new();
    let mut recording = ClusterMetrics::new(metrics.clone(), "default", "shop");
    let f = Fixture::formed();
    let names: Vec<String> = (0..6).map(pod).collect();
    let offsets = [1000, 2000, 3000, 990, 1500, 3000];
    let answers: Vec<Answer<'_>> = names
        .iter()
        .zip(offsets)
        .enumerate()
        .map(|(i, (name, offset))| {
            let role = if i < 3 { Role::Primary } else { Role::Replica };
            (name.as_str(), Some((role, offset)))
        })
        .collect();
    let t0 = Instant::now();
    recording.probed(&f.state, &answers, t0);
    let body = metrics.encode(Format::Prometheus);
    let lag = |p: &str, v: i64| {
        format!(
            "logbook_replication_lag_bytes{{namespace=\"default\",valkeycluster=\"shop\",pod=\"{p}\"}} {v}"
        )
    };
    for line in [lag("shop-3", 10), lag("shop-4", 500), lag("shop-5", 0)] {
        assert!(has(&body, &line), "{line} not in\n{body}");
    }
    let unhealthy =
        "logbook_primary_unhealthy_seconds{namespace=\"default\",valkeycluster=\"shop\"}";
    assert!(has(&body, &format!("{unhealthy} 0.0")), "{body}");
    // One shard's primary stops answering: unhealthy since the last round
    // in which all answered.
    let mut down = answers.clone();
    down[1].1 = None;
    recording.probed(&f.state, &down, t0 + Duration::from_secs(1));
    recording.probed(&f.state, &down, t0 + Duration::from_secs(4));
    let body = metrics.encode(Format::Prometheus);
    assert!(has(&body, &format!("{unhealthy} 4.0")), "{body}");
    assert!(
        !body.contains("pod=\"shop-4\""),
        "its replica's lag is unknown"
    );
    recording.probed(&f.state, &answers, t0 + Duration::from_secs(5));
    let body = metrics.encode(Format::Prometheus);
    assert!(has(&body, &format!("{unhealthy} 0.0")), "{body}");
}

/// Folds the fixture's envelopes from `from` on into `state` through
/// `tracker`.
fn notes_since(
    tracker: &mut Tracker,
    state: &mut ClusterState,
    f: &Fixture,
    from: usize,
) -> Vec<Note> {
    f.envelopes[from..]
        .iter()
        .flat_map(|e| tracker.fold(state, e))
        .collect()
}

fn failovers(notes: &[Note]) -> Vec<(FailoverKind, Option<f64>)> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Failover { kind, seconds } => Some((*kind, *seconds)),
            _ => None,
        })
        .collect()
}

#[test]
fn forming_a_cluster_is_no_failover() {
    let mut state = ClusterState::new();
    let mut tracker = Tracker::new(&state);
    let f = Fixture::formed();
    let notes = notes_since(&mut tracker, &mut state, &f, 0);
    assert_eq!(failovers(&notes), vec![]);
    assert_eq!(state, f.state);
}

#[test]
fn a_forced_cluster_failover_counts_once_as_automatic_from_the_first_failure() {
    let mut f = Fixture::formed();
    let mut state = f.state.clone();
    let mut tracker = Tracker::new(&state);
    let from = f.envelopes.len();
    let id = Uuid::now_v7();
    f.reach(1, Reachability::Refused); // t
    f.reach(1, Reachability::Refused); // t+1
    f.decided(
        id,
        Intent::ClusterFailover {
            pod: pod(4),
            from: Some(pod(1)),
            mode: ClusterFailoverMode::Force,
        },
        ReasonCode::PrimaryDead,
    ); // t+2
    f.primary(
        4,
        0,
        vec![SlotRange {
            start: 5462,
            end: 10_922,
        }],
        7,
    ); // t+3..t+5
    f.event(logbook_journal::Event::ReplicaPromoted {
        pod: pod(4),
        from: Some(pod(1)),
        offset: 1000,
    }); // t+6
    f.event(logbook_journal::Event::IntentSucceeded {
        intent_id: id,
        detail: String::new(),
    }); // t+7
    let notes = notes_since(&mut tracker, &mut state, &f, from);
    assert_eq!(
        failovers(&notes),
        vec![(FailoverKind::Automatic, Some(7.0))],
        "{notes:?}"
    );
    assert_eq!(state, f.state);
}

#[test]
fn valkeys_own_election_is_an_observed_failover_and_a_reshard_is_none() {
    let mut f = Fixture::formed();
    let mut state = f.state.clone();
    let mut tracker = Tracker::new(&state);
    let from = f.envelopes.len();
    f.reach(2, Reachability::Refused); // t
    // Valkey elects shop-5 on its own: nothing decided here.
    f.primary(
        5,
        0,
        vec![SlotRange {
            start: 10_923,
            end: 16_383,
        }],
        8,
    ); // t+1
    let notes = notes_since(&mut tracker, &mut state, &f, from);
    assert_eq!(
        failovers(&notes),
        vec![(FailoverKind::Observed, Some(1.0))],
        "{notes:?}"
    );
    // Slots moved to another shard: a new first slot, no failover.
    let from = f.envelopes.len();
    f.primary(
        0,
        0,
        vec![SlotRange {
            start: 0,
            end: 10_922,
        }],
        9,
    );
    f.primary(1, 0, Vec::new(), 2);
    let notes = notes_since(&mut tracker, &mut state, &f, from);
    assert_eq!(failovers(&notes), vec![], "{notes:?}");
}

#[test]
fn a_takeover_resumes_the_shards_and_the_cluster_failovers_in_flight() {
    let mut f = Fixture::formed();
    let id = Uuid::now_v7();
    f.decided(
        id,
        Intent::ClusterFailover {
            pod: pod(3),
            from: Some(pod(0)),
            mode: ClusterFailoverMode::Coordinated,
        },
        ReasonCode::Requested,
    );
    let mut state = f.state.clone();
    let mut tracker = Tracker::new(&state);
    let from = f.envelopes.len();
    f.primary(
        3,
        0,
        vec![SlotRange {
            start: 0,
            end: 5461,
        }],
        9,
    );
    f.event(logbook_journal::Event::IntentSucceeded {
        intent_id: id,
        detail: String::new(),
    });
    let notes = notes_since(&mut tracker, &mut state, &f, from);
    assert_eq!(
        failovers(&notes),
        vec![(FailoverKind::Requested, Some(4.0))],
        "{notes:?}"
    );
}
