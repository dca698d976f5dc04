//! What the spec trials report: how each step ended ([`StepOutcome`]),
//! each chain with its oracles' findings, and the run as a whole, for
//! people ([`TrialReport::render`]) and per CRD kind
//! ([`TrialReport::summary`]).

use std::path::PathBuf;
use std::time::Duration;

use super::history::HistoryFindings;

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The API server refused it, with this message.
    RefusedByApi(String),
    /// The operator refused it (`SpecValid=False`), with this message.
    RefusedByOperator(String),
    /// Ready with its generation observed, after this long.
    Converged(Duration),
    /// The pods cannot run it (Valkey refuses a value, an image cannot
    /// be pulled): the status says so (Ready: `ContainerFailing`), with
    /// this message. What a user sees, then undoes.
    FailingInPods(String),
    /// Neither within the step's time: the status it was left in.
    Stuck(String),
}

/// One step: the mutation, how it ended, what the oracles found.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The mutation, in words.
    pub mutation: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// Each oracle that failed, in words.
    pub findings: Vec<String>,
    /// Whether the step was judged on the servers themselves (a setting
    /// read back with `CONFIG GET`, or the ACL users on every node), not
    /// only in the status and the objects.
    pub on_servers: bool,
}

/// One chain.
#[derive(Debug, Clone, Default)]
pub struct ChainReport {
    /// The chain as it prints (with the call that rebuilds it).
    pub chain: String,
    /// Its steps.
    pub steps: Vec<StepReport>,
    /// The revert and differential oracles' findings.
    pub findings: Vec<String>,
    /// What the revert and differential oracles checked, when they held.
    pub held: Vec<String>,
    /// Whether reverting its last step restored the previous state (none:
    /// no step to revert).
    pub reverted: Option<bool>,
    /// Whether a fresh cluster with its final spec made the same objects
    /// (none: not run).
    pub same_as_fresh: Option<bool>,
}

impl ChainReport {
    /// The report of `chain`, before its steps run.
    pub(super) fn of(chain: &crate::spec_mutations::Chain) -> ChainReport {
        ChainReport {
            chain: chain.to_string(),
            ..ChainReport::default()
        }
    }

    /// The report of `what` that could not start, and why.
    pub(super) fn not_started(what: &str, why: String) -> ChainReport {
        ChainReport {
            chain: format!("({what} not started)\n"),
            findings: vec![why],
            ..ChainReport::default()
        }
    }

    /// Reverting step `i` (0-based) did not converge: it ended `outcome`.
    pub(super) fn not_reverted(&mut self, i: usize, outcome: &StepOutcome) {
        self.reverted = Some(false);
        self.findings.push(format!(
            "reverting step {} did not converge: {outcome:?}",
            i + 1
        ));
    }

    /// The CRD kind the chain changed (`-` for a chain not started).
    pub fn kind(&self) -> &str {
        self.chain
            .split_whitespace()
            .next()
            .filter(|k| k.starts_with("Valkey"))
            .unwrap_or("-")
    }
}

/// What the trials found.
#[derive(Debug, Clone)]
pub struct TrialReport {
    /// The command that runs them again.
    pub command: String,
    /// Each chain.
    pub chains: Vec<ChainReport>,
    /// The history's judgement.
    pub history: Option<HistoryFindings>,
    /// Findings of the run as a whole (history, journal).
    pub violations: Vec<String>,
    /// The work directory, when kept.
    pub kept: Option<PathBuf>,
    /// Wall time.
    pub elapsed: Duration,
}

