//! The raw ASM reshard: the bench itself moves the slots with Atomic Slot
//! Migration (Valkey ≥ 9.0), as an operator that only issues the commands
//! would. Each source primary sends what it gives up to the new node with
//! one `CLUSTER MIGRATESLOTS SLOTSRANGE s e [s e ...] NODE <id>`, all
//! sources at once; then each source's job is polled with
//! `CLUSTER GETSLOTMIGRATIONS` until it is over, and every node's
//! `CLUSTER NODES` until all of them state the planned owners.
//!
//! The time runs from just before the commands are sent to the first
//! poll that finds every job over, every view balanced and agreed and
//! every node serving.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use redis::Value;

use super::migrations::{JobOutcome, find_export, outcome};
use super::nodes::Nodes;
use super::plan::{
    Balance, Move, Owners, Want, apply_moves, balance, owners_of, plan_moves, slotsrange_args,
};
use crate::BenchError;
use crate::conn::{connect, query};

/// How long a reshard may take before the run fails.
const LIMIT: Duration = Duration::from_secs(300);

/// How often the jobs and the views are polled.
const POLL: Duration = Duration::from_millis(5);

/// How long an ambiguous failure waits for the ownership to settle it.
const AMBIGUITY_GRACE: Duration = Duration::from_secs(10);

/// What [`reshard_asm`] measured.
pub(crate) struct AsmResult {
    /// From the migrations issued to balanced and agreed.
    pub elapsed: Duration,
    /// When the migrations were issued.
    pub started: Instant,
    /// The ownership before and after.
    pub before: Owners,
    /// The ownership after.
    pub after: Owners,
}

/// Moves to `target` (node id) what each primary of `addrs` must give
/// for every primary to hold its even share, with ASM.
///
/// # Errors
/// [`BenchError`] when the plan is impossible, a source refuses the
/// command, a job fails or is cancelled (an ambiguous failure only when
/// the ownership does not settle it), or nothing is balanced in
/// [`LIMIT`].
pub(crate) async fn reshard_asm(
    nodes: &mut Nodes,
    addrs: &[String],
    target: &str,
) -> Result<AsmResult, BenchError> {
    let first = addrs.first().cloned().unwrap_or_default();
    let lines = nodes.cluster_nodes(&first).await?;
    let before = owners_of(&lines);
    let moves = plan_moves(&before, target).map_err(|e| BenchError::Protocol {
        addr: first.clone(),
        command: "CLUSTER NODES",
        detail: format!("no plan: {e}"),
    })?;
    let want = apply_moves(&before, &moves, target);
    // Each source's address, by the id its own view gives it.
    let mut sources: Vec<(String, &Move)> = Vec::with_capacity(moves.len());
    for m in &moves {
        let addr = lines
            .iter()
            .find(|l| l.id == m.source)
            .and_then(|l| l.ip.as_ref().map(|ip| crate::conn::join_addr(ip, l.port)))
            .ok_or_else(|| BenchError::Protocol {
                addr: first.clone(),
                command: "CLUSTER NODES",
                detail: format!("no address for source {}", m.source),
            })?;
        sources.push((addr, m));
    }
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (addr, _) in &sources {
        let names = nodes
            .slot_migrations(addr)
            .await?
            .into_iter()
            .map(|j| j.name)
            .collect();
        known.insert(addr.clone(), names);
    }
    // Connections of their own, open before the clock starts.
    let mut issuers = Vec::with_capacity(sources.len());
    for (addr, m) in &sources {
        let connection = connect(addr, None, Duration::from_secs(5)).await?;
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("MIGRATESLOTS")
            .arg(slotsrange_args(&m.ranges))
            .arg("NODE")
            .arg(target);
        issuers.push((addr.clone(), connection, cmd));
    }

    let started = Instant::now();
    try_join_all(
        issuers
            .into_iter()
            .map(|(addr, mut connection, cmd)| async move {
                let _: Value = query(
                    &mut connection,
                    &cmd,
                    &addr,
                    "CLUSTER MIGRATESLOTS",
                    Duration::from_secs(5),
                )
                .await?;
                Ok::<(), BenchError>(())
            }),
    )
    .await?;
    let mut done: BTreeMap<String, JobOutcome> = BTreeMap::new();
    let mut ambiguous_since: Option<Instant> = None;
    loop {
        for (addr, m) in &sources {
            if matches!(done.get(addr), Some(JobOutcome::Moved)) {
                continue;
            }
            let jobs = nodes.slot_migrations(addr).await?;
            let listed = known.get(addr).cloned().unwrap_or_default();
            let state = find_export(&jobs, &m.ranges, target, &listed)
                .map(outcome)
                .unwrap_or_else(|| JobOutcome::Running("not listed yet".to_owned()));
            if let JobOutcome::NotMoved(why) = &state {
                return Err(BenchError::Protocol {
                    addr: addr.clone(),
                    command: "CLUSTER GETSLOTMIGRATIONS",
                    detail: format!("the migration of {:?} to {target} {why}", m.ranges),
                });
            }
            done.insert(addr.clone(), state);
        }
        let running: Vec<String> = done
            .iter()
            .filter_map(|(addr, o)| match o {
                JobOutcome::Running(stage) => Some(format!("{addr}: {stage}")),
                JobOutcome::Moved | JobOutcome::Ambiguous(_) | JobOutcome::NotMoved(_) => None,
            })
            .collect();
        let ambiguous: Vec<String> = done
            .iter()
            .filter_map(|(addr, o)| match o {
                JobOutcome::Ambiguous(why) => Some(format!("{addr}: {why}")),
                JobOutcome::Moved | JobOutcome::Running(_) | JobOutcome::NotMoved(_) => None,
            })
            .collect();
        let mut why = running.join("; ");
        if running.is_empty() {
            // Every job is over: the ownership decides, ambiguous ones too.
            let views = nodes.views(addrs).await?;
            match balance(&views, Want::Exactly(&want)) {
                Balance::Balanced(after) => match nodes.not_serving(addrs).await? {
                    None => {
                        return Ok(AsmResult {
                            elapsed: started.elapsed(),
                            started,
                            before,
                            after,
                        });
                    }
                    Some(reason) => why = reason,
                },
                Balance::NotYet(reason) => why = reason,
            }
            if !ambiguous.is_empty() {
                let since = *ambiguous_since.get_or_insert_with(Instant::now);
                if since.elapsed() > AMBIGUITY_GRACE {
                    return Err(BenchError::Protocol {
                        addr: first,
                        command: "CLUSTER GETSLOTMIGRATIONS",
                        detail: format!(
                            "migrations failed and the cluster does not state the planned owners after {} s: {}; {why}",
                            AMBIGUITY_GRACE.as_secs(),
                            ambiguous.join("; ")
                        ),
                    });
                }
            }
        }
        if started.elapsed() > LIMIT {
            return Err(BenchError::TimedOut {
                what: "the ASM reshard to be balanced and agreed".to_owned(),
                after_ms: LIMIT.as_millis(),
                detail: format!("\n  {why}"),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
