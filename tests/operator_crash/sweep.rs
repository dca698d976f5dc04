//! The part of a fault sweep every kind of sweep shares: localkube with a
//! cluster of one topology, a client writing throughout, and the checks of
//! a converged cluster (each scenario's trigger, and when it counts as
//! carried out, are in `scenario.rs`). The crash sweeps of `tests/operator_crash.rs` arm an instance
//! at a journal commit point, the effect sweeps of `tests/effect_faults.rs`
//! at one of its effects; both hand the cluster over, trigger, and check
//! with what is here.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use logbook::valkey::Password;
use logbook_bench::WriteProbe;
use logbook_journal::cluster::describe_slots;
use logbook_journal::{
    Envelope, Event, MigrationPhase, MigrationSide, SlotMigrationJob, SlotRange, StreamId,
};
use logbook_replay::audit::Check;
use uuid::Uuid;

use super::cluster::pod_addrs;
use super::operator_common::*;
use super::s3_server::S3Server;
use super::topology::Topology;

pub use super::scenario::*;

/// The cluster of the failover and roll sweeps.
pub const NAME: &str = "demo";

/// Keys loaded into the cluster of a reshard sweep before its first point
/// (`k:0` ..): enough that every slot range moved carries some, so a lost
/// one shows.
pub const KEYS: u64 = 2_000;
/// How long the journal must stay still (with the scenario carried out)
/// before a run that did not abort counts as done.
pub const QUIET: Duration = Duration::from_secs(3);

/// How an armed instance's run ended.
pub enum Run {
    /// It aborted.
    Aborted(ExitStatus),
    /// It carried the scenario out, this long after the trigger, then
    /// committed nothing for [`QUIET`]: it will not reach its crash point.
    CarriedOut(Duration),
}

/// Everything one sweep shares across its points.
pub struct Sweep {
    pub env: Env,
    pub topology: Topology,
    pub scenario: Scenario,
    pub kubeconfig: PathBuf,
    pub workdir: tempfile::TempDir,
    /// The cluster in play (for `Create`, each point's new one).
    pub name: String,
    /// Where the next takeover shows: the cluster's stream (for `Create`,
    /// the operator's own until the point's cluster exists).
    pub journal: JournalTail,
    /// A client writing with `WAIT 1` since the start, through the client
    /// Service or routed by slot (none for `Create`: there each point's
    /// cluster is new).
    pub probe: Option<WriteProbe>,
    /// The pod the last trigger killed (`KillPrimary`).
    pub killed: Option<String>,
    /// The revision the last trigger rolls the pods away from (`Roll`).
    pub old_revision: Option<String>,
    /// Keys loaded before the first point, all read back after each
    /// (`Reshard`; 0 for the others).
    pub loaded: u64,
    /// The change the last trigger made (see [`Point::change`]).
    pub change: String,
    /// The pods before the last trigger (`Reshard`: a scale-in removes
    /// some).
    pub pods_before: Vec<String>,
    /// The password the last trigger gave the user (`Users`).
    pub user_password: Option<String>,
    /// The one it replaced, refused once its rotation window closed.
    pub old_user_password: Option<String>,
    /// The bucket's server (`Backup`).
    pub s3: Option<S3Server>,
    /// The ValkeyBackup the last trigger created (`Backup`).
    pub backup: Option<String>,
    /// The fingerprint of the certificate the last trigger let fall due
    /// (`Renew`).
    pub old_certificate: Option<String>,
    /// While the sweep runs, the harness speaks TLS to the pods (for the
    /// scenarios with `spec.tls`).
    pub tls: Vec<logbook_bench::TlsHosts>,
    /// The probe's acknowledged writes the point's standby was seen to
    /// hold before it was promoted (`Standby`).
    pub standby_held: std::sync::Mutex<Vec<u64>>,
}

