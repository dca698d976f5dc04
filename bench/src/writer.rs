//! The write probe: a task that writes `SET <prefix>:<n> <n>` (then
//! `WAIT 1 1000` when asked) every interval and records every attempt, and
//! the log it leaves, from which windows and losses are computed.
//!
//! The probe never retries a write: each tick is one attempt with one key,
//! so the log shows exactly which keys were acknowledged. On any error the
//! connection is dropped and the next tick resolves the target and
//! reconnects, like an ordinary client.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use logbook::valkey::Password;
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, timeout};

use super::conn::connect;
use super::resolve::Resolver;
use super::resolve::Target;

/// How `WAIT` is asked: one replica, for at most one second.
const WAIT_TIMEOUT_MS: u64 = 1000;

/// What a [`WriteProbe`] does.
#[derive(Debug, Clone)]
pub struct WriteProbeConfig {
    /// Where to write.
    pub target: Target,
    /// Sent with `AUTH` on every connection to a data server.
    pub password: Option<Password>,
    /// Keys are `<prefix>:<n>`; use a fresh prefix per probe.
    pub prefix: String,
    /// Time between attempts. Default 10 ms.
    pub interval: Duration,
    /// Deadline of `SET` (and of `WAIT` on top of its own second).
    /// Default 250 ms.
    pub op_timeout: Duration,
    /// Deadline of connecting, and of each query that resolves the target.
    /// Default 250 ms.
    pub connect_timeout: Duration,
    /// Send `WAIT 1 1000` after each successful `SET`; a write is then
    /// acknowledged only when a replica has it.
    pub wait_replicas: bool,
    /// How many replicas `WAIT` asks for (default 1); a write is
    /// acknowledged when that many have it.
    pub wait_for: i64,
}

impl WriteProbeConfig {
    /// Defaults: 10 ms interval, 250 ms timeouts, no password, no `WAIT`.
    pub fn new(target: Target, prefix: impl Into<String>) -> Self {
        WriteProbeConfig {
            target,
            password: None,
            prefix: prefix.into(),
            interval: Duration::from_millis(10),
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(250),
            wait_replicas: false,
            wait_for: 1,
        }
    }

    /// Defaults, writing to one fixed `host:port`.
    pub fn fixed(addr: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self::new(Target::Fixed(addr.into()), prefix)
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No Sentinel answered, or no server reported itself primary.
    NoPrimary,
    /// Connecting (or `AUTH`) failed or timed out.
    Connect,
    /// `SET` did not answer within the operation timeout.
    TimedOut,
    /// The server answered with an error (`READONLY`, `LOADING`, ...): its
    /// code, or the unexpected reply.
    Rejected(String),
    /// The connection broke.
    Io,
}

/// The outcome of the `SET` of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `SET` returned `OK`.
    Ok,
    /// It did not.
    Failed(Failure),
}

/// One write attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The key number `n` (`SET <prefix>:<n> <n>`).
    pub key: u64,
    /// When the attempt started (before resolving or connecting, if it had
    /// to).
    pub started: Instant,
    /// When `SET` answered or failed (after any resolving, connecting
    /// and redirection): a write accepted is accepted at this moment.
    pub replied: Instant,
    /// When the attempt ended: after `WAIT` when it waited, else when
    /// `SET` answered. An acknowledged write is acknowledged at this
    /// moment, which can be up to `WAIT`'s second after [`replied`].
    ///
    /// [`replied`]: Attempt::replied
    pub ended: Instant,
    /// The server it went to, when one was resolved.
    pub server: Option<Arc<str>>,
    /// What `SET` did.
    pub outcome: Outcome,
    /// `SET` returned `OK` and, when waiting, `WAIT` returned at least 1.
    pub acked: bool,
}

