//! A change of version on a Replication cluster: the new image's
//! preflight before anything is applied, a refusal that applies nothing,
//! and a canary that holds the roll for its soak, or for good once it
//! failed.

use logbook_journal::{Event, Intent, LinkStatus, Reachability, Role, Timestamp};

use super::*;

const OLD: &str = "valkey/valkey:8.0";
const NEW: &str = "valkey/valkey:9.1";

fn spec(image: &str) -> ValkeyClusterSpec {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Replication);
    spec.replicas = Some(3);
    spec.image = image.to_owned();
    spec.upgrade = Some(logbook_crds::UpgradeSpec {
        canary_seconds: Some(30),
    });
    spec
}

fn runs(g: &mut Given, i: u32, revision: &str, image: &str, version: &str) {
    g.event(Event::ServerVersionObserved {
        pod: pod(i),
        uid: format!("uid-{i}-{revision}"),
        image: image.to_owned(),
        version: version.to_owned(),
    });
}

/// Three pods on 8.0.1, the spec at generation 2 naming 9.1.
fn asked_to_upgrade() -> Given {
    let mut g = Given::converged(3);
    for i in 0..3 {
        runs(&mut g, i, "r1", OLD, "8.0.1");
    }
    g.spec_at(2, &spec(NEW));
    g
}

#[test]
fn nothing_is_applied_before_the_new_image_answered_its_preflight() {
    let mut g = asked_to_upgrade();
    let preflight = Intent::PreflightImage {
        image: NEW.into(),
        generation: 2,
    };
    assert_eq!(g.intents(), vec![preflight.clone()]);
    g.succeed(preflight);
    // It runs: nothing applied, and a primary failing meanwhile is still
    // failed over (the preflight holds the objects only).
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    assert_eq!(
        g.status().upgrade.map(|u| u.phase).as_deref(),
        Some("Preflight")
    );
    g.event(Event::ImagePreflighted {
        image: NEW.into(),
        generation: 2,
        version: Some("9.1.2".into()),
        refused: None,
    });
    let remove = Intent::RemovePreflight { image: NEW.into() };
    assert_eq!(g.intents(), vec![remove.clone()]);
    g.succeed(remove);
    assert_eq!(g.intents(), vec![Intent::ApplyResources { generation: 2 }]);
}

#[test]
fn a_refused_preflight_applies_nothing_and_refuses_the_spec() {
    let mut g = asked_to_upgrade();
    g.succeed(Intent::PreflightImage {
        image: NEW.into(),
        generation: 2,
    });
    g.event(Event::ImagePreflighted {
        image: NEW.into(),
        generation: 2,
        version: None,
        refused: Some(">>> 'commandlog-execution-slower-than 1' Bad directive".into()),
    });
    g.succeed(Intent::RemovePreflight { image: NEW.into() });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    let status = g.status();
    let upgrade = status.upgrade.clone().unwrap();
    assert_eq!(upgrade.phase, "Refused");
    assert!(
        upgrade.message.contains("Bad directive"),
        "{}",
        upgrade.message
    );
    let valid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "SpecValid")
        .unwrap();
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "UpgradeRefused")
    );
    // A new generation (the config set right) is tried again.
    g.spec_at(3, &spec(NEW));
    assert_eq!(
        g.intents(),
        vec![Intent::PreflightImage {
            image: NEW.into(),
            generation: 3
        }]
    );
}

/// Upgraded up to the roll: the preflight passed, generation 2 applied,
/// the StatefulSet at revision r2, and the canary `demo-2` rolled.
fn canary_rolled() -> Given {
    canary_rolled_with(LinkStatus::Up)
}

/// [`canary_rolled`], the canary's link to its primary `link` when it
/// first answers.
fn canary_rolled_with(link: LinkStatus) -> Given {
    let mut g = asked_to_upgrade();
    g.succeed(Intent::PreflightImage {
        image: NEW.into(),
        generation: 2,
    });
    g.event(Event::ImagePreflighted {
        image: NEW.into(),
        generation: 2,
        version: Some("9.1.2".into()),
        refused: None,
    });
    g.succeed(Intent::RemovePreflight { image: NEW.into() });
    g.applied(2);
    g.event(Event::StatefulSetObserved {
        replicas: 3,
        update_revision: Some("r2".into()),
    });
    assert_eq!(
        g.intents(),
        vec![Intent::RollPod {
            pod: pod(2),
            revision: "r2".into()
        }]
    );
    g.succeed(Intent::RollPod {
        pod: pod(2),
        revision: "r2".into(),
    });
    g.pod(2, "r2")
        .reach(2, Reachability::Reachable)
        .role(2, Role::Replica, Some(0))
        .repl(2, link, 100, 7)
        .label(2, Role::Replica);
    runs(&mut g, 2, "r2", NEW, "9.1.2");
    g
}

