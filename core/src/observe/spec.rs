//! The ValkeyCluster object: its spec (accepted or rejected, once per
//! generation) and the switchover and failover request annotations.

use logbook_crds::{
    Persistence, Topology, ValkeyCluster, ValkeyClusterSpec, validate, validate_name_for_spec,
};
use logbook_journal::projection::SpecStatus;
use logbook_journal::{ClusterState, Event, SpecFingerprint, SpecProblem};
use sha2::{Digest, Sha256};

use crate::resources::labels::{
    FAILOVER_REQUESTED, REBALANCE_REQUESTED, RESTART_REQUESTED, SWITCHOVER_TO,
};

/// SHA-256 of a spec's canonical JSON.
pub fn fingerprint(spec_json: &str) -> SpecFingerprint {
    SpecFingerprint(Sha256::digest(spec_json.as_bytes()).into())
}

/// `SpecChanged` or `SpecRejected` for a generation the projection has not
/// judged yet; nothing when it has.
///
/// A spec is validated against the last accepted one (immutable fields):
/// an update that breaks a rule is rejected and the last valid spec stays
/// in force.
pub fn observe_spec(state: &ClusterState, cluster: &ValkeyCluster) -> Vec<Event> {
    let generation = cluster.metadata.generation.unwrap_or(0);
    if judged_generation(state).is_some_and(|g| g >= generation) {
        return Vec::new();
    }
    let old = state.desired_spec().and_then(Result::ok);
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    match judge(name, &cluster.spec, old.as_ref()) {
        Ok(spec_json) => {
            let fingerprint = fingerprint(&spec_json);
            vec![Event::SpecChanged {
                generation,
                spec_json,
                fingerprint,
            }]
        }
        Err(errors) => vec![Event::SpecRejected { generation, errors }],
    }
}

/// The generation last accepted or rejected, if any.
pub(super) fn judged_generation(state: &ClusterState) -> Option<i64> {
    match &state.spec_status {
        SpecStatus::Unknown => None,
        SpecStatus::Accepted { generation } | SpecStatus::Rejected { generation, .. } => {
            Some(*generation)
        }
    }
}

/// `spec` of cluster `name` judged against `old` (the spec in force):
/// its canonical JSON when the name, the rules and this operator version
/// allow it, else every problem found.
pub(super) fn judge(
    name: &str,
    spec: &ValkeyClusterSpec,
    old: Option<&ValkeyClusterSpec>,
) -> Result<String, Vec<SpecProblem>> {
    validate_name_for_spec(name, spec)
        .map_err(|e| vec![e])
        .and_then(|()| validate(spec, old))
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|e| SpecProblem {
                    path: e.path,
                    message: e.message,
                })
                .collect::<Vec<_>>()
        })?;
    let problems = unsupported(spec, old);
    if !problems.is_empty() {
        return Err(problems);
    }
    serde_json::to_string(spec).map_err(|err| {
        vec![SpecProblem {
            path: "spec".into(),
            message: format!("cannot be serialized: {err}"),
        }]
    })
}

/// The topologies this operator version runs. A spec asking for another
/// one is refused (`SpecRejected`, so `SpecValid=False` with this message)
/// and nothing is created for it: running a Sentinel spec as plain
/// Replication, or a Cluster spec as one primary with replicas, would tell
/// a user they have what they do not have.
pub const SUPPORTED_TOPOLOGIES: [Topology; 4] = [
    Topology::Standalone,
    Topology::Replication,
    Topology::Sentinel,
    Topology::Cluster,
];

