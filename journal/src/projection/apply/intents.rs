//! The intents family: intents go in flight when `Decided` and leave it
//! when they succeed, fail or are abandoned.
//!
//! A success also records what the intent changed that no observation
//! reports back (`record_effect`); a failure records what a later decision
//! must know (a move that keeps failing, a user that cannot be applied).
//! An outcome for an intent not in flight is an anomaly, never a guess.

use uuid::Uuid;

use crate::cluster::{covers, overlaps};
use crate::event::Event;
use crate::intent::{Intent, SlotRange};
use crate::projection::{ClusterState, InFlightIntent, reshard};
use crate::time::Timestamp;

impl ClusterState {
    /// Folds decisions and their outcomes: intents go in flight when
    /// decided and leave it when they succeed, fail or are abandoned.
    pub(super) fn fold_intents(&mut self, seq: u64, at: Timestamp, body: &Event) {
        match body {
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
                        self.reshard.run = Some(reshard::ReshardRun {
                            generation: *generation,
                            planned: *slots_to_move,
                            moved: 0,
                            started_at: at,
                            started_seq: seq,
                        });
                    }
                    if matches!(planned.intent, Intent::PersistForHibernation { .. }) {
                        // What an earlier hibernation persisted says
                        // nothing of this one.
                        self.hibernation_data = crate::projection::HibernationData::default();
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
                    match &done.planned.intent {
                        Intent::PersistForHibernation { primaries, pods } => {
                            self.hibernation = Some(crate::projection::HibernationView {
                                primaries: primaries.clone(),
                                pods: pods.clone(),
                                seq: done.decided_seq,
                                since: at,
                                waking_since: None,
                            });
                        }
                        Intent::Wake { .. } => {
                            self.hibernation = None;
                            self.hibernation_data = crate::projection::HibernationData::default();
                        }
                        Intent::PreflightImage { image, generation } => {
                            self.preflight = Some(crate::projection::PreflightView {
                                image: image.clone(),
                                generation: *generation,
                                started: at,
                                ..crate::projection::PreflightView::default()
                            });
                        }
                        Intent::RemovePreflight { image } => {
                            if let Some(p) = self.preflight.as_mut().filter(|p| p.image == *image) {
                                p.removed = true;
                            }
                        }
                        _ => {}
                    }
                    if let Intent::TakeBackup {
                        object, attempt, ..
                    } = &done.planned.intent
                        && let Some(run) = self.backups.runs.get_mut(object)
                        && run.attempt == *attempt
                    {
                        run.intent = Some(*intent_id);
                    }
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
                if let (
                    Some(
                        Intent::ApplyResources { generation }
                        | Intent::RestartPods { generation, .. },
                    ),
                    false,
                ) = (settled.as_ref().map(|s| &s.planned.intent), *retryable)
                {
                    self.apply_refused = Some((*generation, error.clone()));
                }
                if let (Some(Intent::SyncUsers { pod, .. }), false) =
                    (settled.as_ref().map(|s| &s.planned.intent), *retryable)
                {
                    self.users.sync_failed(pod, error);
                }
                if let Some(Intent::MoveSlots {
                    from_node,
                    to_node,
                    slots,
                    ..
                }) = settled.as_ref().map(|s| &s.planned.intent)
                {
                    // A move that handed back while its job is still
                    // seen under way has not failed: the job goes on.
                    let running = self
                        .reshard
                        .migrations
                        .values()
                        .any(|m| m.job.source == *from_node && m.job.target == *to_node);
                    if self.moved_any(from_node, to_node, slots) {
                        // It carried slots before it stopped (the ends'
                        // reports, folded before the outcome, say so):
                        // progress, so the failures before it are no
                        // streak any more.
                        self.reshard
                            .failures
                            .remove(&reshard::move_key(from_node, to_node));
                    } else if !running {
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
            other => self.misrouted(seq, other, "intents"),
        }
    }

    /// Whether the ends' last reports show some of `slots`, all the source
    /// `from_node`'s when the move was decided, given away by it or taken
    /// by the target `to_node`.
    fn moved_any(&self, from_node: &str, to_node: &str, slots: &[SlotRange]) -> bool {
        let claims = |node: &str| {
            self.cluster
                .nodes
                .get(node)
                .map(|n| n.report.slots.as_slice())
        };
        claims(to_node).is_some_and(|c| overlaps(c, slots))
            || claims(from_node).is_some_and(|c| !covers(c, slots))
    }

    /// Takes intent `intent_id` out of flight as `outcome` (succeeded,
    /// failed, abandoned); one that is not in flight is an anomaly.
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

    /// What a succeeded intent changed that no observation reports back:
    /// objects applied, the boot primary published.
    fn record_effect(&mut self, intent: &Intent) {
        match intent {
            Intent::RestartPods {
                requested,
                generation,
            } => {
                self.restarted_at = Some(requested.clone());
                self.record_effect(&Intent::ApplyResources {
                    generation: *generation,
                });
            }
            Intent::ApplyResources { generation } => {
                self.applied_generation = Some(*generation);
                self.apply_refused = None;
                self.external.unpublished = false;
                if let Some(binding) = self.binding.as_mut() {
                    binding.mark_due = false;
                    binding.rebound = false;
                }
                for drift in self.drift.values_mut() {
                    drift.reverted = true;
                }
            }
            Intent::ReleaseObjects => {
                if let Some(binding) = self.binding.as_mut() {
                    binding.released = true;
                }
            }
            Intent::SyncUsers { pod, apply, remove } => self.users.synced(pod, apply, remove),
            Intent::PublishBootConfig { primary, ip } => {
                self.replication.boot_primary = Some((primary.clone(), ip.clone()));
            }
            Intent::CreateScheduledBackup { object } => {
                self.backups.last_created = Some(object.clone());
            }
            Intent::Archive { target } => {
                self.backups.archive.target = Some(target.clone());
            }
            Intent::StopArchive => {
                self.backups.archive.target = None;
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
                    .remove(&reshard::move_key(from_node, to_node));
                if let Some(run) = self.reshard.run.as_mut() {
                    run.moved = run.moved.saturating_add(crate::cluster::slot_count(slots));
                }
            }
            // It named every external host known.
            Intent::IssueCertificate { .. } => self.external.uncertified = false,
            Intent::PromoteReplica { .. }
            // The reloads are recorded with their time by the caller; a
            // new certificate is seen in the Secret.
            | Intent::ReloadCertificate { .. }
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
            // Its outcome carries the Secret as written
            // (`UserConnectionObserved`).
            | Intent::ApplyUserConnection { .. }
            // Its fact is `ArchiveChainDeleted`; the node's slots are
            // observed.
            | Intent::DeleteArchiveChain { .. }
            | Intent::DropForeignSlots { .. }
            // The node's line is observed after it.
            | Intent::Announce { .. }
            | Intent::SentinelMonitor { .. }
            | Intent::SentinelConfigure { .. }
            | Intent::SentinelTune { .. }
            | Intent::SentinelReset { .. }
            | Intent::SentinelFailover { .. }
            // Its outcome carries the node's report after the reset.
            | Intent::ResetReplica { .. }
            // Its outcome carries the key observed (`FingerprintKeyObserved`).
            | Intent::CreateFingerprintKey
            // The hibernation's view, set and cleared beside the outcome
            // (it keeps the decision's seq and the outcome's time).
            | Intent::PersistForHibernation { .. }
            | Intent::Wake { .. }
            // The preflight's view, set beside the outcome (its time).
            | Intent::PreflightImage { .. }
            | Intent::RemovePreflight { .. }
            // Their outcomes carry `SourceFollowed` and `StandbyPromoted`.
            | Intent::FollowSource { .. }
            | Intent::PromoteStandby { .. }
            // Its outcome carries the request as observed after it.
            | Intent::ClearRebalanceRequest => {}
        }
    }
}
