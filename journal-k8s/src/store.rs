//! `ConfigMapStore`: the `JournalStore` backend that keeps journals in
//! ConfigMaps of one namespace, so they outlive the operator's pod.
//!
//! It owns the API calls and the write order; the object layout lives in
//! `layout.rs`. It never decodes frames (that is the journal crate's job).
//!
//! # Write order
//! The head ConfigMap is the only commit point, written with a
//! `resourceVersion` precondition. An append is one such write: the new
//! frames go into the head's open segment together with the new seq and
//! hash, so a stale writer gets a 409 and [`StoreError::Conflict`], and two
//! writers can never both extend the journal. Sealing then copies the open
//! frames (already committed) into a new segment object first and CASes the
//! head second; a crash or a lost race between leaves a segment the head
//! does not name, which readers never look at, a later seal skips (it
//! never overwrites an existing segment, which might be another writer's)
//! and `compact` deletes.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, GetParams, ListParams, PostParams};
use logbook_journal::store::{check_contiguous, check_next};
use logbook_journal::{
    ChainHash, EncodedEvent, EncodedSnapshot, FrameBatch, Head, JournalStore, StoreError, StreamId,
};

use crate::{WriteCounter, WriteResult};

use crate::layout::{
    self, HeadRecord, KIND_HEAD, KIND_SEGMENT, KIND_SNAPSHOT, OBJECT_LABEL, SNAPSHOT_FRAME_KEY,
    SegmentRange,
};

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How many taken segment numbers a seal skips before giving up (each one
/// is a leftover of a crashed or outraced seal).
const SEAL_ATTEMPTS: u64 = 8;

/// How many times compaction reloads a head that moved under it.
const COMPACT_ATTEMPTS: usize = 3;

/// A journal store over the ConfigMaps of one namespace. Clones share the
/// client; any number of stores (in any number of processes) may open the
/// same namespace, the head's compare-and-swap keeps them consistent.
#[derive(Clone)]
pub struct ConfigMapStore {
    api: Api<ConfigMap>,
    namespace: String,
    owner: Option<OwnerReference>,
    extra_labels: BTreeMap<String, String>,
    extra_annotations: BTreeMap<String, String>,
    seal_bytes: usize,
    /// Counts every write (the operator's stores; tools' go uncounted).
    writes: Option<Arc<dyn WriteCounter>>,
}

impl std::fmt::Debug for ConfigMapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapStore")
            .field("namespace", &self.namespace)
            .field("owner", &self.owner.as_ref().map(|o| &o.name))
            .field("seal_bytes", &self.seal_bytes)
            .finish_non_exhaustive()
    }
}

/// A head as read, with the `resourceVersion` its CAS must carry.
struct Loaded {
    record: HeadRecord,
    version: Option<String>,
}

