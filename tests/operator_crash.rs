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
//! (found done, or abandoned and what is still needed decided afresh) by
//! it, the journal intact and auditing clean (`logbook replay audit`: the
//! same decisions recomputed, none missed, the takeover's resolutions
//! judged again, no invariant broken, no `MoveSlots` decided beside
//! another of the same slots), and the takeover journaled as
//! `OperatorStarted` with the gap.
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

use crate::operator_common;
use crate::sweep;
use crate::topology;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use logbook::operator::{CRASH_AT_COMMIT, describe_intent, intent_name};
use logbook_journal::{Envelope, Event};
use operator_common::*;
use sweep::*;
use topology::{ClaimMonitor, Topology};

/// Set to `n`, a sweep starts at point `n` (to reproduce one point
/// without the ones before it).
const FROM_ENV: &str = "LOGBOOK_TEST_CRASH_FROM";
/// More points than any scenario has: a sweep that gets here is stuck.
/// (A Cluster's creation commits about 40 times: its probes look every
/// 100 ms while it settles, and record its replicas' syncs step by step.)
const MAX_POINTS: u64 = 80;
/// The last point of a reshard sweep before its dry run (see [`sweep`]).
const RESHARD_POINTS: u64 = 6;
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

/// The crash sweep's own step.
impl Sweep {
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
        self.journal_for_takeover().await;
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
    let one_cluster = !scenario.creates();
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
    // Hibernation takes every pod down, the primary with them, by design
    // (once the data is durable): no pod is watched there.
    let pods = (one_cluster && scenario != Scenario::Hibernate)
        .then(|| PodMonitor::start(&sweep.env, NAME, topology.pods()));
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
            Topology::Replication | Topology::Sentinel | Topology::Standalone => {
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
            matches!(scenario, Scenario::DeletePrimary | Scenario::FailBack) || deleted.is_empty(),
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

// The workloads of issue 55, crashed at every commit point: run by `make
// sweep-crashes` (each point waits for its workload, a canary rollback's
// 30 s and more; together about an hour).
macro_rules! crash_sweeps {
    ($($name:ident: $topology:ident $scenario:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "a long crash sweep: make sweep-crashes"]
        async fn $name() {
            sweep(Topology::$topology, Scenario::$scenario).await;
        }
    )*};
}

crash_sweeps! {
    every_commit_point_of_a_hibernation: Replication Hibernate;
    every_commit_point_of_an_image_change: Replication Upgrade;
    every_commit_point_of_a_canary_rollback: Replication CanaryRollback;
    every_commit_point_of_an_unbind_and_rebind: Replication Unbind;
    every_commit_point_of_a_rebalance: Replication Rebalance;
    every_commit_point_of_a_defaults_roll: Replication DefaultsRoll;
    every_commit_point_of_a_fail_back: Replication FailBack;
    every_commit_point_of_a_standby_follow_and_promote: Replication Standby;
}
