//! Crash injection at every journal commit point of a new cluster's
//! creation, of a failover (a primary's process killed, or its pod
//! deleted) and of a rolling change, the operator running as a real
//! process on ConfigMap journals: for Replication (3 pods) and, creation
//! and failover, for a Valkey Cluster (3 shards × 1 replica); and at the
//! first commit points of a Valkey Cluster reshard (3 shards to 4 and
//! back), from its first slot move's decision on.
//!
//! For each point `n` an instance armed with `LOGBOOK_CRASH_AT_COMMIT=n`
//! takes the cluster over, the scenario is triggered, and the instance
//! aborts at its n-th commit counted from its first decision (a reshard's:
//! its first `MoveSlots` decision; `0`: just before that decision's
//! commit). A fresh instance (another name, no env var, no local files:
//! everything it knows is in the ConfigMaps) then takes over and must
//! converge: Ready with exactly one primary (asked of every pod with
//! `ROLE`) or, for a Cluster, every slot served by one of the spec's shard
//! primaries, each followed by one replica and holding its share of the
//! slots (asked of every node with `CLUSTER NODES`, and `redis-cli
//! --cluster check` clean) as the status and the role labels say; every
//! acknowledged write there (read from its slot's primary) and, for a
//! reshard, every key loaded before the sweep; no slot migration job
//! started twice for one move; every intent found in flight resolved
//! (found done, re-executed or abandoned) by it, the journal intact and
//! auditing clean (`logbook replay audit`: the same decisions recomputed,
//! no invariant broken, no `MoveSlots` decided beside another of the same
//! slots), and the takeover journaled as `OperatorStarted` with the gap.
//! Over a whole failover or reshard sweep a monitor asks every pod every
//! 100 ms: never two answer `ROLE` master, never two nodes claim one slot
//! at one config epoch. The sweep over `n` ends at the first armed
//! instance that carries the whole scenario out without reaching its
//! crash point: that run is the dry run, and `n - 1` was the last commit
//! point (a reshard's dry run comes after its sixth point: see [`sweep`]).
//!
//! One localkube serves every point of a scenario, and one cluster every
//! point of a failover, roll or reshard: each point starts from the
//! converged cluster the previous one left, with one client writing
//! throughout.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "operator_crash/cluster.rs"]
mod cluster;
mod operator_common;
#[path = "operator_crash/topology.rs"]
mod topology;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use cluster::{pod_addrs, spec_shards};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::DeleteParams;
use logbook::operator::{CRASH_AT_COMMIT, describe_intent, intent_name};
use logbook::valkey::Password;
use logbook_bench::WriteProbe;
use logbook_journal::cluster::describe_slots;
use logbook_journal::{
    Envelope, Event, MigrationPhase, MigrationSide, SlotMigrationJob, SlotRange, StreamId,
};
use logbook_replay::audit::Check;
use operator_common::*;
use topology::{ClaimMonitor, Topology};
use uuid::Uuid;

/// Set to `n`, a sweep starts at point `n` (to reproduce one point
/// without the ones before it).
const FROM_ENV: &str = "LOGBOOK_TEST_CRASH_FROM";
/// The cluster of the failover and roll sweeps.
const NAME: &str = "demo";
/// More points than any scenario has: a sweep that gets here is stuck.
/// (A Cluster's creation commits about 40 times: its probes look every
/// 100 ms while it settles, and record its replicas' syncs step by step.)
const MAX_POINTS: u64 = 80;
/// The last point of a reshard sweep before its dry run (see [`sweep`]).
const RESHARD_POINTS: u64 = 6;
/// Keys loaded into the cluster of a reshard sweep before its first point
/// (`k:0` ..): enough that every slot range moved carries some, so a lost
/// one shows.
const KEYS: u64 = 2_000;
/// How long the journal must stay still (with the scenario carried out)
/// before a run that did not abort counts as done.
const QUIET: Duration = Duration::from_secs(3);
/// Values of `maxmemory-policy` the roll cycles through (each point's
/// differs from the one before, so each point rolls every pod).
const POLICIES: [&str; 8] = [
    "allkeys-lru",
    "volatile-lru",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lfu",
    "volatile-lfu",
    "noeviction",
];

/// What a sweep does at each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// A new 3-pod cluster created (one per point, deleted after it).
    Create,
    /// SIGKILL of the primary's process (the kubelet restarts it in place,
    /// fenced).
    KillPrimary,
    /// The primary's pod deleted (the StatefulSet recreates it).
    DeletePrimary,
    /// A `valkey.conf` change: every pod rolled, the primary after a
    /// switchover.
    Roll,
    /// `spec.shards` changed, 3 to 4 and 4 back to 3 at the next point:
    /// slots moved by atomic slot migration (Cluster only).
    Reshard,
}

impl Scenario {
    fn prefix(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::KillPrimary => "kill",
            Self::DeletePrimary => "delete",
            Self::Roll => "roll",
            Self::Reshard => "reshard",
        }
    }
}

