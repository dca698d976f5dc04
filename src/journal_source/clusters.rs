//! Which journal stream belongs to which ValkeyCluster: listing streams
//! with their cluster's name (from the journal's `valkey.logbook.dev/cluster`
//! label or the live cluster's uid), resolving `--cluster` / `--stream` to
//! the one stream to repair, and spotting journals whose head is gone.
//!
//! Reads only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use logbook_crds::ValkeyCluster;
use logbook_journal::{JournalStore, StreamId};

use super::{Journal, journal_selector};
use crate::cli_error::{Error, Result};
use crate::journal_store::layout::{self, JOURNAL_LABEL, KIND_HEAD, OBJECT_LABEL};
use crate::resources::labels::CLUSTER;

/// One stream and what is known of its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream (a ValkeyCluster's uid, or `operator`).
    pub stream: StreamId,
    /// The cluster's name, from the journal's label or the live cluster.
    pub cluster: Option<String>,
    /// When its head object was created (ConfigMaps only).
    pub created: Option<String>,
}

impl StreamInfo {
    pub(super) fn bare(stream: StreamId) -> Self {
        Self {
            stream,
            cluster: None,
            created: None,
        }
    }

    /// `<stream>`, `<stream> (cluster <name>, created <time>)`.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut about = Vec::new();
        if let Some(cluster) = &self.cluster {
            about.push(format!("cluster {cluster}"));
        }
        if let Some(created) = &self.created {
            about.push(format!("created {created}"));
        }
        if about.is_empty() {
            self.stream.to_string()
        } else {
            format!("{} ({})", self.stream, about.join(", "))
        }
    }
}

impl Journal {
    /// Every stream with a head, with its cluster's name when known; only
    /// the streams of `cluster` when given.
    ///
    /// # Errors
    /// Store and API failures.
    pub async fn streams(&self, cluster: Option<&str>) -> Result<Vec<StreamInfo>> {
        let (namespace, client) = match self {
            Self::Sled { store, .. } => {
                let streams = store
                    .list_streams()
                    .await
                    .map_err(|e| self.store_error(e))?;
                return Ok(streams.into_iter().map(StreamInfo::bare).collect());
            }
            Self::ConfigMaps {
                namespace, client, ..
            } => (namespace, client),
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let heads = api
            .list(&ListParams::default().labels(&format!("{OBJECT_LABEL}={KIND_HEAD}")))
            .await
            .map_err(self.api_error("listing journal heads".to_owned()))?;
        let live = self.live_clusters().await?;
        let mut infos: Vec<StreamInfo> = heads
            .items
            .iter()
            .filter_map(|cm| {
                let labels = cm.metadata.labels.as_ref()?;
                let stream = StreamId::new(labels.get(JOURNAL_LABEL)?.as_str()).ok()?;
                let cluster = labels
                    .get(CLUSTER)
                    .cloned()
                    .or_else(|| live.get(stream.as_str()).cloned());
                Some(StreamInfo {
                    stream,
                    cluster,
                    created: cm
                        .metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string()),
                })
            })
            .filter(|info| cluster.is_none() || info.cluster.as_deref() == cluster)
            .collect();
        infos.sort_by(|a, b| a.stream.cmp(&b.stream));
        infos.dedup_by(|a, b| a.stream == b.stream);
        Ok(infos)
    }

    /// uid → name of the ValkeyClusters of the namespace. None when the
    /// CRD is not installed (journals can outlive it).
    async fn live_clusters(&self) -> Result<BTreeMap<String, String>> {
        let Self::ConfigMaps {
            namespace, client, ..
        } = self
        else {
            return Ok(BTreeMap::new());
        };
        let api: Api<ValkeyCluster> = Api::namespaced(client.clone(), namespace);
        match api.list_metadata(&ListParams::default()).await {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .filter_map(|c| Some((c.metadata.uid?, c.metadata.name?)))
                .collect()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(BTreeMap::new()),
            Err(e) => Err(self.api_error("listing ValkeyClusters".to_owned())(e)),
        }
    }

