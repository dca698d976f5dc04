//! The spec and policy family: the desired spec accepted or rejected, and
//! the policy in force.
//!
//! A spec accepted also resets what depends on it: the moves that kept
//! failing are retried afresh, the Sentinel flag and the backup schedule
//! follow the new spec. It does not judge a spec: the observer validated
//! it before `SpecChanged` or `SpecRejected` was written.

use crate::event::Event;
use crate::projection::{ClusterState, DesiredSpec, SpecStatus};
use crate::time::Timestamp;

impl ClusterState {
    /// Folds the desired spec and the policy: a generation accepted or
    /// rejected, the policy recorded.
    pub(super) fn fold_spec(&mut self, seq: u64, at: Timestamp, body: &Event) {
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
                // The same generation with another spec: a change of its
                // defaults (`SpecLayersObserved`). What was applied for
                // that generation is no longer the spec in force, so it is
                // applied again (`ApplyResources`), and rolled.
                if self
                    .desired
                    .as_ref()
                    .is_some_and(|d| d.generation == *generation && d.fingerprint != *fingerprint)
                    && self.applied_generation == Some(*generation)
                {
                    self.applied_generation = None;
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
                    // Asked to wake (or back to sleep before it woke).
                    if let Some(hibernation) = self.hibernation.as_mut() {
                        if spec.hibernated {
                            hibernation.waking_since = None;
                        } else if hibernation.waking_since.is_none() {
                            hibernation.waking_since = Some(at);
                        }
                    }
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
            Event::SpecLayersObserved {
                generation,
                layers,
                fingerprint,
                sources,
                from_defaults,
            } => {
                let said = match (layers, fingerprint) {
                    (None, _) => "no defaults layer applies any more".to_owned(),
                    (Some(_), Some(_)) => format!(
                        "spec generation {generation} built with {} field(s) from defaults{}",
                        sources.len(),
                        if *from_defaults {
                            " (a change of the defaults)"
                        } else {
                            ""
                        }
                    ),
                    (Some(_), None) => {
                        format!("spec generation {generation} with its defaults refused")
                    }
                };
                self.spec_layers = Some(crate::projection::SpecLayersView {
                    generation: *generation,
                    layers: *layers,
                    fingerprint: *fingerprint,
                    sources: sources.clone(),
                    from_defaults: *from_defaults,
                    seq,
                });
                self.history(seq, at, body, said);
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
            Event::PolicyRecorded { policy } => {
                self.policy = Some(policy.clone());
            }
            other => self.misrouted(seq, other, "spec"),
        }
    }
}
