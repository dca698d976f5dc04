//! The `restore` init container of a cluster created from a backup, as
//! its pods' statuses show it: how it last failed, if it did. A restore
//! whose pods cannot load their shard (the bucket does not answer from
//! inside the cluster, an object went missing) would otherwise wait in
//! the pods' init phase with the reason only in the container's log.
//!
//! What is journaled is bounded and scrubbed: the termination reason, the
//! exit code and the last line of the container's message (the restore
//! writes no credential, but a message is another program's text, so
//! anything that looks like one is redacted all the same).

use k8s_openapi::api::core::v1::Pod;
use logbook_journal::{ClusterState, Event};

use super::termination::{describe, per_pod_failures};
use crate::resources::restore::RESTORE_CONTAINER;

/// `RestoreFetchObserved` for each data pod (`pods`, every one the
/// selector lists) whose restore container's failure differs from what
/// the projection holds, and a cleared one for each pod the projection
/// holds a failure of that is gone.
pub fn observe_restore_fetch(state: &ClusterState, pods: &[Pod]) -> Vec<Event> {
    per_pod_failures(
        &state.backups.restore.fetch_failures,
        pods,
        |pod, _| restore_fetch_failure(pod),
        |pod, failure| Event::RestoreFetchObserved { pod, failure },
    )
}

/// How `pod`'s restore container last failed, while that is what it
/// shows: its current state when it ended in failure, else the last one
/// while it is retried (waiting in back-off, or running again); `None`
/// once it succeeded, or when it never failed.
pub fn restore_fetch_failure(pod: &Pod) -> Option<String> {
    let status = pod
        .status
        .as_ref()?
        .init_container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == RESTORE_CONTAINER)?;
    let current = status.state.as_ref().and_then(|s| s.terminated.as_ref());
    let ended = match current {
        Some(t) if t.exit_code == 0 => return None,
        Some(t) => t,
        None => status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .filter(|t| t.exit_code != 0)?,
    };
    Some(describe(ended, 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::termination::MESSAGE_LIMIT;
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, state: ContainerState, last: Option<ContainerState>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                init_container_statuses: Some(vec![ContainerStatus {
                    name: RESTORE_CONTAINER.to_owned(),
                    state: Some(state),
                    last_state: last,
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn ended(code: i32, message: Option<&str>) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.to_owned()),
                message: message.map(str::to_owned),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }
    }

    fn backing_off() -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("CrashLoopBackOff".to_owned()),
                message: None,
            }),
            ..ContainerState::default()
        }
    }

    #[test]
    fn a_failure_in_back_off_is_journaled_once_then_cleared_when_it_succeeds() {
        let failing = pod(
            "demo-0",
            backing_off(),
            Some(ended(1, Some("fetching\nerror: connection refused\n"))),
        );
        let mut state = ClusterState::default();
        let events = observe_restore_fetch(&state, std::slice::from_ref(&failing));
        assert_eq!(
            events,
            vec![Event::RestoreFetchObserved {
                pod: "demo-0".to_owned(),
                failure: Some("Error, exit code 1: error: connection refused".to_owned()),
            }]
        );
        state.backups.restore.fetch_failures.insert(
            "demo-0".to_owned(),
            "Error, exit code 1: error: connection refused".to_owned(),
        );
        assert!(
            observe_restore_fetch(&state, &[failing]).is_empty(),
            "edge-triggered"
        );
        let done = pod("demo-0", ended(0, None), Some(ended(1, None)));
        assert_eq!(
            observe_restore_fetch(&state, &[done]),
            vec![Event::RestoreFetchObserved {
                pod: "demo-0".to_owned(),
                failure: None,
            }]
        );
        assert_eq!(
            observe_restore_fetch(&state, &[]),
            vec![Event::RestoreFetchObserved {
                pod: "demo-0".to_owned(),
                failure: None,
            }],
            "a pod gone is no longer failing"
        );
    }

    #[test]
    fn nothing_is_journaled_for_pods_that_never_failed() {
        let running = pod("demo-1", ended(0, None), None);
        assert!(
            observe_restore_fetch(&ClusterState::default(), &[running, Pod::default()]).is_empty()
        );
    }

    #[test]
    fn credentials_are_redacted_and_the_message_bounded() {
        let message = "error: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY \
            key AKIAIOSFODNN7EXAMPLE password: hunter2 token abcdEFGH1234abcdEFGH1234xyz \
            at http://127.0.0.1:9/bucket/logbook/demo/shard-0.rdb";
        let failure = restore_fetch_failure(&pod("demo-0", ended(2, Some(message)), None)).unwrap();
        for secret in [
            "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
            "AKIAIOSFODNN7EXAMPLE",
            "hunter2",
            "abcdEFGH1234abcdEFGH1234xyz",
        ] {
            assert!(!failure.contains(secret), "{secret} in {failure}");
        }
        assert!(
            failure.starts_with("Error, exit code 2: error: "),
            "{failure}"
        );
        assert!(
            failure.contains("http://127.0.0.1:9/bucket/logbook/demo/shard-0.rdb"),
            "{failure}"
        );
        let long = "x ".repeat(1000);
        let failure = restore_fetch_failure(&pod("demo-0", ended(1, Some(&long)), None)).unwrap();
        assert!(failure.chars().count() <= MESSAGE_LIMIT + 40, "{failure}");
    }
}
