//! The Valkey container of each data pod, as the pod's status shows it:
//! how it fails, while it does. A server that cannot start (a
//! configuration value Valkey refuses, an image that cannot read the
//! data it finds, memory too small) would otherwise leave the cluster
//! "2/3 pods ready" with the reason only in the container's log.
//!
//! A container that crashes is restarted by the kubelet, briefly running
//! between back-offs: while it runs and is not ready, what the journal
//! says of it stands (no event for every restart); once ready it no
//! longer fails.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use logbook_journal::{ClusterState, Event};

use super::termination::{bounded, describe, per_pod_failures};
use crate::resources::{CONTAINER_NAME, EXPORTER_CONTAINER_NAME};

/// How many of the last lines a container said are journaled: Valkey
/// says what it refused on the line before the last (`>>> 'directive
/// value'`, then why).
const LINES: usize = 2;

/// Waiting reasons under which a container cannot be started at all.
pub const CANNOT_START: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// What a pod's Valkey container shows.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// It fails, so.
    Failing(String),
    /// It does not fail.
    Clear,
    /// Running again after failing, not ready yet: as the journal says.
    Unchanged,
}

/// `ContainerFailureObserved` for each data pod (`pods`, every one the
/// selector lists) whose Valkey container's failure differs from what the
/// projection holds, and a cleared one for each pod the projection holds
/// a failure of that is gone.
pub fn observe_container_failures(state: &ClusterState, pods: &[Pod]) -> Vec<Event> {
    per_pod_failures(
        &state.container_failures,
        pods,
        |pod, known| match valkey_container(pod) {
            Seen::Failing(f) => Some(f),
            Seen::Clear => None,
            Seen::Unchanged => known.cloned(),
        },
        |pod, failure| Event::ContainerFailureObserved { pod, failure },
    )
}

/// `ContainerRestartObserved` for each data pod of `pods` whose Valkey
/// container's restart count rose past what the journal holds for that
/// pod (that uid): none for a pod that never restarted.
pub fn observe_container_restarts(state: &ClusterState, pods: &[Pod]) -> Vec<Event> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let name = p.metadata.name.clone()?;
            let uid = p.metadata.uid.clone()?;
            let restarts = p
                .status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .iter()
                .find(|c| c.name == CONTAINER_NAME)
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))?;
            let known = state
                .container_restarts
                .get(&name)
                .filter(|r| r.uid == uid)
                .map_or(0, |r| r.restarts);
            (restarts > known).then_some(Event::ContainerRestartObserved {
                pod: name,
                uid,
                restarts,
            })
        })
        .collect()
}

/// What `pod`'s Valkey container shows, or, while that one does not
/// fail, its exporter sidecar (`spec.metrics`), named: a sidecar that
/// cannot start keeps the pod unready, and the status must say why. A
/// pod being deleted shows how its container was stopped (killed, exit
/// code 137 or 143, under the same last lines): not a failure of its own,
/// so what the journal says stands until the pod is gone.
pub(super) fn valkey_container(pod: &Pod) -> Seen {
    if pod.metadata.deletion_timestamp.is_some() {
        return Seen::Unchanged;
    }
    let container = |name: &str| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|all| all.iter().find(|c| c.name == name))
            .map_or(Seen::Clear, seen)
    };
    match container(CONTAINER_NAME) {
        Seen::Clear => match container(EXPORTER_CONTAINER_NAME) {
            Seen::Failing(f) => Seen::Failing(bounded(&format!(
                "container {EXPORTER_CONTAINER_NAME}: {f}"
            ))),
            other => other,
        },
        other => other,
    }
}

