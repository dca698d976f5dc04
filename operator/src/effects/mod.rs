//! Every effect the operator has on the world passes one gate: a
//! Kubernetes write or delete, a Valkey admin command that changes a
//! server, an object-store write. The gate attributes each effect to the
//! journaled intent being carried out (a task-local scope set around the
//! executor) and, when armed, records it and can inject a fault at it —
//! the method of Sieve (OSDI '22): perturb a controller between its
//! writes, not only at its own commit points.
//!
//! Armed from the environment (the sweeps of `tests/effect_faults.rs`
//! run the operator as a process):
//!
//! - `LOGBOOK_EFFECT_LOG=<file>`: every effect appended as one JSON line
//!   ([`Record`]); a learning run reads from it the effects a workload has.
//! - `LOGBOOK_FAULT_PLAN=<file>`: a [`Plan`] in JSON: at the `nth` effect
//!   counted (those of one intent, when it names one), fail it before it
//!   is sent, fail it after it took effect (the reply lost), or kill the
//!   process just before or just after it.
//!
//! In-process tests build an [`Effects`] with [`Effects::armed`] and hand
//! it to the clients they build. Unarmed (always, in production) the gate
//! is one `Option` check per effect, and no layer is added to the client.
//! A release build (the image's) is never armed from the environment:
//! the variables are ignored with a warning
//! ([`FAULTS_ARMABLE`]).
//!
//! What is not an effect on the cluster is classified, not counted: the
//! journal's own writes, the Lease, Events and status (publications of
//! what the journal already holds), and the finalizer on the operator's
//! own resources.

mod kube_layer;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use kube_layer::{EffectLayer, client_with};

/// Whether faults can be armed from the environment (crash points, the
/// effect gate's plan and log): in test builds (debug assertions on)
/// only. An operator built for release, as the image's is, cannot be made
/// to abort or to log its effects by a variable in its Deployment.
pub const FAULTS_ARMABLE: bool = cfg!(debug_assertions);

/// The environment variable naming the plan file.
pub const FAULT_PLAN: &str = "LOGBOOK_FAULT_PLAN";
/// The environment variable naming the effect log.
pub const EFFECT_LOG: &str = "LOGBOOK_EFFECT_LOG";

/// What a plan does at its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The effect is not sent; the caller gets an error (an API server
    /// answering 500, a Valkey connection reset).
    Fail,
    /// The effect is sent and takes effect; the caller gets an error as if
    /// the reply were lost (a timeout: the outcome is unknown to it).
    FailAfter,
    /// The process aborts just before the effect is sent.
    KillBefore,
    /// The process aborts just after the effect took effect, before
    /// anything is journaled of it.
    Kill,
}

impl Action {
    /// Every action, in the order a sweep tries them.
    pub const ALL: [Action; 4] = [
        Action::Fail,
        Action::FailAfter,
        Action::KillBefore,
        Action::Kill,
    ];

    /// The name in a plan file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Fail => "fail",
            Action::FailAfter => "fail-after",
            Action::KillBefore => "kill-before",
            Action::Kill => "kill",
        }
    }
}

/// One fault: at the `nth` counted effect (from 1), `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Count only the effects of intents of this name (`Switchover`);
    /// none: every effect carried out for an intent.
    #[serde(default)]
    pub intent: Option<String>,
    /// Which counted effect, from 1.
    pub nth: u64,
    /// What to do there.
    pub action: Action,
}

/// What kind of thing an effect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// A change to the cluster: the objects the operator owns, a server's
    /// role, slots or users, a backup's bytes. Counted by plans.
    Effect,
    /// A write of the operator's own journal (its commit points; the crash
    /// sweeps of `tests/operator_crash.rs` cover them).
    Journal,
    /// Leader election.
    Lease,
    /// An Event or a status: a publication of what is journaled.
    Publish,
    /// The operator's finalizer on its own resources (added when it
    /// first sees one, removed once the journal holds its clean-up), as
    /// the Lease bookkeeping of the operator, not an effect on the
    /// cluster.
    Finalizer,
}

/// One effect as the gate saw it: one line of the effect log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its number among every effect the process made (from 1).
    pub n: u64,
    /// What it is.
    pub class: Class,
    /// The intent it was made for, by name (none: made outside any).
    pub intent: Option<String>,
    /// That intent's id, as journaled in its `Decided`.
    pub intent_id: Option<Uuid>,
    /// Its number among the effects of intents of that name (from 1).
    pub k: Option<u64>,
    /// The request: `PATCH /api/v1/namespaces/shop/pods/demo-0`,
    /// `REPLICAOF 10.0.0.3:6379`, `PUT s3://bucket/key`. Never a value.
    pub what: String,
    /// The fault injected at it, if any.
    pub injected: Option<Action>,
}

/// The fault a gate returns for the caller to report as its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// [`Action::Fail`] or [`Action::FailAfter`].
    pub action: Action,
    /// The effect, as in its [`Record`].
    pub what: String,
}

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.action {
            Action::FailAfter => write!(
                f,
                "injected fault: the reply to {} was lost (it took effect)",
                self.what
            ),
            _ => write!(f, "injected fault: {} was not sent", self.what),
        }
    }
}