impl ConfigMapStore {
    /// A store over the ConfigMaps of `namespace`.
    #[must_use]
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            owner: None,
            extra_labels: BTreeMap::new(),
            extra_annotations: BTreeMap::new(),
            seal_bytes: layout::DEFAULT_SEAL_BYTES,
            writes: None,
        }
    }

    /// Counts every write of this store's ConfigMaps in `writes`
    /// (`logbook_configmap_writes_total`).
    #[must_use]
    pub fn with_writes(mut self, writes: impl WriteCounter + 'static) -> Self {
        self.writes = Some(Arc::new(writes));
        self
    }

    /// Counts one write that ended with `result`: a 409 is a conflict
    /// (the precondition failed, or a create found the name taken).
    fn count<T>(&self, result: &kube::Result<T>) {
        let Some(writes) = &self.writes else {
            return;
        };
        writes.record(match result {
            Ok(_) => WriteResult::Ok,
            Err(kube::Error::Api(status)) if status.code == 409 => WriteResult::Conflict,
            Err(_) => WriteResult::Error,
        });
    }

    /// Sets an owner reference on every object this store creates (the
    /// ValkeyCluster, unless the journal is retained on delete).
    #[must_use]
    pub fn with_owner(mut self, owner: OwnerReference) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Adds `labels` to every object this store creates (the operator
    /// names the cluster, so a retained journal can be found by name).
    #[must_use]
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.extra_labels = labels;
        self
    }

    /// Adds `annotations` to every object this store creates (the
    /// operator's ownership annotation naming the cluster).
    #[must_use]
    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.extra_annotations = annotations;
        self
    }

    /// Seals the open segment once it holds `bytes` of frames (default
    /// 256 KiB; smaller in tests to exercise sealing).
    #[must_use]
    pub fn with_seal_bytes(mut self, bytes: usize) -> Self {
        self.seal_bytes = bytes.max(1);
        self
    }

    /// The namespace this store writes to.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Reads the head of `stream` once and returns a read-only view of the
    /// stream at that commit point, for loading a projection: through it,
    /// `reader::load_state` costs one head GET, one snapshot GET and the
    /// sealed segments past the snapshot, where the store itself reads the
    /// head again for `head` and for every `read` (the head is the largest
    /// object a load fetches: it holds the open segment's frames).
    ///
    /// # Guarantees
    /// Every `head` and `read` of `stream` through the view answers from
    /// that one head: a consistent cut of the journal, never a mix of two
    /// commits, and nothing appended later. A segment compacted away since
    /// is absent, as the trait allows. The snapshot is read when asked for.
    /// Other streams are read through the store as usual; writes are
    /// refused.
    ///
    /// # Errors
    /// As `head`.
    pub async fn pin(&self, stream: &StreamId) -> Result<PinnedStream> {
        let record = self.load_head(stream).await?.map(|l| Arc::new(l.record));
        Ok(PinnedStream {
            store: self.clone(),
            stream: stream.clone(),
            record,
        })
    }

    /// The ConfigMap and `binaryData` key holding the frame of `seq`, if the
    /// journal holds it. For tools and tests that inspect objects directly.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::CorruptMeta`] for an unreadable head.
    pub async fn locate(&self, stream: &StreamId, seq: u64) -> Result<Option<(String, String)>> {
        let Some(loaded) = self.load_head(stream).await? else {
            return Ok(None);
        };
        let record = loaded.record;
        if seq < record.floor || seq > record.seq {
            return Ok(None);
        }
        if record.open.contains_key(&seq) {
            return Ok(Some((layout::head_name(stream), layout::frame_key(seq))));
        }
        Ok(record
            .segments
            .iter()
            .find(|s| (s.first..=s.last).contains(&seq))
            .map(|s| {
                (
                    layout::segment_name(stream, s.index),
                    layout::frame_key(seq),
                )
            }))
    }

    fn backend(&self, op: &str, stream: &StreamId, name: &str, e: kube::Error) -> StoreError {
        StoreError::Backend {
            context: format!(
                "{op} of ConfigMap {}/{name} for journal stream {stream}",
                self.namespace
            ),
            source: Box::new(e),
        }
    }

    fn metadata(&self, name: String, stream: &StreamId, kind: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some({
                let mut labels = self.extra_labels.clone();
                labels.extend(layout::labels(stream, kind));
                labels
            }),
            annotations: (!self.extra_annotations.is_empty())
                .then(|| self.extra_annotations.clone()),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    /// GETs `name` but builds only what the store reads of it (see
    /// [`StoredObject`]).
    async fn get(&self, stream: &StreamId, name: &str) -> Result<Option<ConfigMap>> {
        let request = kube::core::Request::new(self.api.resource_url())
            .get(name, &GetParams::default())
            .map_err(|e| self.backend("get", stream, name, kube::Error::BuildRequest(e)))?;
        let client = self.api.clone().into_client();
        match client.request::<StoredObject>(request).await {
            Ok(object) => Ok(Some(object.into_config_map())),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
            Err(e) => Err(self.backend("get", stream, name, e)),
        }
    }

    async fn load_head(&self, stream: &StreamId) -> Result<Option<Loaded>> {
        let Some(mut cm) = self.get(stream, &layout::head_name(stream)).await? else {
            return Ok(None);
        };
        let corrupt = |what: String| StoreError::CorruptMeta {
            stream: stream.clone(),
            what: format!("ConfigMap {}: {what}", layout::head_name(stream)),
        };
        // The open frames (up to the seal size) move into the record rather
        // than being copied by `from_config_map`, with the same key check.
        let frames = cm.binary_data.take().unwrap_or_default();
        let mut record = HeadRecord::from_config_map(&cm).map_err(corrupt)?;
        for (key, frame) in frames {
            let seq = layout::parse_frame_key(&key)
                .ok_or_else(|| corrupt(format!("head key {key:?}")))?;
            record.open.insert(seq, frame.0);
        }
        Ok(Some(Loaded {
            record,
            version: cm.metadata.resource_version,
        }))
    }

    /// Writes `record` as the head if the head is still at `version`
    /// (absent when `None`). `Ok(false)` when another writer got there first.
    async fn cas_head(
        &self,
        stream: &StreamId,
        version: Option<String>,
        record: &HeadRecord,
    ) -> Result<bool> {
        let name = layout::head_name(stream);
        let (data, binary) = record.to_fields();
        let mut metadata = self.metadata(name.clone(), stream, KIND_HEAD);
        metadata.resource_version = version;
        let cm = ConfigMap {
            metadata,
            data: Some(data),
            binary_data: Some(binary),
            ..ConfigMap::default()
        };
        match self.put_versioned(&name, &cm).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.backend("compare-and-swap", stream, &name, e)),
        }
    }

    /// A conflict error carrying the stream's actual next seq (read again,
    /// since the head just moved under us).
    async fn conflict(&self, stream: &StreamId, expected: u64) -> StoreError {
        let actual = match self.load_head(stream).await {
            Ok(loaded) => loaded.map_or(1, |l| l.record.head().next_seq()),
            Err(e) => return e,
        };
        StoreError::Conflict {
            stream: stream.clone(),
            expected,
            actual,
        }
    }

    /// Moves the open frames into a sealed segment when they reached the
    /// seal size. The frames are committed already, so a failure here only
    /// postpones sealing to the next append.
    async fn seal_if_full(&self, stream: &StreamId) -> Result<()> {
        let Some(Loaded { record, version }) = self.load_head(stream).await? else {
            return Ok(());
        };
        let (Some(first), Some(last)) = (
            record.open.keys().next().copied(),
            record.open.keys().next_back().copied(),
        ) else {
            return Ok(());
        };
        if record.open_bytes() < self.seal_bytes {
            return Ok(());
        }
        let mut index = record.next_segment;
        let attempts_end = index.saturating_add(SEAL_ATTEMPTS);
        loop {
            if index >= attempts_end {
                return Err(self.backend_msg(
                    stream,
                    &layout::segment_name(stream, index),
                    "every tried segment number is taken",
                ));
            }
            let name = layout::segment_name(stream, index);
            let binary: BTreeMap<String, ByteString> = record
                .open
                .iter()
                .map(|(seq, frame)| (layout::frame_key(*seq), ByteString(frame.clone())))
                .collect();
            let cm = ConfigMap {
                metadata: self.metadata(name.clone(), stream, KIND_SEGMENT),
                data: Some(BTreeMap::from([
                    ("first".to_owned(), first.to_string()),
                    ("last".to_owned(), last.to_string()),
                ])),
                binary_data: Some(binary),
                ..ConfigMap::default()
            };
            // Never overwrite: a segment of that name may be one another
            // writer is about to commit.
            let created = self.api.create(&PostParams::default(), &cm).await;
            self.count(&created);
            match created {
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    index = index.saturating_add(1);
                }
                Err(e) => return Err(self.backend("create", stream, &name, e)),
            }
        }
        let mut sealed = record;
        sealed.segments.push(SegmentRange { index, first, last });
        sealed.open.clear();
        sealed.next_segment = index.saturating_add(1);
        // Losing this race is fine: the winner's head still holds the
        // frames, and our segment is an unnamed leftover.
        self.cas_head(stream, version, &sealed).await.map(|_| ())
    }

    fn backend_msg(&self, stream: &StreamId, name: &str, msg: &str) -> StoreError {
        StoreError::Backend {
            context: format!(
                "seal of ConfigMap {}/{name} for journal stream {stream}",
                self.namespace
            ),
            source: msg.into(),
        }
    }

    /// Deletes segments of `stream` the head does not name and that no
    /// writer can still commit (numbers below the head's next segment).
    async fn delete_unnamed_segments(&self, stream: &StreamId, record: &HeadRecord) -> Result<()> {
        let selector = format!(
            "{}={},{OBJECT_LABEL}={KIND_SEGMENT}",
            layout::JOURNAL_LABEL,
            stream.as_str()
        );
        let list = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.backend("list segments", stream, "*", e))?;
        for cm in list.items {
            let Some(name) = cm.metadata.name else {
                continue;
            };
            let Some(index) = layout::parse_segment_name(stream, &name) else {
                continue;
            };
            let named = record.segments.iter().any(|s| s.index == index);
            if !named && index < record.next_segment {
                let deleted = self.api.delete(&name, &DeleteParams::default()).await;
                self.count(&deleted);
                match deleted {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(e) => return Err(self.backend("delete", stream, &name, e)),
                }
            }
        }
        Ok(())
    }

    async fn append_now(
        &self,
        stream: &StreamId,
        expected_next: u64,
        events: &[EncodedEvent],
    ) -> Result<Head> {
        check_contiguous(stream, expected_next, events)?;
        let (mut record, mut version) = match self.load_head(stream).await? {
            Some(Loaded { record, version }) => (record, version),
            None => (HeadRecord::empty(), None),
        };
        // A seal that failed after an earlier append is retried before the
        // head grows further towards the object size limit.
        if !events.is_empty() && record.open_bytes() >= self.seal_bytes {
            if let Err(e) = self.seal_if_full(stream).await {
                tracing::warn!(%stream, seq = record.seq, error = %e, "sealing the journal segment failed");
            }
            if let Some(loaded) = self.load_head(stream).await? {
                (record, version) = (loaded.record, loaded.version);
            }
        }
        let head = record.head();
        check_next(stream, head, expected_next)?;
        let Some(last) = events.last() else {
            return Ok(head);
        };
        let mut next = record;
        for event in events {
            next.open.insert(event.seq, event.frame.clone());
        }
        next.seq = last.seq;
        next.hash = last.hash;
        if !self.cas_head(stream, version, &next).await? {
            return Err(self.conflict(stream, expected_next).await);
        }
        if next.open_bytes() >= self.seal_bytes
            && let Err(e) = self.seal_if_full(stream).await
        {
            tracing::warn!(%stream, seq = next.seq, error = %e, "sealing the journal segment failed; retried on the next append");
        }
        Ok(next.head())
    }

    async fn read_now(&self, stream: &StreamId, from: u64, max: usize) -> Result<FrameBatch> {
        let Some(Loaded { record, .. }) = self.load_head(stream).await? else {
            return Ok(FrameBatch::default());
        };
        self.read_at(stream, &record, from, max).await
    }

    /// Up to `max` frames from `from` on, of the journal as `record` (a head
    /// already read) names it: only the sealed segments needed are fetched.
    async fn read_at(
        &self,
        stream: &StreamId,
        record: &HeadRecord,
        from: u64,
        max: usize,
    ) -> Result<FrameBatch> {
        let from = from.max(record.floor).max(1);
        let mut batch = FrameBatch::with_capacity(max.min(1024));
        for segment in record.segments.iter().filter(|s| s.last >= from) {
            if batch.len() >= max {
                return Ok(batch);
            }
            let name = layout::segment_name(stream, segment.index);
            // A segment compacted away since the head was read: its frames
            // are simply absent, as the trait allows.
            let Some(cm) = self.get(stream, &name).await? else {
                continue;
            };
            let frames = cm.binary_data.unwrap_or_default();
            for seq in from.max(segment.first)..=segment.last.min(record.seq) {
                if batch.len() >= max {
                    return Ok(batch);
                }
                if let Some(frame) = frames.get(&layout::frame_key(seq)) {
                    batch.push(seq, &frame.0);
                }
            }
        }
        if from > record.seq {
            return Ok(batch);
        }
        for (seq, frame) in record.open.range(from..=record.seq) {
            if batch.len() >= max {
                break;
            }
            batch.push(*seq, frame);
        }
        Ok(batch)
    }

    async fn get_snapshot_now(&self, stream: &StreamId) -> Result<Option<EncodedSnapshot>> {
        let name = layout::snapshot_name(stream);
        let Some(cm) = self.get(stream, &name).await? else {
            return Ok(None);
        };
        parse_snapshot(&cm)
            .map(Some)
            .map_err(|what| StoreError::CorruptMeta {
                stream: stream.clone(),
                what: format!("ConfigMap {name}: {what}"),
            })
    }

    async fn put_snapshot_now(&self, stream: &StreamId, snapshot: &EncodedSnapshot) -> Result<()> {
        let head = self
            .load_head(stream)
            .await?
            .map_or(Head::EMPTY, |l| l.record.head());
        if snapshot.seq > head.seq {
            return Err(StoreError::SnapshotBeyondHead {
                stream: stream.clone(),
                seq: snapshot.seq,
                head: head.seq,
            });
        }
        let name = layout::snapshot_name(stream);
        let existing = self.get(stream, &name).await?;
        if let Some(stored) = existing.as_ref().and_then(|cm| parse_snapshot(cm).ok())
            && stored.seq > snapshot.seq
        {
            return Err(StoreError::SnapshotRegression {
                stream: stream.clone(),
                seq: snapshot.seq,
                stored: stored.seq,
            });
        }
        let mut metadata = self.metadata(name.clone(), stream, KIND_SNAPSHOT);
        metadata.resource_version = existing.and_then(|cm| cm.metadata.resource_version);
        let cm = ConfigMap {
            metadata,
            data: Some(BTreeMap::from([
                ("seq".to_owned(), snapshot.seq.to_string()),
                ("hash".to_owned(), snapshot.hash.to_hex()),
            ])),
            binary_data: Some(BTreeMap::from([(
                SNAPSHOT_FRAME_KEY.to_owned(),
                ByteString(snapshot.frame.clone()),
            )])),
            ..ConfigMap::default()
        };
        // The precondition keeps a concurrent, newer snapshot from being
        // replaced by this one; the 409 surfaces as a retryable error.
        self.put_versioned(&name, &cm)
            .await
            .map(|_| ())
            .map_err(|e| self.backend("write snapshot", stream, &name, e))
    }

    /// Creates `cm` when it carries no `resourceVersion`, otherwise replaces
    /// it with that version as the precondition (a 409 when it moved).
    async fn put_versioned(&self, name: &str, cm: &ConfigMap) -> kube::Result<ConfigMap> {
        let pp = PostParams::default();
        let written = if cm.metadata.resource_version.is_none() {
            self.api.create(&pp, cm).await
        } else {
            self.api.replace(name, &pp, cm).await
        };
        self.count(&written);
        written
    }

    async fn compact_now(&self, stream: &StreamId, before: u64) -> Result<u64> {
        let covered = self.get_snapshot_now(stream).await?.map_or(0, |s| s.seq);
        if before > covered.saturating_add(1) {
            return Err(StoreError::CompactionBeyondSnapshot {
                stream: stream.clone(),
                before,
                snapshot: covered,
            });
        }
        // Appends may move the head meanwhile; compaction only needs the
        // floor to move, so it reloads and tries again a few times.
        for _ in 0..COMPACT_ATTEMPTS {
            let Some(Loaded { record, version }) = self.load_head(stream).await? else {
                return Ok(0);
            };
            let end = before.min(record.seq.saturating_add(1));
            if end <= record.floor {
                self.delete_unnamed_segments(stream, &record).await?;
                return Ok(0);
            }
            let removed = end.saturating_sub(record.floor);
            let mut next = record;
            next.floor = end;
            next.open = next.open.split_off(&end);
            // Whole segments only: one that straddles the floor stays until
            // everything in it is below; readers skip what is below the floor.
            next.segments.retain(|s| s.last >= end);
            if self.cas_head(stream, version, &next).await? {
                self.delete_unnamed_segments(stream, &next).await?;
                return Ok(removed);
            }
        }
        Err(StoreError::Backend {
            context: format!(
                "compaction of journal stream {stream} in namespace {}",
                self.namespace
            ),
            source: "the head kept changing under the compaction".into(),
        })
    }

    async fn list_streams_now(&self) -> Result<Vec<StreamId>> {
        let selector = format!("{OBJECT_LABEL}={KIND_HEAD}");
        let list = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| StoreError::Backend {
                context: format!("list of journal heads in namespace {}", self.namespace),
                source: Box::new(e),
            })?;
        let mut streams: Vec<StreamId> = list
            .items
            .iter()
            .filter_map(|cm| cm.metadata.labels.as_ref()?.get(layout::JOURNAL_LABEL))
            .filter_map(|name| StreamId::new(name).ok())
            .collect();
        streams.sort();
        streams.dedup();
        Ok(streams)
    }

    async fn remove_last_now(&self, stream: &StreamId, seq: u64, new_head: Head) -> Result<()> {
        let (record, version) = match self.load_head(stream).await? {
            Some(Loaded { record, version }) => (record, version),
            None => (HeadRecord::empty(), None),
        };
        if record.seq != seq || seq == 0 || new_head.seq.saturating_add(1) != seq {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected: seq.saturating_add(1),
                actual: record.head().next_seq(),
            });
        }
        if let Some(snapshot) = self
            .get_snapshot_now(stream)
            .await?
            .filter(|s| s.seq >= seq)
        {
            return Err(StoreError::TruncateBelowSnapshot {
                stream: stream.clone(),
                seq,
                snapshot: snapshot.seq,
            });
        }
        let mut next = record;
        if next.open.remove(&seq).is_none() {
            // The last event was sealed: shrink the segment's range in the
            // head; the frame left in the segment is no longer named.
            if let Some(segment) = next.segments.last_mut().filter(|s| s.last == seq) {
                segment.last = seq.saturating_sub(1);
            }
            next.segments.retain(|s| s.first <= s.last);
        }
        next.seq = new_head.seq;
        next.hash = new_head.hash;
        if !self.cas_head(stream, version, &next).await? {
            return Err(self.conflict(stream, seq.saturating_add(1)).await);
        }
        Ok(())
    }
}

