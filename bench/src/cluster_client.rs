//! A small cluster-aware client for the bench: it routes each command by
//! its key's hash slot to the primary its slot map names, follows `MOVED`
//! (correcting the slot and refreshing the whole map before the next
//! command) and `ASK`, and refreshes the map from `CLUSTER SLOTS` of any
//! node it can reach after a connection error or `CLUSTERDOWN`, as the
//! common cluster clients do.
//!
//! Hand-written rather than the redis crate's cluster client because the
//! bench must see every failure: the crate's client retries with its own
//! back-off and hides how long a slot was unwritable, while here each
//! command is one attempt (plus at most [`MAX_REDIRECTS`] redirections,
//! which are routing, not retries), and its outcome goes to the write log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook::valkey::Password;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, Value};
use tokio::time::timeout;

use super::BenchError;
use super::conn::{connect, split_addr};
use super::slots::{SlotMap, key_slot, parse_cluster_slots, parse_redirect};
use super::writer::Failure;

/// Redirections followed for one command before it counts as failed.
pub const MAX_REDIRECTS: usize = 3;

/// Why one send to one node did not get a reply.
enum Sent {
    /// No connection could be opened (or authenticated) in time.
    Connect,
    /// No reply within the operation timeout.
    TimedOut,
    /// An error reply (`MOVED`, `CLUSTERDOWN`, ...) or a broken connection.
    Error(redis::RedisError),
}

/// A cluster client: seeds, the slot map and one connection per node.
pub struct ClusterClient {
    seeds: Vec<String>,
    password: Option<Password>,
    /// Deadline of connecting and of `CLUSTER SLOTS`.
    connect_timeout: Duration,
    /// Deadline of each routed command.
    op_timeout: Duration,
    map: SlotMap,
    /// Refresh the map before the next command.
    stale: bool,
    /// The node that answered the last refresh: asked first next time.
    preferred: Option<String>,
    connections: HashMap<Arc<str>, MultiplexedConnection>,
}

impl ClusterClient {
    /// A client that knows only `seeds` (`host:port`); the map is read on
    /// first use.
    pub fn new(
        seeds: Vec<String>,
        password: Option<Password>,
        connect_timeout: Duration,
        op_timeout: Duration,
    ) -> ClusterClient {
        ClusterClient {
            seeds,
            password,
            connect_timeout,
            op_timeout,
            map: SlotMap::default(),
            stale: true,
            preferred: None,
            connections: HashMap::new(),
        }
    }

    /// The slot map as the client believes it now.
    pub fn map(&self) -> &SlotMap {
        &self.map
    }

    /// Reads `CLUSTER SLOTS` from the first node that answers with a
    /// non-empty map: the one that answered last, then every primary the
    /// map names, then the seeds. Returns whether the map was replaced.
    pub async fn refresh(&mut self) -> bool {
        let mut candidates: Vec<String> = self.preferred.iter().cloned().collect();
        let known = self.map.primaries().iter().map(|a| a.to_string()).collect();
        for addr in [known, self.seeds.clone()].concat() {
            if !candidates.contains(&addr) {
                candidates.push(addr);
            }
        }
        for addr in candidates {
            let Ok((host, _)) = split_addr(&addr) else {
                continue;
            };
            let Some(reply) = self.query_slots(&addr).await else {
                continue;
            };
            let Ok(owners) = parse_cluster_slots(&reply, &host) else {
                continue;
            };
            if owners.is_empty() {
                continue;
            }
            self.map = SlotMap::from_owners(&owners);
            self.stale = false;
            self.preferred = Some(addr);
            return true;
        }
        false
    }

    async fn query_slots(&mut self, addr: &str) -> Option<Value> {
        let key: Arc<str> = Arc::from(addr);
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let limit = self.connect_timeout;
        let connection = self.connection(&key).await.ok()?;
        match timeout(limit, cmd.query_async::<Value>(connection)).await {
            Ok(Ok(reply)) => Some(reply),
            _ => {
                self.connections.remove(&key);
                None
            }
        }
    }

    /// The open connection to `addr`, connecting (and authenticating) when
    /// there is none.
    async fn connection(
        &mut self,
        addr: &Arc<str>,
    ) -> Result<&mut MultiplexedConnection, BenchError> {
        if !self.connections.contains_key(addr) {
            let opened = connect(addr, self.password.as_ref(), self.connect_timeout).await?;
            self.connections.insert(Arc::clone(addr), opened);
        }
        self.connections
            .get_mut(addr)
            .ok_or_else(|| super::harness("a connection")(format!("{addr} vanished")))
    }