/// The intent being carried out in this task.
#[derive(Debug, Clone)]
struct Scope {
    name: &'static str,
    id: Uuid,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `fut` as the carrying out of the intent `name` journaled with
/// `id`: every effect it makes (in this task) is attributed to it.
pub async fn within<F: Future>(name: &'static str, id: Uuid, fut: F) -> F::Output {
    SCOPE.scope(Scope { name, id }, fut).await
}

/// The intent this task carries out, if any (its name and id).
pub fn current() -> Option<(&'static str, Uuid)> {
    SCOPE.try_with(|s| (s.name, s.id)).ok()
}

/// The gate. Cloning is cheap; clones share the count and the log.
#[derive(Clone, Default)]
pub struct Effects(Option<Arc<Armed>>);

impl std::fmt::Debug for Effects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Effects(unarmed)"),
            Some(armed) => f.debug_tuple("Effects").field(&armed.plan).finish(),
        }
    }
}

struct Armed {
    plan: Option<Plan>,
    log: Option<Mutex<std::fs::File>>,
    /// Every effect seen, any class.
    seen: AtomicU64,
    /// Effects counted per intent name (a plan without a name counts
    /// under `""`).
    counted: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Whether the plan's fault was injected.
    fired: std::sync::atomic::AtomicBool,
}

/// A gate's permission to send one effect; [`Effects::after`] closes it.
#[derive(Debug)]
#[must_use]
pub struct Ticket {
    after: Option<(Action, String)>,
}

impl Effects {
    /// The process's gate, armed from the environment (once).
    pub fn from_env() -> Effects {
        static GLOBAL: OnceLock<Effects> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let plan = std::env::var_os(FAULT_PLAN).map(PathBuf::from);
                let log = std::env::var_os(EFFECT_LOG).map(PathBuf::from);
                if plan.is_none() && log.is_none() {
                    return Effects::default();
                }
                if !FAULTS_ARMABLE {
                    tracing::warn!(
                        "{FAULT_PLAN} and {EFFECT_LOG} are ignored: faults are injected by test builds only"
                    );
                    return Effects::default();
                }
                let plan = plan.map(|path| match read_plan(&path) {
                    Ok(plan) => plan,
                    Err(err) => {
                        // A sweep must not run unarmed believing it armed.
                        eprintln!("{FAULT_PLAN}: {err}");
                        std::process::abort();
                    }
                });
                Effects::armed(plan, log.as_deref())
            })
            .clone()
    }

    /// A gate with `plan` (none: only recording) that appends every
    /// effect to `log`, if given.
    pub fn armed(plan: Option<Plan>, log: Option<&Path>) -> Effects {
        let log = log.and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .inspect_err(|err| {
                    tracing::warn!(path = %path.display(), %err, "cannot open the effect log")
                })
                .ok()
                .map(Mutex::new)
        });
        Effects(Some(Arc::new(Armed {
            plan,
            log,
            seen: AtomicU64::new(0),
            counted: Mutex::new(std::collections::BTreeMap::new()),
            fired: std::sync::atomic::AtomicBool::new(false),
        })))
    }

    /// Whether anything is armed.
    pub fn is_armed(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the plan's fault was injected.
    pub fn fired(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|a| a.fired.load(Ordering::SeqCst))
    }

    /// Before sending `what`, of `class`: counts and records it, and
    /// injects the plan's fault when this is its effect.
    ///
    /// # Errors
    /// [`Injected`] when the plan fails this effect before it is sent.
    pub fn before(&self, class: Class, what: impl FnOnce() -> String) -> Result<Ticket, Injected> {
        let Some(armed) = &self.0 else {
            return Ok(Ticket { after: None });
        };
        let what = what();
        let n = armed.seen.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        let scope = current();
        let mut record = Record {
            n,
            class,
            intent: scope.map(|(name, _)| name.to_owned()),
            intent_id: scope.map(|(_, id)| id),
            k: None,
            what: what.clone(),
            injected: None,
        };
        let mut action = None;
        if class == Class::Effect
            && let Some((name, _)) = scope
        {
            let k = armed.count(name);
            record.k = Some(k);
            action = armed.plan_at(name, k);
        }
        if action.is_some() {
            armed.fired.store(true, Ordering::SeqCst);
        }
        record.injected = action;
        armed.write(&record);
        match action {
            None => Ok(Ticket { after: None }),
            Some(Action::Fail) => Err(Injected {
                action: Action::Fail,
                what,
            }),
            Some(Action::KillBefore) => abort(&record),
            Some(after @ (Action::FailAfter | Action::Kill)) => Ok(Ticket {
                after: Some((after, what)),
            }),
        }
    }

    /// After the effect of `ticket` was sent (whatever its reply).
    ///
    /// # Errors
    /// [`Injected`] when the plan loses this effect's reply.
    pub fn after(ticket: Ticket) -> Result<(), Injected> {
        match ticket.after {
            None => Ok(()),
            Some((Action::Kill, what)) => {
                eprintln!("{FAULT_PLAN}: aborting just after {what}");
                std::process::abort()
            }
            Some((action, what)) => Err(Injected { action, what }),
        }
    }
}

