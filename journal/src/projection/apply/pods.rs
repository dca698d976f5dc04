//! The pods family: the data pods and their Kubernetes nodes, what probes
//! find (reachability, role, replication), promotions, the StatefulSet,
//! and the standing switchover and failover requests.
//!
//! The one believed primary of a Standalone or Replication is followed
//! here from role observations and promotions; two primaries at once is
//! recorded as an anomaly, never resolved (that is a decision). A Valkey
//! Cluster's shard primaries are the cluster family's.

use crate::event::{Event, Role};
use crate::projection::{
    ClusterState, FailoverRequestView, FailoverView, PodView, StatefulSetView,
};
use crate::time::Timestamp;

impl ClusterState {
    /// Folds what is seen of the data pods and their replication: pods and
    /// their nodes, probes, roles, promotions, the StatefulSet, the
    /// switchover and failover requests.
    pub(super) fn fold_pods(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::PodObserved {
                pod,
                uid,
                ip,
                phase,
                ready,
                node,
                revision,
            } => {
                self.observed();
                let view = self.pods.entry(pod.clone()).or_default();
                if view.uid.as_ref().is_some_and(|old| old != uid) {
                    // A recreated pod: its Valkey process is new, so forget what
                    // the old one reported.
                    *view = PodView::default();
                    self.users.pod_replaced(pod);
                }
                if self.versions.get(pod).is_some_and(|v| v.uid != *uid) {
                    self.versions.remove(pod);
                }
                view.uid = Some(uid.clone());
                view.ip.clone_from(ip);
                view.phase = Some(*phase);
                view.ready = *ready;
                view.node.clone_from(node);
                view.revision.clone_from(revision);
                view.last_seen = at;
            }
            Event::PodDeleted { pod } => {
                self.observed();
                self.cluster.history_resets.remove(pod);
                self.reshard.pod_deleted(pod);
                self.users.pod_replaced(pod);
                self.tls.forget_pod(pod);
                self.container_failures.remove(pod);
                self.versions.remove(pod);
                self.hibernation_data.woken.remove(pod);
                self.container_restarts.remove(pod);
                if self.pods.remove(pod).is_none() {
                    self.anomaly(seq, format!("pod {pod} deleted but never observed"));
                }
                if self.replication.primary.as_deref() == Some(pod.as_str()) {
                    self.history(seq, at, body, format!("primary pod {pod} deleted"));
                }
            }
            Event::KubeNodeObserved { node, ready } => {
                self.observed();
                self.kube_nodes.insert(node.clone(), *ready);
            }
            Event::PodReachabilityObserved { pod, reachability } => {
                self.observed();
                let view = self.pod_for_observation(seq, pod, at);
                view.reachability = Some(*reachability);
                match reachability {
                    crate::event::Reachability::Reachable => {
                        view.consecutive_failures = 0;
                        view.failing_since = None;
                        view.last_failed_at = None;
                    }
                    _ => {
                        view.consecutive_failures = view.consecutive_failures.saturating_add(1);
                        view.failing_since = view.failing_since.or(Some(at));
                        view.last_failed_at = Some(at);
                    }
                }
            }
            Event::NodeRoleObserved { pod, role, primary } => {
                self.observed();
                let view = self.pod_for_observation(seq, pod, at);
                view.role = Some(*role);
                view.replicates = match role {
                    Role::Replica => primary.clone(),
                    Role::Primary | Role::Sentinel => None,
                };
                let in_sync = crate::projection::PodVersionView::in_sync(view.role, view.link);
                self.mark_in_sync(pod, in_sync, at);
                // A Valkey Cluster has a primary per shard: the one
                // believed primary is a replication cluster's.
                // Nor does a standby's leader stop being its believed
                // primary by following the source, as it must.
                let follows_source = *role == Role::Replica
                    && primary.as_deref() == Some(crate::projection::replication::STANDBY_SOURCE);
                if !self.is_valkey_cluster() && !follows_source {
                    self.track_primary(seq, at, body, pod, *role);
                }
            }
            Event::ReplicationObserved {
                pod,
                link,
                offset,
                replid,
            } => {
                self.observed();
                let view = self.pod_for_observation(seq, pod, at);
                view.link = Some(*link);
                view.offset = Some(*offset);
                view.replid = Some(*replid);
                let in_sync = crate::projection::PodVersionView::in_sync(view.role, view.link);
                self.mark_in_sync(pod, in_sync, at);
                if self.replication.primary.as_deref() == Some(pod.as_str()) {
                    self.replication.primary_replid = Some(*replid);
                }
            }
            Event::PrimaryUnreachable {
                pod,
                consecutive_failures,
            } => {
                if self.replication.primary.as_deref() != Some(pod.as_str()) {
                    self.anomaly(seq, format!("pod {pod} reported as unreachable primary but the believed primary is {:?}", self.replication.primary));
                }
                let view = self.pod_for_observation(seq, pod, at);
                view.consecutive_failures = *consecutive_failures;
                self.history(
                    seq,
                    at,
                    body,
                    format!("primary {pod} unreachable after {consecutive_failures} failures"),
                );
            }
            Event::ReplicaPromoted { pod, from, offset } => {
                if from.is_some() {
                    self.counters.failovers = self.counters.failovers.saturating_add(1);
                }
                let cluster = self.is_valkey_cluster();
                // `from` names the primary replaced; the believed primary may
                // already be gone from the projection (it came back fenced).
                // A standby's leader promoted in place replaces nobody.
                if !cluster
                    && self.replication.primary.is_some()
                    && from.as_deref() != self.replication.primary.as_deref()
                    && self.replication.primary.as_deref() != Some(pod.as_str())
                {
                    self.anomaly(seq, format!("promotion of {pod} replaces {from:?} but the believed primary was {:?}", self.replication.primary));
                }
                let view = self.pod_for_observation(seq, pod, at);
                view.role = Some(Role::Primary);
                view.replicates = None;
                view.offset = Some(*offset);
                if let Some(old) = from.as_ref().and_then(|f| self.pods.get_mut(f)) {
                    // Its role is unknown until observed again: it may still
                    // believe it is primary.
                    old.role = None;
                }
                if !cluster {
                    self.replication.primary = Some(pod.clone());
                    // A promotion starts a new replication id; it is learnt
                    // at the next observation of the new primary.
                    self.replication.primary_replid = None;
                }
                if from.is_some() {
                    self.last_failover = Some(FailoverView {
                        seq,
                        at,
                        from: from.clone(),
                        to: pod.clone(),
                    });
                }
                let from = from.as_deref().unwrap_or("none");
                self.history(
                    seq,
                    at,
                    body,
                    format!("{pod} promoted (replacing {from}) at offset {offset}"),
                );
            }
            Event::RoleLabelObserved { pod, label } => {
                self.observed();
                self.pod_for_observation(seq, pod, at).role_label = *label;
            }
            Event::StatefulSetObserved {
                replicas,
                update_revision,
            } => {
                self.observed();
                self.statefulset = Some(StatefulSetView {
                    replicas: *replicas,
                    update_revision: update_revision.clone(),
                });
            }
            Event::DriftObserved {
                object,
                by,
                at: when,
                fields,
            } => {
                self.observed();
                self.drift.insert(
                    object.clone(),
                    crate::projection::DriftView {
                        by: by.clone(),
                        at: when.clone(),
                        fields: fields.clone(),
                        reverted: false,
                    },
                );
                self.history(
                    seq,
                    at,
                    body,
                    format!("{object} changed by {by}: {}", fields.join(", ")),
                );
            }
            Event::BindingObserved { annotated, by } => {
                self.observed();
                let mut binding = self.binding.take().unwrap_or_default();
                let was_unbound = binding.unbound();
                let said = match (*annotated, binding.ever_annotated) {
                    (true, _) if was_unbound => {
                        // Its other objects lost their annotations when
                        // it was released: applied again, and the
                        // cluster taken over as it now is.
                        binding.mark_due = true;
                        binding.rebound = true;
                        "bound again: the ownership annotation is back on the StatefulSet"
                            .to_owned()
                    }
                    (true, _) => "the StatefulSet carries the ownership annotation".to_owned(),
                    (false, true) => {
                        binding.released = false;
                        binding.mark_due = false;
                        binding.rebound = false;
                        format!(
                            "unbound: the ownership annotation was removed from the StatefulSet{}",
                            by.as_ref()
                                .map_or_else(String::new, |by| format!(" (by {by})"))
                        )
                    }
                    (false, false) => {
                        binding.mark_due = true;
                        "the cluster's objects predate the ownership annotation".to_owned()
                    }
                };
                binding.annotated = *annotated;
                binding.ever_annotated |= *annotated;
                binding.by = if *annotated { None } else { by.clone() };
                binding.since = at;
                binding.seq = seq;
                self.binding = Some(binding);
                self.history(seq, at, body, said);
            }
            Event::PodTerminating { pod } => {
                self.observed();
                self.pod_for_observation(seq, pod, at).terminating = true;
                if self.replication.primary.as_deref() == Some(pod.as_str()) {
                    self.history(seq, at, body, format!("primary pod {pod} is being deleted"));
                }
            }
            Event::SwitchoverRequestObserved { target } => {
                self.observed();
                self.switchover_request.clone_from(target);
                if let Some(target) = target {
                    self.history(seq, at, body, format!("switchover to {target} requested"));
                }
            }
            Event::FailoverRequestObserved { request } => {
                self.observed();
                self.failover_request = request.as_ref().map(|request| FailoverRequestView {
                    request: request.clone(),
                    seq,
                    at,
                });
                match request {
                    Some(request) => {
                        self.history(seq, at, body, format!("failover requested ({request})"));
                    }
                    None => self.history(seq, at, body, "failover request cleared".into()),
                }
            }
            Event::PodDataObserved {
                pod,
                replid,
                offset,
                keys,
                persisted,
            } => {
                self.observed();
                let data = crate::projection::PodData {
                    replid: *replid,
                    offset: *offset,
                    keys: *keys,
                };
                let (map, when) = if *persisted {
                    (&mut self.hibernation_data.persisted, "made durable")
                } else {
                    (&mut self.hibernation_data.woken, "back from its volume")
                };
                map.insert(pod.clone(), data);
                self.history(
                    seq,
                    at,
                    body,
                    format!("pod {pod} {when}: {keys} keys, offset {offset}"),
                );
            }
            Event::ContainerRestartObserved { pod, uid, restarts } => {
                self.observed();
                self.history(
                    seq,
                    at,
                    body,
                    format!("pod {pod}: Valkey restarted in place ({restarts} restarts)"),
                );
                self.container_restarts.insert(
                    pod.clone(),
                    crate::projection::ContainerRestartView {
                        uid: uid.clone(),
                        restarts: *restarts,
                        at,
                    },
                );
            }
            Event::RebalanceRequestObserved { request } => {
                self.observed();
                self.rebalance_request.clone_from(request);
                match request {
                    Some(request) => {
                        self.history(seq, at, body, format!("rebalance requested ({request})"));
                    }
                    None => self.history(seq, at, body, "rebalance request cleared".into()),
                }
            }
            Event::RestartRequestObserved { request } => {
                self.observed();
                self.restart_request.clone_from(request);
                match request {
                    Some(request) => {
                        self.history(seq, at, body, format!("restart requested ({request})"));
                    }
                    None => self.history(seq, at, body, "restart request removed".into()),
                }
            }
            Event::ContainerFailureObserved { pod, failure } => {
                self.observed();
                match failure {
                    Some(f) => {
                        self.history(seq, at, body, format!("pod {pod}: Valkey fails: {f}"));
                        self.container_failures.insert(pod.clone(), f.clone());
                        if let Some(v) = self.versions.get_mut(pod) {
                            v.failed = Some(f.clone());
                        }
                    }
                    None => {
                        self.history(seq, at, body, format!("pod {pod}: Valkey no longer fails"));
                        self.container_failures.remove(pod);
                    }
                }
            }
            Event::ServerVersionObserved {
                pod,
                uid,
                image,
                version,
            } => {
                self.observed();
                let changed = self
                    .versions
                    .get(pod)
                    .is_none_or(|v| v.image != *image || v.version != *version);
                if changed {
                    self.history(seq, at, body, format!("pod {pod} runs {image} ({version})"));
                }
                // In sync from the first answer when the pod is seen in
                // sync already (its role and link are not journaled again
                // while they stay the same); else from when it is.
                let in_sync = self
                    .pods
                    .get(pod)
                    .is_some_and(|v| crate::projection::PodVersionView::in_sync(v.role, v.link));
                self.versions.insert(
                    pod.clone(),
                    crate::projection::PodVersionView {
                        uid: uid.clone(),
                        image: image.clone(),
                        version: version.clone(),
                        since: at,
                        failed: None,
                        in_sync_since: in_sync.then_some(at),
                    },
                );
            }
            Event::ImagePreflighted {
                image,
                generation,
                version,
                refused,
            } => {
                self.observed();
                match self
                    .preflight
                    .as_mut()
                    .filter(|p| p.image == *image && p.generation == *generation && !p.ended())
                {
                    Some(p) => {
                        p.version.clone_from(version);
                        p.refused.clone_from(refused);
                        let said = match (version, refused) {
                            (Some(v), _) => format!("preflight of {image}: runs, version {v}"),
                            (None, Some(r)) => format!("preflight of {image}: refused: {r}"),
                            (None, None) => format!("preflight of {image}: said nothing"),
                        };
                        self.history(seq, at, body, said);
                    }
                    None => self.anomaly(
                        seq,
                        format!(
                            "preflight of {image} (generation {generation}) ended, but none runs"
                        ),
                    ),
                }
            }
            Event::SourceFollowed { pod, host, port } => {
                let view = self.pod_for_observation(seq, pod, at);
                view.role = Some(Role::Replica);
                view.replicates = Some(crate::projection::replication::STANDBY_SOURCE.to_owned());
                if self.replication.primary.as_deref() != Some(pod.as_str()) {
                    self.replication.primary = Some(pod.clone());
                    self.replication.primary_replid = None;
                }
                self.standby.get_or_insert_with(Default::default).leader =
                    Some((pod.clone(), host.clone(), *port));
                self.history(
                    seq,
                    at,
                    body,
                    format!("{pod} follows the source at {host}:{port}"),
                );
            }
            Event::StandbyObserved {
                host,
                port,
                secret,
                offset,
                source_offset,
                source_replid,
                lag,
                behind,
                error,
            } => {
                self.observed();
                let standby = self.standby.get_or_insert_with(Default::default);
                let mut said = Vec::new();
                if standby.observed.is_some() && standby.behind != *behind {
                    said.push(match lag {
                        Some(lag) if *behind => {
                            format!("standby {lag} bytes behind its source, past its bound")
                        }
                        Some(lag) => format!("standby back within its bound ({lag} bytes behind)"),
                        None => "standby's lag unknown".to_owned(),
                    });
                }
                if standby.source_replid.is_some()
                    && source_replid.is_some()
                    && standby.source_replid != *source_replid
                {
                    said.push("the source has a new history (a failover there)".to_owned());
                }
                if standby.error != *error {
                    said.push(match error {
                        Some(e) => format!("standby's source unreadable: {e}"),
                        None => "standby's source answers again".to_owned(),
                    });
                }
                let address = host.clone().map(|h| (h, *port));
                if standby.address.is_some() && standby.address != address {
                    said.push(format!(
                        "standby's source now at {}",
                        address
                            .as_ref()
                            .map_or_else(|| "no address".to_owned(), |(h, p)| format!("{h}:{p}"))
                    ));
                }
                standby.address = address;
                secret.clone_into(&mut standby.secret);
                standby.offset = *offset;
                standby.source_offset = *source_offset;
                standby.source_replid = *source_replid;
                standby.lag = *lag;
                standby.behind = *behind;
                standby.error.clone_from(error);
                standby.observed = Some(at);
                for line in said {
                    self.history(seq, at, body, line);
                }
            }
            Event::StandbyPromoted {
                pod,
                offset,
                source_before,
                source_after,
                error,
            } => {
                let standby = self.standby.get_or_insert_with(Default::default);
                standby.leader = None;
                standby.promoted = Some(crate::projection::replication::StandbyPromotionView {
                    pod: pod.clone(),
                    offset: *offset,
                    source_before: *source_before,
                    source_after: *source_after,
                    error: error.clone(),
                    at,
                });
                let behind = crate::projection::replication::promotion_lag(
                    *offset,
                    *source_before,
                    *source_after,
                );
                self.history(
                    seq,
                    at,
                    body,
                    format!("standby promoted: {pod} at offset {offset}, {behind}"),
                );
            }
            other => self.misrouted(seq, other, "pods"),
        }
    }

    /// Follows the believed primary from role observations; two primaries
    /// at once is recorded, never resolved here (that is a decision).
    /// Keeps when `pod` came in sync on its version: from `at` when it
    /// is and was not, cleared when it is not.
    fn mark_in_sync(&mut self, pod: &str, in_sync: bool, at: Timestamp) {
        if let Some(version) = self.versions.get_mut(pod) {
            if !in_sync {
                version.in_sync_since = None;
            } else if version.in_sync_since.is_none() {
                version.in_sync_since = Some(at);
            }
        }
    }

    fn track_primary(&mut self, seq: u64, at: Timestamp, body: &Event, pod: &str, role: Role) {
        if self.sentinel.enabled {
            self.track_sentinel_primary(seq, pod, role);
            return;
        }
        match (role, self.replication.primary.as_deref()) {
            (Role::Primary, None) => {
                self.replication.primary = Some(pod.to_owned());
                self.history(seq, at, body, format!("{pod} observed as primary"));
            }
            (Role::Primary, Some(current)) if current != pod => {
                let current = current.to_owned();
                self.anomaly(
                    seq,
                    format!("{pod} reports primary while {current} is the believed primary"),
                );
            }
            (Role::Replica | Role::Sentinel, Some(current)) if current == pod => {
                self.replication.primary = None;
                self.history(
                    seq,
                    at,
                    body,
                    format!("believed primary {pod} now reports {role:?}"),
                );
            }
            _ => {}
        }
    }

    /// Topology Sentinel: only a `SentinelSwitchObserved` moves the
    /// believed primary once there is one (Sentinel decides, and a pod
    /// promoted by it reports itself primary before the Sentinels publish
    /// the switch). Two primaries answering at once is still recorded.
    fn track_sentinel_primary(&mut self, seq: u64, pod: &str, role: Role) {
        let Some(current) = self.replication.primary.clone() else {
            if role == Role::Primary {
                self.replication.primary = Some(pod.to_owned());
            }
            return;
        };
        if role != Role::Primary || current == pod {
            return;
        }
        let both = self.pods.get(&current).is_some_and(|v| {
            v.role == Some(Role::Primary)
                && v.reachability == Some(crate::event::Reachability::Reachable)
        });
        if both {
            self.anomaly(
                seq,
                format!("{pod} reports primary while {current}, the believed primary, answers as primary too"),
            );
        }
    }
}
