//! `ValkeyClient`: one multiplexed connection per server, reused across
//! calls, with a timeout on every step and failures classified as death,
//! slowness or refusal.
//!
//! Connections are opened lazily and dropped on any connection-level error,
//! so the next call reconnects. The redis crate's own timeouts are disabled
//! and every await is wrapped in `tokio::time::timeout` instead, so the
//! classification does not depend on how the crate reports them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisConnectionInfo,
    RedisError, RedisResult, Value,
};
use tokio::sync::Mutex;
use tokio::time::timeout;

use super::socket::tls_stream;
use super::tls::{Connector, TlsSettings, TlsSetupError};
use crate::credentials::Password;
use crate::effects::{Class, Effects};
use logbook_core::replies::{Phase, ProbeError};
use logbook_core::replies::{Probe, ReplicationInfo, parse_info_replication, parse_role};

/// How long each step may take before it counts as [`ProbeError::TimedOut`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection, including `AUTH`. Default 1 s.
    pub connect: Duration,
    /// One command's round trip. Default 2 s. Blocking commands (`WAIT`) get
    /// their own timeout on top of it.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(1),
            command: Duration::from_secs(2),
        }
    }
}

/// The data-plane client shared by observers and executors. Cloning is
/// cheap and clones share connections.
#[derive(Clone)]
pub struct ValkeyClient {
    timeouts: Timeouts,
    state: Arc<Mutex<State>>,
    /// The gate every command that changes a server passes
    /// (`crate::effects`): unarmed unless a test arms it.
    effects: Effects,
}

/// The pool. The lock is held only to look up or swap entries, never across
/// network I/O, so one slow server does not stall probes of the others.
struct State {
    password: Option<Password>,
    /// The password replaced by the last change, tried when the server
    /// refuses `password`: a server not yet given the new one during a
    /// rotation, or one of a topology that does not rotate live.
    fallback: Option<Password>,
    /// The ACL user (and its password) tried first, before `default` with
    /// `password` (the operator's own user: a server that does not know
    /// it yet, started before it existed, takes the cluster's password).
    identity: Option<(String, Password)>,
    /// The Sentinels' own user's password, given to a Sentinel for the
    /// data nodes (`SENTINEL SET auth-user/auth-pass`).
    sentinel_auth: Option<Password>,
    /// TLS settings and their connector; `None`: plaintext.
    tls: Option<(TlsSettings, Connector)>,
    next_id: u64,
    connections: HashMap<SocketAddr, Pooled>,
}

/// A pooled connection, tagged so a failed caller removes only the
/// connection it used, not a fresh one another task opened meanwhile.
struct Pooled {
    id: u64,
    connection: MultiplexedConnection,
    /// The fingerprint of the certificate the server presented when this
    /// connection was opened (TLS only).
    served: Option<String>,
}

/// A connection handed to one call.
struct Lease {
    id: u64,
    connection: MultiplexedConnection,
    reused: bool,
}

/// Whether a command may be sent again after its connection dropped with
/// the outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resend {
    Safe,
    Never,
}

/// What [`ValkeyClient::run`] sends in one round trip: one command, or a
/// pipeline (its replies come back as one array).
pub(super) trait Request: Sync {
    fn send(
        &self,
        connection: &mut MultiplexedConnection,
    ) -> impl Future<Output = RedisResult<Value>> + Send;
}

impl Request for Cmd {
    fn send(
        &self,
        connection: &mut MultiplexedConnection,
    ) -> impl Future<Output = RedisResult<Value>> + Send {
        self.query_async::<Value>(connection)
    }
}

impl Request for Pipeline {
    fn send(
        &self,
        connection: &mut MultiplexedConnection,
    ) -> impl Future<Output = RedisResult<Value>> + Send {
        self.query_async::<Value>(connection)
    }
}

