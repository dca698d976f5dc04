//! The Sentinel commands of [`ValkeyClient`] (`SENTINEL MASTER`, `REPLICAS`,
//! `SENTINELS`, `MYID` and the admin commands `MONITOR` to `FLUSHCONFIG`),
//! and the dedicated connection that follows a Sentinel's events.
//!
//! Sentinels take the data nodes' password, so the same pooled client,
//! timeouts and failure classification serve them. Only the command names
//! both Valkey 9 and Redis 7 accept are sent (`MASTER`, not `PRIMARY`).
//! Nothing here decides or waits for an effect: a Sentinel answers when a
//! command is accepted, and callers confirm what happened by probing again.
//!
//! Every command goes out as a one-command pipeline that keeps a refusal in
//! the reply: the server's own code (`INPROG`, `NOGOODSLAVE`, `NOQUORUM`)
//! is then read from the reply rather than from the redis crate's
//! rendering of it, and becomes [`ProbeError::Rejected`] carrying the
//! server's text, which [`SentinelRefusal::of`] classifies.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::PubSub;
use redis::{
    Client, Cmd, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisError, Value,
};
use tokio::time::timeout;

use super::client::{Resend, ValkeyClient, classify, expect_ok, text_reply, unexpected};
use logbook_core::replies::ParseError;
use logbook_core::replies::{Phase, ProbeError};
use logbook_core::replies::{
    SentinelEvent, SentinelPeer, SentinelPrimary, SentinelProbe, SentinelReplica,
    parse_sentinel_debug, parse_sentinel_master, parse_sentinel_replicas, parse_sentinel_sentinels,
};

use super::sentinel_refusal::{SentinelRefusal, redact};
use super::tls::Connector;
use crate::credentials::Password;

/// The channel Sentinels discover each other on, every 2 s per instance:
/// noise to the operator.
const HELLO_CHANNEL: &str = "__sentinel__:hello";

fn sentinel(sub: &str) -> Cmd {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg(sub);
    cmd
}

/// A server's refusal as [`ProbeError`]; `Rejected` carries the server's
/// own text (`INPROG Failover already in progress`).
fn refusal(addr: SocketAddr, command: &'static str, err: &RedisError) -> ProbeError {
    match (classify(addr, command, err), err.code()) {
        (ProbeError::Rejected { .. }, Some(code)) => ProbeError::Rejected {
            addr,
            command,
            message: match err.detail() {
                Some(detail) => format!("{code} {detail}"),
                None => code.to_owned(),
            },
        },
        (other, _) => other,
    }
}

fn is_unknown_master(addr: SocketAddr, err: &RedisError) -> bool {
    SentinelRefusal::of(&refusal(addr, "SENTINEL", err)) == Some(SentinelRefusal::UnknownMaster)
}

fn malformed(addr: SocketAddr) -> impl Fn(ParseError) -> ProbeError {
    move |source| ProbeError::Malformed { addr, source }
}

