use logbook_journal::projection::PodView;
use logbook_journal::projection::sentinel::SentinelPodView;

use super::*;

fn monitoring(pod: &str, ip: &str, epoch: u64) -> SentinelMonitorReport {
    SentinelMonitorReport {
        primary_ip: ip.into(),
        primary_port: 6379,
        primary_pod: Some(pod.into()),
        config_epoch: epoch,
        flags: Vec::new(),
        failover_state: None,
        settings: SentinelSettings {
            quorum: 2,
            down_after_ms: 5000,
            failover_timeout_ms: 60000,
            parallel_syncs: 1,
        },
        replicas: Vec::new(),
        sentinels: Vec::new(),
    }
}

/// Three data pods (`demo-0` believed primary) and three Sentinels, each
/// naming `names` (pod, ip, epoch) in turn.
fn state(names: [(&str, &str, u64); 3]) -> ClusterState {
    let mut s = ClusterState::new();
    s.sentinel.enabled = true;
    for (i, ip) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().enumerate() {
        s.pods.insert(
            format!("demo-{i}"),
            PodView {
                ip: Some((*ip).into()),
                reachability: Some(Reachability::Reachable),
                role: Some(if i == 0 { Role::Primary } else { Role::Replica }),
                replicates: (i != 0).then(|| "demo-0".to_owned()),
                link: Some(LinkStatus::Up),
                offset: Some(100 + i as u64),
                ..PodView::default()
            },
        );
    }
    s.replication.primary = Some("demo-0".into());
    for (i, (pod, ip, epoch)) in names.iter().enumerate() {
        s.sentinel.pods.insert(
            format!("demo-sentinel-{i}"),
            SentinelPodView {
                ip: Some(format!("10.0.1.{i}")),
                reachability: Some(Reachability::Reachable),
                report: Some(SentinelReport {
                    myid: format!("id{i}"),
                    monitoring: Some(monitoring(pod, ip, *epoch)),
                }),
                ..SentinelPodView::default()
            },
        );
    }
    s
}

#[test]
fn no_switch_while_the_sentinels_name_the_believed_primary() {
    let s = state([("demo-0", "10.0.0.1", 0); 3]);
    assert_eq!(observe_sentinel_switch(&s), None);
}

#[test]
fn a_switch_watched_names_its_leader_and_voters() {
    let mut s = state([
        ("demo-2", "10.0.0.3", 1),
        ("demo-0", "10.0.0.1", 0),
        ("demo-2", "10.0.0.3", 1),
    ]);
    s.sentinel
        .fold_event("demo-sentinel-0", "+vote-for-leader", "id0 1");
    s.sentinel
        .fold_event("demo-sentinel-2", "+vote-for-leader", "id0 1");
    s.sentinel
        .fold_event("demo-sentinel-1", "+vote-for-leader", "id2 1");
    s.sentinel.fold_event(
        "demo-sentinel-0",
        "+elected-leader",
        "master demo 10.0.0.1 6379",
    );
    let Some(Event::SentinelSwitchObserved { switch }) = observe_sentinel_switch(&s) else {
        panic!("a switch");
    };
    assert_eq!(switch.from.as_deref(), Some("demo-0"));
    assert_eq!(switch.to, "demo-2");
    assert_eq!(switch.epoch, 1);
    assert_eq!(switch.leader.as_deref(), Some("demo-sentinel-0"));
    assert_eq!(switch.voters, vec!["demo-sentinel-0", "demo-sentinel-2"]);
    assert_eq!(
        switch.reported_by,
        vec!["demo-sentinel-0", "demo-sentinel-2"]
    );
    assert!(!switch.after_the_fact);
    assert_eq!(switch.candidates.len(), 2);
    assert!(switch.candidates.iter().all(|c| c.in_sync && c.reachable));
}

#[test]
fn a_switch_nobody_watched_is_marked_after_the_fact() {
    let s = state([("demo-1", "10.0.0.2", 3); 3]);
    let Some(Event::SentinelSwitchObserved { switch }) = observe_sentinel_switch(&s) else {
        panic!("a switch");
    };
    assert!(switch.after_the_fact);
    assert_eq!(switch.leader, None);
    assert!(switch.voters.is_empty());
}

/// Sentinels that name another pod at config epoch 0 failed nothing
/// over: they name what they were configured with (a boot config older
/// than the last switch, read by Sentinels that lost their state, as at
/// a wake). Taking that for a switch made a replica the believed primary
/// and no pod took writes again.
#[test]
fn sentinels_at_config_epoch_zero_switch_nothing() {
    let mut s = state([("demo-1", "10.0.0.2", 0); 3]);
    assert_eq!(observe_sentinel_switch(&s), None);
    // Not even once the believed primary was reached by a switch.
    s.sentinel.primary_epoch = 3;
    assert_eq!(observe_sentinel_switch(&s), None);
}

#[test]
fn an_older_epoch_or_an_unreachable_sentinel_switches_nothing() {
    let mut s = state([
        ("demo-1", "10.0.0.2", 2),
        ("demo-0", "10.0.0.1", 0),
        ("demo-0", "10.0.0.1", 0),
    ]);
    s.sentinel.primary_epoch = 2;
    assert_eq!(observe_sentinel_switch(&s), None);
    s.sentinel.primary_epoch = 0;
    if let Some(v) = s.sentinel.pods.get_mut("demo-sentinel-0") {
        v.reachability = Some(Reachability::TimedOut);
    }
    assert_eq!(observe_sentinel_switch(&s), None);
}

#[test]
fn only_failover_steps_are_journaled_from_the_event_channels() {
    assert!(observe_sentinel_event("s", "+switch-master", "demo a 1 b 2").is_some());
    assert!(observe_sentinel_event("s", "+vote-for-leader", "x 1").is_some());
    assert!(observe_sentinel_event("s", "+sentinel", "sentinel ...").is_none());
    assert!(observe_sentinel_event("s", "__sentinel__:hello", "...").is_none());
}
