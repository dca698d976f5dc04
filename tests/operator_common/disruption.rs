//! "Run a writer, take a pod away, check": the shared steps of the tests
//! that take a Replication cluster's pod away in each way Kubernetes can
//! (tests/operator_disruptions.rs), and of the tests of several nodes.
//!
//! [`UnderWriter::start`] writes bulk keys, starts a write probe through
//! the client Service (`SET` then `WAIT 1 1000` every 10 ms) and a role
//! watch that asks `ROLE` of every address any of the cluster's pods ever
//! had (a force-deleted pod's process may outlive its API object);
//! [`UnderWriter::check`] stops both after the fault and checks that no
//! acknowledged write is lost and that two pods never answered `master`
//! in two rounds in a row, and measures the write outage.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::*;

/// What the role watch saw.
#[derive(Debug, Clone, Default)]
pub struct RoleHistory {
    /// Rounds of `ROLE` asked of every known address.
    pub rounds: usize,
    /// Each round in which more than one address answered `master`: its
    /// number, when, and the `pod@ip:port` of each.
    pub two_primaries: Vec<(usize, Duration, Vec<String>)>,
    /// Every address seen, with its pod's name.
    pub addresses: BTreeMap<String, String>,
}

impl RoleHistory {
    /// Two primaries in two rounds in a row (rounds 50 ms apart). A
    /// switchover promotes its target a moment before it demotes the old
    /// primary, whose writes it holds paused meanwhile, which one round
    /// may catch; two writable primaries last until someone repairs them.
    pub fn two_primaries_in_a_row(&self) -> Vec<(usize, Duration, Vec<String>)> {
        self.two_primaries
            .windows(2)
            .filter(|w| w[1].0 == w[0].0 + 1)
            .map(|w| w[1].clone())
            .collect()
    }
}

/// Asks `ROLE` of every address the cluster's pods ever had, every 50 ms
/// (each answer awaited 300 ms at most).
pub struct RoleWatch {
    history: Arc<Mutex<RoleHistory>>,
    task: tokio::task::JoinHandle<()>,
}

impl RoleWatch {
    pub fn start(env: &Env, cluster: &str, password: &str) -> Self {
        let pods: Api<Pod> = env.api();
        let selector =
            format!("app.kubernetes.io/name=valkey,valkey.logbook.dev/cluster={cluster}");
        let history = Arc::new(Mutex::new(RoleHistory::default()));
        let shared = history.clone();
        let password = password.to_owned();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await {
                    let mut h = shared.lock().unwrap();
                    for p in &list.items {
                        if let Some(ip) = p.status.as_ref().and_then(|s| s.pod_ip.clone()) {
                            h.addresses.insert(format!("{ip}:{PORT}"), p.name_any());
                        }
                    }
                }
                let asked: Vec<(String, String)> = shared
                    .lock()
                    .unwrap()
                    .addresses
                    .iter()
                    .map(|(a, p)| (a.clone(), p.clone()))
                    .collect();
                let answers = futures::future::join_all(asked.iter().map(|(addr, pod)| {
                    let password = password.clone();
                    async move {
                        // 300 ms at most: a gone address must not slow
                        // the rounds (two rounds in a row is the rule).
                        let role = tokio::time::timeout(
                            Duration::from_millis(300),
                            try_role(addr, &password),
                        )
                        .await
                        .ok()
                        .flatten()
                        .map(|r| r.0);
                        (format!("{pod}@{addr}"), role)
                    }
                }))
                .await;
                let masters: Vec<String> = answers
                    .into_iter()
                    .filter(|(_, r)| r.as_deref() == Some("master"))
                    .map(|(who, _)| who)
                    .collect();
                {
                    let mut h = shared.lock().unwrap();
                    h.rounds += 1;
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

    pub fn stop(self) -> RoleHistory {
        self.task.abort();
        self.history.lock().unwrap().clone()
    }
}

/// What a disruption under a writer measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Writes acknowledged (by the primary and a replica) over the run.
    pub acked: usize,
    /// Writes that failed (refused, timed out, not replicated in time).
    pub failed: usize,
    /// Acknowledged writes that started after the fault.
    pub acked_after: usize,
    /// From the fault to the end of the first acknowledged write that
    /// started after it.
    pub first_ack_after: Option<Duration>,
    /// The longest time without an acknowledgement from the fault on (the
    /// outage the writer saw; the old primary may take a few writes
    /// before it is fenced, so this, not `first_ack_after`, is the
    /// figure of a handed-over primary).
    pub outage: Option<Duration>,
    /// `ROLE` rounds asked by the role watch.
    pub role_rounds: usize,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()));
        write!(
            f,
            "{} writes acknowledged ({} after the fault), 0 lost, {} failed; first acknowledged write after {}, longest without one {}; {} ROLE rounds, never two primaries",
            self.acked,
            self.acked_after,
            self.failed,
            ms(self.first_ack_after),
            ms(self.outage),
            self.role_rounds
        )
    }
}

