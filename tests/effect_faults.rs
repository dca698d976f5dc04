//! Faults at every effect (issue 34; the method of Sieve, OSDI '22): the
//! operator runs as a real process with its effect gate armed
//! (`logbook::effects`), and a sweep perturbs it between its effects, not
//! only at its journal's commit points as `tests/operator_crash.rs` does.
//!
//! A sweep takes one workload (a scenario of the crash sweeps: a new
//! cluster, a failover by kill or by deletion, a config roll with its
//! switchover, a reshard, a certificate issued with its CA or renewed
//! and reloaded on every node) on one topology. Its learning run carries the
//! workload out with every effect recorded (`LOGBOOK_EFFECT_LOG`): each
//! effect on the cluster, the intent it served, and its number `k` among
//! the effects of intents of that name. The sweep then runs one plan per
//! effect and action (`LOGBOOK_FAULT_PLAN`): the `k`-th effect of intent
//! `I` is not sent (`fail`), sent with its reply lost (`fail-after`), or
//! the process aborts just before it (`kill-before`) or just after it
//! (`kill`). After a kill a fresh instance (no env var, nothing but the
//! ConfigMaps) takes over; after a failure the armed instance carries on.
//!
//! After each plan, the oracles: the workload carried out and the cluster
//! converged (the status, the role labels and what every pod says of
//! itself agree); every acknowledged write there; nothing left in flight,
//! the journal intact and `logbook replay audit` clean; every effect any
//! instance made explained by an intent the journal decided (its id in a
//! `Decided`), none made outside one; and, over a failover sweep, never
//! two primaries (every pod asked every 100 ms). A failing plan's line
//! (`plan i: {...}`) is the last the test printed: set
//! `LOGBOOK_TEST_EFFECT_PLAN` to that JSON to run that plan alone;
//! `LOGBOOK_TEST_EFFECT_PLANS=from..to` runs only those plans of a sweep.
//!
//! `make test` runs the short sweeps (`effect_sweep_` tests: the first effect of
//! every intent of the workload under each action, and every effect of
//! one intent); `make sweep-effects` runs every plan of every workload
//! (the `full_effect_sweep_` tests, ignored otherwise).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;
use crate::sweep;
use crate::topology;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use logbook::effects::{Action, Class, Plan, Record, read_log};
use logbook_journal::{Event, Intent};
use operator_common::*;
use sweep::*;
use topology::{ClaimMonitor, Topology};
use uuid::Uuid;

/// Set to a plan's JSON, a sweep runs that plan alone (no learning run).
const PLAN_ENV: &str = "LOGBOOK_TEST_EFFECT_PLAN";
/// Set to `from..to` (1-based, inclusive), only those plans of the sweep
/// run, numbered as in the whole sweep: a long sweep split across
/// processes or sessions. (Whether every learned intent was faulted is
/// then not judged: the others' plans are elsewhere.)
const RANGE_ENV: &str = "LOGBOOK_TEST_EFFECT_PLANS";

/// The range [`RANGE_ENV`] names, if set.
fn plan_range() -> Option<std::ops::RangeInclusive<u64>> {
    let text = std::env::var(RANGE_ENV).ok()?;
    let parsed = text
        .split_once("..")
        .and_then(|(from, to)| Some((from.trim().parse().ok()?, to.trim().parse().ok()?)));
    match parsed {
        Some((from, to)) if from >= 1 && from <= to => Some(from..=to),
        _ => panic!("{RANGE_ENV}={text}: expected from..to, 1 <= from <= to"),
    }
}

/// Which plans a sweep runs, of those its learning run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extent {
    /// Every effect under every action.
    Full,
    /// The first effect of each intent under every action, and every
    /// effect of the intent with the most under `kill` (the action that
    /// leaves the most to a successor).
    Short,
    /// Every effect of the intents named, failed and killed after.
    Of(&'static [&'static str]),
    /// The first effect of each intent named, failed and killed after:
    /// the short sweep of a slow workload (a point of which takes half a
    /// minute or more).
    First(&'static [&'static str]),
}

