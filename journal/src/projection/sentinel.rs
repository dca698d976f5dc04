//! The Sentinel part of the projection: the Sentinel pods and what each
//! last reported, the leader votes and elections seen on their event
//! channels, and the switches of primary they made.
//!
//! Only facts are kept. Which primary the Sentinels agree on, whether
//! they are in the middle of a failover and which entries are stale are
//! derived by `decide` and the observer from these facts; the one
//! primary the journal believes stays in the Replication part, moved
//! here only by a `SentinelSwitchObserved`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{PodPhase, Reachability};
use crate::sentinel::SentinelReport;
use crate::time::Timestamp;

/// How many failover epochs of votes and leaders are kept.
pub const EPOCHS_KEPT: usize = 8;

/// What the journal says of a cluster's Sentinels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SentinelPart {
    /// Whether the spec in force is of topology Sentinel (set by each
    /// accepted spec): then Sentinel, not the operator, moves the primary.
    pub enabled: bool,
    /// The Sentinel pods, by name.
    pub pods: BTreeMap<String, SentinelPodView>,
    /// Leader votes seen, by failover epoch: voter pod → the run id it
    /// voted for (`+vote-for-leader`).
    pub votes: BTreeMap<u64, BTreeMap<String, String>>,
    /// Leaders seen elected, by failover epoch (`+elected-leader`).
    pub leaders: BTreeMap<u64, String>,
    /// The last epoch each Sentinel pod announced (`+new-epoch`, votes).
    pub epochs: BTreeMap<String, u64>,
    /// The configuration epoch of the believed primary: the last switch's,
    /// or the one the Sentinels reported when they first monitored it.
    pub primary_epoch: u64,
    /// The last switch, for the status and the timeline.
    pub last_switch: Option<SwitchView>,
    /// Switches journaled in all.
    pub switches: u64,
    /// Of them, found after the fact.
    pub switches_after_the_fact: u64,
}

/// One Sentinel pod.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SentinelPodView {
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// Pod IP.
    pub ip: Option<String>,
    /// Pod phase.
    pub phase: Option<PodPhase>,
    /// Ready condition.
    pub ready: bool,
    /// Last probe outcome.
    pub reachability: Option<Reachability>,
    /// Its last report, while it answers.
    pub report: Option<SentinelReport>,
    /// Time of the last event about it.
    pub last_seen: Timestamp,
}

/// A switch of primary by Sentinel, as kept for the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchView {
    /// Seq of the `SentinelSwitchObserved`.
    pub seq: u64,
    /// When it was journaled.
    pub at: Timestamp,
    /// The primary replaced.
    pub from: Option<String>,
    /// The new primary.
    pub to: String,
    /// Its configuration epoch.
    pub epoch: u64,
    /// Found after the fact.
    pub after_the_fact: bool,
}

impl SentinelPart {
    /// Whether an answering Sentinel is failing the primary over (it
    /// reports a failover state): until it ends, two pods may report
    /// themselves primary (the promoted replica, and the old primary not
    /// yet made to follow it), which is the Sentinels' to settle.
    #[must_use]
    pub fn failing_over(&self) -> bool {
        self.pods.values().any(|v| {
            v.reachability == Some(Reachability::Reachable)
                && v.report
                    .as_ref()
                    .and_then(|r| r.monitoring.as_ref())
                    .is_some_and(|m| m.failover_state.is_some())
        })
    }

    /// The Sentinel pod whose report carries `run_id`.
    #[must_use]
    pub fn pod_of_run_id(&self, run_id: &str) -> Option<&str> {
        self.pods
            .iter()
            .find(|(_, v)| v.report.as_ref().is_some_and(|r| r.myid == run_id))
            .map(|(name, _)| name.as_str())
    }

