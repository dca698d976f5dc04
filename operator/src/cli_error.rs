//! The command line's shared error type: every subcommand module, and the
//! library modules the subcommands share (`kube_client`, `journal_source`,
//! `local_cluster`), return it, so no subcommand depends on `cli.rs` or on
//! another subcommand for its errors. `cli.rs` re-exports it.

use std::path::PathBuf;

/// Errors of the command line. Each says what was asked and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something it does not say enough about.
    #[error("{0}")]
    Usage(String),
    /// The CRDs could not be rendered as YAML.
    #[error("cannot render the CustomResourceDefinitions: {0}")]
    RenderCrds(String),
    /// Writing the command's output failed (a closed pipe, a full disk).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The journal directory does not exist (it is never created by a read).
    #[error("no journal at {0}: the directory does not exist")]
    NoJournal(PathBuf),
    /// The journal could not be opened or read.
    #[error("journal at {dir}: {source}")]
    Journal {
        /// The journal directory given on the command line.
        dir: PathBuf,
        /// What the store reported.
        #[source]
        source: logbook_journal::StoreError,
    },
    /// `logbook local` failed: the server could not start or its
    /// kubeconfig could not be written.
    #[error("{0}")]
    Local(String),
    /// `logbook-operator restore-fetch` could not load the pod's shard: the plan,
    /// the bucket or the object (what and why, never a credential).
    #[error("restore: {0}")]
    RestoreFetch(String),
    /// The async runtime for store access could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Verification found a broken frame or hash link.
    #[error("journal at {dir}: {problems} stream(s) failed verification")]
    VerifyFailed {
        /// The journal directory given on the command line.
        dir: PathBuf,
        /// How many streams have a problem.
        problems: usize,
    },
    /// A journal in ConfigMaps could not be read or written.
    #[error("journal in namespace {namespace}: {source}")]
    ConfigMapJournal {
        /// The namespace given on the command line.
        namespace: String,
        /// What the store reported.
        #[source]
        source: logbook_journal::StoreError,
    },
    /// A read the journal commands need failed at the Kubernetes API.
    #[error("namespace {namespace}: {what}: {source}")]
    JournalApi {
        /// The namespace given on the command line.
        namespace: String,
        /// What was being read.
        what: String,
        /// The API's error.
        #[source]
        source: kube::Error,
    },
    /// Verification of the ConfigMap journals of a namespace found problems.
    #[error("journals in namespace {namespace}: {problems} stream(s) failed verification")]
    VerifyFailedInNamespace {
        /// The namespace given on the command line.
        namespace: String,
        /// How many streams have a problem.
        problems: usize,
    },
    /// No journal matches the cluster or stream asked for.
    #[error("{journal}: {what}")]
    NoSuchStream {
        /// Where the journal was looked for.
        journal: String,
        /// What was asked and not found.
        what: String,
    },
    /// More than one retained journal carries the cluster's name.
    #[error(
        "{journal}: more than one journal belongs to a cluster named {cluster}: {candidates}; choose one with --stream"
    )]
    AmbiguousCluster {
        /// Where the journals are.
        journal: String,
        /// The cluster name given.
        cluster: String,
        /// The candidate streams, described.
        candidates: String,
    },
    /// `journal repair` needs to know which stream to repair.
    #[error(
        "{journal}: name the stream with --stream <id> (or, for ConfigMaps, --cluster <name>); streams: {candidates}"
    )]
    StreamRequired {
        /// Where the journal is.
        journal: String,
        /// The streams there, described.
        candidates: String,
    },
    /// No safe repair applies; the output says what a person can do.
    #[error(
        "{journal}: stream {stream}: no safe repair applies (restore from a backup or start a fresh journal, as printed)"
    )]
    NoSafeRepair {
        /// Where the journal is.
        journal: String,
        /// The stream.
        stream: String,
    },
    /// `--apply` named a repair that does not apply to the stream now.
    #[error(
        "{journal}: stream {stream}: repair {asked} does not apply now (applicable: {applicable})"
    )]
    RepairNotApplicable {
        /// Where the journal is.
        journal: String,
        /// The stream.
        stream: String,
        /// The repair asked for.
        asked: String,
        /// The repairs that do apply.
        applicable: String,
    },
    /// A repair failed; `progress` says how far it got.
    #[error("{journal}: stream {stream}: {repair} failed ({progress}): {source}")]
    RepairFailed {
        /// Where the journal is.
        journal: String,
        /// The stream.
        stream: String,
        /// The repair.
        repair: String,
        /// What had been changed when it failed.
        progress: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// After a repair the stream still fails verification (or its
    /// projection does not load); the output lists the next repair.
    #[error("{journal}: stream {stream} is still damaged after {repair}: {problem}")]
    StillBroken {
        /// Where the journal is.
        journal: String,
        /// The stream.
        stream: String,
        /// The repair performed.
        repair: String,
        /// The problem left.
        problem: String,
    },
    /// A replay verb could not read its journal, or was given a bad value.
    #[error(transparent)]
    Replay(#[from] logbook_replay::ReplayError),
    /// `replay audit` found problems (after printing them).
    #[error("audit: {findings} finding(s)")]
    AuditFindings {
        /// How many.
        findings: usize,
    },
    /// `replay verify` found a broken link (after printing it).
    #[error("stream {stream}: the journal does not verify from seq {seq}")]
    ReplayBroken {
        /// The stream.
        stream: String,
        /// The first broken seq.
        seq: u64,
    },
}

impl Error {
    /// The process exit code: 2 when a replay verb could not read its
    /// input as a journal, 1 for every other failure.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Replay(e) => e.exit_code(),
            _ => 1,
        }
    }

    /// Prints the whole chain (the command's context, then each cause) to
    /// stderr after `program: `, and returns the exit code.
    pub fn report(&self, program: &str) -> std::process::ExitCode {
        let mut message = format!("{program}: {self}");
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        eprintln!("{message}");
        std::process::ExitCode::from(self.exit_code())
    }
}

/// `pub type Result` in the kube-runtime style.
pub type Result<T, E = Error> = std::result::Result<T, E>;
