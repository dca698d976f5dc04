//! Where a [`WriteProbe`](super::WriteProbe) writes: one fixed address, the
//! primary a Sentinel names, or whichever server's `ROLE` says primary.
//!
//! Resolution runs only when the probe has no connection (at start and
//! after any error), like a Sentinel-aware client that asks again after a
//! failed command. It never decides anything beyond "connect here next".

use std::time::Duration;

use logbook::valkey::{Password, Role, parse_role};
use redis::Value;

use super::conn::{join_addr, query_once};

/// How the probe finds the server to write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Always this `host:port`; after an error the probe reconnects to it.
    Fixed(String),
    /// Ask these Sentinels (`host:port`) for
    /// `SENTINEL get-master-addr-by-name <master>`, starting with the one
    /// that answered last, and connect to the address returned once its
    /// `ROLE` says primary (else the next Sentinel is asked). The
    /// Sentinels are asked without a password, then, if that is refused,
    /// with the probe's (Logbook's Sentinels require the data nodes'
    /// password; a bare Sentinel requires none and refuses `AUTH`).
    Sentinel {
        /// The Sentinels' addresses.
        sentinels: Vec<String>,
        /// The monitored primary's name.
        master: String,
    },
    /// Ask each of these servers for `ROLE` (with the probe's password) and
    /// connect to the first that reports `master`.
    Role(Vec<String>),
}

/// Resolves a [`Target`] to the address of the server to write to.
pub(crate) struct Resolver {
    target: Target,
    password: Option<Password>,
    limit: Duration,
    /// The Sentinel to ask first: the last one that answered.
    preferred: usize,
}

impl Resolver {
    /// `limit` bounds each connection and each query.
    pub(crate) fn new(target: Target, password: Option<Password>, limit: Duration) -> Self {
        Resolver {
            target,
            password,
            limit,
            preferred: 0,
        }
    }

    /// The address to connect to now, or `None` when no Sentinel answered
    /// or no server reports itself primary.
    pub(crate) async fn primary(&mut self) -> Option<String> {
        match &self.target {
            Target::Fixed(addr) => Some(addr.clone()),
            Target::Sentinel { sentinels, master } => {
                let count = sentinels.len();
                for step in 0..count {
                    let index = self.preferred.wrapping_add(step) % count;
                    let Some(sentinel) = sentinels.get(index) else {
                        continue;
                    };
                    let mut answer = ask_sentinel(sentinel, master, None, self.limit).await;
                    if answer.is_none() && self.password.is_some() {
                        answer = ask_sentinel(sentinel, master, self.password.as_ref(), self.limit)
                            .await;
                    }
                    // As Sentinel's client guidelines ask: the server named
                    // must say it is the primary. One that restarted in
                    // place is named until the Sentinels see it down, and
                    // serves what it reloaded, read-only: a client that
                    // trusted the name read lists 12 s old from it (the
                    // long soak's history, docs/robustness.md).
                    if let Some(addr) = answer
                        && role_of(&addr, self.password.as_ref(), self.limit).await
                            == Some(Role::Primary)
                    {
                        self.preferred = index;
                        return Some(addr);
                    }
                }
                None
            }
            Target::Role(candidates) => {
                for candidate in candidates {
                    if role_of(candidate, self.password.as_ref(), self.limit).await
                        == Some(Role::Primary)
                    {
                        return Some(candidate.clone());
                    }
                }
                None
            }
        }
    }
}

/// `SENTINEL get-master-addr-by-name`, as `host:port`.
pub(crate) async fn ask_sentinel(
    sentinel: &str,
    master: &str,
    password: Option<&Password>,
    limit: Duration,
) -> Option<String> {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("get-master-addr-by-name").arg(master);
    let reply: Option<(String, u16)> = query_once(sentinel, password, &cmd, "SENTINEL", limit)
        .await
        .ok()?;
    reply.map(|(host, port)| join_addr(&host, port))
}

/// The role `addr` reports, or `None` when it does not answer in time.
pub(crate) async fn role_of(
    addr: &str,
    password: Option<&Password>,
    limit: Duration,
) -> Option<Role> {
    let reply: Value = query_once(addr, password, &redis::cmd("ROLE"), "ROLE", limit)
        .await
        .ok()?;
    parse_role(&logbook::valkey::reply(reply))
        .ok()
        .map(|role| role.role())
}
