//! The spec trials of the other two resources: chains generated from the
//! ValkeyUser and ValkeyBackup schemas, applied to objects of the
//! cluster under trial.
//!
//! A ValkeyUser step is judged on the servers, not only on its status:
//!
//! - **Refused clearly, or converged.** The API server refuses it (the
//!   schema forbids it; the message names the field), or the operator
//!   does (`phase: Failed` with its message, and no data node's ACL
//!   changed), or it is `Ready` at its generation.
//! - **Value by value**: once Ready, every data node's `ACL LIST` holds
//!   the user the status names, `on` or `off` as `enabled` says, with
//!   each key, read-key, write-key and channel pattern of the spec.
//! - **Revert**: setting back the spec the last converged step started
//!   from restores every node's ACL lines of the users the trials made,
//!   exactly (password hashes compared, never printed).
//!
//! A ValkeyBackup is a record of one backup: every change of its spec is
//! refused by the API server (the CRD's rules), which is what its steps
//! check.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::PostParams;
use logbook::valkey::Password;
use logbook_crds::{UserPhase, ValkeyUser};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::servers::{Shared, refresh_addrs};
use super::trial_cluster::RawObject;
use super::trial_report::cut;
use super::trials::{ChainReport, StepOutcome, StepReport, Walk, send};
use super::{NAME, NS};
use crate::conn::query_once;
use crate::spec_mutations::{Chain, Mutation};

/// The ValkeyUser the user chains change.
pub(super) const USER: &str = "trial-user";
/// The Secret holding its password.
const USER_SECRET: &str = "trial-user-password";
/// The ValkeyBackup the backup chains change.
pub(super) const BACKUP: &str = "trial-backup";

/// The ValkeyUser the chains start from: a user an application would
/// have, with a pattern of every kind.
pub(super) fn base_user() -> Value {
    json!({
        "cluster": NAME,
        "username": "trialuser",
        "passwordSecret": {"name": USER_SECRET, "key": "password"},
        "commands": ["+@read", "+@write", "-@dangerous"],
        "keys": ["app:*"],
        "readKeys": ["ro:*"],
        "writeKeys": ["wo:*"],
        "channels": ["news.*"],
    })
}

/// The ValkeyBackup the chains start from (its destination need not
/// answer: no step may change the spec).
pub(super) fn base_backup() -> Value {
    json!({
        "cluster": NAME,
        "destination": {
            "bucket": "trial-backups",
            "endpoint": "http://127.0.0.1:9",
            "credentialsSecret": "trial-backup-credentials",
        },
    })
}

/// The ValkeyUser under trial and what the oracles read.
pub(super) struct Users {
    object: RawObject,
    typed: Api<ValkeyUser>,
    pods: Api<Pod>,
    password: Password,
    /// Each password hash seen, by the number it prints as.
    hashes: Mutex<HashMap<String, usize>>,
}