/// One plan run, for the report.
struct PlanRun {
    plan: Plan,
    /// The effect the fault was injected at (none: the run did not reach
    /// it).
    fired: Option<String>,
    /// Whether the armed instance aborted (a fresh one took over).
    aborted: bool,
    /// The intents in flight when it aborted, each with its resolution.
    resolved: Vec<String>,
    /// Effects the instances made, of the cluster's class.
    effects: usize,
    /// From the trigger to the cluster converged and checked.
    converged: Duration,
}

/// The effects of a learning run: each intent's by number, with what
/// each was.
type Learned = BTreeMap<String, Vec<String>>;

/// The effects on the cluster among `records`, by intent name, in order.
fn learned(records: &[Record]) -> Learned {
    let mut by_intent: Learned = BTreeMap::new();
    for r in records {
        if let (Class::Effect, Some(intent), Some(_)) = (r.class, &r.intent, r.k) {
            by_intent
                .entry(intent.clone())
                .or_default()
                .push(r.what.clone());
        }
    }
    by_intent
}

/// The intents among `records` that made an effect on the cluster.
fn learned_intents(records: &[Record]) -> BTreeSet<String> {
    learned(records).into_keys().collect()
}

/// The intents of `learned` (those `extent` covers) that no run of `runs`
/// injected its fault into.
fn never_faulted(learned: Option<&Learned>, extent: Extent, runs: &[PlanRun]) -> Vec<String> {
    let Some(learned) = learned else {
        return Vec::new();
    };
    let faulted: BTreeSet<&str> = runs
        .iter()
        .filter(|r| r.fired.is_some())
        .filter_map(|r| r.plan.intent.as_deref())
        .collect();
    learned
        .keys()
        .filter(|intent| match extent {
            Extent::Of(only) | Extent::First(only) => only.contains(&intent.as_str()),
            Extent::Full | Extent::Short => true,
        })
        .filter(|intent| !faulted.contains(intent.as_str()))
        .cloned()
        .collect()
}

/// The plans of `extent` over what a learning run found.
fn plans(learned: &Learned, extent: Extent) -> Vec<Plan> {
    let plan = |intent: &str, nth: usize, action: Action| Plan {
        intent: Some(intent.to_owned()),
        nth: u64::try_from(nth).unwrap(),
        action,
    };
    let mut plans = Vec::new();
    match extent {
        Extent::Full => {
            for (intent, effects) in learned {
                for nth in 1..=effects.len() {
                    for action in Action::ALL {
                        plans.push(plan(intent, nth, action));
                    }
                }
            }
        }
        Extent::Of(intents) => {
            for intent in intents {
                let effects = learned.get(*intent).map_or(0, Vec::len);
                for nth in 1..=effects {
                    for action in [Action::Fail, Action::Kill] {
                        plans.push(plan(intent, nth, action));
                    }
                }
            }
        }
        Extent::First(intents) => {
            for intent in intents {
                if learned.contains_key(*intent) {
                    for action in [Action::Fail, Action::Kill] {
                        plans.push(plan(intent, 1, action));
                    }
                }
            }
        }
        Extent::Short => {
            for intent in learned.keys() {
                for action in Action::ALL {
                    plans.push(plan(intent, 1, action));
                }
            }
            if let Some((intent, effects)) = learned.iter().max_by_key(|(_, e)| e.len()) {
                for nth in 2..=effects.len() {
                    plans.push(plan(intent, nth, Action::Kill));
                }
            }
        }
    }
    plans
}

/// The effects among `records` that no intent of `decided` explains: made
/// outside any intent, or for an intent the journal never decided.
fn unexplained(records: &[Record], decided: &BTreeSet<Uuid>) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.class == Class::Effect)
        .filter_map(|r| match (&r.intent, r.intent_id) {
            (Some(_), Some(id)) if decided.contains(&id) => None,
            (Some(intent), Some(id)) => Some(format!(
                "#{} {} for {intent} {id}, never decided",
                r.n, r.what
            )),
            _ => Some(format!("#{} {} outside any intent", r.n, r.what)),
        })
        .collect()
}

