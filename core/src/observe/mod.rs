//! Observers: turn what Kubernetes and Valkey show into journal events,
//! **only where it differs from what the projection already believes**
//! (edge-triggered), so a converged, idle cluster appends nothing.
//!
//! Every function here is pure: it takes the projection and a snapshot of
//! the world (API objects, probe results) and returns the events to
//! append. Fetching the world is the operator's job. The observers of
//! the users' passwords and ACLs (keyed fingerprints, which need `ring`)
//! are the operator's (`logbook_operator::observe::{fingerprints,
//! users}`).

pub mod addresses;
pub mod backup;
mod binding;
mod cluster;
mod containers;
pub mod defaults;
mod drift;
pub mod external;
pub mod freshness;
mod pods;
mod replication;
mod reshard;
mod restore;
pub mod sentinel;
mod spec;
pub mod standby;
mod termination;
pub mod tls;
pub mod versions;

pub use binding::observe_binding;
pub use cluster::{
    ClusterAnswer, ClusterObservation, cluster_answer, observe_cluster_probe, observe_report,
};
pub use containers::{CANNOT_START, observe_container_failures, observe_container_restarts};
pub use drift::observe_drift;
pub use pods::{observe_pods, observe_statefulset, observe_terminating, pod_phase};
pub use replication::{
    LinkEvidence, ProbeObservation, journal_role, link_status, link_status_with, observe_probe,
    observe_replication,
};
pub use reshard::{observe_migrations, observe_slot_states};
pub use restore::{observe_restore_fetch, restore_fetch_failure};
pub use spec::{
    fingerprint, observe_failover_request, observe_rebalance_request, observe_restart_request,
    observe_spec, observe_switchover_request,
};
