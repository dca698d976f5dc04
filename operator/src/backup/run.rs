//! One shard of a backup attempt: choose the node to stream from (the
//! decided replica once it has every write the primary had acknowledged
//! when the attempt began, else the primary), stream its RDB into the
//! bucket, and say what was uploaded.

use std::net::SocketAddr;
use std::time::Duration;

use logbook_journal::{BackupSource, ShardUpload};

use super::manifest::shard_object;
use super::store::BackupStore;
use super::transfer;
use crate::valkey::{Password, RdbCrc, Timeouts, TlsSettings, ValkeyClient};

/// How long a replica source may take to reach the primary's offset
/// before the primary is streamed from instead.
pub const CATCH_UP: Duration = Duration::from_secs(10);

/// What a backup stream needs to reach a cluster's nodes.
#[derive(Clone)]
pub struct NodeAccess {
    /// Who to authenticate as: `(user, password)`, the user `None` for
    /// the `default` user.
    pub identity: Option<(Option<String>, Password)>,
    /// TLS settings, for a TLS cluster.
    pub tls: Option<TlsSettings>,
    /// The API client (the destination's Secret).
    pub client: kube::Client,
    /// The data-plane client (offsets, the server version).
    pub valkey: ValkeyClient,
}

impl std::fmt::Debug for NodeAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAccess")
            .field("user", &self.identity.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// One shard to back up: its decided source, and the addresses of that
/// pod and of the shard's primary.
#[derive(Debug, Clone)]
pub struct ShardJob {
    /// The source as decided.
    pub source: BackupSource,
    /// The source pod's address.
    pub source_addr: SocketAddr,
    /// The primary's address.
    pub primary_addr: SocketAddr,
}

/// Streams `job`'s shard into `<dir>shard-<n>.rdb`.
///
/// # Errors
/// What failed, naming the pod (never a credential).
pub async fn backup_shard(
    store: &BackupStore,
    dir: &str,
    job: &ShardJob,
    access: &NodeAccess,
) -> Result<ShardUpload, String> {
    let source = &job.source;
    let primary_offset = access
        .valkey
        .info_replication(job.primary_addr)
        .await
        .map(|info| info.master_repl_offset)
        .map_err(|e| format!("reading primary {}'s offset: {e}", source.primary))?;
    let (pod, addr) = if source.pod == source.primary
        || caught_up(&access.valkey, job.source_addr, primary_offset).await
    {
        (source.pod.clone(), job.source_addr)
    } else {
        tracing::info!(
            replica = %source.pod,
            primary = %source.primary,
            primary_offset,
            "the replica did not reach the primary's offset in time; streaming from the primary"
        );
        (source.primary.clone(), job.primary_addr)
    };
    let key = format!("{dir}{}", shard_object(source.shard));
    let auth = access
        .identity
        .as_ref()
        .map(|(user, password)| (user.as_deref(), password));
    let node = transfer::backup_node(
        store,
        &key,
        addr,
        auth,
        access.tls.as_ref(),
        Timeouts::default(),
    )
    .await
    .map_err(|e| format!("streaming shard {} from {pod}: {e}", source.shard))?;
    Ok(ShardUpload {
        shard: source.shard,
        pod,
        key,
        bytes: node.bytes,
        sha256: node.sha256,
        rdb_version: node.rdb_version,
        crc_verified: matches!(node.crc, RdbCrc::Verified(_)),
        replid: node
            .resync
            .as_ref()
            .map(|r| r.replid.clone())
            .unwrap_or_default(),
        offset: node.resync.as_ref().map_or(0, |r| r.offset),
        primary_offset: Some(primary_offset),
    })
}

/// Whether the node at `addr` reaches `offset` within [`CATCH_UP`].
async fn caught_up(valkey: &ValkeyClient, addr: SocketAddr, offset: u64) -> bool {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        if let Ok(info) = valkey.info_replication(addr).await
            && info.master_repl_offset >= offset
        {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
