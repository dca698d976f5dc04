//! The operator's error type.

use logbook_journal::reader::ReadError;
use logbook_journal::writer::WriterError;

use crate::actuate::ActError;

/// Why a reconcile, a probe round or the operator itself failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The journal could not be appended to (retryable or fatal per the
    /// store's classification).
    #[error("cluster {cluster}: journal append failed: {source}")]
    Append {
        /// `namespace/name`.
        cluster: String,
        /// The writer's error.
        #[source]
        source: Box<WriterError>,
    },
    /// The cluster's journal refused a batch: back-pressure, a conflict
    /// with another writer (this instance is fenced), or a store failure.
    #[error("cluster {cluster}: journal: {source}")]
    Journal {
        /// `namespace/name`.
        cluster: String,
        /// What went wrong.
        #[source]
        source: Box<super::journal::JournalError>,
    },
    /// This instance does not lead (or was fenced): it does not write.
    #[error("cluster {cluster}: not written: this instance does not lead")]
    NotLeading {
        /// `namespace/name`.
        cluster: String,
    },
    /// The journal could not be read back (corrupt or unreadable): fatal
    /// for this cluster until repaired with `logbook journal verify`.
    #[error("cluster {cluster}: journal unreadable: {source}")]
    Load {
        /// `namespace/name`.
        cluster: String,
        /// The reader's error.
        #[source]
        source: Box<ReadError>,
    },
    /// The journal directory could not be opened.
    #[error("cannot open the journal at {path}: {source}")]
    Store {
        /// The directory.
        path: String,
        /// The store's error.
        #[source]
        source: logbook_journal::StoreError,
    },
    /// A Kubernetes API call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// An action failed outside an intent (reading the password).
    #[error(transparent)]
    Act(#[from] ActError),
    /// The cluster's uid is not a valid journal stream id.
    #[error("cluster {cluster}: no journal stream for uid: {reason}")]
    StreamId {
        /// `namespace/name`.
        cluster: String,
        /// Why the id was refused.
        reason: String,
    },
    /// The object lacks a name, namespace or uid.
    #[error("ValkeyCluster without name, namespace or uid")]
    MissingMeta,
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The client could not be configured.
    #[error("kubeconfig: {0}")]
    Config(String),
    /// A deleted cluster's objects are not all deleted yet (the intent
    /// failed, and its failure is journaled, or waits out a back-off):
    /// its finalizer stays until they are.
    #[error("cluster {cluster}: deleting: its owned objects are not all deleted yet")]
    Deleting {
        /// `namespace/name`.
        cluster: String,
    },
    /// Something the reconcile needs is not known yet (the defaults not
    /// listed): it is tried again.
    #[error("not ready: {0}")]
    NotReady(String),
    /// A ValkeyCluster read raw does not convert to the version the
    /// operator works on (a field of a type its schema does not allow).
    #[error("{what}: {source}")]
    Conversion {
        /// What was being read, with the cluster's name.
        what: String,
        /// The conversion's refusal.
        #[source]
        source: Box<logbook_crds::conversion::ConversionError>,
    },
}

impl OperatorError {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Append { .. } => "journal_append",
            Self::Journal { .. } => "journal",
            Self::NotLeading { .. } => "not_leading",
            Self::Load { .. } => "journal_load",
            Self::Store { .. } => "journal_store",
            Self::Kube { .. } => "kube",
            Self::Act(_) => "act",
            Self::StreamId { .. } => "stream_id",
            Self::MissingMeta => "missing_meta",
            Self::Finalizer(_) => "finalizer",
            Self::Config(_) => "config",
            Self::Deleting { .. } => "deleting",
            Self::NotReady(_) => "not_ready",
            Self::Conversion { .. } => "conversion",
        }
    }
}