/// The fields of a journal ConfigMap the store reads, deserialized in place
/// of a whole `ConfigMap`: the rest is skipped rather than built, above all
/// `metadata.managedFields`, in which the API server names every frame key
/// of the object once more.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredObject {
    metadata: StoredMeta,
    data: Option<BTreeMap<String, String>>,
    binary_data: Option<BTreeMap<String, ByteString>>,
}

/// See [`StoredObject`].
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredMeta {
    resource_version: Option<String>,
}

impl StoredObject {
    fn into_config_map(self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                resource_version: self.metadata.resource_version,
                ..ObjectMeta::default()
            },
            data: self.data,
            binary_data: self.binary_data,
            ..ConfigMap::default()
        }
    }
}

fn parse_snapshot(cm: &ConfigMap) -> Result<EncodedSnapshot, String> {
    let data = cm.data.as_ref().ok_or("snapshot has no data")?;
    let seq = data
        .get("seq")
        .ok_or("snapshot has no seq")?
        .parse::<u64>()
        .map_err(|e| format!("snapshot seq: {e}"))?;
    let hash = ChainHash::from_hex(data.get("hash").ok_or("snapshot has no hash")?)
        .map_err(|e| format!("snapshot hash: {e}"))?;
    let frame = cm
        .binary_data
        .as_ref()
        .and_then(|b| b.get(SNAPSHOT_FRAME_KEY))
        .ok_or("snapshot has no frame")?
        .0
        .clone();
    Ok(EncodedSnapshot { seq, hash, frame })
}

