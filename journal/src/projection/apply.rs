//! `ClusterState::apply`: folding one envelope into the projection.
//!
//! Total by construction: only saturating arithmetic, map lookups that
//! tolerate absence, no indexing. Contradictions become anomalies; the fold
//! keeps going so one odd event never hides everything after it.

use uuid::Uuid;

use super::{
    ANOMALY_LIMIT, Anomaly, ClusterState, DesiredSpec, FailoverRequestView, FailoverView,
    HISTORY_LIMIT, HistoryEntry, InFlightIntent, PodView, SpecStatus, StatefulSetView,
};
use crate::envelope::Envelope;
use crate::event::{Event, Role};
use crate::intent::Intent;
use crate::time::Timestamp;

/// The first 8 characters of a node id, for people.
fn short(node_id: &str) -> &str {
    node_id.get(..8).unwrap_or(node_id)
}

/// Pushes onto a bounded ring, dropping the oldest entry.
fn push_bounded<T>(ring: &mut std::collections::VecDeque<T>, item: T, limit: usize) {
    ring.push_back(item);
    while ring.len() > limit {
        ring.pop_front();
    }
}

impl ClusterState {
    /// Folds one envelope into the state.
    ///
    /// # Guarantees
    /// Never panics and never fails. An envelope whose seq repeats one
    /// already folded is recorded as an anomaly and otherwise ignored (so a
    /// duplicate delivery cannot double-count); a gap is recorded and the
    /// event is applied.
    pub fn apply(&mut self, envelope: &Envelope) {
        self.counters.events = self.counters.events.saturating_add(1);
        let seq = envelope.seq;
        if seq <= self.last_seq {
            self.anomaly(
                seq,
                format!(
                    "seq {seq} repeats or precedes last folded seq {}; ignored",
                    self.last_seq
                ),
            );
            return;
        }
        if seq != self.next_seq() {
            self.anomaly(
                seq,
                format!("seq gap: expected {}, got {seq}", self.next_seq()),
            );
        } else if envelope.prev != self.last_hash {
            self.anomaly(
                seq,
                format!(
                    "chain link: prev {} differs from last hash {}",
                    envelope.prev, self.last_hash
                ),
            );
        }
        if envelope.epoch < self.epoch {
            self.anomaly(
                seq,
                format!(
                    "stale writer: epoch {} after epoch {}",
                    envelope.epoch, self.epoch
                ),
            );
        }
        self.epoch = self.epoch.max(envelope.epoch);
        self.last_seq = seq;
        self.last_hash = envelope.hash;
        self.last_at = envelope.at;
        self.apply_body(seq, envelope.at, &envelope.body);
    }

