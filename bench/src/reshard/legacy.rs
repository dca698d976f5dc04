//! The legacy reshard: `redis-cli --cluster rebalance <node>
//! --cluster-use-empty-masters`, the classic pipeline of `CLUSTER SETSLOT
//! IMPORTING/MIGRATING`, `GETKEYSINSLOT` and `MIGRATE` batches, slot by
//! slot, with `redis-cli`'s defaults (`--cluster-pipeline 10`). It plans
//! the moves itself; the bench only waits for it to exit and for every
//! node to state the same even split.
//!
//! The time runs from just before `redis-cli` is started to the first poll
//! that finds the cluster balanced and agreed after it exited.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::nodes::Nodes;
use super::plan::{Balance, Owners, Want, balance, owners_of};
use crate::BenchError;

/// How long `redis-cli` may take before the run fails.
const LIMIT: Duration = Duration::from_secs(1800);

/// How often the process and then the views are polled.
const POLL: Duration = Duration::from_millis(5);

/// How long the nodes may take to agree once `redis-cli` is done.
const AGREE_LIMIT: Duration = Duration::from_secs(60);

/// The `redis-cli` the legacy reshard runs: `$LOGBOOK_REDIS_CLI` when set,
/// else `redis-cli` from `PATH` (Debian's 7.0 speaks `--cluster` to
/// Valkey 9).
pub(crate) fn redis_cli_binary() -> PathBuf {
    std::env::var_os("LOGBOOK_REDIS_CLI").map_or_else(|| PathBuf::from("redis-cli"), PathBuf::from)
}

/// What [`reshard_legacy`] measured.
pub(crate) struct LegacyResult {
    /// From `redis-cli` started to balanced and agreed.
    pub elapsed: Duration,
    /// When `redis-cli` was started.
    pub started: Instant,
    /// The ownership before.
    pub before: Owners,
    /// The ownership after.
    pub after: Owners,
}

/// Rebalances the cluster of `addrs`, whose `primaries` primaries include
/// one without slots, with `redis-cli`.
///
/// # Errors
/// [`BenchError`] when `redis-cli` cannot start, exits with an error or
/// runs past [`LIMIT`], or the nodes do not agree on an even split within
/// [`AGREE_LIMIT`] of its exit.
pub(crate) async fn reshard_legacy(
    nodes: &mut Nodes,
    addrs: &[String],
    primaries: usize,
) -> Result<LegacyResult, BenchError> {
    let first = addrs.first().cloned().unwrap_or_default();
    let before = owners_of(&nodes.cluster_nodes(&first).await?);
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| BenchError::Io { what, source }
    };
    let mut log = tempfile::tempfile().map_err(io("redis-cli's log"))?;
    let log_err = log.try_clone().map_err(io("redis-cli's log"))?;
    let log_out = log.try_clone().map_err(io("redis-cli's log"))?;
    let binary = redis_cli_binary();

    let started = Instant::now();
    let mut child = Command::new(&binary)
        .args([
            "--cluster",
            "rebalance",
            &first,
            "--cluster-use-empty-masters",
        ])
        .arg("--cluster-yes")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_out))
        .stderr(Stdio::from(log_err))
        .spawn()
        .map_err(|source| BenchError::Spawn {
            what: "redis-cli --cluster rebalance".to_owned(),
            binary: binary.display().to_string(),
            source,
        })?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                let _ = child.kill();
                return Err(io("waiting for redis-cli")(source));
            }
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::TimedOut {
                what: "redis-cli --cluster rebalance".to_owned(),
                after_ms: LIMIT.as_millis(),
                detail: tail(&mut log),
            });
        }
        tokio::time::sleep(POLL).await;
    };
    let exited = Instant::now();
    if !status.success() {
        return Err(BenchError::ToolFailed {
            tool: "redis-cli --cluster rebalance".to_owned(),
            status: status.to_string(),
            after_ms: started.elapsed().as_millis(),
            detail: last_error(&read_all(&mut log)),
        });
    }
    loop {
        let views = nodes.views(addrs).await?;
        let why = match balance(&views, Want::EvenOver(primaries)) {
            Balance::Balanced(after) => match nodes.not_serving(addrs).await? {
                None => {
                    return Ok(LegacyResult {
                        elapsed: started.elapsed(),
                        started,
                        before,
                        after,
                    });
                }
                Some(why) => why,
            },
            Balance::NotYet(why) => why,
        };
        if exited.elapsed() > AGREE_LIMIT {
            return Err(BenchError::TimedOut {
                what: "the nodes to agree on an even split after redis-cli's rebalance".to_owned(),
                after_ms: AGREE_LIMIT.as_millis(),
                detail: format!("\n  {why}{}", tail(&mut log)),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Everything `redis-cli` wrote.
fn read_all(log: &mut std::fs::File) -> String {
    let mut text = String::new();
    if log.seek(SeekFrom::Start(0)).is_ok() {
        let _ = log.read_to_string(&mut text);
    }
    text
}

/// The last lines of `redis-cli`'s output, without colours.
fn tail(log: &mut std::fs::File) -> String {
    let text = strip_ansi(&read_all(log));
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(12);
    lines
        .get(from..)
        .unwrap_or_default()
        .iter()
        .map(|l| format!("\n  [redis-cli] {l}"))
        .collect()
}

/// `redis-cli`'s error: its last `*** ` or `[ERR]` message (it prints
/// them after a line of progress marks), else its last non-empty line.
fn last_error(output: &str) -> String {
    let text = strip_ansi(output);
    let error = text.lines().rev().find_map(|line| {
        ["*** ", "[ERR]"]
            .iter()
            .find_map(|mark| line.find(mark).and_then(|at| line.get(at..)))
    });
    error
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no output")
        .trim()
        .to_owned()
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_redis_clis_last_message_without_colours() {
        let output = "\u{1b}[29;1m>>> Rebalancing across 4 nodes. Total weight = 4.00\n\
                      \u{1b}[0mMoving 1366 slots from 127.0.0.1:44629 to 127.0.0.1:40761\n\
                      #####\u{1b}[31;1m*** clusterManagerMoveSlot: NOREPLICAS Not enough good replicas to write.\n\
                      \u{1b}[0m\n";
        assert_eq!(
            last_error(output),
            "*** clusterManagerMoveSlot: NOREPLICAS Not enough good replicas to write."
        );
        assert_eq!(
            last_error("[ERR] Nodes don't agree about configuration!\n"),
            "[ERR] Nodes don't agree about configuration!"
        );
        assert_eq!(last_error("just this\n\n"), "just this");
        assert_eq!(last_error(""), "no output");
    }
}
