//! The resharding commands of [`ValkeyClient`]: atomic slot migration
//! (`CLUSTER MIGRATESLOTS`, `GETSLOTMIGRATIONS`, `CANCELSLOTMIGRATIONS`,
//! Valkey 9.0 and later) and the classic pipeline servers without it need
//! (`CLUSTER SETSLOT`, `GETKEYSINSLOT`, `MIGRATE`).
//!
//! Same connections, timeouts, authentication and failure classification
//! as every other command. Nothing here waits for a move to finish or
//! decides what to move: the executors do (`actuate::reshard`). Whether a
//! server has atomic slot migration is read from its answer to
//! `GETSLOTMIGRATIONS` (an "unknown subcommand" refusal), not from its
//! version.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::{SlotMigrationJob, SlotRange};
use redis::Value;

use super::client::{Resend, ValkeyClient, unexpected};
use super::cluster::{cluster, slot_migrations};
use logbook_core::replies::ProbeError;

/// What `CLUSTER SETSLOT slot ...` sets on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetSlot<'a> {
    /// `IMPORTING source-id`, on the target: it answers for the slot's
    /// keys to clients that sent `ASKING`.
    Importing(&'a str),
    /// `MIGRATING target-id`, on the source (which must own the slot): a
    /// key it no longer holds is answered with `-ASK` to the target.
    Migrating(&'a str),
    /// `NODE node-id`: the slot belongs to that node, and the node's own
    /// importing/migrating marks for it are cleared. On the new owner it
    /// also bumps its config epoch, so the claim wins everywhere.
    Node(&'a str),
    /// `STABLE`: clears the node's importing/migrating mark, ownership
    /// unchanged.
    Stable,
}

impl std::fmt::Display for SetSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetSlot::Importing(id) => write!(f, "IMPORTING {id}"),
            SetSlot::Migrating(id) => write!(f, "MIGRATING {id}"),
            SetSlot::Node(id) => write!(f, "NODE {id}"),
            SetSlot::Stable => f.write_str("STABLE"),
        }
    }
}

impl SetSlot<'_> {
    fn args(&self, cmd: &mut redis::Cmd) {
        match self {
            SetSlot::Importing(id) => cmd.arg("IMPORTING").arg(*id),
            SetSlot::Migrating(id) => cmd.arg("MIGRATING").arg(*id),
            SetSlot::Node(id) => cmd.arg("NODE").arg(*id),
            SetSlot::Stable => cmd.arg("STABLE"),
        };
    }
}

