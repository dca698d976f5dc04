//! Version `v1alpha1` of the `valkey.logbook.dev` API: the [`ValkeyCluster`]
//! resource, its defaults and its validation.
//!
//! Files, one concern each: `spec.rs` (the resource and `effective_*`
//! helpers), `topology.rs`, `storage.rs`, `security.rs` (auth, TLS),
//! `failover.rs` (probes, Sentinel), `policy.rs` (PDB, NetworkPolicy),
//! `observability.rs` (metrics, journal), `status.rs`, `user.rs` (the
//! [`ValkeyUser`] resource, its ACL rules and their validation), `defaults.rs` (every
//! default and bound), `schema.rs` (hand-written schema fragments) and
//! `validation/`.
//!
//! Rules enforced twice, on purpose: the CRD schema (ranges, enums and
//! `x-kubernetes-validations` CEL rules) lets a real API server refuse a bad
//! object at `kubectl apply`; [`validate`] states the same rules and more
//! (owned config directives, reserved labels, Secret name clashes, request
//! vs limit) for every path the schema does not cover. Note that CEL
//! transition rules (those reading `oldSelf`) run only on update, and on an
//! optional field only when both the old and the new object set it.

mod backup;
pub mod defaults;
mod external;
mod failover;
mod observability;
mod operator_defaults;
mod policy;
mod schema;
mod security;
mod spec;
mod standby;
mod status;
mod storage;
mod topology;
mod upgrade;
mod user;
pub mod validation;

pub use backup::{
    ACCESS_KEY_ID_KEY, BackupDestination, BackupPhase, BackupRetention, BackupShardStatus,
    BackupSpec, ContinuousArchive, DEFAULT_REGION, ENDPOINT_KEY, KEEP_LAST, RestoreSource,
    SCHEDULED_LABEL, SECRET_ACCESS_KEY_KEY, SESSION_TOKEN_KEY, ValkeyBackup, ValkeyBackupSpec,
    ValkeyBackupStatus, next_fire_ms, parse_point_in_time, parse_schedule,
};
pub use external::{
    ChosenNodePort, ExternalAccessSpec, ExternalAccessType, ExternalNodePorts, NodePortService,
    PodNodePorts,
};
pub use failover::{FailoverSpec, SentinelSpec, majority};
pub use observability::{JournalSpec, MetricsSpec};
pub use operator_defaults::{
    CLUSTER_OWN_FIELDS, DEFAULTS_NAME, MAX_CLUSTERS_ROLLING, ValkeyOperatorDefaults,
    ValkeyOperatorDefaultsSpec, ValkeyOperatorDefaultsStatus, applicable, spec_fields,
    validate_defaults,
};
pub use policy::{NetworkPolicySpec, PodDisruptionBudgetSpec};
pub use schema::{DNS_SUBDOMAIN_PATTERN, QUANTITY_PATTERN, SECRET_KEY_PATTERN};
pub use security::{
    AuthSpec, CertSource, IssuerRef, SecretKeyRef, TlsSpec, generated_password_secret,
};
pub use spec::{
    ImagePullPolicy, ValkeyCluster, ValkeyClusterSpec, WAKE_TIMEOUT_SECONDS,
    WAKE_TIMEOUT_SECONDS_MAX, WAKE_TIMEOUT_SECONDS_MIN, connection_secret_name,
};
pub use standby::{
    MAX_LAG_BYTES, ReplicateFrom, SOURCE_METRICS_KEY, SOURCE_REPLICATION_KEY, SourceCluster,
    SourceEndpoint,
};
pub use status::{
    ArchiveStatus, CONDITION_CERTIFICATE_READY, CONDITION_DEGRADED, CONDITION_JOURNAL_HEALTHY,
    CONDITION_PROGRESSING, CONDITION_READY, CONDITION_SENTINEL_QUORUM, CONDITION_SPEC_VALID,
    CONDITION_TYPES, ClusterBackupStatus, ClusterDefaultsStatus, ClusterPhase, ClusterTlsStatus,
    EndpointsStatus, FailoverRecord, FieldSource, JournalStatus, ReshardStatus, RestoreStatus,
    SentinelStatus, ShardStatus, SlotRange, StandbyStatus, UpgradeStatus, ValkeyClusterStatus,
};
pub use storage::{Persistence, StorageSpec};
pub use topology::Topology;
pub use upgrade::{
    CANARY_SECONDS, CANARY_SECONDS_MAX, FAIL_BACK_AFTER_SECONDS, Placement, UpgradeSpec,
};
pub use user::{
    ACL_CATEGORIES, INTERNAL_USER_PREFIX, UserPhase, ValkeyUser, ValkeyUserSpec, ValkeyUserStatus,
    check_command_rule, check_pattern, check_username, validate_user,
};
pub use validation::{
    FieldError, FieldErrorKind, MAX_CLUSTER_NAME, MAX_SENTINEL_CLUSTER_NAME, validate,
    validate_backup, validate_name, validate_name_for_spec, validate_name_for_topology,
};
