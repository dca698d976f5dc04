//! `logbook-bench spec-trials`: spec changes generated from the CRD's
//! schema (`spec_mutations`, in the style of Acto) applied to a live
//! cluster one step at a time, while the recorded-history client works on
//! it, each step judged by oracles:
//!
//! * **Refused clearly, or converged**: a step the API server refuses must
//!   be one the schema forbids (or one only the server can judge), and its
//!   message names the field; a step it accepts is either refused by the
//!   operator (`SpecValid=False`, a `SpecRejected` Event, and not one
//!   object changed) or converges (Ready, the generation observed) within
//!   the step's time. Neither is a finding, with the status it was left in.
//! * **Field by field**: a value a converged step set appears in the
//!   objects the operator made (the value-matching oracle of Acto), unless
//!   the field steers the operator's behaviour only ([`BEHAVIOUR_ONLY`]).
//! * **Revert**: setting back the spec a converged step started from
//!   restores the objects exactly as they were before it.
//! * **Differential**: a fresh cluster created with a chain's final spec,
//!   in another namespace, has the same objects.
//! * **No loss, a clean journal**: the history (lists and registers) is
//!   judged against the client promises at the end, and the journal must
//!   verify and its audit be clean.
//!
//! A step applies the whole spec (a `PUT` of the object with the step's
//! spec), so a deletion deletes and a wrong type reaches the API server as
//! the user would send it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use super::history::{self, HistoryLoad};
use super::journal_checks::journal_checks;
use super::operator::Operator;
use super::schedule::SoakTopology;
use super::servers::{password, service_addr};
use super::state::State;
use super::trial_cluster::{CONTAINER_FAILING, Cluster, RawObject};
use super::trial_report::cut;
pub use super::trial_report::{ChainReport, StepOutcome, StepReport, TrialReport};
use super::user_trials::{Backups, Users};
use super::{NAME, NS, spec_of};
use crate::spec_mutations::{Chain, CrdSchema, Expectation, Mutation, Op, chain, load_crds_at};
use crate::{BenchError, harness};
use logbook::valkey::Password;

/// The namespace of the differential oracle's fresh clusters.
const FRESH_NS: &str = "fresh";

/// The reason of the Event (and the Ready condition) the operator gives
/// a spec it refuses.
const SPEC_REJECTED: &str = "SpecRejected";

