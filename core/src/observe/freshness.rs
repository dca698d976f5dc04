//! Stale reads: an API server that lags (a watch cache behind, a second
//! API server on the same etcd, a list replayed after a restart) answers
//! with objects older than those the journal already holds observations
//! of. Acting on them undoes what the operator already saw happen: a
//! switchover request it served and cleared is served again, a pod it saw
//! replaced comes back with its old uid, a roll it finished starts over
//! from the old revision, a deleted user or backup comes back, a rotated
//! password is rotated back.
//!
//! Every read is as of a resourceVersion: an object's, or for an object a
//! list no longer shows, the list's. The journal keeps, per object, the
//! newest one its observations were read (or written) at
//! (`ResourceVersionsObserved`, journaled beside them); an observation
//! read at an older one is not journaled, and `StaleReadIgnored` says so
//! once instead. [`gate`] is that rule; it is pure, the reads are the
//! reconcile's.
//!
//! resourceVersions are compared as numbers: Kubernetes assigns them from
//! one counter for every object (etcd's revision; localkube's alike), and
//! KEP-5504 made comparing them part of the API. One that is not a number
//! is never judged, and never journaled.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta};
use logbook_journal::{CLUSTER_PASSWORD, ClusterState, Event, INTERNAL_USER};

/// The ValkeyCluster object.
pub const VALKEY_CLUSTER: &str = "ValkeyCluster";
/// The data StatefulSet.
pub const STATEFUL_SET: &str = "StatefulSet";
/// The list of the cluster's data pods (for a pod it no longer shows).
pub const PODS: &str = "Pods";
/// The list of the cluster's Sentinel pods.
pub const SENTINEL_PODS: &str = "SentinelPods";
/// The list of the namespace's ValkeyUsers.
pub const VALKEY_USERS: &str = "ValkeyUsers";
/// The list of the namespace's ValkeyBackups.
pub const VALKEY_BACKUPS: &str = "ValkeyBackups";

/// A pod, by name.
pub fn pod(name: &str) -> String {
    format!("Pod/{name}")
}

/// A Secret, by name.
pub fn secret(name: &str) -> String {
    format!("Secret/{name}")
}

/// A ValkeyUser, by name.
pub fn valkey_user(name: &str) -> String {
    format!("ValkeyUser/{name}")
}

/// A ValkeyBackup, by name.
pub fn valkey_backup(name: &str) -> String {
    format!("ValkeyBackup/{name}")
}

/// A resourceVersion as a number, when it is one.
pub fn version_of(resource_version: Option<&str>) -> Option<u64> {
    resource_version?.parse().ok()
}

/// The resourceVersions of what a reconcile read: objects (`Pod/demo-0`)
/// and lists (`Pods`), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads(BTreeMap<String, u64>);

impl Reads {
    /// Nothing read yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `object` was read with `meta`.
    pub fn object(&mut self, object: String, meta: &ObjectMeta) {
        if let Some(v) = version_of(meta.resource_version.as_deref()) {
            self.0.insert(object, v);
        }
    }

    /// The list `list` was read with `meta`.
    pub fn list(&mut self, list: &str, meta: &ListMeta) {
        if let Some(v) = version_of(meta.resource_version.as_deref()) {
            self.0.insert(list.to_owned(), v);
        }
    }

    /// `object` was read at `resource_version` (none: it was not found).
    pub fn at(&mut self, object: String, resource_version: Option<&str>) {
        if let Some(v) = version_of(resource_version) {
            self.0.insert(object, v);
        }
    }

    /// What `name` was read at.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.0.get(name).copied()
    }
}

/// Whether `object` was read older than the journal's observations of it:
/// what the read shows is not to be used (a password, a certificate).
pub fn older(state: &ClusterState, reads: &Reads, object: &str) -> bool {
    match (reads.get(object), state.sources.version(object)) {
        (Some(read), Some(journaled)) => read < journaled,
        _ => false,
    }
}