impl Attempt {
    /// `SET` returned `OK`.
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Every attempt of one probe, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteLog {
    /// The probe's key prefix.
    pub prefix: String,
    /// The attempts, in the order they started.
    pub attempts: Vec<Attempt>,
}

impl WriteLog {
    /// The attempts from `before` ahead of `at` to the second
    /// acknowledged write after it (the second success, for a log with no
    /// acknowledgement at all), a line each with its times in milliseconds from `at`
    /// (`logbook-bench failover --trace`): where a window's time went on
    /// the client's side.
    pub fn describe_around(&self, at: Instant, before: Duration) -> String {
        let ms = |t: Instant| -> i128 {
            match t.checked_duration_since(at) {
                Some(d) => i128::try_from(d.as_millis()).unwrap_or(i128::MAX),
                None => -i128::try_from(at.saturating_duration_since(t).as_millis())
                    .unwrap_or(i128::MAX),
            }
        };
        let mut out = String::new();
        let mut after = 0;
        let acks = self.attempts.iter().any(|a| a.acked);
        for a in self.attempts.iter().filter(|a| a.started + before >= at) {
            let _ = writeln!(
                out,
                "    {:>6} ms sent, {:>6} ms answered, {:>6} ms done: {} on {}",
                ms(a.started),
                ms(a.replied),
                ms(a.ended),
                match &a.outcome {
                    Outcome::Ok if a.acked => "ok, acknowledged".to_owned(),
                    Outcome::Ok => "ok".to_owned(),
                    other => format!("{other:?}"),
                },
                a.server.as_deref().unwrap_or("–"),
            );
            if (if acks { a.acked } else { a.succeeded() }) && a.started > at {
                after += 1;
                if after == 2 {
                    break;
                }
            }
        }
        out
    }

    /// The keys of acknowledged writes, in order.
    pub fn acked_keys(&self) -> Vec<u64> {
        self.attempts
            .iter()
            .filter(|a| a.acked)
            .map(|a| a.key)
            .collect()
    }

    /// The attempts `keep` selects (the writes to one shard's slots), in
    /// order, under the same prefix.
    pub fn only(&self, keep: impl Fn(&Attempt) -> bool) -> WriteLog {
        WriteLog {
            prefix: self.prefix.clone(),
            attempts: self.attempts.iter().filter(|a| keep(a)).cloned().collect(),
        }
    }

    /// How many attempts' `SET` returned `OK`.
    pub fn successful_writes(&self) -> usize {
        self.attempts.iter().filter(|a| a.succeeded()).count()
    }

    /// How many attempts failed (including failures to connect).
    pub fn failed_writes(&self) -> usize {
        self.attempts.iter().filter(|a| !a.succeeded()).count()
    }

    /// The write window around an unplanned fault: the start of the first
    /// successful write that started after `fault`, minus the start of the
    /// last successful write that started at or before it.
    ///
    /// `None` when there is no success on either side.
    pub fn window_around(&self, fault: Instant) -> Option<Duration> {
        self.window(fault, |_| true)
    }

    /// The write pause of a planned switchover (or the window of a fault
    /// when the new primary is known): like [`window_around`], but only a
    /// success on `new_primary` (`host:port`) ends it, so a write the old
    /// primary accepted just after the command does not shorten it.
    ///
    /// [`window_around`]: WriteLog::window_around
    pub fn pause_around(&self, command: Instant, new_primary: &str) -> Option<Duration> {
        self.window(command, |a| a.server.as_deref() == Some(new_primary))
    }

    /// The longest time without a successful write from the last success
    /// at or before `at` to the end of the log: the unavailability a fault
    /// caused even when the old primary still accepted a few writes after
    /// it (a deleted pod shutting down).
    pub fn longest_gap_from(&self, at: Instant) -> Option<Duration> {
        let start = self
            .attempts
            .iter()
            .filter(|a| a.succeeded() && a.started <= at)
            .map(|a| a.started)
            .max()?;
        let mut successes: Vec<Instant> = self
            .attempts
            .iter()
            .filter(|a| a.succeeded() && a.started >= start)
            .map(|a| a.started)
            .collect();
        successes.sort();
        successes
            .windows(2)
            .filter_map(|w| match w {
                [a, b] => Some(b.saturating_duration_since(*a)),
                _ => None,
            })
            .max()
    }