    /// Sends `cmd`, whose key is `key`, to the primary of the key's slot,
    /// following redirections. Returns the node that gave the final answer
    /// (when one was reached) and the reply or why there was none.
    pub async fn route(
        &mut self,
        key: &[u8],
        cmd: &Cmd,
    ) -> (Option<Arc<str>>, Result<Value, Failure>) {
        let slot = key_slot(key);
        if self.stale || self.map.is_empty() {
            self.refresh().await;
        }
        let Some(mut addr) = self.map.owner(slot).cloned() else {
            return (None, Err(Failure::NoPrimary));
        };
        let mut asking = false;
        for _ in 0..=MAX_REDIRECTS {
            let err = match self.send(&addr, cmd, asking).await {
                Ok(value) => return (Some(addr), Ok(value)),
                Err(Sent::Connect) => return self.lost(addr, Failure::Connect),
                Err(Sent::TimedOut) => return self.lost(addr, Failure::TimedOut),
                Err(Sent::Error(err)) => err,
            };
            asking = false;
            let redirect = err.detail().and_then(parse_redirect);
            match (err.code(), redirect) {
                (Some("MOVED"), Some((moved_slot, to))) => {
                    let to: Arc<str> = Arc::from(to.as_str());
                    self.map.set(moved_slot, Arc::clone(&to));
                    // One slot moved usually means a whole shard did.
                    self.stale = true;
                    addr = to;
                }
                (Some("ASK"), Some((_, to))) => {
                    addr = Arc::from(to.as_str());
                    asking = true;
                }
                (Some(code), _) => {
                    if code == "CLUSTERDOWN" || code == "TRYAGAIN" {
                        self.stale = true;
                    }
                    return (Some(addr), Err(Failure::Rejected(code.to_owned())));
                }
                (None, _) => return self.lost(addr, Failure::Io),
            }
        }
        (
            Some(addr),
            Err(Failure::Rejected("too many redirections".to_owned())),
        )
    }

    /// A node that could not be reached or broke the connection: forget
    /// the connection and ask the cluster where the slot lives before the
    /// next command.
    fn lost(
        &mut self,
        addr: Arc<str>,
        failure: Failure,
    ) -> (Option<Arc<str>>, Result<Value, Failure>) {
        self.connections.remove(&addr);
        self.stale = true;
        (Some(addr), Err(failure))
    }

    /// Sends `cmd` on the connection to `addr` (after `ASKING` when asked),
    /// within the operation timeout.
    async fn send(&mut self, addr: &Arc<str>, cmd: &Cmd, asking: bool) -> Result<Value, Sent> {
        let limit = self.op_timeout;
        let connection = self.connection(addr).await.map_err(|_| Sent::Connect)?;
        let reply = if asking {
            let mut pipe = redis::pipe();
            pipe.cmd("ASKING").ignore().add_command(cmd.clone());
            timeout(limit, pipe.query_async::<Vec<Value>>(connection))
                .await
                .map(|r| r.map(|mut v| v.pop().unwrap_or(Value::Nil)))
        } else {
            timeout(limit, cmd.query_async::<Value>(connection)).await
        };
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Sent::Error(err)),
            Err(_) => Err(Sent::TimedOut),
        }
    }

    /// `GET` of each of `keys` on `addr` itself, pipelined: one reply per
    /// key (an error reply, `MOVED` for a key it does not serve, as
    /// `None`), or `None` for the lot when the node did not answer.
    pub async fn get_many_on(
        &mut self,
        addr: &Arc<str>,
        keys: &[String],
        limit: Duration,
    ) -> Option<Vec<Option<Value>>> {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("GET").arg(key);
        }
        pipe.ignore_errors();
        let connection = self.connection(addr).await.ok()?;
        match timeout(
            limit,
            pipe.query_async::<Vec<redis::RedisResult<Value>>>(connection),
        )
        .await
        {
            Ok(Ok(replies)) if replies.len() == keys.len() => {
                Some(replies.into_iter().map(Result::ok).collect())
            }
            _ => {
                self.connections.remove(addr);
                None
            }
        }
    }

    /// Sends `cmd` to `addr` itself (no routing): `WAIT` after a write must
    /// go to the node that took the write.
    pub async fn on(&mut self, addr: &Arc<str>, cmd: &Cmd, limit: Duration) -> Option<Value> {
        let connection = self.connection(addr).await.ok()?;
        match timeout(limit, cmd.query_async::<Value>(connection)).await {
            Ok(Ok(value)) => Some(value),
            _ => {
                self.connections.remove(addr);
                None
            }
        }
    }
}