impl ValkeyClient {
    /// Sends `cmd` alone and returns its reply, a refusal left in place
    /// (see the module's comment).
    async fn sentinel_call(
        &self,
        addr: SocketAddr,
        cmd: Cmd,
        name: &'static str,
        resend: Resend,
    ) -> Result<Result<Value, RedisError>, ProbeError> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd).ignore_errors();
        let reply = self.reply(addr, &pipe, name, resend).await?;
        let Value::Array(replies) = reply else {
            return Err(unexpected(addr, "an array of 1 reply", &reply));
        };
        let [only] = <[Value; 1]>::try_from(replies)
            .map_err(|got| unexpected(addr, "1 reply", &Value::Array(got)))?;
        Ok(only.extract_error())
    }

    /// [`Self::sentinel_call`] with every refusal an error.
    async fn sentinel_reply(
        &self,
        addr: SocketAddr,
        cmd: Cmd,
        name: &'static str,
        resend: Resend,
    ) -> Result<Value, ProbeError> {
        self.sentinel_call(addr, cmd, name, resend)
            .await?
            .map_err(|err| refusal(addr, name, &err))
    }

    /// `SENTINEL MASTER name`: the primary the Sentinel at `addr` believes
    /// in, and its view of it.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Malformed`] for a reply that does
    /// not parse. A name the Sentinel does not monitor is `Ok(None)`.
    pub async fn sentinel_master(
        &self,
        addr: SocketAddr,
        name: &str,
    ) -> Result<Option<SentinelPrimary>, ProbeError> {
        let mut cmd = sentinel("MASTER");
        cmd.arg(name);
        match self
            .sentinel_call(addr, cmd, "SENTINEL MASTER", Resend::Safe)
            .await?
        {
            Ok(reply) => parse_sentinel_master(&super::reply(reply))
                .map(Some)
                .map_err(malformed(addr)),
            Err(err) if is_unknown_master(addr, &err) => Ok(None),
            Err(err) => Err(refusal(addr, "SENTINEL MASTER", &err)),
        }
    }

    /// `SENTINEL REPLICAS name`: the replicas the Sentinel knows of, as of
    /// its last `INFO` of each (every 10 s).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`SentinelRefusal::UnknownMaster`] when the
    /// Sentinel does not monitor the name.
    pub async fn sentinel_replicas(
        &self,
        addr: SocketAddr,
        name: &str,
    ) -> Result<Vec<SentinelReplica>, ProbeError> {
        let mut cmd = sentinel("REPLICAS");
        cmd.arg(name);
        let reply = self
            .sentinel_reply(addr, cmd, "SENTINEL REPLICAS", Resend::Safe)
            .await?;
        parse_sentinel_replicas(&super::reply(reply)).map_err(malformed(addr))
    }

    /// `SENTINEL SENTINELS name`: the other Sentinels monitoring the name.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`SentinelRefusal::UnknownMaster`] when the
    /// Sentinel does not monitor the name.
    pub async fn sentinel_sentinels(
        &self,
        addr: SocketAddr,
        name: &str,
    ) -> Result<Vec<SentinelPeer>, ProbeError> {
        let mut cmd = sentinel("SENTINELS");
        cmd.arg(name);
        let reply = self
            .sentinel_reply(addr, cmd, "SENTINEL SENTINELS", Resend::Safe)
            .await?;
        parse_sentinel_sentinels(&super::reply(reply)).map_err(malformed(addr))
    }

    /// `SENTINEL MYID`: the Sentinel's id (40 lowercase hex digits), the
    /// `runid` its peers list it under.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Malformed`] when the reply is not
    /// an id.
    pub async fn sentinel_myid(&self, addr: SocketAddr) -> Result<String, ProbeError> {
        let reply = self
            .sentinel_reply(addr, sentinel("MYID"), "SENTINEL MYID", Resend::Safe)
            .await?;
        sentinel_id(addr, reply)
    }

    /// `SENTINEL MYID`, `MASTER`, `REPLICAS` and `SENTINELS` pipelined on
    /// one connection: the probe each Sentinel gets every interval.
    ///
    /// # Guarantees
    ///
    /// One round trip; nothing is written. A name the Sentinel does not
    /// monitor is `primary: None` with no replicas or peers, not an error.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Malformed`] for a reply that does
    /// not parse.
    pub async fn sentinel_probe(
        &self,
        addr: SocketAddr,
        name: &str,
    ) -> Result<SentinelProbe, ProbeError> {
        let mut pipe = redis::pipe();
        pipe.add_command(sentinel("MYID"));
        for sub in ["MASTER", "REPLICAS", "SENTINELS"] {
            pipe.add_command(sentinel(sub)).arg(name);
        }
        pipe.add_command(sentinel("DEBUG"));
        // A refusal stays in its place in the reply, to be read as that
        // command's (an unknown name), not taken for a broken connection.
        pipe.ignore_errors();
        let (reply, latency) = self
            .run(addr, &pipe, "SENTINEL probe", Duration::ZERO, Resend::Safe)
            .await?;
        let Value::Array(replies) = reply else {
            return Err(unexpected(addr, "an array of 5 replies", &reply));
        };
        let [myid, primary, replicas, sentinels, debug] = <[Value; 5]>::try_from(replies)
            .map_err(|got| unexpected(addr, "5 replies", &Value::Array(got)))?;
        let myid = myid
            .extract_error()
            .map_err(|err| refusal(addr, "SENTINEL MYID", &err))?;
        // The name may also be removed between two of the commands: any
        // "no such master" reads as an empty list.
        let listed = |reply: Value, command: &'static str| match reply.extract_error() {
            Ok(reply) => Ok(Some(reply)),
            Err(err) if is_unknown_master(addr, &err) => Ok(None),
            Err(err) => Err(refusal(addr, command, &err)),
        };
        let primary = listed(primary, "SENTINEL MASTER")?;
        let replicas = listed(replicas, "SENTINEL REPLICAS")?;
        let sentinels = listed(sentinels, "SENTINEL SENTINELS")?;
        Ok(SentinelProbe {
            myid: sentinel_id(addr, myid)?,
            primary: primary
                .map(|reply| parse_sentinel_master(&super::reply(reply)))
                .transpose()
                .map_err(malformed(addr))?,
            replicas: replicas
                .map(|reply| parse_sentinel_replicas(&super::reply(reply)))
                .transpose()
                .map_err(malformed(addr))?
                .unwrap_or_default(),
            sentinels: sentinels
                .map(|reply| parse_sentinel_sentinels(&super::reply(reply)))
                .transpose()
                .map_err(malformed(addr))?
                .unwrap_or_default(),
            // Refused (a Sentinel older than Redis 7): unknown.
            info_period_ms: match debug.extract_error() {
                Ok(reply) => parse_sentinel_debug(&super::reply(reply), "info-period")
                    .map_err(malformed(addr))?,
                Err(_) => None,
            },
            latency,
        })
    }

    /// `SENTINEL DEBUG <parameter> <ms>`: sets one of the Sentinel's
    /// timing parameters (not kept in its configuration file).
    ///
    /// # Guarantees
    ///
    /// Idempotent: resent after a dropped connection.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Rejected`] for an unknown
    /// parameter or a Sentinel without the command.
    pub async fn sentinel_debug_set(
        &self,
        addr: SocketAddr,
        parameter: &str,
        ms: u64,
    ) -> Result<(), ProbeError> {
        let mut cmd = sentinel("DEBUG");
        cmd.arg(parameter).arg(ms);
        let reply = self
            .sentinel_reply(addr, cmd, "SENTINEL DEBUG", Resend::Safe)
            .await?;
        expect_ok(addr, reply)
    }

    /// `SENTINEL MONITOR name ip port quorum`: the Sentinel starts
    /// monitoring the primary at `ip:port` under `name` and saves its
    /// configuration. Set `auth-pass` with [`Self::sentinel_set`] next.
    ///
    /// # Guarantees
    ///
    /// Never resent after a dropped connection: a resend of an applied
    /// command is refused as a duplicate.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for a name already monitored
    /// (`Duplicate master name`), a quorum of 0, an `ip` that does not
    /// resolve; any other [`ProbeError`].
    pub async fn sentinel_monitor(
        &self,
        addr: SocketAddr,
        name: &str,
        ip: &str,
        port: u16,
        quorum: u32,
    ) -> Result<(), ProbeError> {
        let mut cmd = sentinel("MONITOR");
        cmd.arg(name).arg(ip).arg(port).arg(quorum);
        let reply = self
            .sentinel_reply(addr, cmd, "SENTINEL MONITOR", Resend::Never)
            .await?;
        expect_ok(addr, reply)
    }

    /// `SENTINEL REMOVE name`: the Sentinel stops monitoring the name and
    /// forgets its replicas and peers.
    ///
    /// # Guarantees
    ///
    /// Idempotent: a name not monitored is success.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn sentinel_remove(&self, addr: SocketAddr, name: &str) -> Result<(), ProbeError> {
        let mut cmd = sentinel("REMOVE");
        cmd.arg(name);
        match self
            .sentinel_call(addr, cmd, "SENTINEL REMOVE", Resend::Safe)
            .await?
        {
            Ok(reply) => expect_ok(addr, reply),
            Err(err) if is_unknown_master(addr, &err) => Ok(()),
            Err(err) => Err(refusal(addr, "SENTINEL REMOVE", &err)),
        }
    }

    /// `SENTINEL SET name key value [key value ...]` in one command (the
    /// server applies the pairs in order and stops at the first invalid
    /// one). An empty `settings` sends nothing.
    ///
    /// # Guarantees
    ///
    /// No value is ever formatted: the server's refusal echoes the value at
    /// fault (`Invalid argument '0' for SENTINEL SET 'quorum'`), so the
    /// error's message has every value replaced by `***` (`auth-pass`
    /// carries the password).
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for an unknown key or an invalid value,
    /// [`SentinelRefusal::UnknownMaster`]; any other [`ProbeError`].
    pub async fn sentinel_set(
        &self,
        addr: SocketAddr,
        name: &str,
        settings: &[(&str, String)],
    ) -> Result<(), ProbeError> {
        if settings.is_empty() {
            return Ok(());
        }
        let mut cmd = sentinel("SET");
        cmd.arg(name);
        for (key, value) in settings {
            cmd.arg(*key).arg(value.as_str());
        }
        let reply = self
            .sentinel_reply(addr, cmd, "SENTINEL SET", Resend::Safe)
            .await
            .map_err(|err| redact(err, settings))?;
        expect_ok(addr, reply)
    }

    /// `SENTINEL SET name auth-user logbook-sentinel auth-pass <password>`
    /// with the Sentinels' own user's password the client holds, or
    /// without one `auth-pass` with the client's own password (the data
    /// nodes take the same one), so the secret never passes through the
    /// caller. Without a password it sets an empty one,
    /// which the server takes as none.
    ///
    /// # Errors
    ///
    /// As [`Self::sentinel_set`]; nothing of the password is formatted.
    pub async fn sentinel_set_auth_pass(
        &self,
        addr: SocketAddr,
        name: &str,
    ) -> Result<(), ProbeError> {
        self.sentinel_set_auth_and(addr, name, &[]).await
    }

    /// [`Self::sentinel_set_auth_pass`] and `settings` in one `SENTINEL
    /// SET`, the password first: whatever becomes of the command, a
    /// Sentinel that shows the settings took the password with them (a
    /// password set apart could be lost with its reply while the settings
    /// show, and no probe can show a Sentinel's password).
    ///
    /// # Errors
    ///
    /// As [`Self::sentinel_set`]; nothing of the password is formatted.
    pub async fn sentinel_set_auth_and(
        &self,
        addr: SocketAddr,
        name: &str,
        settings: &[(&str, String)],
    ) -> Result<(), ProbeError> {
        // The Sentinels' own user when there is one: then a change of the
        // cluster's password never touches the Sentinels' links.
        let mut pairs: Vec<(&str, String)> = match self.sentinel_auth().await {
            Some(secret) => vec![
                ("auth-user", crate::credentials::SENTINEL_USER.to_owned()),
                ("auth-pass", secret.expose().to_owned()),
            ],
            None => vec![(
                "auth-pass",
                self.password()
                    .await
                    .map(|password| password.expose().to_owned())
                    .unwrap_or_default(),
            )],
        };
        pairs.extend(settings.iter().cloned());
        self.sentinel_set(addr, name, &pairs).await
    }

    /// `SENTINEL RESET pattern`: every monitored name matching the glob
    /// `pattern` forgets its replicas, peers and failover state, then
    /// rediscovers them. Returns how many names matched.
    ///
    /// # Guarantees
    ///
    /// Never resent after a dropped connection (a second reset would drop
    /// what was rediscovered meanwhile).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn sentinel_reset(&self, addr: SocketAddr, pattern: &str) -> Result<u64, ProbeError> {
        let mut cmd = sentinel("RESET");
        cmd.arg(pattern);
        match self
            .sentinel_reply(addr, cmd, "SENTINEL RESET", Resend::Never)
            .await?
        {
            Value::Int(n) => {
                u64::try_from(n).map_err(|_| unexpected(addr, "a count", &Value::Int(n)))
            }
            other => Err(unexpected(addr, "an integer", &other)),
        }
    }

    /// `SENTINEL FAILOVER name [COORDINATED]`: the Sentinel fails over at
    /// once, without asking its peers. Plain, it promotes a replica with
    /// `REPLICAOF NO ONE` and writes accepted meanwhile by the old primary
    /// are lost; `coordinated` (Valkey 9 only) has the old primary run
    /// `FAILOVER` so the replica catches up first.
    ///
    /// # Guarantees
    ///
    /// The reply means the failover started: confirm with
    /// [`Self::sentinel_master`] or the `+switch-master` event. Never
    /// resent after a dropped connection.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for [`SentinelRefusal::FailoverInProgress`],
    /// [`SentinelRefusal::NoGoodReplica`],
    /// [`SentinelRefusal::UnknownMaster`] (and, on a server without
    /// coordinated failover, a syntax error); any other [`ProbeError`].
    pub async fn sentinel_failover(
        &self,
        addr: SocketAddr,
        name: &str,
        coordinated: bool,
    ) -> Result<(), ProbeError> {
        let mut cmd = sentinel("FAILOVER");
        cmd.arg(name);
        if coordinated {
            cmd.arg("COORDINATED");
        }
        let reply = self
            .sentinel_reply(addr, cmd, "SENTINEL FAILOVER", Resend::Never)
            .await?;
        expect_ok(addr, reply)
    }

    /// `SENTINEL CKQUORUM name`: whether the Sentinels this one can reach
    /// make the quorum and a majority. `Ok(Ok(text))` when they do,
    /// `Ok(Err(text))` for the server's `NOQUORUM ...` explanation.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`SentinelRefusal::UnknownMaster`].
    pub async fn sentinel_ckquorum(
        &self,
        addr: SocketAddr,
        name: &str,
    ) -> Result<Result<String, String>, ProbeError> {
        let mut cmd = sentinel("CKQUORUM");
        cmd.arg(name);
        match self
            .sentinel_call(addr, cmd, "SENTINEL CKQUORUM", Resend::Safe)
            .await?
        {
            Ok(reply) => text_reply(addr, reply).map(Ok),
            Err(err) => {
                let err = refusal(addr, "SENTINEL CKQUORUM", &err);
                match (SentinelRefusal::of(&err), err) {
                    (Some(SentinelRefusal::NoQuorum), ProbeError::Rejected { message, .. }) => {
                        Ok(Err(message))
                    }
                    (_, err) => Err(err),
                }
            }
        }
    }

    /// `SENTINEL FLUSHCONFIG`: the Sentinel rewrites its configuration file
    /// (it does after every change on its own; this repairs a lost file).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn sentinel_flushconfig(&self, addr: SocketAddr) -> Result<(), ProbeError> {
        let reply = self
            .sentinel_reply(
                addr,
                sentinel("FLUSHCONFIG"),
                "SENTINEL FLUSHCONFIG",
                Resend::Safe,
            )
            .await?;
        expect_ok(addr, reply)
    }
}