    fn window(&self, at: Instant, ends_it: impl Fn(&Attempt) -> bool) -> Option<Duration> {
        let before = self
            .attempts
            .iter()
            .filter(|a| a.succeeded() && a.started <= at)
            .map(|a| a.started)
            .max()?;
        let after = self
            .attempts
            .iter()
            .filter(|a| a.succeeded() && a.started > at && ends_it(a))
            .map(|a| a.started)
            .min()?;
        Some(after.saturating_duration_since(before))
    }
}

/// A running write probe. Dropping it stops the task; [`WriteProbe::stop`]
/// also returns the log.
pub struct WriteProbe {
    log: Arc<Mutex<WriteLog>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl WriteProbe {
    /// Starts writing at once. Must be called inside a tokio runtime.
    pub fn start(config: WriteProbeConfig) -> WriteProbe {
        let prefix = config.prefix.clone();
        WriteProbe::spawn(prefix, |log, stopped| run(config, log, stopped))
    }

    /// Starts `body` on its own task with an empty log of `prefix` and the
    /// stop signal: the writing loop of another kind of client (the
    /// cluster probe) with the same log and the same stop.
    pub(crate) fn spawn<F, Fut>(prefix: String, body: F) -> WriteProbe
    where
        F: FnOnce(Arc<Mutex<WriteLog>>, watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let log = Arc::new(Mutex::new(WriteLog {
            prefix,
            attempts: Vec::new(),
        }));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(body(Arc::clone(&log), stopped));
        WriteProbe {
            log,
            stop,
            task: Some(task),
        }
    }

    /// A copy of the log so far.
    pub fn snapshot(&self) -> WriteLog {
        lock(&self.log).clone()
    }

    /// How many writes have been acknowledged so far.
    pub fn acked_count(&self) -> usize {
        lock(&self.log).attempts.iter().filter(|a| a.acked).count()
    }

    /// The first successful attempt that started after `at` on a server
    /// other than `not_on` (when given).
    pub fn first_success_after(&self, at: Instant, not_on: Option<&str>) -> Option<Attempt> {
        lock(&self.log)
            .attempts
            .iter()
            .find(|a| {
                a.succeeded()
                    && a.started > at
                    && (not_on.is_none() || a.server.as_deref() != not_on)
            })
            .cloned()
    }

    /// Stops after the attempt in flight and returns the log.
    pub async fn stop(mut self) -> WriteLog {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            // A panicked task still left its log behind.
            let _ = task.await;
        }
        std::mem::take(&mut *lock(&self.log))
    }
}

impl Drop for WriteProbe {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) fn lock(log: &Mutex<WriteLog>) -> MutexGuard<'_, WriteLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run(config: WriteProbeConfig, log: Arc<Mutex<WriteLog>>, mut stop: watch::Receiver<bool>) {
    let mut resolver = Resolver::new(
        config.target.clone(),
        config.password.clone(),
        config.connect_timeout,
    );
    let mut ticker = tokio::time::interval(config.interval);
    // After a slow attempt the next one starts at once, then the cadence
    // resumes: the window is not stretched by catching up missed ticks.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut current: Option<(Arc<str>, MultiplexedConnection)> = None;
    let mut key: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let (server, outcome, replied, acked) =
            attempt(&mut current, &mut resolver, &config, key).await;
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

/// One attempt: connect if needed, `SET`, then `WAIT` when asked; returns
/// the server, what `SET` did, when it answered, and whether the write was
/// acknowledged. Leaves the connection in `current` only when nothing
/// failed.
async fn attempt(
    current: &mut Option<(Arc<str>, MultiplexedConnection)>,
    resolver: &mut Resolver,
    config: &WriteProbeConfig,
    key: u64,
) -> (Option<Arc<str>>, Outcome, Instant, bool) {
    let (server, mut connection) = match current.take() {
        Some(open) => open,
        None => {
            // Each query of the resolver has its own deadline, so a hung
            // Sentinel does not keep the others from being asked.
            let Some(addr) = resolver.primary().await else {
                return (
                    None,
                    Outcome::Failed(Failure::NoPrimary),
                    Instant::now(),
                    false,
                );
            };
            let server: Arc<str> = Arc::from(addr.as_str());
            match connect(&addr, config.password.as_ref(), config.connect_timeout).await {
                Ok(connection) => (server, connection),
                Err(_) => {
                    return (
                        Some(server),
                        Outcome::Failed(Failure::Connect),
                        Instant::now(),
                        false,
                    );
                }
            }
        }
    };
    let mut set = redis::cmd("SET");
    set.arg(format!("{}:{key}", config.prefix)).arg(key);
    let reply = timeout(config.op_timeout, set.query_async::<Value>(&mut connection)).await;
    let replied = Instant::now();
    let failure = match reply {
        Ok(Ok(Value::Okay)) => None,
        Ok(Ok(Value::SimpleString(s))) if s == "OK" => None,
        Ok(Ok(other)) => Some(Failure::Rejected(format!("unexpected reply {other:?}"))),
        Ok(Err(err)) => Some(match err.code() {
            Some(code) => Failure::Rejected(code.to_owned()),
            None => Failure::Io,
        }),
        Err(_) => Some(Failure::TimedOut),
    };
    if let Some(failure) = failure {
        return (Some(server), Outcome::Failed(failure), replied, false);
    }
    if !config.wait_replicas {
        *current = Some((Arc::clone(&server), connection));
        return (Some(server), Outcome::Ok, replied, true);
    }
    let mut wait = redis::cmd("WAIT");
    wait.arg(config.wait_for).arg(WAIT_TIMEOUT_MS);
    let limit = Duration::from_millis(WAIT_TIMEOUT_MS).saturating_add(config.op_timeout);
    match timeout(limit, wait.query_async::<i64>(&mut connection)).await {
        Ok(Ok(replicas)) => {
            *current = Some((Arc::clone(&server), connection));
            (
                Some(server),
                Outcome::Ok,
                replied,
                replicas >= config.wait_for,
            )
        }
        // The write happened; only its acknowledgement failed.
        _ => (Some(server), Outcome::Ok, replied, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(base: Instant, ms: u64, server: &str, ok: bool) -> Attempt {
        Attempt {
            key: ms,
            started: base + Duration::from_millis(ms),
            replied: base + Duration::from_millis(ms + 1),
            ended: base + Duration::from_millis(ms + 2),
            server: Some(Arc::from(server)),
            outcome: if ok {
                Outcome::Ok
            } else {
                Outcome::Failed(Failure::TimedOut)
            },
            acked: ok,
        }
    }

    #[test]
    fn windows_span_the_last_success_before_to_the_first_after() {
        let base = Instant::now();
        let log = WriteLog {
            prefix: "t".to_owned(),
            attempts: vec![
                attempt(base, 0, "a:1", true),
                attempt(base, 10, "a:1", true),
                attempt(base, 20, "a:1", false),
                attempt(base, 30, "a:1", true), // old primary, after the command
                attempt(base, 40, "b:2", false),
                attempt(base, 50, "b:2", true),
                attempt(base, 60, "b:2", true),
            ],
        };
        let fault = base + Duration::from_millis(15);
        assert_eq!(log.window_around(fault), Some(Duration::from_millis(20)));
        assert_eq!(
            log.pause_around(fault, "b:2"),
            Some(Duration::from_millis(40))
        );
        assert_eq!(log.pause_around(fault, "c:3"), None);
        assert_eq!(log.window_around(base + Duration::from_millis(70)), None);
        assert_eq!(log.acked_keys(), vec![0, 10, 30, 50, 60]);
        assert_eq!(log.failed_writes(), 2);
        assert_eq!(log.successful_writes(), 5);
    }

    #[test]
    fn no_window_without_a_success_before() {
        let base = Instant::now();
        let log = WriteLog {
            prefix: "t".to_owned(),
            attempts: vec![attempt(base, 10, "a:1", true)],
        };
        assert_eq!(log.window_around(base), None);
    }
}