/// Why `spec` cannot be run by this operator version, replacing `old`
/// (the spec in force, if any): empty when it can.
///
/// Besides a topology it does not run, a running Valkey Cluster changes
/// its shards or its replicas per shard, not both in one generation: the
/// pods the StatefulSet keeps are counted as shards × (1 + replicas), and
/// a change of both at once would remove pods before the slots or
/// replicas they hold have moved. (Shards go up and down by resharding:
/// `decide/cluster/resharding.rs`; replicas per shard by
/// `decide/cluster/scaling.rs`.)
pub fn unsupported(spec: &ValkeyClusterSpec, old: Option<&ValkeyClusterSpec>) -> Vec<SpecProblem> {
    let version = env!("CARGO_PKG_VERSION");
    let mut problems = Vec::new();
    if !SUPPORTED_TOPOLOGIES.contains(&spec.topology) {
        problems.push(SpecProblem {
            path: "spec.topology".to_owned(),
            message: format!(
                "topology {} is not supported yet by this operator version ({version}); it runs {}",
                spec.topology,
                SUPPORTED_TOPOLOGIES
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if let Some(old) = old
        && old.tls.enabled != spec.tls.enabled
    {
        // Every node and client would have to switch at one instant: a
        // replica of the other kind cannot follow its primary meanwhile.
        problems.push(SpecProblem {
            path: "spec.tls.enabled".to_owned(),
            message: format!(
                "turning TLS {} on a running cluster is not supported by this operator version ({version}); set tls.enabled back to {}, or create a new cluster and move the data",
                if spec.tls.enabled { "on" } else { "off" },
                old.tls.enabled
            ),
        });
    }
    if let Some(old) = old {
        problems.extend(claim_template_changes(spec, old, version));
    }
    let Some(old) =
        old.filter(|o| o.topology == Topology::Cluster && spec.topology == Topology::Cluster)
    else {
        return problems;
    };
    let (was, now) = (old.effective_shards(), spec.effective_shards());
    let (had, has) = (
        old.effective_replicas_per_shard(),
        spec.effective_replicas_per_shard(),
    );
    if was != now && had != has {
        problems.push(SpecProblem {
            path: "spec.shards".to_owned(),
            message: format!(
                "a running Cluster changes its shards ({was} → {now}) or its replicas per shard ({had} → {has}), one at a time: keep the replicas per shard at {had} while the shards change, then change them in a later generation"
            ),
        });
    }
    problems
}

/// What would change the StatefulSet's volume claim template: the API
/// server refuses that on a StatefulSet (only its replicas, template,
/// update strategy and a few others may change), and the claims made from
/// it would keep what they were made with, so the spec would say what no
/// volume has. The size (even written otherwise: the claims keep the text
/// they were made from) and whether there are volumes at all
/// (`persistence: None` or not); the storage class is immutable by
/// `validate` already.
fn claim_template_changes(
    spec: &ValkeyClusterSpec,
    old: &ValkeyClusterSpec,
    version: &str,
) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let volumes = |s: &ValkeyClusterSpec| s.storage.persistence != Persistence::None;
    let (was, now) = (&old.storage, &spec.storage);
    if volumes(old) != volumes(spec) {
        problems.push(SpecProblem {
            path: "spec.storage.persistence".to_owned(),
            message: format!(
                "changing storage.persistence from {:?} to {:?} on a running cluster is not supported by this operator version ({version}): {}; set storage.persistence back to {:?}, or create a new cluster and move the data",
                was.persistence,
                now.persistence,
                if volumes(old) {
                    "the pods would lose their volumes"
                } else {
                    "the pods have no volumes to give it"
                },
                was.persistence
            ),
        });
    }
    if volumes(old) && volumes(spec) && was.size != now.size {
        let same = logbook_crds::parse_quantity(&was.size.0).ok()
            == logbook_crds::parse_quantity(&now.size.0).ok();
        problems.push(SpecProblem {
            path: "spec.storage.size".to_owned(),
            message: if same {
                format!(
                    "storage.size {:?} is the volumes' size {:?} written otherwise: the claims keep the text they were made from; write it as {:?}",
                    now.size.0, was.size.0, was.size.0
                )
            } else {
                format!(
                    "changing the volumes' size ({} → {}) on a running cluster is not supported by this operator version ({version}): its claims keep {}; set storage.size back to {}, or create a new cluster and move the data",
                    was.size.0, now.size.0, was.size.0, was.size.0
                )
            },
        });
    }
    problems
}

/// `SwitchoverRequestObserved` when the annotation differs from the
/// standing request.
pub fn observe_switchover_request(state: &ClusterState, cluster: &ValkeyCluster) -> Vec<Event> {
    let target = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SWITCHOVER_TO))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if target == state.switchover_request {
        return Vec::new();
    }
    vec![Event::SwitchoverRequestObserved { target }]
}

/// `FailoverRequestObserved` when the annotation differs from the standing
/// request. Its presence is the request, whatever its value (an empty
/// value is a request too); the value tells one request from the next.
pub fn observe_failover_request(state: &ClusterState, cluster: &ValkeyCluster) -> Vec<Event> {
    let request = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(FAILOVER_REQUESTED))
        .map(|v| v.trim().to_owned());
    let standing = state.failover_request.as_ref().map(|r| &r.request);
    if request.as_ref() == standing {
        return Vec::new();
    }
    vec![Event::FailoverRequestObserved { request }]
}

/// `RebalanceRequestObserved` when the annotation differs from the
/// standing request (its presence is the request, whatever its value).
pub fn observe_rebalance_request(state: &ClusterState, cluster: &ValkeyCluster) -> Vec<Event> {
    let request = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REBALANCE_REQUESTED))
        .map(|v| v.trim().to_owned());
    if request == state.rebalance_request {
        return Vec::new();
    }
    vec![Event::RebalanceRequestObserved { request }]
}