/// Spec fields that steer what the operator does, not what it renders:
/// a value set there is not looked for in the objects (the other oracles
/// still hold).
pub const BEHAVIOUR_ONLY: &[&str] = &[
    "/failover",
    "/journal",
    "/backup",
    "/restoreFrom",
    "/paused",
    "/auth",
    "/tls",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct TrialConfig {
    /// The topology of the cluster the chains are applied to.
    pub topology: SoakTopology,
    /// The chains' seed.
    pub seed: u64,
    /// How many chains.
    pub chains: usize,
    /// The index of the first chain (of each kind): `chain N` of a report
    /// is index `first_index + N - 1` when no chain was empty, so one
    /// chain runs again alone with `--first-chain` and `--chains 1`.
    pub first_index: u64,
    /// How many chains of ValkeyUser changes (on a user of the cluster).
    pub user_chains: usize,
    /// How many chains of ValkeyBackup changes.
    pub backup_chains: usize,
    /// The longest chain.
    pub max_len: usize,
    /// The `logbook` binary run as the operator.
    pub binary: PathBuf,
    /// The CRDs file the mutations come from.
    pub crds: PathBuf,
    /// How long a step has to converge or be refused.
    pub step_timeout: Duration,
    /// Run the differential oracle (a fresh cluster per chain).
    pub differential: bool,
    /// The history client's load.
    pub history: HistoryLoad,
    /// Keep the work directory even when every oracle held.
    pub keep: bool,
}

impl TrialConfig {
    /// The command that runs these trials again.
    pub fn command(&self) -> String {
        format!(
            "logbook-bench spec-trials --topology {} --seed {} --chains {} --first-chain {} --user-chains {} --backup-chains {} --max-steps {} --step-timeout-seconds {}{} --operator-binary {}",
            self.topology.name(),
            self.seed,
            self.chains,
            self.first_index,
            self.user_chains,
            self.backup_chains,
            self.max_len,
            self.step_timeout.as_secs(),
            if self.differential {
                ""
            } else {
                " --no-differential"
            },
            self.binary.display()
        )
    }
}

/// The spec the chains start from: the soak's, with the fields most
/// users set, so that there is something to change and to delete.
pub fn base_spec(topology: SoakTopology) -> Value {
    let mut spec = spec_of(topology);
    if let Some(obj) = spec.as_object_mut() {
        obj.insert(
            "resources".into(),
            serde_json::json!({"requests": {"memory": "64Mi", "cpu": "50m"}, "limits": {"memory": "512Mi"}}),
        );
        obj.insert("labels".into(), serde_json::json!({"team": "cache"}));
        let config = obj.entry("config").or_insert_with(|| serde_json::json!({}));
        if let Some(config) = config.as_object_mut() {
            config.insert("maxmemory-policy".into(), "noeviction".into());
        }
    }
    spec
}

/// Runs the trials on localkube. Findings are in the report; `Err` is the
/// harness failing.
///
/// # Errors
/// [`BenchError`] when the trials cannot be set up.
pub async fn run_trials(config: &TrialConfig) -> Result<TrialReport, BenchError> {
    let started = Instant::now();
    let prefix = format!(
        "logbook-trials-{}-{}-",
        config.topology.name().to_lowercase(),
        config.seed
    );
    let (dir, server) = crate::start_local_kube(&prefix).await?;
    let result = async {
        let (kubeconfig, client) = crate::api_client(&server, dir.path()).await?;
        trials(dir.path(), kubeconfig, client, config).await
    }
    .await;
    crate::stop_local_kube(dir.path(), server).await;
    let mut report = result?;
    report.elapsed = started.elapsed();
    if config.keep || !report.passed() {
        report.kept = Some(dir.keep());
    }
    Ok(report)
}

async fn trials(
    dir: &Path,
    kubeconfig: PathBuf,
    client: kube::Client,
    config: &TrialConfig,
) -> Result<TrialReport, BenchError> {
    // At v1alpha1, the version the trials write at (`RawObject`): each
    // step crosses the conversion webhook to the stored v1beta1 and back.
    let schemas = load_crds_at(&config.crds, Some("v1alpha1"))
        .map_err(|e| harness("the CRDs")(e.to_string()))?;
    let schema = schemas
        .iter()
        .find(|s| s.kind == "ValkeyCluster")
        .ok_or_else(|| harness("the CRDs")("no ValkeyCluster".into()))?;
    let base = base_spec(config.topology);
    let mut operator = Operator {
        binary: config.binary.clone(),
        kubeconfig,
        journal: dir.join("journal"),
        log: dir.join("operator.log"),
        child: None,
        starts: 0,
        crashes: Vec::new(),
    };
    operator.start()?;
    let cluster = Cluster::new(&client, NS);
    cluster
        .raw
        .create(&base)
        .await
        .map_err(harness("creating the ValkeyCluster"))?;
    if let (StepOutcome::Stuck(why), _) = cluster.settle(None, Duration::from_secs(180)).await {
        return Err(harness("the first Ready")(format!(
            "not Ready in 180 s: {why}"
        )));
    }
    if config.differential {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": FRESH_NS}}))
                .map_err(|e| harness("a namespace")(e.to_string()))?;
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| harness("the fresh namespace")(e.to_string()))?;
    }
    let password = password(&client).await?;
    let service = service_addr(&client, NAME, 6379).await?;
    let sentinel = if config.topology == SoakTopology::Sentinel {
        Some(service_addr(&client, &format!("{NAME}-sentinel"), 26379).await?)
    } else {
        None
    };
    let way = history::Way {
        service: service.clone(),
        sentinel,
        seeds: vec![service.clone()],
    };
    let recorder = history::start(
        config.topology,
        way,
        &password,
        &format!("trial{}", config.seed),
        config.seed,
        config.history,
    )
    .await?;

    let mut reports = Vec::new();
    let mut index = config.first_index;
    let most = config.first_index + 64 + 8 * u64::try_from(config.chains).unwrap_or(64);
    while reports.len() < config.chains && index < most {
        // Each chain starts from the base, or as near it as the fields
        // that may only grow allow, and is generated from where it
        // really starts (so its expectations are right).
        let start = match back_to_base(&cluster, &base, config.step_timeout).await {
            Ok(start) => start,
            Err(why) => {
                reports.push(ChainReport::not_started(&format!("chain {index}"), why));
                break;
            }
        };
        let next = chain(schema, &start, config.seed, index, config.max_len);
        index += 1;
        if next.is_empty() {
            continue;
        }
        let report = run_chain(&cluster, &client, &next, config).await;
        log_chain("chain", reports.len(), config.chains, &report);
        reports.push(report);
    }

    if config.user_chains + config.backup_chains > 0 {
        match back_to_base(&cluster, &base, config.step_timeout).await {
            Ok(_) => {
                other_chains(&client, &schemas, &password, config, &mut reports).await;
            }
            Err(why) => reports.push(ChainReport::not_started("the user and backup chains", why)),
        }
    }

    let mut violations = Vec::new();
    let history = history::finish(recorder, dir, &mut violations).await;
    operator.stop().await;
    violations.extend(journal_checks(&config.binary, &operator.journal).await);
    violations.extend(operator.failures());
    Ok(TrialReport {
        command: config.command(),
        chains: reports,
        history,
        violations,
        kept: None,
        elapsed: Duration::ZERO,
    })
}

