//! `ClusterState::apply`: folding one envelope into the projection.
//!
//! Total by construction: only saturating arithmetic, map lookups that
//! tolerate absence, no indexing. Contradictions become anomalies; the fold
//! keeps going so one odd event never hides everything after it.
//!
//! This module checks the envelope (seq, chain, epoch) and routes its
//! event to the fold of the event's family, one file each; the route is
//! decided here alone, in one exhaustive match, so an event added to the
//! catalog does not compile until it is given a family. The helpers every
//! family shares (history, anomalies, the pod an observation is about)
//! live here too. What an event does to the state is its family's file's.

mod backups;
mod cluster;
mod deletion;
mod external;
mod intents;
mod operator;
mod pods;
mod sentinel;
mod sources;
mod spec;
mod tls;
mod users;

use super::{ANOMALY_LIMIT, Anomaly, ClusterState, HISTORY_LIMIT, HistoryEntry, PodView};
use crate::envelope::Envelope;
use crate::event::Event;
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

    /// Routes an event to the fold of its family: the one place that
    /// says which family an event belongs to. Exhaustive on purpose (no
    /// catch-all), so a new event must be routed before it compiles.
    fn apply_body(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
            Event::SpecChanged { .. }
            | Event::SpecRejected { .. }
            | Event::SpecLayersObserved { .. }
            | Event::PolicyRecorded { .. } => self.fold_spec(seq, at, body),
            Event::OperatorStarted { .. }
            | Event::OperatorStopped { .. }
            | Event::LeadershipAcquired { .. }
            | Event::LeadershipLost { .. }
            | Event::DeadlinePassed { .. }
            | Event::SnapshotRecorded { .. }
            | Event::SnapshotTaken { .. } => self.fold_operator(seq, at, body),
            Event::Decided { .. }
            | Event::IntentSucceeded { .. }
            | Event::IntentFailed { .. }
            | Event::IntentAbandoned { .. } => self.fold_intents(seq, at, body),
            Event::PodObserved { .. }
            | Event::PodDeleted { .. }
            | Event::KubeNodeObserved { .. }
            | Event::PodReachabilityObserved { .. }
            | Event::NodeRoleObserved { .. }
            | Event::ReplicationObserved { .. }
            | Event::PrimaryUnreachable { .. }
            | Event::ReplicaPromoted { .. }
            | Event::RoleLabelObserved { .. }
            | Event::StatefulSetObserved { .. }
            | Event::PodTerminating { .. }
            | Event::SwitchoverRequestObserved { .. }
            | Event::FailoverRequestObserved { .. }
            | Event::ContainerFailureObserved { .. }
            | Event::BindingObserved { .. }
            | Event::DriftObserved { .. }
            | Event::ServerVersionObserved { .. }
            | Event::ImagePreflighted { .. }
            | Event::SourceFollowed { .. }
            | Event::StandbyObserved { .. }
            | Event::StandbyPromoted { .. }
            | Event::RebalanceRequestObserved { .. }
            | Event::PodDataObserved { .. }
            | Event::ContainerRestartObserved { .. }
            | Event::RestartRequestObserved { .. } => self.fold_pods(seq, at, body),
            Event::ClusterNodeObserved { .. }
            | Event::PrimaryHistoryReset { .. }
            | Event::SlotMigrationObserved { .. }
            | Event::SlotStatesObserved { .. } => self.fold_cluster(seq, at, body),
            Event::SentinelPodObserved { .. }
            | Event::SentinelPodDeleted { .. }
            | Event::SentinelObserved { .. }
            | Event::SentinelEventObserved { .. }
            | Event::SentinelSwitchObserved { .. }
            | Event::SentinelTimingObserved { .. } => self.fold_sentinel(seq, at, body),
            Event::CertificateObserved { .. }
            | Event::CertificateServed { .. }
            | Event::CertificateAuthorityCreated { .. } => self.fold_tls(seq, at, body),
            Event::UserObserved { .. }
            | Event::UserForgotten { .. }
            | Event::AclObserved { .. }
            | Event::RotationWindowClosed { .. }
            | Event::FingerprintKeyObserved { .. }
            | Event::FingerprintsRekeyed { .. }
            | Event::UserConnectionObserved { .. } => self.fold_users(seq, at, body),
            Event::BackupRequested { .. }
            | Event::BackupForgotten { .. }
            | Event::BackupStarted { .. }
            | Event::BackupShardUploaded { .. }
            | Event::BackupCompleted { .. }
            | Event::BackupFailed { .. }
            | Event::BackupDue { .. }
            | Event::BackupDeleted { .. }
            | Event::RestoreVerified { .. }
            | Event::RestoreRefused { .. }
            | Event::RestoreFetchObserved { .. }
            | Event::RestoreCompleted { .. }
            | Event::RestoreToTimeVerified { .. }
            | Event::ArchiveChainStarted { .. }
            | Event::ArchiveFollowed { .. }
            | Event::ArchiveChainEnded { .. }
            | Event::ArchiveChainDeleted { .. }
            | Event::ArchiveTargetObserved { .. } => self.fold_backups(seq, at, body),
            Event::ExternalEndpointsObserved { .. }
            | Event::AnnouncedAddressObserved { .. }
            | Event::ExternalSentinelsObserved { .. } => {
                self.fold_external(seq, at, body);
            }
            Event::ClusterDeleted
            | Event::DeletionRequested { .. }
            | Event::OwnedObjectsDeleted { .. } => self.fold_deletion(seq, at, body),
            Event::ResourceVersionsObserved { .. } | Event::StaleReadIgnored { .. } => {
                self.fold_sources(seq, at, body);
            }
        }
    }

    /// Records an event handed to a family's fold that the fold does not
    /// know. Never reached while `apply_body` and the family files agree;
    /// should they not, the event shows as an anomaly rather than vanish.
    fn misrouted(&mut self, seq: u64, body: &Event, family: &str) {
        self.anomaly(
            seq,
            format!(
                "{} was routed to the {family} fold, which does not fold it; ignored",
                body.kind()
            ),
        );
    }

    /// Counts one observation.
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

    /// Appends a notable event to the bounded history.
    fn history(&mut self, seq: u64, at: Timestamp, body: &Event, summary: String) {
        let entry = HistoryEntry {
            seq,
            at,
            kind: body.kind().to_owned(),
            summary,
        };
        push_bounded(&mut self.history, entry, HISTORY_LIMIT);
    }

    /// Records an anomaly: counted, logged at debug, and kept in the
    /// bounded ring.
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
