//! What a timed reshard leaves to measure: the writer that writes through
//! it, the machine's load when it starts, and, once it is over, the
//! writer's longest pause, the keys and acknowledged writes read back, and
//! what moved.

use std::time::{Duration, Instant};

use logbook::valkey::Password;

use super::load::{count_missing, loaded_key, loaded_value};
use super::plan::{self, Owners, moved_slots};
use super::{Method, MethodRun, ReshardConfig};
use crate::BenchError;
use crate::cluster_writer::{ClusterProbeConfig, start_cluster_probe};
use crate::slots::key_slot;
use crate::writer::{WriteLog, WriteProbe};

/// Acknowledged writes before the clock starts, so the first pause has a
/// start.
const WARM_UP_ACKED: usize = 20;

/// How long the writer keeps writing once the reshard is done, so the
/// pause ends inside its log.
const TAIL: Duration = Duration::from_millis(300);

/// The 1-minute load average (Linux), for the run lines.
pub(super) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Starts the run's writer and waits until it has acknowledged writes.
pub(super) async fn start_writer(
    seeds: &[String],
    password: Option<&Password>,
    replicas: usize,
    method: Method,
    run: usize,
) -> Result<WriteProbe, BenchError> {
    let mut config = ClusterProbeConfig::new(
        seeds.to_vec(),
        format!("bench:reshard:w:{}:{run}", method.key()),
    );
    config.password = password.cloned();
    config.interval = Duration::from_millis(1);
    // A write held by a migration is a pause to measure, not a failure.
    config.op_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(1);
    config.wait_replicas = replicas > 0;
    let probe = start_cluster_probe(config);
    crate::readiness::probe_acked(&probe, WARM_UP_ACKED, Duration::from_secs(20)).await?;
    Ok(probe)
}

/// A timed reshard, before the writes are read back.
pub(super) struct Measured {
    /// From the start to balanced and agreed.
    pub elapsed: Duration,
    /// The start.
    pub started: Instant,
    /// The ownership before.
    pub before: Owners,
    /// The ownership after.
    pub after: Owners,
    /// Operator only: from the patch to a Ready status.
    pub ready_after: Option<Duration>,
    /// Raw ASM only: from starting the new shard's processes to balanced
    /// and agreed (see [`MethodRun::from_start`]).
    pub from_start: Option<Duration>,
    /// The 1-minute load average at the start.
    pub load: Option<f64>,
}

/// The longest a client of the writer waited for a write from `from` on:
/// the longest time between the starts of two successive successful
/// writes (from the last one before `from`), or the longest single call
/// (`SET`, and `WAIT` when asked) started since — which counts the call
/// still held when the log ends. `None` without a success before `from`.
pub fn max_write_pause(log: &WriteLog, from: Instant) -> Option<Duration> {
    let start = log
        .attempts
        .iter()
        .filter(|a| a.succeeded() && a.started <= from)
        .map(|a| a.started)
        .max()?;
    let longest_call = log
        .attempts
        .iter()
        .filter(|a| a.started >= start)
        .map(|a| a.ended.saturating_duration_since(a.started))
        .max();
    log.longest_gap_from(from).max(longest_call)
}

/// Stops the writer after [`TAIL`], reads back every loaded key and
/// acknowledged write from `seeds`' cluster, and counts what moved.
pub(super) async fn finish(
    config: &ReshardConfig,
    writer: WriteProbe,
    seeds: &[String],
    password: Option<&Password>,
    measured: Measured,
) -> Result<MethodRun, BenchError> {
    tokio::time::sleep(TAIL).await;
    let log = writer.stop().await;
    let acked = log.acked_keys();
    let n = usize::try_from(config.keys).unwrap_or(usize::MAX);
    let bytes = config.value_bytes;
    let index = |i: usize| u64::try_from(i).unwrap_or(u64::MAX);
    let lost_loaded = count_missing(seeds, password, n, &|i| loaded_key(index(i)), &|i| {
        loaded_value(index(i), bytes)
    })
    .await?;
    let prefix = log.prefix.clone();
    let acked_key = |i: usize| acked.get(i).copied().unwrap_or(u64::MAX);
    let lost_acked = count_missing(
        seeds,
        password,
        acked.len(),
        &|i| format!("{prefix}:{}", acked_key(i)),
        &|i| acked_key(i).to_string(),
    )
    .await?;
    let moved = moved_slots(&measured.before, &measured.after);
    let keys_moved = (0..config.keys)
        .filter(|i| {
            moved
                .get(usize::from(key_slot(loaded_key(*i).as_bytes())))
                .copied()
                .unwrap_or(false)
        })
        .count();
    Ok(MethodRun {
        elapsed: measured.elapsed,
        slots_moved: plan::slots_moved(&measured.before, &measured.after),
        keys_moved: u64::try_from(keys_moved).unwrap_or(u64::MAX),
        max_write_pause: max_write_pause(&log, measured.started),
        writes: log.attempts.len(),
        acked: acked.len(),
        lost_keys: lost_loaded.saturating_add(lost_acked),
        ready_after: measured.ready_after,
        from_start: measured.from_start,
        load: measured.load,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::writer::{Attempt, Failure, Outcome};

    fn attempt(base: Instant, start: u64, end: u64, ok: bool) -> Attempt {
        let at = |ms| base + Duration::from_millis(ms);
        Attempt {
            key: start,
            started: at(start),
            replied: at(start),
            ended: at(end),
            server: Some(Arc::from("n:1")),
            outcome: if ok {
                Outcome::Ok
            } else {
                Outcome::Failed(Failure::TimedOut)
            },
            acked: ok,
        }
    }

    #[test]
    fn the_pause_is_the_longest_gap_or_the_longest_call_in_flight() {
        let base = Instant::now();
        let log = |attempts| WriteLog {
            prefix: "p".into(),
            attempts,
        };
        let from = base + Duration::from_millis(10);
        // A failed call, then a success 80 ms after the last before `from`.
        let gap = log(vec![
            attempt(base, 0, 1, true),
            attempt(base, 5, 6, true),
            attempt(base, 12, 60, false),
            attempt(base, 85, 86, true),
        ]);
        assert_eq!(max_write_pause(&gap, from), Some(Duration::from_millis(80)));
        // The last call is still held by WAIT when the log ends.
        let held = log(vec![
            attempt(base, 0, 1, true),
            attempt(base, 5, 6, true),
            attempt(base, 20, 21, true),
            attempt(base, 22, 400, true),
        ]);
        assert_eq!(
            max_write_pause(&held, from),
            Some(Duration::from_millis(378))
        );
        // Nothing succeeded before: no start.
        let none = log(vec![attempt(base, 20, 21, true)]);
        assert_eq!(max_write_pause(&none, from), None);
    }
}