/// One point of a sweep, for the report.
struct Point {
    n: u64,
    /// Which of the scenario's changes it made (a reshard's `3 → 4`
    /// shards or `4 → 3`; empty for the others).
    change: String,
    /// Where the armed instance aborted (`None`: it did not).
    crashed: Option<String>,
    /// When the journal at the crash already held the whole scenario
    /// decided and carried out (nothing in flight, nothing left to decide):
    /// the decisions it held. Every later commit only records
    /// observations.
    settled: Option<Decisions>,
    /// The intents in flight at the crash, each with its resolution.
    resolved: Vec<(String, String)>,
    /// The fresh instance's takeover gap.
    gap_ms: Option<u64>,
    /// From the crash (without one: from the trigger) to the cluster
    /// converged and checked.
    converged: Duration,
    /// The whole point, the hand-over to the armed instance included.
    total: Duration,
    /// The `MoveSlots` decisions of the whole journal so far that the
    /// audit's `move-issued-twice` check examined.
    moves_audited: u64,
}

/// How an armed instance's run ended.
enum Run {
    /// It aborted.
    Aborted(ExitStatus),
    /// It carried the scenario out, this long after the trigger, then
    /// committed nothing for [`QUIET`]: it will not reach its crash point.
    CarriedOut(Duration),
}

/// Everything one sweep shares across its points.
struct Sweep {
    env: Env,
    topology: Topology,
    scenario: Scenario,
    kubeconfig: PathBuf,
    workdir: tempfile::TempDir,
    /// The cluster in play (for `Create`, each point's new one).
    name: String,
    /// Where the next takeover shows: the cluster's stream (for `Create`,
    /// the operator's own until the point's cluster exists).
    journal: JournalTail,
    /// A client writing with `WAIT 1` since the start, through the client
    /// Service or routed by slot (none for `Create`: there each point's
    /// cluster is new).
    probe: Option<WriteProbe>,
    /// The pod the last trigger killed (`KillPrimary`).
    killed: Option<String>,
    /// The revision the last trigger rolls the pods away from (`Roll`).
    old_revision: Option<String>,
    /// Keys loaded before the first point, all read back after each
    /// (`Reshard`; 0 for the others).
    loaded: u64,
    /// The change the last trigger made (see [`Point::change`]).
    change: String,
    /// The pods before the last trigger (`Reshard`: a scale-in removes
    /// some).
    pods_before: Vec<String>,
}

impl Sweep {
    /// Localkube, a first (unarmed) operator and, but for `Create`, the
    /// cluster Ready with a client writing.
    async fn start(topology: Topology, scenario: Scenario) -> (Sweep, OperatorProcess) {
        let prefix = format!("{}{}", topology.prefix(), scenario.prefix());
        let env = Env::start_without_operator(&format!("crash-{prefix}")).await;
        let workdir = tempfile::Builder::new()
            .prefix("logbook-crash-")
            .tempdir()
            .unwrap();
        let kubeconfig = workdir.path().join("kubeconfig");
        env.write_kubeconfig_to(&kubeconfig);
        let setup = format!("{prefix}-setup");
        let first = OperatorProcess::start(&env, &kubeconfig, workdir.path(), &setup, None);
        let (journal, probe) = if scenario == Scenario::Create {
            (env.cm_journal_tail(&StreamId::operator()), None)
        } else {
            env.apply_yaml(&topology.yaml(NAME)).await;
            topology
                .wait_ready(&env, NAME, Duration::from_secs(90))
                .await;
            if scenario == Scenario::Reshard {
                let password = env.password(NAME).await;
                load(&pod_addrs(&env, NAME).await, &password, KEYS).await;
            }
            let probe = topology.start_probe(&env, NAME).await;
            env.eventually(Duration::from_secs(10), "acknowledged writes", || {
                let n = probe.acked_count();
                async move { n >= 20 }
            })
            .await;
            (env.cm_journal_tail(&env.stream(NAME).await), Some(probe))
        };
        let mut sweep = Sweep {
            env,
            topology,
            scenario,
            kubeconfig,
            workdir,
            name: NAME.to_owned(),
            journal,
            probe,
            killed: None,
            old_revision: None,
            loaded: if scenario == Scenario::Reshard {
                KEYS
            } else {
                0
            },
            change: String::new(),
            pods_before: Vec::new(),
        };
        if scenario == Scenario::Create {
            // Leading (so that it stops cleanly at the first point: its
            // SIGTERM handler is in place).
            sweep.wait_takeover(&setup, 0).await;
        }
        (sweep, first)
    }

