//! Where a journal lives for the journal and replay commands (`logbook
//! journal`, `logbook replay`, `kubectl valkey replay`): a local sled
//! directory or the ConfigMaps of one namespace; where in the objects a
//! frame sits; what a person can do when no repair applies. Which stream is
//! which cluster's is `clusters.rs`.
//!
//! Everything here reads. The one store that writes, [`Journal::repair_store`],
//! is handed to `repair.rs`; it writes the head back with the labels and the
//! owner it already carries, so a repair neither orphans a journal from its
//! cluster nor hides a retained one from `--cluster`.

mod clusters;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use logbook_journal::{Durability, ProblemKind, SledStore, StoreError, StreamId};

pub use clusters::StreamInfo;

use crate::cli_error::{Error, Result};
use crate::journal_store::layout::{self, JOURNAL_LABEL, OBJECT_LABEL};
use crate::journal_store::{AnyStore, ConfigMapStore};

/// Which journal a command reads: `--dir` or `--namespace`.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// A local sled journal directory.
    #[arg(
        long,
        required_unless_present = "namespace",
        conflicts_with_all = ["namespace", "kubeconfig", "cluster"]
    )]
    pub dir: Option<PathBuf>,
    /// The namespace whose ConfigMaps hold the journals (the clusters'
    /// namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// The kubeconfig to use with `--namespace` (default: `KUBECONFIG`,
    /// `~/.kube/config`, or the in-cluster service account).
    #[arg(long, requires = "namespace")]
    pub kubeconfig: Option<PathBuf>,
    /// Only the journals of this ValkeyCluster: found by its uid, or, once
    /// the cluster is deleted, by the `valkey.logbook.dev/cluster` label of
    /// a retained journal.
    #[arg(long, requires = "namespace")]
    pub cluster: Option<String>,
}

/// An opened journal.
// One per command: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Journal {
    /// A local sled directory.
    Sled {
        /// The directory given.
        dir: PathBuf,
        /// The store over it.
        store: SledStore,
    },
    /// The ConfigMaps of one namespace.
    ConfigMaps {
        /// The namespace given.
        namespace: String,
        /// The kubeconfig given, if any (repeated in printed commands).
        kubeconfig: Option<PathBuf>,
        /// The API client.
        client: kube::Client,
        /// A store over the namespace (reads only; see `repair_store`).
        store: ConfigMapStore,
    },
}

impl Journal {
    /// Opens the journal `source` names. A sled directory that does not
    /// exist is refused, never created.
    ///
    /// # Errors
    /// [`Error::NoJournal`], [`Error::Journal`]; client configuration errors.
    pub async fn open(source: &SourceArgs) -> Result<Self> {
        match (&source.dir, &source.namespace) {
            (Some(dir), _) => {
                if !dir.is_dir() {
                    return Err(Error::NoJournal(dir.clone()));
                }
                let store =
                    SledStore::open(dir, Durability::Flush).map_err(|source| Error::Journal {
                        dir: dir.clone(),
                        source,
                    })?;
                Ok(Self::Sled {
                    dir: dir.clone(),
                    store,
                })
            }
            (None, Some(namespace)) => {
                let client = crate::kube_client::client(source.kubeconfig.as_ref()).await?;
                let store = ConfigMapStore::new(client.clone(), namespace);
                Ok(Self::ConfigMaps {
                    namespace: namespace.clone(),
                    kubeconfig: source.kubeconfig.clone(),
                    client,
                    store,
                })
            }
            (None, None) => Err(Error::NoSuchStream {
                journal: "no journal given".to_owned(),
                what: "name one with --dir <sled dir> or --namespace <namespace>".to_owned(),
            }),
        }
    }

    /// Where the journal is, for messages.
    #[must_use]
    pub fn place(&self) -> String {
        match self {
            Self::Sled { dir, .. } => format!("sled journal at {}", dir.display()),
            Self::ConfigMaps { namespace, .. } => {
                format!("ConfigMap journals in namespace {namespace}")
            }
        }
    }

    /// A store over the journal, for reading.
    #[must_use]
    pub fn store(&self) -> AnyStore {
        match self {
            Self::Sled { store, .. } => AnyStore::Sled(store.clone()),
            Self::ConfigMaps { store, .. } => AnyStore::ConfigMap(store.clone()),
        }
    }

    /// Wraps a store failure with where the journal is.
    #[must_use]
    pub fn store_error(&self, source: StoreError) -> Error {
        match self {
            Self::Sled { dir, .. } => Error::Journal {
                dir: dir.clone(),
                source,
            },
            Self::ConfigMaps { namespace, .. } => Error::ConfigMapJournal {
                namespace: namespace.clone(),
                source,
            },
        }
    }

