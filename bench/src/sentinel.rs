//! The Sentinel reference: how long writes stop, and how many acknowledged
//! writes are lost, when Valkey Sentinel handles the loss of a primary, or
//! a planned switchover asked of it (`SENTINEL FAILOVER ... COORDINATED`).
//!
//! Each run starts a fresh set of processes: a primary, two replicas and
//! three Sentinels (quorum 2, `failover-timeout` 10000, `parallel-syncs`
//! 1), so no run inherits an epoch, a failover cool-down or a half-synced
//! replica from the one before. The probe behaves like a Sentinel-aware
//! client: on any error it asks a Sentinel for the primary and reconnects.

use std::time::{Duration, Instant};

use super::conn::query_once;
use super::process::{Mode, ValkeyProcess};
use super::readiness::{probe_acked, replicas_online, success_after};
use super::resolve::Target;
use super::resolve::ask_sentinel;
use super::writer::{WriteProbe, WriteProbeConfig};
use super::{BenchError, Fault, RunResult};

/// The name the Sentinels monitor the primary under.
const MASTER: &str = "bench";

/// How many replicas and Sentinels a setup has.
const REPLICAS: usize = 2;
const SENTINELS: usize = 3;

/// Acknowledged writes before the fault, so the window has a start.
const WARM_UP_ACKED: usize = 50;

/// How long the probe keeps writing after all Sentinels agree on the new
/// primary, so writes accepted after the failover are read back too.
const TAIL: Duration = Duration::from_millis(300);

/// Runs the Sentinel reference `runs` times with `fault` injected into the
/// primary and `down-after-milliseconds` set to `down_after_ms`.
///
/// # Guarantees
///
/// Every process a run starts is killed when the run ends, whether it
/// succeeded, failed or the future was dropped.
///
/// # Errors
///
/// [`BenchError`] when processes cannot be started, the Sentinels do not
/// discover each other, no failover happens within `down_after_ms` + 30 s,
/// or the new primary cannot be read back.
pub async fn run_sentinel_reference(
    fault: Fault,
    down_after_ms: u64,
    runs: usize,
) -> Result<Vec<RunResult>, BenchError> {
    let mut results = Vec::with_capacity(runs);
    for run in 0..runs {
        results.push(sentinel_run(fault, down_after_ms, run).await?);
    }
    Ok(results)
}

/// The processes of one run.
struct Setup {
    primary: ValkeyProcess,
    /// Kept only so they are killed with the setup.
    _replicas: Vec<ValkeyProcess>,
    sentinels: Vec<ValkeyProcess>,
}

impl Setup {
    async fn start(down_after_ms: u64) -> Result<Setup, BenchError> {
        let primary = ValkeyProcess::start("primary", &Mode::Server(Vec::new())).await?;
        let mut replicas = Vec::with_capacity(REPLICAS);
        for i in 1..=REPLICAS {
            let args = vec![
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                primary.port().to_string(),
            ];
            replicas
                .push(ValkeyProcess::start(&format!("replica-{i}"), &Mode::Server(args)).await?);
        }
        replicas_online(&primary.addr(), REPLICAS, Duration::from_secs(15)).await?;
        let conf = vec![
            format!("sentinel monitor {MASTER} 127.0.0.1 {} 2", primary.port()),
            format!("sentinel down-after-milliseconds {MASTER} {down_after_ms}"),
            format!("sentinel failover-timeout {MASTER} 10000"),
            format!("sentinel parallel-syncs {MASTER} 1"),
        ];
        let mut sentinels = Vec::with_capacity(SENTINELS);
        for i in 1..=SENTINELS {
            let name = format!("sentinel-{i}");
            sentinels.push(ValkeyProcess::start(&name, &Mode::Sentinel(conf.clone())).await?);
        }
        let setup = Setup {
            primary,
            _replicas: replicas,
            sentinels,
        };
        setup.wait_for_discovery().await?;
        Ok(setup)
    }

    fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels.iter().map(ValkeyProcess::addr).collect()
    }

    /// Waits until every Sentinel knows both replicas and the two other
    /// Sentinels (hello messages go out every 2 s): before that a failover
    /// could lack its quorum or its candidates, which would measure the
    /// discovery rather than the failover.
    async fn wait_for_discovery(&self) -> Result<(), BenchError> {
        let limit = Duration::from_secs(20);
        let started = Instant::now();
        for sentinel in &self.sentinels {
            let addr = sentinel.addr();
            while !discovered(&addr).await {
                if started.elapsed() > limit {
                    return Err(BenchError::TimedOut {
                        what: format!(
                            "{addr} to see {REPLICAS} replicas and {} other Sentinels",
                            SENTINELS.saturating_sub(1)
                        ),
                        after_ms: limit.as_millis(),
                        detail: sentinel.log_tail(10),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Waits until every Sentinel names `new_primary`.
    async fn wait_for_agreement(&self, new_primary: &str) -> Result<(), BenchError> {
        let limit = Duration::from_secs(20);
        let started = Instant::now();
        let step = Duration::from_millis(500);
        for sentinel in &self.sentinels {
            let addr = sentinel.addr();
            while ask_sentinel(&addr, MASTER, None, step).await.as_deref() != Some(new_primary) {
                if started.elapsed() > limit {
                    return Err(BenchError::TimedOut {
                        what: format!("{addr} to name {new_primary} as the primary"),
                        after_ms: limit.as_millis(),
                        detail: sentinel.log_tail(10),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Primary changes so far: the most `+switch-master` events any
    /// Sentinel logged (each Sentinel logs every switch it learns of).
    fn failovers(&self) -> usize {
        self.sentinels
            .iter()
            .map(|s| s.log().matches("+switch-master").count())
            .max()
            .unwrap_or(0)
    }

    fn sentinel_log_tails(&self) -> String {
        self.sentinels.iter().map(|s| s.log_tail(8)).collect()
    }
}

/// Whether the Sentinel at `addr` knows all replicas (none down or
/// disconnected) and all other Sentinels.
async fn discovered(addr: &str) -> bool {
    let limit = Duration::from_millis(500);
    let mut master = redis::cmd("SENTINEL");
    master.arg("master").arg(MASTER);
    let Ok(fields) = query_once::<Vec<String>>(addr, None, &master, "SENTINEL", limit).await else {
        return false;
    };
    let number = |name: &str| field(&fields, name).and_then(|v| v.parse::<usize>().ok());
    if number("num-slaves") != Some(REPLICAS)
        || number("num-other-sentinels") != Some(SENTINELS.saturating_sub(1))
        || field(&fields, "flags") != Some("master")
    {
        return false;
    }
    let mut replicas = redis::cmd("SENTINEL");
    replicas.arg("replicas").arg(MASTER);
    let Ok(list) = query_once::<Vec<Vec<String>>>(addr, None, &replicas, "SENTINEL", limit).await
    else {
        return false;
    };
    list.len() == REPLICAS
        && list.iter().all(|replica| {
            field(replica, "flags")
                .is_some_and(|flags| !flags.contains("disconnected") && !flags.contains("down"))
        })
}

/// The value after `name` in a flat `[name, value, ...]` reply.
fn field<'a>(fields: &'a [String], name: &str) -> Option<&'a str> {
    fields.chunks_exact(2).find_map(|pair| match pair {
        [key, value] if key == name => Some(value.as_str()),
        _ => None,
    })
}

async fn sentinel_run(
    fault: Fault,
    down_after_ms: u64,
    run: usize,
) -> Result<RunResult, BenchError> {
    let mut setup = Setup::start(down_after_ms).await?;
    let old_primary = setup.primary.addr();
    let mut config = WriteProbeConfig::new(
        Target::Sentinel {
            sentinels: setup.sentinel_addrs(),
            master: MASTER.to_owned(),
        },
        format!("bench:sentinel:{}:{down_after_ms}:{run}", fault.name()),
    );
    config.wait_replicas = true;
    config.interval = crate::FAILOVER_PROBE_INTERVAL;
    let probe = WriteProbe::start(config);
    probe_acked(&probe, WARM_UP_ACKED, Duration::from_secs(10)).await?;

    let fault_at = Instant::now();
    match fault {
        Fault::Kill => setup.primary.kill()?,
        Fault::Freeze => setup.primary.signal("STOP")?,
        Fault::Planned => {
            let mut failover = redis::cmd("SENTINEL");
            failover.arg("FAILOVER").arg(MASTER).arg("COORDINATED");
            let sentinel = setup.sentinels.first().map(ValkeyProcess::addr);
            query_once::<()>(
                sentinel.as_deref().unwrap_or_default(),
                None,
                &failover,
                "SENTINEL FAILOVER",
                Duration::from_secs(2),
            )
            .await?;
        }
    }
    let limit = Duration::from_millis(down_after_ms).saturating_add(Duration::from_secs(30));
    let first = success_after(&probe, fault_at, &old_primary, limit, || {
        setup.sentinel_log_tails()
    })
    .await;
    if fault == Fault::Freeze {
        // Only now: thawed earlier, the old primary could take writes from
        // a client still pointed at it and end the window too soon.
        setup.primary.signal("CONT")?;
    }
    let first = first?;
    let new_primary = first
        .server
        .as_deref()
        .map(str::to_owned)
        .unwrap_or_default();
    setup.wait_for_agreement(&new_primary).await?;
    tokio::time::sleep(TAIL).await;
    let log = probe.stop().await;

    super::measure(&log, fault_at, &new_primary, setup.failovers()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_flat_reply() {
        let reply: Vec<String> = ["name", "bench", "flags", "master", "odd"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(field(&reply, "flags"), Some("master"));
        assert_eq!(field(&reply, "name"), Some("bench"));
        assert_eq!(field(&reply, "odd"), None);
        assert_eq!(field(&reply, "bench"), None);
    }
}