fn sentinel_id(addr: SocketAddr, reply: Value) -> Result<String, ProbeError> {
    let id = text_reply(addr, reply)?.trim().to_ascii_lowercase();
    if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(ProbeError::Malformed {
            addr,
            source: ParseError::Malformed {
                field: "SENTINEL MYID".to_owned(),
                value: id,
            },
        })
    }
}

/// A Sentinel's events, on a connection of their own (a subscribed
/// connection can send nothing else, so it is never the pool's).
pub struct SentinelEvents {
    addr: SocketAddr,
    pubsub: PubSub,
}

impl std::fmt::Debug for SentinelEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelEvents")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SentinelEvents {
    /// The Sentinel followed.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next event, hello messages skipped; `None` once the connection
    /// closed (the Sentinel died or restarted: subscribe again, and probe,
    /// since events sent meanwhile are lost).
    ///
    /// Cancel-safe: a message is only taken from the connection's queue
    /// when it is returned.
    pub async fn next(&mut self) -> Option<SentinelEvent> {
        loop {
            let msg = self.pubsub.on_message().next().await?;
            let channel = msg.get_channel_name();
            if channel == HELLO_CHANNEL {
                continue;
            }
            return Some(SentinelEvent {
                channel: channel.to_owned(),
                payload: String::from_utf8_lossy(msg.get_payload_bytes()).into_owned(),
            });
        }
    }
}

