//! `logbook-bench replay`: the replay tool on a long journal — `audit`
//! (fold, recompute every decision, check the invariants), `verify` beside
//! `sha256sum` of the same bytes, and `export --format jsonl` — timed in
//! one run on this machine (docs/benchmarks.md).
//!
//! The journal is one Replication cluster's life (the restart bench's
//! [`Life`]: probe rounds, restarts, failovers, spec changes) whose
//! decisions are the real `decide`'s: every [`DECIDE_EVERY`] events the
//! generator asks `decide` about the projection so far and journals what
//! it says with its outcomes, as the operator does (a pod the life makes
//! primary on its own is observed as a replica of decide's primary). The
//! audit therefore finds nothing and does all its work. `decide` asks for
//! something about once in 400 events of such a life (restarts, failovers,
//! spec changes between long stretches of probe rounds); the goldens, all
//! incident, have one decision in twenty.

use std::path::Path;
use std::time::{Duration, Instant};

use logbook::replay_decider::OperatorDecider;
use logbook_journal::writer::encode_batch;
use logbook_journal::{
    ClusterState, Durability, EncodedEvent, Event, Head, Intent, JournalStore, NewEvent,
    PlannedIntent, SledStore, StreamId, Timestamp,
};
use logbook_replay::Input;
use uuid::Uuid;

use super::restart::life::Life;

/// Events between two questions to `decide` while generating.
pub const DECIDE_EVERY: u64 = 20;
/// Events appended per store write while generating.
const BATCH: usize = 4096;

/// The measured runs.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// Events in the journal.
    pub events: u64,
    /// Decisions in it.
    pub decisions: u64,
    /// Bytes of its frames.
    pub bytes: u64,
    /// Per run: audit, verify, `sha256sum`, export.
    pub audit: Vec<Duration>,
    /// `verify` of the sled journal.
    pub verify: Vec<Duration>,
    /// `sha256sum` of the same frames in one file.
    pub sha256sum: Vec<Duration>,
    /// `export --format jsonl` to a file.
    pub export: Vec<Duration>,
    /// `audit` of that JSONL export (`--file`).
    pub audit_file: Vec<Duration>,
    /// Findings of the audit (0 expected).
    pub findings: usize,
}