    /// The pods seen voting for `leader_run_id` in `epoch`.
    #[must_use]
    pub fn voters(&self, epoch: u64, leader_run_id: &str) -> Vec<String> {
        self.votes
            .get(&epoch)
            .map(|votes| {
                votes
                    .iter()
                    .filter(|(_, leader)| leader.as_str() == leader_run_id)
                    .map(|(voter, _)| voter.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether any event of `epoch` was seen (a vote or an election).
    #[must_use]
    pub fn watched(&self, epoch: u64) -> bool {
        self.votes.contains_key(&epoch) || self.leaders.contains_key(&epoch)
    }

    /// Folds one published event of the Sentinel in `pod`: epochs, votes
    /// and elections. Returns a line for the history when the event is a
    /// notable step of a failover.
    pub fn fold_event(&mut self, pod: &str, channel: &str, payload: &str) -> Option<String> {
        let mut words = payload.split_whitespace();
        match channel {
            "+new-epoch" => {
                if let Some(epoch) = words.next().and_then(|w| w.parse::<u64>().ok()) {
                    self.announce_epoch(pod, epoch);
                }
                None
            }
            "+vote-for-leader" => {
                let leader = words.next()?.to_owned();
                let epoch = words.next().and_then(|w| w.parse::<u64>().ok())?;
                self.announce_epoch(pod, epoch);
                self.votes
                    .entry(epoch)
                    .or_default()
                    .insert(pod.to_owned(), leader.clone());
                self.prune();
                let named = self.pod_of_run_id(&leader).unwrap_or("an unknown Sentinel");
                Some(format!("{pod} voted for {named} to lead epoch {epoch}"))
            }
            "+elected-leader" => {
                let epoch = self.epochs.get(pod).copied()?;
                self.leaders.insert(epoch, pod.to_owned());
                self.prune();
                Some(format!(
                    "{pod} elected to lead the failover of epoch {epoch}"
                ))
            }
            "+odown" => Some(format!("{pod}: primary objectively down ({payload})")),
            "+sdown" if payload.starts_with("master") => {
                Some(format!("{pod}: primary subjectively down"))
            }
            "+promoted-slave" => Some(format!("{pod}: replica promoted ({payload})")),
            "+switch-master" => Some(format!("{pod}: switch-master {payload}")),
            "+failover-end" | "+failover-end-for-timeout" => Some(format!("{pod}: {channel}")),
            c if c.starts_with("-failover-abort") => Some(format!("{pod}: {channel}")),
            _ => None,
        }
    }

    fn announce_epoch(&mut self, pod: &str, epoch: u64) {
        let e = self.epochs.entry(pod.to_owned()).or_default();
        *e = (*e).max(epoch);
    }

    /// Keeps the votes and leaders of the last [`EPOCHS_KEPT`] epochs.
    fn prune(&mut self) {
        while self.votes.len() > EPOCHS_KEPT {
            self.votes.pop_first();
        }
        while self.leaders.len() > EPOCHS_KEPT {
            self.leaders.pop_first();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn votes_and_the_leader_of_an_epoch_are_kept() {
        let mut part = SentinelPart::default();
        part.pods.insert(
            "s-0".into(),
            SentinelPodView {
                report: Some(SentinelReport {
                    myid: "aaa".into(),
                    monitoring: None,
                }),
                ..SentinelPodView::default()
            },
        );
        assert!(part.fold_event("s-0", "+new-epoch", "3").is_none());
        let line = part.fold_event("s-0", "+vote-for-leader", "aaa 3").unwrap();
        assert_eq!(line, "s-0 voted for s-0 to lead epoch 3");
        part.fold_event("s-1", "+vote-for-leader", "aaa 3");
        part.fold_event("s-2", "+vote-for-leader", "bbb 3");
        assert!(
            part.fold_event("s-0", "+elected-leader", "master m 1.2.3.4 6379")
                .is_some()
        );
        assert_eq!(part.leaders.get(&3).map(String::as_str), Some("s-0"));
        assert_eq!(
            part.voters(3, "aaa"),
            vec!["s-0".to_owned(), "s-1".to_owned()]
        );
        assert!(part.watched(3));
        assert!(!part.watched(4));
    }

    #[test]
    fn junk_events_change_nothing_and_epochs_are_bounded() {
        let mut part = SentinelPart::default();
        assert!(part.fold_event("s-0", "+vote-for-leader", "").is_none());
        assert!(
            part.fold_event("s-0", "+vote-for-leader", "x notanumber")
                .is_none()
        );
        assert!(part.fold_event("s-0", "+elected-leader", "").is_none());
        assert!(part.votes.is_empty() && part.leaders.is_empty());
        for epoch in 0..20 {
            part.fold_event("s-0", "+vote-for-leader", &format!("x {epoch}"));
        }
        assert_eq!(part.votes.len(), EPOCHS_KEPT);
        assert_eq!(part.epochs.get("s-0"), Some(&19));
    }
}