impl JournalStore for ConfigMapStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected_next: u64,
        events: &[EncodedEvent],
    ) -> Result<Head> {
        self.append_now(stream, expected_next, events).await
    }

    async fn read(&self, stream: &StreamId, from: u64, max: usize) -> Result<FrameBatch> {
        self.read_now(stream, from, max).await
    }

    async fn head(&self, stream: &StreamId) -> Result<Head> {
        Ok(self
            .load_head(stream)
            .await?
            .map_or(Head::EMPTY, |l| l.record.head()))
    }

    async fn put_snapshot(&self, stream: &StreamId, snapshot: &EncodedSnapshot) -> Result<()> {
        self.put_snapshot_now(stream, snapshot).await
    }

    async fn get_snapshot(&self, stream: &StreamId) -> Result<Option<EncodedSnapshot>> {
        self.get_snapshot_now(stream).await
    }

    async fn compact(&self, stream: &StreamId, before: u64) -> Result<u64> {
        self.compact_now(stream, before).await
    }

    async fn list_streams(&self) -> Result<Vec<StreamId>> {
        self.list_streams_now().await
    }

    async fn remove_last(&self, stream: &StreamId, seq: u64, new_head: Head) -> Result<()> {
        self.remove_last_now(stream, seq, new_head).await
    }
}