/// The ValkeyUser chains, then the ValkeyBackup chains, on objects of
/// the cluster under trial, each report pushed to `reports` (a setup
/// that fails is a finding of its own).
async fn other_chains(
    client: &kube::Client,
    schemas: &[CrdSchema],
    password: &Password,
    config: &TrialConfig,
    reports: &mut Vec<ChainReport>,
) {
    let schema = |kind: &str| schemas.iter().find(|s| s.kind == kind);
    let not_started = ChainReport::not_started;
    let first = reports.len();
    if config.user_chains > 0 {
        match (
            schema("ValkeyUser"),
            Users::setup(client, password, config.step_timeout).await,
        ) {
            (Some(schema), Ok(users)) => {
                let mut index = config.first_index;
                let most =
                    config.first_index + 64 + 8 * u64::try_from(config.user_chains).unwrap_or(64);
                while reports.len() - first < config.user_chains && index < most {
                    let start = match users.back_to_base(config.step_timeout).await {
                        Ok(start) => start,
                        Err(why) => {
                            reports.push(not_started("the next user chain", why));
                            break;
                        }
                    };
                    let next = chain(schema, &start, config.seed, index, config.max_len);
                    index += 1;
                    if next.is_empty() {
                        continue;
                    }
                    let report = users.run_chain(&next, config.step_timeout).await;
                    log_chain(
                        "user chain",
                        reports.len() - first,
                        config.user_chains,
                        &report,
                    );
                    reports.push(report);
                }
            }
            (None, _) => reports.push(not_started("the user chains", "no ValkeyUser CRD".into())),
            (_, Err(why)) => reports.push(not_started("the user chains", why)),
        }
    }
    let first = reports.len();
    if config.backup_chains > 0 {
        match (schema("ValkeyBackup"), Backups::setup(client).await) {
            (Some(schema), Ok(backups)) => {
                let mut index = config.first_index;
                let most =
                    config.first_index + 64 + 8 * u64::try_from(config.backup_chains).unwrap_or(64);
                while reports.len() - first < config.backup_chains && index < most {
                    let start = match backups.spec().await {
                        Ok(start) => start,
                        Err(why) => {
                            reports.push(not_started("the next backup chain", why));
                            break;
                        }
                    };
                    let next = chain(schema, &start, config.seed, index, config.max_len);
                    index += 1;
                    if next.is_empty() {
                        continue;
                    }
                    let report = backups.run_chain(&next).await;
                    log_chain(
                        "backup chain",
                        reports.len() - first,
                        config.backup_chains,
                        &report,
                    );
                    reports.push(report);
                }
            }
            (None, _) => {
                reports.push(not_started(
                    "the backup chains",
                    "no ValkeyBackup CRD".into(),
                ));
            }
            (_, Err(why)) => reports.push(not_started("the backup chains", why)),
        }
    }
}

