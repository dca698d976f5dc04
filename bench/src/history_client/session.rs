//! One logical client's way to the data: its own connection to the
//! primary (found through a [`Target`]) or its own [`ClusterClient`], and
//! the sending of one operation's command, then `WAIT` after a write.
//!
//! Reads take the same route as writes (the primary), so what they see is
//! what the primary holds. A session keeps its connection only while
//! operations end `Ok`: after any failure it forgets it, and the next
//! operation resolves the target again (asking the Sentinels, or `ROLE`)
//! and reconnects, as a Sentinel-aware client does. It never retries an
//! operation: one operation is one attempt, so the history shows every
//! failure.

use std::sync::Arc;
use std::time::Duration;

use logbook::valkey::Password;
use logbook_history::{Function, Outcome};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, Value};
use tokio::time::timeout;

use super::classify::{Reply, Step, after_command, after_wait};
use super::{Route, WaitFor};
use crate::cluster_client::ClusterClient;
use crate::conn::connect;
use crate::resolve::Resolver;

/// How one operation ended and the server it went to (`host:port`), when
/// one was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) server: Option<Arc<str>>,
    pub(crate) outcome: Outcome,
}

/// The deadlines and the `WAIT` of every operation of a session.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) connect: Duration,
    pub(crate) op: Duration,
    pub(crate) wait: Option<WaitFor>,
}

/// One client's connection state.
pub(crate) enum Session {
    /// A single primary, found by a resolver; the open connection, if any.
    Primary {
        resolver: Resolver,
        password: Option<Password>,
        current: Option<(Arc<str>, MultiplexedConnection)>,
        limits: Limits,
    },
    /// Valkey Cluster: the client routes by slot and keeps a connection
    /// per node itself.
    Cluster {
        client: Box<ClusterClient>,
        limits: Limits,
    },
}

impl Session {
    /// A session with no connection yet.
    pub(crate) fn new(route: &Route, password: Option<Password>, limits: Limits) -> Session {
        match route {
            Route::Primary(target) => Session::Primary {
                resolver: Resolver::new(target.clone(), password.clone(), limits.connect),
                password,
                current: None,
                limits,
            },
            Route::Cluster { seeds } => Session::Cluster {
                client: Box::new(ClusterClient::new(
                    seeds.clone(),
                    password,
                    limits.connect,
                    limits.op,
                )),
                limits,
            },
        }
    }

    /// Sends `f`'s command, and `WAIT` after an applied write when the run
    /// waits.
    pub(crate) async fn execute(&mut self, f: &Function) -> Answer {
        let answer = match self {
            Session::Primary {
                resolver,
                password,
                current,
                limits,
            } => on_primary(resolver, password.as_ref(), current, limits, f).await,
            Session::Cluster { client, limits } => on_cluster(client, limits, f).await,
        };
        if let (Session::Primary { current, .. }, false) =
            (self, matches!(answer.outcome, Outcome::Ok(_)))
        {
            // After any failure, find the primary again: it may have moved.
            *current = None;
        }
        answer
    }
}

/// The command that carries out `f`.
fn command(f: &Function) -> Cmd {
    match f {
        Function::Append { key, value } => {
            let mut cmd = redis::cmd("RPUSH");
            cmd.arg(key).arg(*value);
            cmd
        }
        Function::ReadList { key } => {
            let mut cmd = redis::cmd("LRANGE");
            cmd.arg(key).arg(0).arg(-1);
            cmd
        }
        Function::Write { key, value } => {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(*value);
            cmd
        }
        Function::ReadRegister { key } => {
            let mut cmd = redis::cmd("GET");
            cmd.arg(key);
            cmd
        }
    }
}

fn wait_command(wait: &WaitFor) -> Cmd {
    let mut cmd = redis::cmd("WAIT");
    cmd.arg(wait.replicas)
        .arg(u64::try_from(wait.timeout.as_millis()).unwrap_or(u64::MAX));
    cmd
}

/// `WAIT` blocks for its own timeout; the client gives it that plus the
/// operation deadline before calling the reply lost.
fn wait_limit(wait: &WaitFor, op: Duration) -> Duration {
    wait.timeout.saturating_add(op)
}

async fn on_primary(
    resolver: &mut Resolver,
    password: Option<&Password>,
    current: &mut Option<(Arc<str>, MultiplexedConnection)>,
    limits: &Limits,
    f: &Function,
) -> Answer {
    let (server, connection) = match current {
        Some((server, connection)) => (Arc::clone(server), connection),
        None => {
            let Some(addr) = resolver.primary().await else {
                return Answer {
                    server: None,
                    outcome: Outcome::fail("no primary found"),
                };
            };
            let server: Arc<str> = Arc::from(addr.as_str());
            match connect(&addr, password, limits.connect).await {
                Ok(opened) => {
                    let (_, connection) = current.insert((Arc::clone(&server), opened));
                    (server, connection)
                }
                Err(err) => {
                    return Answer {
                        server: Some(server),
                        outcome: Outcome::fail(format!("cannot connect: {err}")),
                    };
                }
            }
        }
    };
    let reply = timeout(limits.op, command(f).query_async::<Value>(&mut *connection))
        .await
        .ok();
    let outcome = match after_command(f, Reply::from_query(reply, limits.op)) {
        Step::Ended(outcome) => outcome,
        Step::Applied => match &limits.wait {
            None => Outcome::done(),
            Some(wait) => {
                let limit = wait_limit(wait, limits.op);
                let reply = timeout(
                    limit,
                    wait_command(wait).query_async::<Value>(&mut *connection),
                )
                .await
                .ok();
                after_wait(Reply::from_query(reply, limit), wait.replicas)
            }
        },
    };
    Answer {
        server: Some(server),
        outcome,
    }
}

async fn on_cluster(client: &mut ClusterClient, limits: &Limits, f: &Function) -> Answer {
    let (server, reply) = client.route(f.key().as_bytes(), &command(f)).await;
    let outcome = match after_command(f, Reply::from_route(reply)) {
        Step::Ended(outcome) => outcome,
        Step::Applied => match (&limits.wait, &server) {
            (None, _) => Outcome::done(),
            // `WAIT` must go to the node that took the write, on the
            // connection that sent it: it waits for that client's offset.
            (Some(wait), Some(node)) => {
                let limit = wait_limit(wait, limits.op);
                let reply = match client.on(node, &wait_command(wait), limit).await {
                    Some(value) => Reply::Value(value),
                    None => Reply::Lost(format!("no WAIT reply from {node}")),
                };
                after_wait(reply, wait.replicas)
            }
            (Some(_), None) => Outcome::unknown("applied on a node the client cannot name"),
        },
    };
    Answer { server, outcome }
}
