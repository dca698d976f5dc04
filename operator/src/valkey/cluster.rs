//! The Valkey Cluster commands of [`ValkeyClient`]: the per-interval probe
//! of a cluster node, the reads behind it, and the admin commands the
//! operator forms and repairs a cluster with (no `valkey-cli --cluster`).
//!
//! Same connections, timeouts, authentication and failure classification
//! as every other command. Nothing here decides or waits for an effect:
//! the server answers when a command is accepted, and callers confirm what
//! happened by probing again.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::{ClusterFailoverMode, SlotMigrationJob, SlotRange};
use redis::Value;

use super::client::{Request, Resend, ValkeyClient, classify, expect_ok, text_reply, unexpected};
use logbook_core::replies::ProbeError;
use logbook_core::replies::{
    ClusterInfo, ClusterNodeLine, ClusterShard, parse_cluster_info, parse_cluster_nodes,
    parse_cluster_shards, parse_slot_migrations,
};
use logbook_core::replies::{ClusterProbe, ParseError, parse_info_replication};

pub(super) fn cluster(sub: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg(sub);
    cmd
}

impl ValkeyClient {
    pub(super) async fn reply(
        &self,
        addr: SocketAddr,
        request: &impl Request,
        name: &'static str,
        resend: Resend,
    ) -> Result<Value, ProbeError> {
        Ok(self
            .run(addr, request, name, Duration::ZERO, resend)
            .await?
            .0)
    }

    pub(super) async fn ok(
        &self,
        addr: SocketAddr,
        cmd: &redis::Cmd,
        name: &'static str,
        resend: Resend,
    ) -> Result<(), ProbeError> {
        expect_ok(addr, self.reply(addr, cmd, name, resend).await?)
    }