/// The longest time between two acknowledgements (each at its attempt's
/// end) from `at` on: from the last acknowledgement at or before `at` (or
/// `at` itself) to the next, and so on to the last.
pub fn ack_outage(log: &logbook_bench::WriteLog, at: Instant) -> Option<Duration> {
    let mut acks: Vec<Instant> = log
        .attempts
        .iter()
        .filter(|a| a.acked)
        .map(|a| a.ended)
        .collect();
    acks.sort();
    let start = acks
        .iter()
        .copied()
        .filter(|t| *t <= at)
        .max()
        .unwrap_or(at);
    let after: Vec<Instant> = acks.iter().copied().filter(|t| *t > at).collect();
    let mut prev = start;
    let mut longest = None::<Duration>;
    for t in after {
        let gap = t.duration_since(prev);
        if longest.is_none_or(|l| gap > l) {
            longest = Some(gap);
        }
        prev = t;
    }
    longest
}

/// A writer and a role watch on a Replication cluster.
pub struct UnderWriter {
    pub cluster: String,
    pub password: String,
    pub probe: logbook_bench::WriteProbe,
    roles: RoleWatch,
    pub bulk: u64,
}

impl UnderWriter {
    /// `bulk` keys written through the client Service, then the write
    /// probe (20 of its writes acknowledged) and the role watch.
    pub async fn start(env: &Env, cluster: &str, bulk: u64) -> Self {
        let password = env.password(cluster).await;
        let service = env.service_addr(cluster).await;
        let probe = bulk_then_writer(env, &service, &password, bulk).await;
        let roles = RoleWatch::start(env, cluster, &password);
        Self {
            cluster: cluster.to_owned(),
            password,
            probe,
            roles,
            bulk,
        }
    }

    /// Waits for a write acknowledged after now (`what` names it), stops
    /// the writer and the role watch, and checks: every acknowledged
    /// write and every bulk key is on the primary `at` (`ip:port`), two
    /// primaries were never seen in two rounds in a row, and the writer
    /// wrote before and after `fault`.
    pub async fn check(self, env: &Env, fault: Instant, what: &str, at: &str) -> Measured {
        env.wait_acked_after(&self.probe, Instant::now(), what)
            .await;
        // Two more seconds of writes on the settled cluster.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let log = self.probe.stop().await;
        let roles = self.roles.stop();
        let doubles = roles.two_primaries_in_a_row();
        assert!(
            doubles.is_empty(),
            "{}: two writable primaries in consecutive rounds ({} rounds): {doubles:?}",
            self.cluster,
            roles.rounds
        );
        assert!(
            roles.rounds >= 3,
            "the role watch ran {} rounds",
            roles.rounds
        );
        let (acked, failed) = check_no_acked_write_lost(&log, fault, at, &self.password).await;
        assert_eq!(
            count_missing(at, &self.password, "bulk", self.bulk).await,
            0,
            "bulk keys lost on {at}"
        );
        let after: Vec<_> = log
            .attempts
            .iter()
            .filter(|a| a.acked && a.started > fault)
            .collect();
        Measured {
            acked,
            failed,
            acked_after: after.len(),
            first_ack_after: after
                .iter()
                .map(|a| a.ended)
                .min()
                .map(|t| t.duration_since(fault)),
            outage: ack_outage(&log, fault),
            role_rounds: roles.rounds,
        }
    }

    /// Stops the writer and the role watch without checking (a test that
    /// deletes the whole cluster checks its log itself); the role watch
    /// is still checked for two primaries.
    pub async fn stop(self) -> logbook_bench::WriteLog {
        let log = self.probe.stop().await;
        let roles = self.roles.stop();
        let doubles = roles.two_primaries_in_a_row();
        assert!(
            doubles.is_empty(),
            "{}: two writable primaries in consecutive rounds: {doubles:?}",
            self.cluster
        );
        log
    }
}

/// `kubectl <args>` in the test namespace with `stdin` as its input, as
/// a user would run it; its exit code, standard output and error, for a
/// refusal to check (kube-rs's client retries a 429 until it passes; the
/// real kubectl does not when the API server names no `Retry-After`).
pub fn kubectl_ran(env: &Env, args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = super::kubectl_fed(env, NS, args, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The journal's decisions as (index of the envelope, intent, reason).
pub fn journal_decisions(
    events: &[logbook_journal::Envelope],
) -> Vec<(usize, logbook_journal::Intent, logbook_journal::ReasonCode)> {
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.body {
            logbook_journal::Event::Decided { intents } => Some(
                intents
                    .iter()
                    .map(move |p| (i, p.intent.clone(), p.reason.code.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The index of the first envelope `pred` holds for.
pub fn first_event(
    events: &[logbook_journal::Envelope],
    pred: impl Fn(&logbook_journal::Event) -> bool,
) -> Option<usize> {
    events.iter().position(|e| pred(&e.body))
}

/// A pod's uid by name.
pub async fn pod_uids(env: &Env, cluster: &str) -> BTreeMap<String, String> {
    env.pods(cluster)
        .await
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}
