//! `AnyStore`: the journal backend the operator was started with
//! (`--journal=configmap|sled|both`), as one `JournalStore`.
//!
//! `both` writes the cluster copy (ConfigMaps, authoritative) first and
//! mirrors each committed batch into the local sled store; every read goes
//! to the cluster copy, so the local one is never needed to recover. A
//! mirror that fell behind (a fresh volume, an earlier failed write) is
//! caught up from the cluster copy while that still holds the missing
//! frames; when compaction already removed them the mirror is left as it
//! is and a warning says so.

use std::str::FromStr;

use logbook_journal::{
    EncodedEvent, EncodedSnapshot, FrameBatch, Head, JournalStore, SledStore, StoreError, StreamId,
};

use crate::metrics::ConfigMapWrites;
use logbook_journal_k8s::ConfigMapStore;

/// Result of store operations.
type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Frames copied per read while catching the mirror up.
const CATCH_UP_CHUNK: usize = 1024;

/// Which backend the operator journals to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalBackend {
    /// ConfigMaps in each cluster's namespace (survives the operator's pod).
    ConfigMap,
    /// A local sled directory (local mode, or an operator with a volume).
    Sled,
    /// ConfigMaps, mirrored into a local sled directory.
    Both,
}

impl JournalBackend {
    /// The name used on the command line and in `status.journal.backend`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConfigMap => "configmap",
            Self::Sled => "sled",
            Self::Both => "both",
        }
    }

    /// Whether a local sled directory is needed.
    #[must_use]
    pub const fn uses_sled(self) -> bool {
        matches!(self, Self::Sled | Self::Both)
    }

    /// Whether journals live in ConfigMaps.
    #[must_use]
    pub const fn uses_config_maps(self) -> bool {
        matches!(self, Self::ConfigMap | Self::Both)
    }
}

impl FromStr for JournalBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "configmap" => Ok(Self::ConfigMap),
            "sled" => Ok(Self::Sled),
            "both" => Ok(Self::Both),
            other => Err(format!(
                "unknown journal backend {other:?}: expected configmap, sled or both"
            )),
        }
    }
}

impl std::fmt::Display for JournalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One journal store of any backend.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// Local sled.
    Sled(SledStore),
    /// ConfigMaps of one namespace.
    ConfigMap(ConfigMapStore),
    /// ConfigMaps, mirrored into sled.
    Both {
        /// The authoritative copy.
        cluster: ConfigMapStore,
        /// The local mirror.
        local: SledStore,
    },
}

impl AnyStore {
    /// The backend's name.
    #[must_use]
    pub const fn backend(&self) -> JournalBackend {
        match self {
            Self::Sled(_) => JournalBackend::Sled,
            Self::ConfigMap(_) => JournalBackend::ConfigMap,
            Self::Both { .. } => JournalBackend::Both,
        }
    }

    /// Counts the writes of its ConfigMaps, if it has any, in `writes`.
    #[must_use]
    pub fn with_writes(self, writes: ConfigMapWrites) -> Self {
        match self {
            Self::Sled(local) => Self::Sled(local),
            Self::ConfigMap(store) => Self::ConfigMap(store.with_writes(writes)),
            Self::Both { cluster, local } => Self::Both {
                cluster: cluster.with_writes(writes),
                local,
            },
        }
    }

    /// The ConfigMap store, when journals live in ConfigMaps.
    #[must_use]
    pub const fn config_maps(&self) -> Option<&ConfigMapStore> {
        match self {
            Self::ConfigMap(store) | Self::Both { cluster: store, .. } => Some(store),
            Self::Sled(_) => None,
        }
    }
}

/// Copies what `local` lacks of `stream` from `cluster`, up to the seq
/// before `expected_next`, so the next mirrored batch continues it. Returns whether the mirror
/// is now contiguous.
async fn catch_up(
    cluster: &ConfigMapStore,
    local: &SledStore,
    stream: &StreamId,
    expected_next: u64,
) -> Result<bool> {
    let mut head = local.head(stream).await?;
    while head.next_seq() < expected_next {
        let batch = cluster
            .read(stream, head.next_seq(), CATCH_UP_CHUNK)
            .await?;
        let mut events = Vec::with_capacity(batch.len());
        let mut want = head.next_seq();
        let mut prev = head.hash;
        for (seq, frame) in batch.iter() {
            if seq >= expected_next {
                break;
            }
            if seq != want {
                return Ok(false);
            }
            let decoded = logbook_journal::codec::decode_event(frame, seq, &prev).map_err(|e| {
                StoreError::CorruptMeta {
                    stream: stream.clone(),
                    what: format!("frame {seq} cannot be copied to the local mirror: {e}"),
                }
            })?;
            prev = decoded.hash;
            events.push(EncodedEvent {
                seq,
                hash: decoded.hash,
                frame: frame.to_vec(),
            });
            want = want.saturating_add(1);
        }
        if events.is_empty() {
            return Ok(false);
        }
        head = local.append(stream, head.next_seq(), &events).await?;
    }
    Ok(head.next_seq() == expected_next)
}