impl Sweep {
    /// Localkube, a first (unarmed) operator and, but for `Create`, the
    /// cluster Ready with a client writing.
    pub async fn start(topology: Topology, scenario: Scenario) -> (Sweep, OperatorProcess) {
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
        let s3 = (scenario == Scenario::Backup).then(|| {
            let s3 = S3Server::start_at(env.host_for_pods(), None, &[]);
            s3.create_bucket(BUCKET);
            s3
        });
        if let Some(s3) = &s3 {
            put_s3_secret(&env, s3).await;
        }
        let tls = if scenario.tls() {
            env.speak_tls()
        } else {
            Vec::new()
        };
        let (journal, probe) = if scenario.creates() {
            (env.cm_journal_tail(&StreamId::operator()), None)
        } else {
            let mut yaml = spec_yaml(topology, scenario, NAME);
            if scenario == Scenario::Backup {
                yaml.push_str(&format!(
                    "  backup:\n    destination:\n      bucket: {BUCKET}\n      prefix: sweep\n      credentialsSecret: {S3_SECRET}\n"
                ));
            }
            env.apply_yaml(&yaml).await;
            topology
                .wait_ready(&env, NAME, Duration::from_secs(90))
                .await;
            if scenario == Scenario::Reshard {
                let password = env.password(NAME).await;
                load(&pod_addrs(&env, NAME).await, &password, KEYS).await;
            }
            if scenario == Scenario::CanaryRollback {
                // A hash field with a TTL (9.x): 8.0 cannot store it, so
                // a 9.1 primary cannot give an 8.0 replica a full copy
                // ("Can't store key in RDB version 11"): every canary of
                // 8.0 fails.
                let password = env.password(NAME).await;
                let vkc = env.vkc(NAME).await;
                let reply = redis_cli(
                    &env.pod_addr(&primary(&vkc)).await,
                    &password,
                    &[
                        "HSETEX", "session", "EX", "100000", "FIELDS", "1", "token", "t",
                    ],
                );
                assert_eq!(reply.trim(), "1", "{reply}");
            }
            // A deleted cluster takes no writes.
            let probe = if scenario == Scenario::DeleteCluster {
                None
            } else {
                topology.start_probe(&env, NAME).await
            };
            if let Some(probe) = &probe {
                env.eventually(Duration::from_secs(10), "acknowledged writes", || {
                    let n = probe.acked_count();
                    async move { n >= 20 }
                })
                .await;
            }
            (env.cm_journal_tail(&env.stream(NAME).await), probe)
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
            user_password: None,
            old_user_password: None,
            s3,
            backup: None,
            old_certificate: None,
            tls,
            standby_held: std::sync::Mutex::default(),
        };
        if scenario.creates() {
            // Leading (so that it stops cleanly at the first point: its
            // SIGTERM handler is in place).
            sweep.wait_takeover(&setup, 0).await;
        }
        (sweep, first)
    }