fn log_chain(what: &str, done: usize, of: usize, report: &ChainReport) {
    eprintln!(
        "spec-trials: {what} {} of {of}: {} steps, {} findings",
        done + 1,
        report.steps.len(),
        report.findings.len() + report.steps.iter().map(|s| s.findings.len()).sum::<usize>()
    );
}

/// Sets the spec back to `base` (the previous chain left its own) and
/// waits for it; where the API server refuses that because a field may
/// only grow (`storage.size`), keeps that field as it is. Returns the spec
/// the cluster then runs; `Err` says why none could be had.
async fn back_to_base(cluster: &Cluster, base: &Value, timeout: Duration) -> Result<Value, String> {
    let now = cluster.raw.spec().await;
    if now.as_ref() == Some(base) {
        return Ok(base.clone());
    }
    let mut target = base.clone();
    let mut generation = cluster.raw.put_spec(&target).await;
    if let (Err(kube::Error::Api(_)), Some(size)) = (
        &generation,
        now.as_ref()
            .and_then(|n| n.pointer("/storage/size"))
            .cloned(),
    ) && let Some(storage) = target
        .pointer_mut("/storage")
        .and_then(Value::as_object_mut)
    {
        storage.insert("size".into(), size);
        generation = cluster.raw.put_spec(&target).await;
    }
    match generation {
        Ok(generation) => match cluster.settle(generation, timeout).await.0 {
            StepOutcome::Converged(_) => Ok(target),
            other => Err(format!("could not return to the base spec: {other:?}")),
        },
        Err(e) => Err(format!("could not return to the base spec: {e}")),
    }
}

/// What a chain's steps leave behind for its revert: whether the last
/// one left a converged state, the spec in force, and for each step the
/// snapshot taken before it (when it started from a converged state) and
/// the spec in force then: what reverting it sets back (not the spec the
/// step was made from, which the operator may have refused).
pub(super) struct Walk<S> {
    /// Whether the steps so far left a converged state.
    pub(super) converged: bool,
    /// The spec in force: the last one that converged.
    pub(super) effective: Value,
    before: Vec<Option<S>>,
    in_force: Vec<Value>,
}

impl<S: Clone> Walk<S> {
    pub(super) fn new(base: &Value) -> Walk<S> {
        Walk {
            converged: true,
            effective: base.clone(),
            before: Vec::new(),
            in_force: Vec::new(),
        }
    }

    /// One step run from `snapshot` (taken before it) to `outcome`.
    pub(super) fn record(&mut self, snapshot: Option<S>, attempted: &Value, outcome: &StepOutcome) {
        self.before.push(snapshot);
        self.in_force.push(self.effective.clone());
        self.converged = match outcome {
            StepOutcome::Converged(_) => {
                self.effective = attempted.clone();
                true
            }
            StepOutcome::RefusedByApi(_) | StepOutcome::RefusedByOperator(_) => self.converged,
            StepOutcome::FailingInPods(_) | StepOutcome::Stuck(_) => false,
        };
    }

    /// The last step that converged (or, with `failing`, that the pods
    /// could not run) from a converged state: its index, the snapshot
    /// before it and the spec to set back.
    pub(super) fn last_to_revert(
        &self,
        steps: &[StepReport],
        failing: bool,
    ) -> Option<(usize, S, Value)> {
        steps.iter().enumerate().rev().find_map(|(i, s)| {
            let revertible = match s.outcome {
                StepOutcome::Converged(_) => true,
                StepOutcome::FailingInPods(_) => failing,
                _ => false,
            };
            if !revertible {
                return None;
            }
            let was = self.before.get(i).cloned().flatten()?;
            Some((i, was, self.in_force.get(i)?.clone()))
        })
    }
}