    /// The one stream to repair: `stream` when given (checked against
    /// `cluster` when both are), else the live cluster's uid, else the one
    /// retained journal labelled with the cluster's name.
    ///
    /// # Errors
    /// [`Error::StreamRequired`] when neither is given (or, for sled,
    /// without `--stream`); [`Error::NoSuchStream`];
    /// [`Error::AmbiguousCluster`]; store and API failures.
    pub async fn resolve(&self, cluster: Option<&str>, stream: Option<&str>) -> Result<StreamInfo> {
        let known = self.streams(None).await?;
        let listing = |infos: &[StreamInfo]| {
            if infos.is_empty() {
                "none".to_owned()
            } else {
                infos
                    .iter()
                    .map(StreamInfo::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let Some(stream) = stream else {
            let Some(name) = cluster else {
                return Err(Error::StreamRequired {
                    journal: self.place(),
                    candidates: listing(&known),
                });
            };
            let mut found = self.cluster_candidates(name, &known).await?;
            return match found.len() {
                1 => found.pop().ok_or_else(|| self.no_such(name.to_owned())),
                _ => Err(Error::AmbiguousCluster {
                    journal: self.place(),
                    cluster: name.to_owned(),
                    candidates: listing(&found),
                }),
            };
        };
        let stream = StreamId::new(stream)
            .map_err(|e| self.no_such(format!("{stream:?} is not a valid stream id: {e}")))?;
        if let Some(name) = cluster {
            // The live cluster's stream, or one retained under its name
            // (a recreated cluster's older journal is chosen this way).
            let labelled: Vec<StreamInfo> = known
                .iter()
                .filter(|i| i.cluster.as_deref() == Some(name))
                .cloned()
                .collect();
            let live = self.live_uid(name).await?;
            if live.as_deref() != Some(stream.as_str())
                && !labelled.iter().any(|i| i.stream == stream)
            {
                return Err(self.no_such(format!(
                    "stream {stream} is not a journal of cluster {name} (its journals: {})",
                    listing(&labelled)
                )));
            }
        }
        if let Some(info) = known.into_iter().find(|i| i.stream == stream) {
            return Ok(info);
        }
        match self.object_count(&stream).await? {
            0 => Err(self.no_such(format!("no journal of stream {stream}"))),
            // The head is gone but other objects remain: `head_problem`
            // reports it rather than calling the stream empty.
            _ => Ok(StreamInfo {
                cluster: cluster.map(str::to_owned),
                ..StreamInfo::bare(stream)
            }),
        }
    }

    /// The journals of cluster `name`: the live cluster's (by uid), else
    /// those labelled with its name. Never empty.
    async fn cluster_candidates(
        &self,
        name: &str,
        known: &[StreamInfo],
    ) -> Result<Vec<StreamInfo>> {
        if !matches!(self, Self::ConfigMaps { .. }) {
            return Err(self.no_such(format!(
                "--cluster {name} needs --namespace: a sled journal does not know cluster names"
            )));
        }
        let labelled: Vec<StreamInfo> = known
            .iter()
            .filter(|i| i.cluster.as_deref() == Some(name))
            .cloned()
            .collect();
        if let Some(uid) = self.live_uid(name).await? {
            let stream = StreamId::new(uid.as_str()).map_err(|e| {
                self.no_such(format!(
                    "ValkeyCluster {name} has uid {uid:?}, not a stream id: {e}"
                ))
            })?;
            if let Some(info) = known.iter().find(|i| i.stream == stream) {
                return Ok(vec![info.clone()]);
            }
            if self.object_count(&stream).await? > 0 {
                return Ok(vec![StreamInfo {
                    cluster: Some(name.to_owned()),
                    ..StreamInfo::bare(stream)
                }]);
            }
            let others = labelled
                .iter()
                .map(StreamInfo::describe)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(self.no_such(if others.is_empty() {
                format!("ValkeyCluster {name} (uid {uid}) has no journal here")
            } else {
                format!(
                    "ValkeyCluster {name} (uid {uid}) has no journal here; journals retained \
                     from earlier clusters of that name: {others} (choose one with --stream)"
                )
            }));
        }
        if labelled.is_empty() {
            return Err(self.no_such(format!(
                "no ValkeyCluster {name} and no journal labelled {CLUSTER}={name}"
            )));
        }
        Ok(labelled)
    }

    /// The uid of the live ValkeyCluster `name`, if it exists.
    async fn live_uid(&self, name: &str) -> Result<Option<String>> {
        let Self::ConfigMaps {
            namespace, client, ..
        } = self
        else {
            return Ok(None);
        };
        let api: Api<ValkeyCluster> = Api::namespaced(client.clone(), namespace);
        match api.get_metadata_opt(name).await {
            Ok(found) => Ok(found.and_then(|c| c.metadata.uid)),
            // No CRD: the cluster can only be a retained journal's.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(e) => Err(self.api_error(format!("reading ValkeyCluster {name}"))(e)),
        }
    }

    fn no_such(&self, what: String) -> Error {
        Error::NoSuchStream {
            journal: self.place(),
            what,
        }
    }

    /// How many ConfigMaps carry the stream's journal label (0 for sled).
    async fn object_count(&self, stream: &StreamId) -> Result<usize> {
        let Self::ConfigMaps {
            namespace, client, ..
        } = self
        else {
            return Ok(0);
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        api.list_metadata(&ListParams::default().labels(&journal_selector(stream)))
            .await
            .map(|l| l.items.len())
            .map_err(self.api_error(format!("listing the journal objects of stream {stream}")))
    }

    /// Streams whose objects remain but whose head ConfigMap is gone (a
    /// store lists streams by their heads, so it never sees these), with
    /// how many objects remain; only `cluster`'s when given.
    ///
    /// # Errors
    /// API failures.
    pub async fn headless(&self, cluster: Option<&str>) -> Result<Vec<(StreamInfo, usize)>> {
        let Self::ConfigMaps {
            namespace, client, ..
        } = self
        else {
            return Ok(Vec::new());
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let objects = api
            .list_metadata(&ListParams::default().labels(JOURNAL_LABEL))
            .await
            .map_err(self.api_error("listing journal objects".to_owned()))?;
        // stream → (has a head, objects, cluster label)
        let mut seen: BTreeMap<String, (bool, usize, Option<String>)> = BTreeMap::new();
        for object in &objects.items {
            let Some(labels) = object.metadata.labels.as_ref() else {
                continue;
            };
            let Some(stream) = labels.get(JOURNAL_LABEL) else {
                continue;
            };
            let entry = seen.entry(stream.clone()).or_default();
            entry.0 |= labels.get(OBJECT_LABEL).map(String::as_str) == Some(KIND_HEAD);
            entry.1 = entry.1.saturating_add(1);
            if entry.2.is_none() {
                entry.2 = labels.get(CLUSTER).cloned();
            }
        }
        Ok(seen
            .into_iter()
            .filter(|(_, (has_head, _, _))| !has_head)
            .filter(|(_, (_, _, c))| cluster.is_none() || c.as_deref() == cluster)
            .filter_map(|(stream, (_, count, c))| {
                Some((
                    StreamInfo {
                        cluster: c,
                        ..StreamInfo::bare(StreamId::new(stream).ok()?)
                    },
                    count,
                ))
            })
            .collect())
    }

    /// A problem with the head object itself that the store cannot report:
    /// a missing head while other objects of the journal remain (a store
    /// would call that stream empty).
    ///
    /// # Errors
    /// API failures.
    pub async fn head_problem(&self, stream: &StreamId) -> Result<Option<String>> {
        let Self::ConfigMaps {
            namespace, client, ..
        } = self
        else {
            return Ok(None);
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let name = layout::head_name(stream);
        let head = api
            .get_metadata_opt(&name)
            .await
            .map_err(self.api_error(format!("reading ConfigMap {name}")))?;
        if head.is_some() {
            return Ok(None);
        }
        let others = self.object_count(stream).await?;
        Ok((others > 0).then(|| {
            format!(
                "ConfigMap {name} does not exist, but {others} other object(s) of the journal do"
            )
        }))
    }
}