    fn apply_body(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::SpecChanged {
                generation,
                spec_json,
                fingerprint,
            } => {
                let current = self.desired.as_ref().map(|d| d.generation);
                if current.is_some_and(|g| *generation < g) {
                    self.anomaly(
                        seq,
                        format!(
                            "spec generation {generation} older than {}; ignored",
                            current.unwrap_or(0)
                        ),
                    );
                    return;
                }
                self.desired = Some(DesiredSpec {
                    generation: *generation,
                    spec_json: spec_json.clone(),
                    fingerprint: *fingerprint,
                    seq,
                });
                self.spec_status = SpecStatus::Accepted {
                    generation: *generation,
                };
                // A new spec retries the moves that kept failing afresh.
                self.reshard.failures.clear();
                // Topology is immutable, but a stored spec that no longer
                // parses keeps the part as it was rather than guess.
                if let Ok(spec) = serde_json::from_str::<logbook_crds::ValkeyClusterSpec>(spec_json)
                {
                    self.sentinel.enabled = spec.topology.uses_sentinel();
                    // The schedule's first fire is after it was set.
                    match spec.backup.schedule {
                        Some(schedule) => {
                            if self.backups.schedule.as_ref().map(|(s, _)| s) != Some(&schedule) {
                                self.backups.schedule = Some((schedule, at));
                            }
                        }
                        None => self.backups.schedule = None,
                    }
                }
                self.history(
                    seq,
                    at,
                    body,
                    format!("spec generation {generation} accepted"),
                );
            }
            Event::SpecRejected { generation, errors } => {
                self.counters.rejections = self.counters.rejections.saturating_add(1);
                self.spec_status = SpecStatus::Rejected {
                    generation: *generation,
                    errors: errors.clone(),
                };
                let first = errors
                    .first()
                    .map(|e| format!(": {}: {}", e.path, e.message))
                    .unwrap_or_default();
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "spec generation {generation} rejected ({} errors){first}",
                        errors.len()
                    ),
                );
            }
            Event::ClusterDeleted => {
                if self.deleted {
                    self.anomaly(seq, "cluster deleted twice".into());
                }
                self.deleted = true;
                self.history(seq, at, body, "cluster deleted".into());
            }
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
                    }
                    _ => {
                        view.consecutive_failures = view.consecutive_failures.saturating_add(1);
                        view.failing_since = view.failing_since.or(Some(at));
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
                // A Valkey Cluster has a primary per shard: the one
                // believed primary is a replication cluster's.
                if !self.is_valkey_cluster() {
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
                if !cluster
                    && self.replication.primary.is_some()
                    && from.as_deref() != self.replication.primary.as_deref()
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
            Event::Decided { intents } => {
                self.counters.decisions = self.counters.decisions.saturating_add(1);
                for planned in intents {
                    if let (
                        Intent::MoveSlots { .. },
                        crate::intent::ReasonCode::Reshard {
                            generation,
                            slots_to_move,
                            ..
                        },
                    ) = (&planned.intent, &planned.reason.code)
                        && self
                            .reshard
                            .run
                            .as_ref()
                            .is_none_or(|r| r.generation != *generation)
                    {
                        self.reshard.run = Some(super::reshard::ReshardRun {
                            generation: *generation,
                            planned: *slots_to_move,
                            moved: 0,
                            started_at: at,
                            started_seq: seq,
                        });
                    }
                    self.counters.intents_decided = self.counters.intents_decided.saturating_add(1);
                    let entry = InFlightIntent {
                        decided_seq: seq,
                        decided_at: at,
                        planned: planned.clone(),
                    };
                    if self.in_flight.insert(planned.intent_id, entry).is_some() {
                        self.anomaly(seq, format!("intent {} decided twice", planned.intent_id));
                    }
                }
            }
            Event::IntentSucceeded { intent_id, .. } => {
                self.counters.intents_succeeded = self.counters.intents_succeeded.saturating_add(1);
                if let Some(done) = self.settle(seq, intent_id, "succeeded") {
                    self.record_effect(&done.planned.intent);
                    if let Intent::ReloadCertificate { pods, fingerprint } = &done.planned.intent {
                        for pod in pods {
                            self.tls
                                .reloaded
                                .insert(pod.clone(), (fingerprint.clone(), at));
                        }
                    }
                }
            }
            Event::IntentFailed {
                intent_id,
                error,
                retryable,
            } => {
                self.counters.intents_failed = self.counters.intents_failed.saturating_add(1);
                let settled = self.settle(seq, intent_id, "failed");
                if let (Some(Intent::SyncUsers { pod, .. }), false) =
                    (settled.as_ref().map(|s| &s.planned.intent), *retryable)
                {
                    self.users.sync_failed(pod, error);
                }
                if let Some(Intent::MoveSlots {
                    from_node, to_node, ..
                }) = settled.as_ref().map(|s| &s.planned.intent)
                {
                    // A move that handed back while its job is still
                    // seen under way has not failed: the job goes on.
                    let running = self
                        .reshard
                        .migrations
                        .values()
                        .any(|m| m.job.source == *from_node && m.job.target == *to_node);
                    if !running {
                        self.reshard.move_failed(from_node, to_node, error, at);
                    }
                }
                let kind = if *retryable { "retryable" } else { "permanent" };
                self.history(
                    seq,
                    at,
                    body,
                    format!("intent {intent_id} failed ({kind}): {error}"),
                );
            }
            Event::IntentAbandoned { intent_id, reason } => {
                self.counters.intents_abandoned = self.counters.intents_abandoned.saturating_add(1);
                let _ = self.settle(seq, intent_id, "abandoned");
                self.history(
                    seq,
                    at,
                    body,
                    format!("intent {intent_id} abandoned: {reason}"),
                );
            }
            Event::PolicyRecorded { policy } => {
                self.policy = Some(policy.clone());
            }
            Event::OperatorStarted {
                version,
                instance,
                epoch,
                gap_ms,
            } => {
                self.operator.last_started = Some((version.clone(), instance.clone()));
                let gap = gap_ms.map_or_else(String::new, |ms| {
                    format!(", {} s after the previous event", ms / 1000)
                });
                self.history(
                    seq,
                    at,
                    body,
                    format!("operator {version} started as {instance} at epoch {epoch}{gap}"),
                );
            }
            Event::OperatorStopped { instance } => {
                if self
                    .operator
                    .leader
                    .as_ref()
                    .is_some_and(|(_, holder)| holder == instance)
                {
                    self.operator.leader = None;
                }
                self.history(seq, at, body, format!("operator {instance} stopped"));
            }
            Event::LeadershipAcquired { epoch, holder } => {
                if *epoch <= self.operator.highest_epoch && self.operator.highest_epoch > 0 {
                    self.anomaly(
                        seq,
                        format!(
                            "leadership epoch {epoch} not above {}",
                            self.operator.highest_epoch
                        ),
                    );
                }
                self.operator.highest_epoch = self.operator.highest_epoch.max(*epoch);
                self.operator.leader = Some((*epoch, holder.clone()));
                self.history(seq, at, body, format!("{holder} leads at epoch {epoch}"));
            }
            Event::LeadershipLost { epoch, reason } => {
                match &self.operator.leader {
                    Some((current, _)) if current == epoch => self.operator.leader = None,
                    other => {
                        let other = other.clone();
                        self.anomaly(
                            seq,
                            format!("leadership of epoch {epoch} lost but the leader is {other:?}"),
                        );
                    }
                }
                self.history(
                    seq,
                    at,
                    body,
                    format!("leadership of epoch {epoch} lost: {reason}"),
                );
            }
            Event::DeletionRequested { delete_pvcs } => {
                if self.deletion.requested {
                    self.anomaly(seq, "cluster deletion requested twice".into());
                }
                // After an older build's `ClusterDeleted` (a deletion it
                // was cut short in) this is the deletion resumed.
                self.deleted = true;
                self.deletion.requested = true;
                self.deletion.delete_pvcs = *delete_pvcs;
                let pvcs = if *delete_pvcs { ", PVCs too" } else { "" };
                self.history(seq, at, body, format!("cluster deleted{pvcs}"));
            }
            Event::OwnedObjectsDeleted { objects, complete } => {
                self.deletion.objects_deleted |= *complete;
                let state = if *complete { "all" } else { "part-way" };
                self.history(
                    seq,
                    at,
                    body,
                    format!("{} owned objects deleted ({state})", objects.len()),
                );
            }
            // Its only effect is the envelope's time, folded above into
            // `last_at`: the `now` the next decision reads.
            Event::DeadlinePassed { .. } => {}
            Event::SnapshotRecorded {
                seq: covered, hash, ..
            }
            | Event::SnapshotTaken { seq: covered, hash } => {
                if *covered >= seq {
                    self.anomaly(
                        seq,
                        format!("snapshot at seq {covered} recorded at seq {seq}"),
                    );
                }
                self.last_snapshot = Some((*covered, *hash));
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
            Event::SlotMigrationObserved {
                pod,
                job,
                elapsed_ms,
            } => {
                self.observed();
                let known = self.reshard.observe_job(pod, job, at);
                if job.phase.is_over() || !known {
                    let after = elapsed_ms.map_or_else(String::new, |ms| format!(" after {ms} ms"));
                    let message = if job.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", job.message)
                    };
                    self.history(
                        seq,
                        at,
                        body,
                        format!(
                            "slot migration {} of {} slots {} -> {} ({} on {pod}) {}{after}{message}",
                            short(&job.name),
                            crate::cluster::slot_count(&job.slots),
                            short(&job.source),
                            short(&job.target),
                            job.side.name(),
                            job.phase.name()
                        ),
                    );
                }
            }
            Event::SentinelPodObserved {
                pod,
                uid,
                ip,
                phase,
                ready,
            } => {
                self.observed();
                let view = self.sentinel.pods.entry(pod.clone()).or_default();
                if view.uid.as_ref().is_some_and(|old| old != uid) {
                    // A recreated Sentinel: forget what the old one said.
                    *view = super::sentinel::SentinelPodView::default();
                }
                view.uid = Some(uid.clone());
                view.ip.clone_from(ip);
                view.phase = Some(*phase);
                view.ready = *ready;
                view.last_seen = at;
            }
            Event::SentinelPodDeleted { pod } => {
                self.observed();
                // A new Sentinel pod of the name is given `default` again.
                self.users.pod_replaced(pod);
                if self.sentinel.pods.remove(pod).is_none() {
                    self.anomaly(
                        seq,
                        format!("Sentinel pod {pod} deleted but never observed"),
                    );
                }
            }
            Event::SentinelObserved {
                pod,
                reachability,
                report,
            } => {
                self.observed();
                if !self.sentinel.pods.contains_key(pod) {
                    self.anomaly(seq, format!("observation of unknown Sentinel pod {pod}"));
                }
                let view = self.sentinel.pods.entry(pod.clone()).or_default();
                view.reachability = Some(*reachability);
                view.report.clone_from(report);
                view.last_seen = at;
                // The epoch of the believed primary, as a Sentinel that is
                // not failing it over gives it. (A leader raises the epoch
                // when it promotes, before it names the new primary: its
                // report then is busy and says nothing of the primary's.)
                if let Some(m) = report.as_ref().and_then(|r| r.monitoring.as_ref())
                    && !m.busy()
                    && m.primary_pod.is_some()
                    && m.primary_pod.as_deref() == self.replication.primary.as_deref()
                {
                    self.sentinel.primary_epoch = m.config_epoch;
                }
            }
            Event::SentinelEventObserved {
                pod,
                channel,
                payload,
            } => {
                self.observed();
                if let Some(line) = self.sentinel.fold_event(pod, channel, payload) {
                    self.history(seq, at, body, line);
                }
            }
            Event::SentinelSwitchObserved { switch } => {
                if switch.from.as_deref() != self.replication.primary.as_deref() {
                    self.anomaly(
                        seq,
                        format!(
                            "Sentinel switch from {:?} but the believed primary was {:?}",
                            switch.from, self.replication.primary
                        ),
                    );
                }
                self.counters.failovers = self.counters.failovers.saturating_add(1);
                self.sentinel.switches = self.sentinel.switches.saturating_add(1);
                if switch.after_the_fact {
                    self.sentinel.switches_after_the_fact =
                        self.sentinel.switches_after_the_fact.saturating_add(1);
                }
                self.sentinel.primary_epoch = switch.epoch;
                if let Some(old) = switch.from.as_ref().and_then(|f| self.pods.get_mut(f)) {
                    // Its role is unknown until observed again: it may
                    // still believe it is primary (as after a promotion).
                    old.role = None;
                }
                self.replication.primary = Some(switch.to.clone());
                self.replication.primary_replid = None;
                self.last_failover = Some(FailoverView {
                    seq,
                    at,
                    from: switch.from.clone(),
                    to: switch.to.clone(),
                });
                self.sentinel.last_switch = Some(super::sentinel::SwitchView {
                    seq,
                    at,
                    from: switch.from.clone(),
                    to: switch.to.clone(),
                    epoch: switch.epoch,
                    after_the_fact: switch.after_the_fact,
                });
                let leader = switch.leader.as_deref().unwrap_or("unknown");
                let how = if switch.after_the_fact {
                    " (found after the fact)"
                } else {
                    ""
                };
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "Sentinel switched the primary {} -> {} at epoch {} (leader {leader}, {} votes){how}",
                        switch.from.as_deref().unwrap_or("none"),
                        switch.to,
                        switch.epoch,
                        switch.voters.len()
                    ),
                );
            }
            Event::UserObserved { user } => {
                self.observed();
                let what = match (&user.problem, user.deleting) {
                    (_, true) => "being deleted".to_owned(),
                    (Some(problem), false) => format!("cannot be applied: {problem}"),
                    (None, false) => format!(
                        "generation {}, password {}",
                        user.generation,
                        user.password.as_deref().unwrap_or("none")
                    ),
                };
                self.history(
                    seq,
                    at,
                    body,
                    format!("ACL user {} ({}) {what}", user.username, user.object),
                );
                self.users.observed(user, at);
            }
            Event::UserForgotten { object } => {
                self.observed();
                if self.users.records.remove(object).is_none() {
                    self.anomaly(
                        seq,
                        format!("ValkeyUser {object} forgotten but never observed"),
                    );
                }
            }
            Event::AclObserved { pod, users } => {
                self.observed();
                self.users.nodes.insert(pod.clone(), users.clone());
            }
            Event::CertificateObserved { certificate } => {
                self.observed();
                let what = match (&certificate.fingerprint, &certificate.problem) {
                    (_, Some(problem)) => format!("cannot be used: {problem}"),
                    (None, None) => "holds no certificate".to_owned(),
                    (Some(fp), None) => format!(
                        "holds certificate {}{}",
                        short(fp),
                        certificate
                            .not_after
                            .map(|t| format!(" (expires {t})"))
                            .unwrap_or_default()
                    ),
                };
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "TLS Secret {} ({}) {what}",
                        certificate.secret, certificate.source
                    ),
                );
                self.tls.certificate = Some(certificate.clone());
            }
            Event::CertificateServed { pod, fingerprint } => {
                self.observed();
                self.tls
                    .served
                    .insert(pod.clone(), (fingerprint.clone(), at));
            }
            Event::BackupRequested { backup } => {
                self.observed();
                let what = match (&backup.problem, &backup.target) {
                    (Some(problem), _) => format!("cannot be taken: {problem}"),
                    (None, Some(t)) => format!("into s3://{}/{}", t.bucket, t.dir),
                    (None, None) => "with no destination".to_owned(),
                };
                let by = if backup.scheduled { " (scheduled)" } else { "" };
                self.history(
                    seq,
                    at,
                    body,
                    format!("backup {}{by} requested {what}", backup.object),
                );
                self.backups
                    .records
                    .insert(backup.object.clone(), backup.clone());
            }
            Event::BackupForgotten { object } => {
                self.observed();
                if self.backups.records.remove(object).is_none() {
                    self.anomaly(
                        seq,
                        format!("ValkeyBackup {object} forgotten but never observed"),
                    );
                }
                self.backups.runs.remove(object);
                self.backups.deleted.remove(object);
            }
            Event::BackupStarted {
                object,
                attempt,
                target,
                sources,
            } => {
                if let Some((running, _)) = self.backups.running()
                    && running != object
                {
                    self.anomaly(
                        seq,
                        format!("backup {object} started while {running} runs"),
                    );
                }
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "backup {object} attempt {attempt} started from {}",
                        sources
                            .iter()
                            .map(|s| s.pod.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                self.backups.runs.insert(
                    object.clone(),
                    super::backups::BackupRun {
                        attempt: *attempt,
                        started: at,
                        started_seq: seq,
                        target: target.clone(),
                        sources: sources.clone(),
                        uploaded: std::collections::BTreeMap::new(),
                        outcome: None,
                    },
                );
            }
            Event::BackupShardUploaded {
                object,
                attempt,
                upload,
            } => match self.backups.runs.get_mut(object) {
                Some(run) if run.attempt == *attempt && run.outcome.is_none() => {
                    run.uploaded.insert(upload.shard, upload.clone());
                }
                _ => self.anomaly(
                    seq,
                    format!("shard {} of backup {object} attempt {attempt} uploaded, but that attempt does not run", upload.shard),
                ),
            },
            Event::BackupCompleted {
                object,
                attempt,
                manifest,
                bytes,
            } => {
                self.end_backup(
                    seq,
                    object,
                    *attempt,
                    super::backups::BackupOutcome::Completed {
                        at,
                        manifest: manifest.clone(),
                        bytes: *bytes,
                    },
                );
                self.history(
                    seq,
                    at,
                    body,
                    format!("backup {object} completed: {bytes} bytes, manifest {manifest}"),
                );
            }
            Event::BackupFailed {
                object,
                attempt,
                reason,
                retry,
            } => {
                self.end_backup(
                    seq,
                    object,
                    *attempt,
                    super::backups::BackupOutcome::Failed {
                        at,
                        reason: reason.clone(),
                        retry: *retry,
                    },
                );
                let then = if *retry { "; to be retried" } else { "" };
                self.history(
                    seq,
                    at,
                    body,
                    format!("backup {object} attempt {attempt} failed: {reason}{then}"),
                );
            }
            Event::BackupDue { at: due, object } => {
                self.backups.last_due = Some((*due, object.clone()));
                self.history(
                    seq,
                    at,
                    body,
                    format!("the backup schedule fired at {due}: backup {object} is due"),
                );
            }
            Event::BackupDeleted { object, objects } => {
                self.backups.deleted.insert(object.clone(), at);
                self.history(
                    seq,
                    at,
                    body,
                    format!("retention deleted backup {object} ({objects} objects)"),
                );
            }
            Event::RestoreVerified { plan } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "restore of {} verified: {} shards from s3://{}/{}",
                        plan.source,
                        plan.shards.len(),
                        plan.target.bucket,
                        plan.target.dir
                    ),
                );
                self.backups.restore.plan = Some(plan.clone());
                self.backups.restore.refused = None;
            }
            Event::RestoreRefused {
                source,
                reason,
                retry,
            } => {
                self.history(
                    seq,
                    at,
                    body,
                    format!("restore of {source} refused: {reason}"),
                );
                self.backups.restore.refused = Some((reason.clone(), *retry, at));
            }
            Event::RestoreFetchObserved { pod, failure } => {
                let note = match failure {
                    Some(f) => format!("restore: pod {pod} cannot load its shard: {f}"),
                    None => format!("restore: pod {pod} no longer shows a failure to load"),
                };
                self.history(seq, at, body, note);
                match failure {
                    Some(f) => {
                        self.backups
                            .restore
                            .fetch_failures
                            .insert(pod.clone(), f.clone());
                    }
                    None => {
                        self.backups.restore.fetch_failures.remove(pod);
                    }
                }
            }
            Event::RestoreCompleted { shards } => {
                self.history(seq, at, body, format!("restore completed: {shards} shards"));
                self.backups.restore.completed = Some(at);
            }
            Event::CertificateAuthorityCreated {
                secret,
                fingerprint,
            } => {
                // Nothing decided reads the CA from the projection (an
                // issue reads its Secret afresh); what clients are to
                // trust from now on is history.
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "TLS: created the cluster's CA {} in Secret {secret}",
                        short(fingerprint)
                    ),
                );
            }
            Event::RotationWindowClosed { username } => {
                if self.users.rotations.remove(username).is_none() {
                    self.anomaly(
                        seq,
                        format!("rotation window of {username} closed but none open"),
                    );
                }
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "the rotation window of ACL user {username} closed: the old password goes"
                    ),
                );
            }
            Event::SlotStatesObserved {
                pod,
                node_id,
                migrating,
                importing,
            } => {
                self.observed();
                if migrating.is_empty() && importing.is_empty() {
                    self.reshard.slot_states.remove(pod);
                } else {
                    self.reshard.slot_states.insert(
                        pod.clone(),
                        super::reshard::SlotStates {
                            node_id: node_id.clone(),
                            migrating: migrating.clone(),
                            importing: importing.clone(),
                        },
                    );
                }
            }
            Event::ClusterNodeObserved { pod, report } => {
                self.observed();
                self.fold_cluster_report(seq, at, body, pod, report);
            }
            Event::PrimaryHistoryReset {
                pod,
                node_id,
                previous_replid,
                previous_offset,
                replid,
                offset,
            } => {
                self.observed();
                // The pod's new id and offset come with the same probe's
                // `ReplicationObserved`; only what it no longer shows is kept.
                self.pod_for_observation(seq, pod, at);
                self.cluster.history_resets.insert(
                    pod.clone(),
                    super::cluster::HistoryReset {
                        node_id: node_id.clone(),
                        previous_replid: *previous_replid,
                    },
                );
                let was = previous_offset.map_or_else(String::new, |o| format!(" at offset {o}"));
                self.history(
                    seq,
                    at,
                    body,
                    format!(
                        "primary {pod} restarted in place with another history (was {}{was}, now {} at offset {offset})",
                        short(&previous_replid.to_hex()),
                        short(&replid.to_hex())
                    ),
                );
            }
        }
    }

    /// What a succeeded intent changed that no observation reports back:
    /// objects applied, the boot primary published.
    fn record_effect(&mut self, intent: &Intent) {
        match intent {
            Intent::ApplyResources { generation } => self.applied_generation = Some(*generation),
            Intent::SyncUsers { pod, apply, remove } => self.users.synced(pod, apply, remove),
            Intent::PublishBootConfig { primary, ip } => {
                self.replication.boot_primary = Some((primary.clone(), ip.clone()));
            }
            Intent::CreateScheduledBackup { object } => {
                self.backups.last_created = Some(object.clone());
            }
            Intent::ForgetNode { pod, node_id } => {
                // Forgotten by every member: its claims no longer count.
                self.cluster.nodes.remove(node_id);
                if self.cluster.node_id(pod) == Some(node_id.as_str()) {
                    self.cluster.pods.remove(pod);
                }
            }
            Intent::MoveSlots {
                from_node,
                to_node,
                slots,
                ..
            } => {
                self.reshard
                    .failures
                    .remove(&super::reshard::move_key(from_node, to_node));
                if let Some(run) = self.reshard.run.as_mut() {
                    run.moved = run.moved.saturating_add(crate::cluster::slot_count(slots));
                }
            }
            Intent::PromoteReplica { .. }
            // The reloads are recorded with their time by the caller; a
            // new certificate is seen in the Secret.
            | Intent::ReloadCertificate { .. }
            | Intent::IssueCertificate { .. }
            // Their facts are journaled as their own events.
            | Intent::TakeBackup { .. }
            | Intent::DeleteBackup { .. }
            | Intent::FinishRestore { .. }
            | Intent::DeleteOwnedObjects { .. }
            | Intent::SettleSlot { .. }
            | Intent::RepointReplica { .. }
            | Intent::RollPod { .. }
            | Intent::FenceNode { .. }
            | Intent::AddNode { .. }
            | Intent::MigrateSlots { .. }
            | Intent::UpdateStatus
            | Intent::SetRoleLabels { .. }
            | Intent::Switchover { .. }
            | Intent::ClearSwitchoverRequest
            | Intent::ClearFailoverRequest
            | Intent::AssignSlots { .. }
            | Intent::ReplicateShard { .. }
            | Intent::ClusterFailover { .. }
            | Intent::SetShardRoleLabels { .. }
            | Intent::MeetNode { .. }
            | Intent::ReleaseUser { .. }
            | Intent::SentinelMonitor { .. }
            | Intent::SentinelConfigure { .. }
            | Intent::SentinelReset { .. }
            | Intent::SentinelFailover { .. } => {}
        }
    }

    /// Folds a cluster node's report: a new node id for a pod retires the
    /// old node (kept, with its last claims, until forgotten); slot
    /// ownership that changed hands, and the cluster's formation, go into
    /// the history.
    fn fold_cluster_report(
        &mut self,
        seq: u64,
        at: Timestamp,
        body: &Event,
        pod: &str,
        report: &crate::cluster::ClusterNodeReport,
    ) {
        if let Some(other) = self
            .cluster
            .pod_of(&report.node_id)
            .filter(|other| *other != pod)
        {
            let other = other.to_owned();
            self.anomaly(
                seq,
                format!(
                    "{pod} reports node id {} which {other} reported before",
                    report.node_id
                ),
            );
        }
        if !report.is_primary()
            || self
                .cluster
                .history_resets
                .get(pod)
                .is_some_and(|r| r.node_id != report.node_id)
        {
            // No longer a primary (the failover served it), or another
            // node: the restart no longer bears on who should serve.
            self.cluster.history_resets.remove(pod);
        }
        let before: Vec<Option<String>> = self.owner_pods();
        let previous = self
            .cluster
            .pods
            .insert(pod.to_owned(), report.node_id.clone());
        self.cluster.nodes.insert(
            report.node_id.clone(),
            super::cluster::ClusterNode {
                pod: pod.to_owned(),
                report: report.clone(),
            },
        );
        if let Some(previous) = previous.filter(|p| *p != report.node_id) {
            self.history(
                seq,
                at,
                body,
                format!(
                    "{pod} came back as a new node {} (was {}): it lost its data",
                    short(&report.node_id),
                    short(&previous)
                ),
            );
        }
        let after: Vec<Option<String>> = self.owner_pods();
        let mut moves: Vec<(crate::intent::SlotRange, &Option<String>, &Option<String>)> =
            Vec::new();
        for (slot, (old, new)) in (0_u16..).zip(before.iter().zip(after.iter())) {
            if old == new {
                continue;
            }
            match moves.last_mut() {
                Some((range, o, n))
                    if range.end.checked_add(1) == Some(slot) && *o == old && *n == new =>
                {
                    range.end = slot;
                }
                _ => moves.push((
                    crate::intent::SlotRange {
                        start: slot,
                        end: slot,
                    },
                    old,
                    new,
                )),
            }
        }
        let summaries: Vec<String> = moves
            .iter()
            .map(|(range, old, new)| {
                let slots = crate::cluster::describe_slots(std::slice::from_ref(range));
                match (*old, *new) {
                    (Some(old), Some(new)) => format!("slots {slots} moved from {old} to {new}"),
                    (None, Some(new)) => format!("slots {slots} now owned by {new}"),
                    (Some(old), None) => format!("slots {slots} no longer owned by {old}"),
                    (None, None) => String::new(),
                }
            })
            .collect();
        if !summaries.is_empty() {
            self.history(
                seq,
                at,
                body,
                format!("{} (epoch {})", summaries.join("; "), report.config_epoch),
            );
        }
        if self.cluster.formed_at.is_none() && after.iter().all(Option::is_some) {
            self.cluster.formed_at = Some(seq);
            self.history(
                seq,
                at,
                body,
                "cluster formed: every one of the 16384 slots has an owner".to_owned(),
            );
        }
    }

    /// The pod owning each slot, as `node@pod` would be ambiguous for
    /// people: the pod name, or the node id when no pod is known.
    fn owner_pods(&self) -> Vec<Option<String>> {
        self.cluster
            .slot_owners()
            .into_iter()
            .map(|o| o.map(|id| self.cluster.pod_of(id).unwrap_or(id).to_owned()))
            .collect()
    }

    /// Whether the stream is a Valkey Cluster's: its nodes reported
    /// cluster identities.
    fn is_valkey_cluster(&self) -> bool {
        !self.cluster.pods.is_empty()
    }

    fn observed(&mut self) {
        self.counters.observations = self.counters.observations.saturating_add(1);
    }

    /// The view of `pod`, created (with an anomaly) if no `PodObserved`
    /// introduced it: a probe result for a pod the API never showed us.
    fn pod_for_observation(&mut self, seq: u64, pod: &str, at: Timestamp) -> &mut PodView {
        if !self.pods.contains_key(pod) {
            self.anomaly(seq, format!("observation of unknown pod {pod}"));
        }
        let view = self.pods.entry(pod.to_owned()).or_default();
        view.last_seen = at;
        view
    }

    /// Follows the believed primary from role observations; two primaries
    /// at once is recorded, never resolved here (that is a decision).
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

    fn settle(&mut self, seq: u64, intent_id: &Uuid, outcome: &str) -> Option<InFlightIntent> {
        let settled = self.in_flight.remove(intent_id);
        if settled.is_none() {
            self.anomaly(
                seq,
                format!("intent {intent_id} {outcome} but it is not in flight"),
            );
        }
        settled
    }

    fn history(&mut self, seq: u64, at: Timestamp, body: &Event, summary: String) {
        let entry = HistoryEntry {
            seq,
            at,
            kind: body.kind().to_owned(),
            summary,
        };
        push_bounded(&mut self.history, entry, HISTORY_LIMIT);
    }

    /// Ends the running attempt `attempt` of backup `object` with
    /// `outcome`; an end of another attempt is an anomaly.
    fn end_backup(
        &mut self,
        seq: u64,
        object: &str,
        attempt: u32,
        outcome: super::backups::BackupOutcome,
    ) {
        match self.backups.runs.get_mut(object) {
            Some(run) if run.attempt == attempt && run.outcome.is_none() => {
                run.outcome = Some(outcome);
            }
            _ => self.anomaly(
                seq,
                format!("backup {object} attempt {attempt} ended, but that attempt does not run"),
            ),
        }
    }

    fn anomaly(&mut self, seq: u64, description: String) {
        tracing::debug!(seq, %description, "journal anomaly");
        self.counters.anomalies = self.counters.anomalies.saturating_add(1);
        push_bounded(
            &mut self.anomalies,
            Anomaly { seq, description },
            ANOMALY_LIMIT,
        );
    }
}