/// The cluster's slot map as the first answering of `seeds` states it.
///
/// # Errors
/// [`BenchError::Protocol`] when no seed answers with a map.
pub async fn slot_map(
    seeds: &[String],
    password: Option<&Password>,
) -> Result<SlotMap, BenchError> {
    let limit = Duration::from_secs(1);
    let mut client = ClusterClient::new(seeds.to_vec(), password.cloned(), limit, limit);
    if client.refresh().await {
        Ok(client.map.clone())
    } else {
        Err(BenchError::Protocol {
            addr: seeds.join(","),
            command: "CLUSTER SLOTS",
            detail: "no seed answered with a slot map".to_owned(),
        })
    }
}

/// How long [`missing_in_cluster`] keeps asking for a key no node will
/// serve before it calls the check failed.
pub const UNREADABLE_PATIENCE: Duration = Duration::from_secs(30);

/// The `acked` keys of prefix `prefix` that the cluster does not hold with
/// their own number as value, each read with `GET` from its slot's primary
/// (redirections followed). Read-only.
///
/// # Errors
/// [`BenchError::Protocol`] when a key cannot be read after retries (its
/// slot unserved, every node unreachable) for [`UNREADABLE_PATIENCE`].
pub async fn missing_in_cluster(
    seeds: &[String],
    password: Option<&Password>,
    prefix: &str,
    acked: &[u64],
) -> Result<Vec<u64>, BenchError> {
    let limit = Duration::from_secs(2);
    let mut client = ClusterClient::new(seeds.to_vec(), password.cloned(), limit, limit);
    let holds = |key: u64, value: &Value| {
        let want = key.to_string();
        match value {
            Value::BulkString(bytes) => bytes.as_slice() == want.as_bytes(),
            Value::SimpleString(s) => *s == want,
            _ => false,
        }
    };
    // Pipelined by the node the map says owns each key's slot, a thousand
    // at a time (one round trip per key made a sweep's later points wait
    // minutes on hundreds of thousands of keys); a key a node does not
    // answer for (moved meanwhile, or the node gone) is read again alone,
    // following redirections.
    client.refresh().await;
    let mut by_owner: HashMap<Arc<str>, Vec<u64>> = HashMap::new();
    let mut alone: Vec<u64> = Vec::new();
    for &key in acked {
        let name = format!("{prefix}:{key}");
        match client.map().owner(key_slot(name.as_bytes())).cloned() {
            Some(owner) => by_owner.entry(owner).or_default().push(key),
            None => alone.push(key),
        }
    }
    let mut missing = Vec::new();
    for (owner, keys) in by_owner {
        for chunk in keys.chunks(1000) {
            let names: Vec<String> = chunk.iter().map(|k| format!("{prefix}:{k}")).collect();
            match client.get_many_on(&owner, &names, limit).await {
                Some(replies) => {
                    for (&key, reply) in chunk.iter().zip(replies) {
                        match reply {
                            Some(value) if holds(key, &value) => {}
                            // Nil: absent there, read again routed in
                            // case the slot moved; an error, the same.
                            _ => alone.push(key),
                        }
                    }
                }
                None => alone.extend_from_slice(chunk),
            }
        }
    }
    for key in alone {
        let name = format!("{prefix}:{key}");
        let mut get = redis::cmd("GET");
        get.arg(&name);
        let mut last = None;
        let mut value = None;
        // Patient as a client is: a node that has just marked a peer
        // failed (or has just restarted) answers CLUSTERDOWN until gossip
        // clears it, which Valkey delays by up to twice the node timeout.
        let give_up = Instant::now() + UNREADABLE_PATIENCE;
        let mut tries = 0_u32;
        while value.is_none() {
            tries += 1;
            match client.route(name.as_bytes(), &get).await {
                (_, Ok(v)) => value = Some(v),
                (addr, Err(failure)) => {
                    last = Some(format!("{failure:?} from {addr:?} (try {tries})"));
                    if Instant::now() >= give_up {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let Some(value) = value else {
            return Err(BenchError::Protocol {
                addr: seeds.join(","),
                command: "GET",
                detail: format!("{name} could not be read: {}", last.unwrap_or_default()),
            });
        };
        if !holds(key, &value) {
            missing.push(key);
        }
    }
    missing.sort_unstable();
    Ok(missing)
}
