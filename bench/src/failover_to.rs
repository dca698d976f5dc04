//! The bare `FAILOVER TO` reference: the write pause of a planned
//! switchover done by Valkey alone, with no operator and no Sentinel.
//!
//! Two servers, a primary and its replica, live for all runs; each run
//! switches the roles (so runs alternate direction). The probe writes with
//! `WAIT 1 1000` and, after any error, asks both servers for `ROLE` and
//! reconnects to the one that reports `master`.

use std::time::{Duration, Instant};

use super::conn::{connect, query};
use super::process::{Mode, ValkeyProcess};
use super::readiness::{probe_acked, replicas_online, success_after};
use super::resolve::Target;
use super::writer::{WriteProbe, WriteProbeConfig};
use super::{BenchError, RunResult};

/// The `TIMEOUT` of `FAILOVER`, in milliseconds: after it the primary
/// aborts and stays primary.
const FAILOVER_TIMEOUT_MS: u64 = 5000;

/// Acknowledged writes before the command, so the pause has a start.
const WARM_UP_ACKED: usize = 50;

/// How long the probe keeps writing after the first success on the new
/// primary, so those writes are read back too.
const TAIL: Duration = Duration::from_millis(300);

/// Runs `runs` switchovers with `FAILOVER TO`, alternating direction.
///
/// # Guarantees
///
/// Both servers are killed when this returns or the future is dropped.
///
/// # Errors
///
/// [`BenchError`] when the servers cannot be started, the replica does not
/// come online, `FAILOVER` is refused, no write succeeds on the new primary
/// within 10 s, or it cannot be read back.
pub async fn run_failover_to_reference(runs: usize) -> Result<Vec<RunResult>, BenchError> {
    let first = ValkeyProcess::start("server-a", &Mode::Server(Vec::new())).await?;
    let args = vec![
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        first.port().to_string(),
    ];
    let second = ValkeyProcess::start("server-b", &Mode::Server(args)).await?;
    let mut results = Vec::with_capacity(runs);
    for run in 0..runs {
        let (from, to) = if run % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        results.push(switchover(from, to, run).await?);
    }
    Ok(results)
}

/// One switchover from `from` (the primary) to `to` (its replica).
async fn switchover(
    from: &ValkeyProcess,
    to: &ValkeyProcess,
    run: usize,
) -> Result<RunResult, BenchError> {
    let (old_primary, new_primary) = (from.addr(), to.addr());
    // The previous run's old primary must have caught up as a replica.
    replicas_online(&old_primary, 1, Duration::from_secs(15)).await?;
    let mut config = WriteProbeConfig::new(
        Target::Role(vec![old_primary.clone(), new_primary.clone()]),
        format!("bench:failover-to:{run}"),
    );
    config.wait_replicas = true;
    let probe = WriteProbe::start(config);
    probe_acked(&probe, WARM_UP_ACKED, Duration::from_secs(10)).await?;

    let limit = Duration::from_secs(2);
    let mut admin = connect(&old_primary, None, limit).await?;
    let mut failover = redis::cmd("FAILOVER");
    failover
        .arg("TO")
        .arg("127.0.0.1")
        .arg(to.port())
        .arg("TIMEOUT")
        .arg(FAILOVER_TIMEOUT_MS);
    // Taken after connecting, so only the switchover is measured.
    let command_at = Instant::now();
    query::<()>(&mut admin, &failover, &old_primary, "FAILOVER", limit).await?;
    let first = success_after(
        &probe,
        command_at,
        &old_primary,
        Duration::from_millis(FAILOVER_TIMEOUT_MS).saturating_add(Duration::from_secs(5)),
        || format!("{}{}", from.log_tail(8), to.log_tail(8)),
    )
    .await?;
    if first.server.as_deref() != Some(new_primary.as_str()) {
        return Err(BenchError::Protocol {
            addr: old_primary,
            command: "FAILOVER",
            detail: format!(
                "the first write after the switchover went to {:?}, not {new_primary}",
                first.server
            ),
        });
    }
    tokio::time::sleep(TAIL).await;
    let log = probe.stop().await;

    // The command switches roles once; a run where it did not complete
    // ended above with an error.
    super::measure(&log, command_at, &new_primary, 1).await
}