fn seen(status: &ContainerStatus) -> Seen {
    let state = status.state.clone().unwrap_or_default();
    let last_failed = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .filter(|t| t.exit_code != 0);
    if let Some(ended) = &state.terminated {
        return if ended.exit_code == 0 {
            Seen::Clear
        } else {
            Seen::Failing(describe(ended, LINES))
        };
    }
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        if CANNOT_START.contains(&reason) {
            let message = waiting.message.as_deref().unwrap_or_default();
            return Seen::Failing(bounded(&format!("{reason}: {message}")));
        }
        return last_failed.map_or(Seen::Clear, |t| Seen::Failing(describe(t, LINES)));
    }
    if status.ready || last_failed.is_none() {
        Seen::Clear
    } else {
        Seen::Unchanged
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    const SAID: &str = "*** FATAL CONFIG FILE ERROR (Version 9.1.2) ***\n\
        Reading the configuration file, at line 12\n\
        >>> 'maxmemory-policy nonsense'\n\
        argument(s) must be one of the following: noeviction\n";
    const FAILURE: &str = "Error, exit code 1: >>> 'maxmemory-policy nonsense' / \
        argument(s) must be one of the following: noeviction";

    fn pod(state: ContainerState, last: Option<ContainerState>, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("demo-2".to_owned()),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: CONTAINER_NAME.to_owned(),
                    state: Some(state),
                    last_state: last,
                    ready,
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn ended(code: i32) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some("Error".to_owned()),
                message: Some(SAID.to_owned()),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }
    }

    fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_owned()),
                message: message.map(str::to_owned),
            }),
            ..ContainerState::default()
        }
    }

    fn running() -> ContainerState {
        ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        }
    }

    fn failing(failure: Option<&str>) -> Vec<Event> {
        vec![Event::ContainerFailureObserved {
            pod: "demo-2".to_owned(),
            failure: failure.map(str::to_owned),
        }]
    }

    #[test]
    fn a_failing_exporter_beside_a_healthy_server_is_said_by_name() {
        let mut with_sidecar = pod(running(), None, true);
        let statuses = with_sidecar
            .status
            .as_mut()
            .and_then(|s| s.container_statuses.as_mut())
            .unwrap();
        statuses.push(ContainerStatus {
            name: EXPORTER_CONTAINER_NAME.to_owned(),
            state: Some(waiting("CrashLoopBackOff", None)),
            last_state: Some(ended(1)),
            ..ContainerStatus::default()
        });
        let events = observe_container_failures(&ClusterState::default(), &[with_sidecar]);
        assert_eq!(
            events,
            failing(Some(&format!("container metrics: {FAILURE}")))
        );
        // The server's own failure comes first.
        let mut both = pod(ended(1), None, false);
        both.status
            .as_mut()
            .and_then(|s| s.container_statuses.as_mut())
            .unwrap()
            .push(ContainerStatus {
                name: EXPORTER_CONTAINER_NAME.to_owned(),
                state: Some(running()),
                ready: true,
                ..ContainerStatus::default()
            });
        assert_eq!(
            observe_container_failures(&ClusterState::default(), &[both]),
            failing(Some(FAILURE))
        );
    }

    #[test]
    fn a_crash_loop_is_journaled_once_through_its_restarts_then_cleared_when_ready() {
        let mut state = ClusterState::default();
        let backing_off = pod(waiting("CrashLoopBackOff", None), Some(ended(1)), false);
        assert_eq!(
            observe_container_failures(&state, std::slice::from_ref(&backing_off)),
            failing(Some(FAILURE))
        );
        state
            .container_failures
            .insert("demo-2".to_owned(), FAILURE.to_owned());
        // Back-off, a restart running for a moment, its end: one failure.
        for shown in [
            backing_off,
            pod(running(), Some(ended(1)), false),
            pod(ended(1), None, false),
        ] {
            assert_eq!(observe_container_failures(&state, &[shown]), vec![]);
        }
        // Deleted while restarting: stopped, not failing anew.
        let mut stopped = pod(ended(137), Some(ended(1)), false);
        stopped.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert_eq!(observe_container_failures(&state, &[stopped]), vec![]);
        assert_eq!(
            observe_container_failures(&state, &[pod(running(), Some(ended(1)), true)]),
            failing(None)
        );
        assert_eq!(
            observe_container_failures(&state, &[]),
            failing(None),
            "a pod gone no longer fails"
        );
    }

    #[test]
    fn an_image_that_cannot_be_pulled_is_a_failure() {
        let shown = pod(
            waiting(
                "ImagePullBackOff",
                Some("Back-off pulling image \"valkey:nope\""),
            ),
            None,
            false,
        );
        assert_eq!(
            observe_container_failures(&ClusterState::default(), &[shown]),
            failing(Some(
                "ImagePullBackOff: Back-off pulling image \"valkey:nope\""
            ))
        );
    }

    #[test]
    fn a_container_starting_or_running_without_a_failure_is_not_journaled() {
        for shown in [
            pod(waiting("ContainerCreating", None), None, false),
            pod(running(), None, false),
            pod(running(), None, true),
            Pod::default(),
        ] {
            assert_eq!(
                observe_container_failures(&ClusterState::default(), &[shown]),
                vec![]
            );
        }
    }

    /// A restart in place is journaled once per rise of the count, for the
    /// pod's own uid; a pod that never restarted journals nothing.
    #[test]
    fn restarts_in_place_are_journaled_when_the_count_rises() {
        let with = |uid: &str, restarts: i32| {
            let mut p = pod(ContainerState::default(), None, true);
            p.metadata.uid = Some(uid.to_owned());
            if let Some(c) = p
                .status
                .as_mut()
                .and_then(|s| s.container_statuses.as_mut())
                .and_then(|c| c.first_mut())
            {
                c.restart_count = restarts;
            }
            p
        };
        let mut g = crate::decide::given::Given::new();
        assert!(observe_container_restarts(&g.state, &[with("u1", 0)]).is_empty());
        let first = observe_container_restarts(&g.state, &[with("u1", 2)]);
        assert_eq!(
            first,
            vec![Event::ContainerRestartObserved {
                pod: "demo-2".to_owned(),
                uid: "u1".to_owned(),
                restarts: 2,
            }]
        );
        for e in first {
            g.event(e);
        }
        assert!(observe_container_restarts(&g.state, &[with("u1", 2)]).is_empty());
        assert_eq!(
            observe_container_restarts(&g.state, &[with("u1", 3)]).len(),
            1
        );
        // A new pod of the same name starts counting again.
        assert!(observe_container_restarts(&g.state, &[with("u2", 0)]).is_empty());
    }
}
