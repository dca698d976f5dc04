//! The workload controllers of localkube, each a level-triggered loop over
//! the in-process [`Store`] as kube-controller-manager's are over the API:
//! the StatefulSet controller ([`statefulset`]), the Deployment and
//! ReplicaSet controllers ([`deployment`], [`replicaset`]), the endpoints
//! and EndpointSlice controller ([`endpoints`]) and the disruption
//! controller's PodDisruptionBudget status ([`pdb`]).
//!
//! Every controller recomputes what every object of its kind should be
//! whenever a watched resource changes, and writes only what differs, so a
//! converged cluster sees no writes at all. The controllers never run
//! pods: that is the kubelet's job, and tests may play it by writing pod
//! status themselves.

mod deploy_status;
pub mod deployment;
pub mod endpoints;
pub mod pdb;
mod pods;
pub mod replicaset;
mod revision;
mod runner;
pub mod statefulset;
mod sts_pods;
mod sts_status;

use std::time::Duration;

use crate::error::ApiError;
use crate::store::Store;

pub use runner::Controllers;

/// Why a reconcile pass failed; the pass is retried on the next change or
/// after a short backoff.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The store refused or failed a read or write.
    #[error("{controller}: {action} {object}: {source}")]
    Store {
        /// The controller.
        controller: &'static str,
        /// What it was doing (`create pod`, `update status`, ...).
        action: &'static str,
        /// `namespace/name` of the object.
        object: String,
        /// The store's answer.
        #[source]
        source: Box<ApiError>,
    },
}

/// `Result` of the controllers.
pub type Result<T, E = ControllerError> = std::result::Result<T, E>;

/// One controller's pass over the store: what it watches and how it
/// reconciles everything it owns.
pub(crate) trait Reconciler: Send + Sync + 'static {
    /// The controller's name (its field manager).
    fn name(&self) -> &'static str;
    /// The (apiVersion, plural) pairs whose changes start a pass.
    fn watches(&self) -> &'static [(&'static str, &'static str)];
    /// Reconciles every object; returns when the next pass is due even
    /// without a change (e.g. a pod becoming available after
    /// `minReadySeconds`).
    ///
    /// # Errors
    /// The first failed write; the other objects are still reconciled.
    fn reconcile_all(&self, store: &Store) -> Result<Option<Duration>>;
}

/// Wraps a store error with the controller's context.
pub(crate) fn store_err(
    controller: &'static str,
    action: &'static str,
    ns: &str,
    name: &str,
) -> impl FnOnce(ApiError) -> ControllerError {
    let object = format!("{ns}/{name}");
    move |source| ControllerError::Store {
        controller,
        action,
        object,
        source: Box::new(source),
    }
}