/// Errors of the bench harness.
#[derive(Debug, thiserror::Error)]
pub enum ReplayBenchError {
    /// Generating or writing the journal failed.
    #[error("seeding the journal: {0}")]
    Seed(String),
    /// A replay verb failed.
    #[error(transparent)]
    Replay(#[from] logbook_replay::ReplayError),
    /// The reference could not run.
    #[error("sha256sum: {0}")]
    Reference(String),
}

/// Generates a journal of `events` events into `store` and returns the
/// frame bytes and the number of decisions.
///
/// # Errors
/// Encoding and store errors.
pub async fn seed(
    store: &SledStore,
    stream: &StreamId,
    events: u64,
    frames: &mut Vec<u8>,
) -> Result<u64, ReplayBenchError> {
    let mut life = Life::new(7, Timestamp::now().0.saturating_sub(86_400_000_000));
    let mut state = ClusterState::new();
    let mut head = Head::EMPTY;
    let mut pending: Vec<EncodedEvent> = Vec::new();
    let mut decisions = 0u64;
    let mut since_question = 0u64;
    while head.seq < events {
        let next = life.next();
        // The life's own decisions are replaced by decide's.
        if matches!(
            next.body,
            Event::Decided { .. }
                | Event::IntentSucceeded { .. }
                | Event::IntentFailed { .. }
                | Event::IntentAbandoned { .. }
                | Event::ReplicaPromoted { .. }
        ) {
            continue;
        }
        let next = follow_decided_primary(&state, next);
        let at = next.at;
        stage(stream, &mut head, &mut state, &mut pending, vec![next])?;
        since_question = since_question.saturating_add(1);
        if since_question >= DECIDE_EVERY && head.seq < events {
            since_question = 0;
            // As the operator: decide on the projection up to the last
            // event, at its time, under the policy in force.
            let policy = state.policy.clone().unwrap_or_default();
            let wanted = logbook::decide::decide(&state, state.last_at, &policy);
            if !wanted.is_empty() {
                decisions = decisions.saturating_add(1);
                let group = decision_group(&state, at, wanted);
                stage(stream, &mut head, &mut state, &mut pending, group)?;
            }
        }
        if pending.len() >= BATCH || head.seq >= events {
            append(store, stream, &mut pending, frames).await?;
        }
    }
    append(store, stream, &mut pending, frames).await?;
    store
        .flush()
        .map_err(|e| ReplayBenchError::Seed(e.to_string()))?;
    Ok(decisions)
}

/// The life picks its own primaries; the journal's are decide's. A pod
/// the life reports as primary while decide's primary is another is
/// reported as that primary's replica, as it would be once repointed.
fn follow_decided_primary(state: &ClusterState, mut event: NewEvent) -> NewEvent {
    if let Event::NodeRoleObserved { pod, role, primary } = &mut event.body
        && *role == logbook_journal::Role::Primary
        && let Some(decided) = state.replication.primary.as_ref()
        && decided != pod
    {
        *role = logbook_journal::Role::Replica;
        *primary = Some(decided.clone());
    }
    event
}

/// Encodes `batch` after `head`, folds it into `state`, queues its frames.
fn stage(
    stream: &StreamId,
    head: &mut Head,
    state: &mut ClusterState,
    pending: &mut Vec<EncodedEvent>,
    batch: Vec<NewEvent>,
) -> Result<(), ReplayBenchError> {
    let (envs, encoded) =
        encode_batch(stream, *head, 1, batch).map_err(|e| ReplayBenchError::Seed(e.to_string()))?;
    for e in &envs {
        state.apply(e);
    }
    if let Some(last) = envs.last() {
        *head = Head {
            seq: last.seq,
            hash: last.hash,
        };
    }
    pending.extend(encoded);
    Ok(())
}

/// A decision and its outcomes as the operator journals them: `Decided`,
/// then per intent its fact (a promotion) and `IntentSucceeded`.
fn decision_group(
    state: &ClusterState,
    at: Timestamp,
    wanted: Vec<logbook::decide::Decision>,
) -> Vec<NewEvent> {
    let planned: Vec<PlannedIntent> = wanted
        .into_iter()
        .map(|d| PlannedIntent {
            intent_id: Uuid::now_v7(),
            intent: d.intent,
            reason: d.reason,
        })
        .collect();
    let stamp = |body| NewEvent {
        id: Uuid::now_v7(),
        at,
        cause: None,
        body,
    };
    let mut group = vec![stamp(Event::Decided {
        intents: planned.clone(),
    })];
    for p in planned {
        let promoted = match &p.intent {
            Intent::PromoteReplica { pod, from } => Some((pod.clone(), from.clone())),
            Intent::Switchover { from, to } => Some((to.clone(), Some(from.clone()))),
            _ => None,
        };
        if let Some((pod, from)) = promoted {
            let offset = state.pods.get(&pod).and_then(|v| v.offset).unwrap_or(0);
            group.push(stamp(Event::ReplicaPromoted { pod, from, offset }));
        }
        group.push(stamp(Event::IntentSucceeded {
            intent_id: p.intent_id,
            detail: format!("{} (bench)", p.intent.describe()),
        }));
    }
    group
}

async fn append(
    store: &SledStore,
    stream: &StreamId,
    pending: &mut Vec<EncodedEvent>,
    frames: &mut Vec<u8>,
) -> Result<(), ReplayBenchError> {
    let Some(first) = pending.first().map(|e| e.seq) else {
        return Ok(());
    };
    store
        .append(stream, first, pending)
        .await
        .map_err(|e| ReplayBenchError::Seed(e.to_string()))?;
    for e in pending.iter() {
        frames.extend_from_slice(&e.frame);
    }
    pending.clear();
    Ok(())
}

/// Seeds `events` events under `work` and times each verb `runs` times.
///
/// # Errors
/// Harness failures.
pub async fn run_replay_bench(
    work: &Path,
    events: u64,
    runs: usize,
    progress: &mut dyn FnMut(String),
) -> Result<ReplayReport, ReplayBenchError> {
    let dir = work.join("journal");
    let store = SledStore::open(&dir, Durability::Background)
        .map_err(|e| ReplayBenchError::Seed(e.to_string()))?;
    let stream =
        StreamId::new("bench-replay").map_err(|e| ReplayBenchError::Seed(e.to_string()))?;
    let mut frames = Vec::new();
    let started = Instant::now();
    let decisions = seed(&store, &stream, events, &mut frames).await?;
    progress(format!(
        "seeded {events} events ({decisions} decisions, {} MB of frames) in {:.1} s",
        frames.len() / 1_000_000,
        started.elapsed().as_secs_f64()
    ));
    let frames_file = work.join("frames.bin");
    std::fs::write(&frames_file, &frames).map_err(|e| ReplayBenchError::Seed(e.to_string()))?;
    let input = Input::Store {
        store: store.clone(),
        stream: stream.clone(),
        cluster: None,
        place: format!("sled journal at {}", dir.display()),
    };
    let export_file = work.join("export.jsonl");
    let mut report = ReplayReport {
        events,
        decisions,
        bytes: frames.len() as u64,
        audit: Vec::new(),
        verify: Vec::new(),
        sha256sum: Vec::new(),
        export: Vec::new(),
        audit_file: Vec::new(),
        findings: 0,
    };
    drop(frames);
    for run in 0..runs {
        let t = Instant::now();
        let audit = logbook_replay::audit::audit(&input, &OperatorDecider).await?;
        report.audit.push(t.elapsed());
        report.findings = audit.findings.len();

        let t = Instant::now();
        let verified = logbook_replay::verify::verify(&input).await?;
        report.verify.push(t.elapsed());
        if let Some(p) = verified.problem {
            return Err(ReplayBenchError::Seed(format!(
                "the seeded journal does not verify: {p:?}"
            )));
        }

        let t = Instant::now();
        let status = std::process::Command::new("sha256sum")
            .arg(&frames_file)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| ReplayBenchError::Reference(e.to_string()))?;
        report.sha256sum.push(t.elapsed());
        if !status.success() {
            return Err(ReplayBenchError::Reference(format!("exited with {status}")));
        }

        let t = Instant::now();
        let file = std::fs::File::create(&export_file)
            .map_err(|e| ReplayBenchError::Seed(e.to_string()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        logbook_replay::export::jsonl(&input, &mut out, "logbook-bench".to_owned()).await?;
        report.export.push(t.elapsed());

        let file_input = Input::<SledStore>::File(export_file.clone());
        let t = Instant::now();
        logbook_replay::audit::audit(&file_input, &OperatorDecider).await?;
        report.audit_file.push(t.elapsed());
        progress(format!(
            "run {}: audit {:.2} s, verify {:.2} s, sha256sum {:.2} s, export {:.2} s, audit of the export {:.2} s",
            run.saturating_add(1),
            report.audit.last().map_or(0.0, Duration::as_secs_f64),
            report.verify.last().map_or(0.0, Duration::as_secs_f64),
            report.sha256sum.last().map_or(0.0, Duration::as_secs_f64),
            report.export.last().map_or(0.0, Duration::as_secs_f64),
            report.audit_file.last().map_or(0.0, Duration::as_secs_f64),
        ));
    }
    Ok(report)
}

fn median(runs: &[Duration]) -> f64 {
    let mut sorted: Vec<f64> = runs.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

impl ReplayReport {
    /// The markdown table of docs/benchmarks.md.
    #[must_use]
    pub fn render(&self) -> String {
        let mb = self.bytes as f64 / 1_000_000.0;
        let events = self.events as f64;
        let audit = median(&self.audit);
        let verify = median(&self.verify);
        let sha = median(&self.sha256sum);
        let export = median(&self.export);
        let audit_file = median(&self.audit_file);
        let rate = |s: f64| if s > 0.0 { events / s } else { 0.0 };
        let mbs = |s: f64| if s > 0.0 { mb / s } else { 0.0 };
        format!(
            "{} events ({} decisions, {mb:.1} MB of frames), median of {} runs\n\n\
             | verb | time | rate | target |\n|---|---|---|---|\n\
             | audit (sled) | {audit:.2} s | {:.0} events/s, {} findings | < 3 s |\n\
             | verify (sled) | {verify:.2} s | {:.0} MB/s | reading and hashing |\n\
             | sha256sum of the same bytes | {sha:.2} s | {:.0} MB/s | reference |\n\
             | export --format jsonl | {export:.2} s | {:.0} events/s | >= 500,000 events/s |\n\
             | audit of that export (--file) | {audit_file:.2} s | {:.0} events/s | |\n\n\
             verify / sha256sum: {:.2}x the reference's time\n",
            self.events,
            self.decisions,
            self.audit.len(),
            rate(audit),
            self.findings,
            mbs(verify),
            mbs(sha),
            rate(export),
            rate(audit_file),
            if sha > 0.0 { verify / sha } else { 0.0 },
        )
    }
}