impl TrialReport {
    /// Every finding, each prefixed with its chain and step.
    pub fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (c, chain) in self.chains.iter().enumerate() {
            for (s, step) in chain.steps.iter().enumerate() {
                out.extend(
                    step.findings.iter().map(|f| {
                        format!("chain {} step {} ({}): {f}", c + 1, s + 1, step.mutation)
                    }),
                );
            }
            out.extend(
                chain
                    .findings
                    .iter()
                    .map(|f| format!("chain {}: {f}", c + 1)),
            );
        }
        out.extend(self.violations.iter().cloned());
        out
    }

    /// No oracle failed.
    pub fn passed(&self) -> bool {
        self.findings().is_empty()
    }

    /// One line per CRD kind: its chains and steps, each step by how it
    /// ended, the reverts that restored the previous state and the fresh
    /// clusters that agreed.
    pub fn summary(&self) -> String {
        let mut kinds: Vec<&str> = self.chains.iter().map(ChainReport::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut out = String::new();
        for kind in kinds {
            let chains: Vec<&ChainReport> =
                self.chains.iter().filter(|c| c.kind() == kind).collect();
            let steps = chains.iter().flat_map(|c| &c.steps);
            let mut counts = [0_usize; 5];
            let mut on_servers = 0_usize;
            for step in steps {
                on_servers += usize::from(step.on_servers);
                let i = match step.outcome {
                    StepOutcome::RefusedByApi(_) => 0,
                    StepOutcome::RefusedByOperator(_) => 1,
                    StepOutcome::Converged(_) => 2,
                    StepOutcome::FailingInPods(_) => 3,
                    StepOutcome::Stuck(_) => 4,
                };
                if let Some(n) = counts.get_mut(i) {
                    *n += 1;
                }
            }
            let of = |f: fn(&ChainReport) -> Option<bool>| {
                let tried: Vec<bool> = chains.iter().filter_map(|c| f(c)).collect();
                format!(
                    "{} of {}",
                    tried.iter().filter(|b| **b).count(),
                    tried.len()
                )
            };
            let [api, operator, converged, failing, stuck] = counts;
            out.push_str(&format!(
                "{kind}: {} chains, {} steps: {api} refused by the API server, {operator} by the operator, {converged} converged ({on_servers} judged on the servers), {failing} the pods could not run, {stuck} stuck; reverts restored {}; fresh clusters agreed {}\n",
                chains.len(),
                api + operator + converged + failing + stuck,
                of(|c| c.reverted),
                of(|c| c.same_as_fresh),
            ));
        }
        out
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = format!("spec trials: {}\n", self.command);
        for (c, chain) in self.chains.iter().enumerate() {
            out.push_str(&format!("chain {}: {}", c + 1, chain.chain));
            for (s, step) in chain.steps.iter().enumerate() {
                let how = match &step.outcome {
                    StepOutcome::RefusedByApi(m) => {
                        format!("refused by the API server: {}", cut(m))
                    }
                    StepOutcome::RefusedByOperator(m) => {
                        format!("refused by the operator: {}", cut(m))
                    }
                    StepOutcome::Converged(d) => format!("converged in {:.1} s", d.as_secs_f64()),
                    StepOutcome::FailingInPods(m) => {
                        format!("the pods cannot run it, the status says: {}", cut(m))
                    }
                    StepOutcome::Stuck(why) => format!("STUCK: {}", cut(why)),
                };
                out.push_str(&format!("  step {}: {how}\n", s + 1));
                for f in &step.findings {
                    out.push_str(&format!("    FINDING: {f}\n"));
                }
            }
            for h in &chain.held {
                out.push_str(&format!("  {h}\n"));
            }
            for f in &chain.findings {
                out.push_str(&format!("  FINDING: {f}\n"));
            }
        }
        if let Some(h) = &self.history {
            out.push_str(&format!(
                "history: {} operations ({} reads; {} ok, {} failed, {} unknown), {} anomalies outside the promises, {} stale reads within them\n",
                h.ops, h.reads, h.ok, h.fail, h.unknown, h.outside, h.stale_tolerated
            ));
        }
        for v in &self.violations {
            out.push_str(&format!("FINDING: {v}\n"));
        }
        out.push_str(&self.summary());
        let findings = self.findings().len();
        out.push_str(&format!(
            "{} chains, {} steps, {findings} findings, {:.0} s{}\n",
            self.chains.len(),
            self.chains.iter().map(|c| c.steps.len()).sum::<usize>(),
            self.elapsed.as_secs_f64(),
            self.kept
                .as_ref()
                .map_or_else(String::new, |k| format!("; kept {}", k.display()))
        ));
        out
    }
}

pub(super) fn cut(s: &str) -> String {
    let one_line = s.replace('\n', " ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}