/// Mirrors a committed batch; a failure only costs local history.
async fn mirror(
    cluster: &ConfigMapStore,
    local: &SledStore,
    stream: &StreamId,
    expected_next: u64,
    events: &[EncodedEvent],
) {
    let result = async {
        if !catch_up(cluster, local, stream, expected_next).await? {
            return Ok(false);
        }
        local
            .append(stream, expected_next, events)
            .await
            .map(|_| true)
    }
    .await;
    match result {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            %stream,
            seq = expected_next,
            "the local journal mirror misses events the cluster copy already compacted; it keeps what it has"
        ),
        Err(err) => {
            tracing::warn!(%stream, seq = expected_next, %err, "cannot mirror the journal locally")
        }
    }
}

impl JournalStore for AnyStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected_next: u64,
        events: &[EncodedEvent],
    ) -> Result<Head> {
        match self {
            Self::Sled(store) => store.append(stream, expected_next, events).await,
            Self::ConfigMap(store) => store.append(stream, expected_next, events).await,
            Self::Both { cluster, local } => {
                let head = cluster.append(stream, expected_next, events).await?;
                mirror(cluster, local, stream, expected_next, events).await;
                Ok(head)
            }
        }
    }

    async fn read(&self, stream: &StreamId, from: u64, max: usize) -> Result<FrameBatch> {
        match self {
            Self::Sled(store) => store.read(stream, from, max).await,
            Self::ConfigMap(store) | Self::Both { cluster: store, .. } => {
                store.read(stream, from, max).await
            }
        }
    }

    async fn head(&self, stream: &StreamId) -> Result<Head> {
        match self {
            Self::Sled(store) => store.head(stream).await,
            Self::ConfigMap(store) | Self::Both { cluster: store, .. } => store.head(stream).await,
        }
    }

    async fn put_snapshot(&self, stream: &StreamId, snapshot: &EncodedSnapshot) -> Result<()> {
        match self {
            Self::Sled(store) => store.put_snapshot(stream, snapshot).await,
            Self::ConfigMap(store) => store.put_snapshot(stream, snapshot).await,
            Self::Both { cluster, local } => {
                cluster.put_snapshot(stream, snapshot).await?;
                if let Err(err) = local.put_snapshot(stream, snapshot).await {
                    tracing::warn!(%stream, seq = snapshot.seq, %err, "cannot store the snapshot in the local mirror");
                }
                Ok(())
            }
        }
    }

    async fn get_snapshot(&self, stream: &StreamId) -> Result<Option<EncodedSnapshot>> {
        match self {
            Self::Sled(store) => store.get_snapshot(stream).await,
            Self::ConfigMap(store) | Self::Both { cluster: store, .. } => {
                store.get_snapshot(stream).await
            }
        }
    }

    /// Compacts the authoritative copy only: the local mirror keeps the
    /// full history (that is what `both` is for).
    async fn compact(&self, stream: &StreamId, before: u64) -> Result<u64> {
        match self {
            Self::Sled(store) => store.compact(stream, before).await,
            Self::ConfigMap(store) | Self::Both { cluster: store, .. } => {
                store.compact(stream, before).await
            }
        }
    }

    async fn list_streams(&self) -> Result<Vec<StreamId>> {
        match self {
            Self::Sled(store) => store.list_streams().await,
            Self::ConfigMap(store) | Self::Both { cluster: store, .. } => {
                store.list_streams().await
            }
        }
    }

    async fn remove_last(&self, stream: &StreamId, seq: u64, new_head: Head) -> Result<()> {
        match self {
            Self::Sled(store) => store.remove_last(stream, seq, new_head).await,
            Self::ConfigMap(store) => store.remove_last(stream, seq, new_head).await,
            Self::Both { cluster, local } => {
                cluster.remove_last(stream, seq, new_head).await?;
                if let Err(err) = local.remove_last(stream, seq, new_head).await {
                    tracing::warn!(%stream, seq, %err, "cannot truncate the local mirror");
                }
                Ok(())
            }
        }
    }
}
