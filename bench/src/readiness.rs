//! Waiting for the conditions a run needs before and after its fault:
//! replicas online, the probe writing, the probe past the fault.
//!
//! Every wait has a deadline and fails with [`BenchError::TimedOut`] naming
//! what it waited for, so a run that cannot proceed ends instead of hanging.

use std::time::{Duration, Instant};

use logbook::valkey::{RoleReply, parse_role};
use redis::Value;

use super::BenchError;
use super::conn::query_once;
use super::writer::{Attempt, WriteProbe};

/// How often the waits poll.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Waits until `primary`'s `ROLE` lists at least `count` online replicas.
pub(crate) async fn replicas_online(
    primary: &str,
    count: usize,
    limit: Duration,
) -> Result<(), BenchError> {
    let started = Instant::now();
    loop {
        let role: Result<Value, _> = query_once(
            primary,
            None,
            &redis::cmd("ROLE"),
            "ROLE",
            Duration::from_millis(500),
        )
        .await;
        if let Ok(reply) = role
            && let Ok(RoleReply::Primary { replicas, .. }) =
                parse_role(&logbook::valkey::reply(reply))
            && replicas.len() >= count
        {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(BenchError::TimedOut {
                what: format!("{count} online replicas of {primary}"),
                after_ms: limit.as_millis(),
                detail: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the probe has `count` acknowledged writes.
pub(crate) async fn probe_acked(
    probe: &WriteProbe,
    count: usize,
    limit: Duration,
) -> Result<(), BenchError> {
    let started = Instant::now();
    while probe.acked_count() < count {
        if started.elapsed() > limit {
            let log = probe.snapshot();
            let last = log.attempts.last().map(|a| format!("{a:?}"));
            return Err(BenchError::TimedOut {
                what: format!("{count} acknowledged writes under {}", log.prefix),
                after_ms: limit.as_millis(),
                detail: format!(
                    "\n  {} acknowledged of {} attempts; last: {}",
                    log.acked_keys().len(),
                    log.attempts.len(),
                    last.unwrap_or_else(|| "none".to_owned())
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Waits for the probe's first successful write that started after `at`
/// on a server other than `old_primary`; `context` is called for the error
/// detail (log tails) when it does not come within `limit`.
pub(crate) async fn success_after(
    probe: &WriteProbe,
    at: Instant,
    old_primary: &str,
    limit: Duration,
    context: impl Fn() -> String,
) -> Result<Attempt, BenchError> {
    let started = Instant::now();
    loop {
        if let Some(attempt) = probe.first_success_after(at, Some(old_primary)) {
            return Ok(attempt);
        }
        if started.elapsed() > limit {
            return Err(BenchError::TimedOut {
                what: format!("a successful write on a primary other than {old_primary}"),
                after_ms: limit.as_millis(),
                detail: context(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