impl Users {
    /// Creates the password Secret and the user, and waits for it.
    ///
    /// # Errors
    /// What could not be created, or the user not Ready in `timeout`.
    pub(super) async fn setup(
        client: &kube::Client,
        password: &Password,
        timeout: Duration,
    ) -> Result<Users, String> {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": USER_SECRET, "namespace": NS},
            "stringData": {"password": "trial-user-password-1"},
        }))
        .map_err(|e| e.to_string())?;
        Api::<Secret>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| format!("the user's Secret: {e}"))?;
        let users = Users {
            object: RawObject::new(client, NS, "ValkeyUser", "valkeyusers", USER),
            typed: Api::namespaced(client.clone(), NS),
            pods: Api::namespaced(client.clone(), NS),
            password: password.clone(),
            hashes: Mutex::new(HashMap::new()),
        };
        users.object.create(&base_user()).await?;
        match users.settle(None, timeout).await {
            StepOutcome::Converged(_) => Ok(users),
            other => Err(format!("the ValkeyUser was not Ready: {other:?}")),
        }
    }

    /// Waits until the user's status is at `generation` (or later) and
    /// Ready (converged) or Failed twice a second apart (refused).
    async fn settle(&self, generation: Option<i64>, timeout: Duration) -> StepOutcome {
        let started = Instant::now();
        let mut failed_since: Option<Instant> = None;
        let mut last = String::from("no status");
        while started.elapsed() <= timeout {
            if let Ok(user) = self.typed.get(USER).await
                && let Some(status) = user.status
            {
                last = format!(
                    "phase {:?}, nodes {}, generation {:?} observed: {}",
                    status.phase,
                    status.nodes.as_deref().unwrap_or("?"),
                    status.observed_generation,
                    status.message.as_deref().unwrap_or("")
                );
                let at = status.observed_generation.is_some()
                    && status.observed_generation >= generation;
                match status.phase {
                    Some(UserPhase::Ready) if at => {
                        return StepOutcome::Converged(started.elapsed());
                    }
                    Some(UserPhase::Failed) if at => {
                        let since = *failed_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= Duration::from_secs(1) {
                            return StepOutcome::RefusedByOperator(
                                status.message.unwrap_or_default(),
                            );
                        }
                    }
                    _ => failed_since = None,
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        StepOutcome::Stuck(last)
    }

    /// Every data node's `ACL LIST` lines of the users the trials made
    /// (not `default`, not the operator's own), password hashes replaced
    /// by the number each first showed as.
    async fn acls(&self) -> Result<BTreeMap<String, Vec<String>>, String> {
        let shared = Shared {
            roles: Mutex::new(Vec::new()),
            addrs: Mutex::new(BTreeMap::new()),
        };
        refresh_addrs(&self.pods, &shared).await;
        let addrs = shared.pod_addrs();
        if addrs.is_empty() {
            return Err("no data pod has an address".into());
        }
        let mut out = BTreeMap::new();
        for (pod, addr) in addrs {
            let mut cmd = redis::cmd("ACL");
            cmd.arg("LIST");
            // A few tries: a loaded machine can be slow to accept.
            let mut tries = 0;
            let lines: Vec<String> = loop {
                match query_once(
                    &addr,
                    Some(&self.password),
                    &cmd,
                    "ACL LIST",
                    Duration::from_secs(5),
                )
                .await
                {
                    Ok(lines) => break lines,
                    Err(_) if tries < 3 => tries += 1,
                    Err(e) => return Err(format!("ACL LIST on {pod}: {e}")),
                }
            };
            let lines = lines
                .iter()
                .filter(|l| {
                    let user = l.split_whitespace().nth(1).unwrap_or_default();
                    user != "default"
                        && !user.starts_with(logbook_crds::v1alpha1::INTERNAL_USER_PREFIX)
                })
                .map(|l| self.redact(l))
                .collect();
            out.insert(pod, lines);
        }
        Ok(out)
    }

    /// `line` with each password hash (`#…`) as `#<n>`.
    fn redact(&self, line: &str) -> String {
        let mut hashes = self.hashes.lock();
        line.split_whitespace()
            .map(|token| match token.strip_prefix('#') {
                Some(hash) => {
                    let next = hashes.len();
                    format!("#<{}>", hashes.entry(hash.to_owned()).or_insert(next))
                }
                None => token.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Sets the user's spec back to the base and waits for it: the spec
    /// the next chain starts from.
    ///
    /// # Errors
    /// Why it could not be had.
    pub(super) async fn back_to_base(&self, timeout: Duration) -> Result<Value, String> {
        let base = base_user();
        if self.object.spec().await.as_ref() == Some(&base) {
            return Ok(base);
        }
        let generation = self
            .object
            .put_spec(&base)
            .await
            .map_err(|e| format!("the user's base spec: {e}"))?;
        match self.settle(generation, timeout).await {
            StepOutcome::Converged(_) => Ok(base),
            other => Err(format!(
                "the user did not return to its base spec: {other:?}"
            )),
        }
    }

    /// Applies `chain` step by step, then reverts its last converged
    /// step.
    pub(super) async fn run_chain(&self, chain: &Chain, timeout: Duration) -> ChainReport {
        let mut report = ChainReport::of(chain);
        let mut walk: Walk<BTreeMap<String, Vec<String>>> = Walk::new(&chain.base);
        for (m, attempted) in &chain.steps {
            let acls = if walk.converged {
                self.acls().await.ok()
            } else {
                None
            };
            let step = self.run_step(m, attempted, acls.as_ref(), timeout).await;
            walk.record(acls, attempted, &step.outcome);
            report.steps.push(step);
        }
        if let Some((i, was, spec)) = walk.last_to_revert(&report.steps, false) {
            let outcome = match self.object.put_spec(&spec).await {
                Ok(generation) => self.settle(generation, timeout).await,
                Err(e) => StepOutcome::Stuck(format!("the revert could not be sent: {e}")),
            };
            match outcome {
                StepOutcome::Converged(_) => match self.acls().await {
                    Ok(now) if now == was => {
                        report.reverted = Some(true);
                        report.held.push(format!(
                            "revert: undoing step {} restored the ACL of all {} nodes",
                            i + 1,
                            now.len()
                        ));
                    }
                    Ok(now) => {
                        report.reverted = Some(false);
                        report.findings.push(format!(
                            "reverting step {} did not restore the ACLs: {}",
                            i + 1,
                            acl_diff(&was, &now).join("; ")
                        ));
                    }
                    Err(e) => report
                        .findings
                        .push(format!("the ACLs after the revert: {e}")),
                },
                other => report.not_reverted(i, &other),
            }
        }
        report
    }

    async fn run_step(
        &self,
        m: &Mutation,
        attempted: &Value,
        before: Option<&BTreeMap<String, Vec<String>>>,
        timeout: Duration,
    ) -> StepReport {
        let mut findings = Vec::new();
        let mut on_servers = false;
        let outcome = match send(&self.object, m, attempted, &mut findings).await {
            Err(outcome) => outcome,
            Ok((_, generation)) => self.settle(generation, timeout).await,
        };
        match &outcome {
            StepOutcome::RefusedByApi(_) | StepOutcome::FailingInPods(_) => {}
            StepOutcome::RefusedByOperator(message) => {
                if let (Some(before), Ok(now)) = (before, self.acls().await)
                    && &now != before
                {
                    findings.push(format!(
                        "a refused user ({}) changed the ACLs: {}",
                        cut(message),
                        acl_diff(before, &now).join("; ")
                    ));
                }
            }
            StepOutcome::Converged(_) => match (self.typed.get(USER).await, self.acls().await) {
                (Ok(user), Ok(acls)) => {
                    on_servers = true;
                    findings.extend(unreflected(&user, &acls));
                }
                (Err(e), _) => findings.push(format!("the user after converging: {e}")),
                (_, Err(e)) => findings.push(format!("the ACLs after converging: {e}")),
            },
            StepOutcome::Stuck(why) => findings.push(format!(
                "neither Ready nor refused in {} s: {why}",
                timeout.as_secs()
            )),
        }
        StepReport {
            mutation: m.to_string(),
            outcome,
            findings,
            on_servers,
        }
    }
}

/// What of `user`'s spec some node's ACL does not show: the user itself
/// (named as its status names it), `on`/`off`, and each pattern.
fn unreflected(user: &ValkeyUser, acls: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let Some(name) = user.status.as_ref().and_then(|s| s.username.clone()) else {
        return vec!["a Ready user with no username in its status".into()];
    };
    let spec = &user.spec;
    let mut wanted: Vec<Vec<String>> = vec![vec![if spec.enabled { "on" } else { "off" }.into()]];
    wanted.extend(spec.keys.iter().map(|p| vec![format!("~{p}")]));
    for (patterns, flag) in [(&spec.read_keys, "R"), (&spec.write_keys, "W")] {
        // A pattern both readable and writable shows as a plain `~`.
        wanted.extend(
            patterns
                .iter()
                .map(|p| vec![format!("%{flag}~{p}"), format!("~{p}"), format!("%RW~{p}")]),
        );
    }
    wanted.extend(spec.channels.iter().map(|p| vec![format!("&{p}")]));
    let mut out = Vec::new();
    for (pod, lines) in acls {
        let Some(line) = lines
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
        else {
            out.push(format!("Ready, but {pod} has no ACL user {name}"));
            continue;
        };
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for any in &wanted {
            if !any.iter().any(|w| tokens.contains(&w.as_str())) {
                out.push(format!(
                    "Ready, but {pod}'s ACL user {name} lacks {}: {line}",
                    any.join(" or ")
                ));
            }
        }
    }
    out
}

/// The nodes whose ACL lines differ, each with the lines only one side
/// has.
fn acl_diff(a: &BTreeMap<String, Vec<String>>, b: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let pods: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    pods.into_iter()
        .filter_map(|pod| {
            let (x, y) = (a.get(pod), b.get(pod));
            (x != y).then(|| {
                let only = |p: Option<&Vec<String>>, q: Option<&Vec<String>>| -> Vec<String> {
                    p.into_iter()
                        .flatten()
                        .filter(|l| !q.is_some_and(|q| q.contains(l)))
                        .cloned()
                        .collect()
                };
                format!("{pod}: was {:?}, now {:?}", only(x, y), only(y, x))
            })
        })
        .collect()
}

/// The ValkeyBackup under trial.
pub(super) struct Backups {
    object: RawObject,
}

impl Backups {
    /// Creates the ValkeyBackup (the backup it asks for may fail: its
    /// destination does not answer; its spec is what the steps change).
    ///
    /// # Errors
    /// The API server refusing it.
    pub(super) async fn setup(client: &kube::Client) -> Result<Backups, String> {
        let backups = Backups {
            object: RawObject::new(client, NS, "ValkeyBackup", "valkeybackups", BACKUP),
        };
        backups.object.create(&base_backup()).await?;
        Ok(backups)
    }

    /// The spec as stored: what the next chain starts from (no step can
    /// change it).
    pub(super) async fn spec(&self) -> Result<Value, String> {
        self.object
            .spec()
            .await
            .ok_or_else(|| "the ValkeyBackup's spec could not be read".into())
    }

    /// Applies `chain` step by step: each change must be refused by the
    /// API server, each no-op accepted without a new generation.
    pub(super) async fn run_chain(&self, chain: &Chain) -> ChainReport {
        let mut report = ChainReport::of(chain);
        for (m, attempted) in &chain.steps {
            let mut findings = Vec::new();
            let outcome = match send(&self.object, m, attempted, &mut findings).await {
                Err(outcome) => outcome,
                Ok((was, now)) => {
                    if was != now {
                        findings.push(format!(
                            "the spec of a ValkeyBackup changed (generation {was:?} to {now:?}): it is the record of one backup"
                        ));
                    }
                    StepOutcome::Converged(Duration::ZERO)
                }
            };
            report.steps.push(StepReport {
                mutation: m.to_string(),
                outcome,
                findings,
                on_servers: false,
            });
        }
        report
    }
}
