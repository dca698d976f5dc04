//! Topology Sentinel end to end on localkube with real `valkey-server`
//! data pods and real Sentinels (`valkey-server --sentinel`): Sentinel
//! decides every failover, the operator never promotes, keeps the client
//! Service on Sentinel's primary and journals every switch with what it
//! knew of it.
//!
//! A Sentinel-aware client writes throughout with `WAIT 1 1000`: it asks
//! the Sentinel Service for the primary (`SENTINEL
//! get-master-addr-by-name`) and asks again after any error, as
//! Sentinel-aware client libraries do. No acknowledged write may be lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use logbook::journal_store::JournalBackend;
use logbook_journal::{Envelope, Event, FailoverKind, Intent};
use operator_common::*;

const NAME: &str = "demo";
const SENTINELS: usize = 3;

fn sentinel_yaml() -> String {
    operator_common::sentinel_yaml(NAME)
}

/// A local cluster with the operator journaling to ConfigMaps (readable
/// while it runs).
async fn start(name: &str) -> Env {
    let mut env = Env::start_without_operator(name).await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env
}

/// `logbook replay failovers` of the cluster's live ConfigMap journal.
async fn replay_failovers(env: &Env) -> String {
    replay_live(env, NAME, &["failovers"]).await
}

/// The journal verifies and `logbook replay audit` finds nothing: the
/// same decisions at every decision point, no invariant broken.
async fn audit_clean(env: &Env) {
    let stream = env.stream(NAME).await;
    let report = env.cm_verify_journal(&stream).await;
    assert!(report.problem.is_none(), "{report:?}");
    if let Err(text) = env.cm_audit(&stream).await {
        let events = env.journal_events(&stream).await;
        let timeline: Vec<String> = events
            .iter()
            .map(|e| format!("#{} {}", e.seq, logbook_replay::describe::summary(&e.body)))
            .collect();
        panic!("audit:\n{text}\njournal:\n{}", timeline.join("\n"));
    }
}

/// The cluster Ready with every Sentinel monitoring its primary.
async fn sentinel_ready(env: &Env, timeout: Duration) -> logbook_crds::ValkeyCluster {
    let vkc = env.wait_ready(NAME, 3, timeout).await;
    let sentinel = vkc
        .status
        .as_ref()
        .unwrap()
        .sentinel
        .clone()
        .expect("status.sentinel");
    assert_eq!(sentinel.agreeing as usize, SENTINELS, "{sentinel:?}");
    assert!(sentinel.quorum_reachable, "{sentinel:?}");
    vkc
}

/// `clusterIP:26379` of the Sentinel Service.
async fn sentinel_service(env: &Env) -> String {
    let svc = env
        .api::<Service>()
        .get(&format!("{NAME}-sentinel"))
        .await
        .unwrap();
    let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    format!("{ip}:26379")
}

/// A Sentinel-aware writer: asks the Sentinels for the primary, writes
/// with `WAIT 1`, asks again after any error.
fn sentinel_writer(sentinels: &str, password: &str, prefix: &str) -> logbook_bench::WriteProbe {
    let mut config = logbook_bench::WriteProbeConfig::new(
        logbook_bench::Target::Sentinel {
            sentinels: vec![sentinels.to_owned()],
            master: NAME.to_owned(),
        },
        prefix,
    );
    config.password = Some(logbook::valkey::Password::new(password));
    config.wait_replicas = true;
    logbook_bench::WriteProbe::start(config)
}

/// Waits for the writer's first acknowledged writes.
async fn warmed_up(env: &Env, probe: &logbook_bench::WriteProbe) {
    env.eventually(
        Duration::from_secs(15),
        "the writer's first acknowledged writes",
        || {
            let n = probe.acked_count();
            async move { n >= 20 }
        },
    )
    .await;
}

