//! The ValkeyCluster object: its spec (accepted or rejected, once per
//! generation) and the switchover and failover request annotations.

use logbook_crds::{ValkeyCluster, validate};
use logbook_journal::projection::SpecStatus;
use logbook_journal::{ClusterState, Event, SpecFingerprint, SpecProblem};
use sha2::{Digest, Sha256};

use crate::resources::labels::{FAILOVER_REQUESTED, SWITCHOVER_TO};

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
    let judged = match &state.spec_status {
        SpecStatus::Unknown => None,
        SpecStatus::Accepted { generation } | SpecStatus::Rejected { generation, .. } => {
            Some(*generation)
        }
    };
    if judged.is_some_and(|g| g >= generation) {
        return Vec::new();
    }
    let old = state.desired_spec().and_then(Result::ok);
    match validate(&cluster.spec, old.as_ref()) {
        Ok(()) => {
            let spec_json = match serde_json::to_string(&cluster.spec) {
                Ok(json) => json,
                Err(err) => {
                    return vec![Event::SpecRejected {
                        generation,
                        errors: vec![SpecProblem {
                            path: "spec".into(),
                            message: format!("cannot be serialized: {err}"),
                        }],
                    }];
                }
            };
            let fingerprint = fingerprint(&spec_json);
            vec![Event::SpecChanged {
                generation,
                spec_json,
                fingerprint,
            }]
        }
        Err(errors) => vec![Event::SpecRejected {
            generation,
            errors: errors
                .into_iter()
                .map(|e| SpecProblem {
                    path: e.path,
                    message: e.message,
                })
                .collect(),
        }],
    }
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
