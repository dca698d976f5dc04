//! Pods and the StatefulSet, as the API shows them.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use logbook_journal::projection::PodView;
use logbook_journal::{ClusterState, Event, PodPhase, Role};

use crate::resources::labels::{ROLE, ROLE_PRIMARY, ROLE_REPLICA};

/// The journal's phase of a Pod.
pub fn pod_phase(pod: &Pod) -> PodPhase {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => PodPhase::Pending,
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        _ => PodPhase::Unknown,
    }
}

/// Whether the Pod's Ready condition is true.
pub(super) fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn role_label(pod: &Pod) -> Option<Role> {
    match pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ROLE))
        .map(String::as_str)
    {
        Some(ROLE_PRIMARY) => Some(Role::Primary),
        Some(ROLE_REPLICA) => Some(Role::Replica),
        _ => None,
    }
}

/// What every pod observation starts from: its name (`None`: a pod without
/// one is skipped), uid, address (an empty one is none), phase and
/// readiness.
pub(super) struct PodBasics {
    pub name: String,
    pub uid: String,
    pub ip: Option<String>,
    pub phase: PodPhase,
    pub ready: bool,
}

/// The [`PodBasics`] of `pod`, `None` when it has no name.
pub(super) fn pod_basics(pod: &Pod) -> Option<PodBasics> {
    Some(PodBasics {
        name: pod.metadata.name.clone()?,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        ip: pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty()),
        phase: pod_phase(pod),
        ready: ready(pod),
    })
}

/// Events for the cluster's pods (`pods` is every pod the label selector
/// lists): observed where they differ, terminating once they carry a
/// `deletionTimestamp`, deleted where they are gone.
pub fn observe_pods(state: &ClusterState, pods: &[Pod]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for pod in pods {
        let Some(PodBasics {
            name,
            uid,
            ip,
            phase,
            ready,
        }) = pod_basics(pod)
        else {
            continue;
        };
        seen.insert(name.clone());
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let revision = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("controller-revision-hash"))
            .cloned();
        let known = state.pods.get(&name);
        let same = known.is_some_and(|v: &PodView| {
            v.uid.as_deref() == Some(uid.as_str())
                && v.ip == ip
                && v.phase == Some(phase)
                && v.ready == ready
                && v.node == node
                && v.revision == revision
        });
        let recreated = known.is_some_and(|v| v.uid.as_deref() != Some(uid.as_str()));
        if !same {
            out.push(Event::PodObserved {
                pod: name.clone(),
                uid,
                ip,
                phase,
                ready,
                node,
                revision,
            });
        }
        // Being deleted: its process is on its way out and the pod will not
        // come back (a replacement has a new uid). Recorded once, so a
        // deleted primary is failed over at once, not after its shutdown.
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if terminating && !known.is_some_and(|v| v.terminating && !recreated) {
            out.push(Event::PodTerminating { pod: name.clone() });
        }
        let label = role_label(pod);
        // A new or recreated pod's view starts without a label.
        let current = if recreated {
            None
        } else {
            known.and_then(|v| v.role_label)
        };
        if current != label {
            out.push(Event::RoleLabelObserved { pod: name, label });
        }
    }
    for name in state.pods.keys() {
        if !seen.contains(name) {
            out.push(Event::PodDeleted { pod: name.clone() });
        }
    }
    out
}

/// `PodTerminating` for each of `pods` being deleted that the journal
/// knows by the same uid and not yet as terminating: what a pod watch
/// event says of a deletion, journaled before the reconcile lists the
/// pods (a subset of what [`observe_pods`] records, which then records
/// nothing more for it).
pub fn observe_terminating(state: &ClusterState, pods: &[Pod]) -> Vec<Event> {
    pods.iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_some())
        .filter_map(|pod| {
            let name = pod.metadata.name.as_ref()?;
            let known = state.pods.get(name)?;
            let same = known.uid.is_some() && known.uid == pod.metadata.uid;
            (same && !known.terminating).then(|| Event::PodTerminating { pod: name.clone() })
        })
        .collect()
}

/// `StatefulSetObserved` when its replicas or update revision changed; the
/// revision is `None` while the StatefulSet's controller lags its spec.
pub fn observe_statefulset(state: &ClusterState, sts: Option<&StatefulSet>) -> Vec<Event> {
    let Some(sts) = sts else {
        return Vec::new();
    };
    let replicas = sts
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(1);
    // Until the StatefulSet's controller has observed the current template,
    // its `updateRevision` names the template before it: pods on that
    // revision are not up to date, so the revision is not known yet.
    let caught_up = sts.status.as_ref().is_some_and(|s| {
        s.observed_generation.is_some() && s.observed_generation >= sts.metadata.generation
    });
    let update_revision = sts
        .status
        .as_ref()
        .filter(|_| caught_up)
        .and_then(|s| s.update_revision.clone());
    let same = state
        .statefulset
        .as_ref()
        .is_some_and(|v| v.replicas == replicas && v.update_revision == update_revision);
    if same {
        return Vec::new();
    }
    vec![Event::StatefulSetObserved {
        replicas,
        update_revision,
    }]
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn sts(generation: i64, observed: Option<i64>, revision: &str) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(3),
                ..StatefulSetSpec::default()
            }),
            status: Some(StatefulSetStatus {
                observed_generation: observed,
                update_revision: Some(revision.to_owned()),
                ..StatefulSetStatus::default()
            }),
        }
    }

    fn revision(sts: &StatefulSet) -> Option<Option<String>> {
        match observe_statefulset(&ClusterState::default(), Some(sts)).as_slice() {
            [
                Event::StatefulSetObserved {
                    update_revision, ..
                },
            ] => Some(update_revision.clone()),
            _ => None,
        }
    }

    fn deleting(uid: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("demo-0".to_owned()),
                uid: Some(uid.to_owned()),
                deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                )),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn a_watched_deletion_is_terminating_only_for_the_pod_the_journal_knows() {
        let mut state = ClusterState::default();
        // A pod the journal does not know is left to the pod list.
        assert!(observe_terminating(&state, &[deleting("u1")]).is_empty());
        state.pods.insert(
            "demo-0".to_owned(),
            PodView {
                uid: Some("u1".to_owned()),
                ..PodView::default()
            },
        );
        assert_eq!(
            observe_terminating(&state, &[deleting("u1")]),
            vec![Event::PodTerminating {
                pod: "demo-0".to_owned()
            }]
        );
        // Its replacement, already deleted too, is not the pod known.
        assert!(observe_terminating(&state, &[deleting("u2")]).is_empty());
        // Journaled once: neither the watch nor the list says it again.
        if let Some(view) = state.pods.get_mut("demo-0") {
            view.terminating = true;
        }
        assert!(observe_terminating(&state, &[deleting("u1")]).is_empty());
        assert!(
            !observe_pods(&state, &[deleting("u1")])
                .iter()
                .any(|e| matches!(e, Event::PodTerminating { .. }))
        );
    }

    #[test]
    fn a_revision_is_known_only_once_the_controller_observed_the_spec() {
        assert_eq!(revision(&sts(2, Some(2), "r2")), Some(Some("r2".into())));
        // The controller has not seen generation 2: "r1" is the old
        // template's revision, not the one pods must run.
        assert_eq!(revision(&sts(2, Some(1), "r1")), Some(None));
        assert_eq!(revision(&sts(1, None, "r1")), Some(None));
    }
}