async fn run_chain(
    cluster: &Cluster,
    client: &kube::Client,
    chain: &Chain,
    config: &TrialConfig,
) -> ChainReport {
    let mut report = ChainReport::of(chain);
    let mut walk = Walk::new(&chain.base);
    for (m, attempted) in &chain.steps {
        let state = if walk.converged {
            cluster.state().await.ok()
        } else {
            None
        };
        // A failure the last step that reached the pods left was said by
        // its own Event; a refused step (by the API server or the operator)
        // changed no pod, so the failure before it is still the one said.
        let failing = report
            .steps
            .iter()
            .rev()
            .find(|s| {
                !matches!(
                    s.outcome,
                    StepOutcome::RefusedByApi(_) | StepOutcome::RefusedByOperator(_)
                )
            })
            .is_some_and(|s| matches!(s.outcome, StepOutcome::FailingInPods(_)));
        let step = run_step(cluster, m, attempted, state.as_ref(), failing, config).await;
        walk.record(state, attempted, &step.outcome);
        report.steps.push(step);
    }
    // Differential: a fresh cluster with the final spec.
    if config.differential && walk.converged {
        match differential(client, cluster, &walk.effective, config.step_timeout).await {
            Ok(diff) if diff.is_empty() => {
                report.same_as_fresh = Some(true);
                report.held.push(
                    "differential: a fresh cluster with the final spec made the same objects"
                        .into(),
                );
            }
            Ok(diff) => {
                report.same_as_fresh = Some(false);
                report.findings.push(format!(
                    "a fresh cluster with the final spec differs: {}",
                    diff.join("; ")
                ));
            }
            Err(e) => report
                .findings
                .push(format!("the differential oracle could not run: {e}")),
        }
    }
    // Revert: the last step run from a converged state, undone: one
    // that converged, or one the pods could not run (what a user undoes).
    if let Some((i, was, spec)) = walk.last_to_revert(&report.steps, true) {
        let outcome = match cluster.raw.put_spec(&spec).await {
            Ok(generation) => {
                let (outcome, premature) = cluster.settle(generation, config.step_timeout).await;
                report.findings.extend(premature);
                outcome
            }
            // A transition rule (a field that may only grow): the step
            // cannot be undone, by design, and the refusal says so.
            Err(kube::Error::Api(e)) if e.code == 422 => StepOutcome::RefusedByApi(e.message),
            Err(e) => StepOutcome::Stuck(format!("the revert could not be sent: {e}")),
        };
        match outcome {
            StepOutcome::Converged(_) => match cluster.state().await {
                Ok(now) => {
                    let diff = was.diff(&now);
                    report.reverted = Some(diff.is_empty());
                    if diff.is_empty() {
                        report.held.push(format!(
                            "revert: undoing step {} restored all {} objects",
                            i + 1,
                            now.objects.len()
                        ));
                    } else {
                        report.findings.push(format!(
                            "reverting step {} did not restore the objects: {}",
                            i + 1,
                            diff.join("; ")
                        ));
                    }
                }
                Err(e) => report
                    .findings
                    .push(format!("the state after the revert: {e}")),
            },
            StepOutcome::RefusedByApi(message) => report.held.push(format!(
                "revert: step {} cannot be undone, the API server says: {}",
                i + 1,
                cut(&message)
            )),
            other => report.not_reverted(i, &other),
        }
    }
    report
}