    /// For failure messages: [`Env::dump`] and the journal's last events,
    /// as `logbook replay timeline` prints them.
    pub async fn dump(&self) -> String {
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
    pub fn operator(&self, instance: &str, crash_at: Option<u64>) -> OperatorProcess {
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

    /// Points [`Sweep::journal`] where the next instance's takeover
    /// shows: the operator's own stream when each point creates a cluster
    /// and there is none other, the sweep's cluster's for a standby's
    /// points (its source), the point's cluster's otherwise.
    pub async fn journal_for_takeover(&mut self) {
        if self.scenario.creates() {
            self.journal = self.env.cm_journal_tail(&StreamId::operator());
        } else if self.scenario.new_cluster_each_point() {
            self.journal = self.env.cm_journal_tail(&self.env.stream(NAME).await);
        }
    }

    /// Waits for `instance`'s `OperatorStarted` after `after` in
    /// [`Sweep::journal`]; returns that event's seq, its epoch and gap.
    pub async fn wait_takeover(&mut self, instance: &str, after: u64) -> (u64, u64, Option<u64>) {
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

    /// Waits until the armed instance aborts, or carries the scenario out
    /// (in a status at journal seq `min_seq` or later) and then commits
    /// nothing for [`QUIET`].
    pub async fn wait_abort(&mut self, armed: &mut OperatorProcess, min_seq: u64) -> Run {
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
    pub async fn check_converged(&self, min_seq: u64) -> (Vec<String>, u64) {
        let env = &self.env;
        // A new leader publishes what its journal says before its first
        // probe round: after a crash that lost the observations of a dead
        // primary, that is "Ready" with the dead one for a round. What
        // counts is a status the pods' own answers bear out.
        let deadline = Instant::now() + Duration::from_secs(60);
        let primaries = loop {
            let done = self.done(min_seq).await;
            let why = if done && self.scenario == Scenario::DeleteCluster {
                break Vec::new();
            } else if done {
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
        if self.scenario == Scenario::Standby {
            self.check_promoted(&primaries).await;
        }
        if let Some(probe) = &self.probe {
            // Writes go on on the primaries; none acknowledged is missing
            // (a standby's are the source's, the sweep's cluster).
            let now = Instant::now();
            env.wait_acked_after(probe, now, "an acknowledged write after converging")
                .await;
            let log = probe.snapshot();
            let written = if self.scenario == Scenario::Standby {
                NAME
            } else {
                &self.name
            };
            let (missing, read_on) = self.topology.missing(env, written, &log).await;
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
        // Nothing left in flight; the journal verifies and audits clean.
        let report = match env.cm_journal_at_rest(self.journal.stream()).await {
            Ok(report) => report,
            Err(why) => panic!("{why}\n{}", self.dump().await),
        };
        let moves = report
            .checks
            .iter()
            .find(|c| c.check == Check::MoveIssuedTwice.name())
            .map_or(0, |c| c.examined);
        (primaries, moves)
    }

    /// Checks a promoted standby: every write of the source it held before
    /// its promotion is on its primary, which takes a write of its own.
    async fn check_promoted(&self, primaries: &[String]) {
        let env = &self.env;
        let held = self.standby_held.lock().unwrap().clone();
        assert!(
            !held.is_empty(),
            "the standby was promoted before it held a write"
        );
        let [primary] = primaries else {
            panic!("the promoted standby has primaries {primaries:?}");
        };
        let password = env.password(&self.name).await;
        let addr = env.pod_addr(primary).await;
        let missing = logbook_bench::missing_keys(
            &addr,
            Some(&Password::new(password.clone())),
            "probe",
            &held,
        )
        .await
        .unwrap();
        assert!(
            missing.is_empty(),
            "{} of the {} writes the standby held before its promotion are not on {primary}: {:?}\n{}",
            missing.len(),
            held.len(),
            &missing[..missing.len().min(20)],
            self.dump().await
        );
        let reply = redis_cli(&addr, &password, &["SET", "promoted", "yes"]);
        assert_eq!(
            reply.trim(),
            "OK",
            "the promoted {primary} refused a write: {reply}"
        );
    }

    /// Fails when two slot migration jobs were started for one move since
    /// journal seq `after` ([`jobs_started_twice`]).
    pub async fn assert_no_job_twice(&self, n: u64, after: u64) {
        let twice = jobs_started_twice(self.journal.after(after));
        assert!(
            twice.is_empty(),
            "n={n}: slot migration jobs started twice: {twice:?}\n{}",
            self.dump().await
        );
    }
}

/// The epoch and description of intent `id`'s outcome in `events`.
pub fn resolution(events: &[Envelope], id: Uuid) -> Option<(u64, String)> {
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
pub fn jobs_started_twice(events: &[Envelope]) -> Vec<String> {
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

/// `events` in short: each one's kind, and the milliseconds since the
/// first.
pub fn timeline(events: &[Envelope]) -> String {
    let Some(first) = events.first() else {
        return "none".to_owned();
    };
    events
        .iter()
        .map(|e| format!("+{} {}", e.at.millis_since(first.at), e.body.kind()))
        .collect::<Vec<_>>()
        .join(", ")
}