impl Armed {
    /// Counts one effect of intent `name`; returns its number.
    fn count(&self, name: &str) -> u64 {
        let Ok(mut counted) = self.counted.lock() else {
            return 0;
        };
        let mut bump = |key: &str| {
            let slot = counted.entry(key.to_owned()).or_insert(0);
            *slot = slot.saturating_add(1);
            *slot
        };
        let all = bump("");
        let own = bump(name);
        match self.plan.as_ref().and_then(|p| p.intent.as_deref()) {
            None if self.plan.is_some() => all,
            _ => own,
        }
    }

    fn plan_at(&self, name: &str, k: u64) -> Option<Action> {
        let plan = self.plan.as_ref()?;
        let named = plan.intent.as_deref().is_none_or(|want| want == name);
        (named && plan.nth == k && !self.fired.load(Ordering::SeqCst)).then_some(plan.action)
    }

    fn write(&self, record: &Record) {
        let Some(log) = &self.log else {
            return;
        };
        let Ok(line) = serde_json::to_string(record) else {
            return;
        };
        if let Ok(mut file) = log.lock() {
            let _ = writeln!(file, "{line}");
        }
    }
}

fn abort(record: &Record) -> ! {
    eprintln!("{FAULT_PLAN}: aborting just before {}", record.what);
    std::process::abort()
}

/// Reads a plan file.
///
/// # Errors
/// The file cannot be read or is not a plan, with the path.
pub fn read_plan(path: &Path) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("the plan {} is invalid: {e}", path.display()))
}

/// Reads an effect log (a line that does not parse is skipped: a process
/// killed mid-line leaves one).
pub fn read_log(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn plan(intent: Option<&str>, nth: u64, action: Action) -> Plan {
        Plan {
            intent: intent.map(str::to_owned),
            nth,
            action,
        }
    }

    #[tokio::test]
    async fn unarmed_lets_everything_through_and_counts_nothing() {
        let effects = Effects::default();
        let ticket = effects.before(Class::Effect, || "PATCH x".to_owned());
        assert!(Effects::after(ticket.unwrap()).is_ok());
        assert!(!effects.fired());
    }

    #[tokio::test]
    async fn the_nth_effect_of_the_named_intent_fails_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("effects.jsonl");
        let effects = Effects::armed(Some(plan(Some("Switchover"), 2, Action::Fail)), Some(&log));
        let id = Uuid::now_v7();
        // Outside any intent: recorded, not counted.
        assert!(effects.before(Class::Effect, || "DELETE a".into()).is_ok());
        // Another intent's effects do not count towards the plan.
        within("RollPod", Uuid::now_v7(), async {
            assert!(effects.before(Class::Effect, || "DELETE b".into()).is_ok());
            assert!(effects.before(Class::Effect, || "DELETE c".into()).is_ok());
        })
        .await;
        within("Switchover", id, async {
            assert!(
                effects
                    .before(Class::Effect, || "CLIENT PAUSE".into())
                    .is_ok()
            );
            // Publications are not counted.
            assert!(
                effects
                    .before(Class::Publish, || "PATCH status".into())
                    .is_ok()
            );
            let injected = effects
                .before(Class::Effect, || "REPLICAOF NO ONE".into())
                .unwrap_err();
            assert_eq!(injected.action, Action::Fail);
            assert!(injected.to_string().contains("REPLICAOF NO ONE"));
            // Once only.
            assert!(effects.before(Class::Effect, || "PATCH".into()).is_ok());
        })
        .await;
        assert!(effects.fired());
        let records = read_log(&log);
        assert_eq!(records.len(), 7);
        assert_eq!(records[0].intent, None);
        assert_eq!(records[0].k, None);
        assert_eq!(records[5].intent_id, Some(id));
        assert_eq!(records[5].k, Some(2));
        assert_eq!(records[5].injected, Some(Action::Fail));
        assert_eq!(records[4].class, Class::Publish);
    }

    #[tokio::test]
    async fn fail_after_lets_the_effect_through_and_loses_its_reply() {
        let effects = Effects::armed(Some(plan(None, 1, Action::FailAfter)), None);
        within("PromoteReplica", Uuid::now_v7(), async {
            let ticket = effects
                .before(Class::Effect, || "REPLICAOF".into())
                .unwrap();
            let lost = Effects::after(ticket).unwrap_err();
            assert_eq!(lost.action, Action::FailAfter);
        })
        .await;
    }

    #[test]
    fn a_plan_file_names_its_fields() {
        let plan: Plan =
            serde_json::from_str(r#"{"intent":"Switchover","nth":3,"action":"fail-after"}"#)
                .unwrap();
        assert_eq!(plan.action, Action::FailAfter);
        let bad = serde_json::from_str::<Plan>(r#"{"nth":3,"action":"explode"}"#);
        assert!(bad.is_err());
    }
}
