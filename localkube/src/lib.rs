//! localkube: an embedded Kubernetes API server for local runs and tests of
//! Logbook. A test and local-run harness only: the operator never depends on
//! it and must behave the same against a real cluster.
//!
//! [`LocalKube::start`] serves the API over HTTP on 127.0.0.1 to kube-rs and
//! kubectl; [`RunningServer::store`] gives in-process code (part 2's
//! controllers) the same store with the same semantics.
//!
//! Requests without credentials (or with [`Config::token`]) are the cluster
//! admin. ServiceAccount tokens come from the TokenRequest API (`kubectl
//! create token`) or [`RunningServer::service_account_token`]; with
//! [`Config::rbac`] their requests are authorized against the stored RBAC
//! objects ([`auth`]), and [`RunningServer::authorizations`] /
//! [`RunningServer::denials`] tell a test which permissions were used or
//! missing. kubectl sends tokens only over TLS, so it acts as a
//! ServiceAccount here with `--as=system:serviceaccount:NS:NAME`.

pub mod auth;
pub mod config;
pub mod controllers;
pub mod error;
pub mod http;
pub mod instance;
mod jsonpath;
mod kubeconfig;
pub mod kubelet;
pub mod listtype;
pub mod names;
pub mod node_api;
mod obj;
pub mod patch;
pub mod provisioner;
pub mod proxy;
pub mod registry;
pub mod remote_node;
pub mod schema;
pub mod selector;
pub mod store;
pub mod watch;

pub use auth::{Access, Denial};
pub use config::{Config, LocalImage, PodLogs, WorkloadsConfig};
pub use error::ApiError;
pub use http::{Error, LocalKube, RunningServer};
pub use store::{DeleteOptions, FieldValidation, PatchKind, Propagation, Store, WriteCtx};
pub use watch::WatchEvent;
