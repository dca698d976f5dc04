//! What each data pod runs (its image, and the version its server says),
//! and what the preflight of a new image shows: the facts an upgrade is
//! planned and watched from. Pure: the shell asks the servers.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use logbook_journal::ClusterState;

use super::containers::{Seen, valkey_container};
use super::pods::pod_basics;
use crate::resources::{CONTAINER_NAME, valkey_addr};

/// A data pod whose version is to be read: it answers (ready, with an
/// address) and the journal does not know what this pod (this uid)
/// runs with this image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionToRead {
    /// Pod name.
    pub pod: String,
    /// Its uid.
    pub uid: String,
    /// Its Valkey container's image.
    pub image: String,
    /// Its address.
    pub addr: SocketAddr,
}

/// The image of `pod`'s Valkey container.
pub fn valkey_image(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == CONTAINER_NAME)?
        .image
        .clone()
}

/// The pods of `pods` (the selector's) whose version the journal lacks.
pub fn versions_to_read(state: &ClusterState, pods: &[Pod]) -> Vec<VersionToRead> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let basics = pod_basics(p)?;
            let image = valkey_image(p)?;
            let addr = basics.ip.as_deref().and_then(valkey_addr)?;
            let known = state
                .versions
                .get(&basics.name)
                .is_some_and(|v| v.uid == basics.uid && v.image == image);
            (basics.ready && !known).then_some(VersionToRead {
                pod: basics.name,
                uid: basics.uid,
                image,
                addr,
            })
        })
        .collect()
}

/// What the preflight pod shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightSeen {
    /// No such pod.
    Gone,
    /// Not answering yet (pulling, starting).
    Starting,
    /// Its server listens at this address: ask it its version.
    Listening(SocketAddr),
    /// It cannot run: how it ended, or why it cannot start.
    Failed(String),
}

/// What `pod` (the preflight's, if it exists) shows.
pub fn preflight_seen(pod: Option<&Pod>) -> PreflightSeen {
    let Some(pod) = pod else {
        return PreflightSeen::Gone;
    };
    let ended = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == CONTAINER_NAME))
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .filter(|t| t.exit_code == 0);
    if ended.is_some() {
        return PreflightSeen::Failed("the server exited before it answered".to_owned());
    }
    if let Seen::Failing(failure) = valkey_container(pod) {
        return PreflightSeen::Failed(failure);
    }
    let listening = pod_basics(pod)
        .filter(|b| b.ready)
        .and_then(|b| b.ip.as_deref().and_then(valkey_addr));
    listening.map_or(PreflightSeen::Starting, PreflightSeen::Listening)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition,
        PodSpec, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use logbook_journal::Event;

    use super::*;

    fn pod(name: &str, uid: &str, image: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: CONTAINER_NAME.into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some("10.0.0.7".into()),
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn a_version_is_read_once_per_pod_and_image() {
        let mut g = crate::decide::given::Given::new();
        let pods = [
            pod("demo-0", "u0", "valkey/valkey:8.0", true),
            pod("demo-1", "u1", "valkey/valkey:8.0", false),
        ];
        let read = versions_to_read(&g.state, &pods);
        assert_eq!(read.len(), 1, "only a ready pod: {read:?}");
        assert_eq!(read[0].pod, "demo-0");
        assert_eq!(read[0].image, "valkey/valkey:8.0");
        g.event(Event::ServerVersionObserved {
            pod: "demo-0".into(),
            uid: "u0".into(),
            image: "valkey/valkey:8.0".into(),
            version: "8.0.1".into(),
        });
        let state = g.state.clone();
        assert!(versions_to_read(&state, &pods[..1]).is_empty());
        // Recreated on a new image: read again.
        let again = [pod("demo-0", "u9", "valkey/valkey:9.1", true)];
        assert_eq!(versions_to_read(&state, &again).len(), 1);
    }

    #[test]
    fn a_preflight_that_ends_is_failed_and_one_that_listens_is_asked() {
        assert_eq!(preflight_seen(None), PreflightSeen::Gone);
        let listening = pod("demo-preflight", "p", "valkey/valkey:9.1", true);
        assert!(matches!(
            preflight_seen(Some(&listening)),
            PreflightSeen::Listening(_)
        ));
        let starting = pod("demo-preflight", "p", "valkey/valkey:9.1", false);
        assert_eq!(preflight_seen(Some(&starting)), PreflightSeen::Starting);
        let mut ended = starting.clone();
        ended.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: CONTAINER_NAME.into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 1,
                    message: Some(
                        "*** FATAL CONFIG FILE ERROR (Version 8.0.1) ***\n>>> 'log-format logfmt'\nBad directive or wrong number of arguments\n"
                            .into(),
                    ),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        match preflight_seen(Some(&ended)) {
            PreflightSeen::Failed(f) => assert!(f.contains("Bad directive"), "{f}"),
            other => panic!("{other:?}"),
        }
    }
}