/// A read-only view of one stream at one read of its head (see
/// [`ConfigMapStore::pin`]).
#[derive(Debug, Clone)]
pub struct PinnedStream {
    store: ConfigMapStore,
    stream: StreamId,
    /// `None`: the stream had no head object.
    record: Option<Arc<HeadRecord>>,
}

impl PinnedStream {
    fn refuse(&self, op: &str, stream: &StreamId) -> StoreError {
        StoreError::Backend {
            context: format!(
                "{op} of journal stream {stream} through a view pinned at the head of {}",
                self.stream
            ),
            source: "a pinned view only reads; write through the ConfigMapStore".into(),
        }
    }
}

impl JournalStore for PinnedStream {
    async fn append(
        &self,
        stream: &StreamId,
        _expected_next: u64,
        _events: &[EncodedEvent],
    ) -> Result<Head> {
        Err(self.refuse("append", stream))
    }

    async fn read(&self, stream: &StreamId, from: u64, max: usize) -> Result<FrameBatch> {
        if *stream != self.stream {
            return self.store.read_now(stream, from, max).await;
        }
        match &self.record {
            Some(record) => self.store.read_at(stream, record, from, max).await,
            None => Ok(FrameBatch::default()),
        }
    }

    async fn head(&self, stream: &StreamId) -> Result<Head> {
        if *stream != self.stream {
            return self.store.head(stream).await;
        }
        Ok(self.record.as_ref().map_or(Head::EMPTY, |r| r.head()))
    }

    async fn put_snapshot(&self, stream: &StreamId, _snapshot: &EncodedSnapshot) -> Result<()> {
        Err(self.refuse("snapshot write", stream))
    }

    async fn get_snapshot(&self, stream: &StreamId) -> Result<Option<EncodedSnapshot>> {
        self.store.get_snapshot_now(stream).await
    }

    async fn compact(&self, stream: &StreamId, _before: u64) -> Result<u64> {
        Err(self.refuse("compaction", stream))
    }

    async fn list_streams(&self) -> Result<Vec<StreamId>> {
        self.store.list_streams_now().await
    }

    async fn remove_last(&self, stream: &StreamId, _seq: u64, _new_head: Head) -> Result<()> {
        Err(self.refuse("removal of the last event", stream))
    }
}