async fn run_step(
    cluster: &Cluster,
    m: &Mutation,
    attempted: &Value,
    before: Option<&State>,
    failing_before: bool,
    config: &TrialConfig,
) -> StepReport {
    let mut findings = Vec::new();
    let mut on_servers = false;
    let rejections = cluster.warnings(SPEC_REJECTED).await;
    let failures = cluster.warnings(CONTAINER_FAILING).await;
    let mut unchanged = false;
    let outcome = match send(&cluster.raw, m, attempted, &mut findings).await {
        Err(outcome) => outcome,
        Ok((was, generation)) => {
            // The same spec once defaulted: nothing new to refuse or roll.
            unchanged = was == generation;
            let (outcome, premature) = cluster.settle(generation, config.step_timeout).await;
            findings.extend(premature);
            outcome
        }
    };
    match &outcome {
        StepOutcome::RefusedByApi(_) => {}
        StepOutcome::RefusedByOperator(message) => {
            if !unchanged && cluster.warnings(SPEC_REJECTED).await <= rejections {
                findings.push(format!(
                    "refused in the status ({message}) but no SpecRejected Event"
                ));
            }
            if let (Some(before), Ok(now)) = (before, cluster.state().await) {
                let diff = before.diff(&now);
                if !diff.is_empty() {
                    findings.push(format!(
                        "a refused spec changed objects: {}",
                        diff.join("; ")
                    ));
                }
            }
        }
        StepOutcome::Converged(_) => {
            // On the servers themselves: the setting every data node
            // reports (a step that brought its own password is not
            // judged there).
            let expected = super::field_oracles::expected(m, attempted);
            if !expected.is_empty() {
                let parameters: Vec<String> =
                    expected.iter().map(|e| e.parameter.clone()).collect();
                if let Ok(observed) = cluster.settings_on_servers(&parameters).await {
                    on_servers = !observed.is_empty();
                    findings.extend(super::field_oracles::judge(&m.path, &expected, &observed));
                }
            }
            if let Some(roles) = super::field_oracles::expected_roles(m, attempted)
                && let Ok(seen) = cluster.roles_on_servers().await
            {
                on_servers = true;
                findings.extend(super::field_oracles::judge_roles(roles, &seen));
            }
            let needles = reflected_values(m);
            if !needles.is_empty()
                && let Ok(now) = cluster.state().await
            {
                for needle in needles.iter().filter(|n| !now.mentions(n)) {
                    findings.push(format!(
                        "converged, but {needle} ({}) appears in no object the operator made",
                        m.path
                    ));
                }
            }
        }
        StepOutcome::FailingInPods(message) => {
            let said = if failing_before {
                failures > 0
            } else {
                cluster.warnings(CONTAINER_FAILING).await > failures
            };
            if !said {
                findings.push(format!(
                    "the status says the pods fail ({message}) but no ContainerFailing Event"
                ));
            }
        }
        StepOutcome::Stuck(why) => findings.push(format!(
            "neither converged nor refused in {} s: {why}",
            config.step_timeout.as_secs()
        )),
    }
    StepReport {
        mutation: m.to_string(),
        outcome,
        findings,
        on_servers,
    }
}

/// Sends a step's spec: `Ok` of the generation before and after when the
/// API server accepted it (its schema must allow it), `Err` of the outcome
/// when it refused it (the schema must forbid it, and the refusal name the
/// field) or failed. Findings go to `findings`.
pub(super) async fn send(
    object: &RawObject,
    m: &Mutation,
    attempted: &Value,
    findings: &mut Vec<String>,
) -> Result<(Option<i64>, Option<i64>), StepOutcome> {
    match object.put_spec_from(attempted).await {
        Ok(generations) => {
            accepted_by_api(m, findings);
            Ok(generations)
        }
        Err(e) => Err(refused_by_api(m, e, findings).unwrap_or_else(|e| {
            findings.push(format!("the API server failed: {e}"));
            StepOutcome::Stuck(e.to_string())
        })),
    }
}

/// The oracles of a step the API server refused (422 or 400): the schema
/// must forbid it, and the message must name the field. `Err` gives back
/// any other error (the API server failing is no refusal).
fn refused_by_api(
    m: &Mutation,
    error: kube::Error,
    findings: &mut Vec<String>,
) -> Result<StepOutcome, kube::Error> {
    match error {
        kube::Error::Api(e) if e.code == 422 || e.code == 400 => {
            if m.expect == Expectation::Accept {
                findings.push(format!(
                    "the API server refused a spec its schema allows: {}",
                    e.message
                ));
            }
            // A rule on a field's parent names the parent: the refusal
            // the schema predicts, by its own message.
            let predicted = m.expect == Expectation::RefuseBySchema
                && m.reason
                    .split_once(": ")
                    .is_some_and(|(_, rule)| e.message.contains(rule));
            if let Some(field) = field_name(&m.path)
                && !e.message.contains(&field)
                && !predicted
            {
                findings.push(format!("the refusal does not name {field}: {}", e.message));
            }
            Ok(StepOutcome::RefusedByApi(e.message))
        }
        other => Err(other),
    }
}