#[test]
fn the_canary_soaks_from_when_it_is_in_sync_not_from_its_first_answer() {
    // It answers while it copies its primary's data, 20 s of its 30 s
    // soak; the soak counts from when its link is up.
    let mut g = canary_rolled_with(LinkStatus::Syncing);
    let answered = g.state.versions[&pod(2)].since;
    assert_eq!(g.state.versions[&pod(2)].in_sync_since, None);
    g.every_ms(20_000);
    g.repl(2, LinkStatus::Up, 200, 7);
    let in_sync = g.state.versions[&pod(2)].in_sync_since.expect("in sync");
    assert_eq!(in_sync.0 - answered.0, 20_000_000);
    let deadline = crate::decide::next_deadline(&g.state).expect("a deadline");
    assert_eq!(deadline.0 - in_sync.0, 30_000_000);
    // 31 s after its first answer, 11 s in sync: still watched.
    g.every_ms(11_000);
    g.event(Event::DeadlinePassed { deadline: answered });
    assert!(g.intents().is_empty(), "rolled on early: {:?}", g.intents());
    let hold = g.status().upgrade.unwrap();
    assert_eq!(hold.phase, "Canary");
    // Its link drops: the soak starts again once it is back.
    g.every_ms(5_000);
    g.repl(2, LinkStatus::Down, 200, 7);
    assert_eq!(g.state.versions[&pod(2)].in_sync_since, None);
    g.repl(2, LinkStatus::Up, 300, 7);
    let again = g.state.versions[&pod(2)].in_sync_since.unwrap();
    g.every_ms(29_000);
    g.event(Event::DeadlinePassed { deadline: in_sync });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.every_ms(2_000);
    g.event(Event::DeadlinePassed {
        deadline: Timestamp(again.0 + 30_000_000),
    });
    assert_eq!(
        g.intents(),
        vec![Intent::RollPod {
            pod: pod(1),
            revision: "r2".into()
        }]
    );
}

#[test]
fn the_canary_holds_the_roll_for_its_soak_then_the_rest_rolls() {
    let mut g = canary_rolled();
    assert!(
        g.intents().is_empty(),
        "rolled on at once: {:?}",
        g.intents()
    );
    let status = g.status();
    let upgrade = status.upgrade.unwrap();
    assert_eq!(
        (upgrade.phase.as_str(), upgrade.canary.as_deref()),
        ("Canary", Some("demo-2"))
    );
    // The soak's end is the next deadline; before it, still held.
    let deadline = crate::decide::next_deadline(&g.state).expect("a deadline");
    let since = g.state.versions[&pod(2)].since;
    assert_eq!(deadline.0 - since.0, 30_000_000);
    g.every_ms(29_000);
    g.event(Event::DeadlinePassed { deadline: since });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.every_ms(2_000);
    g.event(Event::DeadlinePassed { deadline });
    assert_eq!(
        g.intents(),
        vec![Intent::RollPod {
            pod: pod(1),
            revision: "r2".into()
        }]
    );
}

#[test]
fn a_canary_that_failed_holds_the_roll_until_the_image_is_set_back() {
    let mut g = canary_rolled();
    g.event(Event::ContainerFailureObserved {
        pod: pod(2),
        failure: Some("Error, exit code 1: Fatal error loading the DB".into()),
    });
    g.every_ms(120_000);
    g.event(Event::ContainerFailureObserved {
        pod: pod(2),
        failure: None,
    });
    // Failed once, failed: not rolled on, however long after.
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    let upgrade = g.status().upgrade.unwrap();
    assert_eq!(upgrade.phase, "CanaryFailed");
    assert!(
        upgrade.message.contains("set image back"),
        "{}",
        upgrade.message
    );
}

/// While the canary soaks, an outdated replica whose probe timed out
/// once (a loaded node), still ready and in sync, is not "down on an
/// outdated revision": rolling it deleted an in-sync copy and put it on
/// the image under trial, from which it might not copy the primary again
/// (a downgrade). One really down waits
/// for the canary too: the image under trial is not spread before it
/// passed.
#[test]
fn no_pod_rolls_past_a_canary_that_has_not_passed() {
    let mut g = canary_rolled_with(LinkStatus::Syncing);
    g.every_ms(10_000);
    g.reach(1, Reachability::TimedOut);
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    g.reach(1, Reachability::Refused);
    g.event(Event::PodObserved {
        pod: pod(1),
        uid: "uid-1-r1".into(),
        ip: Some("10.0.0.1".into()),
        phase: logbook_journal::PodPhase::Running,
        ready: false,
        node: None,
        revision: Some("r1".into()),
    });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    // The canary failed (never in sync): still nothing rolls on.
    g.every_ms(60_000);
    g.event(Event::DeadlinePassed {
        deadline: g.state.last_at,
    });
    assert!(g.intents().is_empty(), "{:?}", g.intents());
    assert_eq!(g.status().upgrade.unwrap().phase, "CanaryFailed");
}
