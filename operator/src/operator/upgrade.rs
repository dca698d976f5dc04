//! The reads an upgrade is planned and watched from: what each data pod
//! runs (its image, and the version its server says: read once per pod
//! and image, so a converged cluster reads nothing), and what the
//! preflight of a new image shows while it runs.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use logbook_journal::{ClusterState, Event};

use super::error::OperatorError;
use crate::observe::versions::{PreflightSeen, preflight_seen, versions_to_read};
use crate::resources::{ClusterMeta, preflight_name};
use crate::valkey::ValkeyClient;

/// `ServerVersionObserved` for each answering pod of `pods` whose version
/// the journal lacks. A pod that does not answer now is read at a later
/// reconcile.
pub async fn read_versions(
    valkey: &ValkeyClient,
    state: &ClusterState,
    pods: &[Pod],
) -> Vec<Event> {
    let mut out = Vec::new();
    for pod in versions_to_read(state, pods) {
        match valkey.server_version(pod.addr).await {
            Ok(version) => out.push(Event::ServerVersionObserved {
                pod: pod.pod,
                uid: pod.uid,
                image: pod.image,
                version,
            }),
            Err(err) => {
                tracing::debug!(pod = %pod.pod, %err, "reading the server's version");
            }
        }
    }
    out
}

/// `ImagePreflighted` once the preflight under way ended (its server
/// answered with its version, or its container failed); nothing while it
/// starts, or when none runs.
///
/// # Errors
/// The API's, reading the preflight pod.
pub async fn observe_preflight(
    client: &kube::Client,
    meta: &ClusterMeta,
    valkey: &ValkeyClient,
    state: &ClusterState,
) -> Result<Option<Event>, OperatorError> {
    let Some(preflight) = state
        .preflight
        .as_ref()
        .filter(|p| !p.ended() && !p.removed)
    else {
        return Ok(None);
    };
    let ns = meta.namespace.as_str();
    let name = preflight_name(&meta.name);
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = api
        .get_opt(&name)
        .await
        .map_err(|source| OperatorError::Kube {
            what: format!("reading the preflight Pod {ns}/{name}"),
            source,
        })?;
    let ended = |version: Option<String>, refused: Option<String>| {
        Some(Event::ImagePreflighted {
            image: preflight.image.clone(),
            generation: preflight.generation,
            version,
            refused,
        })
    };
    Ok(match preflight_seen(pod.as_ref()) {
        PreflightSeen::Starting => None,
        PreflightSeen::Gone => ended(
            None,
            Some(format!(
                "the preflight Pod {name} was deleted before its server answered"
            )),
        ),
        PreflightSeen::Failed(failure) => ended(None, Some(failure)),
        PreflightSeen::Listening(addr) => match valkey.server_version(addr).await {
            Ok(version) => ended(Some(version), None),
            Err(err) => {
                tracing::debug!(%err, "asking the preflight's server its version");
                None
            }
        },
    })
}