impl Sweep {
    fn effect_instance(&self, name: &str, plan: Option<&Plan>) -> (OperatorProcess, PathBuf) {
        let dir = self.workdir.path();
        let log = dir.join(format!("{name}.effects.jsonl"));
        let plan_file = plan.map(|plan| {
            let path = dir.join(format!("{name}.plan.json"));
            std::fs::write(&path, serde_json::to_string(plan).unwrap()).unwrap();
            path
        });
        let process = OperatorProcess::start_with_effects(
            &self.env,
            &self.kubeconfig,
            dir,
            name,
            plan_file.as_deref(),
            &log,
        );
        (process, log)
    }

    /// Plan `i` (none: the learning run): hands the cluster from `leader`
    /// to an instance armed with it, triggers the workload, lets a fresh
    /// instance take over if the plan killed the armed one, and checks the
    /// oracles. Returns the run, every effect the instances made, and the
    /// instance now leading.
    async fn effect_point(
        &mut self,
        i: u64,
        plan: Option<&Plan>,
        leader: OperatorProcess,
    ) -> (PlanRun, Vec<Record>, OperatorProcess) {
        let prefix = format!("{}{}", self.topology.prefix(), self.scenario.prefix());
        leader.stop(&self.env, &self.name, true).await;
        self.journal_for_takeover().await;
        self.journal.catch_up().await;
        let armed_name = format!("{prefix}-fx-{i}");
        let (mut armed, armed_log) = self.effect_instance(&armed_name, plan);
        self.wait_takeover(&armed_name, self.journal.seq()).await;
        let triggered = Instant::now();
        let trigger_seq = self.trigger(i).await;
        let run = self.wait_abort(&mut armed, trigger_seq + 1).await;
        let mut records = read_log(&armed_log);
        let fired = records
            .iter()
            .find(|r| r.injected.is_some())
            .map(|r| format!("{} (#{} of the process)", r.what, r.n));
        let kill_plan = plan.is_some_and(|p| matches!(p.action, Action::Kill | Action::KillBefore));
        let mut after_log = None;
        let (leader, min_seq, fresh) = match run {
            Run::CarriedOut(_) if kill_plan && fired.is_none() => {
                // Carried out without reaching its planned effect: the
                // armed instance may still reach it by a later decision
                // (a pod the workload replaced, labelled afresh) and abort
                // while the convergence is checked, with no one leading
                // then. It is stopped, and an unarmed instance checks.
                armed.stop(&self.env, &self.name, true).await;
                records = read_log(&armed_log);
                self.journal.catch_up().await;
                let name = format!("{prefix}-fx-{i}-after");
                let (next, log) = self.effect_instance(&name, None);
                self.wait_takeover(&name, self.journal.seq()).await;
                after_log = Some(log);
                (next, trigger_seq + 1, None)
            }
            Run::CarriedOut(_) => (armed, trigger_seq + 1, None),
            Run::Aborted(status) => {
                assert_eq!(
                    status.signal(),
                    Some(nix::sys::signal::Signal::SIGABRT as i32),
                    "{armed_name} exited with {status}, not by the plan's abort\n{}",
                    self.dump().await
                );
                assert!(
                    plan.is_some_and(|p| matches!(p.action, Action::Kill | Action::KillBefore))
                        && fired.is_some(),
                    "{armed_name} aborted, but not by its plan {plan:?}\n{}",
                    self.dump().await
                );
                drop(armed);
                self.journal.catch_up().await;
                let crash_seq = self.journal.seq();
                // What the projection holds in flight at the abort.
                let in_flight = self
                    .env
                    .cm_journal_state(self.journal.stream())
                    .await
                    .in_flight;
                // A switchover's pause outlives the instance that set
                // it: the fresh instance starts once it has expired, as a
                // replacement that waits out a Lease (15 s) does, and
                // finds the old primary taking writes again.
                if in_flight
                    .values()
                    .any(|f| matches!(f.planned.intent, Intent::Switchover { .. }))
                {
                    let pause = logbook::actuate::SWITCHOVER_PAUSE_MS;
                    tokio::time::sleep(Duration::from_millis(pause + 1_000)).await;
                }
                let fresh_name = format!("{prefix}-fx-{i}-fresh");
                let (fresh, fresh_log) = self.effect_instance(&fresh_name, None);
                let (takeover_seq, _, _) = self.wait_takeover(&fresh_name, crash_seq).await;
                (fresh, takeover_seq, Some((crash_seq, in_flight, fresh_log)))
            }
        };
        let (primaries, _) = self.check_converged(min_seq).await;
        let converged = triggered.elapsed();
        if let Some(log) = after_log {
            records.extend(read_log(&log));
        }
        let aborted = fresh.is_some();
        let at_crash = fresh.map(|(crash_seq, in_flight, log)| {
            records.extend(read_log(&log));
            (crash_seq, in_flight)
        });
        // Every effect explained by a decision of the journal.
        self.journal.catch_up().await;
        let decided: BTreeSet<Uuid> = self
            .journal
            .after(0)
            .iter()
            .filter_map(|e| match &e.body {
                Event::Decided { intents } => Some(intents.iter().map(|p| p.intent_id)),
                _ => None,
            })
            .flatten()
            .collect();
        let unexplained = unexplained(&records, &decided);
        assert!(
            unexplained.is_empty(),
            "effects no journaled intent explains: {unexplained:#?}\n{}",
            self.dump().await
        );
        // Each intent in flight at the abort resolved by the fresh one.
        let mut resolved = Vec::new();
        if let Some((crash_seq, in_flight)) = at_crash {
            for (id, found) in in_flight {
                let what = logbook::operator::describe_intent(&found.planned.intent);
                let how = resolution(self.journal.after(crash_seq), id)
                    .map(|(_, how)| how)
                    .unwrap_or_else(|| {
                        panic!("{what} ({id}) was in flight at the abort and is not resolved")
                    });
                resolved.push(format!("{what} -> {how}"));
            }
        }
        if self.scenario == Scenario::Standby {
            self.check_promotion_lag(&records).await;
        }
        self.after_point(&primaries).await;
        let effects = records.iter().filter(|r| r.class == Class::Effect).count();
        let run = PlanRun {
            plan: plan.cloned().unwrap_or(Plan {
                intent: None,
                nth: 0,
                action: Action::Fail,
            }),
            fired,
            aborted,
            resolved,
            effects,
            converged,
        };
        (run, records, leader)
    }
}

