//! The archive's on and off and its retention, from the projection.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use logbook_crds::{BackupDestination, ContinuousArchive, Topology, ValkeyClusterSpec};
use logbook_journal::{ArchiveChain, BackupTarget, Event, Intent, Timestamp};

use crate::decide::given::Given;

fn target() -> BackupTarget {
    BackupTarget {
        bucket: "b".into(),
        region: "us-east-1".into(),
        endpoint: None,
        path_style: None,
        secret: "s3".into(),
        dir: "p/ns/demo/_archive/".into(),
        cluster_dir: "p/ns/demo/".into(),
    }
}

fn spec(max_age_hours: Option<i32>) -> ValkeyClusterSpec {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.backup.destination = Some(BackupDestination {
        bucket: "b".into(),
        prefix: Some("p".into()),
        region: None,
        endpoint: None,
        force_path_style: None,
        credentials_secret: "s3".into(),
    });
    spec.backup.continuous = Some(ContinuousArchive { enabled: true });
    spec.backup.retention.max_age_hours = max_age_hours;
    spec
}

fn decide(g: &Given, now: Timestamp) -> Vec<Intent> {
    let view = crate::decide::ClusterView::new(&g.state).unwrap();
    super::decide_archive(&view, now)
        .into_iter()
        .map(|d| d.intent)
        .collect()
}

fn chain(name: &str) -> Event {
    Event::ArchiveChainStarted {
        chain: ArchiveChain {
            chain: name.into(),
            dir: "p/ns/demo/_archive/".into(),
            source: "demo-1".into(),
            primary: "demo-0".into(),
            replid: "r".into(),
            offset: 1,
            base_at: Timestamp::EPOCH,
            base_bytes: 10,
            slots: vec![],
        },
    }
}

#[test]
fn the_archive_goes_on_where_the_spec_says_and_off_when_it_no_longer_asks() {
    let mut g = Given::new();
    g.spec(&spec(None));
    assert!(
        decide(&g, g.state.last_at).is_empty(),
        "nothing observed yet"
    );
    g.event(Event::ArchiveTargetObserved {
        target: Some(target()),
    });
    assert_eq!(
        decide(&g, g.state.last_at),
        vec![Intent::Archive { target: target() }]
    );
    g.succeed(Intent::Archive { target: target() });
    assert!(decide(&g, g.state.last_at).is_empty(), "on: nothing more");
    let mut moved = target();
    moved.dir = "q/ns/demo/_archive/".into();
    g.event(Event::ArchiveTargetObserved {
        target: Some(moved.clone()),
    });
    assert_eq!(
        decide(&g, g.state.last_at),
        vec![Intent::Archive { target: moved }]
    );
    g.event(Event::ArchiveTargetObserved { target: None });
    assert_eq!(decide(&g, g.state.last_at), vec![Intent::StopArchive]);
    g.succeed(Intent::StopArchive);
    assert!(decide(&g, g.state.last_at).is_empty());
}

#[test]
fn retention_deletes_ended_chains_older_than_the_oldest_moment_kept_never_a_live_one() {
    let mut g = Given::new();
    g.spec(&spec(Some(1)));
    g.event(Event::ArchiveTargetObserved {
        target: Some(target()),
    });
    g.succeed(Intent::Archive { target: target() });
    g.event(chain("old"));
    g.event(chain("live"));
    let hour = 3_600_000;
    let start = g.state.last_at;
    assert!(
        decide(&g, start.plus_millis(2 * hour)).is_empty(),
        "no chain ended"
    );
    g.event(Event::ArchiveChainEnded {
        chain: "old".into(),
        end: 9,
        reason: "position lost".into(),
    });
    assert!(
        decide(&g, start.plus_millis(hour / 2)).is_empty(),
        "ended less than maxAgeHours ago"
    );
    assert_eq!(
        decide(&g, start.plus_millis(2 * hour)),
        vec![Intent::DeleteArchiveChain {
            chain: "old".into(),
            dir: "p/ns/demo/_archive/old/".into()
        }]
    );
    g.event(Event::ArchiveChainDeleted {
        chain: "old".into(),
        objects: 3,
    });
    assert!(decide(&g, start.plus_millis(100 * hour)).is_empty());
    assert_eq!(g.state.backups.archive.chains.len(), 1);
}