impl std::fmt::Debug for ValkeyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValkeyClient")
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl ValkeyClient {
    /// A client with no connection yet; `password` is sent with `AUTH` on
    /// every new connection.
    pub fn new(timeouts: Timeouts, password: Option<Password>) -> Self {
        ValkeyClient {
            timeouts,
            state: Arc::new(Mutex::new(State {
                password,
                fallback: None,
                identity: None,
                sentinel_auth: None,
                tls: None,
                next_id: 0,
                connections: HashMap::new(),
            })),
            effects: Effects::from_env(),
        }
    }

    /// This client with its commands that change a server passing
    /// `effects` (the same pool and passwords).
    #[must_use]
    pub fn with_effects(&self, effects: Effects) -> Self {
        ValkeyClient {
            effects,
            ..self.clone()
        }
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// This client with other timeouts: the same pool and passwords (the
    /// password in force and the one it may fall back on).
    #[must_use]
    pub fn with_timeouts(&self, timeouts: Timeouts) -> Self {
        ValkeyClient {
            timeouts,
            ..self.clone()
        }
    }

    /// Replaces the password (the Secret changed), keeping the one it
    /// replaces to try when a server refuses the new one (a rotation: not
    /// every server has it yet). Open connections are dropped so every
    /// server is re-authenticated.
    pub async fn set_password(&self, password: Option<Password>) {
        let mut state = self.state.lock().await;
        if state.password != password {
            state.fallback = state.password.take();
            state.password = password;
            state.connections.clear();
        }
    }

    /// Sends `password` first and, when a server refuses it, `fallback`.
    /// Open connections are dropped when either changes.
    pub async fn set_passwords(&self, password: Option<Password>, fallback: Option<Password>) {
        let mut state = self.state.lock().await;
        if state.password != password || state.fallback != fallback {
            state.password = password;
            state.fallback = fallback;
            state.connections.clear();
        }
    }

    /// Authenticates as ACL user `identity` first (`None`: as `default`
    /// only); open connections are dropped when that changes.
    pub async fn set_identity(&self, identity: Option<(String, Password)>) {
        let mut state = self.state.lock().await;
        if state.identity != identity {
            state.identity = identity;
            state.connections.clear();
        }
    }

    /// The identity in force, for commands that carry it to another
    /// server (`MIGRATE ... AUTH2`). Never to be formatted.
    pub(super) async fn identity(&self) -> Option<(String, Password)> {
        self.state.lock().await.identity.clone()
    }

    /// The password of the Sentinels' own user (see [`State`]).
    pub async fn set_sentinel_auth(&self, password: Option<Password>) {
        self.state.lock().await.sentinel_auth = password;
    }

    pub(super) async fn sentinel_auth(&self) -> Option<Password> {
        self.state.lock().await.sentinel_auth.clone()
    }

    /// Speaks TLS with `settings` (or plaintext with `None`) from now on;
    /// open connections are dropped when that changes.
    ///
    /// # Errors
    /// When the settings cannot make a connector (no CA, a bad key): the
    /// client keeps what it had.
    pub async fn set_tls(&self, settings: Option<TlsSettings>) -> Result<(), TlsSetupError> {
        let mut state = self.state.lock().await;
        if state.tls.as_ref().map(|(s, _)| s) == settings.as_ref() {
            return Ok(());
        }
        state.tls = match settings {
            Some(settings) => {
                let connector = Connector::new(&settings)?;
                Some((settings, connector))
            }
            None => None,
        };
        state.connections.clear();
        Ok(())
    }

    /// The fingerprint of the certificate `addr` presented when the pooled
    /// connection to it was opened, opening one if there is none; `None`
    /// without TLS.
    ///
    /// # Errors
    /// When no connection can be opened.
    pub async fn served_certificate(&self, addr: SocketAddr) -> Result<Option<String>, ProbeError> {
        self.lease(addr).await?;
        Ok(self
            .state
            .lock()
            .await
            .connections
            .get(&addr)
            .and_then(|p| p.served.clone()))
    }

    /// Subscribes to every channel of the Sentinel at `addr` on a
    /// connection of its own, with this client's password (its fallback
    /// when refused) and TLS settings.
    ///
    /// # Errors
    /// As [`super::subscribe_sentinel_events`].
    pub async fn subscribe_sentinel_events(
        &self,
        addr: SocketAddr,
        connect_timeout: Duration,
    ) -> Result<super::SentinelEvents, ProbeError> {
        let (password, fallback, tls) = {
            let state = self.state.lock().await;
            (
                state.password.clone(),
                state.fallback.clone(),
                state.tls.as_ref().map(|(_, c)| c.clone()),
            )
        };
        match super::sentinel::subscribe(addr, password.as_ref(), tls.as_ref(), connect_timeout)
            .await
        {
            Err(ProbeError::AuthFailed { .. }) if fallback.is_some() => {
                super::sentinel::subscribe(addr, fallback.as_ref(), tls.as_ref(), connect_timeout)
                    .await
            }
            other => other,
        }
    }

    /// A connection held open to `addr`, idle, with this client's TLS
    /// settings ([`super::Held`]): its [`super::Held::closed`] returns the
    /// moment the server's process goes away.
    ///
    /// # Errors
    /// As [`super::Held`]'s opening: refused, timed out, or I/O.
    pub async fn hold_open(
        &self,
        addr: SocketAddr,
        connect_timeout: Duration,
    ) -> Result<super::Held, ProbeError> {
        let tls = self.state.lock().await.tls.as_ref().map(|(_, c)| c.clone());
        super::Held::open(addr, tls.as_ref(), connect_timeout).await
    }

    /// The password in force, for commands that carry it to another
    /// server (`MIGRATE ... AUTH`). Never to be formatted.
    pub(super) async fn password(&self) -> Option<Password> {
        self.state.lock().await.password.clone()
    }

    /// Drops the connection to `addr`, if any (its pod went away).
    pub async fn forget(&self, addr: SocketAddr) {
        self.state.lock().await.connections.remove(&addr);
    }

    /// `ROLE` then `INFO replication`, with the latency of `ROLE`.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::is_death`] and
    /// [`ProbeError::is_slowness`] tell a gone process from a busy one.
    pub async fn probe(&self, addr: SocketAddr) -> Result<Probe, ProbeError> {
        let (reply, latency) = self
            .run(
                addr,
                &redis::cmd("ROLE"),
                "ROLE",
                Duration::ZERO,
                Resend::Safe,
            )
            .await?;
        let role = parse_role(&super::reply(reply))
            .map_err(|source| ProbeError::Malformed { addr, source })?;
        let info = self.info_replication(addr).await?;
        Ok(Probe {
            info,
            role,
            latency,
        })
    }

    /// `INFO replication` alone (one round trip), for polling offsets.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn info_replication(&self, addr: SocketAddr) -> Result<ReplicationInfo, ProbeError> {
        let mut info_cmd = redis::cmd("INFO");
        info_cmd.arg("replication");
        let (reply, _) = self
            .run(addr, &info_cmd, "INFO", Duration::ZERO, Resend::Safe)
            .await?;
        let text = text_reply(addr, reply)?;
        parse_info_replication(&text).map_err(|source| ProbeError::Malformed { addr, source })
    }

    /// `INFO <section>` as its `field:value` lines.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn info_fields(
        &self,
        addr: SocketAddr,
        section: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ProbeError> {
        let mut info_cmd = redis::cmd("INFO");
        info_cmd.arg(section);
        let (reply, _) = self
            .run(addr, &info_cmd, "INFO", Duration::ZERO, Resend::Safe)
            .await?;
        let text = text_reply(addr, reply)?;
        Ok(text
            .lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// The server's version, from `INFO server` (`valkey_version`, else
    /// `redis_version`).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Malformed`]-like text errors when
    /// the reply names no version.
    pub async fn server_version(&self, addr: SocketAddr) -> Result<String, ProbeError> {
        let mut info_cmd = redis::cmd("INFO");
        info_cmd.arg("server");
        let (reply, _) = self
            .run(addr, &info_cmd, "INFO", Duration::ZERO, Resend::Safe)
            .await?;
        let text = text_reply(addr, reply)?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        field("valkey_version:")
            .or_else(|| field("redis_version:"))
            .ok_or_else(|| unexpected(addr, "a server version", &Value::SimpleString(text.clone())))
    }

    /// `CLIENT PAUSE timeout_ms WRITE`: the server holds every write (and
    /// answers reads) until `CLIENT UNPAUSE` or the timeout, which bounds
    /// the pause if the caller dies half-way.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn client_pause_writes(
        &self,
        addr: SocketAddr,
        timeout_ms: u64,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("PAUSE").arg(timeout_ms).arg("WRITE");
        let (reply, _) = self
            .run(addr, &cmd, "CLIENT PAUSE", Duration::ZERO, Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `CLIENT UNPAUSE`.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn client_unpause(&self, addr: SocketAddr) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("UNPAUSE");
        let (reply, _) = self
            .run(addr, &cmd, "CLIENT UNPAUSE", Duration::ZERO, Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `SAVE`: writes the RDB file now, synchronously (the server fsyncs
    /// it before answering). May take as long as the dataset needs:
    /// `limit` bounds the wait.
    ///
    /// # Errors
    /// The server refused or failed it (its log says why), or did not
    /// answer.
    pub async fn save(&self, addr: SocketAddr, limit: Duration) -> Result<(), ProbeError> {
        let (reply, _) = self
            .run(addr, &redis::cmd("SAVE"), "SAVE", limit, Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `BGREWRITEAOF`: starts (or schedules) a rewrite of the append-only
    /// file from memory; its end is read from `INFO persistence`.
    ///
    /// # Errors
    /// The server refused it, or did not answer.
    pub async fn bgrewriteaof(&self, addr: SocketAddr) -> Result<(), ProbeError> {
        let (reply, _) = self
            .run(
                addr,
                &redis::cmd("BGREWRITEAOF"),
                "BGREWRITEAOF",
                Duration::ZERO,
                Resend::Safe,
            )
            .await?;
        match reply {
            Value::SimpleString(_) | Value::Okay => Ok(()),
            other => Err(unexpected(addr, "a status", &other)),
        }
    }

    /// `DEBUG SLEEP seconds`: blocks the server (benchmarks and tests of
    /// slowness; never sent by the operator).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn debug_sleep(&self, addr: SocketAddr, seconds: u64) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("DEBUG");
        cmd.arg("SLEEP").arg(seconds);
        let extra = Duration::from_secs(seconds);
        let (reply, _) = self
            .run(addr, &cmd, "DEBUG SLEEP", extra, Resend::Never)
            .await?;
        expect_ok(addr, reply)
    }

    /// `PING`, returning its round trip.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn ping(&self, addr: SocketAddr) -> Result<Duration, ProbeError> {
        let (reply, latency) = self
            .run(
                addr,
                &redis::cmd("PING"),
                "PING",
                Duration::ZERO,
                Resend::Safe,
            )
            .await?;
        match reply {
            Value::SimpleString(s) if s == "PONG" => Ok(latency),
            other => Err(unexpected(addr, "PONG", &other)),
        }
    }

    /// `REPLICAOF host port`, or `REPLICAOF NO ONE` when `primary` is
    /// `None`. Idempotent: repeating it against the same primary is a no-op
    /// on the server.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn replicaof(
        &self,
        addr: SocketAddr,
        primary: Option<SocketAddr>,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("REPLICAOF");
        match primary {
            Some(primary) => cmd.arg(primary.ip().to_string()).arg(primary.port()),
            None => cmd.arg("NO").arg("ONE"),
        };
        // The bench's slowed build (Cargo feature `plant-slow-promotion`):
        // every promotion 20 ms late, which `make bench-check` must name.
        #[cfg(feature = "plant-slow-promotion")]
        if primary.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (reply, _) = self
            .run(addr, &cmd, "REPLICAOF", Duration::ZERO, Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `REPLICAOF host port` to a server outside the cluster (a standby's
    /// source), named by a host name or an address. Idempotent as
    /// [`Self::replicaof`].
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn replicaof_host(
        &self,
        addr: SocketAddr,
        host: &str,
        port: u16,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("REPLICAOF");
        cmd.arg(host).arg(port);
        let (reply, _) = self
            .run(addr, &cmd, "REPLICAOF", Duration::ZERO, Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `FAILOVER TO host port TIMEOUT ms` on the primary at `addr`.
    ///
    /// The server answers as soon as the failover has started; the roles
    /// swap later (after the target caught up, at most `timeout_ms`), so the
    /// caller confirms the outcome with probes. Never resent after a dropped
    /// connection: a second `FAILOVER` could act on a changed topology.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the server refuses (target not its
    /// replica, failover already running); any other [`ProbeError`].
    pub async fn failover_to(
        &self,
        addr: SocketAddr,
        target: SocketAddr,
        timeout_ms: u64,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("FAILOVER");
        cmd.arg("TO")
            .arg(target.ip().to_string())
            .arg(target.port())
            .arg("TIMEOUT")
            .arg(timeout_ms);
        let (reply, _) = self
            .run(addr, &cmd, "FAILOVER", Duration::ZERO, Resend::Never)
            .await?;
        expect_ok(addr, reply)
    }

    /// `WAIT numreplicas timeout_ms`: how many replicas acknowledged every
    /// write sent on this connection so far. The command timeout is extended
    /// by `timeout_ms` since the server blocks that long by design; a
    /// `timeout_ms` of 0 (block forever) is therefore cut at the command
    /// timeout.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn wait(
        &self,
        addr: SocketAddr,
        numreplicas: u64,
        timeout_ms: u64,
    ) -> Result<u64, ProbeError> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(numreplicas).arg(timeout_ms);
        let extra = Duration::from_millis(timeout_ms);
        let (reply, _) = self.run(addr, &cmd, "WAIT", extra, Resend::Safe).await?;
        match reply {
            Value::Int(n) => u64::try_from(n).map_err(|_| unexpected(addr, "a count", &reply)),
            other => Err(unexpected(addr, "an integer", &other)),
        }
    }

    /// `CONFIG SET key value`. Not for secrets: a server error may echo its
    /// arguments.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for an unknown key or invalid value; any
    /// other [`ProbeError`].
    pub async fn config_set(
        &self,
        addr: SocketAddr,
        key: &str,
        value: &str,
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg(key).arg(value);
        let (reply, _) = self
            .run(addr, &cmd, "CONFIG SET", Duration::ZERO, Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `CONFIG SET k1 v1 k2 v2 ...`, applied together or not at all. Not
    /// for secrets.
    ///
    /// # Errors
    ///
    /// As [`Self::config_set`].
    pub async fn config_set_all(
        &self,
        addr: SocketAddr,
        pairs: &[(&str, &str)],
    ) -> Result<(), ProbeError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET");
        for (key, value) in pairs {
            cmd.arg(*key).arg(*value);
        }
        let (reply, _) = self
            .run(addr, &cmd, "CONFIG SET", Duration::ZERO, Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `CONFIG GET <pattern>`: every matching setting with its value.
    /// Not for secrets.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn config_get_matching(
        &self,
        addr: SocketAddr,
        pattern: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ProbeError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg(pattern);
        let (reply, _) = self
            .run(addr, &cmd, "CONFIG GET", Duration::ZERO, Resend::Safe)
            .await?;
        let text = |v: &Value| match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        match &reply {
            Value::Array(items) => Ok(items
                .chunks(2)
                .filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?)))
                .collect()),
            Value::Map(pairs) => Ok(pairs
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                .collect()),
            other => Err(unexpected(addr, "keys and their values", other)),
        }
    }

    /// `CLIENT KILL TYPE master` on a replica: it drops its link to its
    /// primary and connects again at once (a partial resynchronisation),
    /// telling it what it announces afresh. How many links were closed.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn reconnect_to_primary(&self, addr: SocketAddr) -> Result<i64, ProbeError> {
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("KILL").arg("TYPE").arg("master");
        let (reply, _) = self
            .run(addr, &cmd, "CLIENT KILL", Duration::ZERO, Resend::Safe)
            .await?;
        match reply {
            Value::Int(n) => Ok(n),
            other => Err(unexpected(addr, "a count", &other)),
        }
    }

    /// Sends one command and returns its reply and round trip.
    ///
    /// A reused connection may have died since its last use (the server
    /// restarted or was killed). Then one fresh connection is tried: if that
    /// is refused the process is gone; if it works, the command is resent
    /// when `resend` allows, otherwise the outcome is reported as unknown.
    pub(super) async fn run(
        &self,
        addr: SocketAddr,
        cmd: &impl Request,
        name: &'static str,
        extra: Duration,
        resend: Resend,
    ) -> Result<(Value, Duration), ProbeError> {
        let ticket = if changes_a_server(name) {
            let ticket = self
                .effects
                .before(Class::Effect, || format!("{name} on {addr}"))
                .map_err(|injected| ProbeError::Io {
                    addr,
                    detail: injected.to_string(),
                })?;
            Some(ticket)
        } else {
            None
        };
        let result = self.send(addr, cmd, name, extra, resend).await;
        match ticket.map(Effects::after) {
            // The command took effect and its reply is lost: to the caller
            // this is a timeout, its outcome unknown.
            Some(Err(lost)) => {
                tracing::debug!(%lost, "fault injected");
                Err(ProbeError::TimedOut {
                    addr,
                    phase: Phase::Command,
                    after_ms: 0,
                })
            }
            _ => result,
        }
    }

    async fn send(
        &self,
        addr: SocketAddr,
        cmd: &impl Request,
        name: &'static str,
        extra: Duration,
        resend: Resend,
    ) -> Result<(Value, Duration), ProbeError> {
        let mut lease = self.lease(addr).await?;
        let mut reconnected = false;
        loop {
            let limit = self.timeouts.command.saturating_add(extra);
            let started = Instant::now();
            let outcome = timeout(limit, cmd.send(&mut lease.connection)).await;
            let err = match outcome {
                Ok(Ok(value)) => return Ok((value, started.elapsed())),
                Ok(Err(err)) => err,
                Err(_) => {
                    // The reply may still arrive and would be taken for the
                    // answer to a later command: never reuse this connection.
                    self.discard(addr, lease.id).await;
                    return Err(ProbeError::TimedOut {
                        addr,
                        phase: Phase::Command,
                        after_ms: limit.as_millis(),
                    });
                }
            };
            if err.code().is_some() {
                // The server answered: the connection is fine.
                return Err(classify(addr, name, &err));
            }
            self.discard(addr, lease.id).await;
            if reconnected || !(lease.reused && err.is_connection_dropped()) {
                return Err(classify(addr, name, &err));
            }
            reconnected = true;
            lease = self.lease(addr).await?;
            if resend == Resend::Never {
                return Err(ProbeError::Io {
                    addr,
                    detail: format!("connection dropped during {name}; outcome unknown"),
                });
            }
        }
    }

    /// The pooled connection to `addr`, opening one if there is none.
    async fn lease(&self, addr: SocketAddr) -> Result<Lease, ProbeError> {
        let password = {
            let state = self.state.lock().await;
            if let Some(pooled) = state.connections.get(&addr) {
                return Ok(Lease {
                    id: pooled.id,
                    connection: pooled.connection.clone(),
                    reused: true,
                });
            }
            (
                state.password.clone(),
                state.fallback.clone(),
                state.identity.clone(),
            )
        };
        let (password, fallback, identity) = password;
        // The identity, then `default` with the password, then with the
        // fallback: each tried when the one before is refused.
        let mut credentials: Vec<(Option<&str>, Option<&Password>)> = Vec::new();
        if let Some((user, secret)) = &identity {
            credentials.push((Some(user.as_str()), Some(secret)));
        }
        credentials.push((None, password.as_ref()));
        if fallback.is_some() {
            credentials.push((None, fallback.as_ref()));
        }
        let mut outcome = Err(ProbeError::Refused { addr });
        for (user, secret) in credentials {
            outcome = self.connect(addr, user, secret).await;
            if !matches!(outcome, Err(ProbeError::AuthFailed { .. })) {
                break;
            }
        }
        let (connection, served) = outcome?;
        let mut state = self.state.lock().await;
        if let Some(pooled) = state.connections.get(&addr) {
            // Another task connected meanwhile: share its connection so each
            // server sees one client from us.
            return Ok(Lease {
                id: pooled.id,
                connection: pooled.connection.clone(),
                reused: false,
            });
        }
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        if state.password == password {
            state.connections.insert(
                addr,
                Pooled {
                    id,
                    connection: connection.clone(),
                    served,
                },
            );
        }
        Ok(Lease {
            id,
            connection,
            reused: false,
        })
    }

    async fn discard(&self, addr: SocketAddr, id: u64) {
        let mut state = self.state.lock().await;
        if state.connections.get(&addr).is_some_and(|p| p.id == id) {
            state.connections.remove(&addr);
        }
    }

    /// Opens and authenticates a connection within the connect timeout;
    /// with TLS, also the fingerprint of the certificate the server
    /// presented.
    async fn connect(
        &self,
        addr: SocketAddr,
        user: Option<&str>,
        password: Option<&Password>,
    ) -> Result<(MultiplexedConnection, Option<String>), ProbeError> {
        let limit = self.timeouts.connect;
        let timed_out = || ProbeError::TimedOut {
            addr,
            phase: Phase::Connect,
            after_ms: limit.as_millis(),
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let tls = self.state.lock().await.tls.as_ref().map(|(_, c)| c.clone());
        let (mut connection, served) = match tls {
            None => {
                let client = Client::open(ConnectionAddr::Tcp(addr.ip().to_string(), addr.port()))
                    .map_err(|err| classify_connect(addr, &err))?;
                let connection = timeout(
                    limit,
                    client.get_multiplexed_async_connection_with_config(&config),
                )
                .await
                .map_err(|_| timed_out())?
                .map_err(|err| classify_connect(addr, &err))?;
                (connection, None)
            }
            Some(tls) => timeout(limit, connect_tls(addr, &tls, config))
                .await
                .map_err(|_| timed_out())??,
        };
        if let Some(password) = password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = user {
                auth.arg(user);
            }
            auth.arg(password.expose());
            let reply = timeout(limit, auth.query_async::<Value>(&mut connection))
                .await
                .map_err(|_| timed_out())?;
            if let Err(err) = reply {
                // Only the code: nothing of the AUTH exchange is formatted.
                return Err(match err.code() {
                    Some(code) => ProbeError::AuthFailed {
                        addr,
                        code: code.to_owned(),
                    },
                    None => classify_connect(addr, &err),
                });
            }
        }
        Ok((connection, served))
    }
}

/// A TLS connection to `addr`: TCP, the handshake (the server's chain
/// verified against the CA for the connector's name), then the
/// multiplexed connection over it, its driver spawned.
async fn connect_tls(
    addr: SocketAddr,
    tls: &Connector,
    config: AsyncConnectionConfig,
) -> Result<(MultiplexedConnection, Option<String>), ProbeError> {
    let (stream, served) = tls_stream(addr, tls).await?;
    let (connection, driver) =
        MultiplexedConnection::new_with_config(&RedisConnectionInfo::default(), stream, config)
            .await
            .map_err(|err| classify_connect(addr, &err))?;
    tokio::spawn(driver);
    Ok((connection, served))
}

/// A failure while connecting: a reset there is as final as a refusal.
fn classify_connect(addr: SocketAddr, err: &RedisError) -> ProbeError {
    if err.is_connection_refusal() || err.is_connection_dropped() {
        ProbeError::Refused { addr }
    } else {
        classify(addr, "connect", err)
    }
}

pub(super) fn classify(addr: SocketAddr, command: &'static str, err: &RedisError) -> ProbeError {
    if err.is_connection_refusal() {
        return ProbeError::Refused { addr };
    }
    if let Some(code) = err.code()
        && matches!(code, "NOAUTH" | "WRONGPASS" | "NOPERM")
    {
        return ProbeError::AuthFailed {
            addr,
            code: code.to_owned(),
        };
    }
    if err.code().is_some() {
        return ProbeError::Rejected {
            addr,
            command,
            message: err.to_string(),
        };
    }
    match err.kind() {
        ErrorKind::AuthenticationFailed => ProbeError::AuthFailed {
            addr,
            code: "AUTH".to_owned(),
        },
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType | ErrorKind::RESP3NotSupported => {
            ProbeError::Protocol {
                addr,
                detail: format!("{command}: {err}"),
            }
        }
        _ => ProbeError::Io {
            addr,
            detail: format!("{command}: {err}"),
        },
    }
}

pub(super) fn expect_ok(addr: SocketAddr, reply: Value) -> Result<(), ProbeError> {
    match reply {
        // `REPLICAOF` to the current primary answers
        // `+OK Already connected to specified master`.
        Value::Okay => Ok(()),
        Value::SimpleString(s) if s.starts_with("OK") => Ok(()),
        other => Err(unexpected(addr, "OK", &other)),
    }
}

pub(super) fn text_reply(addr: SocketAddr, reply: Value) -> Result<String, ProbeError> {
    match reply {
        Value::BulkString(bytes) => String::from_utf8(bytes).map_err(|_| ProbeError::Protocol {
            addr,
            detail: "INFO reply is not UTF-8".to_owned(),
        }),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => Ok(text),
        other => Err(unexpected(addr, "a text reply", &other)),
    }
}

/// Whether the command `name` (as [`ValkeyClient::run`] is given it)
/// changes a server: its role, slots, users, configuration, data or
/// clients, or a Sentinel's view. Anything not known to be a read is: a
/// command added later passes the effect gate until it is listed here as
/// a read. (The replication handshake of a streamed backup, `PSYNC` and
/// `REPLCONF`, does not go through `run`.)
fn changes_a_server(name: &str) -> bool {
    let read = matches!(
        name,
        "ACL LIST" | "CONFIG GET" | "INFO" | "PING" | "ROLE" | "WAIT"
    ) || cluster_read(name)
        || sentinel_read(name);
    !read
}

fn cluster_read(name: &str) -> bool {
    matches!(
        name,
        "CLUSTER COUNTKEYSINSLOT"
            | "CLUSTER GETKEYSINSLOT"
            | "CLUSTER GETSLOTMIGRATIONS"
            | "CLUSTER INFO"
            | "CLUSTER MYID"
            | "CLUSTER NODES"
            // The probe's pipeline: NODES, INFO, INFO replication and
            // GETSLOTMIGRATIONS, all reads.
            | "CLUSTER probe"
            | "CLUSTER SHARDS"
    )
}

fn sentinel_read(name: &str) -> bool {
    matches!(
        name,
        "SENTINEL CKQUORUM"
            | "SENTINEL MASTER"
            | "SENTINEL MYID"
            | "SENTINEL probe"
            | "SENTINEL REPLICAS"
            | "SENTINEL SENTINELS"
    )
}

/// A reply of the wrong shape, described by its shape alone: a reply can
/// hold secrets (`ACL LIST` lines carry password hashes, `CONFIG GET` a
/// password, `GET` anyone's data), and this text reaches logs and the
/// journal.
pub(super) fn unexpected(addr: SocketAddr, expected: &str, got: &Value) -> ProbeError {
    ProbeError::Protocol {
        addr,
        detail: format!("expected {expected}, got {}", shape(got)),
    }
}

/// The type and size of `value`, never its contents. A status reply is
/// quoted only when it is a short upper-case word (`QUEUED`, `NOKEY`),
/// which no password or hash is taken for.
fn shape(value: &Value) -> String {
    fn count(n: usize, one: &str, many: &str) -> String {
        format!("{n} {}", if n == 1 { one } else { many })
    }
    match value {
        Value::Nil => "nil".to_owned(),
        Value::Okay => "OK".to_owned(),
        Value::Int(_) => "an integer".to_owned(),
        Value::Double(_) => "a double".to_owned(),
        Value::Boolean(_) => "a boolean".to_owned(),
        Value::BigNumber(_) => "a big number".to_owned(),
        Value::SimpleString(s)
            if (1..=16).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
        {
            format!("status {s}")
        }
        Value::SimpleString(s) => format!("a status of {}", count(s.len(), "byte", "bytes")),
        Value::BulkString(b) => format!("a bulk string of {}", count(b.len(), "byte", "bytes")),
        Value::VerbatimString { text, .. } => {
            format!(
                "a verbatim string of {}",
                count(text.len(), "byte", "bytes")
            )
        }
        Value::Array(items) => format!("an array of {}", count(items.len(), "item", "items")),
        Value::Set(items) => format!("a set of {}", count(items.len(), "item", "items")),
        Value::Map(entries) => format!("a map of {}", count(entries.len(), "entry", "entries")),
        Value::Attribute { data, .. } => format!("{} with attributes", shape(data)),
        Value::Push { data, .. } => {
            format!("a push message of {}", count(data.len(), "item", "items"))
        }
        Value::ServerError(_) => "an error reply".to_owned(),
        // The enum is non-exhaustive: a kind added later is named only.
        _ => "a reply of another kind".to_owned(),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