/// The objects `event` was read from, each with the list that stands for
/// it when the object itself was not read (a list that no longer shows
/// it): empty for an event not read from the API.
fn objects_of(event: &Event) -> Vec<(String, Option<&'static str>)> {
    match event {
        Event::SpecChanged { .. }
        | Event::SpecRejected { .. }
        | Event::SwitchoverRequestObserved { .. }
        | Event::FailoverRequestObserved { .. } => vec![(VALKEY_CLUSTER.to_owned(), None)],
        Event::PodObserved { pod: p, .. }
        | Event::PodTerminating { pod: p }
        | Event::PodDeleted { pod: p }
        | Event::RoleLabelObserved { pod: p, .. }
        | Event::RestoreFetchObserved { pod: p, .. }
        | Event::ContainerFailureObserved { pod: p, .. }
        | Event::ContainerRestartObserved { pod: p, .. } => vec![(pod(p), Some(PODS))],
        Event::SentinelPodObserved { pod: p, .. } | Event::SentinelPodDeleted { pod: p } => {
            vec![(pod(p), Some(SENTINEL_PODS))]
        }
        Event::StatefulSetObserved { .. } => vec![(STATEFUL_SET.to_owned(), None)],
        Event::UserObserved { user } => {
            let mut objects = Vec::new();
            if user.object != CLUSTER_PASSWORD && !user.object.starts_with(INTERNAL_USER) {
                objects.push((valkey_user(&user.object), Some(VALKEY_USERS)));
            }
            let name = user
                .secret
                .split_once('/')
                .map_or(&*user.secret, |(n, _)| n);
            if !name.is_empty() {
                objects.push((secret(name), None));
            }
            objects
        }
        Event::UserForgotten { object } => vec![(valkey_user(object), Some(VALKEY_USERS))],
        Event::BackupRequested { backup } => {
            vec![(valkey_backup(&backup.object), Some(VALKEY_BACKUPS))]
        }
        Event::BackupForgotten { object } => vec![(valkey_backup(object), Some(VALKEY_BACKUPS))],
        Event::CertificateObserved { certificate } => vec![(secret(&certificate.secret), None)],
        _ => Vec::new(),
    }
}

/// What to journal of `events`, observations read as `reads` say: those
/// read at a resourceVersion no older than the journal's for every object
/// they come from, with `ResourceVersionsObserved` for the objects they
/// were read from at a newer one; and for each object read older than the
/// journal's, where that read would have changed something,
/// `StaleReadIgnored` (once per object and resourceVersion: nothing when
/// the journal already says it).
///
/// # Guarantees
/// Nothing is journaled from a read older than one the journal holds; an
/// event whose objects were not read at a known resourceVersion passes.
pub fn gate(state: &ClusterState, reads: &Reads, events: Vec<Event>) -> Vec<Event> {
    let mut kept = Vec::new();
    let mut newer: BTreeMap<String, u64> = BTreeMap::new();
    let mut stale: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for event in events {
        let read: Vec<(String, u64)> = objects_of(&event)
            .into_iter()
            .filter_map(|(object, list)| {
                let version = reads
                    .get(&object)
                    .or_else(|| list.and_then(|l| reads.get(l)))?;
                Some((object, version))
            })
            .collect();
        let older: Vec<(String, u64, u64)> = read
            .iter()
            .filter_map(|(object, version)| {
                let journaled = state.sources.version(object)?;
                (*version < journaled).then(|| (object.clone(), *version, journaled))
            })
            .collect();
        if older.is_empty() {
            for (object, version) in read {
                let v = newer.entry(object).or_insert(version);
                *v = (*v).max(version);
            }
            kept.push(event);
        } else {
            for (object, version, journaled) in older {
                stale.insert(object, (version, journaled));
            }
        }
    }
    newer.retain(|object, v| state.sources.version(object).is_none_or(|j| *v > j));
    if !kept.is_empty() && !newer.is_empty() {
        kept.push(Event::ResourceVersionsObserved {
            versions: newer.into_iter().collect(),
        });
    }
    for (object, (version, journaled)) in stale {
        if state.sources.ignored.get(&object) != Some(&version) {
            kept.push(Event::StaleReadIgnored {
                object,
                resource_version: version,
                journaled,
            });
        }
    }
    kept
}

