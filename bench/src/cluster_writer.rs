//! The cluster write probe: every interval one `SET <prefix>:<n> <n>`
//! routed by the key's slot through a [`ClusterClient`], then `WAIT 1 1000`
//! on the node that took it (unless the cluster has no replica to wait
//! for), each attempt recorded in the same
//! [`WriteLog`] as the single-primary probe's.
//!
//! Consecutive keys hash to slots all over the map, so the probe writes to
//! every shard in turn (the attempts of one shard are [`shard_log`]); a
//! prefix holding a hash tag (`{tag}:...`) sends every key to the tag's
//! slot, which is how [`super::shard_probe`] gives each shard a writer of
//! its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logbook::valkey::Password;
use redis::Value;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::cluster_client::ClusterClient;
use super::slots::{in_ranges, key_slot};
use super::writer::{Attempt, Outcome, WriteLog, WriteProbe, lock};

/// `WAIT 1 <ms>`: one replica, for at most a second, as the other probes.
const WAIT_TIMEOUT_MS: u64 = 1000;

/// What a cluster probe does.
#[derive(Debug, Clone)]
pub struct ClusterProbeConfig {
    /// Nodes to read the slot map from first (`host:port`).
    pub seeds: Vec<String>,
    /// Sent with `AUTH` on every connection.
    pub password: Option<Password>,
    /// Keys are `<prefix>:<n>`; use a fresh prefix per probe.
    pub prefix: String,
    /// Time between attempts. Default 10 ms.
    pub interval: Duration,
    /// Deadline of `SET`, and of `WAIT` on top of its own second. Default
    /// 250 ms.
    pub op_timeout: Duration,
    /// Deadline of connecting and of `CLUSTER SLOTS`. Default 250 ms.
    pub connect_timeout: Duration,
    /// Send `WAIT 1 1000` after each accepted `SET`; a write is then
    /// acknowledged only when a replica has it. Default true; a cluster
    /// without replicas can acknowledge nothing that way, so its writes
    /// count as acknowledged when accepted.
    pub wait_replicas: bool,
}

impl ClusterProbeConfig {
    /// Defaults: 10 ms interval, 250 ms timeouts, no password, `WAIT`.
    pub fn new(seeds: Vec<String>, prefix: impl Into<String>) -> Self {
        ClusterProbeConfig {
            seeds,
            password: None,
            prefix: prefix.into(),
            interval: Duration::from_millis(10),
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(250),
            wait_replicas: true,
        }
    }
}

/// Starts a cluster probe: it writes until stopped, like
/// [`WriteProbe::start`]. Must be called inside a tokio runtime.
pub fn start_cluster_probe(config: ClusterProbeConfig) -> WriteProbe {
    let prefix = config.prefix.clone();
    WriteProbe::spawn(prefix, |log, stopped| run(config, log, stopped))
}

/// The slot of attempt `attempt` of a probe with `prefix`.
pub fn attempt_slot(prefix: &str, attempt: &Attempt) -> u16 {
    key_slot(format!("{prefix}:{}", attempt.key).as_bytes())
}

/// The attempts of `log` whose key is in `ranges` (one shard's slots), or
/// with `inside` false, the attempts whose key is not.
pub fn shard_log(log: &WriteLog, ranges: &[(u16, u16)], inside: bool) -> WriteLog {
    log.only(|a| in_ranges(ranges, attempt_slot(&log.prefix, a)) == inside)
}

async fn run(
    config: ClusterProbeConfig,
    log: Arc<Mutex<WriteLog>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = ClusterClient::new(
        config.seeds.clone(),
        config.password.clone(),
        config.connect_timeout,
        config.op_timeout,
    );
    let mut ticker = tokio::time::interval(config.interval);
    // After a slow attempt the next starts at once, then the cadence
    // resumes: the window is not stretched by catching up missed ticks.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut key: u64 = 0;
    let wait_limit = Duration::from_millis(WAIT_TIMEOUT_MS).saturating_add(config.op_timeout);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let name = format!("{}:{key}", config.prefix);
        let mut set = redis::cmd("SET");
        set.arg(&name).arg(key);
        let (server, reply) = client.route(name.as_bytes(), &set).await;
        let replied = Instant::now();
        let outcome = match reply {
            Ok(Value::Okay) => Outcome::Ok,
            Ok(Value::SimpleString(s)) if s == "OK" => Outcome::Ok,
            Ok(other) => Outcome::Failed(super::writer::Failure::Rejected(format!(
                "unexpected reply {other:?}"
            ))),
            Err(failure) => Outcome::Failed(failure),
        };
        let mut acked = outcome == Outcome::Ok && !config.wait_replicas;
        if let (Outcome::Ok, Some(node), true) = (&outcome, &server, config.wait_replicas) {
            let mut wait = redis::cmd("WAIT");
            wait.arg(1).arg(WAIT_TIMEOUT_MS);
            acked = matches!(
                client.on(node, &wait, wait_limit).await,
                Some(Value::Int(n)) if n >= 1
            );
        }
        lock(&log).attempts.push(Attempt {
            key,
            started,
            replied,
            ended: Instant::now(),
            server,
            outcome,
            acked,
        });
        key = key.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Failure;

    fn attempt(base: Instant, key: u64, ms: u64, ok: bool) -> Attempt {
        Attempt {
            key,
            started: base + Duration::from_millis(ms),
            replied: base + Duration::from_millis(ms + 1),
            ended: base + Duration::from_millis(ms + 2),
            server: None,
            outcome: if ok {
                Outcome::Ok
            } else {
                Outcome::Failed(Failure::Io)
            },
            acked: ok,
        }
    }

    #[test]
    fn a_shard_log_keeps_the_writes_to_its_slots() {
        let base = Instant::now();
        let prefix = "p";
        // Keys 0..40 spread over the three even thirds of the slots.
        let log = WriteLog {
            prefix: prefix.to_owned(),
            attempts: (0..40)
                .map(|k| attempt(base, k, k * 10, k % 7 != 3))
                .collect(),
        };
        let first_third = [(0, 5460)];
        let inside = shard_log(&log, &first_third, true);
        let outside = shard_log(&log, &first_third, false);
        assert_eq!(inside.attempts.len() + outside.attempts.len(), 40);
        assert!(!inside.attempts.is_empty() && !outside.attempts.is_empty());
        assert!(
            inside
                .attempts
                .iter()
                .all(|a| attempt_slot(prefix, a) <= 5460)
        );
        assert!(
            outside
                .attempts
                .iter()
                .all(|a| attempt_slot(prefix, a) > 5460)
        );
        assert_eq!(
            attempt_slot(prefix, &attempt(base, 7, 0, true)),
            key_slot(b"p:7")
        );
    }
}