/// The Sentinel pods' names.
async fn sentinel_pods(env: &Env) -> Vec<String> {
    let pods = env
        .api::<Pod>()
        .list(&kube::api::ListParams::default().labels(&format!(
            "app.kubernetes.io/name=valkey-sentinel,valkey.logbook.dev/cluster={NAME}"
        )))
        .await
        .unwrap();
    let mut names: Vec<String> = pods.items.iter().map(kube::ResourceExt::name_any).collect();
    names.sort();
    names
}

/// The switches journaled after `seq`.
fn switches(events: &[Envelope], after: u64) -> Vec<logbook_journal::SentinelSwitch> {
    events
        .iter()
        .filter(|e| e.seq > after)
        .filter_map(|e| match &e.body {
            Event::SentinelSwitchObserved { switch } => Some(switch.clone()),
            _ => None,
        })
        .collect()
}

/// The failovers `logbook_failovers_total` counts for the journal
/// `events`, by kind, once it is checked that `logbook replay failovers`
/// counts the same.
fn assert_counted_alike(events: &[Envelope]) -> Vec<FailoverKind> {
    assert_eq!(events.first().map(|e| e.seq), Some(1), "the whole journal");
    let base = logbook_journal::ClusterState::default();
    let mut metrics = logbook::metrics::counted_failovers(&base, events);
    let mut replay = logbook_replay::failovers::Failovers::of_events(&base, events).counted();
    metrics.sort();
    replay.sort();
    assert_eq!(
        metrics, replay,
        "the metrics and replay count the failovers differently"
    );
    metrics
}

/// The operator never promotes in topology Sentinel, but for the first
/// primary of a new cluster (before any Sentinel monitors one); it fences
/// only a primary whose pod is being deleted, before asking the Sentinels.
fn assert_never_promoted(events: &[Envelope]) {
    for e in events {
        if let Event::Decided { intents } = &e.body {
            for p in intents {
                if matches!(p.reason.code, logbook_journal::ReasonCode::Bootstrap { .. })
                    && matches!(p.intent, Intent::PromoteReplica { from: None, .. })
                {
                    continue;
                }
                if matches!(p.intent, Intent::FenceNode { .. }) {
                    assert!(
                        p.reason.detail.contains("is being deleted"),
                        "the operator fenced a pod in topology Sentinel other than a primary being deleted: {}",
                        p.reason.detail
                    );
                    continue;
                }
                assert!(
                    !matches!(
                        p.intent,
                        Intent::PromoteReplica { .. }
                            | Intent::Switchover { .. }
                            | Intent::FenceNode { .. }
                    ),
                    "the operator decided {:?} in topology Sentinel",
                    p.intent
                );
            }
        }
    }
}