/// `ResourceVersionsObserved` for an object the operator wrote (the
/// version its write returned): what the journal records of the write is
/// as new as that, and a read older than it is stale.
pub fn written(object: String, meta: &ObjectMeta) -> Option<Event> {
    let version = version_of(meta.resource_version.as_deref())?;
    Some(Event::ResourceVersionsObserved {
        versions: vec![(object, version)],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use logbook_journal::{PodPhase, Role};

    use super::*;
    use crate::decide::given::Given;

    fn fold(given: &mut Given, events: &[Event]) {
        for event in events {
            given.event(event.clone());
        }
    }

    fn observed(pod: &str, uid: &str) -> Event {
        Event::PodObserved {
            pod: pod.into(),
            uid: uid.into(),
            ip: Some("10.0.0.1".into()),
            phase: PodPhase::Running,
            ready: true,
            node: None,
            revision: None,
        }
    }

    fn reads(pairs: &[(&str, u64)]) -> Reads {
        Reads(pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
    }

    #[test]
    fn a_read_journals_its_versions_beside_what_it_observed() {
        let state = ClusterState::default();
        let out = gate(
            &state,
            &reads(&[("Pod/demo-0", 12), ("Pods", 20)]),
            vec![observed("demo-0", "a")],
        );
        assert_eq!(
            out,
            vec![
                observed("demo-0", "a"),
                Event::ResourceVersionsObserved {
                    versions: vec![("Pod/demo-0".into(), 12)]
                },
            ]
        );
        // Nothing observed, nothing journaled: an idle cluster appends
        // nothing however far the versions move.
        assert!(gate(&state, &reads(&[("Pod/demo-0", 99)]), Vec::new()).is_empty());
    }

    #[test]
    fn an_older_read_is_ignored_once_and_a_newer_one_observed() {
        let mut g = Given::new();
        let first = gate(
            &g.state,
            &reads(&[("Pod/demo-0", 30)]),
            vec![observed("demo-0", "new")],
        );
        fold(&mut g, &first);
        // A lagging server still shows the pod it replaced.
        let old = reads(&[("Pod/demo-0", 12), ("Pods", 25)]);
        let out = gate(&g.state, &old, vec![observed("demo-0", "old")]);
        assert_eq!(
            out,
            vec![Event::StaleReadIgnored {
                object: "Pod/demo-0".into(),
                resource_version: 12,
                journaled: 30
            }]
        );
        fold(&mut g, &out);
        assert!(gate(&g.state, &old, vec![observed("demo-0", "old")]).is_empty());
        // A list from before the pod was seen does not delete it.
        let out = gate(
            &g.state,
            &reads(&[("Pods", 25)]),
            vec![Event::PodDeleted {
                pod: "demo-0".into(),
            }],
        );
        assert!(matches!(
            &out[..],
            [Event::StaleReadIgnored {
                resource_version: 25,
                ..
            }]
        ));
        // A newer read is observed, and clears what was ignored.
        let out = gate(
            &g.state,
            &reads(&[("Pods", 40)]),
            vec![Event::PodDeleted {
                pod: "demo-0".into(),
            }],
        );
        fold(&mut g, &out);
        assert_eq!(g.state.sources.version("Pod/demo-0"), Some(40));
        assert!(g.state.sources.ignored.is_empty());
    }

    #[test]
    fn the_operators_own_write_makes_an_older_read_stale() {
        let mut g = Given::new();
        let mut meta = ObjectMeta {
            resource_version: Some("50".into()),
            ..ObjectMeta::default()
        };
        fold(
            &mut g,
            &[
                Event::RoleLabelObserved {
                    pod: "demo-0".into(),
                    label: Some(Role::Replica),
                },
                written(pod("demo-0"), &meta).unwrap(),
            ],
        );
        let out = gate(
            &g.state,
            &reads(&[("Pod/demo-0", 44)]),
            vec![Event::RoleLabelObserved {
                pod: "demo-0".into(),
                label: Some(Role::Primary),
            }],
        );
        assert!(matches!(
            &out[..],
            [Event::StaleReadIgnored { journaled: 50, .. }]
        ));
        meta.resource_version = Some("not a number".into());
        assert_eq!(written(pod("demo-0"), &meta), None);
    }

    #[test]
    fn a_user_is_read_from_its_object_and_its_secret() {
        let mut g = Given::new();
        fold(
            &mut g,
            &[Event::ResourceVersionsObserved {
                versions: vec![("Secret/app-password".into(), 70)],
            }],
        );
        let user = logbook_journal::UserRecord {
            object: "app".into(),
            username: "app".into(),
            generation: 1,
            rules: vec!["on".into()],
            secret: "app-password/password".into(),
            password: Some("0123abcd".into()),
            problem: None,
            deleting: false,
            rotation_window_ms: 0,
        };
        let fresh_user_old_secret = reads(&[("ValkeyUser/app", 80), ("Secret/app-password", 60)]);
        let out = gate(
            &g.state,
            &fresh_user_old_secret,
            vec![Event::UserObserved { user: user.clone() }],
        );
        assert!(
            matches!(&out[..], [Event::StaleReadIgnored { object, .. }] if object == "Secret/app-password"),
            "{out:?}"
        );
        let both_fresh = reads(&[("ValkeyUser/app", 80), ("Secret/app-password", 70)]);
        let out = gate(&g.state, &both_fresh, vec![Event::UserObserved { user }]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            out[1],
            Event::ResourceVersionsObserved {
                versions: vec![("ValkeyUser/app".into(), 80)]
            }
        );
    }
}