impl Sweep {
    /// A standby's promotion journals how far behind its source it
    /// stopped from reads of the source's offset around it; the read
    /// before it bounds the lag from below only if the pod still followed
    /// then. When an earlier attempt (cut short after its `REPLICAOF NO
    /// ONE` went out: its reply lost, or the instance killed) had stopped
    /// the pod already, the journaled promotion must not claim that
    /// bound.
    async fn check_promotion_lag(&mut self, records: &[Record]) {
        let sent: Vec<&Record> = records
            .iter()
            .filter(|r| r.class == Class::Effect && r.intent.as_deref() == Some("PromoteStandby"))
            .filter(|r| !matches!(r.injected, Some(Action::Fail | Action::KillBefore)))
            .collect();
        self.journal.catch_up().await;
        let promoted: Vec<(Option<u64>, Option<String>)> = self
            .journal
            .after(0)
            .iter()
            .filter_map(|e| match &e.body {
                Event::StandbyPromoted {
                    source_before,
                    error,
                    ..
                } => Some((*source_before, error.clone())),
                _ => None,
            })
            .collect();
        let [(before, error)] = promoted.as_slice() else {
            panic!(
                "one StandbyPromoted journaled, not {promoted:?}\n{}",
                self.dump().await
            );
        };
        if sent.len() > 1 {
            assert!(
                before.is_none(),
                "the promotion was sent {} times, and the last attempt still claims the source's offset {before:?} before it as a lower bound ({error:?})\n{}",
                sent.len(),
                self.dump().await
            );
        }
    }
}