/// `RestartRequestObserved` when the annotation differs from the standing
/// request (its value tells one request from the next; an empty value is
/// no request).
pub fn observe_restart_request(state: &ClusterState, cluster: &ValkeyCluster) -> Vec<Event> {
    let request = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESTART_REQUESTED))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    if request == state.restart_request {
        return Vec::new();
    }
    vec![Event::RestartRequestObserved { request }]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    fn cluster(spec: ValkeyClusterSpec) -> ValkeyCluster {
        let mut obj = ValkeyCluster::new("demo", spec);
        obj.metadata.generation = Some(1);
        obj
    }

    #[test]
    fn tls_is_served_on_every_topology_but_not_toggled_on_a_running_cluster() {
        let mut spec = ValkeyClusterSpec::default();
        spec.tls.enabled = true;
        assert!(unsupported(&spec, None).is_empty());
        let mut sentinel = spec.clone();
        sentinel.topology = Topology::Sentinel;
        assert!(unsupported(&sentinel, None).is_empty());
        let plain = ValkeyClusterSpec::default();
        let problems = unsupported(&spec, Some(&plain));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.tls.enabled");
        assert!(
            problems[0].message.contains("turning TLS on"),
            "{problems:?}"
        );
        assert!(unsupported(&spec, Some(&spec)).is_empty());
    }

    #[test]
    fn a_new_volume_size_is_refused_not_left_unapplied() {
        let old = ValkeyClusterSpec::default();
        let mut grown = old.clone();
        grown.storage.size = k8s_openapi::apimachinery::pkg::api::resource::Quantity("2Gi".into());
        let problems = unsupported(&grown, Some(&old));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.storage.size");
        assert!(
            problems[0].message.contains("set storage.size back to 1Gi"),
            "{problems:?}"
        );
        // The same size written another way: the claims keep the text
        // they were made from (a real API server refuses a new claim
        // template), said so.
        let mut same = old.clone();
        same.storage.size =
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1024Mi".into());
        let problems = unsupported(&same, Some(&old));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].message.contains("written otherwise"),
            "{problems:?}"
        );
        assert!(unsupported(&grown, None).is_empty());
    }

    #[test]
    fn volumes_cannot_come_or_go_on_a_running_cluster() {
        let old = ValkeyClusterSpec::default();
        assert_ne!(old.storage.persistence, Persistence::None);
        let mut none = old.clone();
        none.storage.persistence = Persistence::None;
        let problems = unsupported(&none, Some(&old));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.storage.persistence");
        assert!(problems[0].message.contains("would lose their volumes"));
        let problems = unsupported(&old, Some(&none));
        assert!(
            problems[0].message.contains("have no volumes"),
            "{problems:?}"
        );
        // Between two kinds that both keep volumes: a config change.
        for p in [Persistence::Rdb, Persistence::Aof, Persistence::RdbAndAof] {
            let mut other = old.clone();
            other.storage.persistence = p;
            assert!(unsupported(&other, Some(&old)).is_empty(), "{p:?}");
        }
        // Without volumes, their size and class mean nothing yet.
        let mut resized = none.clone();
        resized.storage.size =
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("5Gi".into());
        assert!(unsupported(&resized, Some(&none)).is_empty());
    }

    #[test]
    fn a_topology_this_version_does_not_run_is_refused_not_run_as_another() {
        for topology in Topology::ALL {
            let events = observe_spec(
                &ClusterState::default(),
                &cluster(ValkeyClusterSpec::with_topology(topology)),
            );
            let supported = SUPPORTED_TOPOLOGIES.contains(&topology);
            match &events[..] {
                [Event::SpecChanged { .. }] => assert!(supported, "{topology} was accepted"),
                [
                    Event::SpecRejected {
                        generation: 1,
                        errors,
                    },
                ] => {
                    assert!(!supported, "{topology} was refused: {errors:?}");
                    assert_eq!(errors.len(), 1);
                    assert_eq!(errors[0].path, "spec.topology");
                    assert!(
                        errors[0]
                            .message
                            .contains(&format!("topology {topology} is not supported yet")),
                        "{}",
                        errors[0].message
                    );
                }
                other => panic!("{topology}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_running_cluster_changes_its_shards_or_its_replicas_one_at_a_time() {
        let mut old = ValkeyClusterSpec::with_topology(Topology::Cluster);
        old.shards = Some(3);
        old.replicas_per_shard = Some(1);
        let mut more = old.clone();
        more.replicas_per_shard = Some(2);
        assert_eq!(unsupported(&more, Some(&old)), Vec::new());
        let mut fewer = old.clone();
        fewer.replicas_per_shard = Some(0);
        assert_eq!(unsupported(&fewer, Some(&old)), Vec::new());
        let mut wider = old.clone();
        wider.shards = Some(4);
        assert_eq!(unsupported(&wider, Some(&old)), Vec::new());
        let mut narrower = old.clone();
        narrower.shards = Some(2);
        assert_eq!(unsupported(&narrower, Some(&old)), Vec::new());
        let mut both = wider.clone();
        both.replicas_per_shard = Some(2);
        let problems = unsupported(&both, Some(&old));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "spec.shards");
        assert!(
            problems[0].message.contains("(3 → 4)") && problems[0].message.contains("(1 → 2)"),
            "{}",
            problems[0].message
        );
        // A new cluster may have any shape.
        assert_eq!(unsupported(&both, None), Vec::new());
    }
}