/// Opens a connection of its own to the Sentinel at `addr`, authenticates
/// with `password` and subscribes to every channel (`PSUBSCRIBE *`).
///
/// # Guarantees
///
/// Events published before the subscription was confirmed are not seen:
/// probe after subscribing, not before. `connect_timeout` bounds each of
/// the two steps (connecting with `AUTH`, subscribing).
///
/// # Errors
///
/// [`ProbeError::Refused`] when nothing listens,
/// [`ProbeError::AuthFailed`] for a wrong or missing password,
/// [`ProbeError::TimedOut`] in [`Phase::Connect`]; any other
/// [`ProbeError`].
pub async fn subscribe_sentinel_events(
    addr: SocketAddr,
    password: Option<&Password>,
    connect_timeout: Duration,
) -> Result<SentinelEvents, ProbeError> {
    subscribe(addr, password, None, connect_timeout).await
}

/// [`subscribe_sentinel_events`], over TLS with `tls` when given.
pub(super) async fn subscribe(
    addr: SocketAddr,
    password: Option<&Password>,
    tls: Option<&Connector>,
    connect_timeout: Duration,
) -> Result<SentinelEvents, ProbeError> {
    let timed_out = || ProbeError::TimedOut {
        addr,
        phase: Phase::Connect,
        after_ms: connect_timeout.as_millis(),
    };
    let mut settings = RedisConnectionInfo::default();
    if let Some(password) = password {
        // The crate sends it with AUTH when connecting and redacts it in
        // its own Debug output; it is never formatted here.
        settings = settings.set_password(password.expose());
    }
    let mut pubsub = match tls {
        None => {
            let info = ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
                .into_connection_info()
                .map_err(|err| classify_connect(addr, &err))?
                .set_redis_settings(settings);
            let client = Client::open(info).map_err(|err| classify_connect(addr, &err))?;
            timeout(connect_timeout, client.get_async_pubsub())
                .await
                .map_err(|_| timed_out())?
                .map_err(|err| classify_connect(addr, &err))?
        }
        Some(tls) => {
            let stream = timeout(connect_timeout, super::socket::tls_stream(addr, tls))
                .await
                .map_err(|_| timed_out())??
                .0;
            timeout(connect_timeout, PubSub::new(&settings, stream))
                .await
                .map_err(|_| timed_out())?
                .map_err(|err| classify_connect(addr, &err))?
        }
    };
    timeout(connect_timeout, pubsub.psubscribe("*"))
        .await
        .map_err(|_| timed_out())?
        .map_err(|err| classify(addr, "PSUBSCRIBE", &err))?;
    Ok(SentinelEvents { addr, pubsub })
}

/// A failure while connecting: a reset there is as final as a refusal (as
/// for the pooled connections).
fn classify_connect(addr: SocketAddr, err: &RedisError) -> ProbeError {
    if err.is_connection_refusal() || err.is_connection_dropped() {
        ProbeError::Refused { addr }
    } else {
        classify(addr, "connect", err)
    }
}