    /// `CLUSTER NODES`, `CLUSTER INFO`, `INFO replication` and `CLUSTER
    /// GETSLOTMIGRATIONS` pipelined on one connection: one round trip, the
    /// probe each cluster pod gets every interval.
    ///
    /// # Guarantees
    ///
    /// The four replies were produced one after the other by the server's
    /// single command thread, with nothing of ours in between; nothing is
    /// written. A server without atomic slot migration answers the last
    /// command "unknown subcommand": that is `migrations: None`, not an
    /// error.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Rejected`] when the server is not
    /// cluster-enabled; [`ProbeError::Malformed`] for a reply that does not
    /// parse.
    pub async fn cluster_probe(&self, addr: SocketAddr) -> Result<ClusterProbe, ProbeError> {
        let mut pipe = redis::pipe();
        pipe.add_command(cluster("NODES"))
            .add_command(cluster("INFO"))
            .cmd("INFO")
            .arg("replication")
            .add_command(cluster("GETSLOTMIGRATIONS"))
            // A refusal stays in its place in the reply, to be classified
            // as that command's, not taken for a broken connection.
            .ignore_errors();
        let reply = self
            .reply(addr, &pipe, "CLUSTER probe", Resend::Safe)
            .await?;
        let Value::Array(replies) = reply else {
            return Err(unexpected(addr, "an array of 4 replies", &reply));
        };
        let [nodes, info, replication, migrations] = <[Value; 4]>::try_from(replies)
            .map_err(|got| unexpected(addr, "4 replies", &Value::Array(got)))?;
        let text = |reply: Value, name: &'static str| {
            reply
                .extract_error()
                .map_err(|err| classify(addr, name, &err))
                .and_then(|reply| text_reply(addr, reply))
        };
        let nodes = text(nodes, "CLUSTER NODES")?;
        let info = text(info, "CLUSTER INFO")?;
        let replication = text(replication, "INFO")?;
        // The node's health does not hang on the list of its migrations:
        // a list that does not parse is reported and left out, never
        // taken for a node that does not answer.
        let migrations = match slot_migrations(addr, migrations.extract_error()) {
            Ok(jobs) => jobs,
            Err(err @ ProbeError::Malformed { .. }) => {
                tracing::warn!(%addr, %err, "CLUSTER GETSLOTMIGRATIONS reply left out");
                None
            }
            Err(err) => return Err(err),
        };
        let malformed = |source| ProbeError::Malformed { addr, source };
        Ok(ClusterProbe {
            nodes: parse_cluster_nodes(&nodes).map_err(malformed)?,
            info: parse_cluster_info(&info).map_err(malformed)?,
            replication: parse_info_replication(&replication).map_err(malformed)?,
            migrations,
        })
    }

    /// `CLUSTER NODES` alone: every node the server at `addr` knows, itself
    /// included (the `myself` line).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn cluster_nodes(
        &self,
        addr: SocketAddr,
    ) -> Result<Vec<ClusterNodeLine>, ProbeError> {
        let reply = self
            .reply(addr, &cluster("NODES"), "CLUSTER NODES", Resend::Safe)
            .await?;
        parse_cluster_nodes(&text_reply(addr, reply)?)
            .map_err(|source| ProbeError::Malformed { addr, source })
    }

    /// `CLUSTER INFO` alone.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn cluster_info(&self, addr: SocketAddr) -> Result<ClusterInfo, ProbeError> {
        let reply = self
            .reply(addr, &cluster("INFO"), "CLUSTER INFO", Resend::Safe)
            .await?;
        parse_cluster_info(&text_reply(addr, reply)?)
            .map_err(|source| ProbeError::Malformed { addr, source })
    }

    /// `CLUSTER SHARDS`: the shards the server at `addr` knows, each with
    /// its slots and its nodes (health as that server sees it).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn cluster_shards(&self, addr: SocketAddr) -> Result<Vec<ClusterShard>, ProbeError> {
        let reply = self
            .reply(addr, &cluster("SHARDS"), "CLUSTER SHARDS", Resend::Safe)
            .await?;
        parse_cluster_shards(&super::reply(reply))
            .map_err(|source| ProbeError::Malformed { addr, source })
    }

    /// `CLUSTER MYID`: the node id of the server at `addr` (40 lowercase
    /// hex digits).
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Malformed`] when the reply is not a
    /// node id.
    pub async fn cluster_myid(&self, addr: SocketAddr) -> Result<String, ProbeError> {
        let reply = self
            .reply(addr, &cluster("MYID"), "CLUSTER MYID", Resend::Safe)
            .await?;
        let id = text_reply(addr, reply)?.trim().to_ascii_lowercase();
        if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(id)
        } else {
            Err(ProbeError::Malformed {
                addr,
                source: ParseError::Malformed {
                    field: "CLUSTER MYID".to_owned(),
                    value: id,
                },
            })
        }
    }

    /// `CLUSTER MEET ip port`: the server at `addr` starts a hand-shake with
    /// the node at `ip:port` (bus port `port + 10000`).
    ///
    /// # Guarantees
    ///
    /// Idempotent: a hand-shake already running with that address is
    /// answered OK. The reply only means the hand-shake started; the node
    /// is a member once it appears without `handshake` (under its real id —
    /// a hand-shaking line carries a random one).
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when `ip` is not an IP literal (a hostname
    /// is refused) or the port is invalid; any other [`ProbeError`].
    pub async fn cluster_meet(
        &self,
        addr: SocketAddr,
        ip: &str,
        port: u16,
    ) -> Result<(), ProbeError> {
        self.cluster_meet_bus(addr, ip, port, None).await
    }

    /// [`Self::cluster_meet`] with the bus at `cport` when given (`CLUSTER
    /// MEET ip port cport`: a node announcing another bus port than
    /// `port + 10000`, as one reached by node ports does).
    ///
    /// # Errors
    ///
    /// As [`Self::cluster_meet`].
    pub async fn cluster_meet_bus(
        &self,
        addr: SocketAddr,
        ip: &str,
        port: u16,
        cport: Option<u16>,
    ) -> Result<(), ProbeError> {
        let mut cmd = cluster("MEET");
        cmd.arg(ip).arg(port);
        if let Some(cport) = cport {
            cmd.arg(cport);
        }
        self.ok(addr, &cmd, "CLUSTER MEET", Resend::Safe).await
    }

    /// `CLUSTER ADDSLOTSRANGE start end ...`: the server at `addr` takes
    /// these unowned slots. An empty `ranges` sends nothing.
    ///
    /// # Guarantees
    ///
    /// All or nothing: the server checks every range before it assigns any.
    /// Never resent after a dropped connection (a resend of an applied
    /// command would be refused as "already busy").
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when a slot is already owned (by it or,
    /// as far as it knows, another node) or a range is invalid; any other
    /// [`ProbeError`].
    pub async fn cluster_addslotsrange(
        &self,
        addr: SocketAddr,
        ranges: &[SlotRange],
    ) -> Result<(), ProbeError> {
        self.slots_range(
            addr,
            ("ADDSLOTSRANGE", "CLUSTER ADDSLOTSRANGE"),
            ranges,
            Resend::Never,
        )
        .await
    }

    /// `CLUSTER <sub> start end ...` for `ranges` (`sub` and the name its
    /// errors give); nothing when empty.
    async fn slots_range(
        &self,
        addr: SocketAddr,
        (sub, name): (&str, &'static str),
        ranges: &[SlotRange],
        resend: Resend,
    ) -> Result<(), ProbeError> {
        if ranges.is_empty() {
            return Ok(());
        }
        let mut cmd = cluster(sub);
        for r in ranges {
            cmd.arg(r.start).arg(r.end);
        }
        self.ok(addr, &cmd, name, resend).await
    }

    /// `CLUSTER REPLICATE node_id`: the server at `addr` becomes a replica
    /// of that primary and starts a full synchronisation.
    ///
    /// # Guarantees
    ///
    /// Idempotent: repeating it for its current primary is answered OK
    /// without resynchronising.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the node is unknown there, is itself or
    /// a replica, or when the server is a primary owning slots or keys; any
    /// other [`ProbeError`].
    pub async fn cluster_replicate(
        &self,
        addr: SocketAddr,
        node_id: &str,
    ) -> Result<(), ProbeError> {
        let mut cmd = cluster("REPLICATE");
        cmd.arg(node_id);
        self.ok(addr, &cmd, "CLUSTER REPLICATE", Resend::Safe).await
    }

    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on the replica at `addr`:
    /// `Coordinated` (no option) has the primary stop writes until the
    /// replica caught up, `Force` skips the primary, `Takeover` also skips
    /// the election and bumps the epoch on its own authority.
    ///
    /// # Guarantees
    ///
    /// The reply means the failover started, not that it happened: a
    /// coordinated one is abandoned by the server if not done within 5 s.
    /// The caller confirms the roles by probing. Never resent after a
    /// dropped connection.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the server is a primary, does not know
    /// its primary, or (coordinated only) its primary is failed or
    /// unlinked; any other [`ProbeError`].
    pub async fn cluster_failover(
        &self,
        addr: SocketAddr,
        mode: ClusterFailoverMode,
    ) -> Result<(), ProbeError> {
        let mut cmd = cluster("FAILOVER");
        if !mode.word().is_empty() {
            cmd.arg(mode.word());
        }
        self.ok(addr, &cmd, "CLUSTER FAILOVER", Resend::Never).await
    }

    /// `CLUSTER FORGET node_id` on the server at `addr`: the node leaves its
    /// table, and its id is banned there for `cluster-blacklist-ttl` (60 s
    /// by default) so gossip from nodes that still know it does not bring
    /// it back. The server also gossips the ban, so peers drop the node
    /// too; forget it on every member within the ban regardless.
    ///
    /// # Guarantees
    ///
    /// Idempotent: a node already forgotten (banned, or unknown there) is
    /// answered as success.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for the server's own id or, on a replica,
    /// its own primary; any other [`ProbeError`].
    pub async fn cluster_forget(&self, addr: SocketAddr, node_id: &str) -> Result<(), ProbeError> {
        let mut cmd = cluster("FORGET");
        cmd.arg(node_id);
        match self.ok(addr, &cmd, "CLUSTER FORGET", Resend::Safe).await {
            Err(ProbeError::Rejected { message, .. }) if message.contains("Unknown node") => Ok(()),
            other => other,
        }
    }

    /// `CLUSTER RESET SOFT|HARD` on the server at `addr`: it forgets every
    /// other node and its slots; a replica becomes an empty primary. `hard`
    /// also zeroes its epochs and gives it a new node id.
    ///
    /// # Guarantees
    ///
    /// Never resent after a dropped connection (a second hard reset would
    /// change the id again).
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the server is a primary holding keys;
    /// any other [`ProbeError`].
    pub async fn cluster_reset(&self, addr: SocketAddr, hard: bool) -> Result<(), ProbeError> {
        let mut cmd = cluster("RESET");
        cmd.arg(if hard { "HARD" } else { "SOFT" });
        self.ok(addr, &cmd, "CLUSTER RESET", Resend::Never).await
    }

    /// `CLUSTER COUNTKEYSINSLOT slot`: how many keys the server at `addr`
    /// holds in `slot` (whether or not it owns the slot).
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for a slot above 16383; any other
    /// [`ProbeError`].
    pub async fn cluster_countkeysinslot(
        &self,
        addr: SocketAddr,
        slot: u16,
    ) -> Result<u64, ProbeError> {
        let mut cmd = cluster("COUNTKEYSINSLOT");
        cmd.arg(slot);
        match self
            .reply(addr, &cmd, "CLUSTER COUNTKEYSINSLOT", Resend::Safe)
            .await?
        {
            Value::Int(n) => {
                u64::try_from(n).map_err(|_| unexpected(addr, "a count", &Value::Int(n)))
            }
            other => Err(unexpected(addr, "an integer", &other)),
        }
    }

    /// `CLUSTER DELSLOTSRANGE`: the server at `addr` gives up `ranges`
    /// (it no longer claims them; its keys in them are not touched).
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when a slot is not assigned; any other
    /// [`ProbeError`].
    pub async fn cluster_delslotsrange(
        &self,
        addr: SocketAddr,
        ranges: &[SlotRange],
    ) -> Result<(), ProbeError> {
        self.slots_range(
            addr,
            ("DELSLOTSRANGE", "CLUSTER DELSLOTSRANGE"),
            ranges,
            Resend::Safe,
        )
        .await
    }

    /// `UNLINK key ...` on the server at `addr`: how many existed.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`].
    pub async fn unlink(&self, addr: SocketAddr, keys: &[Vec<u8>]) -> Result<u64, ProbeError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("UNLINK");
        for k in keys {
            cmd.arg(k.as_slice());
        }
        match self.reply(addr, &cmd, "UNLINK", Resend::Safe).await? {
            Value::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
            other => Err(unexpected(addr, "an integer", &other)),
        }
    }

    /// `CLUSTER SET-CONFIG-EPOCH epoch` on a fresh node: gives each new
    /// primary a distinct config epoch before the nodes meet, instead of
    /// waiting for the servers' own collision resolution.
    ///
    /// # Guarantees
    ///
    /// Applied only while the node knows no other node and its config
    /// epoch is 0; never resent after a dropped connection.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the node already knows another node or
    /// has a non-zero config epoch; any other [`ProbeError`].
    pub async fn cluster_set_config_epoch(
        &self,
        addr: SocketAddr,
        epoch: u64,
    ) -> Result<(), ProbeError> {
        let mut cmd = cluster("SET-CONFIG-EPOCH");
        cmd.arg(epoch);
        self.ok(addr, &cmd, "CLUSTER SET-CONFIG-EPOCH", Resend::Never)
            .await
    }
}

/// The jobs a `CLUSTER GETSLOTMIGRATIONS` reply lists; `None` when the
/// server does not know the subcommand (Redis, Valkey before 9.0).
pub(super) fn slot_migrations(
    addr: SocketAddr,
    reply: redis::RedisResult<Value>,
) -> Result<Option<Vec<SlotMigrationJob>>, ProbeError> {
    match reply {
        Ok(reply) => parse_slot_migrations(&super::reply(reply))
            .map(Some)
            .map_err(|source| ProbeError::Malformed { addr, source }),
        Err(err) if unknown_subcommand(&err) => Ok(None),
        Err(err) => Err(classify(addr, "CLUSTER GETSLOTMIGRATIONS", &err)),
    }
}

/// The server's refusal of a `CLUSTER` subcommand it does not have:
/// `ERR unknown subcommand 'getslotmigrations'. Try CLUSTER HELP.`
pub(super) fn unknown_subcommand(err: &redis::RedisError) -> bool {
    err.code().is_some()
        && err
            .to_string()
            .to_ascii_lowercase()
            .contains("unknown subcommand")
}
