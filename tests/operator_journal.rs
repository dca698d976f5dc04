//! The operator on ConfigMap journals, end to end on localkube with real
//! `valkey-server` pods: the journal, not the operator's memory, carries
//! a cluster through the operator's absence, a change of leader, and
//! damage.
//!
//! - Scaled to zero while the primary dies, a fresh instance takes the
//!   journal over (`OperatorStarted` with the gap), fails over, and loses
//!   no acknowledged write; the journal ConfigMaps verify.
//! - Two operators at once: only the Lease holder writes, acts and
//!   reports; the Lease overwritten mid-failover never yields two
//!   primaries or a forked journal, and the cluster converges under the
//!   new leader.
//! - A flipped byte in one cluster's journal fences that cluster alone
//!   (`JournalHealthy=False` naming the seq, ConfigMap and key; nothing
//!   applied) while another keeps working; after a repair it resumes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use logbook::journal_store::{ConfigMapStore, JournalBackend, layout};
use logbook::leader::DEFAULT_LEASE_NAME;
use logbook_crds::ValkeyCluster;
use logbook_crds::v1alpha1::CONDITION_JOURNAL_HEALTHY;
use logbook_journal::{Envelope, Event, Intent, ReasonCode, StreamId};
use operator_common::*;

const BULK: u64 = 2000;