    fn api_error(&self, what: String) -> impl FnOnce(kube::Error) -> Error {
        let namespace = match self {
            Self::ConfigMaps { namespace, .. } => namespace.clone(),
            Self::Sled { .. } => String::new(),
        };
        move |source| Error::JournalApi {
            namespace,
            what,
            source,
        }
    }

    /// Where the problem `kind` at `seq` sits: the ConfigMap and key of the
    /// frame, the snapshot object, or (when `in_head_record`, or for a
    /// `HeadMismatch`) the head's fields. `None` for sled.
    pub async fn location(
        &self,
        stream: &StreamId,
        seq: u64,
        kind: ProblemKind,
        in_head_record: bool,
    ) -> Option<String> {
        let Self::ConfigMaps { store, .. } = self else {
            return None;
        };
        let head = layout::head_name(stream);
        if in_head_record {
            return Some(format!("ConfigMap {head} (data seq and hash)"));
        }
        Some(match kind {
            ProblemKind::BadSnapshot => format!(
                "ConfigMap {} key {}",
                layout::snapshot_name(stream),
                layout::SNAPSHOT_FRAME_KEY
            ),
            ProblemKind::HeadMismatch => format!("ConfigMap {head} (data seq and hash)"),
            ProblemKind::BadCrc
            | ProblemKind::BadLength
            | ProblemKind::TornTail
            | ProblemKind::BadHashLink
            | ProblemKind::Undecodable
            | ProblemKind::SeqGap => match store.locate(stream, seq).await {
                Ok(Some((name, key))) => format!("ConfigMap {name} key {key}"),
                Ok(None) | Err(_) => format!("ConfigMap {head} (data seq and segments)"),
            },
        })
    }

    /// A store for repairing `stream`. For ConfigMaps it carries the head's
    /// labels and owner reference: the store rewrites the head's metadata
    /// on every write, and without them a repair would orphan the journal
    /// from its cluster (or hide a retained one from `--cluster`).
    ///
    /// # Errors
    /// API failures.
    pub async fn repair_store(&self, stream: &StreamId) -> Result<AnyStore> {
        let Self::ConfigMaps {
            namespace,
            client,
            store,
            ..
        } = self
        else {
            return Ok(self.store());
        };
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let name = layout::head_name(stream);
        let Some(head) = api
            .get_metadata_opt(&name)
            .await
            .map_err(self.api_error(format!("reading ConfigMap {name}")))?
        else {
            return Ok(self.store());
        };
        let labels: BTreeMap<String, String> = head
            .metadata
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != JOURNAL_LABEL && k != OBJECT_LABEL)
            .collect();
        let mut repair = store.clone().with_labels(labels);
        if let Some(owner) = head
            .metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .next()
        {
            repair = repair.with_owner(owner);
        }
        Ok(AnyStore::ConfigMap(repair))
    }

    /// What a person can do when no repair applies.
    #[must_use]
    pub fn manual_options(&self, stream: &StreamId) -> Vec<String> {
        match self {
            Self::ConfigMaps { namespace, .. } => vec![
                format!(
                    "restore the ConfigMaps labelled {} in namespace {namespace} from a backup, \
                     then run this command again",
                    journal_selector(stream)
                ),
                "or delete the journal so the operator starts a fresh one, which loses the \
                 stream's whole history (stop the operator first):"
                    .to_owned(),
                format!(
                    "  kubectl delete configmap --namespace {namespace} -l {}",
                    journal_selector(stream)
                ),
            ],
            Self::Sled { dir, .. } => vec![
                format!(
                    "restore {} from a backup, then run this command again",
                    dir.display()
                ),
                format!(
                    "or stop the operator and move the directory aside (mv {0} {0}.damaged) so \
                     it starts a fresh journal, which loses the history of every stream in it",
                    dir.display()
                ),
            ],
        }
    }

    /// The command that applies `repair` to `stream`.
    #[must_use]
    pub fn apply_command(&self, stream: &StreamId, repair: &str) -> String {
        match self {
            Self::Sled { dir, .. } => format!(
                "logbook journal repair --dir {} --stream {stream} --apply {repair}",
                dir.display()
            ),
            Self::ConfigMaps {
                namespace,
                kubeconfig,
                ..
            } => format!(
                "logbook journal repair{} --namespace {namespace} --stream {stream} --apply {repair}",
                kubeconfig
                    .as_deref()
                    .map(|k: &Path| format!(" --kubeconfig {}", k.display()))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The label selector of every object of `stream`'s journal.
fn journal_selector(stream: &StreamId) -> String {
    format!("{JOURNAL_LABEL}={stream}")
}