/// The oracle of a step the API server accepted: its schema must allow it.
fn accepted_by_api(m: &Mutation, findings: &mut Vec<String>) {
    if m.expect == Expectation::RefuseBySchema {
        findings.push(format!(
            "the API server accepted a spec its schema forbids ({})",
            m.reason
        ));
    }
}

/// A fresh cluster with `spec` in [`FRESH_NS`]: what differs from
/// `cluster`'s objects (empty: the same). It is deleted after.
async fn differential(
    client: &kube::Client,
    cluster: &Cluster,
    spec: &Value,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let fresh = Cluster::new(client, FRESH_NS);
    fresh.raw.create(spec).await?;
    let (outcome, _) = fresh.settle(None, timeout).await;
    let result = match outcome {
        StepOutcome::Converged(_) => {
            let (a, b) = (cluster.state().await?, fresh.state().await?);
            Ok(a.diff(&b))
        }
        other => Err(format!("the fresh cluster did not converge: {other:?}")),
    };
    fresh.delete_and_wait(timeout).await?;
    result
}

/// The last named segment of a JSON pointer (`/storage/size` → `size`),
/// which a refusal must name.
fn field_name(path: &str) -> Option<String> {
    path.rsplit('/')
        .find(|s| !s.is_empty() && s.parse::<usize>().is_err())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
}

/// The texts a converged step's value must show as, somewhere in the
/// objects: a string of three characters or more, or a number past 1,
/// set outside [`BEHAVIOUR_ONLY`]; a persistence as the two directives
/// that say it to Valkey. Empty: nothing to look for.
fn reflected_values(m: &Mutation) -> Vec<String> {
    if BEHAVIOUR_ONLY.iter().any(|p| m.path.starts_with(p)) {
        return Vec::new();
    }
    if m.path == "/storage/persistence"
        && let Op::Set(Value::String(p)) = &m.op
    {
        // Valkey's own words: RDB snapshots on a schedule or `save ""`,
        // the append-only file on or off.
        let Some((rdb, aof)) = super::field_oracles::persistence_parts(p) else {
            return Vec::new();
        };
        return vec![
            if rdb { "save 3600" } else { "save \"\"" }.to_owned(),
            format!("appendonly {}", if aof { "yes" } else { "no" }),
        ];
    }
    match &m.op {
        Op::Set(Value::String(s)) if s.chars().count() >= 3 => vec![s.clone()],
        Op::Set(Value::Number(n)) if n.as_f64().is_some_and(|f| f.abs() > 1.0) => {
            vec![n.to_string()]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_refusal_names_the_last_named_segment() {
        assert_eq!(field_name("/storage/size").as_deref(), Some("size"));
        assert_eq!(field_name("/tolerations/0").as_deref(), Some("tolerations"));
        assert_eq!(
            field_name("/config/maxmemory-policy").as_deref(),
            Some("maxmemory-policy")
        );
        assert_eq!(field_name(""), None);
    }

    #[test]
    fn a_persistence_is_looked_for_as_valkey_says_it() {
        let m = |v: &str| Mutation {
            crd_kind: "ValkeyCluster".into(),
            path: "/storage/persistence".into(),
            op: Op::Set(Value::String(v.into())),
            kind: crate::spec_mutations::MutationKind::PersistenceChange,
            expect: Expectation::Accept,
            reason: String::new(),
        };
        assert_eq!(reflected_values(&m("Rdb")), ["save 3600", "appendonly no"]);
        assert_eq!(reflected_values(&m("None")), ["save \"\"", "appendonly no"]);
        assert_eq!(
            reflected_values(&m("RdbAndAof")),
            ["save 3600", "appendonly yes"]
        );
    }
}
