//! The planned switchovers done with no operator and no Sentinel: Valkey's
//! own `FAILOVER TO`, and the same steps the operator takes, sent by hand
//! (writes paused, the replica caught up, `REPLICAOF NO ONE`, the old
//! primary repointed, writes resumed).
//!
//! Two servers, a primary and its replica, live for all runs; each run
//! switches the roles (so runs alternate direction). The probe writes with
//! `WAIT 1 1000` and, after any error, asks both servers for `ROLE` and
//! reconnects to the one that reports `master`.
//!
//! The switchover by hand is the reference the operator's switchover is
//! checked against (`make bench-check`): it does the operator's steps with
//! none of its deciding, journaling or Kubernetes writes, polling the
//! replica's offset as the operator does, so it moves with the machine's
//! load and holds still otherwise. `FAILOVER TO` does not: its steps wait
//! on the servers' own timers, and its median of a few runs ranged over
//! 156–525 ms from run to run.

use std::time::{Duration, Instant};

use logbook::valkey::parse_info_replication;
use redis::aio::MultiplexedConnection;

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

/// How often the switchover by hand reads the replica's offset while it
/// catches up (as the operator's switchover does).
const CATCH_UP_POLL: Duration = Duration::from_millis(2);

/// How a reference switchover is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Valkey's `FAILOVER TO host port TIMEOUT ms`.
    FailoverTo,
    /// The operator's steps sent by hand: `CLIENT PAUSE WRITE`, the
    /// replica's offset polled until it matches, `REPLICAOF NO ONE` on
    /// it, `REPLICAOF` on the old primary, `CLIENT UNPAUSE`.
    ByHand,
}

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
    run_switchover_reference(Switch::FailoverTo, runs).await
}

/// Runs `runs` switchovers made as `how` says, alternating direction.
///
/// # Guarantees
///
/// Both servers are killed when this returns or the future is dropped.
///
/// # Errors
///
/// As [`run_failover_to_reference`]; by hand, also a command refused or a
/// replica that does not catch up within the pause.
pub async fn run_switchover_reference(
    how: Switch,
    runs: usize,
) -> Result<Vec<RunResult>, BenchError> {
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
        results.push(switchover(how, from, to, run).await?);
    }
    Ok(results)
}

/// One switchover from `from` (the primary) to `to` (its replica).
async fn switchover(
    how: Switch,
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
    config.interval = crate::FAILOVER_PROBE_INTERVAL;
    let probe = WriteProbe::start(config);
    probe_acked(&probe, WARM_UP_ACKED, Duration::from_secs(10)).await?;

    let limit = Duration::from_secs(2);
    let mut admin = connect(&old_primary, None, limit).await?;
    let mut replica = connect(&new_primary, None, limit).await?;
    // Taken after connecting, so only the switchover is measured.
    let command_at = Instant::now();
    match how {
        Switch::FailoverTo => {
            let mut failover = redis::cmd("FAILOVER");
            failover
                .arg("TO")
                .arg("127.0.0.1")
                .arg(to.port())
                .arg("TIMEOUT")
                .arg(FAILOVER_TIMEOUT_MS);
            query::<()>(&mut admin, &failover, &old_primary, "FAILOVER", limit).await?;
        }
        Switch::ByHand => {
            by_hand(&mut admin, &old_primary, &mut replica, to).await?;
        }
    }
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
                "the first write after the {how:?} switchover went to {:?}, not {new_primary}",
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

/// The operator's switchover steps, sent by hand from `old` (the primary,
/// connected as `admin`) to its replica `to` (connected as `replica`).
async fn by_hand(
    admin: &mut MultiplexedConnection,
    old: &str,
    replica: &mut MultiplexedConnection,
    to: &ValkeyProcess,
) -> Result<(), BenchError> {
    let limit = Duration::from_secs(2);
    let new = to.addr();
    let mut pause = redis::cmd("CLIENT");
    pause.arg("PAUSE").arg(FAILOVER_TIMEOUT_MS).arg("WRITE");
    query::<()>(admin, &pause, old, "CLIENT PAUSE", limit).await?;
    let offset = |text: String, addr: &str| {
        parse_info_replication(&text)
            .map(|i| i.master_repl_offset)
            .map_err(|e| BenchError::Protocol {
                addr: addr.to_owned(),
                command: "INFO replication",
                detail: e.to_string(),
            })
    };
    let mut info = redis::cmd("INFO");
    info.arg("replication");
    let target = offset(query(admin, &info, old, "INFO", limit).await?, old)?;
    let deadline = Instant::now() + Duration::from_millis(FAILOVER_TIMEOUT_MS);
    while offset(query(replica, &info, &new, "INFO", limit).await?, &new)? < target {
        if Instant::now() > deadline {
            return Err(BenchError::TimedOut {
                what: format!("{new} to catch up to offset {target}"),
                after_ms: u128::from(FAILOVER_TIMEOUT_MS),
                detail: String::new(),
            });
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
    let mut promote = redis::cmd("REPLICAOF");
    promote.arg("NO").arg("ONE");
    query::<()>(replica, &promote, &new, "REPLICAOF", limit).await?;
    let mut follow = redis::cmd("REPLICAOF");
    follow.arg("127.0.0.1").arg(to.port());
    query::<()>(admin, &follow, old, "REPLICAOF", limit).await?;
    let mut unpause = redis::cmd("CLIENT");
    unpause.arg("UNPAUSE");
    query::<()>(admin, &unpause, old, "CLIENT UNPAUSE", limit).await?;
    Ok(())
}
