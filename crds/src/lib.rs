//! The `ValkeyCluster` API of Logbook: types, defaults, validation, and the
//! generated CRD YAML.
//!
//! This crate owns the contract between users and the operator: what a
//! `ValkeyCluster` may say ([`v1alpha1`]), what it means when it says nothing
//! (defaults and `effective_*` helpers), what is refused and why
//! ([`validate`]), and the CRD a cluster admin installs ([`render_crds_yaml`]).
//! It depends on no Kubernetes client and performs no I/O.
//!
//! The most used items of the served version are re-exported here.

pub mod conversion;
pub mod crdgen;
pub mod hub;
pub mod layers;
pub mod quantity;
pub mod reference;
pub mod v1alpha1;
pub mod v1beta1;

pub use crdgen::{CrdGenError, crds, render_crds_yaml};
/// The ValkeyCluster the operator works on: v1alpha1's spec, spoken at v1beta1.
pub use hub::ValkeyCluster;
pub use quantity::{ParsedQuantity, QuantityError, parse_quantity};
pub use v1alpha1::{
    AuthSpec, BackupDestination, BackupPhase, BackupRetention, BackupSpec, CLUSTER_OWN_FIELDS,
    CertSource, ChosenNodePort, ClusterDefaultsStatus, ClusterPhase, ContinuousArchive,
    DEFAULTS_NAME, ExternalAccessSpec, ExternalAccessType, ExternalNodePorts, FailoverSpec,
    FieldError, FieldErrorKind, FieldSource, ImagePullPolicy, IssuerRef, JournalSpec,
    MAX_SENTINEL_CLUSTER_NAME, MetricsSpec, NetworkPolicySpec, NodePortService, Persistence,
    Placement, PodDisruptionBudgetSpec, PodNodePorts, ReplicateFrom, RestoreSource, SecretKeyRef,
    SentinelSpec, SourceCluster, SourceEndpoint, StorageSpec, TlsSpec, Topology, UpgradeSpec,
    UserPhase, ValkeyBackup, ValkeyBackupSpec, ValkeyBackupStatus, ValkeyClusterSpec,
    ValkeyClusterStatus, ValkeyOperatorDefaults, ValkeyOperatorDefaultsSpec,
    ValkeyOperatorDefaultsStatus, ValkeyUser, ValkeyUserSpec, ValkeyUserStatus, applicable,
    connection_secret_name, validate, validate_backup, validate_defaults, validate_name,
    validate_name_for_spec, validate_name_for_topology, validate_user,
};
