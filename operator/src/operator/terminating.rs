//! Pods the pod watch has seen being deleted, kept for their cluster's
//! next reconcile: a deleted primary's `PodTerminating` is journaled from
//! the watch event itself, before the reconcile's spec, policy, pod list
//! and StatefulSet reads, and its failover decided at once
//! (docs/benchmarks.md, "Where a deletion's window goes"). The pod list
//! read after it confirms it (`observe_pods` records a pod terminating
//! once); a pod seen here that the journal does not know by the same uid
//! is left to that list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use crate::resources::labels;

/// How long a pod seen being deleted is kept for a reconcile that does
/// not come (a pod whose cluster has no ValkeyCluster, or an instance that
/// does not lead): the list a reconcile reads says the same thing anyway.
const KEPT: Duration = Duration::from_secs(60);

/// (namespace, cluster) → the pods of that cluster seen being deleted, by
/// name, with when each was seen.
type Seen = HashMap<(String, String), HashMap<String, (Instant, Pod)>>;

/// The pods seen being deleted since their cluster's last reconcile.
#[derive(Debug, Default, Clone)]
pub(super) struct Terminating(Arc<Mutex<Seen>>);

impl Terminating {
    /// Keeps `pod` when it is being deleted and names its cluster.
    pub(super) fn seen(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_none() {
            return;
        }
        let (Some(ns), Some(name), Some(cluster)) = (
            pod.metadata.namespace.clone(),
            pod.metadata.name.clone(),
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::CLUSTER))
                .cloned(),
        ) else {
            return;
        };
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        seen.retain(|_, pods| {
            pods.retain(|_, (at, _)| now.duration_since(*at) < KEPT);
            !pods.is_empty()
        });
        seen.entry((ns, cluster))
            .or_default()
            .insert(name, (now, pod.clone()));
    }

    /// The pods of `namespace`/`cluster` seen being deleted, forgotten here.
    pub(super) fn take(&self, namespace: &str, cluster: &str) -> Vec<Pod> {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.remove(&(namespace.to_owned(), cluster.to_owned()))
            .map(|pods| pods.into_values().map(|(_, pod)| pod).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    use super::*;

    fn pod(ns: &str, cluster: &str, name: &str, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.to_owned()),
                name: Some(name.to_owned()),
                labels: Some([(labels::CLUSTER.to_owned(), cluster.to_owned())].into()),
                deletion_timestamp: deleting.then(|| Time(k8s_openapi::jiff::Timestamp::now())),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn only_pods_being_deleted_are_kept_and_each_is_taken_once() {
        let t = Terminating::default();
        t.seen(&pod("a", "demo", "demo-0", true));
        t.seen(&pod("a", "demo", "demo-1", false));
        t.seen(&pod("a", "other", "other-0", true));
        t.seen(&pod("b", "demo", "demo-2", true));
        let taken = t.take("a", "demo");
        let names: Vec<Option<&str>> = taken.iter().map(|p| p.metadata.name.as_deref()).collect();
        assert_eq!(names, vec![Some("demo-0")]);
        assert!(t.take("a", "demo").is_empty());
        assert_eq!(t.take("b", "demo").len(), 1);
        assert_eq!(t.take("a", "other").len(), 1);
    }
}