    /// For failure messages: [`Env::dump`] and the journal's last events,
    /// as `logbook replay timeline` prints them.
    async fn dump(&self) -> String {
        // As the test's admin: the operator's account reads the journal,
        // not the ValkeyCluster by name as the replay tool does.
        let (kubeconfig, name) = (self.env.write_kubeconfig(), self.name.clone());
        let timeline = tokio::task::spawn_blocking(move || {
            let kubeconfig = kubeconfig.to_string_lossy().into_owned();
            let args = [
                "logbook",
                "replay",
                "timeline",
                "--namespace",
                NS,
                "--cluster",
                &name,
                "--kubeconfig",
                &kubeconfig,
            ];
            let mut out = Vec::new();
            let result = clap::Parser::try_parse_from(args)
                .map_err(|e| e.to_string())
                .and_then(|cli| logbook::cli::run(cli, &mut out).map_err(|e| e.to_string()));
            let text = String::from_utf8_lossy(&out).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(150)..].join("\n");
            format!("{tail}\n{result:?}")
        })
        .await
        .unwrap();
        format!(
            "{}\n--- journal of {} (last 150 events):\n{timeline}",
            self.env.dump(&self.name).await,
            self.name
        )
    }

    /// Instance `instance`, armed to crash at commit `crash_at` when
    /// given: for a reshard, counted from its first `MoveSlots` decision
    /// (the commits before it seat the new shard's pods as a bootstrap
    /// does, and the bootstrap sweep crashes at those).
    fn operator(&self, instance: &str, crash_at: Option<u64>) -> OperatorProcess {
        let (env, kubeconfig, workdir) = (&self.env, &self.kubeconfig, self.workdir.path());
        match crash_at {
            Some(n) if self.scenario == Scenario::Reshard => OperatorProcess::start_counting_from(
                env,
                kubeconfig,
                workdir,
                instance,
                n,
                "MoveSlots",
            ),
            _ => OperatorProcess::start(env, kubeconfig, workdir, instance, crash_at),
        }
    }

    /// Waits for `instance`'s `OperatorStarted` after `after` in
    /// [`Sweep::journal`]; returns that event's seq, its epoch and gap.
    async fn wait_takeover(&mut self, instance: &str, after: u64) -> (u64, u64, Option<u64>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.journal.catch_up().await;
            let found = self
                .journal
                .after(after)
                .iter()
                .find_map(|e| match &e.body {
                    Event::OperatorStarted {
                        instance: who,
                        epoch,
                        gap_ms,
                        ..
                    } if who == instance => Some((e.seq, *epoch, *gap_ms)),
                    _ => None,
                });
            if let Some(found) = found {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{instance} did not take the journal over\n{}",
                self.dump().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Triggers the scenario; returns the journal seq its events follow.
    async fn trigger(&mut self, n: u64) -> u64 {
        self.journal.catch_up().await;
        let env = &self.env;
        match self.scenario {
            Scenario::Create => {
                self.name = format!("new-{n}");
                env.apply_yaml(&self.topology.yaml(&self.name)).await;
                self.journal = env.cm_journal_tail(&env.stream(&self.name).await);
                return 0;
            }
            Scenario::KillPrimary => {
                let old = self.topology.victim(&env.vkc(NAME).await, n);
                env.kill(&old).await;
                self.killed = Some(old);
            }
            Scenario::DeletePrimary => {
                let old = self.topology.victim(&env.vkc(NAME).await, n);
                env.delete_pod(&old).await;
            }
            Scenario::Roll => {
                self.old_revision = Some(update_revision(env, NAME).await);
                let policy = POLICIES[usize::try_from(n).unwrap() % POLICIES.len()];
                let config = serde_json::json!({"spec": {"config": {"maxmemory-policy": policy}}});
                env.patch(NAME, config).await;
            }
            Scenario::Reshard => {
                let from = spec_shards(&env.vkc(NAME).await);
                let to = if from == 3 { 4 } else { 3 };
                self.pods_before = env.pods(NAME).await.iter().map(|p| p.name_any()).collect();
                env.patch(NAME, serde_json::json!({"spec": {"shards": to}}))
                    .await;
                self.change = format!("{from} → {to}");
            }
        }
        self.journal.seq()
    }

    /// Whether the scenario is carried out: Ready on the current
    /// generation in a status published at journal seq `min_seq` or later
    /// (not one from before the trigger or the crash) and, for a roll,
    /// every pod on the new revision. (For a Cluster, Ready includes the
    /// spec's shards each holding its share of the slots, no reshard
    /// left: see [`Topology::ready`].)
    async fn done(&self, min_seq: u64) -> bool {
        let Ok(Some(vkc)) = self.env.vkcs().get_opt(&self.name).await else {
            return false;
        };
        if !self.topology.ready(&vkc) || journal_seq(&vkc) < i64::try_from(min_seq).unwrap() {
            return false;
        }
        if self.scenario != Scenario::Roll {
            return true;
        }
        let revision = update_revision(&self.env, &self.name).await;
        let pods = self.env.pods(&self.name).await;
        Some(&revision) != self.old_revision.as_ref()
            && pods.len() == 3
            && pods.iter().all(|p| {
                p.labels().get("controller-revision-hash") == Some(&revision)
                    && p.metadata.deletion_timestamp.is_none()
            })
    }

    /// Waits until the armed instance aborts, or carries the scenario out
    /// (in a status at journal seq `min_seq` or later) and then commits
    /// nothing for [`QUIET`].
    async fn wait_abort(&mut self, armed: &mut OperatorProcess, min_seq: u64) -> Run {
        let triggered = Instant::now();
        let deadline = triggered + Duration::from_secs(90);
        // Since when the journal has stood at which seq, the scenario done.
        let mut still: Option<(u64, Instant)> = None;
        loop {
            if let Some(status) = armed.exited() {
                return Run::Aborted(status);
            }
            self.journal.catch_up().await;
            let seq = self.journal.seq();
            if !self.done(min_seq).await {
                still = None;
            } else if let Some((at, since)) = still
                && at == seq
            {
                if since.elapsed() >= QUIET {
                    return Run::CarriedOut(since.duration_since(triggered));
                }
            } else {
                still = Some((seq, Instant::now()));
            }
            assert!(
                Instant::now() < deadline,
                "{} neither aborted nor carried the scenario out\n{}",
                armed.instance,
                self.dump().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the scenario to be carried out by the instance now
    /// leading (in a status published at journal seq `min_seq` or later)
    /// and checks the cluster: the primaries by what the pods say of
    /// themselves ([`Topology::agree`]), every acknowledged write and
    /// every loaded key there, nothing in flight, the journal intact and
    /// auditing clean. Returns the primaries and the `MoveSlots`
    /// decisions the audit's `move-issued-twice` check examined.
    async fn check_converged(&self, min_seq: u64) -> (Vec<String>, u64) {
        let env = &self.env;
        // A new leader publishes what its journal says before its first
        // probe round: after a crash that lost the observations of a dead
        // primary, that is "Ready" with the dead one for a round. What
        // counts is a status the pods' own answers bear out.
        let deadline = Instant::now() + Duration::from_secs(60);
        let primaries = loop {
            let why = if self.done(min_seq).await {
                match self.topology.agree(env, &self.name).await {
                    Ok(primaries) => break primaries,
                    Err(why) => why,
                }
            } else {
                format!("the {:?} scenario is not carried out", self.scenario)
            };
            assert!(
                Instant::now() < deadline,
                "not converged: {why}\n{}",
                self.dump().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if let Some(probe) = &self.probe {
            // Writes go on on the primaries; none acknowledged is missing.
            let now = Instant::now();
            env.wait_acked_after(probe, now, "an acknowledged write after converging")
                .await;
            let log = probe.snapshot();
            let (missing, read_on) = self.topology.missing(env, &self.name, &log).await;
            assert!(
                missing.is_empty(),
                "{} of {} acknowledged writes lost on {read_on}: {:?}\n{}",
                missing.len(),
                log.acked_keys().len(),
                &missing[..missing.len().min(20)],
                self.dump().await
            );
        }
        if self.loaded > 0 {
            let password = Password::new(env.password(&self.name).await);
            let keys: Vec<u64> = (0..self.loaded).collect();
            let missing = logbook_bench::cluster_client::missing_in_cluster(
                &pod_addrs(env, &self.name).await,
                Some(&password),
                "k",
                &keys,
            )
            .await
            .unwrap();
            assert!(
                missing.is_empty(),
                "{} of {} loaded keys lost: {:?}\n{}",
                missing.len(),
                self.loaded,
                &missing[..missing.len().min(20)],
                self.dump().await
            );
        }
        // Nothing left in flight; the journal verifies.
        let stream = self.journal.stream().clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = env.cm_journal_state(&stream).await;
            if state.in_flight.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "intents left in flight: {:?}\n{}",
                state.in_flight,
                self.dump().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        env.cm_verify_journal(&stream).await;
        let report = match env.cm_audit(&stream).await {
            Ok(report) => report,
            Err(report) => panic!(
                "the journal does not audit clean:\n{report}\n{}",
                self.dump().await
            ),
        };
        let moves = report
            .checks
            .iter()
            .find(|c| c.check == Check::MoveIssuedTwice.name())
            .map_or(0, |c| c.examined);
        (primaries, moves)
    }

    /// Fails when two slot migration jobs were started for one move since
    /// journal seq `after` ([`jobs_started_twice`]).
    async fn assert_no_job_twice(&self, n: u64, after: u64) {
        let twice = jobs_started_twice(self.journal.after(after));
        assert!(
            twice.is_empty(),
            "n={n}: slot migration jobs started twice: {twice:?}\n{}",
            self.dump().await
        );
    }

    /// Leaves the cluster ready for the next point. A pod killed and
    /// restarted in place is in the kubelet's crash-loop backoff (10 s at
    /// its next crash, as on a real node), so a failover point killing it
    /// again would measure that: deleting it gives a fresh pod. A created
    /// cluster is deleted (its pods would load the next points).
    async fn after_point(&mut self, primaries: &[String]) {
        let env = &self.env;
        match self.scenario {
            Scenario::KillPrimary => {
                let Some(killed) = self.killed.clone().filter(|k| !primaries.contains(k)) else {
                    return;
                };
                env.delete_pod(&killed).await;
                env.eventually(Duration::from_secs(20), "the killed pod replaced", || {
                    let killed = killed.clone();
                    async move {
                        env.pods(NAME).await.iter().any(|p| {
                            p.name_any() == killed
                                && p.metadata.deletion_timestamp.is_none()
                                && restarts(p) == 0
                        })
                    }
                })
                .await;
                // Settled again, by what the pods say too: the next point
                // must start from a converged cluster.
                self.topology
                    .wait_ready(env, NAME, Duration::from_secs(30))
                    .await;
                let deadline = Instant::now() + Duration::from_secs(30);
                while let Err(why) = self.topology.agree(env, NAME).await {
                    assert!(
                        Instant::now() < deadline,
                        "not settled after the killed pod was replaced: {why}\n{}",
                        self.dump().await
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Scenario::Create => {
                let name = self.name.clone();
                env.vkcs()
                    .delete(&name, &DeleteParams::default())
                    .await
                    .unwrap();
                env.eventually(Duration::from_secs(30), "the created cluster gone", || {
                    let name = name.clone();
                    async move {
                        env.vkcs().get_opt(&name).await.unwrap().is_none()
                            && env.pods(&name).await.is_empty()
                    }
                })
                .await;
            }
            Scenario::Reshard => {
                // The pods a scale-in removed keep their volumes (the
                // claims are retained), and with them `nodes.conf`: back at
                // the next scale-out they would rejoin as the nodes every
                // member forgot, which Valkey refuses for 60 s after the
                // forget (the operator meets them again until then). The
                // next point starts from empty volumes, as after a clean-up
                // of the claims, so that each point measures the reshard.
                let keep = self.topology.pods();
                for pod in self.pods_before.drain(..) {
                    if ordinal(&pod) >= u32::try_from(keep).unwrap() {
                        env.faults()
                            .wipe_pvc_data(NS, &format!("data-{pod}"))
                            .await
                            .unwrap();
                    }
                }
            }
            Scenario::DeletePrimary | Scenario::Roll => {}
        }
    }

    /// Point `n`: hands the cluster from `leader` to an instance armed to
    /// crash at commit `n`, triggers the scenario, and once it aborted,
    /// has a fresh instance converge the cluster. Returns the point and
    /// the instance now leading (none after the dry run: the sweep ends).
    async fn point(&mut self, n: u64, leader: OperatorProcess) -> (Point, Option<OperatorProcess>) {
        let started = Instant::now();
        let prefix = format!("{}{}", self.topology.prefix(), self.scenario.prefix());
        // The leader releases the Lease on SIGTERM: the armed instance
        // takes over at its first try.
        leader.stop(&self.env, &self.name, false).await;
        if self.scenario == Scenario::Create {
            self.journal = self.env.cm_journal_tail(&StreamId::operator());
        }
        self.journal.catch_up().await;
        let armed_name = format!("{prefix}-armed-{n}");
        let mut armed = self.operator(&armed_name, Some(n));
        let (_, armed_epoch, _) = self.wait_takeover(&armed_name, self.journal.seq()).await;
        let trigger_seq = self.trigger(n).await;
        let status = match self.wait_abort(&mut armed, trigger_seq + 1).await {
            Run::Aborted(status) => status,
            Run::CarriedOut(took) => {
                // Fewer than n commits: this run is the dry run, and the
                // sweep is over. It must leave the cluster as checked too.
                let (primaries, moves_audited) = self.check_converged(trigger_seq + 1).await;
                self.journal.catch_up().await;
                self.assert_no_job_twice(n, trigger_seq).await;
                eprintln!(
                    "{:?} {:?} n={n}: no abort: {armed_name} carried the scenario out in {took:?}; primaries {primaries:?}; its events: {}",
                    self.topology,
                    self.scenario,
                    timeline(self.journal.after(trigger_seq))
                );
                let point = Point {
                    n,
                    change: self.change.clone(),
                    crashed: None,
                    settled: Some(Decisions::of(self.journal.after(trigger_seq))),
                    resolved: Vec::new(),
                    gap_ms: None,
                    converged: took,
                    total: started.elapsed(),
                    moves_audited,
                };
                // No `after_point`: nothing follows.
                armed.stop(&self.env, &self.name, true).await;
                return (point, None);
            }
        };
        let crashed_at = Instant::now();
        assert_eq!(
            status.signal(),
            Some(nix::sys::signal::Signal::SIGABRT as i32),
            "{armed_name} exited with {status}, not by the crash injection's abort\n{}",
            self.dump().await
        );
        let said = format!("[{armed_name}] {CRASH_AT_COMMIT}: aborting ");
        let crashed = self
            .env
            .logs
            .grep(&said)
            .pop()
            .and_then(|line| line.strip_prefix(&said).map(str::to_owned))
            .unwrap_or_else(|| panic!("{armed_name} aborted without saying where"));
        drop(armed);

        // What the journal holds at the crash.
        self.journal.catch_up().await;
        let crash_seq = self.journal.seq();
        let last = self.journal.after(crash_seq.saturating_sub(3));
        let crashed = format!("{crashed} (last events: {})", timeline(last));
        let at_crash = self.env.cm_journal_state(self.journal.stream()).await;
        // Settled: the scenario's decisions made and carried out, nothing
        // in flight and nothing left to decide on what the journal holds.
        let policy = at_crash.policy.clone().unwrap_or_default();
        let decided = Decisions::of(self.journal.after(trigger_seq));
        // At n = 0 the first decision counted is lost with the crash: the
        // journal cannot hold the whole scenario (a reshard's provisioning
        // decisions may be there, its first move is not).
        // Nor is it whole while a pod the spec wants is missing, not
        // ready or terminating: a deleted pod comes back later, and its
        // role label is decided then.
        let pods_back = logbook::decide::ClusterView::new(&at_crash).is_some_and(|view| {
            let want = usize::try_from(view.desired_pods()).unwrap_or(usize::MAX);
            at_crash.pods.len() == want && at_crash.pods.values().all(|p| p.ready && !p.terminating)
        });
        let settled = n > 0
            && decided.count > 0
            && pods_back
            && (at_crash.cluster.formed_at.is_some() || self.topology == Topology::Replication)
            && at_crash.in_flight.is_empty()
            && logbook::decide::decide(&at_crash, at_crash.last_at, &policy).is_empty();
        let settled = settled.then_some(decided);
        // A fresh instance with nothing but the ConfigMaps.
        let fresh_name = format!("{prefix}-fresh-{n}");
        let fresh = self.operator(&fresh_name, None);
        let (takeover_seq, epoch, gap_ms) = self.wait_takeover(&fresh_name, crash_seq).await;
        assert!(epoch > armed_epoch, "epoch {epoch} after {armed_epoch}");
        assert!(
            gap_ms.is_some(),
            "{fresh_name}'s OperatorStarted has no gap"
        );
        let (primaries, moves_audited) = self.check_converged(takeover_seq).await;
        let converged = crashed_at.elapsed();

        // Each intent found in flight resolved by the fresh instance.
        self.journal.catch_up().await;
        self.assert_no_job_twice(n, trigger_seq).await;
        let after = self.journal.after(crash_seq);
        let mut resolved = Vec::new();
        for (id, found) in &at_crash.in_flight {
            let what = describe_intent(&found.planned.intent);
            let Some((by, how)) = resolution(after, *id) else {
                panic!(
                    "n={n}: {what} ({id}) was in flight at the crash and is not resolved\n{}",
                    self.dump().await
                );
            };
            assert_eq!(
                by, epoch,
                "{what} resolved at epoch {by}, not by {fresh_name}"
            );
            resolved.push((what, how));
        }
        let in_flight: Vec<String> = resolved
            .iter()
            .map(|(what, how)| format!("[{what} -> {how}]"))
            .collect();
        eprintln!(
            "{:?} {:?} n={n}: aborted {crashed}; in flight: {}; {fresh_name} took over {gap_ms:?} ms after the last event and converged {converged:?} after the crash (primaries {primaries:?})",
            self.topology,
            self.scenario,
            if in_flight.is_empty() {
                "nothing".to_owned()
            } else {
                in_flight.join(" ")
            }
        );
        self.after_point(&primaries).await;
        let point = Point {
            n,
            change: self.change.clone(),
            crashed: Some(crashed),
            settled,
            resolved,
            gap_ms,
            converged,
            total: started.elapsed(),
            moves_audited,
        };
        (point, Some(fresh))
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |c| c.iter().map(|c| c.restart_count).sum())
}

async fn update_revision(env: &Env, name: &str) -> String {
    env.api::<StatefulSet>()
        .get(name)
        .await
        .unwrap()
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default()
}

/// The epoch and description of intent `id`'s outcome in `events`.
fn resolution(events: &[Envelope], id: Uuid) -> Option<(u64, String)> {
    events.iter().find_map(|e| {
        let how = match &e.body {
            Event::IntentSucceeded { intent_id, detail } if *intent_id == id => {
                if detail.starts_with("found done") {
                    detail.clone()
                } else {
                    format!("re-executed: {detail}")
                }
            }
            Event::IntentFailed {
                intent_id, error, ..
            } if *intent_id == id => format!("re-executed, failed: {error}"),
            Event::IntentAbandoned { intent_id, reason } if *intent_id == id => {
                format!("abandoned: {reason}")
            }
            _ => return None,
        };
        Some((e.epoch, how))
    })
}

/// Two export jobs among `events` that moved overlapping slots from one
/// source to one target, the earlier not seen failed, cancelled or gone:
/// one move's job started twice. A crash mid-move leaves its job running
/// on the source; the instance taking over must adopt it (or find its
/// slots moved), never start another. Jobs as the nodes list them
/// (`SlotMigrationObserved`), each with its last phase seen.
fn jobs_started_twice(events: &[Envelope]) -> Vec<String> {
    let mut jobs: Vec<SlotMigrationJob> = Vec::new();
    for e in events {
        if let Event::SlotMigrationObserved { job, .. } = &e.body
            && job.side == MigrationSide::Export
        {
            match jobs.iter_mut().find(|j| j.name == job.name) {
                Some(seen) => *seen = job.clone(),
                None => jobs.push(job.clone()),
            }
        }
    }
    let overlap = |a: &[SlotRange], b: &[SlotRange]| {
        a.iter()
            .any(|x| b.iter().any(|y| x.start <= y.end && y.start <= x.end))
    };
    let mut twice = Vec::new();
    for (i, first) in jobs.iter().enumerate() {
        let ended_badly = matches!(
            first.phase,
            MigrationPhase::Failed | MigrationPhase::Cancelled | MigrationPhase::Vanished
        );
        for later in jobs.iter().skip(i + 1) {
            if !ended_badly
                && later.source == first.source
                && later.target == first.target
                && overlap(&first.slots, &later.slots)
            {
                twice.push(format!(
                    "{} ({}) and {} ({}): slots {} and {} from {} to {}",
                    first.name,
                    first.phase.name(),
                    later.name,
                    later.phase.name(),
                    describe_slots(&first.slots),
                    describe_slots(&later.slots),
                    first.source,
                    first.target
                ));
            }
        }
    }
    twice
}

/// The decisions among `events`.
/// The decisions among some events: how many, and the kinds of intent
/// they decided.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decisions {
    /// `Decided` events.
    count: usize,
    /// The kinds of intent decided (`MeetNode`, `ClusterFailover`, ...).
    /// Neither how the steps happened to group into decisions (a meet of
    /// four pods then of two is one of six when a probe round saw all six
    /// at once) nor which pods they name (a failover sweep's victim
    /// alternates, and whether its killed primary restarted before the
    /// decision picks the failover's mode) is the same from run to run;
    /// what was decided is.
    kinds: std::collections::BTreeSet<&'static str>,
}

impl Decisions {
    fn of(events: &[Envelope]) -> Decisions {
        let mut count = 0;
        let mut kinds = std::collections::BTreeSet::new();
        for e in events {
            if let Event::Decided { intents } = &e.body {
                count += 1;
                kinds.extend(intents.iter().map(|p| intent_name(&p.intent)));
            }
        }
        Decisions { count, kinds }
    }
}

/// `events` in short: each one's kind, and the milliseconds since the
/// first.
fn timeline(events: &[Envelope]) -> String {
    let Some(first) = events.first() else {
        return "none".to_owned();
    };
    events
        .iter()
        .map(|e| format!("+{} {}", e.at.millis_since(first.at), e.body.kind()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The short name of a resolution, for the summary.
fn resolution_kind(how: &str) -> &'static str {
    if how.starts_with("found done") {
        "found done"
    } else if how.starts_with("re-executed, failed") {
        "re-executed (failed)"
    } else if how.starts_with("re-executed") {
        "re-executed"
    } else {
        "abandoned"
    }
}

async fn sweep(topology: Topology, scenario: Scenario) {
    let began = Instant::now();
    let (mut sweep, mut leader) = Sweep::start(topology, scenario).await;
    let one_cluster = scenario != Scenario::Create;
    let password = if one_cluster {
        sweep.env.password(NAME).await
    } else {
        String::new()
    };
    let claims = matches!(
        scenario,
        Scenario::KillPrimary | Scenario::DeletePrimary | Scenario::Reshard
    )
    .then(|| ClaimMonitor::start(&sweep.env, topology, NAME, &password));
    let pods = one_cluster.then(|| PodMonitor::start(&sweep.env, NAME, topology.pods()));
    let first_trigger = Instant::now();
    eprintln!("{topology:?} {scenario:?}: set up in {:?}", began.elapsed());
    let mut points: Vec<Point> = Vec::new();
    let first = u64::from(scenario == Scenario::Reshard);
    let from: u64 = std::env::var(FROM_ENV).map_or(first, |v| v.parse().unwrap());
    // A Cluster's bootstrap commits about 30 times, a failover by kill
    // about 16; the last dozen or so only record replicas syncing (a full
    // sync of a cluster node waits 5 s) with nothing in flight and nothing
    // left to decide. The first such point is crashed at like any other;
    // the rest are equivalent to it (the fresh instance has only to
    // observe) and are skipped: the next run is the dry run, and it must
    // have decided the kinds of intent that settled point had (else the
    // tail was not observations only, and the sweep fails). Kinds, not how
    // often nor on which pods: see [`Decisions`].
    //
    // A reshard's points alternate its two directions (each point starts
    // from the shards the previous one left): 3 → 4 at odd points, 4 → 3
    // at even ones, each counted from its first `MoveSlots` decision. Both
    // move in the same steps (the moves decided; both ends read again; one
    // outcome per move; the next decision), so together they crash once
    // after each. A point takes about 20 s, and each direction commits
    // about a dozen times more before it settles (labels, for 4 → 3 the
    // StatefulSet scaled down and the removed nodes forgotten): to keep
    // the sweep near 150 s, points 1 to [`RESHARD_POINTS`] are crashed at
    // and the next run is the dry run (n = 0, the first move's decision
    // lost with the observations staged beside it, is a takeover before
    // the reshard: `LOGBOOK_TEST_CRASH_FROM=0` runs it).
    let skip_settled_tail = topology == Topology::Cluster && scenario != Scenario::Reshard;
    let last = if scenario == Scenario::Reshard {
        RESHARD_POINTS
    } else {
        MAX_POINTS - 1
    };
    let mut skipped_after: Option<(u64, Decisions)> = None;
    let mut n = from;
    while n < MAX_POINTS {
        let (point, next) = sweep.point(n, leader).await;
        let settled = point.settled.clone();
        points.push(point);
        match next {
            Some(next) => leader = next,
            None => break,
        }
        n = match settled {
            Some(decided) if skip_settled_tail && skipped_after.is_none() => {
                skipped_after = Some((n, decided));
                MAX_POINTS - 1
            }
            // The dry run aborted too: the scenario commits more often
            // than MAX_POINTS (asserted below).
            _ if n == MAX_POINTS - 1 => break,
            _ if n >= last => MAX_POINTS - 1,
            _ => n + 1,
        };
    }
    assert!(
        points.last().is_some_and(|p| p.crashed.is_none()),
        "{topology:?} {scenario:?}: still aborting at n={MAX_POINTS}"
    );
    if let Some((settled_n, decided)) = &skipped_after {
        let dry = points.last().and_then(|p| p.settled.clone());
        assert_eq!(
            dry.as_ref().map(|d| &d.kinds),
            Some(&decided.kinds),
            "{topology:?} {scenario:?}: the dry run decided {dry:?}, the journal at the crash at n={settled_n} {decided:?}: the skipped commits were not observations only"
        );
    }
    assert!(
        points.len() >= 2 || from > 0,
        "{topology:?} {scenario:?}: the first armed run did not abort"
    );

    // Over the whole sweep: never two primaries (of one slot at one config
    // epoch, in a Cluster), never two pods down, never a primary deleted
    // (but by the fault itself); no acknowledged write lost; the journal
    // intact. (No operator runs any more.)
    let mut checked = String::new();
    if let Some(claims) = claims {
        let (polls, conflicts) = claims.stop();
        assert!(
            conflicts.is_empty(),
            "two primaries at once ({polls} polls): {conflicts:?}"
        );
        checked = match topology {
            Topology::Replication => {
                format!("; every pod asked ROLE {polls} times, never two masters")
            }
            Topology::Cluster => format!(
                "; every node asked CLUSTER NODES {polls} times, never two claiming one slot at one config epoch"
            ),
        };
    }
    if let Some(pods) = pods {
        let seen = pods.stop();
        assert!(seen.max_down <= 1, "pods down at once: {seen:?}");
        // A scale-in removes the primary of the shard it drained, empty
        // by then (the slot and key checks say so) but maybe still
        // labelled primary.
        let deleted: Vec<&String> = seen
            .deleted_while_primary
            .iter()
            .filter(|p| {
                scenario != Scenario::Reshard
                    || ordinal(p) < u32::try_from(topology.pods()).unwrap()
            })
            .collect();
        assert!(
            scenario == Scenario::DeletePrimary || deleted.is_empty(),
            "pods deleted while primary: {seen:?}"
        );
    }
    let mut writes = String::new();
    if let Some(probe) = sweep.probe.take() {
        let log = probe.stop().await;
        assert_wrote_around(&log, first_trigger);
        let (missing, read_on) = topology.missing(&sweep.env, NAME, &log).await;
        let acked = log.acked_keys().len();
        assert!(
            missing.is_empty(),
            "{} of {acked} acknowledged writes lost on {read_on}: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        let report = sweep.env.cm_verify_journal(sweep.journal.stream()).await;
        writes = format!(
            "; {acked} writes acknowledged, all on {read_on}, {} failed; journal {} events verified",
            log.failed_writes(),
            report.events_checked
        );
    }
    let mut moves = String::new();
    if scenario == Scenario::Reshard {
        let audited = points.last().map_or(0, |p| p.moves_audited);
        assert!(
            audited > 0,
            "move-issued-twice examined no MoveSlots decision"
        );
        moves = format!(
            "; the commits after n={last} not crashed at; move-issued-twice examined {audited} MoveSlots decisions, no migration job started twice"
        );
    }
    eprintln!(
        "{topology:?} {scenario:?}: {} commit points crashed at (n = {from}..={}{}{moves}) in {:?}{writes}{checked}",
        points.iter().filter(|p| p.crashed.is_some()).count(),
        points.iter().rev().find(|p| p.crashed.is_some()).map_or(0, |p| p.n),
        skipped_after.as_ref().map_or(String::new(), |(n, decided)| format!(
            "; settled at n={n} with {} decisions, the later commits (observations only) skipped",
            decided.count
        )),
        began.elapsed(),
    );
    for p in &points {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, how) in &p.resolved {
            *kinds.entry(resolution_kind(how)).or_default() += 1;
        }
        eprintln!(
            "  n={:>2}{} {:<45} in flight {} {kinds:?}, gap {:?} ms, converged in {:.1?}, point {:.1?}",
            p.n,
            if p.change.is_empty() {
                String::new()
            } else {
                format!(" {}", p.change)
            },
            p.crashed.as_deref().unwrap_or("no abort (dry run)"),
            p.resolved.len(),
            p.gap_ms,
            p.converged,
            p.total
        );
    }
    sweep.env.finish().await;
}

// The roll has the most points of Replication's (about 22, against about
// 10 for each of the others). Tests start in name order: with two test
// threads it starts first and runs beside the others, one after another.
// Of a Valkey Cluster's, the bootstrap has about 21 points before it
// settles (about 290 s on 2 cores), each failover 5 (50 to 80 s), the
// reshard 6 and its dry run (about 150 s): run alone (`-- valkey_cluster`),
// the four take under 8 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_config_roll() {
    sweep(Topology::Replication, Scenario::Roll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_failover_by_kill() {
    sweep(Topology::Replication, Scenario::KillPrimary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_failover_by_pod_deletion() {
    sweep(Topology::Replication, Scenario::DeletePrimary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_new_cluster() {
    sweep(Topology::Replication, Scenario::Create).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_valkey_cluster_bootstrap() {
    sweep(Topology::Cluster, Scenario::Create).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_valkey_cluster_failover_by_pod_deletion() {
    sweep(Topology::Cluster, Scenario::DeletePrimary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_valkey_cluster_failover_by_kill() {
    sweep(Topology::Cluster, Scenario::KillPrimary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_a_valkey_cluster_reshard() {
    sweep(Topology::Cluster, Scenario::Reshard).await;
}