/// Microseconds since the epoch (Kubernetes Event times).
fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Every Kubernetes Event about ValkeyCluster `name` (not about its
/// StatefulSet or Service of the same name, which a real control plane's
/// controllers report on): (time in µs, reporting instance, reason, action).
async fn cluster_events(env: &Env, name: &str) -> Vec<(i64, String, String, String)> {
    let events: Api<KubeEvent> = env.api();
    let mut out: Vec<(i64, String, String, String)> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.name.as_deref() == Some(name) && r.kind.as_deref() == Some("ValkeyCluster")
            })
        })
        .map(|e| {
            let at = e
                .series
                .as_ref()
                .map(|s| s.last_observed_time.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .map_or(0, |t| t.as_microsecond());
            (
                at,
                e.reporting_instance.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.action.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// (holder, leaseTransitions) of the operators' Lease.
async fn lease(env: &Env) -> Option<(String, i32)> {
    let lease = env
        .api::<Lease>()
        .get_opt(DEFAULT_LEASE_NAME)
        .await
        .unwrap()?;
    let spec = lease.spec.unwrap_or_default();
    Some((
        spec.holder_identity.unwrap_or_default(),
        spec.lease_transitions.unwrap_or(0),
    ))
}

/// Overwrites the Lease's holder with `to` in a new term, as a person with
/// `kubectl edit` would; returns the new epoch.
async fn take_lease(env: &Env, to: &str) -> u64 {
    let leases = env.api::<Lease>();
    loop {
        let mut lease = leases.get(DEFAULT_LEASE_NAME).await.unwrap();
        let spec = lease.spec.as_mut().unwrap();
        let epoch = spec.lease_transitions.unwrap_or(0) + 1;
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = Some(to.to_owned());
        spec.lease_transitions = Some(epoch);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        match leases
            .replace(DEFAULT_LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => return u64::try_from(epoch).unwrap(),
            // A renewal landed between the read and the write.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("overwriting the Lease: {e}"),
        }
    }
}

/// What a [`RoleWatch`] saw.
#[derive(Debug, Default, Clone)]
struct RoleHistory {
    /// Rounds in which every pod with an address was asked.
    rounds: usize,
    /// Rounds in which more than one pod answered `ROLE` with "master":
    /// the round's number, when (since the watch started), which pods.
    two_primaries: Vec<(usize, Duration, Vec<String>)>,
    /// Every pod seen answering "master", in order of first sight.
    primaries: Vec<String>,
}

/// Asks `ROLE` of every pod of a cluster, all at once, every 50 ms.
struct RoleWatch {
    history: Arc<Mutex<RoleHistory>>,
    task: tokio::task::JoinHandle<()>,
}

impl RoleWatch {
    fn start(env: &Env, name: &str, password: &str) -> Self {
        let history = Arc::new(Mutex::new(RoleHistory::default()));
        let shared = history.clone();
        let pods: Api<Pod> = env.api();
        let selector = format!("valkey.logbook.dev/cluster={name}");
        let password = password.to_owned();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await {
                    let asked: Vec<(String, String)> = list
                        .items
                        .iter()
                        .filter_map(|p| {
                            let ip = p.status.as_ref()?.pod_ip.clone()?;
                            Some((p.name_any(), format!("{ip}:{PORT}")))
                        })
                        .collect();
                    let answers = futures::future::join_all(asked.iter().map(|(pod, addr)| {
                        let password = password.clone();
                        async move { (pod.clone(), try_role(addr, &password).await) }
                    }))
                    .await;
                    let masters: Vec<String> = answers
                        .into_iter()
                        .filter(|(_, r)| r.as_ref().is_some_and(|(kind, _)| kind == "master"))
                        .map(|(pod, _)| pod)
                        .collect();
                    let mut h = shared.lock().unwrap();
                    h.rounds += 1;
                    for pod in &masters {
                        if !h.primaries.contains(pod) {
                            h.primaries.push(pod.clone());
                        }
                    }
                    if masters.len() > 1 {
                        let round = h.rounds;
                        h.two_primaries.push((round, started.elapsed(), masters));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { history, task }
    }

    fn stop(self) -> RoleHistory {
        self.task.abort();
        self.history.lock().unwrap().clone()
    }
}

impl RoleHistory {
    /// Two primaries seen in two rounds in a row. A switchover promotes
    /// its target a moment before it demotes the old primary (whose writes
    /// it holds paused meanwhile), which one round may catch; a split brain
    /// lasts until someone repairs it.
    fn two_primaries_in_a_row(&self) -> Vec<(usize, Duration, Vec<String>)> {
        self.two_primaries
            .windows(2)
            .filter(|w| w[1].0 == w[0].0 + 1)
            .map(|w| w[1].clone())
            .collect()
    }
}

/// The journal ConfigMaps of `stream`: name → `journal-object` label;
/// each is checked to carry the stream's and the cluster's labels.
async fn journal_objects(env: &Env, stream: &StreamId, cluster: &str) -> BTreeMap<String, String> {
    let maps = env
        .api::<ConfigMap>()
        .list(&ListParams::default().labels(&format!("{}={stream}", layout::JOURNAL_LABEL)))
        .await
        .unwrap()
        .items;
    maps.iter()
        .map(|cm| {
            let labels = cm.labels();
            assert_eq!(
                labels
                    .get(logbook::resources::labels::CLUSTER)
                    .map(String::as_str),
                Some(cluster),
                "{} is not labelled with its cluster",
                cm.name_any()
            );
            (
                cm.name_any(),
                labels
                    .get(layout::OBJECT_LABEL)
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The events of one stream form one chain (the reader checks every CRC
/// and hash link from seq 1) whose epochs never go down.
fn assert_one_chain(events: &[Envelope], what: &str) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "{what}: seq gap");
    }
    for pair in events.windows(2) {
        assert!(
            pair[1].epoch >= pair[0].epoch,
            "{what}: epoch goes down at seq {}: {} after {} ({:?} after {:?})",
            pair[1].seq,
            pair[1].epoch,
            pair[0].epoch,
            pair[1].body,
            pair[0].body
        );
    }
}

/// `OperatorStarted` events of a stream: (seq, instance, epoch, gap_ms).
fn takeovers(events: &[Envelope]) -> Vec<(u64, String, u64, Option<u64>)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::OperatorStarted {
                instance,
                epoch,
                gap_ms,
                ..
            } => Some((e.seq, instance.clone(), *epoch, *gap_ms)),
            _ => None,
        })
        .collect()
}

/// `LeadershipAcquired` events of the operator stream: (holder, epoch).
fn leaderships(events: &[Envelope]) -> Vec<(String, u64)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            Event::LeadershipAcquired { holder, epoch } => Some((holder.clone(), *epoch)),
            _ => None,
        })
        .collect()
}

/// The reason code of the decision that ordered the promotion of `pod`.
fn promotion_reason(events: &[Envelope], pod: &str) -> Option<ReasonCode> {
    events.iter().rev().find_map(|e| match &e.body {
        Event::Decided { intents } => intents.iter().find_map(|p| match &p.intent {
            Intent::PromoteReplica { pod: promoted, .. } if promoted == pod => {
                Some(p.reason.code.clone())
            }
            _ => None,
        }),
        _ => None,
    })
}

/// Waits until `name`'s status has condition `type_` with `status`.
async fn wait_condition(
    env: &Env,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> ValkeyCluster {
    env.wait_status(name, timeout, &format!("{type_}={status}"), |v| {
        v.status
            .as_ref()
            .and_then(|s| s.condition(type_))
            .is_some_and(|c| c.status == status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_to_zero_while_the_primary_dies_a_fresh_instance_takes_the_journal_over() {
    let mut env = Env::start_without_operator("scale-zero").await;
    env.journal = JournalBackend::ConfigMap;
    let first = env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old = primary(&vkc);
    let stream = env.stream("demo").await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;
    write_keys(&service, &password, "bulk", BULK).await;
    let probe = write_probe(&service, &password, "probe");
    first_acks(&env, &probe).await;

    // Scaled to zero: no operator at all while the primary dies.
    env.stop_operator(Stop::Graceful).await;
    let away = Instant::now();
    let head = env.journal_head(&stream).await;
    let fault = Instant::now();
    env.kill(&old).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The kubelet restarted it in place, fenced: nobody takes writes.
    let (kind, _) = role(&env.pod_addr(&old).await, &password).await;
    assert_eq!(kind, "slave", "the restarted primary booted as a primary");
    assert_eq!(
        env.journal_head(&stream).await,
        head,
        "the journal moved with no operator running"
    );

    let away_for = away.elapsed();
    let second = env.start_operator();
    assert_ne!(first, second);
    let restarted = Instant::now();
    let moved = env
        .wait_primary_moved("demo", &old, Duration::from_secs(20))
        .await;
    let new = primary(&moved);
    let failed_over_in = restarted.elapsed();
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(30)).await;
    assert_eq!(primary(&vkc), new);
    let after = Instant::now();
    env.wait_acked_after(&probe, after, "a write on the new primary")
        .await;
    let log = probe.stop().await;
    let new_addr = env.pod_addr(&new).await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, &password).await;
    assert_eq!(count_missing(&new_addr, &password, "bulk", BULK).await, 0);
    let (kind, follows) = role(&env.pod_addr(&old).await, &password).await;
    assert_eq!(
        (kind.as_str(), follows.as_deref()),
        ("slave", Some(new_addr.rsplit_once(':').unwrap().0))
    );

    // The status names the failover, and the journal event it came from.
    let record = vkc.status.as_ref().unwrap().last_failover.clone().unwrap();
    assert_eq!(record.from.as_deref(), Some(old.as_str()), "{record:?}");
    assert_eq!(record.to.as_deref(), Some(new.as_str()), "{record:?}");
    let events = env.journal_events(&stream).await;
    assert_one_chain(&events, "demo");
    let promoted = events
        .iter()
        .find(|e| i64::try_from(e.seq).ok() == record.seq)
        .unwrap_or_else(|| panic!("lastFailover.seq {:?} is not in the journal", record.seq));
    assert!(
        matches!(&promoted.body, Event::ReplicaPromoted { pod, from, .. }
            if *pod == new && from.as_deref() == Some(old.as_str())),
        "lastFailover.seq points at {:?}",
        promoted.body
    );
    let reason = promotion_reason(&events, &new).expect("the promotion was decided");
    assert!(
        matches!(reason, ReasonCode::PrimaryFailed { death: true, .. }),
        "promotion of {new} decided for {reason:?}"
    );
    if record.reason.is_none() {
        eprintln!(
            "NOTE: status.lastFailover.reason is not set (the journal says {reason:?}): core/src/decide/status.rs renders reason: None"
        );
    }

    // The takeover is journaled in the cluster's stream, by the fresh
    // instance, with the time it was away, in a later term.
    let started = takeovers(&events);
    let (seq, instance, epoch, gap_ms) = started.last().cloned().expect("no OperatorStarted");
    assert_eq!(instance, second, "{started:?}");
    assert!(
        started.iter().all(|(_, i, _, _)| *i != first),
        "the first instance took over a stream it created: {started:?}"
    );
    let gap_ms = gap_ms.expect("the takeover of a non-empty stream has a gap");
    assert!(
        u128::from(gap_ms) >= away_for.as_millis(),
        "gap {gap_ms} ms < {away_for:?} away"
    );
    assert!(
        seq > head,
        "OperatorStarted at {seq}, before the head {head}"
    );
    let operator_events = env.journal_events(&StreamId::operator()).await;
    assert_one_chain(&operator_events, "operator");
    let leaders = leaderships(&operator_events);
    let first_epoch = leaders
        .iter()
        .find(|(h, _)| *h == first)
        .map(|(_, e)| *e)
        .unwrap_or_else(|| panic!("{first} never led: {leaders:?}"));
    assert!(
        epoch > first_epoch,
        "took over at epoch {epoch}, not after {first}'s {first_epoch}"
    );
    assert!(
        events
            .iter()
            .filter(|e| e.seq >= seq)
            .all(|e| e.epoch == epoch),
        "events after the takeover are not all at epoch {epoch}"
    );

    // The journal is in ConfigMaps: the head, no more, and it verifies.
    let objects = journal_objects(&env, &stream, "demo").await;
    assert_eq!(
        objects.get(&layout::head_name(&stream)).map(String::as_str),
        Some(layout::KIND_HEAD),
        "{objects:?}"
    );
    let streams = env.verify_journal().await;
    assert!(
        streams
            .iter()
            .any(|(s, n)| s == stream.as_str() && *n >= seq),
        "{streams:?}"
    );
    eprintln!(
        "scale-zero: {old} -> {new} {failed_over_in:?} after the restart, away {away_for:?}, gap {gap_ms} ms, epochs {first_epoch} -> {epoch}; {acked} acknowledged writes kept, {failed} failed; journal objects {objects:?}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_only_the_lease_holder_acts_and_a_stolen_lease_forks_nothing() {
    let mut env = Env::start_without_operator("two").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator_as("op-a");
    env.eventually(Duration::from_secs(10), "op-a holds the Lease", || async {
        lease(&env).await.is_some_and(|(h, _)| h == "op-a")
    })
    .await;
    env.start_operator_as("op-b");
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let old = primary(&vkc);
    let stream = env.stream("demo").await;
    let password = env.password("demo").await;
    let service = env.service_addr("demo").await;

    // op-a alone acted: op-b wrote nothing, reported nothing.
    let (_, first_epoch) = lease(&env).await.unwrap();
    let first_epoch = u64::try_from(first_epoch).unwrap();
    let events = env.journal_events(&stream).await;
    assert_one_chain(&events, "demo");
    assert!(
        events.iter().all(|e| e.epoch == first_epoch),
        "events outside op-a's epoch {first_epoch}"
    );
    assert!(takeovers(&events).is_empty(), "{:?}", takeovers(&events));
    let reported = cluster_events(&env, "demo").await;
    assert!(!reported.is_empty(), "no Kubernetes Event about demo");
    assert!(
        reported.iter().all(|(_, i, _, _)| i == "op-a"),
        "Events not from the leader: {reported:?}"
    );
    let b_logs = env.operator_logs("op-b");
    for line in ["intent succeeded", "taking the journal over"] {
        assert!(
            b_logs.grep(line).is_empty(),
            "the follower logged {line:?}: {:?}",
            b_logs.grep(line)
        );
    }
    assert_eq!(
        leaderships(&env.journal_events(&StreamId::operator()).await),
        [("op-a".to_owned(), first_epoch)]
    );

    // The primary dies; the Lease is taken from op-a the moment it has
    // decided the failover, while its intents run.
    let probe = write_probe(&service, &password, "probe");
    first_acks(&env, &probe).await;
    let roles = RoleWatch::start(&env, "demo", &password);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let since = now_micros();
    let fault = Instant::now();
    env.kill(&old).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let decided =
            cluster_events(&env, "demo")
                .await
                .into_iter()
                .any(|(at, _, reason, action)| {
                    at >= since
                        && action == "Decided"
                        && matches!(reason.as_str(), "FenceNode" | "PromoteReplica")
                });
        if decided {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failover decided\n{}",
            env.dump("demo").await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stolen_at = now_micros();
    let epoch = take_lease(&env, "op-b").await;
    let stolen = Instant::now();
    assert_eq!(epoch, first_epoch + 1);

    // op-b takes the journal over and the cluster converges under it.
    env.eventually(
        Duration::from_secs(15),
        "op-b's OperatorStarted",
        || async {
            takeovers(&env.journal_events(&stream).await)
                .iter()
                .any(|(_, i, _, _)| i == "op-b")
        },
    )
    .await;
    let vkc = env
        .wait_primary_moved("demo", &old, Duration::from_secs(20))
        .await;
    let new = primary(&vkc);
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(30)).await;
    assert_eq!(primary(&vkc), new);
    env.wait_acked_after(&probe, Instant::now(), "a write on the new primary")
        .await;
    let converged = stolen.elapsed();
    // A takeover that raced op-a's last appends is fenced by the head's
    // compare-and-swap and retried after a 5 s pause: still well within
    // this bound.
    assert!(
        converged < Duration::from_secs(15),
        "converged only {converged:?} after the Lease was taken\n--- op-b:\n{}\n--- op-a:\n{}",
        env.operator_logs("op-b").tail(60).join("\n"),
        env.operator_logs("op-a").tail(30).join("\n")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = roles.stop();
    let log = probe.stop().await;

    // Never two primaries.
    assert!(seen.rounds >= 20, "only {} ROLE rounds", seen.rounds);
    // No switchover here: not even for one round.
    assert!(
        seen.two_primaries.is_empty(),
        "two pods answered ROLE master at once: {:?}\n{}",
        seen.two_primaries,
        env.dump("demo").await
    );
    assert_eq!(seen.primaries, [old.clone(), new.clone()], "{seen:?}");
    let new_addr = env.pod_addr(&new).await;
    let (acked, failed) = check_no_acked_write_lost(&log, fault, &new_addr, &password).await;

    // One chain: epochs never go down, op-b's term after op-a's, and
    // nothing of op-a's term after op-b took over.
    let events = env.journal_events(&stream).await;
    assert_one_chain(&events, "demo");
    let started = takeovers(&events);
    assert_eq!(
        started
            .iter()
            .map(|(_, i, e, _)| (i.as_str(), *e))
            .collect::<Vec<_>>(),
        [("op-b", epoch)],
        "{started:?}"
    );
    let (takeover_seq, ..) = started[0];
    assert!(
        events
            .iter()
            .all(|e| (e.seq < takeover_seq) == (e.epoch == first_epoch)),
        "events of op-a's epoch after op-b's takeover at seq {takeover_seq}"
    );
    // One promotion replaced the dead primary (by op-a, or by op-b after
    // op-a's was abandoned) — never one by each.
    let promotions: Vec<(u64, String, u64)> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::ReplicaPromoted { pod, from, .. } if from.as_deref() == Some(old.as_str()) => {
                Some((e.seq, pod.clone(), e.epoch))
            }
            _ => None,
        })
        .collect();
    assert!(promotions.len() <= 1, "{promotions:?}");
    let operator_events = env.journal_events(&StreamId::operator()).await;
    assert_one_chain(&operator_events, "operator");
    assert_eq!(
        leaderships(&operator_events),
        [("op-a".to_owned(), first_epoch), ("op-b".to_owned(), epoch)]
    );
    env.verify_journal().await;

    // op-a stepped down within a renew period of the theft and reported
    // nothing after; the Lease stays with op-b.
    assert!(
        !env.operator_logs("op-a").grep("stepping down").is_empty(),
        "op-a never stepped down"
    );
    let late: Vec<_> = cluster_events(&env, "demo")
        .await
        .into_iter()
        .filter(|(at, i, _, _)| i == "op-a" && *at > stolen_at + 2_000_000)
        .collect();
    assert!(
        late.is_empty(),
        "op-a reported after losing the Lease: {late:?}"
    );
    assert_eq!(lease(&env).await.map(|(h, _)| h).as_deref(), Some("op-b"));
    eprintln!(
        "two operators, failover: {old} -> {new}; Lease taken at epoch {epoch}, converged {converged:?} after (op-b fenced {} time(s) by op-a's last appends); promotions {promotions:?}, OperatorStarted at seq {takeover_seq}; {} ROLE rounds; {acked} acknowledged writes kept, {failed} failed",
        env.operator_logs("op-b").grep("fenced:").len(),
        seen.rounds
    );

    // A configuration roll under op-b, and the Lease handed back to op-a
    // as soon as op-b has decided the roll's switchover (the replicas are
    // rolled first, then the primary hands over to one of them): op-b
    // carries on until it notices, so the switchover's outcome may be
    // journaled by op-b, or found done by op-a.
    let old_revision = update_revision(&env, "demo").await;
    let writer = RetryingWriter::start(&service, &password, "roll", Duration::from_secs(10));
    env.eventually(Duration::from_secs(10), "acknowledged writes", || {
        let n = writer.acked_count();
        async move { n >= 20 }
    })
    .await;
    let roles = RoleWatch::start(&env, "demo", &password);
    let since = now_micros();
    env.patch(
        "demo",
        serde_json::json!({"spec": {"config": {"maxmemory-policy": "allkeys-lru"}}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let decided =
            cluster_events(&env, "demo")
                .await
                .into_iter()
                .any(|(at, i, reason, action)| {
                    at >= since && i == "op-b" && action == "Decided" && reason == "Switchover"
                });
        if decided {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "op-b decided no switchover\n{}",
            env.dump("demo").await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let handed_back_at = now_micros();
    let third_epoch = take_lease(&env, "op-a").await;
    let handed_back = Instant::now();
    assert_eq!(third_epoch, epoch + 1);
    let new_revision = wait_rolled(&env, "demo", &old_revision, Duration::from_secs(60)).await;
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(20)).await;
    let rolled = handed_back.elapsed();
    // op-b may have finished the roll before it noticed; op-a takes the
    // journal over all the same (after a 5 s pause if op-b's last appends
    // fenced it).
    env.eventually(
        Duration::from_secs(15),
        "op-a's OperatorStarted",
        || async {
            takeovers(&env.journal_events(&stream).await)
                .iter()
                .any(|(_, i, e, _)| i == "op-a" && *e == third_epoch)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = roles.stop();
    let log = writer.stop().await;
    assert!(seen.rounds >= 20, "only {} ROLE rounds", seen.rounds);
    assert!(
        seen.two_primaries_in_a_row().is_empty(),
        "two pods answered ROLE master in consecutive rounds: {:?}\n{}",
        seen.two_primaries,
        env.dump("demo").await
    );
    assert!(
        log.given_up.is_empty(),
        "writes failed for good: {:?}; errors: {:?}",
        log.given_up,
        log.errors
    );
    let last = primary(&vkc);
    let missing = logbook_bench::missing_keys(
        &env.pod_addr(&last).await,
        Some(&logbook::valkey::Password::new(password.clone())),
        "roll",
        &log.acked,
    )
    .await
    .unwrap();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");

    // Still one chain, three terms in order, each takeover journaled once.
    let events = env.journal_events(&stream).await;
    assert_one_chain(&events, "demo");
    let started = takeovers(&events);
    assert_eq!(
        started
            .iter()
            .map(|(_, i, e, _)| (i.as_str(), *e))
            .collect::<Vec<_>>(),
        [("op-b", epoch), ("op-a", third_epoch)],
        "{started:?}"
    );
    let (back_seq, ..) = started[1];
    assert!(
        events
            .iter()
            .filter(|e| e.seq >= back_seq)
            .all(|e| e.epoch == third_epoch),
        "events of an older epoch after op-a took the journal back at seq {back_seq}"
    );
    let operator_events = env.journal_events(&StreamId::operator()).await;
    assert_one_chain(&operator_events, "operator");
    assert_eq!(
        leaderships(&operator_events),
        [
            ("op-a".to_owned(), first_epoch),
            ("op-b".to_owned(), epoch),
            ("op-a".to_owned(), third_epoch)
        ]
    );
    env.verify_journal().await;
    assert!(
        !env.operator_logs("op-b").grep("stepping down").is_empty(),
        "op-b never stepped down"
    );
    let late: Vec<_> = cluster_events(&env, "demo")
        .await
        .into_iter()
        .filter(|(at, i, _, _)| i == "op-b" && *at > handed_back_at + 2_000_000)
        .collect();
    assert!(
        late.is_empty(),
        "op-b reported after losing the Lease: {late:?}"
    );
    let rolls: Vec<(u64, String, u64)> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::Decided { intents } => intents.iter().find_map(|p| match &p.intent {
                Intent::RollPod { pod, .. } => Some((e.seq, format!("roll {pod}"), e.epoch)),
                Intent::Switchover { to, .. } => {
                    Some((e.seq, format!("switch over to {to}"), e.epoch))
                }
                _ => None,
            }),
            _ => None,
        })
        .collect();
    let found_done: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            Event::IntentSucceeded { detail, .. } if detail.starts_with("found done") => {
                Some(detail.as_str())
            }
            _ => None,
        })
        .collect();
    eprintln!(
        "two operators, roll: to {new_revision}, Lease back to op-a at epoch {third_epoch}, rolled {rolled:?} after; decisions (seq, what, epoch) {rolls:?}, found done {found_done:?}; op-a took over at seq {back_seq}; {} ROLE rounds, two primaries in single rounds {:?}; {} writes acknowledged, {} retries",
        seen.rounds,
        seen.two_primaries,
        log.acked.len(),
        log.retries
    );
    env.finish().await;
}

/// The StatefulSet's update revision.
async fn update_revision(env: &Env, name: &str) -> String {
    env.api::<StatefulSet>()
        .get(name)
        .await
        .unwrap()
        .status
        .and_then(|s| s.update_revision)
        .unwrap()
}

/// Waits until every pod runs a revision other than `old`, the
/// StatefulSet's current one, and the cluster is Ready; returns it.
async fn wait_rolled(env: &Env, name: &str, old: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let revision = update_revision(env, name).await;
        let pods = env.pods(name).await;
        let vkc = env.vkc(name).await;
        if revision != old
            && pods.iter().all(|p| {
                p.labels().get("controller-revision-hash") == Some(&revision)
                    && p.metadata.deletion_timestamp.is_none()
            })
            && is_ready(&vkc, pods.len())
        {
            return revision;
        }
        assert!(
            Instant::now() < deadline,
            "the roll did not finish\n{}",
            env.dump(name).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resource versions of what the operator manages for `name`, and each
/// pod's uid and role label: unchanged means untouched.
async fn managed_state(env: &Env, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let sts = env.api::<StatefulSet>().get(name).await.unwrap();
    out.insert(
        format!("StatefulSet {name}"),
        format!(
            "rv={:?} replicas={:?}",
            sts.metadata.resource_version,
            sts.spec.and_then(|s| s.replicas)
        ),
    );
    for svc in [name.to_owned(), format!("{name}-read")] {
        let s = env.api::<Service>().get(&svc).await.unwrap();
        out.insert(
            format!("Service {svc}"),
            format!("{:?}", s.metadata.resource_version),
        );
    }
    for cm in [format!("{name}-config"), format!("{name}-boot")] {
        let c = env.api::<ConfigMap>().get(&cm).await.unwrap();
        out.insert(
            format!("ConfigMap {cm}"),
            format!("{:?}", c.metadata.resource_version),
        );
    }
    for pod in env.pods(name).await {
        out.insert(
            format!("Pod {}", pod.name_any()),
            format!(
                "uid={:?} role={:?}",
                pod.metadata.uid,
                pod.labels().get("valkey.logbook.dev/role")
            ),
        );
    }
    out
}

/// Whether the `logbook` binary has `journal repair` (it is being written
/// beside this test).
fn repair_command_exists() -> bool {
    std::process::Command::new(logbook_bin())
        .args(["journal", "repair", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `logbook journal repair <args>`; returns (success, stdout+stderr).
async fn logbook_journal_repair(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(logbook_bin())
            .args(["journal", "repair"])
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_journal_fences_its_cluster_alone_until_it_is_repaired() {
    let mut env = Env::start_without_operator("corrupt").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml("alpha", 2)).await;
    env.apply_yaml(&replication_yaml("beta", 2)).await;
    env.wait_ready("alpha", 2, Duration::from_secs(40)).await;
    env.wait_ready("beta", 2, Duration::from_secs(40)).await;
    let stream = env.stream("alpha").await;
    env.stop_operator(Stop::Graceful).await;

    // One byte flipped inside the payload of a frame near the end of
    // alpha's journal (not the last one, which a repair would take for a
    // torn write), through the API.
    let store = ConfigMapStore::new(env.client.clone(), NS);
    let bad_seq = env.journal_head(&stream).await - 2;
    let (map, key) = store.locate(&stream, bad_seq).await.unwrap().unwrap();
    let maps = env.api::<ConfigMap>();
    let mut cm = maps.get(&map).await.unwrap();
    let frame = &mut cm.binary_data.as_mut().unwrap().get_mut(&key).unwrap().0;
    let at = frame.len() - 3;
    let original = frame[at];
    frame[at] ^= 0x20;
    maps.replace(&map, &PostParams::default(), &cm)
        .await
        .unwrap();
    let report = logbook_journal::verify::verify(&store.pin(&stream).await.unwrap(), &stream)
        .await
        .unwrap();
    let problem = report.problem.clone().expect("the flip went unnoticed");
    assert_eq!(problem.seq, bad_seq, "{problem:?}");
    let damaged = maps.get(&map).await.unwrap().metadata.resource_version;
    let before = managed_state(&env, "alpha").await;

    let started = now_micros();
    env.start_operator();
    let vkc = wait_condition(
        &env,
        "alpha",
        CONDITION_JOURNAL_HEALTHY,
        "False",
        Duration::from_secs(20),
    )
    .await;
    let condition = vkc
        .status
        .as_ref()
        .unwrap()
        .condition(CONDITION_JOURNAL_HEALTHY)
        .unwrap()
        .clone();
    assert_eq!(condition.reason, "JournalCorrupt");
    for expected in [
        format!("seq {bad_seq}"),
        format!("ConfigMap {NS}/{map}, key {key}"),
        "logbook journal repair --cluster alpha".to_owned(),
    ] {
        assert!(
            condition.message.contains(&expected),
            "{expected:?} not in {:?}",
            condition.message
        );
    }
    // A change asked of alpha now must wait for the repair.
    env.patch("alpha", serde_json::json!({"spec": {"replicas": 3}}))
        .await;

    // beta keeps working meanwhile: it scales.
    env.patch("beta", serde_json::json!({"spec": {"replicas": 3}}))
        .await;
    env.wait_ready("beta", 3, Duration::from_secs(40)).await;

    // alpha was not touched: nothing applied, nothing journaled, nothing
    // reported.
    assert_eq!(managed_state(&env, "alpha").await, before);
    assert_eq!(
        maps.get(&map).await.unwrap().metadata.resource_version,
        damaged,
        "alpha's journal was written"
    );
    let reported: Vec<_> = cluster_events(&env, "alpha")
        .await
        .into_iter()
        .filter(|(at, ..)| *at >= started)
        .collect();
    assert!(reported.is_empty(), "Events about alpha: {reported:?}");
    let status = env.vkc("alpha").await.status.unwrap();
    let phase_while_untrusted = status.phase;
    assert_eq!(
        status
            .condition(CONDITION_JOURNAL_HEALTHY)
            .map(|c| c.status.as_str()),
        Some("False")
    );

    // The repair: the command the condition names, or (without it) the
    // original byte put back.
    let repaired = Instant::now();
    let how = if repair_command_exists() {
        let kubeconfig = env.write_kubeconfig().display().to_string();
        let args = |apply: Option<String>| {
            let mut args: Vec<String> = [
                "--kubeconfig",
                &kubeconfig,
                "--namespace",
                NS,
                "--cluster",
                "alpha",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            if let Some(apply) = apply {
                args.extend(["--apply".to_owned(), apply]);
            }
            args
        };
        let (ok, printed) = logbook_journal_repair(args(None)).await;
        assert!(
            ok && printed.contains(&format!("seq={bad_seq}")) && printed.contains(&map),
            "the dry run does not name seq {bad_seq} in {map}:\n{printed}"
        );
        // The repair it proposes first, as the printed command says.
        let cut = printed
            .rsplit_once("--apply ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no repair proposed:\n{printed}"))
            .to_owned();
        let (ok, printed) = logbook_journal_repair(args(Some(cut.clone()))).await;
        assert!(ok, "repair {cut}:\n{printed}");
        format!("logbook journal repair --apply {cut}")
    } else {
        let mut cm = maps.get(&map).await.unwrap();
        cm.binary_data.as_mut().unwrap().get_mut(&key).unwrap().0[at] = original;
        maps.replace(&map, &PostParams::default(), &cm)
            .await
            .unwrap();
        "the original byte restored".to_owned()
    };
    let report = logbook_journal::verify::verify(&store.pin(&stream).await.unwrap(), &stream)
        .await
        .unwrap();
    assert!(report.is_ok(), "still damaged after {how}: {report:?}");

    // The operator looks again within its 30 s retry and resumes: the
    // condition clears and the change waiting since applies.
    wait_condition(
        &env,
        "alpha",
        CONDITION_JOURNAL_HEALTHY,
        "True",
        Duration::from_secs(40),
    )
    .await;
    let healthy_after = repaired.elapsed();
    env.wait_ready("alpha", 3, Duration::from_secs(40)).await;
    env.wait_ready("beta", 3, Duration::from_secs(10)).await;
    env.verify_journal().await;
    eprintln!(
        "corrupt: seq {bad_seq} in {map} key {key} ({:?}); phase {phase_while_untrusted:?} while untrusted, condition {:?}; healthy {healthy_after:?} after {how}",
        problem.kind, condition.message
    );
    env.finish().await;
}