impl ValkeyClient {
    /// `CLUSTER GETSLOTMIGRATIONS`: the atomic slot migration jobs the
    /// server at `addr` lists, newest first, running and finished (kept
    /// until the process restarts, at most
    /// `cluster-slot-migration-log-max-len`). One cheap read: the
    /// executors poll it every few milliseconds while a job runs.
    ///
    /// # Errors
    ///
    /// Any [`ProbeError`]; [`ProbeError::Malformed`] for a reply that does
    /// not parse. `Ok(None)`: the server has no atomic slot migration.
    pub async fn cluster_getslotmigrations(
        &self,
        addr: SocketAddr,
    ) -> Result<Option<Vec<SlotMigrationJob>>, ProbeError> {
        let cmd = cluster("GETSLOTMIGRATIONS");
        match self
            .reply(addr, &cmd, "CLUSTER GETSLOTMIGRATIONS", Resend::Safe)
            .await
        {
            Ok(reply) => slot_migrations(addr, Ok(reply)),
            Err(ProbeError::Rejected { message, .. })
                if message.to_ascii_lowercase().contains("unknown subcommand") =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// `CLUSTER MIGRATESLOTS SLOTSRANGE s e [s e ...] NODE id [...]` on the
    /// source primary at `addr`: one export job per entry of `jobs` (its
    /// ranges, the target's node id). An empty `jobs` sends nothing.
    ///
    /// # Guarantees
    ///
    /// The reply only means the jobs were created; they run in the
    /// background and are followed with
    /// [`cluster_getslotmigrations`](Self::cluster_getslotmigrations) (the
    /// reply does not name them: a job is found by its ranges and target).
    /// Never resent after a dropped connection: the jobs may exist already,
    /// and a second command would be refused or, once they ended, start
    /// new ones.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the server does not own every slot
    /// ("Slots are not served by this node."), already exports one ("I am
    /// already migrating slot N."), does not know a target ("Unknown node
    /// name"), ranges overlap, or has no atomic slot migration ("unknown
    /// subcommand"); any other [`ProbeError`].
    pub async fn cluster_migrateslots(
        &self,
        addr: SocketAddr,
        jobs: &[(Vec<SlotRange>, String)],
    ) -> Result<(), ProbeError> {
        if jobs.iter().all(|(ranges, _)| ranges.is_empty()) {
            return Ok(());
        }
        let mut cmd = cluster("MIGRATESLOTS");
        for (ranges, target) in jobs.iter().filter(|(ranges, _)| !ranges.is_empty()) {
            cmd.arg("SLOTSRANGE");
            for r in ranges {
                cmd.arg(r.start).arg(r.end);
            }
            cmd.arg("NODE").arg(target);
        }
        self.ok(addr, &cmd, "CLUSTER MIGRATESLOTS", Resend::Never)
            .await
    }

    /// `CLUSTER CANCELSLOTMIGRATIONS` on the server at `addr`: cancels
    /// every export job it runs (their targets drop what they imported).
    /// Valkey 9.1 takes no argument (`ALL` is refused as the wrong number
    /// of arguments). Returns whether any job was running.
    ///
    /// # Guarantees
    ///
    /// Idempotent: with nothing running the server answers "No migrations
    /// ongoing", returned as `false`.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the server has no atomic slot
    /// migration; any other [`ProbeError`].
    pub async fn cluster_cancelslotmigrations(&self, addr: SocketAddr) -> Result<bool, ProbeError> {
        let cmd = cluster("CANCELSLOTMIGRATIONS");
        match self
            .ok(addr, &cmd, "CLUSTER CANCELSLOTMIGRATIONS", Resend::Safe)
            .await
        {
            Ok(()) => Ok(true),
            Err(ProbeError::Rejected { message, .. })
                if message.contains("No migrations ongoing") =>
            {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// `CLUSTER SETSLOT slot IMPORTING|MIGRATING|NODE id` or `STABLE` on
    /// the primary at `addr`.
    ///
    /// # Guarantees
    ///
    /// Idempotent: setting what is already set is answered OK. On Valkey 8
    /// and later the server replicates the change to its replicas before
    /// it answers.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for `MIGRATING` on a node that does not own
    /// the slot ("I'm not the owner of hash slot"), `IMPORTING` on its
    /// owner, an unknown node id, or a replica ("use SETSLOT only with
    /// masters"); any other [`ProbeError`].
    pub async fn cluster_setslot(
        &self,
        addr: SocketAddr,
        slot: u16,
        what: SetSlot<'_>,
    ) -> Result<(), ProbeError> {
        let mut cmd = cluster("SETSLOT");
        cmd.arg(slot);
        what.args(&mut cmd);
        self.ok(addr, &cmd, "CLUSTER SETSLOT", Resend::Safe).await
    }

    /// `CLUSTER GETKEYSINSLOT slot count`: up to `count` keys the server at
    /// `addr` holds in `slot` (keys are binary: returned as bytes).
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] for an invalid slot or count; any other
    /// [`ProbeError`].
    pub async fn cluster_getkeysinslot(
        &self,
        addr: SocketAddr,
        slot: u16,
        count: u32,
    ) -> Result<Vec<Vec<u8>>, ProbeError> {
        let mut cmd = cluster("GETKEYSINSLOT");
        cmd.arg(slot).arg(count);
        let reply = self
            .reply(addr, &cmd, "CLUSTER GETKEYSINSLOT", Resend::Safe)
            .await?;
        let Value::Array(keys) = reply else {
            return Err(unexpected(addr, "an array of keys", &reply));
        };
        keys.into_iter()
            .map(|key| match key {
                Value::BulkString(bytes) => Ok(bytes),
                Value::SimpleString(s) => Ok(s.into_bytes()),
                other => Err(unexpected(addr, "a key", &other)),
            })
            .collect()
    }

    /// `MIGRATE host port "" 0 timeout_ms [REPLACE] [AUTH password] KEYS
    /// key ...` on the server at `addr`: it sends `keys` to the server at
    /// `to` (database 0) and deletes them once `to` stored them. The
    /// client's password, if any, is the one `to` is asked for (every node
    /// of a cluster shares it); it is never formatted. Returns `false` when
    /// none of `keys` existed (`NOKEY`). An empty `keys` sends nothing.
    ///
    /// # Guarantees
    ///
    /// Each batch is all or nothing on the source. `replace` overwrites a
    /// key the target already holds (a batch resent after a crash);
    /// without it such a key fails the batch (`BUSYKEY`). The command may
    /// block up to `timeout_ms` of idleness on the target, so the client's
    /// command timeout is extended by as much. Never resent after a
    /// dropped connection: the caller reads the keys left again.
    ///
    /// # Errors
    ///
    /// [`ProbeError::Rejected`] when the target refuses (`IOERR`,
    /// `BUSYKEY`, a wrong password, the slot not importing there); any
    /// other [`ProbeError`].
    pub async fn migrate(
        &self,
        addr: SocketAddr,
        to: SocketAddr,
        keys: &[Vec<u8>],
        timeout_ms: u64,
        replace: bool,
    ) -> Result<bool, ProbeError> {
        if keys.is_empty() {
            return Ok(false);
        }
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg(to.ip().to_string())
            .arg(to.port())
            .arg("")
            .arg(0)
            .arg(timeout_ms);
        if replace {
            cmd.arg("REPLACE");
        }
        // The target runs what MIGRATE sends as the user it authenticates.
        let password = match self.identity().await {
            Some((user, password)) => {
                cmd.arg("AUTH2").arg(user).arg(password.expose());
                Some(password)
            }
            None => {
                let password = self.password().await;
                if let Some(password) = &password {
                    cmd.arg("AUTH").arg(password.expose());
                }
                password
            }
        };
        cmd.arg("KEYS");
        for key in keys {
            cmd.arg(key.as_slice());
        }
        let extra = Duration::from_millis(timeout_ms);
        // A server that refuses the command, or a client that fails on it,
        // may quote its arguments, the password among them: whatever the
        // error says is logged and journaled, so it never holds it.
        let redact = |err: ProbeError| match &password {
            Some(password) => err.redact(password.expose()),
            None => err,
        };
        let (reply, _) = self
            .run(addr, &cmd, "MIGRATE", extra, Resend::Never)
            .await
            .map_err(redact)?;
        match reply {
            Value::Okay => Ok(true),
            Value::SimpleString(s) if s == "OK" => Ok(true),
            Value::SimpleString(s) if s == "NOKEY" => Ok(false),
            other => Err(redact(unexpected(addr, "OK or NOKEY", &other))),
        }
    }
}
