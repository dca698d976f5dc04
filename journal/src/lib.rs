//! Logbook's journal: the append-only memory of the operator.
//!
//! - [`event`], [`intent`], [`policy`]: the persisted catalog (facts in the
//!   past tense, orders in the imperative).
//! - [`envelope`], [`chain`], [`codec`]: how one event becomes a checksummed,
//!   hash-chained frame (the only bincode user is `codec`).
//! - [`store`]: the `JournalStore` trait and its sled and memory backends.
//! - [`writer`], [`reader`], [`snapshot`], [`verify`]: appending with a
//!   tracked head, folding streams into projections, snapshots, integrity
//!   checks and torn-tail repair.
//! - [`projection`]: `ClusterState` and its total `apply`.
//!
//! Nothing here decides anything, and nothing here talks to Kubernetes.

pub mod backup;
pub mod chain;
pub mod cluster;
pub mod codec;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod envelope;
pub mod event;
pub mod external;
pub mod failover;
pub mod ids;
pub mod intent;
pub mod policy;
pub mod projection;
pub mod reader;
pub mod ready;
pub mod sentinel;
pub mod snapshot;
pub mod store;
pub mod time;
pub mod users;
pub mod verify;
pub mod writer;

pub use backup::{
    ArchiveChain, BackupRecord, BackupSource, BackupTarget, MAX_BACKUP_ATTEMPTS, PointInTimePlan,
    PointInTimeShard, RestorePlan, RestoreShard, ShardUpload,
};
pub use cluster::{
    ClusterNodeReport, ClusterPeer, MigrationPhase, MigrationSide, PeerHealth, SlotMigrationJob,
    SlotPeer,
};
pub use envelope::Envelope;
pub use event::{CertificateRecord, Event, LinkStatus, PodPhase, Reachability, Role, SpecProblem};
pub use external::{ExternalEndpoint, ExternalPart, split_announced};
pub use failover::FailoverKind;
pub use ids::{ChainHash, ReplId, SpecFingerprint, StreamId};
pub use intent::{
    Candidate, ClusterFailoverMode, Intent, PlannedIntent, Reason, ReasonCode, SlotRange,
};
pub use policy::Policy;
pub use projection::ClusterState;
pub use sentinel::{
    HIBERNATE_DOWN_AFTER_MS, HIBERNATE_PAUSE_MS, SENTINEL_INFO_PERIOD_MS, SentinelKnown,
    SentinelMonitorReport, SentinelReport, SentinelSettings, SentinelSwitch, SwitchCandidate,
};
pub use store::memory::MemoryStore;
#[cfg(feature = "sled")]
pub use store::sled::{Durability, SledStore};
pub use store::{EncodedEvent, EncodedSnapshot, FrameBatch, Head, JournalStore, StoreError};
pub use time::Timestamp;
pub use users::{
    AclDigest, CLUSTER_PASSWORD, ConnectionState, INTERNAL_USER, NodeUsers, Rotation,
    UserConnection, UserRecord, UserWant,
};
pub use verify::{ProblemKind, VerifyProblem, VerifyReport};
pub use writer::{NewEvent, StreamWriter};