/// The sweep of `scenario` on `topology` over the plans of `extent`.
async fn sweep(topology: Topology, scenario: Scenario, extent: Extent) {
    let began = Instant::now();
    let (mut sweep, mut leader) = Sweep::start(topology, scenario).await;
    let failover = matches!(scenario, Scenario::KillPrimary | Scenario::DeletePrimary);
    let claims = if failover {
        let password = sweep.env.password(NAME).await;
        Some(ClaimMonitor::start(&sweep.env, topology, NAME, &password))
    } else {
        None
    };
    let name = format!("{topology:?} {scenario:?}");
    // The number of the first plan run (another with a range).
    let mut first = 1;
    let (plans, learned) = match std::env::var(PLAN_ENV) {
        Ok(json) => (vec![serde_json::from_str::<Plan>(&json).unwrap()], None),
        Err(_) => {
            let (run, records, next) = sweep.effect_point(0, None, leader).await;
            leader = next;
            let learned = learned(&records);
            assert!(
                !learned.is_empty(),
                "{name}: the learning run made no effect"
            );
            eprintln!(
                "{name}: learning run converged in {:.1?}, {} effects on the cluster:",
                run.converged, run.effects
            );
            for (intent, effects) in &learned {
                eprintln!("  {intent}: {}", effects.join(" | "));
            }
            match plan_range() {
                None => (plans(&learned, extent), Some(learned)),
                Some(range) => {
                    let all = plans(&learned, extent);
                    eprintln!("{name}: plans {range:?} of {}", all.len());
                    let from = usize::try_from(*range.start()).unwrap();
                    let only: Vec<Plan> = all
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| range.contains(&(u64::try_from(*i).unwrap() + 1)))
                        .map(|(_, plan)| plan)
                        .collect();
                    assert!(!only.is_empty(), "{name}: no plan in {range:?}");
                    first = from;
                    (only, None)
                }
            }
        }
    };
    let mut runs = Vec::new();
    // The intents the plan runs made effects for, faulted or not.
    let mut recurred: BTreeSet<String> = BTreeSet::new();
    let mut queue: std::collections::VecDeque<Plan> = plans.into();
    let mut retried: BTreeSet<String> = BTreeSet::new();
    let mut i = u64::try_from(first).unwrap() - 1;
    while let Some(plan) = queue.pop_front() {
        i += 1;
        let plan = &plan;
        let json = serde_json::to_string(plan).unwrap();
        eprintln!("{name}: plan {i}: {json} (alone: {PLAN_ENV}='{json}')");
        let (run, records, next) = sweep.effect_point(i, Some(plan), leader).await;
        leader = next;
        recurred.extend(learned_intents(&records));
        eprintln!(
            "  {} at {}; {}; in flight {}; converged in {:.1?}",
            plan.action.name(),
            run.fired.as_deref().unwrap_or("(not reached)"),
            if run.aborted {
                "aborted, a fresh instance took over"
            } else {
                "the armed instance carried on"
            },
            if run.resolved.is_empty() {
                "nothing".to_owned()
            } else {
                run.resolved.join("; ")
            },
            run.converged
        );
        runs.push(run);
        if queue.is_empty() {
            // An intent the learning run found that no plan has reached yet
            // (the workload's timing decides whether some intents happen at
            // all, a restarted pod's repair for one): its first effect is
            // planned again, once.
            for intent in never_faulted(learned.as_ref(), extent, &runs) {
                if retried.insert(intent.clone()) {
                    for action in [Action::Fail, Action::Kill] {
                        queue.push_back(Plan {
                            intent: Some(intent.clone()),
                            nth: 1,
                            action,
                        });
                    }
                }
            }
        }
    }
    leader.stop(&sweep.env, &sweep.name, true).await;
    if let Some(claims) = claims {
        let (polls, conflicts) = claims.stop();
        assert!(
            conflicts.is_empty(),
            "{name}: two primaries at once ({polls} polls): {conflicts:?}"
        );
    }
    if let Some(probe) = sweep.probe.take() {
        let log = probe.stop().await;
        let (missing, read_on) = topology.missing(&sweep.env, NAME, &log).await;
        assert!(
            missing.is_empty(),
            "{name}: {} of {} acknowledged writes lost on {read_on}",
            missing.len(),
            log.acked_keys().len()
        );
    }
    let fired = runs.iter().filter(|r| r.fired.is_some()).count();
    // Every intent the learning run found faulted at least once (of the
    // one intent, for a sweep of one): a plan list that reaches nothing
    // proves nothing. An intent that no plan run made any effect for, even
    // when planned again, happened only by the learning run's timing: it is
    // named, not failed.
    let never = never_faulted(learned.as_ref(), extent, &runs);
    let (unreached, timing): (Vec<String>, Vec<String>) = never
        .into_iter()
        .partition(|intent| recurred.contains(intent));
    assert!(
        unreached.is_empty(),
        "{name}: no plan reached an effect of {unreached:?}, though the plan runs made effects for them"
    );
    if !timing.is_empty() {
        eprintln!(
            "{name}: {timing:?} made effects in the learning run only (none in {} plan runs): not faulted",
            runs.len()
        );
    }
    eprintln!(
        "{name}: {} plans, {fired} reached their effect ({} aborted), 0 oracle failures, in {:.1?}",
        runs.len(),
        runs.iter().filter(|r| r.aborted).count(),
        began.elapsed()
    );
    sweep.env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_failover_by_kill() {
    sweep(Topology::Replication, Scenario::KillPrimary, Extent::Short).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_config_roll() {
    sweep(
        Topology::Replication,
        Scenario::Roll,
        Extent::Of(&["Switchover"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_user_sync_and_rotation() {
    sweep(Topology::Replication, Scenario::Users, Extent::Short).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_cluster_deletion() {
    sweep(
        Topology::Replication,
        Scenario::DeleteCluster,
        Extent::Short,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_scale_out_and_in() {
    sweep(Topology::Replication, Scenario::Scale, Extent::Short).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_certificate_renewal() {
    sweep(Topology::Replication, Scenario::Renew, Extent::Short).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_backup() {
    sweep(Topology::Replication, Scenario::Backup, Extent::Short).await;
}

/// Hibernation and waking: every effect of making the data durable and
/// of giving the roles back, failed and killed after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_hibernate_and_wake() {
    sweep(
        Topology::Replication,
        Scenario::Hibernate,
        Extent::Of(&["PersistForHibernation", "Wake"]),
    )
    .await;
}

/// A change of image: its preflight, and the roll (with its
/// switchover) behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_image_change() {
    sweep(
        Topology::Replication,
        Scenario::Upgrade,
        Extent::First(&["PreflightImage", "RollPod", "Switchover"]),
    )
    .await;
}

/// A canary that fails, and the image set back: the canary's roll and
/// its roll back (the preflight is the image change's sweep's; a point
/// here waits 30 s for the canary to fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_canary_rollback() {
    sweep(
        Topology::Replication,
        Scenario::CanaryRollback,
        Extent::First(&["RollPod"]),
    )
    .await;
}

/// Unbinding and rebinding: every effect of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_unbind_and_rebind() {
    sweep(
        Topology::Replication,
        Scenario::Unbind,
        Extent::First(&["ReleaseObjects", "ApplyResources"]),
    )
    .await;
}

/// A change of the operator's defaults: the cluster's spec judged
/// anew, and the roll behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_defaults_roll() {
    sweep(
        Topology::Replication,
        Scenario::DefaultsRoll,
        Extent::First(&["ApplyResources", "RollPod", "Switchover"]),
    )
    .await;
}

/// A switchover asked, then a rebalance back to the preferred pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_rebalance() {
    sweep(
        Topology::Replication,
        Scenario::Rebalance,
        Extent::First(&["Switchover", "RepointReplica"]),
    )
    .await;
}

/// A standby made to follow the sweep's cluster, then promoted: the
/// first effect of each, failed and killed after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_standby_follow_and_promote() {
    sweep(
        Topology::Replication,
        Scenario::Standby,
        Extent::First(&["FollowSource", "PromoteStandby"]),
    )
    .await;
}

/// The hand-back of a fail-back (`placement: Preferred`): the first
/// effect of its switchover, failed and killed after. A point waits out
/// the 30 s hold-down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effect_sweep_fail_back() {
    sweep(
        Topology::Replication,
        Scenario::FailBack,
        Extent::First(&["Switchover"]),
    )
    .await;
}

/// The hand-back of a fail-back (`placement: Preferred`): every effect
/// of its switchover, failed and killed after (the failover before it
/// is the failover sweeps'). A point waits out the 30 s hold-down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a full sweep: make sweep-effects"]
async fn full_effect_sweep_replication_fail_back() {
    sweep(
        Topology::Replication,
        Scenario::FailBack,
        Extent::Of(&["Switchover"]),
    )
    .await;
}

// The full sweeps: every effect of every workload under every action
// (`make sweep-effects`).

macro_rules! full {
    ($($name:ident: $topology:ident $scenario:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "the full sweep: make sweep-effects"]
        async fn $name() {
            sweep(Topology::$topology, Scenario::$scenario, Extent::Full).await;
        }
    )*};
}

full! {
    full_effect_sweep_replication_bootstrap: Replication Create;
    full_effect_sweep_replication_failover_by_kill: Replication KillPrimary;
    full_effect_sweep_replication_failover_by_deletion: Replication DeletePrimary;
    full_effect_sweep_replication_config_roll: Replication Roll;
    full_effect_sweep_replication_scale: Replication Scale;
    full_effect_sweep_replication_users: Replication Users;
    full_effect_sweep_replication_deletion: Replication DeleteCluster;
    full_effect_sweep_replication_backup: Replication Backup;
    full_effect_sweep_sentinel_bootstrap: Sentinel Create;
    full_effect_sweep_sentinel_failover_by_kill: Sentinel KillPrimary;
    full_effect_sweep_sentinel_config_roll: Sentinel Roll;
    full_effect_sweep_standalone_bootstrap: Standalone Create;
    full_effect_sweep_standalone_config_roll: Standalone Roll;
    full_effect_sweep_standalone_deletion: Standalone DeleteCluster;
    full_effect_sweep_cluster_bootstrap: Cluster Create;
    full_effect_sweep_cluster_failover_by_kill: Cluster KillPrimary;
    full_effect_sweep_cluster_failover_by_deletion: Cluster DeletePrimary;
    full_effect_sweep_cluster_reshard: Cluster Reshard;
    full_effect_sweep_replication_tls_bootstrap: Replication CreateTls;
    full_effect_sweep_replication_certificate_renewal: Replication Renew;
    full_effect_sweep_cluster_certificate_renewal: Cluster Renew;
    full_effect_sweep_replication_hibernation: Replication Hibernate;
    full_effect_sweep_sentinel_hibernation: Sentinel Hibernate;
    full_effect_sweep_cluster_hibernation: Cluster Hibernate;
    full_effect_sweep_replication_image_change: Replication Upgrade;
    full_effect_sweep_cluster_image_change: Cluster Upgrade;
    full_effect_sweep_replication_canary_rollback: Replication CanaryRollback;
    full_effect_sweep_replication_unbind: Replication Unbind;
    full_effect_sweep_cluster_unbind: Cluster Unbind;
    full_effect_sweep_replication_rebalance: Replication Rebalance;
    full_effect_sweep_replication_defaults_roll: Replication DefaultsRoll;
    full_effect_sweep_replication_standby: Replication Standby;
}