/// After a switch: one primary, the client Service's pod is Sentinel's
/// primary, every other pod follows it.
async fn assert_one_primary(env: &Env, password: &str, primary: &str) {
    let labels = env.role_labels(NAME).await;
    let labelled: Vec<&String> = labels
        .iter()
        .filter(|(_, r)| r.as_deref() == Some("primary"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(labelled, vec![primary], "role labels {labels:?}");
    let primary_ip = env
        .pod_addr(primary)
        .await
        .rsplit_once(':')
        .unwrap()
        .0
        .to_owned();
    for pod in env.pods(NAME).await {
        let name = kube::ResourceExt::name_any(&pod);
        let (kind, follows) = role(&env.pod_addr(&name).await, password).await;
        if name == primary {
            assert_eq!(kind, "master", "{name}");
        } else {
            assert_eq!(
                (kind.as_str(), follows.as_deref()),
                ("slave", Some(primary_ip.as_str())),
                "{name}"
            );
        }
    }
}

/// How the primary is failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Its process SIGKILLed: the kubelet restarts it in place, fenced.
    Kill,
    /// Its pod deleted: the StatefulSet recreates it, fenced.
    Delete,
    /// Its process frozen (SIGSTOP) until the Sentinels have failed it
    /// over by their own election (nothing the operator can ask: it does
    /// not answer), then SIGKILLed, so it comes back fenced, never as a
    /// second primary.
    FreezeThenKill,
}

/// Fails the primary and waits for Sentinel's switch, with the writer
/// running; checks every acknowledged write.
async fn fail_primary(env: &Env, password: &str, sentinels: &str, fault_kind: Fault, round: usize) {
    let vkc = sentinel_ready(env, Duration::from_secs(60)).await;
    let old = primary(&vkc);
    let before = journal_seq(&vkc) as u64;
    let probe = sentinel_writer(sentinels, password, &format!("w{round}"));
    warmed_up(env, &probe).await;
    let fault = Instant::now();
    match fault_kind {
        Fault::Kill => env.kill(&old).await,
        Fault::Delete => env.delete_pod(&old).await,
        Fault::FreezeThenKill => env.faults().freeze(NS, &old).await.unwrap(),
    }
    let moved = env
        .wait_primary_moved(NAME, &old, Duration::from_secs(40))
        .await;
    if fault_kind == Fault::FreezeThenKill {
        env.kill(&old).await;
    }
    let new = primary(&moved);
    eprintln!("round {round}: {old} -> {new} after {:?}", fault.elapsed());
    let moved_at = std::time::Instant::now();
    env.wait_acked_after(&probe, moved_at, "a write acknowledged after the switch")
        .await;
    let vkc = sentinel_ready(env, Duration::from_secs(60)).await;
    let log = probe.stop().await;
    assert_eq!(primary(&vkc), new);
    let new_addr = env.pod_addr(&new).await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, password).await;
    eprintln!("round {round}: {acked} acknowledged writes kept, {failed} failed");
    assert_one_primary(env, password, &new).await;
    // The journal explains it: a switch from the old primary to the new,
    // led by a Sentinel the others voted for, watched as it happened.
    let events = env.journal_events(&env.stream(NAME).await).await;
    let found = switches(&events, before);
    assert_eq!(found.len(), 1, "{found:?}");
    let switch = &found[0];
    assert_eq!(switch.from.as_deref(), Some(old.as_str()));
    assert_eq!(switch.to, new);
    assert!(!switch.after_the_fact, "{switch:?}");
    assert!(switch.leader.is_some(), "no leader journaled: {switch:?}");
    // A failover the operator asked for (the process restarted fenced:
    // `SENTINEL FAILOVER`) is led by the Sentinel asked, which votes for
    // itself alone; one the Sentinels decided on their own was voted by a
    // majority.
    let asked = events.iter().filter(|e| e.seq > before).any(|e| {
        matches!(&e.body, Event::Decided { intents }
            if intents.iter().any(|p| matches!(p.intent, Intent::SentinelFailover { .. })))
    });
    // The metrics and the replay count it alike: the Sentinels' own as
    // `sentinel`, one asked of them as the operator's.
    let counted = assert_counted_alike(&events);
    if !asked {
        assert!(counted.contains(&FailoverKind::Sentinel), "{counted:?}");
    }
    let majority = SENTINELS / 2 + 1;
    if fault_kind == Fault::FreezeThenKill {
        assert!(!asked, "a frozen primary is the Sentinels' to judge");
    }
    if asked {
        // Asked, the Sentinel leads alone; unless the Sentinels had judged
        // the primary down first (a deleted pod's address stops answering
        // after down-after), when the ask found their failover running.
        assert!(
            switch.voters == vec![switch.leader.clone().unwrap()]
                || switch.voters.len() >= majority,
            "{switch:?}"
        );
    } else {
        assert!(
            switch.voters.len() >= majority,
            "a majority of votes: {switch:?}"
        );
    }
    eprintln!(
        "round {round}: journaled switch at epoch {} led by {:?}, voters {:?} ({})",
        switch.epoch,
        switch.leader,
        switch.voters,
        if asked {
            "asked by the operator"
        } else {
            "decided by the Sentinels"
        }
    );
    assert_never_promoted(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_fails_over_a_killed_primary_and_a_deleted_pod_and_a_lost_sentinel_is_re_pointed()
{
    let env = start("sentinel-faults").await;
    env.apply_yaml(&sentinel_yaml()).await;
    let started = Instant::now();
    let vkc = sentinel_ready(&env, Duration::from_secs(90)).await;
    eprintln!("Ready after {:?}", started.elapsed());
    let status = vkc.status.as_ref().unwrap();
    let sentinel = status.sentinel.as_ref().unwrap();
    assert_eq!(sentinel.master_name, NAME);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "SentinelQuorum" && c.status == "True"),
        "{:?}",
        status.conditions
    );
    // What Sentinel-aware clients need is in the connection Secret.
    let secret = env
        .api::<Secret>()
        .get(&format!("{NAME}-connection"))
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(
        String::from_utf8(data["sentinelMasterName"].0.clone()).unwrap(),
        NAME
    );
    assert!(data.contains_key("sentinelHost") && data.contains_key("sentinels"));

    let password = env.password(NAME).await;
    let sentinels = sentinel_service(&env).await;
    fail_primary(&env, &password, &sentinels, Fault::Kill, 1).await;
    fail_primary(&env, &password, &sentinels, Fault::Delete, 2).await;
    fail_primary(&env, &password, &sentinels, Fault::FreezeThenKill, 3).await;
    // `replay failovers` explains each switch from the journal alone: who
    // led it, who voted, the candidates as last seen.
    let replayed = replay_failovers(&env).await;
    eprintln!("{replayed}");
    assert!(
        replayed.contains("sentinel:           epoch 3, leader"),
        "{replayed}"
    );
    assert!(replayed.contains("votes from"), "{replayed}");
    // The third switch, the Sentinels' own, is a record of its own (after
    // any attempt the operator decided and Sentinel refused meanwhile).
    assert!(
        replayed
            .lines()
            .any(|l| l.starts_with("failover ") && l.contains(": Sentinel ")),
        "{replayed}"
    );

    // A Sentinel's process killed: the kubelet restarts it in place and it
    // comes back with the state it kept (its epoch, peers and primary).
    let killed = sentinel_pods(&env).await.remove(1);
    env.kill(&killed).await;
    env.eventually(Duration::from_secs(30), "the Sentinel restarted", || {
        let api = env.api::<Pod>();
        let killed = killed.clone();
        async move {
            api.get(&killed).await.ok().is_some_and(|p| {
                p.status
                    .and_then(|s| s.container_statuses)
                    .is_some_and(|c| c.iter().any(|c| c.restart_count > 0))
            })
        }
    })
    .await;
    sentinel_ready(&env, Duration::from_secs(60)).await;
    // A Sentinel pod lost: its replacement comes back with the same id
    // and the primary the boot config names, and the quorum holds.
    let lost = sentinel_pods(&env).await.pop().unwrap();
    let old_uid = env.api::<Pod>().get(&lost).await.unwrap().metadata.uid;
    env.delete_pod(&lost).await;
    env.eventually(Duration::from_secs(30), "the Sentinel pod replaced", || {
        let api = env.api::<Pod>();
        let (lost, old_uid) = (lost.clone(), old_uid.clone());
        async move {
            api.get_opt(&lost)
                .await
                .ok()
                .flatten()
                .is_some_and(|p| p.metadata.uid != old_uid)
        }
    })
    .await;
    sentinel_ready(&env, Duration::from_secs(60)).await;
    // A Sentinel that forgot the primary (its state lost, or removed by
    // hand) is pointed at it again by the operator.
    let before = journal_seq(&env.vkc(NAME).await) as u64;
    let forgetful = sentinel_pods(&env).await.remove(0);
    let addr = format!(
        "{}:26379",
        env.pod_addr(&forgetful).await.rsplit_once(':').unwrap().0
    );
    let removed = redis_cli(&addr, &password, &["SENTINEL", "REMOVE", NAME]);
    assert!(removed.contains("OK"), "{removed}");
    let stream = env.stream(NAME).await;
    env.eventually(
        Duration::from_secs(30),
        &format!("{forgetful} pointed at the primary again"),
        || {
            let (env, stream, forgetful) = (&env, stream.clone(), forgetful.clone());
            async move {
                env.journal_events(&stream)
                    .await
                    .iter()
                    .filter(|e| e.seq > before)
                    .any(|e| match &e.body {
                        Event::Decided { intents } => intents.iter().any(|p| {
                            matches!(&p.intent, Intent::SentinelMonitor { sentinel, .. } if *sentinel == forgetful)
                        }),
                        _ => false,
                    })
            }
        },
    )
    .await;
    sentinel_ready(&env, Duration::from_secs(60)).await;
    // Every Sentinel asks for INFO every second, the restarted and the
    // replaced one too (the period is not in a Sentinel's file).
    for pod in sentinel_pods(&env).await {
        let addr = format!(
            "{}:26379",
            env.pod_addr(&pod).await.rsplit_once(':').unwrap().0
        );
        env.eventually(
            Duration::from_secs(30),
            &format!("{pod} asks for INFO every second"),
            || {
                let out = redis_cli(&addr, &password, &["SENTINEL", "DEBUG"]);
                let mut lines = out.lines().map(str::trim);
                let period = lines
                    .by_ref()
                    .find(|l| l.eq_ignore_ascii_case("INFO-PERIOD"))
                    .and(lines.next())
                    .map(str::to_owned);
                async move { period.as_deref() == Some("1000") }
            },
        )
        .await;
    }
    audit_clean(&env).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_sentinel_made_while_the_operator_was_down_is_journaled_on_its_return() {
    let mut env = start("sentinel-operator-down").await;
    env.apply_yaml(&sentinel_yaml()).await;
    let vkc = sentinel_ready(&env, Duration::from_secs(90)).await;
    let old = primary(&vkc);
    let password = env.password(NAME).await;
    let sentinels = sentinel_service(&env).await;
    let probe = sentinel_writer(&sentinels, &password, "down");
    warmed_up(&env, &probe).await;
    let old_ip = env.pod_addr(&old).await;
    env.stop_operator(Stop::Crash).await;
    let fault = Instant::now();
    // The primary hangs (SIGSTOP): its address stops answering and the
    // Sentinels judge it down after downAfterMilliseconds, then elect a
    // leader and fail over by themselves. (A pod deleted or a process
    // killed may come back at the same address, answering as a fenced
    // replica; Sentinel notices that only after down-after plus two INFO
    // periods, and localkube gives a replacement the lowest free address,
    // often the old one. That is why the operator, when it runs, asks
    // Sentinel to fail over at once; here it does not run.)
    env.faults().freeze(NS, &old).await.unwrap();
    // The writer finds the new primary through the Sentinels alone.
    let deadline = Instant::now() + Duration::from_secs(90);
    let new_addr = loop {
        let out = redis_cli(
            &sentinels,
            &password,
            &["SENTINEL", "get-master-addr-by-name", NAME],
        );
        let mut lines = out.lines();
        let addr = format!(
            "{}:{}",
            lines.next().unwrap_or(""),
            lines.next().unwrap_or("")
        );
        if addr != old_ip && !addr.starts_with(':') {
            break addr;
        }
        assert!(
            Instant::now() < deadline,
            "Sentinel did not fail over: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The hung process killed: it restarts in place, fenced, never a
    // second primary.
    env.kill(&old).await;
    let switched = std::time::Instant::now();
    env.wait_acked_after(
        &probe,
        switched,
        "a write acknowledged on Sentinel's new primary",
    )
    .await;
    env.start_operator();
    // The status from before the crash still names the old primary until
    // the operator has taken the journal over and found the switch.
    env.wait_primary_moved(NAME, &old, Duration::from_secs(30))
        .await;
    let vkc = sentinel_ready(&env, Duration::from_secs(60)).await;
    let new = primary(&vkc);
    assert_eq!(env.pod_addr(&new).await, new_addr);
    let log = probe.stop().await;
    check_no_acked_write_lost(&log, fault, &new_addr, &password).await;
    assert_one_primary(&env, &password, &new).await;
    let events = env.journal_events(&env.stream(NAME).await).await;
    let found = switches(&events, 0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].after_the_fact, "{:?}", found[0]);
    let replayed = replay_failovers(&env).await;
    assert!(
        replayed.contains("found after the fact: the operator was not watching"),
        "{replayed}"
    );
    assert_eq!(found[0].from.as_deref(), Some(old.as_str()));
    assert_eq!(found[0].to, new);
    let counted = assert_counted_alike(&events);
    assert_eq!(counted, [FailoverKind::Sentinel]);
    assert_never_promoted(&events);
    audit_clean(&env).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_and_a_config_roll_go_through_sentinel_without_losing_a_write() {
    let env = start("sentinel-planned").await;
    env.apply_yaml(&sentinel_yaml()).await;
    let vkc = sentinel_ready(&env, Duration::from_secs(90)).await;
    let old = primary(&vkc);
    let password = env.password(NAME).await;
    let sentinels = sentinel_service(&env).await;
    let probe = sentinel_writer(&sentinels, &password, "planned");
    warmed_up(&env, &probe).await;
    // A switchover to a chosen replica.
    let target = format!("{NAME}-{}", (ordinal(&old) + 1) % 3);
    let fault = Instant::now();
    request_switchover(&env, NAME, &target).await;
    let moved = env
        .wait_primary_moved(NAME, &old, Duration::from_secs(40))
        .await;
    assert_eq!(primary(&moved), target);
    sentinel_ready(&env, Duration::from_secs(60)).await;
    // A config roll: every pod restarts, the primary last, handed over
    // by Sentinel first.
    let before_roll = primary(&env.vkc(NAME).await);
    env.patch(
        NAME,
        serde_json::json!({"spec": {"config": {"maxmemory-policy": "allkeys-lru"}}}),
    )
    .await;
    env.wait_status(NAME, Duration::from_secs(30), "the roll to start", |v| {
        v.status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(|p| p != logbook_crds::v1alpha1::ClusterPhase::Ready)
    })
    .await;
    let vkc = sentinel_ready(&env, Duration::from_secs(120)).await;
    let after_roll = primary(&vkc);
    assert_ne!(
        after_roll, before_roll,
        "the primary was handed over before its roll"
    );
    let log = probe.stop().await;
    let addr = env.pod_addr(&after_roll).await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &addr, &password).await;
    eprintln!("planned: {acked} acknowledged writes kept, {failed} failed");
    assert_one_primary(&env, &password, &after_roll).await;
    let events = env.journal_events(&env.stream(NAME).await).await;
    let asked = events
        .iter()
        .filter(|e| {
            matches!(&e.body, Event::Decided { intents }
                if intents.iter().any(|p| matches!(p.intent, Intent::SentinelFailover { .. })))
        })
        .count();
    assert!(asked >= 2, "a switchover and a roll ask Sentinel: {asked}");
    assert!(switches(&events, 0).len() >= 2);
    // Each hand-over asked of Sentinel counts once, as the operator's (the
    // roll's as planned), not again as the Sentinels' own when their
    // switch is journaled.
    let counted = assert_counted_alike(&events);
    assert!(
        counted.len() >= 2
            && counted.contains(&FailoverKind::Planned)
            && !counted.contains(&FailoverKind::Sentinel),
        "{counted:?}"
    );
    assert_never_promoted(&events);
    audit_clean(&env).await;
    env.finish().await;
}
