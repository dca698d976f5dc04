//! Logbook's web UI: every ValkeyCluster the reader may see, live, and the
//! story of every decision, read from the journal.
//!
//! Read-only. Served by `logbook ui` with the user's kubeconfig (it shows
//! what that user may read: every object is read with the user's
//! credentials), and by the operator beside its health endpoints
//! (`--ui-addr`): `logbook local` serves it on the journal the operator
//! writes, to the machine's user only; the operator's Deployment serves it
//! to whoever signs in with a token, checked by the API server ([`auth`]).
//! What reaches the browser is the ValkeyCluster's status and spec
//! summary, its pods' state, and the journal, which never holds a secret
//! (docs/security.md); no Secret is ever read here.
//!
//! - [`journal`]: pages of the journal, newest first, checked as read;
//! - [`api`]: the JSON and server-sent-event endpoints;
//! - [`assets`]: the page, its script and its style, built into the
//!   binary (nothing is fetched from the internet).

pub mod api;
pub mod assets;
pub mod auth;
pub mod journal;
mod live;

use std::net::SocketAddr;
use std::sync::Arc;

use logbook_journal::SledStore;

use crate::journal_store::{AnyStore, ConfigMapStore};

/// Where the UI reads each cluster's journal.
#[derive(Clone)]
pub enum Journals {
    /// One local directory holding every cluster's stream (the operator's
    /// own, `--journal sled` or the mirror of `both`): read in-process.
    Local(SledStore),
    /// The ConfigMaps in each cluster's namespace, read with the UI's
    /// client (the user's credentials under `logbook ui`).
    ConfigMaps(kube::Client),
}

impl Journals {
    /// The store holding the journals of `namespace`'s clusters.
    #[must_use]
    pub fn store(&self, namespace: &str) -> AnyStore {
        match self {
            Self::Local(sled) => AnyStore::Sled(sled.clone()),
            Self::ConfigMaps(client) => {
                AnyStore::ConfigMap(ConfigMapStore::new(client.clone(), namespace))
            }
        }
    }

    /// How long the live timeline waits between looks at a journal's
    /// head when no watch says it moved (a local directory is looked at
    /// often: a read of memory; ConfigMaps are watched).
    #[must_use]
    pub const fn poll(&self) -> std::time::Duration {
        match self {
            Self::Local(_) => std::time::Duration::from_millis(200),
            Self::ConfigMaps(_) => std::time::Duration::from_secs(10),
        }
    }

    /// For messages.
    #[must_use]
    pub const fn describe(&self) -> &'static str {
        match self {
            Self::Local(_) => "the operator's local journal directory",
            Self::ConfigMaps(_) => "the journal ConfigMaps of each cluster's namespace",
        }
    }
}

/// What the UI serves from.
pub struct Ui {
    /// Reads the ValkeyClusters and their pods.
    pub client: kube::Client,
    /// Where the journals are.
    pub journals: Journals,
    /// Only this namespace's clusters, or every namespace.
    pub namespace: Option<String>,
    /// Each request's reader checked by the API server (the operator's
    /// Deployment); `None` when `client` is the reader's own (`logbook
    /// ui`) or the UI is bound where only its user reaches it (`logbook
    /// local`).
    pub reviews: Option<auth::Reviews>,
}

/// Who reads the operator's UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum UiAuth {
    /// Whoever presents a bearer token the API server knows, shown the
    /// clusters it says that user may `get` (TokenReview and
    /// SubjectAccessReview; the default).
    #[default]
    Reviews,
    /// Anyone who reaches the address, shown everything the operator
    /// reads (only for an address only its user reaches, as `logbook
    /// local` binds).
    None,
}

/// Serves the UI on `listener` until `shutdown` completes.
///
/// # Errors
/// The server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ui: Arc<Ui>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, api::router(ui))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `addr` for the UI, saying which address when it cannot.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot serve the UI on {addr}: {e}"))
}
