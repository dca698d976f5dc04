//! Kubernetes Events (`events.k8s.io/v1`) on the ValkeyCluster, one per
//! decision and per notable outcome.
//!
//! Written directly rather than through kube-runtime's `Recorder`, which
//! folds events of the same reason and action into one series that keeps
//! the first note: every failover would then show the first one's pods and
//! offsets. Publishing is best effort: an Event that cannot be written is
//! logged, never retried, and never blocks the loop.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff;
use kube::api::{Api, PostParams};

/// The longest note the API accepts is 1 kB.
const NOTE_LIMIT: usize = 1024;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something happened as intended.
    Normal,
    /// Something failed.
    Warning,
}

/// Publishes Events for one object.
#[derive(Clone)]
pub struct Publisher {
    client: kube::Client,
    instance: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// `note` cut to the API's limit on a character boundary.
fn clip(mut note: String) -> String {
    if note.len() > NOTE_LIMIT {
        let mut cut = NOTE_LIMIT;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    note
}

impl Publisher {
    /// A publisher reporting as controller `logbook`, instance `instance`.
    pub fn new(client: kube::Client, instance: String) -> Self {
        Self { client, instance }
    }

    /// Creates one Event about `regarding` (best effort).
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        kind: Kind,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let name = format!(
            "{}.{}",
            regarding.name.as_deref().unwrap_or("valkeycluster"),
            uuid::Uuid::now_v7().simple()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ns.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(jiff::Timestamp::now())),
            type_: Some(
                match kind {
                    Kind::Normal => "Normal",
                    Kind::Warning => "Warning",
                }
                .to_owned(),
            ),
            reason: Some(reason.to_owned()),
            action: Some(action.to_owned()),
            note: Some(clip(note)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some("valkey.logbook.dev/operator".to_owned()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(err) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(%err, reason, "cannot publish a Kubernetes Event");
        }
    }
}
